"""Writes src/draftstore/_models.py, the request and response types, from DraftStore's OpenAPI document.

Usage: python generate.py OPENAPI_JSON > src/draftstore/_models.py

Every component schema becomes a TypedDict (required fields in a base class, the optional ones in a class of
total=False above it), every string enum a Literal. The test suite runs this against the running server's
/openapi.json and fails when the result differs from the file committed.
"""

import json
import keyword
import sys

HEADER = '''"""Request and response types of DraftStore's REST API, generated from its OpenAPI document by generate.py.

Do not edit: run `python generate.py openapi.json > src/draftstore/_models.py`.
"""

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union
'''


def python_type(schema):
    if "$ref" in schema:
        return repr(schema["$ref"].rsplit("/", 1)[1])
    if "oneOf" in schema or "anyOf" in schema:
        variants = [python_type(s) for s in schema.get("oneOf", schema.get("anyOf"))]
        return "Union[" + ", ".join(dict.fromkeys(variants)) + "]" if len(set(variants)) > 1 else variants[0]
    types = schema.get("type", "object")
    if isinstance(types, list):
        nullable = "null" in types
        rest = [t for t in types if t != "null"]
        inner = python_type(dict(schema, type=rest[0])) if rest else "None"
        return f"Optional[{inner}]" if nullable else inner
    if "enum" in schema:
        return "Literal[" + ", ".join(repr(v) for v in schema["enum"]) + "]"
    if types == "string":
        return "str"
    if types == "integer":
        return "int"
    if types == "number":
        return "float"
    if types == "boolean":
        return "bool"
    if types == "null":
        return "None"
    if types == "array":
        return f"List[{python_type(schema.get('items', {}))}]"
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return f"Dict[str, {python_type(extra)}]"
    return "Dict[str, Any]"


def generate(document):
    out = [HEADER]
    for name, schema in sorted(document["components"]["schemas"].items()):
        described = schema.get("description", "").strip().replace('"""', "'''")
        if "enum" in schema or "properties" not in schema:
            out.append(f"\n{name} = {python_type(schema)}\n")
            continue
        required = set(schema.get("required", []))
        fields = [(field, python_type(s)) for field, s in schema["properties"].items()]
        must = [(f, t) for f, t in fields if f in required]
        may = [(f, t) for f, t in fields if f not in required]
        base = f"_{name}Required"
        out.append(f"\n\nclass {base}(TypedDict):\n")
        out.extend(f"    {f}: {t}\n" for f, t in must) if must else out.append("    pass\n")
        out.append(f"\n\nclass {name}({base}, total=False):\n")
        if described:
            out.append(f'    """{described}"""\n\n' if may else f'    """{described}"""\n')
        out.extend(f"    {f}: {t}\n" for f, t in may)
        if not may and not described:
            out.append("    pass\n")
        assert not any(keyword.iskeyword(f) for f, _ in fields), name
    return "".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(generate(json.load(f)))

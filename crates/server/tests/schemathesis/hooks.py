"""Schemathesis hooks for DraftStore's OpenAPI test (tests/api/openapi.rs).

Two rules no schema can say, so generated requests are brought within them before they are sent (every other
field goes as generated):

- A `list-drafts` or `list-objects` page token is opaque and valid only for the listing that gave it: the server
  answers any other token 400, and no generator can make one. A generated page token that is not one of
  DraftStore's is left out, while the stateful phase sends real ones, following the `next_page_token` link of a
  page. A page token that is not a string at all stays, for the negative cases.
- A set names each draft once, and each final name (a draft's own name when it gives none) once. Generated drafts
  that repeat one are left out.
"""

import base64
import json

import schemathesis


def _is_a_page_token(token: str) -> bool:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return False
    return isinstance(decoded, dict) and {"p", "t"} <= decoded.keys()


@schemathesis.hook
def before_call(ctx, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    path = case.operation.path
    if path in ("/api/v1/list-drafts", "/api/v1/list-objects"):
        token = body.get("page_token")
        if isinstance(token, str) and not _is_a_page_token(token):
            del body["page_token"]
    elif path == "/api/v1/confirm-set" and isinstance(body.get("drafts"), list):
        names, finals, kept = set(), set(), []
        for draft in body["drafts"]:
            if isinstance(draft, dict) and isinstance(draft.get("object_name"), str):
                final = draft.get("final_name") or draft["object_name"]
                if not isinstance(final, str) or draft["object_name"] in names or final in finals:
                    continue
                names.add(draft["object_name"])
                finals.add(final)
            kept.append(draft)
        if kept:
            body["drafts"] = kept

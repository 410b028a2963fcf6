"""Schemathesis hooks for DraftStore's OpenAPI test (tests/api/openapi.rs).

A `list-drafts` page token is opaque and valid only for the listing that gave it, which no schema can say: the
server answers any other token 400, and no generator can make one. So a generated page token that is not one of
DraftStore's is left out of the request before it is sent (every other field goes as generated), while the
stateful phase sends real ones, following the `next_page_token` link of a page. A page token that is not a string
at all stays, for the negative cases.
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
    if case.operation.path != "/api/v1/list-drafts" or not isinstance(body, dict):
        return
    token = body.get("page_token")
    if isinstance(token, str) and not _is_a_page_token(token):
        del body["page_token"]

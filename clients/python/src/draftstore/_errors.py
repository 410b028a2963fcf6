"""DraftStore's errors: the server's own, and the ones met on the way."""

from typing import Optional

import httpx

#: Error types after which the same request may simply be sent again: nothing was done.
RETRYABLE = frozenset({"RATE_LIMITED", "SERVER_BUSY"})


class DraftStoreError(Exception):
    """A request DraftStore (or the store behind a signed URL) refused, or could not answer.

    `error_type` is DraftStore's stable code (`OBJECT_NOT_FOUND`, `VARIANT_NOT_FOUND`, `RATE_LIMITED`, …: the
    models' `ErrorType`; `None` when the answer was not DraftStore's), `status` the HTTP status (`None` when no
    answer came), `retry_after` the seconds the server asked to wait, if it did.
    """

    def __init__(self, message: str, *, error_type: Optional[str] = None, status: Optional[int] = None,
                 retry_after: Optional[float] = None):
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status = status
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response) -> "DraftStoreError":
        try:
            body = response.json()
        except ValueError:
            body = None
        retry_after = response.headers.get("retry-after")
        try:
            wait = float(retry_after) if retry_after is not None else None
        except ValueError:
            wait = None
        if isinstance(body, dict) and "error_type" in body:
            return cls(body.get("error_message") or response.reason_phrase, error_type=body["error_type"],
                       status=response.status_code, retry_after=wait)
        text = response.text.strip()[:500]
        return cls(f"HTTP {response.status_code}: {text or response.reason_phrase}", status=response.status_code,
                   retry_after=wait)

    @property
    def retryable(self) -> bool:
        return self.error_type in RETRYABLE

    def __str__(self) -> str:
        return f"{self.message} ({self.error_type})" if self.error_type else self.message

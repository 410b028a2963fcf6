"""The asynchronous client: one method per REST operation, with the retries the server asks for."""

import asyncio
import random
from typing import Any, Dict, List, Optional

import httpx

from . import _models as m
from ._errors import DraftStoreError

#: Attempts of a request the server asks to repeat later (429 `RATE_LIMITED`, 503 `SERVER_BUSY`), or that could not
#: reach it.
DEFAULT_RETRIES = 5


def _body(**fields: Any) -> Dict[str, Any]:
    """A request body: the fields given, none of those left as None."""
    return {name: value for name, value in fields.items() if value is not None}


class AsyncClient:
    """DraftStore's REST API, asynchronously.

    `base_url` is the server (`http://localhost:8080`), `token` an API key or a JWT sent as a bearer token.
    Requests the server asks to repeat (`RATE_LIMITED`, `SERVER_BUSY`) are repeated after its `Retry-After`, and
    requests that could not reach it after a short backoff, up to `retries` times; every other failure raises
    `DraftStoreError` at once.
    """

    def __init__(self, base_url: str = "http://localhost:8080", token: Optional[str] = None, *,
                 timeout: float = 60.0, retries: int = DEFAULT_RETRIES, http: Optional[httpx.AsyncClient] = None):
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client, also used for the transfers to signed URLs."""
        return self._http

    async def call(self, route: str, body: Dict[str, Any]) -> Any:
        """POSTs `body` to `/api/v1/<route>` and returns the answer's JSON."""
        url = f"{self.base_url}/api/v1/{route}"
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.post(url, json=body, headers=self._headers)
            except httpx.TransportError as e:
                if attempt < self.retries:
                    await asyncio.sleep(_backoff(attempt))
                    continue
                raise DraftStoreError(f"cannot reach DraftStore at {self.base_url}: {e}") from e
            if response.is_success:
                return response.json()
            error = DraftStoreError.from_response(response)
            if error.retryable and attempt < self.retries:
                await asyncio.sleep(error.retry_after if error.retry_after is not None else _backoff(attempt))
                continue
            raise error
        raise AssertionError("unreachable")

    # The operations, in the order of the API reference.

    async def upload_url(self, object_name: str, *, content_type: Optional[str] = None,
                         content_length: Optional[int] = None,
                         checksum_sha256: Optional[str] = None) -> m.UploadUrlResponse:
        """A URL to upload a draft to; what is declared is signed into it."""
        return await self.call("upload-url", _body(object_name=object_name, content_type=content_type,
                                                   content_length=content_length, checksum_sha256=checksum_sha256))

    async def download_url(self, object_name: str, *, stage: Optional[str] = None, filename: Optional[str] = None,
                           disposition: Optional[str] = None, variant: Optional[str] = None) -> m.DownloadUrlResponse:
        """A URL to read a draft (preview) or a confirmed object, saved as `filename` if given; with `variant`, one of
        a confirmed image's variants (`VARIANT_NOT_FOUND` when it has none of that name)."""
        return await self.call("download-url", _body(object_name=object_name, stage=stage, filename=filename,
                                                     disposition=disposition, variant=variant))

    async def confirm_upload(self, object_name: str, *, final_name: Optional[str] = None,
                             metadata: Optional[Dict[str, str]] = None,
                             overwrite: Optional[bool] = None) -> m.ConfirmUploadResponse:
        """Moves a draft into the main bucket, under `final_name` if given, with `metadata`. Idempotent.

        For an image, `image` gives its size as shown, its placeholder and its variants; `size` and `sha256` are
        given when stripping its metadata changed the bytes promoted."""
        return await self.call("confirm-upload", _body(object_name=object_name, final_name=final_name,
                                                       metadata=metadata, overwrite=overwrite))

    async def confirm_set(self, idempotency_key: str, drafts: List[m.SetDraft]) -> m.ConfirmSetResponse:
        """Confirms drafts all together or not at all; the same key again answers the recorded outcome."""
        return await self.call("confirm-set", {"idempotency_key": idempotency_key, "drafts": drafts})

    async def create_buckets(self) -> m.SuccessResponse:
        """Creates the buckets if missing."""
        return await self.call("draft-bucket", {})

    async def list_drafts(self, *, prefix: Optional[str] = None, page_size: Optional[int] = None,
                          page_token: Optional[str] = None) -> m.ListDraftsResponse:
        """One page of the caller's drafts."""
        return await self.call("list-drafts", _body(prefix=prefix, page_size=page_size, page_token=page_token))

    async def discard_draft(self, object_name: str) -> m.SuccessResponse:
        """Deletes one of the caller's drafts."""
        return await self.call("discard-draft", {"object_name": object_name})

    async def list_objects(self, *, prefix: Optional[str] = None, page_size: Optional[int] = None,
                           page_token: Optional[str] = None) -> m.ListObjectsResponse:
        """One page of the caller's confirmed objects."""
        return await self.call("list-objects", _body(prefix=prefix, page_size=page_size, page_token=page_token))

    async def stat_object(self, object_name: str) -> m.ObjectBody:
        """One confirmed object's size, type, checksum and metadata, and for an image what confirm made of it."""
        return await self.call("stat-object", {"object_name": object_name})

    async def delete_object(self, object_name: str) -> m.SuccessResponse:
        """Deletes one of the caller's confirmed objects."""
        return await self.call("delete-object", {"object_name": object_name})

    async def start_multipart(self, object_name: str, *, content_type: Optional[str] = None,
                              content_length: Optional[int] = None, checksum_sha256: Optional[str] = None,
                              part_size: Optional[int] = None) -> m.StartMultipartResponse:
        """Starts a multipart upload of a draft."""
        return await self.call("multipart/start", _body(object_name=object_name, content_type=content_type,
                                                        content_length=content_length,
                                                        checksum_sha256=checksum_sha256, part_size=part_size))

    async def sign_parts(self, object_name: str, upload_id: str, parts: List[m.PartToSign]) -> m.SignPartsResponse:
        """URLs to upload parts to (1 to 1000 a call)."""
        return await self.call("multipart/sign-parts", {"object_name": object_name, "upload_id": upload_id,
                                                        "parts": parts})

    async def list_parts(self, object_name: str, upload_id: str) -> m.ListPartsResponse:
        """The parts the store holds."""
        return await self.call("multipart/list-parts", {"object_name": object_name, "upload_id": upload_id})

    async def complete_multipart(self, object_name: str, upload_id: str,
                                 parts: List[m.PartToComplete]) -> m.CompleteMultipartResponse:
        """Assembles the parts into the draft."""
        return await self.call("multipart/complete", {"object_name": object_name, "upload_id": upload_id,
                                                      "parts": parts})

    async def abort_multipart(self, object_name: str, upload_id: str) -> m.SuccessResponse:
        """Ends an upload and removes its parts."""
        return await self.call("multipart/abort", {"object_name": object_name, "upload_id": upload_id})

    async def uppy_sign(self, request: Dict[str, Any]) -> m.UppySignResponse:
        """Signs one request Uppy's `@uppy/aws-s3` describes (for a server that signs on a browser's behalf)."""
        return await self.call("uppy/sign", request)

    async def health(self) -> m.StatusResponse:
        """Liveness."""
        response = await self._http.get(f"{self.base_url}/health")
        if not response.is_success:
            raise DraftStoreError.from_response(response)
        return response.json()

    async def ready(self) -> m.StatusResponse:
        """Readiness: the store answers and the buckets exist."""
        response = await self._http.get(f"{self.base_url}/ready")
        if not response.is_success:
            raise DraftStoreError.from_response(response)
        return response.json()

    # Upload helpers, in _upload.py.
    from ._upload import upload_file, download_file  # noqa: E402


def _backoff(attempt: int) -> float:
    """About 0.2 s, 0.4 s, 0.8 s, … up to 5 s, with jitter."""
    return min(5.0, 0.2 * 2 ** attempt) * (0.5 + random.random() / 2)

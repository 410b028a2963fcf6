"""Request and response types of DraftStore's REST API, generated from its OpenAPI document by generate.py.

Do not edit: run `python generate.py openapi.json > src/draftstore/_models.py`.
"""

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union


class _CompleteMultipartRequestRequired(TypedDict):
    object_name: str
    parts: List['PartToComplete']
    upload_id: str


class CompleteMultipartRequest(_CompleteMultipartRequestRequired, total=False):
    """Request to complete an upload."""


class _CompleteMultipartResponseRequired(TypedDict):
    object_name: str
    size: int
    success: bool


class CompleteMultipartResponse(_CompleteMultipartResponseRequired, total=False):
    """A completed upload: the draft exists."""


class _ConfirmSetRequestRequired(TypedDict):
    drafts: List['SetDraft']
    idempotency_key: str


class ConfirmSetRequest(_ConfirmSetRequestRequired, total=False):
    """Request to confirm drafts all together or not at all."""


class _ConfirmSetResponseRequired(TypedDict):
    objects: List['ConfirmUploadResponse']
    set_id: str
    success: bool


class ConfirmSetResponse(_ConfirmSetResponseRequired, total=False):
    """A set confirmed: every draft promoted."""


class _ConfirmUploadRequestRequired(TypedDict):
    object_name: str


class ConfirmUploadRequest(_ConfirmUploadRequestRequired, total=False):
    """Request to confirm a draft."""

    final_name: Optional[str]
    metadata: Optional[Dict[str, str]]
    overwrite: Optional[bool]


class _ConfirmUploadResponseRequired(TypedDict):
    final_location: str
    object_name: str
    success: bool


class ConfirmUploadResponse(_ConfirmUploadResponseRequired, total=False):
    """A confirmed upload."""

    content: Union[None, 'ContentReport']
    image: Union[None, 'ImageReport']
    sha256: Optional[str]
    size: Optional[int]


class _ContentReportRequired(TypedDict):
    pass


class ContentReport(_ContentReportRequired, total=False):
    """What DraftStore found in a draft's bytes at confirm."""

    detected_type: Optional[str]
    height: Optional[int]
    scan: Union[None, 'ScanReport']
    width: Optional[int]


class _DiscardDraftRequestRequired(TypedDict):
    object_name: str


class DiscardDraftRequest(_DiscardDraftRequestRequired, total=False):
    """Names a draft."""

Disposition = Literal['inline', 'attachment']


class _DownloadUrlRequestRequired(TypedDict):
    object_name: str


class DownloadUrlRequest(_DownloadUrlRequestRequired, total=False):
    """Request for a download URL."""

    disposition: Union[None, 'Disposition']
    filename: Optional[str]
    stage: Union[None, 'Stage']
    variant: Optional[str]


class _DownloadUrlResponseRequired(TypedDict):
    download_url: str
    expires_at: str
    object_name: str
    stage: 'Stage'


class DownloadUrlResponse(_DownloadUrlResponseRequired, total=False):
    """A URL to download an object from."""


class _DraftBodyRequired(TypedDict):
    content_type: str
    expires_at: str
    object_name: str
    size: int
    uploaded_at: str


class DraftBody(_DraftBodyRequired, total=False):
    """A draft."""

DraftBucketRequest = Dict[str, Any]


class _ErrorBodyRequired(TypedDict):
    error_message: str
    error_type: 'ErrorType'
    success: bool


class ErrorBody(_ErrorBodyRequired, total=False):
    """The body of every error response."""

ErrorType = Literal['BUCKET_NOT_FOUND', 'OBJECT_NOT_FOUND', 'ACCESS_DENIED', 'NETWORK_ERROR', 'INVALID_OBJECT_NAME', 'INTERNAL_ERROR', 'INVALID_REQUEST', 'UPLOAD_TOO_LARGE', 'UNSUPPORTED_CONTENT_TYPE', 'UPLOAD_REJECTED', 'OBJECT_ALREADY_EXISTS', 'DRAFT_CHANGED', 'UPLOAD_NOT_FOUND', 'INVALID_PARTS', 'RATE_LIMITED', 'INSUFFICIENT_STORAGE', 'HOOK_UNAVAILABLE', 'REQUEST_TIMEOUT', 'SERVER_BUSY', 'CONTENT_TYPE_MISMATCH', 'IMAGE_TOO_LARGE', 'UPLOAD_INFECTED', 'SCANNER_UNAVAILABLE', 'IDEMPOTENCY_KEY_REUSED', 'VARIANT_NOT_FOUND', 'IMAGE_UNREADABLE']


class _ImageReportRequired(TypedDict):
    height: int
    placeholder: str
    variants: List['VariantBody']
    width: int


class ImageReport(_ImageReportRequired, total=False):
    """What confirm made of an image: its size as shown, a placeholder to paint before it loads, and its variants."""


class _ListDraftsRequestRequired(TypedDict):
    pass


class ListDraftsRequest(_ListDraftsRequestRequired, total=False):
    """Request for a page of the caller's drafts."""

    page_size: Optional[int]
    page_token: Optional[str]
    prefix: Optional[str]


class _ListDraftsResponseRequired(TypedDict):
    drafts: List['DraftBody']


class ListDraftsResponse(_ListDraftsResponseRequired, total=False):
    """A page of drafts, in name order."""

    next_page_token: Optional[str]


class _ListObjectsRequestRequired(TypedDict):
    pass


class ListObjectsRequest(_ListObjectsRequestRequired, total=False):
    """Request to list the caller's confirmed objects."""

    page_size: Optional[int]
    page_token: Optional[str]
    prefix: Optional[str]


class _ListObjectsResponseRequired(TypedDict):
    objects: List['ObjectBody']


class ListObjectsResponse(_ListObjectsResponseRequired, total=False):
    """A page of confirmed objects, in the store's listing order (name order on S3 and the local backend)."""

    next_page_token: Optional[str]


class _ListPartsResponseRequired(TypedDict):
    object_name: str
    parts: List['UploadedPartBody']
    upload_id: str


class ListPartsResponse(_ListPartsResponseRequired, total=False):
    """The parts uploaded so far, by part number."""


class _ObjectBodyRequired(TypedDict):
    confirmed_at: str
    content_type: str
    metadata: Dict[str, str]
    object_name: str
    size: int


class ObjectBody(_ObjectBodyRequired, total=False):
    """A confirmed object."""

    image: Union[None, 'ImageReport']
    sha256: Optional[str]


class _ObjectRequestRequired(TypedDict):
    object_name: str


class ObjectRequest(_ObjectRequestRequired, total=False):
    """Names a confirmed object."""


class _PartToCompleteRequired(TypedDict):
    etag: str
    part_number: int


class PartToComplete(_PartToCompleteRequired, total=False):
    """One part of the object, as its PUT answered."""


class _PartToSignRequired(TypedDict):
    part_number: int


class PartToSign(_PartToSignRequired, total=False):
    """One part to sign."""

    checksum_sha256: Optional[str]


class _ScanReportRequired(TypedDict):
    result: 'ScanResult'


class ScanReport(_ScanReportRequired, total=False):
    """The virus scan of a promoted draft."""

    engine: Optional[str]

ScanResult = Literal['clean', 'skipped']


class _SetDraftRequired(TypedDict):
    object_name: str


class SetDraft(_SetDraftRequired, total=False):
    """One draft of a set to confirm."""

    final_name: Optional[str]
    metadata: Optional[Dict[str, str]]


class _SignPartsRequestRequired(TypedDict):
    object_name: str
    parts: List['PartToSign']
    upload_id: str


class SignPartsRequest(_SignPartsRequestRequired, total=False):
    """Request for part upload URLs."""


class _SignPartsResponseRequired(TypedDict):
    object_name: str
    parts: List['SignedPartBody']
    upload_id: str


class SignPartsResponse(_SignPartsResponseRequired, total=False):
    """Part upload URLs. Each PUT answers the part's `ETag` header, which completion needs."""


class _SignedPartBodyRequired(TypedDict):
    expires_at: str
    headers: Dict[str, str]
    method: str
    part_number: int
    upload_url: str


class SignedPartBody(_SignedPartBodyRequired, total=False):
    """A URL to upload one part to."""

Stage = Literal['draft', 'main']


class _StartMultipartRequestRequired(TypedDict):
    content_length: int
    object_name: str


class StartMultipartRequest(_StartMultipartRequestRequired, total=False):
    """Request to start a multipart upload."""

    checksum_sha256: Optional[str]
    content_type: Optional[str]
    part_size: Optional[int]


class _StartMultipartResponseRequired(TypedDict):
    object_name: str
    part_size: int
    upload_id: str


class StartMultipartResponse(_StartMultipartResponseRequired, total=False):
    """A started multipart upload."""

    part_count: Optional[int]


class _StatusResponseRequired(TypedDict):
    status: str


class StatusResponse(_StatusResponseRequired, total=False):
    """Probe answer."""

    store: Union[None, 'StoreProbeStatus']


class _StoreProbeStatusRequired(TypedDict):
    probe: str
    promises: Dict[str, str]


class StoreProbeStatus(_StoreProbeStatusRequired, total=False):
    """What the store probe found of the promises DraftStore relies on the store to keep (`draftstore doctor` checks
them on demand)."""


class _SuccessResponseRequired(TypedDict):
    success: bool


class SuccessResponse(_SuccessResponseRequired, total=False):
    """Success without further data."""


class _UploadRequestRequired(TypedDict):
    object_name: str
    upload_id: str


class UploadRequest(_UploadRequestRequired, total=False):
    """Names an upload."""


class _UploadUrlRequestRequired(TypedDict):
    object_name: str


class UploadUrlRequest(_UploadUrlRequestRequired, total=False):
    """Request for an upload URL."""

    checksum_sha256: Optional[str]
    content_length: Optional[int]
    content_type: Optional[str]


class _UploadUrlResponseRequired(TypedDict):
    expires_at: str
    headers: Dict[str, str]
    method: str
    object_name: str
    upload_url: str


class UploadUrlResponse(_UploadUrlResponseRequired, total=False):
    """A URL to upload a draft to."""


class _UploadedPartBodyRequired(TypedDict):
    etag: str
    last_modified: str
    part_number: int
    size: int


class UploadedPartBody(_UploadedPartBodyRequired, total=False):
    """A part the store holds."""

    checksum_sha256: Optional[str]

UppySignRequest = Dict[str, Any]


class _UppySignResponseRequired(TypedDict):
    url: str


class UppySignResponse(_UppySignResponseRequired, total=False):
    """The presigned request, as Uppy expects it."""

    headers: Dict[str, str]


class _VariantBodyRequired(TypedDict):
    content_type: str
    height: int
    name: str
    size: int
    width: int


class VariantBody(_VariantBodyRequired, total=False):
    """One variant of an image, made at confirm and stored beside it."""

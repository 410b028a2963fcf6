//! The request and response bodies.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use crate::schema;
use crate::{Metadata, integer};

/// Which of the two buckets an object is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Uploaded, not yet confirmed.
    Draft,
    /// Confirmed.
    Main,
}

impl Stage {
    /// The stage as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Main => "main",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "draft" => Ok(Self::Draft),
            "main" => Ok(Self::Main),
            other => Err(format!("unknown stage {other:?}: expected draft or main")),
        }
    }
}

/// Stable error codes clients branch on: the original's `ErrorType` values without their prefix, plus
/// `INVALID_REQUEST` for requests that are not the expected JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorType {
    BucketNotFound,
    ObjectNotFound,
    AccessDenied,
    NetworkError,
    InvalidObjectName,
    InternalError,
    InvalidRequest,
    UploadTooLarge,
    UnsupportedContentType,
    UploadRejected,
    ObjectAlreadyExists,
    DraftChanged,
    UploadNotFound,
    InvalidParts,
    RateLimited,
    InsufficientStorage,
    HookUnavailable,
    RequestTimeout,
    ServerBusy,
    ContentTypeMismatch,
    ImageTooLarge,
    UploadInfected,
    ScannerUnavailable,
    IdempotencyKeyReused,
    VariantNotFound,
    ImageUnreadable,
}

impl ErrorType {
    /// Every code, for parsing.
    pub const ALL: [ErrorType; 26] = [
        Self::BucketNotFound,
        Self::ObjectNotFound,
        Self::AccessDenied,
        Self::NetworkError,
        Self::InvalidObjectName,
        Self::InternalError,
        Self::InvalidRequest,
        Self::UploadTooLarge,
        Self::UnsupportedContentType,
        Self::UploadRejected,
        Self::ObjectAlreadyExists,
        Self::DraftChanged,
        Self::UploadNotFound,
        Self::InvalidParts,
        Self::RateLimited,
        Self::InsufficientStorage,
        Self::HookUnavailable,
        Self::RequestTimeout,
        Self::ServerBusy,
        Self::ContentTypeMismatch,
        Self::ImageTooLarge,
        Self::UploadInfected,
        Self::ScannerUnavailable,
        Self::IdempotencyKeyReused,
        Self::VariantNotFound,
        Self::ImageUnreadable,
    ];

    /// The code as it appears in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BucketNotFound => "BUCKET_NOT_FOUND",
            Self::ObjectNotFound => "OBJECT_NOT_FOUND",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::NetworkError => "NETWORK_ERROR",
            Self::InvalidObjectName => "INVALID_OBJECT_NAME",
            Self::InternalError => "INTERNAL_ERROR",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::UploadTooLarge => "UPLOAD_TOO_LARGE",
            Self::UnsupportedContentType => "UNSUPPORTED_CONTENT_TYPE",
            Self::UploadRejected => "UPLOAD_REJECTED",
            Self::ObjectAlreadyExists => "OBJECT_ALREADY_EXISTS",
            Self::DraftChanged => "DRAFT_CHANGED",
            Self::UploadNotFound => "UPLOAD_NOT_FOUND",
            Self::InvalidParts => "INVALID_PARTS",
            Self::RateLimited => "RATE_LIMITED",
            Self::InsufficientStorage => "INSUFFICIENT_STORAGE",
            Self::HookUnavailable => "HOOK_UNAVAILABLE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::ServerBusy => "SERVER_BUSY",
            Self::ContentTypeMismatch => "CONTENT_TYPE_MISMATCH",
            Self::ImageTooLarge => "IMAGE_TOO_LARGE",
            Self::UploadInfected => "UPLOAD_INFECTED",
            Self::ScannerUnavailable => "SCANNER_UNAVAILABLE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::VariantNotFound => "VARIANT_NOT_FOUND",
            Self::ImageUnreadable => "IMAGE_UNREADABLE",
        }
    }
}

impl FromStr for ErrorType {
    type Err = ();

    /// A code this version knows; newer servers may answer others.
    fn from_str(code: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|t| t.as_str() == code).ok_or(())
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    pub error_type: ErrorType,
    /// A sentence for people; never holds internal details.
    pub error_message: String,
}

/// Request for an upload URL.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadUrlRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    /// Media type the upload will have; signed into the URL, so the upload must send exactly this Content-Type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::content_type))]
    pub content_type: Option<String>,
    /// Exact size of the upload in bytes; at most MAX_UPLOAD_SIZE, and signed into the URL.
    #[serde(default, deserialize_with = "integer::optional", skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// Base64 SHA-256 of the upload; signed into the URL as `x-amz-checksum-sha256`, which the store verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::checksum_sha256))]
    pub checksum_sha256: Option<String>,
}

/// A URL to upload a draft to.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadUrlResponse {
    pub upload_url: String,
    pub object_name: String,
    /// RFC 3339, UTC.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers the upload must send exactly as given.
    pub headers: BTreeMap<String, String>,
}

/// Request for a download URL.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DownloadUrlRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    /// Which bucket to read; without it, the draft when one exists, else the confirmed object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The name a browser saves the download under (`Content-Disposition: attachment; filename*=UTF-8''…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::filename))]
    pub filename: Option<String>,
    /// `inline` to let a browser show the object (refused for types that can carry active content: HTML, SVG, XML,
    /// scripts), `attachment` to have it saved. Default: `attachment` with a `filename` or for active content,
    /// the store's own answer otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// One of the object's image variants (IMAGE_VARIANTS) instead of the object itself: a confirmed object's
    /// only; 404 `VARIANT_NOT_FOUND` when the object has no variant of that name, and for `stage: draft` (variants
    /// are made at confirm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9-]{1,32}$", max_length = 32))]
    pub variant: Option<String>,
}

/// How a browser treats a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Shown in the page, where the browser can.
    Inline,
    /// Saved as a file.
    Attachment,
}

/// A URL to download an object from.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DownloadUrlResponse {
    pub download_url: String,
    pub object_name: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
    pub stage: Stage,
}

/// Request to confirm a draft.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmUploadRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    /// `false` refuses to replace an existing confirmed object (409 `OBJECT_ALREADY_EXISTS`). Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
    /// The confirmed object's name, in the caller's namespace; default: the draft's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::final_name))]
    pub final_name: Option<String>,
    /// Stored with the confirmed object and returned by `stat-object` and `list-objects`: at most 6 entries, names
    /// of lowercase letters, digits and `-`, values within the limits of [`METADATA_VALUE_FORMS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::metadata))]
    pub metadata: Option<Metadata>,
}

/// A confirmed upload.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmUploadResponse {
    pub success: bool,
    /// The confirmed object's name: `final_name` when given, else the draft's.
    pub object_name: String,
    /// `<BUCKET_NAME>/<object_name>` (with the tenant prefix, as the store keeps it).
    pub final_location: String,
    /// What the checks found in the draft's bytes; absent when the draft had already been confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentReport>,
    /// The image as promoted: its size as shown, its placeholder, its variants. Absent for other files, and when
    /// the draft had already been confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageReport>,
    /// The promoted object's size in bytes, given only when it differs from the upload's: IMAGE_METADATA stripped
    /// metadata from the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The promoted object's base64 SHA-256, given only when its bytes differ from the upload's (see `size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What confirm made of an image: its size as shown, a placeholder to paint before it loads, and its variants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageReport {
    /// Width in pixels as shown, after the EXIF orientation.
    pub width: u32,
    /// Height in pixels as shown, after the EXIF orientation.
    pub height: u32,
    /// The image's ThumbHash, base64: a blurred preview of 100 × 100 pixels or less, with its aspect ratio.
    pub placeholder: String,
    /// Every variant IMAGE_VARIANTS declared, in its order.
    pub variants: Vec<VariantBody>,
}

/// One variant of an image, made at confirm and stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariantBody {
    /// The name IMAGE_VARIANTS gave it: what `download-url` takes as `variant`.
    pub name: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    /// Its size in bytes.
    pub size: u64,
}

/// What DraftStore found in a draft's bytes at confirm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContentReport {
    /// The type read from the first bytes; absent when they match no known format (plain text, CSV, JSON, an
    /// unknown binary), where the declared type stands, and with CONTENT_CHECKS=off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_type: Option<String>,
    /// An image's width in pixels, read from its header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// An image's height in pixels, read from its header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The virus scan, when CLAMD_ADDRESS is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanReport>,
}

/// The virus scan of a promoted draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanReport {
    /// `clean`, or `skipped` for a draft above SCAN_MAX_SIZE promoted unscanned (SCAN_OVERSIZE=skip).
    pub result: ScanResult,
    /// The scanner's version and signature database (`ClamAV 1.4.2/27000/…`); absent when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// How a promoted draft's scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ScanResult {
    Clean,
    Skipped,
}

/// Request to create the buckets; it has no fields.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DraftBucketRequest {}

/// Success without further data.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuccessResponse {
    pub success: bool,
}

/// Probe answer.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusResponse {
    /// `ok` (liveness) or `ready` (readiness).
    pub status: String,
    /// Readiness only: what the store probe found at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreProbeStatus>,
}

/// What the store probe found of the promises DraftStore relies on the store to keep (`draftstore doctor` checks
/// them on demand).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreProbeStatus {
    /// `passed` (every promise holds), `warned` (a lesser one is broken), `accepted` (a critical one is broken and
    /// STORE_PROBE=warn let the server start), `refused` (a critical one is broken: not ready), `failed` (the probe
    /// could not run), `pending` (not run yet) or `off` (STORE_PROBE=off).
    pub probe: String,
    /// Each promise checked, by name, with what became of it: `held`, `broken`, `neutralised` (broken by the store,
    /// made harmless by split signing credentials), `not-applicable` or `unknown`.
    pub promises: BTreeMap<String, String>,
}

/// Request to start a multipart upload.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartMultipartRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    /// Media type of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::content_type))]
    pub content_type: Option<String>,
    /// Total size in bytes, at most MAX_UPLOAD_SIZE (up to 5 TiB); each part URL is signed for its exact length,
    /// and the object is checked again at confirm. Required unless MAX_UPLOAD_SIZE is 5 TiB.
    #[serde(default, deserialize_with = "integer::optional", skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// Base64 SHA-256 of the whole object; verified at completion on the local backend. S3 cannot verify a whole
    /// multipart object: there, give each part's checksum when signing parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::checksum_sha256))]
    pub checksum_sha256: Option<String>,
    /// Part size to use, 5 MiB to 5 GiB and at most MAX_UPLOAD_SIZE [default: MULTIPART_PART_SIZE, at most
    /// MAX_UPLOAD_SIZE].
    #[serde(default, deserialize_with = "integer::optional", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 5242880, maximum = 5368709120.0))]
    pub part_size: Option<u64>,
}

/// A started multipart upload.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartMultipartResponse {
    pub upload_id: String,
    pub object_name: String,
    /// Every part but the last must have exactly this size (at least 5 MiB).
    pub part_size: u64,
    /// How many parts the declared size makes; absent without `content_length`.
    pub part_count: Option<u32>,
}

/// One part to sign.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PartToSign {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    #[serde(deserialize_with = "integer::required")]
    pub part_number: u64,
    /// Base64 SHA-256 of the part; signed in as `x-amz-checksum-sha256`, which the store verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::checksum_sha256))]
    pub checksum_sha256: Option<String>,
}

/// Request for part upload URLs.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignPartsRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::upload_id))]
    pub upload_id: String,
    /// 1 to 1000 parts.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub parts: Vec<PartToSign>,
}

/// A URL to upload one part to.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedPartBody {
    pub part_number: u32,
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers the upload must send exactly as given.
    pub headers: BTreeMap<String, String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
}

/// Part upload URLs. Each PUT answers the part's `ETag` header, which completion needs.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignPartsResponse {
    pub upload_id: String,
    pub object_name: String,
    pub parts: Vec<SignedPartBody>,
}

/// Names an upload.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::upload_id))]
    pub upload_id: String,
}

/// A part the store holds.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadedPartBody {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    /// The SHA-256 the store verified, when the part was uploaded with one.
    pub checksum_sha256: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_modified: String,
}

/// The parts uploaded so far, by part number.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListPartsResponse {
    pub upload_id: String,
    pub object_name: String,
    pub parts: Vec<UploadedPartBody>,
}

/// One part of the object, as its PUT answered.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PartToComplete {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    #[serde(deserialize_with = "integer::required")]
    pub part_number: u64,
    /// The `ETag` header the part's upload answered, quotes or not.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub etag: String,
}

/// Request to complete an upload.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteMultipartRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::upload_id))]
    pub upload_id: String,
    /// Every part of the object, in ascending part number.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 10000))]
    pub parts: Vec<PartToComplete>,
}

/// A completed upload: the draft exists.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteMultipartResponse {
    pub success: bool,
    pub object_name: String,
    /// Size of the draft in bytes.
    pub size: u64,
}

/// Request for a page of the caller's drafts.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListDraftsRequest {
    /// Only drafts whose names start with this, for example `photos/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::prefix))]
    pub prefix: Option<String>,
    /// Drafts per page, 1 to 1000 [default: 100].
    #[serde(default, deserialize_with = "integer::optional", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub page_size: Option<u64>,
    /// `next_page_token` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
}

/// A draft.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftBody {
    pub object_name: String,
    pub size: u64,
    pub content_type: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub uploaded_at: String,
    /// When the cleaner may remove it (uploaded_at + OBJECT_LIFETIME).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
}

/// A page of drafts, in name order.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListDraftsResponse {
    pub drafts: Vec<DraftBody>,
    /// Present when more drafts follow: give it as `page_token` for the next page.
    pub next_page_token: Option<String>,
}

/// Names a draft.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DiscardDraftRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
}

/// Request to list the caller's confirmed objects.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListObjectsRequest {
    /// Only objects whose names start with this, for example `photos/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::prefix))]
    pub prefix: Option<String>,
    /// Objects per page, 1 to 1000 [default: 100].
    #[serde(default, deserialize_with = "integer::optional", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub page_size: Option<u64>,
    /// `next_page_token` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
}

/// A confirmed object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectBody {
    pub object_name: String,
    pub size: u64,
    pub content_type: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub confirmed_at: String,
    /// Base64 SHA-256 of the bytes, when one was declared at upload (and verified).
    pub sha256: Option<String>,
    /// What confirm stored with it.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::stored_metadata))]
    pub metadata: Metadata,
    /// What confirm made of it when it is an image: its size as shown, placeholder and variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageReport>,
}

/// A page of confirmed objects, in the store's listing order (name order on S3 and the local backend).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListObjectsResponse {
    pub objects: Vec<ObjectBody>,
    /// Present when more objects follow: give it as `page_token` for the next page.
    pub next_page_token: Option<String>,
}

/// Names a confirmed object.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ObjectRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
}

/// One draft of a set to confirm.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetDraft {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::object_name))]
    pub object_name: String,
    /// The confirmed object's name; default: the draft's own. It must be free: a set never replaces an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::final_name))]
    pub final_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::metadata))]
    pub metadata: Option<Metadata>,
}

/// Request to confirm drafts all together or not at all.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmSetRequest {
    /// Names this set: the same key again answers the recorded outcome; with other drafts it is 409
    /// `IDEMPOTENCY_KEY_REUSED`. Kept OBJECT_LIFETIME.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,128}$", min_length = 1, max_length = 128))]
    pub idempotency_key: String,
    /// 1 to 100 drafts, each named once, each final name once.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub drafts: Vec<SetDraft>,
}

/// A set confirmed: every draft promoted.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmSetResponse {
    pub success: bool,
    /// The set's id, also in each object's `draft.confirmed` event and in `set.confirmed`.
    pub set_id: String,
    /// The confirmed objects, in the order of the request.
    pub objects: Vec<ConfirmUploadResponse>,
}

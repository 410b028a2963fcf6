//! The request and response bodies of DraftStore's REST API under `/api/v1`, shared by the server (which parses
//! requests and writes responses with them) and the client (which does the reverse), so that neither re-declares
//! the other's fields. Requests refuse unknown fields; optional request fields are left out when `None`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A character an object name may hold anywhere: not a control character, not `\\`, not `/`.
macro_rules! name_char {
    () => {
        r"[^\x00-\x1f\x7f-\x9f\\/]"
    };
}

/// One segment of an object name: not empty, not `.` or `..`.
macro_rules! segment {
    () => {
        concat!(
            r"(?:[^.\x00-\x1f\x7f-\x9f\\/]",
            name_char!(),
            r"*|\.[^.\x00-\x1f\x7f-\x9f\\/]",
            name_char!(),
            r"*|\.\.",
            name_char!(),
            "+)"
        )
    };
}

/// The rules of an object name as an ECMA-262 regular expression: segments between single `/`, none empty and none
/// `.` or `..`, no control character and no backslash. Names are also 1 to [`MAX_OBJECT_NAME_BYTES`] bytes of UTF-8.
pub const OBJECT_NAME_PATTERN: &str = concat!("^", segment!(), "(?:/", segment!(), ")*$");

/// The rules of a `list-drafts` prefix: empty, or the start of a valid object name (whole segments, each followed
/// by `/`, then the start of one more).
pub const PREFIX_PATTERN: &str = concat!("^(?:", segment!(), "/)*", name_char!(), "*$");

/// Longest object name, in bytes of UTF-8 (the S3 limit).
pub const MAX_OBJECT_NAME_BYTES: usize = 1024;

/// A multipart upload id: letters, digits and `-._~`, starting with a letter or digit.
pub const UPLOAD_ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._~-]*$";

/// Longest multipart upload id.
pub const MAX_UPLOAD_ID_LEN: usize = 1024;

/// An ETag without its quotes or weak prefix, so that `"abc"`, `W/"abc"` and `abc` compare equal (clients and
/// stores differ in quoting): how the API compares the ETags of parts.
pub fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

/// A SHA-256 digest in standard base64: 43 characters, the last one with its two unused bits zero, and one `=`.
pub const CHECKSUM_SHA256_PATTERN: &str = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$";

/// A media type: `type/subtype` of RFC 9110 token characters, then any parameters after a `;`, all printable ASCII
/// (no tab), without a blank at the end.
pub const CONTENT_TYPE_PATTERN: &str =
    "^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?: *;(?:[\\x20-\\x7e]*[\\x21-\\x7e])?)?$";

/// Longest media type.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// The start of DraftStore's own metadata names.
pub const RESERVED_METADATA_PREFIX: &str = "draftstore-";

/// The rule of a metadata name as a regular expression: lowercase letters, digits and `-`, starting with a letter
/// or digit, 1 to 64 characters, not starting with [`RESERVED_METADATA_PREFIX`]. Spelt out without look-ahead,
/// which not every engine has: a proper start of the prefix, or the prefix's first characters then another.
pub fn metadata_name_pattern() -> String {
    let reserved = RESERVED_METADATA_PREFIX;
    let class_without = |excluded: char, first: bool| {
        let mut class = String::from("[");
        let letters: Vec<char> = ('a'..='z').filter(|&c| c != excluded).collect();
        for run in letters.chunk_by(|a, b| *b as u32 == *a as u32 + 1) {
            class.push_str(&format!("{}-{}", run[0], run[run.len() - 1]));
        }
        class.push_str("0-9");
        if !first && excluded != '-' {
            class.push('-');
        }
        class.push(']');
        class
    };
    let mut alternatives: Vec<String> = (1..reserved.len()).map(|n| reserved[..n].to_owned()).collect();
    for (i, c) in reserved.char_indices() {
        alternatives.push(format!("{}{}[a-z0-9-]{{0,{}}}", &reserved[..i], class_without(c, i == 0), 63 - i));
    }
    format!("^(?:{})$", alternatives.join("|"))
}

/// A metadata value: any text without control characters.
pub const METADATA_VALUE_PATTERN: &str = "^[^\\x00-\\x1f\\x7f]*$";

/// Most bytes of metadata on one object, names and values together as S3 keeps them: printable ASCII one byte a
/// character, any other byte (and `%`) three, percent-encoded. S3 keeps 2 KiB of user metadata per object;
/// DraftStore uses the other 128 bytes (the checksum, the set an object was confirmed in).
pub const MAX_METADATA_BYTES: usize = 1920;

/// Most metadata entries on one object.
pub const MAX_METADATA_ENTRIES: usize = 6;

/// Longest metadata name, in characters (ASCII: as many bytes).
pub const MAX_METADATA_NAME: usize = 64;

/// Most bytes a metadata value takes as S3 keeps it, whatever its characters: entries of the longest name and
/// such a value, as many as [`MAX_METADATA_ENTRIES`], make exactly [`MAX_METADATA_BYTES`].
pub const MAX_METADATA_VALUE_BYTES: usize = MAX_METADATA_BYTES / MAX_METADATA_ENTRIES - MAX_METADATA_NAME;

/// The three forms a metadata value takes, each a pattern and a length in characters that a schema can state, and
/// each within [`MAX_METADATA_VALUE_BYTES`] as S3 keeps it: printable ASCII but `%` (one byte a character), text
/// below U+0800 (at most six: two bytes of UTF-8, percent-encoded), any text (at most twelve). A value is valid
/// when it fits one of them; no value outside them is.
pub const METADATA_VALUE_FORMS: [(&str, usize); 3] = [
    ("^[\\x20-\\x24\\x26-\\x7e]*$", MAX_METADATA_VALUE_BYTES),
    ("^[\\x20-\\x7e\\x80-\\u07ff]*$", MAX_METADATA_VALUE_BYTES / 6),
    (METADATA_VALUE_PATTERN, MAX_METADATA_VALUE_BYTES / 12),
];

/// An idempotency key: 1 to 128 letters, digits, `-` and `_` (a UUID fits).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[A-Za-z0-9_-]{1,128}$";

/// Most drafts in one set.
pub const MAX_SET_DRAFTS: usize = 100;

/// A file name to download an object under: 1 to 255 characters, no control character, `/` or `\\`.
pub const FILENAME_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f/\\\\]{1,255}$";

/// User metadata of a confirmed object: names to values.
pub type Metadata = BTreeMap<String, String>;

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
}

impl ErrorType {
    /// Every code, for parsing.
    pub const ALL: [ErrorType; 24] = [
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

/// Integers as JSON Schema defines them: a number with no fractional part, so `117.0` is 117 as `117` is. For
/// `#[serde(deserialize_with)]`.
pub mod integer {
    use serde::de::{self, Deserializer, Visitor};

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
            u64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<u64, E> {
            // 2^64 as f64; every whole f64 below it is a u64.
            if value.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&value) {
                Ok(value as u64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(value), &self))
            }
        }
    }

    /// A required integer.
    pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(Whole)
    }

    /// An optional one; `null` is `None`.
    pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrapped(#[serde(deserialize_with = "required")] u64);
        Ok(<Option<Wrapped> as serde::Deserialize>::deserialize(deserializer)?.map(|Wrapped(n)| n))
    }
}

/// The OpenAPI schemas of the fields whose rules the types alone do not say.
#[cfg(feature = "openapi")]
pub mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::{Object, RefOr, Schema};

    use super::*;

    fn string(nullable: bool) -> ObjectBuilder {
        let types = if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { Type::String.into() };
        ObjectBuilder::new().schema_type(types)
    }

    fn done(object: ObjectBuilder) -> RefOr<Schema> {
        RefOr::T(Schema::Object(Object::from(object)))
    }

    /// An object name.
    pub fn object_name() -> RefOr<Schema> {
        done(
            string(false)
                .description(Some(format!(
                    "Name of the object, for example `avatars/42.jpg`: 1 to {MAX_OBJECT_NAME_BYTES} bytes of UTF-8 \
                     with the tenant prefix `<tenant>/` (characters outside ASCII take 2 to 4), segments between single `/`, none `.` or `..`, no \
                     control character, no backslash."
                )))
                .min_length(Some(1))
                .max_length(Some(MAX_OBJECT_NAME_BYTES))
                .pattern(Some(OBJECT_NAME_PATTERN)),
        )
    }

    /// A multipart upload id.
    pub fn upload_id() -> RefOr<Schema> {
        done(
            string(false)
                .description(Some("The `upload_id` that `multipart/start` answered."))
                .min_length(Some(1))
                .max_length(Some(MAX_UPLOAD_ID_LEN))
                .pattern(Some(UPLOAD_ID_PATTERN)),
        )
    }

    /// An optional SHA-256.
    pub fn checksum_sha256() -> RefOr<Schema> {
        done(
            string(true)
                .description(Some(
                    "Base64 SHA-256 of the bytes; signed into the URL as `x-amz-checksum-sha256`, which the store \
                     verifies.",
                ))
                .min_length(Some(44))
                .max_length(Some(44))
                .pattern(Some(CHECKSUM_SHA256_PATTERN)),
        )
    }

    /// An optional media type.
    pub fn content_type() -> RefOr<Schema> {
        done(
            string(true)
                .description(Some(
                    "Media type of the object, signed into the URL, so the upload must send exactly this \
                     Content-Type [default: application/octet-stream]; 415 outside ALLOWED_CONTENT_TYPES.",
                ))
                .min_length(Some(1))
                .max_length(Some(MAX_CONTENT_TYPE_LEN))
                .pattern(Some(CONTENT_TYPE_PATTERN)),
        )
    }

    /// An optional name prefix.
    /// A confirmed object's name, optional.
    pub fn final_name() -> RefOr<Schema> {
        done(
            string(true)
                .description(Some("The confirmed object's name; the same rules as `object_name`."))
                .min_length(Some(1))
                .max_length(Some(MAX_OBJECT_NAME_BYTES))
                .pattern(Some(OBJECT_NAME_PATTERN)),
        )
    }

    /// A download's file name, optional.
    pub fn filename() -> RefOr<Schema> {
        done(
            string(true)
                .description(Some("A file name: 1 to 255 characters, no control character, `/` or `\\`."))
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some(FILENAME_PATTERN)),
        )
    }

    /// The metadata an object is stored with.
    pub fn stored_metadata() -> RefOr<Schema> {
        use utoipa::openapi::schema::AdditionalProperties;
        done(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("What confirm stored with the object: names to values."))
                .additional_properties(Some(AdditionalProperties::RefOr(done(string(false))))),
        )
    }

    /// User metadata, optional: at most [`MAX_METADATA_ENTRIES`] entries, each name and value within limits the
    /// schema states, so that any map it allows fits in [`MAX_METADATA_BYTES`] and the server takes it.
    pub fn metadata() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, AnyOfBuilder};
        let mut value = AnyOfBuilder::new();
        for (pattern, max) in METADATA_VALUE_FORMS {
            value = value.item(done(string(false).max_length(Some(max)).pattern(Some(pattern))));
        }
        let [ascii, narrow, any] = METADATA_VALUE_FORMS.map(|(_, max)| max);
        let types = SchemaType::from_iter([Type::Object, Type::Null]);
        let mut object = ObjectBuilder::new()
            .schema_type(types)
            .description(Some(format!(
                "At most {MAX_METADATA_ENTRIES} entries. Names: lowercase letters, digits and `-`, 1 to \
                 {MAX_METADATA_NAME}, not starting with `draftstore-`. Values: text without control characters, up to \
                 {ascii} characters when all are printable ASCII other than `%`, up to {narrow} when all are below \
                 U+0800, up to {any} otherwise (so that {MAX_METADATA_ENTRIES} entries always fit the \
                 {MAX_METADATA_BYTES} bytes S3 keeps for them, where a byte outside printable ASCII, or `%`, counts \
                 three)."
            )))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::AnyOf(value.build())))))
            .property_names(Some(
                string(false).max_length(Some(MAX_METADATA_NAME)).pattern(Some(metadata_name_pattern())),
            ))
            .build();
        object.max_properties = Some(MAX_METADATA_ENTRIES);
        RefOr::T(Schema::Object(object))
    }

    pub fn prefix() -> RefOr<Schema> {
        done(
            string(true)
                .description(Some("Only names that start with this, for example `photos/`."))
                .max_length(Some(MAX_OBJECT_NAME_BYTES - 1))
                .pattern(Some(PREFIX_PATTERN)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_parses_back() {
        for error_type in ErrorType::ALL {
            assert_eq!(error_type.as_str().parse(), Ok(error_type));
            let json = serde_json::to_value(error_type).expect("serializes");
            assert_eq!(json, serde_json::json!(error_type.as_str()));
        }
        assert_eq!("SOMETHING_NEW".parse::<ErrorType>(), Err(()));
    }

    #[test]
    fn requests_leave_out_what_is_not_set() {
        let request = UploadUrlRequest { object_name: "a.txt".into(), ..Default::default() };
        assert_eq!(serde_json::to_value(&request).expect("json"), serde_json::json!({"object_name": "a.txt"}));
    }
}

//! The request and response bodies of DraftStore's REST API under `/api/v1`, shared by the server (which parses
//! requests and writes responses with them) and the client (which does the reverse), so that neither re-declares
//! the other's fields. Requests refuse unknown fields; optional request fields are left out when `None`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
}

impl ErrorType {
    /// Every code, for parsing.
    pub const ALL: [ErrorType; 16] = [
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
    /// Name of the object, for example `avatars/42.jpg`.
    pub object_name: String,
    /// Media type the upload will have; signed into the URL, so the upload must send exactly this Content-Type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Exact size of the upload in bytes; at most MAX_UPLOAD_SIZE, and signed into the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// Base64 SHA-256 of the upload; signed into the URL as `x-amz-checksum-sha256`, which the store verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    pub object_name: String,
    /// Which bucket to read; without it, the draft when one exists, else the confirmed object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
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
    pub object_name: String,
    /// `false` refuses to replace an existing confirmed object (409 `OBJECT_ALREADY_EXISTS`). Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
}

/// A confirmed upload.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmUploadResponse {
    pub success: bool,
    pub object_name: String,
    /// `<BUCKET_NAME>/<object_name>`.
    pub final_location: String,
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
}

/// Request to start a multipart upload.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartMultipartRequest {
    /// Name of the object, as for `upload-url`.
    pub object_name: String,
    /// Media type of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Total size in bytes, at most MAX_UPLOAD_SIZE (up to 5 TiB); checked again at confirm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// Base64 SHA-256 of the whole object; verified at completion on the local backend. S3 cannot verify a whole
    /// multipart object: there, give each part's checksum when signing parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
    /// Part size to use, 5 MiB to 5 GiB [default: MULTIPART_PART_SIZE].
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    pub part_number: u64,
    /// Base64 SHA-256 of the part; signed in as `x-amz-checksum-sha256`, which the store verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
}

/// Request for part upload URLs.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignPartsRequest {
    pub object_name: String,
    pub upload_id: String,
    /// 1 to 1000 parts.
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
    pub object_name: String,
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
    pub part_number: u64,
    /// The `ETag` header the part's upload answered, quotes or not.
    pub etag: String,
}

/// Request to complete an upload.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteMultipartRequest {
    pub object_name: String,
    pub upload_id: String,
    /// Every part of the object, in ascending part number.
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
    pub prefix: Option<String>,
    /// Drafts per page, 1 to 1000 [default: 100].
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    pub object_name: String,
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

//! The REST API of multipart uploads under `/api/v1/multipart`: start, sign parts, list parts, complete, abort.
//! Fields are parsed here; the workflow is the draft service's.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, State};
use draftstore_storage::CompletedPart;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::AppState;
use super::api::{SuccessResponse, rfc3339};
use super::error::{ApiJson, ErrorBody};
use crate::auth::Caller;
use crate::domain::{parse_checksum, parse_content_type, parse_object_name, parse_part_number, parse_upload_id};
use crate::error::Result;
use crate::service::{MultipartStart, PartRequest};

/// Request to start a multipart upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartMultipartRequest {
    /// Name of the object, as for `upload-url`.
    pub object_name: String,
    /// Media type of the object.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Total size in bytes, at most MAX_UPLOAD_SIZE (up to 5 TiB); checked again at confirm.
    #[serde(default)]
    pub content_length: Option<u64>,
    /// Base64 SHA-256 of the whole object; verified at completion on the local backend. S3 cannot verify a whole
    /// multipart object: there, give each part's checksum when signing parts.
    #[serde(default)]
    pub checksum_sha256: Option<String>,
    /// Part size to use, 5 MiB to 5 GiB [default: MULTIPART_PART_SIZE].
    #[serde(default)]
    #[schema(minimum = 5242880, maximum = 5368709120.0)]
    pub part_size: Option<u64>,
}

/// A started multipart upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartMultipartResponse {
    pub upload_id: String,
    pub object_name: String,
    /// Every part but the last must have exactly this size (at least 5 MiB).
    pub part_size: u64,
    /// How many parts the declared size makes; absent without `content_length`.
    pub part_count: Option<u32>,
}

/// One part to sign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartToSign {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u64,
    /// Base64 SHA-256 of the part; signed in as `x-amz-checksum-sha256`, which the store verifies.
    #[serde(default)]
    pub checksum_sha256: Option<String>,
}

/// Request for part upload URLs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignPartsRequest {
    pub object_name: String,
    pub upload_id: String,
    /// 1 to 1000 parts.
    pub parts: Vec<PartToSign>,
}

/// A URL to upload one part to.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedPartBody {
    pub part_number: u32,
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers the upload must send exactly as given.
    pub headers: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Part upload URLs. Each PUT answers the part's `ETag` header, which completion needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignPartsResponse {
    pub upload_id: String,
    pub object_name: String,
    pub parts: Vec<SignedPartBody>,
}

/// Names an upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    pub object_name: String,
    pub upload_id: String,
}

/// A part the store holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedPartBody {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    /// The SHA-256 the store verified, when the part was uploaded with one.
    pub checksum_sha256: Option<String>,
    #[schema(format = DateTime)]
    pub last_modified: String,
}

/// The parts uploaded so far, by part number.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListPartsResponse {
    pub upload_id: String,
    pub object_name: String,
    pub parts: Vec<UploadedPartBody>,
}

/// One part of the object, as its PUT answered.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartToComplete {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u64,
    /// The `ETag` header the part's upload answered, quotes or not.
    pub etag: String,
}

/// Request to complete an upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteMultipartRequest {
    pub object_name: String,
    pub upload_id: String,
    /// Every part of the object, in ascending part number.
    pub parts: Vec<PartToComplete>,
}

/// A completed upload: the draft exists.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteMultipartResponse {
    pub success: bool,
    pub object_name: String,
    /// Size of the draft in bytes.
    pub size: u64,
}

/// Start a multipart upload of a draft.
#[utoipa::path(post, path = "/api/v1/multipart/start", request_body = StartMultipartRequest, responses(
    (status = 200, body = StartMultipartResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 401, description = "ACCESS_DENIED: missing or invalid credentials", body = ErrorBody),
    (status = 413, description = "UPLOAD_TOO_LARGE: content_length above MAX_UPLOAD_SIZE", body = ErrorBody),
    (status = 415, description = "UNSUPPORTED_CONTENT_TYPE: outside ALLOWED_CONTENT_TYPES", body = ErrorBody),
    (status = 503, description = "NETWORK_ERROR: storage unreachable or too slow", body = ErrorBody),
))]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<StartMultipartRequest>,
) -> Result<Json<StartMultipartResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let start = MultipartStart {
        content_type: parse_content_type(request.content_type.as_deref())?,
        content_length: request.content_length,
        checksum_sha256: parse_checksum(request.checksum_sha256.as_deref())?,
        part_size: request.part_size,
    };
    let started = state.service.start_multipart(&caller, &name, start).await?;
    Ok(Json(StartMultipartResponse {
        upload_id: started.upload_id.to_string(),
        object_name: started.object_name.to_string(),
        part_size: started.part_size,
        part_count: started.part_count,
    }))
}

/// Presigned URLs for a batch of parts.
#[utoipa::path(post, path = "/api/v1/multipart/sign-parts", request_body = SignPartsRequest, responses(
    (status = 200, body = SignPartsResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 401, description = "ACCESS_DENIED: missing or invalid credentials", body = ErrorBody),
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
    (status = 503, description = "NETWORK_ERROR: storage unreachable or too slow", body = ErrorBody),
))]
pub async fn sign_parts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<SignPartsRequest>,
) -> Result<Json<SignPartsResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let upload_id = parse_upload_id(&request.upload_id)?;
    let parts = request
        .parts
        .iter()
        .map(|part| {
            Ok(PartRequest {
                number: parse_part_number(part.part_number)?,
                checksum_sha256: parse_checksum(part.checksum_sha256.as_deref())?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let signed = state.service.sign_parts(&caller, &name, &upload_id, &parts, OffsetDateTime::now_utc()).await?;
    Ok(Json(SignPartsResponse {
        upload_id: upload_id.to_string(),
        object_name: name.to_string(),
        parts: signed
            .into_iter()
            .map(|part| SignedPartBody {
                part_number: part.number,
                method: part.url.method.as_str().to_owned(),
                headers: part.url.headers.into_iter().collect(),
                upload_url: part.url.url,
                expires_at: rfc3339(part.expires_at),
            })
            .collect(),
    }))
}

/// The parts uploaded so far, to resume an upload.
#[utoipa::path(post, path = "/api/v1/multipart/list-parts", request_body = UploadRequest, responses(
    (status = 200, body = ListPartsResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 401, description = "ACCESS_DENIED: missing or invalid credentials", body = ErrorBody),
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
    (status = 503, description = "NETWORK_ERROR: storage unreachable or too slow", body = ErrorBody),
))]
pub async fn list_parts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<UploadRequest>,
) -> Result<Json<ListPartsResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let upload_id = parse_upload_id(&request.upload_id)?;
    let parts = state.service.list_parts(&caller, &name, &upload_id).await?;
    Ok(Json(ListPartsResponse {
        upload_id: upload_id.to_string(),
        object_name: name.to_string(),
        parts: parts
            .into_iter()
            .map(|part| UploadedPartBody {
                part_number: part.number,
                size: part.size,
                etag: part.etag,
                checksum_sha256: part.sha256.map(|c| c.to_string()),
                last_modified: rfc3339(part.last_modified),
            })
            .collect(),
    }))
}

/// Assemble the parts into the draft.
#[utoipa::path(post, path = "/api/v1/multipart/complete", request_body = CompleteMultipartRequest, responses(
    (status = 200, body = CompleteMultipartResponse),
    (status = 400, description = "INVALID_PARTS (the parts are kept), INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 401, description = "ACCESS_DENIED: missing or invalid credentials", body = ErrorBody),
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
    (status = 413, description = "UPLOAD_TOO_LARGE: the parts add up to more than MAX_UPLOAD_SIZE", body = ErrorBody),
    (status = 503, description = "NETWORK_ERROR: storage unreachable or too slow", body = ErrorBody),
))]
pub async fn complete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CompleteMultipartRequest>,
) -> Result<Json<CompleteMultipartResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let upload_id = parse_upload_id(&request.upload_id)?;
    let parts = request
        .parts
        .into_iter()
        .map(|part| Ok(CompletedPart { number: parse_part_number(part.part_number)?, etag: part.etag }))
        .collect::<Result<Vec<_>>>()?;
    let size = state.service.complete_multipart(&caller, &name, &upload_id, &parts).await?;
    Ok(Json(CompleteMultipartResponse { success: true, object_name: name.to_string(), size }))
}

/// End an upload and remove its parts.
#[utoipa::path(post, path = "/api/v1/multipart/abort", request_body = UploadRequest, responses(
    (status = 200, body = SuccessResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 401, description = "ACCESS_DENIED: missing or invalid credentials", body = ErrorBody),
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
    (status = 503, description = "NETWORK_ERROR: storage unreachable or too slow", body = ErrorBody),
))]
pub async fn abort(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<UploadRequest>,
) -> Result<Json<SuccessResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let upload_id = parse_upload_id(&request.upload_id)?;
    state.service.abort_multipart(&caller, &name, &upload_id).await?;
    Ok(Json(SuccessResponse { success: true }))
}

//! The REST API of multipart uploads under `/api/v1/multipart`: start, sign parts, list parts, complete, abort.
//! Fields are parsed here; the workflow is the draft service's.

use axum::Json;
use axum::extract::{Extension, State};
use draftstore_api::{
    CompleteMultipartRequest, CompleteMultipartResponse, ErrorBody, ListPartsResponse, SignPartsRequest,
    SignPartsResponse, SignedPartBody, StartMultipartRequest, StartMultipartResponse, SuccessResponse, UploadRequest,
    UploadedPartBody,
};
use draftstore_storage::CompletedPart;
use time::OffsetDateTime;

use super::AppState;
use super::api::rfc3339;
use super::error::ApiJson;
use crate::auth::Caller;
use crate::domain::{
    parse_checksum, parse_content_type, parse_etag, parse_object_name, parse_part_number, parse_upload_id,
};
use crate::error::Result;
use crate::service::{MultipartStart, PartRequest};

/// Start a multipart upload of a draft.
#[utoipa::path(post, path = "/api/v1/multipart/start", request_body = StartMultipartRequest, responses(
    (status = 200, body = StartMultipartResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST (also no content_length below a 5 TiB \
        MAX_UPLOAD_SIZE, and a part_size above MAX_UPLOAD_SIZE)", body = ErrorBody),
    (status = 413, description = "UPLOAD_TOO_LARGE: content_length above MAX_UPLOAD_SIZE", body = ErrorBody),
    (status = 415, description = "UNSUPPORTED_CONTENT_TYPE: outside ALLOWED_CONTENT_TYPES", body = ErrorBody),
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
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
    (status = 409, description = "INVALID_PARTS: a part past this upload's last (by its declared size and part size, \
        or past the last an upload within MAX_UPLOAD_SIZE can have)", body = ErrorBody),
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
        .map(|part| PartRequest::parse(part.part_number, part.checksum_sha256.as_deref()))
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
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
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
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 409, description = "INVALID_PARTS: the list does not match the parts in the store; they are kept", body = ErrorBody),
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
    (status = 413, description = "UPLOAD_TOO_LARGE: the parts add up to more than MAX_UPLOAD_SIZE; the upload is \
        aborted", body = ErrorBody),
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
        .map(|part| Ok(CompletedPart { number: parse_part_number(part.part_number)?, etag: parse_etag(part.etag)? }))
        .collect::<Result<Vec<_>>>()?;
    let size = state.service.complete_multipart(&caller, &name, &upload_id, &parts).await?;
    Ok(Json(CompleteMultipartResponse { success: true, object_name: name.to_string(), size }))
}

/// End an upload and remove its parts.
#[utoipa::path(post, path = "/api/v1/multipart/abort", request_body = UploadRequest, responses(
    (status = 200, body = SuccessResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 404, description = "UPLOAD_NOT_FOUND: no such upload for this object", body = ErrorBody),
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

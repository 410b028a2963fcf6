//! The REST API under `/api/v1`, with health and readiness probes. Handlers parse every field at the edge, call the
//! draft service, and shape its answer; no workflow rule lives here.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use draftstore_api::{
    ConfirmSetRequest, ConfirmSetResponse, ConfirmUploadRequest, ConfirmUploadResponse, DownloadUrlRequest,
    DownloadUrlResponse, DraftBucketRequest, ErrorBody, StatusResponse, SuccessResponse, UploadUrlRequest,
    UploadUrlResponse,
};
use time::OffsetDateTime;

use super::AppState;
use super::error::ApiJson;
use crate::auth::Caller;
use crate::domain::{
    IdempotencyKey, parse_checksum, parse_content_type, parse_filename, parse_object_name, parse_variant,
};
use crate::error::Result;
use crate::service::{Confirmation, Download, Promotion, SetDraft, Upload};

pub(super) use crate::domain::rfc3339;

/// Issue a presigned URL to upload a draft.
#[utoipa::path(post, path = "/api/v1/upload-url", request_body = UploadUrlRequest, responses(
    (status = 200, body = UploadUrlResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 413, description = "UPLOAD_TOO_LARGE: content_length above MAX_UPLOAD_SIZE", body = ErrorBody),
    (status = 415, description = "UNSUPPORTED_CONTENT_TYPE: outside ALLOWED_CONTENT_TYPES", body = ErrorBody),
))]
pub async fn upload_url(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<UploadUrlRequest>,
) -> Result<Json<UploadUrlResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let upload = Upload {
        content_type: parse_content_type(request.content_type.as_deref())?,
        content_length: request.content_length,
        checksum_sha256: parse_checksum(request.checksum_sha256.as_deref())?,
    };
    let ticket = state.service.upload_url(&caller, &name, upload, OffsetDateTime::now_utc()).await?;
    Ok(Json(UploadUrlResponse {
        headers: ticket.headers(),
        upload_url: ticket.url.url,
        object_name: ticket.object_name.to_string(),
        expires_at: rfc3339(ticket.expires_at),
        method: ticket.url.method.as_str().to_owned(),
    }))
}

/// Issue a presigned URL to download a draft (preview) or a confirmed object.
#[utoipa::path(post, path = "/api/v1/download-url", request_body = DownloadUrlRequest, responses(
    (status = 200, body = DownloadUrlResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST (also `disposition: inline` for a type \
        that can carry active content)", body = ErrorBody),
    (status = 404, description = "OBJECT_NOT_FOUND, BUCKET_NOT_FOUND, or VARIANT_NOT_FOUND: the object has no \
        variant of that name", body = ErrorBody),
))]
pub async fn download_url(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<DownloadUrlRequest>,
) -> Result<Json<DownloadUrlResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let download = Download {
        stage: request.stage,
        filename: parse_filename(request.filename.as_deref())?,
        disposition: request.disposition,
        variant: parse_variant(request.variant.as_deref())?,
    };
    let ticket = state.service.download_url(&caller, &name, &download, OffsetDateTime::now_utc()).await?;
    Ok(Json(DownloadUrlResponse {
        download_url: ticket.url.url,
        object_name: ticket.object_name.to_string(),
        expires_at: rfc3339(ticket.expires_at),
        stage: ticket.stage,
    }))
}

/// Move a draft into the main bucket, under its own name or `final_name`, with `metadata`. Idempotent.
#[utoipa::path(post, path = "/api/v1/confirm-upload", request_body = ConfirmUploadRequest, responses(
    (status = 200, body = ConfirmUploadResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 404, description = "OBJECT_NOT_FOUND: no draft and no confirmed object", body = ErrorBody),
    (status = 409, description = "OBJECT_ALREADY_EXISTS with overwrite false, or DRAFT_CHANGED", body = ErrorBody),
    (status = 422, description = "UPLOAD_REJECTED, CONTENT_TYPE_MISMATCH, IMAGE_TOO_LARGE, \
        IMAGE_UNREADABLE or UPLOAD_INFECTED: the draft failed a check and was deleted", body = ErrorBody),
    (status = 503, description = "SCANNER_UNAVAILABLE, HOOK_UNAVAILABLE, SERVER_BUSY (the image \
        pipeline) or NETWORK_ERROR: no decision; the draft is kept, try again", body = ErrorBody),
))]
pub async fn confirm_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ConfirmUploadRequest>,
) -> Result<Json<ConfirmUploadResponse>> {
    let name = parse_object_name(&request.object_name)?;
    let promotion = Promotion::parse(request.final_name.as_deref(), request.metadata, request.overwrite)?;
    let confirmation = state.service.confirm(&caller, &name, &promotion).await?;
    Ok(Json(confirmed(confirmation)))
}

fn confirmed(confirmation: Confirmation) -> ConfirmUploadResponse {
    ConfirmUploadResponse {
        success: true,
        object_name: confirmation.object_name.to_string(),
        final_location: confirmation.final_location,
        content: confirmation.content,
        image: confirmation.image,
        size: confirmation.rewritten.as_ref().map(|r| r.size),
        sha256: confirmation.rewritten.map(|r| r.sha256.to_string()),
    }
}

/// Confirm drafts all together or not at all. Idempotent by key.
#[utoipa::path(post, path = "/api/v1/confirm-set", request_body = ConfirmSetRequest, responses(
    (status = 200, body = ConfirmSetResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST (a draft or final name given twice)", body = ErrorBody),
    (status = 404, description = "OBJECT_NOT_FOUND: a draft of the set does not exist; nothing was confirmed", body = ErrorBody),
    (status = 409, description = "OBJECT_ALREADY_EXISTS: a final name is taken (a set never replaces an object), \
        DRAFT_CHANGED, or IDEMPOTENCY_KEY_REUSED: the key came with other drafts; nothing was confirmed", body = ErrorBody),
    (status = 422, description = "UPLOAD_REJECTED, CONTENT_TYPE_MISMATCH, IMAGE_TOO_LARGE, \
        IMAGE_UNREADABLE or UPLOAD_INFECTED: a draft failed a check; nothing was confirmed and every draft is kept", body = ErrorBody),
    (status = 503, description = "SCANNER_UNAVAILABLE, HOOK_UNAVAILABLE, SERVER_BUSY (the image \
        pipeline) or NETWORK_ERROR: no decision yet; repeat the request with the same key", body = ErrorBody),
))]
pub async fn confirm_set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ConfirmSetRequest>,
) -> Result<Json<ConfirmSetResponse>> {
    let key = IdempotencyKey::parse(&request.idempotency_key)?;
    let drafts = request
        .drafts
        .into_iter()
        .map(|draft| SetDraft::parse(&draft.object_name, draft.final_name.as_deref(), draft.metadata))
        .collect::<Result<Vec<_>>>()?;
    let set = state.service.confirm_set(&caller, &key, &drafts).await?;
    Ok(Json(ConfirmSetResponse {
        success: true,
        set_id: set.set_id,
        objects: set.objects.into_iter().map(confirmed).collect(),
    }))
}

/// Create the main and draft buckets, and DraftStore's records bucket, if missing. Idempotent. An operator call:
/// with authentication on, only the tenants of ADMIN_TENANTS may make it.
#[utoipa::path(post, path = "/api/v1/draft-bucket", request_body = DraftBucketRequest, responses(
    (status = 200, body = SuccessResponse),
    (status = 400, body = ErrorBody),
    (status = 403, description = "ACCESS_DENIED: the caller's tenant is not in ADMIN_TENANTS", body = ErrorBody),
))]
pub async fn draft_bucket(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(DraftBucketRequest {}): ApiJson<DraftBucketRequest>,
) -> Result<Json<SuccessResponse>> {
    caller.require_operator("draft-bucket")?;
    state.service.create_buckets().await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, body = StatusResponse)))]
pub async fn health() -> Json<StatusResponse> {
    Json(StatusResponse { status: "ok".to_owned(), store: None })
}

/// Readiness: the store answers, both buckets exist and (with STORE_PROBE=enforce) the store probe passed; the answer
/// says what the probe found of each promise.
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, body = StatusResponse),
    (status = 503, body = ErrorBody),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.store_probe.unready() {
        let source = draftstore_storage::Error::Other { message: reason, source: None };
        let error = crate::error::Error::StorageUnavailable { operation: "pass the store probe", source };
        return error.response_with(StatusCode::SERVICE_UNAVAILABLE);
    }
    match state.readiness.check(&state.service).await {
        Ok(()) => Json(StatusResponse { status: "ready".to_owned(), store: Some(state.store_probe.summary()) })
            .into_response(),
        Err(e) => e.response_with(StatusCode::SERVICE_UNAVAILABLE),
    }
}

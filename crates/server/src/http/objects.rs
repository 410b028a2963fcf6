//! The REST API of a caller's confirmed objects: `POST /api/v1/list-objects`, `POST /api/v1/stat-object` and
//! `POST /api/v1/delete-object`.

use axum::Json;
use axum::extract::{Extension, State};
use draftstore_api::{ErrorBody, ListObjectsRequest, ListObjectsResponse, ObjectBody, ObjectRequest, SuccessResponse};

use super::AppState;
use super::api::rfc3339;
use super::error::ApiJson;
use crate::auth::Caller;
use crate::domain::parse_object_name;
use crate::error::Result;
use crate::service::{DEFAULT_PAGE_SIZE, ObjectEntry};

fn body(object: ObjectEntry) -> ObjectBody {
    ObjectBody {
        object_name: object.name.to_string(),
        size: object.size,
        content_type: object.content_type.to_string(),
        confirmed_at: rfc3339(object.confirmed_at),
        sha256: object.sha256.map(|c| c.to_string()),
        metadata: object.metadata,
        image: object.image,
    }
}

/// List the caller's confirmed objects, a page at a time.
#[utoipa::path(post, path = "/api/v1/list-objects", request_body = ListObjectsRequest, responses(
    (status = 200, body = ListObjectsResponse),
    (status = 400, description = "INVALID_REQUEST: a bad prefix, page size or page token", body = ErrorBody),
))]
pub async fn list_objects(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ListObjectsRequest>,
) -> Result<Json<ListObjectsResponse>> {
    let page_size = request.page_size.map_or(DEFAULT_PAGE_SIZE, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let prefix = request.prefix.unwrap_or_default();
    let page = state.service.list_objects(&caller, &prefix, request.page_token.as_deref(), page_size).await?;
    Ok(Json(ListObjectsResponse { objects: page.objects.into_iter().map(body).collect(), next_page_token: page.next }))
}

/// One confirmed object of the caller's: its size, type, checksum and metadata.
#[utoipa::path(post, path = "/api/v1/stat-object", request_body = ObjectRequest, responses(
    (status = 200, body = ObjectBody),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 404, description = "OBJECT_NOT_FOUND: the caller has no such object", body = ErrorBody),
))]
pub async fn stat_object(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ObjectRequest>,
) -> Result<Json<ObjectBody>> {
    let name = parse_object_name(&request.object_name)?;
    Ok(Json(body(state.service.stat_object(&caller, &name).await?)))
}

/// Delete one of the caller's confirmed objects (an `object.deleted` event). An object the caller does not have
/// (never confirmed, already deleted, or another tenant's) is 404, and nothing changes.
#[utoipa::path(post, path = "/api/v1/delete-object", request_body = ObjectRequest, responses(
    (status = 200, body = SuccessResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 404, description = "OBJECT_NOT_FOUND: the caller has no such object", body = ErrorBody),
))]
pub async fn delete_object(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ObjectRequest>,
) -> Result<Json<SuccessResponse>> {
    let name = parse_object_name(&request.object_name)?;
    state.service.delete_object(&caller, &name).await?;
    Ok(Json(SuccessResponse { success: true }))
}

//! The REST API of a caller's drafts: `POST /api/v1/list-drafts` and `POST /api/v1/discard-draft`.

use axum::Json;
use axum::extract::{Extension, State};
use draftstore_api::{
    DiscardDraftRequest, DraftBody, ErrorBody, ListDraftsRequest, ListDraftsResponse, SuccessResponse,
};

use super::AppState;
use super::api::rfc3339;
use super::error::ApiJson;
use crate::auth::Caller;
use crate::domain::parse_object_name;
use crate::error::Result;
use crate::service::DEFAULT_PAGE_SIZE;

/// List the caller's drafts, a page at a time.
#[utoipa::path(post, path = "/api/v1/list-drafts", request_body = ListDraftsRequest, responses(
    (status = 200, body = ListDraftsResponse),
    (status = 400, description = "INVALID_REQUEST: a bad prefix, page size or page token", body = ErrorBody),
))]
pub async fn list_drafts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ListDraftsRequest>,
) -> Result<Json<ListDraftsResponse>> {
    let page_size = request.page_size.map_or(DEFAULT_PAGE_SIZE, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let prefix = request.prefix.unwrap_or_default();
    let page = state.service.list_drafts(&caller, &prefix, request.page_token.as_deref(), page_size).await?;
    Ok(Json(ListDraftsResponse {
        drafts: page
            .drafts
            .into_iter()
            .map(|draft| DraftBody {
                object_name: draft.name.to_string(),
                size: draft.size,
                content_type: draft.content_type.to_string(),
                uploaded_at: rfc3339(draft.uploaded_at),
                expires_at: rfc3339(draft.expires_at),
            })
            .collect(),
        next_page_token: page.next,
    }))
}

/// Discard one of the caller's drafts. A draft the caller does not have (already discarded, confirmed, or another
/// tenant's) is 404, and nothing changes.
#[utoipa::path(post, path = "/api/v1/discard-draft", request_body = DiscardDraftRequest, responses(
    (status = 200, body = SuccessResponse),
    (status = 400, description = "INVALID_OBJECT_NAME or INVALID_REQUEST", body = ErrorBody),
    (status = 404, description = "OBJECT_NOT_FOUND: the caller has no such draft", body = ErrorBody),
))]
pub async fn discard_draft(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<DiscardDraftRequest>,
) -> Result<Json<SuccessResponse>> {
    let name = parse_object_name(&request.object_name)?;
    state.service.discard(&caller, &name).await?;
    Ok(Json(SuccessResponse { success: true }))
}

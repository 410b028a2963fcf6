//! The HTTP side: the REST API, the probes, the OpenAPI document and, on the local backend, the signed URLs.

mod api;
mod blobs;
mod error;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use draftstore_storage::local::{BLOB_ROUTE, LocalStorage};
use utoipa::OpenApi;

pub use api::ApiDoc;
pub use error::ErrorBody;

use crate::service::DraftService;

/// Largest JSON request body; every API request is a few fields.
const API_BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub service: DraftService,
    /// Present when the local backend is in use: DraftStore then serves the signed URLs itself.
    pub local: Option<Arc<LocalStorage>>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let openapi = Arc::new(ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes"));
    let api = Router::new()
        .route("/api/v1/upload-url", post(api::upload_url))
        .route("/api/v1/download-url", post(api::download_url))
        .route("/api/v1/confirm-upload", post(api::confirm_upload))
        .route("/api/v1/draft-bucket", post(api::draft_bucket))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    let mut router = api.route("/health", get(api::health)).route("/ready", get(api::ready)).route(
        "/openapi.json",
        get(move || {
            let openapi = Arc::clone(&openapi);
            async move { ([(header::CONTENT_TYPE, "application/json")], openapi.as_str().to_owned()) }
        }),
    );
    if state.local.is_some() {
        router = router.route(&format!("{BLOB_ROUTE}/{{bucket}}/{{*key}}"), get(blobs::get).put(blobs::put));
    }
    router.fallback(not_found).layer(middleware::from_fn(log_request)).with_state(state)
}

async fn not_found() -> Response {
    let body = ErrorBody {
        success: false,
        error_type: crate::domain::ErrorType::InvalidRequest,
        error_message: "no such route".to_owned(),
    };
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// One log line per request: method, route, status and duration.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    tracing::info!(
        %method,
        route = route.as_deref().unwrap_or("<unmatched>"),
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}

//! The HTTP side: the REST API, the probes, the OpenAPI document and, on the local backend, the signed URLs.

mod api;
mod blobs;
mod drafts;
mod error;
mod layers;
mod multipart;
mod objects;
mod openapi;
mod page;
mod resumable;
mod s3xml;
mod uppy;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use draftstore_storage::local::{BLOB_ROUTE, LocalStorage};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

pub use error::ErrorBody;
pub use openapi::ApiDoc;

use crate::admission::Gate;
use crate::auth::Authenticator;
use crate::service::DraftService;
use crate::telemetry::{self, REQUEST_ID};
use layers::{Admit, Observe};

/// Largest JSON request body: room for the 10,000 parts of a multipart completion, ETags of 128 characters each.
const API_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What every handler can reach: one shared [`Shared`], so that the clone each extractor and layer takes is one
/// reference count, not a copy of every field.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state behind [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub service: DraftService,
    /// Present when the local backend is in use: DraftStore then serves the signed URLs itself.
    pub local: Option<Arc<LocalStorage>>,
    /// The last readiness answer, reused for a few seconds so that probes stay cheap.
    pub readiness: Arc<ReadyCache>,
    /// Checks the credentials of every API request.
    pub auth: Arc<Authenticator>,
    /// Where clients reach this server (PUBLIC_URL).
    pub public_url: url::Url,
    /// What the store probe found, for `/ready`.
    pub store_probe: Arc<crate::probe::ProbeStatus>,
    /// Uploads to local signed URLs received at once, MAX_CONCURRENT_UPLOADS at most.
    pub uploads: Arc<UploadSlots>,
}

/// The uploads to local signed URLs being received (see MAX_CONCURRENT_UPLOADS): each holds a slot until its
/// body is stored or refused, so that the files, memory and disk time of uploads are bounded whatever clients do.
#[derive(Debug)]
pub struct UploadSlots {
    cap: usize,
    open: Arc<tokio::sync::Semaphore>,
}

impl UploadSlots {
    pub fn new(cap: usize) -> Self {
        Self { cap, open: Arc::new(tokio::sync::Semaphore::new(cap)) }
    }

    /// A slot, or 503 `SERVER_BUSY` at once when all are taken: an upload never queues for one.
    pub fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, crate::error::Error> {
        let permit = Arc::clone(&self.open).try_acquire_owned().map_err(|_| {
            metrics::counter!("draftstore_uploads_refused_total").increment(1);
            crate::error::Error::UploadsBusy(self.cap)
        })?;
        Ok(permit)
    }
}

/// Whether the store is ready; the error is shared by every probe that reads the cached answer.
pub type Readiness = Result<(), Arc<crate::error::Error>>;

/// A readiness answer and when it was taken.
#[derive(Debug)]
pub struct ReadyCache {
    ttl: std::time::Duration,
    last: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
}

impl ReadyCache {
    /// Answers are reused for `ttl`; zero checks the store every time.
    pub fn new(ttl: std::time::Duration) -> Self {
        Self { ttl, last: tokio::sync::Mutex::new(None) }
    }

    /// The store's readiness, checked at most once per `ttl`; concurrent probes share one check.
    pub async fn check(&self, service: &DraftService) -> Readiness {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last
            && at.elapsed() < self.ttl
        {
            return answer.clone();
        }
        let answer = service.ready().await.map_err(Arc::new);
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// The whole HTTP application; `gate` admits and observes its requests.
pub fn router(state: AppState, gate: Arc<Gate>) -> Router {
    let openapi =
        Arc::new(serde_json::to_string_pretty(&openapi::document(&state)).expect("the OpenAPI document serializes"));
    let api = Router::new()
        .route("/api/v1/upload-url", post(api::upload_url))
        .route("/api/v1/download-url", post(api::download_url))
        .route("/api/v1/confirm-upload", post(api::confirm_upload))
        .route("/api/v1/draft-bucket", post(api::draft_bucket))
        .route("/api/v1/list-drafts", post(drafts::list_drafts))
        .route("/api/v1/discard-draft", post(drafts::discard_draft))
        .route("/api/v1/confirm-set", post(api::confirm_set))
        .route("/api/v1/list-objects", post(objects::list_objects))
        .route("/api/v1/stat-object", post(objects::stat_object))
        .route("/api/v1/delete-object", post(objects::delete_object))
        .route("/api/v1/multipart/start", post(multipart::start))
        .route("/api/v1/multipart/sign-parts", post(multipart::sign_parts))
        .route("/api/v1/multipart/list-parts", post(multipart::list_parts))
        .route("/api/v1/multipart/complete", post(multipart::complete))
        .route("/api/v1/multipart/abort", post(multipart::abort))
        .route("/api/v1/uppy/sign", post(uppy::sign))
        .route("/api/v1/uppy/complete", post(uppy::complete))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(Admit::layer(Arc::clone(&gate)));
    // Resumable uploads stream their bodies into the store themselves: no body limit of the JSON API's.
    let files = get(resumable::head)
        .head(resumable::head)
        .patch(resumable::patch)
        .delete(resumable::delete)
        .post(resumable::overridden)
        .options(resumable::options);
    let resumable = Router::new()
        .route("/files/", post(resumable::create).options(resumable::options))
        .route("/files", post(resumable::create).options(resumable::options))
        .route("/files/{id}", files)
        .layer(Admit::layer(Arc::clone(&gate)));
    let api = api.merge(resumable);
    let mut router = api
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .route("/metrics", get(render_metrics))
        .route(
            "/openapi.json",
            get(move || {
                let openapi = Arc::clone(&openapi);
                async move { ([(header::CONTENT_TYPE, "application/json")], openapi.as_str().to_owned()) }
            }),
        );
    if state.local.is_some() {
        let blobs = get(blobs::get).put(blobs::put).post(blobs::post).delete(blobs::delete);
        router = router.route(&format!("{BLOB_ROUTE}/{{bucket}}/{{*key}}"), blobs);
    }
    let router = router.fallback(not_found).layer(Observe::layer(gate));
    // CORS outermost: a browser's preflight is answered before authentication, which it never carries.
    let router = match cors(state.service.cors_allowed_origins()) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

/// What a connection on the probe reserve is answered (see [`crate::connections`]): the probes, and to anything
/// else 503 `SERVER_BUSY` with `Retry-After`, so that a saturated server still looks alive and ready.
pub fn reserve_router(state: AppState, gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .fallback(|| async { crate::error::Error::ServerBusy.into_response() })
        .layer(Observe::layer(gate))
        .with_state(state)
}

/// CORS for the origins of CORS_ALLOWED_ORIGINS, on the API and the local backend's signed URLs: any method an
/// upload or the API uses, the headers a client sends (`Authorization`, `Content-Type`, the signed `x-amz-*`), and
/// `ETag` exposed, since uploaders read it from part uploads. Other origins get no CORS headers, so browsers block
/// them. Without any origin configured there is no layer: no request gets CORS headers, nor `Vary: Origin`, since no
/// answer depends on the origin.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    use axum::http::{HeaderName, Method};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()))
    };
    let cors = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE, Method::PATCH])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(
            [header::ETAG, HeaderName::from_static(REQUEST_ID)]
                .into_iter()
                .chain(resumable::EXPOSED_HEADERS.map(HeaderName::from_static))
                .collect::<Vec<_>>(),
        )
        .max_age(std::time::Duration::from_secs(3600));
    Some(cors)
}

async fn not_found() -> Response {
    let body = ErrorBody {
        success: false,
        error_type: crate::domain::ErrorType::InvalidRequest,
        error_message: "no such route".to_owned(),
    };
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn render_metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], telemetry::metrics().render())
}

//! The HTTP side: the REST API, the probes, the OpenAPI document and, on the local backend, the signed URLs.

mod api;
mod blobs;
mod drafts;
mod error;
mod multipart;
mod objects;
mod openapi;
mod page;
mod s3xml;
mod uppy;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use draftstore_storage::local::{BLOB_ROUTE, LocalStorage};
use opentelemetry::KeyValue;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tracing::Instrument;

pub use error::ErrorBody;
pub use openapi::ApiDoc;

use crate::auth::{Authenticator, Caller};
use crate::clients::{ClientAddr, TrustedProxies};
use crate::service::DraftService;

/// The header in which proxies name the client (the standard `Forwarded` is in `http::header`).
const X_FORWARDED_FOR: &str = "x-forwarded-for";
use crate::telemetry;

/// Largest JSON request body: room for the 10,000 parts of a multipart completion, ETags of 128 characters each.
const API_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What every handler can reach: one shared [`Shared`], so that the clone each extractor and middleware takes is one
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
    /// Counts API calls per caller; `None` when RATE_LIMIT=0.
    pub limiter: Option<Arc<crate::ratelimit::RateLimiter>>,
    /// Who may name the client behind a connection (TRUSTED_PROXIES).
    pub proxies: Arc<TrustedProxies>,
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

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
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
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
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
    let router = router.fallback(not_found).layer(middleware::from_fn_with_state(state.clone(), observe));
    // CORS outermost: a browser's preflight is answered before authentication, which it never carries.
    let router = match cors(state.service.cors_allowed_origins()) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

/// What a connection on the probe reserve is answered (see [`crate::connections`]): the probes, and to anything
/// else 503 `SERVER_BUSY` with `Retry-After`, so that a saturated server still looks alive and ready.
pub fn reserve_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .fallback(|| async { crate::error::Error::ServerBusy.into_response() })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
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
        .allow_methods([Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::ETAG, HeaderName::from_static(REQUEST_ID)])
        .max_age(std::time::Duration::from_secs(3600));
    Some(cors)
}

/// Admits API requests whose credentials check out, passing the [`Caller`] on to the handler; the probes, the
/// metrics and the signed URLs do not go through here.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match state.auth.authenticate(authorization) {
        Ok(caller) => {
            if let Some(limiter) = &state.limiter {
                let client = request.extensions().get::<ClientAddr>().map(|client| client.0);
                if let Err(error) = limiter.check(&caller, client, "http") {
                    return error.into_response();
                }
            }
            request.extensions_mut().insert::<Caller>(caller);
            next.run(request).await
        }
        Err(error) => {
            let mut response = error.into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

async fn not_found() -> Response {
    let body = ErrorBody {
        success: false,
        error_type: crate::domain::ErrorType::InvalidRequest,
        error_message: "no such route".to_owned(),
    };
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Label values without an allocation for the common cases.
fn static_method(method: &axum::http::Method) -> std::borrow::Cow<'static, str> {
    match method.as_str() {
        "GET" => "GET".into(),
        "POST" => "POST".into(),
        "PUT" => "PUT".into(),
        "HEAD" => "HEAD".into(),
        other => other.to_owned().into(),
    }
}

fn static_status(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        200 => "200".into(),
        400 => "400".into(),
        403 => "403".into(),
        404 => "404".into(),
        500 => "500".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    }
}

/// The request id header, taken from the request when it carries a sane one and returned in the response.
pub const REQUEST_ID: &str = "x-request-id";

/// Takes a client's request id if it is short printable ASCII, or makes one.
pub(crate) fn request_id_from(given: Option<&str>) -> String {
    given
        .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(telemetry::request_id)
}

/// Every request runs in a span carrying its request id, ends with one log line (route, status, duration), and
/// is counted in the metrics.
async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = static_method(request.method());
    // The route's template, shared with the router (not copied).
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let id = request_id_from(request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()));
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    let client = peer.map(|peer| {
        if state.proxies.is_empty() {
            return ClientAddr(peer);
        }
        let headers = request.headers();
        let values = |name| headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok());
        ClientAddr(state.proxies.client(peer, values(X_FORWARDED_FOR), values(header::FORWARDED.as_str())))
    });
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        client = tracing::field::Empty,
        trace_id = tracing::field::Empty
    );
    let trace = telemetry::Trace::incoming("request", request.headers(), || {
        [
            KeyValue::new("request_id", id.clone()),
            KeyValue::new("http.request.method", opentelemetry::Value::from(method.clone())),
            KeyValue::new("http.route", route.to_owned()),
        ]
        .into_iter()
        .chain(client.as_ref().map(|client| KeyValue::new("client.address", client.0.to_string())))
    });
    if let Some(trace) = &trace {
        span.record("trace_id", tracing::field::display(trace.trace_id()));
    }
    if let Some(client) = client {
        span.record("client", tracing::field::display(client.0));
        request.extensions_mut().insert(client);
    }
    let mut response = telemetry::within(trace.as_ref(), next.run(request).instrument(span.clone())).await;
    let status = response.status().as_u16();
    if let Some(trace) = trace {
        let error = response.status().is_server_error().then(|| format!("answered {status}"));
        trace.end(error, [KeyValue::new("http.response.status_code", i64::from(status))]);
    }
    let elapsed = started.elapsed();
    span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "request"));
    telemetry::HTTP_REQUESTS.record(&[route, &method], &static_status(status), Some(elapsed));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

async fn render_metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], telemetry::metrics().render())
}

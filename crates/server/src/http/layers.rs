//! What every REST request goes through around its handler, as tower services (the gRPC side's are in
//! `grpc::layers`): [`Observe`] runs each request in a span carrying its request id, logs and counts it and returns
//! the id; [`Authenticate`] admits API requests whose credentials check out and counts them against their rate limit,
//! handing the [`Caller`] to the handler in the request's extensions.
//!
//! They are services of their own rather than `axum::middleware::from_fn`, which clones the inner service and boxes
//! it and the middleware's future for every request (2 % of upload-url's rate, measured).

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use opentelemetry::KeyValue;
use tower_layer::{Layer, layer_fn};
use tower_service::Service;
use tracing::Instrument;

use super::{AppState, REQUEST_ID, request_id_from};
use crate::auth::{Caller, Verdict};
use crate::error::Error;
use crate::peer::ClientAddr;
use crate::telemetry;

/// The header in which proxies name the client (the standard `Forwarded` is in `http::header`).
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Admits API requests whose credentials check out, passing the [`Caller`] on to the handler; the probes, the
/// metrics and the signed URLs do not go through here.
#[derive(Clone)]
pub(super) struct Authenticate<S> {
    inner: S,
    state: AppState,
}

impl<S> Authenticate<S> {
    pub(super) fn layer(state: AppState) -> impl Layer<S, Service = Self> + Clone {
        layer_fn(move |inner| Self { inner, state: state.clone() })
    }
}

/// Counts an admitted caller's request against its rate limit.
fn limited(state: &AppState, caller: Caller, request: &Request) -> Result<Caller, Error> {
    if let Some(limiter) = &state.limiter {
        let client = request.extensions().get::<ClientAddr>().map(|client| client.0);
        limiter.check(&caller, client, "http")?;
    }
    Ok(caller)
}

/// The answer that refuses a request; a refused credential's says which scheme to use.
fn refusal(error: Error) -> Response {
    let challenge = matches!(error, Error::Unauthenticated);
    let mut response = error.into_response();
    if challenge {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The future of a request whose token names a key the key set lacks: the set is read again first.
type AfterReload = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Authenticate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Either<S::Future, Ready<Result<Response, Infallible>>>, AfterReload>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match self.state.auth.verdict(authorization) {
            Verdict::Decided(decided) => match decided.and_then(|caller| limited(&self.state, caller, &request)) {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    Either::Left(Either::Left(self.inner.call(request)))
                }
                Err(error) => Either::Left(Either::Right(ready(Ok(refusal(error))))),
            },
            Verdict::UnknownKey => {
                let authorization = authorization.unwrap_or_default().to_owned();
                let state = self.state.clone();
                // The service that was made ready goes with the request; this layer keeps a fresh clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Either::Right(Box::pin(async move {
                    let decided = Arc::clone(&state.auth).after_reload(authorization).await;
                    match decided.and_then(|caller| limited(&state, caller, &request)) {
                        Ok(caller) => {
                            request.extensions_mut().insert(caller);
                            inner.call(request).await
                        }
                        Err(error) => Ok(refusal(error)),
                    }
                }))
            }
        }
    }
}

/// Every request runs in a span carrying its request id, ends with one log line (route, status, duration), and
/// is counted in the metrics.
#[derive(Clone)]
pub(super) struct Observe<S> {
    inner: S,
    state: AppState,
}

impl<S> Observe<S> {
    pub(super) fn layer(state: AppState) -> impl Layer<S, Service = Self> + Clone {
        layer_fn(move |inner| Self { inner, state: state.clone() })
    }
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let method = method_label(request.method());
        // The route's template, shared with the router (not copied).
        let matched = request.extensions().get::<MatchedPath>().cloned();
        let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        let id = request_id_from(request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()));
        let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
        let proxies = &self.state.proxies;
        let client = peer.map(|peer| {
            if proxies.is_empty() {
                return ClientAddr(peer);
            }
            let headers = request.headers();
            let values = |name| headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok());
            ClientAddr(proxies.client(peer, values(X_FORWARDED_FOR), values(header::FORWARDED.as_str())))
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
                KeyValue::new("http.request.method", method),
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
        // The handler's service is called in the span too, so that what it does before its future runs is logged
        // in it.
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            let Ok(mut response) = telemetry::within(trace.as_ref(), call.instrument(span.clone())).await;
            let status = response.status().as_u16();
            if let Some(trace) = trace {
                let error = response.status().is_server_error().then(|| format!("answered {status}"));
                trace.end(error, [KeyValue::new("http.response.status_code", i64::from(status))]);
            }
            let elapsed = started.elapsed();
            span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "request"));
            let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
            telemetry::HTTP_REQUESTS.record(&[route, method], &static_status(status), Some(elapsed));
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            Ok(response)
        })
    }
}

/// The route label of a request no route matched: one label for every path a client may invent.
const UNMATCHED: &str = "unmatched";

/// A request's method as a label, log field and span attribute: one of HTTP's standard methods, or `other` for any
/// method a client invents, so that no label value comes from outside a closed set (an invented method per request
/// would otherwise be a series per request, kept for the life of the process).
fn method_label(method: &Method) -> &'static str {
    // An extension method is never spelled as a standard one: `http` parses those into their own variants.
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "HEAD" => "HEAD",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

fn static_status(status: u16) -> Cow<'static, str> {
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

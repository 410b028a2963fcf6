//! REST as a [`Protocol`] of the admission stack: requests are labelled by their route's template and their method,
//! refused with the JSON error body, and counted by status.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry::KeyValue;
use tracing::Span;

use crate::admission::{self, Protocol};
use crate::error::Error;
use crate::telemetry;

/// The REST API, the probes, the page and the signed URLs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rest;

/// [`admission::Observe`], for REST.
pub(super) type Observe<S> = admission::Observe<Rest, S>;

/// [`admission::Admit`], for REST: the probes, the metrics and the signed URLs do not go through it.
pub(super) type Admit<S> = admission::Admit<Rest, S>;

/// A request's labels: the template of the route it matched, shared with the router (not copied), and its method.
pub(super) struct Route {
    matched: Option<MatchedPath>,
    method: &'static str,
}

impl Route {
    fn path(&self) -> &str {
        self.matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

impl Protocol for Rest {
    const NAME: &'static str = "http";
    const SPAN: &'static str = "request";
    type Body = Body;
    type Route = Route;
    type Outcome = StatusCode;

    fn peer<B>(request: &Request<B>) -> Option<IpAddr> {
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
    }

    fn route<B>(request: &Request<B>) -> Route {
        Route { matched: request.extensions().get::<MatchedPath>().cloned(), method: method_label(request.method()) }
    }

    fn span(id: &str, route: &Route) -> Span {
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %route.method,
            route = %route.path(),
            client = tracing::field::Empty,
            trace_id = tracing::field::Empty
        )
    }

    fn attributes(route: &Route, client: Option<IpAddr>) -> impl Iterator<Item = KeyValue> {
        [KeyValue::new("http.request.method", route.method), KeyValue::new("http.route", route.path().to_owned())]
            .into_iter()
            .chain(client.map(|client| KeyValue::new("client.address", client.to_string())))
    }

    /// A refused credential's answer says which scheme to use.
    fn refuse(error: Error) -> Response {
        let challenge = matches!(error, Error::Unauthenticated);
        let mut response = error.into_response();
        if challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    fn outcome(response: &Response) -> StatusCode {
        response.status()
    }

    fn ended(status: StatusCode) -> (Option<String>, KeyValue) {
        let code = status.as_u16();
        let error = status.is_server_error().then(|| format!("answered {code}"));
        (error, KeyValue::new("http.response.status_code", i64::from(code)))
    }

    fn log(status: StatusCode, elapsed: Duration) {
        tracing::info!(status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1e3, "request");
    }

    fn count(route: &Route, status: StatusCode, elapsed: Duration) {
        telemetry::HTTP_REQUESTS.record(&[route.path(), route.method], &static_status(status.as_u16()), Some(elapsed));
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

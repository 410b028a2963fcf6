//! What every RPC of `draft.v1.DraftService` goes through before and after its handler, as REST's layers:
//! [`Observed`] runs each call in a span carrying its request id, logs and counts it and returns the id;
//! [`Admitted`] authenticates the caller and counts the call against its rate limit ([`Admission`]), handing the
//! [`Caller`] to the handler in the request's extensions.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderValue, Request as HttpRequest, Response as HttpResponse};
use futures_util::future::Either;
use opentelemetry::KeyValue;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Request, Status};
use tracing::Instrument;

use crate::auth::{Authenticator, Caller};
use crate::clients::TrustedProxies;
use crate::http::{REQUEST_ID, request_id_from};
use crate::ratelimit::RateLimiter;
use crate::telemetry::Trace;

/// Authentication, then rate limiting: what REST's `Authenticate` layer does, for gRPC.
#[derive(Debug, Clone)]
pub struct Admission {
    pub auth: Arc<Authenticator>,
    pub limiter: Option<Arc<RateLimiter>>,
    /// Who may name the client behind a connection (TRUSTED_PROXIES).
    pub proxies: Arc<TrustedProxies>,
}

impl Admission {
    /// The caller, or the status that refuses the call.
    fn admit<B>(&self, request: &HttpRequest<B>) -> Result<Caller, Status> {
        let headers = request.headers();
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
        let caller = self.auth.authenticate(authorization)?;
        if let Some(limiter) = &self.limiter {
            let values = |name| headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok());
            let client = request
                .extensions()
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
                .map(|peer| self.proxies.client(peer.ip(), values("x-forwarded-for"), values("forwarded")));
            limiter.check(&caller, client, "grpc")?;
        }
        Ok(caller)
    }
}

/// A service whose calls are admitted by [`Admission`] first, on the HTTP request itself: tonic's interceptors take
/// the request apart into a `tonic::Request` and put it back together for each call.
#[derive(Debug, Clone)]
pub struct Admitted<S> {
    inner: S,
    admission: Admission,
}

impl<S> Admitted<S> {
    pub fn new(inner: S, admission: Admission) -> Self {
        Self { inner, admission }
    }
}

impl<S: NamedService> NamedService for Admitted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<HttpRequest<B>> for Admitted<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        match self.admission.admit(&request) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Either::Left(self.inner.call(request))
            }
            Err(status) => Either::Right(ready(Ok(status.into_http()))),
        }
    }
}

/// The caller [`Admission`] let in, and the message.
pub fn admitted<T>(request: Request<T>) -> Result<(Caller, T), Status> {
    let caller = request.extensions().get::<Caller>().cloned();
    let caller = caller.ok_or_else(|| Status::internal("the call reached its handler without admission"))?;
    Ok((caller, request.into_inner()))
}

/// A service whose calls are observed: what REST's `Observe` layer does, for gRPC.
#[derive(Debug, Clone)]
pub struct Observed<S>(pub S);

impl<S: NamedService> NamedService for Observed<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<HttpRequest<B>> for Observed<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let started = Instant::now();
        let id = request_id_from(request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()));
        let method = request.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        let span = tracing::info_span!("rpc", request_id = %id, method = %method, trace_id = tracing::field::Empty);
        let trace = Trace::incoming("rpc", request.headers(), || {
            [
                KeyValue::new("request_id", id.clone()),
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.method", method.clone()),
            ]
        });
        if let Some(trace) = &trace {
            span.record("trace_id", tracing::field::display(trace.trace_id()));
        }
        // Admission runs in `call` itself: its refusals are logged in the call's span too.
        let call = span.in_scope(|| self.0.call(request));
        Box::pin(async move {
            let mut result = crate::telemetry::within(trace.as_ref(), call.instrument(span.clone())).await;
            if let Ok(response) = &mut result {
                // An error is a trailers-only response: its status is in the headers. A success's is in trailers.
                let code = response.headers().get("grpc-status").map_or(Code::Ok, |v| Code::from_bytes(v.as_bytes()));
                if let Some(trace) = trace {
                    let failed = matches!(
                        code,
                        Code::Internal | Code::Unavailable | Code::Unknown | Code::DataLoss | Code::DeadlineExceeded
                    );
                    trace
                        .end(failed.then(|| format!("{code:?}")), [KeyValue::new("rpc.grpc.status_code", code as i64)]);
                }
                // Only methods of the service answer something else than UNIMPLEMENTED: the labels stay few.
                let method = if code == Code::Unimplemented { "unknown".to_owned() } else { method };
                let elapsed = started.elapsed();
                span.in_scope(|| tracing::info!(code = ?code, elapsed_ms = elapsed.as_secs_f64() * 1e3, "rpc"));
                crate::telemetry::GRPC_REQUESTS.record(&[&method], code_name(code), Some(elapsed));
                if let Ok(mut value) = HeaderValue::from_str(&id) {
                    // Sent as a literal HPACK never indexes: a value seen once would only churn the connection's
                    // header table (about 3 % of a call's time in h2's indexing).
                    value.set_sensitive(true);
                    response.headers_mut().insert(REQUEST_ID, value);
                }
            }
            result
        })
    }
}

/// A status code's name, as its `Debug` writes it ("Ok", "InvalidArgument"): the label of the calls' metrics, made
/// once per code rather than at every call.
fn code_name(code: Code) -> &'static str {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let names =
        NAMES.get_or_init(|| (0..=Code::Unauthenticated as i32).map(|i| format!("{:?}", Code::from_i32(i))).collect());
    names.get(code as usize).map_or("Unknown", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_named_as_its_debug_writes_it() {
        for i in 0..=16 {
            let code = Code::from_i32(i);
            assert_eq!(code_name(code), format!("{code:?}"));
        }
        assert_eq!(code_name(Code::InvalidArgument), "InvalidArgument");
    }
}

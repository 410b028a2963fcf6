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

use crate::auth::{Authenticator, Caller, Verdict};
use crate::http::{REQUEST_ID, request_id_from};
use crate::peer::TrustedProxies;
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
    /// Counts an admitted caller's call against its rate limit.
    fn limited<B>(&self, caller: Caller, request: &HttpRequest<B>) -> Result<Caller, Status> {
        if let Some(limiter) = &self.limiter {
            let headers = request.headers();
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

/// The future of a call whose token names a key the key set lacks: the set is read again first.
type AfterReload<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B> Service<HttpRequest<B>> for Admitted<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Either<S::Future, Ready<Result<S::Response, S::Error>>>, AfterReload<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        let authorization = request.headers().get("authorization").and_then(|v| v.to_str().ok());
        match self.admission.auth.verdict(authorization) {
            Verdict::Decided(decided) => {
                match decided.map_err(Status::from).and_then(|caller| self.admission.limited(caller, &request)) {
                    Ok(caller) => {
                        request.extensions_mut().insert(caller);
                        Either::Left(Either::Left(self.inner.call(request)))
                    }
                    Err(status) => Either::Left(Either::Right(ready(Ok(status.into_http())))),
                }
            }
            Verdict::UnknownKey => {
                let authorization = authorization.unwrap_or_default().to_owned();
                let admission = self.admission.clone();
                // The service that was made ready goes with the call; this layer keeps a fresh clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Either::Right(Box::pin(async move {
                    let decided = Arc::clone(&admission.auth).after_reload(authorization).await;
                    match decided.map_err(Status::from).and_then(|caller| admission.limited(caller, &request)) {
                        Ok(caller) => {
                            request.extensions_mut().insert(caller);
                            inner.call(request).await
                        }
                        Err(status) => Ok(status.into_http()),
                    }
                }))
            }
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
        let method = method_label(request.uri().path());
        let span = tracing::info_span!("rpc", request_id = %id, method = %method, trace_id = tracing::field::Empty);
        let trace = Trace::incoming("rpc", request.headers(), || {
            [
                KeyValue::new("request_id", id.clone()),
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.method", method),
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
                let elapsed = started.elapsed();
                span.in_scope(|| tracing::info!(code = ?code, elapsed_ms = elapsed.as_secs_f64() * 1e3, "rpc"));
                crate::telemetry::GRPC_REQUESTS.record(&[method], code_name(code), Some(elapsed));
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

/// The methods of `draft.v1.DraftService`, as the contract names them (a test checks them against it).
pub(crate) const METHODS: [&str; 15] = [
    "CreateDraftBucket",
    "GetUploadURL",
    "GetDownloadURL",
    "ConfirmUpload",
    "StartMultipartUpload",
    "SignUploadParts",
    "ListUploadParts",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListDrafts",
    "DiscardDraft",
    "ConfirmSet",
    "ListObjects",
    "StatObject",
    "DeleteObject",
];

/// A call's method as a label, log field and span attribute: one of the service's own, or `unknown` for any path
/// a client invents, whatever the call's outcome (admission refuses a call before the path is routed, so the
/// outcome says nothing about whether the method exists).
fn method_label(path: &str) -> &'static str {
    let method = path.strip_prefix('/').and_then(|path| path.strip_prefix(super::SERVICE_NAME)?.strip_prefix('/'));
    method.and_then(|method| METHODS.iter().find(|known| **known == method)).copied().unwrap_or("unknown")
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
    fn the_method_labels_are_the_contracts_methods() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(draftstore_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let service = set
            .file
            .iter()
            .flat_map(|file| file.service.iter().map(move |service| (file.package(), service)))
            .find(|(package, service)| format!("{package}.{}", service.name()) == super::super::SERVICE_NAME)
            .expect("the service is in the contract")
            .1;
        let mut contract: Vec<&str> = service.method.iter().map(|method| method.name()).collect();
        let mut labels = METHODS.to_vec();
        contract.sort_unstable();
        labels.sort_unstable();
        assert_eq!(labels, contract);
        assert_eq!(method_label("/draft.v1.DraftService/ConfirmUpload"), "ConfirmUpload");
        for invented in ["/draft.v1.DraftService/Invented", "/other.Service/ConfirmUpload", "/", "", "ConfirmUpload"] {
            assert_eq!(method_label(invented), "unknown", "{invented}");
        }
    }

    #[test]
    fn a_code_is_named_as_its_debug_writes_it() {
        for i in 0..=16 {
            let code = Code::from_i32(i);
            assert_eq!(code_name(code), format!("{code:?}"));
        }
        assert_eq!(code_name(Code::InvalidArgument), "InvalidArgument");
    }
}

//! What every request of every protocol goes through around its handler, as two tower services generic over the
//! [`Protocol`] it speaks: [`Observe`] finds the client, runs the request in a span carrying its request id, logs and
//! counts it and returns the id; [`Admit`] authenticates the caller and counts the request against its rate limit,
//! handing the [`Caller`] to the handler in the request's extensions. REST and gRPC are two implementations of
//! [`Protocol`]; a new adapter gets all of this by writing a third.
//!
//! They are services of their own rather than `axum::middleware::from_fn` or tonic's interceptors: the former clones
//! the inner service and boxes it and the middleware's future for every request (2 % of upload-url's rate,
//! measured); the latter take the request apart into a `tonic::Request` and put it back together for each call.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Request, Response, header};
use futures_util::future::Either;
use opentelemetry::KeyValue;
use tower_layer::{Layer, layer_fn};
use tower_service::Service;
use tracing::{Instrument, Span};

use crate::auth::{Authenticator, Caller, Verdict};
use crate::error::Error;
use crate::peer::{ClientAddr, TrustedProxies};
use crate::ratelimit::RateLimiter;
use crate::telemetry::{self, REQUEST_ID, Trace};

/// The header in which proxies name the client (the standard `Forwarded` is in `http::header`).
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// How one protocol speaks to [`Admit`] and [`Observe`]: where its requests' peer is, what labels a request, how a
/// refusal is answered and how a response says the request ended.
pub trait Protocol: 'static {
    /// The name of the protocol in the rate limiter's metrics (`http`, `grpc`).
    const NAME: &'static str;
    /// The name of an exported request's span.
    const SPAN: &'static str;
    /// The body of the protocol's responses.
    type Body: Send + 'static;
    /// What a request is labelled by in its span, its log line and the metrics. Its values come from a closed set,
    /// whatever clients send: a label value per request would be a series per request, kept for the life of the
    /// process.
    type Route: Send + 'static;
    /// How a request ended, as its response says.
    type Outcome: Copy;

    /// The TCP peer of a request's connection, as the server put it in the extensions.
    fn peer<B>(request: &Request<B>) -> Option<IpAddr>;
    /// A request's label.
    fn route<B>(request: &Request<B>) -> Self::Route;
    /// The span a request runs in. [`Observe`] records `trace_id` and `client` in it afterwards, when it declares
    /// them.
    fn span(id: &str, route: &Self::Route) -> Span;
    /// What an exported span says of a request besides its id; called only for a span that is sampled.
    fn attributes(route: &Self::Route, client: Option<IpAddr>) -> impl Iterator<Item = KeyValue>;
    /// The answer that refuses a request.
    fn refuse(error: Error) -> Response<Self::Body>;
    /// How the request a response answers ended.
    fn outcome(response: &Response<Self::Body>) -> Self::Outcome;
    /// Why an exported span failed, if it did, and the attribute that says how it ended.
    fn ended(outcome: Self::Outcome) -> (Option<String>, KeyValue);
    /// The one log line of a request, written in its span.
    fn log(outcome: Self::Outcome, elapsed: Duration);
    /// Counts a request in the protocol's metrics.
    fn count(route: &Self::Route, outcome: Self::Outcome, elapsed: Duration);
}

/// What admits requests and names their clients, for every protocol.
#[derive(Debug)]
pub struct Gate {
    /// Checks the credentials of every API request.
    pub auth: Arc<Authenticator>,
    /// Counts API calls per caller; `None` when RATE_LIMIT=0.
    pub limiter: Option<Arc<RateLimiter>>,
    /// Who may name the client behind a connection (TRUSTED_PROXIES).
    pub proxies: TrustedProxies,
}

impl Gate {
    /// The client behind `peer`: `peer` itself unless a trusted proxy names another in the request's headers.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        // The limiter keys a mapped IPv4 address as the address itself: the peer is used as the socket gave it.
        if self.proxies.is_empty() {
            return ClientAddr(peer);
        }
        let values = |name| headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok());
        ClientAddr(self.proxies.client(peer, values(X_FORWARDED_FOR), values(header::FORWARDED.as_str())))
    }

    /// Counts an admitted caller's request against its rate limit; `client` is what [`Observe`] found.
    fn limited<P: Protocol>(&self, caller: Caller, client: Option<&ClientAddr>) -> Result<Caller, Error> {
        if let Some(limiter) = &self.limiter {
            limiter.check(&caller, client.map(|client| client.0), P::NAME)?;
        }
        Ok(caller)
    }
}

/// One of the stack's two services around `S`, for protocol `P`: `K` says which ([`Admitting`] or [`Observing`]).
#[derive(Debug)]
pub struct Around<K, P, S> {
    inner: S,
    gate: Arc<Gate>,
    stage: PhantomData<fn() -> (K, P)>,
}

impl<K, P, S: Clone> Clone for Around<K, P, S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), gate: Arc::clone(&self.gate), stage: PhantomData }
    }
}

impl<K, P, S> Around<K, P, S> {
    /// `inner`, behind this stage.
    pub fn new(inner: S, gate: Arc<Gate>) -> Self {
        Self { inner, gate, stage: PhantomData }
    }

    /// The layer that puts services behind this stage.
    pub fn layer(gate: Arc<Gate>) -> impl Layer<S, Service = Self> + Clone {
        layer_fn(move |inner| Self::new(inner, Arc::clone(&gate)))
    }
}

/// The stage that admits requests: see [`Admit`].
#[derive(Debug)]
pub enum Admitting {}

/// The stage that observes requests: see [`Observe`].
#[derive(Debug)]
pub enum Observing {}

/// Admits requests whose credentials check out and whose caller is within its rate limit, passing the [`Caller`]
/// on to the handler in the request's extensions; refuses the others as `P` does. Behind [`Observe`], which finds
/// the client an anonymous caller is limited by.
pub type Admit<P, S> = Around<Admitting, P, S>;

/// Every request runs in a span carrying its request id and its client, ends with one log line (its label, how it
/// ended, its duration), is counted in the metrics and answered with its request id. The client found is put in the
/// request's extensions, for [`Admit`].
pub type Observe<P, S> = Around<Observing, P, S>;

/// The future of a request whose token names a key the key set lacks: the set is read again first.
type AfterReload<R> = Pin<Box<dyn Future<Output = Result<R, Infallible>> + Send>>;

/// A request's caller, rate-limited, or the answer that refuses it.
fn admitted<P: Protocol, B>(
    gate: &Gate,
    decided: Result<Caller, Error>,
    request: &mut Request<B>,
) -> Result<(), Response<P::Body>> {
    let caller = decided.and_then(|caller| gate.limited::<P>(caller, request.extensions().get())).map_err(P::refuse)?;
    request.extensions_mut().insert(caller);
    Ok(())
}

impl<P, S, B> Service<Request<B>> for Admit<P, S>
where
    P: Protocol,
    S: Service<Request<B>, Response = Response<P::Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<P::Body>;
    type Error = Infallible;
    type Future = Either<Either<S::Future, Ready<Result<Self::Response, Infallible>>>, AfterReload<Self::Response>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match self.gate.auth.verdict(authorization) {
            Verdict::Decided(decided) => match admitted::<P, B>(&self.gate, decided, &mut request) {
                Ok(()) => Either::Left(Either::Left(self.inner.call(request))),
                Err(refusal) => Either::Left(Either::Right(ready(Ok(refusal)))),
            },
            Verdict::UnknownKey => {
                let authorization = authorization.unwrap_or_default().to_owned();
                let gate = Arc::clone(&self.gate);
                // The service that was made ready goes with the request; this layer keeps a fresh clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Either::Right(Box::pin(async move {
                    let decided = Arc::clone(&gate.auth).after_reload(authorization).await;
                    match admitted::<P, B>(&gate, decided, &mut request) {
                        Ok(()) => inner.call(request).await,
                        Err(refusal) => Ok(refusal),
                    }
                }))
            }
        }
    }
}

impl<P, S, B> Service<Request<B>> for Observe<P, S>
where
    P: Protocol,
    S: Service<Request<B>, Response = Response<P::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<P::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let route = P::route(&request);
        let id = telemetry::request_id(request.headers());
        let client = P::peer(&request).map(|peer| self.gate.client(peer, request.headers()));
        let span = P::span(&id, &route);
        let trace = Trace::incoming(P::SPAN, request.headers(), || {
            std::iter::once(KeyValue::new("request_id", id.clone()))
                .chain(P::attributes(&route, client.map(|client| client.0)))
        });
        if let Some(trace) = &trace {
            span.record("trace_id", tracing::field::display(trace.trace_id()));
        }
        if let Some(client) = client {
            span.record("client", tracing::field::display(client.0));
            request.extensions_mut().insert(client);
        }
        // The inner service is called in the span too, so that what it does before its future runs (admission
        // among it) is logged in it.
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            let Ok(mut response) = telemetry::within(trace.as_ref(), call.instrument(span.clone())).await;
            let outcome = P::outcome(&response);
            if let Some(trace) = trace {
                let (error, attribute) = P::ended(outcome);
                trace.end(error, [attribute]);
            }
            let elapsed = started.elapsed();
            span.in_scope(|| P::log(outcome, elapsed));
            P::count(&route, outcome, elapsed);
            if let Ok(mut value) = HeaderValue::from_str(&id) {
                // Sent as a literal HPACK never indexes over HTTP/2: a value seen once would only churn the
                // connection's header table (about 3 % of a gRPC call's time in h2's indexing).
                value.set_sensitive(true);
                response.headers_mut().insert(REQUEST_ID, value);
            }
            Ok(response)
        })
    }
}

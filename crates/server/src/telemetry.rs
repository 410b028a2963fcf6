//! Logs, traces and metrics. Logs go through `tracing`: text for people, one JSON object per line for machines,
//! `RUST_LOG` filters. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, OpenTelemetry spans (a request or RPC, its calls to the
//! store, the confirm hook, a scan, an event delivery) are exported over OTLP, and W3C `traceparent` is read from
//! requests and sent to the hook and the event receiver; unset, nothing of it runs. The spans are made with the
//! OpenTelemetry API itself, not bridged from `tracing`'s: a bridged span cost about half a presign's time, mostly in
//! `tracing`'s registry and the bridge's field visitors, whether or not it was sampled. Metrics are recorded with the
//! `metrics` crate and rendered in the Prometheus text format. Every request and RPC has an id ([`REQUEST_ID`]), the
//! client's or a fresh one, in its span and in its answer.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName};
use futures_util::future::Either;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    FutureExt as _, Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, TraceId, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::setting;

/// How the server logs.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_args = setting::by_convention)]
pub struct TelemetrySettings {
    /// Log output: `text` for people, `json` for one object per line; `RUST_LOG` filters.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_name = "FORMAT")]
    #[arg(value_parser = setting::choice(&[("text", LogFormat::Text), ("json", LogFormat::Json)]))]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The trace exporter, when there is one: flushed at shutdown.
#[derive(Debug, Default)]
pub struct Tracing(Option<SdkTracerProvider>);

impl Tracing {
    /// Exports what is buffered and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.0 {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// The tracer spans are made with, once traces are on.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The header that names the trace a request is part of (W3C Trace Context).
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The most attributes a request's or an RPC's span carries: up to four when it starts, its status when it ends.
const REQUEST_ATTRIBUTES: usize = 5;

/// Installs the global subscriber (logs go to standard error so that command output owns standard output) and, with
/// `OTEL_EXPORTER_OTLP_ENDPOINT` set, the trace exporter. Call it from within the tokio runtime: the exporter runs
/// on it.
pub fn init(format: LogFormat) -> Tracing {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).boxed(),
    };
    let _ = tracing_subscriber::registry().with(logs.with_filter(filter)).try_init();
    let provider = tracer_provider();
    if let Some(provider) = &provider {
        let _ = TRACER.set(provider.tracer("draftstore"));
    }
    Tracing(provider)
}

/// The OTLP exporter the standard variables describe: `OTEL_EXPORTER_OTLP_ENDPOINT` (none: no tracing),
/// `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, or `http/protobuf`, the default), `OTEL_SERVICE_NAME` (default
/// `draftstore`), `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*` for the batches.
fn tracer_provider() -> Option<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|endpoint| !endpoint.is_empty())?;
    let exporter = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("grpc") => SpanExporter::builder().with_tonic().build(),
        _ => OtlpHttp::new().and_then(|client| {
            SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).with_http_client(client).build()
        }),
    };
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("warning: OpenTelemetry traces are off: the OTLP exporter could not be set up: {e}");
            return None;
        }
    };
    // The SDK's batch processor queues a span without waking anything, and exports from a thread of its own once a
    // batch is full or its delay is up. (The one that runs on the tokio runtime woke its task for every span.)
    let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).build();
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("draftstore");
    }
    Some(SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource.build()).build())
}

/// OTLP/HTTP's client: reqwest's (TLS included), its requests run on the server's runtime, since the batch processor
/// exports from a thread outside it. `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds, default 10 s) bounds an export.
#[derive(Debug)]
struct OtlpHttp {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl OtlpHttp {
    fn new() -> Result<OtlpHttp, opentelemetry_otlp::ExporterBuildError> {
        let timeout = ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok()?.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| opentelemetry_otlp::ExporterBuildError::InternalFailure(e.to_string()))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| opentelemetry_otlp::ExporterBuildError::InternalFailure(e.to_string()))?;
        Ok(OtlpHttp { client, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpHttp {
    async fn send_bytes(
        &self,
        request: axum::http::Request<bytes::Bytes>,
    ) -> Result<axum::http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let mut answer = axum::http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            Ok::<_, opentelemetry_http::HttpError>(answer.body(response.bytes().await?)?)
        });
        sent.await?
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct Outgoing<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (reqwest::header::HeaderName::from_bytes(key.as_bytes()), reqwest::header::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// An exported span, and the context that carries it to the work done under it.
#[derive(Debug, Clone)]
pub struct Trace(Context);

impl Trace {
    /// The span of a request or an RPC: a child of the trace the request's `traceparent` names, else a new trace's
    /// root. `None` when traces are off. `attributes` is called only for a span that is sampled: the samplers
    /// DraftStore configures do not look at them, and an unsampled request then makes none. The span's list of
    /// attributes is allocated once, before sampling, with room for those learnt at the end: one block, which an
    /// unsampled span frees at once.
    pub fn incoming<A: IntoIterator<Item = KeyValue>>(
        name: &'static str,
        headers: &HeaderMap,
        attributes: impl FnOnce() -> A,
    ) -> Option<Trace> {
        let tracer = TRACER.get()?;
        // Most requests name no trace: the propagator is not run for them.
        let parent = if headers.contains_key(&TRACEPARENT) {
            TraceContextPropagator::new().extract(&Headers(headers))
        } else {
            Context::current()
        };
        let builder = SpanBuilder {
            attributes: Some(Vec::with_capacity(REQUEST_ATTRIBUTES)),
            ..SpanBuilder::from_name(name).with_kind(SpanKind::Server)
        };
        let mut span = tracer.build_with_context(builder, &parent);
        if span.is_recording() {
            span.set_attributes(attributes());
        }
        Some(Trace(parent.with_span(span)))
    }

    /// A span under the current one (a request's, or the one [`traced`] runs in), or a new trace's root outside any.
    fn child(name: &'static str, kind: SpanKind, attributes: impl FnOnce() -> Vec<KeyValue>) -> Option<Trace> {
        let tracer = TRACER.get()?;
        let parent = Context::current();
        let span = tracer
            .build_with_context(SpanBuilder::from_name(name).with_kind(kind).with_attributes(attributes()), &parent);
        Some(Trace(parent.with_span(span)))
    }

    /// The trace's id, for log lines.
    pub fn trace_id(&self) -> TraceId {
        self.0.span().span_context().trace_id()
    }

    /// Ends the span: with an error status when `error` says why it failed, with `attributes` learnt at the end.
    pub fn end(self, error: Option<String>, attributes: impl IntoIterator<Item = KeyValue>) {
        let span = self.0.span();
        span.set_attributes(attributes);
        if let Some(message) = error {
            span.set_status(Status::error(message));
        }
        span.end();
    }
}

/// Runs `work` with `trace` as the current span (nothing more when it is `None`).
pub fn within<F: Future>(trace: Option<&Trace>, work: F) -> impl Future<Output = F::Output> {
    match trace {
        Some(trace) => Either::Left(work.with_context(trace.0.clone())),
        None => Either::Right(work),
    }
}

/// Runs `work` in a span `name` under the current one, when traces are on; `failed` tells from the outcome whether
/// (and why) it failed.
pub async fn traced<T>(
    name: &'static str,
    kind: SpanKind,
    attributes: impl FnOnce() -> Vec<KeyValue>,
    failed: impl FnOnce(&T) -> Option<String>,
    work: impl Future<Output = T>,
) -> T {
    let trace = Trace::child(name, kind, attributes);
    let outcome = within(trace.as_ref(), work).await;
    if let Some(trace) = trace {
        trace.end(failed(&outcome), []);
    }
    outcome
}

/// The `traceparent` (and `tracestate`) of the current span, for an outgoing request; empty when traces are off.
pub fn trace_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if tracing_on() {
        TraceContextPropagator::new().inject_context(&Context::current(), &mut Outgoing(&mut headers));
    }
    headers
}

/// Whether traces are exported (OTEL_EXPORTER_OTLP_ENDPOINT was set and the exporter could be set up).
pub(crate) fn tracing_on() -> bool {
    TRACER.get().is_some()
}

/// Latency buckets, in seconds: from a presign (tens of microseconds) to a large multipart copy.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide metrics recorder once and returns the handle that renders it.
pub fn metrics() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, in which case that one records.
            let _ = metrics::set_global_recorder(recorder);
            metrics::gauge!("draftstore_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// A family of metrics about calls of one kind: `total` counts them by what was called and how it ended, and
/// `duration`, where there is one, times them by what was called.
///
/// Its handles are kept per thread, by their label values: the `metrics` macros build a key, hash it and look it up
/// in the recorder's registry at every call (an upload-url makes five such calls). The label values are bounded
/// sets (routes, methods, statuses, gRPC codes, storage operations), so the caches stay small; no metric is ever
/// removed from the recorder (it has no idle timeout), so a kept handle stays its metric's.
#[derive(Debug)]
pub struct Calls {
    pub total: &'static str,
    pub duration: Option<&'static str>,
    /// The names of the labels of what was called (at most two), then of how the call ended.
    pub what: &'static [&'static str],
    pub outcome: &'static str,
}

/// Requests of the REST API, by route and method, and status.
pub static HTTP_REQUESTS: Calls = Calls {
    total: "draftstore_http_requests_total",
    duration: Some("draftstore_http_request_duration_seconds"),
    what: &["route", "method"],
    outcome: "status",
};

/// Calls of the gRPC API, by method, and status code.
pub static GRPC_REQUESTS: Calls = Calls {
    total: "draftstore_grpc_requests_total",
    duration: Some("draftstore_grpc_request_duration_seconds"),
    what: &["method"],
    outcome: "code",
};

/// Calls to the store, by operation, and outcome (`ok` or the error type).
pub static STORAGE_CALLS: Calls = Calls {
    total: "draftstore_storage_calls_total",
    duration: Some("draftstore_storage_call_duration_seconds"),
    what: &["operation"],
    outcome: "outcome",
};

/// URLs signed, by HTTP method.
pub static PRESIGNED_URLS: Calls =
    Calls { total: "draftstore_presigned_urls_total", duration: None, what: &[], outcome: "method" };

/// A family's handles for one set of label values.
#[derive(Debug)]
struct CallHandles {
    total: metrics::Counter,
    duration: Option<metrics::Histogram>,
}

/// The label values of a family's handles, owned by the cache.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CallKey {
    family: &'static str,
    what: [Box<str>; 2],
    outcome: Box<str>,
}

/// The same, borrowed for a lookup; it hashes as the owned key does.
#[derive(Hash)]
struct CallRef<'a> {
    family: &'static str,
    what: [&'a str; 2],
    outcome: &'a str,
}

impl hashbrown::Equivalent<CallKey> for CallRef<'_> {
    fn equivalent(&self, key: &CallKey) -> bool {
        // A family is a static: its name is the same string. Label values are a few bytes each: compared in line,
        // where `==` would call `memcmp` for each (4 % of a gRPC call's time in a profile, for two lookups).
        fn same(a: &str, b: &str) -> bool {
            a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
        }
        std::ptr::eq(self.family, key.family)
            && same(self.what[0], &key.what[0])
            && same(self.what[1], &key.what[1])
            && same(self.outcome, &key.outcome)
    }
}

thread_local! {
    static CALL_HANDLES: std::cell::RefCell<hashbrown::HashMap<CallKey, CallHandles>> = Default::default();
}

impl Calls {
    /// Counts a call, by the values of the labels of what was called (as many as the family names) and how it
    /// ended, and records how long it took where the family times its calls.
    pub fn record(&'static self, what: &[&str], outcome: &str, elapsed: Option<Duration>) {
        self.with_handles(what, outcome, |handles| {
            handles.total.increment(1);
            if let (Some(duration), Some(elapsed)) = (&handles.duration, elapsed) {
                duration.record(elapsed.as_secs_f64());
            }
        });
    }

    /// Counts `calls` calls at once (untimed).
    pub fn count(&'static self, what: &[&str], outcome: &str, calls: u64) {
        self.with_handles(what, outcome, |handles| handles.total.increment(calls));
    }

    fn with_handles(&'static self, what: &[&str], outcome: &str, record: impl FnOnce(&CallHandles)) {
        let value = |i: usize| what.get(i).copied().unwrap_or_default();
        let key = CallRef { family: self.total, what: [value(0), value(1)], outcome };
        // Before the recorder is installed a handle would be a no-op for good: nothing is kept then.
        if METRICS.get().is_none() {
            return record(&self.register(&key));
        }
        CALL_HANDLES.with_borrow_mut(|cache| match cache.get(&key) {
            Some(handles) => record(handles),
            None => {
                let handles = self.register(&key);
                record(&handles);
                let owned = key.what.map(Box::from);
                cache.insert(CallKey { family: self.total, what: owned, outcome: key.outcome.into() }, handles);
            }
        });
    }

    fn register(&self, key: &CallRef<'_>) -> CallHandles {
        debug_assert!(self.what.len() <= key.what.len(), "a family names at most two labels of what was called");
        let what: Vec<metrics::Label> =
            self.what.iter().zip(key.what).map(|(name, value)| metrics::Label::new(*name, value.to_owned())).collect();
        let mut labels = what.clone();
        labels.push(metrics::Label::new(self.outcome, key.outcome.to_owned()));
        CallHandles {
            total: metrics::counter!(self.total, labels),
            duration: self.duration.map(|name| metrics::histogram!(name, what)),
        }
    }
}

/// Keeps the recorder's histogram storage bounded; run it in the background while serving.
pub async fn metrics_upkeep(handle: PrometheusHandle) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        handle.run_upkeep();
    }
}

/// The request id header, taken from the request when it carries a sane one and returned in the response.
pub const REQUEST_ID: &str = "x-request-id";

/// A request's id: the client's own if it is short printable ASCII, or a fresh one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(fresh_request_id)
}

/// A fresh request id: 16 hex digits, unique within the process and unpredictable across processes. A random
/// seed drawn once is mixed with a counter (splitmix64), so the hot path makes no system call.
fn fresh_request_id() -> String {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            bytes = (nanos.as_nanos() as u64).to_le_bytes();
        }
        u64::from_le_bytes(bytes)
    });
    let mut z = seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", z ^ (z >> 31))
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_CALLS: Calls = Calls {
        total: "draftstore_test_calls_total",
        duration: Some("draftstore_test_call_duration_seconds"),
        what: &["route", "method"],
        outcome: "status",
    };

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn a_sane_request_id_is_kept_and_any_other_replaced() {
        let given = |id: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, id.parse().expect("a header value"));
            request_id(&headers)
        };
        assert_eq!(given("req-42"), "req-42");
        for insane in ["", "with space", &"x".repeat(129)] {
            let fresh = given(insane);
            assert_eq!(fresh.len(), 16, "{insane:?} gets a fresh id: {fresh}");
            assert!(fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");
        }
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()), "fresh ids differ");
    }

    #[test]
    fn cached_handles_record_into_the_series_of_their_labels() {
        let handle = metrics();
        let route = String::from("/api/v1/test");
        for _ in 0..3 {
            TEST_CALLS.record(&[&route, "POST"], "200", Some(Duration::from_millis(1)));
        }
        TEST_CALLS.record(&[&route, "POST"], "503", None);
        TEST_CALLS.count(&["/api/v1/other", "GET"], "200", 5);
        // Another thread has a cache of its own, and records into the same series.
        std::thread::spawn(|| TEST_CALLS.record(&["/api/v1/test", "POST"], "200", None)).join().expect("thread");

        let text = handle.render();
        let total = |labels: &str| sample(&text, &format!("draftstore_test_calls_total{{{labels}}}"));
        assert_eq!(total(r#"route="/api/v1/test",method="POST",status="200""#), Some(4.0), "{text}");
        assert_eq!(total(r#"route="/api/v1/test",method="POST",status="503""#), Some(1.0), "{text}");
        assert_eq!(total(r#"route="/api/v1/other",method="GET",status="200""#), Some(5.0), "{text}");
        // Timed only when a duration is given.
        let count = sample(&text, r#"draftstore_test_call_duration_seconds_count{route="/api/v1/test",method="POST"}"#);
        assert_eq!(count, Some(3.0), "{text}");
    }
}

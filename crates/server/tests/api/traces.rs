//! OpenTelemetry traces: the real binary, with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP receiver the test
//! runs (OTLP over HTTP: `POST /v1/traces`, an `ExportTraceServiceRequest` in protobuf; or OTLP over gRPC, the
//! `TraceService` of the collector), confirms a draft that a confirm hook accepts. One trace, continued from the client's `traceparent`: the request span, its storage calls and
//! the hook call under it, the hook handed the `traceparent` of its span, and the trace id in the JSON log lines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use draftstore_proto::draft::v1 as pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde_json::json;

use crate::helpers::free_port;

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
}

#[derive(Default)]
struct Seen {
    spans: Vec<Span>,
    /// The `traceparent` of each call the hook got.
    hook_calls: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Seen>>;

async fn traces(State(seen): State<Shared>, body: Bytes) -> Vec<u8> {
    record(&seen, ExportTraceServiceRequest::decode(body).expect("an OTLP trace export"));
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// The same receiver over gRPC.
struct GrpcReceiver(Shared);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        record(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn record(seen: &Shared, request: ExportTraceServiceRequest) {
    let mut seen = seen.lock().expect("lock");
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for span in scope.spans {
                seen.spans.push(Span {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent: hex::encode(&span.parent_span_id),
                    name: span.name,
                });
            }
        }
    }
}

async fn hook(State(seen): State<Shared>, headers: HeaderMap) -> &'static str {
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().expect("lock").hook_calls.push(traceparent);
    "{}"
}

/// An OTLP/gRPC receiver on a free port; its address.
async fn grpc_receiver(seen: Shared) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let service = TraceServiceServer::new(GrpcReceiver(seen));
    tokio::spawn(async move {
        tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await.expect("serves")
    });
    address
}

async fn receivers(seen: Shared) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .route("/hook", axum::routing::post(hook))
        .with_state(seen);
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serves") });
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirm_is_one_trace_through_the_storage_calls_and_the_hook_over_otlp_http() {
    a_confirm_is_one_trace("http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirm_is_one_trace_through_the_storage_calls_and_the_hook_over_otlp_grpc() {
    a_confirm_is_one_trace("grpc").await;
}

/// With OTEL_EXPORTER_OTLP_PROTOCOL set to `protocol`.
async fn a_confirm_is_one_trace(protocol: &str) {
    let seen = Shared::default();
    let receiver = receivers(Arc::clone(&seen)).await;
    let collector = match protocol {
        "grpc" => grpc_receiver(Arc::clone(&seen)).await,
        _ => receiver.clone(),
    };
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("server.log");
    let (http, grpc) = (free_port(), free_port());
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftstore"))
        .arg("serve")
        .args(["--storage-type", "local", "--data-dir"])
        .arg(data.path().join("store"))
        .args(["--http-port", &http.to_string(), "--grpc-port", &grpc.to_string(), "--bind-address", "127.0.0.1"])
        .args(["--confirm-hook-url", &format!("{receiver}/hook"), "--webhook-secret", &secret, "--log-format", "json"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let base = format!("http://127.0.0.1:{http}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.get(format!("{base}/ready")).send().await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The client's own trace: DraftStore continues it.
    let (trace_id, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let post = |route: &str, body: serde_json::Value| {
        client.post(format!("{base}/api/v1/{route}")).header("traceparent", &traceparent).json(&body).send()
    };
    let ticket: serde_json::Value =
        post("upload-url", json!({"object_name": "traced.txt", "content_type": "text/plain"}))
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
    let put =
        client.put(ticket["upload_url"].as_str().expect("url")).header("content-type", "text/plain").body("traced");
    assert_eq!(put.send().await.expect("sent").status(), 200);
    let confirmed = post("confirm-upload", json!({"object_name": "traced.txt"})).await.expect("sent");
    assert_eq!(confirmed.status(), 200);

    // And over gRPC, with the traceparent in the metadata.
    let mut rpc = draftstore_proto::draft::v1::draft_service_client::DraftServiceClient::connect(format!(
        "http://127.0.0.1:{grpc}"
    ))
    .await
    .expect("connects");
    let mut request =
        tonic::Request::new(pb::GetUploadUrlRequest { object_name: "rpc.txt".into(), ..Default::default() });
    let grpc_trace = "0af7651916cd43dd8448eb211c80319c";
    request
        .metadata_mut()
        .insert("traceparent", format!("00-{grpc_trace}-b7ad6b7169203331-01").parse().expect("ascii"));
    rpc.get_upload_url(request).await.expect("signed");

    let deadline = Instant::now() + Duration::from_secs(30);
    let (spans, hook_calls) = loop {
        {
            let seen = seen.lock().expect("lock");
            let hooked = seen.spans.iter().any(|s| s.trace_id == trace_id && s.name == "confirm_hook");
            let rpc = seen.spans.iter().any(|s| s.trace_id == grpc_trace && s.name == "rpc");
            if hooked && rpc {
                break (seen.spans.clone(), seen.hook_calls.clone());
            }
        }
        assert!(Instant::now() < deadline, "the spans never arrived: {:#?}", seen.lock().expect("lock").spans);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server.start_kill().expect("stopped");

    let ours: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let by_id: HashMap<&str, &Span> = ours.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    // The confirm's request span is a child of the client's span; the hook and storage calls sit under it.
    let requests: Vec<&&Span> = ours.iter().filter(|s| s.name == "request" && s.parent == client_span).collect();
    assert_eq!(requests.len(), 2, "upload-url and confirm-upload continue the client's trace: {ours:#?}");
    let under = |span: &Span, ancestor: &str| {
        let mut current = span;
        while let Some(parent) = by_id.get(current.parent.as_str()) {
            if parent.span_id == ancestor {
                return true;
            }
            current = parent;
        }
        false
    };
    let hook_span = ours.iter().find(|s| s.name == "confirm_hook").expect("a hook span");
    let confirm =
        requests.iter().find(|r| under(hook_span, &r.span_id)).expect("the hook call is under a request span");
    let storage: Vec<_> = ours.iter().filter(|s| s.name == "storage" && under(s, &confirm.span_id)).collect();
    assert!(storage.len() >= 2, "the confirm's storage calls (look-up, move) are its children: {ours:#?}");
    // The hook got the traceparent of its own span.
    assert_eq!(hook_calls, [Some(format!("00-{trace_id}-{}-01", hook_span.span_id))], "{hook_calls:?}");
    // gRPC: the call's span continues the caller's trace.
    assert!(spans.iter().any(|s| s.trace_id == grpc_trace && s.name == "rpc" && s.parent == "b7ad6b7169203331"));
    // The JSON log lines of the request carry the trace id.
    let logged = std::fs::read_to_string(&log).expect("the log");
    assert!(
        logged.lines().any(|line| line.contains(&format!("\"trace_id\":\"{trace_id}\""))),
        "no log line carries the trace id:\n{logged}"
    );
}

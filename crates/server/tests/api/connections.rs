//! Hostile connections, on real sockets: half-sent requests and prefaces, floods beyond MAX_CONNECTIONS, idle
//! keep-alives and stalled bodies neither take the server down nor stay open past their timeouts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{LoggedServer, raw_put_head, signed_put, staging_files};
use crate::helpers::{TestApp, spawn_app_with};

/// The header timeout the tests run with; closing is checked against it with this margin for a loaded machine.
const HEADER_TIMEOUT: u64 = 3;
const MARGIN: Duration = Duration::from_secs(3);

/// The start of an HTTP/1 request, never finished.
const HALF_REQUEST: &[u8] = b"POST /api/v1/upload-url HTTP/1.1\r\nHost: draftstore\r\n";
/// The HTTP/2 connection preface, and an empty SETTINGS frame: what an idle gRPC channel has sent.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

fn address(url: &str) -> SocketAddr {
    let url = url::Url::parse(url).expect("a URL");
    let port = url.port().expect("a port");
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `count` connections that each sent `bytes` and then nothing.
async fn hold(address: SocketAddr, count: usize, bytes: &'static [u8]) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut tcp = TcpStream::connect(address).await.expect("connects");
        tcp.write_all(bytes).await.expect("sends");
        held.push(tcp);
    }
    held
}

/// Waits until the server has closed every connection (end of stream or reset), or `deadline`; returns how many
/// it closed.
async fn closed_by(held: Vec<TcpStream>, deadline: Instant) -> usize {
    let waits = held.into_iter().map(|mut tcp| async move {
        let mut buffer = [0u8; 1024];
        let until = tokio::time::Instant::from_std(deadline);
        loop {
            match tokio::time::timeout_at(until, tcp.read(&mut buffer)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                // Whatever the server says before closing (a 408, an HTTP/2 GOAWAY) is read past.
                Ok(Ok(_)) => {}
            }
        }
    });
    futures_util::future::join_all(waits).await.into_iter().filter(|closed| *closed).count()
}

/// A GET on a connection of its own, timed.
async fn probe(url: &str) -> (u16, Duration) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let started = Instant::now();
    let status = client.get(url).send().await.expect("the probe answers").status().as_u16();
    (status, started.elapsed())
}

/// An upload-url call on a connection of its own.
async fn upload_url(base: &str, name: &str) -> (u16, Value, Option<String>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let response = client
        .post(format!("{base}/api/v1/upload-url"))
        .json(&json!({ "object_name": name }))
        .send()
        .await
        .expect("answers");
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    (response.status().as_u16(), response.json().await.expect("json"), retry_after)
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_requests_under_a_soft_limit_of_1024_do_not_stop_the_service() {
    draftstore::connections::raise_open_file_limit();
    let dir = tempfile::tempdir().expect("tempdir");
    let timeout = HEADER_TIMEOUT.to_string();
    let server = tokio::task::block_in_place(|| {
        LoggedServer::start_with_open_files(dir.path(), &[("HTTP_HEADER_TIMEOUT", &timeout)], Some(1024))
    });
    // Logged before the server listens, so among the lines already read.
    let limit = server
        .seen()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .find(|line| line["message"] == "open-file limit")
        .expect("the open-file limit is logged");
    assert_eq!(limit["was"], "1024", "{limit}");
    assert_eq!(limit["soft"], limit["hard"], "the soft limit is raised to the hard one: {limit}");
    let soft: u64 = limit["soft"].as_str().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    assert!(soft > 4096, "this machine's hard limit leaves room for the test: {limit}");

    let held = hold(address(&server.http), 1100, HALF_REQUEST).await;
    let sent = Instant::now();
    let (status, took) = probe(&format!("{}/health", server.http)).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "/health took {took:?} with 1,100 half-sent requests held");
    let (status, body, _) = upload_url(&server.http, "during-the-flood.txt").await;
    assert_eq!(status, 200, "{body}");

    let closed = closed_by(held, sent + Duration::from_secs(HEADER_TIMEOUT) + MARGIN).await;
    assert_eq!(closed, 1100, "every half-sent request is closed within HTTP_HEADER_TIMEOUT");
    let lines = server.seen().join("\n");
    assert!(!lines.contains("Too many open files"), "no descriptor ran out:\n{lines}");
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_max_connections_the_probes_answer_and_the_api_says_it_is_busy() {
    draftstore::connections::raise_open_file_limit();
    let app = spawn_app_with(&["--max-connections", "20", "--http-header-timeout", "3"]).await;
    // Five times the cap: the slots and the probe reserve are all taken by clients that send nothing more.
    let held = hold(address(&app.address), 100, HALF_REQUEST).await;
    let sent = Instant::now();
    for route in ["/health", "/ready"] {
        let (status, took) = probe(&format!("{}{route}", app.address)).await;
        assert_eq!(status, 200, "{route}");
        assert!(took < Duration::from_secs(1), "{route} took {took:?} with every slot taken");
    }
    let (status, body, retry_after) = upload_url(&app.address, "busy.txt").await;
    assert_eq!((status, body["error_type"].as_str()), (503, Some("SERVER_BUSY")), "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));

    let closed = closed_by(held, sent + Duration::from_secs(HEADER_TIMEOUT) + MARGIN).await;
    assert_eq!(closed, 100, "the held connections are closed (timed out, or closed for newer ones)");
    let (status, body, _) = upload_url(&app.address, "after.txt").await;
    assert_eq!(status, 200, "the API answers again once the slots are free: {body}");
    let metrics = reqwest::get(format!("{}/metrics", app.address)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("draftstore_connections_evicted_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_grpc_connections_and_half_sent_prefaces_do_not_stop_the_health_check() {
    draftstore::connections::raise_open_file_limit();
    let app = spawn_app_with(&["--http-header-timeout", "3"]).await;
    let grpc = address(&app.grpc_address);
    let mut idle = hold(grpc, 2000, PREFACE).await;
    for tcp in &mut idle {
        tcp.write_all(EMPTY_SETTINGS).await.expect("sends");
    }
    let half = hold(grpc, 1100, &PREFACE[..12]).await;
    let sent = Instant::now();

    let started = Instant::now();
    let status = health(&app).await;
    assert_eq!(status, ServingStatus::Serving);
    assert!(started.elapsed() < Duration::from_secs(1), "the health check took {:?}", started.elapsed());

    let closed = closed_by(half, sent + Duration::from_secs(HEADER_TIMEOUT) + MARGIN).await;
    assert_eq!(closed, 1100, "every half-sent preface is closed within HTTP_HEADER_TIMEOUT");
    let still_open = closed_by(idle, Instant::now() + Duration::from_millis(200)).await;
    assert_eq!(still_open, 0, "connections that completed their preface are not cut off by the header timeout");
}

async fn health(app: &TestApp) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(app.grpc_address.clone())
        .expect("uri")
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connects beside 3,100 held connections");
    let request = HealthCheckRequest { service: "draft.v1.DraftService".to_owned() };
    HealthClient::new(channel).check(request).await.expect("health answers").into_inner().status()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_outlives_the_header_timeout_and_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(&["--http-header-timeout", "1", "--http-idle-timeout", "3"]).await;
    let mut tcp = TcpStream::connect(address(&app.address)).await.expect("connects");
    let mut answer = vec![0u8; 4096];
    for _ in 0..2 {
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: draftstore\r\n\r\n").await.expect("sends");
        let n = tcp.read(&mut answer).await.expect("answers");
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..n]));
        // Idle for twice the header timeout: a client's pooled connection is still there for its next request.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let answered = Instant::now() - Duration::from_secs(2);
    assert_eq!(closed_by(vec![tcp], answered + Duration::from_secs(3) + MARGIN).await, 1);
    assert!(answered.elapsed() >= Duration::from_millis(2500), "closed after HTTP_IDLE_TIMEOUT, not before");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_stalls_after_1_mib_is_cut_off_and_leaves_no_staging_file() {
    let app = spawn_app_with(&["--body-idle-timeout", "2"]).await;
    let ticket = app.upload_url("stalled.bin", Some("application/octet-stream")).await.ok();
    let (store, request) = raw_put_head(&ticket, 2 * 1024 * 1024);
    let mut tcp = TcpStream::connect(store).await.expect("connects");
    tcp.write_all(request.as_bytes()).await.expect("sends the head");
    tcp.write_all(&vec![b'x'; 1024 * 1024]).await.expect("sends 1 MiB");
    let stalled = Instant::now();
    while staging_files(&app.data_dir) == 0 {
        assert!(stalled.elapsed() < Duration::from_secs(5), "the upload never reached its staging file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2) + MARGIN, tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the stalled upload was not cut off within BODY_IDLE_TIMEOUT");
    let took = stalled.elapsed();
    assert!(took >= Duration::from_millis(1500), "cut off after {took:?}, before BODY_IDLE_TIMEOUT");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert_eq!(staging_files(&app.data_dir), 0, "no staging file is left");
    assert!(!app.data_dir.join("main-draft/stalled.bin").exists(), "no object is stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_outlives_the_header_timeout_and_a_half_preface_on_the_rest_port_does_not() {
    let app = spawn_app_with(&["--http-header-timeout", "1"]).await;
    let half = hold(address(&app.address), 50, &PREFACE[..12]).await;
    let sent = Instant::now();

    // An upload whose body takes three header timeouts to arrive, a chunk every half second.
    let ticket = app.upload_url("slow.bin", None).await.ok();
    let chunks = futures_util::stream::unfold(0, |i| async move {
        (i < 6).then_some(())?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024])), i + 1))
    });
    let request = signed_put(&app.client, &ticket);
    let started = Instant::now();
    let status = request.body(reqwest::Body::wrap_stream(chunks)).send().await.expect("answered").status();
    assert_eq!(status, 200, "a request in flight is not cut off by the header timeout");
    assert!(started.elapsed() >= Duration::from_secs(3), "the body took {:?}", started.elapsed());
    assert!(app.data_dir.join("main-draft/slow.bin").exists(), "the upload was stored");

    assert_eq!(closed_by(half, sent + Duration::from_secs(1) + MARGIN).await, 50, "half prefaces are closed");
}

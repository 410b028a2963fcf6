//! Operations: graceful shutdown of the real binary, metrics, structured logs with request ids, the readiness
//! cache, and manifests that point at routes that exist.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{LoggedServer, grpc_confirm, serve_settings, spawn, spawn_app, staging_files, upload_ticket};

async fn upload_url(http: &str, name: &str) -> String {
    let ticket = upload_ticket(&reqwest::Client::new(), http, &json!({ "object_name": name })).await;
    ticket["upload_url"].as_str().expect("url").to_owned()
}

/// Starts a PUT whose body arrives in two parts; the second is sent when the returned sender is used.
fn slow_upload(url: String) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<u16, String>>) {
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let body = futures_util::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 64 * 1024])) })
        .chain(futures_util::stream::once(async move {
            let _ = wait.await;
            Ok(bytes::Bytes::from(vec![b'b'; 64 * 1024]))
        }));
    let task = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .put(url)
            .header("content-length", "131072")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    });
    (go, task)
}

use futures_util::StreamExt;

/// Waits until an upload has reached its staging file.
async fn wait_for_staging(data_dir: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while staging_files(data_dir) != 1 {
        assert!(std::time::Instant::now() < deadline, "the upload never reached its staging file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_upload_in_flight_finish_then_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = tokio::task::block_in_place(|| LoggedServer::start(dir.path(), &[]));
    let url = upload_url(&server.http, "in-flight.bin").await;
    let (go, upload) = slow_upload(url);
    wait_for_staging(dir.path()).await;
    server.signal("-TERM");
    tokio::task::block_in_place(|| server.wait_for(|line| line["message"] == "SIGTERM received, shutting down"));
    let _ = go.send(());
    assert_eq!(upload.await.expect("joined"), Ok(200), "the upload in flight completes");
    assert_eq!(tokio::task::block_in_place(|| server.wait_exit()), 0);
    let object = dir.path().join("main-draft/in-flight.bin");
    assert!(std::fs::metadata(&object).expect("stored").len() > 131_072, "the whole object was stored");
    assert_eq!(staging_files(dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_outlasting_the_shutdown_timeout_leaves_no_partial_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = tokio::task::block_in_place(|| LoggedServer::start(dir.path(), &[("SHUTDOWN_TIMEOUT", "1")]));
    let url = upload_url(&server.http, "stalled.bin").await;
    let (_never, upload) = slow_upload(url);
    wait_for_staging(dir.path()).await;
    server.signal("-INT");
    assert_eq!(tokio::task::block_in_place(|| server.wait_exit()), 0);
    assert!(upload.await.expect("joined").is_err(), "the stalled upload was cut off");
    assert!(!dir.path().join("main-draft/stalled.bin").exists(), "no partial object");
    assert_eq!(staging_files(dir.path()), 0, "no staging file left");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_parse_line_by_line_and_carry_the_request_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = tokio::task::block_in_place(|| {
        LoggedServer::start(dir.path(), &[("RUST_LOG", "debug"), ("SIGNING_KEY", "a-very-secret-signing-key-0123")])
    });
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/v1/confirm-upload", server.http))
        .header("x-request-id", "req-test-1234")
        .json(&json!({ "object_name": "nothing" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "req-test-1234");
    let generated = client.get(format!("{}/health", server.http)).send().await.expect("sent");
    let generated_id = generated.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(generated_id.len(), 16, "a fresh id is made when none is given");
    let line = tokio::task::block_in_place(|| {
        server.wait_for(|line| line["span"]["request_id"] == "req-test-1234" && line["status"] == 404)
    });
    assert_eq!(line["span"]["route"], "/api/v1/confirm-upload");
    tokio::task::block_in_place(|| server.wait_for(|line| line["span"]["request_id"] == generated_id.as_str()));
    server.signal("-TERM");
    tokio::task::block_in_place(|| server.wait_exit());
    let logs = tokio::task::block_in_place(|| server.drain_logs());
    for line in &logs {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(!line.contains("a-very-secret-signing-key-0123"), "a secret reached the log: {line}");
    }
}

fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            assert!(comment.starts_with("HELP ") || comment.starts_with("TYPE "), "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.push((series.to_owned(), value));
    }
    samples
}

fn sample(samples: &[(String, f64)], name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| series.starts_with(name) && labels.iter().all(|l| series.contains(l)))
        .map(|(_, value)| value)
        .sum()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_with_requests() {
    let app = spawn_app().await;
    let scrape = async || {
        let response = app.client.get(format!("{}/metrics", app.address)).send().await.expect("scrape");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain"));
        parse_prometheus(&response.text().await.expect("body"))
    };
    let before = scrape().await;
    app.upload("counted.txt", None, b"x").await;
    app.confirm("counted.txt").await.ok();
    app.confirm("never-there").await.error(404, "OBJECT_NOT_FOUND");
    let mut grpc = app.grpc().await;
    let _ = grpc.confirm_upload(grpc_confirm("counted.txt")).await.expect("idempotent confirm");
    let after = scrape().await;
    let moved = |name: &str, labels: &[&str]| sample(&after, name, labels) - sample(&before, name, labels);

    assert!(moved("draftstore_http_requests_total", &[r#"route="/api/v1/upload-url""#, r#"status="200""#]) >= 1.0);
    assert!(moved("draftstore_http_requests_total", &[r#"route="/api/v1/confirm-upload""#, r#"status="404""#]) >= 1.0);
    assert!(moved("draftstore_http_request_duration_seconds_count", &[r#"route="/api/v1/confirm-upload""#]) >= 2.0);
    assert!(moved("draftstore_grpc_requests_total", &[r#"method="ConfirmUpload""#, r#"code="Ok""#]) >= 1.0);
    assert!(moved("draftstore_presigned_urls_total", &[r#"method="PUT""#]) >= 1.0);
    assert!(moved("draftstore_confirms_total", &[r#"outcome="confirmed""#]) >= 1.0);
    assert!(moved("draftstore_confirms_total", &[r#"outcome="already_confirmed""#]) >= 1.0);
    assert!(moved("draftstore_confirms_total", &[r#"outcome="OBJECT_NOT_FOUND""#]) >= 1.0);
    assert!(moved("draftstore_storage_calls_total", &[r#"outcome="ok""#]) >= 2.0);
    assert!(moved("draftstore_storage_call_duration_seconds_bucket", &[r#"le="+Inf""#]) >= 2.0);
    assert_eq!(sample(&after, "draftstore_build_info", &[]), 1.0);

    let cleaner = serve_settings(&[]).common.cleaner(app.store.clone());
    let passes = |s: &[(String, f64)]| sample(s, "draftstore_cleaner_passes_total", &[]);
    let _ = cleaner.clean_once(time::OffsetDateTime::now_utc()).await;
    assert!(passes(&scrape().await) >= passes(&after) + 1.0, "cleaner passes are counted");
}

#[tokio::test]
async fn ready_reuses_its_answer_for_the_cache_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf-8");
    // serve_settings sets --ready-cache 0; build the arguments here to ask for the cache.
    let mut settings = serve_settings(&["--data-dir", data_dir]);
    settings.ready_cache = Duration::from_secs(2);
    let app = spawn(settings).await;
    assert_eq!(app.get("/ready").await.ok()["status"], "ready");
    std::fs::remove_dir_all(dir.path().join("main")).expect("remove the main bucket");
    assert_eq!(app.get("/ready").await.status, 200, "the cached answer is reused");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.get("/ready").await.error(503, "BUCKET_NOT_FOUND");
}

fn manifest(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_manifests_point_at_routes_ports_and_commands_that_exist() {
    let app = spawn_app().await;
    let deployment = manifest("deploy/base/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"], json!(["serve"]));
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().expect("an HTTP probe");
        assert_eq!(app.get(path).await.status, 200, "{probe} {path} answers 200");
        assert_eq!(container[probe]["httpGet"]["port"], "http");
    }
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    let ports: Vec<(String, u64)> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (p["name"].as_str().expect("named").to_owned(), p["containerPort"].as_u64().expect("number")))
        .collect();
    assert_eq!(ports, vec![("grpc".to_owned(), 50051), ("http".to_owned(), 8080)]);

    let config = manifest("deploy/base/configmap.yaml");
    let shutdown: u64 = config["data"]["SHUTDOWN_TIMEOUT"].as_str().expect("set").parse().expect("seconds");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().expect("set");
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().expect("a preStop pause");
    assert!(
        grace > pause + shutdown && grace <= pause + shutdown + 10,
        "grace {grace} s must just exceed the preStop pause {pause} s plus SHUTDOWN_TIMEOUT {shutdown} s"
    );
    assert_eq!(config["data"]["HTTP_PORT"], "8080");
    assert_eq!(config["data"]["GRPC_PORT"], "50051");

    // Every ConfigMap and Secret key is a variable the binary reads.
    let help = Command::new(env!("CARGO_BIN_EXE_draftstore")).args(["serve", "--help"]).output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    let secrets =
        [manifest("deploy/overlays/aws/secret-aws.yaml"), manifest("deploy/overlays/seaweedfs/secret-storage.yaml")];
    let maps = [&config["data"], &secrets[0]["stringData"], &secrets[1]["stringData"]];
    for key in maps.iter().flat_map(|m| m.as_object().expect("a map").keys()) {
        assert!(help.contains(&format!("env: {key}")), "{key} is not a DraftStore variable");
    }

    let cron = manifest("deploy/base/cronjob.yaml");
    assert_eq!(cron["spec"]["schedule"], "0 2 * * *");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let job = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(job["args"], json!(["clean"]));
    let clean_help = Command::new(env!("CARGO_BIN_EXE_draftstore")).args(["clean", "--help"]).output().expect("help");
    assert!(clean_help.status.success(), "`draftstore clean` exists");

    let service = manifest("deploy/base/service.yaml");
    let targets: Vec<&str> = service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["targetPort"].as_str().expect("named"))
        .collect();
    assert_eq!(targets, ["grpc", "http"]);
    let headless = manifest("deploy/base/service-grpc.yaml");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["ports"][0]["targetPort"], "grpc");
}

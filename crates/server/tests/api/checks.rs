//! Content trust at confirm, on the local backend and on SeaweedFS: a draft's bytes must be what its declared type
//! says, an image must be within MAX_IMAGE_PIXELS, and with CLAMD_ADDRESS a real clamd must find it clean; a draft
//! that fails is deleted and nothing reaches the main bucket.

use std::time::Instant;

use serde_json::{Value, json};

use crate::clamd::{self, Clamd};
use crate::helpers::multipart::{completion, error_reason, put_parts, start};
use crate::helpers::{
    Backend, Server, TestApp, fixture, grpc_confirm, on_both_backends, report, signed_put, spawn_app_with,
    upload_ticket, windows_program,
};
use crate::seaweed::{self, SeaweedFs};

/// A 2 KiB PNG whose header announces 100,000 × 100,000 pixels.
fn png_bomb() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend_from_slice(&100_000u32.to_be_bytes());
    bytes.extend_from_slice(&100_000u32.to_be_bytes());
    bytes.extend_from_slice(b"\x08\x02\0\0\0\0\0\0\0");
    bytes.resize(2048, 0);
    bytes
}

/// Uploads a draft declared as `content_type` and confirms it.
async fn confirm_as(app: &TestApp, name: &str, content_type: &str, bytes: &[u8]) -> crate::helpers::Answer {
    app.upload(name, Some(content_type), bytes).await;
    app.confirm(name).await
}

/// Asserts a refusal of this type whose message names `words`, and that neither the draft nor a main object is
/// left.
async fn assert_refused(app: &TestApp, name: &str, answer: crate::helpers::Answer, error_type: &str, words: &[&str]) {
    answer.error(422, error_type);
    let message = answer.body["error_message"].as_str().expect("message");
    for word in words {
        assert!(message.contains(word), "'{word}' is not in: {message}");
    }
    app.download_url(name, Some("draft")).await.error(404, "OBJECT_NOT_FOUND");
    app.download_url(name, Some("main")).await.error(404, "OBJECT_NOT_FOUND");
}

/// Every content check on one server with the default settings.
async fn content_checks(app: &TestApp) {
    let program = windows_program();
    let refused = confirm_as(app, "avatar.png", "image/png", &program).await;
    let words = ["image/png", "application/vnd.microsoft.portable-executable", "active content"];
    assert_refused(app, "avatar.png", refused, "CONTENT_TYPE_MISMATCH", &words).await;

    let refused = confirm_as(app, "photo.jpg", "image/jpeg", &fixture("photo.png")).await;
    assert_refused(app, "photo.jpg", refused, "CONTENT_TYPE_MISMATCH", &["image/jpeg", "image/png"]).await;

    let page = b"<!DOCTYPE html>\n<html><body><script>alert(document.cookie)</script></body></html>\n";
    let refused = confirm_as(app, "notes.txt", "text/plain", page).await;
    assert_refused(app, "notes.txt", refused, "CONTENT_TYPE_MISMATCH", &["text/plain", "text/html"]).await;

    let refused = confirm_as(app, "bomb.png", "image/png", &png_bomb()).await;
    assert_refused(app, "bomb.png", refused, "IMAGE_TOO_LARGE", &["100000 × 100000", "MAX_IMAGE_PIXELS"]).await;

    let accepted = [
        ("photo.png", "image/png", Some((64, 48))),
        ("photo.jpg", "image/jpeg", Some((64, 48))),
        ("anim.gif", "image/gif", Some((40, 30))),
        ("photo.webp", "image/webp", Some((64, 48))),
        ("doc.pdf", "application/pdf", None),
        ("archive.zip", "application/zip", None),
    ];
    for (file, content_type, size) in accepted {
        let name = format!("real/{file}");
        let body = confirm_as(app, &name, content_type, &fixture(file)).await.ok();
        let mut expected = json!({ "detected_type": content_type });
        if let Some((width, height)) = size {
            expected["width"] = json!(width);
            expected["height"] = json!(height);
        }
        assert_eq!(body["content"], expected, "{file}");
        assert_eq!(app.download(&name, Some("main")).await.1, fixture(file), "{file} promoted whole");
    }
    // An alias of the detected type is the same type.
    assert_eq!(confirm_as(app, "alias.jpg", "image/jpg", &fixture("photo.jpg")).await.ok()["content"]["width"], 64);

    // Nothing detected: the declared type stands.
    for (name, content_type, bytes) in [
        ("table.csv", "text/csv", &b"name,size\nphoto.png,1039\n"[..]),
        ("data.json", "application/json", &b"{\"photos\": [1, 2, 3]}\n"[..]),
    ] {
        assert_eq!(confirm_as(app, name, content_type, bytes).await.ok()["content"], json!({}), "{name}");
    }

    // A multipart draft is checked like a single one.
    let declared = json!({ "content_type": "image/png", "content_length": program.len() });
    let started = start(app, "parts.png", declared).await;
    let upload_id = started["upload_id"].as_str().expect("id").to_owned();
    let etags = put_parts(app, "parts.png", &upload_id, std::slice::from_ref(&program)).await;
    app.post("/api/v1/multipart/complete", &completion("parts.png", &upload_id, &etags)).await.ok();
    let refused = app.confirm("parts.png").await;
    assert_refused(app, "parts.png", refused, "CONTENT_TYPE_MISMATCH", &["image/png"]).await;

    // gRPC: the same refusal, FAILED_PRECONDITION naming the reason; the same report.
    let mut grpc = app.grpc().await;
    app.upload("grpc.png", Some("image/png"), &program).await;
    let status = grpc.confirm_upload(grpc_confirm("grpc.png")).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(error_reason(&status), "CONTENT_TYPE_MISMATCH");
    app.upload("grpc.webp", Some("image/webp"), &fixture("photo.webp")).await;
    let confirmed = grpc.confirm_upload(grpc_confirm("grpc.webp")).await.expect("confirmed").into_inner();
    let content = confirmed.content.expect("a report");
    assert_eq!((content.detected_type.as_str(), content.width, content.height), ("image/webp", Some(64), Some(48)));
}

/// An allow-list holds for the detected type too, and CONTENT_CHECKS=off trusts the declaration.
async fn allow_list_and_off(on: &TestApp, off: &TestApp) {
    let program = windows_program();
    let refused = confirm_as(on, "avatar.png", "image/png", &program).await;
    assert_refused(on, "avatar.png", refused, "CONTENT_TYPE_MISMATCH", &["active content"]).await;
    // Any type may be declared application/octet-stream, where that is allowed; the bytes' type must be allowed too.
    let refused = confirm_as(on, "avatar.bin", "application/octet-stream", &program).await;
    assert_refused(on, "avatar.bin", refused, "CONTENT_TYPE_MISMATCH", &["ALLOWED_CONTENT_TYPES"]).await;
    let body = confirm_as(on, "photo.bin", "application/octet-stream", &fixture("photo.png")).await.ok();
    assert_eq!(body["content"]["detected_type"], "image/png");
    assert_eq!(confirm_as(on, "ok.png", "image/png", &fixture("photo.png")).await.ok()["content"]["width"], 64);

    let body = confirm_as(off, "avatar.png", "image/png", &program).await.ok();
    assert_eq!(body["content"], json!({}), "nothing checked");
    assert_eq!(off.download("avatar.png", Some("main")).await.1, program);
}

async fn drafts_must_be_what_they_claim(backend: Backend) {
    content_checks(&backend.spawn(&[]).await).await;
    let on = backend.spawn(&["--allowed-content-types", "image/*,application/octet-stream"]).await;
    let off = backend
        .spawn(&["--allowed-content-types", "image/*,application/octet-stream", "--content-checks", "off"])
        .await;
    allow_list_and_off(&on, &off).await;
}

on_both_backends!(drafts_must_be_what_they_claim);

/// A clean draft is promoted with its scan; EICAR is refused and deleted; with clamd down the confirm fails 503
/// and keeps the draft, and the same confirm succeeds once clamd is back.
async fn scans(app: &TestApp, clamd: &mut Clamd) {
    let body = confirm_as(app, "clean.png", "image/png", &fixture("photo.png")).await.ok();
    assert_eq!(body["content"]["scan"]["result"], "clean", "{body}");
    assert!(body["content"]["scan"]["engine"].as_str().is_some_and(|e| e.starts_with("ClamAV ")), "{body}");

    let refused = confirm_as(app, "eicar.txt", "text/plain", &clamd::eicar()).await;
    assert_refused(app, "eicar.txt", refused, "UPLOAD_INFECTED", &[clamd::EICAR_SIGNATURE]).await;

    clamd.stop();
    app.upload("later.txt", Some("text/plain"), b"scanned once clamd is back").await;
    let answer = app.confirm("later.txt").await;
    answer.error(503, "SCANNER_UNAVAILABLE");
    app.download_url("later.txt", Some("draft")).await.ok();
    app.download_url("later.txt", Some("main")).await.error(404, "OBJECT_NOT_FOUND");
    clamd.restart().await;
    assert_eq!(app.confirm("later.txt").await.ok()["content"]["scan"]["result"], "clean");
    assert_eq!(app.download("later.txt", Some("main")).await.1, b"scanned once clamd is back");
}

async fn clamav_scans_every_draft(backend: Backend) {
    let mut clamd = Clamd::start().await;
    let app = backend.spawn(&["--clamd-address", &clamd.address()]).await;
    scans(&app, &mut clamd).await;
    if backend == Backend::Local {
        let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.expect("metrics");
        let metrics = metrics.text().await.expect("text");
        // The recorder is the test process's, shared with the other tests: the outcomes are there, the counts
        // are not ours.
        for line in [r#"draftstore_scans_total{outcome="clean"} "#, r#"draftstore_scans_total{outcome="infected"} "#] {
            assert!(metrics.contains(line), "{line} is not in:\n{metrics}");
        }
        assert!(
            metrics.contains("draftstore_scan_duration_seconds") && metrics.contains("draftstore_scanned_bytes_total")
        );
    }
}

on_both_backends!(clamav_scans_every_draft);

/// clamd answering an error (its StreamMaxLength exceeded), or making no progress, is 503 and keeps the draft;
/// drafts above SCAN_MAX_SIZE are refused unscanned, or with SCAN_OVERSIZE=skip promoted unscanned.
#[tokio::test]
async fn a_scanner_that_cannot_decide_keeps_the_draft_and_oversize_drafts_follow_scan_oversize() {
    let small = Clamd::start_with_limit("1M").await;
    let app = spawn_app_with(&["--clamd-address", &small.address()]).await;
    app.upload("two.bin", Some("application/octet-stream"), &vec![7u8; 2 << 20]).await;
    let answer = app.confirm("two.bin").await;
    answer.error(503, "SCANNER_UNAVAILABLE");
    app.download_url("two.bin", Some("draft")).await.ok();

    // A "clamd" that takes connections into its backlog and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("tcp://{}", silent.local_addr().expect("address"));
    let app = spawn_app_with(&["--clamd-address", &address, "--scan-timeout", "1"]).await;
    app.upload("stuck.txt", Some("text/plain"), b"waiting").await;
    let started = Instant::now();
    let answer = app.confirm("stuck.txt").await;
    answer.error(503, "SCANNER_UNAVAILABLE");
    assert!(answer.body["error_message"].as_str().is_some_and(|m| m.contains("SCAN_TIMEOUT")), "{:?}", answer.body);
    // SCAN_TIMEOUT (1 s) and a margin a loaded machine keeps.
    assert!(started.elapsed() < std::time::Duration::from_secs(1 + 4), "{:?}", started.elapsed());
    app.download_url("stuck.txt", Some("draft")).await.ok();

    let clamd = Clamd::start().await;
    let refuse = spawn_app_with(&["--clamd-address", &clamd.address(), "--scan-max-size", "10"]).await;
    let refused = confirm_as(&refuse, "big.txt", "text/plain", b"eleven bytes or more").await;
    assert_refused(&refuse, "big.txt", refused, "UPLOAD_REJECTED", &["SCAN_MAX_SIZE"]).await;
    let skip = ["--clamd-address", &clamd.address(), "--scan-max-size", "10", "--scan-oversize", "skip"];
    let skip = spawn_app_with(&skip).await;
    let body = confirm_as(&skip, "big.txt", "text/plain", b"eleven bytes or more").await.ok();
    assert_eq!(body["content"]["scan"], json!({ "result": "skipped" }));
}

/// Peak resident memory of a process, from `/proc`.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("kB")
}

#[tokio::test]
async fn a_gib_draft_is_streamed_through_the_scanner_in_bounded_memory() {
    let weed = SeaweedFs::start().await;
    let clamd = Clamd::start().await;
    let bucket = seaweed::unique_bucket();
    let mut args = weed.s3_args(&bucket);
    args.extend(["--clamd-address", &clamd.address(), "--scan-max-size", "1100000000"].map(str::to_owned));
    let mut server = Server::new(args);
    server.start().await;
    let client = reqwest::Client::new();
    let api = |route: &str| format!("{}/api/v1/{route}", server.url());

    // 1 GiB with the tests' marker in its last bytes: only a scan of every byte finds it.
    let size = 1usize << 30;
    let mut bytes = vec![0x5au8; size];
    bytes[size - clamd::MARKER.len()..].copy_from_slice(clamd::MARKER);
    let request = json!({ "object_name": "big.bin", "content_type": "application/octet-stream" });
    let ticket = upload_ticket(&client, &server.url(), &request).await;
    assert_eq!(signed_put(&client, &ticket).body(bytes).send().await.expect("uploaded").status(), 200);

    let before = peak_rss_kib(server.pid());
    let started = Instant::now();
    let answer = client.post(api("confirm-upload")).json(&json!({ "object_name": "big.bin" })).send().await;
    let answer = answer.expect("answered");
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.expect("json");
    let peak = peak_rss_kib(server.pid());
    report(&format!(
        "scanning 1 GiB through DraftStore took {:?}; peak RSS {} MiB (before the confirm {} MiB)",
        started.elapsed(),
        peak / 1024,
        before / 1024
    ));
    assert_eq!((status, body["error_type"].as_str()), (422, Some("UPLOAD_INFECTED")), "{body}");
    assert!(body["error_message"].as_str().is_some_and(|m| m.contains(clamd::MARKER_SIGNATURE)), "{body}");
    assert!(peak < 64 * 1024, "the server's peak RSS reached {} MiB", peak / 1024);
}

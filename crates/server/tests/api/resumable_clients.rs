//! Real resumable clients against DraftStore's `/files/` endpoint, on the local backend and on SeaweedFS:
//! tus-js-client 4 in Node, in tus 1.0 and in its `ietf-draft-05` mode (the IETF draft, interop version 6),
//! uploading every size of the acceptance list and resuming after the client or the server was killed with SIGKILL
//! half-way through a request; `@uppy/tus` 6 in headless Chromium; three replicas behind HAProxy taking the appends
//! of one upload in turn. Each upload ends as a draft that is confirmed and downloaded, its bytes compared.
//! `scripts/test` installs Node's tools, Chromium and HAProxy; a missing tool fails the test.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::images::ChildApp;
use crate::helpers::tus::{TusClient, upload};
use crate::helpers::{Backend, Server, free_port, on_both_backends, pseudo_random_bytes, report};

const MIB: usize = 1 << 20;

/// tus-js-client's two protocols: tus 1.0.0, and the IETF draft as its interop version 6.
const PROTOCOLS: [&str; 2] = ["tus-v1", "ietf-draft-05"];

/// Retries over 80 s: enough for a killed server to start again (slowly, on a loaded machine) and for the 20 s lease
/// it left on the upload it was writing to run out.
const RETRIES: [u64; 19] =
    [0, 1000, 2000, 3000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000];

/// How long one client may take to its end.
const UPLOAD_TIME: Duration = Duration::from_secs(300);

fn api_keys() -> String {
    crate::helpers::api_keys(&crate::helpers::TENANTS)
}

/// Writes `len` bytes of `seed` to `dir/<file>`; returns the path and the bytes.
fn file_of(dir: &Path, file: &str, len: usize, seed: u64) -> (String, Vec<u8>) {
    let bytes = pseudo_random_bytes(len, seed);
    let path = dir.join(file);
    std::fs::write(&path, &bytes).expect("file written");
    (path.to_str().expect("utf-8").to_owned(), bytes)
}

/// An offset as tus-js-client sends it (a number) or a server answers it (a header's text).
fn offset(event: &Value) -> u64 {
    event["offset"]
        .as_u64()
        .or_else(|| event["offset"].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {event}"))
}

/// Confirms the draft `name` through the API at `base` and downloads the object; its content type and bytes.
async fn confirm_and_download(base: &str, bearer: Option<&str>, name: &str) -> (String, Vec<u8>) {
    let client = reqwest::Client::new();
    let call = |route: &str, body: Value| {
        let request = client.post(format!("{base}/api/v1/{route}")).json(&body);
        match bearer {
            Some(bearer) => request.bearer_auth(bearer),
            None => request,
        }
    };
    let confirmed = call("confirm-upload", json!({ "object_name": name })).send().await.expect("sent");
    let status = confirmed.status();
    assert_eq!(status, 200, "confirm of {name}: {}", confirmed.text().await.unwrap_or_default());
    let ticket: Value = call("download-url", json!({ "object_name": name, "stage": "main" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let response = client.get(ticket["download_url"].as_str().expect("download_url")).send().await.expect("GET");
    assert_eq!(response.status(), 200, "download of {name}");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    (content_type, response.bytes().await.expect("body").to_vec())
}

/// The acceptance list's sizes, each with the way tus-js-client is asked to send it: in one PATCH, with the first
/// bytes in the creation request (creation-with-upload; the draft's creation with content), or in PATCHes of a
/// chunk size that leaves a tail shorter than an S3 part between them.
fn cases() -> [(usize, Option<usize>, bool); 5] {
    [
        (0, None, false),
        (1, None, true),
        (5 * MIB - 1, None, false),
        (5 * MIB + 1, Some(5 * MIB), false),
        (64 * MIB, Some(6 * MIB), true),
    ]
}

async fn tus_js_client_uploads_every_size_in_both_protocols(backend: Backend) {
    let keys = api_keys();
    let app = backend.spawn(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let alice = app.as_caller("key-of-alice");
    let dir = tempfile::tempdir().expect("tempdir");
    for (p, protocol) in PROTOCOLS.into_iter().enumerate() {
        for (seed, (size, chunk, during_creation)) in (p as u64 * 10..).zip(cases()) {
            let name = format!("tus/{protocol}/{size}.bin");
            let (file, bytes) = file_of(dir.path(), &format!("{protocol}-{size}.bin"), size, seed);
            let options = json!({
                "endpoint": format!("{}/files/", app.address), "file": file, "protocol": protocol,
                "token": "key-of-alice", "metadata": { "object_name": name, "filetype": "video/mp4" },
                "chunkSize": chunk, "uploadDataDuringCreation": during_creation,
            });
            let (client, success) = upload(&options, UPLOAD_TIME).await;
            assert_eq!(success["objectName"], json!(name), "the name DraftStore-Object-Name reports");
            if let Some(chunk) = chunk {
                let patches = client.requests("PATCH").count() + usize::from(during_creation);
                assert_eq!(patches, size.div_ceil(chunk), "{name}: one append per chunk");
            }
            alice.confirm(&name).await.ok();
            let (content_type, body) = alice.download(&name, Some("main")).await;
            assert_eq!(content_type, "video/mp4", "{name}");
            assert!(
                body == bytes,
                "{name}: the confirmed object differs from the file uploaded ({} bytes)",
                body.len()
            );
        }
    }
}

/// The options of a 64 MiB upload in PATCHes of 8 MiB whose second request body stops at 12 MiB until released,
/// its URL kept in `url_store` under the file's fingerprint.
fn held_upload(endpoint: &str, file: &str, protocol: &str, name: &str, url_store: &Path, token: Option<&str>) -> Value {
    json!({
        "endpoint": endpoint, "file": file, "protocol": protocol, "token": token,
        "metadata": { "object_name": name, "filetype": "video/mp4" }, "chunkSize": 8 * MIB,
        "urlStore": url_store, "holdAt": 12 * MIB, "retryDelays": RETRIES,
    })
}

/// Waits until the client's first PATCH was acknowledged and its second stops half sent; the offset acknowledged.
async fn until_held(client: &mut TusClient) -> u64 {
    let accepted = client.until(UPLOAD_TIME, |e| e["event"] == "chunk").await["accepted"].as_u64().expect("bytes");
    client.until(UPLOAD_TIME, |e| e["event"] == "held").await;
    // The server reads what was sent of the body before the client or the server dies.
    tokio::time::sleep(Duration::from_millis(500)).await;
    accepted
}

async fn tus_js_client_resumes_after_the_client_is_killed(backend: Backend) {
    let keys = api_keys();
    let app = backend.spawn(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let alice = app.as_caller("key-of-alice");
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("{}/files/", app.address);
    for (seed, protocol) in (40..).zip(PROTOCOLS) {
        let name = format!("tus/{protocol}/killed-client.bin");
        let (file, bytes) = file_of(dir.path(), &format!("{protocol}.bin"), 64 * MIB, seed);
        let url_store = dir.path().join(format!("{protocol}-urls.json"));
        let options = held_upload(&endpoint, &file, protocol, &name, &url_store, Some("key-of-alice"));
        let mut first = TusClient::start(&options);
        let accepted = until_held(&mut first).await;
        assert_eq!(accepted, 8 * MIB as u64, "{protocol}: the first chunk");
        first.kill().await;

        // Another process, as an application started again: the upload found in the URL store by the file's
        // fingerprint, resumed where the server says it stands.
        let mut resumed = options.clone();
        resumed["resume"] = json!(true);
        resumed["holdAt"] = Value::Null;
        let (second, _) = upload(&resumed, UPLOAD_TIME).await;
        assert_eq!(second.requests("POST").count(), 0, "{protocol}: resumed, not created anew: {:?}", second.events);
        let head = second.events.iter().find(|e| e["event"] == "response" && e["method"] == "HEAD");
        let head = head.unwrap_or_else(|| panic!("{protocol}: no HEAD answered: {:?}", second.events));
        let patch = second.requests("PATCH").next().expect("a PATCH");
        assert_eq!(offset(patch), offset(head), "{protocol}: the PATCH starts where HEAD said");
        assert!(
            (accepted..=12 * MIB as u64).contains(&offset(patch)),
            "{protocol}: resumed from {}, not from the acknowledged {accepted} or what followed it",
            offset(patch)
        );
        report(&format!(
            "killed client, {} {protocol}: resumed at {} (acknowledged {accepted})",
            backend.label(),
            offset(patch)
        ));
        alice.confirm(&name).await.ok();
        let (content_type, body) = alice.download(&name, Some("main")).await;
        assert_eq!(content_type, "video/mp4");
        assert!(body == bytes, "{protocol}: the resumed upload's object differs from the file");
    }
}

async fn tus_js_client_resumes_after_the_server_is_killed(backend: Backend) {
    let mut app = ChildApp::start(backend, &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("{}/files/", app.server.url());
    for (seed, protocol) in (50..).zip(PROTOCOLS) {
        let name = format!("tus/{protocol}/killed-server.bin");
        let (file, bytes) = file_of(dir.path(), &format!("{protocol}.bin"), 64 * MIB, seed);
        let url_store = dir.path().join(format!("{protocol}-urls.json"));
        let mut client = TusClient::start(&held_upload(&endpoint, &file, protocol, &name, &url_store, None));
        let accepted = until_held(&mut client).await;
        let before = client.events.len();
        app.server.kill();
        // The client's request fails; its retries meet a closed port, then the server started again on the same
        // store, which may refuse the upload (423) until the killed server's lease runs out.
        client.release().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        app.server.start().await;
        client.finish(UPLOAD_TIME).await;

        let after: Vec<&Value> = client.events[before..].iter().collect();
        assert!(!after.iter().any(|e| e["event"] == "request" && e["method"] == "POST"), "{protocol}: created anew");
        let patch = after.iter().find(|e| e["event"] == "request" && e["method"] == "PATCH").expect("a PATCH");
        assert!(
            (accepted..=12 * MIB as u64).contains(&offset(patch)),
            "{protocol}: resumed from {} after the restart, acknowledged before it: {accepted}",
            offset(patch)
        );
        let answers: Vec<String> = after
            .iter()
            .filter(|e| e["event"] == "response")
            .map(|e| format!("{} {}", e["method"].as_str().unwrap_or("?"), e["status"]))
            .collect();
        report(&format!(
            "killed server, {} {protocol}: {} requests after the kill, answers {answers:?}; resumed at {} (acknowledged {accepted})",
            backend.label(),
            after.iter().filter(|e| e["event"] == "request").count(),
            offset(patch)
        ));
        let (content_type, body) = confirm_and_download(&app.server.url(), None, &name).await;
        assert_eq!(content_type, "video/mp4");
        assert!(body == bytes, "{protocol}: the object differs from the file uploaded across the restart");
    }
}

on_both_backends!(
    tus_js_client_uploads_every_size_in_both_protocols,
    tus_js_client_resumes_after_the_client_is_killed,
    tus_js_client_resumes_after_the_server_is_killed
);

/// The bytes the Uppy page generates: byte i is (i × 31 + seed) mod 251.
fn page_bytes(size: usize, seed: u32) -> Vec<u8> {
    (0..size as u32).map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8).collect()
}

async fn uppy_tus_in_chromium_uploads_drafts(backend: Backend) {
    let tools = crate::browser::browser_tools();
    assert!(
        tools.join("node_modules/@uppy/tus").is_dir(),
        "@uppy/tus is not installed in {}: run scripts/test, which installs the browser tools",
        tools.display()
    );
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let keys = api_keys();
    let app = backend.spawn(&["--auth-mode", "api-key", "--api-keys", &keys, "--cors-allowed-origins", &origin]).await;
    // Named by Uppy's `filename` (the draft goes under `uploads/<id>/`), or by the application's `object_name`.
    let files = [
        ("empty.txt", 0, 1, "text/plain", None),
        ("one-kib.bin", 1024, 2, "application/octet-stream", Some("tus/browser/named.bin")),
        ("twelve-mib.mp4", 12 * MIB, 3, "video/mp4", None),
    ];
    let specs: Vec<Value> = files
        .iter()
        .map(|(name, size, seed, kind, object)| {
            json!({ "name": name, "size": size, "seed": seed, "type": kind, "objectName": object })
        })
        .collect();
    let (port, specs) = (port.to_string(), Value::Array(specs).to_string());
    let args = [app.address.as_str(), "key-of-alice", &port, &specs].map(std::ffi::OsStr::new);
    let report: Value = crate::browser::run_in_chromium("run-uppy-tus.mjs", &args, &tools, "the @uppy/tus run").await;
    let uploads = &report["uploads"];
    assert_eq!(uploads["failed"], json!([]), "{report}");
    let alice = app.as_caller("key-of-alice");
    for (name, size, seed, kind, object) in files {
        let uploaded = crate::browser::successful_upload(&report, name);
        let draft = uploaded["objectName"].as_str().unwrap_or_else(|| panic!("no DraftStore-Object-Name: {report}"));
        match object {
            Some(object) => assert_eq!(draft, object),
            None => assert!(draft.starts_with("uploads/") && draft.ends_with(&format!("/{name}")), "{draft}"),
        }
        alice.confirm(draft).await.ok();
        let (content_type, body) = alice.download(draft, Some("main")).await;
        assert_eq!(content_type, kind, "{name}");
        assert!(body == page_bytes(size, seed), "{name}: the confirmed object differs from what the page uploaded");
    }
}

on_both_backends!(uppy_tus_in_chromium_uploads_drafts);

/// How many PATCHes to `/files/…` each replica has answered with 204, by its `/metrics`.
async fn patches_by_replica(replicas: &[Server]) -> Vec<u64> {
    let mut counts = Vec::new();
    for replica in replicas {
        let metrics = reqwest::get(format!("{}/metrics", replica.url())).await.expect("metrics");
        let metrics = metrics.text().await.expect("text");
        let answered = metrics
            .lines()
            .filter(|line| line.starts_with("draftstore_http_requests_total{") && line.contains("/files"))
            .filter(|line| line.contains("method=\"PATCH\"") && line.contains("status=\"204\""))
            .map(|line| line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()).expect("a count") as u64)
            .sum();
        counts.push(answered);
    }
    counts
}

/// Three replicas on one SeaweedFS behind HAProxy, as `scripts/cluster` deploys them, the proxy sending each request
/// to the next replica: one upload's PATCHes land on all three, each going on from where another left the upload.
#[tokio::test]
async fn the_appends_of_one_upload_land_on_three_replicas_behind_haproxy() {
    let (args, _) = Backend::SeaweedFs.args().await;
    let proxy_port = free_port();
    let public = format!("http://127.0.0.1:{proxy_port}");
    let mut replicas: Vec<Server> =
        (0..3).map(|_| Server::new([args.clone(), vec!["--public-url".into(), public.clone()]].concat())).collect();
    let addresses: Vec<String> = replicas.iter().map(|r| r.url().trim_start_matches("http://").to_owned()).collect();
    let haproxy =
        crate::haproxy::HaProxy::round_robin(proxy_port, &addresses.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
    for replica in &mut replicas {
        replica.start().await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (seed, protocol) in (60..).zip(PROTOCOLS) {
        let name = format!("tus/{protocol}/replicas.bin");
        let (file, bytes) = file_of(dir.path(), &format!("{protocol}.bin"), 24 * MIB + 7, seed);
        let options = json!({
            "endpoint": format!("{}/files/", haproxy.url()), "file": file, "protocol": protocol,
            "metadata": { "object_name": name, "filetype": "video/mp4" }, "chunkSize": 5 * MIB,
        });
        let before = patches_by_replica(&replicas).await;
        let (client, success) = upload(&options, UPLOAD_TIME).await;
        assert!(success["url"].as_str().is_some_and(|url| url.starts_with(&public)), "through the proxy: {success}");
        let after = patches_by_replica(&replicas).await;
        let took: Vec<u64> = after.iter().zip(&before).map(|(after, before)| after - before).collect();
        let patches = client.requests("PATCH").count() as u64;
        assert_eq!(patches, 5, "{protocol}: one PATCH per 5 MiB");
        assert_eq!(took.iter().sum::<u64>(), patches, "{protocol}: each PATCH answered 204 by one replica: {took:?}");
        assert!(took.iter().all(|n| *n > 0), "{protocol}: each replica took appends of the upload: {took:?}");
        report(&format!("three replicas, {protocol}: PATCHes per replica {took:?}"));
        let (content_type, body) = confirm_and_download(&haproxy.url(), None, &name).await;
        assert_eq!(content_type, "video/mp4");
        assert!(body == bytes, "{protocol}: the object differs from the file appended through three replicas");
    }
}

//! The local backend's signed URLs: only the exact request that was signed, before it expires, gets through.

use serde_json::Value;

use crate::helpers::{files_under, serve_settings, spawn, spawn_app, spawn_app_with};

fn url(ticket: &Value, field: &str) -> String {
    ticket[field].as_str().expect("url").to_owned()
}

async fn put(app: &crate::helpers::TestApp, url: &str, content_type: &str, body: &'static [u8]) -> u16 {
    app.client.put(url).header("content-type", content_type).body(body).send().await.expect("sent").status().as_u16()
}

#[tokio::test]
async fn tampered_upload_urls_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let ticket = app.upload_url("safe.txt", Some("text/plain")).await.ok();
    let good = url(&ticket, "upload_url");
    let before = files_under(&app.data_dir);
    let expires: String =
        good.split("X-DS-Expires=").nth(1).expect("expiry").chars().take_while(char::is_ascii_digit).collect();
    let later = (expires.parse::<u64>().expect("number") + 3600).to_string();
    let signature = good.split("X-DS-Signature=").nth(1).expect("signature").to_owned();
    let mut flipped = signature.clone();
    flipped.replace_range(0..1, if signature.starts_with('0') { "1" } else { "0" });
    let tampered = [
        good.replace("safe.txt", "evil.txt"),
        good.replace("/main-draft/", "/main/"),
        good.replace(&format!("X-DS-Expires={expires}"), &format!("X-DS-Expires={later}")),
        good.replace(&signature, &flipped),
        good.split("&X-DS-Signature").next().expect("prefix").to_owned(),
        good.replace("X-DS-SignedHeaders=content-type&", ""),
        format!("{good}&extra=1"),
        good.split('?').next().expect("path").to_owned(),
    ];
    for url in &tampered {
        let status = put(&app, url, "text/plain", b"forged").await;
        assert_eq!(status, 403, "{url}");
    }
    assert_eq!(put(&app, &good, "text/html", b"<script>").await, 403, "the signed content type is enforced");
    assert_eq!(files_under(&app.data_dir), before);
    assert_eq!(put(&app, &good, "text/plain", b"fine").await, 200);
}

#[tokio::test]
async fn a_download_url_only_reads_the_object_it_was_signed_for() {
    let app = spawn_app().await;
    app.upload("mine.txt", None, b"mine").await;
    app.upload("theirs.txt", None, b"theirs").await;
    let good = url(&app.download_url("mine.txt", None).await.ok(), "download_url");
    let response = app.client.get(good.replace("mine.txt", "theirs.txt")).send().await.expect("sent");
    assert_eq!(response.status(), 403);
    let response = app.client.put(&good).body("overwrite").send().await.expect("sent");
    assert_eq!(response.status(), 403, "a GET URL cannot upload");
    assert_eq!(app.download("mine.txt", None).await.1, b"mine");
}

#[tokio::test]
async fn expired_urls_are_refused() {
    let app = spawn_app_with(&["--upload-ttl", "1", "--download-ttl", "1"]).await;
    app.upload("soon.txt", None, b"x").await;
    let upload = url(&app.upload_url("soon.txt", None).await.ok(), "upload_url");
    let download = url(&app.download_url("soon.txt", None).await.ok(), "download_url");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(put(&app, &upload, "text/plain", b"late").await, 403);
    let response = app.client.get(&download).send().await.expect("sent");
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json error body");
    assert_eq!(body["error_type"], "ACCESS_DENIED");
    assert!(body["error_message"].as_str().expect("message").contains("expired"));
}

#[tokio::test]
async fn blob_paths_cannot_escape_the_bucket_folder() {
    let app = spawn_app().await;
    let before = files_under(&app.data_dir);
    for path in [
        "main-draft/..%2F..%2Fescape",
        "main-draft/a/%2e%2e/%2e%2e/escape",
        "..%2Fescape/x",
        "main-draft/%2Fetc%2Fpasswd",
    ] {
        let url = format!("{}/blobs/{path}?X-DS-Expires=99999999999&X-DS-Signature=00", app.address);
        let status = app.client.put(&url).body("x").send().await.expect("sent").status().as_u16();
        assert!(status == 400 || status == 403 || status == 404, "{path}: {status}");
    }
    assert_eq!(files_under(&app.data_dir), before);
    assert!(!app.data_dir.parent().expect("parent").join("escape").exists());
}

#[tokio::test]
async fn urls_survive_a_restart_with_the_generated_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf-8");
    let first = spawn(serve_settings(&["--data-dir", data_dir])).await;
    first.upload("kept.txt", Some("text/plain"), b"kept").await;
    let ticket = first.download_url("kept.txt", None).await.ok();
    let second = spawn(serve_settings(&["--data-dir", data_dir])).await;
    let moved = url(&ticket, "download_url").replace(&first.address.replace("127.0.0.1", "localhost"), &second.address);
    let response = second.client.get(&moved).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("body").as_ref(), b"kept");
}

#[tokio::test]
async fn public_url_sets_the_base_of_signed_urls() {
    let app = spawn_app_with(&["--public-url", "https://files.example.com/base"]).await;
    let ticket = app.upload_url("p.txt", None).await.ok();
    assert!(url(&ticket, "upload_url").starts_with("https://files.example.com/base/blobs/main-draft/p.txt?"));
}

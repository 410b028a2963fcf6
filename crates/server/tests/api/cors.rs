//! CORS: browsers on the origins of CORS_ALLOWED_ORIGINS may call the API and the local backend's signed URLs,
//! preflights are answered before authentication, and other origins get no CORS headers.

use reqwest::Method;
use serde_json::json;
use sha2::Digest;

use crate::helpers::{TestApp, spawn_app_with};

const APP: &str = "https://app.example.com";

async fn app() -> TestApp {
    let keys = format!("alice:{}", hex::encode(sha2::Sha256::digest("key-of-alice")));
    spawn_app_with(&[
        "--cors-allowed-origins",
        &format!("{APP},http://localhost:5173"),
        "--auth-mode",
        "api-key",
        "--api-keys",
        &keys,
    ])
    .await
}

async fn preflight(app: &TestApp, url: &str, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .expect("preflight sent")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn an_allowed_origin_passes_the_preflight_without_credentials_and_reads_the_answer() {
    let app = app().await;
    let url = format!("{}/api/v1/upload-url", app.address);
    let response = preflight(&app, &url, APP, "POST", "authorization,content-type").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(&response, "access-control-allow-origin"), Some(APP));
    let allowed = header(&response, "access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
    assert!(header(&response, "access-control-allow-methods").unwrap_or_default().contains("POST"));

    let answer = app
        .client
        .post(&url)
        .header("Origin", APP)
        .bearer_auth("key-of-alice")
        .json(&json!({ "object_name": "a.txt" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(APP));
    let denied = app.client.post(&url).header("Origin", APP).json(&json!({ "object_name": "a.txt" })).send().await;
    let denied = denied.expect("sent");
    assert_eq!(denied.status(), 401);
    assert_eq!(header(&denied, "access-control-allow-origin"), Some(APP), "the browser may read why");
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = app().await;
    let url = format!("{}/api/v1/upload-url", app.address);
    let response = preflight(&app, &url, "https://evil.example", "POST", "authorization,content-type").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let answer = app.client.post(&url).header("Origin", "https://evil.example").bearer_auth("key-of-alice");
    let answer = answer.json(&json!({ "object_name": "a.txt" })).send().await.expect("sent");
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    let without = spawn_app_with(&[]).await;
    let response =
        preflight(&without, &format!("{}/api/v1/upload-url", without.address), APP, "POST", "content-type").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None, "no origin configured, none allowed");
    let answer = without.client.post(format!("{}/api/v1/upload-url", without.address)).header("Origin", APP);
    let answer = answer.json(&json!({ "object_name": "a.txt" })).send().await.expect("sent");
    assert_eq!(answer.status(), 200);
    for name in ["access-control-allow-origin", "access-control-expose-headers", "vary"] {
        assert_eq!(header(&answer, name), None, "no origin configured: no {name}");
    }
}

#[tokio::test]
async fn signed_urls_of_the_local_backend_allow_the_browser_and_expose_the_etag() {
    let app = app().await.as_caller("key-of-alice");
    let ticket = app.upload_url("from/browser.txt", Some("text/plain")).await.ok();
    let url = ticket["upload_url"].as_str().expect("url");
    let response = preflight(&app, url, "http://localhost:5173", "PUT", "content-type").await;
    assert!(response.status().is_success());
    assert_eq!(header(&response, "access-control-allow-origin"), Some("http://localhost:5173"));
    let put = app
        .client
        .put(url)
        .header("Origin", "http://localhost:5173")
        .header("Content-Type", "text/plain")
        .body("hi")
        .send()
        .await
        .expect("sent");
    assert_eq!(put.status(), 200);
    assert_eq!(header(&put, "access-control-allow-origin"), Some("http://localhost:5173"));
    let exposed = header(&put, "access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
    assert!(header(&put, "etag").is_some_and(|etag| etag.starts_with('"')));
}

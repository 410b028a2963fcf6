//! Rate limits: a token bucket per tenant (per client address without authentication), shared by REST and gRPC,
//! answered 429 `RATE_LIMITED` with `Retry-After` (gRPC RESOURCE_EXHAUSTED with a RetryInfo), off by default.

use std::time::{Duration, Instant};

use draftstore_proto::draft::v1 as pb;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TENANTS, TestApp, api_keys, spawn_app_with};

async fn list(app: &TestApp) -> reqwest::Response {
    let mut request = app.client.post(format!("{}/api/v1/list-drafts", app.address)).json(&json!({}));
    if let Some(bearer) = &app.bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.expect("sent")
}

/// Lists until the first 429; returns how many were admitted before it, the seconds that took (rounded up: the
/// tokens that may have come back meanwhile), and its Retry-After. No assumption on how fast requests go.
async fn until_refused(app: &TestApp) -> (u64, u64, u64) {
    let started = Instant::now();
    let mut admitted = 0;
    loop {
        let response = list(app).await;
        if response.status() == 429 {
            let retry_after = refused(response).await;
            return (admitted, started.elapsed().as_secs() + 1, retry_after);
        }
        assert_eq!(response.status(), 200);
        admitted += 1;
        assert!(admitted < 1000, "never refused");
    }
}

/// Retry-After of a 429 after checking its body.
async fn refused(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), 429);
    let retry_after: u64 =
        response.headers()["retry-after"].to_str().expect("ascii").parse().expect("whole seconds in Retry-After");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error_type"], "RATE_LIMITED", "{body}");
    assert!(body["error_message"].as_str().expect("message").contains("too many requests"), "{body}");
    retry_after
}

#[tokio::test]
async fn each_tenant_has_its_own_bucket_shared_by_rest_and_grpc() {
    let keys = api_keys(&TENANTS);
    let app = spawn_app_with(&[
        "--auth-mode",
        "api-key",
        "--api-keys",
        &keys,
        "--rate-limit",
        "1",
        "--rate-limit-burst",
        "3",
    ])
    .await;
    let alice = app.as_caller(TENANTS[0].1);
    let mallory = app.as_caller(TENANTS[1].1);
    // A burst of 3, then one more token a second for as long as the burst took.
    let (admitted, took, retry_after) = until_refused(&alice).await;
    assert!((3..=3 + took).contains(&admitted), "{admitted} admitted in {took} s with a burst of 3 at 1/s");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");

    // The same bucket over gRPC: RESOURCE_EXHAUSTED with the code and a RetryInfo, after no more calls than the
    // tokens that came back since REST was refused.
    let (since, mut grpc, mut admitted) = (Instant::now(), alice.grpc().await, 0);
    let status = loop {
        match grpc.list_drafts(alice.rpc(pb::ListDraftsRequest::default())).await {
            Ok(_) => admitted += 1,
            Err(status) => break status,
        }
    };
    assert!(admitted <= since.elapsed().as_secs() + 1, "{admitted} gRPC calls admitted: not the same bucket");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(details.error_info().expect("ErrorInfo").reason, "RATE_LIMITED");
    assert!(details.retry_info().and_then(|r| r.retry_delay).is_some_and(|d| d <= Duration::from_secs(1)));

    // Another tenant is not held back, nor are probes, metrics or the page.
    assert_eq!(list(&mallory).await.status(), 200);
    for route in ["/health", "/ready", "/metrics", "/", "/openapi.json"] {
        for _ in 0..5 {
            let status = app.client.get(format!("{}{route}", app.address)).send().await.expect("sent").status();
            assert_eq!(status, 200, "{route}");
        }
    }
    // Bad credentials are refused as such, not counted against the tenant they name.
    assert_eq!(list(&app.as_caller("wrong-key")).await.status(), 401);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(list(&alice).await.status(), 200, "a token came back after Retry-After");

    let metrics =
        app.client.get(format!("{}/metrics", app.address)).send().await.expect("sent").text().await.expect("text");
    assert!(metrics.lines().any(|l| l.starts_with("draftstore_rate_limited_total{protocol=\"http\"}")), "{metrics}");
}

#[tokio::test]
async fn without_authentication_the_limit_is_per_client_address() {
    let app = spawn_app_with(&["--rate-limit", "2"]).await;
    let (admitted, took, _) = until_refused(&app).await;
    assert!((2..=2 + 2 * took).contains(&admitted), "{admitted} admitted in {took} s with a burst of 2 at 2/s");
}

#[tokio::test]
async fn rate_limits_are_off_by_default() {
    let app = spawn_app_with(&[]).await;
    for _ in 0..50 {
        assert_eq!(list(&app).await.status(), 200);
    }
}

/// A client that connects from `source`, a loopback address of its own.
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(source)).build().expect("a client")
}

async fn upload_url(client: &reqwest::Client, base: &str, forwarded_for: Option<&str>) -> u16 {
    let mut request = client.post(format!("{base}/api/v1/upload-url")).json(&json!({ "object_name": "a.txt" }));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    request.send().await.expect("sent").status().as_u16()
}

/// Behind HAProxy, with its address in TRUSTED_PROXIES, each client has its own bucket (without it, every client
/// would be the proxy); a header naming another client changes nothing, through the proxy or sent straight.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket_and_forged_headers_change_nothing() {
    let app =
        spawn_app_with(&["--rate-limit", "1", "--rate-limit-burst", "1", "--trusted-proxies", "127.0.0.1/32"]).await;
    let backend = app.address.trim_start_matches("http://").to_owned();
    let haproxy = crate::haproxy::HaProxy::start(&backend).await;
    let (one, two) = (client_from([127, 0, 0, 2]), client_from([127, 0, 0, 3]));

    assert_eq!(upload_url(&one, &haproxy.url(), None).await, 200);
    assert_eq!(upload_url(&one, &haproxy.url(), None).await, 429, "the same client, through the proxy");
    // HAProxy appends the address it saw: the right-most untrusted hop is still the first client.
    assert_eq!(upload_url(&one, &haproxy.url(), Some("203.0.113.9")).await, 429, "a forged first hop");
    assert_eq!(upload_url(&two, &haproxy.url(), None).await, 200, "another client, another bucket");

    // Straight to DraftStore from an untrusted address, the header is ignored.
    let direct = client_from([127, 0, 0, 4]);
    assert_eq!(upload_url(&direct, &app.address, Some("198.51.100.1")).await, 200);
    assert_eq!(upload_url(&direct, &app.address, Some("198.51.100.2")).await, 429, "one bucket whatever it claims");
}

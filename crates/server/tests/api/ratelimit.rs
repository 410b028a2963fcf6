//! Rate limits: a token bucket per tenant (per client address without authentication), shared by REST and gRPC,
//! answered 429 `RATE_LIMITED` with `Retry-After` (gRPC RESOURCE_EXHAUSTED with a RetryInfo), off by default.

use std::time::Duration;

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
    for _ in 0..3 {
        assert_eq!(list(&alice).await.status(), 200);
    }
    let retry_after = refused(list(&alice).await).await;
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");

    // The same bucket over gRPC: RESOURCE_EXHAUSTED with the code and a RetryInfo.
    let status = alice
        .grpc()
        .await
        .list_drafts(alice.rpc(pb::ListDraftsRequest::default()))
        .await
        .expect_err("limited over gRPC too");
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
    assert_eq!(list(&app).await.status(), 200);
    assert_eq!(list(&app).await.status(), 200);
    refused(list(&app).await).await;
}

#[tokio::test]
async fn rate_limits_are_off_by_default() {
    let app = spawn_app_with(&[]).await;
    for _ in 0..50 {
        assert_eq!(list(&app).await.status(), 200);
    }
}

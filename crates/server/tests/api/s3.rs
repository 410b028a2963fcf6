//! The S3 backend end to end on SeaweedFS, with an independent S3 client checking what the store holds.

use std::time::Duration;

use aws_sdk_s3::Client;
use serde_json::json;

use crate::helpers::{TestApp, serve_settings, spawn};
use crate::seaweed::{self, SeaweedFs};

async fn app_on(args: Vec<String>, extra: &[&str]) -> TestApp {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    spawn(serve_settings(&all)).await
}

async fn object(client: &Client, bucket: &str, key: &str) -> Option<(String, Vec<u8>)> {
    let object = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    let content_type = object.content_type().unwrap_or_default().to_owned();
    Some((content_type, object.body.collect().await.expect("body").into_bytes().to_vec()))
}

async fn whole_flow(weed: &SeaweedFs, app: &TestApp, bucket: &str) {
    let s3 = weed.client();
    let draft = format!("{bucket}-draft");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    app.upload("in/the draft.bin", Some("application/x-test"), &bytes).await;
    assert_eq!(object(&s3, &draft, "in/the draft.bin").await, Some(("application/x-test".to_owned(), bytes.clone())));
    assert_eq!(object(&s3, bucket, "in/the draft.bin").await, None);
    assert_eq!(app.download("in/the draft.bin", None).await, ("application/x-test".to_owned(), bytes.clone()));

    let confirmed = app.confirm("in/the draft.bin").await.ok();
    assert_eq!(confirmed["final_location"], json!(format!("{bucket}/in/the draft.bin")));
    assert_eq!(object(&s3, bucket, "in/the draft.bin").await, Some(("application/x-test".to_owned(), bytes.clone())));
    assert_eq!(object(&s3, &draft, "in/the draft.bin").await, None, "the draft is gone");
    let mut again = app.confirm("in/the draft.bin").await.ok();
    again["content"] = json!({});
    assert_eq!(again, confirmed, "confirm is idempotent (what the checks found comes with the first answer only)");
    assert_eq!(app.download("in/the draft.bin", None).await.1, bytes);
    app.confirm("never-uploaded").await.error(404, "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn the_whole_flow_works_as_storage_type_s3() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let app = app_on(weed.s3_args(&bucket), &[]).await;
    whole_flow(weed, &app, &bucket).await;
}

#[tokio::test]
async fn the_whole_flow_works_as_storage_type_minio() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let app = app_on(weed.minio_args(&bucket), &[]).await;
    whole_flow(weed, &app, &bucket).await;
}

#[tokio::test]
async fn concurrent_confirms_on_s3_all_succeed_and_the_object_is_whole() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let app = app_on(weed.s3_args(&bucket), &[]).await;
    let bytes = vec![3u8; 1024 * 1024];
    app.upload("race", None, &bytes).await;
    for answer in futures_util::future::join_all((0..8).map(|_| app.confirm("race"))).await {
        answer.ok();
    }
    assert_eq!(object(&weed.client(), &bucket, "race").await.map(|o| o.1), Some(bytes));
}

#[tokio::test]
async fn large_objects_are_confirmed_with_a_multipart_copy_that_keeps_the_content_type() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let five_mib = (5 * 1024 * 1024).to_string();
    let app =
        app_on(weed.s3_args(&bucket), &["--copy-multipart-threshold", &five_mib, "--copy-part-size", &five_mib]).await;
    let bytes: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    app.upload("big.bin", Some("video/mp4"), &bytes).await;
    app.confirm("big.bin").await.ok();
    let s3 = weed.client();
    let (content_type, stored) = object(&s3, &bucket, "big.bin").await.expect("confirmed object");
    assert_eq!(content_type, "video/mp4");
    assert!(stored == bytes, "the multipart copy holds the uploaded bytes");
    let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.expect("list uploads");
    assert!(uploads.uploads().is_empty(), "no multipart upload is left behind");
}

#[tokio::test]
async fn the_store_refuses_tampered_expired_and_mistyped_uploads() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let app = app_on(weed.s3_args(&bucket), &["--upload-ttl", "1"]).await;
    let ticket = app.upload_url("t.txt", Some("text/plain")).await.ok();
    let url = ticket["upload_url"].as_str().expect("url").to_owned();
    let put = |url: String, content_type: &'static str| {
        let client = app.client.clone();
        async move {
            client.put(url).header("content-type", content_type).body("x").send().await.expect("sent").status().as_u16()
        }
    };
    assert_eq!(put(url.replace("t.txt", "u.txt"), "text/plain").await, 403);
    let signature = url.split("X-Amz-Signature=").nth(1).expect("signed").to_owned();
    assert_eq!(put(url.replace(&signature, &"0".repeat(signature.len())), "text/plain").await, 403);
    assert_eq!(put(url.clone(), "text/html").await, 403, "the signed Content-Type is enforced");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(put(url, "text/plain").await, 403, "an expired URL is refused");
    let draft = format!("{bucket}-draft");
    let listed = weed.client().list_objects_v2().bucket(&draft).send().await.expect("list");
    assert_eq!(listed.key_count(), Some(0), "nothing was written");
}

#[tokio::test]
async fn presign_endpoint_signs_urls_for_the_public_host() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let public = format!("http://localhost:{}", weed.port);
    let app = app_on(weed.s3_args(&bucket), &["--presign-endpoint", &public]).await;
    let ticket = app.upload_url("pub.txt", None).await.ok();
    let url = ticket["upload_url"].as_str().expect("url");
    assert!(url.starts_with(&format!("{public}/{bucket}-draft/pub.txt?")), "{url}");
    assert_eq!(app.put_ticket(&ticket, b"public".to_vec()).await, 200);
    app.confirm("pub.txt").await.ok();
    assert_eq!(app.download("pub.txt", None).await.1, b"public");
}

#[tokio::test]
async fn cors_allowed_origins_puts_a_cors_rule_on_the_draft_bucket() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let _app = app_on(weed.s3_args(&bucket), &["--cors-allowed-origins", "https://app.example.com"]).await;
    let cors = weed.client().get_bucket_cors().bucket(format!("{bucket}-draft")).send().await.expect("CORS rule");
    let rule = cors.cors_rules().first().expect("one rule");
    assert_eq!(rule.allowed_origins(), ["https://app.example.com"]);
    for method in ["PUT", "POST", "DELETE", "GET"] {
        assert!(rule.allowed_methods().iter().any(|m| m == method), "{method}: {:?}", rule.allowed_methods());
    }
    assert!(rule.expose_headers().iter().any(|h| h.eq_ignore_ascii_case("etag")));
}

#[tokio::test]
async fn refused_credentials_are_access_denied_and_a_missing_bucket_is_404() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let app = app_on(weed.s3_args(&bucket), &[]).await;
    weed.client().delete_bucket().bucket(&bucket).send().await.expect("delete the empty main bucket");
    app.download_url("x", Some("main")).await.error(404, "BUCKET_NOT_FOUND");
    app.get("/ready").await.error(503, "BUCKET_NOT_FOUND");

    let mut args = weed.s3_args(&seaweed::unique_bucket());
    let secret = args.iter().position(|a| a == "--aws-secret-access-key").expect("flag") + 1;
    args[secret] = "wrong-secret".to_owned();
    let settings = serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let error = draftstore::startup::Application::build(settings).await.expect_err("refused at start-up");
    let cause = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("the store refused DraftStore's credentials"), "{error}: {cause}");
}

#[tokio::test]
async fn a_storage_outage_is_503_within_the_timeout_and_nothing_is_lost() {
    let weed = SeaweedFs::start().await;
    let bucket = seaweed::unique_bucket();
    let app = app_on(weed.s3_args(&bucket), &["--storage-timeout", "2"]).await;
    app.upload("kept.txt", Some("text/plain"), b"precious").await;
    assert_eq!(app.get("/ready").await.ok()["status"], "ready");

    weed.pause();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let confirm = client
        .post(format!("{}/api/v1/confirm-upload", app.address))
        .json(&json!({ "object_name": "kept.txt" }))
        .send()
        .await
        .expect("answered, not hung");
    assert_eq!(confirm.status(), 503);
    let body: serde_json::Value = confirm.json().await.expect("json");
    assert_eq!(body["error_type"], "NETWORK_ERROR");
    app.get("/ready").await.error(503, "NETWORK_ERROR");
    weed.resume();

    assert_eq!(app.get("/ready").await.ok()["status"], "ready");
    app.confirm("kept.txt").await.ok();
    assert_eq!(
        object(&weed.client(), &bucket, "kept.txt").await,
        Some(("text/plain".to_owned(), b"precious".to_vec()))
    );
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').expect("a query").1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_fast_signer_and_the_sdk_presigner_agree_and_the_store_accepts_both() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let draft = format!("{bucket}-draft");
    let app = app_on(weed.s3_args(&bucket), &[]).await;
    let ours = app.upload_url("same/key.txt", Some("text/plain")).await.ok();
    let ours_url = ours["upload_url"].as_str().expect("url").to_owned();
    let sdk = weed
        .client()
        .put_object()
        .bucket(&draft)
        .key("same/key.txt")
        .content_type("text/plain")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(3600)).expect("valid"))
        .await
        .expect("SDK presigns");
    assert_eq!(ours_url.split('?').next(), sdk.uri().split('?').next(), "same object URL");
    for param in ["X-Amz-Algorithm", "X-Amz-SignedHeaders", "X-Amz-Expires"] {
        assert_eq!(query_param(&ours_url, param), query_param(sdk.uri(), param), "{param}");
    }
    let scope = |url: &str| query_param(url, "X-Amz-Credential").split_once('/').map(|(_, s)| s.to_owned());
    assert_eq!(scope(&ours_url), scope(sdk.uri()), "same credential scope");

    assert_eq!(app.put_ticket(&ours, b"from ours".to_vec()).await, 200);
    let mut request = app.client.put(sdk.uri());
    for (name, value) in sdk.headers() {
        request = request.header(name, value);
    }
    assert_eq!(request.body("from the SDK").send().await.expect("sent").status(), 200);
    assert_eq!(object(&weed.client(), &draft, "same/key.txt").await.map(|o| o.1), Some(b"from the SDK".to_vec()));
}

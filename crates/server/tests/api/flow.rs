use serde_json::json;

use crate::helpers::{Backend, on_both_backends, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_whole_flow_moves_real_bytes_from_draft_to_main() {
    let app = spawn_app().await;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let ticket = app.upload_url("photos/cat.jpg", Some("image/jpeg")).await.ok();
    assert_eq!(ticket["method"], "PUT");
    assert_eq!(ticket["object_name"], "photos/cat.jpg");
    assert_eq!(ticket["headers"], json!({ "Content-Type": "image/jpeg" }));
    assert_eq!(app.put_ticket(&ticket, bytes.clone()).await, 200);

    let preview = app.download_url("photos/cat.jpg", None).await.ok();
    assert_eq!(preview["stage"], "draft");
    assert_eq!(app.download("photos/cat.jpg", None).await, ("image/jpeg".to_owned(), bytes.clone()));
    app.download_url("photos/cat.jpg", Some("main")).await.error(404, "OBJECT_NOT_FOUND");

    let confirmed = app.confirm("photos/cat.jpg").await.ok();
    assert_eq!(
        confirmed,
        json!({
            "success": true,
            "object_name": "photos/cat.jpg",
            "final_location": "main/photos/cat.jpg",
            "content": {}
        })
    );
    let after = app.download_url("photos/cat.jpg", None).await.ok();
    assert_eq!(after["stage"], "main");
    assert_eq!(app.download("photos/cat.jpg", Some("main")).await, ("image/jpeg".to_owned(), bytes));
    app.download_url("photos/cat.jpg", Some("draft")).await.error(404, "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn expiry_is_rfc3339_utc_and_follows_the_ttls() {
    let app = spawn_app_with(&["--upload-ttl", "120", "--download-ttl", "7200"]).await;
    let parse = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(v.as_str().expect("string"), &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339")
    };
    let now = time::OffsetDateTime::now_utc();
    let ticket = app.upload_url("a.txt", None).await.ok();
    assert!(ticket["expires_at"].as_str().expect("string").ends_with('Z'));
    let upload_in = (parse(&ticket["expires_at"]) - now).whole_seconds();
    assert!((118..=121).contains(&upload_in), "{upload_in}");
    assert_eq!(ticket["headers"], json!({}));
    app.upload("a.txt", None, b"x").await;
    let download_in = (parse(&app.download_url("a.txt", None).await.ok()["expires_at"]) - now).whole_seconds();
    assert!((7198..=7201).contains(&download_in), "{download_in}");
}

#[tokio::test]
async fn content_type_given_at_upload_survives_the_move() {
    let app = spawn_app().await;
    app.upload("doc.pdf", Some("application/pdf"), b"%PDF-1.7").await;
    app.confirm("doc.pdf").await.ok();
    assert_eq!(app.download("doc.pdf", None).await.0, "application/pdf");
    app.upload("plain", None, b"raw").await;
    assert_eq!(app.download("plain", None).await.0, "application/octet-stream");
}

#[tokio::test]
async fn confirm_is_idempotent() {
    let app = spawn_app().await;
    app.upload("once.txt", None, b"only once").await;
    let first = app.confirm("once.txt").await.ok();
    let second = app.confirm("once.txt").await.ok();
    // The same answer, but for what the checks found: they ran on the confirm that promoted the draft.
    assert_eq!(first["content"], json!({}), "plain text: no type detected");
    assert_eq!(second, json!({ "success": true, "object_name": "once.txt", "final_location": "main/once.txt" }));
    assert_eq!(app.download("once.txt", None).await.1, b"only once");
}

#[tokio::test]
async fn concurrent_confirms_of_one_draft_all_succeed_and_the_object_is_whole() {
    let app = spawn_app().await;
    let bytes = vec![7u8; 2 * 1024 * 1024];
    app.upload("race.bin", None, &bytes).await;
    let confirms = (0..16).map(|_| app.confirm("race.bin"));
    for answer in futures_util::future::join_all(confirms).await {
        assert_eq!(answer.ok()["final_location"], "main/race.bin");
    }
    assert_eq!(app.download("race.bin", Some("main")).await.1, bytes);
    app.download_url("race.bin", Some("draft")).await.error(404, "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn confirm_replaces_an_existing_main_object() {
    let app = spawn_app().await;
    app.upload("v.txt", None, b"first").await;
    app.confirm("v.txt").await.ok();
    app.upload("v.txt", None, b"second").await;
    assert_eq!(app.download("v.txt", None).await.1, b"second", "the new draft is previewed");
    app.confirm("v.txt").await.ok();
    assert_eq!(app.download("v.txt", Some("main")).await.1, b"second");
}

#[tokio::test]
async fn missing_objects_are_404_with_the_error_body() {
    let app = spawn_app().await;
    app.confirm("nothing-here").await.error(404, "OBJECT_NOT_FOUND");
    app.download_url("nothing-here", None).await.error(404, "OBJECT_NOT_FOUND");
    app.download_url("nothing-here", Some("draft")).await.error(404, "OBJECT_NOT_FOUND");
    app.download_url("nothing-here", Some("main")).await.error(404, "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn draft_bucket_creates_both_buckets_and_is_idempotent() {
    let app = spawn_app().await;
    std::fs::remove_dir_all(app.data_dir.join("main-draft")).expect("remove draft bucket");
    std::fs::remove_dir_all(app.data_dir.join("main")).expect("remove main bucket");
    app.get("/ready").await.error(503, "BUCKET_NOT_FOUND");
    app.confirm("x").await.error(404, "BUCKET_NOT_FOUND");
    for _ in 0..2 {
        assert_eq!(app.post("/api/v1/draft-bucket", &json!({})).await.ok(), json!({ "success": true }));
    }
    assert!(app.data_dir.join("main-draft").is_dir() && app.data_dir.join("main").is_dir());
    assert_eq!(app.get("/ready").await.ok()["status"], "ready");
}

#[tokio::test]
async fn probes_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health").await.ok(), json!({ "status": "ok" }));
    assert_eq!(app.get("/ready").await.ok()["status"], "ready");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.ok();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    for (route, method) in [
        ("/api/v1/upload-url", "post"),
        ("/api/v1/download-url", "post"),
        ("/api/v1/confirm-upload", "post"),
        ("/api/v1/draft-bucket", "post"),
        ("/api/v1/list-drafts", "post"),
        ("/api/v1/discard-draft", "post"),
        ("/api/v1/multipart/start", "post"),
        ("/api/v1/multipart/sign-parts", "post"),
        ("/api/v1/multipart/list-parts", "post"),
        ("/api/v1/multipart/complete", "post"),
        ("/api/v1/multipart/abort", "post"),
        ("/api/v1/uppy/sign", "post"),
        ("/health", "get"),
        ("/ready", "get"),
    ] {
        assert!(doc["paths"][route][method].is_object(), "{route} missing from the OpenAPI document");
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["UploadUrlRequest"]["required"], json!(["object_name"]));
    assert!(schemas["ErrorBody"]["properties"]["error_type"].is_object());
    assert_eq!(schemas["CompleteMultipartRequest"]["required"], json!(["object_name", "upload_id", "parts"]));
    let errors = schemas["ErrorType"]["enum"].as_array().expect("error types");
    assert!(errors.contains(&json!("UPLOAD_NOT_FOUND")) && errors.contains(&json!("INVALID_PARTS")));
}

/// A ranged GET of a download URL answers as S3 does, on both backends, for a draft and for a confirmed object:
/// 206 with exactly those bytes and `Content-Range`, a suffix range, 416 past the end, and the whole object when
/// `If-Range` names another version (DraftStore's own URLs; SeaweedFS ignores `If-Range`).
async fn ranges_are_answered_like_s3(backend: Backend) {
    let app = &backend.spawn(&[]).await;
    // The local backend serves its signed URLs itself; S3's are the store's.
    let own_urls = backend == Backend::Local;
    let bytes = crate::helpers::pseudo_random_bytes(300_000, 7);
    app.upload("video.bin", Some("application/octet-stream"), &bytes).await;
    for stage in ["draft", "main"] {
        if stage == "main" {
            app.confirm("video.bin").await.ok();
        }
        let ticket = app.download_url("video.bin", Some(stage)).await.ok();
        let url = ticket["download_url"].as_str().expect("url");
        let get = |range: &str, if_range: Option<&str>| {
            let mut request = app.client.get(url).header("range", range);
            if let Some(condition) = if_range {
                request = request.header("if-range", condition);
            }
            request.send()
        };
        let response = get("bytes=1000-1999", None).await.expect("sent");
        assert_eq!(response.status(), 206, "{stage}");
        let header = |r: &reqwest::Response, name: &str| r.headers()[name].to_str().expect("ascii").to_owned();
        assert_eq!(header(&response, "content-range"), "bytes 1000-1999/300000", "{stage}");
        let etag = header(&response, "etag");
        assert_eq!(response.bytes().await.expect("body"), bytes[1000..2000], "{stage}");

        let response = get("bytes=-100", None).await.expect("sent");
        assert_eq!(response.status(), 206, "{stage}");
        assert_eq!(response.bytes().await.expect("body"), bytes[300_000 - 100..], "{stage}");
        assert_eq!(get("bytes=300000-", None).await.expect("sent").status(), 416, "{stage}");
        let response = get("bytes=0-9", Some(&etag)).await.expect("sent");
        assert_eq!(response.status(), 206, "{stage}: the version named");
        if own_urls {
            let response = get("bytes=0-9", Some("\"another-version\"")).await.expect("sent");
            assert_eq!(response.status(), 200, "{stage}: another version");
            assert_eq!(response.bytes().await.expect("body").len(), bytes.len(), "{stage}");
        }
    }
}

on_both_backends!(ranges_are_answered_like_s3);

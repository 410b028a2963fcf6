//! Limits signed into the URL: refused up front when out of bounds, enforced by the store when an upload differs,
//! and active content forced to download as an attachment.

use draftstore_proto::draft::v1 as pb;
use serde_json::{Value, json};
use sha2::Digest;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{Backend, TestApp, files_under, on_both_backends, spawn_app_with};
use crate::seaweed;

fn checksum(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

const LIMITED: [&str; 4] = ["--max-upload-size", "1000", "--allowed-content-types", "image/*,application/pdf"];

#[tokio::test]
async fn out_of_bounds_uploads_are_refused_before_a_url_is_issued() {
    let app = spawn_app_with(&LIMITED).await;
    let upload = async |body: Value| app.post("/api/v1/upload-url", &body).await;
    upload(json!({ "object_name": "a.png", "content_type": "image/png", "content_length": 1001 }))
        .await
        .error(413, "UPLOAD_TOO_LARGE");
    upload(json!({ "object_name": "a.html", "content_type": "text/html" }))
        .await
        .error(415, "UNSUPPORTED_CONTENT_TYPE");
    upload(json!({ "object_name": "a" })).await.error(415, "UNSUPPORTED_CONTENT_TYPE");
    upload(json!({ "object_name": "a.png", "content_type": "image/png", "checksum_sha256": "nope" }))
        .await
        .error(400, "INVALID_REQUEST");
    upload(json!({ "object_name": "a.png", "content_type": "image/png", "content_length": -1 }))
        .await
        .error(400, "INVALID_REQUEST");
    let ok = upload(json!({ "object_name": "a.png", "content_type": "image/png", "content_length": 1000 })).await.ok();
    assert_eq!(
        ok["headers"],
        json!({ "Content-Type": "image/png", "Content-Length": "1000", "x-amz-meta-draftstore-length": "1000" })
    );
    upload(json!({ "object_name": "b.pdf", "content_type": "application/pdf" })).await.ok();

    let mut grpc = app.grpc().await;
    let refuse = |content_type: &str, length: Option<u64>, sum: &str| pb::GetUploadUrlRequest {
        object_name: "g.png".into(),
        content_type: content_type.into(),
        content_length: length,
        checksum_sha256: sum.into(),
    };
    for (request, reason) in [
        (refuse("image/png", Some(1001), ""), "UPLOAD_TOO_LARGE"),
        (refuse("text/html", None, ""), "UNSUPPORTED_CONTENT_TYPE"),
        (refuse("image/png", None, "nope"), "INVALID_REQUEST"),
    ] {
        let status = grpc.get_upload_url(request).await.expect_err("refused");
        let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
        assert_eq!((status.code(), info.reason.as_str()), (Code::InvalidArgument, reason));
    }
    let ok = grpc.get_upload_url(refuse("image/png", Some(10), &checksum(b"0123456789"))).await.expect("within limits");
    assert_eq!(ok.into_inner().headers.get("x-amz-checksum-sha256"), Some(&checksum(b"0123456789")));
}

/// PUTs `body` to a ticket's URL with the ticket's headers, except those overridden.
async fn put(app: &TestApp, ticket: &Value, body: &'static [u8], overrides: &[(&str, &str)]) -> u16 {
    let mut request = app.client.put(ticket["upload_url"].as_str().expect("url"));
    for (name, value) in ticket["headers"].as_object().expect("headers") {
        if name.eq_ignore_ascii_case("content-length") {
            continue; // the client sets it from the body
        }
        let value = overrides
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(value.as_str().expect("str"), |(_, v)| v);
        request = request.header(name, value);
    }
    request.body(body).send().await.expect("sent").status().as_u16()
}

/// The store refuses uploads that differ from what was signed; the right one goes through.
async fn signed_fields_are_enforced(app: &TestApp, in_draft: impl AsyncFn(&str) -> bool) {
    let body: &'static [u8] = b"exactly twenty bytes";
    let ticket = app
        .post(
            "/api/v1/upload-url",
            &json!({ "object_name": "s.bin", "content_type": "image/png", "content_length": 20, "checksum_sha256": checksum(body) }),
        )
        .await
        .ok();
    assert_eq!(put(app, &ticket, b"twenty-one bytes!!!!!", &[]).await, 403, "a different length breaks the signature");
    let wrong: &'static [u8] = b"exactly twenty BYTES";
    let status = put(app, &ticket, wrong, &[]).await;
    assert!(status == 400 || status == 403, "a body that does not match the checksum is refused: {status}");
    assert_eq!(put(app, &ticket, body, &[("content-type", "text/html")]).await, 403, "the type is signed");
    let forged = checksum(wrong);
    assert_eq!(
        put(app, &ticket, wrong, &[("x-amz-checksum-sha256", forged.as_str())]).await,
        403,
        "the checksum is signed"
    );
    assert!(!in_draft("s.bin").await, "no refused upload was stored");
    assert_eq!(put(app, &ticket, body, &[]).await, 200);
    assert!(in_draft("s.bin").await);
}

async fn signed_length_type_and_checksum_are_enforced(backend: Backend) {
    let (app, bucket) = backend.spawn_with_bucket(&[]).await;
    match backend {
        Backend::Local => {
            let draft = app.data_dir.join("main-draft");
            signed_fields_are_enforced(&app, async |name: &str| draft.join(name).exists()).await;
            assert!(files_under(&app.data_dir.join(".staging")).is_empty());
        }
        Backend::SeaweedFs => {
            let client = seaweed::shared().await.client();
            let draft = format!("{bucket}-draft");
            signed_fields_are_enforced(&app, async |name: &str| {
                client.head_object().bucket(&draft).key(name).send().await.is_ok()
            })
            .await;
        }
    }
}

on_both_backends!(signed_length_type_and_checksum_are_enforced);

#[tokio::test]
async fn the_local_store_refuses_bodies_over_max_upload_size() {
    let app = spawn_app_with(&["--max-upload-size", "10"]).await;
    let ticket = app.upload_url("big.bin", None).await.ok();
    assert_eq!(app.put_ticket(&ticket, vec![0u8; 11]).await, 413);
    assert_eq!(app.put_ticket(&ticket, vec![0u8; 10]).await, 200);
    assert!(files_under(&app.data_dir.join(".staging")).is_empty());
}

async fn active_content_downloads_as_an_attachment(app: &TestApp) {
    for (name, content_type, attachment) in
        [("page.html", "text/html", true), ("logo.svg", "image/svg+xml", true), ("photo.png", "image/png", false)]
    {
        app.upload(name, Some(content_type), b"<svg onload=alert(1)>").await;
        for stage in [None, Some("draft")] {
            let ticket = app.download_url(name, stage).await.ok();
            let response = app.client.get(ticket["download_url"].as_str().expect("url")).send().await.expect("GET");
            assert_eq!(response.status(), 200);
            let disposition =
                response.headers().get("content-disposition").map(|v| v.to_str().expect("ascii").to_owned());
            assert_eq!(
                disposition.as_deref().is_some_and(|d| d.starts_with("attachment")),
                attachment,
                "{name}: {disposition:?}"
            );
        }
    }
}

async fn html_and_svg_previews_are_attachments(backend: Backend) {
    active_content_downloads_as_an_attachment(&backend.spawn(&[]).await).await;
}

on_both_backends!(html_and_svg_previews_are_attachments);

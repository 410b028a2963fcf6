//! Uppy's `signRequest` mode without the browser: the requests `@uppy/aws-s3` 6 sends, signed by
//! `POST /api/v1/uppy/sign` and sent as Uppy sends them, on the local backend and on SeaweedFS.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app_with};

fn api_keys() -> String {
    crate::helpers::api_keys(&crate::helpers::TENANTS)
}

async fn sign(app: &TestApp, request: Value) -> Value {
    app.post("/api/v1/uppy/sign", &request).await.ok()
}

/// Sends a signed request with its headers, as Uppy's XHR does; returns status, ETag and body.
async fn send(
    app: &TestApp,
    method: &str,
    signed: &Value,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<String>, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    // As Uppy: the file's type first, then the signer's headers, which win over it (names folded by case).
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert("content-type", content_type.parse().expect("header"));
    }
    for (name, value) in signed["headers"].as_object().into_iter().flatten() {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name");
        headers.insert(name, value.as_str().expect("value").parse().expect("header"));
    }
    let request = app.client.request(method, signed["url"].as_str().expect("url")).headers(headers);
    let response = request.body(body).send().await.expect("sent");
    let status = response.status().as_u16();
    let etag = response.headers().get("etag").map(|v| v.to_str().expect("ascii").trim_matches('"').to_owned());
    (status, etag, response.text().await.expect("body"))
}

/// The text of the first `<tag>` element.
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml.find(&format!("<{tag}>")).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + tag.len() + 2;
    &xml[start..start + xml[start..].find(&format!("</{tag}>")).expect("closed")]
}

async fn uppy_requests_upload_whole_files_and_parts(backend: Backend) {
    let app = &backend.spawn(&["--auth-mode", "api-key", "--api-keys", &api_keys()]).await;
    let alice = app.as_caller("key-of-alice");
    // A single PUT.
    let signed = sign(&alice, json!({ "method": "PUT", "key": "u/small.txt", "contentType": "text/plain" })).await;
    assert_eq!(signed["headers"]["Content-Type"], json!("text/plain"));
    let (status, etag, _) = send(&alice, "PUT", &signed, Some("text/plain"), b"small".to_vec()).await;
    assert_eq!((status, etag.is_some()), (200, true));
    alice.confirm("u/small.txt").await.ok();
    assert_eq!(alice.download("u/small.txt", None).await, ("text/plain".to_owned(), b"small".to_vec()));

    // A multipart upload: create, two parts, list (Uppy's resume), complete.
    let created = sign(&alice, json!({ "method": "POST", "key": "u/big.bin", "contentType": "video/mp4" })).await;
    let (status, _, xml) = send(&alice, "POST", &created, Some("video/mp4"), Vec::new()).await;
    assert_eq!(status, 200, "{xml}");
    let upload_id = element(&xml, "UploadId").to_owned();
    let parts = [vec![1u8; 5 * 1024 * 1024], vec![2u8; 1024]];
    let mut etags = Vec::new();
    for (number, bytes) in (1..).zip(&parts) {
        let signed =
            sign(&alice, json!({ "method": "PUT", "key": "u/big.bin", "uploadId": upload_id, "partNumber": number }))
                .await;
        let (status, etag, body) = send(&alice, "PUT", &signed, None, bytes.clone()).await;
        assert_eq!(status, 200, "{body}");
        etags.push(etag.expect("ETag exposed"));
    }
    let listed = sign(&alice, json!({ "method": "GET", "key": "u/big.bin", "uploadId": upload_id })).await;
    let (status, _, xml) = send(&alice, "GET", &listed, None, Vec::new()).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(xml.matches("<PartNumber>").count(), 2, "{xml}");
    // As Uppy's sanitizeXmlETag: S3 escapes the quotes as &quot; or &#34;.
    let listed_etag = element(&xml, "ETag").replace("&quot;", "").replace("&#34;", "").replace('"', "");
    assert_eq!(listed_etag, etags[0]);
    let body: String = (1..)
        .zip(&etags)
        .map(|(n, etag)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"))
        .collect();
    let completed = sign(&alice, json!({ "method": "POST", "key": "u/big.bin", "uploadId": upload_id })).await;
    let wrong =
        "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>";
    let (status, _, xml) = send(&alice, "POST", &completed, Some("application/xml"), wrong.into()).await;
    assert_eq!(status, 400, "{xml}");
    assert!(xml.contains("<Code>InvalidPart</Code>"), "{xml}");
    let xml_body = format!("<CompleteMultipartUpload>{body}</CompleteMultipartUpload>");
    let (status, _, xml) = send(&alice, "POST", &completed, Some("application/xml"), xml_body.into_bytes()).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(element(&xml, "Key"), "u/big.bin", "the name, not the tenant's key: {xml}");
    assert!(completed["url"].as_str().expect("url").contains("/api/v1/uppy/complete?"), "{completed}");
    assert_eq!(completed["headers"]["Authorization"], json!("Bearer key-of-alice"));
    alice.confirm("u/big.bin").await.ok();
    assert_eq!(alice.download("u/big.bin", None).await, ("video/mp4".to_owned(), parts.concat()));

    // Abort.
    let created = sign(&alice, json!({ "method": "POST", "key": "u/dropped.bin", "contentType": "video/mp4" })).await;
    let (_, _, xml) = send(&alice, "POST", &created, Some("video/mp4"), Vec::new()).await;
    let dropped = element(&xml, "UploadId").to_owned();
    // Another tenant, or another name, cannot have it signed.
    let mallory = app.as_caller("key-of-mallory");
    for (who, key) in [(&mallory, "u/dropped.bin"), (&alice, "u/other.bin")] {
        for request in [
            json!({ "method": "PUT", "key": key, "uploadId": dropped, "partNumber": 1 }),
            json!({ "method": "GET", "key": key, "uploadId": dropped }),
            json!({ "method": "POST", "key": key, "uploadId": dropped }),
            json!({ "method": "DELETE", "key": key, "uploadId": dropped }),
        ] {
            who.post("/api/v1/uppy/sign", &request).await.error(404, "UPLOAD_NOT_FOUND");
        }
    }
    let aborted = sign(&alice, json!({ "method": "DELETE", "key": "u/dropped.bin", "uploadId": dropped })).await;
    let (status, _, body) = send(&alice, "DELETE", &aborted, None, Vec::new()).await;
    assert_eq!(status, 204, "{body}");
    alice
        .post("/api/v1/uppy/sign", &json!({ "method": "GET", "key": "u/dropped.bin", "uploadId": dropped }))
        .await
        .error(404, "UPLOAD_NOT_FOUND");

    // Anything but an upload request is refused.
    for request in [
        json!({ "method": "DELETE", "key": "u/small.txt" }),
        json!({ "method": "GET", "key": "u/small.txt" }),
        json!({ "method": "PATCH", "key": "u/small.txt" }),
        json!({ "method": "PUT", "key": "u/x", "partNumber": 1 }),
        json!({ "method": "PUT", "key": "u/x", "surprise": 1 }),
        json!({ "method": "PUT", "key": "u/x", "expiresIn": 0 }),
    ] {
        alice.post("/api/v1/uppy/sign", &request).await.error(400, "INVALID_REQUEST");
    }
    alice.post("/api/v1/uppy/sign", &json!({ "method": "PUT", "key": "../x" })).await.error(400, "INVALID_OBJECT_NAME");
    app.post("/api/v1/uppy/sign", &json!({ "method": "PUT", "key": "x" })).await.error(401, "ACCESS_DENIED");
}

on_both_backends!(uppy_requests_upload_whole_files_and_parts);

#[tokio::test]
async fn uppy_signing_keeps_the_content_type_limits() {
    let app = spawn_app_with(&["--allowed-content-types", "image/*"]).await;
    for method in ["PUT", "POST"] {
        app.post("/api/v1/uppy/sign", &json!({ "method": method, "key": "a.txt", "contentType": "text/plain" }))
            .await
            .error(415, "UNSUPPORTED_CONTENT_TYPE");
        app.post("/api/v1/uppy/sign", &json!({ "method": method, "key": "a.txt" }))
            .await
            .error(415, "UNSUPPORTED_CONTENT_TYPE");
    }
    // The signed type is enforced by the store: a start sent with another type is refused.
    let created = sign(&app, json!({ "method": "POST", "key": "a.png", "contentType": "image/png" })).await;
    let forged = app.client.post(created["url"].as_str().expect("url")).header("Content-Type", "text/html");
    let response = forged.send().await.expect("sent");
    let status = response.status().as_u16();
    let xml = response.text().await.expect("body");
    assert_eq!(status, 403, "{xml}");
    assert!(xml.contains("<Code>AccessDenied</Code>"), "{xml}");
}

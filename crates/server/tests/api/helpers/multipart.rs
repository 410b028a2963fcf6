//! Multipart uploads over the REST API: started, signed, their parts PUT, completed.

use serde_json::{Value, json};

use super::{Answer, TestApp, signed_put};

/// Starts a multipart upload of `name` with the other fields of `body`; the answer, whatever it is.
pub async fn try_start(app: &TestApp, name: &str, body: Value) -> Answer {
    let mut request = body;
    request["object_name"] = json!(name);
    app.post("/api/v1/multipart/start", &request).await
}

/// Starts a multipart upload of `name` with the other fields of `body`; the successful answer.
pub async fn start(app: &TestApp, name: &str, body: Value) -> Value {
    try_start(app, name, body).await.ok()
}

/// Signs the parts of these numbers; the signed parts.
pub async fn sign(app: &TestApp, name: &str, upload_id: &str, numbers: &[u32]) -> Vec<Value> {
    let parts: Vec<Value> = numbers.iter().map(|n| json!({ "part_number": n })).collect();
    let signed = app
        .post("/api/v1/multipart/sign-parts", &json!({ "object_name": name, "upload_id": upload_id, "parts": parts }))
        .await
        .ok();
    signed["parts"].as_array().expect("parts").clone()
}

/// PUTs one part to its signed URL; returns the ETag the store answered.
pub async fn put_part(app: &TestApp, signed: &Value, bytes: Vec<u8>) -> String {
    let response = signed_put(&app.client, signed).body(bytes).send().await.expect("part sent");
    assert_eq!(response.status(), 200, "part refused: {}", response.text().await.unwrap_or_default());
    response.headers()["etag"].to_str().expect("ascii").to_owned()
}

/// Uploads the given parts (numbered from 1); returns `(part_number, etag)` for each.
pub async fn put_parts(app: &TestApp, name: &str, upload_id: &str, parts: &[Vec<u8>]) -> Vec<(u32, String)> {
    let numbers: Vec<u32> = (1..=parts.len() as u32).collect();
    let signed = sign(app, name, upload_id, &numbers).await;
    let mut etags = Vec::new();
    for (url, part) in signed.iter().zip(parts) {
        let number = url["part_number"].as_u64().expect("number") as u32;
        etags.push((number, put_part(app, url, part.clone()).await));
    }
    etags
}

/// The body of `multipart/complete` for these parts.
pub fn completion(name: &str, upload_id: &str, parts: &[(u32, String)]) -> Value {
    let parts: Vec<Value> = parts.iter().map(|(n, etag)| json!({ "part_number": n, "etag": etag })).collect();
    json!({ "object_name": name, "upload_id": upload_id, "parts": parts })
}

/// The reason of a gRPC error's `ErrorInfo` detail, or nothing.
pub fn error_reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|info| info.reason).unwrap_or_default()
}

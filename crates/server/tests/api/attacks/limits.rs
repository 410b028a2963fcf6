//! Limits, previews and the hook: multipart parts within the size limit, previews that cannot run script, a hook
//! that fails safe, no panic from a request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, files_under, on_both_backends, signed_put_without, spawn_app_with, upload_ticket,
};

const MIB: u64 = 1024 * 1024;
/// MAX_UPLOAD_SIZE of the multipart attacks: 10 MiB.
const TEN_MIB: &str = "10485760";

// Multipart parts within MAX_UPLOAD_SIZE.

async fn start(app: &TestApp, name: &str, fields: Value) -> crate::helpers::Answer {
    let mut body = fields;
    body["object_name"] = json!(name);
    app.post("/api/v1/multipart/start", &body).await
}

async fn sign_part(app: &TestApp, name: &str, upload_id: &str, number: u32) -> crate::helpers::Answer {
    let parts = json!([{ "part_number": number }]);
    app.post("/api/v1/multipart/sign-parts", &json!({ "object_name": name, "upload_id": upload_id, "parts": parts }))
        .await
}

/// PUTs `body` to a signed URL with its headers, but for `Content-Length`, which the client sets from the body as
/// an attacker's would; the status, or `None` when the server cut the connection before answering.
async fn put_body(app: &TestApp, signed: &Value, body: Vec<u8>) -> Option<u16> {
    let request = signed_put_without(&app.client, signed, &["content-length"]);
    request.body(body).send().await.ok().map(|response| response.status().as_u16())
}

async fn listed_parts(app: &TestApp, name: &str, upload_id: &str) -> Vec<Value> {
    let request = json!({ "object_name": name, "upload_id": upload_id });
    app.post("/api/v1/multipart/list-parts", &request).await.ok()["parts"].as_array().expect("parts").clone()
}

/// Bytes under the local backend's multipart folder: parts written, in place or apart.
fn multipart_bytes(app: &TestApp) -> u64 {
    let folder = app.data_dir.join(".multipart");
    if !folder.exists() {
        return 0;
    }
    files_under(&folder).iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum()
}

async fn a_part_size_or_an_undeclared_size_cannot_open_more_than_max_upload_size(backend: Backend) {
    let app = backend.spawn(&["--max-upload-size", TEN_MIB]).await;
    let five_gib = 5u64 << 30;
    let answer = start(&app, "big.bin", json!({ "content_length": 6 * MIB, "part_size": five_gib })).await;
    answer.error(400, "INVALID_REQUEST");
    assert!(answer.body["error_message"].as_str().expect("message").contains("MAX_UPLOAD_SIZE"), "{:?}", answer.body);
    let answer = start(&app, "big.bin", json!({ "part_size": 5 * MIB })).await;
    answer.error(400, "INVALID_REQUEST");
    assert!(answer.body["error_message"].as_str().expect("message").contains("content_length"), "{:?}", answer.body);
    // What the API hands out instead: one part of exactly the declared size, and no second part.
    let started = start(&app, "big.bin", json!({ "content_length": 6 * MIB })).await.ok();
    assert!(started["part_size"].as_u64().expect("part_size") <= 10 * MIB, "{started}");
    assert_eq!(started["part_count"], json!(1), "{started}");
    let upload_id = started["upload_id"].as_str().expect("upload_id");
    let signed = sign_part(&app, "big.bin", upload_id, 1).await.ok();
    assert_eq!(signed["parts"][0]["headers"]["Content-Length"], json!((6 * MIB).to_string()), "{signed}");
    sign_part(&app, "big.bin", upload_id, 2).await.error(409, "INVALID_PARTS");
}

on_both_backends!(a_part_size_or_an_undeclared_size_cannot_open_more_than_max_upload_size);

async fn twenty_mib_sent_to_a_part_of_a_six_mib_upload_is_refused_and_stores_nothing(backend: Backend) {
    let app = backend.spawn(&["--max-upload-size", TEN_MIB]).await;
    let started = start(&app, "six.bin", json!({ "content_length": 6 * MIB })).await.ok();
    let upload_id = started["upload_id"].as_str().expect("upload_id");
    let signed = sign_part(&app, "six.bin", upload_id, 1).await.ok();
    let status = put_body(&app, &signed["parts"][0], vec![7; 20 * MIB as usize]).await;
    assert!(status.is_none_or(|status| (400..500).contains(&status)), "20 MiB to a 6 MiB part answered {status:?}");
    assert_eq!(listed_parts(&app, "six.bin", upload_id).await, Vec::<Value>::new(), "the store kept a part");
    if backend == Backend::Local {
        assert!(multipart_bytes(&app) < MIB, "{} bytes of parts on disk", multipart_bytes(&app));
    }
    // The part's own bytes go through the same URL, and the upload completes as declared.
    assert_eq!(put_body(&app, &signed["parts"][0], vec![7; 6 * MIB as usize]).await, Some(200));
    let part = &listed_parts(&app, "six.bin", upload_id).await[0];
    assert_eq!(part["size"], json!(6 * MIB));
    let completion = json!({ "object_name": "six.bin", "upload_id": upload_id,
        "parts": [{ "part_number": 1, "etag": part["etag"] }] });
    app.post("/api/v1/multipart/complete", &completion).await.ok();
    app.confirm("six.bin").await.ok();
}

on_both_backends!(twenty_mib_sent_to_a_part_of_a_six_mib_upload_is_refused_and_stores_nothing);

/// Starts a multipart upload as Uppy does (a signed `POST ?uploads`, no size declared); returns its id.
async fn uppy_upload(app: &TestApp, name: &str) -> String {
    let created = app.post("/api/v1/uppy/sign", &json!({ "method": "POST", "key": name })).await.ok();
    let response = app.client.post(created["url"].as_str().expect("url")).send().await.expect("sent");
    let xml = response.text().await.expect("body");
    let start = xml.find("<UploadId>").unwrap_or_else(|| panic!("no upload id: {xml}")) + "<UploadId>".len();
    xml[start..start + xml[start..].find("</UploadId>").expect("closed")].to_owned()
}

async fn uppy_part(app: &TestApp, name: &str, upload_id: &str, number: u32) -> crate::helpers::Answer {
    let request = json!({ "method": "PUT", "key": name, "uploadId": upload_id, "partNumber": number });
    app.post("/api/v1/uppy/sign", &request).await
}

async fn an_upload_without_a_declared_size_cannot_outgrow_max_upload_size(backend: Backend) {
    let app = backend.spawn(&["--max-upload-size", TEN_MIB]).await;
    let upload_id = uppy_upload(&app, "uppy.bin").await;
    // No upload within 10 MiB has a fourth part (every part but the last is at least 5 MiB).
    uppy_part(&app, "uppy.bin", &upload_id, 4).await.error(409, "INVALID_PARTS");
    let mut etags = Vec::new();
    for number in 1..=2 {
        let signed = uppy_part(&app, "uppy.bin", &upload_id, number).await.ok();
        let url = signed["url"].as_str().expect("url");
        let response = app.client.put(url).body(vec![1; 6 * MIB as usize]).send().await.expect("sent");
        let status = response.status().as_u16();
        match (backend, number) {
            // The second 6 MiB would take the upload past 10 MiB: the local backend refuses it as it arrives.
            (Backend::Local, 2) => {
                assert_eq!(status, 413, "{}", response.text().await.unwrap_or_default());
                assert_eq!(listed_parts(&app, "uppy.bin", &upload_id).await.len(), 1, "the refused part was kept");
                return;
            }
            _ => assert_eq!(status, 200, "{}", response.text().await.unwrap_or_default()),
        }
        let etag = response.headers()["etag"].to_str().expect("ascii").to_owned();
        etags.push(json!({ "part_number": number, "etag": etag }));
    }
    // S3 takes each part up to 5 GiB: the completion refuses the total, and the parts go at once, not after a day.
    let completion = json!({ "object_name": "uppy.bin", "upload_id": upload_id, "parts": etags });
    let answer = app.post("/api/v1/multipart/complete", &completion).await;
    answer.error(413, "UPLOAD_TOO_LARGE");
    assert!(answer.body["error_message"].as_str().expect("message").contains("aborted"), "{:?}", answer.body);
    app.post("/api/v1/multipart/list-parts", &json!({ "object_name": "uppy.bin", "upload_id": upload_id }))
        .await
        .error(404, "UPLOAD_NOT_FOUND");
}

on_both_backends!(an_upload_without_a_declared_size_cannot_outgrow_max_upload_size);

// Previews that cannot run script.

/// A page that says so when it runs.
const PAGE: &[u8] = b"<!doctype html><title>rendered</title><script>window.previewScriptRan = true</script><p>hi";

/// Uploads `bytes` as a draft whose upload URL signed `content_type`.
async fn upload_as(app: &TestApp, name: &str, content_type: &str, bytes: &[u8]) {
    app.upload(name, Some(content_type), bytes).await;
}

async fn preview_url(app: &TestApp, name: &str) -> String {
    app.download_url(name, Some("draft")).await.ok()["download_url"].as_str().expect("url").to_owned()
}

async fn a_preview_cannot_be_made_to_run_script(backend: Backend) {
    let app = backend.spawn(&[]).await;
    // HTML uploaded as a type that says nothing, which a browser would sniff.
    upload_as(&app, "sniffed.html", "unknown/unknown", PAGE).await;
    upload_as(&app, "also.html", "application/unknown", PAGE).await;
    // Plain text whose preview URL is signed, then uploaded again as HTML: the URL keeps what it was signed for.
    upload_as(&app, "note.txt", "text/plain", b"just a note").await;
    let replaced = preview_url(&app, "note.txt").await;
    upload_as(&app, "note.txt", "text/html", PAGE).await;
    // A text in UTF-8 is shown, as text, even once replaced by HTML.
    upload_as(&app, "shown.txt", "text/plain; charset=utf-8", b"shown").await;
    let shown = preview_url(&app, "shown.txt").await;
    upload_as(&app, "shown.txt", "text/html", PAGE).await;
    let urls =
        vec![preview_url(&app, "sniffed.html").await, preview_url(&app, "also.html").await, replaced.clone(), shown];

    // The headers the store answers with are the ones signed, whatever the object is now.
    for (url, content_type) in
        [(&urls[0], "unknown/unknown"), (&urls[1], "application/unknown"), (&replaced, "text/plain")]
    {
        let response = app.client.get(url).send().await.expect("GET");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
        assert!(response.headers()[header::CONTENT_DISPOSITION].to_str().expect("ascii").starts_with("attachment"));
    }
    let response = app.client.get(&urls[3]).send().await.expect("GET");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(response.headers()[header::CONTENT_DISPOSITION], "inline");
    // Asked inline, a type outside the short list is refused.
    let inline = json!({ "object_name": "sniffed.html", "disposition": "inline" });
    app.post("/api/v1/download-url", &inline).await.error(400, "INVALID_REQUEST");

    let opened = crate::browser::open_in_chromium(&urls).await;
    for result in &opened[..3] {
        assert!(result["download"].is_string(), "Chromium did not download it: {result}");
        assert_eq!(result["rendered"]["scriptRan"], json!(false), "{result}");
        assert_ne!(result["rendered"]["title"], json!("rendered"), "{result}");
    }
    let text = &opened[3];
    assert!(text["download"].is_null(), "{text}");
    assert_eq!(text["rendered"]["scriptRan"], json!(false), "{text}");
    assert!(text["rendered"]["text"].as_str().expect("text").contains("<script>"), "shown as text: {text}");
}

on_both_backends!(a_preview_cannot_be_made_to_run_script);

// The hook fails safe.

/// How the scripted receiver answers.
#[derive(Clone)]
enum Reply {
    Status(u16, &'static str),
    /// A redirect to this URL, with this status.
    Redirect(u16, String),
    /// 200, and a body that never ends.
    Endless,
}

/// An HTTP receiver that answers every call as scripted and counts them.
struct Receiver {
    url: String,
    calls: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(reply: Reply) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let (calls, reply) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(reply)));
        let state = (Arc::clone(&calls), Arc::clone(&reply));
        let app = axum::Router::new().route("/hook", axum::routing::post(answer)).with_state(state);
        let task = tokio::spawn(async move { axum::serve(listener, app).await.expect("the receiver serves") });
        Receiver { url, calls, reply, task }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self, reply: Reply) {
        *self.reply.lock().expect("lock") = reply;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State((calls, reply)): State<(Arc<AtomicUsize>, Arc<Mutex<Reply>>)>) -> Response {
    calls.fetch_add(1, Ordering::SeqCst);
    let reply = reply.lock().expect("lock").clone();
    match reply {
        Reply::Status(status, body) => (StatusCode::from_u16(status).expect("a status"), body).into_response(),
        Reply::Redirect(status, to) => {
            (StatusCode::from_u16(status).expect("a status"), [(header::LOCATION, to)]).into_response()
        }
        Reply::Endless => {
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            let body = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            (StatusCode::OK, Body::from_stream(body)).into_response()
        }
    }
}

fn with_hook<'a>(url: &'a str, secret: &'a str) -> [&'a str; 6] {
    ["--confirm-hook-url", url, "--webhook-secret", secret, "--hook-timeout", "30"]
}

async fn draft_exists(app: &TestApp, name: &str) -> bool {
    let answer = app.download_url(name, Some("draft")).await;
    assert!(answer.status == 200 || answer.status == 404, "{:?}", answer.body);
    answer.status == 200
}

#[tokio::test]
async fn a_gateway_answering_for_the_hook_cannot_get_a_draft_deleted() {
    let hook = Receiver::start(Reply::Status(401, "Unauthorized")).await;
    let secret = crate::helpers::hooks::secret_text();
    let app = spawn_app_with(&with_hook(&hook.url, &secret)).await;
    app.upload("kept.txt", Some("text/plain"), b"kept").await;
    for (status, body) in [(401, "Unauthorized"), (403, "Forbidden"), (404, "no route"), (400, "{\"accept\": false}")] {
        hook.answer(Reply::Status(status, body));
        let answer = app.confirm("kept.txt").await;
        answer.error(503, "HOOK_UNAVAILABLE");
        let message = answer.body["error_message"].as_str().expect("message");
        assert!(message.contains(&status.to_string()), "the status is said: {message}");
        assert!(draft_exists(&app, "kept.txt").await, "a {status} deleted the draft");
    }
    // Only an explicit verdict rejects: a 422, or a 2xx that says so.
    hook.answer(Reply::Status(422, "not wanted"));
    let answer = app.confirm("kept.txt").await;
    answer.error(422, "UPLOAD_REJECTED");
    assert!(answer.body["error_message"].as_str().expect("message").contains("not wanted"), "{:?}", answer.body);
    assert!(!draft_exists(&app, "kept.txt").await);
    app.upload("later.txt", Some("text/plain"), b"later").await;
    hook.answer(Reply::Status(200, "{\"accept\": false, \"reason\": \"no thanks\"}"));
    app.confirm("later.txt").await.error(422, "UPLOAD_REJECTED");
    app.upload("fine.txt", Some("text/plain"), b"fine").await;
    hook.answer(Reply::Status(204, ""));
    app.confirm("fine.txt").await.ok();
}

#[tokio::test]
async fn a_hook_cannot_redirect_its_signed_call_elsewhere() {
    let elsewhere = Receiver::start(Reply::Status(200, "")).await;
    let hook = Receiver::start(Reply::Redirect(307, elsewhere.url.clone())).await;
    let secret = crate::helpers::hooks::secret_text();
    let mut args = with_hook(&hook.url, &secret).to_vec();
    args.extend(["--events-url", &hook.url]);
    let app = spawn_app_with(&args).await;
    app.upload("kept.txt", Some("text/plain"), b"kept").await;
    for status in [307, 308, 302] {
        hook.answer(Reply::Redirect(status, elsewhere.url.clone()));
        let answer = app.confirm("kept.txt").await;
        answer.error(503, "HOOK_UNAVAILABLE");
        assert!(answer.body["error_message"].as_str().expect("message").contains("redirect"), "{:?}", answer.body);
        assert!(draft_exists(&app, "kept.txt").await);
    }
    // The events too: the discard's event is retried at the URL it was for, never sent where a 308 points.
    hook.answer(Reply::Redirect(308, elsewhere.url.clone()));
    app.post("/api/v1/discard-draft", &json!({ "object_name": "kept.txt" })).await.ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while hook.calls() < 3 + 2 {
        assert!(std::time::Instant::now() < deadline, "the event was not retried: {} calls", hook.calls());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(elsewhere.calls(), 0, "a redirect was followed");
}

#[tokio::test]
async fn an_endless_hook_answer_is_not_read_past_64_kib() {
    let hook = Receiver::start(Reply::Endless).await;
    let secret = crate::helpers::hooks::secret_text();
    let app = spawn_app_with(&with_hook(&hook.url, &secret)).await;
    app.upload("kept.txt", Some("text/plain"), b"kept").await;
    // HOOK_TIMEOUT is 30 s: the answer is given up at 64 KiB, not when the time runs out.
    let answer = app.confirm("kept.txt").await;
    answer.error(503, "HOOK_UNAVAILABLE");
    assert!(answer.body["error_message"].as_str().expect("message").contains("64 KiB"), "{:?}", answer.body);
    assert!(draft_exists(&app, "kept.txt").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_url_s_credentials_and_query_stay_out_of_errors_and_logs() {
    let closed = crate::helpers::free_port();
    let url = format!("http://spy:hunter2@127.0.0.1:{closed}/in?token=s3cr3t-t0ken");
    let secret = crate::helpers::hooks::secret_text();
    let data = tempfile::tempdir().expect("a folder");
    let envs = [("CONFIRM_HOOK_URL", url.as_str()), ("EVENTS_URL", url.as_str()), ("WEBHOOK_SECRET", secret.as_str())];
    let mut server = crate::helpers::LoggedServer::start(data.path(), &envs);
    let (http, client) = (server.http.clone(), reqwest::Client::new());
    let ticket = upload_ticket(&client, &http, &json!({ "object_name": "a.txt" })).await;
    client.put(ticket["upload_url"].as_str().expect("url")).body("a").send().await.expect("uploaded");
    let confirm = client.post(format!("{http}/api/v1/confirm-upload")).json(&json!({ "object_name": "a.txt" }));
    let answer: Value = confirm.send().await.expect("sent").json().await.expect("json");
    assert_eq!(answer["error_type"], "HOOK_UNAVAILABLE", "{answer}");
    // The discard's event is delivered to the same address, and fails.
    client.post(format!("{http}/api/v1/discard-draft")).json(&json!({ "object_name": "a.txt" })).send().await.ok();
    tokio::task::block_in_place(|| {
        server.wait_for(|line| line["message"] == "an event delivery failed; it will be retried")
    });
    let logs = server.seen().join("\n");
    for secret in ["hunter2", "s3cr3t-t0ken", "token="] {
        assert!(!answer.to_string().contains(secret), "the answer names {secret}: {answer}");
        assert!(!logs.contains(secret), "the log names {secret}:\n{logs}");
    }
    assert!(logs.contains("could not be reached"), "the log says why:\n{logs}");
}

// No panic from a request.

#[tokio::test(flavor = "multi_thread")]
async fn a_long_tenant_and_a_long_idempotency_key_do_not_kill_the_connection() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let secret = "a-jwt-secret-of-at-least-32-bytes-long";
    let (issuer, audience) = ("https://issuer.test", "draftstore");
    let app = spawn_app_with(&[
        "--auth-mode",
        "jwt",
        "--jwt-secret",
        secret,
        "--jwt-issuer",
        issuer,
        "--jwt-audience",
        audience,
    ])
    .await;
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let claims = json!({ "sub": "t".repeat(1000), "exp": exp, "iss": issuer, "aud": audience });
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_ref()))
            .expect("signed");
    // 1,000 bytes of tenant and 128 of key took a set's record key past 1,024 bytes, and an `expect` reset the
    // connection. Now a clear refusal (no such draft; or, where tenant names are capped, no such tenant), and the
    // same connection serves the next request.
    let set = json!({ "idempotency_key": "k".repeat(128), "drafts": [{ "object_name": "a.txt" }] });
    let requests = [
        ("POST", "/api/v1/confirm-set", Some(token.as_str()), Some(set.clone())),
        ("POST", "/api/v1/confirm-set", Some(token.as_str()), Some(set)),
        ("GET", "/health", None, None),
    ];
    let statuses = crate::helpers::on_one_connection(&app, &requests).await;
    for status in &statuses[..2] {
        assert!(status.is_some_and(|status| (400..500).contains(&status)), "{statuses:?}");
    }
    assert_eq!(statuses[2], Some(200), "{statuses:?}");
    let answer = app
        .as_caller(&token)
        .post(
            "/api/v1/confirm-set",
            &json!({ "idempotency_key": "k".repeat(128),
        "drafts": [{ "object_name": "a.txt" }] }),
        )
        .await;
    assert!(answer.body["error_type"].is_string() && answer.body["error_message"].is_string(), "{:?}", answer.body);
}

// Metadata: the document's limits are the server's, and they fit what S3 keeps.

async fn the_largest_metadata_the_document_allows_is_stored(backend: Backend) {
    let app = backend.spawn(&[]).await;
    let document = app.get("/openapi.json").await.ok();
    let request = &document["components"]["schemas"]["ConfirmUploadRequest"]["properties"]["metadata"];
    let entries = request["maxProperties"].as_u64().expect("maxProperties") as usize;
    let forms = request["additionalProperties"]["anyOf"].as_array().expect("the value's forms");
    // The costliest character each form allows, as S3 keeps it: one byte, six (two of UTF-8), twelve (four).
    for (form, costliest) in forms.iter().zip(["~", "\u{7ff}", "\u{10ffff}"]) {
        let longest = form["maxLength"].as_u64().expect("maxLength") as usize;
        let metadata: serde_json::Map<String, Value> =
            (0..entries).map(|i| (format!("{i}{}", "n".repeat(63)), json!(costliest.repeat(longest)))).collect();
        let name = format!("m{}.txt", longest);
        app.upload(&name, Some("text/plain"), b"m").await;
        let confirm = json!({ "object_name": name, "metadata": metadata });
        app.post("/api/v1/confirm-upload", &confirm).await.ok();
        let stat = app.post("/api/v1/stat-object", &json!({ "object_name": name })).await.ok();
        assert_eq!(stat["metadata"], Value::Object(metadata.clone()), "stored as given");
        // One character more, or one entry more, and the document and the server refuse it alike.
        let mut longer = metadata.clone();
        longer.insert(format!("0{}", "n".repeat(63)), json!(costliest.repeat(longest + 1)));
        let mut more = metadata.clone();
        more.insert("one-more".to_owned(), json!("x"));
        app.upload("x.txt", Some("text/plain"), b"x").await;
        for refused in [longer, more] {
            let refused = json!({ "object_name": "x.txt", "metadata": refused });
            app.post("/api/v1/confirm-upload", &refused).await.error(400, "INVALID_REQUEST");
        }
    }
}

on_both_backends!(the_largest_metadata_the_document_allows_is_stored);

// ClamAV's archive limits: what clamd did not unpack is not clean.

#[tokio::test]
async fn an_archive_nested_past_clamd_s_limits_is_not_promoted_as_clean() {
    use crate::clamd::{Clamd, nested_zip};
    // clamd stops unpacking at MaxRecursion (17 by default): a file 20 archives deep is never read.
    let archive = nested_zip(20, "hidden.txt", b"whatever clamd does not unpack");
    let clamd = Clamd::start().await;
    let app = spawn_app_with(&["--clamd-address", &clamd.address()]).await;
    app.upload("deep.zip", Some("application/zip"), &archive).await;
    let answer = app.confirm("deep.zip").await;
    answer.error(422, "UPLOAD_INFECTED");
    let message = answer.body["error_message"].as_str().expect("message");
    assert!(message.contains("Heuristics.Limits.Exceeded"), "{message}");
    app.download_url("deep.zip", Some("draft")).await.error(404, "OBJECT_NOT_FOUND");
    app.download_url("deep.zip", Some("main")).await.error(404, "OBJECT_NOT_FOUND");

    // A clamd left at its default AlertExceedsMax no would answer that archive OK: DraftStore finds out before it
    // trusts a verdict, and no draft is promoted or deleted on its word.
    let lax = Clamd::start_passing_what_exceeds_its_limits().await;
    let app = spawn_app_with(&["--clamd-address", &lax.address()]).await;
    for (name, content_type, bytes) in [("deep.zip", "application/zip", &archive[..]), ("a.txt", "text/plain", b"a")] {
        app.upload(name, Some(content_type), bytes).await;
        let answer = app.confirm(name).await;
        answer.error(503, "SCANNER_UNAVAILABLE");
        let message = answer.body["error_message"].as_str().expect("message");
        assert!(message.contains("AlertExceedsMax yes"), "{message}");
        app.download_url(name, Some("draft")).await.ok();
        app.download_url(name, Some("main")).await.error(404, "OBJECT_NOT_FOUND");
    }
}

/// The run of the review that found a 1,921-byte metadata map the document allowed and the server refused: the same
/// seed and as many examples, every check, and nothing found.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_with_the_review_s_seed_finds_nothing() {
    let keys = crate::auth::api_keys(&[("alice", crate::openapi::KEY)]);
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    crate::openapi::fuzz_with(&app, "8793", Some(300)).await;
}

//! Resumable uploads as a client puts them on the wire: tus 1.0.0 and the IETF draft "Resumable Uploads for HTTP"
//! (interop 6, 8 and 9), with raw headers, so that a test sees exactly what the server answered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::TestApp;

/// The problem type of a 409 for an `Upload-Offset` that is not the upload's offset.
pub const MISMATCHING_OFFSET: &str = "https://iana.org/assignments/http-problem-types#mismatching-upload-offset";
/// The problem type of a length that contradicts one given before, or the bytes sent.
pub const INCONSISTENT_LENGTH: &str = "https://iana.org/assignments/http-problem-types#inconsistent-upload-length";
/// The problem type of an append to a completed upload (interop 6).
pub const COMPLETED_UPLOAD: &str = "https://iana.org/assignments/http-problem-types#completed-upload";

/// The protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// tus 1.0.0: `Tus-Resumable: 1.0.0`.
    Tus,
    /// The IETF draft at this interop version: `Upload-Draft-Interop-Version: n`.
    Ietf(u8),
}

/// A server's resumable endpoint (`/files/`), called with a test app's credential.
#[derive(Debug, Clone)]
pub struct Resumable {
    pub client: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub bearer: Option<String>,
}

/// A server's answer: status, headers and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resumable {
    /// The endpoint of `app`, called with its credential.
    pub fn of(app: &TestApp) -> Resumable {
        Resumable { client: app.client.clone(), address: app.address.clone(), bearer: app.bearer.clone() }
    }

    /// The creation URL, `<address>/files/`.
    pub fn endpoint(&self) -> String {
        format!("{}/files/", self.address)
    }

    /// A request of `method` to `url` in `dialect` (none: neither protocol's header), with the credential.
    pub fn request(&self, method: &str, url: &str, dialect: Option<Dialect>) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.client.request(method, url);
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer);
        }
        match dialect {
            Some(Dialect::Tus) => request.header("tus-resumable", "1.0.0"),
            Some(Dialect::Ietf(version)) => request.header("upload-draft-interop-version", version.to_string()),
            None => request,
        }
    }

    /// IETF creation: `POST /files/` with `Upload-Complete`, the length when given, the name when given (the
    /// `DraftStore-Object-Name` header) and `body`.
    pub async fn create(
        &self,
        version: u8,
        complete: bool,
        length: Option<u64>,
        name: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .request("POST", &self.endpoint(), Some(Dialect::Ietf(version)))
            .header("upload-complete", sf(complete));
        if let Some(length) = length {
            request = request.header("upload-length", length.to_string());
        }
        if let Some(name) = name {
            request = request.header("draftstore-object-name", encode(name));
        }
        send(request.body(body)).await
    }

    /// IETF creation of an empty, incomplete upload of `length` bytes named `name`; its URL.
    pub async fn created(&self, version: u8, length: Option<u64>, name: &str) -> String {
        let reply = self.create(version, false, length, Some(name), Vec::new()).await;
        assert_eq!(reply.status, 201, "creation: {reply}");
        reply.location()
    }

    /// IETF append: `PATCH` with `application/partial-upload`, `Upload-Offset` and `Upload-Complete`.
    pub async fn append(&self, url: &str, version: u8, offset: u64, complete: bool, body: Vec<u8>) -> Reply {
        send(self.append_request(url, version, offset, complete).body(body)).await
    }

    /// An IETF append's request without its body.
    pub fn append_request(&self, url: &str, version: u8, offset: u64, complete: bool) -> reqwest::RequestBuilder {
        self.request("PATCH", url, Some(Dialect::Ietf(version)))
            .header("content-type", "application/partial-upload")
            .header("upload-offset", offset.to_string())
            .header("upload-complete", sf(complete))
    }

    /// `HEAD` of an upload.
    pub async fn head(&self, url: &str, dialect: Dialect) -> Reply {
        send(self.request("HEAD", url, Some(dialect))).await
    }

    /// `HEAD` of an upload, asked again for up to 30 s while another request holds it (423, 503): after a client
    /// broke a request off, the server may still be closing it.
    pub async fn head_settled(&self, url: &str, dialect: Dialect) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.head(url, dialect).await;
            if !matches!(reply.status, 423 | 503) || Instant::now() > deadline {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `DELETE` of an upload.
    pub async fn delete(&self, url: &str, dialect: Dialect) -> Reply {
        send(self.request("DELETE", url, Some(dialect))).await
    }

    /// tus creation: `POST /files/` with `Upload-Length` (none: `Upload-Defer-Length: 1`), `Upload-Metadata` when
    /// not empty, and with a body, `Content-Type: application/offset+octet-stream` (creation-with-upload).
    pub async fn tus_create(&self, length: Option<u64>, metadata: &str, body: Option<Vec<u8>>) -> Reply {
        let mut request = self.request("POST", &self.endpoint(), Some(Dialect::Tus));
        request = match length {
            Some(length) => request.header("upload-length", length.to_string()),
            None => request.header("upload-defer-length", "1"),
        };
        if !metadata.is_empty() {
            request = request.header("upload-metadata", metadata);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/offset+octet-stream").body(body);
        }
        send(request).await
    }

    /// tus creation of an empty upload of `length` bytes named `name`; its URL.
    pub async fn tus_created(&self, length: u64, name: &str) -> String {
        let reply = self.tus_create(Some(length), &metadata(&[("object_name", name)]), None).await;
        assert_eq!(reply.status, 201, "tus creation: {reply}");
        reply.location()
    }

    /// A tus `PATCH` request with `application/offset+octet-stream` at `offset`, without its body.
    pub fn tus_patch_request(&self, url: &str, offset: u64) -> reqwest::RequestBuilder {
        self.request("PATCH", url, Some(Dialect::Tus))
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
    }

    /// A tus `PATCH` of `body` at `offset`.
    pub async fn tus_patch(&self, url: &str, offset: u64, body: Vec<u8>) -> Reply {
        send(self.tus_patch_request(url, offset).body(body)).await
    }
}

/// Sends a request; its answer.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("a body").to_vec();
    Reply { status, headers, body }
}

/// Sends a request whose body a client may break off; its answer, or `None` when the exchange broke.
pub async fn try_send(request: reqwest::RequestBuilder) -> Option<Reply> {
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.ok()?.to_vec();
    Some(Reply { status, headers, body })
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, String::from_utf8_lossy(&self.body))
    }
}

impl Reply {
    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or_else(|_| panic!("{name} is not text: {self}")))
    }

    /// `Upload-Offset` as an sf-Integer: digits only.
    pub fn offset(&self) -> u64 {
        let value = self.header("upload-offset").unwrap_or_else(|| panic!("no Upload-Offset: {self}"));
        sf_integer(value).unwrap_or_else(|| panic!("Upload-Offset {value:?} is not a non-negative sf-Integer"))
    }

    /// `Upload-Length`, when present, as an sf-Integer.
    pub fn length(&self) -> Option<u64> {
        let value = self.header("upload-length")?;
        Some(sf_integer(value).unwrap_or_else(|| panic!("Upload-Length {value:?} is not a non-negative sf-Integer")))
    }

    /// `Upload-Complete` as an sf-Boolean (`?0` or `?1`).
    pub fn complete(&self) -> bool {
        match self.header("upload-complete") {
            Some("?1") => true,
            Some("?0") => false,
            other => panic!("Upload-Complete is {other:?}, not an sf-Boolean: {self}"),
        }
    }

    /// `Location`.
    pub fn location(&self) -> String {
        self.header("location").unwrap_or_else(|| panic!("no Location: {self}")).to_owned()
    }

    /// `Upload-Limit` as an sf-Dictionary of Integers, parsed strictly: a member that is not `key=integer` fails.
    pub fn limits(&self) -> BTreeMap<String, i64> {
        let value = self.header("upload-limit").unwrap_or_else(|| panic!("no Upload-Limit: {self}"));
        sf_integer_dictionary(value).unwrap_or_else(|e| panic!("Upload-Limit {value:?}: {e}"))
    }

    /// The problem details of an `application/problem+json` answer.
    pub fn problem(&self) -> Value {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("application/problem+json"), "not a problem: {self}");
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("problem body: {e}: {self}"))
    }

    /// Asserts an answer of this status carrying the problem type `kind`.
    pub fn assert_problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{self}");
        assert_eq!(self.problem()["type"], kind, "{self}");
    }

    /// `DraftStore-Object-Name`, decoded.
    pub fn object_name(&self) -> String {
        let value =
            self.header("draftstore-object-name").unwrap_or_else(|| panic!("no DraftStore-Object-Name: {self}"));
        percent_encoding::percent_decode_str(value).decode_utf8().expect("UTF-8").into_owned()
    }

    /// Whether the status is a success.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An sf-Boolean.
pub fn sf(value: bool) -> &'static str {
    if value { "?1" } else { "?0" }
}

/// A name percent-encoded for `DraftStore-Object-Name`.
pub fn encode(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// tus `Upload-Metadata`: `key base64(value)` pairs, comma-separated; a key alone for an empty value (a trailing
/// blank would not survive as part of a header's value).
pub fn metadata(pairs: &[(&str, &str)]) -> String {
    use base64::Engine;
    pairs
        .iter()
        .map(|(key, value)| match value {
            &"" => (*key).to_owned(),
            value => format!("{key} {}", base64::engine::general_purpose::STANDARD.encode(value)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A non-negative sf-Integer (RFC 9651 §3.3.1: at most 15 digits).
fn sf_integer(value: &str) -> Option<u64> {
    (!value.is_empty() && value.len() <= 15 && value.bytes().all(|b| b.is_ascii_digit())).then(|| value.parse().ok())?
}

/// An sf-Dictionary whose members all are `key=integer` (RFC 9651 §4.2.2), without parameters.
fn sf_integer_dictionary(value: &str) -> Result<BTreeMap<String, i64>, String> {
    let mut members = BTreeMap::new();
    for member in value.split(',') {
        let member = member.trim_matches([' ', '\t']);
        let (key, number) = member.split_once('=').ok_or(format!("member {member:?} is not key=value"))?;
        let key_ok = key.starts_with(|c: char| c.is_ascii_lowercase() || c == '*')
            && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b));
        if !key_ok {
            return Err(format!("{key:?} is not an sf key"));
        }
        let digits = number.strip_prefix('-').unwrap_or(number);
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{key}={number}: not an sf-Integer"));
        }
        if members.insert(key.to_owned(), number.parse().expect("digits")).is_some() {
            return Err(format!("{key} twice"));
        }
    }
    Ok(members)
}

/// A request body fed piece by piece by the test, sent chunked (no `Content-Length`): a client whose data comes
/// slowly, or whose connection breaks off.
pub struct Feed(tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>);

/// A body and the feed that writes it.
pub fn fed_body() -> (reqwest::Body, Feed) {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    (reqwest::Body::wrap_stream(stream), Feed(sender))
}

impl Feed {
    /// Sends these bytes; `false` when the request is gone.
    pub async fn send(&self, bytes: &[u8]) -> bool {
        self.0.send(Ok(bytes::Bytes::copy_from_slice(bytes))).await.is_ok()
    }

    /// Breaks the request off: the client drops the connection in the middle of the body.
    pub async fn break_off(self) {
        let _ = self.0.send(Err(std::io::Error::other("the client broke the request off"))).await;
    }

    /// Ends the body.
    pub fn finish(self) {}
}

/// Sends `bytes` in a chunked body of which the client breaks off after sending them; waits until the server saw the
/// break (the request's answer, or the broken exchange).
pub async fn broken_off(request: reqwest::RequestBuilder, bytes: &[u8]) {
    let (body, feed) = fed_body();
    let sent = tokio::spawn(request.body(body).send());
    feed.send(bytes).await;
    // Let the server read what was sent before the connection breaks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    feed.break_off().await;
    let _ = sent.await.expect("the request task");
}

/// One HTTP/1.1 response head: status and headers (names lowercase).
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a request head over a fresh HTTP/1.1 connection and then its body (after the answer to `Expect:
/// 100-continue` when the head asks for one, within 10 s); every response head the server sent, interim ones first,
/// up to the final one. `headers` are `name: value` lines; `Host`, `Content-Length` and the credential are added.
pub async fn raw_exchange(app: &TestApp, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<Head> {
    let host = app.address.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(host).await.expect("connects");
    let mut stream = tokio::io::BufReader::new(stream);
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\n", body.len());
    if let Some(bearer) = &app.bearer {
        head.push_str(&format!("authorization: Bearer {bearer}\r\n"));
    }
    for header in headers {
        head.push_str(&format!("{header}\r\n"));
    }
    head.push_str("\r\n");
    stream.get_mut().write_all(head.as_bytes()).await.expect("head sent");
    let expects_continue = headers.iter().any(|h| h.to_ascii_lowercase().starts_with("expect: 100-continue"));
    let mut heads = Vec::new();
    if expects_continue {
        let first = tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream))
            .await
            .expect("an answer to Expect: 100-continue within 10 s");
        let interim = (100..200).contains(&first.status);
        heads.push(first);
        if !interim {
            return heads;
        }
    }
    stream.get_mut().write_all(body).await.expect("body sent");
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), read_head(&mut stream)).await.expect("an answer");
        let last = !(100..200).contains(&next.status);
        heads.push(next);
        if last {
            return heads;
        }
    }
}

async fn read_head(stream: &mut tokio::io::BufReader<tokio::net::TcpStream>) -> Head {
    let mut status_line = String::new();
    stream.read_line(&mut status_line).await.expect("a status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        panic!("not a status line: {status_line:?}");
    });
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("a header line");
        if line == "\r\n" || line.is_empty() {
            return Head { status, headers };
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
}

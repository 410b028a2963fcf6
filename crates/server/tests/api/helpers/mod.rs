use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use draftstore::config::{Cli, Command, ServeSettings};
use draftstore::startup::Application;
use draftstore_proto::draft::v1::draft_service_client::DraftServiceClient;
use draftstore_storage::probe::StoreProbe;
use draftstore_storage::{ObjectStore, Store};
use serde_json::{Value, json};

mod backend;
pub mod hooks;
pub mod images;
pub mod multipart;
mod process;
pub mod resumable;
pub mod tus;
pub mod variants;

pub use backend::Backend;
pub(crate) use backend::on_both_backends;
pub use process::{LoggedServer, Server};

/// Writes a line past the test harness's capture (which takes `print!`, not the standard error stream itself), so
/// that what a test measured is in every run's output, passing or not.
pub fn report(line: &str) {
    std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes()).expect("stderr");
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<gRPC port>`.
    pub grpc_address: String,
    pub client: reqwest::Client,
    /// Every capability of the server's store.
    pub store: Store,
    /// Its objects.
    pub storage: Arc<dyn ObjectStore>,
    /// The same store, as the store probe checks it.
    pub probe: Arc<dyn StoreProbe>,
    pub data_dir: PathBuf,
    /// Sent as `Authorization: Bearer …` on API requests and RPCs.
    pub bearer: Option<String>,
    _temp: Option<Arc<tempfile::TempDir>>,
}

/// A JSON answer with its status.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// Asserts a success and returns the body.
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "expected success, got {:?}", self.body);
        self.body
    }

    /// Asserts an error answer of this status and type, with the standard error body.
    pub fn error(&self, status: u16, error_type: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["success"], json!(false), "{:?}", self.body);
        assert_eq!(self.body["error_type"], json!(error_type), "{:?}", self.body);
        assert!(self.body["error_message"].as_str().is_some_and(|m| !m.is_empty()), "{:?}", self.body);
    }
}

/// Parses `draftstore serve` arguments as the binary would, with a free port and loopback only.
pub fn serve_settings(extra: &[&str]) -> ServeSettings {
    // Readiness is checked on every probe unless a test asks for the cache.
    let mut args = vec![
        "draftstore",
        "serve",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--bind-address",
        "127.0.0.1",
        "--ready-cache",
        "0",
    ];
    args.extend_from_slice(extra);
    let Command::Serve(serve) = Cli::try_parse_from(args).expect("valid arguments").command else {
        unreachable!("serve was given")
    };
    serve.validate().expect("valid settings");
    *serve
}

/// Starts the server on the local backend in a fresh temporary folder.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the server on the local backend in a fresh temporary folder, with extra arguments.
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    let temp = tempfile::tempdir().expect("temporary folder");
    let data_dir = temp.path().to_owned();
    let mut args = vec!["--storage-type", "local", "--data-dir", data_dir.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let mut app = spawn(serve_settings(&args)).await;
    app.data_dir = data_dir;
    app._temp = Some(Arc::new(temp));
    app
}

/// `API_KEYS` entries for these tenants and keys: `tenant:sha256-hex-of-key`, comma-separated.
pub fn api_keys(keys: &[(&str, &str)]) -> String {
    use sha2::Digest;
    keys.iter()
        .map(|(tenant, key)| format!("{tenant}:{}", hex::encode(sha2::Sha256::digest(key))))
        .collect::<Vec<_>>()
        .join(",")
}

/// The tenants of the multi-tenant tests and their API keys.
pub const TENANTS: [(&str, &str); 2] = [("alice", "key-of-alice"), ("mallory", "key-of-mallory")];

/// Starts the server on the shared SeaweedFS, in buckets of its own, with extra arguments; returns it and its
/// main bucket's name.
pub async fn spawn_on_seaweed(extra: &[&str]) -> (TestApp, String) {
    let weed = crate::seaweed::shared().await;
    let bucket = crate::seaweed::unique_bucket();
    let mut args = weed.s3_args(&bucket);
    args.extend(extra.iter().map(|s| s.to_string()));
    (spawn(serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>())).await, bucket)
}

/// Starts the server with the given settings.
pub async fn spawn(settings: ServeSettings) -> TestApp {
    let storage = &settings.common.storage;
    let data_dir = match storage.kind {
        draftstore::backend::StorageType::Local => storage.data_dir.clone(),
        _ => PathBuf::new(),
    };
    let app = Application::build(settings).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.http_port());
    let grpc_address = format!("http://127.0.0.1:{}", app.grpc_port());
    let store = app.store();
    let (storage, probe) = (Arc::clone(&store.objects), Arc::clone(&store.probe));
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        grpc_address,
        client: reqwest::Client::new(),
        store,
        storage,
        probe,
        data_dir,
        bearer: None,
        _temp: None,
    }
}

impl TestApp {
    /// The same server, called with another credential.
    pub fn as_caller(&self, bearer: &str) -> TestApp {
        TestApp {
            address: self.address.clone(),
            grpc_address: self.grpc_address.clone(),
            client: self.client.clone(),
            store: self.store.clone(),
            storage: Arc::clone(&self.storage),
            probe: Arc::clone(&self.probe),
            data_dir: self.data_dir.clone(),
            bearer: Some(bearer.to_owned()),
            _temp: self._temp.clone(),
        }
    }

    /// The same server, called without a credential.
    pub fn without_bearer(mut self) -> TestApp {
        self.bearer = None;
        self
    }

    /// A gRPC request carrying this caller's credential.
    pub fn rpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(bearer) = &self.bearer {
            request.metadata_mut().insert("authorization", format!("Bearer {bearer}").parse().expect("ascii"));
        }
        request
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.bearer {
            Some(bearer) => request.bearer_auth(bearer),
            None => request,
        }
    }

    /// A gRPC channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.grpc_address.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connects")
    }

    /// A gRPC client of the DraftService.
    pub async fn grpc(&self) -> DraftServiceClient<tonic::transport::Channel> {
        DraftServiceClient::connect(self.grpc_address.clone()).await.expect("gRPC connects")
    }

    /// POSTs a JSON body to an API route.
    pub async fn post(&self, route: &str, body: &Value) -> Answer {
        let response = self
            .authorized(self.client.post(format!("{}{route}", self.address)))
            .json(body)
            .send()
            .await
            .expect("request sent");
        answer(response).await
    }

    /// POSTs raw bytes with a content type.
    pub async fn post_raw(&self, route: &str, content_type: Option<&str>, body: &'static str) -> Answer {
        let mut request = self.authorized(self.client.post(format!("{}{route}", self.address))).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        answer(request.send().await.expect("request sent")).await
    }

    /// GETs a route, without a credential.
    pub async fn get(&self, route: &str) -> Answer {
        answer(self.client.get(format!("{}{route}", self.address)).send().await.expect("request sent")).await
    }

    pub async fn upload_url(&self, name: &str, content_type: Option<&str>) -> Answer {
        let mut body = json!({ "object_name": name });
        if let Some(content_type) = content_type {
            body["content_type"] = json!(content_type);
        }
        self.post("/api/v1/upload-url", &body).await
    }

    pub async fn download_url(&self, name: &str, stage: Option<&str>) -> Answer {
        let mut body = json!({ "object_name": name });
        if let Some(stage) = stage {
            body["stage"] = json!(stage);
        }
        self.post("/api/v1/download-url", &body).await
    }

    pub async fn confirm(&self, name: &str) -> Answer {
        self.post("/api/v1/confirm-upload", &json!({ "object_name": name })).await
    }

    /// Uploads a draft through the URL the API hands out, sending the headers it asks for.
    pub async fn upload(&self, name: &str, content_type: Option<&str>, bytes: &[u8]) {
        let ticket = self.upload_url(name, content_type).await.ok();
        let status = self.put_ticket(&ticket, bytes.to_vec()).await;
        assert_eq!(status, 200, "upload of {name} refused");
    }

    /// PUTs bytes to an upload ticket's URL with its headers; returns the status.
    pub async fn put_ticket(&self, ticket: &Value, bytes: Vec<u8>) -> u16 {
        signed_put(&self.client, ticket).body(bytes).send().await.expect("upload sent").status().as_u16()
    }

    /// Fetches an object through a fresh download URL; returns content type and bytes.
    pub async fn download(&self, name: &str, stage: Option<&str>) -> (String, Vec<u8>) {
        let ticket = self.download_url(name, stage).await.ok();
        let response =
            self.client.get(ticket["download_url"].as_str().expect("download_url")).send().await.expect("download");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
        (content_type, response.bytes().await.expect("body").to_vec())
    }
}

/// The upload ticket a server at `base` (`http://host:port`) hands out for this `upload-url` request body.
pub async fn upload_ticket(client: &reqwest::Client, base: &str, body: &Value) -> Value {
    let response = client.post(format!("{base}/api/v1/upload-url")).json(body).send().await.expect("sent");
    response.json().await.expect("json")
}

/// Uploads `body` as a draft through the upload URL the typed `client` gets for `request`, with the headers it asks
/// for; panics unless the store took it.
pub async fn upload_through(
    client: &draftstore_client::Client,
    request: &draftstore_client::api::UploadUrlRequest,
    body: impl Into<reqwest::Body>,
) {
    let ticket = client.upload_url(request).await.expect("an upload URL");
    let mut put = reqwest::Client::new().put(&ticket.upload_url).body(body);
    for (name, value) in &ticket.headers {
        put = put.header(name, value);
    }
    assert!(put.send().await.expect("uploaded").status().is_success(), "{}", request.object_name);
}

/// A PUT to a signed URL (the `upload_url` of a ticket or of a signed part) with the headers it was signed with.
pub fn signed_put(client: &reqwest::Client, signed: &Value) -> reqwest::RequestBuilder {
    signed_put_without(client, signed, &[])
}

/// A PUT to a signed URL with the headers it was signed with, but for those named in `left_out`.
pub fn signed_put_without(client: &reqwest::Client, signed: &Value, left_out: &[&str]) -> reqwest::RequestBuilder {
    let mut request = client.put(signed["upload_url"].as_str().expect("upload_url"));
    for (name, value) in signed["headers"].as_object().expect("headers") {
        if !left_out.iter().any(|left_out| name.eq_ignore_ascii_case(left_out)) {
            request = request.header(name, value.as_str().expect("header value"));
        }
    }
    request
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"));
    Answer { status, body }
}

/// A gRPC confirm of the draft `name` under its own name, `overwrite` left to its default.
pub fn grpc_confirm(name: &str) -> draftstore_proto::draft::v1::ConfirmUploadRequest {
    draftstore_proto::draft::v1::ConfirmUploadRequest {
        object_name: name.into(),
        overwrite: None,
        ..Default::default()
    }
}

/// A real file of the content fixtures (`tests/fixtures/content`).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/content").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The start of a Windows program: a DOS header pointing at a PE header for x86-64.
pub fn windows_program() -> Vec<u8> {
    let mut bytes = vec![0u8; 512];
    bytes[..2].copy_from_slice(b"MZ");
    bytes[0x3c] = 0x80;
    bytes[0x80..0x86].copy_from_slice(b"PE\0\0\x64\x86");
    bytes
}

/// `len` bytes that differ from seed to seed (xorshift), for files whose content a test must recognise.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A small generator seeded from the clock, or from CRASH_SEED to replay a run; its seed is printed with the results.
pub struct Rng {
    pub seed: u64,
    state: u64,
}

impl Rng {
    /// Seeded from CRASH_SEED when set, else from the clock.
    pub fn new() -> Rng {
        let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64 | 1
        });
        Rng { seed, state: seed }
    }

    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n
    }
}

/// A free loopback port for a server a test starts on a port it must know beforehand. Taken from 10,000 to 19,999:
/// outside the ephemeral range (32,768 and up here), where outgoing connections take their ports, so that a port
/// found free is not taken by a connection before the server binds it; and below the SeaweedFS instances' ports.
/// Never the same port twice in one test run.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = port_seed();
    for _ in 0..1000 {
        let port =
            10_000 + (seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919)) % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 10,000 and 19,999");
}

/// The first of `len` free loopback ports in a row, from 5,000 to 9,999, for a group of servers laid out from one
/// base port (`scripts/cluster`): below the ephemeral range and the ports [`free_port`] hands out.
pub fn free_port_block(len: u16) -> u16 {
    let seed = port_seed();
    let blocks = 5_000 / u32::from(len);
    for attempt in 0..blocks {
        let base = 5_000 + ((seed.wrapping_add(attempt * 7)) % blocks) as u16 * len;
        let held: Vec<_> = (base..base + len).map(|p| std::net::TcpListener::bind(("127.0.0.1", p))).collect();
        if held.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no {len} free ports in a row from 5,000 to 9,999");
}

/// Where a search for free ports starts: different from process to process and from call to call.
pub fn port_seed() -> u32 {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    std::process::id() ^ clock
}

/// How many files the local backend stages in `data_dir` now.
pub fn staging_files(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir.join(".staging")).map(|d| d.count()).unwrap_or(0)
}

/// Every file under a folder, for checking that nothing was written.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out.sort();
    out
}

/// The address and the head of a raw HTTP/1.1 `PUT` to an upload ticket's URL, with its headers and a declared
/// `Content-Length`: what a hostile client sends before trickling (or never sending) the body.
pub fn raw_put_head(ticket: &Value, content_length: u64) -> (std::net::SocketAddr, String) {
    let url = url::Url::parse(ticket["upload_url"].as_str().expect("upload_url")).expect("a URL");
    let mut head = format!(
        "PUT {}?{} HTTP/1.1\r\nHost: {}\r\nContent-Length: {content_length}\r\n",
        url.path(),
        url.query().unwrap_or_default(),
        url.authority(),
    );
    for (name, value) in ticket["headers"].as_object().expect("headers") {
        head.push_str(&format!("{name}: {}\r\n", value.as_str().expect("text")));
    }
    head.push_str("\r\n");
    (std::net::SocketAddr::from(([127, 0, 0, 1], url.port().expect("a port"))), head)
}

/// Descriptors this process holds open on `path`: the server runs in the test's process, so these are its handles
/// of that file.
pub fn open_handles_of(path: &Path) -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { panic!("/proc/self/fd is readable") };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok()).filter(|target| target == path).count()
}

/// Sends `requests` (method, path, bearer, JSON body) one after the other on one HTTP/1.1 connection to `app`;
/// the status of each, and `None` for each one the connection no longer answered.
pub async fn on_one_connection(
    app: &TestApp,
    requests: &[(&str, &str, Option<&str>, Option<Value>)],
) -> Vec<Option<u16>> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&host).await.expect("connect");
    let mut stream = tokio::io::BufReader::new(stream);
    let mut statuses = Vec::new();
    for (method, path, bearer, body) in requests {
        let body = body.as_ref().map(Value::to_string).unwrap_or_default();
        let auth = bearer.map(|b| format!("authorization: Bearer {b}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let answered = async {
            stream.get_mut().write_all(request.as_bytes()).await.ok()?;
            let mut status_line = String::new();
            stream.read_line(&mut status_line).await.ok().filter(|n| *n > 0)?;
            let status = status_line.split(' ').nth(1)?.parse().ok()?;
            let mut length = 0;
            loop {
                let mut line = String::new();
                stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().ok()?;
                }
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.ok()?;
            Some(status)
        };
        statuses.push(answered.await);
    }
    statuses
}

//! At the edge: labels, defaults, authentication and rate limits, before a request reaches its handler.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use draftstore_proto::draft::v1 as pb;
use draftstore_proto::draft::v1::draft_service_client::DraftServiceClient;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{LoggedServer, Server, TestApp, api_keys, report, serve_settings, spawn_app_with};

/// `draftstore serve` run once with these variables (and a fresh DATA_DIR, ports 0), expected to refuse to start:
/// its exit code 2 and what it wrote.
fn refused_start(envs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_draftstore"));
    command.arg("serve").env("DATA_DIR", dir.path()).env("HTTP_PORT", "0").env("GRPC_PORT", "0");
    for var in ["AUTH_MODE", "BIND_ADDRESS", "STORAGE_TYPE", "JWT_SECRET", "RUST_LOG"] {
        command.env_remove(var);
    }
    let output = command.envs(envs.iter().copied()).output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // 2 for a setting refused by itself, 1 for one refused with the others at start-up.
    assert!(matches!(output.status.code(), Some(1 | 2)), "{envs:?} did not refuse to start: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn token(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key).expect("signs")
}

/// A fresh P-256 key pair made with openssl: the signing key and its public JWK named `kid`.
fn ec_key(dir: &Path, kid: &str) -> (EncodingKey, Jwk) {
    let path = dir.join(format!("{kid}.pem"));
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&path)
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl made no key");
    let key = EncodingKey::from_ec_pem(&std::fs::read(&path).expect("key")).expect("an EC key");
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("a JWK");
    jwk.common.key_id = Some(kid.to_owned());
    (key, jwk)
}

fn key_set(keys: &[&Jwk]) -> String {
    serde_json::to_string(&JwkSet { keys: keys.iter().map(|&jwk| jwk.clone()).collect() }).expect("JSON")
}

/// An identity provider's key set on a loopback port, as a small HTTP server: what it serves can change, and it
/// counts how often it was fetched.
struct KeyServer {
    url: String,
    body: Arc<std::sync::Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start(body: String) -> KeyServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("address"));
        let body = Arc::new(std::sync::Mutex::new(body));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&body), Arc::clone(&fetches));
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let (served, counted) = (Arc::clone(&served), Arc::clone(&counted));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.is_ok_and(|n| n == 1) {
                        head.push(byte[0]);
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = served.lock().expect("body").clone();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        KeyServer { url, body, fetches }
    }

    fn serve(&self, body: String) {
        *self.body.lock().expect("body") = body;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The REST status of an upload-url request with this token.
async fn status_with(app: &TestApp, token: &str) -> u16 {
    app.as_caller(token).upload_url("a.txt", None).await.status
}

// --- Bounded labels ---

/// A channel that sends every call of the generated client to another path of the gRPC port: methods no client of
/// the contract could call.
#[derive(Clone)]
struct Renamed {
    channel: tonic::transport::Channel,
    path: Arc<str>,
}

impl tower_service::Service<axum::http::Request<tonic::body::Body>> for Renamed {
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        tower_service::Service::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, mut request: axum::http::Request<tonic::body::Body>) -> Self::Future {
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(self.path.parse().expect("a path"));
        *request.uri_mut() = axum::http::Uri::from_parts(parts).expect("a URI");
        Box::pin(tower_service::Service::call(&mut self.channel, request))
    }
}

/// The series `/metrics` holds, and the server's resident memory in KiB.
async fn series_and_rss(client: &reqwest::Client, server: &Server) -> (Vec<String>, u64) {
    let text = client.get(format!("{}/metrics", server.url())).send().await.expect("scraped").text().await;
    let series = text
        .expect("text")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("the server's status");
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    (series, rss)
}

/// A method (or gRPC method name) no standard names, 200 characters long, different for each `i`.
fn invented(i: usize) -> String {
    format!("{:Q<200}", format!("INVENTED{i}X"))
}

/// `rounds` requests of every invented kind, 16 at a time: REST methods on an open route, on an API route with and
/// without a key and on no route; gRPC methods of the service with and without a key, and of no service.
async fn invent(server: &Server, grpc: &tonic::transport::Channel, key: &str, start: usize, rounds: usize) {
    let client = reqwest::Client::new();
    let base = server.url();
    let one = |i: usize| {
        let (client, base, grpc) = (client.clone(), base.clone(), grpc.clone());
        let key = key.to_owned();
        async move {
            let method = reqwest::Method::from_bytes(invented(i).as_bytes()).expect("a token");
            for (path, bearer) in
                [("/health", None), ("/api/v1/upload-url", None), ("/api/v1/upload-url", Some(&key)), ("/x/y", None)]
            {
                let mut request = client.request(method.clone(), format!("{base}{path}"));
                if let Some(bearer) = bearer {
                    request = request.bearer_auth(bearer);
                }
                let status = request.send().await.expect("answered").status();
                assert!(status.is_client_error(), "{path}: {status}");
            }
            for (path, bearer) in [
                (format!("/draft.v1.DraftService/{}", invented(i)), None),
                (format!("/draft.v1.DraftService/{}", invented(i)), Some(&key)),
                (format!("/{}.Service/Call", invented(i)), Some(&key)),
            ] {
                let mut rpc = DraftServiceClient::new(Renamed { channel: grpc.clone(), path: path.into() });
                let mut request = tonic::Request::new(pb::CreateDraftBucketRequest {});
                if let Some(bearer) = bearer {
                    request.metadata_mut().insert("authorization", format!("Bearer {bearer}").parse().expect("ascii"));
                }
                let code = rpc.create_draft_bucket(request).await.expect_err("no such method").code();
                assert!(matches!(code, Code::Unauthenticated | Code::Unimplemented), "{code:?}");
            }
        }
    };
    for chunk in (start..start + rounds).collect::<Vec<_>>().chunks(16) {
        futures_util::future::join_all(chunk.iter().map(|&i| one(i))).await;
    }
}

#[tokio::test]
async fn invented_methods_cannot_grow_the_metrics_or_the_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "key-of-alice";
    let mut server = Server::new(vec![
        "--data-dir".into(),
        dir.path().to_str().expect("utf-8").into(),
        "--auth-mode".into(),
        "api-key".into(),
        "--api-keys".into(),
        api_keys(&[("alice", key)]),
    ]);
    server.start().await;
    let grpc = tonic::transport::Channel::from_shared(server.grpc_url()).expect("uri").connect().await.expect("up");
    let client = reqwest::Client::new();
    // Every kind of request once before measuring, so that the series of its labels exist, and the allocator has
    // met the load.
    invent(&server, &grpc, key, 0, 300).await;
    series_and_rss(&client, &server).await;
    let (series, rss) = series_and_rss(&client, &server).await;
    invent(&server, &grpc, key, 300, 2_000).await;
    let (series_after, rss_after) = series_and_rss(&client, &server).await;
    report(&format!(
        "invented methods: 14,000 requests (2,000 of each of 7 kinds); /metrics {} -> {} series, RSS {rss} -> \
         {rss_after} KiB",
        series.len(),
        series_after.len()
    ));
    // Before labels came from a closed set, each invented method was a series of its own (and its histogram's 19).
    let new: Vec<_> = series_after.iter().filter(|s| !series.contains(s)).collect();
    assert!(new.is_empty(), "new series: {new:#?}");
    assert!(rss_after <= rss + 16 * 1024, "the server grew from {rss} KiB to {rss_after} KiB");
    let text = client.get(format!("{}/metrics", server.url())).send().await.expect("scraped").text().await;
    let text = text.expect("text");
    assert!(!text.contains("INVENTED"), "an invented name became a label");
    assert!(text.contains(r#"method="other""#) && text.contains(r#"route="unmatched""#), "{text}");
    assert!(text.contains(r#"draftstore_grpc_requests_total{method="unknown",code="Unauthenticated"}"#), "{text}");
}

// --- Safe by default ---

#[tokio::test]
async fn an_unauthenticated_server_listens_on_loopback_unless_told_twice() {
    let stderr = refused_start(&[("BIND_ADDRESS", "0.0.0.0")]);
    assert!(stderr.contains("BIND_ADDRESS: 0.0.0.0 is not a loopback address"), "{stderr}");
    assert!(stderr.contains("set AUTH_MODE=api-key or jwt"), "the first way out: {stderr}");
    assert!(stderr.contains("ALLOW_UNAUTHENTICATED=true"), "the second way out: {stderr}");
    let stderr = refused_start(&[("BIND_ADDRESS", "::"), ("ALLOW_UNAUTHENTICATED", "false")]);
    assert!(stderr.contains("BIND_ADDRESS: :: is not a loopback address"), "{stderr}");

    let dir = tempfile::tempdir().expect("tempdir");
    // No BIND_ADDRESS (empty is unset): loopback.
    let quiet = LoggedServer::start(dir.path(), &[("BIND_ADDRESS", ""), ("AUTH_MODE", "none")]);
    assert!(quiet.http.starts_with("http://127.0.0.1:"), "{}", quiet.http);
    let warning = quiet.seen().iter().find(|line| line.contains("AUTH_MODE=none")).expect("a warning at start-up");
    let warning: Value = serde_json::from_str(warning).expect("JSON");
    assert_eq!(warning["address"], "127.0.0.1", "{warning}");
    drop(quiet);
    let open = LoggedServer::start(
        dir.path(),
        &[("BIND_ADDRESS", "0.0.0.0"), ("AUTH_MODE", "none"), ("ALLOW_UNAUTHENTICATED", "true")],
    );
    assert!(open.http.starts_with("http://0.0.0.0:"), "on purpose: {}", open.http);
}

fn manifest(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_shipped_manifests_ask_for_api_keys_and_publish_nothing() {
    let config = manifest("deploy/base/configmap.yaml");
    let data = config["data"].as_object().expect("a map");
    assert_eq!(data["AUTH_MODE"], "api-key");
    assert!(!data.contains_key("ALLOW_UNAUTHENTICATED"));
    let keys_file = PathBuf::from(data["API_KEYS_FILE"].as_str().expect("API_KEYS_FILE"));

    // The keys file is a file of a Secret mounted in the server's container.
    let deployment = manifest("deploy/base/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|mount| keys_file.parent() == Some(Path::new(mount["mountPath"].as_str().expect("a path"))))
        .expect("API_KEYS_FILE's folder is mounted");
    let volume = pod["volumes"].as_array().expect("volumes").iter().find(|v| v["name"] == mount["name"]).expect("vol");
    let secret_name = volume["secret"]["secretName"].as_str().expect("a Secret's volume");
    let secret = manifest("deploy/base/secret-api-keys.yaml");
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"]["name"], secret_name);
    let file = keys_file.file_name().and_then(|f| f.to_str()).expect("a file name");
    let placeholder = secret["stringData"][file].as_str().expect("the file is the Secret's").to_owned();
    let kustomization =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base/kustomization.yaml"));
    assert!(kustomization.expect("readable").contains("secret-api-keys.yaml"));

    // Nothing is published outside the cluster.
    for service in ["deploy/base/service.yaml", "deploy/base/service-grpc.yaml"] {
        let kind = manifest(service)["spec"]["type"].as_str().unwrap_or("ClusterIP").to_owned();
        assert_eq!(kind, "ClusterIP", "{service}");
    }

    // The ConfigMap as the pod gets it: the placeholder Secret refuses to start, a real one starts with keys required.
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("api-keys");
    let mut envs: Vec<(String, String)> = data
        .iter()
        .filter(|(name, _)| !["HTTP_PORT", "GRPC_PORT", "API_KEYS_FILE"].contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.as_str().expect("text").to_owned()))
        .collect();
    envs.push(("API_KEYS_FILE".into(), keys.to_str().expect("utf-8").into()));
    let envs_ref: Vec<(&str, &str)> = envs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    std::fs::write(&keys, &placeholder).expect("written");
    let stderr = refused_start(&envs_ref);
    assert!(stderr.contains("API_KEYS_FILE: the key digest of tenant 'app' is not 64 hex digits"), "{stderr}");
    std::fs::write(&keys, api_keys(&[("app", "key-of-app")])).expect("written");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut with_port = envs_ref.clone();
    with_port.push(("BIND_ADDRESS", "127.0.0.1"));
    let server = LoggedServer::start(data_dir.path(), &with_port);
    let client = reqwest::Client::new();
    let ask = |bearer: Option<&str>| {
        let mut request = client.post(format!("{}/api/v1/list-drafts", server.http)).json(&json!({}));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    assert_eq!(ask(None).await.expect("answered").status(), 401);
    assert_eq!(ask(Some("key-of-app")).await.expect("answered").status(), 200);
}

#[tokio::test]
async fn a_tenant_cannot_create_the_buckets_unless_the_operator_names_it() {
    let keys = api_keys(&[("alice", "key-of-alice"), ("ops", "key-of-ops")]);
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &keys, "--admin-tenants", "ops"]).await;
    let alice = app.as_caller("key-of-alice");
    let refused = alice.post("/api/v1/draft-bucket", &json!({})).await;
    refused.error(403, "ACCESS_DENIED");
    assert!(refused.body["error_message"].as_str().expect("message").contains("ADMIN_TENANTS"), "{:?}", refused.body);
    app.as_caller("key-of-ops").post("/api/v1/draft-bucket", &json!({})).await.ok();
    app.as_caller("").without_bearer().post("/api/v1/draft-bucket", &json!({})).await.error(401, "ACCESS_DENIED");

    let mut grpc = app.grpc().await;
    let status = grpc.create_draft_bucket(alice.rpc(pb::CreateDraftBucketRequest {})).await.expect_err("not ops");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.get_error_details().error_info().expect("ErrorInfo").reason, "ACCESS_DENIED");
    grpc.create_draft_bucket(app.as_caller("key-of-ops").rpc(pb::CreateDraftBucketRequest {})).await.expect("ops");
    // Alice's own calls are not operator calls.
    alice.upload("a.txt", Some("text/plain"), b"alice's").await;

    // Without ADMIN_TENANTS nobody may, once authentication is on; a name that is no tenant is refused at start-up.
    let nobody = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    nobody.as_caller("key-of-ops").post("/api/v1/draft-bucket", &json!({})).await.error(403, "ACCESS_DENIED");
    let stderr = refused_start(&[
        ("AUTH_MODE", "api-key"),
        ("API_KEYS", &keys),
        ("ADMIN_TENANTS", "opps"),
        ("BIND_ADDRESS", "127.0.0.1"),
    ]);
    assert!(stderr.contains("ADMIN_TENANTS: 'opps' is no tenant of API_KEYS or API_KEYS_FILE"), "{stderr}");
}

// --- JWT that cannot be borrowed or guessed ---

/// A server that takes JWTs issued by `https://idp.test` for `draftstore`, signed by the keys at `jwks_url`.
async fn jwks_app(jwks_url: &str, extra: &[&str]) -> TestApp {
    let mut args = vec!["--auth-mode", "jwt", "--jwks-url", jwks_url];
    args.extend(["--jwt-issuer", "https://idp.test", "--jwt-audience", "draftstore"]);
    args.extend_from_slice(extra);
    spawn_app_with(&args).await
}

#[tokio::test]
async fn a_token_for_another_audience_or_issuer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, jwk) = ec_key(dir.path(), "k1");
    let idp = KeyServer::start(key_set(&[&jwk])).await;
    let app = jwks_app(&idp.url, &[]).await;
    let claims = |iss: Option<&str>, aud: Option<&str>| {
        let mut claims = json!({ "sub": "alice", "exp": now() + 600 });
        if let Some(iss) = iss {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            claims["aud"] = json!(aud);
        }
        token(&key, Algorithm::ES256, Some("k1"), claims)
    };
    assert_eq!(status_with(&app, &claims(Some("https://idp.test"), Some("draftstore"))).await, 200);
    for (iss, aud, case) in [
        (Some("https://idp.test"), Some("another-app"), "another application of the same provider"),
        (Some("https://evil.test"), Some("draftstore"), "another issuer"),
        (Some("https://idp.test"), None, "no audience"),
        (None, Some("draftstore"), "no issuer"),
    ] {
        assert_eq!(status_with(&app, &claims(iss, aud)).await, 401, "{case}");
    }

    // Public keys without both claims required refuse to start.
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, key_set(&[&jwk])).expect("written");
    let jwks = jwks.to_str().expect("utf-8");
    let stderr = refused_start(&[("AUTH_MODE", "jwt"), ("JWKS_FILE", jwks), ("JWT_AUDIENCE", "draftstore")]);
    assert!(stderr.contains("JWT_ISSUER: is required with JWT_PUBLIC_KEY_FILE, JWKS_FILE or JWKS_URL"), "{stderr}");
    let stderr = refused_start(&[("AUTH_MODE", "jwt"), ("JWKS_URL", &idp.url), ("JWT_ISSUER", "https://idp.test")]);
    assert!(stderr.contains("JWT_AUDIENCE: is required"), "{stderr}");
}

#[tokio::test]
async fn a_guessable_jwt_secret_refuses_to_start() {
    let stderr = refused_start(&[("AUTH_MODE", "jwt"), ("JWT_SECRET", "secret")]);
    assert!(
        stderr.contains("JWT_SECRET: must be at least 32 bytes long; this one has 6 (value not shown)"),
        "{stderr}"
    );
    assert!(!stderr.contains("'secret'"), "{stderr}");
    let stderr = refused_start(&[("AUTH_MODE", "jwt"), ("JWT_SECRET", &"s".repeat(31))]);
    assert!(stderr.contains("this one has 31"), "{stderr}");
}

#[tokio::test]
async fn a_key_marked_for_encryption_or_another_algorithm_verifies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (signing, signing_jwk) = ec_key(dir.path(), "sig");
    let (encrypting, mut encrypting_jwk) = ec_key(dir.path(), "enc");
    encrypting_jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    let (pinned, mut pinned_jwk) = ec_key(dir.path(), "pinned");
    pinned_jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::ES384);
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, key_set(&[&signing_jwk, &encrypting_jwk, &pinned_jwk])).expect("written");
    let app = spawn_app_with(&[
        "--auth-mode",
        "jwt",
        "--jwks-file",
        jwks.to_str().expect("utf-8"),
        "--jwt-issuer",
        "https://idp.test",
        "--jwt-audience",
        "draftstore",
    ])
    .await;
    let claims = json!({ "sub": "alice", "exp": now() + 600, "iss": "https://idp.test", "aud": "draftstore" });
    assert_eq!(status_with(&app, &token(&signing, Algorithm::ES256, Some("sig"), claims.clone())).await, 200);
    let enc = token(&encrypting, Algorithm::ES256, Some("enc"), claims.clone());
    assert_eq!(status_with(&app, &enc).await, 401, "use: enc");
    let pinned = token(&pinned, Algorithm::ES256, Some("pinned"), claims);
    assert_eq!(status_with(&app, &pinned).await, 401, "alg: ES384 on a P-256 key fits no token");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart_and_forged_kids_cannot_hammer_the_provider() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, old_jwk) = ec_key(dir.path(), "old");
    let (new, new_jwk) = ec_key(dir.path(), "new");
    let idp = KeyServer::start(key_set(&[&old_jwk])).await;
    let app = jwks_app(&idp.url, &["--jwks-refresh-interval", "86400"]).await;
    let claims = || json!({ "sub": "alice", "exp": now() + 600, "iss": "https://idp.test", "aud": "draftstore" });
    assert_eq!(idp.fetches(), 1, "fetched once at start-up");
    assert_eq!(status_with(&app, &token(&old, Algorithm::ES256, Some("old"), claims())).await, 200);

    // The provider rotates: the first token signed with the new key has the set fetched again.
    idp.serve(key_set(&[&new_jwk]));
    assert_eq!(status_with(&app, &token(&new, Algorithm::ES256, Some("new"), claims())).await, 200);
    assert_eq!(idp.fetches(), 2);

    // Tokens naming keys nobody has, many at once: refused, and the provider is not asked again meanwhile.
    let forged: Vec<_> =
        (0..50).map(|i| token(&new, Algorithm::ES256, Some(&format!("forged-{i}")), claims())).collect();
    let statuses = futures_util::future::join_all(forged.iter().map(|t| status_with(&app, t))).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(idp.fetches(), 2, "unknown kids within the cooldown fetch nothing");
    assert_eq!(status_with(&app, &token(&old, Algorithm::ES256, Some("old"), claims())).await, 401, "rotated out");

    // On a schedule, a key the provider withdrew stops verifying, though no token named an unknown kid.
    let idp = KeyServer::start(key_set(&[&old_jwk, &new_jwk])).await;
    let app = jwks_app(&idp.url, &["--jwks-refresh-interval", "1"]).await;
    let withdrawn = token(&old, Algorithm::ES256, Some("old"), claims());
    assert_eq!(status_with(&app, &withdrawn).await, 200);
    idp.serve(key_set(&[&new_jwk]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_with(&app, &withdrawn).await == 200 {
        assert!(Instant::now() < deadline, "the withdrawn key still verifies after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status_with(&app, &token(&new, Algorithm::ES256, Some("new"), claims())).await, 200);
}

// --- The smaller findings ---

#[tokio::test]
async fn a_tenant_of_129_bytes_is_refused_at_authentication() {
    let secret = "a-test-secret-of-thirty-two-bytes!";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server =
        LoggedServer::start(dir.path(), &[("AUTH_MODE", "jwt"), ("JWT_SECRET", secret), ("RUST_LOG", "info")]);
    let key = EncodingKey::from_secret(secret.as_bytes());
    let as_tenant = |tenant: &str| token(&key, Algorithm::HS256, None, json!({ "sub": tenant, "exp": now() + 600 }));
    let client = reqwest::Client::new();
    let route = format!("{}/api/v1/upload-url", server.http);
    let upload_url =
        |token: String| client.post(&route).bearer_auth(token).json(&json!({ "object_name": "a.txt" })).send();
    let longest = "t".repeat(128);
    let ticket: Value = upload_url(as_tenant(&longest)).await.expect("answered").json().await.expect("JSON");
    assert!(ticket["upload_url"].as_str().expect("a URL").contains(&longest), "{ticket}");
    for len in [129, 1000] {
        let refused = upload_url(as_tenant(&"t".repeat(len))).await.expect("answered");
        assert_eq!(refused.status(), 401);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["error_type"], "ACCESS_DENIED");
        // As every refused credential: nothing revealed to the caller, the reason in the log.
        assert_eq!(body["error_message"], "missing or invalid credentials");
        let logged = server.wait_for(|line| line["reason"].as_str().is_some_and(|r| r.contains("tenant claim 'sub'")));
        let reason = logged["reason"].as_str().expect("a reason");
        assert!(reason.contains(&format!("a tenant name is at most 128 bytes; this one has {len}")), "{reason}");
    }
    assert!(crate::helpers::files_under(dir.path()).iter().all(|f| !f.to_string_lossy().contains(&"t".repeat(129))));

    let keys = api_keys(&[(&"k".repeat(129), "key")]);
    let stderr = refused_start(&[("AUTH_MODE", "api-key"), ("API_KEYS", &keys), ("BIND_ADDRESS", "127.0.0.1")]);
    assert!(stderr.contains("API_KEYS: a tenant name is at most 128 bytes; this one has 129"), "{stderr}");
}

#[tokio::test]
async fn tenants_differing_in_case_keep_their_own_folders_where_the_probe_finds_case_kept() {
    let keys = api_keys(&[("Alice", "key-of-upper"), ("alice", "key-of-lower")]);
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let (upper, lower) = (app.as_caller("key-of-upper"), app.as_caller("key-of-lower"));
    upper.upload("doc.txt", Some("text/plain"), b"upper's").await;
    lower.upload("doc.txt", Some("text/plain"), b"lower's").await;
    upper.confirm("doc.txt").await.ok();
    lower.confirm("doc.txt").await.ok();
    assert_eq!(upper.download("doc.txt", Some("main")).await.1, b"upper's");
    assert_eq!(lower.download("doc.txt", Some("main")).await.1, b"lower's");
    // Two files (the local backend keeps an object's record after its bytes).
    assert!(std::fs::read(app.data_dir.join("main/Alice/doc.txt")).expect("upper's").starts_with(b"upper's"));
    assert!(std::fs::read(app.data_dir.join("main/alice/doc.txt")).expect("lower's").starts_with(b"lower's"));
    let probes = std::fs::read_dir(&app.data_dir).expect("listed").filter_map(Result::ok);
    assert!(probes.filter(|e| e.file_name().to_string_lossy().contains("case-probe")).count() == 0, "left behind");
}

#[tokio::test]
async fn one_ipv6_network_cannot_draw_a_bucket_per_address() {
    let app = spawn_app_with(&["--rate-limit", "1", "--rate-limit-burst", "3", "--trusted-proxies", "127.0.0.1"]).await;
    let from = |client: String| {
        app.client
            .post(format!("{}/api/v1/list-drafts", app.address))
            .header("x-forwarded-for", client)
            .json(&json!({}))
    };
    // Each request from another address of one /64, as a client given a /64 may send them.
    let started = Instant::now();
    let mut admitted = 0u64;
    loop {
        let address = format!("2001:db8:7:7:{:x}:{:x}:{:x}:{:x}", admitted + 1, admitted * 7 + 3, admitted * 13, 99);
        let status = from(address).send().await.expect("answered").status();
        if status == 429 {
            break;
        }
        assert_eq!(status, 200);
        admitted += 1;
        assert!(admitted < 200, "never refused: every address drew a bucket of its own");
    }
    assert!(admitted <= 3 + started.elapsed().as_secs() + 1, "{admitted} admitted");
    assert_eq!(from("2001:db8:7:8::1".into()).send().await.expect("answered").status(), 200, "another /64");
}

#[tokio::test]
async fn minio_without_credentials_refuses_to_start_rather_than_use_the_default_ones() {
    let stderr = refused_start(&[("STORAGE_TYPE", "minio"), ("BIND_ADDRESS", "127.0.0.1")]);
    assert!(stderr.contains("MINIO_ACCESS_KEY: is required with STORAGE_TYPE=minio"), "{stderr}");
    assert!(stderr.contains("never MinIO's default minioadmin"), "{stderr}");
    let stderr =
        refused_start(&[("STORAGE_TYPE", "minio"), ("MINIO_ACCESS_KEY", "app"), ("BIND_ADDRESS", "127.0.0.1")]);
    assert!(stderr.contains("MINIO_SECRET_KEY: is required"), "{stderr}");
}

#[test]
fn the_settings_debug_carries_no_secret() {
    let secrets = [
        "aws-secret-not-for-logs",
        "aws-session-not-for-logs",
        "minio-secret-not-for-logs",
        "jwt-secret-not-for-logs-0123456789abcdef",
        "api-keys-not-for-logs",
        "signing-key-not-for-logs",
    ];
    let settings = serve_settings(&[
        "--aws-secret-access-key",
        secrets[0],
        "--aws-access-key-id",
        "AKIDSHOWN",
        "--aws-session-token",
        secrets[1],
        "--minio-access-key",
        "minio-user",
        "--minio-secret-key",
        secrets[2],
        "--jwt-secret",
        secrets[3],
        "--api-keys",
        secrets[4],
        "--signing-key",
        secrets[5],
        "--webhook-secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ]);
    let debug = format!("{settings:?}");
    assert!(debug.contains("AKIDSHOWN"), "the settings are all there: {debug}");
    for secret in secrets.iter().chain(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]) {
        assert!(!debug.contains(secret), "{secret} shows in the settings' Debug: {debug}");
    }
}

//! The store probe and what it guards: DraftStore hands clients URLs signed with a credential of its own, and a
//! store that honours more than was signed turns one upload URL into a read of anything that credential can read.
//! Here: the probe at start-up and `draftstore doctor` on SeaweedFS (its default identity, and identities scoped to
//! their buckets and to writing or reading only) and on the local backend; a hostile client that tries every
//! smuggled header on DraftStore's own upload, part and download URLs, on both backends; and a stand-in for the
//! affected stores (`standin.rs`), on which DraftStore refuses to start, and which split signing credentials make
//! safe.

use std::collections::BTreeMap;

use draftstore::startup::{Application, StartupError};
use draftstore_storage::probe::Promise;
use draftstore_storage::{BucketName, Checksum, ObjectMeta};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::OnceCell;

use crate::helpers::{Backend, TENANTS, TestApp, api_keys, on_both_backends, serve_settings, spawn, spawn_on_seaweed};
use crate::seaweed::{self, Identity, SeaweedFs};
use crate::standin::StandIn;

/// Alice's confirmed object: no URL of another tenant may ever read it.
const SECRET: &[u8] = b"alice's confirmed secret";
/// What mallory uploads (of another length than [`SECRET`], so that a part tells them apart).
const MALLORY: &[u8] = b"mallory's bytes";

/// The promises the start-up probe checks, as the conformance suite states them.
const STARTUP: [Promise; 14] = draftstore_storage::conformance::STARTUP_PROMISES;

fn bucket(name: &str) -> BucketName {
    BucketName::parse(name).expect("valid bucket")
}

/// `draftstore doctor` with these arguments and nothing from the test's environment: exit code, output, errors.
async fn doctor(args: &[String]) -> (i32, String, String) {
    doctor_with(args, &[]).await
}

/// `draftstore doctor` with these arguments and these variables only, as a container gets them.
async fn doctor_with(args: &[String], env: &[(String, String)]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftstore"))
        .arg("doctor")
        .args(args)
        .env_clear()
        .env("RUST_LOG", "error")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .await
        .expect("doctor runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// `/ready`'s answer, its probe summary asserted to be `verdict`; returns each promise's outcome.
async fn ready_promises(app: &TestApp, verdict: &str) -> BTreeMap<String, String> {
    let ready = app.get("/ready").await.ok();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["store"]["probe"], verdict, "{ready}");
    serde_json::from_value(ready["store"]["promises"].clone()).expect("promise names to outcomes")
}

/// Starts the server with these arguments and `extra`.
async fn app_with(args: &[String], extra: &[&str]) -> TestApp {
    let all: Vec<&str> = args.iter().map(String::as_str).chain(extra.iter().copied()).collect();
    spawn(serve_settings(&all)).await
}

/// Builds the server with these arguments and `extra`, without serving: the start-up's outcome.
async fn build(args: &[String], extra: &[&str]) -> Result<Application, StartupError> {
    let all: Vec<&str> = args.iter().map(String::as_str).chain(extra.iter().copied()).collect();
    Application::build(serve_settings(&all)).await
}

// ---- The probe where every promise holds ----

async fn the_probe_passes_and_ready_and_metrics_report_each_promise(on: Backend) {
    let (app, _) = on.spawn_with_bucket(&[]).await;
    let promises = ready_promises(&app, "passed").await;
    let mut names: Vec<_> = STARTUP.iter().map(|p| p.name().to_owned()).collect();
    names.sort();
    assert_eq!(promises.keys().cloned().collect::<Vec<_>>(), names);
    for (name, outcome) in &promises {
        let expected = match (name.as_str(), on) {
            ("upload-credential" | "download-credential", _) | ("clock-skew", Backend::Local) => "not-applicable",
            _ => "held",
        };
        assert_eq!(outcome, expected, "{name}: {promises:?}");
    }
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.expect("scrape");
    let metrics = metrics.text().await.expect("text");
    for name in &names {
        let label = format!("promise=\"{name}\"");
        assert!(
            metrics.lines().any(|line| line.starts_with("draftstore_store_promise{") && line.contains(&label)),
            "no draftstore_store_promise for {name}"
        );
    }
    assert!(metrics.contains("draftstore_store_probe_duration_seconds"), "the probe's duration is a metric");
}

on_both_backends!(the_probe_passes_and_ready_and_metrics_report_each_promise);

#[tokio::test]
async fn draftstore_doctor_prints_every_promise_held_on_seaweedfs() {
    let (_app, bucket) = spawn_on_seaweed(&[]).await;
    let args = seaweed::shared().await.s3_args(&bucket);
    let (code, table, errors) = doctor(&args).await;
    assert_eq!(code, 0, "{table}{errors}");
    assert!(table.contains("every promise holds (18 checked)"), "{table}");
    for promise in Promise::ALL {
        assert!(table.lines().any(|line| line.starts_with(promise.name())), "{promise} missing:\n{table}");
    }
    let with_json: Vec<String> = args.iter().cloned().chain(["--json".to_owned()]).collect();
    let (code, json, errors) = doctor(&with_json).await;
    assert_eq!(code, 0, "{json}{errors}");
    let json: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["all_hold"], true);
    let findings = json["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 18);
    for finding in findings {
        let expected = match finding["promise"].as_str() {
            Some("upload-credential" | "download-credential" | "cors" | "lifecycle") => "not-applicable",
            _ => "held",
        };
        assert_eq!(finding["result"], expected, "{finding}");
        for field in ["statement", "severity", "found", "consequence", "fix"] {
            assert!(finding[field].as_str().is_some_and(|text| !text.is_empty()), "{field} of {finding}");
        }
    }
}

#[tokio::test]
async fn draftstore_doctor_checks_the_cors_and_lifecycle_rules_it_is_told_to_expect() {
    let origin = "https://app.example.com";
    let (_app, bucket) = spawn_on_seaweed(&["--cors-allowed-origins", origin, "--draft-lifecycle", "true"]).await;
    let mut args = seaweed::shared().await.s3_args(&bucket);
    args.extend(["--cors-allowed-origins", origin, "--draft-lifecycle", "true", "--json"].map(str::to_owned));
    let (code, json, errors) = doctor(&args).await;
    assert_eq!(code, 0, "{json}{errors}");
    let json: Value = serde_json::from_str(&json).expect("JSON");
    let finding =
        |name: &str| json["findings"].as_array().expect("findings").iter().find(|f| f["promise"] == name).cloned();
    assert_eq!(finding("cors").expect("cors")["result"], "held");
    assert_eq!(finding("lifecycle").expect("lifecycle")["result"], "held");

    // Expecting an origin the rule does not name, or a lifecycle of another length, is reported, with exit 1.
    let mut args = seaweed::shared().await.s3_args(&bucket);
    args.extend(
        ["--cors-allowed-origins", "https://other.example.com", "--object-lifetime", "864000"].map(str::to_owned),
    );
    args.extend(["--draft-lifecycle", "true"].map(str::to_owned));
    let (code, table, _) = doctor(&args).await;
    assert_eq!(code, 1, "{table}");
    let row = |name: &str| table.lines().find(|line| line.starts_with(name)).unwrap_or_default().to_owned();
    assert!(row("cors").contains("broken") && row("cors").contains("https://other.example.com"), "{table}");
    assert!(row("lifecycle").contains("broken") && row("lifecycle").contains("not 10"), "{table}");
    assert!(table.contains("2 of 18 promises do not hold: cors, lifecycle"), "{table}");
}

#[tokio::test]
async fn draftstore_doctor_prints_every_promise_held_on_the_local_backend() {
    let (app, _) = Backend::Local.spawn_with_bucket(&[]).await;
    let data_dir = app.data_dir.to_str().expect("utf-8").to_owned();
    let (code, table, errors) = doctor(&["--storage-type".into(), "local".into(), "--data-dir".into(), data_dir]).await;
    assert_eq!(code, 0, "{table}{errors}");
    assert!(table.contains("every promise holds (18 checked)"), "{table}");
    assert!(table.contains("refused by the signature check"), "the local backend answers from its own code: {table}");
}

#[tokio::test]
async fn draftstore_doctor_says_why_it_cannot_run_and_changes_nothing() {
    // No buckets yet: exit 1, saying how they come to be.
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf-8").to_owned();
    let local = ["--storage-type".to_owned(), "local".to_owned(), "--data-dir".to_owned(), data_dir];
    let (code, out, errors) = doctor(&local).await;
    assert_eq!(code, 1, "{out}{errors}");
    assert!(errors.contains("not found") && errors.contains("draftstore serve"), "{errors}");
    assert!(!dir.path().join("main-draft").exists(), "the doctor creates no bucket");

    // Settings that do not go together: exit 2, naming the variable; the secret is never shown.
    let half = [local.as_slice(), &["--upload-signing-access-key-id".into(), "up".into()]].concat();
    let (code, _, errors) = doctor(&half).await;
    assert_eq!(code, 2);
    assert!(errors.contains("UPLOAD_SIGNING_SECRET_ACCESS_KEY: is required"), "{errors}");
    let on_local = [
        local.as_slice(),
        &["--download-signing-access-key-id".into(), "down".into()],
        &["--download-signing-secret-access-key".into(), "the-secret-value".into()],
    ]
    .concat();
    let (code, _, errors) = doctor(&on_local).await;
    assert_eq!(code, 2);
    assert!(errors.contains("DOWNLOAD_SIGNING_ACCESS_KEY_ID: is for an S3 store"), "{errors}");
    assert!(!errors.contains("the-secret-value"), "{errors}");
}

#[tokio::test]
async fn a_store_unreachable_at_start_up_is_probed_once_it_answers_and_not_ready_until_then() {
    let weed = SeaweedFs::start().await;
    weed.pause();
    let app = app_with(&weed.s3_args(&seaweed::unique_bucket()), &["--storage-timeout", "1"]).await;
    let unready = app.get("/ready").await;
    unready.error(503, "NETWORK_ERROR");
    assert!(unready.body["error_message"].as_str().is_some_and(|m| m.contains("store probe")), "{:?}", unready.body);
    weed.resume();
    // Liveness bound: the background retry comes every 5 s; a minute is far beyond it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ready = loop {
        let answer = app.get("/ready").await;
        if answer.status == 200 {
            break answer.body;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {:?}", answer.body);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(ready["store"]["probe"], "passed", "{ready}");
}

// ---- Split signing credentials on a SeaweedFS whose identities are scoped ----

/// A SeaweedFS of its own whose identities are scoped: DraftStore's own credential to its three buckets, an uploader
/// that may only write the draft bucket, a reader that may only read both, as TESTING.md describes.
struct Scoped {
    weed: SeaweedFs,
    bucket: &'static str,
    main: Identity,
    uploader: Identity,
    reader: Identity,
}

static SCOPED: OnceCell<Scoped> = OnceCell::const_new();

async fn scoped() -> &'static Scoped {
    SCOPED
        .get_or_init(|| async {
            let bucket = "scoped";
            let buckets = [bucket.to_owned(), format!("{bucket}-draft"), format!("{bucket}-events")];
            let every: Vec<String> = buckets
                .iter()
                .flat_map(|b| ["Admin", "Read", "Write", "List", "Tagging"].map(|action| format!("{action}:{b}")))
                .collect();
            let main = Identity::new("draftstore", &every);
            let uploader = Identity::new("uploader", &[format!("Write:{bucket}-draft")]);
            let reader = Identity::new("reader", &[format!("Read:{bucket}-draft"), format!("Read:{bucket}")]);
            let weed = SeaweedFs::start_with(&[main.clone(), uploader.clone(), reader.clone()]).await;
            Scoped { weed, bucket, main, uploader, reader }
        })
        .await
}

impl Scoped {
    fn identities(&self) -> [Identity; 3] {
        [self.main.clone(), self.uploader.clone(), self.reader.clone()]
    }

    /// DraftStore's arguments for the store at `endpoint` (this SeaweedFS, or a stand-in in front of it), with its
    /// own credential, and the upload and download ones given.
    fn args(&self, endpoint: &str, upload: Option<&Identity>, download: Option<&Identity>) -> Vec<String> {
        let mut args: Vec<String> = [
            "--storage-type",
            "s3",
            "--aws-endpoint-url",
            endpoint,
            "--s3-force-path-style",
            "true",
            "--aws-access-key-id",
            &self.main.access_key,
            "--aws-secret-access-key",
            &self.main.secret_key,
            "--bucket-name",
            self.bucket,
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(upload) = upload {
            args.extend(["--upload-signing-access-key-id", &upload.access_key].map(str::to_owned));
            args.extend(["--upload-signing-secret-access-key", &upload.secret_key].map(str::to_owned));
        }
        if let Some(download) = download {
            args.extend(["--download-signing-access-key-id", &download.access_key].map(str::to_owned));
            args.extend(["--download-signing-secret-access-key", &download.secret_key].map(str::to_owned));
        }
        args
    }
}

#[tokio::test]
async fn split_credentials_sign_each_kind_of_url_with_a_credential_that_can_do_no_more() {
    let scoped = scoped().await;
    let args = scoped.args(&scoped.weed.endpoint, Some(&scoped.uploader), Some(&scoped.reader));
    let app = app_with(&args, &[]).await;
    let promises = ready_promises(&app, "passed").await;
    assert_eq!(promises["upload-credential"], "held", "{promises:?}");
    assert_eq!(promises["download-credential"], "held", "{promises:?}");

    // Upload and download URLs name the credential that signed them, and work.
    let ticket = app.upload_url("split/a.txt", Some("text/plain")).await.ok();
    assert!(ticket["upload_url"].as_str().expect("url").contains("X-Amz-Credential=uploader-key%2F"), "{ticket}");
    assert_eq!(app.put_ticket(&ticket, b"hello".to_vec()).await, 200);
    let preview = app.download_url("split/a.txt", None).await.ok();
    assert!(preview["download_url"].as_str().expect("url").contains("X-Amz-Credential=reader-key%2F"), "{preview}");
    assert_eq!(app.download("split/a.txt", None).await.1, b"hello");
    app.confirm("split/a.txt").await.ok();
    assert_eq!(app.download("split/a.txt", Some("main")).await.1, b"hello");

    // A multipart upload: parts signed by the uploader, its listing (a GET) by the reader, its abort (a DELETE)
    // by the uploader; DraftStore's own calls (start, list, complete) by its own credential.
    let name = "split/parts.bin";
    let started = app
        .post(
            "/api/v1/multipart/start",
            &json!({ "object_name": name, "content_type": "application/octet-stream", "content_length": MALLORY.len() }),
        )
        .await
        .ok();
    let upload_id = started["upload_id"].as_str().expect("upload id").to_owned();
    let signed = app
        .post(
            "/api/v1/multipart/sign-parts",
            &json!({ "object_name": name, "upload_id": upload_id, "parts": [{ "part_number": 1 }] }),
        )
        .await
        .ok();
    let part = &signed["parts"][0];
    assert!(part["upload_url"].as_str().expect("url").contains("X-Amz-Credential=uploader-key%2F"));
    let mut request = app.client.put(part["upload_url"].as_str().expect("url"));
    for (header, value) in part["headers"].as_object().expect("headers") {
        request = request.header(header, value.as_str().expect("value"));
    }
    assert_eq!(request.body(MALLORY.to_vec()).send().await.expect("sent").status(), 200);
    let key = draftstore_storage::ObjectKey::parse(name).expect("key");
    let id = draftstore_storage::UploadId::parse(&upload_id).expect("id");
    let draft = bucket(&format!("{}-draft", scoped.bucket));
    for (multipart, expected) in [
        (draftstore_storage::MultipartRequest::ListParts(&id), 200),
        (draftstore_storage::MultipartRequest::Abort(&id), 204),
    ] {
        let conditions = draftstore_storage::Conditions::default();
        let request = draftstore_storage::PresignRequest {
            method: multipart.method(),
            bucket: &draft,
            key: &key,
            now: time::OffsetDateTime::now_utc(),
            expires_in: std::time::Duration::from_secs(300),
            conditions: &conditions,
        };
        let url = app.store.multipart.presign_multipart(&request, multipart).await.expect("signed");
        let signer = if expected == 200 { "reader-key" } else { "uploader-key" };
        assert!(url.url.contains(&format!("X-Amz-Credential={signer}%2F")), "{}", url.url);
        let method = reqwest::Method::from_bytes(url.method.as_str().as_bytes()).expect("method");
        let status = app.client.request(method, &url.url).send().await.expect("sent").status();
        assert_eq!(status.as_u16(), expected, "{multipart:?}");
    }

    let (code, table, errors) = doctor(&args).await;
    assert_eq!(code, 0, "{table}{errors}");
    let row = |name: &str| table.lines().find(|line| line.starts_with(name)).unwrap_or_default().to_owned();
    assert!(row("upload-credential").contains("held"), "{table}");
    assert!(row("download-credential").contains("held"), "{table}");
    assert!(row("main-credential").contains("held"), "a credential scoped to its three buckets does: {table}");
}

#[tokio::test]
async fn a_signing_credential_with_the_wrong_rights_stops_the_start() {
    let scoped = scoped().await;
    // The reader as the upload credential: it can read and cannot upload.
    let args = scoped.args(&scoped.weed.endpoint, Some(&scoped.reader), None);
    let message = match build(&args, &[]).await {
        Err(StartupError::StoreProbe(message)) => message,
        other => panic!("the start was not refused: {other:?}"),
    };
    assert!(message.contains("upload-credential"), "{message}");
    assert!(message.contains("can read the draft bucket") && message.contains("cannot upload"), "{message}");
    assert!(!message.contains(&scoped.reader.secret_key), "no secret in the message: {message}");

    // The uploader as the download credential: it can write and cannot read.
    let args = scoped.args(&scoped.weed.endpoint, None, Some(&scoped.uploader));
    let message = match build(&args, &[]).await {
        Err(StartupError::StoreProbe(message)) => message,
        other => panic!("the start was not refused: {other:?}"),
    };
    assert!(message.contains("download-credential") && message.contains("can write the draft bucket"), "{message}");

    // STORE_PROBE=warn starts all the same, and says so.
    let app = app_with(&args, &["--store-probe", "warn"]).await;
    let promises = ready_promises(&app, "accepted").await;
    assert_eq!(promises["download-credential"], "broken");
}

/// A manifest of `deploy/`, parsed.
fn manifest(path: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_seaweedfs_overlays_identities_and_settings_pass_the_doctor() {
    // The overlay's s3.json and storage settings as an operator fills them in: each placeholder a key of its own.
    let secret = manifest("deploy/overlays/seaweedfs/secret-seaweedfs.yaml");
    let config: Value = serde_json::from_str(secret["stringData"]["s3.json"].as_str().expect("s3.json")).expect("JSON");
    let identities: Vec<Identity> = config["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .map(|identity| {
            let actions: Vec<String> =
                serde_json::from_value(identity["actions"].clone()).expect("actions are strings");
            Identity::new(identity["name"].as_str().expect("a name"), &actions)
        })
        .collect();
    let key = |name: &str| identities.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("no {name}"));
    let weed = SeaweedFs::start_with(&identities).await;
    // The API keys' Secret, as the operator creates it: one real digest where the placeholder was.
    let keys = tempfile::tempdir().expect("temporary folder");
    let keys_file = keys.path().join("api-keys");
    let digest = hex::encode(sha2::Sha256::digest(b"an operator's key"));
    std::fs::write(&keys_file, format!("app:{digest}\n")).expect("the keys file is written");
    let settings = manifest("deploy/overlays/seaweedfs/secret-storage.yaml");
    let base = manifest("deploy/base/configmap.yaml");
    let env: Vec<(String, String)> = settings["stringData"]
        .as_object()
        .expect("settings")
        .iter()
        .chain(base["data"].as_object().expect("config"))
        .map(|(name, value)| {
            let value = value.as_str().expect("a string");
            let value = match name.as_str() {
                "AWS_ENDPOINT_URL" => weed.endpoint.clone(),
                "AWS_ACCESS_KEY_ID" => key("draftstore").access_key.clone(),
                "AWS_SECRET_ACCESS_KEY" => key("draftstore").secret_key.clone(),
                "UPLOAD_SIGNING_ACCESS_KEY_ID" => key("draftstore-upload").access_key.clone(),
                "UPLOAD_SIGNING_SECRET_ACCESS_KEY" => key("draftstore-upload").secret_key.clone(),
                "DOWNLOAD_SIGNING_ACCESS_KEY_ID" => key("draftstore-download").access_key.clone(),
                "DOWNLOAD_SIGNING_SECRET_ACCESS_KEY" => key("draftstore-download").secret_key.clone(),
                "API_KEYS_FILE" => keys_file.to_str().expect("utf-8").to_owned(),
                _ => value.to_owned(),
            };
            assert_ne!(value, "REPLACE-ME", "{name} is left a placeholder");
            (name.clone(), value)
        })
        .collect();
    // The server (its ports the tests' own) creates its buckets with its scoped identity and starts; the doctor, given
    // the same variables as the CronJob's container, then finds every promise held.
    let served = env.iter().filter(|(name, _)| !["HTTP_PORT", "GRPC_PORT"].contains(&name.as_str()));
    let args: Vec<String> = served.flat_map(|(name, value)| [flag(name), value.clone()]).collect();
    let app = app_with(&args, &[]).await;
    let promises = ready_promises(&app, "passed").await;
    assert_eq!(promises["upload-credential"], "held");
    assert_eq!(promises["download-credential"], "held");
    let (code, table, errors) = doctor_with(&[], &env).await;
    assert_eq!(code, 0, "{table}{errors}");
    assert!(table.contains("every promise holds"), "{table}");
}

/// `--aws-endpoint-url` for AWS_ENDPOINT_URL: every variable has the flag of its name.
fn flag(variable: &str) -> String {
    format!("--{}", variable.to_ascii_lowercase().replace('_', "-"))
}

// ---- A store that carries out a smuggled copy: the stand-in ----

fn with_endpoint(mut args: Vec<String>, endpoint: &str) -> Vec<String> {
    let at = args.iter().position(|arg| arg == "--aws-endpoint-url").expect("an endpoint") + 1;
    args[at] = endpoint.to_owned();
    args
}

#[tokio::test]
async fn draftstore_refuses_to_start_on_a_store_that_carries_out_a_smuggled_copy() {
    let weed = seaweed::shared().await;
    let standin = StandIn::start(&weed.endpoint, &[]).await;
    let args = with_endpoint(weed.s3_args(&seaweed::unique_bucket()), &standin.endpoint);
    let message = match build(&args, &[]).await {
        Err(StartupError::StoreProbe(message)) => message,
        other => panic!("the start was not refused: {other:?}"),
    };
    assert!(message.contains("copy-source (an unsigned x-amz-copy-source cannot turn an upload URL into a copy)"));
    assert!(message.contains("part-copy-source"), "{message}");
    assert!(message.contains("carried out as a copy"), "{message}");
    assert!(message.contains("UPLOAD_SIGNING_ACCESS_KEY_ID"), "the way out is named: {message}");
    assert!(message.contains("STORE_PROBE=warn"), "{message}");

    // The buckets exist now (they are created before the probe): the doctor names the smuggled copy.
    let (code, table, errors) = doctor(&args).await;
    assert_eq!(code, 1, "{table}{errors}");
    let row = table.lines().find(|line| line.starts_with("copy-source ")).expect("a copy-source row");
    assert!(row.contains("BROKEN") && row.contains("carried out as a copy"), "{table}");
    assert!(table.contains("fix: set UPLOAD_SIGNING_ACCESS_KEY_ID"), "{table}");
    assert!(table.contains("do not hold: copy-source, part-copy-source"), "{table}");
}

/// Alice confirms her secret; mallory adds `x-amz-copy-source` naming it to her own upload URL and previews her
/// draft. Returns the preview's status and bytes.
async fn smuggle_alices_secret(app: &TestApp, main: &str) -> (u16, Vec<u8>) {
    let (alice, mallory) = (app.as_caller(TENANTS[0].1), app.as_caller(TENANTS[1].1));
    alice.upload("secret.txt", Some("text/plain"), SECRET).await;
    alice.confirm("secret.txt").await.ok();
    let ticket = mallory.upload_url("loot.txt", Some("text/plain")).await.ok();
    let mut request = app.client.put(ticket["upload_url"].as_str().expect("url"));
    for (name, value) in ticket["headers"].as_object().expect("headers") {
        request = request.header(name, value.as_str().expect("value"));
    }
    let request = request.header("x-amz-copy-source", format!("/{main}/alice/secret.txt"));
    request.body(MALLORY.to_vec()).send().await.expect("sent");
    let preview = mallory.download_url("loot.txt", Some("draft")).await;
    if preview.status != 200 {
        return (preview.status, Vec::new());
    }
    let url = preview.body["download_url"].as_str().expect("url");
    let response = app.client.get(url).send().await.expect("preview");
    (response.status().as_u16(), response.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn on_the_stand_in_one_upload_url_reads_another_tenants_object_which_the_probe_prevents() {
    let weed = seaweed::shared().await;
    let standin = StandIn::start(&weed.endpoint, &[]).await;
    let bucket = seaweed::unique_bucket();
    let args = with_endpoint(weed.s3_args(&bucket), &standin.endpoint);
    let keys = api_keys(&TENANTS);
    // Only with STORE_PROBE=warn: what the refusal to start prevents.
    let app = app_with(&args, &["--auth-mode", "api-key", "--api-keys", &keys, "--store-probe", "warn"]).await;
    let promises = ready_promises(&app, "accepted").await;
    assert_eq!(promises["copy-source"], "broken");
    assert_eq!(smuggle_alices_secret(&app, &bucket).await, (200, SECRET.to_vec()), "the stand-in is affected");
}

#[tokio::test]
async fn split_credentials_make_a_store_that_carries_out_smuggled_copies_safe() {
    let scoped = scoped().await;
    let standin = StandIn::start(&scoped.weed.endpoint, &scoped.identities()).await;
    let args = scoped.args(&standin.endpoint, Some(&scoped.uploader), Some(&scoped.reader));
    let keys = api_keys(&TENANTS);
    let app = app_with(&args, &["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let promises = ready_promises(&app, "passed").await;
    assert_eq!(promises["copy-source"], "neutralised", "{promises:?}");
    assert_eq!(promises["part-copy-source"], "neutralised", "{promises:?}");

    let (status, bytes) = smuggle_alices_secret(&app, scoped.bucket).await;
    assert_ne!(bytes, SECRET, "mallory read alice's secret (preview status {status})");
    assert_eq!(status, 404, "the smuggled copy was refused: mallory has no draft");

    let (code, table, errors) = doctor(&args).await;
    assert_eq!(code, 0, "{table}{errors}");
    let row = table.lines().find(|line| line.starts_with("copy-source ")).expect("a copy-source row");
    assert!(row.contains("neutralised") && row.contains("by the upload credential: refused (403"), "{table}");
}

// ---- A hostile client against DraftStore's own URLs, on both backends ----

/// Everything in the buckets: each object's metadata (size, type, etag, user metadata, declared values).
async fn snapshot(app: &TestApp, buckets: &[&BucketName]) -> BTreeMap<String, ObjectMeta> {
    let mut all = BTreeMap::new();
    for bucket in buckets {
        let pages: Vec<_> = app.storage.list(bucket).try_collect().await.expect("listed");
        for object in pages.into_iter().flat_map(|page| page.objects) {
            let meta = app.storage.head(bucket, &object.key).await.expect("head");
            all.insert(format!("{bucket}/{}", object.key), meta);
        }
    }
    all
}

/// The buckets hold what they held before, but for `target`, which holds nothing or exactly the signed upload.
async fn only_the_signed_write(
    app: &TestApp,
    before: &BTreeMap<String, ObjectMeta>,
    buckets: &[&BucketName],
    target: &str,
    attack: &[(String, String)],
) {
    let mut after = snapshot(app, buckets).await;
    if let Some(meta) = after.remove(target) {
        assert_eq!(meta.content_type.as_str(), "text/plain", "{attack:?}");
        assert!(meta.metadata.is_empty(), "{attack:?} applied metadata: {:?}", meta.metadata);
        assert_eq!(meta.declared, draftstore_storage::Declared::default(), "{attack:?}");
        let (bucket, key) = target.split_once('/').expect("bucket/key");
        let key = draftstore_storage::ObjectKey::parse(key).expect("key");
        let bytes = app.storage.get_record(&BucketName::parse(bucket).expect("bucket"), &key).await.expect("read");
        assert_eq!(bytes.as_ref(), MALLORY, "{attack:?} stored other bytes");
        app.storage.delete(&BucketName::parse(bucket).expect("bucket"), &key).await.expect("deleted");
    }
    let mut before = before.clone();
    before.remove(target);
    assert_eq!(after, before, "{attack:?} changed another object");
}

fn headers_of(ticket: &Value, url_field: &str) -> (String, Vec<(String, String)>) {
    let url = ticket[url_field].as_str().expect("url").to_owned();
    let headers = ticket["headers"]
        .as_object()
        .map(|headers| headers.iter().map(|(n, v)| (n.clone(), v.as_str().expect("value").to_owned())).collect())
        .unwrap_or_default();
    (url, headers)
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    url: &str,
    headers: &[(String, String)],
    attack: &[(String, String)],
    body: Option<&[u8]>,
) -> reqwest::Response {
    let mut request = app.client.request(method, url);
    for (name, value) in headers.iter().chain(attack) {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body.to_vec());
    }
    request.send().await.expect("sent")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

async fn smuggled_headers_change_nothing_but_the_signed_upload(on: Backend) {
    let keys = api_keys(&TENANTS);
    let (app, main) = on.spawn_with_bucket(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let (alice, mallory) = (app.as_caller(TENANTS[0].1), app.as_caller(TENANTS[1].1));
    let (main_bucket, draft_bucket) = (bucket(&main), bucket(&format!("{main}-draft")));
    let buckets = [&main_bucket, &draft_bucket];
    let draft = draft_bucket.to_string();
    alice.upload("secret.txt", Some("text/plain"), SECRET).await;
    alice.confirm("secret.txt").await.ok();
    alice.upload("draft.txt", Some("text/plain"), b"alice's draft").await;
    let wrong_sha = Checksum::from_digest(&sha2::Sha256::digest(SECRET).into()).to_string();
    let secret_at = format!("/{main}/alice/secret.txt");

    // The upload URL: the signed upload goes through; with any smuggled header, nothing but it is written.
    let ticket = mallory.upload_url("loot.txt", Some("text/plain")).await.ok();
    let (url, headers) = headers_of(&ticket, "upload_url");
    let target = format!("{draft}/mallory/loot.txt");
    let before = snapshot(&app, &buckets).await;
    assert_eq!(send(&app, reqwest::Method::PUT, &url, &headers, &[], Some(MALLORY)).await.status(), 200);
    only_the_signed_write(&app, &before, &buckets, &target, &[]).await;
    let attacks: Vec<Vec<(String, String)>> = vec![
        pairs(&[("x-amz-copy-source", &secret_at)]),
        pairs(&[("x-amz-copy-source", &secret_at), ("x-amz-metadata-directive", "REPLACE")]),
        pairs(&[("x-amz-copy-source", &format!("/{draft}/alice/draft.txt"))]),
        pairs(&[("x-amz-meta-draftstore-length", "1")]),
        pairs(&[("x-amz-meta-draftstore-sha256", &wrong_sha)]),
        pairs(&[("x-amz-meta-owner", "alice")]),
        pairs(&[("x-amz-tagging", "owner=alice")]),
        pairs(&[("x-amz-acl", "public-read")]),
        pairs(&[("x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")]),
        pairs(&[("x-amz-storage-class", "STANDARD_IA")]),
        pairs(&[("x-amz-server-side-encryption", "AES256")]),
        pairs(&[("x-amz-website-redirect-location", "/evil")]),
        pairs(&[
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            ("x-amz-object-lock-retain-until-date", "2099-01-01T00:00:00Z"),
        ]),
        pairs(&[("x-amz-checksum-sha256", &wrong_sha)]),
    ];
    for attack in &attacks {
        let status = send(&app, reqwest::Method::PUT, &url, &headers, attack, Some(MALLORY)).await.status();
        assert!(!status.is_server_error(), "{attack:?}: {status}");
        only_the_signed_write(&app, &before, &buckets, &target, attack).await;
    }

    // A part URL: no part but the signed one ever appears, and no object changes.
    let name = "parts.bin";
    let started = mallory
        .post(
            "/api/v1/multipart/start",
            &json!({ "object_name": name, "content_type": "application/octet-stream", "content_length": MALLORY.len() }),
        )
        .await
        .ok();
    let upload_id = started["upload_id"].as_str().expect("id").to_owned();
    let part_attacks: Vec<Vec<(String, String)>> = vec![
        pairs(&[("x-amz-copy-source", &secret_at)]),
        pairs(&[("x-amz-copy-source", &secret_at), ("x-amz-copy-source-range", "bytes=0-4")]),
        pairs(&[("x-amz-meta-owner", "alice")]),
        pairs(&[("x-amz-checksum-sha256", &wrong_sha)]),
        Vec::new(),
    ];
    for attack in &part_attacks {
        let signed = mallory
            .post(
                "/api/v1/multipart/sign-parts",
                &json!({ "object_name": name, "upload_id": upload_id, "parts": [{ "part_number": 1 }] }),
            )
            .await
            .ok();
        let (url, headers) = headers_of(&signed["parts"][0], "upload_url");
        let status = send(&app, reqwest::Method::PUT, &url, &headers, attack, Some(MALLORY)).await.status();
        assert_eq!(status.is_success(), attack.is_empty(), "{attack:?}: {status}");
        let listed = mallory
            .post("/api/v1/multipart/list-parts", &json!({ "object_name": name, "upload_id": upload_id }))
            .await
            .ok();
        let sizes: Vec<_> = listed["parts"].as_array().expect("parts").iter().map(|p| p["size"].as_u64()).collect();
        let expected = if attack.is_empty() { vec![Some(MALLORY.len() as u64)] } else { Vec::new() };
        assert_eq!(sizes, expected, "{attack:?}");
        only_the_signed_write(&app, &before, &buckets, &target, attack).await;
    }

    // A download URL of mallory's active content, signed as an attachment: not turned inline, not pointed at
    // alice's object, not used to write or delete.
    mallory.upload("page.html", Some("text/html"), b"<script>alert(1)</script>").await;
    let before = snapshot(&app, &buckets).await;
    let ticket = mallory.download_url("page.html", None).await.ok();
    let url = ticket["download_url"].as_str().expect("url").to_owned();
    let signed = url.split(['?', '&']).find(|p| p.starts_with("response-content-disposition=")).expect("attachment");
    let served = send(&app, reqwest::Method::GET, &url, &[], &[], None).await;
    assert_eq!(served.status(), 200);
    assert!(served.headers()["content-disposition"].to_str().expect("ascii").starts_with("attachment"));
    let tampered = [
        format!("{url}&response-content-disposition=inline"),
        url.replacen(signed, "response-content-disposition=inline", 1),
        format!("{url}&response-content-type=text%2Fhtml"),
        url.replacen("mallory/page.html", "alice/draft.txt", 1),
    ];
    for tampered in &tampered {
        let answer = send(&app, reqwest::Method::GET, tampered, &[], &[], None).await;
        let status = answer.status();
        let disposition = answer.headers().get("content-disposition").map(|v| v.to_str().expect("ascii").to_owned());
        let body = answer.bytes().await.expect("body");
        assert!(!status.is_success(), "{tampered}: {status} {disposition:?} {body:?}");
    }
    for (method, body) in
        [(reqwest::Method::PUT, Some(MALLORY)), (reqwest::Method::DELETE, None), (reqwest::Method::POST, None)]
    {
        let attack = pairs(&[("x-amz-copy-source", &secret_at)]);
        for extra in [Vec::new(), attack] {
            let status = send(&app, method.clone(), &url, &[], &extra, body).await.status();
            assert!(status.is_client_error(), "{method} {extra:?} to a download URL: {status}");
        }
    }
    assert_eq!(snapshot(&app, &buckets).await, before, "a download URL changed an object");
}

on_both_backends!(smuggled_headers_change_nothing_but_the_signed_upload);

//! DraftStore at scale, with faults: the cluster of `scripts/cluster` (a SeaweedFS cluster of separate processes with
//! replication 001, three DraftStore replicas, HAProxy in front checking `/ready`), driven through the load balancer
//! while a volume server and then a replica are killed with SIGKILL and started again, and while `draftstore clean`
//! runs alongside.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use draftstore_proto::draft::v1 as pb;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::hooks::{Call, Mode, Receiver, secret, secret_text};
use crate::helpers::{pseudo_random_bytes, report, signed_put};

/// The DraftStore replicas `scripts/cluster` runs behind HAProxy.
const REPLICAS: [&str; 3] = ["replica1", "replica2", "replica3"];

/// A cluster started by `scripts/cluster up` in a folder of its own; taken down when dropped, or by the script's
/// watcher once this test process has exited.
struct Cluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster")
}

impl Cluster {
    /// `scripts/cluster up`, with `settings` (environment variables) for the replicas.
    async fn up(settings: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(script())
            .arg("up")
            .env("CLUSTER_DIR", dir.path())
            .env("CLUSTER_PORT", crate::helpers::free_port_block(40).to_string())
            .env("CLUSTER_WATCH_PID", std::process::id().to_string())
            .env("DRAFTSTORE_BIN", env!("CARGO_BIN_EXE_draftstore"))
            .env("WEED_BIN", crate::seaweed::weed_binary())
            .env("LOG_FORMAT", "json")
            .envs(settings.iter().copied())
            .stdin(Stdio::null());
        let output = command.output().await.expect("scripts/cluster runs");
        assert!(
            output.status.success(),
            "scripts/cluster up failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let env = String::from_utf8(output.stdout)
            .expect("utf-8")
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Cluster { dir, env }
    }

    fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("scripts/cluster up printed no {name}"))
    }

    /// `scripts/cluster kill NAME` or `start NAME`.
    async fn control(&self, action: &str, name: &str) {
        let status = tokio::process::Command::new("bash")
            .arg(script())
            .args([action, name])
            .env("CLUSTER_DIR", self.dir.path())
            .stdin(Stdio::null())
            .status()
            .await
            .expect("scripts/cluster runs");
        assert!(status.success(), "scripts/cluster {action} {name} failed");
    }

    /// The store, reached directly, to read back what was confirmed.
    fn store(&self) -> aws_sdk_s3::Client {
        crate::seaweed::s3_client(self.var("S3_ENDPOINT"), self.var("S3_ACCESS_KEY"), self.var("S3_SECRET_KEY"))
    }

    /// The draft bucket's keys under `prefix`.
    async fn drafts(&self, prefix: &str) -> HashSet<String> {
        let listed = self
            .store()
            .list_objects_v2()
            .bucket("main-draft")
            .prefix(prefix)
            .send()
            .await
            .expect("the draft bucket lists");
        listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    /// The parts each of `replicas` has signed.
    async fn parts_signed(&self, replicas: &[&str]) -> Vec<u64> {
        let mut signed = Vec::new();
        for &replica in replicas {
            signed.push(self.requests_served(replica, "/api/v1/multipart/sign-parts").await);
        }
        signed
    }

    /// Waits until HAProxy counts `replica` in (its last health checks, REST and gRPC, passed) or out (`DOWN`).
    async fn wait_until_counted(&self, replica: &str, counted_in: bool) {
        let url = format!("{};csv", self.var("HAPROXY_STATS"));
        let state = if counted_in { ",L7OK," } else { ",DOWN," };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stats = reqwest::get(&url).await.expect("HAProxy's statistics").text().await.expect("text");
            if stats.lines().filter(|l| l.contains(&format!(",{replica},")) && l.contains(state)).count() == 2 {
                return;
            }
            assert!(Instant::now() < deadline, "HAProxy did not count {replica} {state} within 60 s:\n{stats}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A replica's count of a route's answers, from its own `/metrics`.
    async fn requests_served(&self, replica: &str, route: &str) -> u64 {
        let url = format!("{}/metrics", self.var(&format!("{}_URL", replica.to_uppercase())));
        let metrics = reqwest::get(url).await.expect("metrics").text().await.expect("text");
        metrics
            .lines()
            .filter(|l| l.starts_with("draftstore_http_requests_total") && l.contains(&format!("route=\"{route}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .arg("down")
            .env("CLUSTER_DIR", self.dir.path())
            .stdin(Stdio::null())
            .status();
    }
}

/// What the rounds saw.
#[derive(Default, Debug)]
struct Tally {
    /// Objects whose confirm answered 200, with their bytes.
    confirmed: Vec<(String, Vec<u8>)>,
    /// DraftStore's failed answers, by status and error type.
    failures: HashMap<(u16, String), usize>,
    /// Failed uploads to the store itself, by status.
    store_failures: HashMap<u16, usize>,
    /// Calls sent again after a failure.
    retries: usize,
}

/// One call, sent again after each failure (up to 30 s). DraftStore's failures are counted by status and error
/// type (`proxy` when HAProxy answered itself; status 0 when no answer came within the client's timeout).
async fn call(client: &reqwest::Client, url: &str, route: &str, body: &Value, tally: &Mutex<Tally>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let failure = match client.post(format!("{url}{route}")).json(body).send().await {
            Ok(response) if response.status().is_success() => return response.json().await.expect("a JSON answer"),
            Ok(response) => {
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap_or_default();
                (status, answer["error_type"].as_str().unwrap_or("proxy").to_owned())
            }
            Err(e) => (0, e.to_string()),
        };
        let mut tally = tally.lock().await;
        tally.retries += 1;
        *tally.failures.entry(failure.clone()).or_default() += 1;
        drop(tally);
        assert!(Instant::now() < deadline, "{route} {body} kept failing, last with {failure:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Uploads `bytes` through a fresh upload URL, asking again after each failure (the store may refuse a write while
/// one of its volume servers is down).
async fn upload(client: &reqwest::Client, url: &str, name: &str, bytes: &[u8], tally: &Mutex<Tally>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ticket = call(client, url, "/api/v1/upload-url", &json!({"object_name": name}), tally).await;
        let status = match signed_put(client, &ticket).body(bytes.to_vec()).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        *tally.lock().await.store_failures.entry(status).or_default() += 1;
        assert!(Instant::now() < deadline, "the store kept refusing {name}, last with {status}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes a directory for the CLI: `large` files of `size` bytes that go in parts of 5 MiB, and one small file. Returns
/// the objects' names (after `prefix`) and bytes.
fn write_tree(root: &Path, prefix: &str, large: u64, size: usize) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> =
        (0..large).map(|i| (format!("big/{i}.bin"), pseudo_random_bytes(size, i + prefix.len() as u64))).collect();
    files.push(("small.txt".to_owned(), b"a small file\n".to_vec()));
    for (name, bytes) in &files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
    files.into_iter().map(|(name, bytes)| (format!("{prefix}{name}"), bytes)).collect()
}

/// Sends `SIGSTOP` or `SIGCONT` (`name`) to the process `pid`.
fn signal(name: &str, pid: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{name}"), pid]).status().expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// `draftstore upload --recursive --confirm` of `root` under `prefix`, through `url`, in parts of 5 MiB.
fn cli_upload(url: &str, root: &Path, prefix: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftstore"));
    command
        .args(["upload", "--recursive", "--confirm", "--prefix", prefix, "--part-size", "5MiB"])
        .args(["--multipart-threshold", "5MiB"])
        .arg(root)
        .env("DRAFTSTORE_URL", url)
        .env("DRAFTSTORE_STATE_DIR", root.join(".state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn read_back(store: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let object = store.get_object().bucket("main").key(key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    object.body.collect().await.expect("the body").into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_behind_haproxy_loses_nothing_to_sigkills() {
    let events = Receiver::start(Mode::Accept).await;
    let cluster = Cluster::up(&[("EVENTS_URL", &events.url), ("WEBHOOK_SECRET", &secret_text())]).await;
    let url = cluster.var("DRAFTSTORE_URL").to_owned();
    let store = cluster.store();

    // Drafts the cleaner will find expired (15 s) when it runs, during the faults below.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let tally = Mutex::new(Tally::default());
    let stale_since = Instant::now();
    for i in 0..10 {
        upload(&client, &url, &format!("stale/{i}.txt"), b"stale", &tally).await;
    }

    // The CLI through the load balancer: a directory whose large files go in parts, each part signed by whichever
    // replica HAProxy picks.
    let tree = tempfile::tempdir().expect("tempdir");
    let files = write_tree(tree.path(), "tree/", 2, 12 << 20);
    let output = cli_upload(&url, tree.path(), "tree/").output().await.expect("the CLI runs");
    assert!(output.status.success(), "draftstore upload failed: {}", String::from_utf8_lossy(&output.stderr));
    for (name, bytes) in &files {
        assert!(read_back(&store, name).await == *bytes, "{name} read back whole");
    }
    let signers = cluster.parts_signed(&REPLICAS).await;
    assert_eq!(signers.iter().sum::<u64>(), 6, "six parts signed: {signers:?}");
    assert!(signers.iter().all(|&n| n > 0), "every replica signed parts: {signers:?}");

    // A replica killed while the CLI is part-way through: the parts still to sign are signed by the others.
    let tree = tempfile::tempdir().expect("tempdir");
    let more = write_tree(tree.path(), "killed/", 4, 24 << 20);
    let mut cli = cli_upload(&url, tree.path(), "killed/").spawn().expect("the CLI starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.parts_signed(&REPLICAS).await.iter().sum::<u64>() == signers.iter().sum::<u64>() {
        assert!(Instant::now() < deadline, "the CLI signed no part within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The CLI is held still while the replica dies: on a fast machine it could otherwise send its 96 MiB before the
    // kill. It signs each part just before sending it, a file at a time, so most of its 20 parts are still to sign.
    let pid = cli.id().expect("the CLI runs").to_string();
    signal("STOP", &pid);
    let survivors = ["replica1", "replica2"];
    let signed_before: u64 = cluster.parts_signed(&survivors).await.iter().sum();
    cluster.control("kill", "replica3").await;
    assert!(cli.try_wait().expect("the CLI's status").is_none(), "the CLI finished before the replica was killed");
    signal("CONT", &pid);
    let output = cli.wait_with_output().await.expect("the CLI runs");
    assert!(output.status.success(), "draftstore upload failed: {}", String::from_utf8_lossy(&output.stderr));
    let signed_after: u64 = cluster.parts_signed(&survivors).await.iter().sum();
    assert!(signed_after > signed_before, "the other replicas signed the parts left after the kill");
    for (name, bytes) in &more {
        assert!(read_back(&store, name).await == *bytes, "{name} read back whole");
    }
    cluster.control("start", "replica3").await;
    cluster.wait_until_counted("replica3", true).await;

    // gRPC through the load balancer too.
    let mut grpc = pb::draft_service_client::DraftServiceClient::connect(cluster.var("DRAFTSTORE_GRPC").to_owned())
        .await
        .expect("gRPC connects through HAProxy");
    for _ in 0..3 {
        let ticket = grpc
            .get_upload_url(pb::GetUploadUrlRequest { object_name: "grpc.txt".into(), ..Default::default() })
            .await
            .expect("GetUploadURL through HAProxy")
            .into_inner();
        assert!(ticket.result.is_some_and(|r| r.success) && ticket.url.contains("/main-draft/"), "{}", ticket.url);
    }

    // 300 rounds of upload and confirm of 1 KiB, 16 at a time, paced over about 30 s, while a volume server and then
    // a replica are killed and started again, and `draftstore clean` runs.
    let tally = Arc::new(tally);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url, tally, next) = (client.clone(), url.clone(), Arc::clone(&tally), Arc::clone(&next));
        workers.spawn(async move {
            loop {
                let round = next.fetch_add(1, Ordering::Relaxed);
                if round >= 300 {
                    return;
                }
                tokio::time::sleep_until((start + Duration::from_millis(100) * round as u32).into()).await;
                let name = format!("round/{round}.bin");
                let bytes = pseudo_random_bytes(1024, round as u64 + 100);
                upload(&client, &url, &name, &bytes, &tally).await;
                call(&client, &url, "/api/v1/confirm-upload", &json!({"object_name": name}), &tally).await;
                tally.lock().await.confirmed.push((name, bytes));
            }
        });
    }
    let at = |seconds: u64| tokio::time::sleep_until((start + Duration::from_secs(seconds)).into());
    at(2).await;
    cluster.control("kill", "volume2").await;
    at(9).await;
    cluster.control("start", "volume2").await;
    at(12).await;
    for i in 0..10 {
        upload(&client, &url, &format!("fresh/{i}.txt"), b"fresh", &tally).await;
    }
    at(14).await;
    cluster.control("kill", "replica2").await;
    // HAProxy's health checks take it out.
    cluster.wait_until_counted("replica2", false).await;
    tokio::time::sleep_until((stale_since + Duration::from_secs(16)).into()).await;
    at(18).await;
    let clean = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftstore"))
        .arg("clean")
        .args(["--storage-type", "s3", "--aws-endpoint-url", cluster.var("S3_ENDPOINT")])
        .args(["--s3-force-path-style", "true", "--aws-access-key-id", cluster.var("S3_ACCESS_KEY")])
        .args(["--aws-secret-access-key", cluster.var("S3_SECRET_KEY"), "--object-lifetime", "15"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .await
        .expect("draftstore clean runs");
    assert!(clean.status.success(), "draftstore clean failed: {}", String::from_utf8_lossy(&clean.stderr));
    at(22).await;
    cluster.control("start", "replica2").await;
    cluster.wait_until_counted("replica2", true).await;
    while let Some(worker) = workers.join_next().await {
        worker.expect("a round panicked");
    }

    // Every confirm that answered 200 is whole in the main bucket; the cleaner took the stale drafts only.
    let tally = Arc::try_unwrap(tally).expect("the workers are done").into_inner();
    assert_eq!(tally.confirmed.len(), 300);
    for (name, bytes) in &tally.confirmed {
        assert!(read_back(&store, name).await == *bytes, "{name} read back whole");
    }
    assert!(cluster.drafts("stale/").await.is_empty(), "the cleaner removed the expired drafts");
    assert_eq!(cluster.drafts("fresh/").await.len(), 10, "the cleaner kept the drafts not yet expired");
    assert!(cluster.drafts("round/").await.is_empty(), "no confirmed draft left behind");

    // Every confirm's event delivered, signed; a confirm delivered twice only under one webhook-id.
    let confirmed: HashSet<String> = tally.confirmed.iter().map(|(name, _)| name.clone()).collect();
    let delivered = |calls: &[Call]| -> HashMap<String, HashSet<String>> {
        let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
        for call in calls.iter().filter(|c| c.status == 200) {
            let event = call.json();
            if event["type"] == "draft.confirmed" {
                let name = event["data"]["object_name"].as_str().expect("object_name").to_owned();
                ids.entry(name).or_default().insert(call.id.clone());
            }
        }
        ids
    };
    events
        .wait_for("every confirm's event", |calls| {
            let ids = delivered(calls);
            confirmed.iter().all(|name| ids.contains_key(name))
        })
        .await;
    // Let stragglers (a delivery repeated after a replica died mid-delivery) arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = events.calls();
    let ids = delivered(&calls);
    let confirmed_calls: Vec<_> = calls
        .iter()
        .filter(|c| {
            c.status == 200
                && c.json()["type"] == "draft.confirmed"
                && confirmed.contains(c.json()["data"]["object_name"].as_str().unwrap_or_default())
        })
        .collect();
    assert!(confirmed_calls.iter().all(|c| c.verifies_with(&secret())), "every event signed");
    let once: HashSet<&String> = confirmed_calls.iter().map(|c| &c.id).collect();

    report(&format!(
        "cluster: {} of the CLI's parts signed by the others after a replica was killed under it; {} confirms \
         answered 200; DraftStore failures by status {:?}, {} calls sent again; store upload failures by status \
         {:?}; {} objects read back whole; {} confirm events delivered in {} deliveries ({} duplicates); cleaner: {}",
        signed_after - signed_before,
        tally.confirmed.len(),
        tally.failures,
        tally.retries,
        tally.store_failures,
        tally.confirmed.len() + files.len() + more.len(),
        once.len(),
        confirmed_calls.len(),
        confirmed_calls.len() - once.len(),
        String::from_utf8_lossy(&clean.stdout).trim()
    ));
    let not_503: Vec<_> = tally.failures.keys().filter(|(status, _)| *status != 503).collect();
    assert!(not_503.is_empty(), "DraftStore's failures were 503s only: {:?}", tally.failures);
    for name in &confirmed {
        assert_eq!(ids[name].len(), 1, "{name}: one webhook-id, however often delivered: {:?}", ids[name]);
    }
    events.stop();
}

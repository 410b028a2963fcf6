//! A real S3 server for the tests: SeaweedFS (`weed mini`), started on free loopback ports. Installed by
//! `scripts/test` into `.tools/seaweedfs`; `WEED_BIN` may point elsewhere. If it cannot start, the test fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use tokio::sync::OnceCell;

pub const ACCESS_KEY: &str = "draftstore-test";
pub const SECRET_KEY: &str = "draftstore-test-secret";

/// One running SeaweedFS; killed when dropped.
pub struct SeaweedFs {
    pub endpoint: String,
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

static SHARED: OnceCell<SeaweedFs> = OnceCell::const_new();
static NAMES: AtomicU32 = AtomicU32::new(0);

/// The instance shared by the tests of this process; tests keep apart by using their own buckets.
pub async fn shared() -> &'static SeaweedFs {
    SHARED.get_or_init(SeaweedFs::start).await
}

/// A bucket name no other test uses.
pub fn unique_bucket() -> String {
    format!("t{}-{}", std::process::id(), NAMES.fetch_add(1, Ordering::Relaxed))
}

pub(crate) fn weed_binary() -> PathBuf {
    let path = std::env::var_os("WEED_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/seaweedfs/bin/weed"));
    assert!(
        path.is_file(),
        "SeaweedFS is not installed at {}: run scripts/test, which installs it, or set WEED_BIN",
        path.display()
    );
    path
}

/// A base port such that base..base+6 and base+10000..base+10004 (gRPC) are all free.
fn free_ports() -> u16 {
    let seed = crate::helpers::port_seed() ^ (NAMES.fetch_add(1, Ordering::Relaxed) * 7919);
    for attempt in 0..200u32 {
        let base = 20_000 + ((seed.wrapping_add(attempt * 104_729)) % 1_000) as u16 * 10;
        let ports = (base..base + 7).chain(base + 10_000..base + 10_005);
        let held: Vec<_> = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect();
        if held.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no free ports for SeaweedFS");
}

/// An identity of SeaweedFS's S3 gateway: its keys and what it may do (`Write:<bucket>` scopes an action to one
/// bucket; see TESTING.md).
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    pub actions: Vec<String>,
}

impl Identity {
    pub fn new(name: &str, actions: &[String]) -> Self {
        Self {
            name: name.to_owned(),
            access_key: format!("{name}-key"),
            secret_key: format!("{name}-secret-key"),
            actions: actions.to_vec(),
        }
    }
}

impl SeaweedFs {
    /// Starts a private instance and waits until it really serves S3 (a bucket can be created and written).
    pub async fn start() -> SeaweedFs {
        Self::start_with(&[]).await
    }

    /// Starts a private instance with these identities besides the administrator's ([`ACCESS_KEY`]).
    pub async fn start_with(identities: &[Identity]) -> SeaweedFs {
        let admin = Identity {
            name: "admin".to_owned(),
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            actions: ["Admin", "Read", "Write", "List", "Tagging"].map(str::to_owned).to_vec(),
        };
        let identities: Vec<_> = std::iter::once(&admin)
            .chain(identities)
            .map(|identity| {
                serde_json::json!({
                    "name": identity.name,
                    "credentials": [{"accessKey": identity.access_key, "secretKey": identity.secret_key}],
                    "actions": identity.actions,
                })
            })
            .collect();
        let config = serde_json::json!({ "identities": identities }).to_string();
        // The ports are free when chosen but not held: another process (a parallel test's SeaweedFS) may take one
        // before this one binds it, and SeaweedFS then exits. It is started again, in a new folder, on other ports.
        for attempt in 1..=3 {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("s3.json"), &config).expect("write s3.json");
            let base = free_ports();
            let child = spawn_weed(dir.path(), base);
            watch_over(child.id(), dir.path());
            let mut weed = SeaweedFs { endpoint: format!("http://127.0.0.1:{base}"), port: base, child, _dir: dir };
            if weed.wait_until_ready().await {
                return weed;
            }
            eprintln!("SeaweedFS exited at start (attempt {attempt}), most likely a port taken meanwhile");
        }
        panic!("SeaweedFS exited at start three times; its logs are above");
    }

    /// Waits until the instance serves S3: true once it does, false if the process exited first.
    async fn wait_until_ready(&mut self) -> bool {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = unique_bucket();
        loop {
            let ready = async {
                client.create_bucket().bucket(&probe).send().await.ok()?;
                client.put_object().bucket(&probe).key("probe").body(b"ok".to_vec().into()).send().await.ok()
            };
            if ready.await.is_some() {
                return true;
            }
            let log = std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default();
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                eprintln!("SeaweedFS's log:\n{log}");
                return false;
            }
            assert!(Instant::now() < deadline, "SeaweedFS did not become ready within 60 s; its log:\n{log}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An S3 client independent of DraftStore, to check what the store holds.
    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, ACCESS_KEY, SECRET_KEY)
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but never answered.
    pub fn pause(&self) {
        signal("-STOP", self.child.id());
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same folder and ports, after [`SeaweedFs::kill`]; its data survives.
    pub async fn restart(&mut self) {
        self.child = spawn_weed(self._dir.path(), self.port);
        watch_over(self.child.id(), self._dir.path());
        self.wait_until_ready().await;
    }

    /// Thaws the server (SIGCONT).
    pub fn resume(&self) {
        signal("-CONT", self.child.id());
    }

    /// DraftStore arguments for `STORAGE_TYPE=s3` against this server.
    pub fn s3_args(&self, bucket: &str) -> Vec<String> {
        [
            "--storage-type",
            "s3",
            "--aws-endpoint-url",
            &self.endpoint,
            "--s3-force-path-style",
            "true",
            "--aws-access-key-id",
            ACCESS_KEY,
            "--aws-secret-access-key",
            SECRET_KEY,
            "--bucket-name",
            bucket,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// DraftStore arguments for `STORAGE_TYPE=minio` against this server.
    pub fn minio_args(&self, bucket: &str) -> Vec<String> {
        let endpoint = format!("127.0.0.1:{}", self.port);
        [
            "--storage-type",
            "minio",
            "--minio-endpoint",
            &endpoint,
            "--minio-access-key",
            ACCESS_KEY,
            "--minio-secret-key",
            SECRET_KEY,
            "--bucket-name",
            bucket,
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A path-style S3 client of the store at `endpoint`, independent of DraftStore.
pub fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Runs `weed mini` on `dir` with ports from `base`; its log goes to `dir/weed.log`.
fn spawn_weed(dir: &std::path::Path, base: u16) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("weed.log")).expect("log file");
    Command::new(weed_binary())
        .current_dir(dir)
        .arg("mini")
        .arg(format!("-dir={}", dir.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false", "-webdav=false"])
        .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false"])
        // Every bucket is a collection that takes several volumes at its first write; without a set limit the
        // count follows the free disk (free space ÷ 128 MB), and a full test run on a fuller disk runs out.
        .arg("-volume.max=2000")
        .arg(format!("-s3.config={}", dir.join("s3.json").display()))
        .arg(format!("-s3.port={base}"))
        .arg(format!("-master.port={}", base + 1))
        .arg(format!("-volume.port={}", base + 2))
        .arg(format!("-filer.port={}", base + 3))
        .arg(format!("-admin.port={}", base + 4))
        .arg(format!("-metricsPort={}", base + 5))
        .arg(format!("-s3.metricsPort={}", base + 6))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("SeaweedFS starts")
}

fn signal(signal: &str, pid: u32) {
    let status = Command::new("kill").arg(signal).arg(pid.to_string()).status().expect("kill runs");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// The shared instance lives in a static that is never dropped: a small watchdog kills SeaweedFS and removes its
/// folder once this test process has exited, so neither outlives the run.
fn watch_over(pid: u32, dir: &std::path::Path) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null; sleep 1; rm -rf '{}'",
        std::process::id(),
        dir.display()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

//! A real clamd for the tests: Debian's `clamav-daemon`, installed by `scripts/test`, run in the foreground on a
//! free loopback port in a folder of its own. No signature download is possible, so the test writes the database:
//! one signature for the standard EICAR test file and one for a marker of the tests' own. If clamd cannot start,
//! the test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The 68-byte EICAR test file, kept in two halves so that this source is no test file itself.
pub fn eicar() -> Vec<u8> {
    [&b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"[..], &b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"[..]].concat()
}

/// Bytes only the tests' own signature matches.
pub const MARKER: &[u8] = b"DRAFTSTORE-TEST-MARKER-3c9e1f";

/// A zip archive holding `data` as `name`, nested `depth` deep (each level a stored archive of the one below), as
/// an attacker hides a file from a scanner that stops unpacking at some depth.
pub fn nested_zip(depth: usize, name: &str, data: &[u8]) -> Vec<u8> {
    (0..depth).fold(data.to_vec(), |inner, level| zip_of(if level == 0 { name } else { "inner.zip" }, &inner))
}

/// A zip archive of one stored file.
fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = !data.iter().fold(!0u32, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |crc, _| if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 })
    });
    let (size, name_len) = (data.len() as u32, name.len() as u16);
    let fields = |out: &mut Vec<u8>| {
        [10u16, 0, 0, 0, 0x21].iter().for_each(|h| out.extend(h.to_le_bytes()));
        [crc, size, size].iter().for_each(|w| out.extend(w.to_le_bytes()));
        out.extend(name_len.to_le_bytes());
        out.extend(0u16.to_le_bytes());
    };
    let mut out = b"PK\x03\x04".to_vec();
    fields(&mut out);
    out.extend(name.as_bytes());
    out.extend(data);
    let directory = out.len() as u32;
    out.extend(b"PK\x01\x02");
    out.extend(20u16.to_le_bytes());
    fields(&mut out);
    out.extend([0u8; 14]);
    out.extend(name.as_bytes());
    let directory_len = out.len() as u32 - directory;
    out.extend(b"PK\x05\x06");
    [0u16, 0, 1, 1].iter().for_each(|h| out.extend(h.to_le_bytes()));
    out.extend(directory_len.to_le_bytes());
    out.extend(directory.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// What clamd names the two signatures in its answers.
pub const EICAR_SIGNATURE: &str = "DraftStore.Test.Eicar.UNOFFICIAL";
pub const MARKER_SIGNATURE: &str = "DraftStore.Test.Marker.UNOFFICIAL";

/// One running clamd; killed when dropped.
pub struct Clamd {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn clamd_binary() -> PathBuf {
    let path = std::env::var_os("CLAMD_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/sbin/clamd".into());
    assert!(
        path.is_file(),
        "clamd is not installed at {}: run scripts/test, which installs Debian's clamav-daemon, or set CLAMD_BIN",
        path.display()
    );
    path
}

impl Clamd {
    /// Starts clamd with the test signatures and a stream limit above the largest draft a test scans (1 GiB).
    pub async fn start() -> Clamd {
        Self::start_with_limit("1100M").await
    }

    /// Starts clamd with the test signatures, refusing streams longer than `limit` (`StreamMaxLength`).
    pub async fn start_with_limit(limit: &str) -> Clamd {
        Self::start_with_config(limit, "AlertExceedsMax yes").await
    }

    /// Starts clamd as the docs say to but with clamd's own default `AlertExceedsMax no`: it answers `OK` for an
    /// archive it stopped unpacking at its limits.
    pub async fn start_passing_what_exceeds_its_limits() -> Clamd {
        Self::start_with_config("1100M", "AlertExceedsMax no").await
    }

    async fn start_with_config(limit: &str, alert: &str) -> Clamd {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("db folder");
        let signatures = format!(
            "{}:0:*:{}\n{}:0:*:{}\n",
            EICAR_SIGNATURE.trim_end_matches(".UNOFFICIAL"),
            hex::encode(eicar()),
            MARKER_SIGNATURE.trim_end_matches(".UNOFFICIAL"),
            hex::encode(MARKER)
        );
        std::fs::write(db.join("draftstore-test.ndb"), signatures).expect("write the signatures");
        let port = crate::helpers::free_port();
        let folder = dir.path().display();
        let config = format!(
            "Foreground yes\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {folder}/db\n\
             PidFile {folder}/clamd.pid\nTemporaryDirectory {folder}\nLogFile {folder}/clamd.log\n\
             StreamMaxLength {limit}\nMaxFileSize 1100M\nMaxScanSize 1100M\n{alert}\n"
        );
        std::fs::write(dir.path().join("clamd.conf"), config).expect("write the config");
        let mut clamd = Clamd { port, dir, child: None };
        clamd.restart().await;
        clamd
    }

    /// `tcp://127.0.0.1:<port>`, for CLAMD_ADDRESS.
    pub fn address(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Stops clamd (SIGKILL): its port refuses connections until [`Clamd::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts clamd on the same port and database, and waits until it answers `PING` with `PONG`.
    pub async fn restart(&mut self) {
        let output = std::fs::File::create(self.dir.path().join("clamd.out")).expect("output file");
        let child = Command::new(clamd_binary())
            .arg("-c")
            .arg(self.dir.path().join("clamd.conf"))
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("output"))
            .stderr(output)
            .spawn()
            .expect("clamd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ping().await {
                return;
            }
            let log = std::fs::read_to_string(self.dir.path().join("clamd.out")).unwrap_or_default();
            assert!(Instant::now() < deadline, "clamd did not answer PING within 60 s; its output:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else { return false };
        let mut answer = Vec::new();
        stream.write_all(b"zPING\0").await.is_ok()
            && stream.read_to_end(&mut answer).await.is_ok()
            && answer == b"PONG\0"
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}

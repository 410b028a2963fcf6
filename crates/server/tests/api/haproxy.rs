//! A real load balancer for the tests: Debian's HAProxy, installed by `scripts/test`, run in the foreground on a
//! free loopback port in front of one DraftStore or several (taken in turn, `balance roundrobin`), adding
//! `X-Forwarded-For` (`option forwardfor`). If it cannot start, the test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One running HAProxy; killed when dropped.
pub struct HaProxy {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

fn haproxy_binary() -> PathBuf {
    let path = std::env::var_os("HAPROXY_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/sbin/haproxy".into());
    assert!(
        path.is_file(),
        "HAProxy is not installed at {}: run scripts/test, which installs Debian's haproxy, or set HAPROXY_BIN",
        path.display()
    );
    path
}

impl HaProxy {
    /// HAProxy on a free port, forwarding HTTP to `backend` (`127.0.0.1:<port>`) and naming each client in
    /// `X-Forwarded-For`.
    pub async fn start(backend: &str) -> HaProxy {
        HaProxy::round_robin(crate::helpers::free_port(), &[backend]).await
    }

    /// HAProxy on `port` (known beforehand, so that the servers behind it can be told their public URL), sending
    /// each request to the next of `backends` in turn, whichever connection it came on, and naming each client in
    /// `X-Forwarded-For`.
    pub async fn round_robin(port: u16, backends: &[&str]) -> HaProxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let servers: String =
            backends.iter().enumerate().map(|(i, backend)| format!("  server s{i} {backend}\n")).collect();
        let config = format!(
            "global\n  maxconn 256\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  \
             timeout server 30s\n\nfrontend api\n  bind 127.0.0.1:{port}\n  option forwardfor\n  \
             default_backend draftstore\n\nbackend draftstore\n  balance roundrobin\n{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write the config");
        let output = std::fs::File::create(dir.path().join("haproxy.out")).expect("output file");
        let child = Command::new(haproxy_binary())
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("output"))
            .stderr(output)
            .spawn()
            .expect("HAProxy starts");
        let proxy = HaProxy { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            let log = std::fs::read_to_string(proxy.dir.path().join("haproxy.out")).unwrap_or_default();
            assert!(Instant::now() < deadline, "HAProxy did not listen within 30 s; its output:\n{log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        proxy
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

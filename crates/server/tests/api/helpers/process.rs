//! The real binary as a child process: restarted on the same ports, or read through its JSON log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::free_port;

/// `draftstore serve` as a process of its own, on fixed ports so that a restart answers at the same address.
pub struct Server {
    args: Vec<String>,
    http: u16,
    grpc: u16,
    child: Option<Child>,
}

impl Server {
    /// Not started yet; `args` follow `serve`, the ports and the bind address are added.
    pub fn new(args: Vec<String>) -> Server {
        Server { args, http: free_port(), grpc: free_port(), child: None }
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    /// The HTTP port's address.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// The gRPC port's address.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    /// Starts the binary and waits until it is ready.
    pub async fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_draftstore"))
            .arg("serve")
            .args(&self.args)
            .args(["--http-port", &self.http.to_string(), "--grpc-port", &self.grpc.to_string()])
            .args(["--bind-address", "127.0.0.1", "--storage-timeout", "5"])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        self.child = Some(child);
        // Generous: other tests of the suite write gigabytes to the same disk meanwhile.
        let deadline = Instant::now() + Duration::from_secs(90);
        let client = reqwest::Client::new();
        loop {
            let ready = client.get(format!("{}/ready", self.url())).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "the server did not become ready after a restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILLs the process, if it runs, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real binary, serving on free ports; its log lines arrive on a channel.
pub struct LoggedServer {
    child: Child,
    /// `http://<address>` of the HTTP port.
    pub http: String,
    logs: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl LoggedServer {
    /// Starts the binary on the local backend in `data_dir`, with these environment variables, and waits until
    /// it logs that it listens.
    pub fn start(data_dir: &Path, envs: &[(&str, &str)]) -> LoggedServer {
        Self::start_with_open_files(data_dir, envs, None)
    }

    /// Started as a shell would start it after `ulimit -Sn <soft>`, when `soft` is given.
    pub fn start_with_open_files(data_dir: &Path, envs: &[(&str, &str)], soft: Option<u64>) -> LoggedServer {
        let binary = env!("CARGO_BIN_EXE_draftstore");
        let mut command = match soft {
            None => Command::new(binary),
            Some(soft) => {
                let mut shell = Command::new("sh");
                shell.args(["-c", &format!("ulimit -Sn {soft} && exec \"$0\" \"$@\""), binary]);
                shell
            }
        };
        let mut child = command
            .arg("serve")
            .env("DATA_DIR", data_dir)
            .env("HTTP_PORT", "0")
            .env("GRPC_PORT", "0")
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("LOG_FORMAT", "json")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (sender, logs) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut server = LoggedServer { child, http: String::new(), logs, seen: Vec::new() };
        let listening = server.wait_for(|line| line["message"] == "DraftStore listening");
        server.http = format!("http://{}", listening["http"].as_str().expect("http address"));
        server
    }

    /// Waits for a JSON log line matching `wanted`; every line must be JSON.
    pub fn wait_for(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self
                .logs
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no such log line within 30 s; seen:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
            if wanted(&parsed) {
                return parsed;
            }
        }
    }

    /// Every log line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Sends a signal (`-TERM`, …) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(signal).arg(self.child.id().to_string()).status().expect("kill runs");
        assert!(status.success());
    }

    /// Waits up to 30 s for the process to exit; its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().expect("exited, not killed");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not exit within 30 s");
    }

    /// Reads the log lines until none comes for half a second; every line read so far.
    pub fn drain_logs(&mut self) -> Vec<String> {
        while let Ok(line) = self.logs.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

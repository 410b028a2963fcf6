//! tus-js-client 4 in Node (`tests/tus/upload.mjs`, with the tools `scripts/test` installs into `.tools/tus`), run
//! as a child process whose events (one JSON line each) the test follows as they come: it can stop the client's
//! request half sent, kill the client, or let it run to the end.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Where the tus tools are installed: DRAFTSTORE_TUS_TOOLS, else the `.tools/tus` that scripts/test fills.
pub fn tus_tools() -> PathBuf {
    let tools = std::env::var_os("DRAFTSTORE_TUS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/tus"));
    assert!(
        tools.join("node_modules/tus-js-client").is_dir(),
        "the tus tools are not installed in {}: run scripts/test, which installs them",
        tools.display()
    );
    tools
}

/// One run of `upload.mjs`, killed if dropped before it ends.
pub struct TusClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    /// Every event read so far.
    pub events: Vec<Value>,
}

impl TusClient {
    /// Starts an upload with these options (see `tests/tus/upload.mjs`).
    pub fn start(options: &Value) -> TusClient {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tus/upload.mjs");
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .arg(options.to_string())
            .env("DRAFTSTORE_TUS_TOOLS", tus_tools())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let collected = Arc::clone(&stderr);
        // Read apart from stdout, so that a chatty stderr never fills its pipe and stops the client.
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text).await;
            collected.lock().expect("lock").push_str(&text);
        });
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        TusClient { stdin: child.stdin.take(), child, lines, stderr, events: Vec::new() }
    }

    fn transcript(&self) -> String {
        let events: Vec<String> = self.events.iter().map(Value::to_string).collect();
        format!("events:\n{}\nstderr:\n{}", events.join("\n"), self.stderr.lock().expect("lock"))
    }

    /// Reads events until one matches `wanted` (within `within`); returns it. Panics if the client ends first.
    pub async fn until(&mut self, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            let line = match line {
                Ok(Ok(Some(line))) => line,
                Ok(_) => panic!("the client ended before the awaited event; {}", self.transcript()),
                Err(_) => panic!("no awaited event within {within:?}; {}", self.transcript()),
            };
            let event: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            self.events.push(event.clone());
            if event["event"] == "error" {
                panic!("the client failed; {}", self.transcript());
            }
            if wanted(&event) {
                return event;
            }
        }
    }

    /// Lets a body held at `holdAt` go on.
    pub async fn release(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").await.expect("written");
        stdin.flush().await.expect("flushed");
    }

    /// SIGKILLs the client and reaps it.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("killed");
    }

    /// Reads every event to the end (within `within`) and waits for the exit; panics unless the upload succeeded.
    /// Returns the success event.
    pub async fn finish(&mut self, within: Duration) -> Value {
        let success = self.until(within, |event| event["event"] == "success").await;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let status = status.expect("the client exits").expect("waited");
        assert!(status.success(), "the client exited with {status}; {}", self.transcript());
        success
    }

    /// The requests sent so far of this method.
    pub fn requests<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["event"] == "request" && e["method"] == method)
    }
}

/// Runs an upload with these options to its end (within `within`); returns the client, every event read, and
/// its success event.
pub async fn upload(options: &Value, within: Duration) -> (TusClient, Value) {
    let mut client = TusClient::start(options);
    let success = client.finish(within).await;
    (client, success)
}

//! The OpenAPI document read literally: schemathesis (installed by scripts/test) runs every check through its
//! coverage, fuzzing and stateful phases against `/openapi.json`, on each backend, with API keys (so the document's
//! security scheme and every name limit under a tenant prefix are tested too), and finds nothing: every request the
//! document allows is accepted, every one it forbids is refused, every answer is one the document lists.

use std::path::PathBuf;
use std::process::Command;

use crate::auth::api_keys;
use crate::helpers::{TestApp, serve_settings, spawn, spawn_app_with};
use crate::seaweed::{self, SeaweedFs};

pub const KEY: &str = "key-of-the-fuzzer";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("DRAFTSTORE_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/schemathesis"));
    assert!(path.join("bin/st").is_file(), "schemathesis is not installed at {}: run scripts/test", path.display());
    path
}

async fn fuzz(app: &TestApp) {
    // A fixed seed keeps the run reproducible; SCHEMATHESIS_SEED picks another.
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261129".to_owned());
    fuzz_with(app, &seed, None).await;
}

/// Runs every check of schemathesis with this seed, and this many examples per operation (schemathesis's default
/// without), against `app`, which takes [`KEY`]; fails on anything it finds.
pub async fn fuzz_with(app: &TestApp, seed: &str, max_examples: Option<u32>) {
    let tools = schemathesis();
    let settings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    // schemathesis keeps a cache in its working folder, and Python its bytecode beside the hooks: neither in the tree.
    let work = tempfile::tempdir().expect("a working folder");
    let mut command = Command::new("python3");
    command
        .arg(tools.join("bin/st"))
        .arg("--config-file")
        .arg(settings.join("schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", app.address), "--checks", "all", "--seed", seed])
        .args(max_examples.iter().flat_map(|n| ["--max-examples".to_owned(), n.to_string()]))
        .args(["--header", &format!("Authorization: Bearer {KEY}")])
        .env("PYTHONPATH", std::env::join_paths([&tools, &settings]).expect("paths join"))
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("NO_COLOR", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(work.path());
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("joined").expect("st runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for phase in ["Coverage", "Fuzzing", "Stateful"] {
        assert!(report.contains(&format!("✅ {phase}")), "the {phase} phase did not pass:\n{report}");
    }
    let summary = report.lines().find(|line| line.contains(" generated, ")).expect("a summary line");
    crate::helpers::report(&format!("schemathesis: {}", summary.trim()));
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_on_the_local_backend() {
    let keys = api_keys(&[("alice", KEY)]);
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    fuzz(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_on_seaweedfs() {
    let weed = SeaweedFs::start().await;
    let keys = api_keys(&[("alice", KEY)]);
    let mut args = weed.s3_args(&seaweed::unique_bucket());
    args.extend(["--auth-mode".to_owned(), "api-key".to_owned(), "--api-keys".to_owned(), keys]);
    let app = spawn(serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>())).await;
    fuzz(&app).await;
}

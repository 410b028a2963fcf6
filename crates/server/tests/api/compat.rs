//! A client generated from the original draft.proto by another language's toolchain (Python's grpcio-tools,
//! installed by scripts/test) calls every RPC of today's server.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::spawn_app;

fn python_path() -> PathBuf {
    let path = std::env::var_os("DRAFTSTORE_TEST_PYTHONPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/python"));
    assert!(path.join("grpc_tools").is_dir(), "grpcio-tools is not installed at {}: run scripts/test", path.display());
    path
}

#[tokio::test]
async fn a_python_client_of_the_original_proto_calls_every_rpc() {
    let app = spawn_app().await;
    let address = app.grpc_address.trim_start_matches("http://").to_owned();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/original_client.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg(script).arg(address).env("PYTHONPATH", python_path()).output()
    })
    .await
    .expect("joined")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(
        seen,
        serde_json::json!({
            "create": true, "upload_success": true, "put_status": 200, "preview": "from python",
            "confirm": true, "download": "from python", "missing": "NOT_FOUND"
        })
    );
}

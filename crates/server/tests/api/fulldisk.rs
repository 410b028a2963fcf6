//! The local backend on a really full filesystem: a 16 MiB tmpfs mounted by the test (the tests run as root; where
//! mounting is refused the test fails with the reason). Uploads and parts are refused with 507
//! `INSUFFICIENT_STORAGE` (gRPC RESOURCE_EXHAUSTED), nothing staged is left behind, what is stored stays readable,
//! confirm still works (a rename needs no room), `/ready` stays true, and uploads work again once room is made.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use draftstore_proto::draft::v1 as pb;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestApp, files_under, serve_settings, spawn};

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            output.status.success(),
            "cannot mount a tmpfs for the full-disk test (it needs root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes a file until the filesystem refuses more; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![0xaa; 64 * 1024];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "the filesystem is full (ENOSPC), not {e}");
                break;
            }
        }
    }
    let _ = file.sync_all();
    path
}

async fn put(app: &TestApp, name: &str, bytes: Vec<u8>) -> (u16, serde_json::Value) {
    let ticket = app.upload_url(name, Some("application/octet-stream")).await.ok();
    let mut request = app.client.put(ticket["upload_url"].as_str().expect("url"));
    for (header, value) in ticket["headers"].as_object().expect("headers") {
        request = request.header(header, value.as_str().expect("value"));
    }
    let response = request.body(bytes).send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_full_filesystem_is_507_removes_what_was_staged_and_keeps_serving() {
    let tmpfs = Tmpfs::mount("16m");
    let data = tmpfs.path().join("data");
    let app = spawn(serve_settings(&["--storage-type", "local", "--data-dir", data.to_str().expect("utf-8")])).await;

    app.upload("kept.bin", Some("application/octet-stream"), &[1; 1024]).await;
    let upload = app
        .post(
            "/api/v1/multipart/start",
            &json!({"object_name": "parts.bin", "part_size": 5 << 20, "content_length": 10 << 20}),
        )
        .await
        .ok();
    let upload_id = upload["upload_id"].as_str().expect("upload id").to_owned();

    let filler = fill(tmpfs.path());
    let before = files_under(&data);

    // A single upload.
    let (status, body) = put(&app, "big.bin", vec![2; 2 << 20]).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error_type"], "INSUFFICIENT_STORAGE", "{body}");
    assert!(body["error_message"].as_str().expect("message").contains("out of space"), "{body}");

    // A multipart part.
    let signed = app
        .post(
            "/api/v1/multipart/sign-parts",
            &json!({"object_name": "parts.bin", "upload_id": upload_id, "parts": [{"part_number": 1}]}),
        )
        .await
        .ok();
    let part = &signed["parts"][0];
    let mut request = app.client.put(part["upload_url"].as_str().expect("url"));
    for (header, value) in part["headers"].as_object().expect("headers") {
        request = request.header(header, value.as_str().expect("value"));
    }
    let response = request.body(vec![3; 5 << 20]).send().await.expect("sent");
    assert_eq!(response.status(), 507);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error_type"], "INSUFFICIENT_STORAGE", "{body}");
    let listed = app
        .post("/api/v1/multipart/list-parts", &json!({"object_name": "parts.bin", "upload_id": upload_id}))
        .await
        .ok();
    assert_eq!(listed["parts"], json!([]), "a refused part is not recorded");

    // Over gRPC, an operation that must write is RESOURCE_EXHAUSTED with the same code.
    let status = app
        .grpc()
        .await
        .start_multipart_upload(app.rpc(pb::StartMultipartUploadRequest {
            object_name: "more.bin".into(),
            content_length: Some(1),
            ..Default::default()
        }))
        .await
        .expect_err("no room for the upload's record");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.get_error_details().error_info().expect("ErrorInfo").reason, "INSUFFICIENT_STORAGE");

    // Nothing staged was left behind (a part's empty lock file is not data).
    let unlocked = |files: Vec<PathBuf>| -> Vec<PathBuf> {
        files.into_iter().filter(|f| !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("lock-"))).collect()
    };
    assert_eq!(unlocked(files_under(&data)), unlocked(before), "the refused writes left files behind");

    // What is stored stays readable and confirmable; probes stay true.
    let (_, bytes) = app.download("kept.bin", Some("draft")).await;
    assert_eq!(bytes, vec![1; 1024]);
    app.confirm("kept.bin").await.ok();
    let (_, bytes) = app.download("kept.bin", Some("main")).await;
    assert_eq!(bytes, vec![1; 1024]);
    app.get("/ready").await.ok();
    app.get("/health").await.ok();

    // Room again: uploads work without a restart.
    std::fs::remove_file(filler).expect("remove the filler");
    let (status, body) = put(&app, "big.bin", vec![2; 2 << 20]).await;
    assert_eq!(status, 200, "{body}");
    app.confirm("big.bin").await.ok();
}

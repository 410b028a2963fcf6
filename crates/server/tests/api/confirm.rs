//! Confirm checks a draft against its declarations and the limits before promoting it, and can refuse to
//! replace a confirmed object.

use draftstore_proto::draft::v1 as pb;
use draftstore_storage::local::{LocalConfig, LocalStorage, WriteChecks};
use draftstore_storage::{BucketName, Checksum, ContentType, Declared, ObjectKey};
use serde_json::json;
use sha2::Digest;
use tonic::Code;

use crate::helpers::{Backend, TestApp, grpc_confirm, on_both_backends};
use crate::seaweed;

fn sha256(bytes: &[u8]) -> Checksum {
    Checksum::from_digest(&sha2::Sha256::digest(bytes).into())
}

/// Writes a draft behind DraftStore's back, as a store that checks nothing at upload would keep it.
enum Backdoor {
    Local(LocalStorage),
    S3(aws_sdk_s3::Client, String),
}

impl Backdoor {
    async fn put(
        &self,
        name: &str,
        body: &'static [u8],
        content_type: &str,
        declared: Declared,
        verified_sha256: bool,
    ) {
        match self {
            Backdoor::Local(local) => {
                let checks = WriteChecks {
                    sha256: verified_sha256.then(|| sha256(body)),
                    declared,
                    max_size: None,
                    ..Default::default()
                };
                let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(body))]);
                let draft = BucketName::parse("main-draft").expect("valid");
                let key = ObjectKey::parse(name).expect("valid");
                let content_type = ContentType::parse(content_type).expect("valid");
                local.write_object(&draft, &key, content_type, &checks, stream).await.expect("written");
            }
            Backdoor::S3(client, draft) => {
                let mut put =
                    client.put_object().bucket(draft).key(name).content_type(content_type).body(body.to_vec().into());
                if let Some(length) = declared.length {
                    put = put.metadata("draftstore-length", length.to_string());
                }
                if let Some(sum) = &declared.sha256 {
                    put = put.metadata("draftstore-sha256", sum.to_string());
                }
                if verified_sha256 {
                    put = put.checksum_sha256(sha256(body).to_string());
                }
                put.send().await.expect("written");
            }
        }
    }
}

const LIMITS: [&str; 4] = ["--max-upload-size", "100", "--allowed-content-types", "image/*,text/plain"];

/// A draft written behind DraftStore's back: name, body, content type, declarations, whether the store verified
/// the SHA-256, and what the refusal must mention.
type Case = (&'static str, &'static [u8], &'static str, Declared, bool, &'static str);

async fn checks_reject_and_delete(app: &TestApp, backdoor: &Backdoor) {
    let none = Declared::default();
    let cases: [Case; 5] = [
        ("big.png", &[7u8; 101], "image/png", none.clone(), false, "MAX_UPLOAD_SIZE"),
        (
            "short.png",
            b"0123456789",
            "image/png",
            Declared { length: Some(5), sha256: None },
            false,
            "declared 5 bytes",
        ),
        ("page.html", b"<script>", "text/html", none.clone(), false, "content type"),
        (
            "sum.png",
            b"pixels",
            "image/png",
            Declared { length: None, sha256: Some(sha256(b"other")) },
            true,
            "SHA-256 differs",
        ),
        (
            "unsure.png",
            b"pixels",
            "image/png",
            Declared { length: None, sha256: Some(sha256(b"pixels")) },
            false,
            "no SHA-256",
        ),
    ];
    for (name, body, content_type, declared, verified, reason) in cases {
        backdoor.put(name, body, content_type, declared, verified).await;
        let answer = app.confirm(name).await;
        answer.error(422, "UPLOAD_REJECTED");
        let message = answer.body["error_message"].as_str().expect("message");
        assert!(message.contains(reason), "{name}: {message}");
        app.download_url(name, None).await.error(404, "OBJECT_NOT_FOUND");
    }
    backdoor
        .put("fine.png", b"pixels", "image/png", Declared { length: Some(6), sha256: Some(sha256(b"pixels")) }, true)
        .await;
    assert_eq!(app.confirm("fine.png").await.ok()["success"], true);

    let mut grpc = app.grpc().await;
    backdoor.put("grpc.html", b"<b>", "text/html", Declared::default(), false).await;
    let status = grpc.confirm_upload(grpc_confirm("grpc.html")).await.expect_err("rejected");
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Declared through the URL: the whole path agrees with itself.
    let body: &'static [u8] = b"twelve bytes";
    let ticket = app
        .post(
            "/api/v1/upload-url",
            &json!({ "object_name": "declared.txt", "content_type": "text/plain", "content_length": 12,
                     "checksum_sha256": sha256(body).to_string() }),
        )
        .await
        .ok();
    assert_eq!(app.put_ticket(&ticket, body.to_vec()).await, 200);
    assert_eq!(app.confirm("declared.txt").await.ok()["success"], true);
}

/// A server on `backend`, and a way to its draft bucket that goes around it.
async fn app_with_backdoor(backend: Backend, extra: &[&str]) -> (TestApp, Backdoor) {
    let (app, bucket) = backend.spawn_with_bucket(extra).await;
    let backdoor = match backend {
        Backend::Local => {
            let config = LocalConfig {
                root: app.data_dir.clone(),
                public_url: url::Url::parse("http://localhost").expect("url"),
                signing_key: None,
            };
            Backdoor::Local(LocalStorage::open(config).await.expect("open"))
        }
        Backend::SeaweedFs => Backdoor::S3(seaweed::shared().await.client(), format!("{bucket}-draft")),
    };
    (app, backdoor)
}

async fn confirm_rejects_and_deletes_drafts_that_fail_a_check(backend: Backend) {
    let (app, backdoor) = app_with_backdoor(backend, &LIMITS).await;
    checks_reject_and_delete(&app, &backdoor).await;
}

on_both_backends!(confirm_rejects_and_deletes_drafts_that_fail_a_check);

async fn overwrite_false_keeps_the_confirmed_object(app: &TestApp) {
    let no_overwrite = |name: &str| json!({ "object_name": name, "overwrite": false });
    app.upload("v.txt", None, b"first").await;
    assert_eq!(
        app.post("/api/v1/confirm-upload", &no_overwrite("v.txt")).await.ok()["success"],
        true,
        "nothing to replace"
    );
    app.upload("v.txt", None, b"second").await;
    app.post("/api/v1/confirm-upload", &no_overwrite("v.txt")).await.error(409, "OBJECT_ALREADY_EXISTS");
    assert_eq!(app.download("v.txt", Some("main")).await.1, b"first", "the confirmed object is untouched");
    assert_eq!(app.download("v.txt", Some("draft")).await.1, b"second", "the draft waits");
    let mut grpc = app.grpc().await;
    let status = grpc
        .confirm_upload(pb::ConfirmUploadRequest {
            object_name: "v.txt".into(),
            overwrite: Some(false),
            ..Default::default()
        })
        .await
        .expect_err("exists");
    assert_eq!(status.code(), Code::AlreadyExists);
    app.confirm("v.txt").await.ok();
    assert_eq!(app.download("v.txt", Some("main")).await.1, b"second", "overwrite (the default) replaces");
}

/// SeaweedFS with conditional copies, its default; the next test turns them off.
async fn overwrite_false_refuses_to_replace(backend: Backend) {
    overwrite_false_keeps_the_confirmed_object(&backend.spawn(&[]).await).await;
}

on_both_backends!(overwrite_false_refuses_to_replace);

#[tokio::test]
async fn s3_overwrite_false_holds_where_conditional_writes_are_not_relied_on() {
    overwrite_false_keeps_the_confirmed_object(&Backend::SeaweedFs.spawn(&["--s3-conditional-writes", "false"]).await)
        .await;
}

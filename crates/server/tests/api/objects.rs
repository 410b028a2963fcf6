//! After confirm: final names and metadata, and the caller's confirmed objects listed, described, downloaded under a
//! file name and deleted, tenant by tenant, on the local backend and on SeaweedFS, over REST and gRPC.

use draftstore_proto::draft::v1 as pb;
use draftstore_storage::{BucketName, ObjectKey};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Code;

use crate::helpers::{Backend, TENANTS, TestApp, api_keys, on_both_backends};

fn with_keys() -> [String; 4] {
    ["--auth-mode".into(), "api-key".into(), "--api-keys".into(), api_keys(&TENANTS)]
}

/// A server on `backend` with the tenants' keys, and its main bucket's name.
async fn with_tenants_on(backend: Backend) -> (TestApp, String) {
    let keys = with_keys();
    backend.spawn_with_bucket(&keys.iter().map(String::as_str).collect::<Vec<_>>()).await
}

fn names(page: &Value) -> Vec<String> {
    page["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["object_name"].as_str().expect("name").to_owned())
        .collect()
}

/// A draft confirmed under another name with metadata: stat and list give it back, with the checksum declared at
/// upload; the draft is gone; a repeat of the confirm is the same success; a download names the file in UTF-8.
async fn final_names_and_metadata_round_trip(backend: Backend) {
    let app = &with_tenants_on(backend).await.0;
    let alice = app.as_caller("key-of-alice");
    let body = b"receipt of order 42".to_vec();
    let sha256 = draftstore_storage::Checksum::from_digest(&sha2::Sha256::digest(&body).into()).to_string();
    let ticket = alice
        .post(
            "/api/v1/upload-url",
            &json!({"object_name": "tmp/upload-1.txt", "content_type": "text/plain", "checksum_sha256": sha256}),
        )
        .await
        .ok();
    assert_eq!(alice.put_ticket(&ticket, body.clone()).await, 200);
    let metadata = json!({"owner-id": "42", "caption": "Reçu d'été – 100 % ✓"});
    let request =
        json!({"object_name": "tmp/upload-1.txt", "final_name": "orders/42/receipt.txt", "metadata": metadata});
    let confirmed = alice.post("/api/v1/confirm-upload", &request).await.ok();
    assert_eq!(confirmed["object_name"], "orders/42/receipt.txt");
    assert!(
        confirmed["final_location"].as_str().is_some_and(|l| l.ends_with("/alice/orders/42/receipt.txt")),
        "{confirmed}"
    );
    let again = alice.post("/api/v1/confirm-upload", &request).await.ok();
    assert_eq!(again["object_name"], "orders/42/receipt.txt", "a repeated confirm is the same success");
    alice.download_url("tmp/upload-1.txt", Some("draft")).await.error(404, "OBJECT_NOT_FOUND");

    let stat = alice.post("/api/v1/stat-object", &json!({"object_name": "orders/42/receipt.txt"})).await.ok();
    assert_eq!(stat["size"], body.len());
    assert_eq!(stat["content_type"], "text/plain");
    assert_eq!(stat["sha256"], sha256.as_str());
    assert_eq!(stat["metadata"], metadata);
    let confirmed_at = OffsetDateTime::parse(stat["confirmed_at"].as_str().expect("time"), &Rfc3339).expect("RFC 3339");
    assert!((OffsetDateTime::now_utc() - confirmed_at).whole_seconds().abs() < 60);
    let listed = alice.post("/api/v1/list-objects", &json!({"prefix": "orders/"})).await.ok();
    assert_eq!(listed["objects"], json!([stat]), "list gives what stat gives");

    // A plain confirm keeps the draft's name, stores no metadata, and knows no checksum when none was declared.
    alice.upload("plain.txt", Some("text/plain"), b"plain").await;
    alice.confirm("plain.txt").await.ok();
    let plain = alice.post("/api/v1/stat-object", &json!({"object_name": "plain.txt"})).await.ok();
    assert_eq!((plain["metadata"].clone(), plain["sha256"].clone()), (json!({}), Value::Null));

    // Downloads under a file name, in UTF-8; inline where the type allows it.
    let ticket = alice
        .post("/api/v1/download-url", &json!({"object_name": "orders/42/receipt.txt", "filename": "Reçu d'été.txt"}))
        .await
        .ok();
    let response = app.client.get(ticket["download_url"].as_str().expect("url")).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename*=UTF-8''Re%C3%A7u%20d%27%C3%A9t%C3%A9.txt"
    );
    assert_eq!(response.bytes().await.expect("body"), body);
    let ticket =
        alice.post("/api/v1/download-url", &json!({"object_name": "plain.txt", "disposition": "inline"})).await.ok();
    let response = app.client.get(ticket["download_url"].as_str().expect("url")).send().await.expect("sent");
    assert_eq!(response.headers()["content-disposition"], "inline");
    alice.upload("page.html", Some("text/html"), b"<html><script>alert(1)</script></html>").await;
    let inline = json!({"object_name": "page.html", "disposition": "inline"});
    alice.post("/api/v1/download-url", &inline).await.error(400, "INVALID_REQUEST");
    for filename in ["a/b.txt", "", "tab\there"] {
        let bad = json!({"object_name": "plain.txt", "filename": filename});
        alice.post("/api/v1/download-url", &bad).await.error(400, "INVALID_REQUEST");
    }

    // Bad final names and metadata change nothing.
    alice.upload("draft.txt", Some("text/plain"), b"draft").await;
    for (field, value) in [
        ("final_name", json!("../escape.txt")),
        ("metadata", json!({"Owner": "x"})),
        ("metadata", json!({"draftstore-set": "x"})),
        ("metadata", json!({"note": "line\nbreak"})),
        ("metadata", json!({"big": "x".repeat(1920)})),
    ] {
        let mut request = json!({"object_name": "draft.txt"});
        request[field] = value;
        let answer = alice.post("/api/v1/confirm-upload", &request).await;
        assert_eq!(answer.status, 400, "{field}: {:?}", answer.body);
    }
    let taken = json!({"object_name": "draft.txt", "final_name": "plain.txt", "overwrite": false});
    alice.post("/api/v1/confirm-upload", &taken).await.error(409, "OBJECT_ALREADY_EXISTS");
    alice.download_url("draft.txt", Some("draft")).await.ok();
    // Outside printable ASCII a byte counts three, as S3 keeps it (percent-encoded): a value below U+0800 has at
    // most 42 characters (6 × 42 bytes), so that six entries always fit the 1,920 bytes.
    let too_big = json!({"object_name": "draft.txt", "metadata": {"big": "é".repeat(43)}});
    alice.post("/api/v1/confirm-upload", &too_big).await.error(400, "INVALID_REQUEST");
    let largest = json!({"object_name": "draft.txt", "final_name": "largest.txt", "metadata": {"big": "é".repeat(42)}});
    alice.post("/api/v1/confirm-upload", &largest).await.ok();

    // Deleted once; then it is not there.
    alice.post("/api/v1/delete-object", &json!({"object_name": "orders/42/receipt.txt"})).await.ok();
    alice
        .post("/api/v1/stat-object", &json!({"object_name": "orders/42/receipt.txt"}))
        .await
        .error(404, "OBJECT_NOT_FOUND");
    alice
        .post("/api/v1/delete-object", &json!({"object_name": "orders/42/receipt.txt"}))
        .await
        .error(404, "OBJECT_NOT_FOUND");
    assert_eq!(names(&alice.post("/api/v1/list-objects", &json!({})).await.ok()), ["largest.txt", "plain.txt"]);
}

on_both_backends!(final_names_and_metadata_round_trip);

/// 250 confirmed objects, paged through 100 at a time: each once, in name order, the last page without a token;
/// another tenant sees none of them and can neither stat, download nor delete one.
async fn objects_are_paged_and_tenant_scoped(backend: Backend) {
    let (app, main) = &with_tenants_on(backend).await;
    let main = &BucketName::parse(main).expect("bucket");
    let storage = app.storage.as_ref();
    futures_util::stream::iter(0..250)
        .map(|i| async move {
            let key = ObjectKey::parse(&format!("alice/many/{i:03}.bin")).expect("key");
            storage.put_record(main, &key, bytes::Bytes::from(vec![b'x'; i]), false).await.expect("written");
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let alice = app.as_caller("key-of-alice");
    let (mut all, mut token, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let mut request = json!({"prefix": "many/", "page_size": 100});
        if let Some(token) = &token {
            request["page_token"] = json!(token);
        }
        let page = alice.post("/api/v1/list-objects", &request).await.ok();
        pages += 1;
        all.extend(names(&page));
        match page["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..250).map(|i| format!("many/{i:03}.bin")).collect();
    assert_eq!(all, expected);
    let one = alice.post("/api/v1/stat-object", &json!({"object_name": "many/007.bin"})).await.ok();
    assert_eq!(one["size"], 7);

    let mallory = app.as_caller("key-of-mallory");
    assert_eq!(names(&mallory.post("/api/v1/list-objects", &json!({})).await.ok()), Vec::<String>::new());
    let token = alice.post("/api/v1/list-objects", &json!({"page_size": 1})).await.ok()["next_page_token"].clone();
    mallory
        .post("/api/v1/list-objects", &json!({"page_size": 1, "page_token": token}))
        .await
        .error(400, "INVALID_REQUEST");
    let theirs = json!({"object_name": "many/007.bin"});
    mallory.post("/api/v1/stat-object", &theirs).await.error(404, "OBJECT_NOT_FOUND");
    mallory.post("/api/v1/delete-object", &theirs).await.error(404, "OBJECT_NOT_FOUND");
    mallory.download_url("many/007.bin", Some("main")).await.error(404, "OBJECT_NOT_FOUND");
    mallory.download_url("many/007.bin", None).await.error(404, "OBJECT_NOT_FOUND");
    alice.post("/api/v1/stat-object", &theirs).await.ok();
    // A draft list token is no object list token.
    alice.upload("many/draft.bin", None, b"d").await;
    alice.upload("many/draft2.bin", None, b"d").await;
    let drafts = alice.post("/api/v1/list-drafts", &json!({"page_size": 1})).await.ok();
    let token = drafts["next_page_token"].clone();
    alice
        .post("/api/v1/list-objects", &json!({"page_size": 1, "page_token": token}))
        .await
        .error(400, "INVALID_REQUEST");
}

on_both_backends!(objects_are_paged_and_tenant_scoped);

/// The same over gRPC: confirm to a final name with metadata, list, stat, download under a file name, delete.
#[tokio::test]
async fn confirmed_objects_over_grpc() {
    let app = with_tenants_on(Backend::Local).await.0.as_caller("key-of-alice");
    app.upload("in.txt", Some("text/plain"), b"over grpc").await;
    let mut grpc = app.grpc().await;
    let request = pb::ConfirmUploadRequest {
        object_name: "in.txt".into(),
        final_name: "out/final.txt".into(),
        metadata: [("owner-id".to_owned(), "7".to_owned())].into(),
        ..Default::default()
    };
    let confirmed = grpc.confirm_upload(app.rpc(request)).await.expect("confirmed").into_inner();
    assert_eq!(confirmed.object_name, "out/final.txt");
    let listed = grpc
        .list_objects(app.rpc(pb::ListObjectsRequest { prefix: "out/".into(), ..Default::default() }))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.objects.len(), 1);
    assert_eq!(listed.objects[0].metadata.get("owner-id").map(String::as_str), Some("7"));
    let stat = grpc
        .stat_object(app.rpc(pb::StatObjectRequest { object_name: "out/final.txt".into() }))
        .await
        .expect("described")
        .into_inner();
    assert_eq!(stat.object.expect("object").size, 9);
    let download = pb::GetDownloadUrlRequest {
        object_name: "out/final.txt".into(),
        filename: "naïve.txt".into(),
        ..Default::default()
    };
    let url = grpc.get_download_url(app.rpc(download)).await.expect("signed").into_inner().url;
    let response = app.client.get(&url).send().await.expect("sent");
    assert_eq!(response.headers()["content-disposition"], "attachment; filename*=UTF-8''na%C3%AFve.txt");
    let bad = pb::ConfirmUploadRequest {
        object_name: "in.txt".into(),
        metadata: [("Bad".to_owned(), "x".to_owned())].into(),
        ..Default::default()
    };
    assert_eq!(grpc.confirm_upload(app.rpc(bad)).await.expect_err("refused").code(), Code::InvalidArgument);
    grpc.delete_object(app.rpc(pb::DeleteObjectRequest { object_name: "out/final.txt".into() }))
        .await
        .expect("deleted");
    let gone = grpc.stat_object(app.rpc(pb::StatObjectRequest { object_name: "out/final.txt".into() })).await;
    assert_eq!(gone.expect_err("deleted").code(), Code::NotFound);
}

//! Multipart uploads end to end on the local backend and on SeaweedFS: parts PUT to the URLs the API signs, the
//! draft completed, confirmed and read back; resume, abort, wrong part lists, tenant binding, the cleaner, gRPC.

use std::time::{Duration, Instant};

use draftstore_proto::draft::v1 as pb;
use serde_json::{Value, json};
use sha2::Digest;
use time::OffsetDateTime;
use tonic::Code;

use crate::helpers::multipart::{completion, error_reason, put_part, put_parts, sign, start};
use crate::helpers::{
    Backend, TENANTS, TestApp, api_keys, files_under, on_both_backends, serve_settings, signed_put, spawn, spawn_app,
    spawn_app_with, spawn_on_seaweed,
};
use crate::seaweed::{self, SeaweedFs};

const MIB: usize = 1024 * 1024;

/// Bytes that differ from part to part, so that a part out of place shows.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8).collect()
}

fn upload_request(name: &str, upload_id: &str) -> Value {
    json!({ "object_name": name, "upload_id": upload_id })
}

async fn three_part_upload_completes_and_confirms_byte_identical(backend: Backend) {
    let (app, bucket) = &backend.spawn_with_bucket(&[]).await;
    let parts = vec![bytes(5 * MIB, 1), bytes(5 * MIB, 2), bytes(1234, 3)];
    let whole: Vec<u8> = parts.concat();
    let started = start(
        app,
        "big/video.mp4",
        json!({ "content_type": "video/mp4", "content_length": whole.len(), "part_size": 5 * MIB }),
    )
    .await;
    assert_eq!((started["part_size"].as_u64(), started["part_count"].as_u64()), (Some(5 * MIB as u64), Some(3)));
    let upload_id = started["upload_id"].as_str().expect("upload_id");
    let etags = put_parts(app, "big/video.mp4", upload_id, &parts).await;

    let completed = app.post("/api/v1/multipart/complete", &completion("big/video.mp4", upload_id, &etags)).await.ok();
    assert_eq!(completed, json!({ "success": true, "object_name": "big/video.mp4", "size": whole.len() }));
    assert_eq!(app.download("big/video.mp4", Some("draft")).await, ("video/mp4".to_owned(), whole.clone()));
    app.confirm("big/video.mp4").await.ok();
    assert_eq!(app.download("big/video.mp4", Some("main")).await, ("video/mp4".to_owned(), whole));
    app.post("/api/v1/multipart/list-parts", &upload_request("big/video.mp4", upload_id))
        .await
        .error(404, "UPLOAD_NOT_FOUND");
    match backend {
        Backend::Local => {
            let leftovers: Vec<_> = files_under(&app.data_dir)
                .into_iter()
                .filter(|p| {
                    p.starts_with(app.data_dir.join(".multipart")) || p.starts_with(app.data_dir.join(".staging"))
                })
                .collect();
            assert!(leftovers.is_empty(), "parts or staging files left: {leftovers:?}");
        }
        Backend::SeaweedFs => {
            let s3 = seaweed::shared().await.client();
            let object = s3.get_object().bucket(bucket).key("big/video.mp4").send().await.expect("confirmed object");
            assert_eq!(object.content_type(), Some("video/mp4"));
        }
    }
}

on_both_backends!(three_part_upload_completes_and_confirms_byte_identical);

async fn upload_resumes_from_the_listed_parts(backend: Backend) {
    let app = &backend.spawn(&[]).await;
    let parts = [bytes(5 * MIB, 7), bytes(5 * MIB, 8), bytes(10, 9)];
    let started = start(app, "resumed.bin", json!({ "content_length": 10 * MIB + 10, "part_size": 5 * MIB })).await;
    let upload_id = started["upload_id"].as_str().expect("upload_id").to_owned();
    put_parts(app, "resumed.bin", &upload_id, &parts[..2]).await;
    // The client lost every ETag it had: it asks the store what is there.
    let listed = app.post("/api/v1/multipart/list-parts", &upload_request("resumed.bin", &upload_id)).await.ok();
    let listed = listed["parts"].as_array().expect("parts").clone();
    assert_eq!(listed.len(), 2);
    let mut etags: Vec<(u32, String)> = listed
        .iter()
        .map(|p| {
            assert_eq!(p["size"].as_u64(), Some(5 * MIB as u64));
            (p["part_number"].as_u64().expect("n") as u32, p["etag"].as_str().expect("etag").to_owned())
        })
        .collect();
    assert_eq!(etags.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
    let third = sign(app, "resumed.bin", &upload_id, &[3]).await;
    etags.push((3, put_part(app, &third[0], parts[2].clone()).await));
    app.post("/api/v1/multipart/complete", &completion("resumed.bin", &upload_id, &etags)).await.ok();
    app.confirm("resumed.bin").await.ok();
    assert_eq!(app.download("resumed.bin", None).await.1, parts.concat());
}

on_both_backends!(upload_resumes_from_the_listed_parts);

/// Starts an upload of `name` and puts one 5 MiB part in it; returns the upload id.
async fn upload_with_one_part(app: &TestApp, name: &str) -> String {
    let started = start(app, name, json!({ "content_length": 5 * MIB })).await;
    let upload_id = started["upload_id"].as_str().expect("upload_id").to_owned();
    put_parts(app, name, &upload_id, &[bytes(5 * MIB, 4)]).await;
    upload_id
}

/// The local backend keeps parts and staging files on disk; S3 keeps a multipart upload in the draft bucket.
async fn abort_leaves_no_part_no_staging_file_and_no_multipart_upload(backend: Backend) {
    let (app, bucket) = backend.spawn_with_bucket(&[]).await;
    let upload_id = upload_with_one_part(&app, "dropped.bin").await;
    let draft = format!("{bucket}-draft");
    let open_uploads = || async {
        let s3 = seaweed::shared().await.client();
        s3.list_multipart_uploads().bucket(&draft).send().await.expect("listed")
    };
    match backend {
        Backend::Local => assert!(!files_under(&app.data_dir.join(".multipart")).is_empty()),
        Backend::SeaweedFs => {
            let listed = open_uploads().await;
            assert_eq!(listed.uploads().len(), 1);
        }
    }
    app.post("/api/v1/multipart/abort", &upload_request("dropped.bin", &upload_id)).await.ok();
    match backend {
        Backend::Local => {
            assert_eq!(files_under(&app.data_dir.join(".multipart")), Vec::<std::path::PathBuf>::new());
            assert_eq!(files_under(&app.data_dir.join(".staging")), Vec::<std::path::PathBuf>::new());
            app.post("/api/v1/multipart/abort", &upload_request("dropped.bin", &upload_id))
                .await
                .error(404, "UPLOAD_NOT_FOUND");
            app.download_url("dropped.bin", None).await.error(404, "OBJECT_NOT_FOUND");
        }
        Backend::SeaweedFs => {
            let listed = open_uploads().await;
            assert!(listed.uploads().is_empty(), "{:?}", listed.uploads());
            app.post("/api/v1/multipart/list-parts", &upload_request("dropped.bin", &upload_id))
                .await
                .error(404, "UPLOAD_NOT_FOUND");
        }
    }
}

on_both_backends!(abort_leaves_no_part_no_staging_file_and_no_multipart_upload);

async fn wrong_part_lists_get_a_409_that_names_the_problem(backend: Backend) {
    let app = &backend.spawn(&UNBOUNDED).await;
    let parts = vec![bytes(5 * MIB, 11), bytes(1000, 12), bytes(500, 13)];
    let started = start(app, "fixed.bin", json!({ "content_type": "application/x-test" })).await;
    let upload_id = started["upload_id"].as_str().expect("upload_id").to_owned();
    let etags = put_parts(app, "fixed.bin", &upload_id, &parts).await;
    let complete = |list: Vec<(u32, String)>| {
        let body = completion("fixed.bin", &upload_id, &list);
        async move { app.post("/api/v1/multipart/complete", &body).await }
    };
    let message = |answer: crate::helpers::Answer| {
        answer.error(409, "INVALID_PARTS");
        answer.body["error_message"].as_str().expect("message").to_owned()
    };
    let (one, two, three) = (etags[0].clone(), etags[1].clone(), etags[2].clone());

    let missing = message(complete(vec![one.clone(), (4, two.1.clone())]).await);
    assert!(missing.contains("part 4 was not uploaded"), "{missing}");
    let wrong_etag = message(complete(vec![one.clone(), (2, "\"not-the-etag\"".to_owned())]).await);
    assert!(wrong_etag.contains("part 2 has the ETag"), "{wrong_etag}");
    let out_of_order = message(complete(vec![two.clone(), one.clone()]).await);
    assert!(out_of_order.contains("ascending order"), "{out_of_order}");
    let small = message(complete(vec![one.clone(), two.clone(), three]).await);
    assert!(small.contains("part 2 is 1000 bytes"), "{small}");
    let empty = message(complete(vec![]).await);
    assert!(empty.contains("at least one part"), "{empty}");
    app.download_url("fixed.bin", None).await.error(404, "OBJECT_NOT_FOUND");

    // Nothing was lost: the parts are all there, and the corrected list makes the object.
    let listed = app.post("/api/v1/multipart/list-parts", &upload_request("fixed.bin", &upload_id)).await.ok();
    assert_eq!(listed["parts"].as_array().expect("parts").len(), 3);
    let done = complete(vec![one, two]).await.ok();
    assert_eq!(done["size"].as_u64(), Some((5 * MIB + 1000) as u64));
    assert_eq!(app.download("fixed.bin", None).await, ("application/x-test".to_owned(), parts[..2].concat()));
}

// Without a declared size (MAX_UPLOAD_SIZE at 5 TiB) part URLs are signed for any length, so that parts of
// any size reach the store and it is the completion that refuses a wrong list.
const UNBOUNDED: [&str; 2] = ["--max-upload-size", "5497558138880"];

on_both_backends!(wrong_part_lists_get_a_409_that_names_the_problem);

async fn another_tenant_or_name_cannot_touch_an_upload(backend: Backend) {
    let keys = api_keys(&TENANTS);
    let app = &backend.spawn(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let alice = app.as_caller("key-of-alice");
    let mallory = app.as_caller("key-of-mallory");
    let upload_id = upload_with_one_part(&alice, "mine.bin").await;
    let etags = vec![(1, "\"whatever\"".to_owned())];
    for (who, name) in [(&mallory, "mine.bin"), (&alice, "other.bin")] {
        who.post(
            "/api/v1/multipart/sign-parts",
            &json!({ "object_name": name, "upload_id": upload_id, "parts": [{ "part_number": 2 }] }),
        )
        .await
        .error(404, "UPLOAD_NOT_FOUND");
        who.post("/api/v1/multipart/list-parts", &upload_request(name, &upload_id))
            .await
            .error(404, "UPLOAD_NOT_FOUND");
        who.post("/api/v1/multipart/complete", &completion(name, &upload_id, &etags))
            .await
            .error(404, "UPLOAD_NOT_FOUND");
        who.post("/api/v1/multipart/abort", &upload_request(name, &upload_id)).await.error(404, "UPLOAD_NOT_FOUND");
    }
    // Unknown ids answer the same.
    let unknown = "0123456789abcdef0123456789abcdef";
    alice
        .post("/api/v1/multipart/list-parts", &upload_request("mine.bin", unknown))
        .await
        .error(404, "UPLOAD_NOT_FOUND");
    for malformed in ["../../etc", "..", "a/b", "no spaces", ""] {
        alice
            .post("/api/v1/multipart/list-parts", &upload_request("mine.bin", malformed))
            .await
            .error(400, "INVALID_REQUEST");
    }
    // The owner still has it whole.
    let listed = alice.post("/api/v1/multipart/list-parts", &upload_request("mine.bin", &upload_id)).await.ok();
    assert_eq!(listed["parts"].as_array().expect("parts").len(), 1);
}

on_both_backends!(another_tenant_or_name_cannot_touch_an_upload);

#[tokio::test]
async fn starts_are_refused_up_front_like_upload_urls() {
    let app = spawn_app_with(&["--max-upload-size", "10485760", "--allowed-content-types", "video/*"]).await;
    app.post(
        "/api/v1/multipart/start",
        &json!({ "object_name": "a.mp4", "content_type": "video/mp4", "content_length": 10 * MIB + 1 }),
    )
    .await
    .error(413, "UPLOAD_TOO_LARGE");
    app.post("/api/v1/multipart/start", &json!({ "object_name": "a.exe", "content_type": "application/x-exe" }))
        .await
        .error(415, "UNSUPPORTED_CONTENT_TYPE");
    app.post("/api/v1/multipart/start", &json!({ "object_name": "a/../b", "content_type": "video/mp4" }))
        .await
        .error(400, "INVALID_OBJECT_NAME");
    app.post(
        "/api/v1/multipart/start",
        &json!({ "object_name": "a.mp4", "content_type": "video/mp4", "part_size": 1024 }),
    )
    .await
    .error(400, "INVALID_REQUEST");
    let started = start(&app, "a.mp4", json!({ "content_type": "video/mp4", "content_length": MIB })).await;
    let upload_id = started["upload_id"].as_str().expect("id");
    for numbers in [json!([{ "part_number": 0 }]), json!([{ "part_number": 10001 }]), json!([])] {
        app.post(
            "/api/v1/multipart/sign-parts",
            &json!({ "object_name": "a.mp4", "upload_id": upload_id, "parts": numbers }),
        )
        .await
        .error(400, "INVALID_REQUEST");
    }
    // Signing changes nothing: a part listed twice gets a URL for each entry.
    let twice = json!([{ "part_number": 1 }, { "part_number": 1 }]);
    let signed = app
        .post(
            "/api/v1/multipart/sign-parts",
            &json!({ "object_name": "a.mp4", "upload_id": upload_id, "parts": twice }),
        )
        .await
        .ok();
    assert_eq!(signed["parts"].as_array().map(Vec::len), Some(2), "{signed}");
    assert!(files_under(&app.data_dir.join("main-draft")).is_empty());
}

#[tokio::test]
async fn a_single_put_above_5_gib_is_refused_with_a_pointer_to_multipart() {
    let app = spawn_app_with(&["--max-upload-size", "5497558138880"]).await;
    let answer = app
        .post(
            "/api/v1/upload-url",
            &json!({ "object_name": "huge.iso", "content_length": 5u64 * 1024 * 1024 * 1024 + 1 }),
        )
        .await;
    answer.error(413, "UPLOAD_TOO_LARGE");
    assert!(answer.body["error_message"].as_str().expect("message").contains("/api/v1/multipart/start"));
    let started = start(&app, "huge.iso", json!({ "content_length": 5u64 << 40 })).await;
    let (size, count) = (started["part_size"].as_u64().expect("size"), started["part_count"].as_u64().expect("count"));
    assert!(count <= 10_000 && size * count >= 5u64 << 40, "{started}");
}

#[tokio::test]
async fn the_local_backend_verifies_a_declared_sha256_of_the_whole() {
    use base64::Engine;
    let app = spawn_app().await;
    let parts = vec![bytes(5 * MIB, 21), bytes(77, 22)];
    let digest = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data));
    let whole =
        |checksum: String| json!({ "checksum_sha256": checksum, "content_length": 5 * MIB + 77, "part_size": 5 * MIB });
    let started = start(&app, "summed.bin", whole(digest(&parts.concat()))).await;
    let upload_id = started["upload_id"].as_str().expect("id").to_owned();
    let etags = put_parts(&app, "summed.bin", &upload_id, &parts).await;
    app.post("/api/v1/multipart/complete", &completion("summed.bin", &upload_id, &etags)).await.ok();
    app.confirm("summed.bin").await.ok();

    let wrong = start(&app, "wrong.bin", whole(digest(b"something else"))).await;
    let upload_id = wrong["upload_id"].as_str().expect("id").to_owned();
    let etags = put_parts(&app, "wrong.bin", &upload_id, &parts).await;
    let answer = app.post("/api/v1/multipart/complete", &completion("wrong.bin", &upload_id, &etags)).await;
    answer.error(409, "INVALID_PARTS");
    assert!(answer.body["error_message"].as_str().expect("message").contains("checksum_sha256"));
    app.download_url("wrong.bin", None).await.error(404, "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn s3_refuses_a_whole_sha256_it_cannot_verify_and_verifies_each_part() {
    use base64::Engine;
    let (app, _) = spawn_on_seaweed(&[]).await;
    let digest = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data));
    let answer = app
        .post(
            "/api/v1/multipart/start",
            &json!({ "object_name": "x.bin", "checksum_sha256": digest(b"x"), "content_length": 1 }),
        )
        .await;
    answer.error(400, "INVALID_REQUEST");
    assert!(answer.body["error_message"].as_str().expect("message").contains("each part"));

    let part = bytes(5 * MIB, 31);
    let started = start(&app, "x.bin", json!({ "content_length": part.len() })).await;
    let upload_id = started["upload_id"].as_str().expect("id").to_owned();
    let signed = app
        .post(
            "/api/v1/multipart/sign-parts",
            &json!({ "object_name": "x.bin", "upload_id": upload_id, "parts": [{ "part_number": 1, "checksum_sha256": digest(&part) }] }),
        )
        .await
        .ok();
    let url = &signed["parts"][0];
    assert_eq!(url["headers"]["x-amz-checksum-sha256"], json!(digest(&part)));
    let mut tampered = part.clone();
    tampered[0] ^= 1;
    assert_ne!(
        signed_put(&app.client, url).body(tampered).send().await.expect("sent").status(),
        200,
        "a part unlike its checksum"
    );
    let etag = put_part(&app, url, part.clone()).await;
    // SeaweedFS verifies part checksums but does not report them in ListParts; AWS S3 does.
    let listed = app.post("/api/v1/multipart/list-parts", &upload_request("x.bin", &upload_id)).await.ok();
    assert_eq!(listed["parts"][0]["size"], json!(part.len()));
    app.post("/api/v1/multipart/complete", &completion("x.bin", &upload_id, &[(1, etag)])).await.ok();
    app.confirm("x.bin").await.ok();
}

#[tokio::test]
async fn the_cleaner_removes_a_stale_local_multipart_upload() {
    let app = spawn_app().await;
    let upload_id = upload_with_one_part(&app, "stale.bin").await;
    let fresh = upload_with_one_part(&app, "fresh.bin").await;
    let settings = serve_settings(&["--storage-type", "local", "--data-dir", app.data_dir.to_str().expect("utf-8")]);
    let cleaner = settings.common.cleaner(app.store.clone());
    let now = OffsetDateTime::now_utc();
    assert_eq!(cleaner.clean_once(now).await.stale_uploads, 0, "nothing is stale yet");
    let later = now + settings.common.service.object_lifetime + Duration::from_secs(60);
    let report = cleaner.clean_once(later).await;
    assert!(report.stale_uploads >= 2 && report.succeeded(), "{report:?}");
    assert_eq!(files_under(&app.data_dir.join(".multipart")), Vec::<std::path::PathBuf>::new());
    for (name, id) in [("stale.bin", &upload_id), ("fresh.bin", &fresh)] {
        app.post("/api/v1/multipart/list-parts", &upload_request(name, id)).await.error(404, "UPLOAD_NOT_FOUND");
    }
}

#[tokio::test]
async fn every_multipart_operation_works_over_grpc() {
    let app = spawn_app().await;
    let mut grpc = app.grpc().await;
    let started = grpc
        .start_multipart_upload(pb::StartMultipartUploadRequest {
            object_name: "g/rpc.bin".into(),
            content_type: "application/x-grpc-test".into(),
            content_length: Some((5 * MIB + 3) as u64),
            part_size: Some((5 * MIB) as u64),
            ..Default::default()
        })
        .await
        .expect("started")
        .into_inner();
    assert_eq!((started.part_size, started.part_count), ((5 * MIB) as u64, Some(2)));
    let upload_id = started.upload_id.clone();
    let signed = grpc
        .sign_upload_parts(pb::SignUploadPartsRequest {
            object_name: "g/rpc.bin".into(),
            upload_id: upload_id.clone(),
            parts: (1..=2).map(|n| pb::PartToSign { part_number: n, checksum_sha256: String::new() }).collect(),
        })
        .await
        .expect("signed")
        .into_inner();
    let parts = [bytes(5 * MIB, 41), bytes(3, 42)];
    let mut etags = Vec::new();
    for (url, part) in signed.parts.iter().zip(&parts) {
        let response = app.client.put(&url.url).body(part.clone()).send().await.expect("sent");
        assert_eq!(response.status(), 200);
        etags.push(response.headers()["etag"].to_str().expect("ascii").to_owned());
    }
    let listed = grpc
        .list_upload_parts(pb::ListUploadPartsRequest { object_name: "g/rpc.bin".into(), upload_id: upload_id.clone() })
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(
        listed.parts.iter().map(|p| (p.part_number, p.size)).collect::<Vec<_>>(),
        [(1, (5 * MIB) as u64), (2, 3)]
    );
    let complete = |list: Vec<(u32, String)>| pb::CompleteMultipartUploadRequest {
        object_name: "g/rpc.bin".into(),
        upload_id: upload_id.clone(),
        parts: list.into_iter().map(|(n, etag)| pb::PartToComplete { part_number: n, etag }).collect(),
    };
    let wrong = grpc
        .complete_multipart_upload(complete(vec![(2, etags[1].clone()), (1, etags[0].clone())]))
        .await
        .expect_err("out of order");
    assert_eq!((wrong.code(), error_reason(&wrong)), (Code::FailedPrecondition, "INVALID_PARTS".to_owned()));
    let done = grpc
        .complete_multipart_upload(complete(vec![(1, etags[0].clone()), (2, etags[1].clone())]))
        .await
        .expect("completed")
        .into_inner();
    assert_eq!(done.size, (5 * MIB + 3) as u64);
    app.confirm("g/rpc.bin").await.ok();
    assert_eq!(app.download("g/rpc.bin", None).await, ("application/x-grpc-test".to_owned(), parts.concat()));

    let gone = grpc
        .abort_multipart_upload(pb::AbortMultipartUploadRequest {
            object_name: "g/rpc.bin".into(),
            upload_id: upload_id.clone(),
        })
        .await
        .expect_err("completed uploads are gone");
    assert_eq!((gone.code(), error_reason(&gone)), (Code::NotFound, "UPLOAD_NOT_FOUND".to_owned()));
    let other = grpc
        .start_multipart_upload(pb::StartMultipartUploadRequest {
            object_name: "g/other.bin".into(),
            content_length: Some(1),
            ..Default::default()
        })
        .await
        .expect("started")
        .into_inner();
    grpc.abort_multipart_upload(pb::AbortMultipartUploadRequest {
        object_name: "g/other.bin".into(),
        upload_id: other.upload_id,
    })
    .await
    .expect("aborted");
    let bad = grpc
        .sign_upload_parts(pb::SignUploadPartsRequest {
            object_name: "g/rpc.bin".into(),
            upload_id: upload_id.clone(),
            parts: vec![pb::PartToSign { part_number: 0, checksum_sha256: String::new() }],
        })
        .await
        .expect_err("part 0");
    assert_eq!((bad.code(), error_reason(&bad)), (Code::InvalidArgument, "INVALID_REQUEST".to_owned()));
}

/// Uploads `size` bytes of `name` in parts of `part` bytes through the API.
async fn multipart_draft(app: &TestApp, name: &str, size: usize, part: usize) {
    let started = start(app, name, json!({ "content_length": size, "part_size": part })).await;
    let upload_id = started["upload_id"].as_str().expect("id").to_owned();
    let numbers: Vec<u32> = (1..=size.div_ceil(part) as u32).collect();
    let signed = sign(app, name, &upload_id, &numbers).await;
    let mut etags = Vec::new();
    for (i, url) in signed.iter().enumerate() {
        let len = part.min(size - i * part);
        etags.push(((i + 1) as u32, put_part(app, url, vec![(i % 250) as u8; len]).await));
    }
    app.post("/api/v1/multipart/complete", &completion(name, &upload_id, &etags)).await.ok();
}

/// Confirms a 1 GiB draft on a server with this STORAGE_TIMEOUT and the default copy settings; returns the server
/// and its bucket.
async fn confirm_a_gib(weed: &SeaweedFs, timeout: &str) -> (TestApp, String) {
    let bucket = seaweed::unique_bucket();
    let mut args = weed.s3_args(&bucket);
    args.extend(["--storage-timeout", timeout].map(str::to_owned));
    let app = spawn(serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>())).await;
    // SeaweedFS takes about a second to allocate a volume for a bucket's first write: warm the main bucket so
    // that the test measures copying, not that.
    app.upload("warm.txt", None, b"warm").await;
    app.confirm("warm.txt").await.ok();
    let size = 1024 * MIB;
    // One PUT: the store holds the draft as one object, not as parts it could copy by reference.
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    app.upload("big.bin", None, &bytes).await;
    drop(bytes);

    let started = Instant::now();
    app.confirm("big.bin").await.ok();
    eprintln!("confirm of 1 GiB took {:?} with STORAGE_TIMEOUT={timeout}s", started.elapsed());
    let head = weed.client().head_object().bucket(&bucket).key("big.bin").send().await.expect("confirmed");
    assert_eq!(head.content_length(), Some(size as i64));
    // A multipart ETag ends in the number of parts: the copy was cut into requests that fit the timeout.
    let etag = head.e_tag().unwrap_or_default().trim_matches('"').to_owned();
    let parts: u32 = etag.rsplit_once('-').and_then(|(_, n)| n.parse().ok()).unwrap_or(1);
    assert!(parts > 1, "copied in parts, not one request: {etag}");
    (app, bucket)
}

#[tokio::test]
async fn a_big_confirm_succeeds_under_a_small_timeout_and_a_frozen_store_still_gives_503() {
    let weed = SeaweedFs::start().await;
    // The copy settings are the defaults: the parts are sized to what the store shows it copies in time.
    confirm_a_gib(&weed, "1").await;
    let (app, bucket) = confirm_a_gib(&weed, "2").await;
    let s3 = weed.client();

    let size = 320 * MIB;
    multipart_draft(&app, "frozen.bin", size, 64 * MIB).await;
    let confirm = {
        let (client, address) = (app.client.clone(), app.address.clone());
        tokio::spawn(async move {
            let response = client
                .post(format!("{address}/api/v1/confirm-upload"))
                .json(&json!({ "object_name": "frozen.bin" }))
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .expect("answered, not hung");
            (Instant::now(), response.status().as_u16(), response.text().await.unwrap_or_default())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    weed.pause();
    let frozen_at = Instant::now();
    let (answered_at, status, body) = confirm.await.expect("confirm task");
    weed.resume();
    let waited = answered_at.saturating_duration_since(frozen_at);
    eprintln!("a frozen store answered {status} after {waited:?}: {body}");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("NETWORK_ERROR"), "{body}");
    assert!(waited < Duration::from_secs(10), "503 within about the timeout, not {waited:?}");

    // Retried once the store is back, as a client retries a 503: the same confirm completes, and the copy cut off left
    // no upload behind. The first retries may meet the store still working through what it received while frozen
    // (the cut-off copy's parts), and answer 503 again when it copies nothing of theirs within the timeout.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempts = 1;
    loop {
        let answer = app.confirm("frozen.bin").await;
        if answer.status == 200 {
            break;
        }
        answer.error(503, "NETWORK_ERROR");
        assert!(Instant::now() < deadline, "the confirm still fails a minute after the store came back");
        attempts += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("the retried confirm succeeded at attempt {attempts}");
    let head = s3.head_object().bucket(&bucket).key("frozen.bin").send().await.expect("confirmed");
    assert_eq!(head.content_length(), Some(size as i64));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.expect("listed");
        if uploads.uploads().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the aborted copy's upload is still there: {:?}", uploads.uploads());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn multipart_draft_unlike_its_declared_size_is_rejected_at_confirm(backend: Backend) {
    let app = &backend.spawn(&[]).await;
    let declared = json!({ "content_length": 6 * MIB, "content_type": "text/plain", "part_size": 5 * MIB });
    let started = start(app, "short.bin", declared).await;
    let upload_id = started["upload_id"].as_str().expect("id").to_owned();
    let etags = put_parts(app, "short.bin", &upload_id, &[bytes(5 * MIB, 51)]).await;
    app.post("/api/v1/multipart/complete", &completion("short.bin", &upload_id, &etags)).await.ok();
    assert_eq!(app.download("short.bin", Some("draft")).await.0, "text/plain");
    let answer = app.confirm("short.bin").await;
    answer.error(422, "UPLOAD_REJECTED");
    assert!(answer.body["error_message"].as_str().expect("message").contains("declared"), "{:?}", answer.body);
    app.download_url("short.bin", None).await.error(404, "OBJECT_NOT_FOUND");
}

on_both_backends!(multipart_draft_unlike_its_declared_size_is_rejected_at_confirm);

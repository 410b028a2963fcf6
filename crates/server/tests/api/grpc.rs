//! The gRPC API with a tonic client: the same workflow and the same outcomes as REST.

use std::time::{Duration, Instant};

use draftstore_proto::draft::v1 as pb;
use futures_util::StreamExt;
use serde_json::json;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::helpers::variants::{WITH_VARIANTS, decoded, located_jpeg};
use crate::helpers::{
    Backend, TENANTS, TestApp, api_keys, fixture, grpc_confirm, on_both_backends, serve_settings, spawn, spawn_app,
};
use crate::seaweed::{self, SeaweedFs};

/// The ErrorInfo reason and domain of a failed call.
fn reason(status: &tonic::Status) -> (String, String) {
    let info = status.get_error_details().error_info().cloned().expect("an ErrorInfo detail");
    (info.reason, info.domain)
}

async fn whole_flow(app: &TestApp) {
    let mut grpc = app.grpc().await;
    let upload = grpc
        .get_upload_url(pb::GetUploadUrlRequest {
            object_name: "g/rpc.txt".into(),
            content_type: "text/plain".into(),
            ..Default::default()
        })
        .await
        .expect("upload URL")
        .into_inner();
    assert!(upload.result.as_ref().is_some_and(|r| r.success));
    assert_eq!((upload.object_name.as_str(), upload.method.as_str()), ("g/rpc.txt", "PUT"));
    assert_eq!(upload.headers.get("Content-Type").map(String::as_str), Some("text/plain"));
    let expires = upload.expires_at.expect("expiry").seconds - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((3590..=3601).contains(&expires), "{expires}");
    let mut put = app.client.put(&upload.url);
    for (name, value) in &upload.headers {
        put = put.header(name, value);
    }
    assert_eq!(put.body("over grpc").send().await.expect("PUT").status(), 200);

    let preview = grpc
        .get_download_url(pb::GetDownloadUrlRequest { object_name: "g/rpc.txt".into(), stage: 0, ..Default::default() })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.stage(), pb::Stage::Draft);
    assert_eq!(app.client.get(&preview.url).send().await.expect("GET").text().await.expect("body"), "over grpc");

    let confirmed = grpc.confirm_upload(grpc_confirm("g/rpc.txt")).await.expect("confirm").into_inner();
    assert!(confirmed.result.as_ref().is_some_and(|r| r.success));
    assert!(confirmed.final_location.ends_with("/g/rpc.txt"), "{}", confirmed.final_location);
    let again = grpc.confirm_upload(grpc_confirm("g/rpc.txt")).await.expect("idempotent");
    assert_eq!(again.into_inner().final_location, confirmed.final_location);

    let main = grpc
        .get_download_url(pb::GetDownloadUrlRequest {
            object_name: "g/rpc.txt".into(),
            stage: pb::Stage::Main.into(),
            ..Default::default()
        })
        .await
        .expect("download")
        .into_inner();
    assert_eq!(main.stage(), pb::Stage::Main);
    let response = app.client.get(&main.url).send().await.expect("GET");
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.expect("body"), "over grpc");
    let created = grpc.create_draft_bucket(pb::CreateDraftBucketRequest {}).await.expect("buckets").into_inner();
    assert!(created.result.is_some_and(|r| r.success));
}

async fn the_whole_flow_over_grpc(backend: Backend) {
    whole_flow(&backend.spawn(&[]).await).await;
}

on_both_backends!(the_whole_flow_over_grpc);

#[tokio::test]
async fn a_missing_object_is_not_found_with_its_reason() {
    let app = spawn_app().await;
    let mut grpc = app.grpc().await;
    let status = grpc.confirm_upload(grpc_confirm("absent")).await.expect_err("absent");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), ("OBJECT_NOT_FOUND".to_owned(), "draftstore".to_owned()));
    let status = grpc
        .get_download_url(pb::GetDownloadUrlRequest { object_name: "absent".into(), stage: 0, ..Default::default() })
        .await
        .expect_err("absent");
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::NotFound, "OBJECT_NOT_FOUND"));
}

#[tokio::test]
async fn every_call_returns_its_request_id_as_rest_does() {
    let app = spawn_app().await;
    let mut grpc = app.grpc().await;
    let mut given = tonic::Request::new(pb::CreateDraftBucketRequest {});
    given.metadata_mut().insert("x-request-id", "grpc-req-42".parse().expect("ascii"));
    let answered = grpc.create_draft_bucket(given).await.expect("created");
    assert_eq!(answered.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("grpc-req-42"));

    let mut failing = tonic::Request::new(grpc_confirm("absent"));
    failing.metadata_mut().insert("x-request-id", "grpc-req-43".parse().expect("ascii"));
    let status = grpc.confirm_upload(failing).await.expect_err("absent");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("grpc-req-43"));

    let generated = grpc.create_draft_bucket(pb::CreateDraftBucketRequest {}).await.expect("created");
    let id = generated.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).expect("an id is generated");
    assert!(id.len() >= 16 && id != "grpc-req-42", "{id}");
}

#[tokio::test]
async fn every_bad_object_name_is_invalid_argument() {
    let app = spawn_app().await;
    let mut grpc = app.grpc().await;
    for name in ["", "/abs", "a//b", "a/", "..", "a/../b", "back\\slash", "nul\0", "lf\n", &"x".repeat(1025)] {
        let checks = [
            grpc.get_upload_url(pb::GetUploadUrlRequest {
                object_name: name.into(),
                content_type: String::new(),
                ..Default::default()
            })
            .await
            .map(drop),
            grpc.get_download_url(pb::GetDownloadUrlRequest {
                object_name: name.into(),
                stage: 0,
                ..Default::default()
            })
            .await
            .map(drop),
            grpc.confirm_upload(grpc_confirm(name)).await.map(drop),
        ];
        for result in checks {
            let status = result.expect_err("refused");
            assert_eq!(status.code(), Code::InvalidArgument, "{name:?}");
            assert_eq!(reason(&status).0, "INVALID_OBJECT_NAME", "{name:?}");
        }
    }
    let status = grpc
        .get_upload_url(pb::GetUploadUrlRequest {
            object_name: "ok".into(),
            content_type: "not a type".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad content type");
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::InvalidArgument, "INVALID_REQUEST"));
    let status = grpc
        .get_download_url(pb::GetDownloadUrlRequest { object_name: "ok".into(), stage: 42, ..Default::default() })
        .await
        .expect_err("bad stage");
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::InvalidArgument, "INVALID_REQUEST"));
}

async fn health(app: &TestApp, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(app.channel().await);
    let request = HealthCheckRequest { service: service.to_owned() };
    client.check(request).await.expect("health answers").into_inner().status()
}

async fn wait_for_health(app: &TestApp, wanted: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while health(app, "draft.v1.DraftService").await != wanted {
        assert!(Instant::now() < deadline, "health never became {wanted:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(health(app, "").await, wanted, "overall status follows");
}

#[tokio::test]
async fn storage_outage_is_unavailable_and_health_follows_the_store() {
    let weed = SeaweedFs::start().await;
    let args = weed.s3_args(&seaweed::unique_bucket());
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--storage-timeout", "2", "--health-interval", "1"]);
    let app = spawn(serve_settings(&all)).await;
    app.upload("kept", None, b"kept").await;
    wait_for_health(&app, ServingStatus::Serving).await;

    weed.pause();
    let mut grpc = app.grpc().await;
    let status = grpc.confirm_upload(grpc_confirm("kept")).await.expect_err("down");
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::Unavailable, "NETWORK_ERROR"));
    wait_for_health(&app, ServingStatus::NotServing).await;

    weed.resume();
    wait_for_health(&app, ServingStatus::Serving).await;
    grpc.confirm_upload(grpc_confirm("kept")).await.expect("confirmed after the outage");
}

#[tokio::test]
async fn reflection_lists_the_draft_service_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let app = spawn_app().await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        client.server_reflection_info(futures_util::stream::iter([request])).await.expect("v1").into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.next().await.expect("an answer").expect("ok").message_response
    else {
        panic!("not a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"draft.v1.DraftService".to_owned()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "draft.v1.DraftService".to_owned(),
        )),
    };
    let mut responses =
        client.server_reflection_info(futures_util::stream::iter([request])).await.expect("v1alpha").into_inner();
    let answer = responses.next().await.expect("an answer").expect("ok").message_response;
    assert!(
        matches!(answer, Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "{answer:?}"
    );
}

/// One outcome, in terms both APIs share: success, or the error type.
fn rest_outcome(answer: &crate::helpers::Answer) -> String {
    if answer.status == 200 {
        "OK".to_owned()
    } else {
        answer.body["error_type"].as_str().expect("error type").to_owned()
    }
}

fn grpc_outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> String {
    match result {
        Ok(_) => "OK".to_owned(),
        Err(status) => reason(&status).0,
    }
}

#[tokio::test]
async fn rest_and_grpc_give_the_same_outcome_for_the_same_inputs() {
    let app = spawn_app().await;
    app.upload("exists.txt", None, b"x").await;
    let mut grpc = app.grpc().await;
    let names = ["exists.txt", "missing.txt", "../bad", "", "a//b", "ok/name.bin"];
    let stages = [(None, 0), (Some("draft"), 1), (Some("main"), 2)];
    for name in names {
        let rest = rest_outcome(&app.upload_url(name, Some("image/png")).await);
        let rpc = grpc_outcome(
            grpc.get_upload_url(pb::GetUploadUrlRequest {
                object_name: name.into(),
                content_type: "image/png".into(),
                ..Default::default()
            })
            .await,
        );
        assert_eq!(rest, rpc, "upload-url {name:?}");
        for (rest_stage, rpc_stage) in stages {
            let rest = rest_outcome(&app.download_url(name, rest_stage).await);
            let rpc = grpc_outcome(
                grpc.get_download_url(pb::GetDownloadUrlRequest {
                    object_name: name.into(),
                    stage: rpc_stage,
                    ..Default::default()
                })
                .await,
            );
            assert_eq!(rest, rpc, "download-url {name:?} {rest_stage:?}");
        }
    }
    for name in names {
        let rest = rest_outcome(&app.confirm(name).await);
        // The first confirm moved the draft; the gRPC one meets the idempotent path, which must agree.
        let rpc = grpc_outcome(grpc.confirm_upload(grpc_confirm(name)).await);
        assert_eq!(rest, rpc, "confirm {name:?}");
    }
    assert_eq!(app.post("/api/v1/draft-bucket", &json!({})).await.status, 200);
    assert_eq!(grpc_outcome(grpc.create_draft_bucket(pb::CreateDraftBucketRequest {}).await), "OK");
}

/// A GetDownloadURL request for a variant of `name`.
fn variant_request(name: &str, stage: pb::Stage, variant: &str) -> pb::GetDownloadUrlRequest {
    pb::GetDownloadUrlRequest {
        object_name: name.into(),
        stage: stage.into(),
        variant: variant.into(),
        ..Default::default()
    }
}

/// The content type and bytes a signed URL serves.
async fn fetched(app: &TestApp, url: &str) -> (String, Vec<u8>) {
    let response = app.client.get(url).send().await.expect("GET");
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    (content_type, response.bytes().await.expect("body").to_vec())
}

async fn images_over_grpc_report_and_serve_their_variants(backend: Backend) {
    let app = backend.spawn(&WITH_VARIANTS).await;
    let mut grpc = app.grpc().await;
    app.upload("g/photo.png", Some("image/png"), &fixture("photo.png")).await;
    let confirmed = grpc.confirm_upload(grpc_confirm("g/photo.png")).await.expect("confirmed").into_inner();
    let image = confirmed.image.clone().expect("an image report");
    assert_eq!((image.width, image.height), (64, 48));
    let placeholder = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &image.placeholder);
    assert!(placeholder.is_ok_and(|p| !p.is_empty()), "a ThumbHash in base64: {:?}", image.placeholder);
    let shapes: Vec<_> =
        image.variants.iter().map(|v| (v.name.as_str(), v.content_type.as_str(), v.width, v.height)).collect();
    assert_eq!(shapes, [("thumb", "image/webp", 32, 32), ("preview", "image/png", 40, 30)]);
    // A PNG without metadata chunks is promoted as uploaded: neither size nor checksum is given.
    assert_eq!((confirmed.size, confirmed.sha256.as_str()), (None, ""));

    // Stat and list give the same report, and REST's stat the same values.
    let stat = grpc.stat_object(pb::StatObjectRequest { object_name: "g/photo.png".into() }).await.expect("stat");
    assert_eq!(stat.into_inner().object.and_then(|o| o.image), Some(image.clone()));
    let listed = grpc.list_objects(pb::ListObjectsRequest::default()).await.expect("list").into_inner();
    assert_eq!(listed.objects.into_iter().map(|o| o.image).collect::<Vec<_>>(), [Some(image.clone())]);
    let rest = app.post("/api/v1/stat-object", &json!({ "object_name": "g/photo.png" })).await.ok();
    assert_eq!(rest["image"]["placeholder"], json!(image.placeholder));
    assert_eq!(rest["image"]["variants"][0]["size"], json!(image.variants[0].size));

    // Each variant's URL serves bytes of its type, size and dimensions; without a stage or with STAGE_MAIN.
    for (variant, stage, format) in [
        (&image.variants[0], pb::Stage::Unspecified, image::ImageFormat::WebP),
        (&image.variants[1], pb::Stage::Main, image::ImageFormat::Png),
    ] {
        let ticket = grpc
            .get_download_url(variant_request("g/photo.png", stage, &variant.name))
            .await
            .expect("a variant's URL")
            .into_inner();
        assert_eq!((ticket.object_name.as_str(), ticket.stage()), ("g/photo.png", pb::Stage::Main));
        let (content_type, bytes) = fetched(&app, &ticket.url).await;
        assert_eq!((content_type.as_str(), bytes.len() as u64), (variant.content_type.as_str(), variant.size));
        assert_eq!(decoded(&bytes), (format, variant.width, variant.height));
    }
    // Without a variant, the original as uploaded.
    let original = grpc.get_download_url(variant_request("g/photo.png", pb::Stage::Main, "")).await.expect("URL");
    assert_eq!(fetched(&app, &original.into_inner().url).await.1, fixture("photo.png"));

    // A set's objects carry their images too.
    app.upload("g/a.png", Some("image/png"), &fixture("photo.png")).await;
    app.upload("g/b.webp", Some("image/webp"), &fixture("photo.webp")).await;
    let set = grpc
        .confirm_set(pb::ConfirmSetRequest {
            idempotency_key: "grpc-images".into(),
            drafts: ["g/a.png", "g/b.webp"]
                .map(|name| pb::SetDraft { object_name: name.into(), ..Default::default() })
                .into(),
        })
        .await
        .expect("set confirmed")
        .into_inner();
    for object in &set.objects {
        let names: Vec<_> = object.image.as_ref().expect("an image").variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["thumb", "preview"], "{}", object.object_name);
    }
}

on_both_backends!(images_over_grpc_report_and_serve_their_variants);

#[tokio::test]
async fn grpc_refuses_variants_that_do_not_exist_or_cannot() {
    let app = crate::helpers::spawn_app_with(&WITH_VARIANTS).await;
    let mut grpc = app.grpc().await;
    app.upload("photo.png", Some("image/png"), &fixture("photo.png")).await;
    grpc.confirm_upload(grpc_confirm("photo.png")).await.expect("confirmed");
    app.upload("note.txt", Some("text/plain"), b"not an image").await;
    grpc.confirm_upload(grpc_confirm("note.txt")).await.expect("confirmed");
    app.upload("draft.png", Some("image/png"), &fixture("photo.png")).await;

    let refused = |result: Result<tonic::Response<pb::GetDownloadUrlResponse>, tonic::Status>| {
        let status = result.expect_err("refused");
        (status.code(), reason(&status).0)
    };
    let not_found = (Code::NotFound, "VARIANT_NOT_FOUND".to_owned());
    for (name, variant) in [("photo.png", "huge"), ("photo.png", "thumbs"), ("note.txt", "thumb")] {
        let answer = grpc.get_download_url(variant_request(name, pb::Stage::Unspecified, variant)).await;
        assert_eq!(refused(answer), not_found, "{name} {variant}");
    }
    let missing = grpc.get_download_url(variant_request("absent.png", pb::Stage::Main, "thumb")).await;
    assert_eq!(refused(missing), (Code::NotFound, "OBJECT_NOT_FOUND".to_owned()));

    // A draft has no variants, however it is asked for: not found before any lookup.
    for name in ["draft.png", "photo.png"] {
        let answer = grpc.get_download_url(variant_request(name, pb::Stage::Draft, "thumb")).await;
        assert_eq!(refused(answer), not_found, "{name}");
    }
    let invalid = (Code::InvalidArgument, "INVALID_REQUEST".to_owned());
    // A variant name is 1 to 32 of a-z, 0-9 and '-': nothing that could name another key.
    let long = "a".repeat(33);
    for variant in [long.as_str(), "a/b", "..", "../thumb", "thumb/..", "Thumb", "thumb\0", "th umb", "%2e%2e"] {
        let answer = grpc.get_download_url(variant_request("photo.png", pb::Stage::Main, variant)).await;
        assert_eq!(refused(answer), invalid, "{variant:?}");
    }
    // 32 characters is a name: looked up, and not found.
    let longest = grpc.get_download_url(variant_request("photo.png", pb::Stage::Main, &"a".repeat(32))).await;
    assert_eq!(refused(longest), not_found);
}

async fn another_tenants_variants_are_not_found_over_grpc(backend: Backend) {
    let keys = api_keys(&TENANTS);
    let app = backend.spawn(&[&["--auth-mode", "api-key", "--api-keys", &keys], &WITH_VARIANTS[..]].concat()).await;
    let (alice, mallory) = (app.as_caller(TENANTS[0].1), app.as_caller(TENANTS[1].1));
    let mut grpc = app.grpc().await;
    alice.upload("avatar.png", Some("image/png"), &fixture("photo.png")).await;
    grpc.confirm_upload(alice.rpc(grpc_confirm("avatar.png"))).await.expect("alice confirms");
    let theirs = grpc.get_download_url(alice.rpc(variant_request("avatar.png", pb::Stage::Main, "thumb"))).await;
    assert!(theirs.is_ok(), "{theirs:?}");

    // Mallory learns nothing of alice's image: not that it exists, not which variants it has.
    for variant in ["thumb", "huge"] {
        let status = grpc
            .get_download_url(mallory.rpc(variant_request("avatar.png", pb::Stage::Main, variant)))
            .await
            .expect_err("another tenant's");
        assert_eq!((status.code(), reason(&status).0.as_str()), (Code::NotFound, "OBJECT_NOT_FOUND"), "{variant}");
    }
    let status = grpc
        .stat_object(mallory.rpc(pb::StatObjectRequest { object_name: "avatar.png".into() }))
        .await
        .expect_err("another tenant's");
    assert_eq!(status.code(), Code::NotFound);
    let listed = grpc.list_objects(mallory.rpc(pb::ListObjectsRequest::default())).await.expect("lists");
    assert!(listed.into_inner().objects.is_empty(), "mallory's listing holds none of alice's variants");
}

on_both_backends!(another_tenants_variants_are_not_found_over_grpc);

#[tokio::test]
async fn a_stripped_jpeg_gives_its_new_size_and_checksum_over_grpc() {
    let app = crate::helpers::spawn_app_with(&WITH_VARIANTS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let located = located_jpeg(dir.path());
    app.upload("phone.jpg", Some("image/jpeg"), &located).await;
    let mut grpc = app.grpc().await;
    let confirmed = grpc.confirm_upload(grpc_confirm("phone.jpg")).await.expect("confirmed").into_inner();
    let (_, promoted) = app.download("phone.jpg", Some("main")).await;
    assert_ne!(promoted, located, "the GPS position was stripped");
    assert_eq!(confirmed.size, Some(promoted.len() as u64));
    let sha256 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, {
        use sha2::Digest;
        sha2::Sha256::digest(&promoted)
    });
    assert_eq!(confirmed.sha256, sha256);
    assert_eq!(confirmed.image.map(|i| (i.width, i.height)), Some((64, 48)));
}

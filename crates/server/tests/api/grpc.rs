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

use crate::helpers::{Backend, TestApp, grpc_confirm, on_both_backends, serve_settings, spawn, spawn_app};
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

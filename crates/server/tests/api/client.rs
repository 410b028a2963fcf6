//! The Rust client against the real server, on both backends: every operation once, each answer read back into
//! the shared API types, and the server's errors as the typed codes a caller matches on.

use draftstore_client::api::{self, ErrorType, Stage};
use draftstore_client::transfer::{self, Destination, DownloadOptions, NoProgress, UploadOptions};
use draftstore_client::{Client, Error};

use crate::helpers::variants::{WITH_VARIANTS, decoded, located_jpeg};
use crate::helpers::{Backend, TestApp, on_both_backends};

fn client(app: &TestApp) -> Client {
    Client::new(&app.address, app.bearer.clone()).expect("valid URL")
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> (u16, Option<ErrorType>) {
    match result.expect_err("refused") {
        Error::Api { status, error_type, message, .. } => {
            assert!(!message.is_empty());
            (status, error_type)
        }
        other => panic!("expected the server's error body, got {other:?}"),
    }
}

async fn every_operation_round_trips_through_the_typed_client(backend: Backend) {
    let app = backend.spawn(&[]).await;
    let client = client(&app);
    assert!(client.create_buckets().await.expect("buckets").success);

    // Single upload through the transfer helper, then preview, list, confirm, download.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("photo.png");
    // A real PNG, 64 × 48, 1039 bytes: confirm reads its type and size from its bytes.
    let png = crate::helpers::fixture("photo.png");
    std::fs::write(&file, &png).expect("write");
    let report = transfer::upload_file(&client, &file, &UploadOptions::new("p/photo.png", "image/png"), &NoProgress)
        .await
        .expect("uploads");
    assert_eq!((report.size, report.parts, report.bytes_sent), (1039, 0, 1039));
    let preview = client
        .download_url(&api::DownloadUrlRequest { object_name: "p/photo.png".into(), stage: None, ..Default::default() })
        .await
        .expect("download URL");
    assert_eq!(preview.stage, Stage::Draft);
    let drafts = client.list_all_drafts(Some("p/")).await.expect("lists");
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        (drafts[0].object_name.as_str(), drafts[0].size, drafts[0].content_type.as_str()),
        ("p/photo.png", 1039, "image/png")
    );
    let confirmed = client
        .confirm_upload(&api::ConfirmUploadRequest {
            object_name: "p/photo.png".into(),
            overwrite: Some(false),
            ..Default::default()
        })
        .await
        .expect("confirms");
    assert!(confirmed.success && confirmed.final_location.ends_with("/p/photo.png"), "{confirmed:?}");
    let content = confirmed.content.expect("what the checks found");
    assert_eq!(
        (content.detected_type.as_deref(), content.width, content.height),
        (Some("image/png"), Some(64), Some(48))
    );
    let copy = dir.path().join("copy.png");
    let main = DownloadOptions { stage: Some(Stage::Main), ..Default::default() };
    let downloaded = transfer::download(&client, "p/photo.png", &main, &Destination::File(copy.clone()), &NoProgress)
        .await
        .expect("downloads");
    assert_eq!((downloaded.stage, downloaded.size), (Stage::Main, 1039));
    assert_eq!(std::fs::read(&copy).expect("read"), png);

    // Multipart by hand: start, sign, list, abort; then a completed one.
    let started = client
        .start_multipart(&api::StartMultipartRequest {
            object_name: "m.bin".into(),
            content_length: Some(6 << 20),
            part_size: Some(5 << 20),
            ..Default::default()
        })
        .await
        .expect("starts");
    assert_eq!((started.part_size, started.part_count), (5 << 20, Some(2)));
    let upload = api::UploadRequest { object_name: "m.bin".into(), upload_id: started.upload_id.clone() };
    let signed = client
        .sign_parts(&api::SignPartsRequest {
            object_name: "m.bin".into(),
            upload_id: started.upload_id.clone(),
            parts: vec![api::PartToSign { part_number: 1, checksum_sha256: None }],
        })
        .await
        .expect("signs");
    assert_eq!((signed.parts.len(), signed.parts[0].method.as_str()), (1, "PUT"));
    assert!(client.list_parts(&upload).await.expect("lists parts").parts.is_empty());
    let completion = api::CompleteMultipartRequest {
        object_name: "m.bin".into(),
        upload_id: started.upload_id.clone(),
        parts: vec![api::PartToComplete { part_number: 1, etag: "nothing".into() }],
    };
    assert_eq!(code(client.complete_multipart(&completion).await), (409, Some(ErrorType::InvalidParts)));
    assert!(client.abort_multipart(&upload).await.expect("aborts").success);
    assert_eq!(code(client.list_parts(&upload).await), (404, Some(ErrorType::UploadNotFound)));

    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; (6 << 20) + 3]).expect("write");
    let mut options = UploadOptions::new("big.bin", "application/octet-stream");
    options.multipart_threshold = 5 << 20;
    options.part_size = Some(5 << 20);
    let report = transfer::upload_file(&client, &big, &options, &NoProgress).await.expect("uploads in parts");
    assert_eq!((report.parts, report.parts_resumed, report.size), (2, 0, (6 << 20) + 3));
    assert!(
        client
            .discard_draft(&api::DiscardDraftRequest { object_name: "big.bin".into() })
            .await
            .expect("discards")
            .success
    );

    // The server's refusals, typed.
    let absent = api::ConfirmUploadRequest { object_name: "absent".into(), overwrite: None, ..Default::default() };
    assert_eq!(code(client.confirm_upload(&absent).await), (404, Some(ErrorType::ObjectNotFound)));
    // Confirm is idempotent; a new draft over a confirmed object is refused without overwrite.
    let again =
        api::ConfirmUploadRequest { object_name: "p/photo.png".into(), overwrite: Some(false), ..Default::default() };
    assert!(client.confirm_upload(&again).await.expect("idempotent").success);
    transfer::upload_file(&client, &file, &UploadOptions::new("p/photo.png", "image/png"), &NoProgress)
        .await
        .expect("uploads");
    assert_eq!(code(client.confirm_upload(&again).await), (409, Some(ErrorType::ObjectAlreadyExists)));
    let bad_name = api::UploadUrlRequest { object_name: "../escape".into(), ..Default::default() };
    assert_eq!(code(client.upload_url(&bad_name).await), (400, Some(ErrorType::InvalidObjectName)));
    let discard = api::DiscardDraftRequest { object_name: "big.bin".into() };
    assert_eq!(code(client.discard_draft(&discard).await), (404, Some(ErrorType::ObjectNotFound)));
    let bad_page = api::ListDraftsRequest { page_size: Some(0), ..Default::default() };
    assert_eq!(code(client.list_drafts(&bad_page).await), (400, Some(ErrorType::InvalidRequest)));
}

on_both_backends!(every_operation_round_trips_through_the_typed_client);

/// The typed client reads what confirm, stat and list say of an image, downloads its variants through the transfer
/// helper, and gets the server's refusals of variants as typed codes.
async fn image_variants_through_the_typed_client(backend: Backend) {
    let app = backend.spawn(&WITH_VARIANTS).await;
    let client = client(&app);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("phone.jpg");
    let located = located_jpeg(dir.path());
    std::fs::write(&file, &located).expect("write");
    transfer::upload_file(&client, &file, &UploadOptions::new("i/phone.jpg", "image/jpeg"), &NoProgress)
        .await
        .expect("uploads");
    let confirm = api::ConfirmUploadRequest { object_name: "i/phone.jpg".into(), ..Default::default() };
    let confirmed = client.confirm_upload(&confirm).await.expect("confirms");
    let image = confirmed.image.expect("an image report");
    assert_eq!((image.width, image.height, image.variants.len()), (64, 48, 2));
    // The GPS position was stripped: the answer gives the promoted bytes' size and checksum.
    let stripped = confirmed.size.expect("the promoted size");
    let uploaded = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&located))
    };
    assert!(confirmed.sha256.is_some_and(|sha256| sha256 != uploaded), "the promoted bytes differ");
    let request = api::ObjectRequest { object_name: "i/phone.jpg".into() };
    let stat = client.stat_object(&request).await.expect("stat");
    assert_eq!((stat.size, stat.image.as_ref()), (stripped, Some(&image)));
    let listed = client.list_all_objects(Some("i/")).await.expect("lists");
    assert_eq!(listed.into_iter().map(|o| o.image).collect::<Vec<_>>(), [Some(image.clone())]);

    for (variant, format) in
        [(&image.variants[0], image::ImageFormat::WebP), (&image.variants[1], image::ImageFormat::Png)]
    {
        let path = dir.path().join(&variant.name);
        let options = DownloadOptions { stage: None, variant: Some(variant.name.clone()) };
        let report =
            transfer::download(&client, "i/phone.jpg", &options, &Destination::File(path.clone()), &NoProgress)
                .await
                .expect("downloads the variant");
        assert_eq!(
            (report.stage, report.variant.as_deref(), report.size),
            (Stage::Main, Some(variant.name.as_str()), variant.size)
        );
        assert_eq!(decoded(&std::fs::read(&path).expect("written")), (format, variant.width, variant.height));
    }

    let ask = |variant: &str, stage| api::DownloadUrlRequest {
        object_name: "i/phone.jpg".into(),
        stage,
        variant: Some(variant.to_owned()),
        ..Default::default()
    };
    assert_eq!(code(client.download_url(&ask("huge", None)).await), (404, Some(ErrorType::VariantNotFound)));
    assert_eq!(code(client.download_url(&ask("../thumb", None)).await), (400, Some(ErrorType::InvalidRequest)));
    assert_eq!(
        code(client.download_url(&ask("thumb", Some(Stage::Draft))).await),
        (404, Some(ErrorType::VariantNotFound))
    );
    // Not an image: no variants.
    let note = dir.path().join("note.txt");
    std::fs::write(&note, b"plain").expect("write");
    transfer::upload_file(&client, &note, &UploadOptions::new("i/note.txt", "text/plain"), &NoProgress)
        .await
        .expect("uploads");
    let confirm = api::ConfirmUploadRequest { object_name: "i/note.txt".into(), ..Default::default() };
    let confirmed = client.confirm_upload(&confirm).await.expect("confirms");
    assert_eq!((confirmed.image, confirmed.size, confirmed.sha256), (None, None, None));
    let request = api::DownloadUrlRequest {
        object_name: "i/note.txt".into(),
        variant: Some("thumb".into()),
        ..Default::default()
    };
    assert_eq!(code(client.download_url(&request).await), (404, Some(ErrorType::VariantNotFound)));
}

on_both_backends!(image_variants_through_the_typed_client);

#[tokio::test]
async fn a_server_that_is_not_there_is_a_transient_transport_error() {
    let client = Client::new("http://127.0.0.1:9", None).expect("valid URL");
    let error = client.create_buckets().await.expect_err("nothing listens on port 9");
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert!(error.is_transient());
}

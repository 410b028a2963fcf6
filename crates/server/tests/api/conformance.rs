//! One contract, every backend: the local backend on a temporary folder and the S3 backend on SeaweedFS pass the
//! same checks through the `Storage` trait, with real HTTP requests to the URLs it signs.

use std::time::Duration;

use draftstore_storage::{
    BucketName, Conditions, ContentType, Error, Method, MoveOptions, ObjectKey, PresignRequest, Progress, Storage,
};
use time::OffsetDateTime;

use crate::helpers::{TestApp, serve_settings, spawn, spawn_app};
use crate::seaweed;

fn bucket(name: &str) -> BucketName {
    BucketName::parse(name).expect("valid bucket")
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("valid key")
}

async fn presign(
    storage: &dyn Storage,
    method: Method,
    bucket: &BucketName,
    key: &ObjectKey,
    ct: Option<&ContentType>,
) -> (String, Vec<(String, String)>) {
    let request = PresignRequest {
        method,
        bucket,
        key,
        now: OffsetDateTime::now_utc(),
        expires_in: Duration::from_secs(300),
        conditions: &Conditions { content_type: ct.cloned(), ..Conditions::default() },
    };
    let url = storage.presign(&request).await.expect("presign");
    assert_eq!(url.method, method);
    (url.url, url.headers)
}

async fn put(client: &reqwest::Client, url: &str, headers: &[(String, String)], body: &'static [u8]) -> u16 {
    let mut request = client.put(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(body).send().await.expect("sent").status().as_u16()
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String, Vec<u8>) {
    let response = client.get(url).send().await.expect("sent");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_owned()).unwrap_or_default();
    (status, content_type, response.bytes().await.expect("body").to_vec())
}

/// The checks every backend must pass. `main` and `draft` exist; `missing` does not.
async fn check(app: &TestApp, main: &str, draft: &str) {
    let storage = app.storage.as_ref();
    let client = &app.client;
    let (main, draft, missing) = (bucket(main), bucket(draft), bucket("no-such-bucket-here"));

    storage.create_bucket(&draft).await.expect("creating an existing bucket succeeds");
    storage.check_bucket(&draft).await.expect("bucket exists");
    assert!(matches!(storage.check_bucket(&missing).await, Err(Error::BucketNotFound { .. })));

    let (object, png) = (key("dir/sub/photo one.png"), ContentType::parse("image/png").expect("valid"));
    let (url, headers) = presign(storage, Method::Put, &draft, &object, Some(&png)).await;
    assert_eq!(headers, vec![("Content-Type".to_owned(), "image/png".to_owned())]);
    let wrong = vec![("Content-Type".to_owned(), "text/html".to_owned())];
    assert_eq!(put(client, &url, &wrong, b"<script>").await, 403, "the signed content type is enforced");
    assert_eq!(put(client, &url, &headers, b"png bytes").await, 200);

    let meta = storage.head(&draft, &object).await.expect("head");
    assert_eq!((meta.size, meta.content_type.as_str()), (9, "image/png"));
    assert!((OffsetDateTime::now_utc() - meta.last_modified).whole_seconds().abs() < 60);

    let (url, _) = presign(storage, Method::Get, &draft, &object, None).await;
    assert_eq!(get(client, &url).await, (200, "image/png".to_owned(), b"png bytes".to_vec()));
    let other = key("dir/sub/other.png");
    assert_eq!(get(client, &url.replace("photo%20one", "other")).await.0, 403, "a URL is bound to its key");
    assert!(storage.head(&draft, &other).await.expect_err("absent").is_not_found());
    assert!(matches!(storage.head(&missing, &other).await, Err(Error::BucketNotFound { .. })));

    storage.move_object(&draft, &main, &object, &MoveOptions::default(), &Progress::default()).await.expect("move");
    assert_eq!(storage.head(&main, &object).await.expect("moved").content_type.as_str(), "image/png");
    assert!(storage.head(&draft, &object).await.expect_err("moved away").is_not_found());
    assert!(
        storage
            .move_object(&draft, &main, &object, &MoveOptions::default(), &Progress::default())
            .await
            .expect_err("nothing to move")
            .is_not_found()
    );
    assert!(matches!(
        storage.move_object(&missing, &main, &object, &MoveOptions::default(), &Progress::default()).await,
        Err(Error::BucketNotFound { .. })
    ));

    storage.delete(&main, &object).await.expect("delete");
    assert!(storage.head(&main, &object).await.expect_err("deleted").is_not_found());
    storage.delete(&main, &object).await.expect("deleting again succeeds");
}

#[tokio::test]
async fn the_local_backend_passes_the_conformance_suite() {
    let app = spawn_app().await;
    check(&app, "main", "main-draft").await;
}

#[tokio::test]
async fn the_s3_backend_passes_the_conformance_suite_on_seaweedfs() {
    let weed = seaweed::shared().await;
    let name = seaweed::unique_bucket();
    let args = weed.s3_args(&name);
    let app = spawn(serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>())).await;
    check(&app, &name, &format!("{name}-draft")).await;
}

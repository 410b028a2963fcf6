//! The storage contract, one suite for every backend: the local backend on a temporary folder and the S3 backend
//! on SeaweedFS pass the same checks through `&dyn Storage`, with real HTTP requests to the URLs it signs. Every
//! method of the trait is called, and each guarantee its documentation states is checked: idempotent creates and
//! deletes, what "not found" and "already exists" look like, conditional moves and writes, multipart uploads,
//! records, listing and its paging, batch deletes, stale uploads. The store probe, a capability of its own, has its
//! contract checked by the same two tests (`probe::probe_conformance`).

use std::time::Duration;

use draftstore_storage::multipart::bare_etag;
use draftstore_storage::{
    BucketName, Checksum, CompletedPart, Conditions, ContentType, Declared, Error, Method, MoveOptions,
    MultipartRequest, ObjectKey, PresignRequest, Progress, StaleUploads, Storage, UploadId,
};
use futures_util::TryStreamExt;
use sha2::Digest;
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

    conditional_moves(storage, client, &main, &draft).await;
    renaming_moves(storage, client, &main, &draft).await;
    versions(storage, client, &main, &draft).await;
    multipart(storage, client, &draft).await;
    records(storage, &draft).await;
    reads(storage, client, &draft).await;
    listing(storage, client, &main).await;
    admin(storage, &draft).await;
    crate::probe::probe_conformance(app, &main, &draft).await;
}

/// Uploads `body` to `bucket/key` through a signed URL.
async fn upload(
    storage: &dyn Storage,
    client: &reqwest::Client,
    bucket: &BucketName,
    key: &ObjectKey,
    body: &'static [u8],
) {
    let (url, headers) = presign(storage, Method::Put, bucket, key, None).await;
    assert_eq!(put(client, &url, &headers, body).await, 200);
}

/// A move without overwrite refuses an existing destination; a move of a version that changed is refused; both
/// change nothing.
async fn conditional_moves(storage: &dyn Storage, client: &reqwest::Client, main: &BucketName, draft: &BucketName) {
    let object = key("moves/one.txt");
    upload(storage, client, main, &object, b"confirmed").await;
    upload(storage, client, draft, &object, b"newer draft").await;
    let keep = MoveOptions { no_overwrite: true, ..MoveOptions::default() };
    let refused = storage.move_object(draft, main, &object, &keep, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::AlreadyExists { .. })), "{refused:?}");
    assert_eq!(storage.head(main, &object).await.expect("kept").size, 9, "the destination is untouched");
    assert_eq!(storage.head(draft, &object).await.expect("kept").size, 11, "the source is untouched");

    let draft_meta = storage.head(draft, &object).await.expect("head");
    assert!(draft_meta.etag.is_some(), "an object has a version to move");
    let stale = MoveOptions { if_match: Some("\"not-this-version\"".to_owned()), ..MoveOptions::default() };
    let refused = storage.move_object(draft, main, &object, &stale, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::PreconditionFailed { .. })), "{refused:?}");
    assert_eq!(storage.head(main, &object).await.expect("kept").size, 9);

    let this = MoveOptions { if_match: draft_meta.etag.clone(), ..MoveOptions::default() };
    storage.move_object(draft, main, &object, &this, &Progress::default()).await.expect("the version asked for moves");
    assert_eq!(storage.head(main, &object).await.expect("replaced").size, 11, "overwrite is the default");
    assert!(storage.head(draft, &object).await.expect_err("moved").is_not_found());
    storage.delete(main, &object).await.expect("delete");
}

/// A move to another key with new metadata: the content type kept, the metadata replaced (any text, declared values
/// included), the last-modified time that of the move; a copy keeps its source; a signed download names the file.
async fn renaming_moves(storage: &dyn Storage, client: &reqwest::Client, main: &BucketName, draft: &BucketName) {
    let (object, renamed, copied) = (key("renames/draft.png"), key("renames/final/é 1.png"), key("renames/copy.png"));
    let png = ContentType::parse("image/png").expect("valid");
    let (url, headers) = presign(storage, Method::Put, draft, &object, Some(&png)).await;
    assert_eq!(put(client, &url, &headers, b"png bytes").await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut metadata = draftstore_storage::Metadata::new();
    metadata.insert("caption".to_owned(), "Café % 100 – naïve\"quoted\"".to_owned());
    metadata.insert("owner-id".to_owned(), "42".to_owned());
    let sha256 = Checksum::from_digest(&sha2::Sha256::digest(b"png bytes").into());
    Declared { length: None, sha256: Some(sha256.clone()) }.insert_into(&mut metadata);
    let copy = MoveOptions {
        to_key: Some(copied.clone()),
        metadata: Some(metadata.clone()),
        keep_source: true,
        no_overwrite: true,
        ..MoveOptions::default()
    };
    storage.move_object(draft, main, &object, &copy, &Progress::default()).await.expect("copied");
    storage.head(draft, &object).await.expect("a copy keeps its source");
    let refused = storage.move_object(draft, main, &object, &copy, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::AlreadyExists { .. })), "{refused:?}");

    let uploaded = storage.head(draft, &object).await.expect("head").last_modified;
    let rename = MoveOptions { to_key: Some(renamed.clone()), metadata: Some(metadata), ..MoveOptions::default() };
    storage.move_object(draft, main, &object, &rename, &Progress::default()).await.expect("moved");
    assert!(storage.head(draft, &object).await.expect_err("moved away").is_not_found());
    for target in [&renamed, &copied] {
        let meta = storage.head(main, target).await.expect("moved under its new key");
        assert_eq!((meta.size, meta.content_type.as_str()), (9, "image/png"));
        assert_eq!(meta.metadata.get("caption").map(String::as_str), Some("Café % 100 – naïve\"quoted\""));
        assert_eq!(meta.metadata.get("owner-id").map(String::as_str), Some("42"));
        assert_eq!(meta.declared.sha256.as_ref(), Some(&sha256), "declared values travel as metadata");
        assert!(!meta.metadata.keys().any(|name| name.starts_with("draftstore-")), "{:?}", meta.metadata);
    }
    let moved = storage.head(main, &renamed).await.expect("head").last_modified;
    assert!(moved > uploaded, "last modified at the move ({moved}), not the upload ({uploaded})");
    let (_, first) = storage.head_with_first_bytes(main, &renamed, 3).await.expect("read");
    assert_eq!(&first[..], b"png");
    assert_eq!(storage.head_with_first_bytes(main, &renamed, 3).await.expect("read").0.metadata.len(), 2);

    let disposition = "attachment; filename*=UTF-8''%C3%A9%201.png".to_owned();
    let request = PresignRequest {
        conditions: &Conditions { disposition: Some(disposition.clone()), ..Conditions::default() },
        ..presign_request(Method::Get, main, &renamed)
    };
    let url = storage.presign(&request).await.expect("signed");
    let response = client.get(&url.url).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    let header = response.headers().get("content-disposition").map(|v| v.to_str().unwrap_or_default().to_owned());
    assert_eq!(header, Some(disposition));
    storage.delete_many(main, &[renamed, copied]).await.expect("deleted");
}

/// Versions: every write of other bytes has another etag (on the local backend every write has its own, even of
/// the same bytes); a download signed for one version serves only it; deletes bound to a version leave another;
/// a listing names the version it saw; a move names its object with its origin; exclusive moves move a version
/// once.
async fn versions(storage: &dyn Storage, client: &reqwest::Client, main: &BucketName, draft: &BucketName) {
    let object = key("versions/one.txt");
    upload(storage, client, draft, &object, b"first").await;
    let first = storage.head(draft, &object).await.expect("head");
    upload(storage, client, draft, &object, b"first").await;
    let again = storage.head(draft, &object).await.expect("head");
    if storage.exclusive_moves() {
        assert_ne!(first.etag, again.etag, "the local backend names every write");
    }
    upload(storage, client, draft, &object, b"other").await;
    let other = storage.head(draft, &object).await.expect("head");
    assert_ne!(first.etag, other.etag, "other bytes of the same size are another version");
    let current = other.etag.clone().expect("an etag");

    // A download signed for a version serves it, and only it.
    for (etag, expected) in [(current.clone(), 200), (first.etag.clone().expect("an etag"), 412)] {
        let conditions = Conditions { if_match: Some(etag), ..Conditions::default() };
        let request = PresignRequest { conditions: &conditions, ..presign_request(Method::Get, draft, &object) };
        let url = storage.presign(&request).await.expect("signed");
        let mut get = client.get(&url.url);
        for (name, value) in &url.headers {
            get = get.header(name, value);
        }
        let response = get.send().await.expect("sent");
        assert_eq!(response.status().as_u16(), expected, "{url:?}");
        if expected == 200 {
            assert_eq!(response.bytes().await.expect("body"), "other");
        }
        if !url.headers.is_empty() {
            assert_eq!(client.get(&url.url).send().await.expect("sent").status(), 403, "the version is signed in");
        }
    }

    // Deletes bound to a version.
    assert!(!storage.delete_version(draft, &object, first.etag.as_deref().expect("an etag")).await.expect("answered"));
    assert_eq!(storage.head(draft, &object).await.expect("kept").etag, other.etag, "another version is kept");
    assert!(storage.delete_version(draft, &object, &current).await.expect("deleted"));
    assert!(storage.head(draft, &object).await.expect_err("deleted").is_not_found());
    assert!(!storage.delete_version(draft, &object, &current).await.expect("nothing to delete"));
    let (kept, gone, never) = (key("versions/kept.txt"), key("versions/gone.txt"), key("versions/never.txt"));
    upload(storage, client, draft, &kept, b"old").await;
    let stale = storage.head(draft, &kept).await.expect("head").etag.expect("an etag");
    upload(storage, client, draft, &kept, b"new").await;
    upload(storage, client, draft, &gone, b"x").await;
    let page = storage.list_prefix(draft, "versions/", None, 10).await.expect("listed");
    let listed = page.objects.iter().find(|o| o.key == gone).expect("listed");
    assert_eq!(listed.etag, storage.head(draft, &gone).await.expect("head").etag, "a listing names the version");
    let batch =
        [(kept.clone(), stale), (gone.clone(), listed.etag.clone().expect("an etag")), (never.clone(), current)];
    let outcome = storage.delete_versions(draft, &batch).await.expect("deleted");
    assert!(outcome.failures.is_empty(), "{outcome:?}");
    let mut changed = outcome.changed.clone();
    changed.sort();
    assert_eq!(changed, [kept.clone(), never], "the key written again, and the one holding nothing, are left");
    assert_eq!(storage.head(draft, &kept).await.expect("kept").size, 3);
    assert!(storage.head(draft, &gone).await.expect_err("deleted").is_not_found());

    // A move names its object: the origin given, or where the file itself moved, its etag.
    let uploaded = storage.head(draft, &kept).await.expect("head");
    assert_ne!(uploaded.origin.as_deref(), Some("move-1"), "a write that no move made has no move's name");
    let named =
        MoveOptions { if_match: uploaded.etag.clone(), origin: Some("move-1".to_owned()), ..MoveOptions::default() };
    storage.move_object(draft, main, &kept, &named, &Progress::default()).await.expect("moved");
    let moved = storage.head(main, &kept).await.expect("moved");
    assert!(moved.origin.as_deref() == Some("move-1") || moved.origin == uploaded.etag, "{moved:?}");
    assert!(!moved.metadata.keys().any(|name| name.starts_with("draftstore-")), "{:?}", moved.metadata);
    upload(storage, client, draft, &kept, b"new").await;
    let renamed = MoveOptions {
        to_key: Some(key("versions/renamed.txt")),
        metadata: Some(draftstore_storage::Metadata::new()),
        origin: Some("move-2".to_owned()),
        ..MoveOptions::default()
    };
    storage.move_object(draft, main, &kept, &renamed, &Progress::default()).await.expect("moved");
    let copied = storage.head(main, &key("versions/renamed.txt")).await.expect("moved");
    assert_eq!(copied.origin.as_deref(), Some("move-2"), "a move that writes the metadata keeps its name");
    assert!(copied.metadata.is_empty(), "{:?}", copied.metadata);

    // Two moves of one version to two keys at once: where moves are exclusive, one of them only.
    for round in 0..5 {
        let source = key(&format!("versions/race-{round}.txt"));
        upload(storage, client, draft, &source, b"raced").await;
        let etag = storage.head(draft, &source).await.expect("head").etag;
        let to = |name: &str| MoveOptions {
            if_match: etag.clone(),
            to_key: Some(key(&format!("versions/race-{round}-{name}.txt"))),
            ..MoveOptions::default()
        };
        let (a, b, progress) = (to("a"), to("b"), Progress::default());
        let (a, b) = tokio::join!(
            storage.move_object(draft, main, &source, &a, &progress),
            storage.move_object(draft, main, &source, &b, &progress)
        );
        assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
        if storage.exclusive_moves() {
            assert!(a.is_err() || b.is_err(), "an exclusive move moved one version twice");
            let lost = if a.is_err() { a } else { b };
            assert!(lost.expect_err("lost").is_not_found());
        }
    }
    let leftovers: Vec<_> = storage.list_prefix(main, "versions/", None, 100).await.expect("listed").objects;
    let leftovers: Vec<_> = leftovers.into_iter().map(|o| o.key).collect();
    storage.delete_many(main, &leftovers).await.expect("deleted");
}

/// A multipart upload: parts signed and sent, listed by ascending number, completed into one object with the
/// content type and declarations given at the start; a bad part list is refused and the upload kept; an aborted
/// or completed upload is not found.
async fn multipart(storage: &dyn Storage, client: &reqwest::Client, bucket: &BucketName) {
    let object = key("multi/part.bin");
    let ct = ContentType::parse("application/x-test").expect("valid");
    let declared = Declared { length: Some(5 * 1024 * 1024 + 3), sha256: None };
    let id = storage.create_multipart(bucket, &object, &ct, &declared, Some(5 * 1024 * 1024)).await.expect("start");
    storage.check_upload(bucket, &object, &id).await.expect("the upload exists");
    assert!(storage.list_parts(bucket, &object, &id).await.expect("listed").is_empty());

    static FIRST: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| vec![b'a'; 5 * 1024 * 1024]);
    let mut etags = Vec::new();
    for (number, body) in [(2u32, &b"end"[..]), (1, FIRST.as_slice())] {
        etags.push(send_part(storage, client, bucket, &object, &id, number, body).await);
    }
    etags.sort_by_key(|part| part.number);
    let listed = storage.list_parts(bucket, &object, &id).await.expect("listed");
    let numbers: Vec<_> = listed.iter().map(|part| part.number).collect();
    assert_eq!(numbers, [1, 2], "parts by ascending number");
    assert_eq!((listed[0].size, listed[1].size), (5 * 1024 * 1024, 3));

    let wrong = [CompletedPart { number: 1, etag: "0123456789abcdef0123456789abcdef".to_owned() }, etags[1].clone()];
    let refused = storage.complete_multipart(bucket, &object, &id, &wrong, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::InvalidParts { .. })), "{refused:?}");
    assert!(storage.head(bucket, &object).await.expect_err("nothing assembled").is_not_found());
    storage.check_upload(bucket, &object, &id).await.expect("a refused completion keeps the upload");

    storage.complete_multipart(bucket, &object, &id, &etags, &Progress::default()).await.expect("completed");
    let meta = storage.head(bucket, &object).await.expect("assembled");
    assert_eq!((meta.size, meta.content_type.as_str()), (5 * 1024 * 1024 + 3, "application/x-test"));
    assert_eq!(meta.declared.length, declared.length, "the declarations are kept with the object");
    let ended = storage.list_parts(bucket, &object, &id).await;
    assert!(matches!(ended, Err(Error::UploadNotFound { .. })), "{ended:?}");

    let aborted = storage.create_multipart(bucket, &object, &ct, &Declared::default(), None).await.expect("start");
    storage.abort_multipart(bucket, &object, &aborted).await.expect("aborted");
    assert!(matches!(storage.check_upload(bucket, &object, &aborted).await, Err(Error::UploadNotFound { .. })));
    assert!(matches!(storage.abort_multipart(bucket, &object, &aborted).await, Err(Error::UploadNotFound { .. })));
    assert_eq!(storage.head(bucket, &object).await.expect("an abort leaves the object").size, meta.size);

    // URLs for an uploader that speaks S3's own multipart API: each request decides its method.
    let request = presign_request(Method::Get, bucket, &object);
    let create = storage.presign_multipart(&request, MultipartRequest::Create).await.expect("signed");
    let list = storage.presign_multipart(&request, MultipartRequest::ListParts(&id)).await.expect("signed");
    let abort = storage.presign_multipart(&request, MultipartRequest::Abort(&id)).await.expect("signed");
    assert_eq!((create.method, list.method, abort.method), (Method::Post, Method::Get, Method::Delete));
    storage.delete(bucket, &object).await.expect("delete");

    // Where a backend says it verifies a declared SHA-256 of the whole, a mismatch assembles nothing.
    if storage.verifies_multipart_sha256() {
        let checked = key("multi/checked.bin");
        let empty = Checksum::parse("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").expect("the SHA-256 of nothing");
        let declared = Declared { length: None, sha256: Some(empty) };
        let id = storage.create_multipart(bucket, &checked, &ct, &declared, None).await.expect("start");
        let part = send_part(storage, client, bucket, &checked, &id, 1, b"not nothing").await;
        let refused = storage.complete_multipart(bucket, &checked, &id, &[part], &Progress::default()).await;
        assert!(matches!(refused, Err(Error::InvalidParts { .. })), "{refused:?}");
        assert!(storage.head(bucket, &checked).await.expect_err("nothing assembled").is_not_found());
        storage.abort_multipart(bucket, &checked, &id).await.expect("aborted");
    }
}

/// Uploads part `number` of an upload through the URL the backend signs for it; the part as completion names it.
async fn send_part(
    storage: &dyn Storage,
    client: &reqwest::Client,
    bucket: &BucketName,
    object: &ObjectKey,
    id: &UploadId,
    number: u32,
    body: &[u8],
) -> CompletedPart {
    let request = presign_request(Method::Put, bucket, object);
    let url = storage.presign_part(&request, id, number).await.expect("part URL");
    assert_eq!(url.method, Method::Put);
    let mut put = client.put(&url.url);
    for (name, value) in &url.headers {
        put = put.header(name, value);
    }
    let response = put.body(body.to_vec()).send().await.expect("sent");
    assert_eq!(response.status(), 200, "part {number}");
    let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_owned();
    CompletedPart { number, etag: bare_etag(&etag).to_owned() }
}

/// Records: written whole, read back; `if_absent` leaves an existing record and says so; a missing record is not
/// found.
async fn records(storage: &dyn Storage, bucket: &BucketName) {
    let record = key("records/lease-1");
    assert!(storage.get_record(bucket, &record).await.expect_err("absent").is_not_found());
    assert!(storage.put_record(bucket, &record, "first".into(), true).await.expect("written"));
    assert!(!storage.put_record(bucket, &record, "second".into(), true).await.expect("answered"), "if_absent");
    assert_eq!(storage.get_record(bucket, &record).await.expect("read"), "first");
    assert!(storage.put_record(bucket, &record, "third".into(), false).await.expect("replaced"));
    assert_eq!(storage.get_record(bucket, &record).await.expect("read"), "third");
    storage.delete(bucket, &record).await.expect("delete");
    assert!(storage.get_record(bucket, &record).await.expect_err("deleted").is_not_found());
}

/// Reads: the whole object or its first bytes, chunk by chunk; only the version asked for; an empty object's first
/// bytes are none; a missing object is not found.
async fn reads(storage: &dyn Storage, client: &reqwest::Client, bucket: &BucketName) {
    async fn collect(chunks: draftstore_storage::Result<draftstore_storage::ByteChunks>) -> Vec<u8> {
        use futures_util::TryStreamExt;
        let chunks: Vec<_> = chunks.expect("read").try_collect().await.expect("the whole stream");
        chunks.concat()
    }
    let object = key("reads/body.bin");
    let body: &'static [u8] =
        Box::leak((0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>().into_boxed_slice());
    upload(storage, client, bucket, &object, body).await;
    let etag = storage.head(bucket, &object).await.expect("head").etag;
    assert_eq!(collect(storage.read(bucket, &object, None, None).await).await, body);
    assert_eq!(collect(storage.read(bucket, &object, Some(4096), etag.as_deref()).await).await, body[..4096]);
    assert_eq!(collect(storage.read(bucket, &object, Some(1 << 20), None).await).await, body, "shorter than asked");
    let stale = storage.read(bucket, &object, Some(16), Some("\"not-this-version\"")).await;
    assert!(matches!(stale.map(drop), Err(Error::PreconditionFailed { .. })));

    let empty = key("reads/empty.bin");
    upload(storage, client, bucket, &empty, b"").await;
    assert!(collect(storage.read(bucket, &empty, Some(4096), None).await).await.is_empty());
    assert!(collect(storage.read(bucket, &empty, None, None).await).await.is_empty());
    let missing = storage.read(bucket, &key("reads/missing.bin"), Some(16), None).await;
    assert!(missing.map(drop).expect_err("absent").is_not_found());

    // The metadata and the first bytes together.
    let (meta, first) = storage.head_with_first_bytes(bucket, &object, 4096).await.expect("head and first bytes");
    assert_eq!((meta.size, &first[..]), (body.len() as u64, &body[..4096]));
    let (meta, first) = storage.head_with_first_bytes(bucket, &empty, 4096).await.expect("an empty object");
    assert_eq!((meta.size, first.len()), (0, 0));
    let missing = storage.head_with_first_bytes(bucket, &key("reads/missing.bin"), 16).await;
    assert!(missing.expect_err("absent").is_not_found());
    // With a declared SHA-256, the store's checksum comes too, as head gives it.
    let summed = key("reads/summed.bin");
    let checksum = draftstore_storage::Checksum::from_digest(&sha2::Sha256::digest(body).into());
    let conditions = Conditions { checksum_sha256: Some(checksum.clone()), ..Conditions::default() };
    let request = PresignRequest { conditions: &conditions, ..presign_request(Method::Put, bucket, &summed) };
    let url = storage.presign(&request).await.expect("presign");
    assert_eq!(put(client, &url.url, &url.headers, body).await, 200);
    let (meta, first) = storage.head_with_first_bytes(bucket, &summed, 16).await.expect("head and first bytes");
    assert_eq!(meta, storage.head(bucket, &summed).await.expect("head"));
    assert_eq!((meta.declared.sha256.as_ref(), &first[..]), (Some(&checksum), &body[..16]));
    storage.delete(bucket, &summed).await.expect("delete");
    storage.delete(bucket, &object).await.expect("delete");
    storage.delete(bucket, &empty).await.expect("delete");
}

/// Listing: the whole bucket streamed, a prefix paged without repeats or gaps, a batch delete that counts missing
/// objects as deleted.
async fn listing(storage: &dyn Storage, client: &reqwest::Client, bucket: &BucketName) {
    let names = ["list/a.txt", "list/b/c.txt", "list/b/d.txt", "list/e.txt", "other/f.txt"];
    for name in names {
        upload(storage, client, bucket, &key(name), b"x").await;
    }
    let pages: Vec<_> = storage.list(bucket).try_collect().await.expect("listed");
    let mut all: Vec<_> = pages.iter().flat_map(|page| page.objects.iter().map(|o| o.key.to_string())).collect();
    all.sort();
    assert_eq!(all, names, "the bucket's objects, each once");
    assert!(pages.iter().all(|page| page.objects.iter().all(|o| o.size == 1)));

    let (mut seen, mut token) = (Vec::new(), None::<String>);
    loop {
        let page = storage.list_prefix(bucket, "list/", token.as_deref(), 2).await.expect("a page");
        assert!(page.objects.len() <= 2, "at most the limit");
        seen.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, names[..4], "every object under the prefix, once, over the pages");
    let bad = storage.list_prefix(bucket, "list/", Some("\u{1}not a token"), 2).await;
    assert!(matches!(bad, Err(Error::InvalidKey { .. })), "{bad:?}");

    let keys: Vec<_> = names.iter().map(|name| key(name)).chain([key("list/never-written")]).collect();
    assert_eq!(storage.delete_many(bucket, &keys).await.expect("deleted"), []);
    let left: Vec<_> = storage.list(bucket).try_collect().await.expect("listed");
    assert!(left.iter().all(|page| page.objects.iter().all(|o| !names.contains(&o.key.as_str()))));
}

/// Buckets' rules and abandoned uploads: what a backend cannot do it says, never fails.
async fn admin(storage: &dyn Storage, bucket: &BucketName) {
    storage.allow_browser_uploads(bucket, &["https://app.example.com".to_owned()]).await.expect("CORS rule");
    storage.install_lifecycle(bucket, 2).await.expect("a rule, or false where there are none");

    let object = key("stale/upload.bin");
    let ct = ContentType::octet_stream();
    let id: UploadId = storage.create_multipart(bucket, &object, &ct, &Declared::default(), None).await.expect("start");
    let now = OffsetDateTime::now_utc();
    let young = StaleUploads {
        multipart_before: now - Duration::from_secs(3600),
        staging_before: now - Duration::from_secs(3600),
    };
    storage.remove_stale_uploads(bucket, young).await.expect("nothing stale yet");
    storage.check_upload(bucket, &object, &id).await.expect("a young upload is kept");
    let later = now + Duration::from_secs(3600);
    let old = StaleUploads { multipart_before: later, staging_before: later };
    assert!(storage.remove_stale_uploads(bucket, old).await.expect("removed") >= 1);
    assert!(matches!(storage.check_upload(bucket, &object, &id).await, Err(Error::UploadNotFound { .. })));
}

fn presign_request<'a>(method: Method, bucket: &'a BucketName, key: &'a ObjectKey) -> PresignRequest<'a> {
    static NONE: std::sync::LazyLock<Conditions> = std::sync::LazyLock::new(Conditions::default);
    PresignRequest {
        method,
        bucket,
        key,
        now: OffsetDateTime::now_utc(),
        expires_in: Duration::from_secs(300),
        conditions: &NONE,
    }
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

/// The suite above reaches every method the trait declares: a method added to the trait fails this until the
/// contract checks it.
#[test]
fn the_suite_calls_every_method_of_the_trait() {
    let declared = include_str!("../../../storage/src/storage.rs");
    let (_, body) = declared.split_once("pub trait Storage").expect("the trait is declared in storage.rs");
    let suite = include_str!("conformance.rs");
    let methods: Vec<_> = body
        .split("fn ")
        .skip(1)
        .filter_map(|rest| rest.split(['(', '<']).next())
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(methods.len() >= 20, "{methods:?}");
    for method in methods {
        assert!(suite.contains(&format!("storage.{method}(")), "the contract suite never calls Storage::{method}");
    }
}

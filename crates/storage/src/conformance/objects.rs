//! The objects capability: looked up, moved (conditionally, renamed, copied), versions, deletes, reads.

use std::time::Duration;

use sha2::Digest;
use time::OffsetDateTime;

use super::{MISSING, Target, bucket, key, presign, presign_request, put, upload};
use crate::{
    BucketName, Checksum, Conditions, ContentType, Declared, Error, Method, MoveOptions, Moves, PresignRequest,
    Progress, Store,
};

/// [`ObjectStore`](crate::ObjectStore)'s objects: head, moves and their conditions, versions and the deletes bound
/// to them, reads whole or in part; what "not found" looks like for an object and for a bucket.
pub async fn objects(target: &Target<'_>) {
    let (store, client, main, draft) = (target.store, &target.client, target.main, target.draft);
    let missing = bucket(MISSING);
    let (object, png) = (key("dir/sub/photo one.png"), ContentType::parse("image/png").expect("valid"));
    let (url, headers) = presign(store, Method::Put, draft, &object, Some(&png)).await;
    assert_eq!(put(client, &url, &headers, b"png bytes").await, 200);

    let meta = store.objects.head(draft, &object).await.expect("head");
    assert_eq!((meta.size, meta.content_type.as_str()), (9, "image/png"));
    assert!((OffsetDateTime::now_utc() - meta.last_modified).whole_seconds().abs() < 60);
    let other = key("dir/sub/other.png");
    assert!(store.objects.head(draft, &other).await.expect_err("absent").is_not_found());
    assert!(matches!(store.objects.head(&missing, &other).await, Err(Error::BucketNotFound { .. })));

    store.objects.move_object(draft, main, &object, &MoveOptions::default(), &Progress::default()).await.expect("move");
    assert_eq!(store.objects.head(main, &object).await.expect("moved").content_type.as_str(), "image/png");
    assert!(store.objects.head(draft, &object).await.expect_err("moved away").is_not_found());
    assert!(
        store
            .objects
            .move_object(draft, main, &object, &MoveOptions::default(), &Progress::default())
            .await
            .expect_err("nothing to move")
            .is_not_found()
    );
    assert!(matches!(
        store.objects.move_object(&missing, main, &object, &MoveOptions::default(), &Progress::default()).await,
        Err(Error::BucketNotFound { .. })
    ));

    store.objects.delete(main, &object).await.expect("delete");
    assert!(store.objects.head(main, &object).await.expect_err("deleted").is_not_found());
    store.objects.delete(main, &object).await.expect("deleting again succeeds");

    conditional_moves(store, client, main, draft).await;
    renaming_moves(store, client, main, draft).await;
    versions(store, client, main, draft).await;
    reads(store, client, draft).await;
}

/// A move without overwrite refuses an existing destination; a move of a version that changed is refused; both
/// change nothing.
async fn conditional_moves(store: &Store, client: &reqwest::Client, main: &BucketName, draft: &BucketName) {
    let object = key("moves/one.txt");
    upload(store, client, main, &object, b"confirmed").await;
    upload(store, client, draft, &object, b"newer draft").await;
    let keep = MoveOptions { no_overwrite: true, ..MoveOptions::default() };
    let refused = store.objects.move_object(draft, main, &object, &keep, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::AlreadyExists { .. })), "{refused:?}");
    assert_eq!(store.objects.head(main, &object).await.expect("kept").size, 9, "the destination is untouched");
    assert_eq!(store.objects.head(draft, &object).await.expect("kept").size, 11, "the source is untouched");

    let draft_meta = store.objects.head(draft, &object).await.expect("head");
    assert!(draft_meta.etag.is_some(), "an object has a version to move");
    let stale = MoveOptions { if_match: Some("\"not-this-version\"".to_owned()), ..MoveOptions::default() };
    let refused = store.objects.move_object(draft, main, &object, &stale, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::PreconditionFailed { .. })), "{refused:?}");
    assert_eq!(store.objects.head(main, &object).await.expect("kept").size, 9);

    let this = MoveOptions { if_match: draft_meta.etag.clone(), ..MoveOptions::default() };
    store
        .objects
        .move_object(draft, main, &object, &this, &Progress::default())
        .await
        .expect("the version asked for moves");
    assert_eq!(store.objects.head(main, &object).await.expect("replaced").size, 11, "overwrite is the default");
    assert!(store.objects.head(draft, &object).await.expect_err("moved").is_not_found());
    store.objects.delete(main, &object).await.expect("delete");
}

/// A move to another key with new metadata: the content type kept, the metadata replaced (any text, declared values
/// included), the last-modified time that of the move; a copy keeps its source; a signed download names the file.
async fn renaming_moves(store: &Store, client: &reqwest::Client, main: &BucketName, draft: &BucketName) {
    let (object, renamed, copied) = (key("renames/draft.png"), key("renames/final/é 1.png"), key("renames/copy.png"));
    let png = ContentType::parse("image/png").expect("valid");
    let (url, headers) = presign(store, Method::Put, draft, &object, Some(&png)).await;
    assert_eq!(put(client, &url, &headers, b"png bytes").await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut metadata = crate::Metadata::new();
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
    store.objects.move_object(draft, main, &object, &copy, &Progress::default()).await.expect("copied");
    store.objects.head(draft, &object).await.expect("a copy keeps its source");
    let refused = store.objects.move_object(draft, main, &object, &copy, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::AlreadyExists { .. })), "{refused:?}");

    let uploaded = store.objects.head(draft, &object).await.expect("head").last_modified;
    let rename = MoveOptions { to_key: Some(renamed.clone()), metadata: Some(metadata), ..MoveOptions::default() };
    store.objects.move_object(draft, main, &object, &rename, &Progress::default()).await.expect("moved");
    assert!(store.objects.head(draft, &object).await.expect_err("moved away").is_not_found());
    for target in [&renamed, &copied] {
        let meta = store.objects.head(main, target).await.expect("moved under its new key");
        assert_eq!((meta.size, meta.content_type.as_str()), (9, "image/png"));
        assert_eq!(meta.metadata.get("caption").map(String::as_str), Some("Café % 100 – naïve\"quoted\""));
        assert_eq!(meta.metadata.get("owner-id").map(String::as_str), Some("42"));
        assert_eq!(meta.declared.sha256.as_ref(), Some(&sha256), "declared values travel as metadata");
        assert!(!meta.metadata.keys().any(|name| name.starts_with("draftstore-")), "{:?}", meta.metadata);
    }
    let moved = store.objects.head(main, &renamed).await.expect("head").last_modified;
    assert!(moved > uploaded, "last modified at the move ({moved}), not the upload ({uploaded})");
    let (_, first) = store.objects.head_with_first_bytes(main, &renamed, 3).await.expect("read");
    assert_eq!(&first[..], b"png");
    assert_eq!(store.objects.head_with_first_bytes(main, &renamed, 3).await.expect("read").0.metadata.len(), 2);

    let disposition = "attachment; filename*=UTF-8''%C3%A9%201.png".to_owned();
    let request = PresignRequest {
        conditions: &Conditions { disposition: Some(disposition.clone()), ..Conditions::default() },
        ..presign_request(Method::Get, main, &renamed)
    };
    let url = store.signer.presign(&request).await.expect("signed");
    let response = client.get(&url.url).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    let header = response.headers().get("content-disposition").map(|v| v.to_str().unwrap_or_default().to_owned());
    assert_eq!(header, Some(disposition));
    store.objects.delete_many(main, &[renamed, copied]).await.expect("deleted");
}

/// Versions: every write of other bytes has another etag (on the local backend every write has its own, even of
/// the same bytes); a download signed for one version serves only it; deletes bound to a version leave another;
/// a listing names the version it saw; a move names its object with its origin; exclusive moves move a version
/// once.
async fn versions(store: &Store, client: &reqwest::Client, main: &BucketName, draft: &BucketName) {
    let object = key("versions/one.txt");
    upload(store, client, draft, &object, b"first").await;
    let first = store.objects.head(draft, &object).await.expect("head");
    upload(store, client, draft, &object, b"first").await;
    let again = store.objects.head(draft, &object).await.expect("head");
    if store.objects.moves() == Moves::Exclusive {
        assert_ne!(first.etag, again.etag, "the local backend names every write");
    }
    upload(store, client, draft, &object, b"other").await;
    let other = store.objects.head(draft, &object).await.expect("head");
    assert_ne!(first.etag, other.etag, "other bytes of the same size are another version");
    let current = other.etag.clone().expect("an etag");

    // A download signed for a version serves it, and only it.
    for (etag, expected) in [(current.clone(), 200), (first.etag.clone().expect("an etag"), 412)] {
        let conditions = Conditions { if_match: Some(etag), ..Conditions::default() };
        let request = PresignRequest { conditions: &conditions, ..presign_request(Method::Get, draft, &object) };
        let url = store.signer.presign(&request).await.expect("signed");
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
    assert!(
        !store.objects.delete_version(draft, &object, first.etag.as_deref().expect("an etag")).await.expect("answered")
    );
    assert_eq!(store.objects.head(draft, &object).await.expect("kept").etag, other.etag, "another version is kept");
    assert!(store.objects.delete_version(draft, &object, &current).await.expect("deleted"));
    assert!(store.objects.head(draft, &object).await.expect_err("deleted").is_not_found());
    assert!(!store.objects.delete_version(draft, &object, &current).await.expect("nothing to delete"));
    let (kept, gone, never) = (key("versions/kept.txt"), key("versions/gone.txt"), key("versions/never.txt"));
    upload(store, client, draft, &kept, b"old").await;
    let stale = store.objects.head(draft, &kept).await.expect("head").etag.expect("an etag");
    upload(store, client, draft, &kept, b"new").await;
    upload(store, client, draft, &gone, b"x").await;
    let page = store.objects.list_prefix(draft, "versions/", None, 10).await.expect("listed");
    let listed = page.objects.iter().find(|o| o.key == gone).expect("listed");
    assert_eq!(listed.etag, store.objects.head(draft, &gone).await.expect("head").etag, "a listing names the version");
    let batch =
        [(kept.clone(), stale), (gone.clone(), listed.etag.clone().expect("an etag")), (never.clone(), current)];
    let outcome = store.objects.delete_versions(draft, &batch).await.expect("deleted");
    assert!(outcome.failures.is_empty(), "{outcome:?}");
    let mut changed = outcome.changed.clone();
    changed.sort();
    assert_eq!(changed, [kept.clone(), never], "the key written again, and the one holding nothing, are left");
    assert_eq!(store.objects.head(draft, &kept).await.expect("kept").size, 3);
    assert!(store.objects.head(draft, &gone).await.expect_err("deleted").is_not_found());

    // A move names its object: the origin given, or where the file itself moved, its etag.
    let uploaded = store.objects.head(draft, &kept).await.expect("head");
    assert_ne!(uploaded.origin.as_deref(), Some("move-1"), "a write that no move made has no move's name");
    let named =
        MoveOptions { if_match: uploaded.etag.clone(), origin: Some("move-1".to_owned()), ..MoveOptions::default() };
    store.objects.move_object(draft, main, &kept, &named, &Progress::default()).await.expect("moved");
    let moved = store.objects.head(main, &kept).await.expect("moved");
    assert!(moved.origin.as_deref() == Some("move-1") || moved.origin == uploaded.etag, "{moved:?}");
    assert!(!moved.metadata.keys().any(|name| name.starts_with("draftstore-")), "{:?}", moved.metadata);
    upload(store, client, draft, &kept, b"new").await;
    let renamed = MoveOptions {
        to_key: Some(key("versions/renamed.txt")),
        metadata: Some(crate::Metadata::new()),
        origin: Some("move-2".to_owned()),
        ..MoveOptions::default()
    };
    store.objects.move_object(draft, main, &kept, &renamed, &Progress::default()).await.expect("moved");
    let copied = store.objects.head(main, &key("versions/renamed.txt")).await.expect("moved");
    assert_eq!(copied.origin.as_deref(), Some("move-2"), "a move that writes the metadata keeps its name");
    assert!(copied.metadata.is_empty(), "{:?}", copied.metadata);

    // Two moves of one version to two keys at once: where moves are exclusive, one of them only.
    for round in 0..5 {
        let source = key(&format!("versions/race-{round}.txt"));
        upload(store, client, draft, &source, b"raced").await;
        let etag = store.objects.head(draft, &source).await.expect("head").etag;
        let to = |name: &str| MoveOptions {
            if_match: etag.clone(),
            to_key: Some(key(&format!("versions/race-{round}-{name}.txt"))),
            ..MoveOptions::default()
        };
        let (a, b, progress) = (to("a"), to("b"), Progress::default());
        let (a, b) = tokio::join!(
            store.objects.move_object(draft, main, &source, &a, &progress),
            store.objects.move_object(draft, main, &source, &b, &progress)
        );
        assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
        if store.objects.moves() == Moves::Exclusive {
            assert!(a.is_err() || b.is_err(), "an exclusive move moved one version twice");
            let lost = if a.is_err() { a } else { b };
            assert!(lost.expect_err("lost").is_not_found());
        }
    }
    let leftovers: Vec<_> = store.objects.list_prefix(main, "versions/", None, 100).await.expect("listed").objects;
    let leftovers: Vec<_> = leftovers.into_iter().map(|o| o.key).collect();
    store.objects.delete_many(main, &leftovers).await.expect("deleted");
}

/// Reads: the whole object or its first bytes, chunk by chunk; only the version asked for; an empty object's first
/// bytes are none; a missing object is not found.
async fn reads(store: &Store, client: &reqwest::Client, bucket: &BucketName) {
    async fn collect(chunks: crate::Result<crate::ByteChunks>) -> Vec<u8> {
        use futures_util::TryStreamExt;
        let chunks: Vec<_> = chunks.expect("read").try_collect().await.expect("the whole stream");
        chunks.concat()
    }
    let object = key("reads/body.bin");
    let body: &'static [u8] =
        Box::leak((0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>().into_boxed_slice());
    upload(store, client, bucket, &object, body).await;
    let etag = store.objects.head(bucket, &object).await.expect("head").etag;
    assert_eq!(collect(store.objects.read(bucket, &object, None, None).await).await, body);
    assert_eq!(collect(store.objects.read(bucket, &object, Some(4096), etag.as_deref()).await).await, body[..4096]);
    assert_eq!(
        collect(store.objects.read(bucket, &object, Some(1 << 20), None).await).await,
        body,
        "shorter than asked"
    );
    let stale = store.objects.read(bucket, &object, Some(16), Some("\"not-this-version\"")).await;
    assert!(matches!(stale.map(drop), Err(Error::PreconditionFailed { .. })));

    let empty = key("reads/empty.bin");
    upload(store, client, bucket, &empty, b"").await;
    assert!(collect(store.objects.read(bucket, &empty, Some(4096), None).await).await.is_empty());
    assert!(collect(store.objects.read(bucket, &empty, None, None).await).await.is_empty());
    let missing = store.objects.read(bucket, &key("reads/missing.bin"), Some(16), None).await;
    assert!(missing.map(drop).expect_err("absent").is_not_found());

    // The metadata and the first bytes together.
    let (meta, first) = store.objects.head_with_first_bytes(bucket, &object, 4096).await.expect("head and first bytes");
    assert_eq!((meta.size, &first[..]), (body.len() as u64, &body[..4096]));
    let (meta, first) = store.objects.head_with_first_bytes(bucket, &empty, 4096).await.expect("an empty object");
    assert_eq!((meta.size, first.len()), (0, 0));
    let missing = store.objects.head_with_first_bytes(bucket, &key("reads/missing.bin"), 16).await;
    assert!(missing.expect_err("absent").is_not_found());
    // With a declared SHA-256, the store's checksum comes too, as head gives it.
    let summed = key("reads/summed.bin");
    let checksum = Checksum::from_digest(&sha2::Sha256::digest(body).into());
    let conditions = Conditions { checksum_sha256: Some(checksum.clone()), ..Conditions::default() };
    let request = PresignRequest { conditions: &conditions, ..presign_request(Method::Put, bucket, &summed) };
    let url = store.signer.presign(&request).await.expect("presign");
    assert_eq!(put(client, &url.url, &url.headers, body).await, 200);
    let (meta, first) = store.objects.head_with_first_bytes(bucket, &summed, 16).await.expect("head and first bytes");
    assert_eq!(meta, store.objects.head(bucket, &summed).await.expect("head"));
    assert_eq!((meta.declared.sha256.as_ref(), &first[..]), (Some(&checksum), &body[..16]));
    store.objects.delete(bucket, &summed).await.expect("delete");
    store.objects.delete(bucket, &object).await.expect("delete");
    store.objects.delete(bucket, &empty).await.expect("delete");
}

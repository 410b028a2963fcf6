//! The multipart capability: uploads started, parts signed and sent, listed, completed, aborted, and abandoned ones
//! removed.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Target, key, presign_request};
use crate::multipart::bare_etag;
use crate::{
    BucketName, Checksum, CompletedPart, ContentType, Declared, Error, Method, MultipartRequest, ObjectKey, Progress,
    StaleUploads, Store, UploadId, WholeChecksum,
};

/// [`MultipartStore`](crate::MultipartStore): a multipart upload: parts signed and sent, listed by ascending number, completed into one object with the
/// content type and declarations given at the start; a bad part list is refused and the upload kept; an aborted
/// or completed upload is not found; an abandoned upload is removed once stale, not before.
pub async fn multipart(target: &Target<'_>) {
    let (store, client, bucket) = (target.store, &target.client, target.draft);
    let object = key("multi/part.bin");
    let ct = ContentType::parse("application/x-test").expect("valid");
    let declared = Declared { length: Some(5 * 1024 * 1024 + 3), sha256: None };
    let id =
        store.multipart.create_multipart(bucket, &object, &ct, &declared, Some(5 * 1024 * 1024)).await.expect("start");
    store.multipart.check_upload(bucket, &object, &id).await.expect("the upload exists");
    assert!(store.multipart.list_parts(bucket, &object, &id).await.expect("listed").is_empty());

    static FIRST: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| vec![b'a'; 5 * 1024 * 1024]);
    let mut etags = Vec::new();
    for (number, body) in [(2u32, &b"end"[..]), (1, FIRST.as_slice())] {
        etags.push(send_part(store, client, bucket, &object, &id, number, body).await);
    }
    etags.sort_by_key(|part| part.number);
    let listed = store.multipart.list_parts(bucket, &object, &id).await.expect("listed");
    let numbers: Vec<_> = listed.iter().map(|part| part.number).collect();
    assert_eq!(numbers, [1, 2], "parts by ascending number");
    assert_eq!((listed[0].size, listed[1].size), (5 * 1024 * 1024, 3));

    let wrong = [CompletedPart { number: 1, etag: "0123456789abcdef0123456789abcdef".to_owned() }, etags[1].clone()];
    let refused = store.multipart.complete_multipart(bucket, &object, &id, &wrong, &Progress::default()).await;
    assert!(matches!(refused, Err(Error::InvalidParts { .. })), "{refused:?}");
    assert!(store.objects.head(bucket, &object).await.expect_err("nothing assembled").is_not_found());
    store.multipart.check_upload(bucket, &object, &id).await.expect("a refused completion keeps the upload");

    store.multipart.complete_multipart(bucket, &object, &id, &etags, &Progress::default()).await.expect("completed");
    let meta = store.objects.head(bucket, &object).await.expect("assembled");
    assert_eq!((meta.size, meta.content_type.as_str()), (5 * 1024 * 1024 + 3, "application/x-test"));
    assert_eq!(meta.declared.length, declared.length, "the declarations are kept with the object");
    let ended = store.multipart.list_parts(bucket, &object, &id).await;
    assert!(matches!(ended, Err(Error::UploadNotFound { .. })), "{ended:?}");

    let aborted =
        store.multipart.create_multipart(bucket, &object, &ct, &Declared::default(), None).await.expect("start");
    store.multipart.abort_multipart(bucket, &object, &aborted).await.expect("aborted");
    assert!(matches!(store.multipart.check_upload(bucket, &object, &aborted).await, Err(Error::UploadNotFound { .. })));
    assert!(matches!(
        store.multipart.abort_multipart(bucket, &object, &aborted).await,
        Err(Error::UploadNotFound { .. })
    ));
    assert_eq!(store.objects.head(bucket, &object).await.expect("an abort leaves the object").size, meta.size);

    // Parts DraftStore sends itself (a resumable upload's appends), laid out by the part size announced: an
    // upload of one part number again replaces it, and the upload completes into the bytes in order.
    let appended = key("multi/appended.bin");
    let part_size = 5 * 1024 * 1024;
    let declared = Declared { length: Some(part_size + 4), sha256: None };
    let id = store.multipart.create_multipart(bucket, &appended, &ct, &declared, Some(part_size)).await.expect("start");
    let first = bytes::Bytes::from(vec![b'x'; 5 * 1024 * 1024]);
    let mut sent = Vec::new();
    for (number, body) in [(1, first.clone()), (2, bytes::Bytes::from_static(b"old!")), (2, b"tail"[..].into())] {
        let part = store.multipart.upload_part(bucket, &appended, &id, number, body.clone()).await.expect("stored");
        assert_eq!((part.number, part.size), (number, body.len() as u64));
        sent.retain(|done: &CompletedPart| done.number != number);
        sent.push(CompletedPart { number, etag: part.etag });
    }
    let listed =
        crate::multipart::latest_versions(store.multipart.list_parts(bucket, &appended, &id).await.expect("listed"));
    assert_eq!(listed.iter().map(|part| (part.number, part.size)).collect::<Vec<_>>(), [(1, part_size), (2, 4)]);
    store.multipart.complete_multipart(bucket, &appended, &id, &sent, &Progress::default()).await.expect("completed");
    let read = crate::collect(store.objects.read(bucket, &appended, None, None).await.expect("read"), part_size + 4);
    let read = read.await.expect("the bytes");
    assert_eq!((&read[..part_size as usize], &read[part_size as usize..]), (&first[..], &b"tail"[..]));
    let unknown = store.multipart.upload_part(bucket, &appended, &id, 3, b"late"[..].into()).await;
    assert!(matches!(unknown, Err(Error::UploadNotFound { .. })), "a completed upload takes no part: {unknown:?}");
    store.objects.delete(bucket, &appended).await.expect("delete");

    // URLs for an uploader that speaks S3's own multipart API: each request decides its method.
    let request = presign_request(Method::Get, bucket, &object);
    let create = store.multipart.presign_multipart(&request, MultipartRequest::Create).await.expect("signed");
    let list = store.multipart.presign_multipart(&request, MultipartRequest::ListParts(&id)).await.expect("signed");
    let abort = store.multipart.presign_multipart(&request, MultipartRequest::Abort(&id)).await.expect("signed");
    assert_eq!((create.method, list.method, abort.method), (Method::Post, Method::Get, Method::Delete));
    store.objects.delete(bucket, &object).await.expect("delete");

    // Where a backend says it verifies a declared SHA-256 of the whole, a mismatch assembles nothing.
    if store.multipart.whole_checksum() == WholeChecksum::Verified {
        let checked = key("multi/checked.bin");
        let empty = Checksum::parse("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").expect("the SHA-256 of nothing");
        let declared = Declared { length: None, sha256: Some(empty) };
        let id = store.multipart.create_multipart(bucket, &checked, &ct, &declared, None).await.expect("start");
        let part = send_part(store, client, bucket, &checked, &id, 1, b"not nothing").await;
        let refused = store.multipart.complete_multipart(bucket, &checked, &id, &[part], &Progress::default()).await;
        assert!(matches!(refused, Err(Error::InvalidParts { .. })), "{refused:?}");
        assert!(store.objects.head(bucket, &checked).await.expect_err("nothing assembled").is_not_found());
        store.multipart.abort_multipart(bucket, &checked, &id).await.expect("aborted");
    }

    // An abandoned upload is removed once stale, and not before.
    let object = key("stale/upload.bin");
    let ct = ContentType::octet_stream();
    let id: UploadId =
        store.multipart.create_multipart(bucket, &object, &ct, &Declared::default(), None).await.expect("start");
    let now = OffsetDateTime::now_utc();
    let young = StaleUploads {
        multipart_before: now - Duration::from_secs(3600),
        staging_before: now - Duration::from_secs(3600),
    };
    store.objects.remove_stale_uploads(bucket, young).await.expect("nothing stale yet");
    store.multipart.check_upload(bucket, &object, &id).await.expect("a young upload is kept");
    let later = now + Duration::from_secs(3600);
    let old = StaleUploads { multipart_before: later, staging_before: later };
    assert!(store.objects.remove_stale_uploads(bucket, old).await.expect("removed") >= 1);
    assert!(matches!(store.multipart.check_upload(bucket, &object, &id).await, Err(Error::UploadNotFound { .. })));
}

/// Uploads part `number` of an upload through the URL the backend signs for it; the part as completion names it.
async fn send_part(
    store: &Store,
    client: &reqwest::Client,
    bucket: &BucketName,
    object: &ObjectKey,
    id: &UploadId,
    number: u32,
    body: &[u8],
) -> CompletedPart {
    let request = presign_request(Method::Put, bucket, object);
    let url = store.multipart.presign_part(&request, id, number).await.expect("part URL");
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

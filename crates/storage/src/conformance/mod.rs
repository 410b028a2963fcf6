//! The storage contract's conformance suite: one function per capability, each checking every method of its trait
//! against what its documentation promises, with real HTTP requests to the URLs the store signs: idempotent creates
//! and deletes, what "not found" and "already exists" look like, conditional moves and writes, multipart uploads,
//! records, listing and its paging, batch deletes, stale uploads, and the store probe. A backend is checked by
//! calling each function on a [`Target`] of it, in the order of [`all`] (they share its buckets, and [`listing`]
//! expects the main bucket to hold nothing else). They panic on the first broken promise, as a test does.

mod listing;
mod multipart;
mod objects;

use std::time::Duration;

use time::OffsetDateTime;

use crate::probe::{Depth, Outcome, PROBE_PREFIX, ProbePlan, Promise};
use crate::{BucketName, Conditions, ContentType, Error, Method, ObjectKey, PresignRequest, Store};

pub use listing::listing;
pub use multipart::multipart;
pub use objects::objects;

/// A store under test: its capabilities, two buckets that exist (the main one empty), and a client for the URLs
/// it signs.
#[derive(Debug)]
pub struct Target<'a> {
    pub store: &'a Store,
    pub main: &'a BucketName,
    pub draft: &'a BucketName,
    pub client: reqwest::Client,
}

impl<'a> Target<'a> {
    /// A target of `store`'s buckets `main` and `draft`, both existing.
    pub fn new(store: &'a Store, main: &'a BucketName, draft: &'a BucketName) -> Self {
        Self { store, main, draft, client: reqwest::Client::new() }
    }
}

/// Every capability's checks, in an order that leaves each the buckets as it expects them.
pub async fn all(target: &Target<'_>) {
    buckets(target).await;
    signing(target).await;
    objects(target).await;
    multipart(target).await;
    records(target).await;
    listing(target).await;
    probe(target).await;
}

/// A bucket that no test creates.
const MISSING: &str = "no-such-bucket-here";

/// The promises the start-up probe checks; `draftstore doctor` adds the main credential, CORS, lifecycle and
/// checksums.
pub const STARTUP_PROMISES: [Promise; 14] = [
    Promise::CopySource,
    Promise::PartCopySource,
    Promise::UnsignedHeaders,
    Promise::Checksum,
    Promise::ContentLength,
    Promise::ContentType,
    Promise::UrlBinding,
    Promise::UploadCredential,
    Promise::DownloadCredential,
    Promise::ConditionalWrites,
    Promise::CopyIfMatch,
    Promise::ContentDisposition,
    Promise::DownloadOverrides,
    Promise::ClockSkew,
];

/// [`BucketAdmin`](crate::BucketAdmin): creating an existing bucket succeeds, a missing one is
/// [`Error::BucketNotFound`]; [`BucketRules`](crate::BucketRules), where the store has them: a CORS rule and a
/// lifecycle rule are put.
pub async fn buckets(target: &Target<'_>) {
    let (store, draft, missing) = (target.store, target.draft, &bucket(MISSING));
    store.buckets.create_bucket(draft).await.expect("creating an existing bucket succeeds");
    store.buckets.check_bucket(draft).await.expect("bucket exists");
    assert!(matches!(store.buckets.check_bucket(missing).await, Err(Error::BucketNotFound { .. })));
    if let Some(rules) = &store.rules {
        rules.allow_browser_uploads(draft, &["https://app.example.com".to_owned()]).await.expect("CORS rule");
        rules.install_lifecycle(draft, 2).await.expect("a lifecycle rule");
    }
}

/// [`Signer`](crate::Signer): an upload URL enforces its signed content type; a download URL serves the object and
/// is bound to its key.
pub async fn signing(target: &Target<'_>) {
    let (store, client, draft) = (target.store, &target.client, target.draft);
    let (object, png) = (key("dir/sub/photo one.png"), ContentType::parse("image/png").expect("valid"));
    let (url, headers) = presign(store, Method::Put, draft, &object, Some(&png)).await;
    assert_eq!(headers, vec![("Content-Type".to_owned(), "image/png".to_owned())]);
    let wrong = vec![("Content-Type".to_owned(), "text/html".to_owned())];
    assert_eq!(put(client, &url, &wrong, b"<script>").await, 403, "the signed content type is enforced");
    assert_eq!(put(client, &url, &headers, b"png bytes").await, 200);

    let (url, _) = presign(store, Method::Get, draft, &object, None).await;
    assert_eq!(get(client, &url).await, (200, "image/png".to_owned(), b"png bytes".to_vec()));
    assert_eq!(get(client, &url.replace("photo%20one", "other")).await.0, 403, "a URL is bound to its key");
    store.objects.delete(draft, &object).await.expect("delete");
}

/// [`ObjectStore`](crate::ObjectStore)'s records: written whole, read back; `if_absent` leaves an existing record and says so; a missing record is not
/// found.
pub async fn records(target: &Target<'_>) {
    let (store, bucket) = (target.store, target.draft);
    let record = key("records/lease-1");
    assert!(store.objects.get_record(bucket, &record).await.expect_err("absent").is_not_found());
    assert!(store.objects.put_record(bucket, &record, "first".into(), true).await.expect("written"));
    assert!(!store.objects.put_record(bucket, &record, "second".into(), true).await.expect("answered"), "if_absent");
    assert_eq!(store.objects.get_record(bucket, &record).await.expect("read"), "first");
    assert!(store.objects.put_record(bucket, &record, "third".into(), false).await.expect("replaced"));
    assert_eq!(store.objects.get_record(bucket, &record).await.expect("read"), "third");
    store.objects.delete(bucket, &record).await.expect("delete");
    assert!(store.objects.get_record(bucket, &record).await.expect_err("deleted").is_not_found());

    // An object written whole keeps its content type, answers the etag a move can name, and is replaced whole.
    let made = key("records/variant one");
    let webp = crate::ContentType::parse("image/webp").expect("a type");
    let first = store.objects.put_object(bucket, &made, "RIFF1".into(), &webp).await.expect("put");
    assert_eq!((first.size, first.content_type.as_str()), (5, "image/webp"));
    let head = store.objects.head(bucket, &made).await.expect("head");
    assert_eq!((head.etag.as_deref(), head.content_type.as_str()), (first.etag.as_deref(), "image/webp"));
    let second = store.objects.put_object(bucket, &made, "RIFF22".into(), &webp).await.expect("replaced");
    assert_ne!(second.etag, first.etag, "another version, another etag");
    assert_eq!(store.objects.get_record(bucket, &made).await.expect("read"), "RIFF22");
    store.objects.delete(bucket, &made).await.expect("delete");
}

/// [`StoreProbe`](crate::probe::StoreProbe): each depth checks the promises it names, all held on a store fit for
/// DraftStore, and leaves nothing under [`PROBE_PREFIX`]; a missing draft bucket is an error, not a finding.
pub async fn probe(target: &Target<'_>) {
    let (store, main, draft) = (target.store, target.main, target.draft);
    let doctor_only = [Promise::MainCredential, Promise::Cors, Promise::Lifecycle, Promise::Checksums];
    for (depth, expected) in [
        (Depth::ConditionalWrites, vec![Promise::ConditionalWrites]),
        (Depth::Startup, STARTUP_PROMISES.to_vec()),
        (Depth::Doctor, STARTUP_PROMISES.iter().chain(&doctor_only).copied().collect()),
    ] {
        let plan = ProbePlan { draft, main, depth, cors_origins: &[], lifecycle_days: None };
        let report = store.probe.probe(&plan).await.expect("probed");
        let mut found: Vec<_> = report.findings.iter().map(|f| f.promise).collect();
        let mut expected = expected;
        expected.sort();
        found.sort();
        assert_eq!(found, expected, "{depth:?}");
        assert!(report.all_hold(), "{depth:?}: {:#?}", report.findings);
        assert!(report.findings.iter().all(|f| f.outcome != Outcome::Unknown && !f.detail.is_empty()));
        let left = store.objects.list_prefix(draft, PROBE_PREFIX, None, 10).await.expect("listed");
        assert!(left.objects.is_empty(), "{depth:?} left {:?}", left.objects);
    }
    let missing = bucket(MISSING);
    let plan = ProbePlan { draft: &missing, main, depth: Depth::Startup, cors_origins: &[], lifecycle_days: None };
    assert!(matches!(store.probe.probe(&plan).await, Err(Error::BucketNotFound { .. })));
}

pub(crate) fn bucket(name: &str) -> BucketName {
    BucketName::parse(name).expect("valid bucket")
}

pub(crate) fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("valid key")
}

pub(crate) async fn presign(
    store: &Store,
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
    let url = store.signer.presign(&request).await.expect("presign");
    assert_eq!(url.method, method);
    (url.url, url.headers)
}

pub(crate) async fn put(client: &reqwest::Client, url: &str, headers: &[(String, String)], body: &'static [u8]) -> u16 {
    let mut request = client.put(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(body).send().await.expect("sent").status().as_u16()
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> (u16, String, Vec<u8>) {
    let response = client.get(url).send().await.expect("sent");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_owned()).unwrap_or_default();
    (status, content_type, response.bytes().await.expect("body").to_vec())
}

/// Uploads `body` to `bucket/key` through a signed URL.
pub(crate) async fn upload(
    store: &Store,
    client: &reqwest::Client,
    bucket: &BucketName,
    key: &ObjectKey,
    body: &'static [u8],
) {
    let (url, headers) = presign(store, Method::Put, bucket, key, None).await;
    assert_eq!(put(client, &url, &headers, body).await, 200);
}

pub(crate) fn presign_request<'a>(method: Method, bucket: &'a BucketName, key: &'a ObjectKey) -> PresignRequest<'a> {
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

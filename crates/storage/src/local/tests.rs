use std::time::Duration;

use futures_util::stream;

use super::*;
use crate::{CompletedPart, Conditions, Progress, Signer as _, UploadId};

async fn store(dir: &Path) -> LocalStorage {
    let config = LocalConfig {
        root: dir.to_owned(),
        public_url: Url::parse("http://localhost:8080").expect("valid"),
        signing_key: None,
    };
    let storage = LocalStorage::open(config).await.expect("open");
    for bucket in ["main", "main-draft"] {
        storage.create_bucket(&bucket_name(bucket)).await.expect("bucket");
    }
    storage
}

fn bucket_name(name: &str) -> BucketName {
    BucketName::parse(name).expect("valid bucket")
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("valid key")
}

fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> + use<> {
    stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
}

async fn read_all(storage: &LocalStorage, bucket: &str, name: &str) -> (ObjectMeta, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut reader = storage.read_object(&bucket_name(bucket), &key(name)).await.expect("read");
    let mut bytes = Vec::new();
    reader.body.read_to_end(&mut bytes).await.expect("read body");
    (reader.meta, bytes)
}

fn staging_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(STAGING_DIR)).expect("staging dir").count()
}

#[tokio::test]
async fn an_upload_is_read_back_whole_with_its_content_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let png = ContentType::parse("image/png").expect("valid");
    let meta = storage
        .write_object(
            &bucket_name("main-draft"),
            &key("a/b.png"),
            png.clone(),
            &WriteChecks::default(),
            body(&[b"hello ", b"world"]),
        )
        .await
        .expect("write");
    assert_eq!(meta.size, 11);
    let (meta, bytes) = read_all(&storage, "main-draft", "a/b.png").await;
    assert_eq!(bytes, b"hello world");
    assert_eq!(meta.content_type, png);
    assert_eq!(storage.head(&bucket_name("main-draft"), &key("a/b.png")).await.expect("head").size, 11);
    assert_eq!(staging_entries(dir.path()), 0);
}

#[tokio::test]
async fn an_interrupted_upload_leaves_nothing_and_keeps_the_previous_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let draft = bucket_name("main-draft");
    storage
        .write_object(&draft, &key("f"), ContentType::octet_stream(), &WriteChecks::default(), body(&[b"old"]))
        .await
        .expect("write");
    let failing = stream::iter(vec![Ok(Bytes::from_static(b"partial")), Err(io::Error::other("connection reset"))]);
    let err = storage
        .write_object(&draft, &key("f"), ContentType::octet_stream(), &WriteChecks::default(), failing)
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::Other { .. }), "{err:?}");
    assert_eq!(read_all(&storage, "main-draft", "f").await.1, b"old");
    assert_eq!(staging_entries(dir.path()), 0);
}

#[tokio::test]
async fn a_dropped_upload_removes_its_staging_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let endless = stream::iter(vec![Ok::<_, io::Error>(Bytes::from_static(b"x"))]).chain(stream::pending());
    let (draft, slow) = (bucket_name("main-draft"), key("slow"));
    let checks = WriteChecks::default();
    let upload = storage.write_object(&draft, &slow, ContentType::octet_stream(), &checks, endless);
    assert!(tokio::time::timeout(Duration::from_millis(200), upload).await.is_err());
    assert_eq!(staging_entries(dir.path()), 0);
    assert!(storage.head(&bucket_name("main-draft"), &key("slow")).await.expect_err("absent").is_not_found());
}

#[tokio::test]
async fn a_key_that_collides_with_a_folder_is_refused_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let draft = bucket_name("main-draft");
    storage
        .write_object(&draft, &key("a/b"), ContentType::octet_stream(), &WriteChecks::default(), body(&[b"1"]))
        .await
        .expect("write");
    let err = storage
        .write_object(&draft, &key("a"), ContentType::octet_stream(), &WriteChecks::default(), body(&[b"2"]))
        .await
        .expect_err("folder");
    assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    let err = storage
        .write_object(&draft, &key("a/b/c"), ContentType::octet_stream(), &WriteChecks::default(), body(&[b"3"]))
        .await
        .expect_err("file");
    assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    assert_eq!(staging_entries(dir.path()), 0);
}

#[tokio::test]
async fn the_generated_signing_key_is_private_and_survives_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = store(dir.path()).await;
    let mode = std::fs::metadata(dir.path().join(SIGNING_KEY_FILE)).expect("key file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let second = store(dir.path()).await;
    let request = PresignRequest {
        method: Method::Get,
        bucket: &bucket_name("main"),
        key: &key("k"),
        now: OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        expires_in: Duration::from_secs(60),
        conditions: &Conditions::default(),
    };
    assert_eq!(first.presign(&request).await.expect("sign"), second.presign(&request).await.expect("sign"));
}

#[tokio::test]
async fn presigned_keys_are_percent_encoded_per_segment() {
    let storage = LocalStorage {
        root: PathBuf::from("/unused"),
        staging: PathBuf::from("/unused/.staging"),
        public_url: "http://files.example".to_owned(),
        signer: UrlSigner::new(b"k"),
    };
    let png = ContentType::parse("image/png").expect("valid");
    let url = storage
        .presign(&PresignRequest {
            method: Method::Put,
            bucket: &bucket_name("main-draft"),
            key: &key("dir/a b%?#.png"),
            now: OffsetDateTime::UNIX_EPOCH,
            expires_in: Duration::from_secs(60),
            conditions: &Conditions { content_type: Some(png), ..Conditions::default() },
        })
        .await
        .expect("sign");
    assert!(
        url.url.starts_with("http://files.example/blobs/main-draft/dir/a%20b%25%3F%23.png?X-DS-Expires=60&"),
        "{}",
        url.url
    );
    assert_eq!(url.headers, vec![("Content-Type".to_owned(), "image/png".to_owned())]);
}

#[tokio::test]
async fn uploads_over_the_size_limit_or_with_a_wrong_checksum_store_nothing() {
    use sha2::Digest;
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let draft = bucket_name("main-draft");
    let small = WriteChecks { max_size: Some(4), ..WriteChecks::default() };
    let err = storage
        .write_object(&draft, &key("big"), ContentType::octet_stream(), &small, body(&[b"123", b"45"]))
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::TooLarge { limit: 4 }), "{err:?}");
    let right = Checksum::from_digest(&sha2::Sha256::digest(b"hello").into());
    let checked = WriteChecks { sha256: Some(right), ..WriteChecks::default() };
    let err = storage
        .write_object(&draft, &key("sum"), ContentType::octet_stream(), &checked, body(&[b"hellO"]))
        .await
        .expect_err("mismatch");
    assert!(matches!(err, Error::ChecksumMismatch), "{err:?}");
    storage
        .write_object(&draft, &key("sum"), ContentType::octet_stream(), &checked, body(&[b"hel", b"lo"]))
        .await
        .expect("match");
    assert!(storage.head(&draft, &key("big")).await.expect_err("absent").is_not_found());
    assert_eq!(staging_entries(dir.path()), 0);
}

/// Writes `parts` (numbered from 1) of an upload with `part_size`; returns the list to complete it with.
async fn write_parts(
    storage: &LocalStorage,
    upload_id: &UploadId,
    name: &str,
    parts: &[&'static [u8]],
) -> Vec<CompletedPart> {
    let mut listed = Vec::new();
    for (number, bytes) in (1..).zip(parts) {
        let part = storage
            .write_part(
                &bucket_name("main-draft"),
                &key(name),
                upload_id,
                number,
                Some(bytes.len() as u64),
                None,
                u64::MAX,
                body(&[bytes]),
            )
            .await
            .expect("part");
        listed.push(CompletedPart { number, etag: part.etag });
    }
    listed
}

#[tokio::test]
async fn parts_of_the_announced_size_complete_in_place_and_others_by_copy_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let (bucket, ct) = (bucket_name("main-draft"), ContentType::parse("text/plain").expect("valid"));
    let big: &'static [u8] = Box::leak(vec![7u8; 5 * 1024 * 1024].into_boxed_slice());
    // In place: part size announced, parts 1..n of that size.
    let (name, declared, part_size) = (key("in-place"), Declared::default(), Some(big.len() as u64));
    let id = storage.create_multipart(&bucket, &name, &ct, &declared, part_size).await.expect("start");
    let listed = write_parts(&storage, &id, "in-place", &[big, b"tail"]).await;
    assert!(dir.path().join(".multipart").join(id.as_str()).join("data").is_file(), "written in place");
    storage.complete_multipart(&bucket, &key("in-place"), &id, &listed, &Progress::default()).await.expect("done");
    // Separate: no part size announced.
    let other =
        storage.create_multipart(&bucket, &key("copied"), &ct, &Declared::default(), None).await.expect("start");
    let listed = write_parts(&storage, &other, "copied", &[big, b"tail"]).await;
    storage.complete_multipart(&bucket, &key("copied"), &other, &listed, &Progress::default()).await.expect("done");
    for name in ["in-place", "copied"] {
        let (meta, bytes) = read_all(&storage, "main-draft", name).await;
        assert_eq!((meta.content_type.as_str(), bytes.len()), ("text/plain", big.len() + 4), "{name}");
        assert_eq!(&bytes[big.len()..], b"tail", "{name}");
    }
    assert_eq!(std::fs::read_dir(dir.path().join(".multipart")).expect("folder").count(), 0, "parts removed");
}

#[tokio::test]
async fn a_completion_cut_off_after_the_object_was_in_place_reads_as_completed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let (bucket, ct) = (bucket_name("main-draft"), ContentType::octet_stream());
    let id = storage.create_multipart(&bucket, &key("x"), &ct, &Declared::default(), Some(1024)).await.expect("start");
    let listed = write_parts(&storage, &id, "x", &[b"only part"]).await;
    // The crash: the data file was renamed into place, the folder with its markers was not removed.
    let upload = dir.path().join(".multipart").join(id.as_str());
    std::fs::rename(upload.join("data"), dir.path().join("elsewhere")).expect("rename");
    let again = storage.complete_multipart(&bucket, &key("x"), &id, &listed, &Progress::default()).await;
    assert!(matches!(again, Err(Error::UploadNotFound { .. })), "{again:?}");
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let stale = StaleUploads { multipart_before: later, staging_before: later };
    assert!(storage.remove_stale_uploads(&bucket, stale).await.expect("cleaned") >= 1);
    assert!(!upload.exists(), "the cleaner removes what the crash left");
}

mod properties {
    //! Properties over generated input: object names cannot leave their tenant's folder or bucket, every name
    //! the documented rules allow is accepted, and no part of a signed local URL can be changed.

    use std::path::Component;

    use proptest::prelude::*;

    use super::*;

    fn storage() -> LocalStorage {
        LocalStorage {
            root: PathBuf::from("/data"),
            staging: PathBuf::from("/data/.staging"),
            public_url: "http://files.example".to_owned(),
            signer: UrlSigner::new(b"a key for the properties"),
        }
    }

    /// Names built from the pieces that make names dangerous: separators, dots, backslashes, controls, unicode.
    fn hostile_name() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("\\".to_owned()),
            Just("\0".to_owned()),
            Just("\n".to_owned()),
            Just("%2e%2e".to_owned()),
            Just("~".to_owned()),
            "[a-z0-9 _-]{1,4}",
            "\\PC{1,3}",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    /// Names the README allows: segments of any characters but `/`, `\` and controls, none `.` or `..`.
    fn documented_name() -> impl Strategy<Value = String> {
        let segment = "[^/\\\\\\p{Cc}]{1,12}".prop_filter("not a dot segment", |s| s != "." && s != "..");
        proptest::collection::vec(segment, 1..8).prop_map(|segments| segments.join("/"))
    }

    fn stays_inside(path: &std::path::Path, folder: &std::path::Path) -> bool {
        path.starts_with(folder)
            && path.strip_prefix(folder).is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))))
    }

    /// Hostile names, names the rules allow and any text: every one the parser accepts stays inside its tenant. The
    /// cases it refuses check nothing, so the accepted ones are counted and must be most of them.
    #[test]
    fn an_accepted_name_never_leaves_its_tenant() {
        use proptest::test_runner::{Config, TestRunner};
        let (cases, accepted) = (2000, std::cell::Cell::new(0));
        let names = prop_oneof![hostile_name(), documented_name(), any::<String>()];
        let checked = TestRunner::new(Config::with_cases(cases)).run(&names, |name| {
            let Ok(_) = ObjectKey::parse(&name) else { return Ok(()) };
            let Ok(tenant_key) = ObjectKey::parse(&format!("alice/{name}")) else { return Ok(()) };
            accepted.set(accepted.get() + 1);
            // Local backend: the file is inside the tenant's folder of the bucket, with no `..` to resolve.
            let bucket = bucket_name("main-draft");
            let path = storage().object_path(&bucket, &tenant_key);
            prop_assert!(stays_inside(&path, std::path::Path::new("/data/main-draft/alice")), "{path:?}");
            // S3: the key starts with the tenant and has no segment a store or proxy could resolve.
            prop_assert!(tenant_key.as_str().starts_with("alice/"));
            prop_assert!(tenant_key.as_str().split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
            Ok(())
        });
        if let Err(failure) = checked {
            panic!("{failure}");
        }
        let accepted = accepted.get();
        // Past the test harness's capture, so that the count is in every run's output.
        std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("{accepted} of {cases} names accepted and checked\n").as_bytes(),
        )
        .expect("stderr");
        assert!(accepted >= cases as usize / 2, "only {accepted} of {cases} names were accepted, so checked");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_name_the_rules_allow_is_accepted(name in documented_name()) {
            prop_assume!(name.len() <= crate::names::MAX_KEY_LEN);
            prop_assert!(ObjectKey::parse(&name).is_ok(), "{name:?} refused");
        }

        #[test]
        fn any_change_to_a_signed_part_of_a_local_url_is_refused(
            name in documented_name(),
            length in 0u64..1 << 40,
            expires_in in 1u64..604_800,
            change in 0usize..7,
        ) {
            let storage = storage();
            let (bucket, key) = (bucket_name("main-draft"), ObjectKey::parse(&name).expect("valid"));
            let png = ContentType::parse("image/png").expect("valid");
            let conditions = Conditions { content_type: Some(png), content_length: Some(length), ..Conditions::default() };
            let now = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let request = PresignRequest {
                method: Method::Put,
                bucket: &bucket,
                key: &key,
                now,
                expires_in: Duration::from_secs(expires_in),
                conditions: &conditions,
            };
            let url = futures_util::FutureExt::now_or_never(storage.presign(&request)).expect("ready").expect("signed");
            let query = url.url.split_once('?').expect("query").1.to_owned();
            let headers: Vec<(String, String)> =
                url.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
            let unix = now.unix_timestamp();
            let verify = |method: Method, bucket: &BucketName, key: &ObjectKey, query: &str, headers: &[(String, String)]| {
                storage.signer.verify(method, bucket, key, query, |name| {
                    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
                }, headers.iter().map(|(n, _)| n.as_str()), unix)
            };
            prop_assert!(verify(Method::Put, &bucket, &key, &query, &headers).is_ok());
            let refused = match change {
                0 => verify(Method::Get, &bucket, &key, &query, &headers),
                1 => verify(Method::Put, &bucket_name("main"), &key, &query, &headers),
                2 => verify(Method::Put, &bucket, &ObjectKey::parse(&format!("{name}x")).expect("valid"), &query, &headers),
                3 => {
                    let later = query.replace(&format!("X-DS-Expires={}", 1_700_000_000 + expires_in),
                        &format!("X-DS-Expires={}", 1_700_000_000 + expires_in + 1));
                    prop_assert_ne!(&later, &query);
                    verify(Method::Put, &bucket, &key, &later, &headers)
                }
                4 | 5 => {
                    // Each signed header in turn: content type, then declared length.
                    let mut changed = headers.clone();
                    let index = (change - 4).min(changed.len() - 1);
                    changed[index].1.push('0');
                    verify(Method::Put, &bucket, &key, &query, &changed)
                }
                _ => {
                    let at = query.find("X-DS-Signature=").expect("signature") + "X-DS-Signature=".len();
                    let mut forged = query.clone().into_bytes();
                    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
                    verify(Method::Put, &bucket, &key, &String::from_utf8(forged).expect("ascii"), &headers)
                }
            };
            prop_assert!(refused.is_err(), "change {change} was accepted");
        }
    }
}

#[tokio::test]
async fn takes_a_crash_left_aside_are_finished_as_they_were_meant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let draft = bucket_name("main-draft");
    let text = ContentType::parse("text/plain").expect("valid");
    let mut etags = Vec::new();
    for name in ["deleted.txt", "replaced.txt", "moving.txt", "moved.txt"] {
        let meta = storage
            .write_object(&draft, &key(name), text.clone(), &WriteChecks::default(), body(&[b"bytes"]))
            .await
            .expect("write");
        etags.push(meta.etag.expect("an etag"));
    }
    // As a crash leaves them, taken long ago: a delete of the version there; a delete of another version; a move
    // cut off before it placed the file; a move that had linked it into place.
    let take = |name: &str, deleting: Option<&str>| {
        let top = dir.path().join(ASIDE_DIR).join(format!("1-{name}"));
        std::fs::create_dir_all(top.join("main-draft")).expect("take folder");
        std::fs::rename(dir.path().join("main-draft").join(name), top.join("main-draft").join(name)).expect("taken");
        if let Some(etag) = deleting {
            std::fs::write(top.join(DELETING_FILE), etag).expect("written");
        }
        top.join("main-draft").join(name)
    };
    take("deleted.txt", Some(&etags[0]));
    take("replaced.txt", Some("another version"));
    take("moving.txt", None);
    let moved = take("moved.txt", None);
    std::fs::hard_link(&moved, dir.path().join("main").join("moved.txt")).expect("linked into place");
    drop(storage);

    let storage = store(dir.path()).await;
    let found = async |name: &str| storage.head(&draft, &key(name)).await.ok().and_then(|meta| meta.etag);
    assert_eq!(found("deleted.txt").await, None, "a delete of the version it took is finished");
    assert_eq!(found("replaced.txt").await.as_ref(), Some(&etags[1]), "another version is put back");
    assert_eq!(found("moving.txt").await.as_ref(), Some(&etags[2]), "a move cut off before placing undone");
    assert_eq!(found("moved.txt").await, None, "a move that placed the file is done");
    assert!(storage.head(&bucket_name("main"), &key("moved.txt")).await.is_ok());
    assert_eq!(std::fs::read_dir(dir.path().join(ASIDE_DIR)).expect("aside folder").count(), 0, "takes removed");
}

/// Every page of `list_prefix` under `prefix`, `limit` at a time; `between` runs after each page.
async fn prefix_pages(
    storage: &LocalStorage,
    prefix: &str,
    limit: usize,
    mut between: impl FnMut(usize),
) -> Vec<Vec<String>> {
    let (mut pages, mut token) = (Vec::new(), None::<String>);
    loop {
        let page =
            storage.list_prefix(&bucket_name("main-draft"), prefix, token.as_deref(), limit).await.expect("a page");
        assert!(page.objects.len() <= limit);
        pages.push(page.objects.iter().map(|o| o.key.to_string()).collect());
        between(pages.len());
        match page.next {
            Some(next) => token = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 10_000, "the listing ends");
    }
}

/// Writes a one-byte object straight into the draft bucket's folder, as the backend writes one.
fn put_file(dir: &Path, name: &str) {
    let path = dir.join("main-draft").join(name);
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("folders");
    let trailer = object::Trailer {
        content_type: "text/plain".to_owned(),
        sha256: None,
        declared_length: None,
        declared_sha256: None,
        metadata: Metadata::default(),
        etag: None,
    };
    std::fs::write(path, [&b"x"[..], &object::encode_trailer(&trailer)].concat()).expect("an object file");
}

#[tokio::test]
async fn a_small_listing_pages_in_key_order_with_keys_as_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    for name in ["list/b/c", "list/a-z", "list/a/a", "list/b/a", "list/z", "other/x"] {
        put_file(dir.path(), name);
    }
    let pages = prefix_pages(&storage, "list/", 2, |_| {}).await;
    assert_eq!(pages, [vec!["list/a-z", "list/a/a"], vec!["list/b/a", "list/b/c"], vec!["list/z"]]);
    let first = storage.list_prefix(&bucket_name("main-draft"), "list/", None, 2).await.expect("a page");
    assert_eq!(first.next.as_deref(), Some("list/a/a"), "the token is the page's last key, as before");
    let sizes: Vec<u64> = first.objects.iter().map(|o| o.size).collect();
    assert_eq!(sizes, [1, 1], "sizes from the trailers");
    for bad in ["/zz:", "/0:\n../x", "\u{1}x", "/0:a"] {
        let refused = storage.list_prefix(&bucket_name("main-draft"), "list/", Some(bad), 2).await;
        assert!(matches!(refused, Err(Error::InvalidKey { .. })), "{bad:?}: {refused:?}");
    }
}

#[tokio::test]
async fn a_large_listing_pages_every_object_once_and_one_that_grows_large_goes_on_where_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    for i in 0..1500 {
        put_file(dir.path(), &format!("many/{i:05}"));
    }
    let pages = prefix_pages(&storage, "many/", 100, |_| {}).await;
    assert!(pages.iter().all(|page| page.len() <= 100) && pages.len() >= 15);
    let all: Vec<String> = pages.concat();
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (1500, 1500), "every object, once");
    for page in &pages {
        assert!(page.windows(2).all(|w| w[0] < w[1]), "sorted within a page");
    }

    // A listing that starts small (in key order) and grows past what is read whole between two pages: what the
    // first pages gave is not given again, and every object that was there at the start is listed.
    let grows = tempfile::tempdir().expect("tempdir");
    let storage = store(grows.path()).await;
    for i in 0..500 {
        put_file(grows.path(), &format!("g/{i:05}"));
    }
    let mut added = 0;
    let pages = prefix_pages(&storage, "g/", 100, |page| {
        if page == 2 {
            for i in 0..1000 {
                put_file(grows.path(), &format!("g/new-{i:05}"));
                added += 1;
            }
        }
    })
    .await;
    assert_eq!(added, 1000);
    assert_eq!(pages[0].first().map(String::as_str), Some("g/00000"), "small: in key order");
    let all: Vec<String> = pages.concat();
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "nothing twice: {} of {}", unique.len(), all.len());
    assert!((0..500).all(|i| unique.contains(&format!("g/{i:05}"))), "every object there from the start");
}

#[tokio::test]
async fn a_trickled_upload_is_written_whole_in_order() {
    use sha2::Digest;
    // Many small chunks with pauses between them: each section takes what arrived while the last one wrote.
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = store(dir.path()).await;
    let chunks: Vec<Bytes> = (0..2000u32).map(|i| Bytes::from(format!("{i:08}\n"))).collect();
    let expected: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
    let body = stream::iter(chunks).enumerate().then(|(i, chunk)| async move {
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<_, io::Error>(chunk)
    });
    let checksum = Checksum::from_digest(&sha2::Sha256::digest(&expected).into());
    let checks = WriteChecks { sha256: Some(checksum), ..WriteChecks::default() };
    let meta = storage
        .write_object(&bucket_name("main-draft"), &key("t.txt"), ContentType::octet_stream(), &checks, body)
        .await
        .expect("written");
    assert_eq!(meta.size, expected.len() as u64);
    let (_, bytes) = read_all(&storage, "main-draft", "t.txt").await;
    assert_eq!(bytes, expected);
    assert_eq!(staging_entries(dir.path()), 0);
}

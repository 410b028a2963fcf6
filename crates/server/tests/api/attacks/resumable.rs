//! Attacks on resumable uploads (`/files/`): what the review of tus and the IETF draft tried.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::helpers::resumable::{Dialect, Feed, Reply, Resumable, fed_body, metadata, send};
use crate::helpers::{Backend, Server, TENANTS, api_keys, on_both_backends};
use crate::seaweed;

/// A checksum that matches nothing.
const WRONG_SHA256: &str = "sha256 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Replicas with different limits, or a limit lowered while an upload of deferred length was under way, left an
/// append whose offset was past the limit: the subtraction panicked (debug) or wrapped (release), and the panicked
/// append's lease was renewed forever, so the upload refused everything until a restart.
#[tokio::test]
async fn an_upload_past_a_lowered_limit_is_refused_and_stays_usable() {
    let (args, _) = Backend::SeaweedFs.args().await;
    let mut generous = Server::new([args.clone(), vec!["--max-upload-size".into(), "1000000".into()]].concat());
    let mut strict = Server::new([args, vec!["--max-upload-size".into(), "1000".into()]].concat());
    generous.start().await;
    strict.start().await;
    let client = reqwest::Client::new();
    let at = |server: &Server| Resumable { client: client.clone(), address: server.url(), bearer: None };
    let created = at(&generous).tus_create(None, &metadata(&[("object_name", "attacks/deferred.bin")]), None).await;
    assert_eq!(created.status, 201, "{created}");
    let id = created.location().rsplit('/').next().expect("an id").to_owned();
    let (url, on_strict) = (format!("{}/files/{id}", generous.url()), format!("{}/files/{id}", strict.url()));
    assert_eq!(at(&generous).tus_patch(&url, 0, vec![7; 2000]).await.status, 204);

    let refused = at(&strict).tus_patch(&on_strict, 2000, vec![7; 10]).await;
    assert_eq!(refused.status, 413, "past the strict replica's limit: {refused}");
    let again = at(&strict).tus_patch(&on_strict, 2000, vec![7; 10]).await;
    assert_eq!(again.status, 413, "the upload is not locked by the refusal: {again}");
    let health = client.get(format!("{}/health", strict.url())).send().await.expect("alive");
    assert_eq!(health.status(), 200);
    let head = at(&generous).head(&url, Dialect::Tus).await;
    assert_eq!(head.offset(), 2000, "nothing of the refused appends was kept: {head}");
    assert_eq!(at(&strict).delete(&on_strict, Dialect::Tus).await.status, 204, "cancellation still works");
}

/// Slow bodies (above BODY_MIN_RATE) held the memory their declared part would need for as long as they lasted:
/// 64 of them refused every other tenant's resumable upload with 503. A buffer now takes memory as bytes arrive.
async fn slow_appends_do_not_hold_memory_they_have_not_filled(backend: Backend) {
    let app = backend.spawn(&[]).await;
    let files = Resumable::of(&app);
    let mut feeds = Vec::new();
    let mut pending = Vec::new();
    for i in 0..100 {
        let url = files.tus_created(64 << 20, &format!("attacks/slow-{i}.bin")).await;
        let (body, feed) = fed_body();
        pending.push(tokio::spawn(send(files.tus_patch_request(&url, 0).body(body))));
        assert!(feed.send(&[1; 1024]).await, "the server reads the first kibibyte");
        feeds.push(feed);
    }
    let started = Instant::now();
    let url = files.tus_created(10, "attacks/quick.bin").await;
    let quick = files.tus_patch(&url, 0, b"0123456789".to_vec()).await;
    assert_eq!(quick.status, 204, "an upload beside 100 slow ones: {quick}");
    assert!(started.elapsed() < Duration::from_secs(4), "answered without waiting for memory: {:?}", started.elapsed());
    drop(feeds);
    for slow in pending {
        let reply = slow.await.expect("the request task");
        assert!(matches!(reply.status, 204 | 400 | 408), "a slow append ends: {reply}");
    }
}

/// A PATCH of more than a part whose checksum fails stored a part in a multipart upload nothing recorded:
/// cancelling the upload left it, and one client could pile up bytes past MAX_UPLOAD_SIZE until the cleaner's
/// sweep a day later.
async fn a_refused_append_leaves_no_parts_behind(backend: Backend) {
    let (app, bucket) = backend.spawn_with_bucket(&[]).await;
    let files = Resumable::of(&app);
    let url = files.tus_created(40 << 20, "attacks/refused.bin").await;
    for _ in 0..3 {
        let request = files.tus_patch_request(&url, 0).header("upload-checksum", WRONG_SHA256);
        let refused = send(request.body(vec![3; 9 << 20])).await;
        assert_eq!(refused.status, 460, "{refused}");
    }
    assert_eq!(files.head(&url, Dialect::Tus).await.offset(), 0, "nothing appended");
    assert_eq!(files.delete(&url, Dialect::Tus).await.status, 204);
    let left = match backend {
        Backend::Local => match std::fs::read_dir(app.data_dir.join(".multipart")) {
            Ok(entries) => entries.count(),
            Err(_) => 0,
        },
        Backend::SeaweedFs => {
            let listed = seaweed::shared()
                .await
                .client()
                .list_multipart_uploads()
                .bucket(format!("{bucket}-draft"))
                .send()
                .await
                .expect("listed");
            listed.uploads().len()
        }
    };
    assert_eq!(left, 0, "multipart uploads left after the cancellation");
    // The digest the refusals did not have is accepted: a refusal changed nothing.
    let body = vec![3; 1 << 20];
    let digest = STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let url = files.tus_created(1 << 20, "attacks/accepted.bin").await;
    let request = files.tus_patch_request(&url, 0).header("upload-checksum", format!("sha256 {digest}"));
    assert_eq!(send(request.body(body)).await.status, 204);
}

/// Streams `chunks` chunks of 64 KiB, one every 50 ms, into an append already sent: a live client.
async fn stream_live(feed: Feed, chunks: usize) {
    for _ in 0..chunks {
        assert!(feed.send(&[5; 64 * 1024]).await, "the server reads a live body");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    feed.finish();
}

/// A newer request stopped whatever append held the upload, asked by anyone, even another tenant holding the URL,
/// and even with `Upload-Checksum` (whose stopped body keeps nothing): a HEAD every second kept such an upload
/// from ever finishing. Only an append whose client has gone quiet is stopped now, and only by its owner.
async fn others_asking_where_an_upload_stands_cannot_stop_it(backend: Backend) {
    let keys = api_keys(&TENANTS);
    let app = backend.spawn(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let alice = Resumable::of(&app.as_caller("key-of-alice"));
    let mallory = Resumable::of(&app.as_caller("key-of-mallory"));
    let chunks = 40;
    let body = vec![5u8; chunks * 64 * 1024];
    let digest = STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let url = alice.tus_created(body.len() as u64, "attacks/live.bin").await;
    let (stream, feed) = fed_body();
    let request = alice.tus_patch_request(&url, 0).header("upload-checksum", format!("sha256 {digest}"));
    let append = tokio::spawn(send(request.body(stream)));
    let live = tokio::spawn(stream_live(feed, chunks));
    let mut asked = Vec::<Reply>::new();
    while !live.is_finished() {
        asked.push(mallory.head(&url, Dialect::Tus).await);
        asked.push(alice.head(&url, Dialect::Tus).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    live.await.expect("the feeding task");
    let appended = append.await.expect("the request task");
    assert_eq!(appended.status, 204, "a live append asked about {} times: {appended}", asked.len());
    assert!(asked.iter().step_by(2).all(|reply| reply.status == 404), "another tenant's HEAD is 404");
    assert_eq!(alice.head(&url, Dialect::Tus).await.offset(), body.len() as u64);
}

/// A HEAD whose client went away after it had taken the upload's lease left the lease to expire (20 s), locking the
/// upload for everyone; a few such HEADs kept it locked.
async fn a_head_whose_client_leaves_leaves_no_lease(backend: Backend) {
    let app = backend.spawn(&[]).await;
    let files = Resumable::of(&app);
    let url = files.tus_created(10, "attacks/dropped.bin").await;
    for wait in [0u64, 1, 2, 4, 8, 16] {
        let dropped = tokio::time::timeout(Duration::from_millis(wait), files.head(&url, Dialect::Tus)).await;
        drop(dropped);
    }
    let started = Instant::now();
    let patched = files.tus_patch(&url, 0, b"0123456789".to_vec()).await;
    assert_eq!(patched.status, 204, "{patched}");
    assert!(started.elapsed() < Duration::from_secs(3), "no lease held the append: {:?}", started.elapsed());
}

/// An append stopped by its client's newer request was answered 400, which tus-js-client takes as fatal though its
/// bytes were kept; it is now what clients retry (423 for tus, 503 for the IETF draft).
async fn a_stopped_append_is_answered_what_clients_retry(backend: Backend) {
    let app = backend.spawn(&[]).await;
    let files = Resumable::of(&app);
    let url = files.tus_created(100, "attacks/stopped.bin").await;
    let (stream, feed) = fed_body();
    let append = tokio::spawn(send(files.tus_patch_request(&url, 0).body(stream)));
    assert!(feed.send(&[1; 40]).await);
    // The client goes quiet, then asks where the upload stands, as a client that resumes does.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let head = files.head(&url, Dialect::Tus).await;
    assert_eq!(head.offset(), 40, "the stopped append kept its bytes: {head}");
    let stopped = append.await.expect("the request task");
    assert_eq!(stopped.status, 423, "{stopped}");
    drop(feed);
    assert_eq!(files.tus_patch(&url, 40, vec![2; 60]).await.status, 204);
}

on_both_backends!(
    #[tokio::test]
    slow_appends_do_not_hold_memory_they_have_not_filled,
    a_refused_append_leaves_no_parts_behind,
    others_asking_where_an_upload_stands_cannot_stop_it,
    a_head_whose_client_leaves_leaves_no_lease,
    a_stopped_append_is_answered_what_clients_retry,
);

//! Confirm and delete: a confirm promotes exactly the bytes it checked, and a delete removes only what was
//! decided.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use draftstore::config::ServeSettings;
use draftstore::hooks::{Outbox, Subject};
use draftstore_storage::{BucketName, ObjectKey, ObjectStore};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;
use time::OffsetDateTime;

use crate::helpers::hooks::{Mode, Receiver, secret_text};
use crate::helpers::{Backend, TestApp, on_both_backends, report};

/// A server on `backend` with `extra` settings and the webhook secret, and the settings it runs with.
async fn start(backend: Backend, extra: &[&str]) -> (TestApp, ServeSettings) {
    let secret = secret_text();
    backend.spawn_with_settings(&[&["--webhook-secret", secret.as_str()], extra].concat()).await
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("a valid key")
}

/// An object's bytes, `None` when there is none.
async fn bytes_of(storage: &dyn ObjectStore, bucket: &BucketName, key: &ObjectKey) -> Option<Vec<u8>> {
    let meta = match storage.head(bucket, key).await {
        Ok(meta) => meta,
        Err(e) if e.is_not_found() => return None,
        Err(e) => panic!("head failed: {e}"),
    };
    match storage.read(bucket, key, None, meta.etag.as_deref()).await {
        Ok(chunks) => Some(draftstore_storage::collect(chunks, meta.size).await.expect("read").to_vec()),
        // Replaced or removed between the two: read it again.
        Err(_) => Box::pin(bytes_of(storage, bucket, key)).await,
    }
}

/// What the scanner saw, by store key.
#[derive(Default)]
struct Seen {
    /// Every body it accepted.
    accepted: HashMap<String, Vec<Vec<u8>>>,
    /// Every body it refused.
    refused: HashMap<String, Vec<Vec<u8>>>,
    /// Calls whose payload lacked the version (`etag`) of what it was asked about.
    without_etag: usize,
    /// Calls whose payload's `sha256` was not that of the bytes its URL served.
    wrong_sha256: usize,
}

/// A confirm hook that checks bytes as a scanner does: it reads the draft through the URL it is given, with the
/// headers it is given, refuses any body that holds `EVIL`, and remembers what it accepted and refused. A URL that
/// does not answer 200 leaves the decision open (503).
#[derive(Clone, Default)]
struct Scanner(Arc<Mutex<Seen>>);

impl Scanner {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let app = axum::Router::new().route("/hook", axum::routing::post(scan)).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("the scanner serves") });
        url
    }

    fn accepted(&self, key: &str) -> Vec<Vec<u8>> {
        self.0.lock().expect("lock").accepted.get(key).cloned().unwrap_or_default()
    }

    fn refused(&self, key: &str) -> Vec<Vec<u8>> {
        self.0.lock().expect("lock").refused.get(key).cloned().unwrap_or_default()
    }
}

async fn scan(State(scanner): State<Scanner>, body: Bytes) -> Response {
    let event: Value = serde_json::from_slice(&body).expect("a JSON event");
    let data = &event["data"];
    let key = data["key"].as_str().expect("a key").to_owned();
    if !data["etag"].is_string() {
        scanner.0.lock().expect("lock").without_etag += 1;
    }
    let mut get = reqwest::Client::new().get(data["download_url"].as_str().expect("a download URL"));
    for (name, value) in data["download_headers"].as_object().into_iter().flatten() {
        get = get.header(name.as_str(), value.as_str().expect("a header value"));
    }
    let Ok(response) = get.send().await else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
    if response.status() != 200 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let Ok(bytes) = response.bytes().await else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
    let evil = bytes.windows(4).any(|w| w == b"EVIL");
    let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    let sha256 = draftstore_storage::Checksum::from_digest(&digest);
    let mut seen = scanner.0.lock().expect("lock");
    if data["sha256"].as_str() != Some(sha256.as_str()) {
        seen.wrong_sha256 += 1;
    }
    if evil {
        seen.refused.entry(key).or_default().push(bytes.to_vec());
        axum::Json(json!({"accept": false, "reason": "EVIL found"})).into_response()
    } else {
        seen.accepted.entry(key).or_default().push(bytes.to_vec());
        StatusCode::OK.into_response()
    }
}

/// Tallies of the rounds of a race.
#[derive(Debug, Default)]
struct Tally {
    confirms: HashMap<u16, usize>,
    puts: HashMap<u16, usize>,
    /// Rounds whose confirm promoted the checked bytes while a replacement was stored meanwhile, which stayed a draft.
    promoted_and_kept: usize,
}

/// `rounds` rounds, `parallel` at a time, of a confirm of a clean draft racing a PUT of other bytes of the same
/// size (which the scanner refuses) to the same name, the PUT sent after a delay that differs from round to round,
/// up to `spread`.
/// After each: a confirmed object is byte for byte one the hook accepted, never the other; a PUT that was stored is
/// the draft now, or was refused by the hook, or (its bytes clean) is the confirmed object.
async fn a_put_racing_a_confirm(backend: Backend, rounds: usize, parallel: usize, spread: Duration) -> Tally {
    let scanner = Scanner::default();
    let hook = scanner.start().await;
    let (app, settings) = start(backend, &["--confirm-hook-url", &hook, "--hook-timeout", "10"]).await;
    let (draft, main) = (&settings.common.service.buckets.draft, &settings.common.service.buckets.main);
    let tally = Arc::new(Mutex::new(Tally::default()));
    futures_util::stream::iter(0..rounds)
        .for_each_concurrent(parallel, |round| {
            let (app, scanner, tally) = (&app, &scanner, Arc::clone(&tally));
            async move {
                let name = format!("race/{round}.txt");
                let (clean, evil) = (format!("clean-{round:06}"), format!("EVIL!-{round:06}"));
                app.upload(&name, Some("text/plain"), clean.as_bytes()).await;
                let ticket = app.upload_url(&name, Some("text/plain")).await.ok();
                // From at once to after the hook's answer (`spread`), in steps that fall between every two awaits.
                let delay = spread.mul_f64((round * 7_919 % 1_000) as f64 / 1_000.0);
                let put = async {
                    tokio::time::sleep(delay).await;
                    app.put_ticket(&ticket, evil.clone().into_bytes()).await
                };
                let (confirm, put) = tokio::join!(app.confirm(&name), put);
                let promoted = bytes_of(app.storage.as_ref(), main, &key(&name)).await;
                let left = bytes_of(app.storage.as_ref(), draft, &key(&name)).await;
                if let Some(promoted) = &promoted {
                    assert_ne!(promoted, evil.as_bytes(), "round {round}: bytes the hook refused were promoted");
                    assert!(
                        scanner.accepted(&name).contains(promoted),
                        "round {round}: the hook never saw the promoted bytes {:?}",
                        String::from_utf8_lossy(promoted)
                    );
                }
                assert_eq!(confirm.status == 200, promoted.is_some(), "round {round}: {confirm:?}");
                if put == 200 {
                    let kept = left.as_deref() == Some(evil.as_bytes());
                    let refused = scanner.refused(&name).iter().any(|body| body == evil.as_bytes());
                    assert!(kept || refused, "round {round}: a draft uploaded again vanished ({confirm:?})");
                    if kept && promoted.is_some() {
                        tally.lock().expect("lock").promoted_and_kept += 1;
                    }
                }
                let mut tally = tally.lock().expect("lock");
                *tally.confirms.entry(confirm.status).or_default() += 1;
                *tally.puts.entry(put).or_default() += 1;
            }
        })
        .await;
    assert_eq!(scanner.0.lock().expect("lock").without_etag, 0, "every hook call names the version it checks");
    assert_eq!(scanner.0.lock().expect("lock").wrong_sha256, 0, "every hook call's sha256 is that of what it reads");
    let tally = Arc::try_unwrap(tally).expect("the rounds are over").into_inner().expect("lock");
    report(&format!("{backend:?}: {rounds} confirms raced by a PUT: {tally:?}"));
    tally
}

/// Rounds and spread per backend: SeaweedFS answers slower, so fewer rounds with a wider spread still race.
async fn a_put_racing_a_confirm_never_promotes_unchecked_bytes(backend: Backend) {
    let (rounds, spread) = match backend {
        Backend::Local => (1_000, Duration::from_millis(12)),
        Backend::SeaweedFs => (200, Duration::from_millis(200)),
    };
    let tally = a_put_racing_a_confirm(backend, rounds, 8, spread).await;
    assert!(tally.confirms.get(&200).is_some_and(|n| *n > 0), "some confirms won: {tally:?}");
    assert!(tally.confirms.keys().any(|status| *status != 200), "some lost to the PUT: {tally:?}");
}

on_both_backends!(a_put_racing_a_confirm_never_promotes_unchecked_bytes);

/// The hook's URL serves the version checked and no other: once the draft is replaced it answers 412.
async fn the_hook_url_serves_only_the_checked_version(backend: Backend) {
    let events = Receiver::start(Mode::Accept).await;
    let (app, _settings) = start(backend, &["--confirm-hook-url", &events.url, "--hook-timeout", "5"]).await;
    // A hook that keeps the call to read later: the receiver answers after fetching, so a URL is taken from it.
    app.upload("bound.txt", Some("text/plain"), b"checked bytes").await;
    app.confirm("bound.txt").await.ok();
    let call = events.calls().pop().expect("the hook was asked");
    let data = call.json()["data"].clone();
    assert!(data["etag"].is_string(), "{data}");
    let url = data["download_url"].as_str().expect("a URL").to_owned();
    let headers = data["download_headers"].as_object().cloned().unwrap_or_default();
    // Another draft under the name, after the check: the URL of the checked version does not serve it.
    app.upload("bound.txt", Some("text/plain"), b"other bytes!!").await;
    let mut get = app.client.get(&url);
    for (name, value) in &headers {
        get = get.header(name.as_str(), value.as_str().expect("a header value"));
    }
    let status = get.send().await.expect("sent").status().as_u16();
    assert_eq!(status, 412, "a URL of one version served another");
    events.stop();
}

on_both_backends!(the_hook_url_serves_only_the_checked_version);

/// Drafts uploaded again while their set commits: each new upload is either still a draft, or (the set took that
/// version) the set's object, never gone.
async fn a_draft_uploaded_again_during_a_set_commit_survives(backend: Backend) {
    let (app, settings) = start(backend, &[]).await;
    let (draft, main) = (&settings.common.service.buckets.draft, &settings.common.service.buckets.main);
    let mut survived_as_draft = 0;
    for round in 0..10 {
        let names: Vec<String> = (0..8).map(|i| format!("set-{round}/{i}.txt")).collect();
        let mut tickets = Vec::new();
        for name in &names {
            app.upload(name, Some("text/plain"), format!("first {name}").as_bytes()).await;
            tickets.push(app.upload_url(name, Some("text/plain")).await.ok());
        }
        let drafts: Vec<Value> =
            names.iter().map(|name| json!({"object_name": name, "final_name": format!("final/{name}")})).collect();
        let request = json!({"idempotency_key": format!("again-{round}"), "drafts": drafts});
        let uploads = names.iter().zip(&tickets).enumerate().map(|(i, (name, ticket))| {
            let app = &app;
            async move {
                tokio::time::sleep(Duration::from_micros((round * 8 + i) as u64 * 1_301 % 15_000)).await;
                app.put_ticket(ticket, format!("again {name}").into_bytes()).await
            }
        });
        let (set, puts) =
            tokio::join!(app.post("/api/v1/confirm-set", &request), futures_util::future::join_all(uploads));
        for (name, put) in names.iter().zip(puts) {
            if put != 200 {
                continue;
            }
            let again = format!("again {name}").into_bytes();
            let as_draft = bytes_of(app.storage.as_ref(), draft, &key(name)).await;
            let promoted = bytes_of(app.storage.as_ref(), main, &key(&format!("final/{name}"))).await;
            assert!(
                as_draft.as_ref() == Some(&again) || promoted.as_ref() == Some(&again),
                "round {round}: {name} uploaded again vanished (set answered {set:?})"
            );
            survived_as_draft += usize::from(as_draft.as_ref() == Some(&again));
        }
    }
    report(&format!("{backend:?}: drafts uploaded again during a set commit that stayed drafts: {survived_as_draft}"));
}

on_both_backends!(a_draft_uploaded_again_during_a_set_commit_survives);

/// A draft uploaded again after the cleaner listed it as expired, before it removed it: the new upload stays.
async fn a_draft_uploaded_again_during_a_cleaner_pass_survives(backend: Backend) {
    let events = Receiver::start(Mode::Accept).await;
    let (app, settings) = start(backend, &["--events-url", &events.url]).await;
    for i in 0..5 {
        app.upload(&format!("old/{i}.txt"), Some("text/plain"), b"old").await;
    }
    let cleaner = settings.common.cleaner(app.store.clone());
    let later = OffsetDateTime::now_utc() + time::Duration::days(30);
    let runtime = tokio::runtime::Handle::current();
    let report = cleaner
        .clean_once_reporting(later, |listed| {
            // Listed as expired: uploaded again now, between the listing and the removal.
            if listed.key.as_str() == "old/2.txt" {
                tokio::task::block_in_place(|| {
                    runtime.block_on(app.upload("old/2.txt", Some("text/plain"), b"new bytes"))
                });
            }
        })
        .await;
    assert_eq!(report.removed, 4, "{report:?}");
    let draft = &settings.common.service.buckets.draft;
    assert_eq!(bytes_of(app.storage.as_ref(), draft, &key("old/2.txt")).await.as_deref(), Some(&b"new bytes"[..]));
    for i in [0, 1, 3, 4] {
        assert_eq!(bytes_of(app.storage.as_ref(), draft, &key(&format!("old/{i}.txt"))).await, None);
    }
    // The four removed are announced. (The draft that stayed had its event recorded with the others, and taken
    // back once the delete found it written again: a delivery in between is the window docs/security.md names.)
    events
        .wait_for("four draft.expired", |calls| {
            calls.iter().filter(|c| c.status == 200 && c.json()["type"] == "draft.expired").count() >= 4
        })
        .await;
    events.stop();
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_draft_uploaded_again_during_a_cleaner_pass_survives
);

/// Suspected: a replica starting up drives every journal with no grace, so it could find a set another replica
/// was finishing, after that one had written the outcome and forgotten the decision, and decide it again (abort:
/// its drafts are gone) and remove the committed objects. Sets are confirmed while another service drives every
/// journal in a loop, as start-up does: every committed set keeps its objects.
async fn a_replica_starting_up_never_undoes_a_set_finished_elsewhere(backend: Backend) {
    let (app, settings) = start(backend, &[]).await;
    let replica = settings.common.service(app.store.clone(), settings.common.storage_calls());
    let stop = Arc::new(AtomicBool::new(false));
    let recovering = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut finished = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(recovery) = replica.recover_sets(OffsetDateTime::now_utc(), Duration::ZERO).await {
                    finished += recovery.finished;
                }
                tokio::task::yield_now().await;
            }
            finished
        })
    };
    let main = &settings.common.service.buckets.main;
    for round in 0..30 {
        let names: Vec<String> = (0..4).map(|i| format!("recovered-{round}/{i}.txt")).collect();
        for name in &names {
            app.upload(name, Some("text/plain"), name.as_bytes()).await;
        }
        let drafts: Vec<Value> =
            names.iter().map(|name| json!({"object_name": name, "final_name": format!("final/{name}")})).collect();
        let request = json!({"idempotency_key": format!("k-{round}"), "drafts": drafts});
        let answer = app.post("/api/v1/confirm-set", &request).await;
        assert_eq!(answer.status, 200, "round {round}: {:?}", answer.body);
        for name in &names {
            let promoted = bytes_of(app.storage.as_ref(), main, &key(&format!("final/{name}"))).await;
            assert_eq!(promoted.as_deref(), Some(name.as_bytes()), "round {round}: a committed object was removed");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let finished = recovering.await.expect("the replica ran");
    // Once the replica has stopped, nothing it did undoes a set.
    for round in 0..30 {
        for i in 0..4 {
            let name = format!("final/recovered-{round}/{i}.txt");
            assert!(bytes_of(app.storage.as_ref(), main, &key(&name)).await.is_some(), "{name} was removed");
        }
    }
    report(&format!("{backend:?}: sets the starting replica drove meanwhile: {finished}"));
}

on_both_backends!(a_replica_starting_up_never_undoes_a_set_finished_elsewhere);

/// Suspected: a confirm records `draft.confirmed` before its move, to be delivered once the main bucket holds the
/// key; when the confirm dies before its move and an older object sits at the key, that object was taken for the
/// confirm's. The event waits for the move's own object and is never delivered.
async fn draft_confirmed_is_never_sent_for_a_confirm_that_did_not_happen(backend: Backend) {
    let events = Receiver::start(Mode::Accept).await;
    let (app, settings) = start(backend, &["--events-url", &events.url]).await;
    app.upload("taken.txt", Some("text/plain"), b"the older object").await;
    app.confirm("taken.txt").await.ok();
    // A confirm of a new draft of the same name, with overwrite, that recorded its event and died before its move.
    app.upload("taken.txt", Some("text/plain"), b"a newer draft").await;
    let draft = app.storage.head(&settings.common.service.buckets.draft, &key("taken.txt")).await.expect("the draft");
    let outbox = Outbox::new(Arc::clone(&app.storage), settings.common.service.buckets.events.clone());
    let subject = Subject {
        tenant: None,
        object_name: "taken.txt",
        key: &key("taken.txt"),
        size: draft.size,
        content_type: None,
    };
    let phantom = "msg_aconfirmthatneverhappened".to_owned();
    let origins = [Some(phantom.clone()), draft.etag.clone()].into_iter().flatten().collect();
    outbox.record_promotion(phantom.clone(), &subject, json!({}), origins).await.expect("recorded");
    // Events recorded after it are delivered; it is not, while the draft waits unmoved.
    app.upload("after.txt", Some("text/plain"), b"after").await;
    app.confirm("after.txt").await.ok();
    events
        .wait_for("the later draft.confirmed", |calls| {
            calls.iter().any(|c| c.status == 200 && c.json()["data"]["object_name"] == "after.txt")
        })
        .await;
    // Past the first re-check of a waiting entry (5 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(!events.calls().iter().any(|c| c.id == phantom), "a confirm that never happened was announced");
    events.stop();
}

on_both_backends!(draft_confirmed_is_never_sent_for_a_confirm_that_did_not_happen);

/// Suspected on S3 (a move copies, then deletes): two confirms of one draft to two final names at once could both
/// copy it. One only succeeds, and the draft is in one place only.
async fn two_confirms_of_one_draft_to_two_names_promote_it_once(backend: Backend) {
    let (app, settings) = start(backend, &[]).await;
    let main = &settings.common.service.buckets.main;
    let mut won = [0; 2];
    for round in 0..20 {
        let name = format!("twice/{round}.txt");
        app.upload(&name, Some("text/plain"), name.as_bytes()).await;
        let to = |suffix: &str| json!({"object_name": name, "final_name": format!("{name}.{suffix}")});
        let (to_a, to_b) = (to("a"), to("b"));
        let (a, b) = tokio::join!(app.post("/api/v1/confirm-upload", &to_a), app.post("/api/v1/confirm-upload", &to_b));
        assert!(!(a.status == 200 && b.status == 200), "round {round}: both confirms succeeded: {a:?} {b:?}");
        let a_there = bytes_of(app.storage.as_ref(), main, &key(&format!("{name}.a"))).await.is_some();
        let b_there = bytes_of(app.storage.as_ref(), main, &key(&format!("{name}.b"))).await.is_some();
        assert!(!(a_there && b_there), "round {round}: one draft promoted under two names");
        assert_eq!((a.status == 200, b.status == 200), (a_there, b_there), "round {round}: {a:?} {b:?}");
        won[usize::from(b.status == 200)] += usize::from(a.status == 200 || b.status == 200);
    }
    report(&format!("{backend:?}: two confirms to two names, rounds won by each: {won:?}"));
}

on_both_backends!(two_confirms_of_one_draft_to_two_names_promote_it_once);

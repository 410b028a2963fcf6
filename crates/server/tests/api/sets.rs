//! Sets of drafts confirmed all together or not at all (`confirm-set`), on the local backend and on SeaweedFS:
//! every draft promoted under its final name, or none and every draft kept, whether a draft fails its checks, a
//! final name is taken, or the server is killed at random moments; the same idempotency key answers the recorded
//! outcome.

use std::time::Duration;

use draftstore::startup::open_backend;
use draftstore_client::Client;
use draftstore_client::api::{self, ErrorType};
use draftstore_proto::draft::v1 as pb;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{
    Backend, Rng, Server, TENANTS, TestApp, api_keys, on_both_backends, serve_settings, upload_through, windows_program,
};

fn with_keys() -> Vec<String> {
    vec!["--auth-mode".into(), "api-key".into(), "--api-keys".into(), api_keys(&TENANTS)]
}

/// A server on `backend` with the tenants' keys, called as alice.
async fn as_alice_on(backend: Backend) -> TestApp {
    backend.spawn(&with_keys().iter().map(String::as_str).collect::<Vec<_>>()).await.as_caller("key-of-alice")
}

/// `count` drafts `<prefix>/0.txt`…, each holding its own name.
async fn drafts(app: &TestApp, prefix: &str, count: usize) -> Vec<Value> {
    let mut listed = Vec::new();
    for i in 0..count {
        let name = format!("{prefix}/{i}.txt");
        app.upload(&name, Some("text/plain"), name.as_bytes()).await;
        listed.push(
            json!({"object_name": name, "final_name": format!("final/{name}"), "metadata": {"index": i.to_string()}}),
        );
    }
    listed
}

async fn count(app: &TestApp, route: &str, prefix: &str) -> usize {
    let field = if route.ends_with("drafts") { "drafts" } else { "objects" };
    let page = app.post(route, &json!({"prefix": prefix, "page_size": 1000})).await.ok();
    page[field].as_array().expect("a list").len()
}

/// Drafts still drafts, and their objects in the main bucket.
async fn state(app: &TestApp, prefix: &str) -> (usize, usize) {
    (
        count(app, "/api/v1/list-drafts", &format!("{prefix}/")).await,
        count(app, "/api/v1/list-objects", &format!("final/{prefix}/")).await,
    )
}

async fn sets_are_all_or_nothing(backend: Backend) {
    let app = &as_alice_on(backend).await;
    // All together: each under its final name with its metadata, the drafts gone, in the order asked.
    let three = drafts(app, "trio", 3).await;
    let request = json!({"idempotency_key": "order-1", "drafts": three});
    let set = app.post("/api/v1/confirm-set", &request).await.ok();
    let set_id = set["set_id"].as_str().expect("a set id").to_owned();
    let confirmed: Vec<&str> =
        set["objects"].as_array().expect("objects").iter().map(|o| o["object_name"].as_str().expect("name")).collect();
    assert_eq!(confirmed, ["final/trio/0.txt", "final/trio/1.txt", "final/trio/2.txt"]);
    assert_eq!(state(app, "trio").await, (0, 3));
    let stat = app.post("/api/v1/stat-object", &json!({"object_name": "final/trio/1.txt"})).await.ok();
    assert_eq!(stat["metadata"], json!({"index": "1"}), "the set's own mark is not the caller's metadata");
    // The same key again: the recorded outcome; with other drafts: refused.
    let again = app.post("/api/v1/confirm-set", &request).await.ok();
    assert_eq!(again["set_id"], set_id.as_str());
    let other = json!({"idempotency_key": "order-1", "drafts": [{"object_name": "trio/0.txt"}]});
    app.post("/api/v1/confirm-set", &other).await.error(409, "IDEMPOTENCY_KEY_REUSED");

    // One draft of twenty fails its checks: nothing promoted, all twenty drafts kept.
    let mut twenty = drafts(app, "form", 19).await;
    app.upload("form/19.png", Some("image/png"), &windows_program()).await;
    twenty.push(json!({"object_name": "form/19.png", "final_name": "final/form/19.png"}));
    let refused = app.post("/api/v1/confirm-set", &json!({"idempotency_key": "form-1", "drafts": twenty})).await;
    refused.error(422, "CONTENT_TYPE_MISMATCH");
    assert!(refused.body["error_message"].as_str().is_some_and(|m| m.contains("form/19.png")), "{:?}", refused.body);
    assert_eq!(state(app, "form").await, (20, 0));

    // A final name taken: 409 naming it, nothing changed (the taken object untouched).
    let mut five = drafts(app, "pair", 5).await;
    app.upload("taken.txt", Some("text/plain"), b"already here").await;
    app.confirm("taken.txt").await.ok();
    five[3]["final_name"] = json!("taken.txt");
    let taken = app.post("/api/v1/confirm-set", &json!({"idempotency_key": "pair-1", "drafts": five})).await;
    taken.error(409, "OBJECT_ALREADY_EXISTS");
    assert!(taken.body["error_message"].as_str().is_some_and(|m| m.contains("'taken.txt'")), "{:?}", taken.body);
    assert_eq!(state(app, "pair").await, (5, 0));
    assert_eq!(app.download("taken.txt", Some("main")).await.1, b"already here");

    // Requests that cannot be a set change nothing.
    let one = json!([{"object_name": "pair/0.txt"}]);
    for (request, error) in [
        (json!({"idempotency_key": "k", "drafts": []}), "INVALID_REQUEST"),
        (json!({"idempotency_key": "k", "drafts": vec![json!({"object_name": "pair/0.txt"}); 101]}), "INVALID_REQUEST"),
        (
            json!({"idempotency_key": "k", "drafts": [{"object_name": "pair/0.txt"}, {"object_name": "pair/0.txt"}]}),
            "INVALID_REQUEST",
        ),
        (
            json!({"idempotency_key": "k", "drafts": [{"object_name": "pair/0.txt", "final_name": "x"}, {"object_name": "pair/1.txt", "final_name": "x"}]}),
            "INVALID_REQUEST",
        ),
        (json!({"idempotency_key": "not a key", "drafts": one}), "INVALID_REQUEST"),
        (json!({"drafts": one}), "INVALID_REQUEST"),
        (
            json!({"idempotency_key": "k", "drafts": [{"object_name": "pair/0.txt", "metadata": {"A": "b"}}]}),
            "INVALID_REQUEST",
        ),
    ] {
        app.post("/api/v1/confirm-set", &request).await.error(400, error);
    }
    let missing =
        json!({"idempotency_key": "k", "drafts": [{"object_name": "pair/0.txt"}, {"object_name": "nowhere.txt"}]});
    let answer = app.post("/api/v1/confirm-set", &missing).await;
    answer.error(404, "OBJECT_NOT_FOUND");
    assert!(answer.body["error_message"].as_str().is_some_and(|m| m.contains("nowhere.txt")), "{:?}", answer.body);
    // Another tenant's drafts are not the caller's.
    let mallory = app.as_caller("key-of-mallory");
    mallory
        .post("/api/v1/confirm-set", &json!({"idempotency_key": "k", "drafts": one}))
        .await
        .error(404, "OBJECT_NOT_FOUND");
    assert_eq!(state(app, "pair").await, (5, 0));
}

on_both_backends!(sets_are_all_or_nothing);

#[tokio::test]
async fn a_set_is_confirmed_over_grpc() {
    let app = as_alice_on(Backend::Local).await;
    for name in ["g/a.txt", "g/b.txt"] {
        app.upload(name, Some("text/plain"), b"grpc").await;
    }
    let mut grpc = app.grpc().await;
    let request = pb::ConfirmSetRequest {
        idempotency_key: "grpc-1".into(),
        drafts: vec![
            pb::SetDraft { object_name: "g/a.txt".into(), final_name: "g/final-a.txt".into(), ..Default::default() },
            pb::SetDraft { object_name: "g/b.txt".into(), ..Default::default() },
        ],
    };
    let set = grpc.confirm_set(app.rpc(request.clone())).await.expect("confirmed").into_inner();
    let names: Vec<_> = set.objects.iter().map(|o| o.object_name.as_str()).collect();
    assert_eq!(names, ["g/final-a.txt", "g/b.txt"]);
    let again = grpc.confirm_set(app.rpc(request)).await.expect("the recorded outcome").into_inner();
    assert_eq!(again.set_id, set.set_id);
    let empty = pb::ConfirmSetRequest { idempotency_key: "grpc-2".into(), drafts: vec![] };
    assert_eq!(grpc.confirm_set(app.rpc(empty)).await.expect_err("refused").code(), tonic::Code::InvalidArgument);
}

const SETS: usize = 30;
const DRAFTS: usize = 20;

fn set_request(set: usize) -> api::ConfirmSetRequest {
    api::ConfirmSetRequest {
        idempotency_key: format!("set-{set}"),
        drafts: (0..DRAFTS)
            .map(|i| api::SetDraft {
                object_name: format!("s{set}/{i}.txt"),
                final_name: Some(format!("final/s{set}/{i}.txt")),
                metadata: Some([("set".to_owned(), set.to_string())].into()),
            })
            .collect(),
    }
}

/// How many of a set's drafts are still drafts, and how many are confirmed.
async fn set_state(client: &Client, set: usize) -> (usize, usize) {
    let drafts = client.list_all_drafts(Some(&format!("s{set}/"))).await.expect("drafts listed").len();
    let objects = client.list_all_objects(Some(&format!("final/s{set}/"))).await.expect("objects listed").len();
    (drafts, objects)
}

/// 30 sets of 20 drafts confirmed while the server is killed (SIGKILL) at random moments and restarted: after the
/// restarts every set is whole in the main bucket or still whole in the drafts; each request repeated with its key
/// answers the outcome recorded (the same set id for those that answered); one cleaner pass then leaves no journal.
async fn sets_survive_sigkill(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let label = backend.label();
    let mut rng = Rng::new();
    let seed = rng.seed;
    let mut server = Server::new(args.clone());
    server.start().await;
    let client = Client::new(&server.url(), None).expect("client");
    let http = reqwest::Client::new();
    for set in 0..SETS {
        for i in 0..DRAFTS {
            let name = format!("s{set}/{i}.txt");
            let request = api::UploadUrlRequest {
                object_name: name.clone(),
                content_type: Some("text/plain".into()),
                ..Default::default()
            };
            upload_through(&client, &request, name.clone().into_bytes()).await;
        }
    }

    let mut answered: Vec<Option<String>> = vec![None; SETS];
    let (mut next, mut kills, mut cut) = (0, 0, 0);
    while next < SETS {
        let first = next;
        let workload = {
            let client = Client::new(&server.url(), None).expect("client");
            tokio::spawn(async move {
                let mut done = Vec::new();
                for set in first..SETS {
                    match client.confirm_set(&set_request(set)).await {
                        Ok(answer) => done.push((set, Some(answer.set_id))),
                        Err(_) => {
                            done.push((set, None));
                            break;
                        }
                    }
                }
                done
            })
        };
        tokio::time::sleep(Duration::from_millis(20 + rng.below(400))).await;
        server.kill();
        kills += 1;
        for (set, outcome) in workload.await.expect("workload") {
            cut += usize::from(outcome.is_none());
            answered[set] = outcome;
            next = set + 1;
        }
        server.start().await;
    }
    crate::helpers::report(&format!(
        "sets ({label}): seed {seed}, {kills} SIGKILLs, {} sets answered, {cut} cut off by a kill",
        answered.iter().flatten().count()
    ));
    assert!(cut > 0, "no kill cut a set off (seed {seed})");

    // After the restarts: each set whole in one place.
    for (set, answer) in answered.iter().enumerate() {
        let state = set_state(&client, set).await;
        assert!(state == (DRAFTS, 0) || state == (0, DRAFTS), "set {set}: {state:?} (drafts, confirmed), seed {seed}");
        if answer.is_some() {
            assert_eq!(state, (0, DRAFTS), "set {set} answered 200 (seed {seed})");
        }
    }
    // Each request again, with its key: the recorded outcome.
    for (set, answered) in answered.iter().enumerate() {
        let answer =
            client.confirm_set(&set_request(set)).await.unwrap_or_else(|e| panic!("set {set}: {e} (seed {seed})"));
        if let Some(id) = answered {
            assert_eq!(&answer.set_id, id, "set {set} answered another outcome (seed {seed})");
        }
        assert_eq!(set_state(&client, set).await, (0, DRAFTS), "set {set} (seed {seed})");
        let other = api::ConfirmSetRequest { drafts: set_request(set).drafts[..1].to_vec(), ..set_request(set) };
        let reused = client.confirm_set(&other).await.expect_err("another request under the same key");
        assert_eq!(reused.error_type(), Some(ErrorType::IdempotencyKeyReused));
    }
    let objects = client.list_all_objects(Some("final/")).await.expect("listed");
    for object in &objects {
        let name = object.object_name.trim_start_matches("final/");
        let ticket = client
            .download_url(&api::DownloadUrlRequest { object_name: object.object_name.clone(), ..Default::default() })
            .await
            .expect("a download URL");
        let bytes = http.get(&ticket.download_url).send().await.expect("sent").bytes().await.expect("body");
        assert_eq!(bytes, name.as_bytes(), "{name} is whole");
    }
    server.kill();

    // One cleaner pass: no journal or decision left.
    let settings = serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let backend = open_backend(&settings.common, url::Url::parse("http://localhost").expect("url"), None)
        .await
        .expect("the store opens");
    let storage = std::sync::Arc::clone(&backend.store.objects);
    let report = settings.common.cleaner(backend.store).clean_once(OffsetDateTime::now_utc()).await;
    assert!(report.succeeded(), "{}", report.summary());
    let events = &settings.common.service.buckets.events;
    let records = storage.list_prefix(events, "sets/", None, 1000).await.expect("listed");
    let left: Vec<_> = records.objects.iter().map(|o| o.key.to_string()).filter(|k| !k.ends_with("/outcome")).collect();
    assert!(left.is_empty(), "the cleaner left journal records: {left:?}");
    assert_eq!(records.objects.len(), SETS, "one outcome per set, kept for its key");
}

on_both_backends!(sets_survive_sigkill);

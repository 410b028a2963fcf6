//! The confirm hook and the events, against a real HTTP receiver started by the test, on the local backend and
//! SeaweedFS: a hook that accepts (after reading the draft through the URL it was given), rejects, is down, is too
//! slow; events of every type, signed, delivered at least once through a receiver's failures, a SIGKILL and two
//! replicas sharing the outbox.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine;
use draftstore::hooks::WebhookSecret;
use serde_json::{Value, json};

use crate::helpers::hooks::{Call, Mode, Receiver, secret, secret_text, summary};
use crate::helpers::{
    Backend, Server, TestApp, fixture, free_port, grpc_confirm, on_both_backends, serve_settings, spawn,
    upload_through, windows_program,
};
use crate::seaweed;

async fn app_with(args: &[String], extra: &[&str]) -> TestApp {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    let secret = secret_text();
    all.extend(["--webhook-secret", &secret]);
    all.extend_from_slice(extra);
    spawn(serve_settings(&all)).await
}

async fn draft_exists(app: &TestApp, name: &str) -> bool {
    let answer = app.post("/api/v1/download-url", &json!({"object_name": name, "stage": "draft"})).await;
    assert!(answer.status == 200 || answer.status == 404, "{:?}", answer.body);
    answer.status == 200
}

async fn the_confirm_hook_accepts_rejects_and_times_out(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let hook = Receiver::start(Mode::Accept).await;
    let app = app_with(&args, &["--confirm-hook-url", &hook.url, "--hook-timeout", "2"]).await;

    // Accepted: the hook was asked once, signed, and read the draft through the URL it was given.
    app.upload("ok.txt", Some("text/plain"), b"clean bytes").await;
    app.confirm("ok.txt").await.ok();
    let calls = hook.calls();
    assert_eq!(calls.len(), 1, "{:#?}", summary(&calls));
    let event = calls[0].json();
    assert_eq!(event["type"], "draft.confirming");
    assert_eq!(event["data"]["object_name"], "ok.txt");
    assert_eq!(event["data"]["size"], 11);
    assert_eq!(event["data"]["content_type"], "text/plain");
    assert_eq!(calls[0].fetched.as_deref(), Some(&b"clean bytes"[..]));
    assert!(calls[0].verifies_with(&secret()), "the signature verifies with the secret");
    let other = WebhookSecret::parse(&format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32])))
        .expect("valid");
    assert!(!calls[0].verifies_with(&other), "and not with another");
    assert_eq!(event["data"]["content"], json!({}), "nothing detected in plain text");
    // An idempotent confirm that finds the object promoted does not ask again.
    app.confirm("ok.txt").await.ok();
    assert_eq!(hook.calls().len(), 1);

    // The hook is told what the content checks found; a draft that fails them never reaches it.
    app.upload("photo.png", Some("image/png"), &fixture("photo.png")).await;
    app.confirm("photo.png").await.ok();
    let calls = hook.calls();
    assert_eq!(calls.len(), 2, "{:#?}", summary(&calls));
    assert_eq!(calls[1].json()["data"]["content"], json!({"detected_type": "image/png", "width": 64, "height": 48}));
    app.upload("program.png", Some("image/png"), &windows_program()).await;
    app.confirm("program.png").await.error(422, "CONTENT_TYPE_MISMATCH");
    assert_eq!(hook.calls().len(), 2, "the hook was not asked");

    // Rejected in a 2xx body, and with a 4xx: 422 with the hook's reason, the draft deleted.
    for (mode, reason) in [
        (Mode::RejectInBody("EICAR test signature"), "EICAR test signature"),
        (Mode::RejectWithStatus("not a PDF"), "not a PDF"),
    ] {
        hook.set_mode(mode);
        app.upload("bad.txt", Some("text/plain"), b"infected").await;
        let answer = app.confirm("bad.txt").await;
        answer.error(422, "UPLOAD_REJECTED");
        assert!(answer.body["error_message"].as_str().expect("message").contains(reason), "{:?}", answer.body);
        assert!(!draft_exists(&app, "bad.txt").await, "a rejected draft is deleted");
        assert_eq!(
            app.post("/api/v1/download-url", &json!({"object_name": "bad.txt", "stage": "main"})).await.status,
            404
        );
    }

    // Too slow: 503, the draft kept.
    hook.set_mode(Mode::Slow(Duration::from_secs(10)));
    app.upload("slow.txt", None, b"slow").await;
    let started = Instant::now();
    app.confirm("slow.txt").await.error(503, "HOOK_UNAVAILABLE");
    // HOOK_TIMEOUT (2 s) and a margin a loaded machine keeps, well short of the hook's 10 s.
    assert!(started.elapsed() < Duration::from_secs(2 + 4), "HOOK_TIMEOUT bounds the wait");
    assert!(draft_exists(&app, "slow.txt").await, "the draft is kept");
    hook.stop();
}

async fn a_confirm_hook_that_is_down_fails_closed(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = app_with(&args, &["--confirm-hook-url", &url, "--hook-timeout", "2"]).await;
    app.upload("later.txt", None, b"later").await;
    let answer = app.confirm("later.txt").await;
    answer.error(503, "HOOK_UNAVAILABLE");
    let status = app.grpc().await.confirm_upload(grpc_confirm("later.txt")).await.expect_err("the hook is down");
    use tonic_types::StatusExt;
    let reason = status.get_details_error_info().map(|info| info.reason).unwrap_or_default();
    assert_eq!((status.code(), reason.as_str()), (tonic::Code::Unavailable, "HOOK_UNAVAILABLE"));
    assert!(draft_exists(&app, "later.txt").await, "the draft is kept while the hook is down");
    let hook = Receiver::start_on(port, Mode::Accept).await;
    app.confirm("later.txt").await.ok();
    assert_eq!(hook.calls().len(), 1);
    assert!(!draft_exists(&app, "later.txt").await);
    hook.stop();
}

async fn every_event_is_delivered_signed(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let events = Receiver::start(Mode::Accept).await;
    events.fail_first(3);
    let hook = Receiver::start(Mode::Accept).await;
    let app = app_with(
        &args,
        &[
            "--events-url",
            &events.url,
            "--confirm-hook-url",
            &hook.url,
            "--object-lifetime",
            "5",
            "--cleanup-interval",
            "1",
        ],
    )
    .await;
    // draft.confirmed, through a receiver that fails its first three attempts.
    app.upload("kept.txt", Some("text/plain"), b"kept").await;
    app.confirm("kept.txt").await.ok();
    let calls = events.wait_for("draft.confirmed with a 2xx", |calls| calls.iter().any(|c| c.status == 200)).await;
    assert_eq!(calls.len(), 4, "three failures, then the delivery: {:#?}", summary(&calls));
    assert!(calls.iter().all(|c| c.id == calls[0].id), "the same webhook-id on every attempt");
    assert!(calls.iter().all(|c| c.verifies_with(&secret())));
    let confirmed = calls[3].json();
    assert_eq!(confirmed["type"], "draft.confirmed");
    assert_eq!(
        (confirmed["data"]["object_name"].clone(), confirmed["data"]["size"].clone()),
        (json!("kept.txt"), json!(4))
    );
    assert_eq!(confirmed["data"]["content_type"], "text/plain");
    assert!(confirmed["data"]["time"].is_string());
    assert_eq!(confirmed["data"]["content"], json!({}), "what the checks found: nothing, in plain text");

    // draft.rejected (by the hook), draft.discarded, draft.expired (by the cleaner inside the server).
    hook.set_mode(Mode::RejectInBody("not today"));
    app.upload("bad.txt", None, b"bad").await;
    app.confirm("bad.txt").await.error(422, "UPLOAD_REJECTED");
    app.upload("program.png", Some("image/png"), &windows_program()).await;
    app.confirm("program.png").await.error(422, "CONTENT_TYPE_MISMATCH");
    app.upload("gone.txt", None, b"gone").await;
    app.post("/api/v1/discard-draft", &json!({"object_name": "gone.txt"})).await.ok();
    app.upload("old.txt", None, b"old").await;
    let wanted = ["draft.confirmed", "draft.rejected", "draft.discarded", "draft.expired"];
    let calls = events
        .wait_for("every type", |calls| {
            wanted.iter().all(|t| calls.iter().any(|c| c.status == 200 && c.json()["type"] == *t))
        })
        .await;
    for call in calls.iter().filter(|c| c.status == 200) {
        assert!(call.verifies_with(&secret()), "{}", String::from_utf8_lossy(&call.body));
    }
    let expired = calls.iter().find(|c| c.json()["type"] == "draft.expired").expect("expired").json();
    assert_eq!(expired["data"]["key"], "old.txt");
    let discarded = calls.iter().find(|c| c.json()["type"] == "draft.discarded").expect("discarded").json();
    assert_eq!(discarded["data"]["object_name"], "gone.txt");
    let rejections: Vec<Value> =
        calls.iter().filter(|c| c.status == 200 && c.json()["type"] == "draft.rejected").map(Call::json).collect();
    let rejected = |name: &str| rejections.iter().find(|r| r["data"]["object_name"] == name).cloned();
    let by_hook = rejected("bad.txt").expect("bad.txt rejected");
    assert_eq!(by_hook["data"]["error_type"], "UPLOAD_REJECTED");
    assert!(by_hook["data"]["reason"].as_str().is_some_and(|r| r.contains("not today")), "{by_hook}");
    let by_checks = events
        .wait_for("program.png rejected", |calls| {
            calls.iter().any(|c| c.status == 200 && c.json()["data"]["object_name"] == "program.png")
        })
        .await
        .into_iter()
        .find(|c| c.status == 200 && c.json()["data"]["object_name"] == "program.png")
        .expect("delivered")
        .json();
    assert_eq!(
        (by_checks["type"].as_str(), by_checks["data"]["error_type"].as_str()),
        (Some("draft.rejected"), Some("CONTENT_TYPE_MISMATCH"))
    );
    assert!(by_checks["data"]["reason"].as_str().is_some_and(|r| r.contains("declared image/png")), "{by_checks}");
    events.stop();
    hook.stop();
}

/// 150 events the receiver refuses every time, recorded first, do not hold back the 151st: a pass reads on past
/// entries waiting out their backoff.
async fn refused_events_do_not_hold_back_the_others(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let events = Receiver::start(Mode::FailNamed("poison/")).await;
    let app = app_with(&args, &["--events-url", &events.url]).await;
    for i in 0..150 {
        let name = format!("poison/{i:03}.txt");
        app.upload(&name, Some("text/plain"), b"refused by the receiver").await;
        app.confirm(&name).await.ok();
    }
    // Every refused event has been tried and is waiting out its backoff before the good one is recorded.
    events
        .wait_for("a try of each refused event", |calls| {
            calls.iter().filter(|c| c.status == 500).map(|c| c.id.clone()).collect::<HashSet<_>>().len() == 150
        })
        .await;
    app.upload("good.txt", Some("text/plain"), b"wanted").await;
    app.confirm("good.txt").await.ok();
    let calls = events
        .wait_for("the event behind the refused ones", |calls| {
            calls.iter().any(|c| c.status == 200 && c.json()["data"]["object_name"] == "good.txt")
        })
        .await;
    let refused = calls.iter().filter(|c| c.status == 500).count();
    crate::helpers::report(&format!("{backend:?}: the 151st event arrived after {refused} refused deliveries"));
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    assert!(metrics.contains("draftstore_events_outbox_oldest_seconds"), "{metrics}");
    events.stop();
}

/// An image's report goes to the hook before anything is written, and in `draft.confirmed` as the confirm answered
/// it, the size the promoted object's; a set's members carry theirs. A hook that rejects an image leaves no variant.
async fn an_image_s_report_goes_to_the_hook_and_in_its_events(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let events = Receiver::start(Mode::Accept).await;
    let hook = Receiver::start(Mode::Accept).await;
    let variants = "thumb=16x16,cover,webp";
    let extra = ["--events-url", &events.url, "--confirm-hook-url", &hook.url, "--image-variants", variants];
    let app = app_with(&args, &extra).await;

    app.upload("photo.png", Some("image/png"), &fixture("photo.png")).await;
    let confirmed = app.confirm("photo.png").await.ok();
    let image = confirmed["image"].clone();
    assert_eq!(image["variants"][0]["name"], "thumb", "{confirmed}");
    let asked = hook.calls();
    assert_eq!(asked.len(), 1, "{:#?}", summary(&asked));
    assert_eq!(asked[0].json()["data"]["image"], image, "the hook sees what the confirm answers");
    let calls =
        events.wait_for("draft.confirmed", |calls| calls.iter().any(|c| c.json()["type"] == "draft.confirmed")).await;
    let event = calls.iter().map(Call::json).find(|e| e["type"] == "draft.confirmed").expect("announced");
    assert_eq!(event["data"]["image"], image);
    let stat = app.post("/api/v1/stat-object", &json!({"object_name": "photo.png"})).await.ok();
    assert_eq!(event["data"]["size"], stat["size"], "the promoted object's size");

    // A set: each member's event has its image.
    app.upload("set/a.png", Some("image/png"), &fixture("photo.png")).await;
    let set = json!({"idempotency_key": "images-1", "drafts": [{"object_name": "set/a.png"}]});
    let answer = app.post("/api/v1/confirm-set", &set).await.ok();
    let member = answer["objects"][0]["image"].clone();
    assert_eq!(member["variants"][0]["name"], "thumb", "{answer}");
    let calls = events
        .wait_for("the set's draft.confirmed", |calls| {
            calls
                .iter()
                .any(|c| c.json()["type"] == "draft.confirmed" && c.json()["data"]["object_name"] == "set/a.png")
        })
        .await;
    let event = calls
        .iter()
        .map(Call::json)
        .find(|e| e["type"] == "draft.confirmed" && e["data"]["object_name"] == "set/a.png")
        .expect("announced");
    assert_eq!(event["data"]["image"], member);

    // Rejected by the hook: refused, and the object has no variant to serve.
    hook.set_mode(Mode::RejectInBody("no photos today"));
    app.upload("rejected.png", Some("image/png"), &fixture("photo.png")).await;
    app.confirm("rejected.png").await.error(422, "UPLOAD_REJECTED");
    let variant = json!({"object_name": "rejected.png", "variant": "thumb"});
    app.post("/api/v1/download-url", &variant).await.error(404, "OBJECT_NOT_FOUND");
}

on_both_backends!(an_image_s_report_goes_to_the_hook_and_in_its_events);

on_both_backends!(refused_events_do_not_hold_back_the_others);

on_both_backends!(the_confirm_hook_accepts_rejects_and_times_out);

on_both_backends!(a_confirm_hook_that_is_down_fails_closed);

on_both_backends!(every_event_is_delivered_signed);

/// Uploads `body` as the draft `name` through the URL DraftStore hands `client`.
async fn upload_draft(client: &draftstore_client::Client, name: &str, body: impl Into<reqwest::Body>) {
    let request = draftstore_client::api::UploadUrlRequest { object_name: name.into(), ..Default::default() };
    upload_through(client, &request, body).await;
}

/// The binary killed with SIGKILL right after a confirm answered 200, before the receiver could be reached, and
/// restarted: the event is still delivered.
async fn an_event_survives_a_sigkill(backend: Backend) {
    let (mut args, _dir) = backend.args().await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    // A short HOOK_TIMEOUT keeps the lease of the killed process short: the restarted one takes over sooner.
    args.extend([
        "--events-url".into(),
        url,
        "--webhook-secret".into(),
        secret_text(),
        "--hook-timeout".into(),
        "2".into(),
    ]);
    let mut server = Server::new(args);
    server.start().await;
    let client = draftstore_client::Client::new(&server.url(), None).expect("a client");
    upload_draft(&client, "crash.txt", &b"survives"[..]).await;
    client
        .confirm_upload(&draftstore_client::api::ConfirmUploadRequest {
            object_name: "crash.txt".into(),
            overwrite: None,
            ..Default::default()
        })
        .await
        .expect("confirmed");
    server.kill();
    let events = Receiver::start_on(port, Mode::Accept).await;
    server.start().await;
    let calls = events
        .wait_for("draft.confirmed after the restart", |calls| {
            calls
                .iter()
                .any(|c| c.json()["type"] == "draft.confirmed" && c.json()["data"]["object_name"] == "crash.txt")
        })
        .await;
    assert!(calls.iter().all(|c| c.verifies_with(&secret())));
    events.stop();
}

on_both_backends!(an_event_survives_a_sigkill);

/// A confirm killed after it recorded its event and before the move finished, then sent again (as a load balancer
/// resends a request whose replica died): the object is announced once, under one `webhook-id`, though two entries
/// were written. A 256 MiB draft on SeaweedFS keeps the move (a multipart copy) going long enough to kill it midway.
#[tokio::test]
async fn a_confirm_sent_again_after_a_sigkill_is_announced_under_one_id() {
    let weed = seaweed::shared().await;
    let bucket = seaweed::unique_bucket();
    let port = free_port();
    let mut args = weed.s3_args(&bucket);
    args.extend(
        ["--events-url", &format!("http://127.0.0.1:{port}/hook"), "--webhook-secret", &secret_text()]
            .map(String::from),
    );
    args.extend(["--hook-timeout", "2"].map(String::from));
    let mut server = Server::new(args);
    server.start().await;
    let client = draftstore_client::Client::new(&server.url(), None).expect("a client");
    upload_draft(&client, "big.bin", crate::helpers::pseudo_random_bytes(256 << 20, 9)).await;

    let confirm =
        || draftstore_client::api::ConfirmUploadRequest { object_name: "big.bin".into(), ..Default::default() };
    let first = tokio::spawn({
        let (client, confirm) = (client.clone(), confirm());
        async move { client.confirm_upload(&confirm).await }
    });
    let store = weed.client();
    let events_bucket = format!("{bucket}-events");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = store.list_objects_v2().bucket(&events_bucket).prefix("outbox/").send().await.expect("listed");
        if listed.key_count().unwrap_or_default() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the confirm recorded no event within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    assert!(first.await.expect("the task").is_err(), "the first confirm was cut off");
    let draft = store.head_object().bucket(format!("{bucket}-draft")).key("big.bin").send().await;
    assert!(draft.is_ok(), "the draft is still there: the move had not finished when the server was killed");

    let events = Receiver::start_on(port, Mode::Accept).await;
    server.start().await;
    client.confirm_upload(&confirm()).await.expect("the confirm sent again succeeds");
    let announced = |calls: &[Call]| -> Vec<Call> {
        calls.iter().filter(|c| c.status == 200 && c.json()["type"] == "draft.confirmed").cloned().collect()
    };
    events.wait_for("draft.confirmed", |calls| !announced(calls).is_empty()).await;
    // Both entries wait for the object in the main bucket, which is there now: give the first one time to go out.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let calls = announced(&events.calls());
    let ids: HashSet<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one webhook-id for one confirm: {:#?}", summary(&calls));
    events.stop();
}

/// Two replicas on one store deliver each of 200 events; duplicates are counted and reported.
async fn two_replicas_deliver_each_event(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let events = Receiver::start(Mode::Accept).await;
    let extra = ["--events-url", events.url.as_str()];
    let (one, two) = (app_with(&args, &extra).await, app_with(&args, &extra).await);
    for i in 0..100 {
        for (replica, app) in [("one", &one), ("two", &two)] {
            let name = format!("{replica}/{i}.txt");
            app.upload(&name, None, b"x").await;
            app.post("/api/v1/discard-draft", &json!({"object_name": name})).await.ok();
        }
    }
    events
        .wait_for("200 distinct events", |calls| {
            calls.iter().map(|c| c.id.as_str()).collect::<std::collections::HashSet<_>>().len() >= 200
        })
        .await;
    // Let stragglers (a lease taken over mid-delivery) arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = events.calls();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for call in &calls {
        *per_id.entry(call.id.as_str()).or_default() += 1;
    }
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    // Written past the test harness's capture, so that the figure is in every run's output.
    let line = format!(
        "two replicas, {backend:?}: {} deliveries of {} events, {duplicates} duplicates",
        calls.len(),
        per_id.len()
    );
    crate::helpers::report(&line);
    assert_eq!(per_id.len(), 200, "every event, once or more");
    assert!(duplicates <= 10, "replicas duplicated {duplicates} deliveries of 200");
    assert!(calls.iter().all(|c| c.verifies_with(&secret())));
    events.stop();
}

on_both_backends!(two_replicas_deliver_each_event);

/// The README's receiver, `examples/webhook_receiver.py`, verifies real events: it prints the ones signed with its
/// secret and refuses (401) those signed with another, which DraftStore then retries.
#[tokio::test]
async fn the_example_python_receiver_verifies_the_events() {
    use tokio::io::AsyncBufReadExt;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/webhook_receiver.py");
    let receiver = |secret: String| {
        let port = free_port();
        let child = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .env("WEBHOOK_SECRET", secret)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the example");
        (port, child)
    };
    let (port, mut child) = receiver(secret_text());
    let (args, _dir) = Backend::Local.args().await;
    let app = app_with(&args, &["--events-url", &format!("http://127.0.0.1:{port}/")]).await;
    app.upload("py.txt", None, b"from python").await;
    app.confirm("py.txt").await.ok();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the receiver printed the event in time")
        .expect("stdout reads")
        .expect("a line");
    assert!(line.starts_with("msg_") && line.ends_with(" draft.confirmed py.txt"), "{line}");

    // Signed with another secret: the receiver refuses every attempt.
    let other = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
    let (port, mut child) = receiver(other);
    let (args, _dir) = Backend::Local.args().await;
    let app = app_with(&args, &["--events-url", &format!("http://127.0.0.1:{port}/")]).await;
    app.upload("refused.txt", None, b"refused").await;
    app.confirm("refused.txt").await.ok();
    let mut errors = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let log = tokio::time::timeout(Duration::from_secs(60), errors.next_line())
        .await
        .expect("the receiver logged a request in time")
        .expect("stderr reads")
        .expect("a line");
    assert!(log.contains("\"POST / HTTP/1.1\" 401"), "{log}");
    let mut out = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let printed = tokio::time::timeout(Duration::from_secs(2), out.next_line()).await;
    assert!(printed.is_err(), "nothing verified: {printed:?}");
}

/// After confirm: `draft.confirmed` names the final object, the draft it came from and its metadata;
/// `object.deleted` a deleted object; a set's `set.confirmed` lists its objects, each `draft.confirmed` carrying the
/// set's id.
async fn objects_and_sets_are_announced(backend: Backend) {
    let (args, _dir) = backend.args().await;
    let events = Receiver::start(Mode::Accept).await;
    let app = app_with(&args, &["--events-url", &events.url]).await;
    app.upload("a.txt", Some("text/plain"), b"a").await;
    let confirm = json!({"object_name": "a.txt", "final_name": "final/a.txt", "metadata": {"owner-id": "7"}});
    app.post("/api/v1/confirm-upload", &confirm).await.ok();
    app.post("/api/v1/delete-object", &json!({"object_name": "final/a.txt"})).await.ok();
    for name in ["b.txt", "c.txt"] {
        app.upload(name, Some("text/plain"), name.as_bytes()).await;
    }
    let set = json!({"idempotency_key": "set-1", "drafts": [{"object_name": "b.txt"}, {"object_name": "c.txt", "final_name": "final/c.txt"}]});
    let set_id = app.post("/api/v1/confirm-set", &set).await.ok()["set_id"].as_str().expect("set id").to_owned();
    app.post("/api/v1/confirm-set", &set).await.ok();

    let delivered = |calls: &[Call], kind: &str| -> Vec<Value> {
        calls.iter().filter(|c| c.status == 200).map(Call::json).filter(|e| e["type"] == kind).collect()
    };
    let calls = events
        .wait_for("every event", |calls| {
            delivered(calls, "draft.confirmed").len() >= 3
                && delivered(calls, "object.deleted").len() == 1
                && !delivered(calls, "set.confirmed").is_empty()
        })
        .await;
    assert!(calls.iter().all(|c| c.verifies_with(&secret())));
    let confirmed = delivered(&calls, "draft.confirmed");
    let single = confirmed.iter().find(|e| e["data"]["draft_name"] == "a.txt").expect("a.txt confirmed");
    assert_eq!(single["data"]["object_name"], "final/a.txt");
    assert_eq!(single["data"]["metadata"], json!({"owner-id": "7"}));
    let deleted = &delivered(&calls, "object.deleted")[0];
    assert_eq!(
        (deleted["data"]["object_name"].as_str(), deleted["data"]["size"].as_u64()),
        (Some("final/a.txt"), Some(1))
    );
    let sets = delivered(&calls, "set.confirmed");
    assert_eq!(sets.len(), 1, "a repeated set announces nothing again: {sets:?}");
    assert_eq!(sets[0]["data"]["set_id"], set_id.as_str());
    let listed: Vec<_> =
        sets[0]["data"]["objects"].as_array().expect("objects").iter().map(|o| o["object_name"].clone()).collect();
    assert_eq!(listed, [json!("b.txt"), json!("final/c.txt")]);
    let members: Vec<_> = confirmed
        .iter()
        .filter(|e| e["data"]["set_id"] == set_id.as_str())
        .map(|e| e["data"]["object_name"].clone())
        .collect();
    assert_eq!(members.len(), 2, "{confirmed:?}");
    assert!(members.contains(&json!("final/c.txt")));
    events.stop();
}

on_both_backends!(objects_and_sets_are_announced);

//! SeaweedFS killed (SIGKILL) and restarted on the same data while DraftStore keeps running: requests during the
//! outage fail fast with 503, and afterwards everything works again without restarting DraftStore; nothing
//! confirmed before the outage is lost.

use std::time::{Duration, Instant};

use crate::helpers::{serve_settings, spawn};
use crate::seaweed::{SeaweedFs, unique_bucket};

#[tokio::test]
async fn a_store_killed_and_restarted_mid_run_loses_nothing_confirmed() {
    let mut weed = SeaweedFs::start().await;
    let mut args = weed.s3_args(&unique_bucket());
    args.extend(["--storage-timeout", "3"].map(str::to_owned));
    let app = spawn(serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>())).await;

    let body = |i: usize| format!("object {i} confirmed before the outage").into_bytes();
    for i in 0..5 {
        app.upload(&format!("kept/{i}.txt"), Some("text/plain"), &body(i)).await;
        app.confirm(&format!("kept/{i}.txt")).await.ok();
    }
    app.upload("pending.txt", Some("text/plain"), b"confirmed after the outage").await;

    weed.kill();
    let timed = Instant::now();
    app.confirm("pending.txt").await.error(503, "NETWORK_ERROR");
    app.download_url("kept/0.txt", Some("main")).await.error(503, "NETWORK_ERROR");
    app.post("/api/v1/list-drafts", &serde_json::json!({})).await.error(503, "NETWORK_ERROR");
    let outage = timed.elapsed();
    println!("three calls during the outage answered 503 in {outage:?}");
    assert!(outage < Duration::from_secs(3 * 3), "each answered within STORAGE_TIMEOUT (3 s)");
    let started = Instant::now();
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 503, "/ready tells the truth during the outage: {:?}", ready.body);
    assert!(started.elapsed() < Duration::from_secs(3 + 3), "within STORAGE_TIMEOUT and a margin");

    weed.restart().await;
    // The same DraftStore, not restarted: its first calls after the outage succeed.
    app.get("/ready").await.ok();
    app.confirm("pending.txt").await.ok();
    let (_, bytes) = app.download("pending.txt", Some("main")).await;
    assert_eq!(bytes, b"confirmed after the outage");
    for i in 0..5 {
        let (_, bytes) = app.download(&format!("kept/{i}.txt"), Some("main")).await;
        assert_eq!(bytes, body(i), "kept/{i}.txt survived the crash of the store");
    }
    app.upload("after.txt", Some("text/plain"), b"new").await;
    app.confirm("after.txt").await.ok();
}

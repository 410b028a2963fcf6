//! The store probe and what it guards: DraftStore hands clients URLs signed with a credential of its own, and a
//! store that honours more than was signed turns one upload URL into a read of anything that credential can read.
//! Here: the probe at start-up and `draftstore doctor` on SeaweedFS and on the local backend.

use std::collections::BTreeMap;

use draftstore_storage::BucketName;
use draftstore_storage::probe::{Depth, Outcome, PROBE_PREFIX, ProbePlan, Promise};
use serde_json::Value;

use crate::helpers::{On, TestApp, serve_settings, spawn, spawn_on, spawn_on_seaweed};
use crate::seaweed::{self, SeaweedFs};

/// The promises the start-up probe checks; `draftstore doctor` adds the main credential, CORS, lifecycle and
/// checksums.
const STARTUP: [Promise; 14] = [
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

fn bucket(name: &str) -> BucketName {
    BucketName::parse(name).expect("valid bucket")
}

/// `draftstore doctor` with these arguments and nothing from the test's environment: exit code, output, errors.
async fn doctor(args: &[String]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftstore"))
        .arg("doctor")
        .args(args)
        .env_clear()
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("doctor runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// `/ready`'s answer, its probe summary asserted to be `verdict`; returns each promise's outcome.
async fn ready_promises(app: &TestApp, verdict: &str) -> BTreeMap<String, String> {
    let ready = app.get("/ready").await.ok();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["store"]["probe"], verdict, "{ready}");
    serde_json::from_value(ready["store"]["promises"].clone()).expect("promise names to outcomes")
}

/// Starts the server with these arguments and `extra`.
async fn app_with(args: &[String], extra: &[&str]) -> TestApp {
    let all: Vec<&str> = args.iter().map(String::as_str).chain(extra.iter().copied()).collect();
    spawn(serve_settings(&all)).await
}

// ---- The probe where every promise holds ----

async fn the_probe_passes_and_ready_and_metrics_report_each_promise(on: On) {
    let (app, _) = spawn_on(on, &[]).await;
    let promises = ready_promises(&app, "passed").await;
    let mut names: Vec<_> = STARTUP.iter().map(|p| p.name().to_owned()).collect();
    names.sort();
    assert_eq!(promises.keys().cloned().collect::<Vec<_>>(), names);
    for (name, outcome) in &promises {
        let expected = match (name.as_str(), on) {
            ("upload-credential" | "download-credential", _) | ("clock-skew", On::Local) => "not-applicable",
            _ => "held",
        };
        assert_eq!(outcome, expected, "{name}: {promises:?}");
    }
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.expect("scrape");
    let metrics = metrics.text().await.expect("text");
    for name in &names {
        let label = format!("promise=\"{name}\"");
        assert!(
            metrics.lines().any(|line| line.starts_with("draftstore_store_promise{") && line.contains(&label)),
            "no draftstore_store_promise for {name}"
        );
    }
    assert!(metrics.contains("draftstore_store_probe_duration_seconds"), "the probe's duration is a metric");
}

#[tokio::test]
async fn the_probe_passes_on_seaweedfs_and_ready_and_metrics_report_each_promise() {
    the_probe_passes_and_ready_and_metrics_report_each_promise(On::SeaweedFs).await;
}

#[tokio::test]
async fn the_probe_passes_on_the_local_backend_and_ready_and_metrics_report_each_promise() {
    the_probe_passes_and_ready_and_metrics_report_each_promise(On::Local).await;
}

#[tokio::test]
async fn draftstore_doctor_prints_every_promise_held_on_seaweedfs() {
    let (_app, bucket) = spawn_on_seaweed(&[]).await;
    let args = seaweed::shared().await.s3_args(&bucket);
    let (code, table, errors) = doctor(&args).await;
    assert_eq!(code, 0, "{table}{errors}");
    assert!(table.contains("every promise holds (18 checked)"), "{table}");
    for promise in Promise::ALL {
        assert!(table.lines().any(|line| line.starts_with(promise.name())), "{promise} missing:\n{table}");
    }
    let with_json: Vec<String> = args.iter().cloned().chain(["--json".to_owned()]).collect();
    let (code, json, errors) = doctor(&with_json).await;
    assert_eq!(code, 0, "{json}{errors}");
    let json: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["all_hold"], true);
    let findings = json["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 18);
    for finding in findings {
        let expected = match finding["promise"].as_str() {
            Some("upload-credential" | "download-credential" | "cors" | "lifecycle") => "not-applicable",
            _ => "held",
        };
        assert_eq!(finding["result"], expected, "{finding}");
        for field in ["statement", "severity", "found", "consequence", "fix"] {
            assert!(finding[field].as_str().is_some_and(|text| !text.is_empty()), "{field} of {finding}");
        }
    }
}

#[tokio::test]
async fn draftstore_doctor_checks_the_cors_and_lifecycle_rules_it_is_told_to_expect() {
    let origin = "https://app.example.com";
    let (_app, bucket) = spawn_on_seaweed(&["--cors-allowed-origins", origin, "--draft-lifecycle", "true"]).await;
    let mut args = seaweed::shared().await.s3_args(&bucket);
    args.extend(["--cors-allowed-origins", origin, "--draft-lifecycle", "true", "--json"].map(str::to_owned));
    let (code, json, errors) = doctor(&args).await;
    assert_eq!(code, 0, "{json}{errors}");
    let json: Value = serde_json::from_str(&json).expect("JSON");
    let finding =
        |name: &str| json["findings"].as_array().expect("findings").iter().find(|f| f["promise"] == name).cloned();
    assert_eq!(finding("cors").expect("cors")["result"], "held");
    assert_eq!(finding("lifecycle").expect("lifecycle")["result"], "held");

    // Expecting an origin the rule does not name, or a lifecycle of another length, is reported, with exit 1.
    let mut args = seaweed::shared().await.s3_args(&bucket);
    args.extend(
        ["--cors-allowed-origins", "https://other.example.com", "--object-lifetime", "864000"].map(str::to_owned),
    );
    args.extend(["--draft-lifecycle", "true"].map(str::to_owned));
    let (code, table, _) = doctor(&args).await;
    assert_eq!(code, 1, "{table}");
    let row = |name: &str| table.lines().find(|line| line.starts_with(name)).unwrap_or_default().to_owned();
    assert!(row("cors").contains("broken") && row("cors").contains("https://other.example.com"), "{table}");
    assert!(row("lifecycle").contains("broken") && row("lifecycle").contains("not 10"), "{table}");
    assert!(table.contains("2 of 18 promises do not hold: cors, lifecycle"), "{table}");
}

#[tokio::test]
async fn draftstore_doctor_prints_every_promise_held_on_the_local_backend() {
    let (app, _) = spawn_on(On::Local, &[]).await;
    let data_dir = app.data_dir.to_str().expect("utf-8").to_owned();
    let (code, table, errors) = doctor(&["--storage-type".into(), "local".into(), "--data-dir".into(), data_dir]).await;
    assert_eq!(code, 0, "{table}{errors}");
    assert!(table.contains("every promise holds (18 checked)"), "{table}");
    assert!(table.contains("refused by the signature check"), "the local backend answers from its own code: {table}");
}

#[tokio::test]
async fn draftstore_doctor_says_why_it_cannot_run_and_changes_nothing() {
    // No buckets yet: exit 1, saying how they come to be.
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf-8").to_owned();
    let local = ["--storage-type".to_owned(), "local".to_owned(), "--data-dir".to_owned(), data_dir];
    let (code, out, errors) = doctor(&local).await;
    assert_eq!(code, 1, "{out}{errors}");
    assert!(errors.contains("not found") && errors.contains("draftstore serve"), "{errors}");
    assert!(!dir.path().join("main-draft").exists(), "the doctor creates no bucket");

    // Settings that do not go together: exit 2, naming the variable; the secret is never shown.
    let half = [local.as_slice(), &["--upload-signing-access-key-id".into(), "up".into()]].concat();
    let (code, _, errors) = doctor(&half).await;
    assert_eq!(code, 2);
    assert!(errors.contains("UPLOAD_SIGNING_SECRET_ACCESS_KEY: is required"), "{errors}");
    let on_local = [
        local.as_slice(),
        &["--download-signing-access-key-id".into(), "down".into()],
        &["--download-signing-secret-access-key".into(), "the-secret-value".into()],
    ]
    .concat();
    let (code, _, errors) = doctor(&on_local).await;
    assert_eq!(code, 2);
    assert!(errors.contains("DOWNLOAD_SIGNING_ACCESS_KEY_ID: is for an S3 store"), "{errors}");
    assert!(!errors.contains("the-secret-value"), "{errors}");
}

#[tokio::test]
async fn a_store_unreachable_at_start_up_is_probed_once_it_answers_and_not_ready_until_then() {
    let weed = SeaweedFs::start().await;
    weed.pause();
    let app = app_with(&weed.s3_args(&seaweed::unique_bucket()), &["--storage-timeout", "1"]).await;
    let unready = app.get("/ready").await;
    unready.error(503, "NETWORK_ERROR");
    assert!(unready.body["error_message"].as_str().is_some_and(|m| m.contains("store probe")), "{:?}", unready.body);
    weed.resume();
    // Liveness bound: the background retry comes every 5 s; a minute is far beyond it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ready = loop {
        let answer = app.get("/ready").await;
        if answer.status == 200 {
            break answer.body;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {:?}", answer.body);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(ready["store"]["probe"], "passed", "{ready}");
}

// ---- The capability's own contract, on both backends ----

/// The probe's contract on a store that keeps every promise: at each depth one finding per promise of that depth,
/// none unsafe, nothing left under the probe's prefix; a missing bucket is an error, not a finding.
pub(crate) async fn probe_conformance(app: &TestApp, main: &BucketName, draft: &BucketName) {
    let doctor_only = [Promise::MainCredential, Promise::Cors, Promise::Lifecycle, Promise::Checksums];
    for (depth, expected) in [
        (Depth::ConditionalWrites, vec![Promise::ConditionalWrites]),
        (Depth::Startup, STARTUP.to_vec()),
        (Depth::Doctor, STARTUP.iter().chain(&doctor_only).copied().collect()),
    ] {
        let plan = ProbePlan { draft, main, depth, cors_origins: &[], lifecycle_days: None };
        let report = app.probe.probe(&plan).await.expect("probed");
        let mut found: Vec<_> = report.findings.iter().map(|f| f.promise).collect();
        let mut expected = expected;
        expected.sort();
        found.sort();
        assert_eq!(found, expected, "{depth:?}");
        assert!(report.all_hold(), "{depth:?}: {:#?}", report.findings);
        assert!(report.findings.iter().all(|f| f.outcome != Outcome::Unknown && !f.detail.is_empty()));
        let left = app.storage.list_prefix(draft, PROBE_PREFIX, None, 10).await.expect("listed");
        assert!(left.objects.is_empty(), "{depth:?} left {:?}", left.objects);
    }
    let missing = bucket("no-such-bucket-here");
    let plan = ProbePlan { draft: &missing, main, depth: Depth::Startup, cors_origins: &[], lifecycle_days: None };
    assert!(matches!(app.probe.probe(&plan).await, Err(draftstore_storage::Error::BucketNotFound { .. })));
}

//! Crash safety: the real binary is killed with SIGKILL at random moments while a client runs uploads, multipart
//! uploads and confirms, then restarted on the same data, many rounds, on the local backend and on SeaweedFS.
//! Afterwards every confirm that answered 200 has its whole object, no object anywhere is partial, confirms
//! retried after a restart succeed, and one cleaner pass leaves no staging file or unfinished upload behind.

use std::time::{Duration, Instant};

use draftstore::startup::open_backend;
use draftstore_client::api::{self, ErrorType, Stage};
use draftstore_client::{Client, Error};
use time::OffsetDateTime;

use crate::helpers::{Backend, Rng, Server, on_both_backends, serve_settings};

const PART: usize = 5 << 20;

/// A draft's bytes follow from its name: multipart names (`m…`) are 2½ parts long, others 64 KiB.
fn content(name: &str) -> Vec<u8> {
    let len = if name.starts_with('m') { 2 * PART + PART / 2 } else { 64 << 10 };
    let seed = name.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    crate::helpers::pseudo_random_bytes(len, seed)
}

async fn put(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    body: Vec<u8>,
) -> Result<Option<String>, String> {
    let mut request = http.request(method.parse().map_err(|_| "method")?, url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("PUT answered {}", response.status()));
    }
    Ok(response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// Uploads and confirms `name` (in parts for `m…`); `Ok(())` once the confirm answered 200.
async fn upload_and_confirm(client: &Client, http: &reqwest::Client, name: &str) -> Result<(), String> {
    let bytes = content(name);
    let e = |e: Error| e.to_string();
    if name.starts_with('m') {
        let started = client
            .start_multipart(&api::StartMultipartRequest {
                object_name: name.to_owned(),
                content_length: Some(bytes.len() as u64),
                part_size: Some(PART as u64),
                ..Default::default()
            })
            .await
            .map_err(e)?;
        let parts = bytes
            .chunks(PART)
            .enumerate()
            .map(|(i, _)| api::PartToSign { part_number: i as u64 + 1, checksum_sha256: None });
        let signed = client
            .sign_parts(&api::SignPartsRequest {
                object_name: name.to_owned(),
                upload_id: started.upload_id.clone(),
                parts: parts.collect(),
            })
            .await
            .map_err(e)?;
        let mut completed = Vec::new();
        for (part, chunk) in signed.parts.iter().zip(bytes.chunks(PART)) {
            let etag =
                put(http, &part.method, &part.upload_url, &part.headers, chunk.to_vec()).await?.ok_or("no ETag")?;
            completed.push(api::PartToComplete { part_number: part.part_number.into(), etag });
        }
        client
            .complete_multipart(&api::CompleteMultipartRequest {
                object_name: name.to_owned(),
                upload_id: started.upload_id,
                parts: completed,
            })
            .await
            .map_err(e)?;
    } else {
        let ticket = client
            .upload_url(&api::UploadUrlRequest {
                object_name: name.to_owned(),
                content_length: Some(bytes.len() as u64),
                ..Default::default()
            })
            .await
            .map_err(e)?;
        put(http, &ticket.method, &ticket.upload_url, &ticket.headers, bytes).await?;
    }
    client
        .confirm_upload(&api::ConfirmUploadRequest {
            object_name: name.to_owned(),
            overwrite: None,
            ..Default::default()
        })
        .await
        .map_err(e)?;
    Ok(())
}

/// The object at `stage`, or `None` when there is none.
async fn fetch(client: &Client, http: &reqwest::Client, name: &str, stage: Stage) -> Option<Vec<u8>> {
    match client
        .download_url(&api::DownloadUrlRequest {
            object_name: name.to_owned(),
            stage: Some(stage),
            ..Default::default()
        })
        .await
    {
        Ok(ticket) => {
            let response = http.get(&ticket.download_url).send().await.expect("download");
            assert_eq!(response.status(), 200, "{name} ({stage})");
            Some(response.bytes().await.expect("body").to_vec())
        }
        Err(error) if error.error_type() == Some(ErrorType::ObjectNotFound) => None,
        Err(error) => panic!("download URL of {name} ({stage}): {error}"),
    }
}

async fn kill_at_random_moments(label: &str, args: Vec<String>, rounds: usize) {
    let mut rng = Rng::new();
    let seed = rng.seed;
    let mut server = Server::new(args);
    server.start().await;
    let client = Client::new(&server.url(), None).expect("client");
    let http = reqwest::Client::new();
    let (mut confirmed, mut attempted) = (Vec::new(), Vec::new());
    let mut killed_during = 0;
    for round in 0..rounds {
        let kill_after = Duration::from_millis(50 + rng.below(1200));
        let workload = {
            // Clients of their own each round: a connection pooled before the last restart would fail the round's
            // first request at once, and the kill would then land on an idle server.
            let (client, http) = (Client::new(&server.url(), None).expect("client"), reqwest::Client::new());
            tokio::spawn(async move {
                let mut done = Vec::new();
                for i in 0.. {
                    let name = if i % 3 == 2 { format!("m{round}-{i}") } else { format!("s{round}-{i}") };
                    let started = Instant::now();
                    let result = upload_and_confirm(&client, &http, &name).await;
                    let failed = result.is_err();
                    done.push((name, result.is_ok()));
                    if failed {
                        return (done, started);
                    }
                }
                unreachable!("the loop ends at the first failure")
            })
        };
        tokio::time::sleep(kill_after).await;
        let killed_at = Instant::now();
        server.kill();
        let (done, failed_started) = workload.await.expect("workload");
        // Cut off by the kill when the operation that failed had begun before it, not between operations.
        killed_during += usize::from(failed_started < killed_at);
        for (name, ok) in done {
            if ok {
                confirmed.push(name.clone());
            }
            attempted.push(name);
        }
        server.start().await;
    }
    crate::helpers::report(&format!(
        "crash ({label}): seed {seed}, {rounds} SIGKILLs, {} confirms answered 200, {killed_during} operations cut off \
         by a kill",
        confirmed.len(),
    ));
    // The test means something only if the kills landed inside operations and confirms went through between them.
    assert!(killed_during * 2 > rounds, "only {killed_during} of {rounds} kills cut an operation off (seed {seed})");
    assert!(!confirmed.is_empty(), "no confirm answered 200 in {rounds} rounds (seed {seed})");

    // Every confirm that answered 200 holds its whole object.
    for name in &confirmed {
        assert!(fetch(&client, &http, name, Stage::Main).await == Some(content(name)), "{name} lost or changed");
    }
    // A confirm cut off by the crash can be retried: it promotes a complete draft, or finds none.
    let mut retried = 0;
    for name in attempted.iter().filter(|n| !confirmed.contains(n)) {
        match client
            .confirm_upload(&api::ConfirmUploadRequest {
                object_name: name.clone(),
                overwrite: None,
                ..Default::default()
            })
            .await
        {
            Ok(_) => {
                retried += 1;
                assert!(fetch(&client, &http, name, Stage::Main).await == Some(content(name)), "{name} after a retry");
            }
            Err(error) => assert_eq!(error.error_type(), Some(ErrorType::ObjectNotFound), "{name}: {error}"),
        }
    }
    // No object is partial, in either bucket.
    for name in &attempted {
        for stage in [Stage::Draft, Stage::Main] {
            if let Some(bytes) = fetch(&client, &http, name, stage).await {
                assert!(bytes == content(name), "{name} ({stage}) is partial: {} bytes", bytes.len());
            }
        }
    }
    crate::helpers::report(&format!(
        "crash ({label}): {retried} cut-off confirms succeeded when retried; no partial object"
    ));
    server.kill();
}

/// One cleaner pass far in the future: it must leave no staging file and no unfinished upload.
async fn clean_everything(args: &[String]) {
    let mut full = args.to_vec();
    full.extend(["--object-lifetime", "60"].map(str::to_owned));
    let settings = serve_settings(&full.iter().map(String::as_str).collect::<Vec<_>>());
    let backend = open_backend(&settings.common, url::Url::parse("http://localhost").expect("url"), None)
        .await
        .expect("the store opens");
    let report =
        settings.common.cleaner(backend.store).clean_once(OffsetDateTime::now_utc() + time::Duration::days(30)).await;
    assert!(report.succeeded(), "{}", report.summary());
    println!("cleaner after the crashes: {}", report.summary());
}

async fn sigkill_at_random_moments_loses_nothing_confirmed(backend: Backend) {
    let (args, dir) = backend.args().await;
    let rounds = match backend {
        Backend::Local => 10,
        Backend::SeaweedFs => 6,
    };
    kill_at_random_moments(backend.label(), args.clone(), rounds).await;
    clean_everything(&args).await;
    match backend {
        Backend::Local => {
            let dir = dir.expect("the local store's folder");
            let leftovers: Vec<_> = crate::helpers::files_under(dir.path())
                .into_iter()
                .filter(|f| {
                    let f = f.strip_prefix(dir.path()).expect("inside");
                    f.starts_with(".staging") || f.starts_with(".multipart")
                })
                .collect();
            assert!(leftovers.is_empty(), "the cleaner left {leftovers:?}");
        }
        Backend::SeaweedFs => {
            let weed = crate::seaweed::shared().await;
            let settings = serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let draft = settings.common.service.buckets.draft.to_string();
            let uploads = weed.client().list_multipart_uploads().bucket(draft).send().await.expect("lists uploads");
            assert!(uploads.uploads().is_empty(), "the cleaner left {:?}", uploads.uploads());
        }
    }
}

on_both_backends!(sigkill_at_random_moments_loses_nothing_confirmed);

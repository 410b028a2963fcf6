//! The cleaner on both backends: what expires goes, what is fresh or confirmed stays, at any page count.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use draftstore::cleaner::Cleaner;
use draftstore::config::ServeSettings;
use draftstore_storage::{
    BucketName, DeleteFailure, ListPages, MoveOptions, Moves, ObjectKey, ObjectMeta, ObjectStore, PrefixPage, Progress,
    StaleUploads, Store, VersionDeletes,
};
use futures_util::StreamExt;
use time::OffsetDateTime;

use crate::helpers::{Backend, TestApp, on_both_backends};
use crate::seaweed;

/// A server and the settings it runs with, on the local backend or on SeaweedFS.
struct Setup {
    app: TestApp,
    settings: ServeSettings,
}

impl Setup {
    async fn on(backend: Backend, extra: &[&str]) -> Setup {
        let (app, settings) = backend.spawn_with_settings(extra).await;
        Setup { app, settings }
    }

    fn cleaner(&self) -> Cleaner {
        self.settings.common.cleaner(self.app.store.clone())
    }

    fn draft(&self) -> BucketName {
        self.settings.common.service.buckets.draft.clone()
    }

    fn main(&self) -> BucketName {
        self.settings.common.service.buckets.main.clone()
    }

    async fn exists(&self, bucket: &BucketName, name: &str) -> bool {
        match self.app.storage.head(bucket, &ObjectKey::parse(name).expect("valid")).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => panic!("head failed: {e}"),
        }
    }

    async fn count(&self, bucket: &BucketName) -> usize {
        let mut pages = self.app.storage.list(bucket);
        let mut count = 0;
        while let Some(page) = pages.next().await {
            count += page.expect("page").objects.len();
        }
        count
    }
}

async fn cleaner_removes_expired_drafts_only(backend: Backend) {
    let setup = Setup::on(backend, &[]).await;
    let app = &setup.app;
    app.upload("old/one.txt", None, b"one").await;
    app.upload("old/two.txt", None, b"two!").await;
    app.upload("confirmed.txt", None, b"kept").await;
    app.confirm("confirmed.txt").await.ok();
    let between = OffsetDateTime::now_utc();
    // S3 times have whole seconds: the fresh draft must be a second younger to be told apart.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.upload("fresh.txt", None, b"fresh").await;
    let now = between + setup.settings.common.service.object_lifetime;

    let dry = setup.cleaner().dry_run(true).clean_once(now).await;
    assert_eq!((dry.removed, dry.bytes_freed, dry.kept, dry.failed), (2, 7, 1, 0), "{dry:?}");
    assert!(dry.summary().starts_with("Dry run: would clean up 2 expired objects"), "{}", dry.summary());
    assert!(setup.exists(&setup.draft(), "old/one.txt").await, "a dry run removes nothing");

    let report = setup.cleaner().clean_once(now).await;
    assert_eq!((report.removed, report.bytes_freed, report.kept, report.failed), (2, 7, 1, 0), "{report:?}");
    assert!(report.succeeded());
    assert!(report.summary().starts_with("Cleaned up 2 expired objects (7 bytes freed, 1 kept, 0 failed"));
    assert!(!setup.exists(&setup.draft(), "old/one.txt").await);
    assert!(!setup.exists(&setup.draft(), "old/two.txt").await);
    assert!(setup.exists(&setup.draft(), "fresh.txt").await);
    assert!(setup.exists(&setup.main(), "confirmed.txt").await, "the main bucket is never touched");
    app.download_url("old/one.txt", None).await.error(404, "OBJECT_NOT_FOUND");
    if backend == Backend::Local {
        let draft_dir = setup.app.data_dir.join("main-draft");
        assert!(!draft_dir.join("old").exists(), "the empty folder left behind is removed");
    }
}

on_both_backends!(cleaner_removes_expired_drafts_only);

async fn many_pages_are_cleaned_completely(setup: &Setup, put: impl AsyncFn(String, Vec<u8>)) {
    let names: Vec<String> = (0..2_500).map(|i| format!("bulk/{}/{i}.bin", i % 10)).collect();
    futures_util::stream::iter(names).for_each_concurrent(32, |name| put(name, vec![1u8; 10])).await;
    assert_eq!(setup.count(&setup.draft()).await, 2_500);
    let later = OffsetDateTime::now_utc() + setup.settings.common.service.object_lifetime + Duration::from_secs(60);
    let report = setup.cleaner().clean_once(later).await;
    assert_eq!((report.removed, report.bytes_freed, report.failed), (2_500, 25_000, 0), "{report:?}");
    assert_eq!(setup.count(&setup.draft()).await, 0);
}

#[tokio::test]
async fn a_local_draft_bucket_of_2500_drafts_is_cleaned_completely() {
    let setup = Setup::on(Backend::Local, &[]).await;
    let local = draftstore_storage::local::LocalStorage::open(draftstore_storage::local::LocalConfig {
        root: setup.app.data_dir.clone(),
        public_url: url::Url::parse("http://localhost").expect("url"),
        signing_key: None,
    })
    .await
    .expect("open");
    let draft = setup.draft();
    let data_dir = setup.app.data_dir.clone();
    let put = async |name: String, bytes: Vec<u8>| {
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
        let key = ObjectKey::parse(&name).expect("valid");
        let checks = draftstore_storage::local::WriteChecks::default();
        local
            .write_object(&draft, &key, draftstore_storage::ContentType::octet_stream(), &checks, body)
            .await
            .expect("write");
    };
    many_pages_are_cleaned_completely(&setup, put).await;
    let left: Vec<_> = std::fs::read_dir(data_dir.join("main-draft")).expect("draft folder").collect();
    assert!(left.is_empty(), "empty folders are removed: {left:?}");
}

#[tokio::test]
async fn an_s3_draft_bucket_of_2500_drafts_is_cleaned_completely() {
    let setup = Setup::on(Backend::SeaweedFs, &[]).await;
    let client = seaweed::shared().await.client();
    let draft = setup.draft().to_string();
    let put = async |name: String, bytes: Vec<u8>| {
        client.put_object().bucket(&draft).key(name).body(bytes.into()).send().await.expect("put");
    };
    many_pages_are_cleaned_completely(&setup, put).await;
}

/// A real backend whose batch deletes refuse keys containing "stuck".
#[derive(Debug)]
struct StuckDeletes(Arc<dyn ObjectStore>);

#[async_trait]
impl ObjectStore for StuckDeletes {
    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> draftstore_storage::Result<ObjectMeta> {
        self.0.head(bucket, key).await
    }
    async fn move_object(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        options: &MoveOptions,
        progress: &Progress,
    ) -> draftstore_storage::Result<()> {
        self.0.move_object(from, to, key, options, progress).await
    }
    fn moves(&self) -> Moves {
        self.0.moves()
    }
    async fn put_record(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: bytes::Bytes,
        if_absent: bool,
    ) -> draftstore_storage::Result<bool> {
        self.0.put_record(bucket, key, body, if_absent).await
    }
    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: bytes::Bytes,
        content_type: &draftstore_storage::ContentType,
    ) -> draftstore_storage::Result<ObjectMeta> {
        self.0.put_object(bucket, key, body, content_type).await
    }
    async fn get_record(&self, bucket: &BucketName, key: &ObjectKey) -> draftstore_storage::Result<bytes::Bytes> {
        self.0.get_record(bucket, key).await
    }
    async fn read(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        first: Option<u64>,
        if_match: Option<&str>,
    ) -> draftstore_storage::Result<draftstore_storage::ByteChunks> {
        self.0.read(bucket, key, first, if_match).await
    }
    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> draftstore_storage::Result<()> {
        self.0.delete(bucket, key).await
    }
    fn list(&self, bucket: &BucketName) -> ListPages<'_> {
        self.0.list(bucket)
    }
    async fn list_prefix(
        &self,
        bucket: &BucketName,
        prefix: &str,
        token: Option<&str>,
        limit: usize,
    ) -> draftstore_storage::Result<PrefixPage> {
        self.0.list_prefix(bucket, prefix, token, limit).await
    }
    async fn delete_many(
        &self,
        bucket: &BucketName,
        keys: &[ObjectKey],
    ) -> draftstore_storage::Result<Vec<DeleteFailure>> {
        let (stuck, rest): (Vec<ObjectKey>, Vec<ObjectKey>) =
            keys.iter().cloned().partition(|k| k.as_str().contains("stuck"));
        let mut failures = self.0.delete_many(bucket, &rest).await?;
        failures.extend(stuck.into_iter().map(|key| DeleteFailure { key: key.to_string(), message: "refused".into() }));
        Ok(failures)
    }
    async fn delete_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        etag: &str,
    ) -> draftstore_storage::Result<bool> {
        self.0.delete_version(bucket, key, etag).await
    }
    async fn delete_versions(
        &self,
        bucket: &BucketName,
        versions: &[(ObjectKey, String)],
    ) -> draftstore_storage::Result<VersionDeletes> {
        let (stuck, rest): (Vec<_>, Vec<_>) = versions.iter().cloned().partition(|(k, _)| k.as_str().contains("stuck"));
        let mut outcome = self.0.delete_versions(bucket, &rest).await?;
        outcome.failures.extend(
            stuck.into_iter().map(|(key, _)| DeleteFailure { key: key.to_string(), message: "refused".into() }),
        );
        Ok(outcome)
    }
    async fn remove_stale_uploads(&self, bucket: &BucketName, stale: StaleUploads) -> draftstore_storage::Result<u64> {
        self.0.remove_stale_uploads(bucket, stale).await
    }
}

async fn failed_deletions_are_counted_and_the_rest_removed(backend: Backend) {
    let setup = Setup::on(backend, &[]).await;
    for name in ["a.txt", "stuck.txt", "b.txt"] {
        setup.app.upload(name, None, b"x").await;
    }
    let stuck = Arc::new(StuckDeletes(Arc::clone(&setup.app.storage)));
    let store = Store { objects: stuck, ..setup.app.store.clone() };
    let later = OffsetDateTime::now_utc() + setup.settings.common.service.object_lifetime + Duration::from_secs(60);
    let report = setup.settings.common.cleaner(store).clean_once(later).await;
    assert_eq!((report.removed, report.failed), (2, 1), "{report:?}");
    assert!(!report.succeeded());
    assert!(setup.exists(&setup.draft(), "stuck.txt").await);
    assert!(!setup.exists(&setup.draft(), "a.txt").await && !setup.exists(&setup.draft(), "b.txt").await);
}

on_both_backends!(failed_deletions_are_counted_and_the_rest_removed);

#[tokio::test]
async fn stale_multipart_uploads_are_aborted_on_s3() {
    let setup = Setup::on(Backend::SeaweedFs, &[]).await;
    let client = seaweed::shared().await.client();
    let draft = setup.draft().to_string();
    client
        .create_multipart_upload()
        .bucket(&draft)
        .key("abandoned.bin")
        .send()
        .await
        .expect("start a multipart upload");
    let fresh = setup.cleaner().clean_once(OffsetDateTime::now_utc()).await;
    assert_eq!(fresh.stale_uploads, 0, "a young multipart upload is left alone");
    let later = OffsetDateTime::now_utc() + setup.settings.common.service.object_lifetime + Duration::from_secs(60);
    let report = setup.cleaner().clean_once(later).await;
    assert_eq!(report.stale_uploads, 1, "{report:?}");
    let uploads = client.list_multipart_uploads().bucket(&draft).send().await.expect("list");
    assert!(uploads.uploads().is_empty());
}

#[tokio::test]
async fn stale_local_staging_files_are_removed_after_the_upload_ttl() {
    let setup = Setup::on(Backend::Local, &["--upload-ttl", "600"]).await;
    let staging = setup.app.data_dir.join(".staging");
    let old = staging.join("crashed.part");
    std::fs::write(&old, b"half an upload").expect("write");
    let file = std::fs::File::options().write(true).open(&old).expect("open");
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(601)).expect("age it");
    let young = staging.join("in-progress.part");
    std::fs::write(&young, b"uploading").expect("write");
    let report = setup.cleaner().clean_once(OffsetDateTime::now_utc()).await;
    assert_eq!(report.stale_uploads, 1, "{report:?}");
    assert!(!old.exists() && young.exists());
}

#[tokio::test]
async fn the_lifecycle_rule_is_installed_and_reads_back() {
    let setup = Setup::on(Backend::SeaweedFs, &["--object-lifetime", "90000"]).await;
    assert!(setup.cleaner().install_lifecycle().await.expect("installed"));
    let client = seaweed::shared().await.client();
    let read = client
        .get_bucket_lifecycle_configuration()
        .bucket(setup.draft().as_str())
        .send()
        .await
        .expect("a lifecycle configuration");
    let rule = read.rules().first().expect("one rule");
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(2), "ceil(90000 s in days)");
    assert_eq!(rule.status().as_str(), "Enabled");
    assert!(
        client.get_bucket_lifecycle_configuration().bucket(setup.main().as_str()).send().await.is_err(),
        "main has none"
    );
}

#[tokio::test]
async fn draft_lifecycle_installs_the_rule_at_start_up() {
    let setup = Setup::on(Backend::SeaweedFs, &["--draft-lifecycle", "true"]).await;
    let read = seaweed::shared()
        .await
        .client()
        .get_bucket_lifecycle_configuration()
        .bucket(setup.draft().as_str())
        .send()
        .await
        .expect("a lifecycle configuration");
    assert_eq!(read.rules().first().and_then(|r| r.expiration()).and_then(|e| e.days()), Some(1));
}

/// A confirm racing the cleaner on a draft right at its expiry ends confirmed (whole) or 404, never in between. Each
/// round gives one side a head start of 0 to 3 ms, the cleaner and the confirm in turn, and rounds go on until both
/// outcomes have been seen, so the race is shown to go both ways.
async fn confirm_versus_cleaner_is_all_or_nothing(backend: Backend) {
    let setup = Setup::on(backend, &[]).await;
    let (mut confirmed, mut gone, mut round) = (0, 0, 0u64);
    while round < 30 || confirmed == 0 || gone == 0 {
        assert!(round < 300, "{round} rounds, {confirmed} confirmed and {gone} cleaned: the race never went both ways");
        let name = format!("race/{round}.bin");
        let bytes = vec![round as u8; 64 * 1024];
        setup.app.upload(&name, None, &bytes).await;
        let meta =
            setup.app.storage.head(&setup.draft(), &ObjectKey::parse(&name).expect("valid")).await.expect("draft");
        let at_expiry = meta.last_modified + setup.settings.common.service.object_lifetime + Duration::from_secs(1);
        let cleaner = setup.cleaner();
        let head_start = Duration::from_micros(round * 379 % 3000);
        let cleaner_first = round % 2 == 0;
        let clean = tokio::spawn(async move {
            if !cleaner_first {
                tokio::time::sleep(head_start).await;
            }
            cleaner.clean_once(at_expiry).await
        });
        if cleaner_first {
            tokio::time::sleep(head_start).await;
        }
        let answer = setup.app.confirm(&name).await;
        clean.await.expect("the pass ran");
        match answer.status {
            200 => {
                confirmed += 1;
                assert_eq!(setup.app.download(&name, Some("main")).await.1, bytes, "a 200 means the object is whole");
            }
            404 => {
                gone += 1;
                answer.error(404, "OBJECT_NOT_FOUND");
                assert!(!setup.exists(&setup.main(), &name).await);
            }
            other => panic!("confirm answered {other}: {:?}", answer.body),
        }
        assert!(!setup.exists(&setup.draft(), &name).await, "the draft is gone either way");
        round += 1;
    }
    crate::helpers::report(&format!(
        "confirm against the cleaner: {round} rounds, {confirmed} confirmed, {gone} removed by the cleaner"
    ));
}

on_both_backends!(confirm_versus_cleaner_is_all_or_nothing);

#[tokio::test]
async fn the_server_loop_cleans_on_its_interval() {
    let setup = Setup::on(Backend::Local, &["--cleanup-interval", "1", "--object-lifetime", "1"]).await;
    setup.app.upload("kept.txt", None, b"kept").await;
    setup.app.confirm("kept.txt").await.ok();
    setup.app.upload("dropped.txt", None, b"dropped").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while setup.exists(&setup.draft(), "dropped.txt").await {
        assert!(Instant::now() < deadline, "the loop never removed the expired draft");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(setup.exists(&setup.main(), "kept.txt").await);
}

fn draftstore_clean(data_dir: &std::path::Path, envs: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_draftstore"))
        .arg("clean")
        .args(args)
        .env("DATA_DIR", data_dir)
        .envs(envs.iter().copied())
        .output()
        .expect("the binary runs");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn draftstore_clean_runs_one_pass_and_prints_its_summary() {
    let setup = Setup::on(Backend::Local, &[]).await;
    setup.app.upload("a.txt", None, b"aaa").await;
    setup.app.upload("dir/b.txt", None, b"bb").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let dir = setup.app.data_dir.clone();
    let lifetime = [("OBJECT_LIFETIME", "1")];

    let (ok, stdout) = tokio::task::block_in_place(|| draftstore_clean(&dir, &lifetime, &["--dry-run"]));
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("would remove a.txt (3 bytes") && stdout.contains("would remove dir/b.txt (2 bytes"),
        "{stdout}"
    );
    assert!(
        stdout.lines().last().is_some_and(|l| l.starts_with("Dry run: would clean up 2 expired objects")),
        "{stdout}"
    );
    assert!(setup.exists(&setup.draft(), "a.txt").await);

    let (ok, stdout) = tokio::task::block_in_place(|| draftstore_clean(&dir, &lifetime, &[]));
    assert!(ok, "{stdout}");
    assert!(stdout.trim().starts_with("Cleaned up 2 expired objects (5 bytes freed, 0 kept, 0 failed"), "{stdout}");
    assert!(!setup.exists(&setup.draft(), "a.txt").await && !setup.exists(&setup.draft(), "dir/b.txt").await);

    let (ok, stdout) = tokio::task::block_in_place(|| draftstore_clean(&dir, &[("BUCKET_NAME", "absent")], &[]));
    assert!(!ok, "a pass that cannot list the draft bucket exits non-zero: {stdout}");
    assert!(stdout.contains("stopped early"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn draftstore_clean_works_on_s3() {
    let setup = Setup::on(Backend::SeaweedFs, &[]).await;
    setup.app.upload("s3-draft.txt", None, b"abc").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let weed = seaweed::shared().await;
    let endpoint = weed.endpoint.clone();
    let bucket = setup.main().to_string();
    let envs = [
        ("STORAGE_TYPE", "s3"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("S3_FORCE_PATH_STYLE", "true"),
        ("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY),
        ("BUCKET_NAME", bucket.as_str()),
        ("OBJECT_LIFETIME", "1"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, stdout) = tokio::task::block_in_place(|| draftstore_clean(dir.path(), &envs, &["--install-lifecycle"]));
    assert!(ok, "{stdout}");
    assert!(stdout.trim().starts_with("Cleaned up 1 expired objects (3 bytes freed"), "{stdout}");
    assert!(!setup.exists(&setup.draft(), "s3-draft.txt").await);
}

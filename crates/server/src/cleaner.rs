//! The cleaner: removes drafts older than OBJECT_LIFETIME from the draft bucket, page by page, and the uploads that
//! were abandoned half-way. It never lists or touches the main bucket.
//!
//! One pass is [`Cleaner::clean_once`], which takes the current time as an argument so tests can move it; the
//! server's optional loop and `draftstore clean` both call it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use draftstore_storage::{BucketName, ListedObject, ObjectKey, ObjectStore, StaleUploads};
use futures_util::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use crate::error::Error;
use crate::hooks::{EventType, Subject};
use crate::service::{DraftService, RECOVERY_GRACE, lifecycle_days};

/// Events a pass records at once, before it removes the drafts they are about.
const EVENT_BATCH: usize = 32;
/// How old an image's record must be before the cleaner may remove it for want of its object: the confirm that
/// wrote it may still be moving the object.
const IMAGE_GRACE: Duration = Duration::from_secs(3600);

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Expired drafts removed (in a dry run: that would be removed).
    pub removed: u64,
    pub bytes_freed: u64,
    /// Drafts not yet expired.
    pub kept: u64,
    /// Expired drafts whose deletion failed.
    pub failed: u64,
    /// Keys DraftStore could not have written; left alone.
    pub foreign: u64,
    /// Abandoned uploads removed (S3 multipart uploads, local staging files).
    pub stale_uploads: u64,
    /// Sets cut off by a crash and finished by this pass (all their drafts confirmed, or none).
    pub sets_finished: u64,
    /// Images whose object is gone (deleted, replaced, never promoted), their variants removed.
    pub images_removed: u64,
    /// Resumable uploads past their expiry, their stored bytes and records removed.
    pub resumable_removed: u64,
    /// Why the pass stopped before the end of the bucket, if it did.
    pub incomplete: Option<String>,
    pub dry_run: bool,
    pub duration: Duration,
}

impl CleanReport {
    /// True when every expired draft was removed and the whole bucket was seen.
    pub fn succeeded(&self) -> bool {
        self.failed == 0 && self.incomplete.is_none()
    }

    /// Writes the summary to the log: an error when the pass failed.
    pub fn log(&self) {
        let summary = self.summary();
        if self.succeeded() {
            tracing::info!(removed = self.removed, failed = self.failed, "{summary}");
        } else {
            tracing::error!(removed = self.removed, failed = self.failed, "{summary}");
        }
    }

    /// The one-line summary: `Cleaned up N expired objects (…)`.
    pub fn summary(&self) -> String {
        let lead = if self.dry_run { "Dry run: would clean up" } else { "Cleaned up" };
        let mut line = format!(
            "{lead} {} expired objects ({} bytes freed, {} kept, {} failed, {} stale uploads removed) in {:.3} s",
            self.removed,
            self.bytes_freed,
            self.kept,
            self.failed,
            self.stale_uploads,
            self.duration.as_secs_f64()
        );
        if self.resumable_removed > 0 {
            line.push_str(&format!("; {} expired resumable uploads removed", self.resumable_removed));
        }
        if self.images_removed > 0 {
            line.push_str(&format!("; the variants of {} images whose object is gone removed", self.images_removed));
        }
        if self.sets_finished > 0 {
            line.push_str(&format!("; {} sets cut off by a crash finished", self.sets_finished));
        }
        if self.foreign > 0 {
            line.push_str(&format!("; {} objects with names DraftStore does not use were left alone", self.foreign));
        }
        if let Some(reason) = &self.incomplete {
            line.push_str(&format!("; the pass stopped early: {reason}"));
        }
        line
    }
}

/// Removes expired drafts from one bucket: the draft bucket of its service, whose store, storage calls,
/// lifetimes and outbox it uses, and which finishes the sets a crash cut off.
#[derive(Debug, Clone)]
pub struct Cleaner {
    service: DraftService,
    dry_run: bool,
}

impl Cleaner {
    /// A cleaner of `service`'s draft bucket.
    pub fn new(service: &DraftService) -> Self {
        Self { service: service.clone(), dry_run: false }
    }

    /// The bucket it cleans.
    fn draft(&self) -> &BucketName {
        &self.service.buckets().draft
    }

    /// The store's objects.
    fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.service.store().objects
    }

    /// In a dry run, passes list what they would remove and remove nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Puts the safety-net lifecycle rule on the draft bucket. `false` where the backend has none.
    pub async fn install_lifecycle(&self) -> Result<bool, Error> {
        let Some(rules) = &self.service.store().rules else { return Ok(false) };
        let install = rules.install_lifecycle(self.draft(), lifecycle_days(self.service.object_lifetime()));
        self.service.calls().call("install the lifecycle rule", install).await.map(|()| true)
    }

    /// One pass at time `now`.
    pub async fn clean_once(&self, now: OffsetDateTime) -> CleanReport {
        self.clean_once_reporting(now, |_| {}).await
    }

    /// One pass at time `now`, calling `on_expired` for every expired draft before it is removed.
    pub async fn clean_once_reporting(
        &self,
        now: OffsetDateTime,
        mut on_expired: impl FnMut(&ListedObject) + Send,
    ) -> CleanReport {
        let started = Instant::now();
        let mut report = CleanReport { dry_run: self.dry_run, ..CleanReport::default() };
        // Sets first: one cut off by a crash still needs its drafts, to confirm them or keep them.
        if !self.dry_run {
            match self.service.recover_sets(now, RECOVERY_GRACE).await {
                Ok(recovery) => {
                    report.sets_finished = recovery.finished;
                    if recovery.failed > 0 {
                        report.incomplete = Some(format!("{} sets could not be finished", recovery.failed));
                    }
                }
                // No records bucket: no set was ever confirmed.
                Err(Error::BucketNotFound(_)) => {}
                Err(error) => {
                    tracing::error!(error = %error.chain(), "failed to look for sets cut off by a crash");
                    report.incomplete = Some(error.chain());
                }
            }
            match self.service.sweep_claims(now).await {
                Ok(_) | Err(Error::BucketNotFound(_)) => {}
                Err(error) => {
                    tracing::error!(error = %error.chain(), "failed to remove expired claims on drafts");
                    report.incomplete.get_or_insert(error.chain());
                }
            }
            match self.service.sweep_resumable(now).await {
                Ok(removed) => report.resumable_removed = removed,
                Err(Error::BucketNotFound(_)) => {}
                Err(error) => {
                    tracing::error!(error = %error.chain(), "failed to remove expired resumable uploads");
                    report.incomplete.get_or_insert(error.chain());
                }
            }
            match self.service.sweep_images(now, IMAGE_GRACE).await {
                Ok(removed) => report.images_removed = removed,
                Err(Error::BucketNotFound(_)) => {}
                Err(error) => {
                    tracing::error!(error = %error.chain(), "failed to remove the variants of objects gone");
                    report.incomplete.get_or_insert(error.chain());
                }
            }
        }
        let cutoff = now - self.service.object_lifetime();
        let mut pages = self.objects().list(self.draft());
        loop {
            let page = match self
                .service
                .calls()
                .call("list the draft bucket", async { pages.next().await.transpose() })
                .await
            {
                Ok(None) => break,
                Ok(Some(page)) => page,
                Err(e) => {
                    report.incomplete = Some(e.chain());
                    break;
                }
            };
            report.foreign += page.foreign_keys.len() as u64;
            for key in &page.foreign_keys {
                tracing::warn!(bucket = %self.draft(), key, "object name DraftStore does not use; left alone");
            }
            let (expired, fresh): (Vec<ListedObject>, Vec<ListedObject>) =
                page.objects.into_iter().partition(|object| object.last_modified < cutoff);
            report.kept += fresh.len() as u64;
            for object in &expired {
                on_expired(object);
                tracing::debug!(key = %object.key, size = object.size, dry_run = self.dry_run, "expired draft");
            }
            if expired.is_empty() {
                continue;
            }
            if self.dry_run {
                report.removed += expired.len() as u64;
                report.bytes_freed += expired.iter().map(|o| o.size).sum::<u64>();
                continue;
            }
            self.delete_page(&expired, &mut report).await;
        }
        if !self.dry_run {
            self.remove_stale_uploads(now, &mut report).await;
        }
        report.duration = started.elapsed();
        if !self.dry_run {
            let outcome = if report.succeeded() { "ok" } else { "failed" };
            metrics::counter!("draftstore_cleaner_passes_total", "outcome" => outcome).increment(1);
            metrics::counter!("draftstore_cleaner_objects_removed_total").increment(report.removed);
            metrics::counter!("draftstore_cleaner_bytes_freed_total").increment(report.bytes_freed);
            metrics::counter!("draftstore_cleaner_delete_failures_total").increment(report.failed);
        }
        report
    }

    async fn delete_page(&self, expired: &[ListedObject], report: &mut CleanReport) {
        let recorded = match self.record_expired(expired).await {
            Ok(recorded) => recorded,
            Err(error) => {
                // Nothing is removed without its event; the next pass tries again.
                tracing::error!(error = %error.chain(), count = expired.len(), "failed to record draft.expired events");
                report.failed += expired.len() as u64;
                report.incomplete.get_or_insert(error.chain());
                return;
            }
        };
        // Each draft only as the version listed: one uploaded again since the listing is fresh, and stays.
        let (mut versions, mut unversioned) = (Vec::new(), Vec::new());
        for object in expired {
            match &object.etag {
                Some(etag) => versions.push((object.key.clone(), etag.clone())),
                None => unversioned.push(object.key.clone()),
            }
        }
        let deleted = async {
            let mut outcome = self.objects().delete_versions(self.draft(), &versions).await?;
            if !unversioned.is_empty() {
                outcome.failures.extend(self.objects().delete_many(self.draft(), &unversioned).await?);
            }
            Ok(outcome)
        };
        let outcome = match self.service.calls().call("delete expired drafts", deleted).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(error = %error.chain(), count = expired.len(), "a batch delete failed");
                report.failed += expired.len() as u64;
                return;
            }
        };
        for failure in &outcome.failures {
            tracing::error!(key = failure.key, reason = failure.message, "failed to delete an expired draft");
        }
        report.failed += outcome.failures.len() as u64;
        report.kept += outcome.changed.len() as u64;
        // A draft written again since the listing was not removed: its event is taken back.
        if let Some(outbox) = self.service.outbox() {
            for (key, entry) in recorded.iter().filter(|(key, _)| outcome.changed.contains(key)) {
                tracing::debug!(%key, "an expired draft was uploaded again before its removal; kept");
                outbox.withdraw(&self.service.calls(), entry).await;
            }
        }
        for object in expired
            .iter()
            .filter(|o| !outcome.changed.contains(&o.key) && !outcome.failures.iter().any(|f| f.key == o.key.as_str()))
        {
            report.removed += 1;
            report.bytes_freed += object.size;
        }
    }

    /// One `draft.expired` event per draft about to be removed, when events are on, written [`EVENT_BATCH`] at a
    /// time, so that the removal follows the listing closely. A draft whose removal then fails keeps its recorded
    /// event: at least once. Returns each draft's entry in the outbox.
    async fn record_expired(&self, expired: &[ListedObject]) -> Result<Vec<(ObjectKey, ObjectKey)>, Error> {
        let Some(outbox) = self.service.outbox() else { return Ok(Vec::new()) };
        let records: Vec<_> = expired
            .iter()
            .map(|object| async move {
                let subject = Subject {
                    tenant: None,
                    object_name: object.key.as_str(),
                    key: &object.key,
                    size: object.size,
                    content_type: None,
                };
                let id = crate::hooks::message_id();
                let record = outbox.record(EventType::Expired, id, &subject, serde_json::json!({}), false);
                let entry = self.service.calls().call("record a draft.expired event", record).await?;
                Ok::<_, Error>((object.key.clone(), entry))
            })
            .collect();
        futures_util::stream::iter(records).buffer_unordered(EVENT_BATCH).try_collect().await
    }

    async fn remove_stale_uploads(&self, now: OffsetDateTime, report: &mut CleanReport) {
        let stale = StaleUploads {
            multipart_before: now - self.service.object_lifetime(),
            staging_before: now - self.service.upload_ttl(),
        };
        // Abandoned uploads in the draft bucket, and in the main bucket the multipart copies of confirms that
        // failed and could not abort them.
        for bucket in [self.draft(), &self.service.buckets().main] {
            match self
                .service
                .calls()
                .call("remove stale uploads", self.objects().remove_stale_uploads(bucket, stale))
                .await
            {
                Ok(count) => report.stale_uploads += count,
                Err(error) => {
                    tracing::error!(error = %error.chain(), %bucket, "failed to remove stale uploads");
                    report.incomplete.get_or_insert(error.chain());
                }
            }
        }
        // The layouts DraftStore kept of uploads as old (their uploads are gone, or go now). No records bucket: no
        // layout was ever kept.
        match self.service.forget_stale_layouts(stale.multipart_before).await {
            Ok(_) | Err(Error::BucketNotFound(_)) => {}
            Err(error) => {
                tracing::error!(error = %error.chain(), "failed to remove the layouts of stale uploads");
                report.incomplete.get_or_insert(error.chain());
            }
        }
    }

    /// Runs a pass every `interval`, forever; a pass never overlaps the previous one.
    pub async fn run_every(self, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            self.clean_once(OffsetDateTime::now_utc()).await.log();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_starts_as_the_cronjob_log_expects_and_failures_fail_the_pass() {
        let report = CleanReport { removed: 3, bytes_freed: 42, kept: 1, ..CleanReport::default() };
        assert!(report.summary().starts_with("Cleaned up 3 expired objects (42 bytes freed, 1 kept, 0 failed"));
        assert!(report.succeeded());
        assert!(!CleanReport { failed: 1, ..report.clone() }.succeeded());
        assert!(!CleanReport { incomplete: Some("down".into()), ..report }.succeeded());
    }
}

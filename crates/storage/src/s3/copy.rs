//! The copy engine of confirm: one CopyObject for small drafts, a parallel multipart copy for large ones, and
//! the guard that aborts a multipart copy cut off before it completed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use futures_util::{StreamExt, TryStreamExt};

use crate::ObjectStore as _;
use crate::storage::MoveOptions;
use crate::{BucketName, Checksum, ContentType, Error, ObjectKey, Progress, Result, UploadId, UploadedPart};

use super::errors::{sdk_error, timestamp};
use super::{MAX_PARTS, MIN_PART_SIZE, S3Storage};

impl S3Storage {
    /// Copies `from/key` to `to/key`: only the source version `etag` when given, and not onto an existing
    /// object when `options.no_overwrite` (the store answers 412 to either condition).
    pub(super) async fn copy(&self, job: &CopyJob<'_>, options: &MoveOptions, progress: &Progress) -> Result<()> {
        let CopyJob { from, to, key, to_key, size, etag, .. } = *job;
        let single = self.copy_multipart_threshold.min(self.pace.request_bytes().max(MIN_PART_SIZE));
        let result = if size <= single {
            let started = Instant::now();
            let request = self.client.copy_object().copy_source(&job.source).bucket(to.as_str()).key(to_key.as_str());
            let request = match &job.metadata {
                // Replacing the metadata replaces the content type too: it is given again.
                Some(metadata) => request
                    .metadata_directive(MetadataDirective::Replace)
                    .content_type(job.content_type.as_str())
                    .set_metadata(Some(metadata.clone())),
                None => request.metadata_directive(MetadataDirective::Copy),
            };
            let copied = request
                .set_copy_source_if_match(etag.map(str::to_owned))
                .set_if_none_match(options.no_overwrite.then(|| "*".to_owned()))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("CopyObject", from, Some(key), e));
            if copied.is_ok() {
                self.pace.observe(size, started.elapsed());
            }
            progress.step();
            copied
        } else {
            self.multipart_copy(job, options.no_overwrite, progress).await
        };
        match result {
            Err(Error::PreconditionFailed { .. }) if options.no_overwrite && self.head(to, to_key).await.is_ok() => {
                Err(Error::AlreadyExists { bucket: to.to_string(), key: to_key.to_string() })
            }
            other => other,
        }
    }

    /// Copies a large object part by part, `copy_concurrency` parts at a time, each part copy one request bounded
    /// by the timeout and sized by the pace the store has shown (see [`CopyPace`]), so the whole takes as long as
    /// the bytes need and progress shows well within every timeout. Every part is bound to the source version
    /// `etag`. The new object appears only when every part is in place; a failure, or this future being dropped,
    /// aborts the upload, leaving nothing behind.
    pub(super) async fn multipart_copy(
        &self,
        job: &CopyJob<'_>,
        no_overwrite: bool,
        progress: &Progress,
    ) -> Result<()> {
        let CopyJob { from, to, key, to_key, size, etag, .. } = *job;
        let source = job.source.as_str();
        let head = self
            .client
            .head_object()
            .bucket(from.as_str())
            .key(key.as_str())
            .set_if_match(etag.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("HeadObject", from, Some(key), e))?;
        progress.step();
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(to.as_str())
            .key(to_key.as_str())
            .set_content_type(head.content_type().map(str::to_owned))
            .set_metadata(job.metadata.clone().or_else(|| head.metadata().cloned()))
            .send()
            .await
            .map_err(|e| sdk_error("CreateMultipartUpload", to, Some(to_key), e))?;
        progress.step();
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: to.to_string(),
            key: to_key.to_string(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        // Each range is cut when a part copy can start, so it is sized by the pace of the parts copied so far.
        let mut cursor = PartCursor::default();
        let ranges = std::iter::from_fn(|| cursor.next(size, self.pace.request_bytes(), self.copy_part_size));
        let mut parts: Vec<CompletedPart> = futures_util::stream::iter(ranges)
            .map(|(number, first, last)| {
                let upload_id = upload_id.clone();
                async move {
                    let started = Instant::now();
                    let part = self
                        .client
                        .upload_part_copy()
                        .bucket(to.as_str())
                        .key(to_key.as_str())
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .set_copy_source_if_match(etag.map(str::to_owned))
                        .send()
                        .await
                        .map_err(|e| sdk_error("UploadPartCopy", from, Some(key), e))?;
                    self.pace.observe(last - first + 1, started.elapsed());
                    progress.step();
                    let etag = part.copy_part_result().and_then(|r| r.e_tag()).map(str::to_owned);
                    Ok::<_, Error>(CompletedPart::builder().part_number(number).set_e_tag(etag).build())
                }
            })
            .buffer_unordered(self.copy_concurrency)
            .try_collect()
            .await?;
        parts.sort_by_key(|part| part.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(to.as_str())
            .key(to_key.as_str())
            .upload_id(&upload_id)
            .set_if_none_match(no_overwrite.then(|| "*".to_owned()))
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| sdk_error("CompleteMultipartUpload", to, Some(to_key), e))?;
        guard.disarm();
        Ok(())
    }

    /// Lists an upload's parts, all of them or only the first page of `max_parts`.
    pub(super) async fn parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        max_parts: Option<i32>,
    ) -> Result<Vec<UploadedPart>> {
        let mut parts = Vec::new();
        let mut marker = None::<String>;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(bucket.as_str())
                .key(key.as_str())
                .upload_id(upload_id.as_str())
                .set_max_parts(max_parts)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(|e| upload_error(sdk_error("ListParts", bucket, Some(key), e), upload_id))?;
            for part in page.parts() {
                parts.push(UploadedPart {
                    number: part.part_number().unwrap_or_default().max(0) as u32,
                    size: part.size().unwrap_or_default().max(0) as u64,
                    etag: part.e_tag().unwrap_or_default().to_owned(),
                    sha256: part.checksum_sha256().and_then(|c| Checksum::parse(c).ok()),
                    last_modified: timestamp(part.last_modified()),
                });
            }
            marker = page.next_part_number_marker().map(str::to_owned).filter(|m| !m.is_empty());
            if max_parts.is_some() || !page.is_truncated().unwrap_or(false) || marker.is_none() {
                break;
            }
        }
        parts.sort_by_key(|part| part.number);
        Ok(parts)
    }
}

/// How many bytes one copy request of this store carries within a quarter of the timeout, learned from the
/// copies it has done: a store shows its speed only by finishing requests, and a copy is cut off once it has
/// shown no progress for a whole timeout, so no request may be sized to take longer than that. A quarter leaves
/// room for a slower moment and for the parts in flight together. Before any copy, a request carries
/// [`MIN_PART_SIZE`].
#[derive(Debug)]
pub(super) struct CopyPace {
    /// A quarter of the timeout.
    budget: Duration,
    /// Bytes per second one copy request was seen to move, smoothed.
    per_request: AtomicU64,
}

impl CopyPace {
    pub(super) fn new(timeout: Duration) -> Self {
        let budget = timeout / 4;
        let start = (MIN_PART_SIZE as f64 / budget.as_secs_f64().max(1e-3)) as u64;
        Self { budget, per_request: AtomicU64::new(start) }
    }

    /// Bytes one copy request may carry.
    pub(super) fn request_bytes(&self) -> u64 {
        (self.per_request.load(Ordering::Relaxed) as f64 * self.budget.as_secs_f64()) as u64
    }

    /// Learns from a copy request that moved `bytes` in `took`. Requests of less than a minimum part measure the
    /// round trip, not the copy, and are not counted.
    pub(super) fn observe(&self, bytes: u64, took: Duration) {
        if bytes < MIN_PART_SIZE {
            return;
        }
        let seen = (bytes as f64 / took.as_secs_f64().max(1e-3)) as u64;
        // Half the last estimate, half this request: quick to follow the store, not thrown by one request.
        let _ = self.per_request.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| Some(old / 2 + seen / 2));
    }
}

/// Cuts an object into the byte ranges of a multipart copy, one part at a time.
#[derive(Debug, Default)]
struct PartCursor {
    next: u64,
    number: i32,
}

impl PartCursor {
    /// The next part's number and first and last byte: `pace` bytes, within [`MIN_PART_SIZE`] and `largest`, but
    /// large enough that the rest still fits in the parts left of [`MAX_PARTS`].
    fn next(&mut self, size: u64, pace: u64, largest: u64) -> Option<(i32, u64, u64)> {
        let remaining = size.checked_sub(self.next).filter(|r| *r > 0)?;
        let parts_left = MAX_PARTS.saturating_sub(self.number as u64).max(1);
        let part = pace.min(largest).max(MIN_PART_SIZE).max(remaining.div_ceil(parts_left)).min(remaining);
        self.number += 1;
        let first = self.next;
        self.next += part;
        Some((self.number, first, self.next - 1))
    }
}

/// One object to copy between buckets.
pub(super) struct CopyJob<'a> {
    /// `x-amz-copy-source`: the source bucket and escaped key.
    pub(super) source: String,
    pub(super) from: &'a BucketName,
    pub(super) to: &'a BucketName,
    pub(super) key: &'a ObjectKey,
    /// The key of the copy.
    pub(super) to_key: &'a ObjectKey,
    pub(super) size: u64,
    /// The source version to copy; another version fails the copy.
    pub(super) etag: Option<&'a str>,
    pub(super) content_type: &'a ContentType,
    /// The copy's user metadata, encoded for the wire; the source's when `None`.
    pub(super) metadata: Option<std::collections::HashMap<String, String>>,
}

/// Aborts a multipart upload when dropped before it completed, from a task of its own, so that a copy cut off
/// by a timeout or a dropped request leaves no parts behind (the cleaner aborts what this cannot).
pub(super) struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortOnDrop {
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.upload_id);
        let (key, upload_id) = (self.key.clone(), self.upload_id.clone());
        runtime.spawn(async move {
            if let Err(error) = abort.send().await {
                tracing::warn!(%key, upload_id, error = %error, "failed to abort a multipart copy; the cleaner will");
            }
        });
    }
}

/// Names the upload in a "no such upload" error.
pub(super) fn upload_error(error: Error, upload_id: &UploadId) -> Error {
    match error {
        Error::UploadNotFound { .. } => Error::UploadNotFound { upload_id: upload_id.to_string() },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn cut(size: u64, pace: u64, largest: u64) -> Vec<(i32, u64, u64)> {
        let mut cursor = PartCursor::default();
        std::iter::from_fn(|| cursor.next(size, pace, largest)).collect()
    }

    #[test]
    fn parts_follow_the_pace_within_the_limits_and_cover_the_object() {
        let parts = cut(100 * MIB, 12 * MIB, 64 * MIB);
        assert_eq!(parts.len(), 9);
        assert_eq!(parts[0], (1, 0, 12 * MIB - 1));
        assert_eq!(parts[8], (9, 96 * MIB, 100 * MIB - 1));
        assert!(parts.windows(2).all(|w| w[1].1 == w[0].2 + 1 && w[1].0 == w[0].0 + 1), "contiguous, numbered");
        assert_eq!(cut(100 * MIB, 1, 64 * MIB)[0].2, MIN_PART_SIZE - 1, "never below the smallest part");
        assert_eq!(cut(200 * MIB, 1 << 40, 64 * MIB)[0].2, 64 * MIB - 1, "never above COPY_PART_SIZE");
    }

    #[test]
    fn parts_grow_so_that_the_largest_object_fits_in_10000_parts() {
        let size = 5 * 1024 * 1024 * MIB;
        let parts = cut(size, MIN_PART_SIZE, 64 * MIB);
        assert!(parts.len() as u64 <= MAX_PARTS, "{} parts", parts.len());
        assert_eq!(parts.last().map(|p| p.2), Some(size - 1));
    }

    #[test]
    fn the_pace_starts_at_a_minimum_part_and_follows_what_is_seen() {
        let pace = CopyPace::new(Duration::from_secs(2));
        assert_eq!(pace.request_bytes(), MIN_PART_SIZE);
        // 80 MiB/s seen again and again: a request carries what moves in half a second.
        for _ in 0..20 {
            pace.observe(40 * MIB, Duration::from_millis(500));
        }
        let carried = pace.request_bytes();
        assert!((39 * MIB..=40 * MIB).contains(&carried), "{carried}");
        pace.observe(1024, Duration::from_secs(1));
        assert_eq!(pace.request_bytes(), carried, "a small copy measures the round trip and is not counted");
    }
}

//! The copy engine of confirm: one CopyObject for small drafts, a parallel multipart copy for large ones, and
//! the guard that aborts a multipart copy cut off before it completed.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use futures_util::{StreamExt, TryStreamExt};

use crate::storage::MoveOptions;
use crate::{BucketName, Checksum, Error, ObjectKey, Progress, Result, Storage, UploadId, UploadedPart};

use super::errors::{sdk_error, timestamp};
use super::{MAX_PARTS, S3Storage};

impl S3Storage {
    /// Copies `from/key` to `to/key`: only the source version `etag` when given, and not onto an existing
    /// object when `options.no_overwrite` (the store answers 412 to either condition).
    pub(super) async fn copy(&self, job: &CopyJob<'_>, options: &MoveOptions, progress: &Progress) -> Result<()> {
        let CopyJob { from, to, key, size, etag, .. } = *job;
        let result = if size <= self.multipart_copy_threshold {
            let copied = self
                .client
                .copy_object()
                .copy_source(&job.source)
                .bucket(to.as_str())
                .key(key.as_str())
                .metadata_directive(MetadataDirective::Copy)
                .set_copy_source_if_match(etag.map(str::to_owned))
                .set_if_none_match(options.no_overwrite.then(|| "*".to_owned()))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("CopyObject", from, Some(key), e));
            progress.step();
            copied
        } else {
            self.multipart_copy(job, options.no_overwrite, progress).await
        };
        match result {
            Err(Error::PreconditionFailed { .. }) if options.no_overwrite && self.head(to, key).await.is_ok() => {
                Err(Error::AlreadyExists { bucket: to.to_string(), key: key.to_string() })
            }
            other => other,
        }
    }

    /// Copies a large object part by part, `copy_concurrency` parts at a time, each part copy one request bounded
    /// by the timeout, so the whole takes as long as the bytes need. Every part is bound to the source version
    /// `etag`. The new object appears only when every part is in place; a failure, or this future being dropped,
    /// aborts the upload, leaving nothing behind.
    pub(super) async fn multipart_copy(
        &self,
        job: &CopyJob<'_>,
        no_overwrite: bool,
        progress: &Progress,
    ) -> Result<()> {
        let CopyJob { from, to, key, size, etag, .. } = *job;
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
            .key(key.as_str())
            .set_content_type(head.content_type().map(str::to_owned))
            .set_metadata(head.metadata().cloned())
            .send()
            .await
            .map_err(|e| sdk_error("CreateMultipartUpload", to, Some(key), e))?;
        progress.step();
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: to.to_string(),
            key: key.to_string(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        let part_size = self.multipart_copy_part_size.max(size.div_ceil(MAX_PARTS));
        let ranges: Vec<(i32, u64, u64)> = (0..size.div_ceil(part_size))
            .map(|i| (i as i32 + 1, i * part_size, ((i + 1) * part_size).min(size) - 1))
            .collect();
        let parts: Vec<CompletedPart> = futures_util::stream::iter(ranges)
            .map(|(number, first, last)| {
                let upload_id = upload_id.clone();
                async move {
                    let part = self
                        .client
                        .upload_part_copy()
                        .bucket(to.as_str())
                        .key(key.as_str())
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .set_copy_source_if_match(etag.map(str::to_owned))
                        .send()
                        .await
                        .map_err(|e| sdk_error("UploadPartCopy", from, Some(key), e))?;
                    progress.step();
                    let etag = part.copy_part_result().and_then(|r| r.e_tag()).map(str::to_owned);
                    Ok::<_, Error>(CompletedPart::builder().part_number(number).set_e_tag(etag).build())
                }
            })
            .buffered(self.copy_concurrency)
            .try_collect()
            .await?;
        self.client
            .complete_multipart_upload()
            .bucket(to.as_str())
            .key(key.as_str())
            .upload_id(&upload_id)
            .set_if_none_match(no_overwrite.then(|| "*".to_owned()))
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| sdk_error("CompleteMultipartUpload", to, Some(key), e))?;
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

/// One object to copy between buckets.
pub(super) struct CopyJob<'a> {
    /// `x-amz-copy-source`: the source bucket and escaped key.
    pub(super) source: String,
    pub(super) from: &'a BucketName,
    pub(super) to: &'a BucketName,
    pub(super) key: &'a ObjectKey,
    pub(super) size: u64,
    /// The source version to copy; another version fails the copy.
    pub(super) etag: Option<&'a str>,
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

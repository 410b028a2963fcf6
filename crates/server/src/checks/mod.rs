//! What a draft's bytes are checked for at confirm, once its size and checksum have passed: its type read from
//! its first bytes ([`content`]), an image's dimensions from its header, and with CLAMD_ADDRESS viruses
//! ([`clamav`]). The draft service runs them, in that order, for every confirm whatever the adapter; a draft is
//! hostile until they pass.

use draftstore_api::{ContentReport, ScanReport, ScanResult};
use draftstore_storage::{BucketName, Checksum, ObjectMeta, ObjectStore};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::domain::UploadLimits;
use crate::error::{Error, Result};
use crate::gateway::StorageCalls;

mod clamav;
mod content;
mod settings;

pub use clamav::{ClamdAddress, ScanError, ScanVerdict, Scanner};
pub use settings::{CheckSettings, ScanOversize};

/// A draft's checks: `Ok` with what they found, or `Err` with why the draft must not be promoted.
pub type Checked = std::result::Result<ContentReport, Error>;

/// The checks CONTENT_CHECKS, MAX_IMAGE_PIXELS and CLAMD_ADDRESS configure.
#[derive(Debug, Clone)]
pub struct Checks {
    content: bool,
    max_image_pixels: u64,
    scanner: Option<Scanner>,
}

impl Checks {
    pub fn new(settings: &CheckSettings) -> Self {
        Self {
            content: settings.content_checks,
            max_image_pixels: settings.max_image_pixels,
            scanner: Scanner::from_settings(settings),
        }
    }

    /// How many of a draft's first bytes the checks read, to be fetched with its metadata; `None` when they read
    /// none (CONTENT_CHECKS=off).
    pub fn head_len(&self) -> Option<u64> {
        self.content.then_some(content::HEAD_LEN)
    }

    /// Checks the draft `meta` describes, in `bucket`, against its declared type and `limits`: the type of its
    /// bytes (`first`: its first [`Checks::head_len`] bytes), an image's size, then a scan. `Err` when a check
    /// could not be made (the store or the scanner failed; the draft is to be kept), `Ok(Err(refusal))` when the
    /// draft fails one.
    pub async fn run(
        &self,
        storage: &dyn ObjectStore,
        calls: &StorageCalls,
        bucket: &BucketName,
        (meta, first): (&ObjectMeta, &[u8]),
        limits: &UploadLimits,
    ) -> Result<Checked> {
        let mut report = ContentReport::default();
        if self.content
            && let Err(refusal) = self.check_content(storage, calls, bucket, (meta, first), limits, &mut report).await?
        {
            return Ok(Err(refusal));
        }
        if let Some(scanner) = &self.scanner {
            match scan(scanner, storage, calls, bucket, meta).await? {
                Ok(scan) => report.scan = Some(scan),
                Err(refusal) => return Ok(Err(refusal)),
            }
        }
        Ok(Ok(report))
    }

    async fn check_content(
        &self,
        storage: &dyn ObjectStore,
        calls: &StorageCalls,
        bucket: &BucketName,
        (meta, head): (&ObjectMeta, &[u8]),
        limits: &UploadLimits,
        report: &mut ContentReport,
    ) -> Result<std::result::Result<(), Error>> {
        let detected = content::detect(head);
        if let Err(refusal) = content::check_type(&meta.content_type, detected, limits) {
            return Ok(Err(refusal));
        }
        report.detected_type = detected.map(|d| d.mime.to_owned());
        let Some(image) = detected.filter(|d| content::is_sized_image(*d)) else { return Ok(Ok(())) };
        let mut size = content::dimensions(head);
        if size.is_none() && meta.size > head.len() as u64 {
            let longer = read_head(storage, calls, bucket, meta, content::IMAGE_HEAD_LEN).await?;
            size = content::dimensions(&longer);
        }
        let Some(size) = size else {
            if !content::dimensions_lead(image) {
                // Its dimensions lie further than a head read reaches: reported as unknown, not refused.
                tracing::info!(key = %meta.key, r#type = image.mime, "image dimensions not in the first bytes");
                return Ok(Ok(()));
            }
            return Ok(Err(Error::UploadRejected(format!(
                "its bytes are {} but its header gives no dimensions within its first {} KiB",
                image.mime,
                content::IMAGE_HEAD_LEN >> 10
            ))));
        };
        if let Err(refusal) = content::check_dimensions(image, size, self.max_image_pixels) {
            return Ok(Err(refusal));
        }
        (report.width, report.height) = (Some(size.width), Some(size.height));
        Ok(Ok(()))
    }
}

/// The first `len` bytes of the version of the draft `meta` describes (fewer when it is shorter).
async fn read_head(
    storage: &dyn ObjectStore,
    calls: &StorageCalls,
    bucket: &BucketName,
    meta: &ObjectMeta,
    len: u64,
) -> Result<bytes::Bytes> {
    let read = async {
        let chunks = storage.read(bucket, &meta.key, Some(len), meta.etag.as_deref()).await?;
        draftstore_storage::collect(chunks, len).await
    };
    calls.call("read the draft's first bytes", read).await
}

/// The SHA-256 of the version of the draft that `meta` describes, read from the store (another version is
/// refused): what the confirm hook is told when the upload declared none. Each chunk is bounded by STORAGE_TIMEOUT,
/// not the whole read, so that a big draft is hashed whatever its size.
pub async fn sha256_of(
    storage: &dyn ObjectStore,
    calls: &StorageCalls,
    bucket: &BucketName,
    meta: &ObjectMeta,
) -> Result<Checksum> {
    const READ: &str = "read the draft to hash it";
    let mut chunks = calls.call(READ, storage.read(bucket, &meta.key, None, meta.etag.as_deref())).await?;
    let mut digest = Sha256::new();
    while let Some(chunk) = calls.call(READ, async { chunks.next().await.transpose() }).await? {
        digest.update(&chunk);
    }
    Ok(Checksum::from_digest(&digest.finalize().into()))
}

/// Scans the draft: `Err` when the scanner or the store failed (the draft is kept), `Ok(Err(refusal))` when it
/// is infected or too large to scan.
async fn scan(
    scanner: &Scanner,
    storage: &dyn ObjectStore,
    calls: &StorageCalls,
    bucket: &BucketName,
    meta: &ObjectMeta,
) -> Result<std::result::Result<ScanReport, Error>> {
    if meta.size > scanner.max_size() {
        if scanner.skips_oversize() {
            metrics::counter!("draftstore_scans_total", "outcome" => "skipped").increment(1);
            return Ok(Ok(ScanReport { result: ScanResult::Skipped, engine: None }));
        }
        metrics::counter!("draftstore_scans_total", "outcome" => "oversize").increment(1);
        return Ok(Err(Error::UploadRejected(format!(
            "its size, {} bytes, is above SCAN_MAX_SIZE ({} bytes): it cannot be scanned",
            meta.size,
            scanner.max_size()
        ))));
    }
    let chunks = storage.read(bucket, &meta.key, None, meta.etag.as_deref());
    let chunks = calls.call("read the draft to scan it", chunks).await?;
    match scanner.scan(chunks).await {
        Ok(ScanVerdict::Clean { engine }) => Ok(Ok(ScanReport { result: ScanResult::Clean, engine: Some(engine) })),
        Ok(ScanVerdict::Infected { signature, engine }) => {
            tracing::warn!(key = %meta.key, signature, engine, "the scanner found a signature in a draft");
            Ok(Err(Error::UploadInfected(signature)))
        }
        Err(ScanError::Scanner(reason)) => Err(Error::ScannerUnavailable(reason)),
        Err(ScanError::Store(e)) => Err(Error::from_storage("read the draft to scan it", e)),
    }
}

//! What confirm does with an image: the pipeline run on its bytes after the content checks and before the hook,
//! its variants and its stripped original written to the records bucket before the promotion, and its
//! description found again from the confirmed object (see [`crate::images::ImageKeys`]).

use draftstore_api::{ContentReport, ImageReport, VariantBody};
use draftstore_storage::{Checksum, ContentType, LIST_PAGE, MoveOptions, ObjectKey, ObjectMeta, Progress};
use sha2::Digest;
use time::OffsetDateTime;

use super::{DraftService, Promotion, Rewritten, SET_METADATA, stored_metadata};
use crate::error::{Error, Result};
use crate::images::{DECODED_TYPES, IMAGES, ImageError, ImageKeys, ImageRecord, ProcessedImage};

/// An error of a write of DraftStore's own keys: a key refused is the store's failure, never the caller's name.
fn ours(error: Error) -> Error {
    match error {
        Error::InvalidObjectName(message) => Error::StorageUnavailable {
            operation: "write an image's variants",
            source: draftstore_storage::Error::unavailable(message, None),
        },
        other => other,
    }
}

/// A name for one confirm's staged original.
fn nonce() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    hex::encode(bytes)
}

/// What a confirm makes of the pipeline's error: `Ok(refusal)` when the image is at fault (the draft is deleted),
/// `Err` when no decision was made (the draft is kept): slow is not unreadable, as a busy machine makes a good photo
/// slow.
fn judged(error: ImageError) -> Result<Error> {
    match error {
        ImageError::Busy(_) | ImageError::TimedOut(_) => Err(Error::ImagesBusy(error.to_string())),
        ImageError::TooLarge { .. } => Ok(Error::ImageTooLarge(error.to_string())),
        ImageError::Unreadable(_) => Ok(Error::ImageUnreadable(error.to_string())),
    }
}

/// An image draft as the pipeline made it, before anything is written.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub processed: ProcessedImage,
    pub report: ImageReport,
    /// The original's size and SHA-256 once stripped, when stripping changed it.
    pub rewritten: Option<Rewritten>,
}

/// What [`DraftService::prepare_image`] decides: `Ok(None)` for a draft that is no image.
pub(super) type Preparation = std::result::Result<Option<Prepared>, Error>;

impl DraftService {
    /// Runs the image pipeline on a draft that passed the content checks, when it is an image: declared as an
    /// image, and its bytes found to be one the pipeline decodes (so with CONTENT_CHECKS=off, never). `Err` when
    /// it could not decide (the store failed, no worker came free; the draft is kept), `Ok(Err(refusal))` when the
    /// image is unreadable.
    pub(super) async fn prepare_image(&self, meta: &ObjectMeta, report: &ContentReport) -> Result<Preparation> {
        let detected = report.detected_type.as_deref();
        if !meta.content_type.as_str().starts_with("image/") || !detected.is_some_and(|t| DECODED_TYPES.contains(&t)) {
            return Ok(Ok(None));
        }
        let pipeline = &self.0.images;
        if meta.size > pipeline.max_file_size() {
            return Ok(Err(Error::ImageTooLarge(format!(
                "its file is {} bytes, more than the image pipeline reads ({} bytes)",
                meta.size,
                pipeline.max_file_size()
            ))));
        }
        // The worker first: the bytes read are bounded by IMAGE_WORKERS, whatever the confirms in flight.
        let worker = match pipeline.worker().await {
            Ok(worker) => worker,
            Err(error) => return judged(error).map(Err),
        };
        let draft = &self.0.buckets.draft;
        let read = async {
            let chunks = self.0.store.objects.read(draft, &meta.key, None, meta.etag.as_deref()).await?;
            draftstore_storage::collect(chunks, meta.size).await
        };
        let bytes = self.call("read the image", read).await?;
        let processed = match pipeline.process_on(worker, bytes).await {
            Ok(processed) => processed,
            Err(error) => return judged(error).map(Err),
        };
        let report = ImageReport {
            width: processed.width,
            height: processed.height,
            placeholder: processed.placeholder.clone(),
            variants: processed
                .variants
                .iter()
                .map(|v| VariantBody {
                    name: v.name.to_string(),
                    content_type: v.content_type.to_owned(),
                    width: v.width,
                    height: v.height,
                    size: v.bytes.len() as u64,
                })
                .collect(),
        };
        let rewritten = processed.stripped.as_ref().map(|stripped| Rewritten {
            size: stripped.len() as u64,
            sha256: Checksum::from_digest(&sha2::Sha256::digest(stripped).into()),
        });
        Ok(Ok(Some(Prepared { processed, report, rewritten })))
    }

    /// Writes an image's description, then its variants and its stripped original, under `keys`, before the
    /// promotion that makes them reachable. The description first: whatever a failure leaves, the cleaner finds by
    /// it. Writing them again (a confirm repeated) writes the same. Answers the staged original, when there is
    /// one, with its own SHA-256: what the promotion moves instead of the draft. A store that cannot take
    /// DraftStore's own keys is a store failure, never the caller's.
    pub(super) async fn store_image(
        &self,
        keys: &ImageKeys,
        final_key: &ObjectKey,
        prepared: &Prepared,
        content_type: &ContentType,
    ) -> Result<Option<ObjectMeta>> {
        let (objects, records) = (&self.0.store.objects, &self.0.buckets.events);
        let record = ImageRecord { key: final_key.to_string(), image: prepared.report.clone() };
        let body = bytes::Bytes::from(serde_json::to_vec(&record).expect("a record serializes"));
        let key = keys.record();
        let put = objects.put_record(records, &key, body, false);
        self.call("write the image's record", put).await.map_err(ours)?;
        for variant in &prepared.processed.variants {
            let variant_type = ContentType::parse(variant.content_type).expect("a variant's type is valid");
            let key = keys.variant(&variant.name);
            let put = objects.put_object(records, &key, variant.bytes.clone(), &variant_type);
            self.call("write an image variant", put).await.map_err(ours)?;
        }
        let (Some(stripped), Some(rewritten)) = (&prepared.processed.stripped, &prepared.rewritten) else {
            return Ok(None);
        };
        let key = keys.original(&nonce());
        let put = objects.put_object(records, &key, stripped.clone(), content_type);
        let mut staged = self.call("write the stripped original", put).await.map_err(ours)?;
        staged.sha256 = Some(rewritten.sha256.clone());
        Ok(Some(staged))
    }

    /// Promotes an image whose original was stripped of its metadata: the staged original moved under the final
    /// name (the caller's metadata, its own checksum, the promotion's origin), then the draft version deleted. A
    /// confirm repeated after the move and before the deletion finds the object its promotion made, and finishes.
    pub(super) async fn promote_stripped(
        &self,
        (key, draft_meta): (&ObjectKey, &ObjectMeta),
        final_key: &ObjectKey,
        staged: &ObjectMeta,
        promotion: &Promotion,
        id: &str,
    ) -> Result<()> {
        let (draft, main, records) = (&self.0.buckets.draft, &self.0.buckets.main, &self.0.buckets.events);
        let metadata = promotion.metadata.clone().unwrap_or_else(|| draft_meta.metadata.clone());
        let options = MoveOptions {
            no_overwrite: !promotion.overwrite,
            if_match: staged.etag.clone(),
            to_key: Some(final_key.clone()),
            metadata: Some(stored_metadata(metadata, staged, None)),
            keep_source: false,
            source: Some(staged.clone()),
            origin: Some(id.to_owned()),
        };
        let progress = Progress::default();
        let moved = self.0.store.objects.move_object(records, main, &staged.key, &options, &progress);
        let moved = self.call_with_progress("move the stripped original to the main bucket", &progress, moved).await;
        if moved.is_err() {
            // This confirm's own staged original, not moved: not needed, whatever happens next.
            let unneeded = self.0.store.objects.delete(records, &staged.key);
            if let Err(e) = self.call("delete the staged original", unneeded).await {
                tracing::warn!(error = %e.chain(), key = %staged.key, "failed to remove a staged original; the cleaner will");
            }
        }
        match moved {
            Ok(()) => {}
            // Another confirm of this version to this name promoted it first.
            Err(Error::ObjectAlreadyExists(_)) if self.promoted_by(final_key, id).await? => {}
            Err(e) => return Err(e),
        }
        let deleted = async {
            match draft_meta.etag.as_deref() {
                Some(etag) => self.0.store.objects.delete_version(draft, key, etag).await.map(drop),
                None => self.0.store.objects.delete(draft, key).await,
            }
        };
        self.call("delete the promoted draft", deleted).await
    }

    /// Whether the object under `final_key` is the one the promotion `id` made.
    async fn promoted_by(&self, final_key: &ObjectKey, id: &str) -> Result<bool> {
        match self
            .call("look up the confirmed object", self.0.store.objects.head(&self.0.buckets.main, final_key))
            .await
        {
            Ok(object) => Ok(object.origin.as_deref() == Some(id)),
            Err(Error::ObjectNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// What confirm made of a confirmed object that is an image; `None` for other objects.
    pub(super) async fn image_of(&self, object: &ObjectMeta) -> Result<Option<ImageReport>> {
        if !object.content_type.as_str().starts_with("image/") {
            return Ok(None);
        }
        let Some(keys) = ImageKeys::of(object, SET_METADATA) else { return Ok(None) };
        let record = self.image_record(&keys).await?;
        Ok(record.filter(|record| record.key == object.key.as_str()).map(|record| record.image))
    }

    /// The description in an image's folder; `None` when it has none, or none that reads.
    async fn image_record(&self, keys: &ImageKeys) -> Result<Option<ImageRecord>> {
        let key = keys.record();
        let read = self.0.store.objects.get_record(&self.0.buckets.events, &key);
        match self.call("read the image's record", read).await {
            Ok(body) => Ok(serde_json::from_slice::<ImageRecord>(&body).ok()),
            Err(Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes an image's folder: its variants, staged original and description.
    pub(super) async fn forget_image(&self, keys: &ImageKeys) -> Result<()> {
        let (objects, records) = (&self.0.store.objects, &self.0.buckets.events);
        let mut token = None;
        loop {
            let list = objects.list_prefix(records, keys.folder(), token.as_deref(), LIST_PAGE);
            let page = self.call("list an image's variants", list).await?;
            let found: Vec<_> = page.objects.into_iter().map(|o| o.key).collect();
            if !found.is_empty() {
                self.call("delete an image's variants", objects.delete_many(records, &found)).await?;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// [`DraftService::forget_image`], where a failure only leaves work for the cleaner.
    pub(super) async fn forget_image_or_leave(&self, keys: &ImageKeys) {
        if let Err(e) = self.forget_image(keys).await {
            tracing::warn!(error = %e.chain(), folder = keys.folder(), "failed to remove an image's variants; the cleaner will");
        }
    }

    /// Removes the images whose object is gone or is another (deleted, replaced, or never promoted: a confirm
    /// refused or cut off after it wrote them), once their record is older than `grace`. Returns how many.
    pub async fn sweep_images(&self, now: OffsetDateTime, grace: std::time::Duration) -> Result<u64> {
        let (objects, records) = (&self.0.store.objects, &self.0.buckets.events);
        let (mut removed, mut token) = (0, None);
        loop {
            let list = objects.list_prefix(records, IMAGES, token.as_deref(), LIST_PAGE);
            let page = self.call("list the images", list).await?;
            for listed in page.objects {
                let Some(keys) = ImageKeys::of_record(&listed.key) else { continue };
                if now - listed.last_modified < grace {
                    continue;
                }
                if !self.image_is_kept(&keys).await? {
                    self.forget_image(&keys).await?;
                    removed += 1;
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(removed),
            }
        }
    }

    /// Whether an image's folder still belongs to its object.
    async fn image_is_kept(&self, keys: &ImageKeys) -> Result<bool> {
        let record = self.image_record(keys).await?;
        let Some(key) = record.and_then(|r| ObjectKey::parse(&r.key).ok()) else { return Ok(false) };
        match self.call("look up an image's object", self.0.store.objects.head(&self.0.buckets.main, &key)).await {
            Ok(object) => Ok(ImageKeys::of(&object, SET_METADATA).as_ref() == Some(keys)),
            Err(Error::ObjectNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_pipeline_s_errors_keep_or_refuse_as_they_should() {
        let second = Duration::from_secs(1);
        for kept in [ImageError::Busy(second), ImageError::TimedOut(second)] {
            assert!(matches!(judged(kept), Err(Error::ImagesBusy(_))), "a slow or busy pipeline keeps the draft");
        }
        let huge = ImageError::TooLarge { width: 100_000, height: 100_000 };
        assert!(matches!(judged(huge), Ok(Error::ImageTooLarge(_))));
        assert!(matches!(judged(ImageError::Unreadable("cut short".into())), Ok(Error::ImageUnreadable(_))));
    }
}

//! A caller's confirmed objects: listed page by page, looked up one by one, deleted. Each sees only the caller's
//! own namespace, as drafts do.

use draftstore_api::ImageReport;
use draftstore_storage::{Checksum, ContentType, ObjectMeta};
use futures_util::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use super::{DraftService, SET_METADATA, subject};
use crate::auth::Caller;
use crate::domain::{Metadata, ObjectName};
use crate::error::Result;
use crate::hooks::EventType;
use crate::images::ImageKeys;

/// Images' records read at once while a page is filled.
const IMAGE_CONCURRENCY: usize = 16;

/// A confirmed object.
#[derive(Debug, Clone)]
pub struct ObjectEntry {
    pub name: ObjectName,
    pub size: u64,
    pub content_type: ContentType,
    pub confirmed_at: OffsetDateTime,
    /// The SHA-256 declared at upload and verified, when there was one.
    pub sha256: Option<Checksum>,
    /// What confirm stored with it (DraftStore's own entries left out).
    pub metadata: Metadata,
    /// What the image pipeline made of it, when it is an image.
    pub image: Option<ImageReport>,
}

impl ObjectEntry {
    fn new(name: ObjectName, meta: ObjectMeta, image: Option<ImageReport>) -> Self {
        let metadata = meta.metadata.into_iter().filter(|(key, _)| key != SET_METADATA).collect();
        Self {
            name,
            size: meta.size,
            content_type: meta.content_type,
            confirmed_at: meta.last_modified,
            sha256: meta.sha256.or(meta.declared.sha256),
            metadata,
            image,
        }
    }
}

/// One page of confirmed objects, and where the next one starts.
#[derive(Debug, Clone)]
pub struct ObjectPage {
    pub objects: Vec<ObjectEntry>,
    /// Give this back as the page token for the next page; `None` on the last page. Opaque.
    pub next: Option<String>,
}

impl DraftService {
    /// The caller's confirmed objects whose names start with `prefix`, a page at a time.
    pub async fn list_objects(
        &self,
        caller: &Caller,
        prefix: &str,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<ObjectPage> {
        let listed = self.list_page(&self.0.buckets.main, caller, prefix, page_token, page_size).await?;
        let objects = futures_util::stream::iter(listed.entries)
            .map(|(name, meta)| async move {
                let image = self.image_of(&meta).await?;
                Ok::<_, crate::error::Error>(ObjectEntry::new(name, meta, image))
            })
            .buffered(IMAGE_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(ObjectPage { objects, next: listed.next })
    }

    /// One of the caller's confirmed objects. `ObjectNotFound` when the caller has none of that name.
    pub async fn stat_object(&self, caller: &Caller, name: &ObjectName) -> Result<ObjectEntry> {
        let key = caller.key(name)?;
        let meta = self.call("look up the object", self.0.store.objects.head(&self.0.buckets.main, &key)).await?;
        let image = self.image_of(&meta).await?;
        Ok(ObjectEntry::new(name.clone(), meta, image))
    }

    /// Deletes one of the caller's confirmed objects, announcing it with `object.deleted`. `ObjectNotFound` when
    /// the caller has none of that name (never confirmed, already deleted, or another tenant's).
    pub async fn delete_object(&self, caller: &Caller, name: &ObjectName) -> Result<()> {
        let key = caller.key(name)?;
        let bucket = &self.0.buckets.main;
        let meta = self.call("look up the object", self.0.store.objects.head(bucket, &key)).await?;
        let subject = subject(caller, name, &key, &meta);
        self.record(EventType::ObjectDeleted, crate::hooks::message_id(), &subject, serde_json::json!({}), false)
            .await?;
        if let Some(outbox) = &self.0.outbox {
            // A draft.confirmed of this object may still be waiting to see it in the main bucket.
            self.call("record the deletion", outbox.mark_deleted(&key, meta.origin.as_deref())).await?;
        }
        self.call("delete the object", self.0.store.objects.delete(bucket, &key)).await?;
        // Its variants go with it; what a failure leaves, unreachable already, the cleaner removes.
        if let Some(folder) = ImageKeys::of(&meta, SET_METADATA) {
            self.forget_image_or_leave(&folder).await;
        }
        metrics::counter!("draftstore_objects_deleted_total").increment(1);
        Ok(())
    }
}

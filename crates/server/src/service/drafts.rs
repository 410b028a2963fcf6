//! A caller's drafts: listed page by page under a name prefix, and discarded one by one. Both see only the
//! caller's own namespace.

use draftstore_storage::ContentType;
use time::OffsetDateTime;

use super::{DraftService, subject};
use crate::auth::Caller;
use crate::domain::ObjectName;
use crate::error::Result;
use crate::hooks::EventType;

/// A draft as a listing shows it.
#[derive(Debug, Clone)]
pub struct DraftEntry {
    pub name: ObjectName,
    pub size: u64,
    pub content_type: ContentType,
    pub uploaded_at: OffsetDateTime,
    /// When the cleaner may remove it: uploaded at + OBJECT_LIFETIME.
    pub expires_at: OffsetDateTime,
}

/// One page of drafts, and where the next one starts.
#[derive(Debug, Clone)]
pub struct DraftPage {
    pub drafts: Vec<DraftEntry>,
    /// Give this back as the page token for the next page; `None` on the last page. Opaque.
    pub next: Option<String>,
}

impl DraftService {
    /// The caller's drafts whose names start with `prefix`, a page at a time: from the start, or from where
    /// `page_token` (the `next` of the previous page) says.
    pub async fn list_drafts(
        &self,
        caller: &Caller,
        prefix: &str,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<DraftPage> {
        let listed = self.list_page(&self.0.buckets.draft, caller, prefix, page_token, page_size).await?;
        let drafts = listed
            .entries
            .into_iter()
            .map(|(name, meta)| DraftEntry {
                name,
                size: meta.size,
                content_type: meta.content_type,
                uploaded_at: meta.last_modified,
                expires_at: meta.last_modified + self.0.object_lifetime,
            })
            .collect();
        Ok(DraftPage { drafts, next: listed.next })
    }

    /// Deletes a draft of the caller's. `ObjectNotFound` when the caller has no such draft (never uploaded,
    /// already discarded or confirmed, or another tenant's); repeating a discard changes nothing more.
    pub async fn discard(&self, caller: &Caller, name: &ObjectName) -> Result<()> {
        let key = caller.key(name)?;
        let bucket = &self.0.buckets.draft;
        let meta = self.call("look up the draft", self.0.store.objects.head(bucket, &key)).await?;
        self.record(
            EventType::Discarded,
            crate::hooks::message_id(),
            &subject(caller, name, &key, &meta),
            serde_json::json!({}),
            false,
        )
        .await?;
        self.call("discard the draft", self.0.store.objects.delete(bucket, &key)).await?;
        metrics::counter!("draftstore_drafts_discarded_total").increment(1);
        Ok(())
    }
}

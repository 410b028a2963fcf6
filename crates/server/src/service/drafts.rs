//! A caller's drafts: listed page by page under a name prefix, and discarded one by one. Both see only the
//! caller's own namespace.

use draftstore_storage::{ContentType, MAX_KEY_LEN};
use futures_util::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use super::{DraftService, subject};
use crate::auth::Caller;
use crate::domain::ObjectName;
use crate::error::{Error, Result};
use crate::hooks::EventType;

/// Most drafts on one page.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Drafts on a page unless the caller asks for another number.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Metadata look-ups in flight while a page is filled.
const HEAD_CONCURRENCY: usize = 16;

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

/// What a page token holds: the store's own token, and the listing it belongs to.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PageToken {
    /// The key prefix listed (the caller's namespace and prefix).
    p: String,
    /// The store's token.
    t: String,
}

fn encode_token(key_prefix: &str, store_token: String) -> String {
    use base64::Engine;
    let json = serde_json::to_vec(&PageToken { p: key_prefix.to_owned(), t: store_token }).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_token(key_prefix: &str, token: &str) -> Result<String> {
    use base64::Engine;
    let invalid = || Error::InvalidRequest("page_token is not one this listing gave".to_owned());
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let token: PageToken = serde_json::from_slice(&json).map_err(|_| invalid())?;
    // A token of another listing (another prefix, another tenant) is refused, never followed.
    if token.p != key_prefix {
        return Err(invalid());
    }
    Ok(token.t)
}

/// Checks a name prefix from a request: empty, or the start of a valid object name.
pub fn parse_prefix(prefix: &str) -> Result<String> {
    if prefix.is_empty() {
        return Ok(String::new());
    }
    ObjectName::parse(&format!("{prefix}x"))
        .map(|_| prefix.to_owned())
        .map_err(|e| Error::InvalidRequest(format!("prefix: {e}")))
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
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::InvalidRequest(format!("page_size must be 1 to {MAX_PAGE_SIZE}")));
        }
        let prefix = parse_prefix(prefix)?;
        let namespace = caller.namespace();
        let key_prefix = format!("{namespace}{prefix}");
        if key_prefix.len() >= MAX_KEY_LEN {
            return Err(Error::InvalidRequest(format!(
                "prefix: with the tenant prefix it is {} bytes long; names are at most {MAX_KEY_LEN}",
                key_prefix.len()
            )));
        }
        let store_token = page_token.map(|token| decode_token(&key_prefix, token)).transpose()?;
        let bucket = &self.0.buckets.draft;
        let list = self.0.storage.list_prefix(bucket, &key_prefix, store_token.as_deref(), page_size);
        let page = match self.call("list the drafts", list).await {
            Err(Error::InvalidObjectName(_)) => {
                return Err(Error::InvalidRequest("page_token is not one this listing gave".to_owned()));
            }
            other => other?,
        };
        let heads = futures_util::stream::iter(page.objects)
            .map(|object| async move {
                match self.call("look up a draft", self.0.storage.head(bucket, &object.key)).await {
                    Ok(meta) => Ok(Some((object, meta.content_type))),
                    // Confirmed or discarded since it was listed.
                    Err(Error::ObjectNotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(HEAD_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let mut drafts = Vec::with_capacity(heads.len());
        for (object, content_type) in heads.into_iter().flatten() {
            let name = caller.name_of(&object.key)?;
            drafts.push(DraftEntry {
                name,
                size: object.size,
                content_type,
                uploaded_at: object.last_modified,
                expires_at: object.last_modified + self.0.object_lifetime,
            });
        }
        Ok(DraftPage { drafts, next: page.next.map(|next| encode_token(&key_prefix, next)) })
    }

    /// Deletes a draft of the caller's. `ObjectNotFound` when the caller has no such draft (never uploaded,
    /// already discarded or confirmed, or another tenant's); repeating a discard changes nothing more.
    pub async fn discard(&self, caller: &Caller, name: &ObjectName) -> Result<()> {
        let key = caller.key(name)?;
        let bucket = &self.0.buckets.draft;
        let meta = self.call("look up the draft", self.0.storage.head(bucket, &key)).await?;
        self.record(EventType::Discarded, &subject(caller, name, &key, &meta), serde_json::json!({}), false).await?;
        self.call("discard the draft", self.0.storage.delete(bucket, &key)).await?;
        metrics::counter!("draftstore_drafts_discarded_total").increment(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_belong_to_their_listing() {
        let token = encode_token("alice/photos/", "store-token".to_owned());
        assert_eq!(decode_token("alice/photos/", &token).expect("same listing"), "store-token");
        assert!(decode_token("mallory/photos/", &token).is_err());
        assert!(decode_token("alice/", &token).is_err());
        assert!(decode_token("alice/photos/", "not base64!").is_err());
    }

    #[test]
    fn a_prefix_is_the_start_of_a_valid_name() {
        for good in ["", "a", "photos/", "photos/2024-", "a/b c"] {
            assert!(parse_prefix(good).is_ok(), "{good}");
        }
        for bad in ["/", "/a", "a//", "../", "a/../", "a\\b", "a\u{7}"] {
            assert!(parse_prefix(bad).is_err(), "{bad}");
        }
    }
}

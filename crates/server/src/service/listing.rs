//! Listing a caller's objects in one bucket, page by page under a name prefix: what `list-drafts` and
//! `list-objects` share. A listing sees only the caller's own namespace, and its page tokens only that listing.

use draftstore_storage::{BucketName, MAX_KEY_LEN, ObjectMeta};
use futures_util::{StreamExt, TryStreamExt};

use super::DraftService;
use crate::auth::Caller;
use crate::domain::ObjectName;
use crate::error::{Error, Result};

/// Most entries on one page.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Entries on a page unless the caller asks for another number.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Metadata look-ups in flight while a page is filled.
const HEAD_CONCURRENCY: usize = 16;

/// What a page token holds: the store's own token, and the listing it belongs to.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PageToken {
    /// The listing: the bucket and the key prefix listed (the caller's namespace and prefix).
    p: String,
    /// The store's token.
    t: String,
}

fn encode_token(listing: &str, store_token: String) -> String {
    use base64::Engine;
    let json = serde_json::to_vec(&PageToken { p: listing.to_owned(), t: store_token }).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_token(listing: &str, token: &str) -> Result<String> {
    use base64::Engine;
    let invalid = || Error::InvalidRequest("page_token is not one this listing gave".to_owned());
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let token: PageToken = serde_json::from_slice(&json).map_err(|_| invalid())?;
    // A token of another listing (another bucket, prefix or tenant) is refused, never followed.
    if token.p != listing {
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

/// One page of a listing: each object's name and metadata, and where the next page starts.
pub(super) struct Listed {
    pub entries: Vec<(ObjectName, ObjectMeta)>,
    pub next: Option<String>,
}

impl DraftService {
    /// The caller's objects in `bucket` whose names start with `prefix`, a page at a time: from the start, or from
    /// where `page_token` (the `next` of the previous page) says. Each is looked up for its metadata; one removed
    /// since it was listed is left out.
    pub(super) async fn list_page(
        &self,
        bucket: &BucketName,
        caller: &Caller,
        prefix: &str,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<Listed> {
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::InvalidRequest(format!("page_size must be 1 to {MAX_PAGE_SIZE}")));
        }
        let prefix = parse_prefix(prefix)?;
        let key_prefix = format!("{}{prefix}", caller.namespace());
        if key_prefix.len() >= MAX_KEY_LEN {
            return Err(Error::InvalidRequest(format!(
                "prefix: with the tenant prefix it is {} bytes long; names are at most {MAX_KEY_LEN}",
                key_prefix.len()
            )));
        }
        let listing = format!("{bucket}/{key_prefix}");
        let store_token = page_token.map(|token| decode_token(&listing, token)).transpose()?;
        let list = self.0.store.objects.list_prefix(bucket, &key_prefix, store_token.as_deref(), page_size);
        let page = match self.call("list the bucket", list).await {
            Err(Error::InvalidObjectName(_)) => {
                return Err(Error::InvalidRequest("page_token is not one this listing gave".to_owned()));
            }
            other => other?,
        };
        let heads = futures_util::stream::iter(page.objects)
            .map(|object| async move {
                match self.call("look up an object", self.0.store.objects.head(bucket, &object.key)).await {
                    Ok(meta) => Ok(Some(meta)),
                    // Confirmed, discarded or deleted since it was listed.
                    Err(Error::ObjectNotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(HEAD_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let mut entries = Vec::with_capacity(heads.len());
        for meta in heads.into_iter().flatten() {
            entries.push((caller.name_of(&meta.key)?, meta));
        }
        Ok(Listed { entries, next: page.next.map(|next| encode_token(&listing, next)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_belong_to_their_listing() {
        let token = encode_token("drafts/alice/photos/", "store-token".to_owned());
        assert_eq!(decode_token("drafts/alice/photos/", &token).expect("same listing"), "store-token");
        assert!(decode_token("drafts/mallory/photos/", &token).is_err());
        assert!(decode_token("main/alice/photos/", &token).is_err(), "another bucket");
        assert!(decode_token("drafts/alice/", &token).is_err());
        assert!(decode_token("drafts/alice/photos/", "not base64!").is_err());
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

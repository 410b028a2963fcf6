//! The listing capability: a bucket streamed, a prefix paged, a batch delete.

use futures_util::TryStreamExt;

use super::{Target, key, upload};
use crate::Error;

/// [`ObjectStore`](crate::ObjectStore)'s listing: the whole bucket streamed, a prefix paged without repeats or gaps, a batch delete that counts missing
/// objects as deleted.
pub async fn listing(target: &Target<'_>) {
    let (store, client, bucket) = (target.store, &target.client, target.main);
    let names = ["list/a.txt", "list/b/c.txt", "list/b/d.txt", "list/e.txt", "other/f.txt"];
    for name in names {
        upload(store, client, bucket, &key(name), b"x").await;
    }
    let pages: Vec<_> = store.objects.list(bucket).try_collect().await.expect("listed");
    let mut all: Vec<_> = pages.iter().flat_map(|page| page.objects.iter().map(|o| o.key.to_string())).collect();
    all.sort();
    assert_eq!(all, names, "the bucket's objects, each once");
    assert!(pages.iter().all(|page| page.objects.iter().all(|o| o.size == 1)));

    let (mut seen, mut token) = (Vec::new(), None::<String>);
    loop {
        let page = store.objects.list_prefix(bucket, "list/", token.as_deref(), 2).await.expect("a page");
        assert!(page.objects.len() <= 2, "at most the limit");
        seen.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, names[..4], "every object under the prefix, once, over the pages");
    let bad = store.objects.list_prefix(bucket, "list/", Some("\u{1}not a token"), 2).await;
    assert!(matches!(bad, Err(Error::InvalidKey { .. })), "{bad:?}");

    let keys: Vec<_> = names.iter().map(|name| key(name)).chain([key("list/never-written")]).collect();
    assert_eq!(store.objects.delete_many(bucket, &keys).await.expect("deleted"), []);
    let left: Vec<_> = store.objects.list(bucket).try_collect().await.expect("listed");
    assert!(left.iter().all(|page| page.objects.iter().all(|o| !names.contains(&o.key.as_str()))));
}

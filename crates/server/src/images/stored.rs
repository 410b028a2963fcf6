//! Where an image's variants and description are kept: in the records bucket, under `images/<id>/`, where `<id>`
//! names one promotion of one draft version to one final name. Callers never name a key there, so a variant can
//! never collide with an object, and no listing of objects sees one.
//!
//! The confirmed object is the only way in: its promotion (its origin, or its set and key) gives the id, so a
//! variant is reached through an object the caller may read, and an object replaced or deleted leaves its old
//! variants unreachable until they are removed (at once, or by the cleaner's sweep of records whose object is gone).

use draftstore_api::ImageReport;
use draftstore_storage::{ObjectKey, ObjectMeta};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::VariantName;

/// Where images' records are kept in the records bucket.
pub const IMAGES: &str = "images/";
/// The description's name in an image's folder.
const RECORD: &str = "image.json";

/// What an image's folder holds: the description that confirm answered, and the object it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The confirmed object's key, to tell whether the record still has its object.
    pub key: String,
    pub image: ImageReport,
}

/// The keys of one image's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKeys {
    folder: String,
}

impl ImageKeys {
    /// The folder of the image a promotion named `promotion` makes under `final_key`: a confirm's origin, or a
    /// set's id (each set promotes a final name once).
    pub fn new(promotion: &str, final_key: &ObjectKey) -> Self {
        let mut digest = sha2::Sha256::new();
        for part in [promotion, final_key.as_str()] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        Self { folder: format!("{IMAGES}{}/", hex::encode(&digest.finalize()[..16])) }
    }

    /// The folder of a confirmed object's image, if it can have one: from the set it was promoted in, or else
    /// from its origin.
    pub fn of(object: &ObjectMeta, set_metadata: &str) -> Option<Self> {
        let promotion = object.metadata.get(set_metadata).or(object.origin.as_ref())?;
        Some(Self::new(promotion, &object.key))
    }

    /// The folder whose record is `record`, as a listing finds it; `None` for any other key.
    pub fn of_record(record: &ObjectKey) -> Option<Self> {
        let folder = record.as_str().strip_suffix(RECORD)?;
        folder.starts_with(IMAGES).then(|| Self { folder: folder.to_owned() })
    }

    /// The folder, as a prefix to list.
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The description.
    pub fn record(&self) -> ObjectKey {
        self.key(RECORD)
    }

    /// A variant.
    pub fn variant(&self, name: &VariantName) -> ObjectKey {
        self.key(&format!("v/{name}"))
    }

    /// The original without its metadata, staged to be moved to the main bucket by one confirm: each has its own
    /// (`nonce`, hex), so that confirms racing on one draft never move or replace another's.
    pub fn original(&self, nonce: &str) -> ObjectKey {
        self.key(&format!("original-{nonce}"))
    }

    fn key(&self, name: &str) -> ObjectKey {
        // A 16-byte digest in hex and a short name: always a valid key.
        ObjectKey::parse(&format!("{}{name}", self.folder)).expect("an image's key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_promotion_and_name_gets_its_own_folder() {
        let key = |k: &str| ObjectKey::parse(k).expect("a key");
        let one = ImageKeys::new("msg_1", &key("a.png"));
        assert_ne!(one, ImageKeys::new("msg_2", &key("a.png")));
        assert_ne!(one, ImageKeys::new("msg_1", &key("b.png")));
        // No separator trick joins a promotion and a key into another pair's.
        assert_ne!(ImageKeys::new("ab", &key("c")), ImageKeys::new("a", &key("bc")));
        let thumb = VariantName::parse("thumb").expect("a name");
        assert!(one.variant(&thumb).as_str().starts_with(one.folder()));
        assert_eq!(ImageKeys::of_record(&one.record()), Some(one.clone()));
        assert_eq!(ImageKeys::of_record(&one.variant(&thumb)), None);
        assert_eq!(ImageKeys::of_record(&key("sets/x/image.json")), None);
    }
}

//! Storage for DraftStore: the storage contract that the service talks to, split by capability, and its backends.
//!
//! Five traits say what a store does: [`ObjectStore`] (head, read, move, delete, list, records), [`Signer`]
//! (presigned URLs), [`MultipartStore`], [`BucketAdmin`] (create and check buckets) and [`BucketRules`] (browser
//! CORS and lifecycle rules, which only a separate store has); what a store is trusted to honour of a signed URL
//! is a sixth, [`probe::StoreProbe`]. A backend's constructor gathers them into a [`Store`], and each service holds
//! the ones it needs. Their documentation is the contract; `conformance` (feature `conformance`) checks every
//! method against it, one function per capability, and the server's tests run it on the local backend and on
//! SeaweedFS. Backends keep their own error types private and convert them once into [`Error`].

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod local;
pub mod multipart;
mod names;
pub mod probe;
pub mod s3;
mod storage;
mod store;

pub use error::{Error, Result};
pub use multipart::{CompletedPart, Progress, UploadedPart};
pub use names::{
    BucketName, Checksum, ContentType, InvalidName, MAX_CONTENT_TYPE_LEN, MAX_KEY_LEN, MAX_UPLOAD_ID_LEN, ObjectKey,
    UploadId,
};
pub use storage::{
    ByteChunks, CHECKSUM_HEADER, Conditions, DECLARED_LENGTH_HEADER, DECLARED_SHA256_HEADER, Declared, DeleteFailure,
    LIST_PAGE, ListPage, ListPages, ListedObject, MAX_URL_TTL, Metadata, Method, MoveOptions, MultipartRequest,
    ORIGIN_METADATA, ObjectMeta, PrefixPage, PresignRequest, PresignedUrl, StaleUploads, VersionDeletes, collect,
};
pub use store::{BucketAdmin, BucketRules, Moves, MultipartStore, ObjectStore, Signer, Store, WholeChecksum};

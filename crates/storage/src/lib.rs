//! Storage for DraftStore: the [`Storage`] trait that the service talks to, and its backends.
//!
//! The trait has about twenty methods in five groups: buckets (create, check, CORS, lifecycle), objects (presign,
//! head, move, delete), multipart uploads, DraftStore's own records (put, get), and the cleaner's listing and batch
//! deletes. Its documentation is the contract; one suite (`crates/server/tests/api/conformance.rs`) checks every
//! method against it on the local backend and on SeaweedFS. Backends keep their own error types private and
//! convert them once into [`Error`]. What a store is trusted to honour of a signed URL is a capability of its own,
//! [`probe::StoreProbe`], checked by the same suite on both backends.

mod error;
pub mod local;
pub mod multipart;
mod names;
pub mod probe;
pub mod s3;
mod storage;

pub use error::{Error, Result};
pub use multipart::{CompletedPart, Progress, UploadedPart};
pub use names::{
    BucketName, Checksum, ContentType, InvalidName, MAX_CONTENT_TYPE_LEN, MAX_KEY_LEN, MAX_UPLOAD_ID_LEN, ObjectKey,
    UploadId,
};
pub use storage::{
    ByteChunks, CHECKSUM_HEADER, Conditions, DECLARED_LENGTH_HEADER, DECLARED_SHA256_HEADER, Declared, DeleteFailure,
    LIST_PAGE, ListPage, ListPages, ListedObject, MAX_URL_TTL, Metadata, Method, MoveOptions, MultipartRequest,
    ORIGIN_METADATA, ObjectMeta, PrefixPage, PresignRequest, PresignedUrl, StaleUploads, Storage, VersionDeletes,
    collect,
};

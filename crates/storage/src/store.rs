//! The storage contract, split by capability as object_store splits `ObjectStore`, `MultipartStore` and `Signer`:
//! objects ([`ObjectStore`]), signed URLs ([`Signer`]), multipart uploads ([`MultipartStore`]), buckets
//! ([`BucketAdmin`]) and the rules a bucket carries for browsers and expiry ([`BucketRules`]). A backend states
//! what it does by the traits it implements and the capability values they ask for, never by a default that says
//! "unsupported"; a service holds the capabilities it needs, gathered once in a [`Store`].
//!
//! Errors follow one contract on every backend: a missing object is [`Error::NotFound`](crate::Error::NotFound),
//! a missing bucket [`Error::BucketNotFound`](crate::Error::BucketNotFound), a store that cannot be reached or is
//! too slow [`Error::Unavailable`](crate::Error::Unavailable). Callers bound every call with their own timeout.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::probe::StoreProbe;
use crate::storage::{
    ByteChunks, Declared, DeleteFailure, ListPages, MoveOptions, MultipartRequest, ObjectMeta, PrefixPage,
    PresignRequest, PresignedUrl, StaleUploads, VersionDeletes, collect,
};
use crate::{BucketName, CompletedPart, ContentType, ObjectKey, Progress, Result, UploadId, UploadedPart};

/// Whether a version moved by [`ObjectStore::move_object`] is moved once whoever else moves it meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moves {
    /// Of two moves of one source version racing (to different keys), one succeeds and the other is
    /// [`Error::NotFound`](crate::Error::NotFound): the local backend takes the file itself.
    Exclusive,
    /// The store copies, then deletes: two copies of one version can both succeed (S3).
    CopyThenDelete,
}

/// Whether [`MultipartStore::complete_multipart`] verifies a declared SHA-256 of the whole object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WholeChecksum {
    /// A whole object that differs from its declared SHA-256 is refused and nothing is assembled.
    Verified,
    /// Only each part is checked against its own checksum, never the whole (S3): callers refuse a declared SHA-256.
    PartsOnly,
}

/// Objects in buckets: read, moved, deleted, listed, and DraftStore's own records.
#[async_trait]
pub trait ObjectStore: Debug + Send + Sync + 'static {
    /// The metadata of one object.
    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta>;

    /// Moves an object to another bucket, under the same key or [`MoveOptions::to_key`], its content type kept and
    /// its metadata kept or replaced; see [`MoveOptions`] for refusing to replace an object already there, and for
    /// copying instead of moving. The destination is never seen half-written: it holds the
    /// old object or the whole new one. When the source is missing the result is
    /// [`Error::NotFound`](crate::Error::NotFound) and nothing changes. Not atomic as a whole on every backend (S3
    /// copies, then deletes): after a failure the object may exist in both buckets, and repeating the call
    /// completes the move.
    ///
    /// With [`MoveOptions::if_match`] exactly that version is moved, whatever is written to the source meanwhile:
    /// the local backend moves the file it checked (a file put in its place meanwhile stays where it is), S3 copies
    /// with `x-amz-copy-source-if-match`. The source is then deleted only if it still is that version
    /// ([`ObjectStore::delete_version`]): a draft uploaded again during the move is kept.
    ///
    /// A move of a large object takes as long as its bytes take to copy: the backend bounds each request to the
    /// store on its own and records each step (a part copied, an answer) in `progress`, so that the caller bounds
    /// stalls, not size.
    async fn move_object(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        options: &MoveOptions,
        progress: &Progress,
    ) -> Result<()>;

    /// Whether two moves of one version can both succeed; see [`Moves`].
    fn moves(&self) -> Moves;

    /// Writes a small object whole: DraftStore's own records (event outbox entries, leases), never a client's
    /// upload. With `if_absent` an existing object is left as it is and the answer is `false`; a store that ignores
    /// conditional writes is asked first, so that two racing writers may then, rarely, both succeed.
    async fn put_record(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: bytes::Bytes,
        if_absent: bool,
    ) -> Result<bool>;

    /// Writes an object whole, with its content type, replacing any: what DraftStore makes of an upload (an image's
    /// original without its metadata, a variant), kept where only DraftStore writes. The answer is the metadata of
    /// what was written (from the write, not a look-up after it, which another writer could race), its etag
    /// included, so that the caller can move exactly that version.
    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: bytes::Bytes,
        content_type: &ContentType,
    ) -> Result<ObjectMeta>;

    /// Reads a small object whole. [`Error::NotFound`](crate::Error::NotFound) when it does not exist.
    async fn get_record(&self, bucket: &BucketName, key: &ObjectKey) -> Result<bytes::Bytes>;

    /// Reads an object's bytes as a stream of chunks, from its start: all of them, or with `first` only the first
    /// that many (fewer when the object is shorter). Memory stays bounded by a chunk, whatever the object's size.
    /// With `if_match`, only the version of that etag is read: another is
    /// [`Error::PreconditionFailed`](crate::Error::PreconditionFailed). A body that breaks off ends the stream
    /// with [`Error::Unavailable`](crate::Error::Unavailable).
    async fn read(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        first: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks>;

    /// The metadata of one object and its first `len` bytes (fewer when it is shorter), of the same version: what a
    /// check of its type needs, in about the time of [`ObjectStore::head`] alone. The default reads after the head.
    async fn head_with_first_bytes(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        len: u64,
    ) -> Result<(ObjectMeta, bytes::Bytes)> {
        let meta = self.head(bucket, key).await?;
        let first = collect(self.read(bucket, key, Some(len), meta.etag.as_deref()).await?, len).await?;
        Ok((meta, first))
    }

    /// Deletes an object. Idempotent: deleting a missing object is success.
    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()>;

    /// Deletes an object only if it is the version `etag` names: what follows a step bound to that version (a
    /// check, a copy, a listing), so that an object written again meanwhile is kept. `true` when that version was
    /// deleted; `false` when the key holds another version, or none (nothing is deleted).
    ///
    /// The local backend renames the file aside, compares, and puts back one that is not the version named. S3
    /// sends `If-Match` where the store honours conditional deletes (found out by
    /// the [`StoreProbe`]); elsewhere it looks the object up and compares first, and a write
    /// landing between the two is deleted.
    async fn delete_version(&self, bucket: &BucketName, key: &ObjectKey, etag: &str) -> Result<bool>;

    /// [`ObjectStore::delete_version`] for up to [`LIST_PAGE`](crate::LIST_PAGE) objects in one call: each key is
    /// deleted only if it still holds the version named with it. Missing objects count as deleted. `Err` when the
    /// call as a whole failed.
    async fn delete_versions(&self, bucket: &BucketName, versions: &[(ObjectKey, String)]) -> Result<VersionDeletes>;

    /// Lists a bucket page by page, streaming: memory does not grow with the bucket.
    fn list(&self, bucket: &BucketName) -> ListPages<'_>;

    /// One page of the objects whose keys start with `prefix`, at most `limit` (1 to 1000), in the store's
    /// listing order (S3 lists keys in byte order; some compatible stores list folder by folder), from where
    /// `token` (a [`PrefixPage::next`] of the same prefix) says. `prefix` is a key with its last characters
    /// removed (empty for all): a caller checks that `prefix` plus any character would be a valid key. A token
    /// this backend cannot have given is [`Error::InvalidKey`](crate::Error::InvalidKey).
    async fn list_prefix(
        &self,
        bucket: &BucketName,
        prefix: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PrefixPage>;

    /// Deletes up to [`LIST_PAGE`](crate::LIST_PAGE) objects in one call. Missing objects count as deleted.
    /// Returns the keys that could not be deleted; `Err` when the call as a whole failed.
    async fn delete_many(&self, bucket: &BucketName, keys: &[ObjectKey]) -> Result<Vec<DeleteFailure>>;

    /// Removes uploads that were started and never completed (multipart uploads, and on the local backend staging
    /// files), returning how many.
    async fn remove_stale_uploads(&self, bucket: &BucketName, stale: StaleUploads) -> Result<u64>;
}

/// URLs that let their holder make one request on one object without credentials.
#[async_trait]
pub trait Signer: Debug + Send + Sync + 'static {
    /// Signs a URL for one request on one object. No call to the store, so it cannot tell whether the object
    /// exists; async only because fresh credentials may have to be fetched.
    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl>;
}

/// Multipart uploads: started by DraftStore, parts sent by clients through signed URLs, checked and completed by
/// DraftStore.
#[async_trait]
pub trait MultipartStore: Debug + Send + Sync + 'static {
    /// Starts a multipart upload of `key`. The object it assembles will have `content_type` and carry `declared`.
    /// A declared SHA-256 is verified against the whole object at completion only where
    /// [`MultipartStore::whole_checksum`] says so; callers refuse it elsewhere. `part_size` is the size the
    /// client was told to use for every part but the last, which a backend may lay its parts out by.
    async fn create_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
        part_size: Option<u64>,
    ) -> Result<UploadId>;

    /// Whether completion verifies a declared SHA-256 of the whole object; see [`WholeChecksum`].
    fn whole_checksum(&self) -> WholeChecksum;

    /// Signs a URL to upload part `number` (1 to 10,000) of an upload; `request.conditions.checksum_sha256`, when
    /// given, is the part's checksum, which the store verifies. No call to the store.
    async fn presign_part(
        &self,
        request: &PresignRequest<'_>,
        upload_id: &UploadId,
        number: u32,
    ) -> Result<PresignedUrl>;

    /// Signs a URL for one multipart request that a client sends to the store itself (an uploader that speaks
    /// S3's API). `request.method` is ignored: the request decides it. No call to the store.
    async fn presign_multipart(
        &self,
        request: &PresignRequest<'_>,
        multipart: MultipartRequest<'_>,
    ) -> Result<PresignedUrl>;

    /// Stores part `number` (1 to 10,000) of an upload from bytes DraftStore holds itself (an append of a
    /// resumable upload), replacing an earlier upload of that number, and answers the part as the store keeps it.
    /// Every part but the last must be the upload's `part_size` on a backend that lays parts out by it.
    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        number: u32,
        body: bytes::Bytes,
    ) -> Result<UploadedPart>;

    /// The parts uploaded so far, by ascending number. A store that keeps every upload of a part number lists
    /// each (SeaweedFS does; [`latest_versions`](crate::multipart::latest_versions) keeps the latest).
    /// [`Error::UploadNotFound`](crate::Error::UploadNotFound) when no upload of this id exists for this key.
    async fn list_parts(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId)
    -> Result<Vec<UploadedPart>>;

    /// Succeeds when an upload of this id exists for this key; one cheap call. The default lists the parts.
    async fn check_upload(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        self.list_parts(bucket, key, upload_id).await.map(drop)
    }

    /// Assembles the listed parts, in order, into the object, replacing any object of that key, and ends the
    /// upload. The object appears whole or not at all; when this fails, the parts are kept and the call can be
    /// repeated with a corrected list ([`Error::InvalidParts`](crate::Error::InvalidParts) says what is wrong).
    /// Records each step of an assembly in `progress` where the backend copies the bytes itself.
    async fn complete_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        progress: &Progress,
    ) -> Result<()>;

    /// Ends an upload and removes its parts. [`Error::UploadNotFound`](crate::Error::UploadNotFound) when no
    /// upload of this id exists for this key.
    async fn abort_multipart(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()>;
}

/// Buckets: created and checked.
#[async_trait]
pub trait BucketAdmin: Debug + Send + Sync + 'static {
    /// Creates the bucket if it does not exist. Idempotent: a bucket that already exists is success.
    async fn create_bucket(&self, bucket: &BucketName) -> Result<()>;

    /// Succeeds when the bucket exists and the store answers; the readiness check.
    async fn check_bucket(&self, bucket: &BucketName) -> Result<()>;
}

/// Rules a bucket of a separate store carries: which browsers may reach it, and when its objects expire. A store
/// that is DraftStore itself (the local backend) has none: DraftStore answers browsers and expires drafts itself.
#[async_trait]
pub trait BucketRules: Debug + Send + Sync + 'static {
    /// Lets browsers on these origins upload to and read from the bucket directly (a CORS rule), replacing the
    /// bucket's CORS rules. Idempotent.
    async fn allow_browser_uploads(&self, bucket: &BucketName, origins: &[String]) -> Result<()>;

    /// Puts a lifecycle rule on the bucket: objects expire after `days` days and incomplete multipart uploads are
    /// aborted after as long. Idempotent: the rule replaces the bucket's lifecycle rules.
    async fn install_lifecycle(&self, bucket: &BucketName, days: u32) -> Result<()>;
}

/// One store's capabilities, built once by a backend's constructor and handed to the services, each of which
/// holds what it needs.
#[derive(Debug, Clone)]
pub struct Store {
    pub objects: Arc<dyn ObjectStore>,
    pub signer: Arc<dyn Signer>,
    pub multipart: Arc<dyn MultipartStore>,
    pub buckets: Arc<dyn BucketAdmin>,
    /// `None` where the store has no bucket rules (the local backend).
    pub rules: Option<Arc<dyn BucketRules>>,
    /// What the store is trusted to honour of a signed URL.
    pub probe: Arc<dyn StoreProbe>,
}

impl Store {
    /// Every capability from one backend that has them all, bucket rules included.
    pub fn with_rules<B>(backend: Arc<B>) -> Self
    where
        B: ObjectStore + Signer + MultipartStore + BucketAdmin + BucketRules + StoreProbe,
    {
        Self { rules: Some(backend.clone()), ..Self::without_rules(backend) }
    }

    /// Every capability from one backend that has no bucket rules.
    pub fn without_rules<B>(backend: Arc<B>) -> Self
    where
        B: ObjectStore + Signer + MultipartStore + BucketAdmin + StoreProbe,
    {
        Self {
            objects: backend.clone(),
            signer: backend.clone(),
            multipart: backend.clone(),
            buckets: backend.clone(),
            rules: None,
            probe: backend,
        }
    }
}

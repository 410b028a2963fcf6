use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use time::OffsetDateTime;

use crate::{BucketName, Checksum, CompletedPart, ContentType, ObjectKey, Progress, Result, UploadId, UploadedPart};

/// The HTTP method a presigned URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    /// Multipart requests only: start and complete an upload.
    Post,
    /// Multipart requests only: abort an upload.
    Delete,
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// A multipart request of S3's API that a client sends itself, through a presigned URL. (Completion is not one:
/// DraftStore completes uploads itself, to check them first.)
#[derive(Debug, Clone, Copy)]
pub enum MultipartRequest<'a> {
    /// `POST ?uploads`: start an upload; the content type of the request is signed in when given.
    Create,
    /// `GET ?uploadId=`: list the parts.
    ListParts(&'a UploadId),
    /// `DELETE ?uploadId=`: abort the upload.
    Abort(&'a UploadId),
}

impl MultipartRequest<'_> {
    /// The method the request is sent with.
    pub fn method(self) -> Method {
        match self {
            Self::Create => Method::Post,
            Self::ListParts(_) => Method::Get,
            Self::Abort(_) => Method::Delete,
        }
    }
}

/// What a presigned URL should allow.
#[derive(Debug, Clone)]
pub struct PresignRequest<'a> {
    pub method: Method,
    pub bucket: &'a BucketName,
    pub key: &'a ObjectKey,
    /// When signing happens; the URL is valid from then for `expires_in`.
    pub now: OffsetDateTime,
    pub expires_in: Duration,
    /// What else the URL binds: signed in, so the store refuses a request that differs.
    pub conditions: &'a Conditions,
}

/// Conditions signed into a presigned URL besides its method, object and expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Upload: the content type the uploader must send.
    pub content_type: Option<ContentType>,
    /// Upload: the exact size, in bytes.
    pub content_length: Option<u64>,
    /// Upload: the SHA-256 of the body, which the store verifies.
    pub checksum_sha256: Option<Checksum>,
    /// Download: the response's `Content-Disposition` (for example `attachment`, so that a browser saves the object
    /// instead of rendering it, with the file name to save it under).
    pub disposition: Option<String>,
    /// Download: only the version of this etag. Another version is refused (412) and none is served: S3 signs an
    /// `If-Match` header that the request must send (it is in [`PresignedUrl::headers`]); the local backend signs
    /// the etag into the URL itself.
    pub if_match: Option<String>,
    /// Download: the response's `Content-Type`, whatever type the object has when the URL is used (S3's
    /// `response-content-type`), so that an object replaced after signing cannot change how it is presented.
    pub response_content_type: Option<ContentType>,
}

/// The checksum header, as S3 names it; the local backend uses the same name.
pub const CHECKSUM_HEADER: &str = "x-amz-checksum-sha256";

/// The signed query parameters that set a download's response headers, named as on S3.
pub const RESPONSE_CONTENT_DISPOSITION_PARAM: &str = "response-content-disposition";
pub const RESPONSE_CONTENT_TYPE_PARAM: &str = "response-content-type";

impl Conditions {
    /// The query parameters a download URL signs: the response's disposition and type, when given, sorted by name.
    pub fn response_params(&self) -> Vec<(&'static str, &str)> {
        let mut params = Vec::new();
        if let Some(disposition) = &self.disposition {
            params.push((RESPONSE_CONTENT_DISPOSITION_PARAM, disposition.as_str()));
        }
        if let Some(content_type) = &self.response_content_type {
            params.push((RESPONSE_CONTENT_TYPE_PARAM, content_type.as_str()));
        }
        params
    }
}

impl Conditions {
    /// The headers an upload must send, lowercase names in sorted order, as they are signed.
    pub fn upload_headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if let Some(length) = self.content_length {
            headers.push(("content-length".to_owned(), length.to_string()));
        }
        if let Some(content_type) = &self.content_type {
            headers.push(("content-type".to_owned(), content_type.to_string()));
        }
        if let Some(checksum) = &self.checksum_sha256 {
            headers.push((CHECKSUM_HEADER.to_owned(), checksum.to_string()));
        }
        if let Some(length) = self.content_length {
            headers.push((DECLARED_LENGTH_HEADER.to_owned(), length.to_string()));
        }
        if let Some(checksum) = &self.checksum_sha256 {
            headers.push((DECLARED_SHA256_HEADER.to_owned(), checksum.to_string()));
        }
        headers
    }
}

impl Conditions {
    /// The headers a part upload must send: its length and checksum when given (parts carry no content type and
    /// no metadata; the upload has them).
    pub fn part_headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if let Some(length) = self.content_length {
            headers.push(("content-length".to_owned(), length.to_string()));
        }
        if let Some(checksum) = &self.checksum_sha256 {
            headers.push((CHECKSUM_HEADER.to_owned(), checksum.to_string()));
        }
        headers
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in a signed URL, in keys and query values alike:
/// what SigV4 signs, and what the local backend's signatures cover.
pub(crate) const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Appends `bytes` in lowercase hex, as signatures and digests are written into URLs.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// Appends `parts` with `separator` between them.
pub(crate) fn push_joined<'a>(out: &mut String, parts: impl IntoIterator<Item = &'a str>, separator: &str) {
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(part);
    }
}

/// `content-type` → `Content-Type`, the form clients expect to read; `x-amz-…` headers keep S3's lowercase.
pub(crate) fn display_header_name(name: &str) -> String {
    if name.starts_with("x-amz-") {
        return name.to_owned();
    }
    let mut display = String::with_capacity(name.len());
    let mut word_start = true;
    for c in name.chars() {
        display.push(if word_start { c.to_ascii_uppercase() } else { c });
        word_start = c == '-';
    }
    display
}

/// Longest lifetime of a presigned URL, in seconds: 7 days, what SigV4 allows; every backend keeps to it.
pub const MAX_URL_TTL: u64 = 7 * 24 * 3600;

/// A URL that lets its holder make one kind of request on one object without credentials, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    pub url: String,
    pub method: Method,
    /// Headers the request must carry exactly as given, because they are part of the signature.
    pub headers: Vec<(String, String)>,
}

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: ObjectKey,
    pub size: u64,
    pub content_type: ContentType,
    pub last_modified: OffsetDateTime,
    /// The SHA-256 the store verified at upload, when it keeps one.
    pub sha256: Option<Checksum>,
    /// What the upload URL declared, kept with the object.
    pub declared: Declared,
    /// Identifies this version of the object, for a move that must not pick up a newer one. The local backend's
    /// is a random id given to every write (an upload, a copy), so that no two writes share one; S3's is its own,
    /// a digest of the bytes, so that the same bytes written again have the same etag.
    pub etag: Option<String>,
    /// The object's user metadata (S3's `x-amz-meta-*`, names lowercase), besides the [`Declared`] values.
    pub metadata: Metadata,
    /// Which move put this object here, when one did: the [`MoveOptions::origin`] it was given, kept with the
    /// object where the move wrote its metadata (every move on S3, a copy on the local backend). A local move by
    /// rename keeps the file and its etag, which names the write already: there `origin` is the etag.
    pub origin: Option<String>,
}

/// User metadata: names (lowercase) to values (any text; a backend that cannot carry a character encodes it).
pub type Metadata = std::collections::BTreeMap<String, String>;

/// Size and SHA-256 declared when an upload URL was issued; stored as object metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub length: Option<u64>,
    pub sha256: Option<Checksum>,
}

/// The metadata name that keeps an object's [`ObjectMeta::origin`] where a backend keeps it as metadata; it is
/// never among the user metadata a backend answers.
pub const ORIGIN_METADATA: &str = "draftstore-origin";

/// Metadata headers that carry [`Declared`] values (S3 user metadata; the local backend reads the same).
pub const DECLARED_LENGTH_HEADER: &str = "x-amz-meta-draftstore-length";
pub const DECLARED_SHA256_HEADER: &str = "x-amz-meta-draftstore-sha256";

impl Declared {
    /// Takes the declared values out of an object's user metadata (names without `x-amz-meta-`), leaving the rest.
    pub fn split_from(mut metadata: Metadata) -> (Self, Metadata) {
        let mut take = |header: &str| metadata.remove(header.trim_start_matches("x-amz-meta-"));
        let declared = Self {
            length: take(DECLARED_LENGTH_HEADER).and_then(|l| l.parse().ok()),
            sha256: take(DECLARED_SHA256_HEADER).and_then(|c| Checksum::parse(&c).ok()),
        };
        (declared, metadata)
    }

    /// Puts the declared values into user metadata, as [`Declared::split_from`] reads them.
    pub fn insert_into(&self, metadata: &mut Metadata) {
        if let Some(length) = self.length {
            metadata.insert(DECLARED_LENGTH_HEADER.trim_start_matches("x-amz-meta-").to_owned(), length.to_string());
        }
        if let Some(sha256) = &self.sha256 {
            metadata.insert(DECLARED_SHA256_HEADER.trim_start_matches("x-amz-meta-").to_owned(), sha256.to_string());
        }
    }
}

/// How a move treats the destination and the source.
#[derive(Debug, Clone, Default)]
pub struct MoveOptions {
    /// Refuse with [`Error::AlreadyExists`](crate::Error::AlreadyExists) when the destination exists.
    pub no_overwrite: bool,
    /// Move only the source version with this etag; another is
    /// [`Error::PreconditionFailed`](crate::Error::PreconditionFailed).
    pub if_match: Option<String>,
    /// The key in the destination bucket; the source's own key when `None`.
    pub to_key: Option<ObjectKey>,
    /// The destination's user metadata, replacing the source's (the [`Declared`] values included: give them again
    /// to keep them); the source's kept when `None`. The content type is kept either way.
    pub metadata: Option<Metadata>,
    /// Copy: leave the source where it is.
    pub keep_source: bool,
    /// The source as the caller looked it up (with `if_match` its etag): a backend may use it instead of looking
    /// the source up again. The version is still checked where the store checks `if_match` itself.
    pub source: Option<ObjectMeta>,
    /// A name for this move, which the destination keeps and answers as its [`ObjectMeta::origin`], so that
    /// whoever waits for the move can tell its object from another under the same key.
    pub origin: Option<String>,
}

impl MoveOptions {
    /// Fails when the source found is not the version asked for.
    pub(crate) fn check_source(&self, key: &ObjectKey, found: &ObjectMeta) -> Result<()> {
        check_version(key, self.if_match.as_deref(), found)
    }

    /// The key the object gets in the destination bucket.
    pub fn destination<'a>(&'a self, key: &'a ObjectKey) -> &'a ObjectKey {
        self.to_key.as_ref().unwrap_or(key)
    }
}

/// Fails when `found` is not the version `if_match` names (any version will do without one).
pub(crate) fn check_version(key: &ObjectKey, if_match: Option<&str>, found: &ObjectMeta) -> Result<()> {
    match if_match {
        Some(wanted) if found.etag.as_deref() != Some(wanted) => {
            Err(crate::Error::PreconditionFailed { message: format!("object '{key}' changed since it was looked up") })
        }
        _ => Ok(()),
    }
}

/// One object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: ObjectKey,
    pub size: u64,
    pub last_modified: OffsetDateTime,
    /// The version listed, as [`ObjectMeta::etag`] names it: what a delete bound to the listing deletes.
    pub etag: Option<String>,
}

/// Pages of a bucket's listing, each at most [`LIST_PAGE`] objects long, in no promised order.
pub type ListPages<'a> = BoxStream<'a, Result<ListPage>>;

/// An object's bytes, chunk by chunk, as [`Storage::read`] streams them.
pub type ByteChunks = BoxStream<'static, Result<bytes::Bytes>>;

/// Gathers a stream of chunks, at most `len` bytes of them.
pub async fn collect(mut chunks: ByteChunks, len: u64) -> Result<bytes::Bytes> {
    use futures_util::StreamExt;
    let mut gathered = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or_default());
    while let Some(chunk) = chunks.next().await {
        gathered.extend_from_slice(&chunk?);
    }
    gathered.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    Ok(gathered.into())
}

/// Objects per listing page (the S3 maximum).
pub const LIST_PAGE: usize = 1000;

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// Keys in the bucket that DraftStore could not have written (invalid names); listed for the log, never
    /// touched.
    pub foreign_keys: Vec<String>,
}

/// One page of the objects under a prefix, in the store's listing order.
#[derive(Debug, Clone, Default)]
pub struct PrefixPage {
    pub objects: Vec<ListedObject>,
    /// Where the next page starts, when more objects follow: give it back to get that page. Opaque.
    pub next: Option<String>,
}

/// A key a batch delete could not remove, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    pub key: String,
    pub message: String,
}

/// What a batch delete bound to versions ([`Storage::delete_versions`]) left in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionDeletes {
    /// Keys that hold another version than the one named (written again meanwhile): left as they are.
    pub changed: Vec<ObjectKey>,
    /// Keys that could not be deleted, and why.
    pub failures: Vec<DeleteFailure>,
}

/// Which abandoned uploads to remove.
#[derive(Debug, Clone, Copy)]
pub struct StaleUploads {
    /// S3 multipart uploads initiated before this instant (they can be resumed while a draft may live).
    pub multipart_before: OffsetDateTime,
    /// Local staging files last written before this instant (one request writes each; it cannot outlive its URL).
    pub staging_before: OffsetDateTime,
}

/// An object store holding buckets of objects, reached directly by clients through presigned URLs.
///
/// Errors follow one contract on every backend: a missing object is [`Error::NotFound`](crate::Error::NotFound),
/// a missing bucket [`Error::BucketNotFound`](crate::Error::BucketNotFound), a store that cannot be reached or is
/// too slow [`Error::Unavailable`](crate::Error::Unavailable). Callers bound every call with their own timeout.
#[async_trait]
pub trait Storage: Debug + Send + Sync + 'static {
    /// Creates the bucket if it does not exist. Idempotent: a bucket that already exists is success.
    async fn create_bucket(&self, bucket: &BucketName) -> Result<()>;

    /// Succeeds when the bucket exists and the store answers; the readiness check.
    async fn check_bucket(&self, bucket: &BucketName) -> Result<()>;

    /// Lets browsers on these origins upload to and read from the bucket directly (a CORS rule). A no-op where the
    /// store is DraftStore itself.
    async fn allow_browser_uploads(&self, bucket: &BucketName, origins: &[String]) -> Result<()> {
        let _ = (bucket, origins);
        Ok(())
    }

    /// Signs a URL for one request on one object. No call to the store, so it cannot tell whether the object
    /// exists; async only because fresh credentials may have to be fetched.
    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl>;

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
    /// ([`Storage::delete_version`]): a draft uploaded again during the move is kept.
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

    /// Whether a version moved by [`Storage::move_object`] is moved once whoever else moves it meanwhile: of two
    /// moves of one source version racing (to different keys), one succeeds and the other is
    /// [`Error::NotFound`](crate::Error::NotFound). True on the local backend, which takes the file itself; S3
    /// copies, then deletes, and two copies of one version can both succeed.
    fn exclusive_moves(&self) -> bool {
        false
    }

    /// Starts a multipart upload of `key`. The object it assembles will have `content_type` and carry `declared`.
    /// A declared SHA-256 is verified against the whole object at completion only where
    /// [`Storage::verifies_multipart_sha256`] says so; callers refuse it elsewhere. `part_size` is the size the
    /// client was told to use for every part but the last, which a backend may lay its parts out by.
    async fn create_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
        part_size: Option<u64>,
    ) -> Result<UploadId>;

    /// Whether [`Storage::complete_multipart`] verifies a declared SHA-256 of the whole object. S3 cannot: it
    /// checks each part against its own checksum, never the whole.
    fn verifies_multipart_sha256(&self) -> bool {
        false
    }

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

    /// The parts uploaded so far, by ascending number. A store that keeps every upload of a part number lists
    /// each (SeaweedFS does; [`latest_versions`](crate::multipart::latest_versions) keeps the latest).
    /// [`Error::UploadNotFound`](crate::Error::UploadNotFound) when no upload of this id exists for this key.
    async fn list_parts(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId)
    -> Result<Vec<UploadedPart>>;

    /// Succeeds when an upload of this id exists for this key; one cheap call.
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
    /// check of its type needs, in about the time of [`Storage::head`] alone. The default reads after the head.
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
    /// the [`StoreProbe`](crate::probe::StoreProbe)); elsewhere it looks the object up and compares first, and a write
    /// landing between the two is deleted.
    async fn delete_version(&self, bucket: &BucketName, key: &ObjectKey, etag: &str) -> Result<bool>;

    /// [`Storage::delete_version`] for up to [`LIST_PAGE`] objects in one call: each key is deleted only if it
    /// still holds the version named with it. Missing objects count as deleted. `Err` when the call as a whole
    /// failed.
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

    /// Deletes up to [`LIST_PAGE`] objects in one call. Missing objects count as deleted. Returns the keys that
    /// could not be deleted; `Err` when the call as a whole failed.
    async fn delete_many(&self, bucket: &BucketName, keys: &[ObjectKey]) -> Result<Vec<DeleteFailure>>;

    /// Removes uploads that were started and never completed (multipart uploads, and on the local backend staging
    /// files), returning how many.
    async fn remove_stale_uploads(&self, bucket: &BucketName, stale: StaleUploads) -> Result<u64>;

    /// Puts a lifecycle rule on the bucket: objects expire after `days` days and incomplete multipart uploads are
    /// aborted after as long. Returns `false` where the backend has no lifecycle rules (the local one).
    async fn install_lifecycle(&self, bucket: &BucketName, days: u32) -> Result<bool> {
        let _ = (bucket, days);
        Ok(false)
    }
}

use std::fmt::Debug;
use std::time::Duration;

use futures_util::stream::BoxStream;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use time::OffsetDateTime;

use crate::{BucketName, Checksum, ContentType, ObjectKey, Result, UploadId};

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

/// An object's bytes, chunk by chunk, as [`ObjectStore::read`](crate::ObjectStore::read) streams them.
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

/// What a batch delete bound to versions ([`ObjectStore::delete_versions`](crate::ObjectStore::delete_versions)) left in place.
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

//! The embedded backend: buckets are folders under one root, and DraftStore's own HTTP server serves the signed
//! URLs (`/blobs/<bucket>/<key>`), verifying them with [`LocalStorage::verify`].
//!
//! Each object is one file: its bytes followed by a small metadata trailer (see [`object`]). One file per object
//! means a rename moves bytes and metadata together, atomically: a reader sees the old object or the new one, never
//! a mix. Uploads are written to a staging file, fsync'd and renamed into place.

mod multipart;
mod object;
mod objects;
mod probe;
mod signer;
mod uploads;
mod walk;
mod write;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use percent_encoding::utf8_percent_encode;
use time::OffsetDateTime;
use tokio::fs;
use tokio::io::AsyncSeekExt;
use url::Url;

use crate::error::BoxError;
use crate::storage::{
    ByteChunks, Declared, DeleteFailure, ESCAPE, LIST_PAGE, ListPage, ListPages, ListedObject, Metadata, MoveOptions,
    ORIGIN_METADATA, PrefixPage, StaleUploads, VersionDeletes, check_version, display_header_name, push_joined,
};
use crate::{BucketAdmin, Moves, MultipartStore, ObjectStore, WholeChecksum};
use crate::{
    BucketName, Checksum, CompletedPart, ContentType, Error, Method, MultipartRequest, ObjectKey, ObjectMeta,
    PresignRequest, PresignedUrl, Progress, Result, UploadId, UploadedPart,
};
pub use signer::SignatureError;
use signer::{EXPIRES, SIGNATURE, SIGNED_HEADERS, Signed, UrlSigner};
use walk::{Found, Position, Stop, Walker};
use write::stream_into;

/// Name of the file under the root that keeps the generated signing key.
const SIGNING_KEY_FILE: &str = ".signing-key";
/// Folder under the root for uploads in progress; bucket names cannot start with a dot, so it never clashes.
pub const STAGING_DIR: &str = ".staging";
/// Folder under the root where a move or a delete holds an object file under a private name for an instant, to
/// check that it is the version it was asked for.
pub const ASIDE_DIR: &str = ".aside";
/// How old a file held aside in [`ASIDE_DIR`] must be before it is taken for one a crash left there, and put back:
/// a move or a delete holds one for an instant.
const ASIDE_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(10);
/// The file in a take's folder that names the version a delete took the file aside to delete (a dot file: no
/// bucket is named so).
const DELETING_FILE: &str = ".deleting";
/// Path prefix of the signed URLs on DraftStore's HTTP server.
pub const BLOB_ROUTE: &str = "/blobs";

/// How to open a local store.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Root folder; created if missing.
    pub root: PathBuf,
    /// Base of the signed URLs, the address at which clients reach DraftStore's HTTP server.
    pub public_url: Url,
    /// Secret for URL signatures; when `None` one is generated on first start and kept under the root (mode 0600).
    pub signing_key: Option<Vec<u8>>,
}

/// Buckets as folders on a local disk.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    staging: PathBuf,
    public_url: String,
    signer: UrlSigner,
}

/// What an upload must satisfy to be stored (a failed check stores nothing), and what it declared.
#[derive(Debug, Clone, Default)]
pub struct WriteChecks {
    /// Refuse bodies larger than this.
    pub max_size: Option<u64>,
    /// Refuse bodies whose SHA-256 differs; kept with the object.
    pub sha256: Option<Checksum>,
    /// Declared values to keep with the object, for confirm to check.
    pub declared: Declared,
    /// User metadata to keep with the object.
    pub metadata: Metadata,
}

/// The signed query parameters of a part upload, named as on S3.
pub const PART_NUMBER_PARAM: &str = "partNumber";
pub const UPLOAD_ID_PARAM: &str = "uploadId";
/// The signed query parameter of a request that starts a multipart upload, named as on S3.
pub const UPLOADS_PARAM: &str = "uploads";

/// The signed query parameters that set a download's `Content-Disposition` and `Content-Type`, named as on S3.
pub use crate::storage::{
    RESPONSE_CONTENT_DISPOSITION_PARAM as CONTENT_DISPOSITION_PARAM, RESPONSE_CONTENT_TYPE_PARAM as CONTENT_TYPE_PARAM,
};
/// The signed query parameter that binds a download to one version of the object: its etag
/// ([`Conditions::if_match`](crate::Conditions::if_match)); another version answers 412.
pub const IF_MATCH_PARAM: &str = "if-match";

/// An object opened for reading: its metadata and exactly its bytes.
#[derive(Debug)]
pub struct ObjectReader {
    pub meta: ObjectMeta,
    pub body: tokio::io::Take<fs::File>,
}

impl LocalStorage {
    /// Opens (creating if needed) a store rooted at `config.root`.
    pub async fn open(config: LocalConfig) -> Result<Self> {
        let root = config.root;
        let (staging, aside) = (root.join(STAGING_DIR), root.join(ASIDE_DIR));
        for dir in [&staging, &aside] {
            fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::other(format!("failed to create the data folder {}", dir.display()), e))?;
        }
        let key = match config.signing_key {
            Some(key) => key,
            None => load_or_create_key(&root.join(SIGNING_KEY_FILE)).await?,
        };
        let storage = Self {
            root,
            staging,
            public_url: config.public_url.as_str().trim_end_matches('/').to_owned(),
            signer: UrlSigner::new(&key),
        };
        // A move or a delete cut off by a crash may have left a file aside: it goes back where it was. Only takes
        // older than a live one lasts: another process on the same folder may be holding one for an instant.
        if let Err(e) = storage.recover_aside(ASIDE_MIN_AGE).await {
            tracing::warn!(error = %e, "failed to put back the files a crash left aside; the cleaner will try again");
        }
        Ok(storage)
    }

    fn bucket_dir(&self, bucket: &BucketName) -> PathBuf {
        self.root.join(bucket.as_str())
    }

    /// The file of an object. `ObjectKey` has no empty, `.` or `..` segment and no leading `/`, so the path is
    /// always inside the bucket's folder.
    fn object_path(&self, bucket: &BucketName, key: &ObjectKey) -> PathBuf {
        let mut path = self.bucket_dir(bucket);
        path.extend(key.segments());
        path
    }

    async fn require_bucket(&self, bucket: &BucketName) -> Result<()> {
        match fs::metadata(self.bucket_dir(bucket)).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(Error::BucketNotFound { bucket: bucket.to_string() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BucketNotFound { bucket: bucket.to_string() }),
            Err(e) => Err(Error::other(format!("failed to read bucket folder '{bucket}'"), e)),
        }
    }

    /// Checks a request made to a signed URL. `header` looks up a request header by lowercase name; `names` are the
    /// names of every header it carries (an `x-amz-*` header the URL does not sign is refused); `query` is the raw
    /// query string. Returns the extra query parameters the URL signed (for example a forced
    /// `response-content-disposition`).
    #[allow(clippy::too_many_arguments)]
    pub fn verify<'h, 'n>(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectKey,
        query: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        names: impl IntoIterator<Item = &'n str>,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, SignatureError> {
        self.signer.verify(method, bucket, key, query, header, names, now.unix_timestamp())
    }

    /// Stores an upload: streams `body` into a staging file, fsyncs it and renames it into place, replacing any
    /// object of that key. A failed or interrupted upload (including this future being dropped) leaves nothing
    /// behind, and the previous object, if any, stays as it was.
    pub async fn write_object<S, E>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: ContentType,
        checks: &WriteChecks,
        body: S,
    ) -> Result<ObjectMeta>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        self.require_bucket(bucket).await?;
        let staged = self.stage(key, content_type, checks, body).await?;
        rename_into_place(&staged.file.path, &self.object_path(bucket, key), key).await?;
        staged.file.disarm();
        Ok(staged.meta)
    }

    /// Streams a body into a new staging file with its trailer, fsync'd, checking `checks` on the way. The file is
    /// removed when the returned guard is dropped, unless disarmed once the file is in place.
    async fn stage<S, E>(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
        checks: &WriteChecks,
        body: S,
    ) -> Result<Staged>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let staged = StagingFile::create(&self.staging).await?;
        // The file exists before anything can fail, so that the staging guard always finds what to remove.
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged.path)
            .await
            .map_err(|e| Error::other("failed to create a staging file", e))?
            .into_std()
            .await;
        let trailer = object::Trailer {
            content_type: content_type.to_string(),
            etag: Some(new_etag()?),
            sha256: checks.sha256.as_ref().map(ToString::to_string),
            declared_length: checks.declared.length,
            declared_sha256: checks.declared.sha256.as_ref().map(ToString::to_string),
            metadata: checks.metadata.clone(),
        };
        let encoded = object::encode_trailer(&trailer);
        let streamed = stream_into(file, key, checks.max_size, checks.sha256.is_some(), encoded, body).await;
        let (size, digest, modified) = match streamed {
            Ok(streamed) => streamed,
            Err(e) => {
                staged.remove().await;
                return Err(e);
            }
        };
        if let (Some(digest), Some(expected)) = (digest, &checks.sha256)
            && &Checksum::from_digest(&digest) != expected
        {
            staged.remove().await;
            return Err(Error::ChecksumMismatch);
        }
        Ok(Staged { file: staged, meta: object_meta(key, size, trailer, modified) })
    }

    /// Copies an opened object into a new staging file, with `metadata` (declared values included) in place of its
    /// own when given and the name of the move that copies it (its [`ObjectMeta::origin`]), the bytes checked
    /// against the SHA-256 it was stored with.
    async fn stage_copy(
        &self,
        meta: &ObjectMeta,
        mut file: fs::File,
        options: &MoveOptions,
        progress: &Progress,
    ) -> Result<Staged> {
        use tokio::io::AsyncReadExt;
        let (declared, mut metadata) = match options.metadata.clone() {
            Some(metadata) => Declared::split_from(metadata),
            None => (meta.declared.clone(), meta.metadata.clone()),
        };
        metadata.remove(ORIGIN_METADATA);
        if let Some(origin) = &options.origin {
            metadata.insert(ORIGIN_METADATA.to_owned(), origin.clone());
        }
        let checks = WriteChecks { max_size: None, sha256: meta.sha256.clone(), declared, metadata };
        file.seek(io::SeekFrom::Start(0))
            .await
            .map_err(|e| Error::other(format!("failed to read '{}'", meta.key), e))?;
        let key = meta.key.clone();
        let body =
            tokio_util::io::ReaderStream::with_capacity(file.take(meta.size), 1 << 20).inspect(|_| progress.step());
        let staged = self.stage(&key, meta.content_type.clone(), &checks, body).await;
        staged.map_err(|e| match e {
            Error::ChecksumMismatch => Error::other(
                format!("object '{key}' no longer matches its SHA-256"),
                io::Error::from(io::ErrorKind::InvalidData),
            ),
            other => other,
        })
    }

    /// A signed URL for `request` that binds these headers (lowercase, sorted) and extra query parameters (sorted).
    fn sign_url(
        &self,
        request: &PresignRequest<'_>,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
    ) -> Result<PresignedUrl> {
        let expires_at = request.now + request.expires_in;
        let expires =
            u64::try_from(expires_at.unix_timestamp()).map_err(|e| Error::other("URL expiry before 1970", e))?;
        let mut url = String::with_capacity(self.public_url.len() + request.key.as_str().len() + 192);
        url.push_str(self.public_url.as_str());
        url.push_str(BLOB_ROUTE);
        url.push('/');
        url.push_str(request.bucket.as_str());
        for segment in request.key.segments() {
            url.push('/');
            url.extend(utf8_percent_encode(segment, ESCAPE));
        }
        let _ = write!(url, "?{EXPIRES}={expires}");
        if !headers.is_empty() {
            let _ = write!(url, "&{SIGNED_HEADERS}=");
            push_joined(&mut url, headers.iter().map(|(name, _)| name.as_str()), "%3B");
        }
        for (name, value) in &query {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.extend(utf8_percent_encode(value, ESCAPE));
        }
        let _ = write!(url, "&{SIGNATURE}=");
        let signed = Signed {
            method: request.method,
            bucket: request.bucket.as_str(),
            key: request.key.as_str(),
            expires,
            headers: &headers,
            query: &query,
        };
        self.signer.sign_into(&signed, &mut url);
        let headers = headers.into_iter().map(|(name, value)| (display_header_name(&name), value)).collect();
        Ok(PresignedUrl { url, method: request.method, headers })
    }

    /// Opens an object for reading.
    pub async fn read_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectReader> {
        let (meta, mut file) = self.open_object(bucket, key).await?;
        file.seek(io::SeekFrom::Start(0))
            .await
            .map_err(|e| Error::other(format!("failed to read object '{key}'"), e))?;
        use tokio::io::AsyncReadExt;
        let body = file.take(meta.size);
        Ok(ObjectReader { meta, body })
    }

    /// Puts back what a crash left in the folder of files held aside ([`Aside`]): each file where it came from,
    /// unless that key was written again since, for takes older than `min_age` (a live one lasts an instant).
    /// Returns how many files it put back.
    async fn recover_aside(&self, min_age: std::time::Duration) -> Result<u64> {
        let root = self.root.clone();
        let recovered = tokio::task::spawn_blocking(move || recover_aside(&root, min_age))
            .await
            .map_err(|e| Error::other("the recovery of files held aside stopped", e))?;
        recovered.map_err(|e| Error::other("failed to recover the files held aside", e))
    }

    /// Takes the object file of `bucket/key` aside, under a private name that says where it came from: a rename,
    /// so that of two takers one only gets it, and nothing can be put in its place between a check of the file
    /// and what follows. A delete names the version it deletes (`deleting`), so that a take a crash cut off is
    /// finished as it was meant: that version deleted, another put back. `None` when there is no object under the
    /// key.
    async fn take_aside(&self, bucket: &BucketName, key: &ObjectKey, deleting: Option<&str>) -> Result<Option<Aside>> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let top = self.root.join(ASIDE_DIR).join(format!("{nanos:x}-{}", random_hex(8)?));
        let mut path = top.join(bucket.as_str());
        path.extend(key.segments());
        let aside = Aside { top, path, original: self.object_path(bucket, key) };
        let parent = aside.path.parent().expect("an aside path has folders above it");
        fs::create_dir_all(parent).await.map_err(|e| Error::other(format!("failed to take '{key}' aside"), e))?;
        if let Some(etag) = deleting
            && let Err(e) = fs::write(aside.top.join(DELETING_FILE), etag).await
        {
            aside.discard().await;
            return Err(Error::other(format!("failed to take '{key}' aside"), e));
        }
        match fs::rename(&aside.original, &aside.path).await {
            Ok(()) => Ok(Some(aside)),
            Err(e) => {
                aside.discard().await;
                match e.kind() {
                    _ if is_absent(&e) => self.require_bucket(bucket).await.map(|()| None),
                    // A folder of other objects is not an object.
                    io::ErrorKind::IsADirectory | io::ErrorKind::DirectoryNotEmpty => Ok(None),
                    _ => Err(Error::other(format!("failed to take '{key}' aside"), e)),
                }
            }
        }
    }

    /// Removes `bucket/key` if it is the version asked for: the file is taken aside, compared, and put back when it
    /// is not that version. Returns whether it was removed; `false` too when there is nothing under the key.
    async fn remove_if(&self, bucket: &BucketName, key: &ObjectKey, etag: &str) -> Result<bool> {
        let Some(aside) = self.take_aside(bucket, key, Some(etag)).await? else { return Ok(false) };
        let matches = etag_of(&aside.path, key).await.as_deref() == Some(etag);
        if matches {
            // Not made durable here, as a plain delete is not: a take a crash leaves is finished at start-up.
            aside.discard().await;
        } else {
            aside.put_back().await.map_err(|e| Error::other(format!("failed to put '{key}' back"), e))?;
        }
        Ok(matches)
    }

    async fn open_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(ObjectMeta, fs::File)> {
        let path = self.object_path(bucket, key);
        let not_found = || Error::NotFound { bucket: bucket.to_string(), key: key.to_string() };
        let mut file = match fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if is_absent(&e) => {
                self.require_bucket(bucket).await?;
                return Err(not_found());
            }
            Err(e) => return Err(Error::other(format!("failed to open object '{key}'"), e)),
        };
        let stat = file.metadata().await.map_err(|e| Error::other(format!("failed to stat object '{key}'"), e))?;
        if !stat.is_file() {
            return Err(not_found());
        }
        let (size, trailer) = object::read_trailer(&mut file, stat.len())
            .await
            .map_err(|e| Error::other(format!("failed to read the metadata of object '{key}'"), e))?;
        let modified = stat.modified().map_err(|e| Error::other("file times unsupported", e))?;
        Ok((object_meta(key, size, trailer, modified), file))
    }
}

#[async_trait]
impl BucketAdmin for LocalStorage {
    async fn create_bucket(&self, bucket: &BucketName) -> Result<()> {
        fs::create_dir_all(self.bucket_dir(bucket))
            .await
            .map_err(|e| Error::other(format!("failed to create bucket folder '{bucket}'"), e))
    }

    async fn check_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.require_bucket(bucket).await
    }
}

/// An object's metadata from its trailer. The etag is the random id of the write, kept in the trailer; a file
/// written before there was one has its size and modification time instead.
fn object_meta(key: &ObjectKey, size: u64, trailer: object::Trailer, modified: std::time::SystemTime) -> ObjectMeta {
    let etag = given_or_stat_etag(trailer.etag, size, modified);
    let mut metadata = trailer.metadata;
    // A copy keeps the name of the move that made it; a file moved by rename is the write its etag names.
    let origin = metadata.remove(ORIGIN_METADATA).unwrap_or_else(|| etag.clone());
    ObjectMeta {
        key: key.clone(),
        size,
        content_type: ContentType::parse(&trailer.content_type).unwrap_or_else(|_| ContentType::octet_stream()),
        last_modified: modified.into(),
        sha256: trailer.sha256.and_then(|c| Checksum::parse(&c).ok()),
        declared: Declared {
            length: trailer.declared_length,
            sha256: trailer.declared_sha256.and_then(|c| Checksum::parse(&c).ok()),
        },
        etag: Some(etag),
        metadata,
        origin: Some(origin),
    }
}

/// An object's etag: the one its write was given, or for a file written before there were such ids, its size and
/// time.
pub(super) fn given_or_stat_etag(given: Option<String>, size: u64, modified: std::time::SystemTime) -> String {
    given.unwrap_or_else(|| {
        let nanos = modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        format!("{size:x}-{nanos:x}")
    })
}

/// A new write's etag: 128 random bits, so that no two writes share one, whatever their size and time.
pub(super) fn new_etag() -> Result<String> {
    random_hex(16)
}

/// An object file held aside by [`LocalStorage::take_aside`]: at `<root>/.aside/<time>-<random>/<bucket>/<key>`,
/// so that whatever happens it can be put back where it came from (by [`recover_aside`] after a crash).
struct Aside {
    /// The folder of this take, `<time>-<random>`.
    top: PathBuf,
    /// The file.
    path: PathBuf,
    /// Where it came from.
    original: PathBuf,
}

impl Aside {
    /// Puts the file back where it came from, unless something was written there meanwhile (newer, it stays; this
    /// one goes). When that fails the file stays aside, for [`recover_aside`].
    async fn put_back(self) -> io::Result<()> {
        let parent = self.original.parent().expect("an object path has folders above it");
        fs::create_dir_all(parent).await?;
        match fs::hard_link(&self.path, &self.original).await {
            Ok(()) => sync_dir(parent).await,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.discard().await;
        Ok(())
    }

    /// Removes the take: its folder, and the file when it was not moved on.
    async fn discard(self) {
        let _ = fs::remove_dir_all(&self.top).await;
    }
}

/// Puts back the files of takes older than `min_age` under `<root>/.aside` (see [`Aside`]), each unless its key
/// was written again since, and removes the takes. Blocking. Returns how many files were put back.
fn recover_aside(root: &Path, min_age: std::time::Duration) -> io::Result<u64> {
    let aside = root.join(ASIDE_DIR);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut recovered = 0;
    let entries = match std::fs::read_dir(&aside) {
        Ok(entries) => entries,
        Err(e) if is_absent(&e) => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let top = entry?.path();
        let taken = top
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.split_once('-'))
            .and_then(|(time, _)| u128::from_str_radix(time, 16).ok());
        if taken.is_some_and(|taken| now.saturating_sub(taken) < min_age.as_nanos()) {
            continue;
        }
        let deleting = std::fs::read_to_string(top.join(DELETING_FILE)).ok();
        let mut stack = vec![top.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                    continue;
                }
                // `<bucket>/<key>` below the take's folder, both valid, or not DraftStore's: left to be removed.
                let Ok(relative) = path.strip_prefix(&top) else { continue };
                let Some(relative) = relative.to_str() else { continue };
                let Some((bucket, key)) = relative.split_once('/') else { continue };
                let (Ok(bucket), Ok(key)) = (BucketName::parse(bucket), ObjectKey::parse(key)) else { continue };
                let mut original = root.join(bucket.as_str());
                original.extend(key.segments());
                // A delete of this version: finished (the take is removed below). A move that linked the file into
                // place already: done, the file is where it was going.
                if deleting.is_some() && deleting == etag_of_blocking(&path, &key) {
                    continue;
                }
                if deleting.is_none() && std::os::unix::fs::MetadataExt::nlink(&entry.metadata()?) > 1 {
                    continue;
                }
                if let Some(parent) = original.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                match std::fs::hard_link(&path, &original) {
                    Ok(()) => recovered += 1,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
        }
        std::fs::remove_dir_all(&top)?;
    }
    Ok(recovered)
}

/// Puts a move's source back where it was, after `error` stopped the move; the error to answer.
async fn put_back(aside: Option<Aside>, key: &ObjectKey, error: Error) -> Error {
    match aside {
        Some(aside) => match aside.put_back().await {
            Ok(()) => error,
            Err(e) => Error::other(format!("failed to put '{key}' back after a failed move"), e),
        },
        None => error,
    }
}

/// Whether `path` names the file of `held` (a file's metadata): the same device and inode.
async fn same_file(held: &std::fs::Metadata, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).await.is_ok_and(|found| held.dev() == found.dev() && held.ino() == found.ino())
}

/// [`etag_of`], blocking.
fn etag_of_blocking(path: &Path, key: &ObjectKey) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let stat = file.metadata().ok()?;
    let (size, trailer) = object::read_trailer_blocking(&mut file, stat.len()).ok()?;
    object_meta(key, size, trailer, stat.modified().ok()?).etag
}

/// The etag of the object file at `path`, `None` when it is not one.
async fn etag_of(path: &Path, key: &ObjectKey) -> Option<String> {
    let mut file = fs::File::open(path).await.ok()?;
    let stat = file.metadata().await.ok()?;
    let (size, trailer) = object::read_trailer(&mut file, stat.len()).await.ok()?;
    object_meta(key, size, trailer, stat.modified().ok()?).etag
}

/// Whether `e` says that no such file exists; a path with a segment too long for the disk names none either (a
/// tenant's long name and an object's can make one).
fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename)
}

fn write_error(key: &ObjectKey, e: io::Error) -> Error {
    Error::other(format!("failed to write object '{key}'"), e)
}

/// Renames a complete file to its place, creating the folders above it, then fsyncs the folder so the rename
/// survives a crash. A concurrent clean-up may remove a folder between its creation and the rename; that is retried.
async fn rename_into_place(source: &Path, target: &Path, key: &ObjectKey) -> Result<()> {
    let parent = target.parent().expect("an object path has a bucket folder above it");
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Err(e) = fs::create_dir_all(parent).await {
            return Err(match e.kind() {
                io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists => Error::InvalidKey {
                    key: key.to_string(),
                    reason: "one of its folders is an existing object".to_owned(),
                },
                io::ErrorKind::InvalidFilename => {
                    Error::InvalidKey { key: key.to_string(), reason: "a segment is too long for the disk".to_owned() }
                }
                _ => Error::other(format!("failed to create the folders of '{key}'"), e),
            });
        }
        match fs::rename(source, target).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 && fs::metadata(source).await.is_ok() => {
                continue;
            }
            Err(e) => {
                return Err(match e.kind() {
                    io::ErrorKind::IsADirectory | io::ErrorKind::DirectoryNotEmpty => {
                        Error::InvalidKey { key: key.to_string(), reason: "it is a folder of other objects".to_owned() }
                    }
                    io::ErrorKind::InvalidFilename => Error::InvalidKey {
                        key: key.to_string(),
                        reason: "a segment is too long for the disk".to_owned(),
                    },
                    _ => Error::other(format!("failed to move '{key}' into place"), e),
                });
            }
        }
    }
    sync_dir(parent).await;
    if let Some(source_dir) = source.parent() {
        sync_dir(source_dir).await;
    }
    Ok(())
}

/// Links a complete file into place unless the target exists, then removes the source: a move that never
/// replaces an object.
async fn link_into_place(source: &Path, target: &Path, key: &ObjectKey) -> Result<()> {
    let parent = target.parent().expect("an object path has a bucket folder above it");
    fs::create_dir_all(parent)
        .await
        .map_err(|e| Error::other(format!("failed to create the folders of '{key}'"), e))?;
    match fs::hard_link(source, target).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists { bucket: String::new(), key: key.to_string() });
        }
        Err(e) => return Err(Error::other(format!("failed to move '{key}' into place"), e)),
    }
    sync_dir(parent).await;
    if let Err(e) = fs::remove_file(source).await
        && e.kind() != io::ErrorKind::NotFound
    {
        return Err(Error::other(format!("moved '{key}' but failed to remove the draft"), e));
    }
    if let Some(source_dir) = source.parent() {
        sync_dir(source_dir).await;
    }
    Ok(())
}

/// Sets a file's modification time, which is the object's last-modified time, to now. Best effort.
async fn touch(path: &Path) {
    let path = path.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()))
    })
    .await;
}

/// Makes a folder's entries durable. Best effort: some file systems do not support fsync on folders.
async fn sync_dir(dir: &Path) {
    let dir = dir.to_owned();
    let _ = tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all())).await;
}

/// A complete staging file and the metadata of the object it holds.
struct Staged {
    file: StagingFile,
    meta: ObjectMeta,
}

/// A staging file that is removed when dropped unless the upload completed.
struct StagingFile {
    path: PathBuf,
    armed: bool,
}

impl StagingFile {
    async fn create(staging: &Path) -> Result<Self> {
        Ok(Self { path: staging.join(format!("{}.part", random_hex(16)?)), armed: true })
    }

    fn disarm(mut self) {
        self.armed = false;
    }

    /// Removes the file now, on a blocking thread: an unlink can wait on the disk, and hundreds of uploads cut off
    /// at once must not stall the runtime's workers. (Dropping the guard, as a cancelled upload does, removes it
    /// in place.)
    async fn remove(mut self) {
        self.armed = false;
        let path = std::mem::take(&mut self.path);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
    }
}

impl Drop for StagingFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::other("no randomness available", e))?;
    Ok(hex::encode(buf))
}

/// Reads the signing key kept under the root, creating it (32 random bytes, hex, mode 0600) on first start. Two
/// processes starting together agree on one key: the file is linked into place only if absent.
async fn load_or_create_key(path: &Path) -> Result<Vec<u8>> {
    let path = path.to_owned();
    let result = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(text.trim().as_bytes().to_vec()),
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(io::Error::other)?;
        let temp = path.with_extension(format!("tmp-{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
        file.write_all(hex::encode(key).as_bytes())?;
        file.sync_all()?;
        let linked = std::fs::hard_link(&temp, &path);
        std::fs::remove_file(&temp)?;
        match linked {
            Ok(()) => Ok(hex::encode(key).into_bytes()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec())
            }
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| Error::other("signing key task failed", e))?;
    result.map_err(|e| Error::other("failed to read or create the signing key file", e))
}

#[cfg(test)]
mod tests;

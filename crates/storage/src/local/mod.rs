//! The embedded backend: buckets are folders under one root, and DraftStore's own HTTP server serves the signed
//! URLs (`/blobs/<bucket>/<key>`), verifying them with [`LocalStorage::verify`].
//!
//! Each object is one file: its bytes followed by a small metadata trailer (see [`object`]). One file per object
//! means a rename moves bytes and metadata together, atomically: a reader sees the old object or the new one, never
//! a mix. Uploads are written to a staging file, fsync'd and renamed into place.

mod multipart;
mod object;
mod signer;
mod walk;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::fs;
use tokio::io::AsyncSeekExt;
use url::Url;

use crate::error::BoxError;
use crate::storage::{
    ByteChunks, Declared, DeleteFailure, ESCAPE, LIST_PAGE, ListPage, ListPages, ListedObject, Metadata, MoveOptions,
    PrefixPage, StaleUploads, check_version, display_header_name, push_joined,
};
use crate::{
    BucketName, Checksum, CompletedPart, ContentType, Error, Method, MultipartRequest, ObjectKey, ObjectMeta,
    PresignRequest, PresignedUrl, Progress, Result, Storage, UploadId, UploadedPart,
};
pub use signer::SignatureError;
use signer::{EXPIRES, SIGNATURE, SIGNED_HEADERS, Signed, UrlSigner};
use walk::{Found, Walker};

/// Name of the file under the root that keeps the generated signing key.
const SIGNING_KEY_FILE: &str = ".signing-key";
/// Folder under the root for uploads in progress; bucket names cannot start with a dot, so it never clashes.
pub const STAGING_DIR: &str = ".staging";
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
        let staging = root.join(STAGING_DIR);
        fs::create_dir_all(&staging)
            .await
            .map_err(|e| Error::other(format!("failed to create the data folder {}", staging.display()), e))?;
        let key = match config.signing_key {
            Some(key) => key,
            None => load_or_create_key(&root.join(SIGNING_KEY_FILE)).await?,
        };
        Ok(Self {
            root,
            staging,
            public_url: config.public_url.as_str().trim_end_matches('/').to_owned(),
            signer: UrlSigner::new(&key),
        })
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

    /// Checks a request made to a signed URL. `header` looks up a request header by lowercase name; `query` is the
    /// raw query string. Returns the extra query parameters the URL signed (for example a forced
    /// `response-content-disposition`).
    pub fn verify<'h>(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectKey,
        query: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, SignatureError> {
        self.signer.verify(method, bucket, key, query, header, now.unix_timestamp())
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
            sha256: checks.sha256.as_ref().map(ToString::to_string),
            declared_length: checks.declared.length,
            declared_sha256: checks.declared.sha256.as_ref().map(ToString::to_string),
            metadata: checks.metadata.clone(),
        };
        let encoded = object::encode_trailer(&trailer);
        let (size, digest, modified) =
            stream_into(file, key, checks.max_size, checks.sha256.is_some(), encoded, body).await?;
        if let (Some(digest), Some(expected)) = (digest, &checks.sha256)
            && &Checksum::from_digest(&digest) != expected
        {
            return Err(Error::ChecksumMismatch);
        }
        Ok(Staged { file: staged, meta: object_meta(key, size, trailer, modified) })
    }

    /// Copies an opened object into a new staging file, with `metadata` (declared values included) in place of its
    /// own when given, the bytes checked against the SHA-256 it was stored with.
    async fn stage_copy(
        &self,
        meta: &ObjectMeta,
        mut file: fs::File,
        metadata: Option<Metadata>,
        progress: &Progress,
    ) -> Result<Staged> {
        use tokio::io::AsyncReadExt;
        let (declared, metadata) = match metadata {
            Some(metadata) => Declared::split_from(metadata),
            None => (meta.declared.clone(), meta.metadata.clone()),
        };
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
impl Storage for LocalStorage {
    async fn create_bucket(&self, bucket: &BucketName) -> Result<()> {
        fs::create_dir_all(self.bucket_dir(bucket))
            .await
            .map_err(|e| Error::other(format!("failed to create bucket folder '{bucket}'"), e))
    }

    async fn check_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.require_bucket(bucket).await
    }

    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        let (headers, query) = match request.method {
            Method::Put => (request.conditions.upload_headers(), Vec::new()),
            Method::Get => {
                let params = request.conditions.response_params();
                (Vec::new(), params.into_iter().map(|(name, value)| (name.to_owned(), value.to_owned())).collect())
            }
            Method::Post | Method::Delete => {
                return Err(Error::other(
                    "a plain object URL is for GET or PUT",
                    io::Error::from(io::ErrorKind::InvalidInput),
                ));
            }
        };
        self.sign_url(request, headers, query)
    }

    async fn presign_multipart(
        &self,
        request: &PresignRequest<'_>,
        multipart: MultipartRequest<'_>,
    ) -> Result<PresignedUrl> {
        let (headers, query) = match multipart {
            MultipartRequest::Create => {
                let headers = request
                    .conditions
                    .content_type
                    .as_ref()
                    .map(|content_type| vec![("content-type".to_owned(), content_type.to_string())])
                    .unwrap_or_default();
                (headers, vec![(UPLOADS_PARAM.to_owned(), String::new())])
            }
            MultipartRequest::ListParts(id) | MultipartRequest::Abort(id) => {
                (Vec::new(), vec![(UPLOAD_ID_PARAM.to_owned(), id.to_string())])
            }
        };
        let request = PresignRequest { method: multipart.method(), ..request.clone() };
        self.sign_url(&request, headers, query)
    }

    async fn presign_part(
        &self,
        request: &PresignRequest<'_>,
        upload_id: &UploadId,
        number: u32,
    ) -> Result<PresignedUrl> {
        // Sorted, as the signer canonicalises them.
        let query = vec![
            (PART_NUMBER_PARAM.to_owned(), number.to_string()),
            (UPLOAD_ID_PARAM.to_owned(), upload_id.to_string()),
        ];
        self.sign_url(request, request.conditions.part_headers(), query)
    }

    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta> {
        self.open_object(bucket, key).await.map(|(meta, _)| meta)
    }

    async fn move_object(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        options: &MoveOptions,
        progress: &Progress,
    ) -> Result<()> {
        // A rename is instant whatever the size; a copy (new metadata, or the source kept) reads the bytes once.
        self.require_bucket(to).await?;
        let not_found = || Error::NotFound { bucket: from.to_string(), key: key.to_string() };
        let (current, file) = match self.open_object(from, key).await {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        options.check_source(key, &current)?;
        let to_key = options.destination(key);
        let source = self.object_path(from, key);
        let target = self.object_path(to, to_key);
        // The bytes are copied when the metadata changes or the source stays; otherwise the file itself moves.
        let staged = if options.metadata.is_none() && !options.keep_source {
            drop(file);
            None
        } else {
            Some(self.stage_copy(&current, file, options.metadata.clone(), progress).await?)
        };
        let moved = staged.as_ref().map_or(&source, |staged| &staged.file.path);
        let placed = if options.no_overwrite {
            // A hard link fails when the target exists: an atomic "move unless present".
            link_into_place(moved, &target, to_key).await
        } else {
            rename_into_place(moved, &target, to_key).await
        };
        let copied = staged.is_some();
        if placed.is_ok()
            && let Some(staged) = staged
        {
            staged.file.disarm();
        }
        match placed {
            Err(Error::AlreadyExists { .. }) => {
                return Err(Error::AlreadyExists { bucket: to.to_string(), key: to_key.to_string() });
            }
            Err(Error::Other { source: Some(e), .. })
                if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::NotFound) =>
            {
                // Another mover won the race: the source is gone.
                return Err(not_found());
            }
            other => other?,
        }
        // The object was confirmed now, whenever its bytes were uploaded.
        touch(&target).await;
        if copied && !options.keep_source {
            self.delete(from, key).await?;
        }
        Ok(())
    }

    async fn create_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
        part_size: Option<u64>,
    ) -> Result<UploadId> {
        self.create_upload(bucket, key, content_type, declared, part_size).await
    }

    fn verifies_multipart_sha256(&self) -> bool {
        true
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
    ) -> Result<Vec<UploadedPart>> {
        self.uploaded_parts(bucket, key, upload_id).await
    }

    async fn complete_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        progress: &Progress,
    ) -> Result<()> {
        self.complete_upload(bucket, key, upload_id, parts, progress).await
    }

    async fn abort_multipart(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        self.abort_upload(bucket, key, upload_id).await
    }

    async fn put_record(&self, bucket: &BucketName, key: &ObjectKey, body: Bytes, if_absent: bool) -> Result<bool> {
        self.require_bucket(bucket).await?;
        let checks = WriteChecks::default();
        let body = futures_util::stream::once(async move { Ok::<_, io::Error>(body) });
        let staged = self.stage(key, ContentType::octet_stream(), &checks, body).await?;
        let target = self.object_path(bucket, key);
        let placed = if if_absent {
            // A hard link fails when the target exists: an atomic "create unless present".
            link_into_place(&staged.file.path, &target, key).await
        } else {
            rename_into_place(&staged.file.path, &target, key).await
        };
        match placed {
            Ok(()) => {
                staged.file.disarm();
                Ok(true)
            }
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get_record(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Bytes> {
        use tokio::io::AsyncReadExt;
        let mut reader = self.read_object(bucket, key).await?;
        let mut body = Vec::with_capacity(usize::try_from(reader.meta.size).unwrap_or_default());
        reader.body.read_to_end(&mut body).await.map_err(|e| Error::other(format!("failed to read '{key}'"), e))?;
        Ok(body.into())
    }

    async fn read(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        first: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks> {
        use tokio::io::AsyncReadExt;
        let reader = self.read_object(bucket, key).await?;
        check_version(key, if_match, &reader.meta)?;
        let body = reader.body.take(first.unwrap_or(u64::MAX));
        let key = key.clone();
        Ok(Box::pin(
            tokio_util::io::ReaderStream::new(body)
                .map_err(move |e| Error::unavailable(format!("failed to read object '{key}'"), Some(Box::new(e)))),
        ))
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        let path = self.object_path(bucket, key);
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if is_absent(&e) => self.require_bucket(bucket).await,
            // A folder of other objects is not an object: there is nothing of that name to delete.
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => Ok(()),
            Err(e) => Err(Error::other(format!("failed to delete object '{key}' from '{bucket}'"), e)),
        }
    }

    fn list(&self, bucket: &BucketName) -> ListPages<'_> {
        /// Where a listing stands between two pages.
        enum State {
            Start(PathBuf),
            Walking(Walker),
            Done,
        }
        let bucket = bucket.clone();
        let start = State::Start(self.bucket_dir(&bucket));
        Box::pin(futures_util::stream::unfold(start, move |state| {
            let bucket = bucket.clone();
            async move {
                let mut walker = match state {
                    State::Done => return None,
                    State::Walking(walker) => walker,
                    State::Start(dir) => {
                        let open = move || Walker::new(dir, String::new(), String::new(), None);
                        match tokio::task::spawn_blocking(open).await.map_err(io::Error::other).and_then(|r| r) {
                            Ok(walker) => walker,
                            Err(e) if is_absent(&e) => {
                                return Some((Err(Error::BucketNotFound { bucket: bucket.to_string() }), State::Done));
                            }
                            Err(e) => return Some((Err(list_error(&bucket, e)), State::Done)),
                        }
                    }
                };
                let walked = tokio::task::spawn_blocking(move || (walker.next_page(LIST_PAGE), walker)).await;
                let (found, walker) = match walked {
                    Ok((Ok(found), walker)) => (found, walker),
                    Ok((Err(e), _)) => return Some((Err(list_error(&bucket, e)), State::Done)),
                    Err(e) => return Some((Err(list_error(&bucket, io::Error::other(e))), State::Done)),
                };
                if found.objects.is_empty() && found.foreign.is_empty() && !found.truncated {
                    return None;
                }
                let next = if found.truncated { State::Walking(walker) } else { State::Done };
                let mut page =
                    ListPage { objects: Vec::with_capacity(found.objects.len()), foreign_keys: found.foreign };
                for (path, key) in found.objects {
                    if let Some(object) = listed(&path, key).await {
                        page.objects.push(object);
                    }
                }
                Some((Ok(page), next))
            }
        }))
    }

    async fn list_prefix(
        &self,
        bucket: &BucketName,
        prefix: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PrefixPage> {
        self.require_bucket(bucket).await?;
        // The token is the last key of the previous page: this backend lists in byte order.
        let start_after = token
            .map(|token| {
                ObjectKey::parse(token)
                    .map_err(|e| Error::InvalidKey { key: token.to_owned(), reason: format!("not a page token: {e}") })
            })
            .transpose()?;
        let limit = limit.clamp(1, LIST_PAGE);
        // The folder to walk: the prefix up to its last '/'. Its segments must be folder names of keys.
        let folder = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
        if !folder.is_empty() && folder.split('/').any(|s| matches!(s, "" | "." | "..") || s.contains('\\')) {
            return Ok(PrefixPage::default());
        }
        let mut dir = self.bucket_dir(bucket);
        let mut key_prefix = String::new();
        if !folder.is_empty() {
            dir.extend(folder.split('/'));
            key_prefix = format!("{folder}/");
        }
        let (prefix, after) = (prefix.to_owned(), start_after.map(|key| key.to_string()));
        let walked = tokio::task::spawn_blocking(move || Walker::new(dir, key_prefix, prefix, after)?.next_page(limit))
            .await
            .map_err(|e| Error::other("the listing task stopped", e))?;
        let Found { objects: found, truncated, .. } = match walked {
            Ok(walked) => walked,
            Err(e) if is_absent(&e) => return Ok(PrefixPage::default()),
            Err(e) => return Err(list_error(bucket, e)),
        };
        let next = truncated.then(|| found.last().map(|(_, key)| key.to_string())).flatten();
        let mut objects = Vec::with_capacity(found.len());
        for (path, key) in found {
            if let Some(object) = listed(&path, key).await {
                objects.push(object);
            }
        }
        Ok(PrefixPage { objects, next })
    }

    async fn delete_many(&self, bucket: &BucketName, keys: &[ObjectKey]) -> Result<Vec<DeleteFailure>> {
        self.require_bucket(bucket).await?;
        let bucket_dir = self.bucket_dir(bucket);
        let mut failures = Vec::new();
        for key in keys {
            match self.delete(bucket, key).await {
                Ok(()) => prune_empty_parents(&self.object_path(bucket, key), &bucket_dir).await,
                Err(e) => failures.push(DeleteFailure { key: key.to_string(), message: e.to_string() }),
            }
        }
        Ok(failures)
    }

    async fn remove_stale_uploads(&self, _bucket: &BucketName, stale: StaleUploads) -> Result<u64> {
        let mut entries =
            fs::read_dir(&self.staging).await.map_err(|e| Error::other("failed to read the staging folder", e))?;
        let mut removed = 0;
        while let Some(entry) =
            entries.next_entry().await.map_err(|e| Error::other("failed to read the staging folder", e))?
        {
            let Ok(stat) = entry.metadata().await else { continue };
            let written = stat.modified().map(OffsetDateTime::from).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            if stat.is_file() && written < stale.staging_before && fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed + self.remove_stale_multipart(stale.multipart_before).await?)
    }
}

fn list_error(bucket: &BucketName, e: io::Error) -> Error {
    Error::other(format!("failed to list bucket '{bucket}'"), e)
}

/// A listed file's size and time; `None` when it vanished meanwhile or is not an object file.
async fn listed(path: &Path, key: ObjectKey) -> Option<ListedObject> {
    let mut file = fs::File::open(path).await.ok()?;
    let stat = file.metadata().await.ok()?;
    let (size, _) = object::read_trailer(&mut file, stat.len()).await.ok()?;
    Some(ListedObject { key, size, last_modified: stat.modified().ok()?.into() })
}

/// Removes the folders above a deleted object while they are empty, up to the bucket's folder. A folder that
/// another upload is filling is not empty, and removal simply stops there.
async fn prune_empty_parents(path: &Path, bucket_dir: &Path) {
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == bucket_dir || !current.starts_with(bucket_dir) || fs::remove_dir(current).await.is_err() {
            break;
        }
        dir = current.parent();
    }
}

/// An object's metadata from its trailer; the etag is the size and the modification time, which change with every
/// write.
fn object_meta(key: &ObjectKey, size: u64, trailer: object::Trailer, modified: std::time::SystemTime) -> ObjectMeta {
    let nanos = modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
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
        etag: Some(format!("{size:x}-{nanos:x}")),
        metadata: trailer.metadata,
    }
}

/// Whether `e` says that no such file exists; a path with a segment too long for the disk names none either (a
/// tenant's long name and an object's can make one).
fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename)
}

fn write_error(key: &ObjectKey, e: io::Error) -> Error {
    Error::other(format!("failed to write object '{key}'"), e)
}

/// What the upload task hands the writer thread.
enum Chunk {
    Data(Bytes),
    /// The body is complete: append this trailer and make the file durable.
    Finish(Vec<u8>),
}

/// Chunks queued between the upload task and the writer thread.
const WRITE_QUEUE: usize = 16;

/// Streams `body` into `file` from its current position on a blocking writer thread, then writes `trailer` and
/// fsyncs. Refuses a body above `max_size`. Returns the size, the SHA-256 of the body (when `hash`) and the file's
/// modification time.
async fn stream_into<S, E>(
    file: std::fs::File,
    key: &ObjectKey,
    max_size: Option<u64>,
    hash: bool,
    trailer: Vec<u8>,
    body: S,
) -> Result<(u64, Option<[u8; 32]>, std::time::SystemTime)>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: Into<BoxError>,
{
    // One blocking thread writes the chunks straight to the file as they arrive (no user-space copy), hashing
    // them when asked; this task reads the body and enforces the size limit.
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Chunk>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_staged(file, receiver, hash));
    let mut size: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::other("the upload was interrupted", e))?;
        size += chunk.len() as u64;
        if let Some(limit) = max_size
            && size > limit
        {
            return Err(Error::TooLarge { limit });
        }
        if chunks.send(Chunk::Data(chunk)).await.is_err() {
            break; // the writer failed; its error is collected below
        }
    }
    let _ = chunks.send(Chunk::Finish(trailer)).await;
    drop(chunks);
    let written = writer.await.map_err(|e| Error::other("the upload writer stopped", e))?;
    let (digest, modified) = written.map_err(|e| write_error(key, e))?;
    Ok((size, digest, modified))
}

/// Writes an upload's chunks to its staging file until `Finish`, then the trailer, then fsyncs. Returns the SHA-256
/// of the data (when asked) and the file's modification time. A channel closed before `Finish` is an aborted
/// upload: nothing is finalised, and the caller's guard removes the file.
fn write_staged(
    mut file: std::fs::File,
    mut chunks: tokio::sync::mpsc::Receiver<Chunk>,
    hash: bool,
) -> io::Result<(Option<[u8; 32]>, std::time::SystemTime)> {
    use std::io::Write;
    let mut digest = hash.then(Sha256::new);
    while let Some(chunk) = chunks.blocking_recv() {
        match chunk {
            Chunk::Data(data) => {
                if let Some(digest) = &mut digest {
                    digest.update(&data);
                }
                file.write_all(&data)?;
            }
            Chunk::Finish(trailer) => {
                file.write_all(&trailer)?;
                file.sync_all()?;
                let modified = file.metadata()?.modified()?;
                return Ok((digest.map(|d| d.finalize().into()), modified));
            }
        }
    }
    Err(io::Error::new(io::ErrorKind::Interrupted, "the upload ended before its last byte"))
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

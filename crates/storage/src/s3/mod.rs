//! The S3 backend, for AWS S3, MinIO and every S3-compatible store.
//!
//! Calls that talk to the store go through `aws-sdk-s3`. URLs are signed here with SigV4 (`signer`), with the
//! day's signing key derived once by `aws-sigv4`: several times faster than the SDK's presigner on this hot path;
//! the tests check its signatures against `aws-sigv4`'s and that the store accepts them. No byte of an object
//! passes through DraftStore: confirm is a server-side copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, ChecksumMode,
    CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule, CreateBucketConfiguration, Delete,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier,
};
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use url::Url;

#[cfg(doc)]
use crate::probe::StoreProbe;
use crate::storage::{
    ByteChunks, Declared, DeleteFailure, LIST_PAGE, ListPage, ListPages, ListedObject, Metadata, MoveOptions,
    ORIGIN_METADATA, PrefixPage, StaleUploads, VersionDeletes,
};
use crate::{
    BucketName, Checksum, CompletedPart as Part, ContentType, Error, Method, MultipartRequest, ObjectKey, ObjectMeta,
    PresignRequest, PresignedUrl, Progress, Result, Storage, UploadId, UploadedPart,
};

use copy::{CopyJob, upload_error};
use errors::{sdk_error, timestamp};
use signer::Signer;

mod copy;
mod errors;
mod probe;
mod signer;
/// The largest object a single CopyObject can copy.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part S3 accepts, except the last one.
pub const MIN_PART_SIZE: u64 = crate::multipart::MIN_PART_SIZE;
const MAX_PARTS: u64 = crate::multipart::MAX_PART_NUMBER as u64;
/// Checksums on DraftStore's own requests: only where S3 requires one (DeleteObjects). The SDK's default since
/// 2025 adds a CRC32 to every upload, which some S3-compatible stores refuse; DraftStore's integrity promise is the
/// SHA-256 signed into a client's URL, which the store verifies, not a checksum of its own small records.
pub const REQUEST_CHECKSUMS: RequestChecksumCalculation = RequestChecksumCalculation::WhenRequired;
/// Checksums of the store's answers are checked only where a request asks for them: the bytes DraftStore reads
/// (content checks, scans) are bytes the store verified against their SHA-256 when they were uploaded.
pub const RESPONSE_CHECKSUMS: ResponseChecksumValidation = ResponseChecksumValidation::WhenRequired;
/// Temporary credentials are renewed this long before they expire.
const CREDENTIAL_MARGIN: Duration = Duration::from_secs(300);

/// Characters escaped in the `x-amz-copy-source` header: everything that is not safe in a URL path.
const COPY_SOURCE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'+');

/// Characters escaped in a metadata value: an HTTP header carries printable ASCII only, and `%` marks an escape.
const METADATA_VALUE: &AsciiSet = &CONTROLS.add(b'%');

/// User metadata as a request carries it: values that are not printable ASCII, or hold a `%`, percent-encoded.
fn encode_metadata(metadata: &Metadata) -> std::collections::HashMap<String, String> {
    metadata
        .iter()
        .map(|(name, value)| (name.clone(), utf8_percent_encode(value, METADATA_VALUE).to_string()))
        .collect()
}

/// An answer's user metadata, decoded, with the declared values and the origin taken out.
fn read_metadata(raw: Option<&std::collections::HashMap<String, String>>) -> (Declared, Metadata, Option<String>) {
    let decoded = raw
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_or_else(|_| value.clone(), |decoded| decoded.into_owned());
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    let (declared, mut metadata) = Declared::split_from(decoded);
    let origin = metadata.remove(ORIGIN_METADATA);
    (declared, metadata, origin)
}

/// Static credentials given in the configuration.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// How to reach an S3-compatible store.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub region: String,
    /// `None`: AWS itself.
    pub endpoint: Option<Url>,
    pub force_path_style: bool,
    /// `None`: the standard AWS credential chain (environment, profile, web identity, instance metadata).
    pub credentials: Option<StaticCredentials>,
    /// Base URL written into presigned URLs, when clients reach the store on another address than DraftStore.
    pub presign_endpoint: Option<Url>,
    /// Bound on each call to the store, retries included.
    pub timeout: Duration,
    /// Objects larger than this are moved with a multipart copy (at most [`MAX_SINGLE_COPY`]); so are those the
    /// store could not copy in one request well within `timeout`, by what it has shown of its speed.
    pub copy_multipart_threshold: u64,
    /// Largest part of a multipart copy (at least [`MIN_PART_SIZE`]). Each part copy is one request, bounded by
    /// `timeout`: parts start at [`MIN_PART_SIZE`] and are sized to what the store copies in a quarter of it.
    pub copy_part_size: u64,
    /// Part copies in flight at once during a multipart copy.
    pub copy_concurrency: usize,
    /// Whether the store honours conditional writes: `None` to find out with the [`StoreProbe`], `Some(false)` to
    /// never rely on them.
    pub conditional_writes: Option<bool>,
    /// Signs upload URLs (PUT, POST, DELETE) instead of `credentials`, when given: a credential that can only write
    /// the draft bucket, so that no upload URL can read or copy, whatever the store lets a client smuggle in.
    pub upload_signing: Option<StaticCredentials>,
    /// Signs download URLs (GET) instead of `credentials`, when given: a credential that can only read.
    pub download_signing: Option<StaticCredentials>,
}

/// An S3-compatible store.
#[derive(Debug)]
pub struct S3Storage {
    client: Client,
    /// Whether the store honours `If-None-Match` on copies; found out by the [`StoreProbe`] unless configured.
    conditional_writes: AtomicBool,
    /// Whether `conditional_writes` was configured (S3_CONDITIONAL_WRITES), so that the probe leaves it as it is.
    conditional_writes_configured: bool,
    /// Whether the store honours `If-Match` on deletes; found out by the [`StoreProbe`] with the conditional writes.
    conditional_deletes: AtomicBool,
    /// Signs with the main credential, the one DraftStore's own calls use.
    signer: Signer,
    /// Signs upload URLs, when a credential of their own is configured.
    upload: Option<SigningIdentity>,
    /// Signs download URLs, when a credential of their own is configured.
    download: Option<SigningIdentity>,
    /// Bound on each call to the store.
    timeout: Duration,
    copy_multipart_threshold: u64,
    copy_part_size: u64,
    copy_concurrency: usize,
    /// How much one copy request carries, learned from the copies done.
    pace: copy::CopyPace,
}

impl S3Storage {
    /// Builds the client. Nothing is sent to the store yet.
    pub async fn new(config: S3Config) -> Result<Self> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(3)))
            .operation_timeout(config.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(given) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                given.access_key_id.clone(),
                given.secret_access_key.clone(),
                given.session_token.clone(),
                None,
                "draftstore-configuration",
            ));
        }
        let shared = loader.load().await;
        let provider = shared
            .credentials_provider()
            .ok_or_else(|| Error::AccessDenied { message: "no AWS credential source is configured".to_owned() })?;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(REQUEST_CHECKSUMS)
            .response_checksum_validation(RESPONSE_CHECKSUMS);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.as_str().trim_end_matches('/'));
        }
        let endpoint = match (&config.presign_endpoint, &config.endpoint) {
            (Some(public), _) => public.clone(),
            (None, Some(endpoint)) => endpoint.clone(),
            (None, None) => Url::parse(&format!("https://s3.{}.amazonaws.com", config.region))
                .map_err(|e| Error::other("invalid AWS region for an endpoint", e))?,
        };
        let signer = Signer::new(&endpoint, config.force_path_style, config.region.clone(), provider)?;
        let sdk_config = builder.build();
        let identity = |credentials: &Option<StaticCredentials>| {
            credentials
                .as_ref()
                .map(|given| {
                    SigningIdentity::new(given, &sdk_config, &endpoint, config.force_path_style, &config.region)
                })
                .transpose()
        };
        let (upload, download) = (identity(&config.upload_signing)?, identity(&config.download_signing)?);
        Ok(Self {
            client: Client::from_conf(sdk_config),
            conditional_writes: AtomicBool::new(config.conditional_writes != Some(false)),
            conditional_writes_configured: config.conditional_writes.is_some(),
            conditional_deletes: AtomicBool::new(config.conditional_writes != Some(false)),
            signer,
            upload,
            download,
            timeout: config.timeout,
            copy_multipart_threshold: config.copy_multipart_threshold.min(MAX_SINGLE_COPY),
            copy_part_size: config.copy_part_size.max(MIN_PART_SIZE),
            copy_concurrency: config.copy_concurrency.max(1),
            pace: copy::CopyPace::new(config.timeout),
        })
    }

    /// The SDK client, for operations outside the trait.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The signer of URLs for requests sent with `method`: the upload credential's for those that write, the
    /// download credential's for those that read, the main one's where none is configured.
    fn signer_for(&self, method: Method) -> &Signer {
        let identity = match method {
            Method::Put | Method::Post | Method::Delete => &self.upload,
            Method::Get => &self.download,
        };
        identity.as_ref().map_or(&self.signer, |identity| &identity.signer)
    }
}

/// A credential that signs one kind of URL, with a client of its own that the probe checks its rights with.
#[derive(Debug)]
struct SigningIdentity {
    signer: Signer,
    client: Client,
}

impl SigningIdentity {
    fn new(
        given: &StaticCredentials,
        sdk_config: &aws_sdk_s3::Config,
        endpoint: &Url,
        path_style: bool,
        region: &str,
    ) -> Result<Self> {
        let credentials = Credentials::new(
            given.access_key_id.clone(),
            given.secret_access_key.clone(),
            given.session_token.clone(),
            None,
            "draftstore-signing-configuration",
        );
        let provider = SharedCredentialsProvider::new(credentials);
        let signer = Signer::new(endpoint, path_style, region.to_owned(), provider.clone())?;
        let client = Client::from_conf(sdk_config.to_builder().credentials_provider(provider).build());
        Ok(Self { signer, client })
    }
}

impl S3Storage {
    /// One DeleteObjects call (quiet: only failures are answered) for up to 1,000 keys, each deleted only if it is
    /// still the version of its etag, where one is given.
    async fn delete_objects<'k>(
        &self,
        bucket: &BucketName,
        objects: impl Iterator<Item = (&'k ObjectKey, Option<&'k str>)>,
    ) -> Result<aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput> {
        let objects = objects
            .map(|(key, etag)| ObjectIdentifier::builder().key(key.as_str()).set_e_tag(etag.map(str::to_owned)).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::other("invalid delete request", e))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| Error::other("invalid delete request", e))?;
        let output = self
            .client
            .delete_objects()
            .bucket(bucket.as_str())
            .delete(delete)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObjects", bucket, None, e))?;
        Ok(output)
    }
}

/// A key DeleteObjects could not delete, with the store's code and message.
fn delete_failure(error: &aws_sdk_s3::types::Error) -> DeleteFailure {
    DeleteFailure {
        key: error.key().unwrap_or_default().to_owned(),
        message: format!("{}: {}", error.code().unwrap_or("unknown error"), error.message().unwrap_or("no message")),
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn create_bucket(&self, bucket: &BucketName) -> Result<()> {
        match self.check_bucket(bucket).await {
            Ok(()) => return Ok(()),
            Err(Error::BucketNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let region = self.signer.region.as_str();
        let configuration = (region != "us-east-1").then(|| {
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build()
        });
        match self
            .client
            .create_bucket()
            .bucket(bucket.as_str())
            .set_create_bucket_configuration(configuration)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("BucketAlreadyExists") => {
                Err(Error::AccessDenied {
                    message: format!(
                        "bucket '{bucket}' exists but belongs to another account; choose another BUCKET_NAME"
                    ),
                })
            }
            Err(e) => Err(sdk_error("CreateBucket", bucket, None, e)),
        }
    }

    async fn check_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(bucket.as_str())
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("HeadBucket", bucket, None, e))
    }

    async fn allow_browser_uploads(&self, bucket: &BucketName, origins: &[String]) -> Result<()> {
        let rule = CorsRule::builder()
            .set_allowed_origins(Some(origins.to_vec()))
            .allowed_methods("PUT")
            .allowed_methods("POST")
            .allowed_methods("DELETE")
            .allowed_methods("GET")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3600)
            .build()
            .map_err(|e| Error::other("invalid CORS rule", e))?;
        let configuration =
            CorsConfiguration::builder().cors_rules(rule).build().map_err(|e| Error::other("invalid CORS rule", e))?;
        self.client
            .put_bucket_cors()
            .bucket(bucket.as_str())
            .cors_configuration(configuration)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutBucketCors", bucket, None, e))
    }

    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        self.signer_for(request.method).sign(request).await
    }

    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta> {
        let request =
            self.client.head_object().bucket(bucket.as_str()).key(key.as_str()).checksum_mode(ChecksumMode::Enabled);
        let head = match request.send().await {
            Ok(head) => head,
            Err(e) => {
                let error = sdk_error("HeadObject", bucket, Some(key), e);
                // HEAD answers carry no error code: a 404 may mean the bucket is missing.
                if error.is_not_found() {
                    self.check_bucket(bucket).await?;
                }
                return Err(error);
            }
        };
        let content_type =
            head.content_type().and_then(|t| ContentType::parse(t).ok()).unwrap_or_else(ContentType::octet_stream);
        let last_modified = timestamp(head.last_modified());
        let (declared, metadata, origin) = read_metadata(head.metadata());
        Ok(ObjectMeta {
            key: key.clone(),
            size: head.content_length().unwrap_or_default().max(0) as u64,
            content_type,
            last_modified,
            sha256: head.checksum_sha256().and_then(|c| Checksum::parse(c).ok()),
            declared,
            etag: head.e_tag().map(str::to_owned),
            metadata,
            origin,
        })
    }

    async fn move_object(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        options: &MoveOptions,
        progress: &Progress,
    ) -> Result<()> {
        // A source the caller looked up is not looked up again when the copy itself checks its version.
        let meta = match &options.source {
            Some(meta) if &meta.key == key && options.if_match.is_some() && meta.etag == options.if_match => {
                meta.clone()
            }
            _ => self.head(from, key).await?,
        };
        progress.step();
        options.check_source(key, &meta)?;
        let to_key = options.destination(key);
        if options.no_overwrite && !self.conditional_writes.load(Ordering::Relaxed) {
            // The store ignores If-None-Match: check first. A writer racing this check can still win.
            match self.head(to, to_key).await {
                Ok(_) => return Err(Error::AlreadyExists { bucket: to.to_string(), key: to_key.to_string() }),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // A move with an origin writes the metadata again, with its origin: the source's, where none is given.
        let metadata = match (&options.metadata, &options.origin) {
            (Some(metadata), _) => Some(metadata.clone()),
            (None, Some(_)) => {
                let mut metadata = meta.metadata.clone();
                meta.declared.insert_into(&mut metadata);
                Some(metadata)
            }
            (None, None) => None,
        };
        let metadata = metadata.map(|mut metadata| {
            metadata.remove(ORIGIN_METADATA);
            if let Some(origin) = &options.origin {
                metadata.insert(ORIGIN_METADATA.to_owned(), origin.clone());
            }
            encode_metadata(&metadata)
        });
        let job = CopyJob {
            source: format!("{from}/{}", utf8_percent_encode(key.as_str(), COPY_SOURCE)),
            from,
            to,
            key,
            to_key,
            size: meta.size,
            etag: meta.etag.as_deref(),
            content_type: &meta.content_type,
            metadata,
        };
        self.copy(&job, options, progress).await?;
        progress.step();
        if options.keep_source {
            return Ok(());
        }
        // The source goes only if it is still the version copied: a draft uploaded again meanwhile stays.
        match meta.etag.as_deref() {
            Some(etag) => self.delete_version(from, key, etag).await.map(drop),
            None => self.delete(from, key).await,
        }
    }

    async fn create_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
        _part_size: Option<u64>,
    ) -> Result<UploadId> {
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type(content_type.as_str());
        let mut metadata = Metadata::new();
        declared.insert_into(&mut metadata);
        for (name, value) in metadata {
            request = request.metadata(name, value);
        }
        let created = request.send().await.map_err(|e| sdk_error("CreateMultipartUpload", bucket, Some(key), e))?;
        let id = created.upload_id().unwrap_or_default();
        UploadId::parse(id).map_err(|e| Error::other(format!("the store gave an unusable upload id '{id}'"), e))
    }

    async fn presign_part(
        &self,
        request: &PresignRequest<'_>,
        upload_id: &UploadId,
        number: u32,
    ) -> Result<PresignedUrl> {
        self.signer_for(Method::Put).sign_part(request, upload_id, number).await
    }

    async fn presign_multipart(
        &self,
        request: &PresignRequest<'_>,
        multipart: MultipartRequest<'_>,
    ) -> Result<PresignedUrl> {
        self.signer_for(multipart.method()).sign_multipart(request, multipart).await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
    ) -> Result<Vec<UploadedPart>> {
        self.parts(bucket, key, upload_id, None).await
    }

    async fn check_upload(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        self.parts(bucket, key, upload_id, Some(1)).await.map(drop)
    }

    async fn complete_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        parts: &[Part],
        _progress: &Progress,
    ) -> Result<()> {
        let parts = parts
            .iter()
            .map(|part| CompletedPart::builder().part_number(part.number as i32).e_tag(part.etag.clone()).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .upload_id(upload_id.as_str())
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| upload_error(sdk_error("CompleteMultipartUpload", bucket, Some(key), e), upload_id))
    }

    async fn abort_multipart(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        // S3 answers success to an abort of an upload it does not know: check first, so that an unknown or
        // foreign id is refused as on every other operation.
        self.check_upload(bucket, key, upload_id).await?;
        self.client
            .abort_multipart_upload()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .upload_id(upload_id.as_str())
            .send()
            .await
            .map(drop)
            .map_err(|e| upload_error(sdk_error("AbortMultipartUpload", bucket, Some(key), e), upload_id))
    }

    async fn put_record(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: bytes::Bytes,
        if_absent: bool,
    ) -> Result<bool> {
        let conditional = if_absent && self.conditional_writes.load(Ordering::Relaxed);
        if if_absent && !conditional {
            // The store ignores If-None-Match: check first. A writer racing this check can still win.
            match self.head(bucket, key).await {
                Ok(_) => return Ok(false),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let put = self
            .client
            .put_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type("application/json")
            .set_if_none_match(conditional.then(|| "*".to_owned()))
            .body(body.into())
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if conditional && [409, 412].contains(&e.raw().status().as_u16()) => {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutObject", bucket, Some(key), e)),
        }
    }

    async fn get_record(&self, bucket: &BucketName, key: &ObjectKey) -> Result<bytes::Bytes> {
        let object = self
            .client
            .get_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| sdk_error("GetObject", bucket, Some(key), e))?;
        let body = object.body.collect().await.map_err(|e| body_broke_off(&format!("{bucket}/{key}"), e))?;
        Ok(body.into_bytes())
    }

    async fn read(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        first: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks> {
        if first == Some(0) {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let range = first.map(|n| format!("bytes=0-{}", n - 1));
        let object = self.client.get_object().bucket(bucket.as_str()).key(key.as_str()).set_range(range);
        let object = match object.set_if_match(if_match.map(str::to_owned)).send().await {
            Ok(object) => object,
            // A range of an empty object is not satisfiable: its first bytes are none.
            Err(e) if unsatisfiable(&e) => {
                return Ok(Box::pin(futures_util::stream::empty()));
            }
            Err(e) => return Err(sdk_error("GetObject", bucket, Some(key), e)),
        };
        let state = Some((object.body, format!("{bucket}/{key}")));
        Ok(Box::pin(futures_util::stream::unfold(state, |state| async move {
            let (mut body, target) = state?;
            match body.next().await? {
                Ok(chunk) => Some((Ok(chunk), Some((body, target)))),
                Err(e) => Some((Err(body_broke_off(&target, e)), None)),
            }
        })))
    }

    async fn head_with_first_bytes(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        len: u64,
    ) -> Result<(ObjectMeta, bytes::Bytes)> {
        // One ranged GET answers with the object's headers too: its metadata, its etag, its size in Content-Range.
        let request = self.client.get_object().bucket(bucket.as_str()).key(key.as_str());
        let object = match request.range(format!("bytes=0-{}", len.max(1) - 1)).send().await {
            Ok(object) => object,
            // An empty object has no first bytes to range over.
            Err(e) if unsatisfiable(&e) => {
                return Ok((self.head(bucket, key).await?, bytes::Bytes::new()));
            }
            Err(e) => return Err(sdk_error("GetObject", bucket, Some(key), e)),
        };
        let size = object
            .content_range()
            .and_then(|range| range.rsplit_once('/')?.1.parse().ok())
            .unwrap_or_else(|| object.content_length().unwrap_or_default().max(0) as u64);
        let content_type =
            object.content_type().and_then(|t| ContentType::parse(t).ok()).unwrap_or_else(ContentType::octet_stream);
        let (declared, metadata, origin) = read_metadata(object.metadata());
        let mut meta = ObjectMeta {
            key: key.clone(),
            size,
            content_type,
            last_modified: timestamp(object.last_modified()),
            // A ranged answer carries no checksum of the whole object.
            sha256: None,
            declared,
            etag: object.e_tag().map(str::to_owned),
            metadata,
            origin,
        };
        let first = object.body.collect().await.map_err(|e| body_broke_off(&format!("{bucket}/{key}"), e))?;
        let first = first.into_bytes();
        let first = first.slice(..first.len().min(usize::try_from(len).unwrap_or(usize::MAX)));
        // A declared SHA-256 is checked against the store's, which only a HEAD gives: of the same version.
        if meta.declared.sha256.is_some() {
            let head = self.head(bucket, key).await?;
            if head.etag != meta.etag {
                return Err(Error::PreconditionFailed { message: format!("object '{key}' changed while being read") });
            }
            meta = head;
        }
        Ok((meta, first))
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.client
            .delete_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("DeleteObject", bucket, Some(key), e))
    }

    async fn delete_version(&self, bucket: &BucketName, key: &ObjectKey, etag: &str) -> Result<bool> {
        if !self.conditional_deletes.load(Ordering::Relaxed) {
            // The store ignores If-Match: look up first. A write landing between the two is deleted.
            match self.head(bucket, key).await {
                Ok(meta) if meta.etag.as_deref() == Some(etag) => {}
                Ok(_) | Err(Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        let delete = self.client.delete_object().bucket(bucket.as_str()).key(key.as_str());
        let conditional = self.conditional_deletes.load(Ordering::Relaxed).then(|| etag.to_owned());
        match delete.set_if_match(conditional).send().await.map_err(|e| sdk_error("DeleteObject", bucket, Some(key), e))
        {
            Ok(_) => Ok(true),
            // Another version, or none (stores answer either for a missing key).
            Err(Error::PreconditionFailed { .. } | Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete_versions(&self, bucket: &BucketName, versions: &[(ObjectKey, String)]) -> Result<VersionDeletes> {
        let mut outcome = VersionDeletes::default();
        let conditional = self.conditional_deletes.load(Ordering::Relaxed);
        let mut chosen = Vec::with_capacity(versions.len());
        if conditional {
            chosen.extend(versions.iter().map(|(key, etag)| (key, Some(etag.as_str()))));
        } else {
            // The store ignores If-Match: look each up first. A write landing between the two is deleted.
            let lookups: Vec<_> = versions.iter().map(|(key, _)| self.head(bucket, key)).collect();
            let heads: Vec<_> = futures_util::stream::iter(lookups).buffered(16).collect().await;
            for ((key, etag), head) in versions.iter().zip(heads) {
                match head {
                    Ok(meta) if meta.etag.as_deref() == Some(etag.as_str()) => chosen.push((key, None)),
                    Ok(_) | Err(Error::NotFound { .. }) => outcome.changed.push(key.clone()),
                    Err(e) => outcome.failures.push(DeleteFailure { key: key.to_string(), message: e.to_string() }),
                }
            }
        }
        if chosen.is_empty() {
            return Ok(outcome);
        }
        let output = self.delete_objects(bucket, chosen.iter().map(|(key, etag)| (*key, *etag))).await?;
        for error in output.errors() {
            let key = error.key().unwrap_or_default();
            match (error.code(), chosen.iter().find(|(chosen, _)| chosen.as_str() == key)) {
                (Some("PreconditionFailed" | "NoSuchKey"), Some((key, _))) => outcome.changed.push((*key).clone()),
                _ => outcome.failures.push(delete_failure(error)),
            }
        }
        Ok(outcome)
    }

    fn list(&self, bucket: &BucketName) -> ListPages<'_> {
        let paginator =
            self.client.list_objects_v2().bucket(bucket.as_str()).max_keys(LIST_PAGE as i32).into_paginator().send();
        let bucket = bucket.clone();
        Box::pin(futures_util::stream::unfold(Some(paginator), move |paginator| {
            let bucket = bucket.clone();
            async move {
                let mut paginator = paginator?;
                match paginator.next().await? {
                    Ok(output) => Some((Ok(list_page(&output)), Some(paginator))),
                    // A failed page ends the listing: the next page's position is unknown.
                    Err(e) => Some((Err(sdk_error("ListObjectsV2", &bucket, None, e)), None)),
                }
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
        // The token is the last key of the previous page, not the store's continuation token: it can be checked,
        // and it means the same on every S3-compatible store.
        let start_after = match token {
            Some(token) if token.starts_with(prefix) && token.len() > prefix.len() && token.len() <= 1024 => {
                Some(token.to_owned())
            }
            Some(token) => {
                return Err(Error::InvalidKey {
                    key: token.to_owned(),
                    reason: "not a page token of this prefix".to_owned(),
                });
            }
            None => None,
        };
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket.as_str())
            .prefix(prefix)
            .set_start_after(start_after)
            .max_keys(limit.clamp(1, LIST_PAGE) as i32)
            .send()
            .await
            .map_err(|e| sdk_error("ListObjectsV2", bucket, None, e))?;
        // The last key listed, even one DraftStore could not have written, so that no page is skipped.
        let next = match output.is_truncated() {
            Some(true) => output.contents().last().and_then(|object| object.key()).map(str::to_owned),
            _ => None,
        };
        Ok(PrefixPage { objects: list_page(&output).objects, next })
    }

    async fn delete_many(&self, bucket: &BucketName, keys: &[ObjectKey]) -> Result<Vec<DeleteFailure>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let output = self.delete_objects(bucket, keys.iter().map(|key| (key, None))).await?;
        Ok(output.errors().iter().map(delete_failure).collect())
    }

    async fn remove_stale_uploads(&self, bucket: &BucketName, stale: StaleUploads) -> Result<u64> {
        let mut aborted = 0;
        let (mut key_marker, mut upload_id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(bucket.as_str())
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_id_marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListMultipartUploads", bucket, None, e))?;
            for upload in page.uploads() {
                let initiated = upload.initiated().map(|t| t.secs()).unwrap_or(i64::MAX);
                if initiated >= stale.multipart_before.unix_timestamp() {
                    continue;
                }
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
                self.client
                    .abort_multipart_upload()
                    .bucket(bucket.as_str())
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| sdk_error("AbortMultipartUpload", bucket, None, e))?;
                aborted += 1;
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(aborted);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            upload_id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && upload_id_marker.is_none() {
                return Ok(aborted);
            }
        }
    }

    async fn install_lifecycle(&self, bucket: &BucketName, days: u32) -> Result<bool> {
        let days = i32::try_from(days.max(1)).unwrap_or(i32::MAX);
        let rule = LifecycleRule::builder()
            .id("draftstore-expire-drafts")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(LifecycleExpiration::builder().days(days).build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(days).build(),
            )
            .build()
            .map_err(|e| Error::other("invalid lifecycle rule", e))?;
        let configuration = BucketLifecycleConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| Error::other("invalid lifecycle rule", e))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket.as_str())
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map_err(|e| sdk_error("PutBucketLifecycleConfiguration", bucket, None, e))?;
        Ok(true)
    }
}

fn list_page(output: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output) -> ListPage {
    let mut page = ListPage::default();
    for object in output.contents() {
        let raw = object.key().unwrap_or_default();
        match ObjectKey::parse(raw) {
            Ok(key) => page.objects.push(ListedObject {
                key,
                size: object.size().unwrap_or_default().max(0) as u64,
                last_modified: timestamp(object.last_modified()),
                etag: object.e_tag().map(str::to_owned),
            }),
            Err(_) => page.foreign_keys.push(raw.to_owned()),
        }
    }
    page
}

/// A GetObject whose body stopped before its end.
fn body_broke_off(target: &str, error: aws_smithy_types::byte_stream::error::Error) -> Error {
    Error::unavailable(format!("S3 GetObject on {target}: the body broke off"), Some(Box::new(error)))
}

/// A range of an empty object, which has no first bytes to range over.
fn unsatisfiable<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    error.raw_response().is_some_and(|r| r.status().as_u16() == 416)
}

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
use crate::{BucketAdmin, BucketRules, Moves, MultipartStore, ObjectStore, WholeChecksum};
use crate::{
    BucketName, Checksum, CompletedPart as Part, ContentType, Error, Method, MultipartRequest, ObjectKey, ObjectMeta,
    PresignRequest, PresignedUrl, Progress, Result, UploadId, UploadedPart,
};

use copy::{CopyJob, upload_error};
use errors::{sdk_error, timestamp};
use signer::Signer;

mod buckets;
mod copy;
mod errors;
mod objects;
mod probe;
mod signer;
mod uploads;
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
impl crate::Signer for S3Storage {
    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        self.signer_for(request.method).sign(request).await
    }
}

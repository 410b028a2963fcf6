//! The S3 backend, for AWS S3, MinIO and every S3-compatible store.
//!
//! Calls that talk to the store go through `aws-sdk-s3`. URLs are signed locally by `rusty-s3`'s SigV4 query
//! signer, which is several times faster than the SDK's presigner on this hot path; the tests check that the
//! store accepts what it signs. No byte of an object passes through DraftStore: confirm is a server-side copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, ProvideCredentials, Region, SharedCredentialsProvider, retry::RetryConfig,
    timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, ChecksumMode,
    CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule, CreateBucketConfiguration, Delete,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, MetadataDirective, ObjectIdentifier,
};
use futures_util::{StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rusty_s3::actions::{GetObject, PutObject, S3Action};
use rusty_s3::{Bucket, UrlStyle};
use time::OffsetDateTime;
use url::Url;

use crate::error::BoxError;
use crate::storage::{
    DECLARED_LENGTH_HEADER, DECLARED_SHA256_HEADER, Declared, DeleteFailure, LIST_PAGE, ListPage, ListPages,
    ListedObject, MoveOptions, StaleUploads, display_header_name,
};
use crate::{
    BucketName, Checksum, ContentType, Error, Method, ObjectKey, ObjectMeta, PresignRequest, PresignedUrl, Result,
    Storage,
};

/// The largest object a single CopyObject can copy.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part S3 accepts, except the last one.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// Part copies in flight at once during a multipart copy.
const COPY_CONCURRENCY: usize = 4;
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
    /// Objects larger than this are moved with a multipart copy (at most [`MAX_SINGLE_COPY`]).
    pub multipart_copy_threshold: u64,
    /// Part size of multipart copies (at least [`MIN_PART_SIZE`]).
    pub multipart_copy_part_size: u64,
    /// Whether the store honours conditional writes: `None` to find out with
    /// [`Storage::probe_conditional_writes`], `Some(false)` to never rely on them.
    pub conditional_writes: Option<bool>,
}

/// An S3-compatible store.
#[derive(Debug)]
pub struct S3Storage {
    client: Client,
    /// Whether the store honours `If-None-Match` on copies; see [`Storage::probe_conditional_writes`].
    conditional_writes: AtomicBool,
    signer: Signer,
    multipart_copy_threshold: u64,
    multipart_copy_part_size: u64,
}

/// Signs URLs with cached credentials, refreshed from the provider before they expire.
#[derive(Debug)]
struct Signer {
    endpoint: Url,
    style: UrlStyle,
    region: String,
    provider: SharedCredentialsProvider,
    cached: RwLock<Option<(Arc<rusty_s3::Credentials>, Option<SystemTime>)>>,
}

impl Signer {
    async fn credentials(&self) -> Result<Arc<rusty_s3::Credentials>> {
        if let Some((credentials, expiry)) = &*self.cached.read().unwrap_or_else(|e| e.into_inner())
            && expiry.is_none_or(|at| at > SystemTime::now() + CREDENTIAL_MARGIN)
        {
            return Ok(Arc::clone(credentials));
        }
        let fresh = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Error::AccessDenied { message: format!("no usable credentials for signing URLs: {e}") })?;
        let credentials = Arc::new(match fresh.session_token() {
            Some(token) => {
                rusty_s3::Credentials::new_with_token(fresh.access_key_id(), fresh.secret_access_key(), token)
            }
            None => rusty_s3::Credentials::new(fresh.access_key_id(), fresh.secret_access_key()),
        });
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some((Arc::clone(&credentials), fresh.expiry()));
        Ok(credentials)
    }

    async fn sign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        let credentials = self.credentials().await?;
        let bucket = Bucket::new(self.endpoint.clone(), self.style, request.bucket.to_string(), self.region.clone())
            .map_err(|e| Error::other(format!("cannot address bucket '{}' at {}", request.bucket, self.endpoint), e))?;
        let time = jiff::Timestamp::from_second(request.now.unix_timestamp())
            .map_err(|e| Error::other("signing time out of range", e))?;
        let headers = match request.method {
            Method::Put => request.conditions.upload_headers(),
            Method::Get => Vec::new(),
        };
        let url = match request.method {
            Method::Put => {
                let mut action = PutObject::new(&bucket, Some(&credentials), request.key.as_str());
                for (name, value) in &headers {
                    action.headers_mut().insert(name.clone(), value.clone());
                }
                action.sign_with_time(request.expires_in, &time)
            }
            Method::Get => {
                let mut action = GetObject::new(&bucket, Some(&credentials), request.key.as_str());
                if request.conditions.attachment {
                    action.query_mut().insert("response-content-disposition", "attachment");
                }
                action.sign_with_time(request.expires_in, &time)
            }
        };
        let headers = headers.into_iter().map(|(name, value)| (display_header_name(&name), value)).collect();
        Ok(PresignedUrl { url: url.into(), method: request.method, headers })
    }
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
        let mut builder = aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.force_path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.as_str().trim_end_matches('/'));
        }
        let endpoint = match (&config.presign_endpoint, &config.endpoint) {
            (Some(public), _) => public.clone(),
            (None, Some(endpoint)) => endpoint.clone(),
            (None, None) => Url::parse(&format!("https://s3.{}.amazonaws.com", config.region))
                .map_err(|e| Error::other("invalid AWS region for an endpoint", e))?,
        };
        let style = if config.force_path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        Ok(Self {
            client: Client::from_conf(builder.build()),
            conditional_writes: AtomicBool::new(config.conditional_writes != Some(false)),
            signer: Signer { endpoint, style, region: config.region, provider, cached: RwLock::new(None) },
            multipart_copy_threshold: config.multipart_copy_threshold.min(MAX_SINGLE_COPY),
            multipart_copy_part_size: config.multipart_copy_part_size.max(MIN_PART_SIZE),
        })
    }

    /// The SDK client, for operations outside the trait.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Copies `from/key` to `to/key`: only the source version `etag` when given, and not onto an existing
    /// object when `options.no_overwrite` (the store answers 412 to either condition).
    async fn copy(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        size: u64,
        options: &MoveOptions,
        etag: Option<&str>,
    ) -> Result<()> {
        let source = format!("{from}/{}", utf8_percent_encode(key.as_str(), COPY_SOURCE));
        let result = if size <= self.multipart_copy_threshold {
            self.client
                .copy_object()
                .copy_source(&source)
                .bucket(to.as_str())
                .key(key.as_str())
                .metadata_directive(MetadataDirective::Copy)
                .set_copy_source_if_match(etag.map(str::to_owned))
                .set_if_none_match(options.no_overwrite.then(|| "*".to_owned()))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("CopyObject", from, Some(key), e))
        } else {
            self.multipart_copy(&source, from, to, key, size, options.no_overwrite).await
        };
        match result {
            Err(Error::PreconditionFailed { .. }) if options.no_overwrite && self.head(to, key).await.is_ok() => {
                Err(Error::AlreadyExists { bucket: to.to_string(), key: key.to_string() })
            }
            other => other,
        }
    }

    /// Copies an object above the single-copy limit part by part. The new object appears only when every part is
    /// in place; a failure aborts the upload, leaving nothing behind.
    async fn multipart_copy(
        &self,
        source: &str,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        size: u64,
        no_overwrite: bool,
    ) -> Result<()> {
        let head = self
            .client
            .head_object()
            .bucket(from.as_str())
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| sdk_error("HeadObject", from, Some(key), e))?;
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(to.as_str())
            .key(key.as_str())
            .set_content_type(head.content_type().map(str::to_owned))
            .set_metadata(head.metadata().cloned())
            .send()
            .await
            .map_err(|e| sdk_error("CreateMultipartUpload", to, Some(key), e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let part_size = self.multipart_copy_part_size.max(size.div_ceil(MAX_PARTS));
        let ranges: Vec<(i32, u64, u64)> = (0..size.div_ceil(part_size))
            .map(|i| (i as i32 + 1, i * part_size, ((i + 1) * part_size).min(size) - 1))
            .collect();
        let copied: Result<Vec<CompletedPart>> = futures_util::stream::iter(ranges)
            .map(|(number, first, last)| {
                let upload_id = upload_id.clone();
                async move {
                    let part = self
                        .client
                        .upload_part_copy()
                        .bucket(to.as_str())
                        .key(key.as_str())
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .send()
                        .await
                        .map_err(|e| sdk_error("UploadPartCopy", from, Some(key), e))?;
                    let etag = part.copy_part_result().and_then(|r| r.e_tag()).map(str::to_owned);
                    Ok(CompletedPart::builder().part_number(number).set_e_tag(etag).build())
                }
            })
            .buffered(COPY_CONCURRENCY)
            .try_collect()
            .await;
        let completed = match copied {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(to.as_str())
                .key(key.as_str())
                .upload_id(&upload_id)
                .set_if_none_match(no_overwrite.then(|| "*".to_owned()))
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| sdk_error("CompleteMultipartUpload", to, Some(key), e))
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(error) = completed {
            let abort =
                self.client.abort_multipart_upload().bucket(to.as_str()).key(key.as_str()).upload_id(&upload_id);
            if let Err(abort_error) = abort.send().await {
                tracing::warn!(%key, upload_id, error = %abort_error, "failed to abort a multipart copy");
            }
            return Err(error);
        }
        Ok(())
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
        self.signer.sign(request).await
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
        let last_modified = head
            .last_modified()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let metadata = |name: &str| head.metadata().and_then(|m| m.get(name.trim_start_matches("x-amz-meta-")));
        Ok(ObjectMeta {
            key: key.clone(),
            size: head.content_length().unwrap_or_default().max(0) as u64,
            content_type,
            last_modified,
            sha256: head.checksum_sha256().and_then(|c| Checksum::parse(c).ok()),
            declared: Declared {
                length: metadata(DECLARED_LENGTH_HEADER).and_then(|l| l.parse().ok()),
                sha256: metadata(DECLARED_SHA256_HEADER).and_then(|c| Checksum::parse(c).ok()),
            },
            etag: head.e_tag().map(str::to_owned),
        })
    }

    async fn move_object(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        options: &MoveOptions,
    ) -> Result<()> {
        let meta = self.head(from, key).await?;
        options.check_source(key, &meta)?;
        if options.no_overwrite && !self.conditional_writes.load(Ordering::Relaxed) {
            // The store ignores If-None-Match: check first. A writer racing this check can still win.
            match self.head(to, key).await {
                Ok(_) => return Err(Error::AlreadyExists { bucket: to.to_string(), key: key.to_string() }),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.copy(from, to, key, meta.size, options, meta.etag.as_deref()).await?;
        self.delete(from, key).await
    }

    async fn probe_conditional_writes(&self, bucket: &BucketName) -> Result<bool> {
        let probe = ObjectKey::parse(&format!(".draftstore-probe/{}", std::process::id()))
            .map_err(|e| Error::other("invalid probe key", e))?;
        let put = |key: &ObjectKey| {
            self.client.put_object().bucket(bucket.as_str()).key(key.as_str()).body(b"probe".to_vec().into()).send()
        };
        put(&probe).await.map_err(|e| sdk_error("PutObject", bucket, Some(&probe), e))?;
        let source = format!("{bucket}/{}", utf8_percent_encode(probe.as_str(), COPY_SOURCE));
        let copy = self
            .client
            .copy_object()
            .copy_source(&source)
            .bucket(bucket.as_str())
            .key(probe.as_str())
            .if_none_match("*")
            .metadata_directive(MetadataDirective::Replace)
            .send()
            .await;
        let honoured = match copy {
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => true,
            Ok(_) => false,
            Err(e) => {
                let _ = self.delete(bucket, &probe).await;
                return Err(sdk_error("CopyObject", bucket, Some(&probe), e));
            }
        };
        self.delete(bucket, &probe).await?;
        self.conditional_writes.store(honoured, Ordering::Relaxed);
        Ok(honoured)
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

    async fn delete_many(&self, bucket: &BucketName, keys: &[ObjectKey]) -> Result<Vec<DeleteFailure>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let objects = keys
            .iter()
            .map(|key| ObjectIdentifier::builder().key(key.as_str()).build())
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
        Ok(output
            .errors()
            .iter()
            .map(|error| DeleteFailure {
                key: error.key().unwrap_or_default().to_owned(),
                message: format!(
                    "{}: {}",
                    error.code().unwrap_or("unknown error"),
                    error.message().unwrap_or("no message")
                ),
            })
            .collect())
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
                last_modified: object
                    .last_modified()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            }),
            Err(_) => page.foreign_keys.push(raw.to_owned()),
        }
    }
    page
}

/// Puts an SDK error in the shared terms: missing things, refused credentials, an unreachable store, or other.
fn sdk_error<E>(
    operation: &str,
    bucket: &BucketName,
    key: Option<&ObjectKey>,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target = match key {
        Some(key) => format!("{bucket}/{key}"),
        None => bucket.to_string(),
    };
    let status = error.raw_response().map(|response| response.status().as_u16());
    // HEAD answers have no body, hence no code: the status stands in for it.
    let code = match (error.code(), status) {
        (Some(code), _) => code.to_owned(),
        (None, Some(status)) => format!("HTTP {status}"),
        (None, None) => String::new(),
    };
    let boxed = || -> Option<BoxError> { Some(Box::new(DisplayError(format!("{error:?}")))) };
    match &error {
        SdkError::TimeoutError(_) => Error::unavailable(format!("S3 {operation} on {target} timed out"), boxed()),
        SdkError::DispatchFailure(_) => {
            Error::unavailable(format!("S3 {operation} on {target}: cannot reach the store"), boxed())
        }
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => match (code.as_str(), status) {
            ("NoSuchBucket", _) => Error::BucketNotFound { bucket: bucket.to_string() },
            ("NoSuchKey" | "NotFound", _) | (_, Some(404)) => match key {
                Some(key) => Error::NotFound { bucket: bucket.to_string(), key: key.to_string() },
                None => Error::BucketNotFound { bucket: bucket.to_string() },
            },
            (
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "AllAccessDisabled",
                _,
            )
            | (_, Some(401 | 403)) => {
                Error::AccessDenied { message: format!("S3 {operation} on {target} answered {code}") }
            }
            ("PreconditionFailed", _) | (_, Some(412)) => Error::PreconditionFailed {
                message: format!("S3 {operation} on {target}: a precondition did not hold"),
            },
            (_, Some(500 | 502 | 503 | 504)) => Error::unavailable(
                format!("S3 {operation} on {target} answered {code} (store busy or failing)"),
                boxed(),
            ),
            _ => Error::Other { message: format!("S3 {operation} on {target} failed with {code}"), source: boxed() },
        },
        _ => Error::Other { message: format!("S3 {operation} on {target} failed"), source: boxed() },
    }
}

/// An SDK error flattened to its debug text, which holds the store's code, message and request id.
#[derive(Debug)]
struct DisplayError(String);

impl std::fmt::Display for DisplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DisplayError {}

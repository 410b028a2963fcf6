//! The S3 backend's [`StoreProbe`]: real presigned requests, signed as DraftStore signs its clients' URLs and sent
//! as a hostile client would send them, against throwaway keys under [`PROBE_PREFIX`] in the draft bucket; then
//! what the store holds is read back with the main credential. A request the store refuses, or accepts while
//! ignoring what was smuggled in, keeps the promise; one it carries out breaks it. The checks run concurrently.

mod doctor;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::types::{ChecksumAlgorithm, MetadataDirective};
use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};

use super::errors::sdk_error;
use super::signer::Signer;
use super::{COPY_SOURCE, REQUEST_CHECKSUMS, RESPONSE_CHECKSUMS, S3Storage};
use crate::probe::{Depth, Finding, Outcome, PROBE_PREFIX, ProbePlan, ProbeReport, Promise, StoreProbe};
use crate::storage::ESCAPE;
use crate::{
    BucketName, Checksum, Conditions, ContentType, Declared, Error, Method, ObjectKey, PresignRequest, PresignedUrl,
    Result,
};
use crate::{MultipartStore as _, ObjectStore as _};

/// The object every smuggled copy points at: no upload URL may ever copy it.
const SOURCE: &[u8] = b"draftstore probe: the source object, which no upload URL may copy";
/// What a hostile upload sends as its body (of another length than [`SOURCE`], so that a part tells them apart).
const BODY: &[u8] = b"draftstore probe: the signed upload";
/// Unsigned headers a hostile uploader adds, each with a value that shows when it was applied.
const SMUGGLED: [(&str, &str); 6] = [
    ("x-amz-meta-draftstore-probe", "smuggled"),
    ("x-amz-tagging", "draftstore-probe=smuggled"),
    ("x-amz-acl", "public-read"),
    ("x-amz-storage-class", "STANDARD_IA"),
    ("x-amz-server-side-encryption", "AES256"),
    ("x-amz-website-redirect-location", "/draftstore-probe"),
];
/// A skew of the store's clock beyond this is reported.
const SKEW: Duration = Duration::from_secs(60);

#[async_trait]
impl StoreProbe for S3Storage {
    async fn probe(&self, plan: &ProbePlan<'_>) -> Result<ProbeReport> {
        let started = Instant::now();
        let run = Run::new(self, plan)?;
        run.put_source().await?;
        let findings = run.check_all().await;
        // The probe's keys go whatever the checks found; a failed clean-up is logged, the cleaner removes the rest.
        if let Err(e) = run.clean_up().await {
            tracing::warn!(error = %e, prefix = %run.prefix, "the store probe could not remove all its keys");
        }
        Ok(ProbeReport::sorted(findings?, started.elapsed()))
    }
}

/// One probe: its throwaway keys, its HTTP client (a client's, not the SDK's), and the store's clock as it answered.
struct Run<'a> {
    store: &'a S3Storage,
    plan: &'a ProbePlan<'a>,
    draft: &'a BucketName,
    /// `.draftstore-probe/<random>/`.
    prefix: String,
    source: ObjectKey,
    http: reqwest::Client,
    /// The `Date` of the store's first answer, and when it came.
    store_date: std::sync::Mutex<Option<(String, SystemTime)>>,
}

/// What the store answered to a request.
struct Answer {
    status: u16,
    /// The error code of an S3 error body, when there is one.
    code: Option<String>,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `403 SignatureDoesNotMatch`.
    fn describe(&self) -> String {
        match &self.code {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A request as a hostile client sends it: a presigned URL with headers added, changed or a URL altered.
struct Hostile {
    url: String,
    method: Method,
    headers: Vec<(String, String)>,
}

impl Hostile {
    fn from(url: &PresignedUrl) -> Self {
        Self { url: url.url.clone(), method: url.method, headers: url.headers.clone() }
    }

    /// Sets a header, replacing one of the same name.
    fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// What became of a copy smuggled into an upload.
enum Smuggled {
    /// The store copied the source: the promise is broken.
    Copied(Answer),
    /// The store stored the signed body and ignored the header.
    Ignored(Answer),
    /// The store refused the request.
    Refused(Answer),
}

impl Smuggled {
    fn copied(&self) -> bool {
        matches!(self, Self::Copied(_))
    }

    fn describe(&self) -> String {
        match self {
            Self::Copied(answer) => format!("carried out as a copy ({})", answer.describe()),
            Self::Ignored(answer) => format!("stored the signed body, header ignored ({})", answer.describe()),
            Self::Refused(answer) => format!("refused ({})", answer.describe()),
        }
    }
}

/// Puts a finding of a check that could not tell in the report; an unreachable store stops the probe.
fn settle(promise: Promise, result: Result<Finding>) -> Result<Finding> {
    match result {
        Ok(finding) => Ok(finding),
        Err(e @ Error::Unavailable { .. }) => Err(e),
        Err(e) => Ok(Finding::new(promise, Outcome::Unknown, format!("the check failed: {e}"))),
    }
}

fn text_plain() -> ContentType {
    ContentType::parse("text/plain").expect("a valid content type")
}

/// The status of the store's answer behind an SDK error, when there was one.
fn status<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    error.raw_response().map(|response| response.status().as_u16())
}

/// Whether an SDK error is the store refusing the credential (403), not a failure that says nothing of rights.
fn denied<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    status(error) == Some(403)
}

impl<'a> Run<'a> {
    fn new(store: &'a S3Storage, plan: &'a ProbePlan<'a>) -> Result<Self> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| Error::other("no randomness for the probe's keys", e))?;
        let prefix = format!("{PROBE_PREFIX}{}/", hex::encode(random));
        let source = ObjectKey::parse(&format!("{prefix}source")).map_err(|e| Error::other("probe key", e))?;
        let http = reqwest::Client::builder()
            .timeout(store.timeout)
            .connect_timeout(store.timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|e| Error::other("cannot build the probe's HTTP client", e))?;
        Ok(Self { store, plan, draft: plan.draft, prefix, source, http, store_date: std::sync::Mutex::new(None) })
    }

    fn key(&self, name: &str) -> Result<ObjectKey> {
        ObjectKey::parse(&format!("{}{name}", self.prefix)).map_err(|e| Error::other("probe key", e))
    }

    fn request<'r>(&'r self, method: Method, key: &'r ObjectKey, conditions: &'r Conditions) -> PresignRequest<'r> {
        PresignRequest {
            method,
            bucket: self.draft,
            key,
            now: time::OffsetDateTime::now_utc(),
            expires_in: Duration::from_secs(300),
            conditions,
        }
    }

    /// `x-amz-copy-source` naming the source object.
    fn source_header(&self) -> String {
        format!("/{}/{}", self.draft, utf8_percent_encode(self.source.as_str(), COPY_SOURCE))
    }

    async fn put_source(&self) -> Result<()> {
        self.store
            .client
            .put_object()
            .bucket(self.draft.as_str())
            .key(self.source.as_str())
            .content_type("text/plain")
            .body(SOURCE.to_vec().into())
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutObject", self.draft, Some(&self.source), e))
    }

    /// Sends a request as a client does (reqwest, not the SDK), recording the store's `Date`.
    async fn send(&self, request: Hostile, body: Option<Vec<u8>>) -> Result<Answer> {
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
            .map_err(|e| Error::other("probe request method", e))?;
        let mut builder = self.http.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let unreachable = |e: reqwest::Error| {
            Error::unavailable(
                "the store probe cannot reach the store at the address of its signed URLs (PRESIGN_ENDPOINT, or the \
                 endpoint)",
                Some(Box::new(e)),
            )
        };
        let response = builder.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(date) = headers.get("date").and_then(|d| d.to_str().ok()) {
            let mut seen = self.store_date.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.get_or_insert_with(|| (date.to_owned(), SystemTime::now()));
        }
        let body = response.bytes().await.map_err(unreachable)?;
        let text = String::from_utf8_lossy(&body);
        let code =
            text.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map(|(code, _)| code.to_owned());
        Ok(Answer { status, code, headers })
    }

    /// The object's bytes, read with the main credential; `None` when it does not exist.
    async fn read(&self, key: &ObjectKey) -> Result<Option<bytes::Bytes>> {
        match self.store.get_record(self.draft, key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn check_all(&self) -> Result<Vec<Finding>> {
        if self.plan.depth == Depth::ConditionalWrites {
            return Ok(vec![settle(Promise::ConditionalWrites, self.conditional_writes().await)?]);
        }
        let (copy, part, headers, checksum, length, content_type, binding) = tokio::join!(
            self.copy_source(),
            self.part_copy_source(),
            self.unsigned_headers(),
            self.checksum(),
            self.content_length(),
            self.content_type(),
            self.url_binding(),
        );
        let (upload, download, conditional, if_match, disposition, overrides) = tokio::join!(
            self.upload_credential(),
            self.download_credential(),
            self.conditional_writes(),
            self.copy_if_match(),
            self.content_disposition(),
            self.download_overrides(),
        );
        let mut findings = vec![
            settle(Promise::CopySource, copy)?,
            settle(Promise::PartCopySource, part)?,
            settle(Promise::UnsignedHeaders, headers)?,
            settle(Promise::Checksum, checksum)?,
            settle(Promise::ContentLength, length)?,
            settle(Promise::ContentType, content_type)?,
            settle(Promise::UrlBinding, binding)?,
            settle(Promise::UploadCredential, upload)?,
            settle(Promise::DownloadCredential, download)?,
            settle(Promise::ConditionalWrites, conditional)?,
            settle(Promise::CopyIfMatch, if_match)?,
            settle(Promise::ContentDisposition, disposition)?,
            settle(Promise::DownloadOverrides, overrides)?,
        ];
        if self.plan.depth == Depth::Doctor {
            let (main, cors, lifecycle, checksums) =
                tokio::join!(self.main_credential(), self.cors(), self.lifecycle(), self.checksums());
            findings.push(settle(Promise::MainCredential, main)?);
            findings.push(settle(Promise::Cors, cors)?);
            findings.push(settle(Promise::Lifecycle, lifecycle)?);
            findings.push(settle(Promise::Checksums, checksums)?);
        }
        // Last: by now every check has had an answer from the store, with its Date.
        findings.push(self.clock_skew());
        Ok(findings)
    }

    /// Sends an upload to `name` carrying an unsigned `x-amz-copy-source`, signed by `signer`, and reads back what
    /// the store made of it.
    async fn smuggle_copy(&self, name: &str, signer: &Signer) -> Result<Smuggled> {
        let key = self.key(name)?;
        let conditions = Conditions { content_type: Some(text_plain()), ..Conditions::default() };
        let url = signer.sign(&self.request(Method::Put, &key, &conditions)).await?;
        let hostile = Hostile::from(&url).with("x-amz-copy-source", &self.source_header());
        let answer = self.send(hostile, Some(BODY.to_vec())).await?;
        Ok(match self.read(&key).await? {
            Some(stored) if stored.as_ref() == SOURCE => Smuggled::Copied(answer),
            Some(_) => Smuggled::Ignored(answer),
            None => Smuggled::Refused(answer),
        })
    }

    /// The same with a part URL: the part the store kept, if any, tells a copy (the source's size) from the body.
    async fn smuggle_part_copy(&self, name: &str, signer: &Signer) -> Result<Smuggled> {
        let key = self.key(name)?;
        let id = self.store.create_multipart(self.draft, &key, &text_plain(), &Declared::default(), None).await?;
        let conditions = Conditions::default();
        let smuggled = async {
            let url = signer.sign_part(&self.request(Method::Put, &key, &conditions), &id, 1).await?;
            let hostile = Hostile::from(&url).with("x-amz-copy-source", &self.source_header());
            let answer = self.send(hostile, Some(BODY.to_vec())).await?;
            let parts = self.store.list_parts(self.draft, &key, &id).await?;
            Ok(match parts.iter().find(|part| part.number == 1) {
                Some(part) if part.size == SOURCE.len() as u64 => Smuggled::Copied(answer),
                Some(_) => Smuggled::Ignored(answer),
                None => Smuggled::Refused(answer),
            })
        }
        .await;
        let _ = self.store.abort_multipart(self.draft, &key, &id).await;
        smuggled
    }

    async fn copy_source(&self) -> Result<Finding> {
        let main = self.smuggle_copy("copy", &self.store.signer).await?;
        self.judge_copy(Promise::CopySource, main, |signer| self.smuggle_copy("copy-split", signer)).await
    }

    async fn part_copy_source(&self) -> Result<Finding> {
        let main = self.smuggle_part_copy("part-copy", &self.store.signer).await?;
        self.judge_copy(Promise::PartCopySource, main, |signer| self.smuggle_part_copy("part-copy-split", signer)).await
    }

    /// A smuggled copy signed by the main credential says what the store does; with an upload credential of its
    /// own, the same signed by it says whether DraftStore's URLs are safe all the same.
    async fn judge_copy<'s, F>(
        &'s self,
        promise: Promise,
        main: Smuggled,
        again: impl FnOnce(&'s Signer) -> F,
    ) -> Result<Finding>
    where
        F: Future<Output = Result<Smuggled>>,
    {
        let Some(upload) = &self.store.upload else {
            let outcome = if main.copied() { Outcome::Broken } else { Outcome::Held };
            return Ok(Finding::new(promise, outcome, main.describe()));
        };
        let split = again(&upload.signer).await?;
        let (main_did, split_did) = (main.describe(), split.describe());
        let detail = format!("signed by the main credential: {main_did}; by the upload credential: {split_did}");
        let outcome = match (main.copied(), split.copied()) {
            (_, true) => Outcome::Broken,
            (true, false) => Outcome::Neutralised,
            (false, false) => Outcome::Held,
        };
        Ok(Finding::new(promise, outcome, detail))
    }

    async fn unsigned_headers(&self) -> Result<Finding> {
        let conditions = Conditions { content_type: Some(text_plain()), ..Conditions::default() };
        let signer = self.store.signer_for(Method::Put);
        let tries = SMUGGLED.iter().enumerate().map(|(i, (name, value))| {
            let conditions = &conditions;
            async move {
                let key = self.key(&format!("header-{i}"))?;
                let url = signer.sign(&self.request(Method::Put, &key, conditions)).await?;
                let answer = self.send(Hostile::from(&url).with(name, value), Some(BODY.to_vec())).await?;
                let applied = answer.succeeded() && self.applied(name, value, &key, &url).await?;
                Ok::<_, Error>((*name, answer, applied))
            }
        });
        let answers = futures_util::future::try_join_all(tries).await?;
        let applied: Vec<_> = answers.iter().filter(|(_, _, applied)| *applied).map(|(name, ..)| *name).collect();
        let ignored: Vec<_> = answers
            .iter()
            .filter(|(_, answer, applied)| answer.succeeded() && !applied)
            .map(|(name, ..)| *name)
            .collect();
        let refused: Vec<_> = answers.iter().filter(|(_, answer, _)| !answer.succeeded()).collect();
        let mut detail = String::new();
        if !applied.is_empty() {
            detail.push_str(&format!("applied unsigned {}; ", applied.join(", ")));
        }
        if !ignored.is_empty() {
            detail.push_str(&format!("accepted and ignored {}; ", ignored.join(", ")));
        }
        if let Some((_, answer, _)) = refused.first() {
            detail.push_str(&format!("refused {} of {} ({})", refused.len(), SMUGGLED.len(), answer.describe()));
        }
        let outcome = if applied.is_empty() { Outcome::Held } else { Outcome::Broken };
        Ok(Finding::new(Promise::UnsignedHeaders, outcome, detail.trim_end_matches("; ").to_owned()))
    }

    /// Whether the store applied the unsigned header `name: value` to the object it stored under `key`.
    async fn applied(&self, name: &str, value: &str, key: &ObjectKey, url: &PresignedUrl) -> Result<bool> {
        let client = &self.store.client;
        let sdk = |e| sdk_error("probe read-back", self.draft, Some(key), e);
        if name == "x-amz-tagging" {
            let tags = client.get_object_tagging().bucket(self.draft.as_str()).key(key.as_str()).send().await;
            return Ok(tags.map_err(sdk)?.tag_set().iter().any(|tag| tag.key() == "draftstore-probe"));
        }
        if name == "x-amz-acl" {
            // Public read is what the header asked for: an anonymous GET of the object answers it.
            let bare = url.url.split('?').next().unwrap_or_default().to_owned();
            let hostile = Hostile { url: bare, method: Method::Get, headers: Vec::new() };
            return Ok(self.send(hostile, None).await?.succeeded());
        }
        let head = client.head_object().bucket(self.draft.as_str()).key(key.as_str()).send().await;
        let head = head.map_err(|e| sdk_error("HeadObject", self.draft, Some(key), e))?;
        Ok(match name {
            "x-amz-storage-class" => head.storage_class().is_some_and(|class| class.as_str() == value),
            "x-amz-server-side-encryption" => head.server_side_encryption().is_some(),
            "x-amz-website-redirect-location" => head.website_redirect_location() == Some(value),
            _ => head.metadata().is_some_and(|metadata| metadata.contains_key("draftstore-probe")),
        })
    }

    /// Sends `body` to an upload URL signed with `conditions` after `tamper` changed the request; broken when the
    /// store accepted it.
    async fn refused(
        &self,
        promise: Promise,
        name: &str,
        conditions: Conditions,
        body: &[u8],
        tamper: impl FnOnce(Hostile) -> Hostile,
    ) -> Result<Finding> {
        let key = self.key(name)?;
        let url = self.store.signer_for(Method::Put).sign(&self.request(Method::Put, &key, &conditions)).await?;
        let answer = self.send(tamper(Hostile::from(&url)), Some(body.to_vec())).await?;
        let stored = self.read(&key).await?.is_some();
        Ok(match (answer.succeeded(), stored) {
            (false, false) => Finding::new(promise, Outcome::Held, format!("refused ({})", answer.describe())),
            (true, true) => {
                Finding::new(promise, Outcome::Broken, format!("accepted and stored ({})", answer.describe()))
            }
            (accepted, stored) => Finding::new(
                promise,
                if stored { Outcome::Broken } else { Outcome::Held },
                format!(
                    "answered {} and {}",
                    answer.describe(),
                    if accepted && !stored { "stored nothing" } else { "stored it" }
                ),
            ),
        })
    }

    async fn checksum(&self) -> Result<Finding> {
        let declared = b"draftstore probe: the declared bytes";
        let sent = b"draftstore probe: some other bytes!!";
        debug_assert_eq!(declared.len(), sent.len());
        let conditions = Conditions {
            content_length: Some(declared.len() as u64),
            checksum_sha256: Some(Checksum::from_digest(&Sha256::digest(declared).into())),
            ..Conditions::default()
        };
        self.refused(Promise::Checksum, "checksum", conditions, sent, |hostile| hostile).await
    }

    async fn content_length(&self) -> Result<Finding> {
        let conditions = Conditions { content_length: Some(BODY.len() as u64), ..Conditions::default() };
        let longer = [BODY, b" and more"].concat();
        let length = longer.len().to_string();
        self.refused(Promise::ContentLength, "length", conditions, &longer, |hostile| {
            hostile.with("Content-Length", &length)
        })
        .await
    }

    async fn content_type(&self) -> Result<Finding> {
        let conditions = Conditions { content_type: Some(text_plain()), ..Conditions::default() };
        self.refused(Promise::ContentType, "type", conditions, BODY, |hostile| {
            hostile.with("Content-Type", "text/html")
        })
        .await
    }

    async fn url_binding(&self) -> Result<Finding> {
        let (signed, other) = (self.key("bound")?, self.key("unbound")?);
        let url = self
            .store
            .signer_for(Method::Put)
            .sign(&self.request(Method::Put, &signed, &Conditions::default()))
            .await?;
        let mut hostile = Hostile::from(&url);
        hostile.url = hostile.url.replacen("/bound?", "/unbound?", 1);
        let answer = self.send(hostile, Some(BODY.to_vec())).await?;
        Ok(match self.read(&other).await? {
            Some(_) => {
                Finding::new(Promise::UrlBinding, Outcome::Broken, format!("wrote another key ({})", answer.describe()))
            }
            None => Finding::new(Promise::UrlBinding, Outcome::Held, format!("refused ({})", answer.describe())),
        })
    }

    async fn upload_credential(&self) -> Result<Finding> {
        let Some(upload) = &self.store.upload else {
            return Ok(Finding::new(
                Promise::UploadCredential,
                Outcome::NotApplicable,
                "no UPLOAD_SIGNING_ACCESS_KEY_ID: upload URLs are signed by the main credential",
            ));
        };
        let client = &upload.client;
        let (draft, main) = (self.draft.as_str(), self.plan.main.as_str());
        let (put_key, copy_key, absent) = (self.key("upload-put")?, self.key("upload-copy")?, self.key("absent")?);
        let (put, read, copy, read_main) = tokio::join!(
            client.put_object().bucket(draft).key(put_key.as_str()).body(BODY.to_vec().into()).send(),
            client.get_object().bucket(draft).key(self.source.as_str()).send(),
            client
                .copy_object()
                .copy_source(self.source_header().trim_start_matches('/'))
                .bucket(draft)
                .key(copy_key.as_str())
                .send(),
            client.head_object().bucket(main).key(absent.as_str()).send(),
        );
        let mut wrong = Vec::new();
        if let Err(e) = &put {
            wrong.push(format!(
                "cannot upload to the draft bucket ({})",
                status(e).map_or_else(|| e.to_string(), |s| s.to_string())
            ));
        }
        if read.as_ref().map_or_else(|e| !denied(e), |_| true) {
            wrong.push("can read the draft bucket".to_owned());
        }
        if copy.as_ref().map_or_else(|e| !denied(e), |_| true) {
            wrong.push("can copy".to_owned());
        }
        if read_main.as_ref().map_or_else(|e| !denied(e), |_| true) {
            wrong.push("can read the main bucket".to_owned());
        }
        Ok(match wrong.is_empty() {
            true => Finding::new(
                Promise::UploadCredential,
                Outcome::Held,
                "uploads to the draft bucket; reading either bucket and copying are refused (403)",
            ),
            false => Finding::new(Promise::UploadCredential, Outcome::Broken, wrong.join("; ")),
        })
    }

    async fn download_credential(&self) -> Result<Finding> {
        let Some(download) = &self.store.download else {
            return Ok(Finding::new(
                Promise::DownloadCredential,
                Outcome::NotApplicable,
                "no DOWNLOAD_SIGNING_ACCESS_KEY_ID: download URLs are signed by the main credential",
            ));
        };
        let client = &download.client;
        let draft = self.draft.as_str();
        let (put_key, absent) = (self.key("download-put")?, self.key("absent")?);
        let (read, put, delete) = tokio::join!(
            client.get_object().bucket(draft).key(self.source.as_str()).send(),
            client.put_object().bucket(draft).key(put_key.as_str()).body(BODY.to_vec().into()).send(),
            client.delete_object().bucket(draft).key(absent.as_str()).send(),
        );
        let mut wrong = Vec::new();
        if let Err(e) = &read {
            wrong.push(format!(
                "cannot read the draft bucket ({})",
                status(e).map_or_else(|| e.to_string(), |s| s.to_string())
            ));
        }
        if put.as_ref().map_or_else(|e| !denied(e), |_| true) {
            wrong.push("can write the draft bucket".to_owned());
        }
        if delete.as_ref().map_or_else(|e| !denied(e), |_| true) {
            wrong.push("can delete in the draft bucket".to_owned());
        }
        Ok(match wrong.is_empty() {
            true => Finding::new(
                Promise::DownloadCredential,
                Outcome::Held,
                "reads the draft bucket; writing and deleting are refused (403)",
            ),
            false => Finding::new(Promise::DownloadCredential, Outcome::Broken, wrong.join("; ")),
        })
    }

    /// `If-None-Match: *` on a copy onto an object that exists: 412 where honoured. What the store does is what
    /// moves without overwrite then rely on, unless S3_CONDITIONAL_WRITES says otherwise.
    async fn conditional_writes(&self) -> Result<Finding> {
        let copy = self
            .store
            .client
            .copy_object()
            .copy_source(self.source_header().trim_start_matches('/'))
            .bucket(self.draft.as_str())
            .key(self.source.as_str())
            .if_none_match("*")
            .metadata_directive(MetadataDirective::Replace)
            .content_type("text/plain")
            .send()
            .await;
        let honoured = match copy {
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => true,
            Ok(_) => false,
            Err(e) => return Err(sdk_error("CopyObject", self.draft, Some(&self.source), e)),
        };
        if !self.store.conditional_writes_configured {
            self.store.conditional_writes.store(honoured, std::sync::atomic::Ordering::Relaxed);
        }
        let deletes = self.conditional_deletes().await?;
        let configured = match (
            self.store.conditional_writes_configured,
            self.store.conditional_writes.load(std::sync::atomic::Ordering::Relaxed),
        ) {
            (false, _) => "",
            (true, true) => "; S3_CONDITIONAL_WRITES=true says to rely on them",
            (true, false) => "; S3_CONDITIONAL_WRITES=false says not to rely on them",
        };
        Ok(match honoured {
            true => Finding::new(
                Promise::ConditionalWrites,
                Outcome::Held,
                format!("a copy onto an existing key was refused (412){configured}; {deletes}"),
            ),
            false => Finding::new(
                Promise::ConditionalWrites,
                Outcome::Broken,
                format!("a copy onto an existing key succeeded{configured}; {deletes}"),
            ),
        })
    }

    /// A delete with `If-Match` naming another version, on an object of its own: honoured where the object stays
    /// (412). Deletes bound to a version rely on it where the store honours it, and otherwise look the object up
    /// first. Says what it found.
    async fn conditional_deletes(&self) -> Result<&'static str> {
        let key = self.key("conditional-delete")?;
        let client = &self.store.client;
        let put = client.put_object().bucket(self.draft.as_str()).key(key.as_str()).body(SOURCE.to_vec().into());
        put.send().await.map_err(|e| sdk_error("PutObject", self.draft, Some(&key), e))?;
        let delete = client.delete_object().bucket(self.draft.as_str()).key(key.as_str()).if_match("\"not-it\"");
        let honoured = match delete.send().await {
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => self.read(&key).await?.is_some(),
            // Deleted regardless, or refused as not understood (`NotImplemented`, a 400): not honoured.
            Ok(_) | Err(SdkError::ServiceError(_)) => false,
            Err(e) => return Err(sdk_error("DeleteObject", self.draft, Some(&key), e)),
        };
        let _ = self.store.delete(self.draft, &key).await;
        if !self.store.conditional_writes_configured {
            self.store.conditional_deletes.store(honoured, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(match honoured {
            true => "a delete naming another version was refused (412)",
            false => {
                tracing::warn!(
                    "the store ignores conditional deletes (If-Match): a delete bound to a version looks the object \
                     up first, and a write landing between the two is deleted"
                );
                "a delete naming another version was not refused: deletes bound to a version look up first"
            }
        })
    }

    async fn copy_if_match(&self) -> Result<Finding> {
        let target = self.key("if-match")?;
        let copy = self
            .store
            .client
            .copy_object()
            .copy_source(self.source_header().trim_start_matches('/'))
            .copy_source_if_match("\"00000000000000000000000000000000\"")
            .bucket(self.draft.as_str())
            .key(target.as_str())
            .send()
            .await;
        Ok(match copy {
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => {
                Finding::new(Promise::CopyIfMatch, Outcome::Held, "a copy of another version was refused (412)")
            }
            Ok(_) => Finding::new(Promise::CopyIfMatch, Outcome::Broken, "a copy of another version succeeded"),
            Err(e) => return Err(sdk_error("CopyObject", self.draft, Some(&target), e)),
        })
    }

    async fn content_disposition(&self) -> Result<Finding> {
        let disposition = "attachment; filename=\"probe.txt\"";
        let conditions = Conditions { disposition: Some(disposition.to_owned()), ..Conditions::default() };
        let url =
            self.store.signer_for(Method::Get).sign(&self.request(Method::Get, &self.source, &conditions)).await?;
        let answer = self.send(Hostile::from(&url), None).await?;
        let served = answer.header("content-disposition").map(str::to_owned);
        Ok(match (answer.succeeded(), served) {
            (true, Some(served)) if served == disposition => {
                Finding::new(Promise::ContentDisposition, Outcome::Held, format!("served `{served}`"))
            }
            (true, served) => Finding::new(
                Promise::ContentDisposition,
                Outcome::Broken,
                format!(
                    "served `{}` for a signed `{disposition}`",
                    served.as_deref().unwrap_or("no Content-Disposition")
                ),
            ),
            (false, _) => Finding::new(
                Promise::ContentDisposition,
                Outcome::Unknown,
                format!("the download was refused ({})", answer.describe()),
            ),
        })
    }

    /// A download URL signed as an attachment, turned inline; a plain one given an unsigned HTML type.
    async fn download_overrides(&self) -> Result<Finding> {
        let signer = self.store.signer_for(Method::Get);
        let attachment = "attachment";
        let conditions = Conditions { disposition: Some(attachment.to_owned()), ..Conditions::default() };
        let url = signer.sign(&self.request(Method::Get, &self.source, &conditions)).await?;
        let mut inline = Hostile::from(&url);
        let signed = format!("response-content-disposition={}", utf8_percent_encode(attachment, ESCAPE));
        inline.url = inline.url.replacen(&signed, "response-content-disposition=inline", 1);
        let plain = signer.sign(&self.request(Method::Get, &self.source, &Conditions::default())).await?;
        let mut html = Hostile::from(&plain);
        html.url.push_str("&response-content-type=text%2Fhtml");
        let (inline, html) = tokio::join!(self.send(inline, None), self.send(html, None));
        let (inline, html) = (inline?, html?);
        let inline_served = inline.succeeded() && inline.header("content-disposition") == Some("inline");
        let html_served = html.succeeded() && html.header("content-type").is_some_and(|t| t.starts_with("text/html"));
        let describe = |answer: &Answer, served: bool| match (answer.succeeded(), served) {
            (true, true) => format!("served ({})", answer.describe()),
            (true, false) => format!("ignored ({})", answer.describe()),
            (false, _) => format!("refused ({})", answer.describe()),
        };
        let detail = format!(
            "attachment turned inline: {}; unsigned response-content-type=text/html: {}",
            describe(&inline, inline_served),
            describe(&html, html_served)
        );
        let outcome = if inline_served || html_served { Outcome::Broken } else { Outcome::Held };
        Ok(Finding::new(Promise::DownloadOverrides, outcome, detail))
    }

    /// The store's `Date` against the clock when it came.
    fn clock_skew(&self) -> Finding {
        let seen = self.store_date.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some((date, at)) = seen else {
            return Finding::new(Promise::ClockSkew, Outcome::Unknown, "the store's answers carried no Date");
        };
        let parsed = aws_smithy_types::DateTime::from_str(&date, aws_smithy_types::date_time::Format::HttpDate);
        let (Ok(store), Ok(ours)) = (parsed, at.duration_since(UNIX_EPOCH)) else {
            return Finding::new(
                Promise::ClockSkew,
                Outcome::Unknown,
                format!("the store's Date `{date}` is unreadable"),
            );
        };
        // The Date has whole seconds: a skew below a second is none.
        let skew = store.secs() - i64::try_from(ours.as_secs()).unwrap_or(i64::MAX);
        let said = match skew {
            0 => "the store's clock agrees with DraftStore's".to_owned(),
            s if s > 0 => format!("the store's clock is {s} s ahead of DraftStore's"),
            s => format!("the store's clock is {} s behind DraftStore's", -s),
        };
        match skew.unsigned_abs() > SKEW.as_secs() {
            true => Finding::new(Promise::ClockSkew, Outcome::Broken, said),
            false => Finding::new(Promise::ClockSkew, Outcome::Held, said),
        }
    }

    /// Removes every key under the probe's prefix.
    async fn clean_up(&self) -> Result<()> {
        let mut token: Option<String> = None;
        loop {
            let page = self.store.list_prefix(self.draft, &self.prefix, token.as_deref(), 1000).await?;
            let keys: Vec<_> = page.objects.into_iter().map(|object| object.key).collect();
            let failed = self.store.delete_many(self.draft, &keys).await?;
            if let Some(failure) = failed.first() {
                return Err(Error::Other { message: format!("{}: {}", failure.key, failure.message), source: None });
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }
}

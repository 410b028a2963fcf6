//! The local backend's [`StoreProbe`]. Here DraftStore is the store: it answers from its own code, by running
//! each hostile request through the same signature check its signed URLs go through ([`LocalStorage::verify`]),
//! and each write through the same write path, in the draft bucket under [`PROBE_PREFIX`]. No HTTP: the routes
//! that call these functions are DraftStore's, and the hostile-client tests send them the same requests.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{CONTENT_DISPOSITION_PARAM, LocalStorage, SignatureError, WriteChecks};
use crate::probe::{Depth, Finding, Outcome, PROBE_PREFIX, ProbePlan, ProbeReport, Promise, StoreProbe};
use crate::{
    BucketName, Checksum, Conditions, ContentType, Error, Method, MoveOptions, ObjectKey, PresignRequest, PresignedUrl,
    Progress, Result, UploadId,
};
use crate::{MultipartStore as _, ObjectStore as _, Signer as _};

/// The unsigned headers a hostile uploader adds (the same the S3 probe sends).
const SMUGGLED: [(&str, &str); 7] = [
    ("x-amz-copy-source", "/main/someone-else"),
    ("x-amz-meta-draftstore-length", "1"),
    ("x-amz-tagging", "draftstore-probe=smuggled"),
    ("x-amz-acl", "public-read"),
    ("x-amz-storage-class", "STANDARD_IA"),
    ("x-amz-server-side-encryption", "AES256"),
    ("x-amz-website-redirect-location", "/draftstore-probe"),
];

#[async_trait]
impl StoreProbe for LocalStorage {
    async fn probe(&self, plan: &ProbePlan<'_>) -> Result<ProbeReport> {
        let started = Instant::now();
        self.require_bucket(plan.draft).await?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| Error::other("no randomness for the probe's keys", e))?;
        let run = Run { store: self, draft: plan.draft, prefix: format!("{PROBE_PREFIX}{}/", hex::encode(random)) };
        let findings = run.check_all(plan).await;
        let cleaned = run.clean_up().await;
        let findings = findings?;
        cleaned?;
        Ok(ProbeReport::sorted(findings, started.elapsed()))
    }
}

/// A request to a signed URL as DraftStore's routes hand it to [`LocalStorage::verify`].
struct Request {
    method: Method,
    key: ObjectKey,
    query: String,
    /// Lowercase names.
    headers: Vec<(String, String)>,
}

impl Request {
    fn from(url: &PresignedUrl, key: &ObjectKey) -> Self {
        let query = url.url.split_once('?').map(|(_, query)| query.to_owned()).unwrap_or_default();
        let headers = url.headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone())).collect();
        Self { method: url.method, key: key.clone(), query, headers }
    }

    /// Sets a header, replacing one of the same name.
    fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(existing, _)| existing != name);
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

struct Run<'a> {
    store: &'a LocalStorage,
    draft: &'a BucketName,
    prefix: String,
}

fn text_plain() -> ContentType {
    ContentType::parse("text/plain").expect("a valid content type")
}

fn held(promise: Promise, detail: impl Into<String>) -> Finding {
    Finding::new(promise, Outcome::Held, detail)
}

fn not_applicable(promise: Promise, detail: &str) -> Finding {
    Finding::new(promise, Outcome::NotApplicable, detail)
}

impl Run<'_> {
    fn key(&self, name: &str) -> Result<ObjectKey> {
        ObjectKey::parse(&format!("{}{name}", self.prefix)).map_err(|e| Error::other("probe key", e))
    }

    async fn sign(&self, method: Method, key: &ObjectKey, conditions: &Conditions) -> Result<PresignedUrl> {
        self.store.presign(&self.request(method, key, conditions)).await
    }

    fn request<'r>(&'r self, method: Method, key: &'r ObjectKey, conditions: &'r Conditions) -> PresignRequest<'r> {
        PresignRequest {
            method,
            bucket: self.draft,
            key,
            now: OffsetDateTime::now_utc(),
            expires_in: Duration::from_secs(300),
            conditions,
        }
    }

    /// What the signature check says of `request`.
    fn verify(&self, request: &Request) -> std::result::Result<Vec<(String, String)>, SignatureError> {
        let header = |name: &str| request.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let names = request.headers.iter().map(|(name, _)| name.as_str());
        self.store.verify(
            request.method,
            self.draft,
            &request.key,
            &request.query,
            header,
            names,
            OffsetDateTime::now_utc(),
        )
    }

    /// Held when the signature check refuses the tampered request, broken when it lets it through.
    fn refused(&self, promise: Promise, request: &Request) -> Finding {
        match self.verify(request) {
            Err(e) => held(promise, format!("refused by the signature check: {e}")),
            Ok(_) => Finding::new(promise, Outcome::Broken, "the signature check let the request through"),
        }
    }

    async fn check_all(&self, plan: &ProbePlan<'_>) -> Result<Vec<Finding>> {
        let conditional = self.conditional_writes().await?;
        if plan.depth == Depth::ConditionalWrites {
            return Ok(vec![conditional]);
        }
        let typed = Conditions { content_type: Some(text_plain()), ..Conditions::default() };
        let upload_key = self.key("upload")?;
        let upload = self.sign(Method::Put, &upload_key, &typed).await?;
        let smuggle = |name: &str, value: &str| Request::from(&upload, &upload_key).with(name, value);

        let part_key = self.key("part")?;
        let id = UploadId::parse("draftstore-probe").map_err(|e| Error::other("probe upload id", e))?;
        let none = Conditions::default();
        let part = self.store.presign_part(&self.request(Method::Put, &part_key, &none), &id, 1).await?;
        let part = Request::from(&part, &part_key).with("x-amz-copy-source", SMUGGLED[0].1);

        let unsigned: Vec<_> = SMUGGLED[1..]
            .iter()
            .filter(|(name, value)| self.verify(&smuggle(name, value)).is_ok())
            .map(|(name, _)| *name)
            .collect();
        let unsigned = match unsigned.is_empty() {
            true => held(
                Promise::UnsignedHeaders,
                format!("the signature check refuses every unsigned x-amz-* header but {}", crate::CHECKSUM_HEADER),
            ),
            false => {
                Finding::new(Promise::UnsignedHeaders, Outcome::Broken, format!("let through {}", unsigned.join(", ")))
            }
        };

        let length = Conditions { content_length: Some(8), ..Conditions::default() };
        let length = Request::from(&self.sign(Method::Put, &upload_key, &length).await?, &upload_key)
            .with("content-length", "16");
        let mut binding = Request::from(&upload, &upload_key);
        binding.key = self.key("unbound")?;

        let mut findings = vec![
            self.refused(Promise::CopySource, &smuggle(SMUGGLED[0].0, SMUGGLED[0].1)),
            self.refused(Promise::PartCopySource, &part),
            unsigned,
            self.checksum().await?,
            self.refused(Promise::ContentLength, &length),
            self.refused(Promise::ContentType, &smuggle("content-type", "text/html")),
            self.refused(Promise::UrlBinding, &binding),
            not_applicable(
                Promise::UploadCredential,
                "the local backend signs its URLs with SIGNING_KEY and serves them",
            ),
            not_applicable(
                Promise::DownloadCredential,
                "the local backend signs its URLs with SIGNING_KEY and serves them",
            ),
            conditional,
            self.copy_if_match().await?,
            self.content_disposition().await?,
            self.download_overrides().await?,
            not_applicable(Promise::ClockSkew, "the local backend's clock is DraftStore's"),
        ];
        if plan.depth == Depth::Doctor {
            findings
                .push(held(Promise::MainCredential, format!("the data folder's {} bucket is writable", self.draft)));
            findings.push(not_applicable(
                Promise::Cors,
                "the local backend's URLs are DraftStore's routes, under its own CORS",
            ));
            findings.push(not_applicable(
                Promise::Lifecycle,
                "the local backend has no lifecycle rules: the cleaner removes drafts",
            ));
            findings.push(not_applicable(Promise::Checksums, "the local backend is reached without an S3 client"));
        }
        Ok(findings)
    }

    /// A body that differs from its checksum, through the write path every upload takes.
    async fn checksum(&self) -> Result<Finding> {
        let key = self.key("checksum")?;
        let declared = b"draftstore probe: the declared bytes";
        let checks = WriteChecks {
            sha256: Some(Checksum::from_digest(&Sha256::digest(declared).into())),
            ..WriteChecks::default()
        };
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"other bytes"))]);
        Ok(match self.store.write_object(self.draft, &key, text_plain(), &checks, body).await {
            Err(Error::ChecksumMismatch) if self.store.head(self.draft, &key).await.is_err() => {
                held(Promise::Checksum, "the write path refused the body and stored nothing")
            }
            Err(Error::ChecksumMismatch) => Finding::new(Promise::Checksum, Outcome::Broken, "refused, yet stored"),
            Ok(_) => Finding::new(Promise::Checksum, Outcome::Broken, "the write path stored a body that differs"),
            Err(e) => return Err(e),
        })
    }

    /// Two probe objects, written whole: the first moved onto the second without overwrite.
    async fn conditional_writes(&self) -> Result<Finding> {
        let (first, second) = (self.key("first")?, self.key("second")?);
        self.write(&first).await?;
        self.write(&second).await?;
        let options =
            MoveOptions { no_overwrite: true, keep_source: true, to_key: Some(second), ..MoveOptions::default() };
        Ok(match self.store.move_object(self.draft, self.draft, &first, &options, &Progress::default()).await {
            Err(Error::AlreadyExists { .. }) => held(
                Promise::ConditionalWrites,
                "a move without overwrite onto an existing key was refused (a hard link fails when the target exists)",
            ),
            Ok(()) => {
                Finding::new(Promise::ConditionalWrites, Outcome::Broken, "a move without overwrite replaced an object")
            }
            Err(e) => return Err(e),
        })
    }

    async fn copy_if_match(&self) -> Result<Finding> {
        let (source, target) = (self.key("first")?, self.key("if-match")?);
        let options = MoveOptions {
            if_match: Some("\"another version\"".to_owned()),
            keep_source: true,
            to_key: Some(target),
            ..MoveOptions::default()
        };
        Ok(match self.store.move_object(self.draft, self.draft, &source, &options, &Progress::default()).await {
            Err(Error::PreconditionFailed { .. }) => held(
                Promise::CopyIfMatch,
                "a move of another version was refused: the version is checked on the file opened",
            ),
            Ok(()) => Finding::new(Promise::CopyIfMatch, Outcome::Broken, "a move of another version succeeded"),
            Err(e) => return Err(e),
        })
    }

    async fn content_disposition(&self) -> Result<Finding> {
        let key = self.key("first")?;
        let disposition = "attachment; filename=\"probe.txt\"";
        let conditions = Conditions { disposition: Some(disposition.to_owned()), ..Conditions::default() };
        let url = self.sign(Method::Get, &key, &conditions).await?;
        Ok(match self.verify(&Request::from(&url, &key)) {
            Ok(signed) if signed.iter().any(|(n, v)| n == CONTENT_DISPOSITION_PARAM && v == disposition) => {
                held(Promise::ContentDisposition, format!("the URL signs `{disposition}`, which the blob route serves"))
            }
            Ok(_) => Finding::new(Promise::ContentDisposition, Outcome::Broken, "the signed disposition was lost"),
            Err(e) => {
                Finding::new(Promise::ContentDisposition, Outcome::Broken, format!("its own URL was refused: {e}"))
            }
        })
    }

    async fn download_overrides(&self) -> Result<Finding> {
        let key = self.key("first")?;
        let conditions = Conditions { disposition: Some("attachment".to_owned()), ..Conditions::default() };
        let attachment = Request::from(&self.sign(Method::Get, &key, &conditions).await?, &key);
        let mut inline = Request { query: attachment.query.replacen("=attachment", "=inline", 1), ..attachment };
        if !inline.query.contains("=inline") {
            inline.query.push_str("&response-content-disposition=inline");
        }
        let mut html = Request::from(&self.sign(Method::Get, &key, &Conditions::default()).await?, &key);
        html.query.push_str("&response-content-type=text%2Fhtml");
        Ok(match (self.verify(&inline), self.verify(&html)) {
            (Err(inline), Err(html)) => held(
                Promise::DownloadOverrides,
                format!(
                    "attachment turned inline: refused ({inline}); an unsigned response-content-type: refused ({html})"
                ),
            ),
            _ => Finding::new(Promise::DownloadOverrides, Outcome::Broken, "an unsigned override was let through"),
        })
    }

    async fn write(&self, key: &ObjectKey) -> Result<()> {
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"probe"))]);
        self.store.write_object(self.draft, key, text_plain(), &WriteChecks::default(), body).await.map(drop)
    }

    /// Removes every key under the probe's prefix.
    async fn clean_up(&self) -> Result<()> {
        let page = self.store.list_prefix(self.draft, &self.prefix, None, 1000).await?;
        let keys: Vec<_> = page.objects.into_iter().map(|object| object.key).collect();
        let failed = self.store.delete_many(self.draft, &keys).await?;
        match failed.first() {
            Some(failure) => {
                Err(Error::Other { message: format!("{}: {}", failure.key, failure.message), source: None })
            }
            None => Ok(()),
        }
    }
}

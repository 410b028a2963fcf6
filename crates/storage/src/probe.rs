//! The store probe: what DraftStore finds out about a store before it trusts it with signed URLs.
//!
//! DraftStore hands untrusted clients URLs signed with a credential of its own and relies on the store to honour
//! exactly what was signed. A probe checks each [`Promise`] with throwaway keys under [`PROBE_PREFIX`] in the draft
//! bucket: an S3 backend with real presigned requests sent as a hostile client would send them (an unsigned
//! `x-amz-copy-source`, unsigned metadata, a body that differs from its signed checksum…), the local backend with
//! its own signature check and write path, since it is the store. A capability of its own, apart from
//! [`ObjectStore`](crate::ObjectStore), as object_store keeps `Signer` apart from `ObjectStore`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::{BucketName, Result};

/// Where the probe's throwaway keys live in the draft bucket; every key under it is removed when a probe ends.
pub const PROBE_PREFIX: &str = ".draftstore-probe/";

/// How much a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Only whether conditional writes are honoured: what the backend itself needs to know (`STORE_PROBE=off`).
    ConditionalWrites,
    /// Every promise a presigned request relies on, and the signing credentials' rights: the start-up probe.
    Startup,
    /// The start-up probe, and the main credential's rights, the buckets' CORS and lifecycle rules and the checksum
    /// settings: `draftstore doctor`.
    Doctor,
}

/// What to probe, and what the configuration expects of the store.
#[derive(Debug, Clone)]
pub struct ProbePlan<'a> {
    pub draft: &'a BucketName,
    pub main: &'a BucketName,
    pub depth: Depth,
    /// Browser origins the draft bucket's CORS rule should allow (empty: no rule expected).
    pub cors_origins: &'a [String],
    /// Days of the draft bucket's lifecycle rule, when one is expected.
    pub lifecycle_days: Option<u32>,
}

/// A store that can be probed for the promises DraftStore relies on.
#[async_trait]
pub trait StoreProbe: fmt::Debug + Send + Sync + 'static {
    /// Checks every promise `plan.depth` asks for and reports each, held or not: a broken promise is a finding, not
    /// an error. `Err` only when the probe could not run at all (the store unreachable, the draft bucket missing or
    /// not writable by the main credential). Leaves nothing behind under [`PROBE_PREFIX`] when it returns.
    async fn probe(&self, plan: &ProbePlan<'_>) -> Result<ProbeReport>;
}

/// How much a broken promise matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A signed URL would let its holder write something that was not signed, or read what it should not:
    /// DraftStore refuses to start (unless `STORE_PROBE=warn`).
    Critical,
    /// Something DraftStore relies on works less well: a warning saying what it costs.
    Warning,
}

/// A promise DraftStore relies on the store to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Promise {
    /// An unsigned `x-amz-copy-source` cannot turn a presigned PUT into a copy.
    CopySource,
    /// An unsigned `x-amz-copy-source` cannot turn a presigned part upload into a part copy.
    PartCopySource,
    /// Unsigned `x-amz-*` headers on a presigned PUT (metadata, tagging, ACL, encryption, storage class, redirect)
    /// are refused or ignored, never applied.
    UnsignedHeaders,
    /// A body that differs from the signed `x-amz-checksum-sha256` is refused.
    Checksum,
    /// A body whose length differs from the signed `Content-Length` is refused.
    ContentLength,
    /// A `Content-Type` that differs from the signed one is refused.
    ContentType,
    /// A URL is bound to its object: the same signature on another key is refused.
    UrlBinding,
    /// The upload signing credential can upload, and can neither read nor copy.
    UploadCredential,
    /// The download signing credential can read, and cannot write.
    DownloadCredential,
    /// The main credential can do what DraftStore's own calls need.
    MainCredential,
    /// `If-None-Match: *` on a copy is honoured.
    ConditionalWrites,
    /// `x-amz-copy-source-if-match` is honoured.
    CopyIfMatch,
    /// A presigned GET serves the signed `response-content-disposition`.
    ContentDisposition,
    /// Unsigned `response-*` overrides on a presigned GET are refused or ignored.
    DownloadOverrides,
    /// The store's clock agrees with DraftStore's.
    ClockSkew,
    /// The draft bucket's CORS rule allows the configured browser origins.
    Cors,
    /// The draft bucket's lifecycle rule is in place.
    Lifecycle,
    /// The store accepts the checksums DraftStore's own requests carry.
    Checksums,
}

impl Promise {
    /// Every promise, in the order reports list them.
    pub const ALL: [Promise; 18] = [
        Self::CopySource,
        Self::PartCopySource,
        Self::UnsignedHeaders,
        Self::Checksum,
        Self::ContentLength,
        Self::ContentType,
        Self::UrlBinding,
        Self::UploadCredential,
        Self::DownloadCredential,
        Self::MainCredential,
        Self::ConditionalWrites,
        Self::CopyIfMatch,
        Self::ContentDisposition,
        Self::DownloadOverrides,
        Self::ClockSkew,
        Self::Cors,
        Self::Lifecycle,
        Self::Checksums,
    ];

    /// A short stable name, for the metric, `/ready` and `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CopySource => "copy-source",
            Self::PartCopySource => "part-copy-source",
            Self::UnsignedHeaders => "unsigned-headers",
            Self::Checksum => "checksum",
            Self::ContentLength => "content-length",
            Self::ContentType => "content-type",
            Self::UrlBinding => "url-binding",
            Self::UploadCredential => "upload-credential",
            Self::DownloadCredential => "download-credential",
            Self::MainCredential => "main-credential",
            Self::ConditionalWrites => "conditional-writes",
            Self::CopyIfMatch => "copy-if-match",
            Self::ContentDisposition => "content-disposition",
            Self::DownloadOverrides => "download-overrides",
            Self::ClockSkew => "clock-skew",
            Self::Cors => "cors",
            Self::Lifecycle => "lifecycle",
            Self::Checksums => "checksums",
        }
    }

    /// The promise, said in a few words.
    pub fn statement(self) -> &'static str {
        match self {
            Self::CopySource => "an unsigned x-amz-copy-source cannot turn an upload URL into a copy",
            Self::PartCopySource => "an unsigned x-amz-copy-source cannot turn a part URL into a part copy",
            Self::UnsignedHeaders => "unsigned x-amz-* headers on an upload URL are never applied",
            Self::Checksum => "a body that differs from the signed SHA-256 is refused",
            Self::ContentLength => "a body that differs from the signed length is refused",
            Self::ContentType => "a Content-Type that differs from the signed one is refused",
            Self::UrlBinding => "a URL's signature does not work on another key",
            Self::UploadCredential => "the upload signing credential can upload, and neither read nor copy",
            Self::DownloadCredential => "the download signing credential can read, and not write",
            Self::MainCredential => "the main credential can do what DraftStore's own calls need",
            Self::ConditionalWrites => "If-None-Match: * on a copy is honoured",
            Self::CopyIfMatch => "x-amz-copy-source-if-match is honoured",
            Self::ContentDisposition => "a download URL serves its signed Content-Disposition",
            Self::DownloadOverrides => "unsigned response-* overrides on a download URL are refused",
            Self::ClockSkew => "the store's clock is within a minute of DraftStore's",
            Self::Cors => "the draft bucket's CORS rule allows CORS_ALLOWED_ORIGINS",
            Self::Lifecycle => "the draft bucket's lifecycle rule is in place",
            Self::Checksums => "the store accepts the checksums DraftStore's own requests carry",
        }
    }

    /// Whether breaking it stops the start (critical) or costs something (a warning).
    pub fn severity(self) -> Severity {
        match self {
            Self::CopySource
            | Self::PartCopySource
            | Self::UnsignedHeaders
            | Self::Checksum
            | Self::ContentLength
            | Self::ContentType
            | Self::UrlBinding
            | Self::UploadCredential
            | Self::DownloadCredential => Severity::Critical,
            Self::MainCredential
            | Self::ConditionalWrites
            | Self::CopyIfMatch
            | Self::ContentDisposition
            | Self::DownloadOverrides
            | Self::ClockSkew
            | Self::Cors
            | Self::Lifecycle
            | Self::Checksums => Severity::Warning,
        }
    }

    /// What it costs when the promise is broken.
    pub fn consequence(self) -> &'static str {
        match self {
            Self::CopySource => {
                "the holder of one upload URL copies any object the signing credential can read (any tenant's \
                 confirmed objects) into their draft and previews it"
            }
            Self::PartCopySource => {
                "the holder of one part URL copies any object the signing credential can read into their upload"
            }
            Self::UnsignedHeaders => {
                "an uploader sets what DraftStore never signed: metadata (its declared size and SHA-256), tags, a \
                 public ACL, a redirect"
            }
            Self::Checksum => "bytes that differ from the declared SHA-256 are stored; the checksum promise is void",
            Self::ContentLength => "an upload may be larger than the size signed into its URL",
            Self::ContentType => "an upload may be stored with another type than the one checked and signed",
            Self::UrlBinding => "one upload URL writes any key of the bucket",
            Self::UploadCredential => {
                "upload URLs are signed by a credential that can read or copy, so a smuggled copy is not stopped \
                 (or uploads fail)"
            }
            Self::DownloadCredential => "download URLs are signed by a credential that can write (or downloads fail)",
            Self::MainCredential => "some of DraftStore's own calls (confirm, listing, clean-up) fail",
            Self::ConditionalWrites => {
                "confirm with overwrite=false checks before copying, which a concurrent writer can race"
            }
            Self::CopyIfMatch => {
                "confirm's version binding rests on DraftStore's own check before the copy: a draft replaced in \
                 between can be promoted unchecked"
            }
            Self::ContentDisposition => {
                "downloads are not saved under their name, and active content (HTML, SVG) signed as an attachment \
                 renders in the store's origin"
            }
            Self::DownloadOverrides => {
                "the holder of a download URL changes how it is served (inline instead of attachment, another type)"
            }
            Self::ClockSkew => "URLs expire early or start late by the skew; beyond 15 minutes the store refuses them",
            Self::Cors => "browsers cannot upload straight to the store from CORS_ALLOWED_ORIGINS",
            Self::Lifecycle => "drafts the cleaner misses are never expired by the store",
            Self::Checksums => "DraftStore's own writes (records, batch deletes) fail on this store",
        }
    }

    /// The way out when the promise is broken.
    pub fn fix(self) -> &'static str {
        match self {
            Self::CopySource | Self::PartCopySource => {
                "set UPLOAD_SIGNING_ACCESS_KEY_ID and UPLOAD_SIGNING_SECRET_ACCESS_KEY to a credential that can only \
                 write the draft bucket (docs/storage.md), or use a store that refuses unsigned x-amz-* headers"
            }
            Self::UnsignedHeaders | Self::Checksum | Self::ContentLength | Self::ContentType | Self::UrlBinding => {
                "use a store that verifies presigned requests (docs/storage.md lists the stores tested), or \
                 STORE_PROBE=warn to accept the risk"
            }
            Self::UploadCredential => {
                "give the upload signing credential PutObject and multipart rights on the draft bucket only"
            }
            Self::DownloadCredential => "give the download signing credential GetObject rights only",
            Self::MainCredential => "give the main credential the rights docs/storage.md lists",
            Self::ConditionalWrites => {
                "use a store that honours If-None-Match, or set S3_CONDITIONAL_WRITES=false to say so"
            }
            Self::CopyIfMatch => "use a store that honours x-amz-copy-source-if-match",
            Self::ContentDisposition | Self::DownloadOverrides => {
                "serve downloads from a store that honours signed response-* parameters, on an origin of its own"
            }
            Self::ClockSkew => "synchronise the clocks (NTP) of DraftStore and the store",
            Self::Cors => "let DraftStore put the rule (it does at start-up), or put it on the draft bucket by hand",
            Self::Lifecycle => "run `draftstore clean --install-lifecycle`, or put the rule by hand",
            Self::Checksums => "report it: DraftStore sends checksums only where S3 requires them",
        }
    }
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a probe found of one promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The store keeps it.
    Held,
    /// The store breaks it.
    Broken,
    /// The store breaks it, but the configuration makes that harmless (split signing credentials).
    Neutralised,
    /// Nothing to check in this configuration (no split credentials, no CORS origins…).
    NotApplicable,
    /// The check could not tell: a call failed in a way that says nothing of the promise.
    Unknown,
}

impl Outcome {
    /// A short stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Broken => "broken",
            Self::Neutralised => "neutralised",
            Self::NotApplicable => "not-applicable",
            Self::Unknown => "unknown",
        }
    }

    /// Whether DraftStore may rely on what it found: held, neutralised, or nothing to check.
    pub fn is_safe(self) -> bool {
        matches!(self, Self::Held | Self::Neutralised | Self::NotApplicable)
    }
}

/// One promise and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub promise: Promise,
    pub outcome: Outcome,
    /// What the store answered, in a sentence.
    pub detail: String,
}

impl Finding {
    pub fn new(promise: Promise, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self { promise, outcome, detail: detail.into() }
    }
}

/// Everything a probe found.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    /// One finding per promise checked, in [`Promise::ALL`]'s order.
    pub findings: Vec<Finding>,
    /// How long the probe took, clean-up included.
    pub elapsed: Duration,
}

impl ProbeReport {
    /// The findings in [`Promise::ALL`]'s order.
    pub fn sorted(mut findings: Vec<Finding>, elapsed: Duration) -> Self {
        findings.sort_by_key(|finding| finding.promise);
        Self { findings, elapsed }
    }

    /// The finding of one promise, when it was checked.
    pub fn get(&self, promise: Promise) -> Option<&Finding> {
        self.findings.iter().find(|finding| finding.promise == promise)
    }

    /// Critical promises not known to hold: DraftStore refuses to start on them.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.unsafe_findings(Severity::Critical)
    }

    /// Lesser promises not known to hold.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.unsafe_findings(Severity::Warning)
    }

    /// Whether every promise checked holds (or does not apply, or is neutralised).
    pub fn all_hold(&self) -> bool {
        self.findings.iter().all(|finding| finding.outcome.is_safe())
    }

    fn unsafe_findings(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.promise.severity() == severity && !f.outcome.is_safe())
    }
}

//! The draft workflow, written once and shared by the REST and gRPC adapters.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use draftstore_api::{ContentReport, ImageReport};
use draftstore_storage::multipart::MAX_SINGLE_UPLOAD;
use draftstore_storage::{
    BucketName, Conditions, Method, MoveOptions, Moves, ObjectMeta, PresignRequest, Progress, Store,
};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::checks::{self, CheckSettings, Checks};
use crate::domain::{
    ContentType, Disposition, Metadata, ObjectKey, ObjectName, Stage, UploadLimits, inline_type, inline_type_on_request,
};
use crate::error::{Error, Result};
use crate::gateway::StorageCalls;
use crate::hooks::{self, ConfirmHook, EventType, HookSettings, Outbox, Subject, Verdict};
use crate::images::{ImageKeys, ImagePipeline, ImageSettings};

mod drafts;
mod images;
mod listing;
mod messages;
mod multipart;
mod objects;
mod resumable;
mod sets;
mod settings;

pub use drafts::{DraftEntry, DraftPage};
pub use listing::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, parse_prefix};
pub use messages::{Confirmation, Download, Promotion, Rewritten, Ticket, Upload};
pub use multipart::{MultipartStart, PartRequest, S3Request, SignedPart, StartedUpload};
pub use objects::{ObjectEntry, ObjectPage};
pub use resumable::{
    Append, BodyChecksum, Dialect, LEASE_TTL, MAX_RESUMABLE_SIZE, NewUpload, UploadError, UploadState, valid_id,
};
pub use sets::{RECOVERY_GRACE, SetConfirmation, SetDraft, SetRecovery};
pub use settings::{Buckets, ServiceSettings, lifecycle_days};

/// The two-stage upload workflow over one store. Cheap to clone: handlers get a copy per request.
#[derive(Debug, Clone)]
pub struct DraftService(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Store,
    buckets: Buckets,
    upload_ttl: Duration,
    download_ttl: Duration,
    /// Age at which the cleaner removes a draft.
    object_lifetime: Duration,
    calls: StorageCalls,
    cors_allowed_origins: Vec<String>,
    /// Days after which the draft bucket's lifecycle rule expires drafts; `None`: no rule.
    lifecycle_days: Option<u32>,
    limits: UploadLimits,
    /// Part size multipart uploads are told to use.
    multipart_part_size: u64,
    /// Asked before a draft is promoted (CONFIRM_HOOK_URL).
    hook: Option<ConfirmHook>,
    /// Where events wait for delivery (EVENTS_URL).
    outbox: Option<Outbox>,
    /// What a draft's bytes are checked for before the hook is asked.
    checks: Checks,
    /// What an image draft is made into before the hook is asked.
    images: ImagePipeline,
    /// How long the outcome of a set is kept for its idempotency key.
    set_record_lifetime: Duration,
    /// What resumable appends share: their memory, their stop signals.
    appends: resumable::Appends,
}

impl DraftService {
    /// The workflow over `store`, every storage call made through `calls`.
    pub fn new(
        store: Store,
        calls: StorageCalls,
        settings: &ServiceSettings,
        hooks: &HookSettings,
        checks: &CheckSettings,
        images: &ImageSettings,
    ) -> Self {
        Self(Arc::new(Inner {
            buckets: settings.buckets.clone(),
            upload_ttl: settings.upload_ttl,
            download_ttl: settings.download_ttl,
            object_lifetime: settings.object_lifetime,
            calls,
            cors_allowed_origins: settings.cors_allowed_origins.clone(),
            set_record_lifetime: settings.object_lifetime,
            appends: resumable::Appends::default(),
            lifecycle_days: settings.lifecycle_days(),
            limits: settings.limits.clone(),
            multipart_part_size: settings.multipart_part_size,
            hook: hooks
                .confirm_url
                .clone()
                .zip(hooks.secret.clone())
                .map(|(url, secret)| ConfirmHook::new(url, hooks.timeout, secret, hooks::http_client())),
            outbox: Outbox::from_settings(&store.objects, hooks, &settings.buckets.events),
            checks: Checks::new(checks),
            images: ImagePipeline::new(images, checks.max_image_pixels),
            store,
        }))
    }

    /// The bound every storage call of this service is made through.
    pub fn calls(&self) -> StorageCalls {
        self.0.calls
    }

    /// Lifetime of upload URLs (UPLOAD_TTL).
    pub fn upload_ttl(&self) -> Duration {
        self.0.upload_ttl
    }

    /// Age at which the cleaner removes a draft (OBJECT_LIFETIME).
    pub fn object_lifetime(&self) -> Duration {
        self.0.object_lifetime
    }

    /// The event outbox, when EVENTS_URL is set.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.0.outbox.as_ref()
    }

    /// The store behind this service.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Browser origins allowed to call the API and the signed URLs (CORS_ALLOWED_ORIGINS).
    pub fn cors_allowed_origins(&self) -> &[String] {
        &self.0.cors_allowed_origins
    }

    /// The buckets this service works on.
    pub fn buckets(&self) -> &Buckets {
        &self.0.buckets
    }

    /// Bounds a storage call by STORAGE_TIMEOUT and puts its error in the service's terms.
    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = draftstore_storage::Result<T>>,
    ) -> Result<T> {
        self.0.calls.call(operation, call).await
    }

    /// Bounds a URL signing by STORAGE_TIMEOUT (see [`StorageCalls::sign`]).
    async fn sign<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = draftstore_storage::Result<T>>,
    ) -> Result<T> {
        self.0.calls.sign(operation, call).await
    }

    /// Bounds a long storage call by STORAGE_TIMEOUT without progress (see [`StorageCalls::call_with_progress`]).
    async fn call_with_progress<T>(
        &self,
        operation: &'static str,
        progress: &Progress,
        call: impl Future<Output = draftstore_storage::Result<T>>,
    ) -> Result<T> {
        self.0.calls.call_with_progress(operation, progress, call).await
    }

    /// Creates the main and draft buckets and the records bucket (the event outbox, the journals of sets, the layouts
    /// of multipart uploads) if missing, lets browsers of CORS_ALLOWED_ORIGINS upload to the draft bucket, and with
    /// DRAFT_LIFECYCLE puts the safety-net lifecycle rule on it. Idempotent.
    pub async fn create_buckets(&self) -> Result<()> {
        self.call("create the main bucket", self.0.store.buckets.create_bucket(&self.0.buckets.main)).await?;
        self.call("create the draft bucket", self.0.store.buckets.create_bucket(&self.0.buckets.draft)).await?;
        // DraftStore's own records: the event outbox and the journals of sets.
        self.call("create the events bucket", self.0.store.buckets.create_bucket(&self.0.buckets.events)).await?;
        // A store that is DraftStore itself has no rules to put: it answers browsers and expires drafts itself.
        let rules = self.0.store.rules.as_ref();
        if let Some(rules) = rules.filter(|_| !self.0.cors_allowed_origins.is_empty()) {
            let cors = rules.allow_browser_uploads(&self.0.buckets.draft, &self.0.cors_allowed_origins);
            self.call("set the CORS rule of the draft bucket", cors).await?;
        }
        if let Some(days) = self.0.lifecycle_days {
            match rules {
                Some(rules) => {
                    let lifecycle = rules.install_lifecycle(&self.0.buckets.draft, days);
                    self.call("install the lifecycle rule of the draft bucket", lifecycle).await?;
                }
                None => tracing::info!(
                    "DRAFT_LIFECYCLE: this backend has no lifecycle rules; the cleaner alone removes drafts"
                ),
            }
        }
        Ok(())
    }

    /// Succeeds when the store answers and both buckets exist.
    pub async fn ready(&self) -> Result<()> {
        self.call("check the main bucket", self.0.store.buckets.check_bucket(&self.0.buckets.main)).await?;
        self.call("check the draft bucket", self.0.store.buckets.check_bucket(&self.0.buckets.draft)).await
    }

    /// A URL to upload a draft with. What the upload declares (content type, size, SHA-256) is checked against
    /// UPLOAD limits first and then signed in: the store refuses an upload that differs.
    pub async fn upload_url(
        &self,
        caller: &Caller,
        name: &ObjectName,
        upload: Upload,
        now: OffsetDateTime,
    ) -> Result<Ticket> {
        let key = caller.key(name)?;
        self.0.limits.check(upload.content_type.as_ref(), upload.content_length)?;
        if let Some(length) = upload.content_length
            && length > MAX_SINGLE_UPLOAD
        {
            return Err(Error::UploadTooLarge(format!(
                "content_length {length} is above {MAX_SINGLE_UPLOAD} bytes (5 GiB), the most one PUT can upload; \
                 upload larger files in parts with the multipart API (POST /api/v1/multipart/start)"
            )));
        }
        let conditions = Conditions {
            content_type: upload.content_type,
            content_length: upload.content_length,
            checksum_sha256: upload.checksum_sha256,
            ..Conditions::default()
        };
        self.presign(Method::Put, Stage::Draft, name, &key, &conditions, now).await
    }

    /// The limits uploads are held to.
    pub fn limits(&self) -> &UploadLimits {
        &self.0.limits
    }

    /// Signs a URL for `key`, the caller's `name` in its namespace.
    async fn presign(
        &self,
        method: Method,
        stage: Stage,
        name: &ObjectName,
        key: &ObjectKey,
        conditions: &Conditions,
        now: OffsetDateTime,
    ) -> Result<Ticket> {
        let bucket = match stage {
            Stage::Draft => &self.0.buckets.draft,
            Stage::Main => &self.0.buckets.main,
        };
        self.presign_in(method, (bucket, stage), name, key, conditions, now).await
    }

    /// Signs a URL for `key` in `bucket`, which holds objects of `stage`.
    async fn presign_in(
        &self,
        method: Method,
        (bucket, stage): (&BucketName, Stage),
        name: &ObjectName,
        key: &ObjectKey,
        conditions: &Conditions,
        now: OffsetDateTime,
    ) -> Result<Ticket> {
        let expires_in = match method {
            Method::Put | Method::Post | Method::Delete => self.0.upload_ttl,
            Method::Get => self.0.download_ttl,
        };
        let request = PresignRequest { method, bucket, key, now, expires_in, conditions };
        let url = self.sign("sign a URL", self.0.store.signer.presign(&request)).await?;
        crate::telemetry::PRESIGNED_URLS.count(&[], method.as_str(), 1);
        Ok(Ticket { url, object_name: name.clone(), expires_at: now + expires_in, stage })
    }

    /// A URL to read an object. Without a stage: the draft when one exists (preview before confirm), the
    /// confirmed object otherwise; `ObjectNotFound` when neither exists. Active content (HTML, SVG, XML,
    /// scripts) is served as an attachment, so a preview can never run in a browser's page; `inline` is refused
    /// for it.
    pub async fn download_url(
        &self,
        caller: &Caller,
        name: &ObjectName,
        download: &Download,
        now: OffsetDateTime,
    ) -> Result<Ticket> {
        let key = &caller.key(name)?;
        if let Some(variant) = &download.variant {
            return self.variant_url(name, key, variant, download, now).await;
        }
        let (draft, main) = (&self.0.buckets.draft, &self.0.buckets.main);
        let (stage, meta) = match download.stage {
            Some(Stage::Draft) => {
                (Stage::Draft, self.call("look up the draft", self.0.store.objects.head(draft, key)).await?)
            }
            Some(Stage::Main) => {
                (Stage::Main, self.call("look up the object", self.0.store.objects.head(main, key)).await?)
            }
            None => match self.call("look up the draft", self.0.store.objects.head(draft, key)).await {
                Ok(meta) => (Stage::Draft, meta),
                Err(Error::ObjectNotFound(_)) => {
                    (Stage::Main, self.call("look up the object", self.0.store.objects.head(main, key)).await?)
                }
                Err(e) => return Err(e),
            },
        };
        let conditions = presentation(&meta.content_type, download)?;
        self.presign(Method::Get, stage, name, key, &conditions, now).await
    }

    /// A URL to read one of a confirmed image's variants.
    async fn variant_url(
        &self,
        name: &ObjectName,
        key: &ObjectKey,
        variant: &crate::images::VariantName,
        download: &Download,
        now: OffsetDateTime,
    ) -> Result<Ticket> {
        if download.stage == Some(Stage::Draft) {
            return Err(Error::VariantNotFound(format!(
                "draft '{name}' has no variants: they are made at confirm (ask without stage, or with stage main)"
            )));
        }
        let object = self.call("look up the object", self.0.store.objects.head(&self.0.buckets.main, key)).await?;
        let image = self.image_of(&object).await?;
        let made = image.as_ref().and_then(|image| image.variants.iter().find(|v| v.name == variant.as_str()));
        let (Some(made), Some(keys)) = (made, ImageKeys::of(&object, SET_METADATA)) else {
            return Err(Error::VariantNotFound(match image {
                Some(_) => format!("object '{name}' has no variant '{variant}'"),
                None => format!("object '{name}' has no variants: it is not an image confirmed with IMAGE_VARIANTS"),
            }));
        };
        let content_type = ContentType::parse(&made.content_type).map_err(|e| Error::Internal {
            operation: "read the image's record",
            source: draftstore_storage::Error::other("a variant's type is invalid", e),
        })?;
        let conditions = presentation(&content_type, download)?;
        let records = (&self.0.buckets.events, Stage::Main);
        self.presign_in(Method::Get, records, name, &keys.variant(variant), &conditions, now).await
    }

    /// Moves a draft into the main bucket, under its own name or `promotion.final_name`, after checking it against
    /// what its upload URL declared, the upload limits, its bytes and the hook; a draft that fails is deleted and
    /// refused. Without `overwrite`, an existing main object is never replaced. Idempotent: when the draft is gone
    /// but the confirmed object exists (an earlier or concurrent confirm moved it) the answer is the same success.
    pub async fn confirm(&self, caller: &Caller, name: &ObjectName, promotion: &Promotion) -> Result<Confirmation> {
        let key = &caller.key(name)?;
        let final_name = promotion.final_name.as_ref().unwrap_or(name);
        let final_key = &caller.key(final_name)?;
        let outcome = self.confirm_key(caller, (name, key), (final_name, final_key), promotion).await;
        let label = match &outcome {
            Ok(Some(_)) => "confirmed",
            Ok(None) => "already_confirmed",
            Err(e) => e.error_type().as_str(),
        };
        metrics::counter!("draftstore_confirms_total", "outcome" => label).increment(1);
        let promoted = outcome?;
        Ok(Confirmation {
            object_name: final_name.clone(),
            final_location: format!("{}/{final_key}", self.0.buckets.main),
            content: promoted.as_ref().map(|p| p.report.clone()),
            image: promoted.as_ref().and_then(|p| p.image.as_ref().map(|i| i.report.clone())),
            rewritten: promoted.and_then(|p| p.image.and_then(|i| i.rewritten)),
        })
    }

    async fn confirm_key(
        &self,
        caller: &Caller,
        (name, key): (&ObjectName, &ObjectKey),
        (final_name, final_key): (&ObjectName, &ObjectKey),
        promotion: &Promotion,
    ) -> Result<Option<Passed>> {
        let (draft, main) = (&self.0.buckets.draft, &self.0.buckets.main);
        // The draft is gone: promoted by a concurrent confirm, which answers as this one. Where a move takes the
        // file itself (the local backend), it holds it aside for a moment before it appears in the main bucket, so
        // the look-up is tried again a few times (about 0.6 s in all) before the answer is "not found".
        let retries = self.0.store.objects.moves() == Moves::Exclusive;
        let already_confirmed = async || {
            let mut pause = Duration::from_millis(5);
            loop {
                let found = self.call("look up the confirmed object", self.0.store.objects.head(main, final_key)).await;
                match found {
                    Err(Error::ObjectNotFound(_)) if retries && pause <= Duration::from_millis(320) => {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                    found => return found.map(|_| None),
                }
            }
        };
        // A draft replaced between the check and the move makes the move fail; it is checked again, once.
        for attempt in 0..2 {
            let (meta, first) = match self.look_up_draft(key).await {
                Ok(found) => found,
                Err(Error::ObjectNotFound(_)) => return already_confirmed().await,
                Err(Error::DraftChanged(_)) if attempt == 0 => continue,
                Err(e) => return Err(e),
            };
            let about = subject(caller, name, key, &meta);
            let checked = match self.check(&about, (&meta, &first)).await {
                // Promoted, or replaced, by a concurrent confirm or upload while its bytes were read.
                Err(Error::ObjectNotFound(_)) => return already_confirmed().await,
                Err(Error::DraftChanged(_)) if attempt == 0 => continue,
                other => other?,
            };
            let passed = match checked {
                Ok(passed) => passed,
                Err(refusal) => {
                    tracing::warn!(%key, reason = %refusal, "draft rejected at confirm; deleting it");
                    let why = serde_json::json!({
                        "error_type": refusal.error_type().as_str(),
                        "reason": refusal.to_string(),
                    });
                    self.record(EventType::Rejected, hooks::message_id(), &about, why, false).await?;
                    // Only the version that failed: a draft uploaded again meanwhile is another, and is kept.
                    let rejected = async {
                        match meta.etag.as_deref() {
                            Some(etag) => self.0.store.objects.delete_version(draft, key, etag).await.map(drop),
                            None => self.0.store.objects.delete(draft, key).await,
                        }
                    };
                    self.call("delete the rejected draft", rejected).await?;
                    return Err(refusal);
                }
            };
            // Written before the move, delivered once the object the move puts in the main bucket is there: a crash
            // between the two loses no event, and announces no confirm that did not happen.
            // Its id is this version's promotion's: a confirm repeated after one that recorded its event and then
            // died (a replica killed before it answered, the request sent again to another) records the same id. It
            // names the move too (its origin), so that the event waits for this move's object, not another's.
            let id = hooks::message_id_for(&[
                key.as_str(),
                meta.etag.as_deref().unwrap_or_default(),
                &meta.last_modified.unix_timestamp_nanos().to_string(),
                final_key.as_str(),
            ]);
            // Where two moves of one version could both succeed, this confirm claims the version first.
            let claim = self.claim(key, &meta, final_key).await?;
            // An image's variants and stripped original are written before anything announces them, under a folder
            // of this promotion's own: a confirm that goes no further leaves them unreachable, for the cleaner.
            let image_keys = ImageKeys::new(&id, final_key);
            let staged = match &passed.image {
                Some(image) => self.store_image(&image_keys, final_key, image, &meta.content_type).await?,
                None => None,
            };
            let confirmed = subject(caller, final_name, final_key, staged.as_ref().unwrap_or(&meta));
            let image_report = passed.image.as_ref().map(|i| &i.report);
            let extra = confirmed_extra(name, promotion.metadata.as_ref(), &passed.report, image_report, None);
            let origins = [Some(id.clone()), meta.etag.clone()].into_iter().flatten().collect();
            let announced = match &self.0.outbox {
                Some(outbox) => {
                    let record = outbox.record_promotion(id.clone(), &confirmed, extra, origins);
                    Some(self.call("record the event", record).await?)
                }
                None => None,
            };
            let moved = match &staged {
                None => {
                    let options = MoveOptions {
                        no_overwrite: !promotion.overwrite,
                        if_match: meta.etag.clone(),
                        to_key: (final_key != key).then(|| final_key.clone()),
                        // An image's object must answer this move's origin, which names its folder: a move that
                        // writes metadata records the origin on every backend (a bare rename keeps the draft's own).
                        metadata: match (&promotion.metadata, &passed.image) {
                            (Some(metadata), _) => Some(stored_metadata(metadata.clone(), &meta, None)),
                            (None, Some(_)) => Some(stored_metadata(meta.metadata.clone(), &meta, None)),
                            (None, None) => None,
                        },
                        keep_source: false,
                        source: Some(meta.clone()),
                        origin: Some(id.clone()),
                    };
                    let progress = Progress::default();
                    let moved = self.0.store.objects.move_object(draft, main, key, &options, &progress);
                    self.call_with_progress("move the draft to the main bucket", &progress, moved).await
                }
                Some(staged) => self.promote_stripped((key, &meta), final_key, staged, promotion, &id).await,
            };
            // A failed move leaves the image's folder: confirms of this version to this name share it, and one of
            // them may be succeeding now. Unreachable if none does, it is the cleaner's.
            if moved.is_err()
                && let (Some(outbox), Some(announced)) = (&self.0.outbox, &announced)
            {
                outbox.withdraw(&self.0.calls, announced).await;
            }
            if let Some(claim) = claim {
                self.release(claim, &moved).await;
            }
            match moved {
                Ok(()) => {
                    if let Some(outbox) = &self.0.outbox {
                        outbox.wake();
                    }
                    return Ok(Some(passed));
                }
                Err(Error::ObjectNotFound(_)) => return already_confirmed().await,
                Err(Error::DraftChanged(_)) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::DraftChanged("the draft keeps changing; upload it once, then confirm".to_owned()))
    }

    /// Claims a draft version for a move to `final_key`, where the store's moves are not exclusive (S3 copies, then
    /// deletes: two copies of one version to two names could both succeed). The claim is a record written only if
    /// absent; a confirm of the same version to the same name shares it (a retry), one to another name is refused
    /// until the claim is released or, left by a confirm that died, has expired. `None` where moves are exclusive.
    async fn claim(&self, key: &ObjectKey, meta: &ObjectMeta, final_key: &ObjectKey) -> Result<Option<Claim>> {
        if self.0.store.objects.moves() == Moves::Exclusive {
            return Ok(None);
        }
        let events = &self.0.buckets.events;
        let version = hooks::message_id_for(&[
            key.as_str(),
            meta.etag.as_deref().unwrap_or_default(),
            &meta.last_modified.unix_timestamp_nanos().to_string(),
        ]);
        let record = ObjectKey::parse(&format!("{CLAIMS}{}", version.trim_start_matches("msg_"))).map_err(|e| {
            Error::Internal {
                operation: "claim the draft",
                source: draftstore_storage::Error::other("a bad claim key", e),
            }
        })?;
        let now_ms = |at: OffsetDateTime| (at.unix_timestamp_nanos() / 1_000_000) as i64;
        let until = now_ms(OffsetDateTime::now_utc() + CLAIM_LIFETIME);
        let body = serde_json::to_vec(&ClaimRecord { final_key: final_key.to_string(), until_ms: until })
            .expect("a claim serializes");
        for _ in 0..3 {
            let put = self.0.store.objects.put_record(events, &record, body.clone().into(), true);
            if self.call("claim the draft", put).await? {
                return Ok(Some(Claim { record }));
            }
            let held =
                match self.call("read a claim on the draft", self.0.store.objects.get_record(events, &record)).await {
                    Ok(held) => serde_json::from_slice::<ClaimRecord>(&held).ok(),
                    // Released meanwhile: claim it again.
                    Err(Error::ObjectNotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
            match held {
                Some(held) if held.final_key == final_key.as_str() => return Ok(Some(Claim { record })),
                Some(held) if held.until_ms > now_ms(OffsetDateTime::now_utc()) => {
                    return Err(Error::DraftChanged(
                        "another confirm of this draft, to another name, is under way or done".to_owned(),
                    ));
                }
                // Expired, or unreadable: taken over, unless another confirm is quicker.
                _ => self.call("remove an expired claim", self.0.store.objects.delete(events, &record)).await?,
            }
        }
        Err(Error::DraftChanged("the draft is being confirmed by other requests; try again".to_owned()))
    }

    /// Releases a claim once its move is done or has changed nothing; after a store failure it stays (the move may
    /// have copied; the confirm is to be repeated to the same name) until it expires.
    async fn release(&self, claim: Claim, moved: &Result<()>) {
        if matches!(
            moved,
            Ok(()) | Err(Error::ObjectNotFound(_) | Error::DraftChanged(_) | Error::ObjectAlreadyExists(_))
        ) && let Err(e) = self
            .call("release a claim on the draft", self.0.store.objects.delete(&self.0.buckets.events, &claim.record))
            .await
        {
            tracing::warn!(error = %e.chain(), key = %claim.record, "failed to release a claim; it expires");
        }
    }

    /// Removes the claims older than [`CLAIM_LIFETIME`] (left by confirms that died), returning how many.
    pub async fn sweep_claims(&self, now: OffsetDateTime) -> Result<u64> {
        let events = &self.0.buckets.events;
        let (mut removed, mut token) = (0, None);
        loop {
            let list =
                self.0.store.objects.list_prefix(events, CLAIMS, token.as_deref(), draftstore_storage::LIST_PAGE);
            let page = self.call("list the claims on drafts", list).await?;
            let old: Vec<_> =
                page.objects.into_iter().filter(|o| now - o.last_modified > CLAIM_LIFETIME).map(|o| o.key).collect();
            if !old.is_empty() {
                self.call("remove expired claims", self.0.store.objects.delete_many(events, &old)).await?;
                removed += old.len() as u64;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(removed),
            }
        }
    }

    /// A draft's metadata, and its first bytes when the checks read them: fetched together.
    async fn look_up_draft(&self, key: &ObjectKey) -> Result<(ObjectMeta, Bytes)> {
        let draft = &self.0.buckets.draft;
        match self.0.checks.head_len() {
            Some(len) => {
                self.call("look up the draft", self.0.store.objects.head_with_first_bytes(draft, key, len)).await
            }
            None => {
                self.call("look up the draft", self.0.store.objects.head(draft, key)).await.map(|m| (m, Bytes::new()))
            }
        }
    }

    /// Runs every check on a draft, in order: its size and checksum, its bytes (type, image size, scan), then the
    /// confirm hook. `Err` when a check could not decide (the draft is kept); `Ok(Err(refusal))` when the draft
    /// fails one.
    async fn check(
        &self,
        subject: &Subject<'_>,
        (meta, first): (&ObjectMeta, &[u8]),
    ) -> Result<std::result::Result<Passed, Error>> {
        if let Err(reason) = self.verify(meta) {
            return Ok(Err(Error::UploadRejected(reason)));
        }
        let (storage, draft) = (&*self.0.store.objects, &self.0.buckets.draft);
        let report = match self.0.checks.run(storage, &self.0.calls, draft, (meta, first), &self.0.limits).await? {
            Ok(report) => report,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let image = match self.prepare_image(meta, &report).await? {
            Ok(image) => image,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(match self.ask_hook(subject, meta, &report, image.as_ref().map(|i| &i.report)).await? {
            Some(reason) => Err(Error::UploadRejected(reason)),
            None => Ok(Passed { report, image }),
        })
    }

    /// Asks the confirm hook, when there is one, about a draft that passed DraftStore's own checks: `Some` reason
    /// when it rejects. A hook that cannot decide fails the confirm closed (503, the draft kept).
    async fn ask_hook(
        &self,
        subject: &Subject<'_>,
        meta: &ObjectMeta,
        report: &ContentReport,
        image: Option<&ImageReport>,
    ) -> Result<Option<String>> {
        let Some(hook) = &self.0.hook else { return Ok(None) };
        let key = subject.key;
        let now = OffsetDateTime::now_utc();
        let expires_in = hook.timeout() + Duration::from_secs(60);
        // The URL serves only the version checked: a draft uploaded again meanwhile is refused (412), so what the
        // hook reads is what the move promotes.
        let conditions =
            Conditions { if_match: meta.etag.clone(), ..presentation(&meta.content_type, &Download::default())? };
        let request = PresignRequest {
            method: Method::Get,
            bucket: &self.0.buckets.draft,
            key,
            now,
            expires_in,
            conditions: &conditions,
        };
        let url = self.sign("sign the confirm hook's download URL", self.0.store.signer.presign(&request)).await?;
        let headers: serde_json::Map<String, serde_json::Value> =
            url.headers.iter().map(|(name, value)| (name.clone(), serde_json::Value::from(value.as_str()))).collect();
        // The SHA-256 the store verified, or else that of the checked version, read once more: the hook can then
        // compare what it downloads with what will be promoted.
        let sha256 = match &meta.sha256 {
            Some(verified) => verified.clone(),
            None => checks::sha256_of(&*self.0.store.objects, &self.0.calls, &self.0.buckets.draft, meta).await?,
        };
        let mut extra = serde_json::json!({
            "etag": meta.etag,
            "sha256": sha256.to_string(),
            "download_url": url.url,
            "download_headers": headers,
            "download_url_expires_at": crate::domain::rfc3339(now + expires_in),
            "content": report,
        });
        if let Some(image) = image {
            extra["image"] = serde_json::json!(image);
        }
        let payload = subject.payload("draft.confirming", now, extra);
        match hook.ask(&payload).await {
            Ok(Verdict::Accept) => Ok(None),
            Ok(Verdict::Reject(reason)) => Ok(Some(format!("the confirm hook rejected it: {reason}"))),
            Err(reason) => {
                tracing::warn!(%key, reason, "the confirm hook gave no decision; the draft is kept");
                Err(Error::HookUnavailable(reason))
            }
        }
    }

    /// Records an event in the outbox under `id`, when events are on (see [`hooks::Outbox::record`]);
    /// `requires_main`: deliver only once the object is in the main bucket. Returns the entry's key, to withdraw it
    /// if the operation fails. `extra` goes into the event's data beside the subject.
    async fn record(
        &self,
        kind: EventType,
        id: String,
        subject: &Subject<'_>,
        extra: serde_json::Value,
        requires_main: bool,
    ) -> Result<Option<ObjectKey>> {
        let Some(outbox) = &self.0.outbox else { return Ok(None) };
        self.call("record the event", outbox.record(kind, id, subject, extra, requires_main)).await.map(Some)
    }

    /// Why a draft must not be promoted, if it must not.
    fn verify(&self, meta: &ObjectMeta) -> std::result::Result<(), String> {
        let limits = &self.0.limits;
        if meta.size > limits.max_size {
            return Err(format!("its size, {} bytes, is above MAX_UPLOAD_SIZE ({} bytes)", meta.size, limits.max_size));
        }
        if let Some(declared) = meta.declared.length
            && declared != meta.size
        {
            return Err(format!("its size, {} bytes, differs from the declared {declared} bytes", meta.size));
        }
        if let Err(e) = limits.check(Some(&meta.content_type), None) {
            return Err(format!("its content type is not accepted ({e})"));
        }
        match (&meta.declared.sha256, &meta.sha256) {
            (Some(declared), Some(actual)) if declared != actual => {
                Err("its SHA-256 differs from the declared checksum_sha256".to_owned())
            }
            (Some(_), None) => {
                Err("the store kept no SHA-256 to check against the declared checksum_sha256".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// A draft that passed every check: what the checks found in its bytes, and what the image pipeline made of it.
#[derive(Debug, Clone)]
pub(crate) struct Passed {
    report: ContentReport,
    image: Option<images::Prepared>,
}

/// Where claims on draft versions are kept in the events bucket.
const CLAIMS: &str = "claims/";
/// How long a claim holds when its confirm died before releasing it.
const CLAIM_LIFETIME: Duration = Duration::from_secs(3600);

/// A claim taken by [`DraftService::claim`], to release.
struct Claim {
    record: ObjectKey,
}

/// What a claim records: the name the version is being confirmed to, and until when the claim holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ClaimRecord {
    final_key: String,
    /// Unix milliseconds.
    until_ms: i64,
}

/// What an event says about one of a caller's drafts.
fn subject<'a>(caller: &'a Caller, name: &'a ObjectName, key: &'a ObjectKey, meta: &'a ObjectMeta) -> Subject<'a> {
    Subject {
        tenant: caller.tenant().map(|t| t.as_str()),
        object_name: name.as_str(),
        key,
        size: meta.size,
        content_type: Some(&meta.content_type),
    }
}

/// What `draft.confirmed` carries besides its subject.
fn confirmed_extra(
    draft_name: &ObjectName,
    metadata: Option<&Metadata>,
    report: &ContentReport,
    image: Option<&ImageReport>,
    set_id: Option<&str>,
) -> serde_json::Value {
    let mut extra = serde_json::json!({ "content": report, "draft_name": draft_name.as_str() });
    if let Some(image) = image {
        extra["image"] = serde_json::json!(image);
    }
    if let Some(metadata) = metadata {
        extra["metadata"] = serde_json::json!(metadata);
    }
    if let Some(set_id) = set_id {
        extra["set_id"] = serde_json::json!(set_id);
    }
    extra
}

/// The metadata name of the set an object was confirmed in.
pub(crate) const SET_METADATA: &str = "draftstore-set";

/// The metadata a confirmed object is stored with: the caller's, the draft's checksum (for `stat-object`), and the
/// set it was confirmed in.
fn stored_metadata(mut metadata: Metadata, draft: &ObjectMeta, set_id: Option<&str>) -> Metadata {
    let sha256 = draft.sha256.clone().or_else(|| draft.declared.sha256.clone());
    draftstore_storage::Declared { length: None, sha256 }.insert_into(&mut metadata);
    if let Some(set_id) = set_id {
        metadata.insert(SET_METADATA.to_owned(), set_id.to_owned());
    }
    metadata
}

/// Characters escaped in a `filename*` value (RFC 8187): all but its attr-chars.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// How a download URL presents an object of `content_type`, fixed in its signature: the response's type and
/// disposition, whatever the object holds when the URL is used (a draft may be uploaded again). Inline only for the
/// types of [`inline_type`] (of [`inline_type_on_request`] when asked for), with the type it gives; every other type
/// is an attachment, with the object's own type. An attachment when asked for or when a file name is given;
/// `inline` asked for another type is refused.
fn presentation(content_type: &ContentType, download: &Download) -> Result<Conditions> {
    let inline = match download.disposition {
        Some(Disposition::Inline) => inline_type_on_request(content_type),
        _ => inline_type(content_type),
    };
    let kind = match (download.disposition, &inline) {
        (Some(Disposition::Inline), None) => {
            return Err(Error::InvalidRequest(format!(
                "disposition: '{}' is served as an attachment only; inline are raster images, PDF, \
                 text/plain; charset=utf-8, audio and video",
                content_type.essence()
            )));
        }
        (Some(Disposition::Inline), Some(_)) => "inline",
        (Some(Disposition::Attachment), _) | (None, None) => "attachment",
        (None, Some(_)) if download.filename.is_some() => "attachment",
        (None, Some(_)) => "inline",
    };
    let disposition = match &download.filename {
        Some(filename) => {
            format!("{kind}; filename*=UTF-8''{}", percent_encoding::utf8_percent_encode(filename, ATTR_CHAR))
        }
        None => kind.to_owned(),
    };
    let response_content_type = match (kind, inline) {
        ("inline", Some(inline)) => inline,
        _ => content_type.clone(),
    };
    Ok(Conditions {
        disposition: Some(disposition),
        response_content_type: Some(response_content_type),
        ..Conditions::default()
    })
}

//! Sets: drafts confirmed all together or not at all (`confirm-set`).
//!
//! Every draft of a set is checked as a single confirm checks it (limits, content, the hook), and its final name
//! must be free. Nothing has changed until then. From there on a set is carried out through records in the events
//! bucket, under `sets/<namespace>/<idempotency key>/`, so that whoever finds them (the request itself, a repeat of
//! it on any replica, the cleaner) can finish the work of one that was cut off, and any number of them at once:
//!
//! 1. the **journal** (`journal`) is written before the first copy: what goes where, from which draft version;
//! 2. each draft is **copied** under its final name, never onto an existing object, marked with the set's id;
//! 3. the **decision** (`decision`), written once with a conditional write whoever gets there first: *commit*
//!    when every copy is in place, *abort* when one cannot be (the name was taken meanwhile, the draft was removed
//!    or replaced);
//! 4. on commit the drafts are deleted and the events recorded; on abort the copies marked with the set's id are
//!    deleted and the drafts stay;
//! 5. the **outcome** (`outcome`) replaces the journal and the decision, and answers a repeat of the request for
//!    OBJECT_LIFETIME.
//!
//! Until the decision exists, every actor copies and proposes; after it, every actor finishes what it says. So
//! after any crash, once someone drives the journal again, either every draft is in the main bucket under its final
//! name and gone from the drafts, or none is and every draft is still there.

use std::collections::HashSet;
use std::time::Duration;

use draftstore_api::{ContentReport, ImageReport};
use draftstore_storage::{BucketName, LIST_PAGE, MoveOptions, ObjectKey, Progress};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;

use super::images::Prepared;
use super::{Buckets, Confirmation, DraftService, Rewritten, SET_METADATA, confirmed_extra, stored_metadata, subject};
use crate::auth::Caller;
use crate::domain::{IdempotencyKey, MAX_SET_DRAFTS, Metadata, ObjectName};
use crate::error::{Error, Result};
use crate::hooks::{EventType, Subject};
use crate::images::ImageKeys;

/// Where the records of sets are kept in the events bucket.
const SETS: &str = "sets/";
/// Drafts checked, and copied, at once.
const CONCURRENCY: usize = 16;
/// How old a journal must be before the cleaner drives it: the request that wrote it may still be at work (two
/// actors driving one set are safe, only wasteful).
pub const RECOVERY_GRACE: Duration = Duration::from_secs(60);

/// One draft of a set, as a request names it.
#[derive(Debug, Clone)]
pub struct SetDraft {
    pub name: ObjectName,
    /// The confirmed object's name; the draft's own when `None`.
    pub final_name: Option<ObjectName>,
    /// Stored with the confirmed object.
    pub metadata: Option<Metadata>,
}

impl SetDraft {
    /// One draft of a set request, each field checked: the same rules on every protocol.
    pub fn parse(object_name: &str, final_name: Option<&str>, metadata: Option<Metadata>) -> Result<Self> {
        let promotion = super::Promotion::parse(final_name, metadata, None)?;
        Ok(Self {
            name: crate::domain::parse_object_name(object_name)?,
            final_name: promotion.final_name,
            metadata: promotion.metadata,
        })
    }
}

/// A set confirmed.
#[derive(Debug, Clone)]
pub struct SetConfirmation {
    pub set_id: String,
    /// Each object, in the order of the request.
    pub objects: Vec<Confirmation>,
}

/// What a cleaner pass did to sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRecovery {
    /// Sets cut off by a crash, carried to their end (committed or rolled back).
    pub finished: u64,
    /// Outcomes older than OBJECT_LIFETIME removed.
    pub expired: u64,
    /// Journals that could not be finished this time (the store failing); the next pass tries again.
    pub failed: u64,
}

/// The journal: what a set moves where.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    id: String,
    /// The request's digest: the same key with other drafts is refused.
    fingerprint: String,
    idempotency_key: String,
    tenant: Option<String>,
    /// Unix milliseconds.
    created_ms: i64,
    members: Vec<Member>,
}

/// One draft of a journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    name: String,
    key: String,
    final_name: String,
    final_key: String,
    /// The draft version checked; another is not copied.
    etag: Option<String>,
    size: u64,
    content_type: String,
    /// What the confirmed object is stored with, DraftStore's own entries included.
    stored: Metadata,
    /// The caller's metadata, for the event.
    metadata: Option<Metadata>,
    content: ContentReport,
    /// What the image pipeline made of it, when it is an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<ImageReport>,
    /// Its original stripped of metadata, staged in the image's folder: what is copied instead of the draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staged: Option<Staged>,
}

/// An original stripped of its metadata, staged to be copied.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Staged {
    /// Its key in the records bucket.
    key: String,
    etag: Option<String>,
    size: u64,
    /// Base64.
    sha256: String,
}

impl Member {
    /// What its copy copies, as the checks found it: the draft, or its staged original. Its bucket and key.
    fn source(&self, buckets: &Buckets) -> Result<(BucketName, draftstore_storage::ObjectMeta)> {
        let key = parse_key(&self.key)?;
        let (bucket, key, size, etag) = match &self.staged {
            None => (buckets.draft.clone(), key, self.size, self.etag.clone()),
            Some(staged) => (buckets.events.clone(), parse_key(&staged.key)?, staged.size, staged.etag.clone()),
        };
        let meta = draftstore_storage::ObjectMeta {
            key,
            size,
            content_type: draftstore_storage::ContentType::parse(&self.content_type)
                .unwrap_or_else(|_| draftstore_storage::ContentType::octet_stream()),
            last_modified: OffsetDateTime::UNIX_EPOCH,
            sha256: None,
            declared: draftstore_storage::Declared::default(),
            etag,
            metadata: Metadata::new(),
            origin: None,
        };
        Ok((bucket, meta))
    }

    /// The confirmed object's size: its staged original's, or the draft's.
    fn promoted_size(&self) -> u64 {
        self.staged.as_ref().map_or(self.size, |s| s.size)
    }
}

/// Why a set was rolled back after its journal was written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
enum Abort {
    /// Another object took the final name meanwhile.
    Taken { name: String, final_name: String },
    /// The draft was removed meanwhile.
    Gone { name: String },
    /// The draft was replaced meanwhile.
    Changed { name: String },
}

impl Abort {
    fn error(&self) -> Error {
        match self {
            Self::Taken { name, final_name } => in_set(name, Error::NameTaken(final_name.clone())),
            Self::Gone { name } => in_set(name, Error::ObjectNotFound(name.clone())),
            Self::Changed { name } => {
                in_set(name, Error::DraftChanged("it was replaced while the set was confirmed".to_owned()))
            }
        }
    }
}

/// The decision: commit (no abort) or abort, written once.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decision {
    abort: Option<Abort>,
}

/// The outcome, kept for the idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Outcome {
    journal: Journal,
    abort: Option<Abort>,
}

/// The keys of one set's records.
struct Records {
    journal: ObjectKey,
    decision: ObjectKey,
    outcome: ObjectKey,
}

impl Records {
    /// The keys under the tenant's name and the idempotency key, readable in a listing; where those make no
    /// valid key (a tenant name long enough to take the key past 1,024 bytes), under their digest instead.
    fn new(tenant: Option<&str>, idempotency_key: &str) -> Self {
        let folder = match tenant {
            Some(tenant) => format!("{SETS}tenant/{tenant}/{idempotency_key}/"),
            None => format!("{SETS}any/{idempotency_key}/"),
        };
        let key = |name: &str| ObjectKey::parse(&format!("{folder}{name}"));
        if let (Ok(journal), Ok(decision), Ok(outcome)) = (key("journal"), key("decision"), key("outcome")) {
            return Self { journal, decision, outcome };
        }
        let digest = hex::encode(sha2::Sha256::digest(folder.as_bytes()));
        // 64 hex digits under a fixed folder: always a valid key.
        let key = |name: &str| ObjectKey::parse(&format!("{SETS}digest/{digest}/{name}")).expect("a digest's key");
        Self { journal: key("journal"), decision: key("decision"), outcome: key("outcome") }
    }

    fn of(journal: &Journal) -> Self {
        Self::new(journal.tenant.as_deref(), &journal.idempotency_key)
    }
}

fn in_set(name: &str, error: Error) -> Error {
    Error::InSet { name: name.to_owned(), error: Box::new(error) }
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn set_id() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    format!("set_{}", hex::encode(bytes))
}

impl DraftService {
    /// Confirms drafts all together or not at all; see the module's documentation. The same idempotency key
    /// again answers the recorded outcome; with other drafts it is `IdempotencyKeyReused`.
    pub async fn confirm_set(
        &self,
        caller: &Caller,
        idempotency_key: &IdempotencyKey,
        drafts: &[SetDraft],
    ) -> Result<SetConfirmation> {
        let outcome = self.confirm_set_inner(caller, idempotency_key, drafts).await;
        let label = match &outcome {
            Ok(_) => "confirmed",
            Err(e) => e.error_type().as_str(),
        };
        metrics::counter!("draftstore_sets_total", "outcome" => label).increment(1);
        outcome
    }

    async fn confirm_set_inner(
        &self,
        caller: &Caller,
        idempotency_key: &IdempotencyKey,
        drafts: &[SetDraft],
    ) -> Result<SetConfirmation> {
        if !(1..=MAX_SET_DRAFTS).contains(&drafts.len()) {
            return Err(Error::InvalidRequest(format!("drafts: a set holds 1 to {MAX_SET_DRAFTS} drafts")));
        }
        let (mut names, mut finals) = (HashSet::new(), HashSet::new());
        for draft in drafts {
            let final_name = draft.final_name.as_ref().unwrap_or(&draft.name);
            if !names.insert(&draft.name) {
                return Err(Error::InvalidRequest(format!("drafts: '{}' is named twice", draft.name)));
            }
            if !finals.insert(final_name) {
                return Err(Error::InvalidRequest(format!("drafts: final name '{final_name}' is given twice")));
            }
        }
        let tenant = caller.tenant().map(|t| t.as_str().to_owned());
        let fingerprint = fingerprint(tenant.as_deref(), drafts);
        let records = Records::new(tenant.as_deref(), idempotency_key.as_str());
        let reused = || Error::IdempotencyKeyReused(idempotency_key.as_str().to_owned());

        // A repeat: the recorded outcome, or the journal of a set still under way (or cut off), driven to its end.
        if let Some(outcome) = self.read::<Outcome>(&records.outcome).await? {
            if outcome.journal.fingerprint != fingerprint {
                return Err(reused());
            }
            return answer(&self.0.buckets.main, &outcome.journal, outcome.abort.as_ref());
        }
        if let Some(journal) = self.read::<Journal>(&records.journal).await? {
            if journal.fingerprint != fingerprint {
                return Err(reused());
            }
            return self.drive(&journal).await;
        }

        let id = set_id();
        let checked = futures_util::stream::iter(drafts.iter().cloned())
            .map(|draft| {
                let id = id.clone();
                async move { self.check_member(caller, &draft, &id).await }
            })
            .buffered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        // Every draft passed: the images' variants and stripped originals are written, under the set's folders,
        // before the journal names them. A set cut off here leaves them unreachable, for the cleaner.
        let members = futures_util::stream::iter(checked)
            .map(|(member, image)| {
                let id = id.clone();
                async move { self.stage_member(member, image, &id).await }
            })
            .buffered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let journal = Journal {
            id,
            fingerprint,
            idempotency_key: idempotency_key.as_str().to_owned(),
            tenant,
            created_ms: now_ms(),
            members,
        };
        if !self.write(&records.journal, &journal, true).await? {
            // Another request with this key got there first.
            let theirs = self.read::<Journal>(&records.journal).await?;
            return match theirs {
                Some(theirs) if theirs.fingerprint == journal.fingerprint => self.drive(&theirs).await,
                Some(_) => Err(reused()),
                None => Err(Error::DraftChanged(
                    "another request with this idempotency_key was under way; repeat the request".to_owned(),
                )),
            };
        }
        self.drive(&journal).await
    }

    /// Checks one draft of a set as a single confirm would, and that its final name is free: the journal's entry
    /// for it, or why the set is refused.
    async fn check_member(
        &self,
        caller: &Caller,
        draft: &SetDraft,
        set_id: &str,
    ) -> Result<(Member, Option<Prepared>)> {
        let name = draft.name.as_str();
        let final_name = draft.final_name.as_ref().unwrap_or(&draft.name);
        let (key, final_key) = (caller.key(&draft.name)?, caller.key(final_name)?);
        let main = &self.0.buckets.main;
        let (looked_up, taken) = tokio::join!(
            self.look_up_draft(&key),
            self.call("look up a final name", self.0.store.objects.head(main, &final_key))
        );
        match taken {
            Ok(_) => return Err(in_set(name, Error::NameTaken(final_name.to_string()))),
            Err(Error::ObjectNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let (meta, first) = looked_up.map_err(|e| match e {
            Error::ObjectNotFound(_) => in_set(name, Error::ObjectNotFound(name.to_owned())),
            other => other,
        })?;
        let subject = subject(caller, &draft.name, &key, &meta);
        let passed = match self.check(&subject, (&meta, &first)).await? {
            Ok(passed) => passed,
            Err(refusal) => {
                tracing::warn!(%key, reason = %refusal, "a draft of a set failed its checks; nothing of the set is confirmed");
                return Err(in_set(name, refusal));
            }
        };
        let member = Member {
            name: name.to_owned(),
            key: key.to_string(),
            final_name: final_name.to_string(),
            final_key: final_key.to_string(),
            etag: meta.etag.clone(),
            size: meta.size,
            content_type: meta.content_type.to_string(),
            stored: stored_metadata(draft.metadata.clone().unwrap_or_default(), &meta, Some(set_id)),
            metadata: draft.metadata.clone(),
            content: passed.report,
            image: passed.image.as_ref().map(|i| i.report.clone()),
            staged: None,
        };
        Ok((member, passed.image))
    }

    /// Writes what the image pipeline made of a member, and stages its stripped original to be copied instead of
    /// the draft, with its own checksum.
    async fn stage_member(&self, mut member: Member, image: Option<Prepared>, set_id: &str) -> Result<Member> {
        let Some(image) = image else { return Ok(member) };
        let final_key = parse_key(&member.final_key)?;
        let content_type = draftstore_storage::ContentType::parse(&member.content_type)
            .unwrap_or_else(|_| draftstore_storage::ContentType::octet_stream());
        let folder = ImageKeys::new(set_id, &final_key);
        if let Some(staged) = self.store_image(&folder, &final_key, &image, &content_type).await? {
            let metadata = member.metadata.clone().unwrap_or_default();
            member.stored = stored_metadata(metadata, &staged, Some(set_id));
            let sha256 = staged.sha256.map(|c| c.to_string()).unwrap_or_default();
            member.staged = Some(Staged { key: staged.key.to_string(), etag: staged.etag, size: staged.size, sha256 });
        }
        Ok(member)
    }

    /// Carries a journaled set to its end, whoever wrote the journal, and answers its outcome.
    async fn drive(&self, journal: &Journal) -> Result<SetConfirmation> {
        let records = Records::of(journal);
        let decision = match self.read::<Decision>(&records.decision).await? {
            Some(decision) => decision,
            None => {
                let proposed = Decision { abort: self.copy_members(journal).await? };
                if self.write(&records.decision, &proposed, true).await? {
                    // No decision was there: none yet, or one already carried out and forgotten by an actor that
                    // finished the set while this one copied. The outcome tells: written before the decision is
                    // forgotten, it stands, and this late proposal is withdrawn with the copies it made.
                    if let Some(outcome) = self.read::<Outcome>(&records.outcome).await? {
                        return self.withdraw_late(journal, &records, &outcome).await;
                    }
                    proposed
                } else {
                    // Another actor decided first: its decision stands.
                    self.read::<Decision>(&records.decision).await?.ok_or_else(|| {
                        Error::DraftChanged("the set's decision disappeared; repeat the request".to_owned())
                    })?
                }
            }
        };
        match &decision.abort {
            None => self.commit(journal).await?,
            Some(_) => self.roll_back(journal).await?,
        }
        let outcome = Outcome { journal: journal.clone(), abort: decision.abort };
        self.write(&records.outcome, &outcome, false).await?;
        self.forget(&records).await;
        answer(&self.0.buckets.main, journal, outcome.abort.as_ref())
    }

    /// Undoes what an actor that came too late did to a set already finished by another: the copies it made, when
    /// the set was rolled back (a committed set's drafts are gone, so it could copy none), and its decision. Answers
    /// the recorded outcome.
    async fn withdraw_late(&self, journal: &Journal, records: &Records, outcome: &Outcome) -> Result<SetConfirmation> {
        tracing::info!(set = journal.id, "a set was finished by another actor meanwhile; its outcome stands");
        if outcome.abort.is_some() {
            self.roll_back(journal).await?;
        }
        self.forget(records).await;
        answer(&self.0.buckets.main, &outcome.journal, outcome.abort.as_ref())
    }

    /// Copies every draft under its final name; `Some` reason when one cannot be, `Err` when the store fails.
    async fn copy_members(&self, journal: &Journal) -> Result<Option<Abort>> {
        let main = &self.0.buckets.main;
        let copied = futures_util::stream::iter(journal.members.iter().cloned())
            .map(|member| async move {
                let final_key = parse_key(&member.final_key)?;
                let (from, source) = member.source(&self.0.buckets)?;
                let key = source.key.clone();
                let options = MoveOptions {
                    no_overwrite: true,
                    if_match: source.etag.clone(),
                    to_key: (final_key != key).then(|| final_key.clone()),
                    metadata: Some(member.stored.clone()),
                    keep_source: true,
                    source: Some(source),
                    origin: None,
                };
                let progress = Progress::default();
                let copy = self.0.store.objects.move_object(&from, main, &key, &options, &progress);
                let abort = match self.call_with_progress("copy a draft of the set", &progress, copy).await {
                    Ok(()) => return Ok(None),
                    Err(Error::ObjectAlreadyExists(_)) => {
                        Abort::Taken { name: member.name.clone(), final_name: member.final_name.clone() }
                    }
                    Err(Error::ObjectNotFound(_)) => Abort::Gone { name: member.name.clone() },
                    Err(Error::DraftChanged(_)) => Abort::Changed { name: member.name.clone() },
                    Err(e) => return Err(e),
                };
                // A copy already in place, by this set (an earlier attempt, another actor), is no reason to abort.
                Ok(self.copy_of(journal, &final_key).await?.is_none().then_some(abort))
            })
            .buffered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(copied.into_iter().flatten().next())
    }

    /// Whether the object under `final_key` is this set's copy: its etag when it is.
    async fn copy_of(&self, journal: &Journal, final_key: &ObjectKey) -> Result<Option<Option<String>>> {
        match self.call("look up a copy of the set", self.0.store.objects.head(&self.0.buckets.main, final_key)).await {
            Ok(meta) => Ok((meta.metadata.get(SET_METADATA) == Some(&journal.id)).then_some(meta.etag)),
            Err(Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// After a commit: the events recorded (once, whoever finishes), the drafts deleted.
    async fn commit(&self, journal: &Journal) -> Result<()> {
        if let Some(outbox) = &self.0.outbox {
            let now = OffsetDateTime::now_utc();
            let mut events = Vec::with_capacity(journal.members.len() + 1);
            let mut objects = Vec::with_capacity(journal.members.len());
            for (index, member) in journal.members.iter().enumerate() {
                let (final_name, final_key) = (parse_name(&member.final_name)?, parse_key(&member.final_key)?);
                let content_type = draftstore_storage::ContentType::parse(&member.content_type).ok();
                let subject = Subject {
                    tenant: journal.tenant.as_deref(),
                    object_name: final_name.as_str(),
                    key: &final_key,
                    size: member.promoted_size(),
                    content_type: content_type.as_ref(),
                };
                let draft_name = parse_name(&member.name)?;
                let (metadata, image) = (member.metadata.as_ref(), member.image.as_ref());
                let extra = confirmed_extra(&draft_name, metadata, &member.content, image, Some(&journal.id));
                let payload = subject.payload(EventType::Confirmed.as_str(), now, extra);
                events.push((EventType::Confirmed, format!("{}-{index}", journal.id), payload));
                objects.push(serde_json::json!({
                    "object_name": member.final_name,
                    "key": member.final_key,
                    "draft_name": member.name,
                    "size": member.promoted_size(),
                    "content_type": member.content_type,
                }));
            }
            let timestamp = crate::domain::rfc3339(now);
            let payload = serde_json::json!({
                "type": EventType::SetConfirmed.as_str(),
                "timestamp": timestamp,
                "data": {
                    "tenant": journal.tenant,
                    "set_id": journal.id,
                    "idempotency_key": journal.idempotency_key,
                    "objects": objects,
                    "time": timestamp,
                },
            });
            events.push((EventType::SetConfirmed, journal.id.clone(), payload));
            futures_util::stream::iter(events)
                .map(|(kind, id, payload)| {
                    self.call("record the event", outbox.record_once(kind, id, journal.created_ms, payload))
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await?;
        }
        // Each draft only as the version copied: one uploaded again since is another draft, and stays.
        let (mut versions, mut unversioned) = (Vec::new(), Vec::new());
        for member in &journal.members {
            let key = parse_key(&member.key)?;
            match &member.etag {
                Some(etag) => versions.push((key, etag.clone())),
                None => unversioned.push(key),
            }
        }
        let draft = &self.0.buckets.draft;
        let mut failed = self
            .call("delete the drafts of the set", self.0.store.objects.delete_versions(draft, &versions))
            .await?
            .failures;
        if !unversioned.is_empty() {
            failed.extend(
                self.call("delete the drafts of the set", self.0.store.objects.delete_many(draft, &unversioned))
                    .await?,
            );
        }
        if let Some(failure) = failed.first() {
            return Err(Error::StorageUnavailable {
                operation: "delete the drafts of the set",
                source: draftstore_storage::Error::unavailable(failure.message.clone(), None),
            });
        }
        // The staged originals were copied; their folders keep only the variants and the record.
        let staged = journal
            .members
            .iter()
            .filter_map(|member| member.staged.as_ref())
            .map(|staged| parse_key(&staged.key))
            .collect::<Result<Vec<_>>>()?;
        if !staged.is_empty() {
            let events = &self.0.buckets.events;
            let removed = self.0.store.objects.delete_many(events, &staged);
            if let Err(e) = self.call("delete the staged originals of the set", removed).await {
                tracing::warn!(error = %e.chain(), set = journal.id, "failed to remove staged originals; the cleaner will");
            }
        }
        Ok(())
    }

    /// After an abort: this set's copies deleted; the drafts stay.
    async fn roll_back(&self, journal: &Journal) -> Result<()> {
        let main = &self.0.buckets.main;
        for member in &journal.members {
            let final_key = parse_key(&member.final_key)?;
            // Only the copy found: an object confirmed under that name since is another, and stays.
            match self.copy_of(journal, &final_key).await? {
                Some(Some(etag)) => {
                    let removed = self.0.store.objects.delete_version(main, &final_key, &etag);
                    self.call("remove a copy of the set", removed).await?;
                }
                Some(None) => {
                    self.call("remove a copy of the set", self.0.store.objects.delete(main, &final_key)).await?
                }
                None => {}
            }
            if member.image.is_some() {
                self.forget_image_or_leave(&ImageKeys::new(&journal.id, &final_key)).await;
            }
        }
        Ok(())
    }

    /// Removes a set's journal and decision once its outcome is written. Best effort: what is left, a server
    /// removes at start-up and the cleaner within a minute (a journal with an outcome is only removed).
    async fn forget(&self, records: &Records) {
        let events = &self.0.buckets.events;
        // The decision first: a journal left alone is recognised by its outcome.
        for key in [&records.decision, &records.journal] {
            if let Err(e) = self.call("remove a set's record", self.0.store.objects.delete(events, key)).await {
                tracing::warn!(error = %e.chain(), %key, "failed to remove a set's record; the cleaner will");
            }
        }
    }

    /// One pass over the records of sets: journals older than `grace` driven to their end (sets cut off by a
    /// crash), outcomes older than OBJECT_LIFETIME removed.
    pub async fn recover_sets(&self, now: OffsetDateTime, grace: Duration) -> Result<SetRecovery> {
        let events = &self.0.buckets.events;
        let mut recovery = SetRecovery::default();
        let mut token = None;
        loop {
            let list = self.0.store.objects.list_prefix(events, SETS, token.as_deref(), LIST_PAGE);
            let page = self.call("list the records of sets", list).await?;
            for object in page.objects {
                let age = now - object.last_modified;
                if object.key.as_str().ends_with("/outcome") && age > self.0.set_record_lifetime {
                    self.call("remove a set's outcome", self.0.store.objects.delete(events, &object.key)).await?;
                    recovery.expired += 1;
                } else if object.key.as_str().ends_with("/journal") && age >= grace {
                    match self.recover(&object.key).await {
                        Ok(()) => recovery.finished += 1,
                        Err(e) => {
                            tracing::warn!(error = %e.chain(), key = %object.key, "failed to finish a set; the next pass will");
                            recovery.failed += 1;
                        }
                    }
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(recovery),
            }
        }
    }

    /// Finishes the set of one journal.
    async fn recover(&self, key: &ObjectKey) -> Result<()> {
        let Some(journal) = self.read::<Journal>(key).await? else { return Ok(()) };
        let records = Records::of(&journal);
        if self.read::<Outcome>(&records.outcome).await?.is_some() {
            self.forget(&records).await;
            return Ok(());
        }
        match self.drive(&journal).await {
            // An abort is an outcome too.
            Ok(_) | Err(Error::InSet { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads a record of sets, `None` when absent.
    async fn read<T: serde::de::DeserializeOwned>(&self, key: &ObjectKey) -> Result<Option<T>> {
        match self.call("read a set's record", self.0.store.objects.get_record(&self.0.buckets.events, key)).await {
            Ok(body) => serde_json::from_slice(&body).map(Some).map_err(|e| Error::Internal {
                operation: "read a set's record",
                source: draftstore_storage::Error::other(format!("'{key}' is not a set's record"), e),
            }),
            Err(Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a record of sets; with `if_absent`, `false` when one was there.
    async fn write<T: Serialize>(&self, key: &ObjectKey, record: &T, if_absent: bool) -> Result<bool> {
        let body = bytes::Bytes::from(serde_json::to_vec(record).expect("a record serializes"));
        let put = self.0.store.objects.put_record(&self.0.buckets.events, key, body, if_absent);
        self.call("write a set's record", put).await
    }
}

/// The answer to a set's request, from its journal and decision.
fn answer(main: &BucketName, journal: &Journal, abort: Option<&Abort>) -> Result<SetConfirmation> {
    if let Some(abort) = abort {
        return Err(abort.error());
    }
    let objects = journal
        .members
        .iter()
        .map(|member| {
            let rewritten = match &member.staged {
                Some(staged) => Some(Rewritten {
                    size: staged.size,
                    sha256: draftstore_storage::Checksum::parse(&staged.sha256).map_err(|e| Error::Internal {
                        operation: "read a set's journal",
                        source: draftstore_storage::Error::other("a journal holds an invalid checksum", e),
                    })?,
                }),
                None => None,
            };
            Ok(Confirmation {
                object_name: parse_name(&member.final_name)?,
                final_location: format!("{main}/{}", member.final_key),
                content: Some(member.content.clone()),
                image: member.image.clone(),
                rewritten,
            })
        })
        .collect::<Result<_>>()?;
    Ok(SetConfirmation { set_id: journal.id.clone(), objects })
}

/// The digest of a set's request: the caller and each draft with its final name and metadata.
fn fingerprint(tenant: Option<&str>, drafts: &[SetDraft]) -> String {
    let drafts: Vec<_> = drafts
        .iter()
        .map(|d| (d.name.as_str(), d.final_name.as_ref().map(ObjectName::as_str), d.metadata.as_ref()))
        .collect();
    let json = serde_json::to_vec(&(tenant, drafts)).expect("a request serializes");
    hex::encode(sha2::Sha256::digest(json))
}

fn parse_key(key: &str) -> Result<ObjectKey> {
    ObjectKey::parse(key).map_err(|e| Error::Internal {
        operation: "read a set's journal",
        source: draftstore_storage::Error::other("a journal holds an invalid key", e),
    })
}

fn parse_name(name: &str) -> Result<ObjectName> {
    ObjectName::parse(name).map_err(|e| Error::Internal {
        operation: "read a set's journal",
        source: draftstore_storage::Error::other("a journal holds an invalid name", e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_too_long_for_a_readable_record_key_gets_one_from_its_digest() {
        let key = "k".repeat(128);
        let readable = Records::new(Some("alice"), &key);
        assert_eq!(readable.journal.as_str(), format!("sets/tenant/alice/{key}/journal"));
        // 1,000 bytes of tenant and 128 of key: past the 1,024 bytes of a key, once a panic.
        let (long, other) = ("t".repeat(1000), format!("{}u", "t".repeat(999)));
        let records = Records::new(Some(&long), &key);
        assert!(records.journal.as_str().starts_with("sets/digest/"), "{}", records.journal);
        assert!(records.journal.as_str().ends_with("/journal") && records.outcome.as_str().ends_with("/outcome"));
        assert_eq!(Records::new(Some(&long), &key).decision, records.decision, "the same set finds its records again");
        assert_ne!(Records::new(Some(&other), &key).journal, records.journal, "another tenant's are others");
        assert_ne!(Records::new(Some(&long), "k").journal, records.journal, "another key's are others");
    }
}

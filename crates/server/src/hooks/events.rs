//! Events (`draft.confirmed`, `draft.rejected`, `draft.discarded`, `draft.expired`), delivered at least once to
//! EVENTS_URL. Each is first written to an outbox in the store itself (`outbox/` in `<BUCKET_NAME>-events`, a
//! bucket no tenant can name), before the operation that caused it answers, so that DraftStore stays stateless and
//! a crash loses nothing. A worker in every replica delivers them, signed, with the same `webhook-id` on every
//! retry, and removes each one only after a 2xx.
//!
//! Replicas share the work through leases: before delivering an event a replica creates `leases/<id>` with a
//! conditional write that only one writer can win, naming itself and an expiry; the others skip the event until
//! the lease expires (the holder crashed or stalled). Two replicas deliver the same event only when a lease expires
//! during a delivery, or on a store that ignores conditional writes and two replicas claim within the same
//! instant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use bytes::Bytes;
use draftstore_storage::{self as storage, BucketName, ContentType, LIST_PAGE, ObjectKey, ObjectStore};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;
use url::Url;

use super::HookSettings;
use super::{WebhookSecret, message_id};
use crate::error::Error;
use crate::gateway::StorageCalls;
use crate::telemetry;

/// Where outbox entries are kept, oldest first by name.
const OUTBOX: &str = "outbox/";
/// Where leases are kept.
const LEASES: &str = "leases/";
/// Where a deleted object leaves word that it was in the main bucket until then, for a `draft.confirmed` entry
/// still waiting to see it there.
const DELETED: &str = "deleted/";
/// How often a worker removes the words of deletions no entry can still wait for.
const SWEEP: Duration = Duration::from_secs(300);
/// Entries handled per pass, at most.
const PASS: usize = 100;
/// Entries a pass looks through, at most, for those due: it reads past the ones waiting out a backoff, so that
/// entries a receiver keeps refusing cannot hold back the ones behind them.
const SCAN: usize = 10_000;
/// How long a lease outlives the longest delivery (HOOK_TIMEOUT), when it is not renewed.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How often the outbox is read when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);
/// How long a `draft.confirmed` entry may wait for its object to be in the main bucket: written before the move,
/// it is dropped when the move never happened.
const CONFIRM_GRACE: Duration = Duration::from_secs(120);

/// What happened to a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Confirmed,
    Rejected,
    Discarded,
    Expired,
    ObjectDeleted,
    SetConfirmed,
}

impl EventType {
    const ALL: [EventType; 6] =
        [Self::Confirmed, Self::Rejected, Self::Discarded, Self::Expired, Self::ObjectDeleted, Self::SetConfirmed];

    /// The type named `text`, as a metric label: `unknown` for any other text.
    fn label(text: &str) -> &'static str {
        Self::ALL.iter().map(|kind| kind.as_str()).find(|name| *name == text).unwrap_or("unknown")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "draft.confirmed",
            Self::Rejected => "draft.rejected",
            Self::Discarded => "draft.discarded",
            Self::Expired => "draft.expired",
            Self::ObjectDeleted => "object.deleted",
            Self::SetConfirmed => "set.confirmed",
        }
    }
}

/// The draft an event is about.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// `None` when requests carry no credentials (AUTH_MODE=none), and for `draft.expired`, which the cleaner
    /// finds by store key.
    pub tenant: Option<&'a str>,
    /// The name the client used; for `draft.expired`, the store key.
    pub object_name: &'a str,
    /// The key in the store (`<tenant>/<name>` with credentials).
    pub key: &'a ObjectKey,
    pub size: u64,
    /// `None` for `draft.expired`: a listing does not say.
    pub content_type: Option<&'a ContentType>,
}

impl Subject<'_> {
    /// The body of a hook call or an event about this draft, `{"type", "timestamp", "data": {…}}`, the data holding
    /// the subject, the time, and `extra` (an object) beside them.
    pub fn payload(&self, kind: &str, at: OffsetDateTime, extra: serde_json::Value) -> serde_json::Value {
        let timestamp = crate::domain::rfc3339(at);
        let mut data = serde_json::json!({
            "tenant": self.tenant,
            "object_name": self.object_name,
            "key": self.key.as_str(),
            "size": self.size,
            "content_type": self.content_type.map(ContentType::as_str),
            "time": timestamp,
        });
        if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        serde_json::json!({ "type": kind, "timestamp": timestamp, "data": data })
    }
}

/// An outbox entry.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The `webhook-id` of every delivery attempt.
    id: String,
    /// Unix milliseconds.
    created_ms: i64,
    /// Deliver only once this key is in the main bucket (`draft.confirmed`, written before the move).
    requires_main: Option<String>,
    /// With `requires_main`: the object must be one of these origins ([`storage::ObjectMeta::origin`]), the move's
    /// own, so that another object under the key (an older one, when the move never happened) does not count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    origins: Vec<String>,
    /// The body to POST.
    payload: serde_json::Value,
}

/// A lease on an entry.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    owner: String,
    until_ms: i64,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Records events in the store.
#[derive(Debug, Clone)]
pub struct Outbox {
    storage: Arc<dyn ObjectStore>,
    bucket: BucketName,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(storage: Arc<dyn ObjectStore>, bucket: BucketName) -> Self {
        Self { storage, bucket, wake: Arc::new(Notify::new()) }
    }

    /// The outbox in the events bucket, when EVENTS_URL is set.
    pub fn from_settings(storage: &Arc<dyn ObjectStore>, hooks: &HookSettings, events: &BucketName) -> Option<Self> {
        hooks.events_url.as_ref().map(|_| Self::new(Arc::clone(storage), events.clone()))
    }

    /// The bucket the outbox lives in.
    pub fn bucket(&self) -> &BucketName {
        &self.bucket
    }

    /// Writes an event to the outbox under `id` ([`super::message_id`], or [`super::message_id_for`] for an event
    /// that a repeated request must announce under the same id), returning its key there (to withdraw it if what it
    /// announces fails). `requires_main`: deliver only once the subject is in the main bucket.
    pub async fn record(
        &self,
        kind: EventType,
        id: String,
        subject: &Subject<'_>,
        extra: serde_json::Value,
        requires_main: bool,
    ) -> Result<ObjectKey, storage::Error> {
        let payload = subject.payload(kind.as_str(), OffsetDateTime::now_utc(), extra);
        let entry = Entry {
            id,
            created_ms: now_ms(),
            requires_main: requires_main.then(|| subject.key.to_string()),
            origins: Vec::new(),
            payload,
        };
        self.put(kind, &entry, false).await
    }

    /// Writes the `draft.confirmed` of a confirm before its move, under `id`: delivered only once the main bucket
    /// holds, under the subject's key, the object of that move, whose [`storage::ObjectMeta::origin`] is one of
    /// `origins` (the move's name, and the draft's etag, which a move by rename keeps).
    pub async fn record_promotion(
        &self,
        id: String,
        subject: &Subject<'_>,
        extra: serde_json::Value,
        origins: Vec<String>,
    ) -> Result<ObjectKey, storage::Error> {
        let payload = subject.payload(EventType::Confirmed.as_str(), OffsetDateTime::now_utc(), extra);
        let requires_main = Some(subject.key.to_string());
        let entry = Entry { id, created_ms: now_ms(), requires_main, origins, payload };
        self.put(EventType::Confirmed, &entry, false).await
    }

    /// Writes an event under an id of the caller's, recorded at `created_ms`, unless one is there already: an
    /// operation that may be finished twice (a set recovered after a crash) records its events once.
    pub async fn record_once(
        &self,
        kind: EventType,
        id: String,
        created_ms: i64,
        payload: serde_json::Value,
    ) -> Result<ObjectKey, storage::Error> {
        self.put(kind, &Entry { id, created_ms, requires_main: None, origins: Vec::new(), payload }, true).await
    }

    async fn put(&self, kind: EventType, entry: &Entry, if_absent: bool) -> Result<ObjectKey, storage::Error> {
        let key = entry_key(entry.created_ms, &entry.id);
        let body = Bytes::from(serde_json::to_vec(entry).expect("an entry serializes"));
        if self.storage.put_record(&self.bucket, &key, body, if_absent).await? {
            metrics::counter!("draftstore_events_recorded_total", "type" => kind.as_str()).increment(1);
        }
        if entry.requires_main.is_none() {
            self.wake();
        }
        Ok(key)
    }

    /// Has this replica's worker look at the outbox now rather than at its next pass (an entry that waits for its
    /// object in the main bucket is worth looking at once the move is done).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Leaves word that a confirmed object (of this origin) is about to be deleted, so that a `draft.confirmed`
    /// entry recorded before and still waiting to see the object in the main bucket is delivered all the same.
    pub async fn mark_deleted(&self, key: &ObjectKey, origin: Option<&str>) -> Result<(), storage::Error> {
        let body = Bytes::from(match origin {
            Some(origin) => format!("{} {origin}", now_ms()),
            None => now_ms().to_string(),
        });
        self.storage.put_record(&self.bucket, &deleted_key(key), body, false).await.map(drop)
    }

    /// Takes back an entry whose operation failed. Best effort: a `draft.confirmed` entry left behind is dropped
    /// by the worker once its grace has passed without the object in the main bucket.
    pub async fn withdraw(&self, calls: &StorageCalls, key: &ObjectKey) {
        if let Err(e) = calls.call("withdraw an event", self.storage.delete(&self.bucket, key)).await {
            tracing::warn!(error = %e, %key, "failed to withdraw an event; the worker will drop it");
        }
    }
}

fn entry_key(created_ms: i64, id: &str) -> ObjectKey {
    ObjectKey::parse(&format!("{OUTBOX}{created_ms:013}-{id}.json")).expect("an outbox key is valid")
}

/// The word a deletion leaves for the key of a confirmed object.
fn deleted_key(key: &ObjectKey) -> ObjectKey {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(key.as_str().as_bytes()));
    ObjectKey::parse(&format!("{DELETED}{digest}")).expect("a deletion's key is valid")
}

fn lease_key(id: &str) -> ObjectKey {
    ObjectKey::parse(&format!("{LEASES}{id}")).expect("a lease key is valid")
}

/// When an entry was recorded (Unix milliseconds), from its key.
fn created_ms_of(key: &ObjectKey) -> Option<i64> {
    key.as_str().strip_prefix(OUTBOX)?.split_once('-')?.0.parse().ok()
}

/// The id of an entry, from its key.
fn id_of(key: &ObjectKey) -> Option<&str> {
    key.as_str().strip_prefix(OUTBOX)?.split_once('-')?.1.strip_suffix(".json")
}

/// Delivers the outbox to EVENTS_URL.
#[derive(Debug)]
pub struct Deliverer {
    outbox: Outbox,
    main: BucketName,
    url: Url,
    secret: WebhookSecret,
    http: reqwest::Client,
    timeout: Duration,
    /// Bounds the outbox's listing by STORAGE_TIMEOUT.
    calls: StorageCalls,
    max_age: Duration,
    /// This replica, in its leases.
    owner: String,
    /// Entries that failed here: when to try each again, and the backoff that says so.
    retries: HashMap<String, (Instant, ExponentialBackoff)>,
}

/// How a delivery went.
enum Delivery {
    Delivered,
    /// Try again, no sooner than this (a `Retry-After`).
    Failed {
        retry_after: Option<Duration>,
        reason: String,
    },
}

impl Deliverer {
    /// The worker of this replica, when EVENTS_URL is set (and so, the configuration checked, WEBHOOK_SECRET).
    /// `main` is the main bucket, whose objects the events name; `calls` bound the outbox's storage calls.
    pub fn new(outbox: Outbox, hooks: &HookSettings, main: &BucketName, calls: StorageCalls) -> Option<Self> {
        let (url, secret) = hooks.events_url.clone().zip(hooks.secret.clone())?;
        Some(Self {
            outbox,
            main: main.clone(),
            url,
            secret,
            http: super::http_client(),
            timeout: hooks.timeout,
            calls,
            max_age: hooks.events_max_age,
            owner: format!("{}-{}", std::process::id(), &message_id()[4..12]),
            retries: HashMap::new(),
        })
    }

    /// Delivers forever: a pass over the outbox every second, or as soon as an event is recorded here.
    pub async fn run(mut self) {
        let wake = Arc::clone(&self.outbox.wake);
        let mut swept = Instant::now();
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "the event outbox could not be read; trying again");
            }
            if swept.elapsed() > SWEEP {
                swept = Instant::now();
                if let Err(e) = self.sweep().await {
                    tracing::warn!(error = %e, "old words of deletions could not be removed; trying again later");
                }
            }
            let _ = tokio::time::timeout(POLL, wake.notified()).await;
        }
    }

    /// One look at the outbox, oldest first: up to [`PASS`] entries that are due are handled, those waiting out a
    /// backoff skipped, reading on past them through at most [`SCAN`] entries.
    pub async fn pass(&mut self) -> Result<(), Error> {
        let storage = Arc::clone(&self.outbox.storage);
        let bucket = self.outbox.bucket.clone();
        let now = Instant::now();
        let mut listed = std::collections::HashSet::new();
        let (mut handled, mut oldest_ms, mut token) = (0, None, None::<String>);
        loop {
            let list = storage.list_prefix(&bucket, OUTBOX, token.as_deref(), LIST_PAGE);
            let page = self.calls.call("list the event outbox", list).await?;
            for object in page.objects {
                let Some(id) = id_of(&object.key).map(str::to_owned) else { continue };
                oldest_ms = created_ms_of(&object.key).into_iter().chain(oldest_ms).min();
                listed.insert(id.clone());
                if handled == PASS || self.retries.get(&id).is_some_and(|(due, _)| *due > now) {
                    continue;
                }
                handled += 1;
                if let Err(e) = self.handle(&object.key, &id).await {
                    tracing::warn!(error = %e, id, "an event could not be handled; trying again later");
                    self.schedule(&id, None);
                }
            }
            token = page.next;
            if token.is_none() || handled == PASS || listed.len() >= SCAN {
                break;
            }
        }
        metrics::gauge!("draftstore_events_outbox_size").set(listed.len() as f64);
        let age_ms = oldest_ms.map_or(0, |oldest| now_ms().saturating_sub(oldest).max(0));
        metrics::gauge!("draftstore_events_outbox_oldest_seconds").set(age_ms as f64 / 1000.0);
        // Entries gone from the outbox (delivered by another replica, dropped) need no retry state; only a listing
        // that reached the end shows which are gone.
        if token.is_none() || self.retries.len() > 2 * SCAN {
            self.retries.retain(|id, _| listed.contains(id));
        }
        Ok(())
    }

    async fn handle(&mut self, key: &ObjectKey, id: &str) -> Result<(), Error> {
        let storage = Arc::clone(&self.outbox.storage);
        let bucket = self.outbox.bucket.clone();
        if !self.claim(id, Duration::ZERO).await? {
            return Ok(());
        }
        let entry: Entry = match self.calls.call("read an outbox entry", storage.get_record(&bucket, key)).await {
            Ok(body) => match serde_json::from_slice(&body) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::error!(error = %e, %key, "an outbox entry is not DraftStore's; removing it");
                    return self.finish(key, id).await;
                }
            },
            // Delivered by another replica meanwhile.
            Err(Error::ObjectNotFound(_)) => {
                self.retries.remove(id);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let age = Duration::from_millis(u64::try_from(now_ms() - entry.created_ms).unwrap_or_default());
        // A label from the closed set of event types, whatever the stored entry says.
        let kind = EventType::label(entry.payload["type"].as_str().unwrap_or_default());
        if age > self.max_age {
            tracing::error!(
                id,
                r#type = kind,
                age_s = age.as_secs(),
                "an event was not delivered within EVENTS_MAX_AGE; dropped"
            );
            metrics::counter!("draftstore_events_dropped_total", "type" => kind).increment(1);
            return self.finish(key, id).await;
        }
        if let Some(main_key) = &entry.requires_main {
            let main_key = ObjectKey::parse(main_key).map_err(|e| Error::Internal {
                operation: "read an outbox entry",
                source: storage::Error::other("a bad key in the outbox", e),
            })?;
            // The object of this confirm's move, not any object under the key: one that was there before, when the
            // move never happened, is not it.
            let ours = |origin: Option<&str>| {
                entry.origins.is_empty() || origin.is_some_and(|o| entry.origins.iter().any(|mine| mine == o))
            };
            let promoted = match self.calls.call("find the confirmed object", storage.head(&self.main, &main_key)).await
            {
                Ok(meta) => ours(meta.origin.as_deref()),
                Err(Error::ObjectNotFound(_)) => false,
                Err(e) => return Err(e),
            };
            if !promoted {
                match self.deleted_since(&main_key, entry.created_ms).await? {
                    // Confirmed, then deleted before this delivery.
                    Some(origin) if ours(origin.as_deref()) => {}
                    _ if age < CONFIRM_GRACE => {
                        self.schedule(id, Some(Duration::from_secs(5)));
                        return Ok(());
                    }
                    _ => {
                        tracing::info!(id, key = %main_key, "a confirm that was announced did not happen; event dropped");
                        return self.finish(key, id).await;
                    }
                }
            }
        }
        match self.deliver(&entry).await {
            Delivery::Delivered => {
                metrics::counter!("draftstore_events_delivered_total", "type" => kind).increment(1);
                self.finish(key, id).await
            }
            Delivery::Failed { retry_after, reason } => {
                tracing::info!(id, r#type = kind, reason, "an event delivery failed; it will be retried");
                metrics::counter!("draftstore_events_retried_total", "type" => kind).increment(1);
                let wait = self.schedule(id, retry_after);
                // Keep the lease while waiting, so that other replicas leave this event to the one retrying it.
                self.claim(id, wait).await.map(drop)
            }
        }
    }

    /// Whether the object of `key` was deleted after `since_ms`, when it must have been in the main bucket: `Some`
    /// with the deleted object's origin (when the word names one).
    async fn deleted_since(&self, key: &ObjectKey, since_ms: i64) -> Result<Option<Option<String>>, Error> {
        let (storage, bucket) = (&self.outbox.storage, &self.outbox.bucket);
        match self.calls.call("read a deletion's word", storage.get_record(bucket, &deleted_key(key))).await {
            Ok(body) => {
                let text = std::str::from_utf8(&body).unwrap_or_default();
                let (at, origin) = match text.split_once(' ') {
                    Some((at, origin)) => (at, Some(origin.to_owned())),
                    None => (text, None),
                };
                Ok(at.parse::<i64>().ok().filter(|at| *at >= since_ms).map(|_| origin))
            }
            Err(Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the words of deletions older than any entry can wait for its object.
    async fn sweep(&self) -> Result<(), Error> {
        let (storage, bucket) = (&self.outbox.storage, &self.outbox.bucket);
        let cutoff = OffsetDateTime::now_utc() - 2 * CONFIRM_GRACE;
        let mut token = None;
        loop {
            let list = storage.list_prefix(bucket, DELETED, token.as_deref(), LIST_PAGE);
            let page = self.calls.call("list the words of deletions", list).await?;
            let old: Vec<_> = page.objects.into_iter().filter(|o| o.last_modified < cutoff).map(|o| o.key).collect();
            if !old.is_empty() {
                self.calls.call("remove old words of deletions", storage.delete_many(bucket, &old)).await?;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Removes a handled entry and its lease.
    async fn finish(&mut self, key: &ObjectKey, id: &str) -> Result<(), Error> {
        let (storage, bucket) = (&self.outbox.storage, &self.outbox.bucket);
        self.calls.call("remove an outbox entry", storage.delete(bucket, key)).await?;
        self.retries.remove(id);
        self.calls.call("release an outbox lease", storage.delete(bucket, &lease_key(id))).await
    }

    /// When to try an entry again: its next backoff step, or later when the receiver asked for more.
    fn schedule(&mut self, id: &str, at_least: Option<Duration>) -> Duration {
        let (due, backoff) = self.retries.entry(id.to_owned()).or_insert_with(|| (Instant::now(), backoff()));
        let step = backoff.next().unwrap_or(Duration::from_secs(300));
        let wait = at_least.map_or(step, |floor| floor.max(step));
        *due = Instant::now() + wait;
        wait
    }

    /// Takes (or renews) the lease on an entry for `extra` beyond the usual. `false`: another replica holds it.
    async fn claim(&self, id: &str, extra: Duration) -> Result<bool, Error> {
        let storage = &self.outbox.storage;
        let bucket = &self.outbox.bucket;
        let key = lease_key(id);
        let hold = self.timeout + LEASE_MARGIN + extra;
        let until_ms = now_ms() + i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
        let lease = Bytes::from(
            serde_json::to_vec(&Lease { owner: self.owner.clone(), until_ms }).expect("a lease serializes"),
        );
        let calls = &self.calls;
        let take =
            |lease, if_absent| calls.call("take an outbox lease", storage.put_record(bucket, &key, lease, if_absent));
        if take(lease.clone(), true).await? {
            return Ok(true);
        }
        let held: Option<Lease> = match calls.call("read an outbox lease", storage.get_record(bucket, &key)).await {
            Ok(body) => serde_json::from_slice(&body).ok(),
            Err(Error::ObjectNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        match held {
            Some(held) if held.owner == self.owner => take(lease, false).await,
            Some(held) if held.until_ms > now_ms() => Ok(false),
            // Expired, released or unreadable: take it over, unless another replica is quicker.
            _ => {
                calls.call("remove an expired outbox lease", storage.delete(bucket, &key)).await?;
                take(lease, true).await
            }
        }
    }

    async fn deliver(&self, entry: &Entry) -> Delivery {
        let attributes = || vec![KeyValue::new("webhook_id", entry.id.clone())];
        let failed = |delivery: &Delivery| match delivery {
            Delivery::Delivered => None,
            Delivery::Failed { reason, .. } => Some(reason.clone()),
        };
        telemetry::traced("event_delivery", SpanKind::Producer, attributes, failed, self.send(entry)).await
    }

    async fn send(&self, entry: &Entry) -> Delivery {
        let body = serde_json::to_vec(&entry.payload).expect("a payload serializes");
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let mut request = self.http.post(self.url.clone()).timeout(self.timeout).headers(telemetry::trace_headers());
        for (name, value) in self.secret.headers(&entry.id, timestamp, &body) {
            request = request.header(name, value);
        }
        let response = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body).send().await;
        match response {
            Ok(response) if response.status().is_success() => {
                // Read (at most 64 KiB of it) so that the connection can serve the next delivery; what it says
                // does not matter.
                let _ = super::read_capped(response, "the event receiver").await;
                Delivery::Delivered
            }
            Ok(response) => {
                let status = response.status();
                let retry_after = [reqwest::StatusCode::TOO_MANY_REQUESTS, reqwest::StatusCode::SERVICE_UNAVAILABLE]
                    .contains(&status)
                    .then(|| retry_after(response.headers()))
                    .flatten();
                let redirect = if status.is_redirection() { " (redirects are not followed)" } else { "" };
                Delivery::Failed { retry_after, reason: format!("the event receiver answered {status}{redirect}") }
            }
            Err(e) => Delivery::Failed {
                retry_after: None,
                reason: super::describe(&e, "the event receiver", Some(self.timeout)),
            },
        }
    }
}

/// Exponential backoff with jitter: about 0.5 s, 1 s, 2 s, … up to 5 minutes between attempts.
fn backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(300))
        .with_jitter()
        .without_max_times()
        .build()
}

/// A `Retry-After` in seconds (the HTTP-date form is read as no advice), at most an hour.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_time_and_give_back_their_id() {
        let (early, late) = (entry_key(1_700_000_000_000, "msg_a"), entry_key(1_800_000_000_000, "msg_b"));
        assert!(early.as_str() < late.as_str());
        assert_eq!(id_of(&early), Some("msg_a"));
        assert_eq!(created_ms_of(&early), Some(1_700_000_000_000));
        assert_eq!(id_of(&ObjectKey::parse("outbox/elsewhere").expect("valid")), None);
    }

    /// Entries the receiver never takes are dropped once older than EVENTS_MAX_AGE, their leases with them; younger
    /// ones stay, leased by the replica that retries them.
    #[tokio::test]
    async fn undeliverable_events_are_kept_until_too_old_then_dropped() {
        use draftstore_storage::local::{LocalConfig, LocalStorage};
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LocalConfig {
            root: dir.path().to_owned(),
            public_url: Url::parse("http://localhost:1").expect("a URL"),
            signing_key: Some(vec![1; 32]),
        };
        let local = Arc::new(LocalStorage::open(config).await.expect("opens"));
        let (events, main) =
            (BucketName::parse("main-events").expect("valid"), BucketName::parse("main").expect("valid"));
        draftstore_storage::BucketAdmin::create_bucket(&*local, &events).await.expect("created");
        let storage: Arc<dyn ObjectStore> = local;
        let outbox = Outbox::new(Arc::clone(&storage), events.clone());
        let key = ObjectKey::parse("a.txt").expect("valid");
        let subject = Subject { tenant: None, object_name: "a.txt", key: &key, size: 1, content_type: None };
        outbox
            .record(EventType::Discarded, message_id(), &subject, serde_json::json!({}), false)
            .await
            .expect("recorded");
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let nowhere = Url::parse("http://127.0.0.1:9/").expect("a URL");
        let deliverer = |max_age, owner: &str| Deliverer {
            outbox: outbox.clone(),
            main: main.clone(),
            url: nowhere.clone(),
            secret: secret.clone(),
            http: reqwest::Client::new(),
            timeout: Duration::from_secs(1),
            calls: StorageCalls::new(Duration::from_secs(5)),
            max_age,
            owner: owner.to_owned(),
            retries: HashMap::new(),
        };
        let listed = || async { storage.list_prefix(&events, "", None, 100).await.expect("lists").objects.len() };

        deliverer(Duration::from_secs(3600), "one").pass().await.expect("a pass");
        assert_eq!(listed().await, 2, "the entry stays, with the lease of the replica that will retry it");

        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut other = deliverer(Duration::from_millis(10), "two");
        other.pass().await.expect("a pass");
        assert_eq!(listed().await, 2, "another replica leaves a leased entry alone, however old");
        // Once the lease has run out (HOOK_TIMEOUT 1 s + the margin), the entry is taken over and dropped.
        let mut lease: Lease = serde_json::from_slice(
            &storage.get_record(&events, &lease_key(&only_id(&storage, &events).await)).await.expect("a lease"),
        )
        .expect("a lease");
        lease.until_ms = now_ms() - 1;
        let id = only_id(&storage, &events).await;
        storage
            .put_record(&events, &lease_key(&id), serde_json::to_vec(&lease).expect("json").into(), false)
            .await
            .expect("written");
        other.pass().await.expect("a pass");
        assert_eq!(listed().await, 0, "dropped with its lease");
    }

    async fn only_id(storage: &Arc<dyn ObjectStore>, bucket: &BucketName) -> String {
        let page = storage.list_prefix(bucket, OUTBOX, None, 10).await.expect("lists");
        id_of(&page.objects[0].key).expect("an entry").to_owned()
    }

    #[test]
    fn backoff_grows_with_jitter_and_retry_after_is_read_in_seconds() {
        let delays: Vec<Duration> = backoff().take(4).collect();
        assert!(delays[0] >= Duration::from_millis(500) && delays[3] >= Duration::from_secs(4), "{delays:?}");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().expect("a value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("a value"));
        assert_eq!(retry_after(&headers), None);
    }
}

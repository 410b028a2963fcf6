//! Resumable uploads: a draft received over several requests, each appending at a known offset, in whichever
//! protocol the client speaks (tus 1.0, the IETF draft; the adapter in `http::resumable` parses them). Every
//! protocol comes here, so that one append means one thing.
//!
//! State lives only in the store, in the records bucket, so that any replica can take the next request:
//! - `resumable/<id>/upload`: the [`Record`] (owner, name, length, the parts stored, the tail);
//! - `resumable/<id>/lease`: held while a request appends, so that one append runs at a time across replicas;
//! - `resumable/<id>/tail-<n>`: the bytes after the last whole part, shorter than a part.
//!
//! Appends are cut into parts of the upload's part size (at least 8 MiB) and sent as a multipart upload of the
//! draft's key, created when the first part is full; an upload that ends before its first part is full is written
//! whole instead. The record is written after the bytes it names are stored, so the offset it gives is never
//! ahead of the store, and a crash loses at most what the request in flight had not yet stored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use draftstore_storage::multipart::{MAX_PART_NUMBER, MIN_PART_SIZE};
use draftstore_storage::{CompletedPart, Declared, ObjectKey as StoreKey, Progress, UploadId};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

use super::DraftService;
use crate::auth::Caller;
use crate::domain::{ContentType, ObjectName};
use crate::error::Error;

/// Smallest part an append is cut into: above S3's 5 MiB so that a part never falls under it.
const MIN_APPEND_PART: u64 = 8 * 1024 * 1024;
/// Largest part: an append holds up to one part in memory.
const MAX_APPEND_PART: u64 = 64 * 1024 * 1024;
/// Largest resumable upload: 10,000 parts of the largest size.
pub const MAX_RESUMABLE_SIZE: u64 = MAX_APPEND_PART * MAX_PART_NUMBER as u64;
/// Memory all appends in flight may hold at once, in MiB; an append waits for its share, then is refused busy.
const BUFFER_BUDGET_MIB: usize = 512;
/// How long an append waits for its share of [`BUFFER_BUDGET_MIB`] before it is refused.
const BUFFER_WAIT: Duration = Duration::from_secs(5);
/// Parts an append sends while it receives the next: the store's time overlaps the client's.
const PARTS_IN_FLIGHT: usize = 2;
/// A part on its way to the store.
type PartInFlight = tokio::task::JoinHandle<Result<StoredPart, Error>>;
/// How long a lease lasts without renewal: what a killed replica's lease blocks its upload for.
pub const LEASE_TTL: Duration = Duration::from_secs(20);
/// How often a holder renews its lease while it appends.
const LEASE_RENEWAL: Duration = Duration::from_secs(5);
/// How often a holder looks for a request to stop, written by a request on another replica.
const STOP_POLL: Duration = Duration::from_secs(1);
/// How long a request waits for the holder of a lease to stop and let go of it.
const LEASE_WAIT: Duration = Duration::from_secs(5);
/// How long an append's client must have sent nothing before a newer request stops it: a client that resumes has
/// given up on its older request, and a live one is left to finish (so that others asking where the upload stands
/// cannot keep it from ever finishing).
const STOP_IDLE: Duration = Duration::from_secs(1);

/// Which protocol created an upload (kept for the log and the docs; any dialect may continue it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    Tus,
    Ietf,
}

/// What a creation request asks for.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The draft's name; `None`: `uploads/<id>/<file_name>`.
    pub name: Option<ObjectName>,
    /// The file name the client gave, for a draft named after it.
    pub file_name: Option<String>,
    pub content_type: ContentType,
    /// The whole upload's length, when known.
    pub length: Option<u64>,
    /// tus `Upload-Metadata` as sent, answered back on `HEAD`.
    pub metadata: Option<String>,
    pub dialect: Dialect,
}

/// One append.
#[derive(Debug, Clone, Default)]
pub struct Append {
    /// Where the client says the upload is.
    pub offset: u64,
    /// The whole length, when the request gives it (a deferred length set, or repeated).
    pub length: Option<u64>,
    /// The request ends the upload (the IETF draft's `Upload-Complete: ?1`): its length is where it ends.
    pub complete: bool,
    /// The body's length, when the request declares it.
    pub content_length: Option<u64>,
    /// A digest the body must have (tus `Upload-Checksum`).
    pub checksum: Option<BodyChecksum>,
    /// An empty append to a completed upload is answered as the one that completed it (tus, the IETF draft from
    /// interop 9), not refused (the IETF draft before).
    pub replay_completed: bool,
    /// Bytes past the upload's length end it (the IETF draft: "marking the upload resource invalid"); otherwise
    /// only the request is refused (tus).
    pub overflow_ends_upload: bool,
}

/// A digest of one request's body, checked before anything of it is kept.
#[derive(Debug, Clone)]
pub enum BodyChecksum {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

/// An upload as a client sees it.
#[derive(Debug, Clone)]
pub struct UploadState {
    pub id: String,
    pub name: ObjectName,
    pub offset: u64,
    pub length: Option<u64>,
    pub complete: bool,
    pub expires_at: OffsetDateTime,
    pub metadata: Option<String>,
}

/// Why a resumable request is refused; the adapter answers each in its protocol's terms.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Service(#[from] Error),
    #[error("no such upload")]
    NotFound,
    #[error("the upload expired at {0}")]
    Expired(OffsetDateTime),
    #[error("the upload is at offset {expected}, not {provided}")]
    OffsetMismatch { expected: u64, provided: u64 },
    #[error("another request is appending to this upload; try again")]
    Locked,
    #[error("{0}")]
    Inconsistent(String),
    /// Bytes past the upload's declared length.
    #[error("{0}")]
    PastLength(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("the body does not match its Upload-Checksum; nothing of it was kept")]
    ChecksumMismatch,
    #[error("the upload is complete: it takes no more bytes")]
    Completed,
    #[error("the request's body broke off after {kept} bytes were kept: {cause}")]
    Interrupted { kept: u64, cause: Error },
    #[error("a newer request for this upload stopped this one after {kept} bytes were kept; ask where it stands")]
    Stopped { kept: u64 },
}

type Outcome<T> = std::result::Result<T, UploadError>;

/// A stored part of an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPart {
    number: u32,
    size: u64,
    etag: String,
}

/// The bytes after the last part, kept as an object of their own.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tail {
    generation: u64,
    size: u64,
}

/// An upload's state in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    tenant: Option<String>,
    name: String,
    key: String,
    content_type: String,
    length: Option<u64>,
    metadata: Option<String>,
    dialect: Dialect,
    /// Unix seconds.
    expires_at: i64,
    part_size: u64,
    upload_id: Option<String>,
    parts: Vec<StoredPart>,
    tail: Option<Tail>,
    complete: bool,
}

impl Record {
    fn stored(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum::<u64>()
    }

    fn offset(&self) -> u64 {
        self.stored() + self.tail.as_ref().map_or(0, |t| t.size)
    }

    fn state(&self, id: &str) -> UploadState {
        UploadState {
            id: id.to_owned(),
            name: ObjectName::parse(&self.name).expect("a recorded name was valid"),
            offset: if self.complete { self.length.unwrap_or_else(|| self.offset()) } else { self.offset() },
            length: self.length,
            complete: self.complete,
            expires_at: OffsetDateTime::from_unix_timestamp(self.expires_at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            metadata: self.metadata.clone(),
        }
    }
}

/// A lease held on one upload.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    nonce: String,
    /// Unix seconds.
    until: i64,
}

/// What the appends of one service share: the memory they may hold, and a way to stop the ones this replica runs.
#[derive(Debug)]
pub struct Appends {
    buffers: Arc<Semaphore>,
    /// The stop signal of each upload whose lease this replica holds.
    holders: std::sync::Mutex<std::collections::HashMap<String, Arc<Holder>>>,
}

impl Default for Appends {
    fn default() -> Self {
        Self { buffers: Arc::new(Semaphore::new(BUFFER_BUDGET_MIB)), holders: Default::default() }
    }
}

/// An append holding a lease on this replica: the signal a newer request stops it with, and when its body last
/// brought bytes, so that only an append whose client has gone quiet is stopped.
#[derive(Debug, Default)]
struct Holder {
    stop: Notify,
    /// Unix milliseconds of the last bytes received (or of the lease taken).
    last_bytes: std::sync::atomic::AtomicI64,
}

impl Holder {
    fn received(&self) {
        self.last_bytes.store(now_millis(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops the append if its client has sent nothing for [`STOP_IDLE`]; whether it did.
    fn stop_if_idle(&self) -> bool {
        let idle = now_millis() - self.last_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let quiet = idle >= i64::try_from(STOP_IDLE.as_millis()).unwrap_or(i64::MAX);
        if quiet {
            self.stop.notify_one();
        }
        quiet
    }
}

fn now_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A lease this replica holds, renewed while held.
#[derive(Debug)]
struct Held {
    nonce: String,
    holder: Arc<Holder>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    /// Stops the renewal however the holder ends (a panic included), so that a lease left behind expires.
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// The bytes of the part being received, allocated as they come (a slow client holds little) and never past one
/// part, each allocation taken from the appends' memory budget first.
struct PartBuffer<'a> {
    appends: &'a Appends,
    part_size: usize,
    bytes: Vec<u8>,
    budget: Vec<tokio::sync::OwnedSemaphorePermit>,
}

/// The first allocation of a part's buffer; it grows to the whole part only when the first is full.
const FIRST_ALLOCATION: usize = 1 << 20;

impl<'a> PartBuffer<'a> {
    fn new(appends: &'a Appends, part_size: u64) -> Self {
        let part_size = usize::try_from(part_size).unwrap_or(usize::MAX);
        Self { appends, part_size, bytes: Vec::new(), budget: Vec::new() }
    }

    /// Makes room for `more` bytes, within the part.
    async fn room_for(&mut self, more: usize) -> Result<(), Error> {
        let wanted = (self.bytes.len() + more).min(self.part_size);
        if wanted <= self.bytes.capacity() {
            return Ok(());
        }
        let target = if wanted <= FIRST_ALLOCATION { FIRST_ALLOCATION.min(self.part_size) } else { self.part_size };
        let permits = u32::try_from((target - self.bytes.capacity()).div_ceil(1 << 20)).unwrap_or(u32::MAX);
        let take = Arc::clone(&self.appends.buffers).acquire_many_owned(permits);
        let permit = tokio::time::timeout(BUFFER_WAIT, take).await.map_err(|_| busy())?.map_err(|_| busy())?;
        self.budget.push(permit);
        self.bytes.reserve_exact(target - self.bytes.len());
        Ok(())
    }

    /// Adds `bytes` (a tail read back); they fit in a part.
    async fn fill(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.room_for(bytes.len()).await?;
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    /// Takes what fits of `chunk` into the part; a full part is handed out, with the memory it holds.
    async fn fill_from(&mut self, chunk: &mut Bytes) -> Result<Option<(Bytes, Budget)>, Error> {
        let fits = chunk.len().min(self.part_size - self.bytes.len());
        self.room_for(fits).await?;
        self.bytes.extend_from_slice(&chunk.split_to(fits));
        Ok((self.bytes.len() == self.part_size).then(|| self.take()))
    }

    /// What the buffer holds, and its memory; the buffer starts again empty.
    fn take(&mut self) -> (Bytes, Budget) {
        (Bytes::from(std::mem::take(&mut self.bytes)), Budget(std::mem::take(&mut self.budget)))
    }
}

/// Memory of the appends' budget, given back when dropped (when the part it holds is stored).
#[derive(Debug)]
struct Budget(#[allow(dead_code)] Vec<tokio::sync::OwnedSemaphorePermit>);

fn busy() -> Error {
    Error::AppendsBusy(format!("{BUFFER_BUDGET_MIB} MiB held by appends in flight"))
}

/// A request to stop the holder of an upload's lease, written by a request on another replica.
#[derive(Debug, Serialize, Deserialize)]
struct StopRequest {
    /// Unix milliseconds: a holder honours only requests made after it took the lease.
    at: i64,
}

/// An upload id: 128 random bits in hex, unguessable.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` can be an upload id (so that it is safe in a key).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn record_key(id: &str, what: &str) -> StoreKey {
    StoreKey::parse(&format!("resumable/{id}/{what}")).expect("a resumable key is valid")
}

/// The part size of an upload of `length` (or of at most `max` when unknown): 10,000 parts reach the end.
fn part_size(length: Option<u64>, max: u64) -> u64 {
    let whole = length.unwrap_or(max);
    let per_part = whole.div_ceil(u64::from(MAX_PART_NUMBER)).next_multiple_of(1024 * 1024);
    per_part.clamp(MIN_APPEND_PART.max(MIN_PART_SIZE), MAX_APPEND_PART)
}

impl DraftService {
    /// The largest resumable upload: MAX_UPLOAD_SIZE, within what 10,000 parts can hold.
    pub fn resumable_max_size(&self) -> u64 {
        self.0.limits.max_size.min(MAX_RESUMABLE_SIZE)
    }

    /// Creates an upload for the caller; nothing of the draft exists until its last byte is stored.
    /// With `first`, the creation request's body is appended at once (tus creation-with-upload, the IETF draft's
    /// creation with content); an upload of length 0 is complete as soon as it is created.
    pub async fn create_resumable<S, E>(
        &self,
        caller: &Caller,
        new: NewUpload,
        first: Option<(Append, S)>,
        now: OffsetDateTime,
    ) -> Outcome<UploadState>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: Into<Error>,
    {
        let id = new_id();
        let name = match new.name {
            Some(name) => name,
            None => {
                let file = new.file_name.as_deref().map(sanitize_file_name).unwrap_or_else(|| "upload".to_owned());
                crate::domain::parse_object_name(&format!("uploads/{id}/{file}"))?
            }
        };
        let key = caller.key(&name)?;
        self.0.limits.check(Some(&new.content_type), new.length)?;
        let max = self.resumable_max_size();
        if let Some(length) = new.length
            && length > max
        {
            return Err(UploadError::TooLarge(format!(
                "Upload-Length {length} is above {max} bytes, the largest resumable upload"
            )));
        }
        let record = Record {
            tenant: caller.tenant().map(|t| t.as_str().to_owned()),
            name: name.to_string(),
            key: key.to_string(),
            content_type: new.content_type.to_string(),
            length: new.length,
            metadata: new.metadata,
            dialect: new.dialect,
            expires_at: (now + self.0.object_lifetime).unix_timestamp(),
            part_size: part_size(new.length, max),
            upload_id: None,
            parts: Vec::new(),
            tail: None,
            complete: false,
        };
        self.write_record(&id, &record, true).await?;
        match first {
            Some((append, body)) => self.append_to(&id, None, record, append, body).await,
            None if record.length == Some(0) => {
                let empty = futures_util::stream::empty::<Result<Bytes, Error>>();
                self.append_to(&id, None, record, Append::default(), empty).await
            }
            None => Ok(record.state(&id)),
        }
    }

    /// The caller's upload `id` as it stands.
    /// An append in flight is stopped first, so that the offset answered is the one the next append must give;
    /// a lease whose holder does not let go in time (it died) does not keep the answer from being given.
    pub async fn resumable_state(&self, caller: &Caller, id: &str, now: OffsetDateTime) -> Outcome<UploadState> {
        // The owner first: someone else's request must not stop, nor wait for, the owner's append.
        self.read_record(caller, id, now).await?;
        let held = match self.acquire(id).await {
            Ok(held) => Some(held),
            Err(UploadError::Locked) => None,
            Err(e) => return Err(e),
        };
        let state = self.read_record(caller, id, now).await.map(|record| record.state(id));
        if let Some(held) = held {
            self.let_go(id, held).await;
        }
        state
    }

    /// Appends a request's body to the caller's upload `id`, one append at a time across replicas. What the body
    /// brings is kept up to where it breaks off, unless it carries a checksum (then all of it or none). When the
    /// upload is complete its draft exists.
    pub async fn append_resumable<S, E>(
        &self,
        caller: &Caller,
        id: &str,
        append: Append,
        body: S,
        now: OffsetDateTime,
    ) -> Outcome<UploadState>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static + Unpin,
        E: Into<Error> + Send + 'static,
    {
        self.read_record(caller, id, now).await?;
        let held = self.acquire(id).await?;
        let ends = append.overflow_ends_upload;
        let outcome = match self.read_record(caller, id, now).await {
            Ok(record) => match self.append_to(id, Some(&held), record.clone(), append, body).await {
                Err(UploadError::PastLength(message)) if ends => {
                    self.remove_upload(id, &record).await?;
                    Err(UploadError::PastLength(format!("{message}; the upload is ended")))
                }
                other => other,
            },
            Err(e) => Err(e),
        };
        self.let_go(id, held).await;
        outcome
    }

    /// Takes the upload's lease, stopping the request that holds it (on this replica at once, on another at its
    /// next look for a stop request) and waiting up to [`LEASE_WAIT`] for it to let go.
    async fn acquire(&self, id: &str) -> Outcome<Held> {
        let started = tokio::time::Instant::now();
        let mut asked = false;
        let mut pause = Duration::from_millis(20);
        let nonce = loop {
            match self.take_lease(id).await {
                Ok(nonce) => break nonce,
                Err(UploadError::Locked) if started.elapsed() < LEASE_WAIT => {
                    let local = self.0.appends.holders.lock().expect("the holders' lock").get(id).cloned();
                    match local {
                        Some(holder) => {
                            holder.stop_if_idle();
                        }
                        None if !asked => {
                            let request = StopRequest { at: now_millis() };
                            let json = serde_json::to_vec(&request).expect("a stop request serializes");
                            let key = record_key(id, "stop");
                            let put = self.0.store.objects.put_record(&self.0.buckets.events, &key, json.into(), false);
                            self.call("ask an upload's holder to stop", put).await?;
                            asked = true;
                        }
                        None => {}
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        };
        let taken = now_millis();
        let holder = Arc::new(Holder::default());
        holder.received();
        self.0.appends.holders.lock().expect("the holders' lock").insert(id.to_owned(), Arc::clone(&holder));
        let watch = {
            let (service, id, nonce, holder) = (self.clone(), id.to_owned(), nonce.clone(), Arc::clone(&holder));
            tokio::spawn(async move {
                let mut renewed = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(STOP_POLL).await;
                    let key = record_key(&id, "stop");
                    let asked = service.0.store.objects.get_record(&service.0.buckets.events, &key).await;
                    // A request made after the lease was taken, honoured once the client has gone quiet (it stays
                    // until then); an older one is left over from an earlier holder.
                    if let Ok(bytes) = asked
                        && serde_json::from_slice::<StopRequest>(&bytes).is_ok_and(|r| r.at >= taken)
                        && holder.stop_if_idle()
                    {
                        let _ = service.0.store.objects.delete(&service.0.buckets.events, &key).await;
                    }
                    if renewed.elapsed() >= LEASE_RENEWAL {
                        let _ = service.write_lease(&id, &nonce, false).await;
                        renewed = tokio::time::Instant::now();
                    }
                }
            })
        };
        Ok(Held { nonce, holder, watch })
    }

    /// Lets go of a lease taken by [`DraftService::acquire`].
    async fn let_go(&self, id: &str, held: Held) {
        held.watch.abort();
        {
            let mut holders = self.0.appends.holders.lock().expect("the holders' lock");
            if holders.get(id).is_some_and(|holder| Arc::ptr_eq(holder, &held.holder)) {
                holders.remove(id);
            }
        }
        let _ = self.release_lease(id, &held.nonce).await;
    }

    /// Appends to `record`, holding the upload's `lease` (none while the upload is being created: no one else
    /// knows its id yet).
    async fn append_to<S, E>(
        &self,
        id: &str,
        lease: Option<&Held>,
        mut record: Record,
        append: Append,
        mut body: S,
    ) -> Outcome<UploadState>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: Into<Error>,
    {
        if record.complete {
            let empty =
                append.content_length == Some(0) || (append.content_length.is_none() && body.next().await.is_none());
            return match append.offset == record.state(id).offset && empty && append.replay_completed {
                true => Ok(record.state(id)),
                false => Err(UploadError::Completed),
            };
        }
        let offset = record.offset();
        if append.offset != offset {
            return Err(UploadError::OffsetMismatch { expected: offset, provided: append.offset });
        }
        let max = self.resumable_max_size();
        if let Some(length) = append.length {
            match record.length {
                Some(recorded) if recorded != length => {
                    return Err(UploadError::Inconsistent(format!(
                        "Upload-Length {length} differs from the upload's length, {recorded}"
                    )));
                }
                _ if length < offset => {
                    return Err(UploadError::Inconsistent(format!(
                        "Upload-Length {length} is below the bytes already uploaded, {offset}"
                    )));
                }
                _ if length > max => {
                    return Err(UploadError::TooLarge(format!(
                        "Upload-Length {length} is above {max} bytes, the largest resumable upload"
                    )));
                }
                _ => {
                    self.0.limits.check(None, Some(length))?;
                    record.length = Some(length);
                }
            }
        }
        // A limit lowered since the upload began leaves no room, never a negative one.
        let room = record.length.unwrap_or(max).min(max).saturating_sub(offset);
        if let Some(declared) = append.content_length {
            if declared > room {
                return Err(match record.length {
                    Some(length) => UploadError::PastLength(format!(
                        "{declared} bytes at offset {offset} go past the upload's length, {length}"
                    )),
                    None => UploadError::TooLarge(format!(
                        "{declared} bytes at offset {offset} go past {max} bytes, the largest resumable upload"
                    )),
                });
            }
            if append.complete
                && let Some(length) = record.length
                && offset + declared != length
            {
                return Err(UploadError::Inconsistent(format!(
                    "the request completes the upload at {} bytes, but its length is {length}",
                    offset + declared
                )));
            }
        }

        // The tail comes first in the buffer: parts are cut from where the stored parts end.
        let mut buffer = PartBuffer::new(&self.0.appends, record.part_size);
        if let Some(stored) = &record.tail {
            let key = record_key(id, &format!("tail-{}", stored.generation));
            let bytes = self
                .call("read an upload's tail", self.0.store.objects.get_record(&self.0.buckets.events, &key))
                .await?;
            if bytes.len() as u64 != stored.size {
                return Err(Error::Internal {
                    operation: "read an upload's tail",
                    source: draftstore_storage::Error::other(
                        "the tail is not the size its record says",
                        std::io::Error::other(format!("{} bytes, not {}", bytes.len(), stored.size)),
                    ),
                }
                .into());
            }
            buffer.fill(&bytes).await?;
        }
        let old_tail = record.tail.clone();
        // Parts sent before the body ends are recorded as they go only where nothing can undo them later: the body
        // is as long as declared and no checksum may refuse it.
        let record_as_we_go = append.content_length.is_some() && append.checksum.is_none();
        let mut digest = Digests::new(append.checksum.as_ref());
        let mut received: u64 = 0;
        let mut broke_off: Option<Error> = None;
        let mut stopped = false;
        let mut tail_consumed = false;
        let mut in_flight = std::collections::VecDeque::new();
        loop {
            let next = match lease {
                Some(held) => tokio::select! {
                    next = body.next() => next,
                    () = held.holder.stop.notified() => {
                        stopped = true;
                        break;
                    }
                },
                None => body.next().await,
            };
            let Some(chunk) = next else { break };
            if let Some(held) = lease {
                held.holder.received();
            }
            let mut chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    broke_off = Some(e.into());
                    break;
                }
            };
            received += chunk.len() as u64;
            if received > room {
                return Err(match record.length {
                    Some(length) => UploadError::PastLength(format!(
                        "the body goes past the upload's length, {length}; nothing of it was kept"
                    )),
                    None => UploadError::TooLarge(format!(
                        "the body goes past {max} bytes, the largest resumable upload; nothing of it was kept"
                    )),
                });
            }
            digest.update(&chunk);
            while !chunk.is_empty() {
                let taken = buffer.fill_from(&mut chunk).await?;
                if let Some(part) = taken {
                    let number = record.parts.len() + in_flight.len() + 1;
                    in_flight.push_back(self.start_part(id, lease, &mut record, number, part).await?);
                    tail_consumed = true;
                    if in_flight.len() >= PARTS_IN_FLIGHT {
                        self.land_part(id, &mut in_flight, &mut record, record_as_we_go).await?;
                    }
                }
            }
        }
        drop(body);
        while !in_flight.is_empty() {
            self.land_part(id, &mut in_flight, &mut record, record_as_we_go).await?;
        }
        if stopped {
            broke_off = Some(Error::InvalidRequest("a newer request for this upload stopped this one".to_owned()));
        }
        if broke_off.is_some() && append.checksum.is_some() {
            return Err(UploadError::Interrupted {
                kept: 0,
                cause: Error::InvalidRequest(
                    "the body broke off, and a body with Upload-Checksum is kept whole or not at all".to_owned(),
                ),
            });
        }
        if !digest.matches(append.checksum.as_ref()) {
            return Err(UploadError::ChecksumMismatch);
        }
        let (last, _budget) = buffer.take();
        let end = record.stored() + last.len() as u64;
        let complete = broke_off.is_none() && (append.complete || record.length == Some(end));
        if complete {
            if let Some(length) = record.length
                && length != end
            {
                return Err(UploadError::Inconsistent(format!(
                    "the request completes the upload at {end} bytes, but its length is {length}"
                )));
            }
            record.length = Some(end);
            self.finish(id, lease, &mut record, last).await?;
            record.tail = None;
            record.complete = true;
            self.write_record(id, &record, false).await?;
        } else if received > 0 || tail_consumed {
            record.tail = match last.is_empty() {
                true => None,
                false => {
                    let generation = old_tail.as_ref().map_or(1, |t| t.generation + 1);
                    let key = record_key(id, &format!("tail-{generation}"));
                    let size = last.len() as u64;
                    let octets = ContentType::octet_stream();
                    let put = self.0.store.objects.put_object(&self.0.buckets.events, &key, last, &octets);
                    self.call("store an upload's tail", put).await?;
                    Some(Tail { generation, size })
                }
            };
            if let Some(held) = lease {
                self.check_lease(id, &held.nonce).await?;
            }
            self.write_record(id, &record, false).await?;
        }
        if let Some(old) = old_tail
            && record.tail.as_ref().is_none_or(|t| t.generation != old.generation)
        {
            let key = record_key(id, &format!("tail-{}", old.generation));
            let delete = self.0.store.objects.delete(&self.0.buckets.events, &key);
            let _ = self.call("delete an upload's old tail", delete).await;
        }
        let kept = record.offset().saturating_sub(offset);
        match broke_off {
            Some(_) if stopped => Err(UploadError::Stopped { kept }),
            Some(cause) => Err(UploadError::Interrupted { kept, cause }),
            None => Ok(record.state(id)),
        }
    }

    /// Ends the caller's upload `id`: its stored bytes and its record are removed. A completed upload's draft stays.
    pub async fn terminate_resumable(&self, caller: &Caller, id: &str, now: OffsetDateTime) -> Outcome<()> {
        self.read_record(caller, id, now).await?;
        let held = self.acquire(id).await?;
        let outcome = match self.read_record(caller, id, now).await {
            Ok(record) => self.remove_upload(id, &record).await.map_err(Into::into),
            Err(e) => Err(e),
        };
        self.let_go(id, held).await;
        outcome
    }

    /// Removes an upload's parts, tail and record.
    async fn remove_upload(&self, id: &str, record: &Record) -> Result<(), Error> {
        if !record.complete
            && let Some(upload_id) = record.upload_id.as_deref().and_then(|u| UploadId::parse(u).ok())
            && let Ok(key) = StoreKey::parse(&record.key)
        {
            let abort = self.0.store.multipart.abort_multipart(&self.0.buckets.draft, &key, &upload_id);
            match self.call("abort an upload's parts", abort).await {
                Ok(()) | Err(Error::UploadNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // Every object of the upload, tails a crash left unnamed included; the record last, so that a pass cut
        // off still finds the upload.
        let events = &self.0.buckets.events;
        let prefix = format!("resumable/{id}/");
        let listed = self.0.store.objects.list_prefix(events, &prefix, None, 1000);
        let record_key = record_key(id, "upload");
        let others: Vec<_> = self
            .call("list an upload's objects", listed)
            .await?
            .objects
            .into_iter()
            .map(|o| o.key)
            .filter(|key| *key != record_key)
            .collect();
        if !others.is_empty() {
            self.call("delete an upload's objects", self.0.store.objects.delete_many(events, &others)).await?;
        }
        self.call("delete an upload's record", self.0.store.objects.delete(events, &record_key)).await
    }

    /// Removes the uploads that expired before `now` (the cleaner's pass), answering how many.
    pub async fn sweep_resumable(&self, now: OffsetDateTime) -> Result<u64, Error> {
        let events = &self.0.buckets.events;
        let mut token = None;
        let mut removed = 0;
        loop {
            let page = self.0.store.objects.list_prefix(events, "resumable/", token.as_deref(), 1000);
            let page = self.call("list resumable uploads", page).await?;
            for listed in &page.objects {
                let Some(id) = listed.key.as_str().strip_prefix("resumable/").and_then(|r| r.strip_suffix("/upload"))
                else {
                    continue;
                };
                let read = self.0.store.objects.get_record(events, &listed.key);
                let Ok(bytes) = self.call("read a resumable upload", read).await else { continue };
                let Ok(record) = serde_json::from_slice::<Record>(&bytes) else { continue };
                if record.expires_at < now.unix_timestamp() {
                    self.remove_upload(id, &record).await?;
                    let _ = self
                        .call("delete a lease", self.0.store.objects.delete(events, &record_key(id, "lease")))
                        .await;
                    removed += 1;
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(removed),
            }
        }
    }

    /// Stores one part and records it.
    async fn store_part(&self, id: &str, lease: Option<&Held>, record: &mut Record, part: Bytes) -> Outcome<()> {
        let number = record.parts.len() + 1;
        let part = (part, Budget(Vec::new()));
        let mut sent = std::collections::VecDeque::from([self.start_part(id, lease, record, number, part).await?]);
        self.land_part(id, &mut sent, record, false).await
    }

    /// Starts sending part `number`, the upload's parts started first when none is yet; the part travels while
    /// the next one is received.
    async fn start_part(
        &self,
        id: &str,
        lease: Option<&Held>,
        record: &mut Record,
        number: usize,
        (part, budget): (Bytes, Budget),
    ) -> Outcome<PartInFlight> {
        let key = StoreKey::parse(&record.key).map_err(|e| Error::InvalidObjectName(e.to_string()))?;
        let draft = &self.0.buckets.draft;
        let upload_id = match record.upload_id.as_deref() {
            Some(upload_id) => UploadId::parse(upload_id).map_err(|e| Error::Internal {
                operation: "read an upload's record",
                source: draftstore_storage::Error::other("the recorded upload id is invalid", e),
            })?,
            None => {
                let content_type =
                    ContentType::parse(&record.content_type).unwrap_or_else(|_| ContentType::octet_stream());
                let declared = Declared { length: record.length, sha256: None };
                let create = self.0.store.multipart.create_multipart(
                    draft,
                    &key,
                    &content_type,
                    &declared,
                    Some(record.part_size),
                );
                let upload_id = self.call("start an upload's parts", create).await?;
                record.upload_id = Some(upload_id.to_string());
                // Recorded at once, the offset unchanged, so that a request refused later (a checksum, a length)
                // leaves no parts that a cancellation or the cleaner cannot find.
                if let Some(held) = lease {
                    self.check_lease(id, &held.nonce).await?;
                }
                self.write_record(id, record, false).await?;
                upload_id
            }
        };
        if let Some(held) = lease {
            self.check_lease(id, &held.nonce).await?;
        }
        let number = u32::try_from(number)
            .ok()
            .filter(|n| *n <= MAX_PART_NUMBER)
            .ok_or_else(|| UploadError::TooLarge(format!("the upload needs more than {MAX_PART_NUMBER} parts")))?;
        let service = self.clone();
        Ok(tokio::spawn(async move {
            let upload =
                service.0.store.multipart.upload_part(&service.0.buckets.draft, &key, &upload_id, number, part);
            let stored = service.call("store an upload's part", upload).await;
            drop(budget);
            let stored = stored?;
            Ok(StoredPart { number, size: stored.size, etag: stored.etag })
        }))
    }

    /// Waits for the oldest part in flight and records it (in the store too, with `record_now`).
    async fn land_part(
        &self,
        id: &str,
        in_flight: &mut std::collections::VecDeque<PartInFlight>,
        record: &mut Record,
        record_now: bool,
    ) -> Outcome<()> {
        let Some(sending) = in_flight.pop_front() else { return Ok(()) };
        let stored = sending.await.map_err(|_| Error::ServerBusy)??;
        record.parts.push(stored);
        if record_now {
            record.tail = None;
            self.write_record(id, record, false).await?;
        }
        Ok(())
    }

    /// Writes the draft: the last bytes as the last part and the parts assembled, or, when no part was needed,
    /// the bytes whole.
    async fn finish(&self, id: &str, lease: Option<&Held>, record: &mut Record, last: Bytes) -> Outcome<()> {
        let key = StoreKey::parse(&record.key).map_err(|e| Error::InvalidObjectName(e.to_string()))?;
        let draft = &self.0.buckets.draft;
        if record.parts.is_empty() && record.upload_id.is_none() {
            let content_type = ContentType::parse(&record.content_type).unwrap_or_else(|_| ContentType::octet_stream());
            let put = self.0.store.objects.put_object(draft, &key, last, &content_type);
            return Ok(self.call("store the upload", put).await.map(drop)?);
        }
        let size = record.length.unwrap_or_default();
        if !last.is_empty() || record.parts.is_empty() {
            match self.store_part(id, lease, record, last).await {
                // Assembled by an earlier request that died before it recorded so: the draft is there.
                Err(UploadError::Service(Error::UploadNotFound(_))) if self.draft_of_size(&key, size).await? => {
                    return Ok(());
                }
                other => other?,
            }
        }
        let upload_id =
            UploadId::parse(record.upload_id.as_deref().unwrap_or_default()).map_err(|e| Error::Internal {
                operation: "read an upload's record",
                source: draftstore_storage::Error::other("the recorded upload id is invalid", e),
            })?;
        let parts: Vec<_> =
            record.parts.iter().map(|p| CompletedPart { number: p.number, etag: p.etag.clone() }).collect();
        let progress = Progress::default();
        let complete = self.0.store.multipart.complete_multipart(draft, &key, &upload_id, &parts, &progress);
        match self.call_with_progress("assemble the upload", &progress, complete).await {
            Err(Error::UploadNotFound(_)) if self.draft_of_size(&key, size).await? => Ok(()),
            other => Ok(other?),
        }
    }

    /// Whether the draft of `key` exists with `size` bytes.
    async fn draft_of_size(&self, key: &StoreKey, size: u64) -> Result<bool, Error> {
        match self.call("look up the draft", self.0.store.objects.head(&self.0.buckets.draft, key)).await {
            Ok(meta) => Ok(meta.size == size),
            Err(Error::ObjectNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn read_record(&self, caller: &Caller, id: &str, now: OffsetDateTime) -> Outcome<Record> {
        if !valid_id(id) {
            return Err(UploadError::NotFound);
        }
        let key = record_key(id, "upload");
        let read = self.0.store.objects.get_record(&self.0.buckets.events, &key);
        let bytes = match self.call("read an upload's record", read).await {
            Ok(bytes) => bytes,
            Err(Error::ObjectNotFound(_)) => return Err(UploadError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| Error::Internal {
            operation: "read an upload's record",
            source: draftstore_storage::Error::other("the record does not parse", e),
        })?;
        // Someone else's upload is no upload of the caller's: not found, as any other name they cannot see.
        if record.tenant.as_deref() != caller.tenant().map(|t| t.as_str()) {
            return Err(UploadError::NotFound);
        }
        if record.expires_at <= now.unix_timestamp() {
            return Err(UploadError::Expired(record.state(id).expires_at));
        }
        Ok(record)
    }

    async fn write_record(&self, id: &str, record: &Record, if_absent: bool) -> Result<(), Error> {
        let json = serde_json::to_vec(record).expect("a record serializes");
        let key = record_key(id, "upload");
        let put = self.0.store.objects.put_record(&self.0.buckets.events, &key, json.into(), if_absent);
        match self.call("write an upload's record", put).await? {
            true => Ok(()),
            false => Err(Error::Internal {
                operation: "write an upload's record",
                source: draftstore_storage::Error::other(
                    "an upload of this id exists",
                    std::io::Error::other(id.to_owned()),
                ),
            }),
        }
    }

    /// Takes the upload's lease, or fails with [`UploadError::Locked`] while another request holds it. A lease
    /// past its time (its holder died) is removed and taken.
    async fn take_lease(&self, id: &str) -> Outcome<String> {
        let nonce = new_id();
        let events = &self.0.buckets.events;
        for _ in 0..3 {
            if self.write_lease(id, &nonce, true).await? {
                return Ok(nonce);
            }
            match self.read_lease(id).await? {
                Some((lease, _)) if lease.until > OffsetDateTime::now_utc().unix_timestamp() => {
                    return Err(UploadError::Locked);
                }
                // Only the stale version read: of two requests taking over a dead holder's lease, the second finds
                // the first's new lease in its place, leaves it, and is refused.
                Some((_, etag)) => {
                    let key = record_key(id, "lease");
                    let delete = self.0.store.objects.delete_version(events, &key, &etag);
                    self.call("remove a stale lease", delete).await?;
                }
                None => {}
            }
        }
        Err(UploadError::Locked)
    }

    /// The upload's lease and the version it was read from, when one is held.
    async fn read_lease(&self, id: &str) -> Result<Option<(Lease, String)>, Error> {
        let key = record_key(id, "lease");
        let read = self.0.store.objects.head_with_first_bytes(&self.0.buckets.events, &key, 4096);
        match self.call("read an upload's lease", read).await {
            Ok((meta, bytes)) => {
                Ok(serde_json::from_slice::<Lease>(&bytes).ok().map(|lease| (lease, meta.etag.unwrap_or_default())))
            }
            Err(Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the lease record for `nonce`: new with `if_absent` (false when one exists), else renewed if it is
    /// still this holder's.
    async fn write_lease(&self, id: &str, nonce: &str, if_absent: bool) -> Result<bool, Error> {
        if !if_absent && self.check_lease(id, nonce).await.is_err() {
            return Ok(false);
        }
        let lease = Lease { nonce: nonce.to_owned(), until: (OffsetDateTime::now_utc() + LEASE_TTL).unix_timestamp() };
        let json = serde_json::to_vec(&lease).expect("a lease serializes");
        let key = record_key(id, "lease");
        let put = self.0.store.objects.put_record(&self.0.buckets.events, &key, json.into(), if_absent);
        self.call("write an upload's lease", put).await
    }

    /// Fails unless the lease is still `nonce`'s: a holder that lost it (paused past its time) stops writing.
    async fn check_lease(&self, id: &str, nonce: &str) -> Outcome<()> {
        match self.read_lease(id).await? {
            Some((lease, _)) if lease.nonce == nonce => Ok(()),
            _ => Err(UploadError::Locked),
        }
    }

    /// Removes the lease if it is still `nonce`'s: a holder that lost it leaves the next holder's in place.
    async fn release_lease(&self, id: &str, nonce: &str) -> Result<(), Error> {
        if let Some((lease, etag)) = self.read_lease(id).await?
            && lease.nonce == nonce
        {
            let key = record_key(id, "lease");
            let delete = self.0.store.objects.delete_version(&self.0.buckets.events, &key, &etag);
            self.call("release an upload's lease", delete).await?;
        }
        Ok(())
    }
}

/// A client's file name made into the last segment of an object name: no slashes, no control characters.
fn sanitize_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c })
        .collect::<String>()
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .chars()
        .take(200)
        .collect();
    if cleaned.is_empty() { "upload".to_owned() } else { cleaned }
}

/// The digest of a body being received, when the request says what it must be.
enum Digests {
    None,
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Digests {
    fn new(checksum: Option<&BodyChecksum>) -> Self {
        match checksum {
            None => Self::None,
            Some(BodyChecksum::Sha1(_)) => Self::Sha1(sha1::Sha1::new()),
            Some(BodyChecksum::Sha256(_)) => Self::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::None => {}
            Self::Sha1(h) => h.update(bytes),
            Self::Sha256(h) => h.update(bytes),
        }
    }

    fn matches(self, checksum: Option<&BodyChecksum>) -> bool {
        match (self, checksum) {
            (Self::Sha1(h), Some(BodyChecksum::Sha1(want))) => h.finalize().as_slice() == want.as_slice(),
            (Self::Sha256(h), Some(BodyChecksum::Sha256(want))) => h.finalize().as_slice() == want.as_slice(),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_reach_the_end_within_ten_thousand_parts() {
        assert_eq!(part_size(Some(0), 1 << 40), MIN_APPEND_PART);
        assert_eq!(part_size(None, 5 << 30), MIN_APPEND_PART);
        let big = 300u64 << 30;
        let size = part_size(Some(big), big);
        assert!(size * u64::from(MAX_PART_NUMBER) >= big && size <= MAX_APPEND_PART, "{size}");
        assert_eq!(part_size(None, u64::MAX), MAX_APPEND_PART);
    }

    #[test]
    fn ids_are_checked_before_they_reach_a_key() {
        assert!(valid_id(&new_id()));
        for bad in ["", "../../etc", "ABCDEF0123456789abcdef0123456789", &"a".repeat(33)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn file_names_lose_their_paths() {
        assert_eq!(sanitize_file_name("../../a/b.txt"), "_.._a_b.txt");
        assert_eq!(sanitize_file_name(".."), "upload");
        assert_eq!(sanitize_file_name("photo 1.jpg"), "photo 1.jpg");
    }
}

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

use bytes::{Bytes, BytesMut};
use draftstore_storage::multipart::{MAX_PART_NUMBER, MIN_PART_SIZE};
use draftstore_storage::{CompletedPart, Declared, ObjectKey as StoreKey, Progress, UploadId};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

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
    #[error("{0}")]
    TooLarge(String),
    #[error("the body does not match its Upload-Checksum; nothing of it was kept")]
    ChecksumMismatch,
    #[error("the upload is complete: it takes no more bytes")]
    Completed,
    #[error("the request's body broke off after {kept} bytes were kept: {reason}")]
    Interrupted { kept: u64, reason: String },
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

/// The memory appends may hold, shared by every append of a service.
#[derive(Debug)]
pub struct AppendBuffers(Arc<Semaphore>);

impl Default for AppendBuffers {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(BUFFER_BUDGET_MIB)))
    }
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
        E: std::fmt::Display,
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
                let empty = futures_util::stream::empty::<Result<Bytes, std::convert::Infallible>>();
                self.append_to(&id, None, record, Append::default(), empty).await
            }
            None => Ok(record.state(&id)),
        }
    }

    /// The caller's upload `id` as it stands.
    pub async fn resumable_state(&self, caller: &Caller, id: &str, now: OffsetDateTime) -> Outcome<UploadState> {
        Ok(self.read_record(caller, id, now).await?.state(id))
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
        E: std::fmt::Display + Send + 'static,
    {
        if !valid_id(id) {
            return Err(UploadError::NotFound);
        }
        let lease = self.take_lease(id).await?;
        let renewal = {
            let (service, id, nonce) = (self.clone(), id.to_owned(), lease.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_RENEWAL).await;
                    let _ = service.write_lease(&id, &nonce, false).await;
                }
            })
        };
        let outcome = match self.read_record(caller, id, now).await {
            Ok(record) => self.append_to(id, Some(&lease), record, append, body).await,
            Err(e) => Err(e),
        };
        renewal.abort();
        let _ = self.release_lease(id).await;
        outcome
    }

    /// Appends to `record`, holding the upload's `lease` (none while the upload is being created: no one else
    /// knows its id yet).
    async fn append_to<S, E>(
        &self,
        id: &str,
        lease: Option<&str>,
        mut record: Record,
        append: Append,
        mut body: S,
    ) -> Outcome<UploadState>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        if record.complete {
            let empty =
                append.content_length == Some(0) || (append.content_length.is_none() && body.next().await.is_none());
            return match append.offset == record.state(id).offset && empty {
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
        let room = record.length.unwrap_or(max) - offset;
        if let Some(declared) = append.content_length {
            if declared > room {
                return Err(match record.length {
                    Some(length) => UploadError::Inconsistent(format!(
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
        let tail = record.tail.as_ref().map_or(0, |t| t.size);
        let expected = append.content_length.unwrap_or(room);
        let most = record.part_size * (PARTS_IN_FLIGHT as u64 + 1);
        let share = usize::try_from((tail + expected).min(most).div_ceil(1 << 20).max(1)).unwrap_or(1);
        let permit =
            tokio::time::timeout(BUFFER_WAIT, Arc::clone(&self.0.resumable_buffers.0).acquire_many_owned(share as u32))
                .await
                .map_err(|_| Error::ServerBusy)?
                .map_err(|_| Error::ServerBusy)?;
        let mut buffer = BytesMut::new();
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
            buffer.extend_from_slice(&bytes);
        }
        let old_tail = record.tail.clone();
        // Parts sent before the body ends are recorded as they go only where nothing can undo them later: the body
        // is as long as declared and no checksum may refuse it.
        let record_as_we_go = append.content_length.is_some() && append.checksum.is_none();
        let mut digest = Digests::new(append.checksum.as_ref());
        let mut received: u64 = 0;
        let mut broke_off = None;
        let mut tail_consumed = false;
        let mut in_flight = std::collections::VecDeque::new();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    broke_off = Some(e.to_string());
                    break;
                }
            };
            received += chunk.len() as u64;
            if received > room {
                return Err(match record.length {
                    Some(length) => UploadError::Inconsistent(format!(
                        "the body goes past the upload's length, {length}; nothing of it was kept"
                    )),
                    None => UploadError::TooLarge(format!(
                        "the body goes past {max} bytes, the largest resumable upload; nothing of it was kept"
                    )),
                });
            }
            digest.update(&chunk);
            buffer.extend_from_slice(&chunk);
            while buffer.len() as u64 >= record.part_size {
                let part = buffer.split_to(record.part_size as usize).freeze();
                let number = record.parts.len() + in_flight.len() + 1;
                in_flight.push_back(self.start_part(id, lease, &mut record, number, part).await?);
                tail_consumed = true;
                if in_flight.len() >= PARTS_IN_FLIGHT {
                    self.land_part(id, &mut in_flight, &mut record, record_as_we_go).await?;
                }
            }
        }
        drop(body);
        while !in_flight.is_empty() {
            self.land_part(id, &mut in_flight, &mut record, record_as_we_go).await?;
        }
        if broke_off.is_some() && append.checksum.is_some() {
            return Err(UploadError::Interrupted {
                kept: 0,
                reason: "a body with Upload-Checksum is kept whole or not at all".to_owned(),
            });
        }
        if !digest.matches(append.checksum.as_ref()) {
            return Err(UploadError::ChecksumMismatch);
        }
        let end = record.stored() + buffer.len() as u64;
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
            self.finish(id, lease, &mut record, buffer.freeze()).await?;
            record.tail = None;
            record.complete = true;
            self.write_record(id, &record, false).await?;
        } else if received > 0 || tail_consumed {
            record.tail = match buffer.is_empty() {
                true => None,
                false => {
                    let generation = old_tail.as_ref().map_or(1, |t| t.generation + 1);
                    let key = record_key(id, &format!("tail-{generation}"));
                    let size = buffer.len() as u64;
                    let octets = ContentType::octet_stream();
                    let put = self.0.store.objects.put_object(&self.0.buckets.events, &key, buffer.freeze(), &octets);
                    self.call("store an upload's tail", put).await?;
                    Some(Tail { generation, size })
                }
            };
            if let Some(lease) = lease {
                self.check_lease(id, lease).await?;
            }
            self.write_record(id, &record, false).await?;
        }
        drop(permit);
        if let Some(old) = old_tail
            && record.tail.as_ref().is_none_or(|t| t.generation != old.generation)
        {
            let key = record_key(id, &format!("tail-{}", old.generation));
            let _ = self
                .call("delete an upload's old tail", self.0.store.objects.delete(&self.0.buckets.events, &key))
                .await;
        }
        match broke_off {
            Some(reason) => Err(UploadError::Interrupted { kept: record.offset() - offset, reason }),
            None => Ok(record.state(id)),
        }
    }

    /// Ends the caller's upload `id`: its stored bytes and its record are removed. A completed upload's draft stays.
    pub async fn terminate_resumable(&self, caller: &Caller, id: &str, now: OffsetDateTime) -> Outcome<()> {
        let record = self.read_record(caller, id, now).await?;
        self.take_lease(id).await?;
        let outcome = self.remove_upload(id, &record).await;
        let _ = self.release_lease(id).await;
        outcome.map_err(Into::into)
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
    async fn store_part(&self, id: &str, lease: Option<&str>, record: &mut Record, part: Bytes) -> Outcome<()> {
        let number = record.parts.len() + 1;
        let mut sent = std::collections::VecDeque::from([self.start_part(id, lease, record, number, part).await?]);
        self.land_part(id, &mut sent, record, false).await
    }

    /// Starts sending part `number`, the upload's parts started first when none is yet; the part travels while
    /// the next one is received.
    async fn start_part(
        &self,
        id: &str,
        lease: Option<&str>,
        record: &mut Record,
        number: usize,
        part: Bytes,
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
                upload_id
            }
        };
        if let Some(lease) = lease {
            self.check_lease(id, lease).await?;
        }
        let number = u32::try_from(number)
            .ok()
            .filter(|n| *n <= MAX_PART_NUMBER)
            .ok_or_else(|| UploadError::TooLarge(format!("the upload needs more than {MAX_PART_NUMBER} parts")))?;
        let service = self.clone();
        Ok(tokio::spawn(async move {
            let upload =
                service.0.store.multipart.upload_part(&service.0.buckets.draft, &key, &upload_id, number, part);
            let stored = service.call("store an upload's part", upload).await?;
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
    async fn finish(&self, id: &str, lease: Option<&str>, record: &mut Record, last: Bytes) -> Outcome<()> {
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
            let key = record_key(id, "lease");
            let read = self.0.store.objects.get_record(events, &key);
            match self.call("read an upload's lease", read).await {
                Ok(bytes) => match serde_json::from_slice::<Lease>(&bytes) {
                    Ok(lease) if lease.until > OffsetDateTime::now_utc().unix_timestamp() => {
                        return Err(UploadError::Locked);
                    }
                    _ => {
                        let key = record_key(id, "lease");
                        let delete = self.0.store.objects.delete(events, &key);
                        self.call("remove a stale lease", delete).await?;
                    }
                },
                Err(Error::ObjectNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(UploadError::Locked)
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
        let key = record_key(id, "lease");
        let read = self.0.store.objects.get_record(&self.0.buckets.events, &key);
        match self.call("read an upload's lease", read).await {
            Ok(bytes) if serde_json::from_slice::<Lease>(&bytes).is_ok_and(|l| l.nonce == nonce) => Ok(()),
            Ok(_) | Err(Error::ObjectNotFound(_)) => Err(UploadError::Locked),
            Err(e) => Err(e.into()),
        }
    }

    async fn release_lease(&self, id: &str) -> Result<(), Error> {
        let key = record_key(id, "lease");
        self.call("release an upload's lease", self.0.store.objects.delete(&self.0.buckets.events, &key)).await
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

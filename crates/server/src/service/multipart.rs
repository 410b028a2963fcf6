//! Multipart uploads: start, sign parts, list parts, complete, abort. An upload is bound to the caller's tenant and
//! object name by the store itself (the upload id belongs to one key, and the key carries the tenant), so another
//! caller or another name finds no such upload.
//!
//! Every upload stays within MAX_UPLOAD_SIZE as its parts arrive, not only at completion: a start declares its
//! total size (required when MAX_UPLOAD_SIZE is below 5 TiB) and takes a part size no larger than the limit, and
//! DraftStore keeps the two as the upload's *layout*, a small record in the records bucket. Each part URL is then
//! signed for its exact length (every part the part size, the last the remainder), so the store refuses any other
//! body, and no part is signed past the last. An upload started without a layout (by an S3 uploader such as Uppy,
//! through `uppy/sign`, which declares no size) gets part URLs bounded only by the store: part numbers that no
//! upload within MAX_UPLOAD_SIZE could have are refused, the local backend refuses a part that takes the upload
//! past MAX_UPLOAD_SIZE, and S3 takes up to 5 GiB a part. A completion above the limit aborts the upload and
//! removes its parts.

use draftstore_storage::multipart::{
    MAX_OBJECT_SIZE, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE, check_parts, latest_versions,
};
use draftstore_storage::{
    CompletedPart, Conditions, Declared, Method, MultipartRequest, ObjectKey, PresignRequest, PresignedUrl, Progress,
    UploadId, UploadedPart, WholeChecksum,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;

use super::DraftService;
use crate::auth::Caller;
use crate::domain::{Checksum, ContentType, ObjectName};
use crate::error::{Error, Result};

/// Most parts one sign call signs.
pub const MAX_SIGN_BATCH: usize = 1000;
const MIB: u64 = 1024 * 1024;

/// What a multipart upload declares when it starts.
#[derive(Debug, Clone, Default)]
pub struct MultipartStart {
    pub content_type: Option<ContentType>,
    /// Total size, when known: checked against MAX_UPLOAD_SIZE now and against the object at confirm.
    pub content_length: Option<u64>,
    /// SHA-256 of the whole object, verified at completion where the store can.
    pub checksum_sha256: Option<Checksum>,
    /// Part size the client would like; DraftStore's default otherwise.
    pub part_size: Option<u64>,
}

/// A started upload and how to cut the file into parts.
#[derive(Debug, Clone)]
pub struct StartedUpload {
    pub upload_id: UploadId,
    pub object_name: ObjectName,
    /// Every part but the last has exactly this size.
    pub part_size: u64,
    /// How many parts, when the total size was declared.
    pub part_count: Option<u32>,
}

/// A part to sign.
#[derive(Debug, Clone)]
pub struct PartRequest {
    pub number: u32,
    /// The part's SHA-256; signed in, so the store verifies the part.
    pub checksum_sha256: Option<Checksum>,
}

impl PartRequest {
    /// A part as a request gives it: its number and, when given, its base64 SHA-256.
    pub fn parse(number: u64, checksum_sha256: Option<&str>) -> Result<Self> {
        Ok(Self {
            number: crate::domain::parse_part_number(number)?,
            checksum_sha256: crate::domain::parse_checksum(checksum_sha256)?,
        })
    }
}

/// A signed part URL.
#[derive(Debug, Clone)]
pub struct SignedPart {
    pub number: u32,
    pub url: PresignedUrl,
    pub expires_at: OffsetDateTime,
}

/// An S3 request that a browser uploader (Uppy's `@uppy/aws-s3`) asks DraftStore to sign, then sends to the
/// store itself.
#[derive(Debug, Clone)]
pub enum S3Request {
    /// `PUT` of a whole object: as an upload URL.
    PutObject { content_type: Option<ContentType> },
    /// `POST ?uploads`: start a multipart upload.
    CreateMultipart { content_type: Option<ContentType> },
    /// `PUT ?partNumber=&uploadId=`.
    UploadPart { upload_id: UploadId, number: u32 },
    /// `GET ?uploadId=`.
    ListParts { upload_id: UploadId },
    /// `DELETE ?uploadId=`.
    Abort { upload_id: UploadId },
}

/// The part size for an upload: the one asked for (at most MAX_UPLOAD_SIZE, `max_size`) or the default (brought
/// down to MAX_UPLOAD_SIZE, not below S3's 5 MiB), made larger when the object would otherwise need more than 10,000
/// parts (rounded up to whole MiB).
fn part_size(asked: Option<u64>, default: u64, total: Option<u64>, max_size: u64) -> Result<u64> {
    if let Some(size) = asked {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size) {
            return Err(Error::InvalidRequest(format!(
                "part_size {size} is out of range ({MIN_PART_SIZE} to {MAX_PART_SIZE} bytes)"
            )));
        }
        if size > max_size {
            return Err(Error::InvalidRequest(format!(
                "part_size {size} is above MAX_UPLOAD_SIZE ({max_size} bytes): no upload has a part that large"
            )));
        }
    }
    let needed = total.map_or(0, |total| total.div_ceil(u64::from(MAX_PART_NUMBER)).div_ceil(MIB) * MIB);
    Ok(asked.unwrap_or(default.min(max_size).max(MIN_PART_SIZE)).max(needed))
}

/// How an upload started through the API is cut into parts: kept in the records bucket while it is open, so that
/// every part URL can be signed for its exact length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The declared total size.
    pub length: u64,
    /// Every part but the last has this size.
    pub part_size: u64,
}

impl Layout {
    /// How many parts the upload has (one, for an empty object).
    pub fn part_count(&self) -> u32 {
        u32::try_from(self.length.div_ceil(self.part_size).max(1)).unwrap_or(u32::MAX)
    }

    /// The exact length of part `number`: the part size, the remainder for the last; `Err` past the last.
    pub fn part_length(&self, number: u32) -> Result<u64> {
        let count = self.part_count();
        if number > count {
            return Err(Error::InvalidParts(format!(
                "part {number} is past the last part: an upload of {} bytes in parts of {} bytes has {count}",
                self.length, self.part_size
            )));
        }
        Ok(if number < count { self.part_size } else { self.length - u64::from(count - 1) * self.part_size })
    }
}

/// Where the layouts of open uploads are kept in the records bucket.
const LAYOUTS: &str = "uploads/";

/// The key of an upload's layout: a digest of the key and the upload id, which may be long.
fn layout_key(key: &ObjectKey, upload_id: &UploadId) -> ObjectKey {
    let digest = sha2::Sha256::digest(format!("{key}\n{upload_id}").as_bytes());
    // A fixed folder and 64 hex digits: always a valid key.
    ObjectKey::parse(&format!("{LAYOUTS}{}", hex::encode(digest))).expect("a layout's key is valid")
}

/// The most parts an upload within `max_size` can have: every part but the last is at least 5 MiB.
fn most_parts(max_size: u64) -> u32 {
    u32::try_from(max_size / MIN_PART_SIZE + 1).unwrap_or(u32::MAX).min(MAX_PART_NUMBER)
}

impl DraftService {
    /// Starts a multipart upload of a draft. Refused up front, like an upload URL, when the declared size or type
    /// is outside the limits.
    pub async fn start_multipart(
        &self,
        caller: &Caller,
        name: &ObjectName,
        start: MultipartStart,
    ) -> Result<StartedUpload> {
        let key = caller.key(name)?;
        let max_size = self.0.limits.max_size;
        self.0.limits.check(start.content_type.as_ref(), start.content_length)?;
        if let Some(length) = start.content_length
            && length > MAX_OBJECT_SIZE
        {
            return Err(Error::UploadTooLarge(format!(
                "content_length {length} is above {MAX_OBJECT_SIZE} bytes (5 TiB), the largest object"
            )));
        }
        if start.content_length.is_none() && max_size < MAX_OBJECT_SIZE {
            return Err(Error::InvalidRequest(format!(
                "content_length is required: uploads are limited to MAX_UPLOAD_SIZE ({max_size} bytes), and each part \
                 URL is signed for its exact length"
            )));
        }
        if start.checksum_sha256.is_some() && self.0.store.multipart.whole_checksum() != WholeChecksum::Verified {
            return Err(Error::InvalidRequest(
                "checksum_sha256 of a whole multipart upload cannot be verified by this store (S3 checks each part, \
                 never the whole); declare each part's checksum_sha256 when signing parts instead"
                    .to_owned(),
            ));
        }
        let part_size = part_size(start.part_size, self.0.multipart_part_size, start.content_length, max_size)?;
        let layout = start.content_length.map(|length| Layout { length, part_size });
        let part_count = layout.map(|layout| layout.part_count());
        let content_type = start.content_type.unwrap_or_else(ContentType::octet_stream);
        let declared = Declared { length: start.content_length, sha256: start.checksum_sha256 };
        let bucket = &self.0.buckets.draft;
        let create = self.0.store.multipart.create_multipart(bucket, &key, &content_type, &declared, Some(part_size));
        let upload_id = self.call("start a multipart upload", create).await?;
        if let Some(layout) = layout
            && let Err(e) = self.keep_layout(&key, &upload_id, layout).await
        {
            // An upload whose parts could not be bounded is not handed out.
            let abort = self.0.store.multipart.abort_multipart(bucket, &key, &upload_id);
            if let Err(abort) = self.call("abort the multipart upload", abort).await {
                tracing::warn!(%key, %upload_id, error = %abort.chain(), "failed to abort an upload; the cleaner will");
            }
            return Err(e);
        }
        metrics::counter!("draftstore_multipart_uploads_total", "event" => "started").increment(1);
        Ok(StartedUpload { upload_id, object_name: name.clone(), part_size, part_count })
    }

    async fn keep_layout(&self, key: &ObjectKey, upload_id: &UploadId, layout: Layout) -> Result<()> {
        let body = bytes::Bytes::from(serde_json::to_vec(&layout).expect("a layout serializes"));
        let record = layout_key(key, upload_id);
        let put = self.0.store.objects.put_record(&self.0.buckets.events, &record, body, false);
        self.call("record the upload's layout", put).await.map(drop)
    }

    /// The layout of an upload started through the API; `None` for one started otherwise (or before layouts were
    /// kept), whose parts are bounded only by the store.
    async fn layout(&self, key: &ObjectKey, upload_id: &UploadId) -> Result<Option<Layout>> {
        let record = layout_key(key, upload_id);
        let get = self.0.store.objects.get_record(&self.0.buckets.events, &record);
        match self.call("read the upload's layout", get).await {
            Ok(body) => serde_json::from_slice(&body).map(Some).map_err(|e| Error::Internal {
                operation: "read the upload's layout",
                source: draftstore_storage::Error::other(format!("the layout of upload '{upload_id}' is corrupt"), e),
            }),
            Err(Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the layout of an upload that is over; a failure is left to the cleaner.
    async fn forget_layout(&self, key: &ObjectKey, upload_id: &UploadId) {
        let record = layout_key(key, upload_id);
        let delete = self.0.store.objects.delete(&self.0.buckets.events, &record);
        if let Err(e) = self.call("remove the upload's layout", delete).await {
            tracing::warn!(%key, %upload_id, error = %e.chain(), "failed to remove an upload's layout; the cleaner will");
        }
    }

    /// Removes the layouts of uploads started before `before` (their uploads are over, or the cleaner removes
    /// them), returning how many.
    pub async fn forget_stale_layouts(&self, before: OffsetDateTime) -> Result<u64> {
        let events = &self.0.buckets.events;
        let (mut removed, mut token) = (0, None);
        loop {
            let list =
                self.0.store.objects.list_prefix(events, LAYOUTS, token.as_deref(), draftstore_storage::LIST_PAGE);
            let page = self.call("list the layouts of uploads", list).await?;
            let stale: Vec<_> = page.objects.into_iter().filter(|o| o.last_modified < before).map(|o| o.key).collect();
            if !stale.is_empty() {
                let failures =
                    self.call("remove stale layouts", self.0.store.objects.delete_many(events, &stale)).await?;
                removed += (stale.len() - failures.len()) as u64;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(removed),
            }
        }
    }

    /// What a part URL of this upload binds besides its number: its exact length, where the upload has a layout
    /// (`Err` past its last part); otherwise nothing, for part numbers an upload within MAX_UPLOAD_SIZE can have.
    fn part_conditions(&self, layout: Option<&Layout>, part: &PartRequest) -> Result<Conditions> {
        let content_length = match layout {
            Some(layout) => Some(layout.part_length(part.number)?),
            None => {
                let most = most_parts(self.0.limits.max_size);
                if part.number > most {
                    return Err(Error::InvalidParts(format!(
                        "part {} is past the last part an upload within MAX_UPLOAD_SIZE ({} bytes) can have ({most})",
                        part.number, self.0.limits.max_size
                    )));
                }
                None
            }
        };
        Ok(Conditions { content_length, checksum_sha256: part.checksum_sha256.clone(), ..Conditions::default() })
    }

    /// Presigned URLs to upload a batch of parts of an upload of the caller's, one per entry in the order given (a
    /// part listed twice is signed twice: signing changes nothing).
    pub async fn sign_parts(
        &self,
        caller: &Caller,
        name: &ObjectName,
        upload_id: &UploadId,
        parts: &[PartRequest],
        now: OffsetDateTime,
    ) -> Result<Vec<SignedPart>> {
        let key = caller.key(name)?;
        if parts.is_empty() || parts.len() > MAX_SIGN_BATCH {
            return Err(Error::InvalidRequest(format!("sign 1 to {MAX_SIGN_BATCH} parts per call")));
        }
        let bucket = &self.0.buckets.draft;
        let check =
            self.call("look up the multipart upload", self.0.store.multipart.check_upload(bucket, &key, upload_id));
        let (checked, layout) = tokio::join!(check, self.layout(&key, upload_id));
        checked?;
        let layout = layout?;
        let expires_in = self.0.upload_ttl;
        let mut signed = Vec::with_capacity(parts.len());
        for part in parts {
            let conditions = self.part_conditions(layout.as_ref(), part)?;
            let request =
                PresignRequest { method: Method::Put, bucket, key: &key, now, expires_in, conditions: &conditions };
            let url = self
                .sign("sign a part URL", self.0.store.multipart.presign_part(&request, upload_id, part.number))
                .await?;
            signed.push(SignedPart { number: part.number, url, expires_at: now + expires_in });
        }
        crate::telemetry::PRESIGNED_URLS.count(&[], "PUT", signed.len() as u64);
        Ok(signed)
    }

    /// The parts of an upload of the caller's uploaded so far, so that a client can resume.
    pub async fn list_parts(
        &self,
        caller: &Caller,
        name: &ObjectName,
        upload_id: &UploadId,
    ) -> Result<Vec<UploadedPart>> {
        let key = caller.key(name)?;
        let parts = self
            .call("list the parts", self.0.store.multipart.list_parts(&self.0.buckets.draft, &key, upload_id))
            .await?;
        Ok(latest_versions(parts))
    }

    /// Assembles the listed parts into the draft, which then exists exactly as if uploaded with one PUT. A wrong
    /// list is refused with the reason and changes nothing, so the client can correct it and try again. Returns
    /// the draft's size.
    pub async fn complete_multipart(
        &self,
        caller: &Caller,
        name: &ObjectName,
        upload_id: &UploadId,
        parts: &[CompletedPart],
    ) -> Result<u64> {
        let key = &caller.key(name)?;
        let bucket = &self.0.buckets.draft;
        let uploaded = self.call("list the parts", self.0.store.multipart.list_parts(bucket, key, upload_id)).await?;
        let size = check_parts(parts, &uploaded).map_err(Error::InvalidParts)?;
        if size > self.0.limits.max_size {
            // It can never be completed: its parts go now, not when the cleaner finds them.
            self.call("abort the multipart upload", self.0.store.multipart.abort_multipart(bucket, key, upload_id))
                .await?;
            self.forget_layout(key, upload_id).await;
            metrics::counter!("draftstore_multipart_uploads_total", "event" => "aborted").increment(1);
            return Err(Error::UploadTooLarge(format!(
                "the parts add up to {size} bytes, above the limit of {} bytes; the upload was aborted and its parts \
                 removed",
                self.0.limits.max_size
            )));
        }
        let progress = Progress::default();
        let complete = self.0.store.multipart.complete_multipart(bucket, key, upload_id, parts, &progress);
        self.call_with_progress("complete the multipart upload", &progress, complete).await?;
        self.forget_layout(key, upload_id).await;
        metrics::counter!("draftstore_multipart_uploads_total", "event" => "completed").increment(1);
        Ok(size)
    }

    /// Signs one S3 request of a browser uploader, for the caller's object `name` in the draft bucket, with the
    /// limits of an upload URL: the content type must be allowed and is signed in, and an upload id must be the
    /// caller's for that name (404 otherwise, as on every multipart operation). `expires_in` may shorten the
    /// URL's life below UPLOAD_TTL, never lengthen it.
    pub async fn sign_s3_request(
        &self,
        caller: &Caller,
        name: &ObjectName,
        request: S3Request,
        expires_in: Option<std::time::Duration>,
        now: OffsetDateTime,
    ) -> Result<PresignedUrl> {
        let key = caller.key(name)?;
        let bucket = &self.0.buckets.draft;
        let expires_in = expires_in.map_or(self.0.upload_ttl, |asked| asked.min(self.0.upload_ttl));
        let presign = |method, conditions| PresignRequest { method, bucket, key: &key, now, expires_in, conditions };
        let check = |upload_id| {
            self.call("look up the multipart upload", self.0.store.multipart.check_upload(bucket, &key, upload_id))
        };
        let store = &self.0.store;
        let none = Conditions::default();
        let url = match &request {
            S3Request::PutObject { content_type } => {
                self.0.limits.check(content_type.as_ref(), None)?;
                let typed = Conditions { content_type: content_type.clone(), ..Conditions::default() };
                let put = presign(Method::Put, &typed);
                self.sign("sign a URL", store.signer.presign(&put)).await?
            }
            S3Request::CreateMultipart { content_type } => {
                self.0.limits.check(content_type.as_ref(), None)?;
                let typed = Conditions { content_type: content_type.clone(), ..Conditions::default() };
                let post = presign(Method::Post, &typed);
                self.sign("sign a URL", store.multipart.presign_multipart(&post, MultipartRequest::Create)).await?
            }
            S3Request::UploadPart { upload_id, number } => {
                let (checked, layout) = tokio::join!(check(upload_id), self.layout(&key, upload_id));
                checked?;
                let part = PartRequest { number: *number, checksum_sha256: None };
                let conditions = self.part_conditions(layout?.as_ref(), &part)?;
                let put = presign(Method::Put, &conditions);
                self.sign("sign a part URL", store.multipart.presign_part(&put, upload_id, *number)).await?
            }
            S3Request::ListParts { upload_id } => {
                check(upload_id).await?;
                let get = presign(Method::Get, &none);
                self.sign("sign a URL", store.multipart.presign_multipart(&get, MultipartRequest::ListParts(upload_id)))
                    .await?
            }
            S3Request::Abort { upload_id } => {
                check(upload_id).await?;
                let delete = presign(Method::Delete, &none);
                self.sign("sign a URL", store.multipart.presign_multipart(&delete, MultipartRequest::Abort(upload_id)))
                    .await?
            }
        };
        crate::telemetry::PRESIGNED_URLS.count(&[], url.method.as_str(), 1);
        Ok(url)
    }

    /// Succeeds when `upload_id` is an upload of the caller's object `name`; `UploadNotFound` otherwise.
    pub async fn check_upload(&self, caller: &Caller, name: &ObjectName, upload_id: &UploadId) -> Result<()> {
        let key = caller.key(name)?;
        let check = self.0.store.multipart.check_upload(&self.0.buckets.draft, &key, upload_id);
        self.call("look up the multipart upload", check).await
    }

    /// Ends an upload of the caller's and removes its parts.
    pub async fn abort_multipart(&self, caller: &Caller, name: &ObjectName, upload_id: &UploadId) -> Result<()> {
        let key = caller.key(name)?;
        let abort = self.0.store.multipart.abort_multipart(&self.0.buckets.draft, &key, upload_id);
        self.call("abort the multipart upload", abort).await?;
        self.forget_layout(&key, upload_id).await;
        metrics::counter!("draftstore_multipart_uploads_total", "event" => "aborted").increment(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_grows_so_that_no_upload_needs_more_than_ten_thousand_parts() {
        let (default, max) = (16 * MIB, MAX_OBJECT_SIZE);
        assert_eq!(part_size(None, default, None, max).expect("valid"), default);
        assert_eq!(part_size(Some(8 * MIB), default, Some(100 * MIB), max).expect("valid"), 8 * MIB);
        let five_tib = MAX_OBJECT_SIZE;
        let size = part_size(None, default, Some(five_tib), max).expect("valid");
        assert!(
            five_tib.div_ceil(size) <= u64::from(MAX_PART_NUMBER) && size.is_multiple_of(MIB) && size <= MAX_PART_SIZE
        );
        assert!(part_size(Some(MIB), default, None, max).is_err());
        assert!(part_size(Some(MAX_PART_SIZE + 1), default, None, max).is_err());
    }

    #[test]
    fn part_size_is_at_most_max_upload_size() {
        let (default, max) = (16 * MIB, 10 * MIB);
        assert!(part_size(Some(MAX_PART_SIZE), default, Some(6 * MIB), max).is_err());
        assert!(part_size(Some(10 * MIB + 1), default, Some(6 * MIB), max).is_err());
        assert_eq!(part_size(Some(10 * MIB), default, Some(6 * MIB), max).expect("valid"), 10 * MIB);
        assert_eq!(part_size(None, default, Some(6 * MIB), max).expect("valid"), 10 * MIB, "the default, brought down");
        assert_eq!(part_size(None, default, Some(MIB), MIB).expect("valid"), MIN_PART_SIZE, "never below 5 MiB");
    }

    #[test]
    fn every_part_has_its_exact_length_and_none_is_past_the_last() {
        let layout = Layout { length: 12 * MIB + 3, part_size: 5 * MIB };
        assert_eq!(layout.part_count(), 3);
        assert_eq!(layout.part_length(1).expect("first"), 5 * MIB);
        assert_eq!(layout.part_length(2).expect("second"), 5 * MIB);
        assert_eq!(layout.part_length(3).expect("last"), 2 * MIB + 3, "the remainder");
        assert!(layout.part_length(4).is_err());
        let exact = Layout { length: 10 * MIB, part_size: 5 * MIB };
        assert_eq!((exact.part_count(), exact.part_length(2).expect("last")), (2, 5 * MIB));
        let empty = Layout { length: 0, part_size: 5 * MIB };
        assert_eq!((empty.part_count(), empty.part_length(1).expect("the one part")), (1, 0));
        assert_eq!(most_parts(10 * MIB), 3);
        assert_eq!(most_parts(MAX_OBJECT_SIZE), MAX_PART_NUMBER);
    }
}

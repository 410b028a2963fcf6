//! Multipart uploads: start, sign parts, list parts, complete, abort. An upload is bound to the caller's tenant and
//! object name by the store itself (the upload id belongs to one key, and the key carries the tenant), so another
//! caller or another name finds no such upload.

use draftstore_storage::multipart::{
    MAX_OBJECT_SIZE, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE, check_parts, latest_versions,
};
use draftstore_storage::{
    CompletedPart, Conditions, Declared, Method, MultipartRequest, PresignRequest, PresignedUrl, Progress, UploadId,
    UploadedPart,
};
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

/// The part size for an upload: the one asked for or the default, made larger when the object would otherwise need
/// more than 10,000 parts (rounded up to whole MiB).
fn part_size(asked: Option<u64>, default: u64, total: Option<u64>) -> Result<u64> {
    if let Some(size) = asked
        && !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size)
    {
        return Err(Error::InvalidRequest(format!(
            "part_size {size} is out of range ({MIN_PART_SIZE} to {MAX_PART_SIZE} bytes)"
        )));
    }
    let needed = total.map_or(0, |total| total.div_ceil(u64::from(MAX_PART_NUMBER)).div_ceil(MIB) * MIB);
    Ok(asked.unwrap_or(default).max(needed))
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
        self.0.limits.check(start.content_type.as_ref(), start.content_length)?;
        if let Some(length) = start.content_length
            && length > MAX_OBJECT_SIZE
        {
            return Err(Error::UploadTooLarge(format!(
                "content_length {length} is above {MAX_OBJECT_SIZE} bytes (5 TiB), the largest object"
            )));
        }
        if start.checksum_sha256.is_some() && !self.0.storage.verifies_multipart_sha256() {
            return Err(Error::InvalidRequest(
                "checksum_sha256 of a whole multipart upload cannot be verified by this store (S3 checks each part, \
                 never the whole); declare each part's checksum_sha256 when signing parts instead"
                    .to_owned(),
            ));
        }
        let part_size = part_size(start.part_size, self.0.multipart_part_size, start.content_length)?;
        let part_count = start.content_length.map(|total| total.div_ceil(part_size).max(1) as u32);
        let content_type = start.content_type.unwrap_or_else(ContentType::octet_stream);
        let declared = Declared { length: start.content_length, sha256: start.checksum_sha256 };
        let create =
            self.0.storage.create_multipart(&self.0.buckets.draft, &key, &content_type, &declared, Some(part_size));
        let upload_id = self.call("start a multipart upload", create).await?;
        metrics::counter!("draftstore_multipart_uploads_total", "event" => "started").increment(1);
        Ok(StartedUpload { upload_id, object_name: name.clone(), part_size, part_count })
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
        self.call("look up the multipart upload", self.0.storage.check_upload(bucket, &key, upload_id)).await?;
        let expires_in = self.0.upload_ttl;
        let mut signed = Vec::with_capacity(parts.len());
        for part in parts {
            let conditions = Conditions { checksum_sha256: part.checksum_sha256.clone(), ..Conditions::default() };
            let request =
                PresignRequest { method: Method::Put, bucket, key: &key, now, expires_in, conditions: &conditions };
            let url =
                self.sign("sign a part URL", self.0.storage.presign_part(&request, upload_id, part.number)).await?;
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
        let parts =
            self.call("list the parts", self.0.storage.list_parts(&self.0.buckets.draft, &key, upload_id)).await?;
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
        let uploaded = self.call("list the parts", self.0.storage.list_parts(bucket, key, upload_id)).await?;
        let size = check_parts(parts, &uploaded).map_err(Error::InvalidParts)?;
        if size > self.0.limits.max_size {
            return Err(Error::UploadTooLarge(format!(
                "the parts add up to {size} bytes, above the limit of {} bytes; abort the upload",
                self.0.limits.max_size
            )));
        }
        let progress = Progress::default();
        let complete = self.0.storage.complete_multipart(bucket, key, upload_id, parts, &progress);
        self.call_with_progress("complete the multipart upload", &progress, complete).await?;
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
        let check =
            |upload_id| self.call("look up the multipart upload", self.0.storage.check_upload(bucket, &key, upload_id));
        let storage = &self.0.storage;
        let none = Conditions::default();
        let url = match &request {
            S3Request::PutObject { content_type } => {
                self.0.limits.check(content_type.as_ref(), None)?;
                let typed = Conditions { content_type: content_type.clone(), ..Conditions::default() };
                let put = presign(Method::Put, &typed);
                self.sign("sign a URL", storage.presign(&put)).await?
            }
            S3Request::CreateMultipart { content_type } => {
                self.0.limits.check(content_type.as_ref(), None)?;
                let typed = Conditions { content_type: content_type.clone(), ..Conditions::default() };
                let post = presign(Method::Post, &typed);
                self.sign("sign a URL", storage.presign_multipart(&post, MultipartRequest::Create)).await?
            }
            S3Request::UploadPart { upload_id, number } => {
                check(upload_id).await?;
                let put = presign(Method::Put, &none);
                self.sign("sign a part URL", storage.presign_part(&put, upload_id, *number)).await?
            }
            S3Request::ListParts { upload_id } => {
                check(upload_id).await?;
                let get = presign(Method::Get, &none);
                self.sign("sign a URL", storage.presign_multipart(&get, MultipartRequest::ListParts(upload_id))).await?
            }
            S3Request::Abort { upload_id } => {
                check(upload_id).await?;
                let delete = presign(Method::Delete, &none);
                self.sign("sign a URL", storage.presign_multipart(&delete, MultipartRequest::Abort(upload_id))).await?
            }
        };
        crate::telemetry::PRESIGNED_URLS.count(&[], url.method.as_str(), 1);
        Ok(url)
    }

    /// Succeeds when `upload_id` is an upload of the caller's object `name`; `UploadNotFound` otherwise.
    pub async fn check_upload(&self, caller: &Caller, name: &ObjectName, upload_id: &UploadId) -> Result<()> {
        let key = caller.key(name)?;
        let check = self.0.storage.check_upload(&self.0.buckets.draft, &key, upload_id);
        self.call("look up the multipart upload", check).await
    }

    /// Ends an upload of the caller's and removes its parts.
    pub async fn abort_multipart(&self, caller: &Caller, name: &ObjectName, upload_id: &UploadId) -> Result<()> {
        let key = caller.key(name)?;
        let abort = self.0.storage.abort_multipart(&self.0.buckets.draft, &key, upload_id);
        self.call("abort the multipart upload", abort).await?;
        metrics::counter!("draftstore_multipart_uploads_total", "event" => "aborted").increment(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_grows_so_that_no_upload_needs_more_than_ten_thousand_parts() {
        let default = 16 * MIB;
        assert_eq!(part_size(None, default, None).expect("valid"), default);
        assert_eq!(part_size(Some(8 * MIB), default, Some(100 * MIB)).expect("valid"), 8 * MIB);
        let five_tib = MAX_OBJECT_SIZE;
        let size = part_size(None, default, Some(five_tib)).expect("valid");
        assert!(
            five_tib.div_ceil(size) <= u64::from(MAX_PART_NUMBER) && size.is_multiple_of(MIB) && size <= MAX_PART_SIZE
        );
        assert!(part_size(Some(MIB), default, None).is_err());
        assert!(part_size(Some(MAX_PART_SIZE + 1), default, None).is_err());
    }
}

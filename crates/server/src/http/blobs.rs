//! The local backend's signed URLs: `PUT` and `GET /blobs/<bucket>/<key>`. Here DraftStore plays the object store,
//! so every request is checked against its signature before anything is read or written.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftstore_storage::local::{
    CONTENT_DISPOSITION_PARAM, CONTENT_TYPE_PARAM, IF_MATCH_PARAM, LocalStorage, PART_NUMBER_PARAM, UPLOAD_ID_PARAM,
    UPLOADS_PARAM, WriteChecks,
};
use draftstore_storage::multipart::MAX_SINGLE_UPLOAD;
use draftstore_storage::{
    BucketName, CHECKSUM_HEADER, Checksum, ContentType, DECLARED_LENGTH_HEADER, DECLARED_SHA256_HEADER, Declared,
    Method, MultipartStore, ObjectKey, UploadId,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio_util::io::ReaderStream;

use super::AppState;
use crate::connections::{BodyStalled, BodyTooSlow};
use crate::error::{Error, Result};

/// Bytes of an object read at once for a download: each read is a task on the blocking pool, which every other file
/// operation shares, so a few large reads fill a client's socket buffers rather than dozens of small ones (600
/// downloads starting together queued some 15,000 reads of 4 KiB ahead of everything else).
const READ_CHUNK: usize = 64 << 10;

/// A request to a signed URL, checked: the bucket, key and signature are valid.
struct Verified<'a> {
    local: &'a LocalStorage,
    bucket: BucketName,
    key: ObjectKey,
    /// The URL was signed to serve the object with this `Content-Disposition`.
    disposition: Option<String>,
    /// The URL was signed to serve only the version of this etag.
    if_match: Option<String>,
    /// The URL was signed to serve the object with this `Content-Type`, whatever the object's own.
    response_type: Option<String>,
    /// The URL was signed to upload this part of this multipart upload.
    part: Option<(UploadId, u32)>,
    /// The URL was signed for a request on this multipart upload as a whole (list, complete, abort).
    upload: Option<UploadId>,
    /// The URL was signed to start a multipart upload.
    start: bool,
}

fn verify<'a>(
    state: &'a AppState,
    method: Method,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Verified<'a>> {
    let local = state.local.as_deref().ok_or_else(|| Error::SignatureRejected("no local storage here".to_owned()))?;
    let Path((bucket, key)) = path.map_err(|e| Error::InvalidRequest(e.body_text()))?;
    let bucket = BucketName::parse(&bucket).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let key = ObjectKey::parse(&key).map_err(|e| Error::InvalidObjectName(e.to_string()))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let names = headers.keys().map(axum::http::HeaderName::as_str);
    let signed = local
        .verify(method, &bucket, &key, query.unwrap_or_default(), header, names, OffsetDateTime::now_utc())
        .map_err(|e| Error::SignatureRejected(e.to_string()))?;
    let signed_value = |wanted: &str| signed.iter().find(|(name, _)| name == wanted).map(|(_, value)| value.as_str());
    let upload_id = signed_value(UPLOAD_ID_PARAM)
        .map(|id| UploadId::parse(id).map_err(|e| Error::InvalidRequest(e.to_string())))
        .transpose()?;
    let (part, upload) = match (upload_id, signed_value(PART_NUMBER_PARAM)) {
        (Some(id), Some(number)) => {
            let number = number.parse().map_err(|_| Error::InvalidRequest("partNumber is not a number".to_owned()))?;
            (Some((id, number)), None)
        }
        (id, _) => (None, id),
    };
    let start = signed_value(UPLOADS_PARAM).is_some();
    let disposition = signed_value(CONTENT_DISPOSITION_PARAM).map(str::to_owned);
    let if_match = signed_value(IF_MATCH_PARAM).map(str::to_owned);
    let response_type = signed_value(CONTENT_TYPE_PARAM).map(str::to_owned);
    Ok(Verified { local, bucket, key, disposition, if_match, response_type, part, upload, start })
}

/// Receives an upload or a part of a multipart upload, streaming it to disk; answers its `ETag`, as S3 does.
pub async fn put(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let Verified { local, bucket, key, part, .. } = verify(&state, Method::Put, path, query.as_deref(), &headers)?;
    // Only a signed upload takes a slot, held until its body is stored or refused.
    let _slot = state.uploads.admit()?;
    if let Some((upload_id, number)) = part {
        let sha256 = header_value(&headers, CHECKSUM_HEADER, |v| Checksum::parse(v).ok())?;
        let length = header_value(&headers, header::CONTENT_LENGTH.as_str(), |v| v.parse().ok())?;
        let limit = state.service.limits().max_size;
        let part = local
            .write_part(&bucket, &key, &upload_id, number, length, sha256, limit, body.into_data_stream())
            .await
            .map_err(|e| upload_error("store the part", e))?;
        return Ok(with_etag(&part.etag));
    }
    let content_type = content_type(&headers)?;
    // S3 verifies a checksum header whether or not it was signed; so does this store.
    let sha256 = match headers.get(CHECKSUM_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| Checksum::parse(v).ok())
                .ok_or_else(|| Error::InvalidRequest(format!("{CHECKSUM_HEADER} is not a base64 SHA-256")))?,
        ),
    };
    let declared = Declared {
        length: header_value(&headers, DECLARED_LENGTH_HEADER, |v| v.parse().ok())?,
        sha256: header_value(&headers, DECLARED_SHA256_HEADER, |v| Checksum::parse(v).ok())?,
    };
    let max_size = state.service.limits().max_size.min(MAX_SINGLE_UPLOAD);
    let checks = WriteChecks { max_size: Some(max_size), sha256, declared, ..WriteChecks::default() };
    let meta = local
        .write_object(&bucket, &key, content_type, &checks, body.into_data_stream())
        .await
        .map_err(|e| upload_error("store the upload", e))?;
    Ok(with_etag(&format!("\"{}\"", meta.etag.unwrap_or_default())))
}

/// An upload that failed: a client that stopped sending is told so (408), not logged as the server's failure.
fn upload_error(operation: &'static str, error: draftstore_storage::Error) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(error) = cause {
        if let Some(stalled) = error.downcast_ref::<BodyStalled>() {
            return Error::BodyStalled(stalled.to_string());
        }
        if let Some(slow) = error.downcast_ref::<BodyTooSlow>() {
            return Error::BodyStalled(slow.to_string());
        }
        cause = error.source();
    }
    Error::from_storage(operation, error)
}

/// The `Content-Type` an upload is stored with: S3's default when none is sent.
fn content_type(headers: &HeaderMap) -> Result<ContentType> {
    match headers.get(header::CONTENT_TYPE) {
        None => Ok(ContentType::octet_stream()),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| ContentType::parse(v).ok())
            .ok_or_else(|| Error::InvalidRequest("the Content-Type header is not a valid media type".to_owned())),
    }
}

/// An empty 200 carrying an `ETag`.
fn with_etag(etag: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// An optional header parsed by `parse`; present but unparsable is a bad request.
fn header_value<T>(headers: &HeaderMap, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(parse)
            .map(Some)
            .ok_or_else(|| Error::InvalidRequest(format!("the {name} header is malformed"))),
    }
}

/// Serves an object.
pub async fn get(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let verified = verify(&state, Method::Get, path, query.as_deref(), &headers)?;
    if let Some(upload_id) = &verified.upload {
        return Ok(s3::list_parts(&verified, upload_id).await);
    }
    let Verified { local, bucket, key, disposition, if_match, response_type, .. } = verified;
    let reader = local.read_object(&bucket, &key).await.map_err(|e| Error::from_storage("read the object", e))?;
    let meta = reader.meta;
    if let Some(etag) = if_match
        && meta.etag.as_deref() != Some(etag.as_str())
    {
        // The URL is for one version, and the object is another now: nothing of it is served, as S3 answers.
        return Ok(
            (StatusCode::PRECONDITION_FAILED, "the object is not the version this URL was signed for").into_response()
        );
    }
    let last_modified = meta.last_modified.format(&Rfc2822).ok().map(|date| date.replace("+0000", "GMT"));
    let range = ranged(&headers, meta.size, meta.etag.as_deref(), last_modified.as_deref());
    let (mut response, length) = match range {
        Ranged::Whole => {
            (Body::from_stream(ReaderStream::with_capacity(reader.body, READ_CHUNK)).into_response(), meta.size)
        }
        Ranged::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(response);
        }
        Ranged::Part { start, end } => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut file = reader.body.into_inner();
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| Error::from_storage("read the object", draftstore_storage::Error::other("seek", e)))?;
            let body = Body::from_stream(ReaderStream::with_capacity(file.take(end + 1 - start), READ_CHUNK));
            let mut response = (StatusCode::PARTIAL_CONTENT, body).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", meta.size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            (response, end + 1 - start)
        }
    };
    let response_headers = response.headers_mut();
    let content_type = HeaderValue::from_str(response_type.as_deref().unwrap_or(meta.content_type.as_str()))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::CONTENT_TYPE, content_type);
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(etag) = meta.etag.as_deref().and_then(|etag| HeaderValue::from_str(etag).ok()) {
        response_headers.insert(header::ETAG, etag);
    }
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Objects are served from DraftStore's own origin: nothing in them may script it.
    response_headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    if let Some(value) = disposition.and_then(|value| HeaderValue::from_str(&value).ok()) {
        response_headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(value) = last_modified.and_then(|date| HeaderValue::from_str(&date).ok()) {
        response_headers.insert(header::LAST_MODIFIED, value);
    }
    Ok(response)
}

/// What a GET asks for of an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No range, one the server may ignore (several ranges, a malformed one), or an `If-Range` that no longer
    /// holds: the whole object, 200.
    Whole,
    /// Bytes `start` to `end`, both included: 206.
    Part { start: u64, end: u64 },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Reads `Range` (one `bytes=` range: `a-b`, `a-` or `-n`) and `If-Range` (the object's ETag or its Last-Modified),
/// as S3 answers them.
fn ranged(headers: &HeaderMap, size: u64, etag: Option<&str>, last_modified: Option<&str>) -> Ranged {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ranged::Whole };
    if let Some(condition) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && Some(condition) != etag
        && Some(condition) != last_modified
    {
        return Ranged::Whole;
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else { return Ranged::Whole };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ranged::Whole };
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| text.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // The last n bytes.
        (true, false) => match number(last) {
            Some(0) => Ranged::Unsatisfiable,
            Some(n) if size > 0 => Ranged::Part { start: size.saturating_sub(n), end: size - 1 },
            Some(_) => Ranged::Unsatisfiable,
            None => Ranged::Whole,
        },
        (false, _) => match (number(first), if last.is_empty() { Some(u64::MAX) } else { number(last) }) {
            (Some(start), Some(end)) if start <= end => {
                if start >= size {
                    Ranged::Unsatisfiable
                } else {
                    Ranged::Part { start, end: end.min(size - 1) }
                }
            }
            _ => Ranged::Whole,
        },
        (true, true) => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(range: &str, if_range: Option<&str>) -> Ranged {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(range).expect("ascii"));
        if let Some(condition) = if_range {
            headers.insert(header::IF_RANGE, HeaderValue::from_str(condition).expect("ascii"));
        }
        ranged(&headers, 100, Some("\"v1\""), Some("Thu, 03 Dec 2026 10:00:00 GMT"))
    }

    #[test]
    fn ranges_are_read_as_s3_reads_them() {
        assert_eq!(ask("bytes=0-9", None), Ranged::Part { start: 0, end: 9 });
        assert_eq!(ask("bytes=90-", None), Ranged::Part { start: 90, end: 99 });
        assert_eq!(ask("bytes=95-200", None), Ranged::Part { start: 95, end: 99 }, "clipped to the end");
        assert_eq!(ask("bytes=-10", None), Ranged::Part { start: 90, end: 99 });
        assert_eq!(ask("bytes=-500", None), Ranged::Part { start: 0, end: 99 });
        assert_eq!(ask("bytes=100-", None), Ranged::Unsatisfiable);
        assert_eq!(ask("bytes=-0", None), Ranged::Unsatisfiable);
        for ignored in ["bytes=0-1,5-6", "bytes=9-0", "items=0-1", "bytes=x-y", "bytes=-"] {
            assert_eq!(ask(ignored, None), Ranged::Whole, "{ignored}");
        }
        assert_eq!(ask("bytes=0-9", Some("\"v1\"")), Ranged::Part { start: 0, end: 9 });
        assert_eq!(ask("bytes=0-9", Some("Thu, 03 Dec 2026 10:00:00 GMT")), Ranged::Part { start: 0, end: 9 });
        assert_eq!(ask("bytes=0-9", Some("\"v0\"")), Ranged::Whole, "the object changed: all of it");
    }
}

/// Starts a multipart upload, as S3's `POST ?uploads` does, answering S3's XML. (Completions go to DraftStore's
/// API, which checks them first.)
pub async fn post(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let verified = match verify(&state, Method::Post, path, query.as_deref(), &headers) {
        Ok(verified) => verified,
        Err(error) => return s3::error(error),
    };
    if !verified.start {
        return s3::error(Error::InvalidRequest("a POST is signed to start an upload".to_owned()));
    }
    s3::start(&verified, &headers).await
}

/// Aborts a multipart upload, as S3's `DELETE ?uploadId=` does.
pub async fn delete(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let verified = match verify(&state, Method::Delete, path, query.as_deref(), &headers) {
        Ok(verified) => verified,
        Err(error) => return s3::error(error),
    };
    let Some(upload_id) = &verified.upload else {
        return s3::error(Error::InvalidRequest("a DELETE is signed to abort an upload".to_owned()));
    };
    match MultipartStore::abort_multipart(verified.local, &verified.bucket, &verified.key, upload_id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => s3::error(Error::from_storage("abort the multipart upload", e)),
    }
}

/// The multipart requests of S3's REST API that browser uploaders send, answered by the local backend with S3's
/// XML bodies and errors.
mod s3 {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::Response;
    use draftstore_storage::{Declared, MultipartStore, UploadId};
    use time::format_description::well_known::Rfc3339;

    use super::Verified;
    use crate::error::Error;
    use crate::http::s3xml::{self, Initiated, Listed, ListedPart, xml};

    pub(super) fn error(error: Error) -> Response {
        s3xml::error(error)
    }

    pub(super) async fn start(verified: &Verified<'_>, headers: &HeaderMap) -> Response {
        let content_type = match super::content_type(headers) {
            Ok(content_type) => content_type,
            Err(e) => return error(e),
        };
        let declared = Declared::default();
        let created = verified.local.create_multipart(&verified.bucket, &verified.key, &content_type, &declared, None);
        match created.await {
            Ok(upload_id) => xml(
                StatusCode::OK,
                &Initiated {
                    bucket: verified.bucket.to_string(),
                    key: verified.key.to_string(),
                    upload_id: upload_id.to_string(),
                },
            ),
            Err(e) => error(Error::from_storage("start a multipart upload", e)),
        }
    }

    pub(super) async fn list_parts(verified: &Verified<'_>, upload_id: &UploadId) -> Response {
        match verified.local.list_parts(&verified.bucket, &verified.key, upload_id).await {
            Ok(parts) => xml(
                StatusCode::OK,
                &Listed {
                    bucket: verified.bucket.to_string(),
                    key: verified.key.to_string(),
                    upload_id: upload_id.to_string(),
                    truncated: false,
                    parts: parts
                        .into_iter()
                        .map(|part| ListedPart {
                            number: part.number,
                            last_modified: part.last_modified.format(&Rfc3339).unwrap_or_default(),
                            etag: part.etag,
                            size: part.size,
                        })
                        .collect(),
                },
            ),
            Err(e) => error(Error::from_storage("list the parts", e)),
        }
    }
}

//! Signing for Uppy's `@uppy/aws-s3` uploader in its `signRequest` mode: `POST /api/v1/uppy/sign` takes exactly
//! the request object Uppy passes and answers exactly the presigned response it expects, so that a page's whole
//! integration is a `fetch` to this route. Uppy then sends the S3 request itself, to the store (or, on the local
//! backend, to DraftStore's signed URLs, which answer S3's multipart requests).
//!
//! One request is the exception: a multipart completion is signed to `POST /api/v1/uppy/complete` on DraftStore
//! itself, with the caller's own credential as its header. DraftStore completes the upload in the store (the
//! parts' metadata only; no byte passes through it), checks the size against MAX_UPLOAD_SIZE on every backend,
//! and answers S3's `CompleteMultipartUploadResult` naming the object by its name, so that Uppy reports the name
//! the application confirms, never the tenant's key.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use draftstore_api::integer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::error::{ApiJson, ErrorBody};
use super::{AppState, s3xml};
use crate::auth::Caller;
use crate::domain::{ObjectName, UploadId, parse_content_type, parse_object_name, parse_part_number, parse_upload_id};
use crate::error::{Error, Result};
use crate::service::S3Request;

/// Longest URL life a request may ask for (7 days, as SigV4); UPLOAD_TTL caps it further.
pub const MAX_EXPIRES_IN: u64 = draftstore_storage::MAX_URL_TTL;

/// One S3 request Uppy wants to send, as Uppy describes it. Its OpenAPI schema, one shape per request signed, is
/// written out in [`super::openapi`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UppySignRequest {
    /// `PUT` (an object, or a part with `uploadId` and `partNumber`), `POST` (start, or complete with
    /// `uploadId`), `GET` (list parts, with `uploadId`) or `DELETE` (abort, with `uploadId`).
    pub method: String,
    /// The object name; the tenant prefix is DraftStore's business.
    pub key: String,
    /// Media type of the object (`PUT` of an object, `POST` to start).
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub upload_id: Option<String>,
    #[serde(default, deserialize_with = "integer::optional")]
    pub part_number: Option<u64>,
    /// Seconds the URL should live; at most UPLOAD_TTL.
    #[serde(default, deserialize_with = "integer::optional")]
    pub expires_in: Option<u64>,
}

/// The presigned request, as Uppy expects it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UppySignResponse {
    pub url: String,
    /// Headers to send exactly as given (the signed `Content-Type`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// What a signing request asks for.
enum Signing {
    /// One of the S3 requests Uppy sends to the store.
    S3(S3Request),
    /// The completion, which Uppy sends to DraftStore.
    Complete(UploadId),
}

/// Every field checked, then which request the combination describes; any other combination is a 400.
fn parse(request: &UppySignRequest) -> Result<(ObjectName, Signing, Option<Duration>)> {
    let name = parse_object_name(&request.key)?;
    let content_type = parse_content_type(request.content_type.as_deref())?;
    let upload_id = request.upload_id.as_deref().map(parse_upload_id).transpose()?;
    let part = request.part_number.map(parse_part_number).transpose()?;
    let expires_in = match request.expires_in {
        Some(seconds @ 1..=MAX_EXPIRES_IN) => Some(Duration::from_secs(seconds)),
        Some(seconds) => {
            return Err(Error::InvalidRequest(format!("expiresIn {seconds} is out of range (1 to {MAX_EXPIRES_IN})")));
        }
        None => None,
    };
    let signing = match (request.method.as_str(), upload_id, part) {
        ("PUT", None, None) => Signing::S3(S3Request::PutObject { content_type }),
        ("POST", None, None) => Signing::S3(S3Request::CreateMultipart { content_type }),
        ("PUT", Some(upload_id), Some(number)) => Signing::S3(S3Request::UploadPart { upload_id, number }),
        ("GET", Some(upload_id), None) => Signing::S3(S3Request::ListParts { upload_id }),
        ("DELETE", Some(upload_id), None) => Signing::S3(S3Request::Abort { upload_id }),
        ("POST", Some(upload_id), None) => Signing::Complete(upload_id),
        (method, upload_id, part) => {
            return Err(Error::InvalidRequest(format!(
                "DraftStore signs uploads only: {method} {} {} is not one of PutObject, CreateMultipartUpload, \
                 UploadPart, ListParts, CompleteMultipartUpload, AbortMultipartUpload",
                if upload_id.is_some() { "with uploadId" } else { "without uploadId" },
                if part.is_some() { "with partNumber" } else { "without partNumber" },
            )));
        }
    };
    Ok((name, signing, expires_in))
}

/// Sign one S3 request for Uppy's `signRequest`.
#[utoipa::path(post, path = "/api/v1/uppy/sign", request_body = UppySignRequest, responses(
    (status = 200, body = UppySignResponse),
    (status = 400, description = "INVALID_OBJECT_NAME, or INVALID_REQUEST: not an upload request", body = ErrorBody),
    (status = 404, description = "UPLOAD_NOT_FOUND: the upload id is not the caller's for this key", body = ErrorBody),
    (status = 409, description = "INVALID_PARTS: a part past the upload's last", body = ErrorBody),
    (status = 415, description = "UNSUPPORTED_CONTENT_TYPE: outside ALLOWED_CONTENT_TYPES", body = ErrorBody),
))]
pub async fn sign(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<UppySignRequest>,
) -> Result<Json<UppySignResponse>> {
    let (name, signing, expires_in) = parse(&request)?;
    let s3 = match signing {
        Signing::S3(s3) => s3,
        Signing::Complete(upload_id) => {
            state.service.check_upload(&caller, &name, &upload_id).await?;
            let mut url = state
                .public_url
                .join("/api/v1/uppy/complete")
                .map_err(|e| Error::InvalidRequest(format!("PUBLIC_URL cannot address the completion route: {e}")))?;
            url.query_pairs_mut().append_pair("key", name.as_str()).append_pair("uploadId", upload_id.as_str());
            let mut answer = BTreeMap::new();
            if let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
                answer.insert("Authorization".to_owned(), authorization.to_owned());
            }
            return Ok(Json(UppySignResponse { url: url.into(), headers: answer }));
        }
    };
    let url = state.service.sign_s3_request(&caller, &name, s3, expires_in, OffsetDateTime::now_utc()).await?;
    Ok(Json(UppySignResponse { url: url.url, headers: url.headers.into_iter().collect() }))
}

/// Where a completion was signed to.
#[derive(Debug, Deserialize)]
pub struct CompleteQuery {
    key: String,
    #[serde(rename = "uploadId")]
    upload_id: String,
}

/// Completes one of the caller's multipart uploads as Uppy sends it: S3's `CompleteMultipartUpload` XML in, S3's
/// `CompleteMultipartUploadResult` out, with the object's name as its key; errors as S3's XML.
pub async fn complete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<CompleteQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    let result = async {
        let Query(query) = query.map_err(|e| Error::InvalidRequest(e.body_text()))?;
        let name = parse_object_name(&query.key)?;
        let upload_id = parse_upload_id(&query.upload_id)?;
        let parts = s3xml::parse_completion(&body)?;
        state.service.complete_multipart(&caller, &name, &upload_id, &parts).await?;
        Ok::<_, Error>(name)
    };
    match result.await {
        Ok(name) => s3xml::xml(
            StatusCode::OK,
            &s3xml::Completed {
                location: name.to_string(),
                bucket: state.service.buckets().draft.to_string(),
                key: name.to_string(),
                etag: String::new(),
            },
        ),
        Err(error) => s3xml::error(error),
    }
}

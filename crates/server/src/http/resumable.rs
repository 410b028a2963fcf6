//! Resumable uploads over HTTP at `/files/`: tus 1.0.0 (core, creation, creation-with-upload,
//! creation-defer-length, expiration, checksum, termination) and the IETF draft "Resumable Uploads for HTTP" at
//! interop versions 6, 8 and 9, chosen per request by `Tus-Resumable` or `Upload-Draft-Interop-Version`. This
//! module only reads and writes the protocols' headers: what an append does is the draft service's
//! (`service::resumable`), the same for both.

use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use draftstore_api::ErrorBody;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use time::OffsetDateTime;

use super::AppState;
use crate::auth::Caller;
use crate::connections::{BodyStalled, BodyTooSlow};
use crate::domain::{ContentType, ErrorType, parse_object_name};
use crate::error::Error;
use crate::service::{Append, BodyChecksum, Dialect, NewUpload, UploadError, UploadState};

/// The tus version served.
const TUS_VERSION: &str = "1.0.0";
/// The tus extensions served.
const TUS_EXTENSIONS: &str = "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination";
/// The IETF draft's interop versions served.
const INTEROP_VERSIONS: [u8; 3] = [6, 8, 9];
/// The media type of a tus append.
const TUS_APPEND: &str = "application/offset+octet-stream";
/// The media type of an IETF draft append.
const IETF_APPEND: &str = "application/partial-upload";
/// The problem types of the IETF draft.
const MISMATCHING_OFFSET: &str = "https://iana.org/assignments/http-problem-types#mismatching-upload-offset";
const INCONSISTENT_LENGTH: &str = "https://iana.org/assignments/http-problem-types#inconsistent-upload-length";
const COMPLETED_UPLOAD: &str = "https://iana.org/assignments/http-problem-types#completed-upload";
/// The header that names the draft an upload becomes.
pub const OBJECT_NAME_HEADER: &str = "draftstore-object-name";

/// Every header a browser client must be able to read from a resumable response.
pub const EXPOSED_HEADERS: [&str; 14] = [
    "location",
    "upload-offset",
    "upload-length",
    "upload-defer-length",
    "upload-metadata",
    "upload-expires",
    "upload-complete",
    "upload-limit",
    "upload-draft-interop-version",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    OBJECT_NAME_HEADER,
];

/// What a name is escaped of in [`OBJECT_NAME_HEADER`]: anything not printable ASCII, and `%`.
const NAME_ESCAPE: &AsciiSet = &CONTROLS.add(b'%').add(b'"');

/// Which protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Tus,
    Ietf(u8),
    /// Neither header: only OPTIONS and HEAD are answered.
    Unstated,
}

/// A protocol version this server does not speak.
#[derive(Debug, Clone, Copy)]
enum Unserved {
    Tus,
    Ietf,
}

impl IntoResponse for Unserved {
    fn into_response(self) -> Response {
        match self {
            Self::Tus => {
                let mut response = plain(StatusCode::PRECONDITION_FAILED, "this server speaks tus 1.0.0 only");
                set(&mut response, "tus-version", TUS_VERSION);
                response
            }
            Self::Ietf => plain(
                StatusCode::BAD_REQUEST,
                "Upload-Draft-Interop-Version must be 6, 8 or 9, the versions this server speaks",
            ),
        }
    }
}

impl Protocol {
    fn of(headers: &HeaderMap) -> Result<Self, Unserved> {
        if let Some(version) = headers.get("tus-resumable") {
            return match version.as_bytes() == TUS_VERSION.as_bytes() {
                true => Ok(Self::Tus),
                false => Err(Unserved::Tus),
            };
        }
        if let Some(version) = headers.get("upload-draft-interop-version") {
            let served = version.to_str().ok().and_then(|v| v.trim().parse::<u8>().ok());
            return served.filter(|v| INTEROP_VERSIONS.contains(v)).map(Self::Ietf).ok_or(Unserved::Ietf);
        }
        Ok(Self::Unstated)
    }

    fn dialect(self) -> Dialect {
        match self {
            Self::Ietf(_) => Dialect::Ietf,
            _ => Dialect::Tus,
        }
    }
}

/// `OPTIONS /files/` and `/files/{id}`: what the server offers.
pub async fn options(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let protocol = match Protocol::of(&headers) {
        Ok(protocol) => protocol,
        Err(refused) => return refused.into_response(),
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let max = state.service.resumable_max_size();
    if matches!(protocol, Protocol::Tus | Protocol::Unstated) {
        set(&mut response, "tus-resumable", TUS_VERSION);
        set(&mut response, "tus-version", TUS_VERSION);
        set(&mut response, "tus-extension", TUS_EXTENSIONS);
        set(&mut response, "tus-max-size", &max.to_string());
        set(&mut response, "tus-checksum-algorithm", "sha1,sha256");
    }
    if matches!(protocol, Protocol::Ietf(_) | Protocol::Unstated) {
        let version = match protocol {
            Protocol::Ietf(version) => version,
            _ => 9,
        };
        let lifetime = state.service.object_lifetime().as_secs();
        set(&mut response, "upload-limit", &limits(version, max, lifetime));
        set(&mut response, "accept-patch", IETF_APPEND);
        if let Protocol::Ietf(version) = protocol {
            set(&mut response, "upload-draft-interop-version", &version.to_string());
        }
    }
    response
}

/// `POST /files/`: creates an upload, with the first bytes when the request carries them.
pub async fn create(State(state): State<AppState>, Extension(caller): Extension<Caller>, request: Request) -> Response {
    let protocol = match Protocol::of(request.headers()) {
        Ok(Protocol::Unstated) => return unstated(),
        Ok(protocol) => protocol,
        Err(refused) => return refused.into_response(),
    };
    let created = create_upload(&state, &caller, protocol, request).await;
    answer(&state, protocol, StatusCode::CREATED, created)
}

async fn create_upload(
    state: &AppState,
    caller: &Caller,
    protocol: Protocol,
    request: Request,
) -> Result<UploadState, UploadError> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let metadata = headers.get("upload-metadata").map(|v| v.to_str().map(str::to_owned));
    let metadata = match metadata {
        Some(Ok(raw)) => Some((parse_metadata(&raw)?, raw)),
        Some(Err(_)) => return Err(invalid("Upload-Metadata must be ASCII")),
        None => None,
    };
    let field = |key: &str| {
        metadata.as_ref().and_then(|(pairs, _)| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    };
    let body_type = media_type(headers);
    let append_type = match protocol {
        Protocol::Ietf(_) => IETF_APPEND,
        _ => TUS_APPEND,
    };
    let (length, complete) = match protocol {
        Protocol::Ietf(_) => {
            let complete = structured_boolean(headers, "upload-complete")
                .ok_or_else(|| invalid("a resumable creation needs Upload-Complete: ?0 or ?1"))?;
            (structured_integer(headers, "upload-length"), complete)
        }
        _ => {
            let length = tus_integer(headers, "upload-length")?;
            match (length, headers.get("upload-defer-length")) {
                (Some(_), Some(_)) => return Err(invalid("give Upload-Length or Upload-Defer-Length, not both")),
                (None, Some(defer)) if defer.as_bytes() != b"1" => {
                    return Err(invalid("Upload-Defer-Length must be 1"));
                }
                (None, None) => return Err(invalid("a creation needs Upload-Length or Upload-Defer-Length: 1")),
                _ => {}
            }
            (length, false)
        }
    };
    let name = match (field("object_name"), headers.get(OBJECT_NAME_HEADER)) {
        (Some(name), _) => Some(parse_object_name(&name)?),
        (None, Some(name)) => {
            let name = name.to_str().map_err(|_| invalid("DraftStore-Object-Name must be percent-encoded ASCII"))?;
            let name = percent_decode_str(name)
                .decode_utf8()
                .map_err(|_| invalid("DraftStore-Object-Name must be percent-encoded UTF-8"))?;
            Some(parse_object_name(&name)?)
        }
        (None, None) => None,
    };
    let file_name = field("filename").or_else(|| field("name")).or_else(|| disposition_file_name(headers));
    let declared_type = field("filetype").or_else(|| field("content_type")).or_else(|| field("type"));
    let declared_type = declared_type.or_else(|| match protocol {
        // The IETF draft's creation request carries the representation: its type is the file's.
        Protocol::Ietf(_) => body_type.clone().filter(|t| t != IETF_APPEND && t != TUS_APPEND),
        _ => None,
    });
    let content_type = match declared_type.filter(|t| !t.is_empty()) {
        Some(declared) => ContentType::parse(&declared)
            .map_err(|e| Error::InvalidRequest(format!("the declared content type '{declared}' is invalid: {e}")))?,
        None => ContentType::octet_stream(),
    };
    let content_length = content_length(headers)?;
    // An IETF creation that completes the upload says its length by its body's.
    let length = match (length, protocol, complete) {
        (None, Protocol::Ietf(_), true) => content_length,
        (length, ..) => length,
    };
    let has_body = content_length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    if has_body && protocol == Protocol::Tus && body_type.as_deref() != Some(TUS_APPEND) {
        return Err(UploadError::Service(Error::UnsupportedContentType(format!(
            "the body of a creation-with-upload must be {append_type}"
        ))));
    }
    let new = NewUpload {
        name,
        file_name,
        content_type,
        length,
        metadata: metadata.map(|(_, raw)| raw),
        dialect: protocol.dialect(),
    };
    let now = OffsetDateTime::now_utc();
    let first = (has_body || complete).then(|| {
        let append = Append { offset: 0, complete, content_length, ..Append::default() };
        (append, body_stream(body))
    });
    let _slot = match &first {
        Some(_) => Some(state.uploads.admit()?),
        None => None,
    };
    let service = state.service.clone();
    let caller = caller.clone();
    to_the_end(async move { service.create_resumable(&caller, new, first, now).await }).await
}

/// `HEAD /files/{id}` (and `GET` for the IETF draft): where the upload stands.
pub async fn head(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let protocol = match Protocol::of(&headers) {
        Ok(Protocol::Unstated) => Protocol::Tus,
        Ok(protocol) => protocol,
        Err(refused) => return refused.into_response(),
    };
    let (service, now) = (state.service.clone(), OffsetDateTime::now_utc());
    match to_the_end(async move { service.resumable_state(&caller, &id, now).await }).await {
        Ok(upload) => {
            let status = match protocol {
                Protocol::Ietf(_) => StatusCode::NO_CONTENT,
                _ => StatusCode::OK,
            };
            let mut response = status.into_response();
            describe(&state, &mut response, protocol, &upload);
            set(&mut response, "cache-control", "no-store");
            if protocol == Protocol::Tus {
                match upload.length {
                    Some(length) => set(&mut response, "upload-length", &length.to_string()),
                    None => set(&mut response, "upload-defer-length", "1"),
                }
                if let Some(metadata) = &upload.metadata {
                    set(&mut response, "upload-metadata", metadata);
                }
            }
            response
        }
        Err(refused) => {
            let mut response = refusal(&state, protocol, refused);
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}

/// `PATCH /files/{id}`: appends the body at `Upload-Offset`.
pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let protocol = match Protocol::of(request.headers()) {
        Ok(Protocol::Unstated) => return unstated(),
        Ok(protocol) => protocol,
        Err(refused) => return refused.into_response(),
    };
    let appended = append(&state, &caller, protocol, &id, request).await;
    answer(&state, protocol, StatusCode::NO_CONTENT, appended)
}

/// The answer to a creation (201, with the upload's `Location`) or an append, or its refusal.
fn answer(
    state: &AppState,
    protocol: Protocol,
    status: StatusCode,
    outcome: Result<UploadState, UploadError>,
) -> Response {
    match outcome {
        Ok(upload) => {
            let mut response = status.into_response();
            if status == StatusCode::CREATED {
                set(&mut response, "location", &location(state, &upload.id));
            }
            describe(state, &mut response, protocol, &upload);
            response
        }
        Err(refused) => refusal(state, protocol, refused),
    }
}

async fn append(
    state: &AppState,
    caller: &Caller,
    protocol: Protocol,
    id: &str,
    request: Request,
) -> Result<UploadState, UploadError> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let wanted = match protocol {
        Protocol::Ietf(_) => IETF_APPEND,
        _ => TUS_APPEND,
    };
    if media_type(headers).as_deref() != Some(wanted) {
        return Err(UploadError::Service(Error::UnsupportedContentType(format!(
            "an append must be sent with Content-Type: {wanted}"
        ))));
    }
    let (offset, length, complete) = match protocol {
        Protocol::Ietf(_) => {
            let offset = structured_integer(headers, "upload-offset");
            let complete = structured_boolean(headers, "upload-complete")
                .ok_or_else(|| invalid("an append needs Upload-Complete: ?0 or ?1"))?;
            (offset, structured_integer(headers, "upload-length"), complete)
        }
        _ => (tus_integer(headers, "upload-offset")?, tus_integer(headers, "upload-length")?, false),
    };
    let offset = offset.ok_or_else(|| invalid("an append needs Upload-Offset"))?;
    let checksum = match headers.get("upload-checksum") {
        Some(value) if protocol == Protocol::Tus => Some(parse_checksum(value)?),
        _ => None,
    };
    let content_length = content_length(headers)?;
    let append = Append {
        offset,
        length,
        complete,
        content_length,
        checksum,
        replay_completed: !matches!(protocol, Protocol::Ietf(6 | 8)),
        overflow_ends_upload: matches!(protocol, Protocol::Ietf(_)),
    };
    let _slot = state.uploads.admit()?;
    let (service, caller, id) = (state.service.clone(), caller.clone(), id.to_owned());
    let body = body_stream(body);
    let now = OffsetDateTime::now_utc();
    to_the_end(async move { service.append_resumable(&caller, &id, append, body, now).await }).await
}

/// `DELETE /files/{id}`: ends the upload and removes what it stored.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let protocol = match Protocol::of(&headers) {
        Ok(Protocol::Unstated) => return unstated(),
        Ok(protocol) => protocol,
        Err(refused) => return refused.into_response(),
    };
    let (service, now) = (state.service.clone(), OffsetDateTime::now_utc());
    match to_the_end(async move { service.terminate_resumable(&caller, &id, now).await }).await {
        Ok(()) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            protocol_headers(&mut response, protocol);
            response
        }
        Err(refused) => refusal(&state, protocol, refused),
    }
}

/// `POST /files/{id}` with `X-HTTP-Method-Override`, for clients behind proxies that drop PATCH and DELETE.
pub async fn overridden(
    state: State<AppState>,
    caller: Extension<Caller>,
    id: Path<String>,
    request: Request,
) -> Response {
    let method = request.headers().get("x-http-method-override").map(|m| m.as_bytes().to_ascii_uppercase());
    match method.as_deref() {
        Some(b"PATCH") => patch(state, caller, id, request).await,
        Some(b"DELETE") => delete(state, caller, id, request.headers().clone()).await,
        Some(b"HEAD") => head(state, caller, id, request.headers().clone()).await,
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "POST an upload only with X-HTTP-Method-Override: PATCH or DELETE"),
    }
}

/// A request's body as the draft service reads it: a client that stopped sending, or sent too slowly, is told so
/// (408), any other break is the client's.
fn body_stream(body: axum::body::Body) -> impl futures_util::Stream<Item = Result<bytes::Bytes, Error>> + Unpin {
    use futures_util::TryStreamExt;
    body.into_data_stream().map_err(|error| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(inner) = cause {
            if inner.is::<BodyStalled>() || inner.is::<BodyTooSlow>() {
                return Error::BodyStalled(inner.to_string());
            }
            cause = inner.source();
        }
        Error::InvalidRequest(format!("the request's body broke off: {error}"))
    })
}

/// Runs a call on an upload in a task of its own, so that it ends (stores what it received, lets go of the lease)
/// whatever its client does. A task that ends without an answer (it panicked) is the server's failure, its lease
/// left to expire.
async fn to_the_end<T: Send + 'static>(
    call: impl std::future::Future<Output = Result<T, UploadError>> + Send + 'static,
) -> Result<T, UploadError> {
    tokio::spawn(call).await.unwrap_or_else(|error| {
        Err(UploadError::Service(Error::Internal {
            operation: "run a resumable upload's request",
            source: draftstore_storage::Error::other("the request's task stopped", error),
        }))
    })
}

/// The headers every answer about an upload carries, in the request's protocol.
fn describe(state: &AppState, response: &mut Response, protocol: Protocol, upload: &UploadState) {
    protocol_headers(response, protocol);
    set(response, "upload-offset", &upload.offset.to_string());
    let name = utf8_percent_encode(upload.name.as_str(), NAME_ESCAPE).to_string();
    set(response, OBJECT_NAME_HEADER, &name);
    match protocol {
        Protocol::Ietf(version) => {
            set(response, "upload-complete", if upload.complete { "?1" } else { "?0" });
            if let Some(length) = upload.length {
                set(response, "upload-length", &length.to_string());
            }
            let left = (upload.expires_at - OffsetDateTime::now_utc()).whole_seconds().max(0);
            let left = u64::try_from(left).unwrap_or_default();
            set(response, "upload-limit", &limits(version, state.service.resumable_max_size(), left));
        }
        _ => {
            if !upload.complete {
                set(response, "upload-expires", &http_date(upload.expires_at));
            }
        }
    }
}

fn protocol_headers(response: &mut Response, protocol: Protocol) {
    match protocol {
        Protocol::Ietf(version) => set(response, "upload-draft-interop-version", &version.to_string()),
        _ => set(response, "tus-resumable", TUS_VERSION),
    }
}

/// The `Upload-Limit` of the IETF draft; interop 6 names the lifetime `expires`, later ones `max-age`.
fn limits(version: u8, max: u64, lifetime: u64) -> String {
    let mut limits = format!("max-size={max}, min-size=0, max-age={lifetime}");
    if version == 6 {
        limits.push_str(&format!(", expires={lifetime}"));
    }
    limits
}

/// A refusal in the request's protocol: the IETF draft's problem types where it has them, tus's status codes.
fn refusal(state: &AppState, protocol: Protocol, refused: UploadError) -> Response {
    let ietf = matches!(protocol, Protocol::Ietf(_));
    let mut response = match refused {
        UploadError::Service(e) => e.into_response(),
        UploadError::NotFound => {
            Error::UploadNotFound("no such upload: it was never created, was cancelled, or is not yours".to_owned())
                .into_response()
        }
        UploadError::Expired(_) => json(StatusCode::GONE, ErrorType::UploadNotFound, &refused.to_string()),
        UploadError::OffsetMismatch { expected, provided } if ietf => {
            let problem = serde_json::json!({
                "type": MISMATCHING_OFFSET,
                "title": "offset from request does not match offset of resource",
                "expected-offset": expected,
                "provided-offset": provided,
            });
            let mut response = problem_response(StatusCode::CONFLICT, problem);
            set(&mut response, "upload-offset", &expected.to_string());
            set(&mut response, "upload-complete", "?0");
            response
        }
        UploadError::OffsetMismatch { expected, .. } => {
            let mut response = json(StatusCode::CONFLICT, ErrorType::InvalidRequest, &refused.to_string());
            set(&mut response, "upload-offset", &expected.to_string());
            response
        }
        // tus clients retry 423; the IETF draft's clients retry a 5xx.
        UploadError::Locked => {
            let status = if ietf { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::LOCKED };
            let mut response = json(status, ErrorType::ServerBusy, &refused.to_string());
            set(&mut response, "retry-after", "1");
            response
        }
        UploadError::Inconsistent(message) | UploadError::PastLength(message) if ietf => problem_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"type": INCONSISTENT_LENGTH, "title": "inconsistent upload length", "detail": message}),
        ),
        UploadError::Completed if protocol == Protocol::Ietf(6) => problem_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"type": COMPLETED_UPLOAD, "title": "upload is already completed"}),
        ),
        UploadError::Completed if ietf => problem_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"type": INCONSISTENT_LENGTH, "title": "the upload is already complete"}),
        ),
        UploadError::Inconsistent(_) | UploadError::Completed => {
            json(StatusCode::BAD_REQUEST, ErrorType::InvalidRequest, &refused.to_string())
        }
        UploadError::PastLength(message) => Error::UploadTooLarge(message).into_response(),
        UploadError::TooLarge(message) => {
            let mut response = Error::UploadTooLarge(message).into_response();
            if let Protocol::Ietf(version) = protocol {
                let lifetime = state.service.object_lifetime().as_secs();
                set(&mut response, "upload-limit", &limits(version, state.service.resumable_max_size(), lifetime));
            }
            response
        }
        UploadError::ChecksumMismatch => {
            let mut response =
                json(StatusCode::from_u16(460).expect("a valid code"), ErrorType::InvalidRequest, &refused.to_string());
            response.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(b"Checksum Mismatch"));
            response
        }
        UploadError::Interrupted { kept, cause } => {
            let message = format!("{cause}; {kept} bytes of the request were kept");
            json(cause.status(), cause.error_type(), &message)
        }
        // What a client retries: it then asks where the upload stands and goes on.
        UploadError::Stopped { .. } => {
            let status = if ietf { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::LOCKED };
            let mut response = json(status, ErrorType::ServerBusy, &refused.to_string());
            set(&mut response, "retry-after", "1");
            response
        }
    };
    protocol_headers(&mut response, protocol);
    response
}

fn problem_response(status: StatusCode, problem: serde_json::Value) -> Response {
    let mut response = (status, problem.to_string()).into_response();
    set(&mut response, "content-type", "application/problem+json");
    response
}

fn json(status: StatusCode, error_type: ErrorType, message: &str) -> Response {
    let body = ErrorBody { success: false, error_type, error_message: message.to_owned() };
    (status, axum::Json(body)).into_response()
}

fn plain(status: StatusCode, message: &str) -> Response {
    json(status, ErrorType::InvalidRequest, message)
}

fn unstated() -> Response {
    let mut response = plain(
        StatusCode::PRECONDITION_FAILED,
        "send Tus-Resumable: 1.0.0 (tus) or Upload-Draft-Interop-Version: 6, 8 or 9 (the IETF draft)",
    );
    set(&mut response, "tus-version", TUS_VERSION);
    response
}

fn invalid(message: &str) -> UploadError {
    UploadError::Service(Error::InvalidRequest(message.to_owned()))
}

fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(HeaderName::from_static(name), value);
    }
}

/// `<PUBLIC_URL>/files/<id>`.
fn location(state: &AppState, id: &str) -> String {
    format!("{}/files/{id}", state.public_url.as_str().trim_end_matches('/'))
}

/// The request's media type, lowercase, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, UploadError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| invalid("Content-Length must be a number")),
    }
}

/// A tus number: digits only, within 64 bits; anything else is refused.
fn tus_integer(headers: &HeaderMap, name: &str) -> Result<Option<u64>, UploadError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(&format!("{name} must be a non-negative integer")));
    }
    text.parse().map(Some).map_err(|_| invalid(&format!("{name} is too large")))
}

/// A structured-field integer of the IETF draft (at most 15 digits, not negative here). The draft says a field
/// that is not one is ignored.
fn structured_integer(headers: &HeaderMap, name: &str) -> Option<u64> {
    let value = headers.get(name)?;
    let text = value.to_str().unwrap_or_default().trim();
    // A negative integer is a structured integer, but no offset or length: the draft ignores such a field too.
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A structured-field boolean (`?0`, `?1`); anything else is ignored, as the draft says.
fn structured_boolean(headers: &HeaderMap, name: &str) -> Option<bool> {
    match headers.get(name)?.as_bytes() {
        b"?1" => Some(true),
        b"?0" => Some(false),
        _ => None,
    }
}

/// tus `Upload-Metadata`: comma-separated `key base64(value)` pairs, keys unique and without spaces or commas.
fn parse_metadata(raw: &str) -> Result<Vec<(String, String)>, UploadError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = pair.split(' ');
        let key = words.next().unwrap_or_default();
        let value = words.next().unwrap_or_default();
        if key.is_empty() || words.next().is_some() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(&format!("Upload-Metadata has a malformed pair '{pair}'")));
        }
        let decoded = STANDARD
            .decode(value)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| invalid(&format!("Upload-Metadata's value of '{key}' is not base64 of UTF-8 text")))?;
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(invalid(&format!("Upload-Metadata gives '{key}' twice")));
        }
        pairs.push((key.to_owned(), decoded));
    }
    Ok(pairs)
}

/// tus `Upload-Checksum`: `sha1 <base64>` or `sha256 <base64>`.
fn parse_checksum(value: &HeaderValue) -> Result<BodyChecksum, UploadError> {
    let text = value.to_str().unwrap_or_default();
    let (algorithm, digest) =
        text.split_once(' ').ok_or_else(|| invalid("Upload-Checksum must be '<algorithm> <base64>'"))?;
    let digest = STANDARD.decode(digest.trim()).map_err(|_| invalid("Upload-Checksum's digest is not base64"))?;
    match (algorithm, digest.len()) {
        ("sha1", 20) => Ok(BodyChecksum::Sha1(digest)),
        ("sha256", 32) => Ok(BodyChecksum::Sha256(digest)),
        ("sha1" | "sha256", _) => Err(invalid("Upload-Checksum's digest has the wrong length for its algorithm")),
        _ => Err(invalid("Upload-Checksum's algorithm must be sha1 or sha256")),
    }
}

/// The file name of `Content-Disposition` (`filename*=UTF-8''…` first, then `filename=`).
fn disposition_file_name(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let parameters = value.split(';').skip(1).map(str::trim);
    let mut plain_name = None;
    for parameter in parameters {
        let (key, raw) = parameter.split_once('=')?;
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let encoded = raw.trim().strip_prefix("UTF-8''").or_else(|| raw.trim().strip_prefix("utf-8''"))?;
                return percent_decode_str(encoded).decode_utf8().ok().map(|n| n.into_owned());
            }
            "filename" => plain_name = Some(raw.trim().trim_matches('"').to_owned()),
            _ => {}
        }
    }
    plain_name
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as tus's `Upload-Expires` is written.
fn http_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn numbers_are_refused_or_ignored_as_each_protocol_says() {
        let too_big = headers(&[("upload-offset", "18446744073709551616")]);
        assert!(tus_integer(&too_big, "upload-offset").is_err());
        assert!(tus_integer(&headers(&[("upload-offset", "-1")]), "upload-offset").is_err());
        assert_eq!(tus_integer(&headers(&[("upload-offset", "42")]), "upload-offset").ok(), Some(Some(42)));
        // Not a structured integer (16 digits, letters): ignored, as the IETF draft says.
        assert_eq!(structured_integer(&headers(&[("upload-offset", "1234567890123456")]), "upload-offset"), None);
        assert_eq!(structured_integer(&headers(&[("upload-offset", "abc")]), "upload-offset"), None);
        assert_eq!(structured_integer(&headers(&[("upload-offset", "-5")]), "upload-offset"), None);
        assert_eq!(structured_boolean(&headers(&[("upload-complete", "yes")]), "upload-complete"), None);
    }

    #[test]
    fn metadata_is_parsed_strictly() {
        let pairs = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential").ok();
        assert_eq!(
            pairs,
            Some(vec![
                ("filename".into(), "world_domination_plan.pdf".into()),
                ("is_confidential".into(), String::new())
            ])
        );
        for bad in ["a b c", "a !!!", "a YQ==,a YQ==", " x\u{7f} YQ=="] {
            assert!(parse_metadata(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_file_names_read_as_the_protocols_write_them() {
        let at = OffsetDateTime::from_unix_timestamp(784_111_777).expect("a date");
        assert_eq!(http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
        let named = headers(&[("content-disposition", "attachment; filename=\"a.txt\"; filename*=UTF-8''%C3%A9.txt")]);
        assert_eq!(disposition_file_name(&named).as_deref(), Some("é.txt"));
        assert_eq!(
            disposition_file_name(&headers(&[("content-disposition", "inline; filename=\"b.bin\"")])).as_deref(),
            Some("b.bin")
        );
    }
}

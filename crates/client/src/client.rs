//! [`Client`]: one method per REST operation, and the presigned transfers the operations hand out.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::api::{self, ErrorType};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with its error body; `error_type` is `None` for a code this client does not know.
    #[error("{message}")]
    Api { status: u16, error_type: Option<ErrorType>, code: String, message: String },
    /// The server (or a proxy before it) answered something that is not DraftStore's JSON.
    #[error("unexpected answer {status} from {url}: {body}")]
    Unexpected { status: u16, url: String, body: String },
    /// The object store refused a presigned transfer.
    #[error("the store refused the {operation} ({status}): {message}")]
    Store { operation: &'static str, status: u16, message: String },
    /// No answer: connection refused, reset, timed out.
    #[error("could not reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The client was given something it cannot use (a bad base URL, a bad header value).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The server's error code, when the server answered with one this client knows.
    pub fn error_type(&self) -> Option<ErrorType> {
        match self {
            Self::Api { error_type, .. } => *error_type,
            _ => None,
        }
    }

    /// Whether trying again may succeed: no answer, a 5xx, or a 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } | Self::Unexpected { status, .. } | Self::Store { status, .. } => {
                *status >= 500 || *status == 429
            }
            Self::Io { .. } | Self::Invalid(_) => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A DraftStore server at a base URL, called with an optional bearer token (an API key or a JWT).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<HeaderValue>,
}

impl Client {
    /// A client for the server at `base_url` (for example `http://localhost:8080`).
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("draftstore-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot build an HTTP client: {e}")))?;
        Self::with_http(http, base_url, token)
    }

    /// A client that sends its requests through `http`.
    pub fn with_http(http: reqwest::Client, base_url: &str, token: Option<String>) -> Result<Self> {
        let mut base = Url::parse(base_url).map_err(|e| Error::Invalid(format!("bad server URL {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Invalid(format!("bad server URL {base_url:?}: expected http:// or https://")));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let token = token
            .filter(|t| !t.is_empty())
            .map(|t| {
                let mut value = HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| Error::Invalid("the token holds characters a header cannot carry".to_owned()))?;
                value.set_sensitive(true);
                Ok::<_, Error>(value)
            })
            .transpose()?;
        Ok(Self { http, base, token })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Issue a presigned URL to upload a draft.
    pub async fn upload_url(&self, request: &api::UploadUrlRequest) -> Result<api::UploadUrlResponse> {
        self.call("api/v1/upload-url", request).await
    }

    /// Issue a presigned URL to download a draft or a confirmed object.
    pub async fn download_url(&self, request: &api::DownloadUrlRequest) -> Result<api::DownloadUrlResponse> {
        self.call("api/v1/download-url", request).await
    }

    /// Move a draft into the main bucket. Idempotent.
    pub async fn confirm_upload(&self, request: &api::ConfirmUploadRequest) -> Result<api::ConfirmUploadResponse> {
        self.call("api/v1/confirm-upload", request).await
    }

    /// Create the main and draft buckets if missing. Idempotent.
    pub async fn create_buckets(&self) -> Result<api::SuccessResponse> {
        self.call("api/v1/draft-bucket", &api::DraftBucketRequest {}).await
    }

    /// Start a multipart upload of a draft.
    pub async fn start_multipart(&self, request: &api::StartMultipartRequest) -> Result<api::StartMultipartResponse> {
        self.call("api/v1/multipart/start", request).await
    }

    /// Presigned URLs for up to 1000 parts.
    pub async fn sign_parts(&self, request: &api::SignPartsRequest) -> Result<api::SignPartsResponse> {
        self.call("api/v1/multipart/sign-parts", request).await
    }

    /// The parts the store holds for an upload.
    pub async fn list_parts(&self, request: &api::UploadRequest) -> Result<api::ListPartsResponse> {
        self.call("api/v1/multipart/list-parts", request).await
    }

    /// Assemble the parts into the draft.
    pub async fn complete_multipart(
        &self,
        request: &api::CompleteMultipartRequest,
    ) -> Result<api::CompleteMultipartResponse> {
        self.call("api/v1/multipart/complete", request).await
    }

    /// End an upload and remove its parts.
    pub async fn abort_multipart(&self, request: &api::UploadRequest) -> Result<api::SuccessResponse> {
        self.call("api/v1/multipart/abort", request).await
    }

    /// One page of the caller's drafts.
    pub async fn list_drafts(&self, request: &api::ListDraftsRequest) -> Result<api::ListDraftsResponse> {
        self.call("api/v1/list-drafts", request).await
    }

    /// Every draft of the caller under `prefix`, following the pages.
    pub async fn list_all_drafts(&self, prefix: Option<&str>) -> Result<Vec<api::DraftBody>> {
        every_page(|page_token| async move {
            let request =
                api::ListDraftsRequest { prefix: prefix.map(str::to_owned), page_size: Some(1000), page_token };
            let page = self.list_drafts(&request).await?;
            Ok((page.drafts, page.next_page_token))
        })
        .await
    }

    /// Discard one of the caller's drafts.
    pub async fn discard_draft(&self, request: &api::DiscardDraftRequest) -> Result<api::SuccessResponse> {
        self.call("api/v1/discard-draft", request).await
    }

    /// One page of the caller's confirmed objects.
    pub async fn list_objects(&self, request: &api::ListObjectsRequest) -> Result<api::ListObjectsResponse> {
        self.call("api/v1/list-objects", request).await
    }

    /// Every confirmed object of the caller under `prefix`, following the pages.
    pub async fn list_all_objects(&self, prefix: Option<&str>) -> Result<Vec<api::ObjectBody>> {
        every_page(|page_token| async move {
            let request =
                api::ListObjectsRequest { prefix: prefix.map(str::to_owned), page_size: Some(1000), page_token };
            let page = self.list_objects(&request).await?;
            Ok((page.objects, page.next_page_token))
        })
        .await
    }

    /// One confirmed object's size, type, checksum and metadata.
    pub async fn stat_object(&self, request: &api::ObjectRequest) -> Result<api::ObjectBody> {
        self.call("api/v1/stat-object", request).await
    }

    /// Delete one of the caller's confirmed objects.
    pub async fn delete_object(&self, request: &api::ObjectRequest) -> Result<api::SuccessResponse> {
        self.call("api/v1/delete-object", request).await
    }

    /// Confirm drafts all together or not at all.
    pub async fn confirm_set(&self, request: &api::ConfirmSetRequest) -> Result<api::ConfirmSetResponse> {
        self.call("api/v1/confirm-set", request).await
    }

    /// The HTTP client, for presigned transfers.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(&self, route: &str, body: &Req) -> Result<Resp> {
        let url = self.base.join(route).map_err(|e| Error::Invalid(format!("bad route {route}: {e}")))?;
        let mut request = self.http.post(url.clone()).json(body);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, token.clone());
        }
        let transport = |source| Error::Transport { url: url.to_string(), source };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected {
                status: status.as_u16(),
                url: url.to_string(),
                body: format!("{e}: {}", snippet(&bytes)),
            });
        }
        #[derive(serde::Deserialize)]
        struct RawError {
            error_type: String,
            error_message: String,
        }
        match serde_json::from_slice::<RawError>(&bytes) {
            Ok(raw) => Err(Error::Api {
                status: status.as_u16(),
                error_type: raw.error_type.parse().ok(),
                code: raw.error_type,
                message: raw.error_message,
            }),
            Err(_) => Err(Error::Unexpected { status: status.as_u16(), url: url.to_string(), body: snippet(&bytes) }),
        }
    }
}

/// The headers a presigned URL must be sent with.
pub(crate) fn signed_headers(headers: &std::collections::BTreeMap<String, String>) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::Invalid(format!("the server signed a bad header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| Error::Invalid(format!("the server signed a bad value for header {name}")))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// A store's error answer, shortened to its message: S3 answers XML with a `<Message>`, the local backend JSON.
pub(crate) fn store_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Some(start) = text.find("<Message>") {
        let rest = &text[start + "<Message>".len()..];
        if let Some(end) = rest.find("</Message>") {
            return rest[..end].to_owned();
        }
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(message) = json.get("error_message").and_then(|m| m.as_str())
    {
        return message.to_owned();
    }
    snippet(body)
}

/// Every item of a listing: `page` fetches the page a token names (the first for `None`) and answers its items and
/// the next page's token.
async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let (mut all, mut token) = (Vec::new(), None);
    loop {
        let (items, next) = page(token).await?;
        all.extend(items);
        match next {
            Some(next) => token = Some(next),
            None => return Ok(all),
        }
    }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_gain_a_trailing_slash_so_routes_join_below_them() {
        let client = Client::new("http://example.test/draftstore", None).expect("valid");
        assert_eq!(
            client.base.join("api/v1/upload-url").expect("joins").as_str(),
            "http://example.test/draftstore/api/v1/upload-url"
        );
        assert!(Client::new("ftp://example.test", None).is_err());
        assert!(Client::new("not a url", None).is_err());
        assert!(Client::new("http://example.test", Some("bad\ntoken".into())).is_err());
    }

    #[test]
    fn store_messages_are_read_from_s3_xml_and_local_json() {
        let xml = b"<?xml version=\"1.0\"?><Error><Code>BadDigest</Code><Message>checksum mismatch</Message></Error>";
        assert_eq!(store_message(xml), "checksum mismatch");
        let json = br#"{"success":false,"error_type":"UPLOAD_REJECTED","error_message":"the SHA-256 differs"}"#;
        assert_eq!(store_message(json), "the SHA-256 differs");
        assert_eq!(store_message(b"plain"), "plain");
    }
}

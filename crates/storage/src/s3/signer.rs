//! Presigned URLs, signed here with SigV4's query-string authentication.
//!
//! The store's calls go through `aws-sdk-s3`, but its presigner builds a whole request for every URL, and issuing
//! URLs is DraftStore's hottest path. Here the day's signing key is derived once, by `aws-sigv4` (the SDK's own
//! signer), and kept keyed, with the credentials it came from; a URL then costs one SHA-256 of its canonical
//! request and one HMAC. The tests check each kind of URL against `aws-sigv4`'s request signer, and the
//! conformance suite has the store accept them.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, utf8_percent_encode};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};
use url::Url;

use crate::multipart::MAX_PART_NUMBER;
use crate::storage::{ESCAPE, display_header_name, push_hex, push_joined};
use crate::{Error, Method, MultipartRequest, PresignRequest, PresignedUrl, Result, UploadId};

use super::CREDENTIAL_MARGIN;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Keys keep their `/` in a URL's path, as S3 signs it: each segment is encoded, not the separators.
const PATH_ESCAPE: &AsciiSet = &ESCAPE.remove(b'/');
const DAY: i64 = 24 * 3600;

/// Signs URLs for one endpoint with the credentials of a provider, kept until shortly before they expire.
pub(super) struct Signer {
    /// `http` or `https`.
    scheme: &'static str,
    /// The endpoint's host, with its port unless it is the scheme's default: the `Host` a request will carry.
    host: String,
    /// The endpoint's path, ending in `/`: a prefix of every object's path.
    base_path: String,
    path_style: bool,
    pub(super) region: String,
    provider: SharedCredentialsProvider,
    key: RwLock<Option<Arc<DayKey>>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("endpoint", &format_args!("{}://{}{}", self.scheme, self.host, self.base_path))
            .field("path_style", &self.path_style)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Credentials as the provider gave them, with their expiry in Unix seconds.
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expires_at: Option<i64>,
}

impl Credentials {
    /// Whether they are still good at `now`, with the margin that renews them before they run out.
    fn usable_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now.saturating_add(CREDENTIAL_MARGIN.as_secs() as i64))
    }
}

/// The signing key of one day, ready to sign, with what a URL of that day says of it.
struct DayKey {
    credentials: Arc<Credentials>,
    /// Days since the Unix epoch.
    day: i64,
    /// `yyyymmdd/region/s3/aws4_request`.
    scope: String,
    /// `X-Amz-Credential`'s value, encoded: the key id and the scope.
    credential_param: String,
    mac: Hmac<Sha256>,
}

impl Signer {
    /// A signer for URLs at `endpoint`. Fails for an endpoint that has no host or is neither HTTP nor HTTPS.
    pub(super) fn new(
        endpoint: &Url,
        path_style: bool,
        region: String,
        provider: SharedCredentialsProvider,
    ) -> Result<Self> {
        let invalid =
            |why: &str| Error::Other { message: format!("cannot sign URLs for {endpoint}: {why}"), source: None };
        let scheme = match endpoint.scheme() {
            "http" => "http",
            "https" => "https",
            _ => return Err(invalid("the endpoint must be http or https")),
        };
        let host = endpoint.host_str().ok_or_else(|| invalid("the endpoint has no host"))?;
        let host = match endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        // The name of the bucket, or the key, is appended to the endpoint's path: it must end in `/`.
        let mut base_path = endpoint.path().to_owned();
        if !base_path.ends_with('/') {
            base_path.push('/');
        }
        Ok(Self { scheme, host, base_path, path_style, region, provider, key: RwLock::new(None) })
    }

    /// The signing key for the day of `now` (`yyyymmdd`), derived again when the day or the credentials change.
    async fn day_key(&self, now: i64, yyyymmdd: &str) -> Result<Arc<DayKey>> {
        let day = now.div_euclid(DAY);
        let cached = self.key.read().unwrap_or_else(PoisonError::into_inner).clone();
        let credentials = match cached {
            Some(key) if key.credentials.usable_at(now) && key.day == day => return Ok(key),
            Some(key) if key.credentials.usable_at(now) => Arc::clone(&key.credentials),
            _ => Arc::new(self.fetch_credentials().await?),
        };
        let key = Arc::new(self.derive(credentials, day, yyyymmdd)?);
        *self.key.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&key));
        Ok(key)
    }

    async fn fetch_credentials(&self) -> Result<Credentials> {
        let fresh = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Error::AccessDenied { message: format!("no usable credentials for signing URLs: {e}") })?;
        let expires_at = fresh.expiry().map(|at| match at.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            Err(_) => i64::MIN,
        });
        Ok(Credentials {
            access_key_id: fresh.access_key_id().to_owned(),
            secret_access_key: fresh.secret_access_key().to_owned(),
            session_token: fresh.session_token().filter(|token| !token.is_empty()).map(str::to_owned),
            expires_at,
        })
    }

    fn derive(&self, credentials: Arc<Credentials>, day: i64, yyyymmdd: &str) -> Result<DayKey> {
        let seconds = u64::try_from(day * DAY)
            .map_err(|_| Error::Other { message: "signing time before 1970".to_owned(), source: None })?;
        let time = UNIX_EPOCH + Duration::from_secs(seconds);
        let signing_key =
            aws_sigv4::sign::v4::generate_signing_key(&credentials.secret_access_key, time, &self.region, "s3");
        let mac = Hmac::new_from_slice(signing_key.as_ref()).expect("HMAC accepts keys of any length");
        let scope = format!("{yyyymmdd}/{}/s3/aws4_request", self.region);
        let mut credential_param = String::new();
        credential_param.extend(utf8_percent_encode(&credentials.access_key_id, ESCAPE));
        credential_param.extend(utf8_percent_encode("/", ESCAPE));
        credential_param.extend(utf8_percent_encode(&scope, ESCAPE));
        Ok(DayKey { credentials, day, scope, credential_param, mac })
    }

    pub(super) async fn sign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        match request.method {
            Method::Put => self.url(request, Method::Put, &[], request.conditions.upload_headers()).await,
            Method::Get => {
                // A version, as an `If-Match` the request must send: S3 has no query parameter for it.
                let headers = request.conditions.if_match.iter().map(|etag| ("if-match".to_owned(), etag.clone()));
                let query = request.conditions.response_params();
                self.url(request, Method::Get, &query, headers.collect()).await
            }
            Method::Post | Method::Delete => {
                Err(Error::Other { message: "a plain object URL is for GET or PUT".to_owned(), source: None })
            }
        }
    }

    pub(super) async fn sign_multipart(
        &self,
        request: &PresignRequest<'_>,
        multipart: MultipartRequest<'_>,
    ) -> Result<PresignedUrl> {
        let method = multipart.method();
        match multipart {
            MultipartRequest::Create => {
                let headers = match &request.conditions.content_type {
                    Some(content_type) => vec![("content-type".to_owned(), content_type.to_string())],
                    None => Vec::new(),
                };
                self.url(request, method, &[("uploads", "1")], headers).await
            }
            MultipartRequest::ListParts(id) | MultipartRequest::Abort(id) => {
                self.url(request, method, &[("uploadId", id.as_str())], Vec::new()).await
            }
        }
    }

    pub(super) async fn sign_part(
        &self,
        request: &PresignRequest<'_>,
        upload_id: &UploadId,
        number: u32,
    ) -> Result<PresignedUrl> {
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(Error::Other { message: format!("part number {number} out of range"), source: None });
        }
        let number = number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", upload_id.as_str())];
        self.url(request, Method::Put, &query, request.conditions.part_headers()).await
    }

    /// Signs `request` for `method` with `query` (sorted, every name starting in lowercase, so after SigV4's own)
    /// and `headers` (lowercase names) besides `Host`, which the request must send as given.
    async fn url(
        &self,
        request: &PresignRequest<'_>,
        method: Method,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
    ) -> Result<PresignedUrl> {
        let now = request.now.to_offset(UtcOffset::UTC);
        let date = amz_date(now)?;
        let date = std::str::from_utf8(&date).map_err(|e| Error::other("signing time", e))?;
        let key = self.day_key(now.unix_timestamp(), &date[..8]).await?;
        let bucket = request.bucket.as_str();

        let host = match self.path_style {
            true => Cow::Borrowed(self.host.as_str()),
            false => Cow::Owned(format!("{bucket}.{}", self.host)),
        };
        let mut path = String::with_capacity(self.base_path.len() + bucket.len() + request.key.as_str().len() + 16);
        path.push_str(&self.base_path);
        if self.path_style {
            path.push_str(bucket);
            path.push('/');
        }
        path.extend(utf8_percent_encode(request.key.as_str(), PATH_ESCAPE));

        let mut signed: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
        signed.push(("host", &host));
        signed.extend(headers.iter().map(|(name, value)| (name.as_str(), value.as_str())));
        signed.sort_unstable_by_key(|(name, _)| *name);

        // The query is the same in the canonical request and in the URL: SigV4's parameters in their sorted order,
        // then the request's own.
        let mut params = String::with_capacity(256);
        let _ = write!(
            params,
            "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={date}&X-Amz-Expires={}",
            key.credential_param,
            request.expires_in.as_secs()
        );
        if let Some(token) = &key.credentials.session_token {
            params.push_str("&X-Amz-Security-Token=");
            params.extend(utf8_percent_encode(token, ESCAPE));
        }
        params.push_str("&X-Amz-SignedHeaders=");
        push_joined(&mut params, signed.iter().map(|(name, _)| *name), "%3B");
        debug_assert!(query.is_sorted_by_key(|(name, _)| *name));
        for (name, value) in query {
            debug_assert!(name.starts_with(|c: char| c.is_ascii_lowercase()));
            params.push('&');
            params.push_str(name);
            params.push('=');
            params.extend(utf8_percent_encode(value, ESCAPE));
        }

        let mut canonical = String::with_capacity(path.len() + params.len() + 256);
        let _ = write!(canonical, "{}\n{path}\n{params}\n", method.as_str());
        for (name, value) in &signed {
            canonical.push_str(name);
            canonical.push(':');
            // SigV4 trims a value and folds its runs of spaces into one.
            push_joined(&mut canonical, value.split_ascii_whitespace(), " ");
            canonical.push('\n');
        }
        canonical.push('\n');
        push_joined(&mut canonical, signed.iter().map(|(name, _)| *name), ";");
        canonical.push_str("\nUNSIGNED-PAYLOAD");

        let mut to_sign = String::with_capacity(160);
        for part in [ALGORITHM, date, &key.scope] {
            to_sign.push_str(part);
            to_sign.push('\n');
        }
        push_hex(&mut to_sign, &Sha256::digest(canonical.as_bytes()));
        let mut mac = key.mac.clone();
        mac.update(to_sign.as_bytes());

        let mut url = canonical;
        url.clear();
        let _ = write!(url, "{}://{host}{path}?{params}&X-Amz-Signature=", self.scheme);
        push_hex(&mut url, &mac.finalize().into_bytes());
        let headers = headers.into_iter().map(|(name, value)| (display_header_name(&name), value)).collect();
        Ok(PresignedUrl { url, method, headers })
    }
}

/// `yyyymmddThhmmssZ`, the form of `X-Amz-Date`.
fn amz_date(utc: OffsetDateTime) -> Result<[u8; 16]> {
    let year = u16::try_from(utc.year())
        .ok()
        .filter(|year| *year <= 9999)
        .ok_or_else(|| Error::Other { message: "signing time out of range".to_owned(), source: None })?;
    let mut out = *b"00000000T000000Z";
    let fields = [
        (0, 4, year),
        (4, 2, u16::from(u8::from(utc.month()))),
        (6, 2, u16::from(utc.day())),
        (9, 2, u16::from(utc.hour())),
        (11, 2, u16::from(utc.minute())),
        (13, 2, u16::from(utc.second())),
    ];
    for (at, width, mut value) in fields {
        for digit in out[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! The local backend's URL signatures: HMAC-SHA256 over method, bucket, key, expiry, the signed headers and every
//! other query parameter. A URL whose key, expiry, parameters or signature was altered, or that has expired, fails
//! verification.

use std::fmt::Write as _;
use std::io;

use hmac::{Hmac, Mac};
use percent_encoding::utf8_percent_encode;
use sha2::Sha256;

use async_trait::async_trait;

use super::{IF_MATCH_PARAM, LocalStorage};
use crate::storage::{ESCAPE, push_hex, push_joined};
use crate::{BucketName, Error, Method, ObjectKey, PresignRequest, PresignedUrl, Result};

pub(crate) const EXPIRES: &str = "X-DS-Expires";
pub(crate) const SIGNED_HEADERS: &str = "X-DS-SignedHeaders";
pub(crate) const SIGNATURE: &str = "X-DS-Signature";

/// Why a signed request was refused. The messages say what is wrong without helping a forger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the URL is not signed: parameter {0} is missing")]
    Missing(&'static str),
    #[error("the URL's signature parameters are malformed")]
    Malformed,
    #[error("the URL has expired")]
    Expired,
    #[error("the signature does not match the request (URL altered, or a signed header differs)")]
    Mismatch,
    /// An `x-amz-*` header the URL does not sign: S3 refuses them, and a store that applies them lets a client
    /// write what was never signed (a copy source, metadata, tags).
    #[error("the request carries {0}, which the URL does not sign")]
    Unsigned(String),
}

/// The one `x-amz-*` header a request may carry unsigned: a checksum, which only narrows what is accepted (the
/// body is verified against it, as S3 does).
const UNSIGNED_ALLOWED: &[&str] = &[crate::CHECKSUM_HEADER];

/// Signs and verifies local URLs with one secret key.
#[derive(Clone)]
pub(crate) struct UrlSigner {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner { key: <redacted> }")
    }
}

/// The parts of a request that its signature covers.
pub(crate) struct Signed<'a> {
    pub method: Method,
    pub bucket: &'a str,
    pub key: &'a str,
    pub expires: u64,
    /// Lowercase header names with the values the request must carry, sorted by name.
    pub headers: &'a [(String, String)],
    /// Every other query parameter, sorted.
    pub query: &'a [(String, String)],
}

impl UrlSigner {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self { mac: Hmac::new_from_slice(key).expect("HMAC accepts keys of any length") }
    }

    fn mac(&self, signed: &Signed<'_>) -> Hmac<Sha256> {
        let mut canonical = String::with_capacity(256);
        for part in ["DS1-HMAC-SHA256", signed.method.as_str(), signed.bucket, signed.key] {
            canonical.push_str(part);
            canonical.push('\n');
        }
        let _ = writeln!(canonical, "{}", signed.expires);
        push_joined(&mut canonical, signed.headers.iter().map(|(name, _)| name.as_str()), ";");
        canonical.push('\n');
        for (name, value) in signed.headers {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value.trim());
            canonical.push('\n');
        }
        for (name, value) in signed.query {
            canonical.extend(utf8_percent_encode(name, ESCAPE));
            canonical.push('=');
            canonical.extend(utf8_percent_encode(value, ESCAPE));
            canonical.push('&');
        }
        let mut mac = self.mac.clone();
        mac.update(canonical.as_bytes());
        mac
    }

    /// Appends the hex signature for these parts to `out`.
    pub(crate) fn sign_into(&self, signed: &Signed<'_>, out: &mut String) {
        push_hex(out, &self.mac(signed).finalize().into_bytes());
    }

    /// The hex signature for these parts.
    #[cfg(test)]
    pub(crate) fn sign(&self, signed: &Signed<'_>) -> String {
        let mut signature = String::with_capacity(64);
        self.sign_into(signed, &mut signature);
        signature
    }

    /// Checks a request against its URL's signature, in constant time. `header` looks up a request header by
    /// lowercase name; `names` are the names of every header the request carries, lowercase, of which no `x-amz-*`
    /// may go unsigned. Returns the query parameters that were signed besides DraftStore's own.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn verify<'h, 'n>(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectKey,
        query: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        names: impl IntoIterator<Item = &'n str>,
        now_unix: i64,
    ) -> Result<Vec<(String, String)>, SignatureError> {
        let mut expires = None;
        let mut signed_headers = None;
        let mut signature = None;
        let mut rest = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                EXPIRES => &mut expires,
                SIGNED_HEADERS => &mut signed_headers,
                SIGNATURE => &mut signature,
                _ => {
                    rest.push((name.into_owned(), value.into_owned()));
                    continue;
                }
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(SignatureError::Malformed);
            }
        }
        let expires: u64 =
            expires.ok_or(SignatureError::Missing(EXPIRES))?.parse().map_err(|_| SignatureError::Malformed)?;
        let signature =
            hex::decode(signature.ok_or(SignatureError::Missing(SIGNATURE))?).map_err(|_| SignatureError::Malformed)?;
        rest.sort();
        let mut headers = Vec::new();
        for name in signed_headers.as_deref().unwrap_or_default().split(';').filter(|n| !n.is_empty()) {
            let value = header(name).ok_or(SignatureError::Mismatch)?;
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mac = self.mac(&Signed {
            method,
            bucket: bucket.as_str(),
            key: key.as_str(),
            expires,
            headers: &headers,
            query: &rest,
        });
        mac.verify_slice(&signature).map_err(|_| SignatureError::Mismatch)?;
        // Checked after the signature so that an expiry moved forward reads as tampering, not as expiry.
        if i64::try_from(expires).is_ok_and(|e| e < now_unix) {
            return Err(SignatureError::Expired);
        }
        let signed = |name: &str| headers.iter().any(|(signed, _)| signed.eq_ignore_ascii_case(name));
        if let Some(unsigned) = names.into_iter().find(|name| {
            name.get(..6).is_some_and(|start| start.eq_ignore_ascii_case("x-amz-"))
                && !signed(name)
                && !UNSIGNED_ALLOWED.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
        }) {
            return Err(SignatureError::Unsigned(unsigned.to_ascii_lowercase()));
        }
        Ok(rest)
    }
}

#[async_trait]
impl crate::Signer for LocalStorage {
    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        let (headers, query) = match request.method {
            Method::Put => (request.conditions.upload_headers(), Vec::new()),
            Method::Get => {
                // Sorted, as the signer canonicalises them: `if-match`, then the `response-*` ones.
                let mut query = Vec::new();
                if let Some(etag) = &request.conditions.if_match {
                    query.push((IF_MATCH_PARAM.to_owned(), etag.clone()));
                }
                let params = request.conditions.response_params();
                query.extend(params.into_iter().map(|(name, value)| (name.to_owned(), value.to_owned())));
                (Vec::new(), query)
            }
            Method::Post | Method::Delete => {
                return Err(Error::other(
                    "a plain object URL is for GET or PUT",
                    io::Error::from(io::ErrorKind::InvalidInput),
                ));
            }
        };
        self.sign_url(request, headers, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(signer: &UrlSigner, key: &str, expires: u64, headers: &[(String, String)]) -> String {
        let signature =
            signer.sign(&Signed { method: Method::Put, bucket: "main-draft", key, expires, headers, query: &[] });
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        format!("{EXPIRES}={expires}&{SIGNED_HEADERS}={}&{SIGNATURE}={signature}", names.join(";"))
    }

    fn verify(
        signer: &UrlSigner,
        key: &str,
        query: &str,
        content_type: Option<&str>,
        now: i64,
    ) -> Result<(), SignatureError> {
        let bucket = BucketName::parse("main-draft").expect("valid");
        let key = ObjectKey::parse(key).expect("valid");
        let header = |n: &str| (n == "content-type").then_some(content_type).flatten();
        signer.verify(Method::Put, &bucket, &key, query, header, content_type.map(|_| "content-type"), now).map(drop)
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let signer = UrlSigner::new(b"secret");
        let q = query(&signer, "a/b.txt", 1_000, &[]);
        assert_eq!(verify(&signer, "a/b.txt", &q, None, 999), Ok(()));
        assert_eq!(verify(&signer, "a/b.txt", &q, None, 1_000), Ok(()));
        assert_eq!(verify(&signer, "a/b.txt", &q, None, 1_001), Err(SignatureError::Expired));
    }

    #[test]
    fn altering_key_expiry_signature_or_signed_header_is_refused() {
        let signer = UrlSigner::new(b"secret");
        let ct = [("content-type".to_owned(), "image/png".to_owned())];
        let q = query(&signer, "a.png", 1_000, &ct);
        assert_eq!(verify(&signer, "a.png", &q, Some("image/png"), 0), Ok(()));
        assert_eq!(verify(&signer, "b.png", &q, Some("image/png"), 0), Err(SignatureError::Mismatch));
        assert_eq!(verify(&signer, "a.png", &q, Some("text/html"), 0), Err(SignatureError::Mismatch));
        assert_eq!(verify(&signer, "a.png", &q, None, 0), Err(SignatureError::Mismatch));
        let later = q.replace("X-DS-Expires=1000", "X-DS-Expires=9999");
        assert_eq!(verify(&signer, "a.png", &later, Some("image/png"), 0), Err(SignatureError::Mismatch));
        let unsigned = q.replace("content-type", "");
        assert_eq!(verify(&signer, "a.png", &unsigned, Some("image/png"), 0), Err(SignatureError::Mismatch));
        let other_key = UrlSigner::new(b"other");
        assert_eq!(verify(&other_key, "a.png", &q, Some("image/png"), 0), Err(SignatureError::Mismatch));
        assert_eq!(verify(&signer, "a.png", "X-DS-Expires=1000", None, 0), Err(SignatureError::Missing(SIGNATURE)));
        assert_eq!(verify(&signer, "a.png", &format!("{q}&X-DS-Expires=1"), None, 0), Err(SignatureError::Malformed));
        assert_eq!(
            verify(&signer, "a.png", &format!("{q}&extra=1"), Some("image/png"), 0),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_unsigned_amz_header_is_refused_but_a_checksum() {
        let signer = UrlSigner::new(b"secret");
        let ct = [("content-type".to_owned(), "image/png".to_owned())];
        let q = query(&signer, "a.png", 1_000, &ct);
        let (bucket, key) =
            (BucketName::parse("main-draft").expect("valid"), ObjectKey::parse("a.png").expect("valid"));
        let header = |n: &str| (n == "content-type").then_some("image/png");
        let check = |names: &[&str]| signer.verify(Method::Put, &bucket, &key, &q, header, names.iter().copied(), 0);
        assert!(check(&["content-type", "content-length", "x-amz-checksum-sha256"]).is_ok());
        for smuggled in ["x-amz-copy-source", "X-Amz-Meta-Draftstore-Length", "x-amz-tagging", "x-amz-acl"] {
            let refused = check(&["content-type", smuggled]);
            assert_eq!(refused, Err(SignatureError::Unsigned(smuggled.to_ascii_lowercase())), "{smuggled}");
        }
    }
}

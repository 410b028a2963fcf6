use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use time::OffsetDateTime;
use url::Url;

use super::Signer;
use crate::storage::Conditions;
use crate::{BucketName, Checksum, ContentType, Method, MultipartRequest, ObjectKey, PresignRequest, UploadId};

/// Fri, 24 May 2013 00:00:00 GMT, the time of AWS's examples.
const EXAMPLE_TIME: i64 = 1_369_353_600;
const EXAMPLE_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn signer(endpoint: &str, path_style: bool, token: Option<&str>) -> Signer {
    let credentials = Credentials::new(EXAMPLE_KEY_ID, EXAMPLE_SECRET, token.map(str::to_owned), None, "test");
    let endpoint = Url::parse(endpoint).expect("an endpoint");
    Signer::new(&endpoint, path_style, "us-east-1".to_owned(), SharedCredentialsProvider::new(credentials))
        .expect("a signer")
}

fn request<'a>(
    method: Method,
    bucket: &'a BucketName,
    key: &'a ObjectKey,
    conditions: &'a Conditions,
    now: i64,
) -> PresignRequest<'a> {
    PresignRequest {
        method,
        bucket,
        key,
        now: OffsetDateTime::from_unix_timestamp(now).expect("a time"),
        expires_in: Duration::from_secs(86400),
        conditions,
    }
}

/// The example of AWS's documentation of query-string authentication, with and without a session token.
#[tokio::test]
async fn the_documented_example_is_signed_as_aws_signs_it() {
    let bucket = BucketName::parse("examplebucket").expect("a bucket");
    let key = ObjectKey::parse("test.txt").expect("a key");
    let conditions = Conditions::default();
    let request = request(Method::Get, &bucket, &key, &conditions, EXAMPLE_TIME);
    let url = signer("https://s3.amazonaws.com", false, None).sign(&request).await.expect("signed").url;
    assert_eq!(
        url,
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\
         AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&\
         X-Amz-Expires=86400&X-Amz-SignedHeaders=host&\
         X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    let with_token = signer("https://s3.amazonaws.com", false, Some("oej5cie4uctureturdtuc5dctd"));
    let url = with_token.sign(&request).await.expect("signed").url;
    assert!(url.contains("&X-Amz-Security-Token=oej5cie4uctureturdtuc5dctd&X-Amz-SignedHeaders=host&"), "{url}");
    assert!(
        url.ends_with("&X-Amz-Signature=bf77b83a7135594046c90a7e7e10cf1a4c8f8ecc1d541d0f42bea6b7670870c7"),
        "{url}"
    );
}

/// Signs what `url` asks for again with `aws-sigv4`'s request signer and returns its `X-Amz-Signature`.
fn sigv4_signature(
    method: Method,
    url: &str,
    headers: &[(String, String)],
    token: Option<&str>,
    now: i64,
    expires: Duration,
) -> String {
    let (base, query) = url.split_once('?').expect("a query");
    // The request's own parameters, as the URL encodes them; aws-sigv4 adds its own.
    let own: Vec<&str> = query.split('&').filter(|pair| !pair.starts_with("X-Amz-")).collect();
    let uri = if own.is_empty() { base.to_owned() } else { format!("{base}?{}", own.join("&")) };
    let host = Url::parse(url).expect("a URL");
    let host = match host.port() {
        Some(port) => format!("{}:{port}", host.host_str().expect("a host")),
        None => host.host_str().expect("a host").to_owned(),
    };
    let headers: Vec<(String, String)> = std::iter::once(("host".to_owned(), host))
        .chain(headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone())))
        .collect();
    let request = SignableRequest::new(
        method.as_str(),
        uri,
        headers.iter().map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::UnsignedPayload,
    )
    .expect("a signable request");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = Credentials::new(EXAMPLE_KEY_ID, EXAMPLE_SECRET, token.map(str::to_owned), None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(UNIX_EPOCH + Duration::from_secs(now as u64))
        .settings(settings)
        .build()
        .expect("signing parameters")
        .into();
    let (instructions, _) = aws_sigv4::http_request::sign(request, &params).expect("signed").into_parts();
    let signature = instructions.params().iter().find(|(name, _)| *name == "X-Amz-Signature");
    signature.expect("a signature").1.to_string()
}

fn signature(url: &str) -> &str {
    url.rsplit_once("&X-Amz-Signature=").expect("a signature").1
}

#[tokio::test]
async fn every_kind_of_url_is_signed_as_aws_sigv4_signs_it() {
    let bucket = BucketName::parse("drafts-1").expect("a bucket");
    let conditions = Conditions {
        content_type: Some(ContentType::parse("text/plain;  charset=utf-8").expect("a type")),
        content_length: Some(1234),
        checksum_sha256: Some(Checksum::parse("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").expect("a checksum")),
        disposition: Some("attachment; filename*=UTF-8''%C3%A9 \"1\".png".to_owned()),
        if_match: Some("\"9b2cf535f27731c974343645a3985328\"".to_owned()),
        response_content_type: Some(ContentType::parse("image/png").expect("a type")),
    };
    let upload = UploadId::parse("2~a_b.c-d").expect("an upload id");
    // Late in a day and early in the next: the signing key is the day's.
    let times = [
        EXAMPLE_TIME + 86399,
        EXAMPLE_TIME + 86400 + 1,
        SystemTime::now().duration_since(UNIX_EPOCH).expect("after the epoch").as_secs() as i64,
    ];
    for (endpoint, path_style) in [
        ("http://127.0.0.1:9000", true),
        ("https://store.example.com/prefix", true),
        ("https://s3.amazonaws.com", false),
    ] {
        for token in [None, Some("session/token+=")] {
            let signer = signer(endpoint, path_style, token);
            for name in [
                "plain.txt",
                "a/deeper/key with spaces+plus&amp=eq~tilde.bin",
                "ünï/çødé/✓.png",
                "(1)/[2]/{3}/@!$'*,;:|^`#?%.txt",
            ] {
                let key = ObjectKey::parse(name).expect("a key");
                for now in times {
                    let put = request(Method::Put, &bucket, &key, &conditions, now);
                    let get = request(Method::Get, &bucket, &key, &conditions, now);
                    let bare = Conditions::default();
                    let plain_get = request(Method::Get, &bucket, &key, &bare, now);
                    let mut urls = vec![
                        signer.sign(&put).await.expect("PUT"),
                        signer.sign(&get).await.expect("GET"),
                        signer.sign(&plain_get).await.expect("plain GET"),
                        signer.sign_part(&put, &upload, 7).await.expect("a part"),
                        signer.sign_part(&put, &upload, 10_000).await.expect("the last part"),
                    ];
                    for multipart in [
                        MultipartRequest::Create,
                        MultipartRequest::ListParts(&upload),
                        MultipartRequest::Abort(&upload),
                    ] {
                        urls.push(signer.sign_multipart(&put, multipart).await.expect("multipart"));
                    }
                    for url in urls {
                        let expected =
                            sigv4_signature(url.method, &url.url, &url.headers, token, now, Duration::from_secs(86400));
                        assert_eq!(signature(&url.url), expected, "{} {}", url.method.as_str(), url.url);
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn urls_are_addressed_as_the_endpoint_says() {
    let bucket = BucketName::parse("drafts").expect("a bucket");
    let key = ObjectKey::parse("a b/c.txt").expect("a key");
    let conditions = Conditions::default();
    let get = request(Method::Get, &bucket, &key, &conditions, EXAMPLE_TIME);
    for (endpoint, path_style, start) in [
        ("http://127.0.0.1:9000", true, "http://127.0.0.1:9000/drafts/a%20b/c.txt?"),
        ("http://user:secret@127.0.0.1:9000/?q=1#f", true, "http://127.0.0.1:9000/drafts/a%20b/c.txt?"),
        ("https://cdn.example.com/s3", true, "https://cdn.example.com/s3/drafts/a%20b/c.txt?"),
        ("https://s3.eu-west-1.amazonaws.com:443", false, "https://drafts.s3.eu-west-1.amazonaws.com/a%20b/c.txt?"),
        ("http://[::1]:9000", true, "http://[::1]:9000/drafts/a%20b/c.txt?"),
    ] {
        let url = signer(endpoint, path_style, None).sign(&get).await.expect("signed").url;
        assert!(url.starts_with(start), "{endpoint}: {url}");
    }
    for endpoint in ["ftp://store.example.com", "unix:/run/s3.sock"] {
        let endpoint = Url::parse(endpoint).expect("a URL");
        let credentials = Credentials::new(EXAMPLE_KEY_ID, EXAMPLE_SECRET, None, None, "test");
        let made = Signer::new(&endpoint, true, "us-east-1".to_owned(), SharedCredentialsProvider::new(credentials));
        assert!(made.is_err(), "{endpoint}");
    }
}

#[tokio::test]
async fn a_part_number_out_of_range_is_refused() {
    let bucket = BucketName::parse("drafts").expect("a bucket");
    let key = ObjectKey::parse("big.bin").expect("a key");
    let conditions = Conditions::default();
    let put = request(Method::Put, &bucket, &key, &conditions, EXAMPLE_TIME);
    let upload = UploadId::parse("id").expect("an upload id");
    let signer = signer("http://127.0.0.1:9000", true, None);
    for number in [0, 10_001] {
        assert!(signer.sign_part(&put, &upload, number).await.is_err(), "part {number}");
    }
}

//! A stand-in for the S3 servers that a class of defects published in 2026 affects (MinIO, NooBaa, Swift's
//! tempurl…): a presigned PUT or part upload that carries an *unsigned* `x-amz-copy-source` is carried out as a copy,
//! with the rights of the credential that signed the URL. A few lines of HTTP proxy in front of SeaweedFS (which
//! refuses such requests) behave as those stores do: such a request, its signature checked over what it signs, is
//! turned into CopyObject (UploadPartCopy) sent to SeaweedFS as the signer; every other request goes through as it
//! came, `Host` included, so that SeaweedFS checks its signature.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::seaweed::{Identity, s3_client};

/// What SigV4 leaves unescaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// Hop-by-hop headers, and those the proxy's own client sets.
const NOT_FORWARDED: [&str; 5] = ["connection", "transfer-encoding", "keep-alive", "expect", "upgrade"];

/// The stand-in store, listening on a loopback port; stops when dropped.
pub struct StandIn {
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Upstream {
    endpoint: String,
    /// Access key id to secret, of every identity the store knows.
    secrets: HashMap<String, String>,
    http: reqwest::Client,
}

impl StandIn {
    /// A stand-in in front of the SeaweedFS at `endpoint`, which knows these identities.
    pub async fn start(endpoint: &str, identities: &[Identity]) -> StandIn {
        let mut secrets: HashMap<_, _> =
            identities.iter().map(|i| (i.access_key.clone(), i.secret_key.clone())).collect();
        secrets.insert(crate::seaweed::ACCESS_KEY.to_owned(), crate::seaweed::SECRET_KEY.to_owned());
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let upstream = Arc::new(Upstream { endpoint: endpoint.trim_end_matches('/').to_owned(), secrets, http });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let app = axum::Router::new().fallback(handle).with_state(upstream);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the stand-in serves");
        });
        StandIn { endpoint: format!("http://127.0.0.1:{port}"), task }
    }
}

async fn handle(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("a body");
    let query = parse_query(parts.uri.query().unwrap_or_default());
    let param = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let smuggled = parts.method == Method::PUT
        && parts.headers.contains_key("x-amz-copy-source")
        && param("X-Amz-SignedHeaders").is_some_and(|signed| !signed.split(';').any(|h| h == "x-amz-copy-source"));
    if smuggled {
        return copy_as_signer(&upstream, &parts.method, parts.uri.path(), &query, &parts.headers).await;
    }
    let url = format!("{}{}", upstream.endpoint, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut forwarded = upstream.http.request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = forwarded.body(body).send().await.expect("SeaweedFS answers");
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !NOT_FORWARDED.contains(&name.as_str()) && name != "content-length" {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(answer.bytes().await.expect("body"))).expect("a response")
}

/// Carries out a presigned PUT with an unsigned copy source as the copy it names, with the signer's credential:
/// what an affected store does once the signature over the signed parts checks out.
async fn copy_as_signer(
    upstream: &Upstream,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Response {
    let param = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    let access_key = param("X-Amz-Credential").split('/').next().unwrap_or_default();
    let Some(secret) = upstream.secrets.get(access_key) else {
        return s3_error(StatusCode::FORBIDDEN, "InvalidAccessKeyId");
    };
    if !signature_holds(method, path, query, headers, secret) {
        return s3_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
    }
    let client = s3_client(&upstream.endpoint, access_key, secret);
    let (bucket, key) = path.trim_start_matches('/').split_once('/').expect("a path-style URL");
    let key = percent_decode_str(key).decode_utf8().expect("utf-8").into_owned();
    let source = headers["x-amz-copy-source"].to_str().expect("ascii").trim_start_matches('/').to_owned();
    let copied = match (param("uploadId"), param("partNumber").parse::<i32>()) {
        ("", _) | (_, Err(_)) => {
            client.copy_object().bucket(bucket).key(&key).copy_source(source).send().await.map(drop).map_err(status)
        }
        (upload_id, Ok(number)) => client
            .upload_part_copy()
            .bucket(bucket)
            .key(&key)
            .upload_id(upload_id)
            .part_number(number)
            .copy_source(source)
            .send()
            .await
            .map(drop)
            .map_err(status),
    };
    match copied {
        Ok(()) => (StatusCode::OK, [("etag", "\"copied\"")], "<CopyObjectResult/>").into_response(),
        Err(code) => s3_error(code, "AccessDenied"),
    }
}

fn status<E>(error: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> StatusCode {
    let status = error.raw_response().map_or(500, |response| response.status().as_u16());
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn s3_error(status: StatusCode, code: &str) -> Response {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code></Error>");
    (status, [("content-type", "application/xml")], body).into_response()
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| percent_decode_str(text).decode_utf8().expect("utf-8").into_owned();
            (decode(name), decode(value))
        })
        .collect()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// SigV4's query signature over the parts of the request it signs: the method, path, query and signed headers.
fn signature_holds(method: &Method, path: &str, query: &[(String, String)], headers: &HeaderMap, secret: &str) -> bool {
    let param = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    let encode = |text: &str| utf8_percent_encode(text, UNRESERVED).to_string();
    let mut params: Vec<_> =
        query.iter().filter(|(name, _)| name != "X-Amz-Signature").map(|(n, v)| (encode(n), encode(v))).collect();
    params.sort();
    let params: Vec<_> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let signed = param("X-Amz-SignedHeaders");
    let header_lines: String = signed
        .split(';')
        .map(|name| {
            let value = headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
            format!("{name}:{}\n", value.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect();
    let canonical = format!("{method}\n{path}\n{}\n{header_lines}\n{signed}\nUNSIGNED-PAYLOAD", params.join("&"));
    let credential = param("X-Amz-Credential");
    let scope = credential.split_once('/').map(|(_, scope)| scope).unwrap_or_default();
    let mut parts = scope.split('/');
    let (date, region, service) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        param("X-Amz-Date"),
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = [date, region, service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| hmac(&key, part));
    hex::encode(hmac(&key, &to_sign)) == param("X-Amz-Signature")
}

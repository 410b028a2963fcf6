//! S3's XML bodies for the multipart requests DraftStore answers itself: the local backend's signed URLs (start,
//! list), and the completion of Uppy's uploads. Errors are S3's `<Error>` with the codes uploaders act on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftstore_storage::CompletedPart;
use instant_xml::{FromXml, ToXml};

use crate::error::Error;

const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

#[derive(Debug, ToXml)]
#[xml(ns("http://s3.amazonaws.com/doc/2006-03-01/"), rename = "InitiateMultipartUploadResult")]
pub struct Initiated {
    #[xml(rename = "Bucket")]
    pub bucket: String,
    #[xml(rename = "Key")]
    pub key: String,
    #[xml(rename = "UploadId")]
    pub upload_id: String,
}

#[derive(Debug, ToXml)]
#[xml(ns("http://s3.amazonaws.com/doc/2006-03-01/"), rename = "ListPartsResult")]
pub struct Listed {
    #[xml(rename = "Bucket")]
    pub bucket: String,
    #[xml(rename = "Key")]
    pub key: String,
    #[xml(rename = "UploadId")]
    pub upload_id: String,
    #[xml(rename = "IsTruncated")]
    pub truncated: bool,
    pub parts: Vec<ListedPart>,
}

#[derive(Debug, ToXml)]
#[xml(ns("http://s3.amazonaws.com/doc/2006-03-01/"), rename = "Part")]
pub struct ListedPart {
    #[xml(rename = "PartNumber")]
    pub number: u32,
    #[xml(rename = "LastModified")]
    pub last_modified: String,
    #[xml(rename = "ETag")]
    pub etag: String,
    #[xml(rename = "Size")]
    pub size: u64,
}

#[derive(Debug, FromXml)]
#[xml(rename = "CompleteMultipartUpload")]
struct Completion {
    parts: Vec<CompletionPart>,
}

#[derive(Debug, FromXml)]
#[xml(rename = "Part")]
struct CompletionPart {
    #[xml(rename = "PartNumber")]
    number: u32,
    #[xml(rename = "ETag")]
    etag: String,
}

#[derive(Debug, ToXml)]
#[xml(ns("http://s3.amazonaws.com/doc/2006-03-01/"), rename = "CompleteMultipartUploadResult")]
pub struct Completed {
    #[xml(rename = "Location")]
    pub location: String,
    #[xml(rename = "Bucket")]
    pub bucket: String,
    #[xml(rename = "Key")]
    pub key: String,
    #[xml(rename = "ETag")]
    pub etag: String,
}

#[derive(Debug, ToXml)]
#[xml(rename = "Error")]
struct ErrorXml {
    #[xml(rename = "Code")]
    code: String,
    #[xml(rename = "Message")]
    message: String,
}

/// An XML answer.
pub fn xml(status: StatusCode, body: &impl ToXml) -> Response {
    match instant_xml::to_string(body) {
        Ok(text) => {
            let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{text}");
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"))], body).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to write an XML answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An error as S3 writes it, with the codes uploaders act on: an expired URL says "Request has expired", so that
/// they sign the request again.
pub fn error(error: Error) -> Response {
    let status = match &error {
        // S3 answers a wrong part list with 400, and uploaders expect its statuses here.
        Error::InvalidParts(_) => StatusCode::BAD_REQUEST,
        _ => error.status(),
    };
    if status.is_server_error() {
        tracing::error!(error = %error.chain(), "signed request failed");
    }
    let code = match &error {
        Error::SignatureRejected(_) | Error::Unauthenticated => "AccessDenied",
        Error::UploadNotFound(_) => "NoSuchUpload",
        Error::InvalidParts(_) => "InvalidPart",
        Error::UploadTooLarge(_) => "EntityTooLarge",
        Error::BucketNotFound(_) => "NoSuchBucket",
        Error::ObjectNotFound(_) => "NoSuchKey",
        Error::StorageUnavailable { .. } | Error::StorageTimeout { .. } => "ServiceUnavailable",
        _ if status.is_server_error() => "InternalError",
        _ => "InvalidRequest",
    };
    let message = match &error {
        Error::SignatureRejected(message) if message.contains("expired") => "Request has expired".to_owned(),
        other => other.to_string(),
    };
    xml(status, &ErrorXml { code: code.to_owned(), message })
}

/// The parts of a `CompleteMultipartUpload` body, with or without S3's namespace.
pub fn parse_completion(bytes: &[u8]) -> Result<Vec<CompletedPart>, Error> {
    // S3's own clients write the namespace; browser uploaders do not. Either reads the same.
    let text = String::from_utf8_lossy(bytes).replace(&format!(" xmlns=\"{NS}\""), "");
    let start = text.find("<CompleteMultipartUpload").unwrap_or(0);
    let completion: Completion = instant_xml::from_str(&text[start..])
        .map_err(|e| Error::InvalidRequest(format!("the body is not a CompleteMultipartUpload: {e}")))?;
    Ok(completion.parts.into_iter().map(|p| CompletedPart { number: p.number, etag: p.etag }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_are_read_with_or_without_the_namespace() {
        let plain = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>\
                     <Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>";
        let parts = parse_completion(plain.as_bytes()).expect("parsed");
        assert_eq!(
            parts,
            [CompletedPart { number: 1, etag: "a".into() }, CompletedPart { number: 2, etag: "\"b\"".into() }]
        );
        let spaced = format!(
            "<?xml version=\"1.0\"?>\n<CompleteMultipartUpload xmlns=\"{NS}\">\n  <Part><PartNumber>3</PartNumber><ETag>c</ETag></Part>\n</CompleteMultipartUpload>"
        );
        assert_eq!(parse_completion(spaced.as_bytes()).expect("parsed").len(), 1);
        assert!(parse_completion(b"<Other/>").is_err());
    }
}

//! The store's answers in the shared terms: SDK errors as [`Error`]s, the SDK's timestamps as `OffsetDateTime`.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use time::OffsetDateTime;

use crate::error::BoxError;
use crate::{BucketName, Error, ObjectKey};

/// Puts an SDK error in the shared terms: missing things, refused credentials, an unreachable store, or other.
pub(super) fn sdk_error<E>(
    operation: &str,
    bucket: &BucketName,
    key: Option<&ObjectKey>,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target = match key {
        Some(key) => format!("{bucket}/{key}"),
        None => bucket.to_string(),
    };
    let status = error.raw_response().map(|response| response.status().as_u16());
    // HEAD answers have no body, hence no code: the status stands in for it.
    let code = match (error.code(), status) {
        (Some(code), _) => code.to_owned(),
        (None, Some(status)) => format!("HTTP {status}"),
        (None, None) => String::new(),
    };
    let boxed = || -> Option<BoxError> { Some(Box::new(DisplayError(format!("{error:?}")))) };
    match &error {
        SdkError::TimeoutError(_) => Error::unavailable(format!("S3 {operation} on {target} timed out"), boxed()),
        SdkError::DispatchFailure(_) => {
            Error::unavailable(format!("S3 {operation} on {target}: cannot reach the store"), boxed())
        }
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => match (code.as_str(), status) {
            ("NoSuchBucket", _) => Error::BucketNotFound { bucket: bucket.to_string() },
            ("NoSuchUpload", _) => Error::UploadNotFound { upload_id: String::new() },
            ("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall", _) => Error::InvalidParts {
                message: format!("the store refused the list of parts ({code}): {}", error.message().unwrap_or("")),
            },
            ("NoSuchKey" | "NotFound", _) | (_, Some(404)) => match key {
                Some(key) => Error::NotFound { bucket: bucket.to_string(), key: key.to_string() },
                None => Error::BucketNotFound { bucket: bucket.to_string() },
            },
            (
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "AllAccessDisabled",
                _,
            )
            | (_, Some(401 | 403)) => {
                Error::AccessDenied { message: format!("S3 {operation} on {target} answered {code}") }
            }
            ("PreconditionFailed", _) | (_, Some(412)) => Error::PreconditionFailed {
                message: format!("S3 {operation} on {target}: a precondition did not hold"),
            },
            (_, Some(500 | 502 | 503 | 504)) => Error::unavailable(
                format!("S3 {operation} on {target} answered {code} (store busy or failing)"),
                boxed(),
            ),
            _ => Error::Other { message: format!("S3 {operation} on {target} failed with {code}"), source: boxed() },
        },
        _ => Error::Other { message: format!("S3 {operation} on {target} failed"), source: boxed() },
    }
}

/// An SDK error flattened to its debug text, which holds the store's code, message and request id.
#[derive(Debug)]
struct DisplayError(String);

impl std::fmt::Display for DisplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DisplayError {}

/// A time the store gave, to the second; the epoch when it gave none.
pub(super) fn timestamp(at: Option<&aws_sdk_s3::primitives::DateTime>) -> OffsetDateTime {
    at.and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

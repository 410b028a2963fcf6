//! The HTTP adapter of [`Error`]: status codes, the JSON error body, and the JSON request extractor whose
//! failures become `INVALID_REQUEST` instead of axum's plain-text rejections.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use draftstore_api::ErrorBody;
use serde::de::DeserializeOwned;

use crate::error::Error;

impl Error {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::InvalidObjectName(_) | Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::UploadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UploadRejected(_)
            | Self::ContentTypeMismatch(_)
            | Self::ImageTooLarge(_)
            | Self::ImageUnreadable(_)
            | Self::UploadInfected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ObjectAlreadyExists(_)
            | Self::NameTaken(_)
            | Self::DraftChanged(_)
            | Self::InvalidParts(_)
            | Self::IdempotencyKeyReused(_) => StatusCode::CONFLICT,
            Self::InSet { error, .. } => error.status(),
            Self::ObjectNotFound(_) | Self::BucketNotFound(_) | Self::UploadNotFound(_) | Self::VariantNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InsufficientStorage { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Self::SignatureRejected(_) | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BodyStalled(_) => StatusCode::REQUEST_TIMEOUT,
            Self::StorageUnavailable { .. }
            | Self::StorageTimeout { .. }
            | Self::HookUnavailable(_)
            | Self::ScannerUnavailable(_)
            | Self::ServerBusy
            | Self::UploadsBusy(_)
            | Self::ImagesBusy(_)
            | Self::AppendsBusy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::StorageAccessDenied { .. } | Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as a response with the given status, logging server-side failures with their cause chain.
    pub(crate) fn response_with(&self, status: StatusCode) -> Response {
        if status.is_server_error() {
            tracing::error!(error = %self.chain(), error_type = self.error_type().as_str(), "request failed");
        }
        let body = ErrorBody { success: false, error_type: self.error_type(), error_message: self.to_string() };
        let mut response = (status, Json(body)).into_response();
        match self {
            Self::RateLimited { retry_after } => {
                let seconds = crate::error::retry_after_seconds(*retry_after);
                response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            }
            // A connection on the probe reserve is closed after its answer: the client tries again on a new one.
            Self::ServerBusy | Self::UploadsBusy(_) | Self::ImagesBusy(_) | Self::AppendsBusy(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, 1.into());
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.response_with(self.status())
    }
}

/// A JSON request body. The content type must be JSON; an empty body reads as `{}`. Anything that does not parse
/// into `T` is a 400 `INVALID_REQUEST` naming the problem.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|essence| {
                let essence = essence.trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| Error::InvalidRequest(rejection.body_text()))?;
        // No body at all is no fields; blanks alone are not JSON.
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        if bytes != b"{}" && is_json != Some(true) {
            return Err(Error::InvalidRequest("expected a JSON body with Content-Type: application/json".to_owned()));
        }
        // serde reads a struct from an array too; the API takes objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Error::InvalidRequest("expected a JSON object".to_owned()));
        }
        serde_json::from_slice(bytes).map(ApiJson).map_err(|e| Error::InvalidRequest(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use draftstore_storage as storage;

    async fn status_and_body(error: Error) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn each_error_has_its_status_and_stable_code() {
        let unavailable = || storage::Error::unavailable("down", None);
        let cases = [
            (Error::InvalidObjectName("x".into()), 400, "INVALID_OBJECT_NAME"),
            (Error::InvalidRequest("x".into()), 400, "INVALID_REQUEST"),
            (Error::ObjectNotFound("x".into()), 404, "OBJECT_NOT_FOUND"),
            (Error::BucketNotFound("x".into()), 404, "BUCKET_NOT_FOUND"),
            (Error::SignatureRejected("x".into()), 403, "ACCESS_DENIED"),
            (
                Error::StorageAccessDenied {
                    operation: "copy",
                    source: storage::Error::AccessDenied { message: "InvalidAccessKeyId".into() },
                },
                500,
                "ACCESS_DENIED",
            ),
            (Error::StorageUnavailable { operation: "copy", source: unavailable() }, 503, "NETWORK_ERROR"),
            (
                Error::StorageTimeout { operation: "copy", after: std::time::Duration::from_secs(3) },
                503,
                "NETWORK_ERROR",
            ),
            (
                Error::Internal { operation: "copy", source: storage::Error::other("x", std::io::Error::other("y")) },
                500,
                "INTERNAL_ERROR",
            ),
        ];
        for (error, status, code) in cases {
            let (got_status, body) = status_and_body(error).await;
            assert_eq!((got_status.as_u16(), body["error_type"].as_str()), (status, Some(code)));
            assert_eq!(body["success"], serde_json::json!(false));
        }
    }

    #[tokio::test]
    async fn refused_credentials_say_so_without_internal_details() {
        let error = Error::StorageAccessDenied {
            operation: "move the draft to the main bucket",
            source: storage::Error::AccessDenied { message: "S3 CopyObject answered InvalidAccessKeyId".into() },
        };
        let (_, body) = status_and_body(error).await;
        let message = body["error_message"].as_str().expect("message");
        assert!(message.contains("the store refused DraftStore's credentials"), "{message}");
        assert!(!message.contains("InvalidAccessKeyId"), "{message}");
    }
}

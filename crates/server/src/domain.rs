//! Domain values shared by the REST and gRPC adapters.

use serde::{Deserialize, Serialize};

pub use draftstore_storage::{ContentType, ObjectKey as ObjectName};

use crate::error::Error;

/// Parses an object name from a request: the one rule both APIs apply.
pub fn parse_object_name(name: &str) -> Result<ObjectName, Error> {
    ObjectName::parse(name).map_err(|e| Error::InvalidObjectName(e.to_string()))
}

/// Parses an optional content type from a request.
pub fn parse_content_type(value: Option<&str>) -> Result<Option<ContentType>, Error> {
    value
        .map(|value| ContentType::parse(value).map_err(|e| Error::InvalidRequest(format!("content_type: {e}"))))
        .transpose()
}

/// Which of the two buckets an object is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Uploaded, not yet confirmed.
    Draft,
    /// Confirmed.
    Main,
}

impl Stage {
    /// The stage as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Main => "main",
        }
    }
}

/// Stable error codes clients branch on: the original's `ErrorType` values without their prefix, plus
/// `INVALID_REQUEST` for requests that are not the expected JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorType {
    BucketNotFound,
    ObjectNotFound,
    AccessDenied,
    NetworkError,
    InvalidObjectName,
    InternalError,
    InvalidRequest,
}

impl ErrorType {
    /// The code as it appears in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BucketNotFound => "BUCKET_NOT_FOUND",
            Self::ObjectNotFound => "OBJECT_NOT_FOUND",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::NetworkError => "NETWORK_ERROR",
            Self::InvalidObjectName => "INVALID_OBJECT_NAME",
            Self::InternalError => "INTERNAL_ERROR",
            Self::InvalidRequest => "INVALID_REQUEST",
        }
    }
}

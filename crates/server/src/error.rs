//! The service's one error type. Exactly two adapters turn it into responses: HTTP (`http::error`) and gRPC
//! (`From<Error> for tonic::Status` in `grpc`). Both match exhaustively, so a new variant fails the build until it
//! is mapped.

use std::time::Duration;

use draftstore_client::api::ErrorType;
use draftstore_storage as storage;

/// Everything a DraftStore request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object name breaks the naming rules.
    #[error("invalid object name: {0}")]
    InvalidObjectName(String),

    /// The request is not the expected JSON, or a field other than the object name is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A declared or actual upload size above MAX_UPLOAD_SIZE.
    #[error("upload too large: {0}")]
    UploadTooLarge(String),

    /// A content type outside ALLOWED_CONTENT_TYPES.
    #[error("unsupported content type: {0}")]
    UnsupportedContentType(String),

    /// The draft fails a check at confirm and was deleted.
    #[error("upload rejected: {0}")]
    UploadRejected(String),

    /// The draft's bytes are not what its declared content type says (or are a type not allowed); it was deleted.
    #[error("content type mismatch: {0}")]
    ContentTypeMismatch(String),

    /// An image draft whose header announces more pixels than MAX_IMAGE_PIXELS; it was deleted.
    #[error("image too large: {0}")]
    ImageTooLarge(String),

    /// An image draft that does not decode, or not within IMAGE_TIMEOUT; it was deleted.
    #[error("the image is unreadable: {0}")]
    ImageUnreadable(String),

    /// Resumable appends in flight hold all the memory they may; nothing of this one was kept.
    #[error("the server holds as much of resumable uploads in memory as it may ({0}); try again")]
    AppendsBusy(String),

    /// No image worker came free within IMAGE_TIMEOUT; the draft is kept.
    #[error("the image pipeline is busy ({0}); the draft is kept, try again")]
    ImagesBusy(String),

    /// A download of an image variant the object does not have.
    #[error("{0}")]
    VariantNotFound(String),

    /// The virus scanner found a signature in the draft; it was deleted.
    #[error("the upload is infected: the virus scanner found {0}")]
    UploadInfected(String),

    /// The virus scanner could not give a verdict (unreachable, too slow, failing); the draft is kept.
    #[error("the virus scanner gave no verdict ({0}); the draft is kept, try again")]
    ScannerUnavailable(String),

    /// Confirm without overwrite, and the main object exists.
    #[error("object '{0}' already exists; confirm with overwrite to replace it")]
    ObjectAlreadyExists(String),

    /// A set's final name is taken: a set never replaces an object.
    #[error("object '{0}' already exists; a set never replaces an object")]
    NameTaken(String),

    /// A set's idempotency key came again with other drafts.
    #[error("idempotency_key '{0}' was used for another set of drafts; use a new key")]
    IdempotencyKeyReused(String),

    /// One draft of a set failed; nothing of the set was confirmed.
    #[error("draft '{name}' of the set: {error}")]
    InSet { name: String, error: Box<Error> },

    /// The draft changed while being confirmed.
    #[error("the draft changed during the confirm: {0}")]
    DraftChanged(String),

    /// No multipart upload of this id exists for the caller's object.
    #[error("no multipart upload '{0}' for this object (unknown, completed, aborted, or started for another name)")]
    UploadNotFound(String),

    /// The parts listed to complete a multipart upload do not match the uploaded ones; the parts are kept.
    #[error("the list of parts is wrong: {0}")]
    InvalidParts(String),

    /// Neither the draft nor (where it applies) the confirmed object exists.
    #[error("object '{0}' not found")]
    ObjectNotFound(String),

    /// The bucket does not exist.
    #[error("bucket '{0}' not found")]
    BucketNotFound(String),

    /// The caller sent more requests than RATE_LIMIT allows; it may try again after `retry_after`.
    #[error("too many requests: try again in {} s", retry_after_seconds(*.retry_after))]
    RateLimited { retry_after: Duration },

    /// Missing or invalid credentials; nothing else is revealed.
    #[error("missing or invalid credentials")]
    Unauthenticated,

    /// An operator call by a caller the operator did not name (ADMIN_TENANTS).
    #[error("{0}")]
    Forbidden(String),

    /// A request to a local signed URL whose signature is missing, altered or expired.
    #[error("{0}")]
    SignatureRejected(String),

    /// The store refused DraftStore's own credentials: a configuration problem, not the client's.
    #[error("the store refused DraftStore's credentials while trying to {operation}")]
    StorageAccessDenied { operation: &'static str, source: storage::Error },

    /// The confirm hook did not decide (timed out, unreachable, failed); the draft is kept and confirm may be retried.
    #[error("the confirm hook gave no decision ({0}); the draft is kept, try again")]
    HookUnavailable(String),

    /// A request body sent nothing for BODY_IDLE_TIMEOUT, or less than BODY_MIN_RATE; what it had sent is discarded.
    #[error("{0}")]
    BodyStalled(String),

    /// Every connection the server takes is open; only the probes are answered.
    #[error("the server has too many open connections; try again")]
    ServerBusy,

    /// MAX_CONCURRENT_UPLOADS uploads to local signed URLs are being received; nothing of this one was written.
    #[error("the server is receiving as many uploads as it takes ({0}); try again")]
    UploadsBusy(usize),

    /// The store could not be reached.
    #[error("storage is unavailable: failed to {operation}")]
    StorageUnavailable { operation: &'static str, source: storage::Error },

    /// The store has no room left; nothing was stored.
    #[error("the store is out of space: failed to {operation}")]
    InsufficientStorage { operation: &'static str, source: storage::Error },

    /// The store did not answer within STORAGE_TIMEOUT.
    #[error("storage did not answer within {} s while trying to {operation}", after.as_secs())]
    StorageTimeout { operation: &'static str, after: Duration },

    /// Anything else: a bug or an unexpected store answer. Details go to the log, not to the client.
    #[error("failed to {operation}")]
    Internal { operation: &'static str, source: storage::Error },
}

/// Whole seconds to wait, rounded up and at least 1: what `Retry-After` says.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

/// Result of a service call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Turns a storage error met while doing `operation` into the service's terms.
    pub fn from_storage(operation: &'static str, error: storage::Error) -> Self {
        match error {
            storage::Error::NotFound { key, .. } => Self::ObjectNotFound(key),
            storage::Error::BucketNotFound { bucket } => Self::BucketNotFound(bucket),
            storage::Error::UploadNotFound { upload_id } => Self::UploadNotFound(upload_id),
            storage::Error::InvalidParts { message } => Self::InvalidParts(message),
            storage::Error::InvalidKey { key, reason } => {
                Self::InvalidObjectName(format!("'{key}' cannot be stored: {reason}"))
            }
            storage::Error::AlreadyExists { key, .. } => Self::ObjectAlreadyExists(key),
            storage::Error::PreconditionFailed { message } => Self::DraftChanged(message),
            storage::Error::TooLarge { limit } => Self::UploadTooLarge(format!("the limit is {limit} bytes")),
            storage::Error::ChecksumMismatch => {
                Self::InvalidRequest("the body does not match its x-amz-checksum-sha256".to_owned())
            }
            error @ storage::Error::AccessDenied { .. } => Self::StorageAccessDenied { operation, source: error },
            error @ storage::Error::Unavailable { .. } => Self::StorageUnavailable { operation, source: error },
            error @ storage::Error::InsufficientStorage { .. } => {
                Self::InsufficientStorage { operation, source: error }
            }
            error @ storage::Error::Other { .. } => Self::Internal { operation, source: error },
        }
    }

    /// The stable code clients branch on.
    pub fn error_type(&self) -> ErrorType {
        match self {
            Self::InvalidObjectName(_) => ErrorType::InvalidObjectName,
            Self::InvalidRequest(_) => ErrorType::InvalidRequest,
            Self::UploadTooLarge(_) => ErrorType::UploadTooLarge,
            Self::UnsupportedContentType(_) => ErrorType::UnsupportedContentType,
            Self::UploadRejected(_) => ErrorType::UploadRejected,
            Self::ContentTypeMismatch(_) => ErrorType::ContentTypeMismatch,
            Self::ImageTooLarge(_) => ErrorType::ImageTooLarge,
            Self::ImageUnreadable(_) => ErrorType::ImageUnreadable,
            Self::VariantNotFound(_) => ErrorType::VariantNotFound,
            Self::UploadInfected(_) => ErrorType::UploadInfected,
            Self::ScannerUnavailable(_) => ErrorType::ScannerUnavailable,
            Self::ObjectAlreadyExists(_) => ErrorType::ObjectAlreadyExists,
            Self::IdempotencyKeyReused(_) => ErrorType::IdempotencyKeyReused,
            Self::NameTaken(_) => ErrorType::ObjectAlreadyExists,
            Self::InSet { error, .. } => error.error_type(),
            Self::DraftChanged(_) => ErrorType::DraftChanged,
            Self::ObjectNotFound(_) => ErrorType::ObjectNotFound,
            Self::UploadNotFound(_) => ErrorType::UploadNotFound,
            Self::InvalidParts(_) => ErrorType::InvalidParts,
            Self::BucketNotFound(_) => ErrorType::BucketNotFound,
            Self::RateLimited { .. } => ErrorType::RateLimited,
            Self::InsufficientStorage { .. } => ErrorType::InsufficientStorage,
            Self::Unauthenticated
            | Self::Forbidden(_)
            | Self::SignatureRejected(_)
            | Self::StorageAccessDenied { .. } => ErrorType::AccessDenied,
            Self::StorageUnavailable { .. } | Self::StorageTimeout { .. } => ErrorType::NetworkError,
            Self::Internal { .. } => ErrorType::InternalError,
            Self::HookUnavailable(_) => ErrorType::HookUnavailable,
            Self::BodyStalled(_) => ErrorType::RequestTimeout,
            Self::ServerBusy | Self::UploadsBusy(_) | Self::ImagesBusy(_) | Self::AppendsBusy(_) => {
                ErrorType::ServerBusy
            }
        }
    }

    /// The error with its whole cause chain, for the log.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }
}

use std::error::Error as StdError;

/// The boxed cause behind a storage error, kept for the logs.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Result of a storage call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a storage call, in terms every backend shares.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist in the bucket.
    #[error("object '{key}' not found in bucket '{bucket}'")]
    NotFound { bucket: String, key: String },

    /// The bucket does not exist.
    #[error("bucket '{bucket}' not found")]
    BucketNotFound { bucket: String },

    /// No multipart upload of this id exists for this object (unknown, completed, aborted, or another object's).
    #[error("no multipart upload '{upload_id}' for this object")]
    UploadNotFound { upload_id: String },

    /// The parts listed to complete a multipart upload do not match what was uploaded; the parts are kept.
    #[error("{message}")]
    InvalidParts { message: String },

    /// The key is valid for DraftStore but this backend cannot hold it (for example it collides with a folder).
    #[error("object name '{key}' cannot be stored: {reason}")]
    InvalidKey { key: String, reason: String },

    /// The destination of a move without overwrite exists; nothing changed.
    #[error("object '{key}' already exists in bucket '{bucket}'")]
    AlreadyExists { bucket: String, key: String },

    /// The source of a move changed since it was checked; nothing changed.
    #[error("{message}")]
    PreconditionFailed { message: String },

    /// An upload was larger than allowed; nothing was stored.
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },

    /// An upload's body did not match its declared SHA-256; nothing was stored.
    #[error("the upload does not match its x-amz-checksum-sha256")]
    ChecksumMismatch,

    /// The store has no room left (a full filesystem or an exhausted quota); what was staged was removed.
    #[error("{message}: the store is out of space")]
    InsufficientStorage {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The store refused our credentials or signature.
    #[error("the store refused the credentials: {message}")]
    AccessDenied { message: String },

    /// The store could not be reached, or did not answer in time. Retrying later may succeed.
    #[error("storage unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },

    /// Anything else; the message names the operation, the source says why.
    #[error("{message}")]
    Other {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// Wraps an I/O or client error; a full filesystem or quota anywhere in its causes makes it
    /// [`Error::InsufficientStorage`].
    pub fn other(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        let source = source.into();
        if is_out_of_space(source.as_ref()) {
            return Self::InsufficientStorage { message: message.into(), source: Some(source) };
        }
        Self::Other { message: message.into(), source: Some(source) }
    }

    /// A store that could not be reached or did not answer in time.
    pub fn unavailable(message: impl Into<String>, source: Option<BoxError>) -> Self {
        Self::Unavailable { message: message.into(), source }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Whether an error or one of its causes is ENOSPC or EDQUOT.
fn is_out_of_space(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded) {
                return true;
            }
            // An I/O error wrapping another answers that one's source, not the one itself: look inside.
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_filesystem_anywhere_in_the_causes_is_insufficient_storage() {
        let full = std::io::Error::from_raw_os_error(28); // ENOSPC
        assert!(matches!(Error::other("write", full), Error::InsufficientStorage { .. }));
        let wrapped = std::io::Error::other(std::io::Error::from_raw_os_error(122)); // EDQUOT
        assert!(matches!(Error::other("write", wrapped), Error::InsufficientStorage { .. }));
        assert!(matches!(Error::other("write", std::io::Error::other("no")), Error::Other { .. }));
    }
}

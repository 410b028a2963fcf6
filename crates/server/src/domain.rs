//! Domain values shared by the REST and gRPC adapters.

pub use draftstore_client::api::{Disposition, ErrorType, MAX_METADATA_BYTES, MAX_SET_DRAFTS, Metadata, Stage};
pub use draftstore_storage::multipart::MAX_PART_NUMBER;
pub use draftstore_storage::{Checksum, ContentType, ObjectKey, UploadId};

use crate::error::Error;

/// A time as the APIs and the events write it: RFC 3339, UTC, whole seconds.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).unwrap_or_default()
}

/// An object's name as a caller says it, without the tenant: what the APIs take and answer. The store holds
/// [`ObjectKey`]s instead, and only the caller turns one into the other ([`Caller::key`](crate::auth::Caller::key),
/// [`Caller::name_of`](crate::auth::Caller::name_of)), so a name handed to the store, or a key handed back to a
/// client, does not compile:
///
/// ```compile_fail
/// # use draftstore::domain::ObjectName;
/// # use draftstore::auth::Caller;
/// let name = ObjectName::parse("docs/a.txt").unwrap();
/// let key = Caller::anonymous().key(&name).unwrap();
/// Caller::anonymous().key(&key); // a key is not a name
/// ```
///
/// ```compile_fail
/// # use draftstore::domain::ObjectName;
/// let name = ObjectName::parse("docs/a.txt").unwrap();
/// let _: &draftstore_storage::ObjectKey = &name; // a name is not a key
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName(String);

impl ObjectName {
    /// Parses a name with the rules of a store key (the tenant prefix is checked when the key is made).
    pub fn parse(name: &str) -> Result<Self, draftstore_storage::InvalidName> {
        ObjectKey::parse(name).map(|_| Self(name.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses an object name from a request: the one rule both APIs apply.
pub fn parse_object_name(name: &str) -> Result<ObjectName, Error> {
    ObjectName::parse(name).map_err(|e| Error::InvalidObjectName(e.to_string()))
}

/// Parses a multipart upload id from a request.
pub fn parse_upload_id(value: &str) -> Result<UploadId, Error> {
    UploadId::parse(value).map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// Parses a part number from a request: 1 to 10,000.
pub fn parse_part_number(value: u64) -> Result<u32, Error> {
    u32::try_from(value)
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| Error::InvalidRequest(format!("part number {value} is out of range (1 to {MAX_PART_NUMBER})")))
}

/// Longest ETag a part list may give; stores' are 34 characters or so.
pub const MAX_ETAG_LEN: usize = 128;

/// Parses a part's ETag from a request.
pub fn parse_etag(value: String) -> Result<String, Error> {
    if (1..=MAX_ETAG_LEN).contains(&value.len()) {
        Ok(value)
    } else {
        Err(Error::InvalidRequest(format!("an etag is 1 to {MAX_ETAG_LEN} bytes long")))
    }
}

/// Parses an optional content type from a request.
pub fn parse_content_type(value: Option<&str>) -> Result<Option<ContentType>, Error> {
    value
        .map(|value| ContentType::parse(value).map_err(|e| Error::InvalidRequest(format!("content_type: {e}"))))
        .transpose()
}

/// Parses an optional base64 SHA-256 from a request.
pub fn parse_checksum(value: Option<&str>) -> Result<Option<Checksum>, Error> {
    value.map(|value| Checksum::parse(value).map_err(|e| Error::InvalidRequest(e.to_string()))).transpose()
}

/// Checks user metadata from a request: names of lowercase letters, digits and `-` (1 to 64, not DraftStore's own
/// `draftstore-`), values without control characters, at most [`MAX_METADATA_BYTES`] bytes in all as S3 keeps them
/// (a byte outside printable ASCII, or `%`, takes three).
pub fn parse_metadata(metadata: Option<Metadata>) -> Result<Option<Metadata>, Error> {
    let Some(metadata) = metadata else { return Ok(None) };
    let invalid = |why: String| Err(Error::InvalidRequest(format!("metadata: {why}")));
    let mut total = 0;
    for (name, value) in &metadata {
        let name_ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !name_ok {
            return invalid(format!("name {name:?} is not 1 to 64 lowercase letters, digits and '-'"));
        }
        if name.starts_with("draftstore-") {
            return invalid(format!("name {name:?}: names starting with 'draftstore-' are DraftStore's own"));
        }
        if value.chars().any(|c| c.is_ascii_control() || c == '\u{7f}') {
            return invalid(format!("the value of {name:?} holds a control character"));
        }
        total += name.len() + stored_len(value);
    }
    if total > MAX_METADATA_BYTES {
        return invalid(format!("{total} bytes of names and values; at most {MAX_METADATA_BYTES}"));
    }
    Ok(Some(metadata))
}

/// A metadata value's length as S3 keeps it: printable ASCII as it is, every other byte (and `%`) percent-encoded.
fn stored_len(value: &str) -> usize {
    value.bytes().map(|b| if (0x20..0x7f).contains(&b) && b != b'%' { 1 } else { 3 }).sum()
}

/// Checks a download's file name: 1 to 255 characters, no control character, `/` or `\`.
pub fn parse_filename(filename: Option<&str>) -> Result<Option<String>, Error> {
    let Some(filename) = filename else { return Ok(None) };
    let count = filename.chars().count();
    if !(1..=255).contains(&count) || filename.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(Error::InvalidRequest(
            "filename: 1 to 255 characters, no control character, '/' or '\\'".to_owned(),
        ));
    }
    Ok(Some(filename.to_owned()))
}

/// An idempotency key, as a request gives it: 1 to 128 letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, Error> {
        let ok = (1..=128).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Error::InvalidRequest("idempotency_key: 1 to 128 letters, digits, '-' and '_'".to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A content type pattern: `image/png`, `image/*` or `*/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    kind: String,
    /// `None`: any subtype.
    subtype: Option<String>,
}

impl MediaRange {
    /// Parses `type/subtype`, `type/*` or `*/*`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim().to_ascii_lowercase();
        if value == "*/*" {
            return Ok(Self { kind: "*".to_owned(), subtype: None });
        }
        let (kind, subtype) = value.split_once('/').ok_or("expected type/subtype or type/*")?;
        ContentType::parse(&format!("{kind}/{}", if subtype == "*" { "x" } else { subtype }))
            .map_err(|e| e.to_string())?;
        Ok(Self { kind: kind.to_owned(), subtype: (subtype != "*").then(|| subtype.to_owned()) })
    }

    fn matches(&self, content_type: &ContentType) -> bool {
        let essence = content_type.essence();
        let (kind, subtype) = essence.split_once('/').unwrap_or((&essence, ""));
        (self.kind == "*" || self.kind == kind) && self.subtype.as_deref().is_none_or(|s| s == subtype)
    }
}

/// Limits on uploads, checked before a URL is issued and signed into it.
#[derive(Debug, Clone, clap::Args)]
pub struct UploadLimits {
    /// Largest upload accepted, in bytes, up to 5 TiB (5497558138880): larger declared sizes are refused before a
    /// URL is issued. One PUT uploads at most 5 GiB; larger files use the multipart API.
    #[arg(
        long = "max-upload-size",
        env = "MAX_UPLOAD_SIZE",
        default_value = "5368709120",
        value_name = "BYTES",
        value_parser = crate::config::values::bytes(1, draftstore_storage::multipart::MAX_OBJECT_SIZE)
    )]
    pub max_size: u64,
    /// Content types uploads may have, comma-separated, with wildcards such as `image/*` [default: any].
    #[arg(
        long = "allowed-content-types",
        env = "ALLOWED_CONTENT_TYPES",
        value_name = "TYPES",
        value_parser = crate::config::media_ranges(),
        default_value = "",
        hide_default_value = true
    )]
    pub allowed_types: ::std::vec::Vec<MediaRange>,
}

impl UploadLimits {
    /// Refuses a declared size above the limit (413) or a content type outside the allowed ones (415); with a
    /// type restriction, an upload must declare its type.
    pub fn check(&self, content_type: Option<&ContentType>, content_length: Option<u64>) -> Result<(), Error> {
        if let Some(length) = content_length
            && length > self.max_size
        {
            return Err(Error::UploadTooLarge(format!(
                "content_length {length} is above the limit of {} bytes",
                self.max_size
            )));
        }
        if self.allowed_types.is_empty() {
            return Ok(());
        }
        match content_type {
            None => Err(Error::UnsupportedContentType(
                "content_type is required: only some content types are accepted".to_owned(),
            )),
            Some(content_type) if self.allowed_types.iter().any(|range| range.matches(content_type)) => Ok(()),
            Some(content_type) => {
                Err(Error::UnsupportedContentType(format!("content type '{}' is not accepted", content_type.essence())))
            }
        }
    }
}

/// Types a browser would run as active content in the page's origin: HTML, SVG, XML and scripts. Previews of
/// these are forced to download as attachments.
pub fn is_active_content(content_type: &ContentType) -> bool {
    let essence = content_type.essence();
    matches!(
        essence.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "text/ecmascript"
            | "application/ecmascript"
            | "multipart/x-mixed-replace"
    ) || essence.ends_with("+xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_values_and_size_are_checked() {
        let one = |name: &str, value: &str| Some(Metadata::from([(name.to_owned(), value.to_owned())]));
        assert!(parse_metadata(one("owner-id", "Café ☕ 42")).is_ok());
        assert!(parse_metadata(None).expect("none").is_none());
        for name in ["", "Owner", "a_b", "-a", "draftstore-set", &"a".repeat(65)] {
            assert!(parse_metadata(one(name, "x")).is_err(), "{name:?}");
        }
        assert!(parse_metadata(one("a", "line\nbreak")).is_err());
        assert!(parse_metadata(one("a", &"x".repeat(MAX_METADATA_BYTES - 1))).is_ok());
        assert!(parse_metadata(one("a", &"x".repeat(MAX_METADATA_BYTES))).is_err());
        assert!(parse_metadata(one("a", &"é".repeat(319))).is_ok(), "1 + 319 × 6 bytes");
        assert!(parse_metadata(one("a", &"%".repeat(640))).is_err(), "1 + 640 × 3 bytes");
    }

    #[test]
    fn filenames_and_idempotency_keys_are_checked() {
        assert!(parse_filename(Some("rapport d'été.pdf")).is_ok());
        for bad in ["", "a/b", "a\\b", "tab\t", &"é".repeat(256)] {
            assert!(parse_filename(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse("0b6f4a1c-2f1e-4a51-9d5e-4f6b1c2d3e4f").is_ok());
        for bad in ["", "a b", "a/b", &"k".repeat(129)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn ct(value: &str) -> ContentType {
        ContentType::parse(value).expect("valid")
    }

    #[test]
    fn limits_check_size_and_type_ranges() {
        let limits = UploadLimits {
            max_size: 100,
            allowed_types: vec![
                MediaRange::parse("image/*").expect("valid"),
                MediaRange::parse("application/pdf").expect("valid"),
            ],
        };
        assert!(limits.check(Some(&ct("image/png")), Some(100)).is_ok());
        assert!(limits.check(Some(&ct("Image/PNG; q=1")), None).is_ok());
        assert!(limits.check(Some(&ct("application/pdf")), None).is_ok());
        assert!(matches!(limits.check(Some(&ct("image/png")), Some(101)), Err(Error::UploadTooLarge(_))));
        assert!(matches!(limits.check(Some(&ct("text/html")), None), Err(Error::UnsupportedContentType(_))));
        assert!(matches!(limits.check(None, None), Err(Error::UnsupportedContentType(_))));
        let open = UploadLimits { max_size: 10, allowed_types: vec![] };
        assert!(open.check(None, None).is_ok());
        assert!(MediaRange::parse("*/*").expect("valid").matches(&ct("a/b")));
        assert!(MediaRange::parse("image").is_err());
    }

    #[test]
    fn active_content_is_recognised() {
        for active in
            ["text/html; charset=utf-8", "image/svg+xml", "application/atom+xml", "text/javascript", "TEXT/XML"]
        {
            assert!(is_active_content(&ct(active)), "{active}");
        }
        for inert in ["image/png", "application/pdf", "text/plain", "application/json", "video/mp4"] {
            assert!(!is_active_content(&ct(inert)), "{inert}");
        }
    }
}

//! Domain values shared by the REST and gRPC adapters.

pub use draftstore_api::{
    Disposition, ErrorType, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_METADATA_NAME, MAX_SET_DRAFTS,
    METADATA_VALUE_FORMS, Metadata, Stage,
};
pub use draftstore_storage::multipart::MAX_PART_NUMBER;
pub use draftstore_storage::{Checksum, ContentType, ObjectKey, UploadId};

use crate::error::Error;
use crate::images::VariantName;
use crate::setting;

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

/// Parses the name of an image variant from a request.
pub fn parse_variant(value: Option<&str>) -> Result<Option<VariantName>, Error> {
    value.map(|v| VariantName::parse(v).map_err(|e| Error::InvalidRequest(format!("variant: {e}")))).transpose()
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

/// Checks user metadata from a request: at most [`MAX_METADATA_ENTRIES`] entries, names of lowercase letters, digits
/// and `-` (1 to 64, not DraftStore's own `draftstore-`), values without control characters in one of the
/// [`METADATA_VALUE_FORMS`] (a length in characters for the characters they hold), exactly as the OpenAPI document
/// states them. Each entry then takes at most 320 bytes as S3 keeps them, and any valid map fits
/// [`MAX_METADATA_BYTES`].
pub fn parse_metadata(metadata: Option<Metadata>) -> Result<Option<Metadata>, Error> {
    let Some(metadata) = metadata else { return Ok(None) };
    let invalid = |why: String| Err(Error::InvalidRequest(format!("metadata: {why}")));
    if metadata.len() > MAX_METADATA_ENTRIES {
        return invalid(format!("{} entries; at most {MAX_METADATA_ENTRIES}", metadata.len()));
    }
    for (name, value) in &metadata {
        let name_ok = (1..=MAX_METADATA_NAME).contains(&name.len())
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
        let [ascii, narrow, any] = METADATA_VALUE_FORMS.map(|(_, max)| max);
        let length = value.chars().count();
        let fits = length <= any
            || (length <= narrow && value.chars().all(|c| c < '\u{800}'))
            || (length <= ascii && value.bytes().all(|b| b != b'%' && b.is_ascii()));
        if !fits {
            return invalid(format!(
                "the value of {name:?} is {length} characters long: at most {ascii} when all are printable ASCII \
                 other than '%', {narrow} when all are below U+0800, {any} otherwise"
            ));
        }
    }
    Ok(Some(metadata))
}

/// A metadata value's length as S3 keeps it: printable ASCII as it is, every other byte (and `%`) percent-encoded.
#[cfg(test)]
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
#[command(mut_args = setting::by_convention)]
pub struct UploadLimits {
    /// Largest upload accepted, in bytes, up to 5 TiB (5497558138880): larger declared sizes are refused before a
    /// URL is issued. One PUT uploads at most 5 GiB; larger files use the multipart API.
    #[arg(long = "max-upload-size", env = "MAX_UPLOAD_SIZE", default_value = "5368709120", value_name = "BYTES")]
    #[arg(value_parser = setting::bytes(1, draftstore_storage::multipart::MAX_OBJECT_SIZE))]
    pub max_size: u64,
    /// Content types uploads may have, comma-separated, with wildcards such as `image/*` [default: any].
    #[arg(long = "allowed-content-types", env = "ALLOWED_CONTENT_TYPES", value_name = "TYPES")]
    #[arg(value_parser = media_ranges())]
    pub allowed_types: ::std::vec::Vec<MediaRange>,
}

/// Media ranges such as `image/*`.
fn media_ranges() -> setting::Setting<Vec<MediaRange>> {
    setting::list(|range| MediaRange::parse(range).map_err(|e| setting::invalid(range, e)))
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

/// Types a browser would run as active content in the page's origin: HTML, SVG, XML and scripts, and the types that
/// say nothing (`unknown/unknown`, `application/unknown`, `*/*`), which a browser sniffs and may render as HTML.
/// Previews of these are forced to download as attachments.
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
            | "unknown/unknown"
            | "application/unknown"
            | "*/*"
    ) || essence.ends_with("+xml")
}

/// Raster images a browser shows inline.
const INLINE_IMAGES: [&str; 6] = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"];

/// The type a preview of `content_type` is served inline with, when it may be: raster images, PDF, audio and video
/// as their essence, and `text/plain; charset=utf-8` (a text of another or no charset is not, since a browser
/// guesses it); `None` for every other type, which is served as an attachment only.
pub fn inline_type(content_type: &ContentType) -> Option<ContentType> {
    if is_active_content(content_type) {
        return None;
    }
    let essence = content_type.essence();
    let media = essence.split_once('/').map_or("", |(media, _)| media);
    if INLINE_IMAGES.contains(&essence.as_str()) || essence == "application/pdf" || matches!(media, "audio" | "video") {
        return ContentType::parse(&essence).ok();
    }
    let utf8 = content_type.as_str().split(';').skip(1).any(|parameter| {
        parameter.split_once('=').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("charset") && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
    });
    (essence == "text/plain" && utf8).then(|| ContentType::parse("text/plain; charset=utf-8").ok()).flatten()
}

/// The type a preview of `content_type` is served inline with when `inline` is asked for: that of [`inline_type`],
/// and for plain text of no charset, `text/plain; charset=utf-8` (a browser shows it as text, never as a page; by
/// default such a text is an attachment, since its charset is not known).
pub fn inline_type_on_request(content_type: &ContentType) -> Option<ContentType> {
    let no_charset =
        !content_type.as_str().split(';').skip(1).any(|p| p.trim().to_ascii_lowercase().starts_with("charset"));
    inline_type(content_type).or_else(|| {
        (content_type.essence() == "text/plain" && no_charset)
            .then(|| ContentType::parse("text/plain; charset=utf-8").ok())
            .flatten()
    })
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
        // Each form up to its length, and not a character more.
        for (value, longest) in [("x", 256), ("é", 42), ("☕", 21), ("%", 42), ("😀", 21)] {
            assert!(parse_metadata(one("a", &value.repeat(longest))).is_ok(), "{value} × {longest}");
            assert!(parse_metadata(one("a", &value.repeat(longest + 1))).is_err(), "{value} × {}", longest + 1);
        }
        let entries = |count: usize| {
            Some((0..count).map(|i| (format!("{i}{}", "n".repeat(63)), "x".repeat(256))).collect::<Metadata>())
        };
        assert!(parse_metadata(entries(MAX_METADATA_ENTRIES)).is_ok());
        assert!(parse_metadata(entries(MAX_METADATA_ENTRIES + 1)).is_err());
    }

    #[test]
    fn the_largest_valid_metadata_fits_what_s3_keeps() {
        // The costliest value of each form: its longest, of its costliest character.
        for (value, longest) in [("x", 256), ("%", 42), ("\u{7ff}", 42), ("\u{10ffff}", 21)] {
            let value = value.repeat(longest);
            assert!(parse_metadata(Some(Metadata::from([("a".to_owned(), value.clone())]))).is_ok());
            assert!(MAX_METADATA_NAME + stored_len(&value) <= MAX_METADATA_BYTES / MAX_METADATA_ENTRIES, "{value}");
        }
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
        for unknown in ["unknown/unknown", "application/unknown", "Unknown/Unknown; x=1"] {
            assert!(is_active_content(&ct(unknown)), "{unknown}");
        }
    }

    #[test]
    fn only_a_short_list_is_served_inline_and_with_a_fixed_type() {
        let inline = |value: &str| inline_type(&ct(value)).map(|t| t.to_string());
        for (given, served) in [
            ("image/png", "image/png"),
            ("IMAGE/JPEG; q=1", "image/jpeg"),
            ("application/pdf", "application/pdf"),
            ("video/mp4", "video/mp4"),
            ("audio/ogg; codecs=opus", "audio/ogg"),
            ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
            ("text/plain;charset=\"UTF-8\"", "text/plain; charset=utf-8"),
        ] {
            assert_eq!(inline(given).as_deref(), Some(served), "{given}");
        }
        for attachment in [
            "text/plain",
            "text/plain; charset=iso-8859-1",
            "text/html; charset=utf-8",
            "image/svg+xml",
            "image/tiff",
            "application/json",
            "application/octet-stream",
            "unknown/unknown",
            "application/unknown",
            "video/x-foo+xml",
        ] {
            assert_eq!(inline(attachment), None, "{attachment}");
        }
        let on_request = |value: &str| inline_type_on_request(&ct(value)).map(|t| t.to_string());
        assert_eq!(on_request("text/plain").as_deref(), Some("text/plain; charset=utf-8"), "asked for, as UTF-8");
        assert_eq!(on_request("image/png").as_deref(), Some("image/png"));
        for attachment in ["text/plain; charset=iso-8859-1", "text/html", "unknown/unknown", "application/json"] {
            assert_eq!(on_request(attachment), None, "{attachment}");
        }
    }
}

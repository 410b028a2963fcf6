//! Validated names: what arrives from outside is parsed once into these types, and the rest of the code cannot hold
//! an invalid one.

use std::fmt;

/// Why a name was refused; the message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(String);

impl InvalidName {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Longest object key, in bytes (the S3 limit).
pub const MAX_KEY_LEN: usize = 1024;

/// An object key that is safe on every backend: UTF-8, 1 to 1024 bytes, no control characters, no backslash,
/// no leading `/`, no empty segment and no `.` or `..` segment. On the local backend such a key can only name a
/// path inside its bucket's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Parses a key, saying precisely what is wrong with a bad one.
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        if name.is_empty() {
            return Err(InvalidName::new("object name must not be empty"));
        }
        if name.len() > MAX_KEY_LEN {
            return Err(InvalidName::new(format!(
                "object name is {} bytes long; the limit is {MAX_KEY_LEN}",
                name.len()
            )));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(InvalidName::new(format!(
                "object name must not contain control characters (found U+{:04X})",
                u32::from(c)
            )));
        }
        if name.contains('\\') {
            return Err(InvalidName::new("object name must not contain a backslash"));
        }
        if name.starts_with('/') {
            return Err(InvalidName::new("object name must not start with '/'"));
        }
        for segment in name.split('/') {
            match segment {
                "" => {
                    return Err(InvalidName::new(
                        "object name must not contain an empty segment ('//' or a trailing '/')",
                    ));
                }
                "." | ".." => {
                    return Err(InvalidName::new("object name must not contain '.' or '..' segments"));
                }
                _ => {}
            }
        }
        Ok(Self(name.to_owned()))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments between `/`.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A bucket name that every S3-compatible store accepts: 3 to 63 characters of lowercase letters, digits, `-` and
/// `.`, starting and ending with a letter or digit, without `..` and not shaped like an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketName(String);

impl BucketName {
    /// Parses a bucket name.
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        if !(3..=63).contains(&name.len()) {
            return Err(InvalidName::new(format!(
                "bucket name must be 3 to 63 characters long, '{name}' has {}",
                name.len()
            )));
        }
        if let Some(c) =
            name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
        {
            return Err(InvalidName::new(format!(
                "bucket name may hold only lowercase letters, digits, '-' and '.', '{name}' has {c:?}"
            )));
        }
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
            return Err(InvalidName::new(format!("bucket name must start and end with a letter or digit: '{name}'")));
        }
        if name.contains("..") {
            return Err(InvalidName::new(format!("bucket name must not contain '..': '{name}'")));
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(InvalidName::new(format!("bucket name must not look like an IP address: '{name}'")));
        }
        Ok(Self(name.to_owned()))
    }

    /// The bucket name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest content type accepted, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// A media type such as `image/jpeg` or `text/plain; charset=utf-8`, safe to send as a header value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentType(String);

impl ContentType {
    /// The type given to objects uploaded without one.
    pub fn octet_stream() -> Self {
        Self("application/octet-stream".to_owned())
    }

    /// Parses a media type: `type/subtype` made of RFC 9110 token characters, optionally followed by parameters,
    /// all printable ASCII without a tab or a blank at either end. (A store signs the header as given, and clients
    /// and stores canonicalize tabs and outer blanks differently, so such a type could never be sent as signed.)
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let invalid = || InvalidName::new(format!("'{value}' is not a valid content type (expected type/subtype)"));
        if value.is_empty() || value.len() > MAX_CONTENT_TYPE_LEN {
            return Err(InvalidName::new(format!("content type must be 1 to {MAX_CONTENT_TYPE_LEN} characters long")));
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(InvalidName::new(format!(
                "'{}' is not a valid content type: printable ASCII only, no tab",
                value.escape_default()
            )));
        }
        if value.trim() != value {
            return Err(InvalidName::new(format!(
                "'{value}' is not a valid content type: it starts or ends with a blank"
            )));
        }
        let essence = value.split(';').next().unwrap_or_default().trim();
        let (kind, subtype) = essence.split_once('/').ok_or_else(invalid)?;
        let is_token =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
        if !is_token(kind) || !is_token(subtype) {
            return Err(invalid());
        }
        Ok(Self(value.to_owned()))
    }

    /// The media type as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `type/subtype` part, lowercased, without parameters.
    pub fn essence(&self) -> String {
        self.0.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest as S3's `x-amz-checksum-sha256` carries it: base64 of the 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum(String);

impl Checksum {
    /// Parses the base64 form; anything that is not 32 bytes of base64 is refused.
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        use base64::Engine;
        match base64::engine::general_purpose::STANDARD.decode(value) {
            Ok(bytes) if bytes.len() == 32 => Ok(Self(value.to_owned())),
            _ => Err(InvalidName::new("checksum_sha256 must be the base64 of a 32-byte SHA-256 digest")),
        }
    }

    /// The checksum of raw digest bytes.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        use base64::Engine;
        Self(base64::engine::general_purpose::STANDARD.encode(digest))
    }

    /// The base64 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest multipart upload id accepted, in bytes.
pub const MAX_UPLOAD_ID_LEN: usize = 1024;

/// The id a store gave a multipart upload: opaque, 1 to 1024 characters, letters, digits and `-._~`, starting with
/// a letter or digit (which covers the ids of AWS S3, MinIO, SeaweedFS and the local backend, and can never be a
/// path such as `..` or `a/b` that a store might resolve).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// Parses an upload id from a request.
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        if value.is_empty() || value.len() > MAX_UPLOAD_ID_LEN {
            return Err(InvalidName::new(format!("upload_id must be 1 to {MAX_UPLOAD_ID_LEN} characters long")));
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            || !value.as_bytes()[0].is_ascii_alphanumeric()
        {
            return Err(InvalidName::new(
                "upload_id may hold only letters, digits and -._~, and starts with a letter or digit",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_object_names_are_accepted() {
        for name in
            ["file.jpg", "a/b/c.txt", "ümlaut/日本.png", "with space", "a..b", ".hidden", "x%2Fy", &"a".repeat(1024)]
        {
            assert_eq!(ObjectKey::parse(name).map(|k| k.to_string()), Ok(name.to_owned()), "{name}");
        }
    }

    #[test]
    fn unsafe_object_names_are_refused() {
        let long = "a".repeat(1025);
        for name in [
            "",
            "/abs",
            "a//b",
            "a/",
            "./a",
            "a/./b",
            "../x",
            "a/../../x",
            "..",
            ".",
            "a\\b",
            "nul\0",
            "cr\r",
            "lf\n",
            "del\u{7f}",
            "c1\u{85}",
            long.as_str(),
        ] {
            assert!(ObjectKey::parse(name).is_err(), "{name:?} should be refused");
        }
    }

    #[test]
    fn bucket_names_follow_the_s3_rules() {
        for ok in ["main", "main-draft", "a.b-c", "abc", &"a".repeat(63)] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Main", "-main", "main-", "a..b", "192.168.1.1", "a_b", &"a".repeat(64)] {
            assert!(BucketName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksums_are_base64_of_32_bytes() {
        let digest = [7u8; 32];
        let checksum = Checksum::from_digest(&digest);
        assert_eq!(Checksum::parse(checksum.as_str()), Ok(checksum));
        for bad in ["", "not base64!", "AAAA", &"A".repeat(44)] {
            assert!(Checksum::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_types_must_be_media_types() {
        for ok in ["image/jpeg", "text/plain; charset=utf-8", "application/vnd.api+json"] {
            assert!(ContentType::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "jpeg", "image/", "/jpeg", "text/plain\r\nX-Evil: 1", "image/jpé", "a b/c"] {
            assert!(ContentType::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ContentType::parse("Text/HTML; charset=utf-8").map(|c| c.essence()), Ok("text/html".to_owned()));
    }
}

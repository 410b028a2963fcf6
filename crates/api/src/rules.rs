//! The rules of the API's values (names, types, checksums, metadata) as patterns and limits that the server
//! checks, the OpenAPI document states and the clients can check before sending.

use std::collections::BTreeMap;

/// A character an object name may hold anywhere: not a control character, not `\\`, not `/`.
macro_rules! name_char {
    () => {
        r"[^\x00-\x1f\x7f-\x9f\\/]"
    };
}

/// One segment of an object name: not empty, not `.` or `..`.
macro_rules! segment {
    () => {
        concat!(
            r"(?:[^.\x00-\x1f\x7f-\x9f\\/]",
            name_char!(),
            r"*|\.[^.\x00-\x1f\x7f-\x9f\\/]",
            name_char!(),
            r"*|\.\.",
            name_char!(),
            "+)"
        )
    };
}

/// The rules of an object name as an ECMA-262 regular expression: segments between single `/`, none empty and none
/// `.` or `..`, no control character and no backslash. Names are also 1 to [`MAX_OBJECT_NAME_BYTES`] bytes of UTF-8.
pub const OBJECT_NAME_PATTERN: &str = concat!("^", segment!(), "(?:/", segment!(), ")*$");

/// The rules of a `list-drafts` prefix: empty, or the start of a valid object name (whole segments, each followed
/// by `/`, then the start of one more).
pub const PREFIX_PATTERN: &str = concat!("^(?:", segment!(), "/)*", name_char!(), "*$");

/// Longest object name, in bytes of UTF-8 (the S3 limit).
pub const MAX_OBJECT_NAME_BYTES: usize = 1024;

/// A multipart upload id: letters, digits and `-._~`, starting with a letter or digit.
pub const UPLOAD_ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._~-]*$";

/// Longest multipart upload id.
pub const MAX_UPLOAD_ID_LEN: usize = 1024;

/// An ETag without its quotes or weak prefix, so that `"abc"`, `W/"abc"` and `abc` compare equal (clients and
/// stores differ in quoting): how the API compares the ETags of parts.
pub fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

/// A SHA-256 digest in standard base64: 43 characters, the last one with its two unused bits zero, and one `=`.
pub const CHECKSUM_SHA256_PATTERN: &str = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$";

/// A media type: `type/subtype` of RFC 9110 token characters, then any parameters after a `;`, all printable ASCII
/// (no tab), without a blank at the end.
pub const CONTENT_TYPE_PATTERN: &str =
    "^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?: *;(?:[\\x20-\\x7e]*[\\x21-\\x7e])?)?$";

/// Longest media type.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// The start of DraftStore's own metadata names.
pub const RESERVED_METADATA_PREFIX: &str = "draftstore-";

/// The rule of a metadata name as a regular expression: lowercase letters, digits and `-`, starting with a letter
/// or digit, 1 to 64 characters, not starting with [`RESERVED_METADATA_PREFIX`]. Spelt out without look-ahead,
/// which not every engine has: a proper start of the prefix, or the prefix's first characters then another.
pub fn metadata_name_pattern() -> String {
    let reserved = RESERVED_METADATA_PREFIX;
    let class_without = |excluded: char, first: bool| {
        let mut class = String::from("[");
        let letters: Vec<char> = ('a'..='z').filter(|&c| c != excluded).collect();
        for run in letters.chunk_by(|a, b| *b as u32 == *a as u32 + 1) {
            class.push_str(&format!("{}-{}", run[0], run[run.len() - 1]));
        }
        class.push_str("0-9");
        if !first && excluded != '-' {
            class.push('-');
        }
        class.push(']');
        class
    };
    let mut alternatives: Vec<String> = (1..reserved.len()).map(|n| reserved[..n].to_owned()).collect();
    for (i, c) in reserved.char_indices() {
        alternatives.push(format!("{}{}[a-z0-9-]{{0,{}}}", &reserved[..i], class_without(c, i == 0), 63 - i));
    }
    format!("^(?:{})$", alternatives.join("|"))
}

/// A metadata value: any text without control characters.
pub const METADATA_VALUE_PATTERN: &str = "^[^\\x00-\\x1f\\x7f]*$";

/// Most bytes of metadata on one object, names and values together as S3 keeps them: printable ASCII one byte a
/// character, any other byte (and `%`) three, percent-encoded. S3 keeps 2 KiB of user metadata per object;
/// DraftStore uses the other 128 bytes (the checksum, the set an object was confirmed in).
pub const MAX_METADATA_BYTES: usize = 1920;

/// Most metadata entries on one object.
pub const MAX_METADATA_ENTRIES: usize = 6;

/// Longest metadata name, in characters (ASCII: as many bytes).
pub const MAX_METADATA_NAME: usize = 64;

/// Most bytes a metadata value takes as S3 keeps it, whatever its characters: entries of the longest name and
/// such a value, as many as [`MAX_METADATA_ENTRIES`], make exactly [`MAX_METADATA_BYTES`].
pub const MAX_METADATA_VALUE_BYTES: usize = MAX_METADATA_BYTES / MAX_METADATA_ENTRIES - MAX_METADATA_NAME;

/// The three forms a metadata value takes, each a pattern and a length in characters that a schema can state, and
/// each within [`MAX_METADATA_VALUE_BYTES`] as S3 keeps it: printable ASCII but `%` (one byte a character), text
/// below U+0800 (at most six: two bytes of UTF-8, percent-encoded), any text (at most twelve). A value is valid
/// when it fits one of them; no value outside them is.
pub const METADATA_VALUE_FORMS: [(&str, usize); 3] = [
    ("^[\\x20-\\x24\\x26-\\x7e]*$", MAX_METADATA_VALUE_BYTES),
    ("^[\\x20-\\x7e\\x80-\\u07ff]*$", MAX_METADATA_VALUE_BYTES / 6),
    (METADATA_VALUE_PATTERN, MAX_METADATA_VALUE_BYTES / 12),
];

/// An idempotency key: 1 to 128 letters, digits, `-` and `_` (a UUID fits).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[A-Za-z0-9_-]{1,128}$";

/// Most drafts in one set.
pub const MAX_SET_DRAFTS: usize = 100;

/// A file name to download an object under: 1 to 255 characters, no control character, `/` or `\\`.
pub const FILENAME_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f/\\\\]{1,255}$";

/// User metadata of a confirmed object: names to values.
pub type Metadata = BTreeMap<String, String>;

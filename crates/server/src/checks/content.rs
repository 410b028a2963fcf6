//! A draft's type read from its first bytes, held against the type its upload declared; an image's dimensions
//! read from its header, never by decoding it.
//!
//! Detection is [`infer`]'s magic numbers (images, audio, video, archives, documents, fonts, executables, HTML and
//! XML), plus SVG, which it does not know. Where the bytes match nothing known (plain text, CSV, JSON, an unknown
//! binary) the declared type stands.

use draftstore_storage::ContentType;

use crate::domain::UploadLimits;
use crate::error::Error;

/// Bytes read from the start of every draft: enough for every signature [`infer`] knows, and for the header of
/// most images.
pub const HEAD_LEN: u64 = 8 << 10;

/// Bytes read when an image's dimensions lie beyond [`HEAD_LEN`] (a JPEG's frame header comes after its EXIF
/// and ICC segments, each up to 64 KiB).
pub const IMAGE_HEAD_LEN: u64 = 1 << 20;

/// A type recognised in a draft's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The media type, as the detector names it.
    pub mime: &'static str,
    /// Content that a browser runs (HTML, SVG, XML) or a system executes (programs, `#!` scripts).
    pub active: bool,
}

/// The type of the bytes, when they match a known format.
pub fn detect(head: &[u8]) -> Option<Detected> {
    let mime = match infer::get(head).map(|kind| kind.mime_type()) {
        // infer's fallback for formats it names no type for (EOT fonts): nothing to hold a declaration against.
        Some("application/octet-stream") => None,
        Some("text/xml") if is_svg(head) => Some("image/svg+xml"),
        Some(mime) => Some(mime),
        None if is_svg(head) => Some("image/svg+xml"),
        None => None,
    }?;
    Some(Detected { mime, active: ACTIVE.contains(&mime) })
}

/// Types that run, as the detector names them.
const ACTIVE: &[&str] = &[
    "text/html",
    "text/xml",
    "image/svg+xml",
    "text/x-shellscript",
    "application/x-executable",
    "application/vnd.microsoft.portable-executable",
    "application/x-mach-binary",
    "application/wasm",
    "application/java",
    "application/vnd.android.dex",
];

/// Other names of a detected type, as clients declare them: `(declared, detected)`.
const ALIASES: &[(&str, &str)] = &[
    ("image/jpg", "image/jpeg"),
    ("image/pjpeg", "image/jpeg"),
    ("image/x-png", "image/png"),
    ("image/apng", "image/png"),
    ("image/x-ms-bmp", "image/bmp"),
    ("image/x-bmp", "image/bmp"),
    ("image/tif", "image/tiff"),
    ("image/x-icon", "image/vnd.microsoft.icon"),
    ("image/heic", "image/heif"),
    ("image/heic-sequence", "image/heif"),
    ("image/heif-sequence", "image/heif"),
    ("image/avif-sequence", "image/avif"),
    ("application/x-zip-compressed", "application/zip"),
    ("application/x-zip", "application/zip"),
    ("application/x-gzip", "application/gzip"),
    ("application/x-rar-compressed", "application/vnd.rar"),
    ("application/x-pdf", "application/pdf"),
    ("application/xml", "text/xml"),
    ("application/x-sqlite3", "application/vnd.sqlite3"),
    ("audio/mp3", "audio/mpeg"),
    ("audio/x-mp3", "audio/mpeg"),
    ("audio/x-mpeg", "audio/mpeg"),
    ("audio/wav", "audio/x-wav"),
    ("audio/wave", "audio/x-wav"),
    ("audio/vnd.wave", "audio/x-wav"),
    ("audio/flac", "audio/x-flac"),
    ("audio/x-m4a", "audio/m4a"),
    ("audio/mp4", "audio/m4a"),
    ("audio/aiff", "audio/x-aiff"),
    ("video/x-m4v", "video/mp4"),
    ("video/avi", "video/x-msvideo"),
    ("video/mkv", "video/x-matroska"),
    ("font/woff", "application/font-woff"),
    ("font/woff2", "application/font-woff"),
    ("font/ttf", "application/font-sfnt"),
    ("font/otf", "application/font-sfnt"),
    ("font/sfnt", "application/font-sfnt"),
    ("application/x-font-ttf", "application/font-sfnt"),
    ("application/x-font-otf", "application/font-sfnt"),
    ("application/x-msdownload", "application/vnd.microsoft.portable-executable"),
    ("application/x-msdos-program", "application/vnd.microsoft.portable-executable"),
    ("application/x-dosexec", "application/vnd.microsoft.portable-executable"),
    ("application/x-elf", "application/x-executable"),
    ("application/x-sharedlib", "application/x-executable"),
    ("application/x-sh", "text/x-shellscript"),
    ("application/x-shellscript", "text/x-shellscript"),
    ("text/x-sh", "text/x-shellscript"),
    ("application/java-vm", "application/java"),
    ("application/xhtml+xml", "text/html"),
];

/// Formats built on another, which is all a detector may see of them: `(declared, detected)`. Office documents,
/// e-books and Java archives are ZIP files; legacy Office documents are OLE compound files; a `+zip` or `+xml`
/// type says what it is built on.
const BUILT_ON: &[(&str, &str)] = &[
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/zip"),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/zip"),
    ("application/vnd.oasis.opendocument.text", "application/zip"),
    ("application/vnd.oasis.opendocument.spreadsheet", "application/zip"),
    ("application/vnd.oasis.opendocument.presentation", "application/zip"),
    ("application/vnd.oasis.opendocument.graphics", "application/zip"),
    ("application/epub+zip", "application/zip"),
    ("application/java-archive", "application/zip"),
    ("application/x-java-archive", "application/zip"),
    ("application/vnd.android.package-archive", "application/zip"),
    ("application/x-xpinstall", "application/zip"),
    ("application/vnd.google-earth.kmz", "application/zip"),
    ("application/msword", "application/x-ole-storage"),
    ("application/vnd.ms-excel", "application/x-ole-storage"),
    ("application/vnd.ms-powerpoint", "application/x-ole-storage"),
    ("application/vnd.ms-outlook", "application/x-ole-storage"),
    ("application/vnd.visio", "application/x-ole-storage"),
    ("application/x-msi", "application/x-ole-storage"),
];

/// Whether bytes detected as `detected` may be declared as `declared` (an essence, lower case).
fn declares(declared: &str, detected: &str) -> bool {
    declared == detected
        || ALIASES.contains(&(declared, detected))
        || BUILT_ON.contains(&(declared, detected))
        || (declared.ends_with("+zip") && detected == "application/zip")
        || (declared.ends_with("+xml") && detected == "text/xml" && declared != "image/svg+xml")
}

/// Checks the detected type against the declared one and the allowed types. `application/octet-stream` declares
/// no type in particular: any detected type may be uploaded as it, as long as that type is allowed.
pub fn check_type(declared: &ContentType, detected: Option<Detected>, limits: &UploadLimits) -> Result<(), Error> {
    let Some(detected) = detected else { return Ok(()) };
    let essence = declared.essence();
    if essence != "application/octet-stream" && !declares(&essence, detected.mime) {
        let what = if detected.active { "active content" } else { "content" };
        return Err(Error::ContentTypeMismatch(format!(
            "it was declared {essence} but its bytes are {what} of type {}",
            detected.mime
        )));
    }
    let detected_type = ContentType::parse(detected.mime).map_err(|e| {
        Error::ContentTypeMismatch(format!("its bytes are of type {}, which is not a valid type: {e}", detected.mime))
    })?;
    if limits.check(Some(&detected_type), None).is_err() {
        return Err(Error::ContentTypeMismatch(format!(
            "its bytes are of type {}, which ALLOWED_CONTENT_TYPES does not accept",
            detected.mime
        )));
    }
    Ok(())
}

/// Image types whose dimensions are read from the header.
const IMAGES: &[&str] =
    &["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/heif", "image/bmp", "image/tiff"];

/// Whether a detected type is an image whose dimensions are checked.
pub fn is_sized_image(detected: Detected) -> bool {
    IMAGES.contains(&detected.mime)
}

/// Whether an image's dimensions come at its start by the format's rules, so that not finding them there means
/// a broken header. TIFF's directory, and HEIF's and AVIF's metadata, may come after the pixels, anywhere in the
/// file.
pub fn dimensions_lead(detected: Detected) -> bool {
    !matches!(detected.mime, "image/tiff" | "image/heif" | "image/avif")
}

/// Width and height, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

/// Reads an image's dimensions from its first bytes; `None` when they are not in `head`, or the header is broken.
pub fn dimensions(head: &[u8]) -> Option<Dimensions> {
    let size = imagesize::blob_size(head).ok()?;
    let width = u32::try_from(size.width).ok()?;
    let height = u32::try_from(size.height).ok()?;
    Some(Dimensions { width, height })
}

/// Refuses an image of more than `max_pixels` pixels.
pub fn check_dimensions(detected: Detected, size: Dimensions, max_pixels: u64) -> Result<(), Error> {
    let pixels = u64::from(size.width) * u64::from(size.height);
    if pixels > max_pixels {
        return Err(Error::ImageTooLarge(format!(
            "its {} header announces {} × {} = {pixels} pixels, above MAX_IMAGE_PIXELS ({max_pixels})",
            detected.mime, size.width, size.height
        )));
    }
    Ok(())
}

/// An SVG document: an `<svg` root, after an optional XML declaration, comments and a doctype.
fn is_svg(head: &[u8]) -> bool {
    let head = &head[..head.len().min(4096)];
    // Only markup can be SVG: a head whose first byte after ASCII white space is neither `<` nor one that may start
    // a byte order mark or other Unicode white space (trimmed below) is decided without decoding it.
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<' | 0xc2 | 0xe1 | 0xe2 | 0xe3 | 0xef) => {}
        _ => return false,
    }
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with("<svg") || text.starts_with("<!doctype svg") {
        return true;
    }
    // After a prolog, the first element decides.
    (text.starts_with("<?xml") || text.starts_with("<!--") || text.starts_with("<!doctype"))
        && first_element(text).is_some_and(|name| name == "svg" || name.ends_with(":svg"))
}

/// The name of the first element of an XML document: the first `<` not opening a declaration, comment or doctype.
fn first_element(mut text: &str) -> Option<&str> {
    loop {
        let start = text.find('<')?;
        text = &text[start..];
        if let Some(rest) = text.strip_prefix("<!--") {
            text = &rest[rest.find("-->")? + 3..];
        } else if text.starts_with("<?") || text.starts_with("<!") {
            text = &text[text.find('>')? + 1..];
        } else {
            let name = &text[1..];
            let end = name.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(name.len());
            return Some(&name[..end]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MediaRange;

    fn ct(value: &str) -> ContentType {
        ContentType::parse(value).expect("valid")
    }

    fn limits(allowed: &[&str]) -> UploadLimits {
        UploadLimits {
            max_size: u64::MAX,
            allowed_types: allowed.iter().map(|r| MediaRange::parse(r).expect("range")).collect(),
        }
    }

    /// An ELF header's 64 bytes: magic, 64-bit, little-endian, a shared object for x86-64.
    const ELF: [u8; 64] = {
        let mut header = [0; 64];
        let start = *b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0";
        let mut i = 0;
        while i < start.len() {
            header[i] = start[i];
            i += 1;
        }
        header
    };

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\x00\0\0\0\x80\x08\x06\0\0\0";

    #[test]
    fn types_are_read_from_the_bytes() {
        let cases: &[(&[u8], Option<&str>, bool)] = &[
            (PNG, Some("image/png"), false),
            (b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff", Some("application/vnd.microsoft.portable-executable"), true),
            (&ELF, Some("application/x-executable"), true),
            (b"#!/bin/sh\necho hi\n", Some("text/x-shellscript"), true),
            (b"<!DOCTYPE html><html><body>", Some("text/html"), true),
            (
                b"<?xml version=\"1.0\"?>\n<!-- c -->\n<svg xmlns=\"http://www.w3.org/2000/svg\">",
                Some("image/svg+xml"),
                true,
            ),
            (b"  <svg onload=\"alert(1)\">", Some("image/svg+xml"), true),
            ("\u{feff}\u{a0}\u{2003}\u{3000}\n<svg>".as_bytes(), Some("image/svg+xml"), true),
            (b"<?xml version=\"1.0\"?><feed/>", Some("text/xml"), true),
            (b"name,size\nphoto.png,1\n", None, false),
            (b"{\"a\": 1}", None, false),
            (b"", None, false),
        ];
        for (bytes, mime, active) in cases {
            let detected = detect(bytes);
            assert_eq!(detected.map(|d| d.mime), *mime, "{}", String::from_utf8_lossy(bytes));
            assert_eq!(detected.is_some_and(|d| d.active), *active, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn a_declaration_must_name_the_bytes_or_an_alias() {
        let any = limits(&[]);
        let png = detect(PNG);
        assert!(check_type(&ct("image/png"), png, &any).is_ok());
        assert!(check_type(&ct("image/x-png"), png, &any).is_ok());
        assert!(check_type(&ct("application/octet-stream"), png, &any).is_ok());
        assert!(matches!(check_type(&ct("image/jpeg"), png, &any), Err(Error::ContentTypeMismatch(_))));
        let exe = detect(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff");
        let refused = check_type(&ct("image/png"), exe, &any).expect_err("refused");
        assert!(refused.to_string().contains("active content"), "{refused}");
        let zip = Some(Detected { mime: "application/zip", active: false });
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert!(check_type(&ct(docx), zip, &any).is_ok(), "a .docx is a zip");
        assert!(check_type(&ct("application/epub+zip"), zip, &any).is_ok());
        let xml = detect(b"<?xml version=\"1.0\"?><feed/>");
        assert!(check_type(&ct("application/atom+xml"), xml, &any).is_ok());
        let svg = detect(b"<svg>");
        assert!(check_type(&ct("image/svg+xml"), svg, &any).is_ok());
        assert!(check_type(&ct("text/plain"), svg, &any).is_err());
        assert!(check_type(&ct("text/csv"), None, &any).is_ok(), "nothing detected: the declaration stands");
    }

    #[test]
    fn the_detected_type_must_be_allowed_too() {
        let images = limits(&["image/*"]);
        let exe = detect(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff");
        assert!(check_type(&ct("application/octet-stream"), exe, &images).is_err());
        assert!(check_type(&ct("image/png"), detect(PNG), &images).is_ok());
    }

    #[test]
    fn image_dimensions_come_from_the_header() {
        let size = dimensions(PNG).expect("a PNG header");
        assert_eq!(size, Dimensions { width: 256, height: 128 });
        let png = detect(PNG).expect("png");
        assert!(check_dimensions(png, size, 256 * 128).is_ok());
        assert!(matches!(check_dimensions(png, size, 256 * 128 - 1), Err(Error::ImageTooLarge(_))));
        assert_eq!(dimensions(&PNG[..12]), None, "cut short");
    }
}

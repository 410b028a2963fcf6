//! The original's metadata stripped per IMAGE_METADATA, by container surgery: a JPEG's marker segments, a PNG's
//! and a WebP's chunks are dropped or edited and every other byte copied, so the pixels are the upload's bit for
//! bit (no re-encoding). A TIFF's main directory is edited in place. GIF and BMP carry no EXIF and are left as
//! they are.

use image::ImageFormat;

use super::exif;
use super::settings::MetadataPolicy;

/// The original with its metadata stripped per `policy`, or `None` when that leaves it unchanged (or the policy is
/// `keep`). Bytes that do not parse as their container are left as they are: they were decoded, so the decoder
/// found them good enough, and a copy that drops what it cannot parse could drop pixels.
pub fn strip(format: ImageFormat, original: &[u8], policy: MetadataPolicy) -> Option<Vec<u8>> {
    let stripped = match (policy, format) {
        (MetadataPolicy::Keep, _) => None,
        (_, ImageFormat::Jpeg) => jpeg(original, policy),
        (_, ImageFormat::Png) => png(original, policy),
        (_, ImageFormat::WebP) => webp(original, policy),
        (_, ImageFormat::Tiff) => tiff(original, policy),
        (_, ImageFormat::Gif) => gif(original, policy),
        _ => None,
    };
    stripped.filter(|bytes| bytes.as_slice() != original)
}

const EXIF_HEADER: &[u8] = b"Exif\0\0";
const XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// An XMP packet's mention of a GPS property (`exif:GPSLatitude`, …): editing XMP's RDF is out of reach of
/// byte surgery, so `strip-location` drops a packet that has one.
fn mentions_gps(xmp: &[u8]) -> bool {
    xmp.windows(3).any(|w| w == b"GPS")
}

/// An EXIF record (TIFF structure) rewritten per `policy`: `None` drops it.
fn exif_record(tiff: &[u8], policy: MetadataPolicy) -> Option<Vec<u8>> {
    match policy {
        MetadataPolicy::Keep => Some(tiff.to_vec()),
        MetadataPolicy::StripLocation => {
            let mut edited = tiff.to_vec();
            exif::remove_tags(&mut edited, &[exif::GPS_IFD]);
            Some(edited)
        }
        // The orientation survives, or the stripped original would show on its side.
        MetadataPolicy::StripAll => exif::orientation(tiff).filter(|&o| o != 1).map(exif::orientation_only),
    }
}

/// A JPEG's segments before its first scan, walked by their markers; the scans copied as they are up to the EOI.
fn jpeg(data: &[u8], policy: MetadataPolicy) -> Option<Vec<u8>> {
    if data.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&data[..2]);
    let mut at = 2;
    loop {
        // Fill bytes (0xff) may precede a marker.
        while data.get(at) == Some(&0xff) && data.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        if data.get(at)? != &0xff {
            return None;
        }
        let marker = *data.get(at + 1)?;
        if marker == 0xda || marker == 0xd9 {
            break;
        }
        let length = usize::from(u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?]));
        let end = at.checked_add(2 + length)?;
        let body = data.get(at + 4..end)?;
        match jpeg_segment(marker, body, policy) {
            Segment::Keep => out.extend_from_slice(&data[at..end]),
            Segment::Drop => {}
            Segment::Replace(body) => {
                let length = u16::try_from(body.len() + 2).ok()?;
                out.extend_from_slice(&[0xff, marker]);
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&body);
            }
        }
        at = end;
    }
    // The scans, as they are, to the EOI. What follows it goes: further pictures (an MPF index's previews and depth
    // maps, a motion photo's video, a vendor's trailer) carry metadata of their own, GPS included, and no decoder
    // shows them as this image.
    let end = jpeg_end(data, at).unwrap_or(data.len());
    out.extend_from_slice(&data[at..end]);
    Some(out)
}

/// What becomes of one segment.
enum Segment {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

fn jpeg_segment(marker: u8, body: &[u8], policy: MetadataPolicy) -> Segment {
    let all = policy == MetadataPolicy::StripAll;
    match marker {
        0xe1 if body.starts_with(EXIF_HEADER) => match exif_record(&body[EXIF_HEADER.len()..], policy) {
            Some(record) => Segment::Replace([EXIF_HEADER, &record].concat()),
            None => Segment::Drop,
        },
        // The main XMP packet, kept unless it names a GPS property. Extended XMP is split across segments, where a
        // name can straddle two: it goes whole.
        0xe1 if body.starts_with(XMP_HEADER) => {
            if all || mentions_gps(body) {
                Segment::Drop
            } else {
                Segment::Keep
            }
        }
        // The colour profile stays: without it the pixels would show in other colours.
        0xe2 if body.starts_with(b"ICC_PROFILE\0") => Segment::Keep,
        // JFIF and Adobe's segment say how to read the pixels' colours.
        0xe0 | 0xee => Segment::Keep,
        // Photoshop's resources: IPTC (names, keywords, credits) stays with strip-location unless the segment names
        // a GPS property (the XMP a resource may hold).
        0xed if !all && body.starts_with(b"Photoshop 3.0\0") && !mentions_gps(body) => Segment::Keep,
        // The rest of APP1..APP15 is what cannot be read here and may hold a position: extended XMP, MPF (which
        // indexes the pictures after the EOI), Photoshop's resources with a GPS name, FlashPix, vendors'
        // records, an EXIF header a reader tolerates and this does not. Dropped, whatever the policy: a record
        // kept unread could be the one with the position.
        0xe1..=0xef => Segment::Drop,
        // Comments name no position a reader parses; only strip-all removes them.
        0xfe if all => Segment::Drop,
        _ => Segment::Keep,
    }
}

/// The offset just past the EOI of the JPEG whose first scan starts at `at`: entropy-coded data is skipped byte by
/// byte (a 0xff in it is followed by 0 or a restart marker), the segments between scans by their length.
fn jpeg_end(data: &[u8], mut at: usize) -> Option<usize> {
    loop {
        if *data.get(at)? != 0xff {
            at += 1;
            continue;
        }
        let marker = *data.get(at + 1)?;
        match marker {
            0xd9 => return Some(at + 2),
            0x00 | 0xd0..=0xd7 | 0xff => at += if marker == 0xff { 1 } else { 2 },
            _ => {
                let length = usize::from(u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?]));
                at += 2 + length;
            }
        }
    }
}

/// Whether a JPEG's scans reach its EOI marker. One cut short has none: its decoders would fill the missing part
/// with grey, and the variants and the promoted original would show a picture the uploader never had.
pub fn jpeg_is_whole(data: &[u8]) -> bool {
    let mut at = 2;
    loop {
        while data.get(at) == Some(&0xff) && data.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        match (data.get(at), data.get(at + 1), data.get(at + 2), data.get(at + 3)) {
            (Some(0xff), Some(0xda), _, _) => return jpeg_end(data, at).is_some(),
            (Some(0xff), Some(_), Some(&high), Some(&low)) => at += 2 + usize::from(u16::from_be_bytes([high, low])),
            _ => return false,
        }
    }
}

/// A PNG's chunks, each kept, dropped or rewritten; nothing after IEND.
fn png(data: &[u8], policy: MetadataPolicy) -> Option<Vec<u8>> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !data.starts_with(SIGNATURE) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(SIGNATURE);
    let mut at = SIGNATURE.len();
    loop {
        let length = u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize;
        let kind: [u8; 4] = data.get(at + 4..at + 8)?.try_into().ok()?;
        let end = at.checked_add(12)?.checked_add(length)?;
        let body = data.get(at + 8..at + 8 + length)?;
        if end > data.len() {
            return None;
        }
        match png_chunk(&kind, body, policy) {
            Segment::Keep => out.extend_from_slice(&data[at..end]),
            Segment::Drop => {}
            Segment::Replace(body) => {
                out.extend_from_slice(&u32::try_from(body.len()).ok()?.to_be_bytes());
                out.extend_from_slice(&kind);
                out.extend_from_slice(&body);
                out.extend_from_slice(&crc32_of(&kind, &body).to_be_bytes());
            }
        }
        at = end;
        if &kind == b"IEND" {
            return Some(out);
        }
    }
}

fn png_chunk(kind: &[u8; 4], body: &[u8], policy: MetadataPolicy) -> Segment {
    let all = policy == MetadataPolicy::StripAll;
    match kind {
        b"eXIf" => match exif_record(body, policy) {
            Some(record) => Segment::Replace(record),
            None => Segment::Drop,
        },
        b"tEXt" | b"zTXt" | b"iTXt" => {
            if all {
                return Segment::Drop;
            }
            let keyword = body.split(|&b| b == 0).next().unwrap_or_default();
            // ImageMagick's copies of the EXIF, XMP and IPTC records as hexadecimal text, usually compressed: the
            // GPS position may be in them, and editing them would mean inflating them.
            let raw_profile = keyword.starts_with(b"Raw profile type");
            // XMP in an iTXt chunk: dropped when it mentions GPS, or is compressed so that it cannot be read here.
            let xmp = keyword == b"XML:com.adobe.xmp";
            let compressed = kind == b"zTXt" || (kind == b"iTXt" && body.get(keyword.len() + 1) == Some(&1));
            if raw_profile || (xmp && (compressed || mentions_gps(body))) { Segment::Drop } else { Segment::Keep }
        }
        b"tIME" if all => Segment::Drop,
        _ => Segment::Keep,
    }
}

/// The CRC-32 of a PNG chunk (ISO 3309, over its type and data).
pub(super) fn crc32_of(kind: &[u8], body: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in kind.iter().chain(body) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A WebP's RIFF chunks, each kept, dropped or rewritten, and the VP8X flags set to what is left.
fn webp(data: &[u8], policy: MetadataPolicy) -> Option<Vec<u8>> {
    if data.get(..4)? != b"RIFF" || data.get(8..12)? != b"WEBP" {
        return None;
    }
    let riff_end = (u32::from_le_bytes(data.get(4..8)?.try_into().ok()?) as usize).checked_add(8)?.min(data.len());
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&data[..12]);
    let mut at = 12;
    let (mut has_exif, mut has_xmp, mut vp8x) = (false, false, None);
    while at + 8 <= riff_end {
        let kind: [u8; 4] = data[at..at + 4].try_into().ok()?;
        let length = u32::from_le_bytes(data[at + 4..at + 8].try_into().ok()?) as usize;
        let end = at.checked_add(8)?.checked_add(length)?;
        let body = data.get(at + 8..end)?;
        let padded = (end + (length & 1)).min(riff_end);
        let all = policy == MetadataPolicy::StripAll;
        let fate = match &kind {
            b"EXIF" => {
                // Some writers put JPEG's `Exif\0\0` before the record.
                let (header, record) =
                    if body.starts_with(EXIF_HEADER) { body.split_at(EXIF_HEADER.len()) } else { (&[][..], body) };
                match exif_record(record, policy) {
                    Some(record) => Segment::Replace([header, &record].concat()),
                    None => Segment::Drop,
                }
            }
            b"XMP " if all || mentions_gps(body) => Segment::Drop,
            _ => Segment::Keep,
        };
        match fate {
            Segment::Keep => {
                if &kind == b"VP8X" {
                    vp8x = Some(out.len() + 8);
                }
                has_xmp |= &kind == b"XMP ";
                has_exif |= &kind == b"EXIF";
                out.extend_from_slice(&data[at..padded]);
            }
            Segment::Drop => {}
            Segment::Replace(body) => {
                has_exif = true;
                out.extend_from_slice(&kind);
                out.extend_from_slice(&u32::try_from(body.len()).ok()?.to_le_bytes());
                out.extend_from_slice(&body);
                if body.len() % 2 == 1 {
                    out.push(0);
                }
            }
        }
        at = padded;
    }
    if let Some(flags) = vp8x.filter(|&flags| flags < out.len()) {
        const EXIF: u8 = 0x08;
        const XMP: u8 = 0x04;
        out[flags] &= !(EXIF | XMP);
        out[flags] |= if has_exif { EXIF } else { 0 } | if has_xmp { XMP } else { 0 };
    }
    let size = u32::try_from(out.len() - 8).ok()?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Some(out)
}

/// A GIF's blocks, walked to the trailer: the application extensions that carry metadata (XMP's `XMP DataXMP`,
/// ICC aside) dropped, and with strip-all the comments and every application extension but the loop count's.
fn gif(data: &[u8], policy: MetadataPolicy) -> Option<Vec<u8>> {
    if !data.starts_with(b"GIF87a") && !data.starts_with(b"GIF89a") {
        return None;
    }
    let all = policy == MetadataPolicy::StripAll;
    // The header and the logical screen descriptor, then the global colour table when its flag says there is one.
    let flags = *data.get(10)?;
    let mut at = 13 + if flags & 0x80 != 0 { 3 << ((flags & 0x07) + 1) } else { 0 };
    let mut out = data.get(..at)?.to_vec();
    // Sub-blocks: a length byte, that many bytes, until a zero length. Returns the offset past the terminator.
    let sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let length = usize::from(*data.get(at)?);
            at += 1 + length;
            if length == 0 {
                return Some(at);
            }
        }
    };
    loop {
        // A GIF cut short of its trailer was decoded all the same: what it had is kept.
        let Some(&block) = data.get(at) else { return Some(out) };
        match block {
            // The trailer: anything after it is no part of the image.
            0x3b => {
                out.push(0x3b);
                return Some(out);
            }
            // An image: its descriptor, local colour table, LZW code size and data, copied.
            0x2c => {
                let flags = *data.get(at + 9)?;
                let table = if flags & 0x80 != 0 { 3 << ((flags & 0x07) + 1) } else { 0 };
                let end = sub_blocks(at + 10 + table + 1)?;
                out.extend_from_slice(data.get(at..end)?);
                at = end;
            }
            0x21 => {
                let label = *data.get(at + 1)?;
                let end = sub_blocks(at + 2)?;
                let block = data.get(at..end)?;
                let application = label == 0xff && block.get(2) == Some(&11);
                let id = if application { block.get(3..14)? } else { &[][..] };
                let keep = match label {
                    0xff if id == b"NETSCAPE2.0" || id == b"ANIMEXTS1.0" => true,
                    0xff if id == b"ICCRGBG1012" => true,
                    0xff => false,
                    0xfe => !all,
                    _ => true,
                };
                if keep {
                    out.extend_from_slice(block);
                }
                at = end;
            }
            _ => return None,
        }
    }
}

/// A TIFF file, its main directory's tags removed in place.
fn tiff(data: &[u8], policy: MetadataPolicy) -> Option<Vec<u8>> {
    let tags: &[u16] = match policy {
        MetadataPolicy::Keep => return None,
        MetadataPolicy::StripLocation => exif::TIFF_STRIP_LOCATION,
        MetadataPolicy::StripAll => exif::TIFF_STRIP_ALL,
    };
    let mut edited = data.to_vec();
    exif::remove_tags(&mut edited, tags).then_some(edited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_png_s() {
        // The CRC of an IEND chunk, as every PNG ends.
        assert_eq!(crc32_of(b"IEND", b""), 0xae42_6082);
    }

    #[test]
    fn a_jpeg_s_end_skips_stuffed_bytes_and_segments_between_scans() {
        let scan = [0xff, 0xda, 0, 2, 1, 0xff, 0x00, 2, 0xff, 0xd0, 0xff, 0xc4, 0, 4, 0xff, 0xd9, 0xff, 0xd9, 9, 9];
        assert_eq!(jpeg_end(&scan, 0), Some(18));
    }

    #[test]
    fn keep_changes_nothing() {
        assert_eq!(strip(ImageFormat::Png, b"\x89PNG\r\n\x1a\n", MetadataPolicy::Keep), None);
    }
}

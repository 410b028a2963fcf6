//! EXIF records (TIFF structures) read and edited in place. Tags are unlinked from their directory and the bytes
//! they pointed at overwritten with zeros, so every other offset in the record stays valid: the camera's maker
//! notes, which hold offsets of their own, survive, and no trace of a removed value is left in the bytes. The same
//! code edits a TIFF file, which is one such structure around its pixels.

/// The GPS directory's pointer.
pub const GPS_IFD: u16 = 0x8825;
/// The EXIF directory's pointer.
const EXIF_IFD: u16 = 0x8769;
/// The interoperability directory's pointer.
const INTEROP_IFD: u16 = 0xa005;
/// The orientation, 1 to 8.
const ORIENTATION: u16 = 0x0112;
/// Directories followed from one record at most: a loop of pointers ends here.
const MAX_IFDS: usize = 64;

/// The tags of a TIFF file's main directory that `strip-location` removes: the GPS directory, and the records that
/// may hold a position and cannot be edited here (XMP, IPTC, Photoshop's resources).
pub const TIFF_STRIP_LOCATION: &[u16] = &[GPS_IFD, 0x02bc, 0x83bb, 0x8649];

/// The tags of a TIFF file's main directory that `strip-all` removes: the EXIF and GPS directories, XMP, IPTC,
/// Photoshop's resources, and the text that names a person, a device or a time.
pub const TIFF_STRIP_ALL: &[u16] =
    &[EXIF_IFD, GPS_IFD, 0x02bc, 0x83bb, 0x8649, 0x010e, 0x010f, 0x0110, 0x0131, 0x0132, 0x013b, 0x013c, 0x8298];

/// A TIFF structure's byte order.
#[derive(Clone, Copy)]
struct Order {
    little: bool,
}

impl Order {
    fn of(tiff: &[u8]) -> Option<Self> {
        match tiff.get(..4)? {
            [b'I', b'I', 42, 0] => Some(Self { little: true }),
            [b'M', b'M', 0, 42] => Some(Self { little: false }),
            _ => None,
        }
    }

    fn u16(self, data: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(bytes) } else { u16::from_be_bytes(bytes) })
    }

    fn u32(self, data: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) })
    }

    fn put_u16(self, data: &mut [u8], at: usize, value: u16) {
        let bytes = if self.little { value.to_le_bytes() } else { value.to_be_bytes() };
        data[at..at + 2].copy_from_slice(&bytes);
    }

    fn put_u32(self, data: &mut [u8], at: usize, value: u32) {
        let bytes = if self.little { value.to_le_bytes() } else { value.to_be_bytes() };
        data[at..at + 4].copy_from_slice(&bytes);
    }
}

/// One directory entry, as found at `at`.
struct Entry {
    tag: u16,
    /// Where the value's bytes are when they do not fit in the entry.
    outside: Option<(usize, usize)>,
    /// The value's first 4 bytes read as an offset (a pointer tag's target).
    offset: usize,
}

fn entry(order: Order, tiff: &[u8], at: usize) -> Option<Entry> {
    let tag = order.u16(tiff, at)?;
    let kind = order.u16(tiff, at + 2)?;
    let count = order.u32(tiff, at + 4)?;
    let offset = order.u32(tiff, at + 8)? as usize;
    let unit: u64 = match kind {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => 0,
    };
    let size = unit * u64::from(count);
    let outside = (size > 4)
        .then(|| usize::try_from(size).ok().map(|size| (offset, offset.saturating_add(size).min(tiff.len()))))
        .flatten()
        .filter(|(start, end)| start < end);
    Some(Entry { tag, outside, offset })
}

/// The entry count of the directory at `at`, when the whole directory lies in `tiff`.
fn directory(order: Order, tiff: &[u8], at: usize) -> Option<usize> {
    let count = usize::from(order.u16(tiff, at)?);
    let end = at.checked_add(2 + 12 * count + 4)?;
    (at >= 8 && end <= tiff.len()).then_some(count)
}

/// The orientation (1 to 8) the main directory gives, if any.
pub fn orientation(tiff: &[u8]) -> Option<u16> {
    let order = Order::of(tiff)?;
    let at = order.u32(tiff, 4)? as usize;
    let count = directory(order, tiff, at)?;
    (0..count).find_map(|i| {
        let place = at + 2 + 12 * i;
        (order.u16(tiff, place)? == ORIENTATION && order.u16(tiff, place + 2)? == 3)
            .then(|| order.u16(tiff, place + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

/// Whether the record has a tag of `tags` in one of its chained directories.
#[cfg(test)]
pub fn has_any(tiff: &[u8], tags: &[u16]) -> bool {
    let Some(order) = Order::of(tiff) else { return false };
    chain(order, tiff).into_iter().any(|at| {
        let count = directory(order, tiff, at).unwrap_or(0);
        (0..count).any(|i| order.u16(tiff, at + 2 + 12 * i).is_some_and(|tag| tags.contains(&tag)))
    })
}

/// The offsets of the chained directories (IFD0, IFD1, …), each once.
fn chain(order: Order, tiff: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut at = order.u32(tiff, 4).map_or(0, |offset| offset as usize);
    while at != 0 && found.len() < MAX_IFDS && !found.contains(&at) {
        let Some(count) = directory(order, tiff, at) else { break };
        found.push(at);
        at = order.u32(tiff, at + 2 + 12 * count).map_or(0, |offset| offset as usize);
    }
    found
}

/// Removes `tags` from every chained directory: the entries are unlinked, and what they pointed at (values,
/// whole sub-directories) overwritten with zeros. Returns whether anything was removed.
pub fn remove_tags(tiff: &mut [u8], tags: &[u16]) -> bool {
    let Some(order) = Order::of(tiff) else { return false };
    let mut removed = false;
    for at in chain(order, tiff) {
        let Some(count) = directory(order, tiff, at) else { continue };
        let next = order.u32(tiff, at + 2 + 12 * count).unwrap_or(0);
        let mut kept = 0;
        for i in 0..count {
            let place = at + 2 + 12 * i;
            let Some(found) = entry(order, tiff, place) else { continue };
            if tags.contains(&found.tag) {
                erase_value(order, tiff, &found, 0);
                removed = true;
                continue;
            }
            if kept != i {
                tiff.copy_within(place..place + 12, at + 2 + 12 * kept);
            }
            kept += 1;
        }
        if kept != count {
            let end = at + 2 + 12 * count + 4;
            order.put_u16(tiff, at, kept as u16);
            order.put_u32(tiff, at + 2 + 12 * kept, next);
            tiff[at + 2 + 12 * kept + 4..end].fill(0);
        }
    }
    removed
}

/// Overwrites an entry's value with zeros: its bytes outside the entry, and for a directory pointer, the whole
/// directory it points at.
fn erase_value(order: Order, tiff: &mut [u8], found: &Entry, depth: usize) {
    if let Some((start, end)) = found.outside {
        tiff[start..end].fill(0);
    }
    if matches!(found.tag, EXIF_IFD | GPS_IFD | INTEROP_IFD) && depth < 4 {
        erase_directory(order, tiff, found.offset, depth + 1);
    }
}

fn erase_directory(order: Order, tiff: &mut [u8], at: usize, depth: usize) {
    let Some(count) = directory(order, tiff, at) else { return };
    for i in 0..count {
        if let Some(found) = entry(order, tiff, at + 2 + 12 * i) {
            erase_value(order, tiff, &found, depth);
        }
    }
    tiff[at..at + 2 + 12 * count + 4].fill(0);
}

/// A little-endian record of one directory with one entry: the orientation.
pub fn orientation_only(orientation: u16) -> Vec<u8> {
    let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
    tiff.extend_from_slice(&ORIENTATION.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    tiff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big-endian record: IFD0 with the orientation and a GPS pointer, then the GPS directory with a
    /// latitude (3 rationals, outside the entry).
    fn camera_record() -> Vec<u8> {
        let mut t = vec![b'M', b'M', 0, 42, 0, 0, 0, 8];
        // IFD0 at 8: two entries, then the next pointer.
        t.extend_from_slice(&[0, 2]);
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
        t.extend_from_slice(&[0, 0, 0, 0]);
        // GPS IFD at 38: one entry, GPSLatitude of 3 rationals at 56.
        t.extend_from_slice(&[0, 1]);
        t.extend_from_slice(&[0x00, 0x02, 0, 5, 0, 0, 0, 3, 0, 0, 0, 56]);
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(&[0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 51, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1]);
        t
    }

    #[test]
    fn the_orientation_is_read_from_the_main_directory() {
        assert_eq!(orientation(&camera_record()), Some(6));
        assert_eq!(orientation(&orientation_only(3)), Some(3));
        assert_eq!(orientation(b"not a record"), None);
    }

    #[test]
    fn removing_the_gps_pointer_erases_the_gps_directory_and_keeps_the_rest() {
        let mut record = camera_record();
        assert!(has_any(&record, &[GPS_IFD]));
        assert!(remove_tags(&mut record, &[GPS_IFD]));
        assert!(!has_any(&record, &[GPS_IFD]));
        assert_eq!(orientation(&record), Some(6));
        assert_eq!(record.len(), camera_record().len());
        assert!(record[38..].iter().all(|&b| b == 0), "the GPS directory and its values are zeros");
        assert!(!remove_tags(&mut record, &[GPS_IFD]), "nothing left to remove");
    }

    #[test]
    fn a_record_whose_offsets_point_outside_it_is_left_alone() {
        let mut record = camera_record();
        record[7] = 200;
        assert!(!remove_tags(&mut record, &[GPS_IFD]));
        assert_eq!(orientation(&record), None);
    }
}

//! Multipart uploads: an object uploaded in numbered parts, each through its own presigned URL, then assembled by
//! the store into one object. The limits are S3's, and every backend applies them.

use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use crate::Checksum;

/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Smallest part, except the last one.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Largest object a single PUT can upload.
pub const MAX_SINGLE_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;
/// Largest object a multipart upload can assemble.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

/// A part as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub number: u32,
    pub size: u64,
    /// What the store answered to the part's PUT in its `ETag` header, quotes included.
    pub etag: String,
    /// The SHA-256 the store verified when the part was uploaded with one.
    pub sha256: Option<Checksum>,
    pub last_modified: OffsetDateTime,
}

/// A part as a client lists it to complete an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
}

/// An ETag without its quotes or weak prefix, so that `"abc"`, `W/"abc"` and `abc` compare equal (clients and
/// stores differ in quoting). The API's wire types compare ETags the same way; this crate depends on none of ours.
pub fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

/// Checks the list of parts a client gives to complete an upload against the parts the store holds, returning the
/// size of the object they make. The message names the first problem: a part number out of range, parts out of
/// order or listed twice, a part that was not uploaded or whose ETag differs, or a part too small that is not
/// the last. `uploaded` may hold more parts than are listed; those are left out of the object.
pub fn check_parts(listed: &[CompletedPart], uploaded: &[UploadedPart]) -> Result<u64, String> {
    if listed.is_empty() {
        return Err("list at least one part to complete the upload".to_owned());
    }
    let mut previous: Option<u32> = None;
    for part in listed {
        let number = part.number;
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(format!("part number {number} is out of range (1 to {MAX_PART_NUMBER})"));
        }
        match previous {
            Some(before) if before == number => return Err(format!("part {number} is listed twice")),
            Some(before) if before > number => {
                return Err(format!(
                    "parts must be listed in ascending order of part number: part {number} comes after part {before}"
                ));
            }
            _ => {}
        }
        previous = Some(number);
    }
    let mut size: u64 = 0;
    for (index, part) in listed.iter().enumerate() {
        let number = part.number;
        // A store may keep every upload of a part number (SeaweedFS does) and completes with the one named.
        let versions = || uploaded.iter().filter(|u| u.number == number);
        let Some(latest) = versions().max_by_key(|u| u.last_modified) else {
            return Err(format!("part {number} was not uploaded"));
        };
        let Some(found) = versions().find(|u| bare_etag(&u.etag) == bare_etag(&part.etag)) else {
            return Err(format!(
                "part {number} has the ETag {} in the store, not {} (was it uploaded again?)",
                latest.etag, part.etag
            ));
        };
        if index + 1 < listed.len() && found.size < MIN_PART_SIZE {
            return Err(format!(
                "part {number} is {} bytes: every part but the last must be at least 5 MiB ({MIN_PART_SIZE} bytes)",
                found.size
            ));
        }
        size += found.size;
    }
    Ok(size)
}

/// One entry per part number, in ascending order: where a store lists several uploads of a part number, the
/// latest (by last modification; of equal times, the one listed last), which is the one a client resuming wants.
pub fn latest_versions(mut parts: Vec<UploadedPart>) -> Vec<UploadedPart> {
    parts.sort_by_key(|part| part.number);
    let mut latest: Vec<UploadedPart> = Vec::with_capacity(parts.len());
    for part in parts {
        match latest.last_mut() {
            Some(last) if last.number == part.number => {
                if part.last_modified >= last.last_modified {
                    *last = part;
                }
            }
            _ => latest.push(part),
        }
    }
    latest
}

/// How far a long storage call has got: it records each step (a part copied, an answer from the store). Shared
/// with the caller so that it can tell a call that makes progress from one that stalls.
#[derive(Debug, Default)]
pub struct Progress(AtomicU64);

impl Progress {
    /// Records one more step.
    pub fn step(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever the call makes progress.
    pub fn marker(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploaded(number: u32, size: u64) -> UploadedPart {
        UploadedPart {
            number,
            size,
            etag: format!("\"e{number}\""),
            sha256: None,
            last_modified: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn listed(number: u32) -> CompletedPart {
        CompletedPart { number, etag: format!("e{number}") }
    }

    #[test]
    fn a_wrong_part_list_is_refused_with_the_reason() {
        let store = [uploaded(1, MIN_PART_SIZE), uploaded(2, 10), uploaded(3, 7)];
        assert_eq!(check_parts(&[listed(1), listed(3)], &store), Ok(MIN_PART_SIZE + 7));
        let error = |list: &[CompletedPart]| check_parts(list, &store).expect_err("refused");
        assert!(error(&[]).contains("at least one part"));
        assert!(error(&[listed(0)]).contains("out of range"));
        assert!(error(&[listed(10_001)]).contains("out of range"));
        assert!(error(&[listed(3), listed(1)]).contains("ascending order"));
        assert!(error(&[listed(1), listed(1)]).contains("listed twice"));
        assert!(error(&[listed(1), listed(4)]).contains("part 4 was not uploaded"));
        let wrong = CompletedPart { number: 1, etag: "other".to_owned() };
        assert!(error(&[wrong]).contains("ETag"));
        assert!(error(&[listed(1), listed(2), listed(3)]).contains("part 2 is 10 bytes"));
    }

    #[test]
    fn a_part_uploaded_twice_completes_with_the_version_named_and_lists_as_its_latest() {
        let at = |seconds| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds);
        let version = |etag: &str, size, seconds| UploadedPart {
            number: 1,
            size,
            etag: format!("\"{etag}\""),
            sha256: None,
            last_modified: at(seconds),
        };
        let store = [version("new", 5, 20), version("old", 9, 10), uploaded(2, 3)];
        let named = |etag: &str| CompletedPart { number: 1, etag: etag.to_owned() };
        assert_eq!(check_parts(&[named("old")], &store), Ok(9));
        assert_eq!(check_parts(&[named("new")], &store), Ok(5));
        let error = check_parts(&[named("other")], &store).expect_err("refused");
        assert!(error.contains("\"new\""), "names the latest version: {error}");
        let latest = latest_versions(store.to_vec());
        assert_eq!(latest.iter().map(|p| p.etag.as_str()).collect::<Vec<_>>(), ["\"new\"", "\"e2\""]);
        let tie = latest_versions(vec![version("first", 1, 10), version("second", 1, 10)]);
        assert_eq!(tie[0].etag, "\"second\"");
    }

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(bare_etag("\"abc\""), "abc");
        assert_eq!(bare_etag("abc"), "abc");
        assert_eq!(bare_etag(" \"a-1\" "), "a-1");
        assert_eq!(bare_etag("W/\"abc\""), "abc");
    }
}

//! The one walk of a bucket's folder: depth-first, each folder in the order the file system keeps its entries, page
//! by page, never following symbolic links. Nothing is sorted and no folder is read whole: a page costs the entries
//! it reads, however large the folder, and memory holds one read buffer for each folder on the current path. Where a
//! walk stands between two pages is a [`Position`]: the folders on its path and the directory offset reached in each
//! (the cookies `telldir` gives), from which a later walk carries on. A walk may also be asked for every key it
//! holds within a budget of entries read ([`Walker::keys_within`]): what a listing small enough to sort needs.
//!
//! A folder that does not change while it is walked is listed whole, each entry once: the offsets are stable
//! positions in the folder's index (ext4 and XFS: the hash of the next name; btrfs: its index number; tmpfs: its
//! offset map). An entry added or removed meanwhile may or may not be seen; one that stays is seen once.

use std::io;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

use super::object;
use crate::{ListedObject, ObjectKey};

/// A walk under way; each [`Walker::next_page`] carries on where the last one stopped.
#[derive(Debug)]
pub(super) struct Walker {
    /// The folders entered, the bucket's (or the listing's) first.
    stack: Vec<Level>,
    /// Only keys starting with this are collected.
    prefix: String,
    /// Only keys after this are collected (what earlier pages in key order gave is not given again).
    after: Option<String>,
    /// Directory entries read so far: what a walk costs.
    entries_read: u64,
    /// Directory entries the walk may read before [`Met::OverBudget`].
    budget: u64,
}

/// What [`Walker::next_entry`] meets.
enum Met {
    /// A file under the prefix (after `after`), in the folder on top of the stack.
    File { key: String, name: std::ffi::CString },
    /// A name under the prefix that no key of DraftStore's could have.
    Foreign(String),
    /// The walk has read its budget of entries.
    OverBudget,
}

/// A folder on the walk's path.
struct Level {
    dir: Dir,
    /// Its name in the folder above (empty for the first).
    name: String,
    /// The key prefix of its entries: its key and '/' (the listing's own for the first).
    key_prefix: String,
    /// The offset after the last entry taken from it.
    offset: i64,
}

impl std::fmt::Debug for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Level").field("key_prefix", &self.key_prefix).field("offset", &self.offset).finish()
    }
}

/// Where a walk stands: the folders entered below its first, and the offset reached in each, the first's first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    offsets: Vec<i64>,
    folders: Vec<String>,
}

impl Position {
    /// The position as text: the offsets in hex separated by `.`, a `:`, then the folders separated by `/`.
    pub fn encode(&self) -> String {
        let offsets: Vec<String> = self.offsets.iter().map(|offset| format!("{:x}", *offset as u64)).collect();
        format!("{}:{}", offsets.join("."), self.folders.join("/"))
    }

    /// Reads back what [`Position::encode`] wrote; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let (offsets, folders) = text.split_once(':')?;
        let offsets = offsets
            .split('.')
            .map(|hex| {
                let valid = (1..=16).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
                valid.then(|| u64::from_str_radix(hex, 16).ok().map(|offset| offset as i64)).flatten()
            })
            .collect::<Option<Vec<i64>>>()?;
        let folders: Vec<String> =
            if folders.is_empty() { Vec::new() } else { folders.split('/').map(str::to_owned).collect() };
        (offsets.len() == folders.len() + 1).then_some(Self { offsets, folders })
    }
}

/// What one page of a walk found.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Objects, in the order met.
    pub objects: Vec<ListedObject>,
    /// Files whose names are not keys DraftStore could have written.
    pub foreign: Vec<String>,
    /// Where the next page starts, when more objects follow.
    pub next: Option<Position>,
}

/// What a page stops at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// After `limit` objects, looking on for one more so that a last page says it is the last.
    Exact,
    /// After `limit` objects: the walk goes on in the same [`Walker`], and a last page may be followed by an empty
    /// one.
    Streaming,
}

impl Walker {
    /// A walk of `dir`, whose keys start with `key_prefix`, collecting keys that start with `prefix`. A missing
    /// `dir` is an error of kind `NotFound`.
    pub fn new(dir: &Path, key_prefix: String, prefix: String) -> io::Result<Self> {
        let first = Level { dir: open_dir(rustix::fs::CWD, dir)?, name: String::new(), key_prefix, offset: 0 };
        Ok(Self { stack: vec![first], prefix, after: None, entries_read: 0, budget: u64::MAX })
    }

    /// The same walk, collecting only keys after `after`.
    pub fn after(mut self, after: Option<String>) -> Self {
        self.after = after;
        self
    }

    /// Every key of the walk, in no order, when the whole walk reads at most `budget` directory entries; `None`
    /// when it would read more (and it stops there). Files are not opened.
    pub fn keys_within(&mut self, budget: u64) -> io::Result<Option<Vec<ObjectKey>>> {
        self.budget = self.entries_read.saturating_add(budget);
        let mut keys = Vec::new();
        loop {
            match self.next_entry()? {
                None => return Ok(Some(keys)),
                Some(Met::OverBudget) => return Ok(None),
                Some(Met::Foreign(_)) => {}
                Some(Met::File { key, .. }) => keys.extend(ObjectKey::parse(&key).ok()),
            }
        }
    }

    /// The walk of [`Walker::new`], carried on from `position`. A position whose folders are not names of keys
    /// under the listing's prefix is an error of kind `InvalidInput`. A folder of the position removed since is
    /// left, and the walk goes on after it.
    pub fn resume(dir: &Path, key_prefix: String, prefix: String, position: &Position) -> io::Result<Self> {
        let mut walker = Self::new(dir, key_prefix, prefix)?;
        let mut key = walker.stack[0].key_prefix.clone();
        for name in &position.folders {
            key.push_str(name);
            key.push('/');
            let valid = ObjectKey::parse(&format!("{key}x")).is_ok() && !name.contains('/');
            if !valid || !relevant(&walker.prefix, &key) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a position of this listing"));
            }
        }
        for (depth, offset) in position.offsets.iter().enumerate() {
            walker.stack[depth].dir.seek(*offset)?;
            walker.stack[depth].offset = *offset;
            let Some(name) = position.folders.get(depth) else { break };
            let parent = &walker.stack[depth];
            let key_prefix = format!("{}{name}/", parent.key_prefix);
            match open_dir(parent.dir.fd()?, name.as_str()) {
                Ok(dir) => walker.stack.push(Level { dir, name: name.clone(), key_prefix, offset: 0 }),
                Err(e) if super::is_absent(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(walker)
    }

    /// Where the walk stands.
    fn position(&self) -> Position {
        Position {
            offsets: self.stack.iter().map(|level| level.offset).collect(),
            folders: self.stack.iter().skip(1).map(|level| level.name.clone()).collect(),
        }
    }

    /// Directory entries read so far, over every page: what the tests hold a page's cost to.
    #[cfg(test)]
    pub fn entries_read(&self) -> u64 {
        self.entries_read
    }

    /// Up to `limit` more objects, with each one's size and time; blocking (run it on a blocking thread).
    pub fn next_page(&mut self, limit: usize, stop: Stop) -> io::Result<Found> {
        let mut found = Found::default();
        loop {
            if found.objects.len() == limit && stop == Stop::Streaming {
                found.next = Some(self.position());
                break;
            }
            let (key, name) = match self.next_entry()? {
                None | Some(Met::OverBudget) => break,
                Some(Met::Foreign(key)) => {
                    if found.objects.len() < limit {
                        found.foreign.push(key);
                    }
                    continue;
                }
                Some(Met::File { key, name }) => (key, name),
            };
            let Ok(parsed) = ObjectKey::parse(&key) else {
                if found.objects.len() < limit {
                    found.foreign.push(key);
                }
                continue;
            };
            if found.objects.len() == limit {
                // Another object follows the page, which ended where `next` says.
                break;
            }
            let Some(level) = self.stack.last() else { break };
            if let Some((size, modified, etag)) = object_file(level.dir.fd()?, name.as_c_str())? {
                found.objects.push(ListedObject {
                    key: parsed,
                    size,
                    last_modified: modified.into(),
                    etag: Some(etag),
                });
                if found.objects.len() == limit && stop == Stop::Exact {
                    // Remembered before looking on, which moves the walk.
                    found.next = Some(self.position());
                }
            }
        }
        if stop == Stop::Exact && self.stack.is_empty() {
            found.next = None;
        }
        Ok(found)
    }

    /// The next file the walk meets under its prefix, entering folders on the way; `None` at the end.
    fn next_entry(&mut self) -> io::Result<Option<Met>> {
        while let Some(level) = self.stack.last_mut() {
            if self.entries_read >= self.budget {
                return Ok(Some(Met::OverBudget));
            }
            let Some(entry) = level.dir.read() else {
                self.stack.pop();
                continue;
            };
            let entry = entry?;
            self.entries_read += 1;
            level.offset = entry.offset();
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => match rustix::fs::statat(level.dir.fd()?, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => return Err(e.into()),
                },
                kind => kind,
            };
            if !matches!(kind, FileType::Directory | FileType::RegularFile) {
                continue;
            }
            let Ok(utf8) = name.to_str() else {
                // No key of DraftStore's names it: reported, never entered or read.
                let key = format!("{}{}", level.key_prefix, name.to_string_lossy());
                if key.starts_with(&self.prefix) {
                    return Ok(Some(Met::Foreign(key)));
                }
                continue;
            };
            let key = format!("{}{utf8}", level.key_prefix);
            if kind == FileType::Directory {
                let folder = format!("{key}/");
                // Every key in the folder starts with `folder`: if `after` is beyond them all, it is left out.
                let passed =
                    self.after.as_deref().is_some_and(|after| after > folder.as_str() && !after.starts_with(&folder));
                if relevant(&self.prefix, &folder) && !passed {
                    let name = utf8.to_owned();
                    match open_dir(level.dir.fd()?, name.as_str()) {
                        Ok(dir) => self.stack.push(Level { dir, name, key_prefix: folder, offset: 0 }),
                        Err(e) if super::is_absent(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            if !key.starts_with(&self.prefix) || self.after.as_deref().is_some_and(|after| key.as_str() <= after) {
                continue;
            }
            return Ok(Some(Met::File { key, name: name.to_owned() }));
        }
        Ok(None)
    }
}

/// Whether keys under the folder of key `folder` (ending in '/') can start with `prefix`.
fn relevant(prefix: &str, folder: &str) -> bool {
    folder.starts_with(prefix) || prefix.starts_with(folder)
}

/// Opens a folder without following a symbolic link.
fn open_dir(parent: impl rustix::fd::AsFd, name: impl rustix::path::Arg) -> io::Result<Dir> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())?;
    Ok(Dir::new(fd)?)
}

/// An object file's data length, modification time and etag (`name` in `dir`, or a path from the working folder with
/// `rustix::fs::CWD`); `None` when it vanished or is not an object file. Blocking.
pub(super) fn object_file(
    dir: impl rustix::fd::AsFd,
    name: impl rustix::path::Arg,
) -> io::Result<Option<(u64, std::time::SystemTime, String)>> {
    // Not blocking on a special file that replaced the entry since it was read; never through a symbolic link.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => std::fs::File::from(fd),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let stat = file.metadata()?;
    if !stat.is_file() {
        return Ok(None);
    }
    let mut file = file;
    match object::read_trailer_blocking(&mut file, stat.len()) {
        Ok((size, trailer)) => {
            let modified = stat.modified()?;
            Ok(Some((size, modified, super::given_or_stat_etag(trailer.etag, size, modified))))
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    /// Writes an object file as the backend does: the bytes, then a trailer.
    fn object(path: &Path, bytes: &[u8]) {
        let trailer = serde_json::from_str(r#"{"content_type": "text/plain"}"#).expect("a trailer");
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("folders");
        std::fs::write(path, [bytes, &object::encode_trailer(&trailer)].concat()).expect("an object file");
    }

    /// Every page of a listing of `dir` under `prefix`, `limit` at a time, each walk resumed from the last
    /// page's position as a new request would; `between` runs after each page.
    fn pages(dir: &Path, prefix: &str, limit: usize, mut between: impl FnMut(usize)) -> Vec<Vec<String>> {
        let (mut pages, mut position) = (Vec::new(), None::<String>);
        loop {
            let mut walker = match &position {
                None => Walker::new(dir, String::new(), prefix.to_owned()),
                Some(text) => {
                    let position = Position::decode(text).expect("a position reads back");
                    Walker::resume(dir, String::new(), prefix.to_owned(), &position)
                }
            }
            .expect("a walk");
            let found = walker.next_page(limit, Stop::Exact).expect("a page");
            assert!(found.objects.len() <= limit);
            pages.push(found.objects.iter().map(|o| o.key.to_string()).collect());
            between(pages.len());
            match found.next {
                Some(next) => position = Some(next.encode()),
                None => return pages,
            }
        }
    }

    #[test]
    fn a_walk_pages_through_every_object_once_and_reports_names_that_are_not_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in ["a/b/c", "a-z", "a/a", "b", "deep/er/still/x"] {
            object(&dir.path().join(file), b"12345");
        }
        std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), b"").expect("a file");
        std::fs::create_dir(dir.path().join("empty")).expect("a folder");
        std::fs::write(dir.path().join("a/not-an-object"), b"no trailer").expect("a file");

        let all = pages(dir.path(), "", 2, |_| {});
        assert!(all.iter().all(|page| page.len() <= 2));
        assert!(all.last().is_some_and(|page| !page.is_empty()), "the last page says it is the last: {all:?}");
        let keys: Vec<String> = all.concat();
        let unique: BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "each once: {keys:?}");
        assert_eq!(unique.into_iter().cloned().collect::<Vec<_>>(), ["a-z", "a/a", "a/b/c", "b", "deep/er/still/x"]);

        let mut walker = Walker::new(dir.path(), String::new(), String::new()).expect("a walk");
        let found = walker.next_page(100, Stop::Streaming).expect("a page");
        assert_eq!(found.foreign, ["bad\u{fffd}"]);
        assert!(found.objects.iter().all(|o| o.size == 5), "sizes from the trailers: {:?}", found.objects);
        assert!(found.next.is_none());

        let under_a = pages(dir.path(), "a/", 10, |_| {}).concat();
        assert_eq!(
            under_a.into_iter().collect::<BTreeSet<_>>(),
            BTreeSet::from(["a/a".to_owned(), "a/b/c".to_owned()])
        );
    }

    #[test]
    fn a_page_reads_the_entries_it_returns_not_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..20_000 {
            object(&dir.path().join(format!("many/{i:05}")), b"x");
        }
        // The first page, and one from deep in the folder: each reads its own entries and the one after, whatever
        // the folder's size (`.` and `..` besides).
        let mut walker = Walker::new(&dir.path().join("many"), "many/".to_owned(), "many/".to_owned()).expect("walk");
        let first = walker.next_page(100, Stop::Exact).expect("a page");
        assert_eq!(first.objects.len(), 100);
        assert!(walker.entries_read() <= 103, "read {} entries for a page of 100", walker.entries_read());
        let mut streaming =
            Walker::new(&dir.path().join("many"), "many/".to_owned(), "many/".to_owned()).expect("walk");
        let mut middle = None;
        for _ in 0..100 {
            middle = streaming.next_page(100, Stop::Exact).expect("a page").next;
        }
        let middle = middle.expect("more follow");
        let mut resumed =
            Walker::resume(&dir.path().join("many"), "many/".to_owned(), "many/".to_owned(), &middle).expect("walk");
        let page = resumed.next_page(100, Stop::Exact).expect("a page");
        assert_eq!(page.objects.len(), 100);
        assert!(resumed.entries_read() <= 101, "read {} entries for a page of 100", resumed.entries_read());
    }

    #[test]
    fn objects_that_stay_are_listed_once_while_others_come_and_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..1000 {
            object(&dir.path().join(format!("stays-{i:04}")), b"x");
            object(&dir.path().join(format!("goes-{i:04}")), b"x");
        }
        let mut added = 0;
        let all = pages(dir.path(), "", 50, |page| {
            // Between pages, twenty objects added and twenty removed.
            for _ in 0..20 {
                object(&dir.path().join(format!("new-{added:05}")), b"x");
                let _ = std::fs::remove_file(dir.path().join(format!("goes-{added:04}")));
                added += 1;
            }
            assert!(page < 1000, "the listing ends");
        })
        .concat();
        let stays: Vec<&String> = all.iter().filter(|key| key.starts_with("stays-")).collect();
        let unique: BTreeSet<&&String> = stays.iter().collect();
        assert_eq!((stays.len(), unique.len()), (1000, 1000), "every object that stayed, each once");
        let all_unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(all_unique.len(), all.len(), "nothing listed twice");
    }

    #[test]
    fn a_position_is_refused_outside_its_listing_and_links_are_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        object(&outside.path().join("secret"), b"s");
        object(&dir.path().join("alice/photos/a"), b"a");
        object(&dir.path().join("bob/b"), b"b");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("alice/photos/link")).expect("a link");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("alice/photos/file-link"))
            .expect("a link");
        let base = dir.path().join("alice");
        let mut walker = Walker::new(&base, "alice/".to_owned(), "alice/".to_owned()).expect("a walk");
        let found = walker.next_page(10, Stop::Exact).expect("a page");
        let keys: Vec<String> = found.objects.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["alice/photos/a"], "links are neither entered nor listed");

        // Positions that read well but name folders that are not under the listing's prefix, or not folders of keys.
        for forged in ["0.0:..", "0.0:.", "0.0:videos", "0.0.0:photos/..", "0.0.0:photos/", "0.0:a\\b"] {
            let position = Position::decode(forged).expect("well formed");
            let refused = Walker::resume(&base, "alice/".to_owned(), "alice/photos/".to_owned(), &position);
            assert_eq!(refused.map(drop).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput), "{forged}");
        }
        for garbage in ["", "x", "12", "zz:a", "1.2:", "1:a", ":", "0.0.0:a", "12345678901234567:"] {
            assert_eq!(Position::decode(garbage), None, "{garbage}");
        }
        let position = Position { offsets: vec![-1, 7], folders: vec!["a:b".to_owned()] };
        assert_eq!(Position::decode(&position.encode()), Some(position), "offsets and names round-trip");
    }
}

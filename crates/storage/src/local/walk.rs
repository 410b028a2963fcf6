//! The one walk of a bucket's folder: depth-first, in the byte order of the keys it holds (a folder's name sorts
//! as the name followed by '/', so the walk meets keys in the order S3 lists them), page by page, never following
//! symbolic links. Memory holds the entries of the folders on the current path, never the whole bucket.

use std::io;
use std::path::PathBuf;

use crate::ObjectKey;

use super::is_absent;

/// A walk under way; each [`Walker::next_page`] carries on where the last one stopped.
#[derive(Debug)]
pub(super) struct Walker {
    /// The folders entered, each with its key prefix and its entries not yet visited (last first).
    stack: Vec<Folder>,
    /// Only keys starting with this are collected.
    prefix: String,
    /// Only keys after this are collected.
    after: Option<String>,
}

#[derive(Debug)]
struct Folder {
    path: PathBuf,
    key_prefix: String,
    /// Keys of the entries, folders' ending in '/'; sorted in reverse, so that `pop` gives the next.
    entries: Vec<(String, Entry)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    File,
    Folder,
    /// A name that is not UTF-8 (its key is written lossily): no key of DraftStore's names it.
    Foreign,
}

/// What one page of a walk found.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Object files, by key.
    pub objects: Vec<(PathBuf, ObjectKey)>,
    /// Files whose names are not keys DraftStore could have written.
    pub foreign: Vec<String>,
    /// More keys follow.
    pub truncated: bool,
}

impl Walker {
    /// A walk of `dir`, whose keys start with `key_prefix`, collecting keys that start with `prefix` and come after
    /// `after`. A missing `dir` is an error of kind `NotFound`.
    pub fn new(dir: PathBuf, key_prefix: String, prefix: String, after: Option<String>) -> io::Result<Self> {
        let entries = read_sorted(&dir, &key_prefix)?;
        Ok(Self { stack: vec![Folder { path: dir, key_prefix, entries }], prefix, after })
    }

    /// Up to `limit` more objects; blocking (run it on a blocking thread). `truncated` is true only when another
    /// matching key follows, so that a last page says it is the last.
    pub fn next_page(&mut self, limit: usize) -> io::Result<Found> {
        let mut found = Found::default();
        while let Some(folder) = self.stack.last_mut() {
            let Some((key, entry)) = folder.entries.pop() else {
                self.stack.pop();
                continue;
            };
            let name = &key[folder.key_prefix.len()..];
            if entry == Entry::Folder {
                let relevant = key.starts_with(&self.prefix) || self.prefix.starts_with(&key);
                // Every key in the folder starts with `key`: if `after` is beyond them all, skip the folder.
                let passed =
                    self.after.as_deref().is_some_and(|after| after > key.as_str() && !after.starts_with(&key));
                if relevant && !passed {
                    let path = folder.path.join(&name[..name.len() - 1]);
                    match read_sorted(&path, &key) {
                        Ok(entries) => self.stack.push(Folder { path, key_prefix: key, entries }),
                        Err(e) if is_absent(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            } else if key.starts_with(&self.prefix) && self.after.as_deref().is_none_or(|after| key.as_str() > after) {
                match ObjectKey::parse(&key).ok().filter(|_| entry == Entry::File) {
                    Some(_) if found.objects.len() == limit => {
                        folder.entries.push((key, entry));
                        found.truncated = true;
                        break;
                    }
                    Some(parsed) => found.objects.push((folder.path.join(name), parsed)),
                    None => found.foreign.push(key),
                }
            }
        }
        Ok(found)
    }
}

/// The entries of a folder as keys, sorted in reverse (folders with their trailing '/'). A name that is not
/// UTF-8 is foreign: reported, never entered or read.
fn read_sorted(dir: &std::path::Path, key_prefix: &str) -> io::Result<Vec<(String, Entry)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        match entry.file_name().into_string() {
            Ok(name) if kind.is_dir() => entries.push((format!("{key_prefix}{name}/"), Entry::Folder)),
            Ok(name) if kind.is_file() => entries.push((format!("{key_prefix}{name}"), Entry::File)),
            Ok(_) => {}
            Err(name) => entries.push((format!("{key_prefix}{}", name.to_string_lossy()), Entry::Foreign)),
        }
    }
    entries.sort_unstable_by(|a, b| b.cmp(a));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn a_walk_is_in_key_order_and_reports_names_that_are_not_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("folders");
        for file in ["a/b/c", "a-z", "a/a", "b"] {
            std::fs::write(dir.path().join(file), b"").expect("a file");
        }
        std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), b"").expect("a file");
        let mut walker = Walker::new(dir.path().to_owned(), String::new(), String::new(), None).expect("a walk");
        let first = walker.next_page(2).expect("a page");
        let keys = |found: &Found| found.objects.iter().map(|(_, key)| key.to_string()).collect::<Vec<_>>();
        assert_eq!((keys(&first), first.truncated), (vec!["a-z".to_owned(), "a/a".to_owned()], true));
        let rest = walker.next_page(10).expect("a page");
        assert_eq!((keys(&rest), rest.truncated), (vec!["a/b/c".to_owned(), "b".to_owned()], false));
        assert_eq!(rest.foreign, ["bad\u{fffd}"]);
    }
}

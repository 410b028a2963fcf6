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
    /// `(key, is a folder)`, folders' keys ending in '/'; sorted in reverse, so that `pop` gives the next.
    entries: Vec<(String, bool)>,
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
            let Some((key, is_dir)) = folder.entries.pop() else {
                self.stack.pop();
                continue;
            };
            let name = &key[folder.key_prefix.len()..];
            if is_dir {
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
                match ObjectKey::parse(&key) {
                    Ok(_) if found.objects.len() == limit => {
                        folder.entries.push((key, false));
                        found.truncated = true;
                        break;
                    }
                    Ok(parsed) => found.objects.push((folder.path.join(name), parsed)),
                    Err(_) => found.foreign.push(key),
                }
            }
        }
        Ok(found)
    }
}

/// The entries of a folder as keys, sorted in reverse (folders with their trailing '/'); names that are not UTF-8
/// are passed over, since no key names them.
fn read_sorted(dir: &std::path::Path, key_prefix: &str) -> io::Result<Vec<(String, bool)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            entries.push((format!("{key_prefix}{name}/"), true));
        } else if kind.is_file() {
            entries.push((format!("{key_prefix}{name}"), false));
        }
    }
    entries.sort_unstable_by(|a, b| b.cmp(a));
    Ok(entries)
}

//! Multipart uploads on the local backend, laid out so that completing one writes no byte a second time.
//!
//! An upload is a folder `.multipart/<id>/` holding `upload.json` (the object it will become, and the part size
//! the client was told to use) and its parts, which come in two kinds:
//! - *in place*: a part no larger than the announced part size is written straight into the upload's `data` file
//!   at offset `(number - 1) × part size`, fsync'd, and then recorded by a small marker `inplace-00001` (its size,
//!   ETag and checksum). Without its marker a part is absent, whatever bytes its range holds;
//! - *separate*: any other part (a client choosing its own sizes) is its own object file `part-00001`, staged and
//!   renamed into the folder.
//!
//! Completion of parts 1..n, all in place and all but the last of the announced size, is the common case: the
//! `data` file is cut to length, gets the object trailer, is fsync'd and renamed into place. Any other list is
//! assembled into a staging file with `copy_file_range` (through `std::io::copy`, a reflink where the file system
//! has them), then renamed. Either way the object appears whole or not at all, and until it has, a crash keeps
//! every part. Part writes hold a shared lock on `upload.json` and completion and abort an exclusive one, so a
//! part can never be written into an object being completed.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::fs;

use super::{
    LocalStorage, StagingFile, WriteChecks, is_absent, object, object_meta, random_hex, rename_into_place, stream_into,
};
use crate::error::BoxError;
use crate::multipart::{MAX_PART_SIZE, check_parts};
use crate::storage::Declared;
use crate::{
    BucketName, Checksum, CompletedPart, ContentType, Error, ObjectKey, Progress, Result, UploadId, UploadedPart,
};

/// Folder under the root for multipart uploads in progress; bucket names cannot start with a dot.
pub const MULTIPART_DIR: &str = ".multipart";
const MANIFEST: &str = "upload.json";
const DATA: &str = "data";
const PART_PREFIX: &str = "part-";
const INPLACE_PREFIX: &str = "inplace-";
/// Bytes copied between two progress reports while assembling.
const COPY_CHUNK: u64 = 256 * 1024 * 1024;

/// What an upload will become, kept in its folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    bucket: String,
    key: String,
    content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    declared_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    declared_sha256: Option<String>,
    /// The part size announced to the client: parts up to this size are written in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    part_size: Option<u64>,
    /// Unix seconds.
    created: i64,
}

/// The record of a part written in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    size: u64,
    etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// Unix nanoseconds.
    written: i128,
}

/// Where a part's bytes are.
#[derive(Debug)]
enum Source {
    /// In the `data` file, from this offset.
    InPlace(u64),
    /// In its own object file, from its start.
    Separate(PathBuf),
}

/// An upload's folder with its manifest locked: shared while a part is written, exclusive while the upload is
/// completed or aborted. The lock is released when this is dropped.
struct Locked {
    dir: PathBuf,
    manifest: Manifest,
    _lock: std::fs::File,
}

impl LocalStorage {
    fn multipart_root(&self) -> PathBuf {
        self.root.join(MULTIPART_DIR)
    }

    /// The folder of an upload. Local ids are 32 lowercase hex digits; anything else names no upload (and so
    /// never a path outside the multipart folder).
    fn upload_dir(&self, upload_id: &UploadId) -> Result<PathBuf> {
        let id = upload_id.as_str();
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(not_found(upload_id));
        }
        Ok(self.multipart_root().join(id))
    }

    /// The manifest of an upload of `key` in `bucket`; an upload of another object is not found.
    async fn manifest(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
    ) -> Result<(PathBuf, Manifest)> {
        let dir = self.upload_dir(upload_id)?;
        let text = match fs::read(dir.join(MANIFEST)).await {
            Ok(text) => text,
            Err(e) if is_absent(&e) => return Err(not_found(upload_id)),
            Err(e) => return Err(Error::other(format!("failed to read multipart upload '{upload_id}'"), e)),
        };
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| Error::other(format!("multipart upload '{upload_id}' has a corrupt manifest"), e))?;
        if manifest.bucket != bucket.as_str() || manifest.key != key.as_str() {
            return Err(not_found(upload_id));
        }
        Ok((dir, manifest))
    }

    /// The manifest, locked. Checked again once the lock is held: an upload completed or aborted meanwhile is
    /// not found.
    async fn lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        exclusive: bool,
    ) -> Result<Locked> {
        let (dir, _) = self.manifest(bucket, key, upload_id).await?;
        let path = dir.join(MANIFEST);
        let locked = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            if exclusive {
                file.lock()?
            } else {
                file.lock_shared()?
            }
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(|e| Error::other("the lock task stopped", e))?;
        let lock = match locked {
            Ok(lock) => lock,
            Err(e) if is_absent(&e) => return Err(not_found(upload_id)),
            Err(e) => return Err(Error::other(format!("failed to lock multipart upload '{upload_id}'"), e)),
        };
        let (dir, manifest) = self.manifest(bucket, key, upload_id).await?;
        Ok(Locked { dir, manifest, _lock: lock })
    }

    pub(super) async fn create_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
        part_size: Option<u64>,
    ) -> Result<UploadId> {
        self.require_bucket(bucket).await?;
        let id = UploadId::parse(&random_hex(16)?).map_err(|e| Error::other("generated an invalid upload id", e))?;
        let dir = self.upload_dir(&id)?;
        fs::create_dir_all(&dir).await.map_err(|e| Error::other("failed to create a multipart upload folder", e))?;
        let manifest = Manifest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            content_type: content_type.to_string(),
            declared_length: declared.length,
            declared_sha256: declared.sha256.as_ref().map(ToString::to_string),
            part_size: part_size.filter(|size| *size <= MAX_PART_SIZE),
            created: OffsetDateTime::now_utc().unix_timestamp(),
        };
        let json = serde_json::to_vec(&manifest).map_err(|e| Error::other("failed to encode a manifest", e))?;
        let folder = dir.clone();
        let written = tokio::task::spawn_blocking(move || write_durably(&folder, MANIFEST, &json))
            .await
            .map_err(|e| Error::other("manifest writer stopped", e))?;
        if let Err(e) = written {
            // No manifest, no upload: leave nothing of it behind.
            let _ = fs::remove_dir_all(&dir).await;
            return Err(Error::other("failed to write a multipart upload manifest", e));
        }
        Ok(id)
    }

    /// Stores part `number` of an upload, replacing an earlier upload of the same part. A part of at most the
    /// announced part size, whose `length` is known, is written in place; any other, to a file of its own. A
    /// failed or interrupted part is absent afterwards. A part that would take the upload past its declared length
    /// (past its own place in the announced layout), or without one past `limit` bytes in all, is refused with
    /// [`Error::TooLarge`], and an earlier upload of the part is kept.
    #[allow(clippy::too_many_arguments)]
    pub async fn write_part<S, E>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        number: u32,
        length: Option<u64>,
        sha256: Option<Checksum>,
        limit: u64,
        body: S,
    ) -> Result<UploadedPart>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let locked = self.lock(bucket, key, upload_id, false).await?;
        let bound = part_bound(&locked, key, number, limit).await?;
        if length.is_some_and(|length| length > bound) {
            return Err(Error::TooLarge { limit: bound });
        }
        // One writer per part at a time, so that two uploads of one part never interleave their bytes.
        let part_lock = locked.dir.join(format!("lock-{number:05}"));
        let part_lock = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(part_lock)?;
            file.lock()?;
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(|e| Error::other("the lock task stopped", e))?
        .map_err(|e| Error::other(format!("failed to lock part {number} of '{key}'"), e))?;
        // The part is absent from here until its new bytes are durable.
        for name in [part_name(number), marker_name(number)] {
            if let Err(e) = fs::remove_file(locked.dir.join(name)).await
                && !is_absent(&e)
            {
                return Err(Error::other(format!("failed to replace part {number} of '{key}'"), e));
            }
        }
        let part = match (locked.manifest.part_size, length) {
            (Some(part_size), Some(length)) if length <= part_size => {
                let written = self.write_in_place(&locked.dir, key, number, part_size, bound, sha256, body).await;
                if written.is_err() {
                    drop(part_lock);
                    let dir = locked.dir.clone();
                    drop(locked);
                    // Give back the room a failed part took when no other writer is busy (a full disk, most
                    // likely); otherwise the next completion, abort or cleaner pass does.
                    let _ = tokio::task::spawn_blocking(move || reclaim_tail(&dir, part_size)).await;
                    return written;
                }
                written?
            }
            _ => self.write_separate(&locked.dir, key, number, bound, sha256, body).await?,
        };
        drop(part_lock);
        Ok(part)
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_in_place<S, E>(
        &self,
        dir: &Path,
        key: &ObjectKey,
        number: u32,
        part_size: u64,
        bound: u64,
        sha256: Option<Checksum>,
        body: S,
    ) -> Result<UploadedPart>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let path = dir.join(DATA);
        let offset = u64::from(number - 1) * part_size;
        let opened = tokio::task::spawn_blocking(move || {
            use std::io::Seek;
            let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
            file.seek(io::SeekFrom::Start(offset))?;
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(|e| Error::other("the part writer stopped", e))?;
        let file = opened.map_err(|e| super::write_error(key, e))?;
        let max = part_size.min(bound);
        let (size, digest, _) = stream_into(file, key, Some(max), sha256.is_some(), Vec::new(), body).await?;
        let actual = digest.map(|d| Checksum::from_digest(&d));
        if sha256.is_some() && actual != sha256 {
            return Err(Error::ChecksumMismatch);
        }
        let now = OffsetDateTime::now_utc();
        let written = now.unix_timestamp_nanos();
        let marker = Marker {
            size,
            etag: format!("\"{size:x}-{written:x}\""),
            sha256: sha256.as_ref().map(ToString::to_string),
            written,
        };
        let json = serde_json::to_vec(&marker).map_err(|e| Error::other("failed to encode a part marker", e))?;
        let (dir, name) = (dir.to_owned(), marker_name(number));
        let recorded = tokio::task::spawn_blocking(move || write_durably(&dir, &name, &json))
            .await
            .map_err(|e| Error::other("the part writer stopped", e))?;
        recorded.map_err(|e| super::write_error(key, e))?;
        Ok(UploadedPart { number, size, etag: marker.etag, sha256, last_modified: now })
    }

    async fn write_separate<S, E>(
        &self,
        dir: &Path,
        key: &ObjectKey,
        number: u32,
        bound: u64,
        sha256: Option<Checksum>,
        body: S,
    ) -> Result<UploadedPart>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let checks = WriteChecks { max_size: Some(bound), sha256, ..WriteChecks::default() };
        let staged = self.stage(key, ContentType::octet_stream(), &checks, body).await?;
        fs::rename(&staged.file.path, dir.join(part_name(number)))
            .await
            .map_err(|e| Error::other(format!("failed to store part {number} of '{key}'"), e))?;
        staged.file.disarm();
        super::sync_dir(dir).await;
        Ok(UploadedPart {
            number,
            size: staged.meta.size,
            etag: quoted(staged.meta.etag.as_deref().unwrap_or_default()),
            sha256: staged.meta.sha256,
            last_modified: staged.meta.last_modified,
        })
    }

    pub(super) async fn uploaded_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
    ) -> Result<Vec<UploadedPart>> {
        let (dir, manifest) = self.manifest(bucket, key, upload_id).await?;
        Ok(parts_in(&dir, key, &manifest).await?.into_iter().map(|(part, _)| part).collect())
    }

    pub(super) async fn complete_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        listed: &[CompletedPart],
        progress: &Progress,
    ) -> Result<()> {
        let locked = self.lock(bucket, key, upload_id, true).await?;
        progress.step();
        self.require_bucket(bucket).await?;
        let (dir, manifest) = (&locked.dir, &locked.manifest);
        let found = parts_in(dir, key, manifest).await?;
        let uploaded: Vec<UploadedPart> = found.iter().map(|(part, _)| part.clone()).collect();
        let size = check_parts(listed, &uploaded).map_err(|message| Error::InvalidParts { message })?;
        let chosen: Vec<&(UploadedPart, Source)> =
            listed.iter().filter_map(|wanted| found.iter().find(|(part, _)| part.number == wanted.number)).collect();
        // Parts 1..n in place, each but the last of the announced size, and no other part in place past them: the
        // data file is the object already, and cutting it to length loses no part.
        let in_place = found.iter().filter(|(_, source)| matches!(source, Source::InPlace(_))).count();
        let in_order = in_place == chosen.len()
            && manifest.part_size.is_some_and(|part_size| {
                chosen.iter().enumerate().all(|(index, (part, source))| {
                    part.number as usize == index + 1
                        && matches!(source, Source::InPlace(_))
                        && (index + 1 == chosen.len() || part.size == part_size)
                })
            });
        let staged = if in_order {
            let path = dir.join(DATA);
            if fs::metadata(&path).await.is_err() {
                // Its markers outlived the data file: a crash after the object was put in place, before the
                // folder was removed. The upload is complete; the cleaner removes the rest.
                return Err(not_found(upload_id));
            }
            StagingFile { path, armed: false }
        } else {
            self.assemble(dir, key, &chosen, progress).await?
        };

        let declared_sha256 = manifest.declared_sha256.as_deref().and_then(|c| Checksum::parse(c).ok());
        let sha256 = match &declared_sha256 {
            None => None,
            Some(expected) => {
                let actual = hash_file(&staged.path, size, progress).await.map_err(|e| super::write_error(key, e))?;
                if &actual != expected {
                    return Err(Error::InvalidParts {
                        message: "the assembled parts do not match the declared checksum_sha256 of the whole; upload \
                                  the wrong parts again"
                            .to_owned(),
                    });
                }
                Some(actual)
            }
        };
        let trailer = object::encode_trailer(&object::Trailer {
            content_type: manifest.content_type.clone(),
            etag: Some(super::new_etag()?),
            sha256: sha256.map(|c| c.to_string()),
            declared_length: manifest.declared_length,
            declared_sha256: manifest.declared_sha256.clone(),
            metadata: crate::Metadata::new(),
        });
        let path = staged.path.clone();
        let finished = tokio::task::spawn_blocking(move || {
            use std::io::{Seek, Write};
            let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&path)?;
            // Cut what lies past the object (a trailer of an earlier attempt) and append the trailer.
            file.set_len(size)?;
            file.seek(io::SeekFrom::End(0))?;
            file.write_all(&trailer)?;
            file.sync_all()
        })
        .await
        .map_err(|e| Error::other("the assembly task stopped", e))?;
        finished.map_err(|e| super::write_error(key, e))?;
        rename_into_place(&staged.path, &self.object_path(bucket, key), key).await?;
        staged.disarm();
        // The object is in place: the parts have served. The manifest goes first, so that a part writer waiting
        // for the lock finds the upload gone; a crash before the folder is removed leaves it to the cleaner.
        let _ = fs::remove_file(dir.join(MANIFEST)).await;
        if let Err(e) = fs::remove_dir_all(&locked.dir).await {
            tracing::warn!(%key, %upload_id, error = %e, "failed to remove the parts of a completed upload");
        }
        Ok(())
    }

    /// Copies the chosen parts, in order, into a new staging file.
    async fn assemble(
        &self,
        dir: &Path,
        key: &ObjectKey,
        chosen: &[&(UploadedPart, Source)],
        progress: &Progress,
    ) -> Result<StagingFile> {
        let staged = StagingFile::create(&self.staging).await?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged.path)
            .map_err(|e| Error::other("failed to create a staging file", e))?;
        for (part, source) in chosen {
            let (path, mut offset) = match source {
                Source::InPlace(offset) => (dir.join(DATA), *offset),
                Source::Separate(path) => (path.clone(), 0),
            };
            let mut file = std::fs::File::open(&path)
                .map_err(|e| Error::other(format!("failed to open part {} of '{key}'", part.number), e))?;
            let mut left = part.size;
            while left > 0 {
                let chunk = left.min(COPY_CHUNK);
                let copied = tokio::task::spawn_blocking(move || {
                    use std::io::{Read, Seek};
                    file.seek(io::SeekFrom::Start(offset))?;
                    let copied = io::copy(&mut (&mut file).take(chunk), &mut out)?;
                    Ok::<_, io::Error>((file, out, copied))
                })
                .await
                .map_err(|e| Error::other("the assembly task stopped", e))?;
                let (back, back_out, copied) = copied.map_err(|e| super::write_error(key, e))?;
                if copied != chunk {
                    return Err(Error::other(
                        format!("part {} of '{key}' is shorter than it was", part.number),
                        io::Error::from(io::ErrorKind::UnexpectedEof),
                    ));
                }
                (file, out) = (back, back_out);
                left -= chunk;
                offset += chunk;
                progress.step();
            }
        }
        Ok(staged)
    }

    pub(super) async fn abort_upload(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        let locked = self.lock(bucket, key, upload_id, true).await?;
        let _ = fs::remove_file(locked.dir.join(MANIFEST)).await;
        match fs::remove_dir_all(&locked.dir).await {
            Ok(()) => Ok(()),
            Err(e) if is_absent(&e) => Err(not_found(upload_id)),
            Err(e) => Err(Error::other(format!("failed to remove multipart upload '{upload_id}'"), e)),
        }
    }

    /// Removes uploads started before `before`, returning how many.
    pub(super) async fn remove_stale_multipart(&self, before: OffsetDateTime) -> Result<u64> {
        let mut entries = match fs::read_dir(self.multipart_root()).await {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => return Ok(0),
            Err(e) => return Err(Error::other("failed to read the multipart folder", e)),
        };
        let mut removed = 0;
        while let Some(entry) =
            entries.next_entry().await.map_err(|e| Error::other("failed to read the multipart folder", e))?
        {
            let dir = entry.path();
            // An upload whose manifest is unreadable (a crash while creating or removing it) is as old as its
            // folder.
            let manifest = fs::read(dir.join(MANIFEST)).await.ok();
            let started = match manifest.and_then(|text| serde_json::from_slice::<Manifest>(&text).ok()) {
                Some(manifest) => {
                    OffsetDateTime::from_unix_timestamp(manifest.created).unwrap_or(OffsetDateTime::UNIX_EPOCH)
                }
                None => match entry.metadata().await.and_then(|m| m.modified()) {
                    Ok(modified) => modified.into(),
                    Err(_) => continue,
                },
            };
            if started < before && fs::remove_dir_all(&dir).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The most bytes part `number` may hold, never more than a part can: with a declared length and the announced
/// part size, its own place in that layout (the part size, the remainder for the last part; nothing past it), so
/// that the parts cannot add up to more than declared; without, what `limit` leaves beside the other parts (two
/// parts written at once may each count without the other).
async fn part_bound(locked: &Locked, key: &ObjectKey, number: u32, limit: u64) -> Result<u64> {
    let manifest = &locked.manifest;
    let bound = match (manifest.declared_length, manifest.part_size) {
        (Some(length), Some(part_size)) if part_size > 0 => {
            let (count, number) = (length.div_ceil(part_size).max(1), u64::from(number));
            if number > count {
                return Err(Error::TooLarge { limit: 0 });
            }
            if number < count { part_size } else { length - (count - 1) * part_size }
        }
        (declared, _) => {
            let others: u64 = parts_in(&locked.dir, key, manifest)
                .await?
                .iter()
                .filter(|(part, _)| part.number != number)
                .map(|(part, _)| part.size)
                .sum();
            declared.unwrap_or(limit).min(limit).saturating_sub(others)
        }
    };
    Ok(bound.min(MAX_PART_SIZE))
}

fn not_found(upload_id: &UploadId) -> Error {
    Error::UploadNotFound { upload_id: upload_id.to_string() }
}

fn part_name(number: u32) -> String {
    format!("{PART_PREFIX}{number:05}")
}

fn marker_name(number: u32) -> String {
    format!("{INPLACE_PREFIX}{number:05}")
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// The parts of an upload, by number, with where their bytes are. Should a part exist in both forms (a crash
/// between replacing one and removing the other), the later one counts.
async fn parts_in(dir: &Path, key: &ObjectKey, manifest: &Manifest) -> Result<Vec<(UploadedPart, Source)>> {
    let mut entries =
        fs::read_dir(dir).await.map_err(|e| Error::other(format!("failed to list the parts of '{key}'"), e))?;
    let mut parts: Vec<(UploadedPart, Source)> = Vec::new();
    while let Some(entry) =
        entries.next_entry().await.map_err(|e| Error::other(format!("failed to list the parts of '{key}'"), e))?
    {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let found = if let Some(number) = name.strip_prefix(PART_PREFIX).and_then(|n| n.parse::<u32>().ok()) {
            separate_part(&entry.path(), key, number).await?
        } else if let Some(number) = name.strip_prefix(INPLACE_PREFIX).and_then(|n| n.parse::<u32>().ok()) {
            match (manifest.part_size, fs::read(entry.path()).await) {
                (Some(part_size), Ok(json)) => serde_json::from_slice::<Marker>(&json).ok().map(|marker| {
                    let part = UploadedPart {
                        number,
                        size: marker.size,
                        etag: marker.etag,
                        sha256: marker.sha256.and_then(|c| Checksum::parse(&c).ok()),
                        last_modified: OffsetDateTime::from_unix_timestamp_nanos(marker.written)
                            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    };
                    (part, Source::InPlace(u64::from(number - 1) * part_size))
                }),
                _ => None,
            }
        } else {
            None
        };
        let Some((part, source)) = found else { continue };
        match parts.iter_mut().find(|(known, _)| known.number == part.number) {
            Some(known) if known.0.last_modified >= part.last_modified => {}
            Some(known) => *known = (part, source),
            None => parts.push((part, source)),
        }
    }
    parts.sort_by_key(|(part, _)| part.number);
    Ok(parts)
}

/// A part kept in its own object file; `None` when it vanished meanwhile.
async fn separate_part(path: &Path, key: &ObjectKey, number: u32) -> Result<Option<(UploadedPart, Source)>> {
    let mut file = match fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(Error::other(format!("failed to open part {number} of '{key}'"), e)),
    };
    let read = async {
        let stat = file.metadata().await?;
        let (size, trailer) = object::read_trailer(&mut file, stat.len()).await?;
        Ok::<_, io::Error>((size, trailer, stat.modified()?))
    };
    let (size, trailer, modified) =
        read.await.map_err(|e| Error::other(format!("failed to read part {number} of '{key}'"), e))?;
    let meta = object_meta(key, size, trailer, modified);
    let part = UploadedPart {
        number,
        size,
        etag: quoted(meta.etag.as_deref().unwrap_or_default()),
        sha256: meta.sha256,
        last_modified: meta.last_modified,
    };
    Ok(Some((part, Source::Separate(path.to_owned()))))
}

/// The SHA-256 of the first `size` bytes of a file, read in chunks that each report progress.
async fn hash_file(path: &Path, size: u64, progress: &Progress) -> io::Result<Checksum> {
    let mut file = std::fs::File::open(path)?;
    let mut digest = Sha256::new();
    let mut left = size;
    while left > 0 {
        let chunk = left.min(COPY_CHUNK);
        let (back_file, back_digest) = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buffer = vec![0u8; 1024 * 1024];
            let mut reader = (&mut file).take(chunk);
            loop {
                let n = reader.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                digest.update(&buffer[..n]);
            }
            Ok::<_, io::Error>((file, digest))
        })
        .await
        .map_err(io::Error::other)??;
        (file, digest) = (back_file, back_digest);
        left -= chunk;
        progress.step();
    }
    Ok(Checksum::from_digest(&digest.finalize().into()))
}

/// Writes `bytes` to `dir/name` through a temporary file, fsync'd and renamed, then fsyncs the folder. The
/// temporary file is removed when any step fails.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let temp = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    std::fs::File::open(dir)?.sync_all()
}

/// Cuts the in-place data file back to the end of its last recorded part, or removes it when no part is
/// recorded, if no part write holds the upload (an exclusive lock taken without waiting); otherwise does nothing.
fn reclaim_tail(dir: &Path, part_size: u64) -> io::Result<()> {
    let lock = std::fs::File::open(dir.join(MANIFEST))?;
    if lock.try_lock().is_err() {
        return Ok(());
    }
    let mut end = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(number) =
            name.to_str().and_then(|n| n.strip_prefix(INPLACE_PREFIX)).and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(marker) = serde_json::from_slice::<Marker>(&std::fs::read(entry.path())?) {
            end = end.max(u64::from(number - 1) * part_size + marker.size);
        }
    }
    let data = dir.join(DATA);
    if end == 0 {
        match std::fs::remove_file(&data) {
            Err(e) if !is_absent(&e) => return Err(e),
            _ => return Ok(()),
        }
    }
    let file = std::fs::OpenOptions::new().write(true).open(&data)?;
    if file.metadata()?.len() > end {
        file.set_len(end)?;
    }
    Ok(())
}

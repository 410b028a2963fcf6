//! Multipart uploads on the local backend. An upload is a folder `.multipart/<id>/` holding `upload.json` (the
//! object it will become: bucket, key, content type, declared values, start time) and one file per part,
//! `part-00001` and so on, in the object file format (bytes, then a trailer carrying the part's verified SHA-256).
//! Parts are staged and renamed into the folder like objects, so a part is whole or absent.
//!
//! Completion copies the parts' bytes into one staging file with `copy_file_range` (through `std::io::copy`, which
//! uses it, and reflinks where the file system can), appends the object trailer, fsyncs, and renames the file into
//! place; only then is the upload folder removed. A crash during assembly leaves no object and keeps the parts.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::fs;

use super::{LocalStorage, StagingFile, WriteChecks, is_absent, object, object_meta, random_hex, rename_into_place};
use crate::error::BoxError;
use crate::multipart::{MAX_PART_SIZE, check_parts};
use crate::storage::Declared;
use crate::{
    BucketName, Checksum, CompletedPart, ContentType, Error, ObjectKey, Progress, Result, UploadId, UploadedPart,
};

/// Folder under the root for multipart uploads in progress; bucket names cannot start with a dot.
pub const MULTIPART_DIR: &str = ".multipart";
const MANIFEST: &str = "upload.json";
const PART_PREFIX: &str = "part-";
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
    /// Unix seconds.
    created: i64,
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

    pub(super) async fn create_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
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
            created: OffsetDateTime::now_utc().unix_timestamp(),
        };
        let json = serde_json::to_vec(&manifest).map_err(|e| Error::other("failed to encode a manifest", e))?;
        let written = tokio::task::spawn_blocking(move || write_durably(&dir, MANIFEST, &json))
            .await
            .map_err(|e| Error::other("manifest writer stopped", e))?;
        written.map_err(|e| Error::other("failed to write a multipart upload manifest", e))?;
        Ok(id)
    }

    /// Stores part `number` of an upload, replacing an earlier upload of the same part. Like an object upload, a
    /// failed or interrupted part leaves nothing behind.
    pub async fn write_part<S, E>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        number: u32,
        sha256: Option<Checksum>,
        body: S,
    ) -> Result<UploadedPart>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let (dir, _) = self.manifest(bucket, key, upload_id).await?;
        let checks = WriteChecks { max_size: Some(MAX_PART_SIZE), sha256, declared: Declared::default() };
        let staged = self.stage(key, ContentType::octet_stream(), &checks, body).await?;
        match fs::rename(&staged.file.path, dir.join(part_name(number))).await {
            Ok(()) => {}
            // Aborted while the part was on its way.
            Err(e) if is_absent(&e) => return Err(not_found(upload_id)),
            Err(e) => return Err(Error::other(format!("failed to store part {number} of '{key}'"), e)),
        }
        staged.file.disarm();
        super::sync_dir(&dir).await;
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
        let (dir, _) = self.manifest(bucket, key, upload_id).await?;
        let mut entries = match fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => return Err(not_found(upload_id)),
            Err(e) => return Err(Error::other(format!("failed to list the parts of '{upload_id}'"), e)),
        };
        let mut parts = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| Error::other(format!("failed to list the parts of '{upload_id}'"), e))?
        {
            let name = entry.file_name();
            let Some(number) = name.to_str().and_then(part_number) else { continue };
            match open_part(&entry.path(), key, number).await {
                Ok(Some((part, _))) => parts.push(part),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        parts.sort_by_key(|part| part.number);
        Ok(parts)
    }

    pub(super) async fn complete_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        listed: &[CompletedPart],
        progress: &Progress,
    ) -> Result<()> {
        let (dir, manifest) = self.manifest(bucket, key, upload_id).await?;
        self.require_bucket(bucket).await?;
        // Each part is opened once: its ETag is checked on the open file, and the bytes copied are that file's,
        // even if the part is uploaded again meanwhile.
        let mut opened = Vec::with_capacity(listed.len());
        for wanted in listed {
            match open_part(&dir.join(part_name(wanted.number)), key, wanted.number).await? {
                Some(found) => opened.push(found),
                None => {
                    return Err(Error::InvalidParts { message: format!("part {} was not uploaded", wanted.number) });
                }
            }
        }
        let uploaded: Vec<UploadedPart> = opened.iter().map(|(part, _)| part.clone()).collect();
        let size = check_parts(listed, &uploaded).map_err(|message| Error::InvalidParts { message })?;

        let staged = StagingFile::create(&self.staging).await?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged.path)
            .map_err(|e| Error::other("failed to create a staging file", e))?;
        for (part, file) in opened {
            let mut file = file.into_std().await;
            let mut left = part.size;
            let mut offset = 0;
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
                progress.advance(chunk);
            }
        }

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
        let trailer = object::Trailer {
            content_type: manifest.content_type,
            sha256: sha256.map(|c| c.to_string()),
            declared_length: manifest.declared_length,
            declared_sha256: manifest.declared_sha256,
        };
        let finished = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            out.write_all(&object::encode_trailer(&trailer))?;
            out.sync_all()
        })
        .await
        .map_err(|e| Error::other("the assembly task stopped", e))?;
        finished.map_err(|e| super::write_error(key, e))?;
        rename_into_place(&staged.path, &self.object_path(bucket, key), key).await?;
        staged.disarm();
        // The object is in place: the parts have served. A crash before this line leaves them to the cleaner.
        if let Err(e) = fs::remove_dir_all(&dir).await {
            tracing::warn!(%key, %upload_id, error = %e, "failed to remove the parts of a completed upload");
        }
        Ok(())
    }

    pub(super) async fn abort_upload(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        let (dir, _) = self.manifest(bucket, key, upload_id).await?;
        match fs::remove_dir_all(&dir).await {
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
            // An upload whose manifest is unreadable (a crash while creating it) is as old as its folder.
            let started =
                match fs::read(dir.join(MANIFEST)).await.ok().and_then(|t| serde_json::from_slice::<Manifest>(&t).ok())
                {
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

fn not_found(upload_id: &UploadId) -> Error {
    Error::UploadNotFound { upload_id: upload_id.to_string() }
}

fn part_name(number: u32) -> String {
    format!("{PART_PREFIX}{number:05}")
}

fn part_number(name: &str) -> Option<u32> {
    name.strip_prefix(PART_PREFIX)?.parse().ok()
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// A part file opened, with what the store says of it; `None` when it is absent.
async fn open_part(path: &Path, key: &ObjectKey, number: u32) -> Result<Option<(UploadedPart, fs::File)>> {
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
    Ok(Some((part, file)))
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
        progress.advance(chunk);
    }
    Ok(Checksum::from_digest(&digest.finalize().into()))
}

/// Writes `bytes` to `dir/name` through a temporary file, fsync'd and renamed, then fsyncs the folder.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

//! The on-disk form of one object: its bytes, then a JSON trailer with its metadata, then the trailer's length
//! (u32, little-endian) and a magic tag. Keeping metadata in the same file lets a single rename move both.

use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const MAGIC: &[u8; 8] = b"DSOBJv1\0";
const FOOTER: u64 = 4 + MAGIC.len() as u64;
const MAX_TRAILER: u32 = 64 * 1024;

/// An object's metadata as kept in its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Trailer {
    pub content_type: String,
    /// The SHA-256 verified while the upload streamed in, when one was declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_sha256: Option<String>,
    /// User metadata, as S3 keeps `x-amz-meta-*`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: crate::Metadata,
}

/// The bytes appended after an object's data.
pub(crate) fn encode_trailer(trailer: &Trailer) -> Vec<u8> {
    let mut out = serde_json::to_vec(trailer).expect("plain struct serializes");
    let len = u32::try_from(out.len()).expect("trailer is small");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// Reads the trailer of a file `file_len` bytes long: returns the data's length and the metadata.
pub(crate) async fn read_trailer(file: &mut tokio::fs::File, file_len: u64) -> io::Result<(u64, Trailer)> {
    let corrupt =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("not a DraftStore object file: {what}"));
    if file_len < FOOTER {
        return Err(corrupt("too short"));
    }
    file.seek(io::SeekFrom::Start(file_len - FOOTER)).await?;
    let mut footer = [0u8; FOOTER as usize];
    file.read_exact(&mut footer).await?;
    if &footer[4..] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let len = u32::from_le_bytes(footer[..4].try_into().expect("four bytes"));
    if len > MAX_TRAILER || u64::from(len) > file_len - FOOTER {
        return Err(corrupt("bad trailer length"));
    }
    let data_len = file_len - FOOTER - u64::from(len);
    file.seek(io::SeekFrom::Start(data_len)).await?;
    let mut json = vec![0u8; len as usize];
    file.read_exact(&mut json).await?;
    let trailer: Trailer = serde_json::from_slice(&json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((data_len, trailer))
}

/// The data length of an object file `file_len` bytes long, from its footer alone (blocking): what a listing needs.
pub(crate) fn data_len(file: &std::fs::File, file_len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let corrupt =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("not a DraftStore object file: {what}"));
    if file_len < FOOTER {
        return Err(corrupt("too short"));
    }
    let mut footer = [0u8; FOOTER as usize];
    file.read_exact_at(&mut footer, file_len - FOOTER)?;
    if &footer[4..] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let len = u32::from_le_bytes(footer[..4].try_into().expect("four bytes"));
    if len > MAX_TRAILER || u64::from(len) > file_len - FOOTER {
        return Err(corrupt("bad trailer length"));
    }
    Ok(file_len - FOOTER - u64::from(len))
}

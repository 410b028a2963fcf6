//! What the adapters hand the draft service, and what it answers them.

use draftstore_client::api::{ContentReport, ImageReport};
use draftstore_storage::PresignedUrl;
use time::OffsetDateTime;

use crate::domain::{Checksum, ContentType, Disposition, Metadata, ObjectName, Stage};
use crate::error::Result;
use crate::images::VariantName;

/// A signed URL handed to a client, with what it must know to use it.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub url: PresignedUrl,
    pub object_name: ObjectName,
    pub expires_at: OffsetDateTime,
    pub stage: Stage,
}

impl Ticket {
    /// The headers the request must send, in whatever map the adapter answers with.
    pub fn headers<M: FromIterator<(String, String)>>(&self) -> M {
        self.url.headers.iter().cloned().collect()
    }
}

/// What an upload declares; each field given is checked and signed into the URL.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub content_type: Option<ContentType>,
    pub content_length: Option<u64>,
    pub checksum_sha256: Option<Checksum>,
}

/// What a confirm asks for besides the draft.
#[derive(Debug, Clone, Default)]
pub struct Promotion {
    /// The confirmed object's name; the draft's own when `None`.
    pub final_name: Option<ObjectName>,
    /// Stored with the object, replacing what the draft carried; the draft's kept when `None`.
    pub metadata: Option<Metadata>,
    /// Replace an object already confirmed under the final name.
    pub overwrite: bool,
}

impl Promotion {
    /// What a confirm request asks for besides the draft, each field checked: the same rules on every protocol.
    pub fn parse(final_name: Option<&str>, metadata: Option<Metadata>, overwrite: Option<bool>) -> Result<Self> {
        Ok(Self {
            final_name: final_name.map(crate::domain::parse_object_name).transpose()?,
            metadata: crate::domain::parse_metadata(metadata)?,
            overwrite: overwrite.unwrap_or(true),
        })
    }
}

/// How a download URL presents the object.
#[derive(Debug, Clone, Default)]
pub struct Download {
    /// Which bucket to read; without it, the draft when one exists, else the confirmed object.
    pub stage: Option<Stage>,
    /// The name a browser saves it under.
    pub filename: Option<String>,
    pub disposition: Option<Disposition>,
    /// One of a confirmed image's variants instead of the object itself.
    pub variant: Option<VariantName>,
}

/// The outcome of a confirm.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// The confirmed object's name.
    pub object_name: ObjectName,
    /// `<main bucket>/<key>`.
    pub final_location: String,
    /// What the checks found in the draft's bytes; `None` when an earlier confirm had already promoted it.
    pub content: Option<ContentReport>,
    /// What the image pipeline made of an image; `None` for other files and when already promoted.
    pub image: Option<ImageReport>,
    /// The promoted object's size and SHA-256, when they differ from the upload's (its metadata was stripped).
    pub rewritten: Option<Rewritten>,
}

/// The size and SHA-256 of an original whose metadata was stripped at confirm.
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub size: u64,
    pub sha256: Checksum,
}

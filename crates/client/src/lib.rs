//! A typed client for DraftStore's REST API, and the file transfers built on it (`transfer`): single and
//! multipart uploads with per-part checksums, resumable across runs, and streamed downloads.
//!
//! ```no_run
//! # async fn example() -> Result<(), draftstore_client::Error> {
//! use draftstore_client::{Client, api::ConfirmUploadRequest};
//! let client = Client::new("http://localhost:8080", Some("my-api-key".into()))?;
//! client.confirm_upload(&ConfirmUploadRequest { object_name: "avatars/42.png".into(), overwrite: Some(false) }).await?;
//! # Ok(()) }
//! ```

pub mod api;
#[cfg(feature = "http")]
mod client;
#[cfg(feature = "http")]
pub mod transfer;

#[cfg(feature = "http")]
pub use client::{Client, Error, Result};

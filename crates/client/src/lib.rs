//! A typed client for DraftStore's REST API, and the file transfers built on it (`transfer`): single and
//! multipart uploads with per-part checksums, resumable across runs, and downloads that resume where they stopped.
//!
//! ```no_run
//! # async fn example() -> Result<(), draftstore_client::Error> {
//! use draftstore_client::{Client, api::ConfirmUploadRequest};
//! let client = Client::new("http://localhost:8080", Some("my-api-key".into()))?;
//! let request = ConfirmUploadRequest {
//!     object_name: "uploads/3f9c.png".into(),
//!     final_name: Some("avatars/42.png".into()),
//!     metadata: Some([("user-id".to_owned(), "42".to_owned())].into()),
//!     overwrite: Some(true),
//! };
//! client.confirm_upload(&request).await?;
//! # Ok(()) }
//! ```

/// The wire types, from their own crate so that the server and the client share them.
pub use draftstore_api as api;
#[cfg(feature = "http")]
mod client;
#[cfg(feature = "http")]
pub mod transfer;

#[cfg(feature = "http")]
pub use client::{Client, Error, Result};

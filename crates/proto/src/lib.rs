//! The `draft.v1` protocol: messages, the `DraftService` server trait and client.

#![allow(missing_debug_implementations, clippy::unwrap_used)]

/// Generated from `proto/draft/v1/draft.proto`.
pub mod draft {
    pub mod v1 {
        tonic::include_proto!("draft.v1");
    }
}

/// The encoded descriptor set of `draft.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/draft_descriptor.bin"));

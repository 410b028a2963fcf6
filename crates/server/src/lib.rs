//! DraftStore: two-stage uploads. Clients get presigned URLs to upload drafts straight to object storage, and the
//! application confirms them into the main bucket, server-side.

pub mod auth;
pub mod bounded;
pub mod checks;
pub mod cleaner;
pub mod cli;
pub mod clients;
pub mod config;
pub mod connections;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod hooks;
pub mod http;
pub mod images;
pub mod probe;
pub mod ratelimit;
pub mod service;
pub mod startup;
pub mod telemetry;

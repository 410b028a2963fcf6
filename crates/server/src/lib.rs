//! DraftStore: two-stage uploads. Clients get presigned URLs to upload drafts straight to object storage, and the
//! application confirms them into the main bucket, server-side.

pub mod admission;
pub mod auth;
pub mod backend;
pub mod checks;
pub mod cleaner;
pub mod cli;
pub mod config;
pub mod connections;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod grpc;
pub mod hooks;
pub mod http;
pub mod images;
pub mod peer;
pub mod probe;
pub mod ratelimit;
pub mod service;
pub mod setting;
pub mod startup;
pub mod telemetry;

//! Integration tests: the real server on port 0, driven over HTTP.

mod auth;
mod browser;
mod cleaner;
mod cli;
mod client;
mod compat;
mod config;
mod confirm;
mod conformance;
mod cors;
mod drafts;
mod flow;
mod fulldisk;
mod grpc;
mod helpers;
mod limits;
mod multipart;
mod ops;
mod proxy;
mod ratelimit;
mod requests;
mod restart;
mod s3;
mod seaweed;
mod uppy;
mod urls;

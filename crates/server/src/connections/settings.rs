//! The limits a connection is held to.

use std::time::Duration;

use clap::Args;

use crate::setting;

/// What a connection may hold of the server: the limits that keep hostile or broken clients from taking it down.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct ConnectionSettings {
    /// Seconds a client has to send a complete request head (HTTP/1) or its connection preface (HTTP/2, gRPC) once
    /// it has connected or begun one; a connection that has not is closed; `0` turns the limit off.
    #[arg(long = "http-header-timeout", env = "HTTP_HEADER_TIMEOUT", default_value = "10", value_name = "SECONDS")]
    #[arg(value_parser = setting::interval(1, 3600))]
    pub header_timeout: ::std::option::Option<Duration>,
    /// Seconds a REST connection is kept alive with nothing sent after its last response; longer than clients keep
    /// idle connections in their pools (90 s in most), so that they close first and never send on a connection
    /// being closed; `0` keeps it while the client does.
    #[arg(long = "http-idle-timeout", env = "HTTP_IDLE_TIMEOUT", default_value = "120", value_name = "SECONDS")]
    #[arg(value_parser = setting::interval(1, 3600))]
    pub idle_timeout: ::std::option::Option<Duration>,
    /// Seconds a request body (an upload to a local signed URL included) may send nothing before it is cut off
    /// and what it had sent is discarded; `0` turns the limit off.
    #[arg(long, env = "BODY_IDLE_TIMEOUT", default_value = "30", value_name = "SECONDS")]
    #[arg(value_parser = setting::interval(1, 3600))]
    pub body_idle_timeout: ::std::option::Option<Duration>,
    /// Bytes per second a request body (an upload to a local signed URL included) must keep up on average over
    /// BODY_RATE_WINDOW of waiting for it, besides BODY_IDLE_TIMEOUT: a body trickled below it is cut off with 408
    /// and what it had sent is discarded; `0` turns the limit off.
    #[arg(long, env = "BODY_MIN_RATE", default_value = "1024", value_name = "BYTES_PER_SECOND")]
    #[arg(value_parser = setting::bytes(0, 1 << 40))]
    pub body_min_rate: u64,
    /// Seconds of waiting for a request body over which BODY_MIN_RATE is averaged.
    #[arg(long, env = "BODY_RATE_WINDOW", default_value = "30", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, 3600))]
    pub body_rate_window: Duration,
    /// Seconds a response (a download from a local signed URL above all) may wait for its client to read before
    /// the connection is closed, freeing its file and its slot; `0` turns the limit off.
    #[arg(long, env = "WRITE_STALL_TIMEOUT", default_value = "30", value_name = "SECONDS")]
    #[arg(value_parser = setting::interval(1, 3600))]
    pub write_stall_timeout: ::std::option::Option<Duration>,
    /// Uploads to local signed URLs (whole objects and parts) and resumable appends (`/files/`) received at once;
    /// beyond it an upload is answered 503 `SERVER_BUSY` with `Retry-After` before anything is written.
    #[arg(long, env = "MAX_CONCURRENT_UPLOADS", default_value = "256", value_name = "UPLOADS")]
    #[arg(value_parser = setting::count(1, 1_000_000))]
    pub max_concurrent_uploads: usize,
    /// Connections each port (REST and gRPC) keeps open at most, lowered at start-up to fit the open-file limit;
    /// beyond it the REST port still answers `/health` and `/ready` on a small reserve and answers other requests
    /// 503 `SERVER_BUSY`, and the gRPC port closes new connections at once; `0`: as many as the open-file limit
    /// allows.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "4096", value_name = "CONNECTIONS")]
    #[arg(value_parser = setting::count(0, 1_000_000))]
    pub max_connections: usize,
}

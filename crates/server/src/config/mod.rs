//! Configuration: every setting is declared once, here, as a typed argument with its environment variable, its
//! flag, its default, its meaning (the doc comment, shown by `--help` and in `docs/configuration.md`) and its
//! parser (`values`), in structs grouped by what takes them. A bad value stops start-up with a message naming the
//! variable; [`Settings::validate`] checks the settings that go together.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use draftstore_storage::{BucketName, MAX_URL_TTL};
use secrecy::SecretString;
use url::Url;

use crate::domain::{MediaRange, UploadLimits};
use values::Setting;

pub mod reference;
mod storage;
pub(crate) mod values;

pub use storage::{AwsSettings, MinioSettings, SigningSettings, StorageSettings, StorageType};

/// Command line of the `draftstore` binary.
#[derive(Debug, Parser)]
#[command(
    name = "draftstore",
    version,
    about = "Two-stage uploads: presigned URLs into a draft bucket, confirm into the main bucket"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (and, for the local backend, the signed upload and download URLs).
    Serve(Box<ServeSettings>),
    /// Remove expired drafts once, then exit (the Kubernetes CronJob's command).
    Clean(Box<CleanArgs>),
    /// Probe the store for every promise DraftStore relies on, print what was found, exit 0 when all hold.
    Doctor(Box<DoctorArgs>),
    /// Upload files as drafts through a DraftStore server; large files in parallel parts, resumable.
    Upload(Box<crate::cli::UploadArgs>),
    /// Download a draft or a confirmed object.
    Download(Box<crate::cli::DownloadArgs>),
    /// Confirm drafts: move them into the main bucket.
    Confirm(Box<crate::cli::ConfirmArgs>),
    /// Discard drafts.
    Discard(Box<crate::cli::DiscardArgs>),
    /// List your drafts with their size and expiry.
    Ls(Box<crate::cli::ListArgs>),
    /// List your confirmed objects with their size and confirm time.
    Objects(Box<crate::cli::ListArgs>),
    /// Describe confirmed objects: size, type, checksum, metadata.
    Stat(Box<crate::cli::StatArgs>),
    /// Delete confirmed objects.
    Delete(Box<crate::cli::DeleteArgs>),
}

/// Settings every command uses: where objects live, the workflow's lifetimes and limits, the hooks.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub storage: StorageSettings,
    /// Main bucket; drafts go to `<BUCKET_NAME>-draft`, undelivered events wait in `<BUCKET_NAME>-events`.
    #[arg(
        long = "bucket-name",
        env = "BUCKET_NAME",
        default_value = "main",
        value_name = "NAME",
        value_parser = buckets()
    )]
    pub buckets: Buckets,
    /// Browser origins (comma-separated, or `*`) allowed to call the REST API and the local backend's signed URLs
    /// (preflights answered before authentication; `ETag` exposed), and put in a CORS rule on the draft bucket
    /// (S3: PUT, POST, DELETE, GET, HEAD); other origins get no CORS headers [default: none].
    #[arg(
        long,
        env = "CORS_ALLOWED_ORIGINS",
        default_value = "",
        hide_default_value = true,
        value_name = "ORIGINS",
        value_parser = origins()
    )]
    pub cors_allowed_origins: ::std::vec::Vec<String>,
    /// Bound on every request to the store, in seconds (1 to 3600): a store that does not answer (or, during a long
    /// confirm or completion, makes no progress) for this long gives 503; a big object that keeps copying is never
    /// cut off.
    #[arg(
        long,
        env = "STORAGE_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS",
        value_parser = values::seconds(1, 3600)
    )]
    pub storage_timeout: Duration,
    /// Lifetime of upload URLs, in seconds (1 to 604800).
    #[arg(
        long,
        env = "UPLOAD_TTL",
        default_value = "3600",
        value_name = "SECONDS",
        value_parser = values::seconds(1, MAX_URL_TTL)
    )]
    pub upload_ttl: Duration,
    /// Lifetime of download URLs, in seconds (1 to 604800).
    #[arg(
        long,
        env = "DOWNLOAD_TTL",
        default_value = "3600",
        value_name = "SECONDS",
        value_parser = values::seconds(1, MAX_URL_TTL)
    )]
    pub download_ttl: Duration,
    /// Age after which an unconfirmed draft expires and the cleaner removes it, in seconds.
    #[arg(
        long,
        env = "OBJECT_LIFETIME",
        default_value = "86400",
        value_name = "SECONDS",
        value_parser = values::seconds(1, u64::from(u32::MAX))
    )]
    pub object_lifetime: Duration,
    /// Also put a lifecycle rule on the draft bucket as a safety net (S3): expire objects after OBJECT_LIFETIME
    /// rounded up to days, abort incomplete multipart uploads.
    #[arg(
        long,
        env = "DRAFT_LIFECYCLE",
        default_value = "false",
        value_name = "BOOL",
        action = ArgAction::Set,
        value_parser = values::boolean()
    )]
    pub draft_lifecycle: bool,
    #[command(flatten)]
    pub limits: UploadLimits,
    /// Part size multipart uploads are told to use, in bytes (5 MiB to 5 GiB); larger when a file would need more
    /// than 10,000 parts.
    #[arg(
        long,
        env = "MULTIPART_PART_SIZE",
        default_value = "16777216",
        value_name = "BYTES",
        value_parser = values::bytes(MIB5, GIB5)
    )]
    pub multipart_part_size: u64,
    /// Log output: `text` for people, `json` for one object per line; `RUST_LOG` filters.
    #[arg(
        long,
        env = "LOG_FORMAT",
        default_value = "text",
        value_name = "FORMAT",
        value_parser = values::choice(&[("text", LogFormat::Text), ("json", LogFormat::Json)])
    )]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub hooks: HookSettings,
    #[command(flatten)]
    pub checks: CheckSettings,
}

/// What a draft's bytes are checked for at confirm: their type, an image's size, and with a scanner, viruses.
#[derive(Debug, Clone, Args)]
pub struct CheckSettings {
    /// Check at confirm that a draft's first bytes are what its declared content type says (`on`), or trust the
    /// declared type (`off`); image dimensions are checked only when this is on.
    #[arg(
        long = "content-checks",
        env = "CONTENT_CHECKS",
        default_value = "on",
        value_name = "on|off",
        action = ArgAction::Set,
        value_parser = values::boolean()
    )]
    pub content_checks: bool,
    /// Most pixels (width × height, read from the header) an image draft may have (1 to 10^12).
    #[arg(
        long = "max-image-pixels",
        env = "MAX_IMAGE_PIXELS",
        default_value = "100000000",
        value_name = "PIXELS",
        value_parser = values::pixels(1, 1_000_000_000_000)
    )]
    pub max_image_pixels: u64,
    /// clamd to scan every draft with before it is promoted, `tcp://host:port` or `unix:/path/to/clamd.sock`; the
    /// draft's bytes are streamed from the store to it [default: no scan].
    #[arg(
        long = "clamd-address",
        env = "CLAMD_ADDRESS",
        value_name = "ADDRESS",
        value_parser = values::optional(clamd_address()),
        default_value = "",
        hide_default_value = true
    )]
    pub clamd_address: ::std::option::Option<crate::checks::ClamdAddress>,
    /// Seconds a scan may go without progress (clamd taking no bytes, or not answering once it has them all)
    /// before the confirm fails with 503 and the draft is kept (1 to 3600).
    #[arg(
        long = "scan-timeout",
        env = "SCAN_TIMEOUT",
        default_value = "60",
        value_name = "SECONDS",
        value_parser = values::seconds(1, 3600)
    )]
    pub scan_timeout: Duration,
    /// Largest draft scanned, in bytes; keep it at or below clamd's `StreamMaxLength` [default: 100 MiB].
    #[arg(
        long = "scan-max-size",
        env = "SCAN_MAX_SIZE",
        default_value = "104857600",
        hide_default_value = true,
        value_name = "BYTES",
        value_parser = values::bytes(1, 5 << 40)
    )]
    pub scan_max_size: u64,
    /// What happens to a draft above SCAN_MAX_SIZE: `refuse` it (fail closed) or `skip` the scan and promote it,
    /// its scan result saying `skipped`.
    #[arg(
        long = "scan-oversize",
        env = "SCAN_OVERSIZE",
        default_value = "refuse",
        value_name = "refuse|skip",
        action = ArgAction::Set,
        value_parser = values::choice(&[("refuse", false), ("skip", true)])
    )]
    pub scan_oversize_skip: bool,
}

/// The confirm hook and the events.
#[derive(Debug, Clone, Args)]
pub struct HookSettings {
    /// URL asked before a draft is promoted, with a signed `draft.confirming` event and a download URL of the
    /// draft: a 2xx accepts, a 422 (or `{"accept": false, "reason": …}`) rejects, anything else fails the confirm
    /// (503) and keeps the draft.
    #[arg(
        long = "confirm-hook-url",
        env = "CONFIRM_HOOK_URL",
        value_name = "URL",
        value_parser = values::optional(values::webhook_url()),
        default_value = "",
        hide_default_value = true
    )]
    pub confirm_url: ::std::option::Option<Url>,
    /// Seconds the confirm hook, and each event delivery, may take (1 to 300).
    #[arg(
        long = "hook-timeout",
        env = "HOOK_TIMEOUT",
        default_value = "10",
        value_name = "SECONDS",
        value_parser = values::seconds(1, 300)
    )]
    pub timeout: Duration,
    /// URL the events (`draft.confirmed`, `.rejected`, `.discarded`, `.expired`) are delivered to, signed, at least
    /// once; they wait in `<BUCKET_NAME>-events` until a 2xx.
    #[arg(
        long = "events-url",
        env = "EVENTS_URL",
        value_name = "URL",
        value_parser = values::optional(values::webhook_url()),
        default_value = "",
        hide_default_value = true
    )]
    pub events_url: ::std::option::Option<Url>,
    /// Seconds an undelivered event is retried before it is dropped, with an error log and a metric (60 to
    /// 2592000).
    #[arg(
        long = "events-max-age",
        env = "EVENTS_MAX_AGE",
        default_value = "86400",
        value_name = "SECONDS",
        value_parser = values::seconds(60, 30 * 86400)
    )]
    pub events_max_age: Duration,
    /// Standard Webhooks secret (`whsec_<base64>`, 24 to 64 bytes) that signs the hook calls and the events;
    /// required with either URL.
    #[arg(
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = values::optional(webhook_secret()),
        default_value = "",
        hide_default_value = true
    )]
    pub secret: ::std::option::Option<crate::hooks::WebhookSecret>,
}

impl HookSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.is_none() && (self.confirm_url.is_some() || self.events_url.is_some()) {
            return Err(ConfigError::new(
                "WEBHOOK_SECRET",
                "is required with CONFIRM_HOOK_URL or EVENTS_URL: receivers verify every call with it \
                 (generate one with: echo whsec_$(head -c 32 /dev/urandom | base64))",
            ));
        }
        Ok(())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that cannot be used with the others, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self { var, message: message.into() }
    }
}

/// The buckets of the workflow, named after BUCKET_NAME.
#[derive(Debug, Clone)]
pub struct Buckets {
    pub main: BucketName,
    pub draft: BucketName,
    /// The event outbox, used when EVENTS_URL is set.
    pub events: BucketName,
}

impl Settings {
    /// Checks what no single setting can: the settings that go together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.storage.s3_config(self.storage_timeout)?;
        self.hooks.validate()
    }
}

/// `draftstore serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    pub common: Settings,
    /// Address the servers listen on [default: 127.0.0.1 with AUTH_MODE=none, 0.0.0.0 otherwise].
    #[arg(
        long = "bind-address",
        env = "BIND_ADDRESS",
        value_name = "IP",
        value_parser = values::optional(values::ip_address()),
        default_value = "",
        hide_default_value = true
    )]
    pub bind_address_given: ::std::option::Option<std::net::IpAddr>,
    /// Serve AUTH_MODE=none on a BIND_ADDRESS other than loopback: anyone who reaches the address may then list,
    /// read, confirm and delete every object.
    #[arg(
        long,
        env = "ALLOW_UNAUTHENTICATED",
        default_value = "false",
        value_name = "BOOL",
        action = ArgAction::Set,
        value_parser = values::boolean()
    )]
    pub allow_unauthenticated: bool,
    #[command(flatten)]
    pub auth: AuthSettings,
    /// Port of the REST API.
    #[arg(long, env = "HTTP_PORT", default_value = "8080", value_name = "PORT", value_parser = values::port())]
    pub http_port: u16,
    /// Port of the gRPC API.
    #[arg(long, env = "GRPC_PORT", default_value = "50051", value_name = "PORT", value_parser = values::port())]
    pub grpc_port: u16,
    /// Run the cleaner inside the server every this many seconds; `0` leaves cleaning to `draftstore clean`.
    #[arg(
        long,
        env = "CLEANUP_INTERVAL",
        default_value = "0",
        value_name = "SECONDS",
        value_parser = values::interval(1, 7 * 86_400)
    )]
    pub cleanup_interval: ::std::option::Option<Duration>,
    /// Longest wait, in seconds, for requests in flight once SIGTERM or SIGINT arrives.
    #[arg(
        long,
        env = "SHUTDOWN_TIMEOUT",
        default_value = "20",
        value_name = "SECONDS",
        value_parser = values::seconds(1, 3600)
    )]
    pub shutdown_timeout: Duration,
    /// How long `/ready` reuses its last answer, in seconds (`0`: every probe checks the store).
    #[arg(
        long,
        env = "READY_CACHE",
        default_value = "2",
        value_name = "SECONDS",
        value_parser = values::seconds(0, 300)
    )]
    pub ready_cache: Duration,
    #[command(flatten)]
    pub rate_limit: RateLimitSettings,
    #[command(flatten)]
    pub probe: crate::probe::ProbeSettings,
    /// Proxies (comma-separated networks such as `10.0.0.0/8`, or addresses) whose connections may name the client
    /// in `X-Forwarded-For` or `Forwarded`; that client then feeds the rate limit and the request log. Headers from
    /// any other peer are ignored [default: none].
    #[arg(
        long,
        env = "TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_parser = trusted_proxies(),
        default_value = "",
        hide_default_value = true
    )]
    pub trusted_proxies: crate::clients::TrustedProxies,
    #[command(flatten)]
    pub connections: ConnectionSettings,
    /// How often the gRPC health service re-checks the store, in seconds.
    #[arg(
        long,
        env = "HEALTH_INTERVAL",
        default_value = "5",
        value_name = "SECONDS",
        value_parser = values::seconds(1, 3600)
    )]
    pub health_interval: Duration,
    /// Where clients reach this server: base of the URLs the local backend signs and of Uppy's completion requests,
    /// and where the built-in page is opened [default: http://localhost:<HTTP_PORT>].
    #[arg(
        long,
        env = "PUBLIC_URL",
        value_name = "URL",
        value_parser = values::optional(values::http_url()),
        default_value = "",
        hide_default_value = true
    )]
    pub public_url: ::std::option::Option<Url>,
    /// Secret for the local backend's URL signatures, 16 characters or more [default: generated once, kept in
    /// DATA_DIR/.signing-key, mode 0600].
    #[arg(
        long,
        env = "SIGNING_KEY",
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = values::optional(signing_key()),
        default_value = "",
        hide_default_value = true
    )]
    pub signing_key: ::std::option::Option<SecretString>,
}

impl ServeSettings {
    /// The address the servers listen on: BIND_ADDRESS, else loopback when requests are not authenticated and every
    /// address otherwise.
    pub fn bind_address(&self) -> std::net::IpAddr {
        match (self.bind_address_given, self.auth.mode) {
            (Some(address), _) => address,
            (None, AuthMode::None) => std::net::Ipv4Addr::LOCALHOST.into(),
            (None, _) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        }
    }

    /// Checks what no single setting can: the settings that go together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        let address = self.bind_address();
        if self.auth.mode == AuthMode::None && !address.is_loopback() && !self.allow_unauthenticated {
            return Err(ConfigError::new(
                "BIND_ADDRESS",
                format!(
                    "{address} is not a loopback address, and AUTH_MODE=none lets anyone who reaches it list, read, \
                     confirm and delete every object: set AUTH_MODE=api-key or jwt (docs/security.md), or \
                     ALLOW_UNAUTHENTICATED=true to serve without authentication on purpose"
                ),
            ));
        }
        if self.http_port == self.grpc_port && self.http_port != 0 {
            return Err(ConfigError::new(
                "GRPC_PORT",
                values::invalid(&self.grpc_port.to_string(), "must differ from HTTP_PORT"),
            ));
        }
        Ok(())
    }
}

/// What a connection may hold of the server: the limits that keep hostile or broken clients from taking it down.
#[derive(Debug, Clone, Args)]
pub struct ConnectionSettings {
    /// Seconds a client has to send a complete request head (HTTP/1) or its connection preface (HTTP/2, gRPC) once
    /// it has connected or begun one; a connection that has not is closed; `0` turns the limit off.
    #[arg(
        long = "http-header-timeout",
        env = "HTTP_HEADER_TIMEOUT",
        default_value = "10",
        value_name = "SECONDS",
        value_parser = values::interval(1, 3600)
    )]
    pub header_timeout: ::std::option::Option<Duration>,
    /// Seconds a REST connection is kept alive with nothing sent after its last response; longer than clients keep
    /// idle connections in their pools (90 s in most), so that they close first and never send on a connection
    /// being closed; `0` keeps it while the client does.
    #[arg(
        long = "http-idle-timeout",
        env = "HTTP_IDLE_TIMEOUT",
        default_value = "120",
        value_name = "SECONDS",
        value_parser = values::interval(1, 3600)
    )]
    pub idle_timeout: ::std::option::Option<Duration>,
    /// Seconds a request body (an upload to a local signed URL included) may send nothing before it is cut off
    /// and what it had sent is discarded; `0` turns the limit off.
    #[arg(
        long = "body-idle-timeout",
        env = "BODY_IDLE_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS",
        value_parser = values::interval(1, 3600)
    )]
    pub body_idle_timeout: ::std::option::Option<Duration>,
    /// Bytes per second a request body (an upload to a local signed URL included) must keep up on average over
    /// BODY_RATE_WINDOW of waiting for it, besides BODY_IDLE_TIMEOUT: a body trickled below it is cut off with 408
    /// and what it had sent is discarded; `0` turns the limit off.
    #[arg(
        long = "body-min-rate",
        env = "BODY_MIN_RATE",
        default_value = "1024",
        value_name = "BYTES_PER_SECOND",
        value_parser = values::bytes(0, 1 << 40)
    )]
    pub body_min_rate: u64,
    /// Seconds of waiting for a request body over which BODY_MIN_RATE is averaged.
    #[arg(
        long = "body-rate-window",
        env = "BODY_RATE_WINDOW",
        default_value = "30",
        value_name = "SECONDS",
        value_parser = values::seconds(1, 3600)
    )]
    pub body_rate_window: Duration,
    /// Seconds a response (a download from a local signed URL above all) may wait for its client to read before
    /// the connection is closed, freeing its file and its slot; `0` turns the limit off.
    #[arg(
        long = "write-stall-timeout",
        env = "WRITE_STALL_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS",
        value_parser = values::interval(1, 3600)
    )]
    pub write_stall_timeout: ::std::option::Option<Duration>,
    /// Uploads to local signed URLs (whole objects and parts) received at once; beyond it an upload is answered
    /// 503 `SERVER_BUSY` with `Retry-After` before anything is written.
    #[arg(
        long = "max-concurrent-uploads",
        env = "MAX_CONCURRENT_UPLOADS",
        default_value = "256",
        value_name = "UPLOADS",
        value_parser = values::count(1, 1_000_000)
    )]
    pub max_concurrent_uploads: usize,
    /// Connections each port (REST and gRPC) keeps open at most, lowered at start-up to fit the open-file limit;
    /// beyond it the REST port still answers `/health` and `/ready` on a small reserve and answers other requests
    /// 503 `SERVER_BUSY`, and the gRPC port closes new connections at once; `0`: as many as the open-file limit
    /// allows.
    #[arg(
        long = "max-connections",
        env = "MAX_CONNECTIONS",
        default_value = "4096",
        value_name = "CONNECTIONS",
        value_parser = values::count(0, 1_000_000)
    )]
    pub max_connections: usize,
}

/// RATE_LIMIT and RATE_LIMIT_BURST.
#[derive(Debug, Clone, Args)]
pub struct RateLimitSettings {
    /// API requests per second allowed to each tenant (each client address when AUTH_MODE=none, an IPv6 client's
    /// /64 network), per replica; REST and gRPC count together; `0` turns rate limiting off.
    #[arg(
        long = "rate-limit",
        env = "RATE_LIMIT",
        default_value = "0",
        value_name = "PER_SECOND",
        value_parser = values::whole(0, 1_000_000)
    )]
    pub per_second: u32,
    /// Requests a caller may send at once before RATE_LIMIT applies [default: RATE_LIMIT].
    #[arg(
        long = "rate-limit-burst",
        env = "RATE_LIMIT_BURST",
        value_name = "REQUESTS",
        value_parser = values::optional(values::whole(1, 1_000_000)),
        default_value = "",
        hide_default_value = true
    )]
    pub burst: ::std::option::Option<u32>,
}

impl RateLimitSettings {
    /// `None`: no rate limit (RATE_LIMIT=0).
    pub fn limit(&self) -> Option<crate::ratelimit::RateLimit> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = self.burst.and_then(NonZeroU32::new).unwrap_or(per_second);
        Some(crate::ratelimit::RateLimit { per_second, burst })
    }
}

/// How callers are authenticated; key files are read when the server starts.
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// Who may call: `none` (every caller trusted; the servers then bind loopback unless BIND_ADDRESS and
    /// ALLOW_UNAUTHENTICATED say otherwise), `api-key` or `jwt`.
    #[arg(
        long = "auth-mode",
        env = "AUTH_MODE",
        default_value = "none",
        value_name = "MODE",
        value_parser = values::choice(AUTH_MODES)
    )]
    pub mode: AuthMode,
    /// File of `tenant:sha256-hex-of-key` lines (`api-key`).
    #[arg(
        long,
        env = "API_KEYS_FILE",
        value_name = "PATH",
        value_parser = values::optional(values::path()),
        default_value = "",
        hide_default_value = true
    )]
    pub api_keys_file: ::std::option::Option<PathBuf>,
    /// `tenant:sha256-hex-of-key` entries, comma- or newline-separated (`api-key`).
    #[arg(
        long,
        env = "API_KEYS",
        hide_env_values = true,
        value_name = "ENTRIES",
        value_parser = values::optional(values::secret()),
        default_value = "",
        hide_default_value = true
    )]
    pub api_keys: ::std::option::Option<SecretString>,
    /// Tenants (comma-separated) that may make the operator calls (`draft-bucket`, gRPC CreateDraftBucket) once
    /// authentication is on; any other caller is refused 403 [default: none].
    #[arg(
        long,
        env = "ADMIN_TENANTS",
        value_name = "TENANTS",
        value_parser = values::list(|tenant| Ok(tenant.to_owned())),
        default_value = "",
        hide_default_value = true
    )]
    pub admin_tenants: ::std::vec::Vec<String>,
    /// HS256 secret of 32 bytes or more (`jwt`; one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWKS_FILE, JWKS_URL).
    #[arg(
        long,
        env = "JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = values::optional(jwt_secret()),
        default_value = "",
        hide_default_value = true
    )]
    pub jwt_secret: ::std::option::Option<SecretString>,
    /// RS256 or ES256 public key in PEM (`jwt`).
    #[arg(
        long,
        env = "JWT_PUBLIC_KEY_FILE",
        value_name = "PATH",
        value_parser = values::optional(values::path()),
        default_value = "",
        hide_default_value = true
    )]
    pub jwt_public_key_file: ::std::option::Option<PathBuf>,
    /// JSON Web Key Set file, keys chosen by `kid` (`jwt`).
    #[arg(
        long,
        env = "JWKS_FILE",
        value_name = "PATH",
        value_parser = values::optional(values::path()),
        default_value = "",
        hide_default_value = true
    )]
    pub jwks_file: ::std::option::Option<PathBuf>,
    /// URL of the identity provider's JSON Web Key Set, https (or http on loopback), keys chosen by `kid` (`jwt`);
    /// fetched at start-up, which fails without it.
    #[arg(
        long,
        env = "JWKS_URL",
        value_name = "URL",
        value_parser = values::optional(jwks_url()),
        default_value = "",
        hide_default_value = true
    )]
    pub jwks_url: ::std::option::Option<Url>,
    /// Seconds between two readings of JWKS_FILE or JWKS_URL (1 to 86400); a token whose `kid` the set lacks also
    /// has it read again, at most once per 30 s.
    #[arg(
        long,
        env = "JWKS_REFRESH_INTERVAL",
        default_value = "300",
        value_name = "SECONDS",
        value_parser = values::seconds(1, 86_400)
    )]
    pub jwks_refresh_interval: Duration,
    /// Required `iss` of tokens; required with public keys (`jwt`).
    #[arg(
        long,
        env = "JWT_ISSUER",
        value_name = "ISSUER",
        value_parser = values::optional(values::text()),
        default_value = "",
        hide_default_value = true
    )]
    pub jwt_issuer: ::std::option::Option<String>,
    /// Required `aud` of tokens; required with public keys (`jwt`).
    #[arg(
        long,
        env = "JWT_AUDIENCE",
        value_name = "AUDIENCE",
        value_parser = values::optional(values::text()),
        default_value = "",
        hide_default_value = true
    )]
    pub jwt_audience: ::std::option::Option<String>,
    /// The claim that names the tenant (`jwt`).
    #[arg(
        long,
        env = "JWT_TENANT_CLAIM",
        default_value = "sub",
        value_name = "CLAIM",
        value_parser = values::required_text("must name a claim")
    )]
    pub jwt_tenant_claim: String,
}

/// AUTH_MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    ApiKey,
    Jwt,
}

const AUTH_MODES: &[(&str, AuthMode)] =
    &[("none", AuthMode::None), ("api-key", AuthMode::ApiKey), ("jwt", AuthMode::Jwt)];

/// `draftstore clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    #[command(flatten)]
    pub common: Settings,
    /// List what would be removed and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Put the safety-net lifecycle rule on the draft bucket before cleaning (as DRAFT_LIFECYCLE=true).
    #[arg(long)]
    pub install_lifecycle: bool,
}

/// `draftstore doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub common: Settings,
    /// Print the findings as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

const MIB5: u64 = 5 * 1024 * 1024;
const GIB5: u64 = 5 * 1024 * 1024 * 1024;

/// BUCKET_NAME, and the draft and event buckets named after it.
fn buckets() -> Setting<Buckets> {
    Setting::new(|text| {
        let main = BucketName::parse(text).map_err(|e| values::invalid(text, e))?;
        let derived = |suffix: &str, role: &str| {
            BucketName::parse(&format!("{main}-{suffix}"))
                .map_err(|e| values::invalid(text, format!("the {role} bucket name is invalid: {e}")))
        };
        Ok(Buckets { draft: derived("draft", "draft")?, events: derived("events", "events")?, main })
    })
}

/// Media ranges such as `image/*`.
pub(crate) fn media_ranges() -> Setting<Vec<MediaRange>> {
    values::list(|range| MediaRange::parse(range).map_err(|e| values::invalid(range, e)))
}

/// Browser origins, or `*`.
fn origins() -> Setting<Vec<String>> {
    values::list(|origin| {
        if origin == "*" || Url::parse(origin).is_ok_and(|u| u.host_str().is_some()) {
            Ok(origin.trim_end_matches('/').to_owned())
        } else {
            Err(values::invalid(origin, "expected an origin such as https://app.example.com, or *"))
        }
    })
}

/// A Standard Webhooks secret; the message does not show it.
fn webhook_secret() -> Setting<crate::hooks::WebhookSecret> {
    Setting::new(|text| {
        crate::hooks::WebhookSecret::parse(text).map_err(|e| format!("is not a Standard Webhooks secret: {e}"))
    })
}

/// Networks of trusted proxies.
fn trusted_proxies() -> Setting<crate::clients::TrustedProxies> {
    Setting::new(|text| crate::clients::TrustedProxies::parse(text).map_err(|e| values::invalid(text, e)))
}

/// Where clamd listens.
fn clamd_address() -> Setting<crate::checks::ClamdAddress> {
    Setting::new(|text| crate::checks::ClamdAddress::parse(text).map_err(|e| values::invalid(text, e)))
}

/// An HS256 secret: at least 32 bytes, the size of its hash's output (RFC 7518, 3.2); the message does not show it.
fn jwt_secret() -> Setting<SecretString> {
    Setting::new(|text| {
        if text.len() < 32 {
            return Err(format!(
                "must be at least 32 bytes long; this one has {} (value not shown). Generate one with: \
                 head -c 32 /dev/urandom | base64",
                text.len()
            ));
        }
        Ok(SecretString::from(text.to_owned()))
    })
}

/// Where the identity provider publishes its keys: https, or http to a loopback address only (keys read over a
/// network in the clear could be anyone's).
fn jwks_url() -> Setting<Url> {
    let base = values::http_url();
    Setting::new(move |text| {
        let url = Url::parse(text).map_err(|e| values::invalid(text, e))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if url.scheme() != "https" && !loopback {
            return Err(values::invalid(text, "expected an https:// URL (http:// only to a loopback address)"));
        }
        base.parse_text(text)
    })
}

/// The local backend's signing key; the message does not show it.
fn signing_key() -> Setting<SecretString> {
    Setting::new(|text| {
        if text.len() < 16 {
            return Err("must be at least 16 characters long (value not shown)".to_owned());
        }
        Ok(SecretString::from(text.to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeSettings, String> {
        // What the binary prints after `error: `.
        let message = |e: clap::Error| e.to_string().lines().next().unwrap_or_default().replacen("error: ", "", 1);
        let cli = Cli::try_parse_from(
            std::iter::once("draftstore").chain(std::iter::once("serve")).chain(args.iter().copied()),
        )
        .map_err(message)?;
        let Command::Serve(settings) = cli.command else { unreachable!("serve was given") };
        settings.validate().map_err(|e| e.to_string())?;
        Ok(*settings)
    }

    #[test]
    fn defaults_run_the_local_backend() {
        let settings = serve(&[]).expect("defaults are valid");
        assert!(settings.common.storage.kind == StorageType::Local);
        assert_eq!(settings.common.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.common.buckets.main.as_str(), "main");
        assert_eq!(settings.common.buckets.draft.as_str(), "main-draft");
        assert_eq!((settings.http_port, settings.grpc_port), (8080, 50051));
        assert_eq!(settings.common.upload_ttl, Duration::from_secs(3600));
        assert_eq!(settings.common.object_lifetime, Duration::from_secs(86400));
    }

    #[test]
    fn hook_urls_take_a_token_and_never_show_it() {
        let secret = ["--webhook-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"];
        let url = "https://spy:hunter2@hooks.example/in?token=s3cr3t";
        let settings = serve(&[&["--confirm-hook-url", url, "--events-url", url][..], &secret].concat())
            .expect("a receiver's URL may hold a token and credentials");
        assert_eq!(settings.common.hooks.confirm_url.as_ref().map(Url::as_str), Some(url));
        for bad in ["https://spy:hunter2@hooks.example/in?token=s3cr3t#frag", "ftp://spy:hunter2@h/?token=s3cr3t"] {
            let error = serve(&[&["--events-url", bad][..], &secret].concat()).expect_err("refused");
            assert!(
                error.contains("EVENTS_URL") && error.contains("hooks.example") == bad.contains("hooks"),
                "{error}"
            );
            assert!(!error.contains("hunter2") && !error.contains("s3cr3t"), "{error}");
        }
        let error = serve(&["--confirm-hook-url", "https://spy:hunter2@[::1"]).expect_err("not a URL");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn bad_values_name_the_variable_and_the_value() {
        assert_eq!(serve(&["--upload-ttl", "abc"]).expect_err("bad"), "UPLOAD_TTL: 'abc' is not a number of seconds");
        assert!(serve(&["--download-ttl", "0"]).expect_err("bad").starts_with("DOWNLOAD_TTL: '0' is out of range"));
        assert!(serve(&["--upload-ttl", "604801"]).expect_err("bad").starts_with("UPLOAD_TTL:"));
        assert!(serve(&["--http-port", "99999"]).expect_err("bad").starts_with("HTTP_PORT: '99999'"));
        assert!(serve(&["--storage-type", "ftp"]).expect_err("bad").starts_with("STORAGE_TYPE: 'ftp'"));
        assert!(serve(&["--bucket-name", "Bad_Name"]).expect_err("bad").starts_with("BUCKET_NAME: 'Bad_Name'"));
        assert!(serve(&["--bucket-name", &"a".repeat(60)]).expect_err("bad").contains("draft bucket"));
        assert!(serve(&["--log-format", "xml"]).expect_err("bad").starts_with("LOG_FORMAT: 'xml'"));
        assert!(serve(&["--public-url", "ftp://x"]).expect_err("bad").starts_with("PUBLIC_URL: 'ftp://x'"));
        let short_key = serve(&["--signing-key", "short"]).expect_err("bad");
        assert!(short_key.starts_with("SIGNING_KEY:") && !short_key.contains("short'"), "{short_key}");
    }

    #[test]
    fn an_empty_value_is_an_unset_one() {
        let settings = serve(&[
            "--cleanup-interval",
            "",
            "--public-url",
            "",
            "--rate-limit-burst",
            "",
            "--s3-conditional-writes",
            "",
        ])
        .expect("empty values are valid");
        assert_eq!(settings.cleanup_interval, None);
        assert_eq!(settings.public_url, None);
        assert_eq!(settings.rate_limit.burst, None);
        assert_eq!(settings.common.storage.s3_conditional_writes, None);
        assert_eq!(serve(&["--cleanup-interval", "0"]).expect("valid").cleanup_interval, None);
        assert_eq!(
            serve(&["--cleanup-interval", "60"]).expect("valid").cleanup_interval,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn minio_settings_become_a_path_style_endpoint() {
        let keys = ["--minio-access-key", "app", "--minio-secret-key", "app-secret"];
        let settings = serve(
            &[
                &["--storage-type", "minio", "--minio-endpoint", "minio-service:9000", "--minio-use-ssl", "true"],
                &keys[..],
            ]
            .concat(),
        )
        .expect("valid");
        let s3 =
            settings.common.storage.s3_config(settings.common.storage_timeout).expect("valid").expect("minio is S3");
        assert_eq!(s3.endpoint.map(String::from).as_deref(), Some("https://minio-service:9000/"));
        assert!(s3.force_path_style);
        assert!(
            serve(&[&["--storage-type", "minio", "--minio-endpoint", "http://x:9000"], &keys[..]].concat())
                .expect_err("bad")
                .starts_with("MINIO_ENDPOINT:")
        );
        assert!(
            serve(&["--storage-type", "minio", "--minio-endpoint", ""])
                .expect_err("bad")
                .starts_with("MINIO_ENDPOINT:")
        );
        assert!(
            serve(&["--storage-type", "s3", "--aws-access-key-id", "x"])
                .expect_err("bad")
                .starts_with("AWS_SECRET_ACCESS_KEY:")
        );
    }

    #[test]
    fn minio_credentials_are_required_and_have_no_default() {
        let refused = serve(&["--storage-type", "minio"]).expect_err("no credentials");
        assert!(refused.starts_with("MINIO_ACCESS_KEY: is required with STORAGE_TYPE=minio"), "{refused}");
        let refused = serve(&["--storage-type", "minio", "--minio-access-key", "app"]).expect_err("no secret");
        assert!(refused.starts_with("MINIO_SECRET_KEY: is required"), "{refused}");
        assert!(serve(&[]).is_ok(), "the local backend needs none");
    }

    #[test]
    fn without_authentication_the_servers_bind_loopback_unless_told_otherwise() {
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        assert_eq!(serve(&[]).expect("valid").bind_address(), loopback);
        let refused = serve(&["--bind-address", "0.0.0.0"]).expect_err("open to the network");
        assert!(refused.starts_with("BIND_ADDRESS: 0.0.0.0 is not a loopback address"), "{refused}");
        assert!(refused.contains("AUTH_MODE=api-key or jwt") && refused.contains("ALLOW_UNAUTHENTICATED=true"));
        let allowed = serve(&["--bind-address", "0.0.0.0", "--allow-unauthenticated", "true"]).expect("on purpose");
        assert_eq!(allowed.bind_address(), std::net::IpAddr::from([0, 0, 0, 0]));
        assert_eq!(serve(&["--bind-address", "::1"]).expect("loopback").bind_address().to_string(), "::1");
        let keyed = serve(&["--auth-mode", "api-key"]).expect("valid");
        assert_eq!(keyed.bind_address(), std::net::IpAddr::from([0, 0, 0, 0]), "authenticated: every address");
    }

    #[test]
    fn a_short_jwt_secret_and_a_cleartext_key_set_url_are_refused() {
        let refused = serve(&["--auth-mode", "jwt", "--jwt-secret", "secret"]).expect_err("6 bytes");
        assert!(refused.starts_with("JWT_SECRET: must be at least 32 bytes long; this one has 6"), "{refused}");
        assert!(!refused.contains("'secret'"), "{refused}");
        assert!(serve(&["--jwt-secret", &"s".repeat(32)]).is_ok());
        let refused = serve(&["--jwks-url", "http://idp.example/keys"]).expect_err("in the clear");
        assert!(refused.starts_with("JWKS_URL: 'http://idp.example/keys' is invalid: expected an https://"));
        assert!(serve(&["--jwks-url", "http://127.0.0.1:9/keys"]).is_ok());
        assert!(serve(&["--jwks-url", "https://idp.example/.well-known/jwks.json"]).is_ok());
    }

    #[test]
    fn the_settings_debug_carries_no_secret() {
        let secrets = [
            "aws-secret-never-shown",
            "aws-session-never-shown",
            "minio-secret-never-shown",
            "jwt-secret-never-shown-0123456789abcdef",
            "api-keys-never-shown",
            "signing-key-never-shown",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ];
        let settings = serve(&[
            "--aws-access-key-id",
            "AKIDVISIBLE",
            "--aws-secret-access-key",
            secrets[0],
            "--aws-session-token",
            secrets[1],
            "--minio-access-key",
            "minio-user",
            "--minio-secret-key",
            secrets[2],
            "--jwt-secret",
            secrets[3],
            "--api-keys",
            secrets[4],
            "--signing-key",
            secrets[5],
            "--webhook-secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ])
        .expect("valid");
        let debug = format!("{settings:?}");
        assert!(debug.contains("AKIDVISIBLE") && debug.contains("minio-user"), "what is not secret still shows");
        for secret in secrets {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        let cli = Cli::try_parse_from(["draftstore", "ls", "--token", "token-never-shown"]).expect("parses");
        assert!(!format!("{cli:?}").contains("token-never-shown"));
    }
}

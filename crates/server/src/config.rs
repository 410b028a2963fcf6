//! Configuration: every setting is an environment variable with a matching `--flag`. Values arrive as text and
//! are validated once, here, into [`Settings`]; a bad value stops start-up with a message naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use draftstore_storage::multipart::MAX_OBJECT_SIZE;
use draftstore_storage::{BucketName, MAX_URL_TTL};

use crate::domain::{MediaRange, UploadLimits};
use secrecy::SecretString;
use url::Url;

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
    Serve(Box<ServeArgs>),
    /// Remove expired drafts once, then exit (the Kubernetes CronJob's command).
    Clean(Box<CleanArgs>),
    /// Upload files as drafts through a DraftStore server; large files in parallel parts, resumable.
    Upload(Box<crate::cli::UploadArgs>),
    /// Download a draft or a confirmed object.
    Download(Box<crate::cli::DownloadArgs>),
    /// Confirm drafts: move them into the main bucket.
    Confirm(Box<crate::cli::ConfirmArgs>),
    /// Discard drafts.
    Discard(Box<crate::cli::DiscardArgs>),
    /// List your drafts with their size and expiry.
    Ls(Box<crate::cli::LsArgs>),
}

/// Settings shared by every command.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Storage backend: `local` (folders under DATA_DIR), `s3` or `minio`.
    #[arg(long, env = "STORAGE_TYPE", default_value = "local", value_name = "TYPE")]
    pub storage_type: String,
    /// Main bucket; drafts go to `<BUCKET_NAME>-draft`.
    #[arg(long, env = "BUCKET_NAME", default_value = "main", value_name = "NAME")]
    pub bucket_name: String,
    /// Root folder of the local backend.
    #[arg(long, env = "DATA_DIR", default_value = "./data", value_name = "PATH")]
    pub data_dir: PathBuf,
    /// AWS region (STORAGE_TYPE=s3).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1", value_name = "REGION")]
    pub aws_region: String,
    /// AWS access key id; when unset, the standard AWS credential chain is used (STORAGE_TYPE=s3).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true, value_name = "KEY")]
    pub aws_access_key_id: Option<String>,
    /// AWS secret access key (STORAGE_TYPE=s3).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, value_name = "SECRET")]
    pub aws_secret_access_key: Option<String>,
    /// AWS session token, with temporary credentials (STORAGE_TYPE=s3).
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub aws_session_token: Option<String>,
    /// Endpoint of an S3-compatible store instead of AWS (STORAGE_TYPE=s3).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual hosts (STORAGE_TYPE=s3).
    #[arg(long, env = "S3_FORCE_PATH_STYLE", default_value = "false", value_name = "BOOL")]
    pub s3_force_path_style: String,
    /// MinIO server as host:port (STORAGE_TYPE=minio).
    #[arg(long, env = "MINIO_ENDPOINT", default_value = "localhost:9000", value_name = "HOST:PORT")]
    pub minio_endpoint: String,
    /// MinIO access key (STORAGE_TYPE=minio).
    #[arg(long, env = "MINIO_ACCESS_KEY", default_value = "minioadmin", hide_env_values = true, value_name = "KEY")]
    pub minio_access_key: String,
    /// MinIO secret key (STORAGE_TYPE=minio).
    #[arg(
        long,
        env = "MINIO_SECRET_KEY",
        default_value = "minioadmin",
        hide_env_values = true,
        hide_default_value = true,
        value_name = "SECRET"
    )]
    pub minio_secret_key: String,
    /// Reach MinIO over https (STORAGE_TYPE=minio).
    #[arg(long, env = "MINIO_USE_SSL", default_value = "false", value_name = "BOOL")]
    pub minio_use_ssl: String,
    /// MinIO region (STORAGE_TYPE=minio).
    #[arg(long, env = "MINIO_REGION", default_value = "us-east-1", value_name = "REGION")]
    pub minio_region: String,
    /// Public base URL written into presigned URLs when the store is reached on an internal address.
    #[arg(long, env = "PRESIGN_ENDPOINT", value_name = "URL")]
    pub presign_endpoint: Option<String>,
    /// Origins allowed to call the API and upload from a browser (comma-separated, or `*`): CORS on the REST API
    /// and the local backend's URLs, and a CORS rule on the draft bucket (S3).
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_name = "ORIGINS")]
    pub cors_allowed_origins: Option<String>,
    /// Objects larger than this many bytes are confirmed with a parallel multipart copy (S3; at most 5 GiB). A
    /// single copy is one request bounded by STORAGE_TIMEOUT, so keep this well below what the store copies in it.
    #[arg(long, env = "COPY_MULTIPART_THRESHOLD", default_value = "67108864", value_name = "BYTES")]
    pub copy_multipart_threshold: String,
    /// Part size of multipart copies, in bytes (S3; 5 MiB to 5 GiB). Each part copy is one request bounded by
    /// STORAGE_TIMEOUT; the whole copy is not.
    #[arg(long, env = "COPY_PART_SIZE", default_value = "67108864", value_name = "BYTES")]
    pub copy_part_size: String,
    /// Part copies in flight at once while confirming a large draft (S3; 1 to 64).
    #[arg(long, env = "COPY_CONCURRENCY", default_value = "8", value_name = "N")]
    pub copy_concurrency: String,
    /// Part size that multipart uploads are told to use, in bytes (5 MiB to 5 GiB); larger when an upload would
    /// otherwise need more than 10,000 parts.
    #[arg(long, env = "MULTIPART_PART_SIZE", default_value = "16777216", value_name = "BYTES")]
    pub multipart_part_size: String,
    /// Whether the store honours conditional writes (If-None-Match), which confirm with overwrite=false uses:
    /// `auto` finds out at start-up (S3).
    #[arg(long, env = "S3_CONDITIONAL_WRITES", default_value = "auto", value_name = "auto|true|false")]
    pub s3_conditional_writes: String,
    /// Bound on every storage call, in seconds; a slower store answers 503.
    #[arg(long, env = "STORAGE_TIMEOUT", default_value = "30", value_name = "SECONDS")]
    pub storage_timeout: String,
    /// Lifetime of upload URLs, in seconds.
    #[arg(long, env = "UPLOAD_TTL", default_value = "3600", value_name = "SECONDS")]
    pub upload_ttl: String,
    /// Lifetime of download URLs, in seconds.
    #[arg(long, env = "DOWNLOAD_TTL", default_value = "3600", value_name = "SECONDS")]
    pub download_ttl: String,
    /// Age after which an unconfirmed draft is removed by the cleaner, in seconds.
    #[arg(long, env = "OBJECT_LIFETIME", default_value = "86400", value_name = "SECONDS")]
    pub object_lifetime: String,
    /// Put a lifecycle rule on the draft bucket as a safety net: expire objects after OBJECT_LIFETIME rounded up to
    /// days, abort incomplete multipart uploads (S3).
    #[arg(long, env = "DRAFT_LIFECYCLE", default_value = "false", value_name = "BOOL")]
    pub draft_lifecycle: String,
    /// Largest upload accepted, in bytes, up to 5 TiB: larger declared sizes are refused before a URL is issued.
    /// A single PUT is at most 5 GiB; larger files use the multipart API.
    #[arg(long, env = "MAX_UPLOAD_SIZE", default_value = "5368709120", value_name = "BYTES")]
    pub max_upload_size: String,
    /// Content types uploads may have, comma-separated, with wildcards such as `image/*` [default: any].
    #[arg(long, env = "ALLOWED_CONTENT_TYPES", value_name = "TYPES")]
    pub allowed_content_types: Option<String>,
    /// Log output: `text` for people, `json` for one object per line.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_name = "FORMAT")]
    pub log_format: String,
    /// URL asked before a draft is promoted, with a signed `draft.confirmed` event and a download URL of the draft:
    /// a 2xx accepts, a 4xx (or `{"accept": false, "reason": …}`) rejects, anything else fails the confirm (503).
    #[arg(long, env = "CONFIRM_HOOK_URL", value_name = "URL")]
    pub confirm_hook_url: Option<String>,
    /// Seconds the confirm hook, and each event delivery, may take.
    #[arg(long, env = "HOOK_TIMEOUT", default_value = "10", value_name = "SECONDS")]
    pub hook_timeout: String,
    /// URL the events (`draft.confirmed`, `.rejected`, `.discarded`, `.expired`) are delivered to, signed, at least
    /// once; they wait in `<BUCKET_NAME>-events` until a 2xx.
    #[arg(long, env = "EVENTS_URL", value_name = "URL")]
    pub events_url: Option<String>,
    /// Seconds an event is retried before it is dropped (with an error log and a metric).
    #[arg(long, env = "EVENTS_MAX_AGE", default_value = "86400", value_name = "SECONDS")]
    pub events_max_age: String,
    /// Standard Webhooks secret (`whsec_<base64>`) that signs the hook calls and the events.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub webhook_secret: Option<String>,
}

/// `draftstore serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address the servers listen on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0", value_name = "IP")]
    pub bind_address: String,
    /// Who may call: `none` (every caller trusted), `api-key` or `jwt`.
    #[arg(long, env = "AUTH_MODE", default_value = "none", value_name = "MODE")]
    pub auth_mode: String,
    /// File of `tenant:sha256-hex-of-key` lines (AUTH_MODE=api-key).
    #[arg(long, env = "API_KEYS_FILE", value_name = "PATH")]
    pub api_keys_file: Option<PathBuf>,
    /// `tenant:sha256-hex-of-key` entries, comma- or newline-separated (AUTH_MODE=api-key).
    #[arg(long, env = "API_KEYS", hide_env_values = true, value_name = "ENTRIES")]
    pub api_keys: Option<String>,
    /// HS256 secret (AUTH_MODE=jwt).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub jwt_secret: Option<String>,
    /// RS256 or ES256 public key in PEM (AUTH_MODE=jwt).
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", value_name = "PATH")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// JSON Web Key Set, keys chosen by `kid` (AUTH_MODE=jwt).
    #[arg(long, env = "JWKS_FILE", value_name = "PATH")]
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` of tokens (AUTH_MODE=jwt).
    #[arg(long, env = "JWT_ISSUER", value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of tokens (AUTH_MODE=jwt).
    #[arg(long, env = "JWT_AUDIENCE", value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The claim that names the tenant (AUTH_MODE=jwt).
    #[arg(long, env = "JWT_TENANT_CLAIM", default_value = "sub", value_name = "CLAIM")]
    pub jwt_tenant_claim: String,
    /// Port of the REST API.
    #[arg(long, env = "HTTP_PORT", default_value = "8080", value_name = "PORT")]
    pub http_port: String,
    /// Port of the gRPC API.
    #[arg(long, env = "GRPC_PORT", default_value = "50051", value_name = "PORT")]
    pub grpc_port: String,
    /// Run the cleaner inside the server every this many seconds; 0 leaves cleaning to `draftstore clean`.
    #[arg(long, env = "CLEANUP_INTERVAL", default_value = "0", value_name = "SECONDS")]
    pub cleanup_interval: String,
    /// Longest wait, in seconds, for requests in flight once SIGTERM or SIGINT arrives.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20", value_name = "SECONDS")]
    pub shutdown_timeout: String,
    /// How long `/ready` reuses its last answer, in seconds (0: check the store on every probe).
    #[arg(long, env = "READY_CACHE", default_value = "2", value_name = "SECONDS")]
    pub ready_cache: String,
    /// API requests per second allowed to each tenant (each client address when AUTH_MODE=none), per replica;
    /// 0 turns rate limiting off.
    #[arg(long, env = "RATE_LIMIT", default_value = "0", value_name = "PER_SECOND")]
    pub rate_limit: String,
    /// Requests a caller may send at once above RATE_LIMIT [default: RATE_LIMIT].
    #[arg(long, env = "RATE_LIMIT_BURST", value_name = "REQUESTS")]
    pub rate_limit_burst: Option<String>,
    /// How often the gRPC health service re-checks the store, in seconds.
    #[arg(long, env = "HEALTH_INTERVAL", default_value = "5", value_name = "SECONDS")]
    pub health_interval: String,
    /// Where clients reach this server: base of the URLs the local backend signs and of Uppy's completion requests
    /// [default: http://localhost:<HTTP_PORT>].
    #[arg(long, env = "PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Secret for the local backend's URL signatures [default: generated once, kept in DATA_DIR/.signing-key].
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true, value_name = "SECRET")]
    pub signing_key: Option<String>,
}

/// `draftstore clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// List what would be removed and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Put the safety-net lifecycle rule on the draft bucket before cleaning (as DRAFT_LIFECYCLE=true).
    #[arg(long)]
    pub install_lifecycle: bool,
}

/// A setting that cannot be used, named by its environment variable.
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

/// The two buckets of the workflow.
#[derive(Debug, Clone)]
pub struct Buckets {
    pub main: BucketName,
    pub draft: BucketName,
    /// The event outbox, used when EVENTS_URL is set.
    pub events: BucketName,
}

/// The confirm hook and the events, validated.
#[derive(Debug, Clone)]
pub struct HookSettings {
    pub confirm_url: Option<Url>,
    pub timeout: Duration,
    pub events_url: Option<Url>,
    pub events_max_age: Duration,
    /// Present whenever a URL is.
    pub secret: Option<crate::hooks::WebhookSecret>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where objects live.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    Local { data_dir: PathBuf },
    S3(Box<S3Settings>),
}

/// How to reach an S3-compatible store; `minio` settings are turned into these too.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `STORAGE_TYPE` as given, for messages.
    pub flavour: &'static str,
    pub region: String,
    /// `None`: AWS itself.
    pub endpoint: Option<Url>,
    pub force_path_style: bool,
    /// `None`: the standard AWS credential chain.
    pub credentials: Option<StaticCredentials>,
    pub presign_endpoint: Option<Url>,
    pub multipart_copy_threshold: u64,
    pub multipart_copy_part_size: u64,
    pub copy_concurrency: usize,
    /// `None`: find out at start-up.
    pub conditional_writes: Option<bool>,
}

/// Credentials given in the configuration.
#[derive(Debug, Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// Settings every command uses, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub storage: StorageSettings,
    pub buckets: Buckets,
    pub storage_timeout: Duration,
    pub upload_ttl: Duration,
    pub download_ttl: Duration,
    pub object_lifetime: Duration,
    pub draft_lifecycle: bool,
    pub limits: UploadLimits,
    /// Part size multipart uploads are told to use.
    pub multipart_part_size: u64,
    /// Browser origins allowed to call the API and the signed URLs.
    pub cors_allowed_origins: Vec<String>,
    pub log_format: LogFormat,
    pub hooks: HookSettings,
}

/// Settings of `draftstore serve`, validated.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub common: Settings,
    pub bind_address: std::net::IpAddr,
    pub auth: AuthSettings,
    pub http_port: u16,
    pub grpc_port: u16,
    /// `None`: no cleaner inside the server.
    pub cleanup_interval: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub ready_cache: Duration,
    pub health_interval: Duration,
    /// `None`: `http://localhost:<the bound HTTP port>`.
    pub public_url: Option<Url>,
    /// `None`: generated and kept under DATA_DIR.
    pub signing_key: Option<SecretString>,
    /// `None`: no rate limit (RATE_LIMIT=0).
    pub rate_limit: Option<crate::ratelimit::RateLimit>,
}

impl TryFrom<&CommonArgs> for Settings {
    type Error = ConfigError;

    fn try_from(args: &CommonArgs) -> Result<Self, ConfigError> {
        let main = BucketName::parse(&args.bucket_name).map_err(|e| invalid("BUCKET_NAME", &args.bucket_name, e))?;
        let draft = BucketName::parse(&format!("{main}-draft"))
            .map_err(|e| invalid("BUCKET_NAME", &args.bucket_name, format!("the draft bucket name is invalid: {e}")))?;
        let events = BucketName::parse(&format!("{main}-events")).map_err(|e| {
            invalid("BUCKET_NAME", &args.bucket_name, format!("the events bucket name is invalid: {e}"))
        })?;
        let storage = match args.storage_type.as_str() {
            "local" => StorageSettings::Local { data_dir: args.data_dir.clone() },
            "s3" => StorageSettings::S3(Box::new(s3_settings(args)?)),
            "minio" => StorageSettings::S3(Box::new(minio_settings(args)?)),
            other => return Err(invalid("STORAGE_TYPE", other, "expected one of local, s3, minio")),
        };
        Ok(Self {
            storage,
            buckets: Buckets { main, draft, events },
            storage_timeout: seconds("STORAGE_TIMEOUT", &args.storage_timeout, 1, 3600)?,
            upload_ttl: seconds("UPLOAD_TTL", &args.upload_ttl, 1, MAX_URL_TTL)?,
            download_ttl: seconds("DOWNLOAD_TTL", &args.download_ttl, 1, MAX_URL_TTL)?,
            object_lifetime: seconds("OBJECT_LIFETIME", &args.object_lifetime, 1, u64::from(u32::MAX))?,
            draft_lifecycle: boolean("DRAFT_LIFECYCLE", &args.draft_lifecycle)?,
            limits: UploadLimits {
                max_size: bytes("MAX_UPLOAD_SIZE", &args.max_upload_size, 1, MAX_OBJECT_SIZE)?,
                allowed_types: match non_empty(&args.allowed_content_types) {
                    None => Vec::new(),
                    Some(list) => list
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(|t| MediaRange::parse(t).map_err(|e| invalid("ALLOWED_CONTENT_TYPES", t, e)))
                        .collect::<Result<_, _>>()?,
                },
            },
            multipart_part_size: bytes("MULTIPART_PART_SIZE", &args.multipart_part_size, MIB5, GIB5)?,
            cors_allowed_origins: cors_origins(args)?,
            log_format: match args.log_format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => return Err(invalid("LOG_FORMAT", other, "expected text or json")),
            },
            hooks: hook_settings(args)?,
        })
    }
}

/// CONFIRM_HOOK_URL, HOOK_TIMEOUT, EVENTS_URL, EVENTS_MAX_AGE and WEBHOOK_SECRET.
fn hook_settings(args: &CommonArgs) -> Result<HookSettings, ConfigError> {
    let url = |var, value: &Option<String>| non_empty(value).map(|value| http_url(var, value)).transpose();
    let confirm_url = url("CONFIRM_HOOK_URL", &args.confirm_hook_url)?;
    let events_url = url("EVENTS_URL", &args.events_url)?;
    let secret = match non_empty(&args.webhook_secret) {
        Some(value) => Some(
            crate::hooks::WebhookSecret::parse(value.trim())
                .map_err(|e| ConfigError::new("WEBHOOK_SECRET", format!("is not a Standard Webhooks secret: {e}")))?,
        ),
        None if confirm_url.is_some() || events_url.is_some() => {
            return Err(ConfigError::new(
                "WEBHOOK_SECRET",
                "is required with CONFIRM_HOOK_URL or EVENTS_URL: receivers verify every call with it \
                 (generate one with: echo whsec_$(head -c 32 /dev/urandom | base64))",
            ));
        }
        None => None,
    };
    Ok(HookSettings {
        confirm_url,
        timeout: seconds("HOOK_TIMEOUT", &args.hook_timeout, 1, 300)?,
        events_url,
        events_max_age: seconds("EVENTS_MAX_AGE", &args.events_max_age, 60, 30 * 86400)?,
        secret,
    })
}

impl TryFrom<&ServeArgs> for ServeSettings {
    type Error = ConfigError;

    fn try_from(args: &ServeArgs) -> Result<Self, ConfigError> {
        let common = Settings::try_from(&args.common)?;
        let bind_address = args
            .bind_address
            .trim()
            .parse()
            .map_err(|_| invalid("BIND_ADDRESS", &args.bind_address, "expected an IP address such as 0.0.0.0"))?;
        let auth = auth_settings(args)?;
        let http_port = port("HTTP_PORT", &args.http_port)?;
        let grpc_port = port("GRPC_PORT", &args.grpc_port)?;
        if http_port == grpc_port && http_port != 0 {
            return Err(invalid("GRPC_PORT", &args.grpc_port, "must differ from HTTP_PORT"));
        }
        let public_url = non_empty(&args.public_url).map(|url| http_url("PUBLIC_URL", url)).transpose()?;
        let signing_key = match non_empty(&args.signing_key) {
            Some(key) if key.len() < 16 => {
                return Err(ConfigError::new("SIGNING_KEY", "must be at least 16 characters long (value not shown)"));
            }
            key => key.map(|k| SecretString::from(k.to_owned())),
        };
        let health_interval = seconds("HEALTH_INTERVAL", &args.health_interval, 1, 3600)?;
        let cleanup_interval = match args.cleanup_interval.trim() {
            "" | "0" => None,
            value => Some(seconds("CLEANUP_INTERVAL", value, 1, 7 * 86_400)?),
        };
        Ok(Self {
            common,
            bind_address,
            auth,
            http_port,
            grpc_port,
            cleanup_interval,
            shutdown_timeout: seconds("SHUTDOWN_TIMEOUT", &args.shutdown_timeout, 1, 3600)?,
            ready_cache: seconds("READY_CACHE", &args.ready_cache, 0, 300)?,
            health_interval,
            public_url,
            signing_key,
            rate_limit: rate_limit(&args.rate_limit, args.rate_limit_burst.as_deref())?,
        })
    }
}

/// RATE_LIMIT and RATE_LIMIT_BURST: whole requests, up to a million per second.
fn rate_limit(per_second: &str, burst: Option<&str>) -> Result<Option<crate::ratelimit::RateLimit>, ConfigError> {
    let count = |var: &'static str, value: &str| -> Result<u32, ConfigError> {
        match value.trim().parse::<u32>() {
            Ok(n) if n <= 1_000_000 => Ok(n),
            _ => Err(invalid(var, value, "expected a whole number from 0 to 1000000")),
        }
    };
    let Some(per_second) = std::num::NonZeroU32::new(count("RATE_LIMIT", per_second)?) else {
        return Ok(None);
    };
    let burst = match burst.map(str::trim).filter(|b| !b.is_empty()) {
        None => per_second,
        Some(value) => std::num::NonZeroU32::new(count("RATE_LIMIT_BURST", value)?)
            .ok_or_else(|| invalid("RATE_LIMIT_BURST", value, "must be at least 1"))?,
    };
    Ok(Some(crate::ratelimit::RateLimit { per_second, burst }))
}

/// How callers are authenticated; key files are read when the server starts.
#[derive(Debug, Clone)]
pub enum AuthSettings {
    None,
    ApiKeys {
        file: Option<PathBuf>,
        inline: Option<String>,
    },
    Jwt {
        secret: Option<String>,
        public_key_file: Option<PathBuf>,
        jwks_file: Option<PathBuf>,
        issuer: Option<String>,
        audience: Option<String>,
        tenant_claim: String,
    },
}

fn auth_settings(args: &ServeArgs) -> Result<AuthSettings, ConfigError> {
    let path = |value: &Option<PathBuf>| value.clone().filter(|p| !p.as_os_str().is_empty());
    match args.auth_mode.trim() {
        "none" => Ok(AuthSettings::None),
        "api-key" => Ok(AuthSettings::ApiKeys {
            file: path(&args.api_keys_file),
            inline: non_empty(&args.api_keys).map(str::to_owned),
        }),
        "jwt" => {
            let tenant_claim = args.jwt_tenant_claim.trim();
            if tenant_claim.is_empty() {
                return Err(ConfigError::new("JWT_TENANT_CLAIM", "must name a claim"));
            }
            Ok(AuthSettings::Jwt {
                secret: non_empty(&args.jwt_secret).map(str::to_owned),
                public_key_file: path(&args.jwt_public_key_file),
                jwks_file: path(&args.jwks_file),
                issuer: non_empty(&args.jwt_issuer).map(str::to_owned),
                audience: non_empty(&args.jwt_audience).map(str::to_owned),
                tenant_claim: tenant_claim.to_owned(),
            })
        }
        other => Err(invalid("AUTH_MODE", other, "expected none, api-key or jwt")),
    }
}

fn s3_settings(args: &CommonArgs) -> Result<S3Settings, ConfigError> {
    let credentials = match (non_empty(&args.aws_access_key_id), non_empty(&args.aws_secret_access_key)) {
        (Some(id), Some(secret)) => Some(StaticCredentials {
            access_key_id: id.to_owned(),
            secret_access_key: SecretString::from(secret.to_owned()),
            session_token: non_empty(&args.aws_session_token).map(|t| SecretString::from(t.to_owned())),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new("AWS_SECRET_ACCESS_KEY", "is required when AWS_ACCESS_KEY_ID is set"));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new("AWS_ACCESS_KEY_ID", "is required when AWS_SECRET_ACCESS_KEY is set"));
        }
    };
    Ok(S3Settings {
        flavour: "s3",
        region: region("AWS_REGION", &args.aws_region)?,
        endpoint: non_empty(&args.aws_endpoint_url).map(|url| http_url("AWS_ENDPOINT_URL", url)).transpose()?,
        force_path_style: boolean("S3_FORCE_PATH_STYLE", &args.s3_force_path_style)?,
        credentials,
        presign_endpoint: presign_endpoint(args)?,
        multipart_copy_threshold: bytes("COPY_MULTIPART_THRESHOLD", &args.copy_multipart_threshold, 1, GIB5)?,
        multipart_copy_part_size: bytes("COPY_PART_SIZE", &args.copy_part_size, MIB5, GIB5)?,
        copy_concurrency: count("COPY_CONCURRENCY", &args.copy_concurrency, 1, 64)?,
        conditional_writes: match args.s3_conditional_writes.trim() {
            "auto" | "" => None,
            value => Some(boolean("S3_CONDITIONAL_WRITES", value)?),
        },
    })
}

fn minio_settings(args: &CommonArgs) -> Result<S3Settings, ConfigError> {
    let endpoint = args.minio_endpoint.trim();
    if endpoint.is_empty() {
        return Err(ConfigError::new("MINIO_ENDPOINT", "is required with STORAGE_TYPE=minio (host:port)"));
    }
    if endpoint.contains("://") || endpoint.contains('/') {
        return Err(invalid(
            "MINIO_ENDPOINT",
            endpoint,
            "expected host:port without a scheme or path (use MINIO_USE_SSL for https)",
        ));
    }
    let scheme = if boolean("MINIO_USE_SSL", &args.minio_use_ssl)? { "https" } else { "http" };
    let url = Url::parse(&format!("{scheme}://{endpoint}"))
        .ok()
        .filter(|u| u.host_str().is_some())
        .ok_or_else(|| invalid("MINIO_ENDPOINT", endpoint, "expected host:port"))?;
    if args.minio_access_key.is_empty() || args.minio_secret_key.is_empty() {
        return Err(ConfigError::new("MINIO_ACCESS_KEY", "MINIO_ACCESS_KEY and MINIO_SECRET_KEY must not be empty"));
    }
    Ok(S3Settings {
        flavour: "minio",
        region: region("MINIO_REGION", &args.minio_region)?,
        endpoint: Some(url),
        force_path_style: true,
        credentials: Some(StaticCredentials {
            access_key_id: args.minio_access_key.clone(),
            secret_access_key: SecretString::from(args.minio_secret_key.clone()),
            session_token: None,
        }),
        presign_endpoint: presign_endpoint(args)?,
        multipart_copy_threshold: bytes("COPY_MULTIPART_THRESHOLD", &args.copy_multipart_threshold, 1, GIB5)?,
        multipart_copy_part_size: bytes("COPY_PART_SIZE", &args.copy_part_size, MIB5, GIB5)?,
        copy_concurrency: count("COPY_CONCURRENCY", &args.copy_concurrency, 1, 64)?,
        conditional_writes: match args.s3_conditional_writes.trim() {
            "auto" | "" => None,
            value => Some(boolean("S3_CONDITIONAL_WRITES", value)?),
        },
    })
}

fn presign_endpoint(args: &CommonArgs) -> Result<Option<Url>, ConfigError> {
    non_empty(&args.presign_endpoint).map(|url| http_url("PRESIGN_ENDPOINT", url)).transpose()
}

fn cors_origins(args: &CommonArgs) -> Result<Vec<String>, ConfigError> {
    let Some(list) = non_empty(&args.cors_allowed_origins) else { return Ok(Vec::new()) };
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            if origin == "*" || Url::parse(origin).is_ok_and(|u| u.host_str().is_some()) {
                Ok(origin.trim_end_matches('/').to_owned())
            } else {
                Err(invalid("CORS_ALLOWED_ORIGINS", origin, "expected an origin such as https://app.example.com, or *"))
            }
        })
        .collect()
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn invalid(var: &'static str, value: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::new(var, format!("'{value}' is invalid: {reason}"))
}

fn seconds(var: &'static str, value: &str, min: u64, max: u64) -> Result<Duration, ConfigError> {
    let n: u64 =
        value.trim().parse().map_err(|_| ConfigError::new(var, format!("'{value}' is not a number of seconds")))?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::new(var, format!("'{value}' is out of range: expected {min} to {max} seconds")));
    }
    Ok(Duration::from_secs(n))
}

const MIB5: u64 = 5 * 1024 * 1024;
const GIB5: u64 = 5 * 1024 * 1024 * 1024;

fn bytes(var: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n: u64 =
        value.trim().parse().map_err(|_| ConfigError::new(var, format!("'{value}' is not a number of bytes")))?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::new(var, format!("'{value}' is out of range: expected {min} to {max} bytes")));
    }
    Ok(n)
}

fn count(var: &'static str, value: &str, min: usize, max: usize) -> Result<usize, ConfigError> {
    let n: usize = value.trim().parse().map_err(|_| ConfigError::new(var, format!("'{value}' is not a number")))?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::new(var, format!("'{value}' is out of range: expected {min} to {max}")));
    }
    Ok(n)
}

fn port(var: &'static str, value: &str) -> Result<u16, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::new(var, format!("'{value}' is not a port number (0 to 65535)")))
}

fn boolean(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::new(var, format!("'{value}' is not a boolean (true or false)"))),
    }
}

fn region(var: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(invalid(var, value, "expected a region name such as us-east-1"));
    }
    Ok(value.to_owned())
}

fn http_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| invalid(var, value, e))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(var, value, "expected an http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(var, value, "a base URL has no query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeSettings, String> {
        let cli = Cli::try_parse_from(
            std::iter::once("draftstore").chain(std::iter::once("serve")).chain(args.iter().copied()),
        )
        .map_err(|e| e.to_string())?;
        let Command::Serve(args) = cli.command else { unreachable!("serve was given") };
        ServeSettings::try_from(args.as_ref()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_run_the_local_backend() {
        let settings = serve(&[]).expect("defaults are valid");
        assert!(
            matches!(settings.common.storage, StorageSettings::Local { ref data_dir } if data_dir == &PathBuf::from("./data"))
        );
        assert_eq!(settings.common.buckets.main.as_str(), "main");
        assert_eq!(settings.common.buckets.draft.as_str(), "main-draft");
        assert_eq!((settings.http_port, settings.grpc_port), (8080, 50051));
        assert_eq!(settings.common.upload_ttl, Duration::from_secs(3600));
        assert_eq!(settings.common.object_lifetime, Duration::from_secs(86400));
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
    fn minio_settings_become_a_path_style_endpoint() {
        let settings =
            serve(&["--storage-type", "minio", "--minio-endpoint", "minio-service:9000", "--minio-use-ssl", "true"])
                .expect("valid");
        let StorageSettings::S3(s3) = settings.common.storage else { panic!("minio is S3") };
        assert_eq!(s3.endpoint.map(String::from).as_deref(), Some("https://minio-service:9000/"));
        assert!(s3.force_path_style);
        assert!(
            serve(&["--storage-type", "minio", "--minio-endpoint", "http://x:9000"])
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
}

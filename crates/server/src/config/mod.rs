//! The command line: each module declares the settings it consumes, beside its code (a typed argument with its
//! environment variable, its flag, its default, its meaning and its parser from [`crate::setting`]), and this
//! module composes them into the commands. A bad value stops start-up with a message naming the variable;
//! [`Settings::validate`] and [`ServeSettings::validate`] check the settings that go together.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use draftstore_storage::Store;
use secrecy::SecretString;
use url::Url;

use crate::auth::{AuthMode, AuthSettings};
use crate::backend::StorageSettings;
use crate::checks::CheckSettings;
use crate::cleaner::Cleaner;
use crate::cli::{ConfirmArgs, DeleteArgs, DiscardArgs, DownloadArgs, ListArgs, StatArgs, UploadArgs};
use crate::connections::ConnectionSettings;
use crate::gateway::StorageCalls;
use crate::hooks::HookSettings;
use crate::images::ImageSettings;
use crate::peer::PeerSettings;
use crate::probe::ProbeSettings;
use crate::ratelimit::RateLimitSettings;
use crate::service::{DraftService, ServiceSettings};
use crate::setting::{self, ConfigError, Setting, Unset};
use crate::telemetry::TelemetrySettings;

pub mod reference;

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
    Upload(Box<UploadArgs>),
    /// Download a draft, a confirmed object, or one of its image variants.
    Download(Box<DownloadArgs>),
    /// Confirm drafts: move them into the main bucket.
    Confirm(Box<ConfirmArgs>),
    /// Discard drafts.
    Discard(Box<DiscardArgs>),
    /// List your drafts with their size and expiry.
    Ls(Box<ListArgs>),
    /// List your confirmed objects with their size and confirm time.
    Objects(Box<ListArgs>),
    /// Describe confirmed objects: size, type, checksum, metadata.
    Stat(Box<StatArgs>),
    /// Delete confirmed objects.
    Delete(Box<DeleteArgs>),
}

/// Settings every command uses: where objects live, the workflow's lifetimes and limits, the logs, the hooks and
/// the checks.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub service: ServiceSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    #[command(flatten)]
    pub hooks: HookSettings,
    #[command(flatten)]
    pub checks: CheckSettings,
    #[command(flatten)]
    pub images: ImageSettings,
}

impl Settings {
    /// Checks what no single setting can: the settings that go together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.storage.s3_config(self.service.storage_timeout)?;
        self.hooks.validate()
    }

    /// The bound on every storage call (STORAGE_TIMEOUT): built once per process and handed to whatever calls the
    /// store.
    pub fn storage_calls(&self) -> StorageCalls {
        StorageCalls::new(self.service.storage_timeout)
    }

    /// The draft service over `store`, its calls made through `calls`.
    pub fn service(&self, store: Store, calls: StorageCalls) -> DraftService {
        DraftService::new(store, calls, &self.service, &self.hooks, &self.checks, &self.images)
    }

    /// A cleaner of the draft bucket of `store`, with a service of its own: `draftstore clean`'s.
    pub fn cleaner(&self, store: Store) -> Cleaner {
        Cleaner::new(&self.service(store, self.storage_calls()))
    }
}

/// `draftstore serve`.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct ServeSettings {
    #[command(flatten)]
    pub common: Settings,
    /// Address the servers listen on [default: 127.0.0.1 with AUTH_MODE=none, 0.0.0.0 otherwise].
    #[arg(long = "bind-address", env = "BIND_ADDRESS", value_name = "IP")]
    #[arg(value_parser = setting::optional(setting::ip_address()))]
    pub bind_address_given: Unset<std::net::IpAddr>,
    /// Serve AUTH_MODE=none on a BIND_ADDRESS other than loopback: anyone who reaches the address may then list,
    /// read, confirm and delete every object.
    #[arg(long, env = "ALLOW_UNAUTHENTICATED", default_value = "false", value_name = "BOOL")]
    #[arg(value_parser = setting::boolean())]
    pub allow_unauthenticated: bool,
    #[command(flatten)]
    pub auth: AuthSettings,
    /// Port of the REST API.
    #[arg(long, env = "HTTP_PORT", default_value = "8080", value_name = "PORT", value_parser = setting::port())]
    pub http_port: u16,
    /// Port of the gRPC API.
    #[arg(long, env = "GRPC_PORT", default_value = "50051", value_name = "PORT", value_parser = setting::port())]
    pub grpc_port: u16,
    /// Run the cleaner inside the server every this many seconds; `0` leaves cleaning to `draftstore clean`.
    #[arg(long, env = "CLEANUP_INTERVAL", default_value = "0", value_name = "SECONDS")]
    #[arg(value_parser = setting::interval(1, 7 * 86_400))]
    pub cleanup_interval: ::std::option::Option<Duration>,
    /// Longest wait, in seconds, for requests in flight once SIGTERM or SIGINT arrives.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, 3600))]
    pub shutdown_timeout: Duration,
    /// How long `/ready` reuses its last answer, in seconds (`0`: every probe checks the store).
    #[arg(long, env = "READY_CACHE", default_value = "2", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(0, 300))]
    pub ready_cache: Duration,
    #[command(flatten)]
    pub rate_limit: RateLimitSettings,
    #[command(flatten)]
    pub probe: ProbeSettings,
    #[command(flatten)]
    pub peers: PeerSettings,
    #[command(flatten)]
    pub connections: ConnectionSettings,
    /// How often the gRPC health service re-checks the store, in seconds.
    #[arg(long, env = "HEALTH_INTERVAL", default_value = "5", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, 3600))]
    pub health_interval: Duration,
    /// Where clients reach this server: base of the URLs the local backend signs and of Uppy's completion requests,
    /// and where the built-in page is opened [default: http://localhost:<HTTP_PORT>].
    #[arg(long, env = "PUBLIC_URL", value_name = "URL", value_parser = setting::optional(setting::http_url()))]
    pub public_url: Unset<Url>,
    /// Secret for the local backend's URL signatures, 16 characters or more [default: generated once, kept in
    /// DATA_DIR/.signing-key, mode 0600].
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true, value_name = "SECRET")]
    #[arg(value_parser = setting::optional(signing_key()))]
    pub signing_key: Unset<SecretString>,
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
                setting::invalid(&self.grpc_port.to_string(), "must differ from HTTP_PORT"),
            ));
        }
        Ok(())
    }
}

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
mod tests;

//! Where objects live: STORAGE_TYPE, the local backend's folder, and how to reach an S3-compatible store, as AWS
//! or as MinIO. Start-up opens the backend these settings name; the store probe describes it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use draftstore_storage::s3::{S3Config, StaticCredentials};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::setting::{self, ConfigError, GIB5, MIB5, Unset};

/// Where objects live: the local backend, or an S3-compatible store reached as `s3` or `minio`.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct StorageSettings {
    /// Storage backend: `local` (folders under DATA_DIR), `s3` or `minio`.
    #[arg(long = "storage-type", env = "STORAGE_TYPE", default_value = "local", value_name = "TYPE")]
    #[arg(value_parser = setting::choice(STORAGE_TYPES))]
    pub kind: StorageType,
    /// Root folder of the local backend.
    #[arg(long, env = "DATA_DIR", default_value = "./data", value_name = "PATH")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub aws: AwsSettings,
    #[command(flatten)]
    pub minio: MinioSettings,
    #[command(flatten)]
    pub signing: SigningSettings,
    /// Public base URL written into presigned URLs when DraftStore reaches the store on an internal address.
    #[arg(long, env = "PRESIGN_ENDPOINT", value_name = "URL", value_parser = setting::optional(setting::http_url()))]
    pub presign_endpoint: Unset<Url>,
    /// Drafts larger than this many bytes are confirmed with a parallel multipart copy (S3; at most 5 GiB); so are
    /// smaller ones that the store, by the speed it has shown, would not copy in one request within a quarter of
    /// STORAGE_TIMEOUT.
    #[arg(long, env = "COPY_MULTIPART_THRESHOLD", default_value = "67108864", value_name = "BYTES")]
    #[arg(value_parser = setting::bytes(1, GIB5))]
    pub copy_multipart_threshold: u64,
    /// Largest part of a multipart copy, in bytes (S3; 5 MiB to 5 GiB): parts start at 5 MiB and are sized to what
    /// the store has shown it copies in a quarter of STORAGE_TIMEOUT, since each part copy is one request bounded
    /// by it (the whole copy is not).
    #[arg(long, env = "COPY_PART_SIZE", default_value = "67108864", value_name = "BYTES")]
    #[arg(value_parser = setting::bytes(MIB5, GIB5))]
    pub copy_part_size: u64,
    /// Part copies in flight at once while confirming a large draft (S3; 1 to 64).
    #[arg(long, env = "COPY_CONCURRENCY", default_value = "8", value_name = "N", value_parser = setting::count(1, 64))]
    pub copy_concurrency: usize,
    /// Whether the store honours conditional writes (`If-None-Match`), which confirm with `overwrite: false` uses:
    /// `auto` finds out at start-up, `true`, `false` (S3).
    #[arg(long, env = "S3_CONDITIONAL_WRITES", default_value = "auto", value_name = "auto|true|false")]
    #[arg(value_parser = setting::auto_or_boolean())]
    pub s3_conditional_writes: ::std::option::Option<bool>,
}

/// The backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    Local,
    S3,
    Minio,
}

const STORAGE_TYPES: &[(&str, StorageType)] =
    &[("local", StorageType::Local), ("s3", StorageType::S3), ("minio", StorageType::Minio)];

/// AWS S3, or any S3-compatible store at `AWS_ENDPOINT_URL` (`STORAGE_TYPE=s3`).
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct AwsSettings {
    /// AWS region (`s3`).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1", value_name = "REGION")]
    #[arg(value_parser = setting::region())]
    pub aws_region: String,
    /// AWS access key id (`s3`); when unset, the standard AWS credential chain: profile, web identity (EKS),
    /// instance metadata.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true, value_name = "KEY")]
    #[arg(value_parser = setting::optional(setting::text()))]
    pub aws_access_key_id: Unset<String>,
    /// AWS secret access key (`s3`).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, value_name = "SECRET")]
    #[arg(value_parser = setting::optional(setting::secret()))]
    pub aws_secret_access_key: Unset<SecretString>,
    /// AWS session token, with temporary credentials (`s3`).
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    #[arg(value_parser = setting::optional(setting::secret()))]
    pub aws_session_token: Unset<SecretString>,
    /// Endpoint of an S3-compatible store instead of AWS (`s3`).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL", value_parser = setting::optional(setting::http_url()))]
    pub aws_endpoint_url: Unset<Url>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual hosts (`s3`).
    #[arg(long, env = "S3_FORCE_PATH_STYLE", default_value = "false", value_name = "BOOL")]
    #[arg(value_parser = setting::boolean())]
    pub s3_force_path_style: bool,
}

/// A MinIO server (`STORAGE_TYPE=minio`): always path-style, with static credentials.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct MinioSettings {
    /// MinIO server as `host:port` (`minio`).
    #[arg(long, env = "MINIO_ENDPOINT", default_value = "localhost:9000", value_name = "HOST:PORT")]
    #[arg(value_parser = setting::text())]
    pub minio_endpoint: String,
    /// MinIO access key; required with `minio` (no default: MinIO's own, `minioadmin`, is known to everyone).
    #[arg(long, env = "MINIO_ACCESS_KEY", hide_env_values = true, value_name = "KEY")]
    #[arg(value_parser = setting::optional(setting::text()))]
    pub minio_access_key: Unset<String>,
    /// MinIO secret key; required with `minio`.
    #[arg(long, env = "MINIO_SECRET_KEY", hide_env_values = true, value_name = "SECRET")]
    #[arg(value_parser = setting::optional(setting::secret()))]
    pub minio_secret_key: Unset<SecretString>,
    /// Reach MinIO over https (`minio`).
    #[arg(long, env = "MINIO_USE_SSL", default_value = "false", value_name = "BOOL", value_parser = setting::boolean())]
    pub minio_use_ssl: bool,
    /// MinIO region (`minio`).
    #[arg(long, env = "MINIO_REGION", default_value = "us-east-1", value_name = "REGION")]
    #[arg(value_parser = setting::region())]
    pub minio_region: String,
}

/// Credentials that sign clients' URLs instead of the main one (`s3`, `minio`), each able to do no more than its
/// URLs should: then no upload URL can read or copy, whatever a store lets a client smuggle into it.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct SigningSettings {
    /// Access key id that signs upload URLs (PUT, POST, DELETE) instead of the main credential: give it PutObject
    /// and multipart rights on the draft bucket only (`s3`, `minio`; with UPLOAD_SIGNING_SECRET_ACCESS_KEY).
    #[arg(long, env = "UPLOAD_SIGNING_ACCESS_KEY_ID", hide_env_values = true, value_name = "KEY")]
    #[arg(value_parser = setting::optional(setting::text()))]
    pub upload_signing_access_key_id: Unset<String>,
    /// Secret of UPLOAD_SIGNING_ACCESS_KEY_ID.
    #[arg(long, env = "UPLOAD_SIGNING_SECRET_ACCESS_KEY", hide_env_values = true, value_name = "SECRET")]
    #[arg(value_parser = setting::optional(setting::secret()))]
    pub upload_signing_secret_access_key: Unset<SecretString>,
    /// Access key id that signs download URLs (GET) instead of the main credential: give it GetObject rights only
    /// (`s3`, `minio`; with DOWNLOAD_SIGNING_SECRET_ACCESS_KEY).
    #[arg(long, env = "DOWNLOAD_SIGNING_ACCESS_KEY_ID", hide_env_values = true, value_name = "KEY")]
    #[arg(value_parser = setting::optional(setting::text()))]
    pub download_signing_access_key_id: Unset<String>,
    /// Secret of DOWNLOAD_SIGNING_ACCESS_KEY_ID.
    #[arg(long, env = "DOWNLOAD_SIGNING_SECRET_ACCESS_KEY", hide_env_values = true, value_name = "SECRET")]
    #[arg(value_parser = setting::optional(setting::secret()))]
    pub download_signing_secret_access_key: Unset<SecretString>,
}

impl SigningSettings {
    /// The upload and download signing credentials, each a complete pair or none.
    fn credentials(&self) -> Result<(Option<StaticCredentials>, Option<StaticCredentials>), ConfigError> {
        let pair = |id: &Option<String>, secret: &Option<SecretString>, id_var, secret_var| match (id, secret) {
            (Some(id), Some(secret)) => Ok(Some(StaticCredentials {
                access_key_id: id.clone(),
                secret_access_key: secret.expose_secret().to_owned(),
                session_token: None,
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(secret_var, format!("is required when {id_var} is set"))),
            (None, Some(_)) => Err(ConfigError::new(id_var, format!("is required when {secret_var} is set"))),
        };
        Ok((
            pair(
                &self.upload_signing_access_key_id,
                &self.upload_signing_secret_access_key,
                "UPLOAD_SIGNING_ACCESS_KEY_ID",
                "UPLOAD_SIGNING_SECRET_ACCESS_KEY",
            )?,
            pair(
                &self.download_signing_access_key_id,
                &self.download_signing_secret_access_key,
                "DOWNLOAD_SIGNING_ACCESS_KEY_ID",
                "DOWNLOAD_SIGNING_SECRET_ACCESS_KEY",
            )?,
        ))
    }
}

impl StorageSettings {
    /// How to reach the S3-compatible store, `None` for the local backend: `s3` and `minio` are two ways to name
    /// one.
    pub fn s3_config(&self, timeout: Duration) -> Result<Option<S3Config>, ConfigError> {
        let (upload_signing, download_signing) = self.signing.credentials()?;
        let (region, endpoint, force_path_style, credentials) = match self.kind {
            StorageType::Local if upload_signing.is_some() || download_signing.is_some() => {
                let var = match upload_signing {
                    Some(_) => "UPLOAD_SIGNING_ACCESS_KEY_ID",
                    None => "DOWNLOAD_SIGNING_ACCESS_KEY_ID",
                };
                return Err(ConfigError::new(
                    var,
                    "is for an S3 store (STORAGE_TYPE=s3 or minio): the local backend signs with SIGNING_KEY",
                ));
            }
            StorageType::Local => return Ok(None),
            StorageType::S3 => {
                let aws = &self.aws;
                let credentials = match (&aws.aws_access_key_id, &aws.aws_secret_access_key) {
                    (Some(id), Some(secret)) => Some(StaticCredentials {
                        access_key_id: id.clone(),
                        secret_access_key: secret.expose_secret().to_owned(),
                        session_token: aws.aws_session_token.as_ref().map(|token| token.expose_secret().to_owned()),
                    }),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(ConfigError::new(
                            "AWS_SECRET_ACCESS_KEY",
                            "is required when AWS_ACCESS_KEY_ID is set",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(ConfigError::new(
                            "AWS_ACCESS_KEY_ID",
                            "is required when AWS_SECRET_ACCESS_KEY is set",
                        ));
                    }
                };
                (aws.aws_region.clone(), aws.aws_endpoint_url.clone(), aws.s3_force_path_style, credentials)
            }
            StorageType::Minio => {
                let minio = &self.minio;
                (minio.minio_region.clone(), Some(minio.endpoint()?), true, Some(minio.credentials()?))
            }
        };
        Ok(Some(S3Config {
            region,
            endpoint,
            force_path_style,
            credentials,
            presign_endpoint: self.presign_endpoint.clone(),
            timeout,
            copy_multipart_threshold: self.copy_multipart_threshold,
            copy_part_size: self.copy_part_size,
            copy_concurrency: self.copy_concurrency,
            conditional_writes: self.s3_conditional_writes,
            upload_signing,
            download_signing,
        }))
    }
}

impl MinioSettings {
    /// MINIO_ENDPOINT with the scheme MINIO_USE_SSL asks for.
    fn endpoint(&self) -> Result<Url, ConfigError> {
        let endpoint = self.minio_endpoint.as_str();
        if endpoint.is_empty() {
            return Err(ConfigError::new("MINIO_ENDPOINT", "is required with STORAGE_TYPE=minio (host:port)"));
        }
        if endpoint.contains("://") || endpoint.contains('/') {
            return Err(ConfigError::new(
                "MINIO_ENDPOINT",
                setting::invalid(endpoint, "expected host:port without a scheme or path (use MINIO_USE_SSL for https)"),
            ));
        }
        let scheme = if self.minio_use_ssl { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{endpoint}"))
            .ok()
            .filter(|u| u.host_str().is_some())
            .ok_or_else(|| ConfigError::new("MINIO_ENDPOINT", setting::invalid(endpoint, "expected host:port")))
    }

    /// MINIO_ACCESS_KEY and MINIO_SECRET_KEY, both required: a MinIO left with its well-known default credentials
    /// is anyone's, and DraftStore does not assume them.
    fn credentials(&self) -> Result<StaticCredentials, ConfigError> {
        let required = |var| {
            ConfigError::new(
                var,
                "is required with STORAGE_TYPE=minio: set MINIO_ACCESS_KEY and MINIO_SECRET_KEY to the credentials \
                 of a MinIO user (never MinIO's default minioadmin)",
            )
        };
        let access_key = self.minio_access_key.clone().ok_or_else(|| required("MINIO_ACCESS_KEY"))?;
        let secret_key = self.minio_secret_key.as_ref().ok_or_else(|| required("MINIO_SECRET_KEY"))?;
        Ok(StaticCredentials {
            access_key_id: access_key,
            secret_access_key: secret_key.expose_secret().to_owned(),
            session_token: None,
        })
    }
}

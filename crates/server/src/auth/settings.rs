//! AUTH_MODE and the keys callers are checked against.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;
use url::Url;

use crate::setting::{self, Setting, Unset};

/// How callers are authenticated; key files are read when the server starts.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct AuthSettings {
    /// Who may call: `none` (every caller trusted; the servers then bind loopback unless BIND_ADDRESS and
    /// ALLOW_UNAUTHENTICATED say otherwise), `api-key` or `jwt`.
    #[arg(long = "auth-mode", env = "AUTH_MODE", default_value = "none", value_name = "MODE")]
    #[arg(value_parser = setting::choice(AUTH_MODES))]
    pub mode: AuthMode,
    /// File of `tenant:sha256-hex-of-key` lines (`api-key`).
    #[arg(long, env = "API_KEYS_FILE", value_name = "PATH", value_parser = setting::optional(setting::path()))]
    pub api_keys_file: Unset<PathBuf>,
    /// `tenant:sha256-hex-of-key` entries, comma- or newline-separated (`api-key`).
    #[arg(long, env = "API_KEYS", hide_env_values = true, value_name = "ENTRIES")]
    #[arg(value_parser = setting::optional(setting::secret()))]
    pub api_keys: Unset<SecretString>,
    /// Tenants (comma-separated) that may make the operator calls (`draft-bucket`, gRPC CreateDraftBucket) once
    /// authentication is on; any other caller is refused 403 [default: none].
    #[arg(long, env = "ADMIN_TENANTS", value_name = "TENANTS")]
    #[arg(value_parser = setting::list(|tenant| Ok(tenant.to_owned())))]
    pub admin_tenants: ::std::vec::Vec<String>,
    /// HS256 secret of 32 bytes or more (`jwt`; one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWKS_FILE, JWKS_URL).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, value_name = "SECRET")]
    #[arg(value_parser = setting::optional(jwt_secret()))]
    pub jwt_secret: Unset<SecretString>,
    /// RS256 or ES256 public key in PEM (`jwt`).
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", value_name = "PATH", value_parser = setting::optional(setting::path()))]
    pub jwt_public_key_file: Unset<PathBuf>,
    /// JSON Web Key Set file, keys chosen by `kid` (`jwt`).
    #[arg(long, env = "JWKS_FILE", value_name = "PATH", value_parser = setting::optional(setting::path()))]
    pub jwks_file: Unset<PathBuf>,
    /// URL of the identity provider's JSON Web Key Set, https (or http on loopback), keys chosen by `kid` (`jwt`);
    /// fetched at start-up, which fails without it.
    #[arg(long, env = "JWKS_URL", value_name = "URL", value_parser = setting::optional(jwks_url()))]
    pub jwks_url: Unset<Url>,
    /// Seconds between two readings of JWKS_FILE or JWKS_URL (1 to 86400); a token whose `kid` the set lacks also
    /// has it read again, at most once per 30 s.
    #[arg(long, env = "JWKS_REFRESH_INTERVAL", default_value = "300", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, 86_400))]
    pub jwks_refresh_interval: Duration,
    /// Required `iss` of tokens; required with public keys (`jwt`).
    #[arg(long, env = "JWT_ISSUER", value_name = "ISSUER", value_parser = setting::optional(setting::text()))]
    pub jwt_issuer: Unset<String>,
    /// Required `aud` of tokens; required with public keys (`jwt`).
    #[arg(long, env = "JWT_AUDIENCE", value_name = "AUDIENCE", value_parser = setting::optional(setting::text()))]
    pub jwt_audience: Unset<String>,
    /// The claim that names the tenant (`jwt`).
    #[arg(long, env = "JWT_TENANT_CLAIM", default_value = "sub", value_name = "CLAIM")]
    #[arg(value_parser = setting::required_text("must name a claim"))]
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
    let base = setting::http_url();
    Setting::new(move |text| {
        let url = Url::parse(text).map_err(|e| setting::invalid(text, e))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if url.scheme() != "https" && !loopback {
            return Err(setting::invalid(text, "expected an https:// URL (http:// only to a loopback address)"));
        }
        base.parse_text(text)
    })
}

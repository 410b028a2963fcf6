//! Authentication: who calls, and so which tenant's namespace a request works in.
//!
//! `AUTH_MODE=none` trusts every caller and uses no namespace. `api-key` and `jwt` require
//! `Authorization: Bearer …` on every API request and RPC, and put every object under `<tenant>/`.

use std::collections::HashMap;
use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AuthMode, AuthSettings, ConfigError};
use draftstore_storage::ObjectKey;

use crate::domain::ObjectName;
use crate::error::Error;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY: u64 = 5;

/// A tenant name: one object-name segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(String);

impl Tenant {
    /// Parses a tenant name with the rules of an object-name segment.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.contains('/') {
            return Err("a tenant name must not contain '/'".to_owned());
        }
        ObjectKey::parse(name).map(|_| Self(name.to_owned())).map_err(|e| format!("invalid tenant name: {e}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who made a request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    tenant: Option<Tenant>,
}

impl Caller {
    /// A caller of `AUTH_MODE=none`: trusted, without a namespace.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The caller's tenant, when authentication is on.
    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }

    /// The start of every key of the caller's: `<tenant>/`, or nothing without a tenant.
    pub fn namespace(&self) -> String {
        self.tenant.as_ref().map(|tenant| format!("{}/", tenant.as_str())).unwrap_or_default()
    }

    /// The key of the caller's object `name` in both buckets: `<tenant>/<name>`, or `name` without a tenant. The
    /// one place a name becomes a key.
    pub fn key(&self, name: &ObjectName) -> Result<ObjectKey, Error> {
        let key = match &self.tenant {
            None => ObjectKey::parse(name.as_str()),
            Some(tenant) => ObjectKey::parse(&format!("{}/{name}", tenant.as_str())),
        };
        key.map_err(|e| Error::InvalidObjectName(format!("with the tenant prefix, {e}")))
    }

    /// The caller's name of a key in its namespace; the one place a key becomes a name again.
    pub fn name_of(&self, key: &ObjectKey) -> Result<ObjectName, Error> {
        key.as_str()
            .strip_prefix(&self.namespace())
            .and_then(|name| ObjectName::parse(name).ok())
            .ok_or_else(|| Error::InvalidObjectName(format!("'{key}' is outside the caller's namespace")))
    }
}

/// Checks credentials.
#[derive(Debug)]
pub enum Authenticator {
    /// `AUTH_MODE=none`.
    Open,
    /// `AUTH_MODE=api-key`: SHA-256 digests of the keys, never the keys.
    ApiKeys(Vec<(Tenant, [u8; 32])>),
    /// `AUTH_MODE=jwt`.
    Jwt(Box<JwtAuth>),
}

/// Verifies JSON Web Tokens.
pub struct JwtAuth {
    keys: JwtKeys,
    issuer: Option<String>,
    audience: Option<String>,
    tenant_claim: String,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

enum JwtKeys {
    /// One key and the algorithms it may verify.
    Single(DecodingKey, Vec<Algorithm>),
    /// Keys by `kid`.
    Set(JwkSet),
}

fn unauthenticated(reason: impl std::fmt::Display) -> Error {
    tracing::info!(%reason, "request refused: missing or invalid credentials");
    Error::Unauthenticated
}

impl Authenticator {
    /// Builds the authenticator, reading key files; errors name the variable.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, ConfigError> {
        match settings.mode {
            AuthMode::None => Ok(Self::Open),
            AuthMode::ApiKey => {
                let mut entries = Vec::new();
                if let Some(path) = &settings.api_keys_file {
                    let text = read("API_KEYS_FILE", path)?;
                    entries.extend(parse_api_keys("API_KEYS_FILE", text.lines())?);
                }
                if let Some(inline) = &settings.api_keys {
                    entries.extend(parse_api_keys("API_KEYS", inline.split([',', '\n']))?);
                }
                if entries.is_empty() {
                    return Err(ConfigError::new(
                        "API_KEYS",
                        "AUTH_MODE=api-key needs at least one key (API_KEYS or API_KEYS_FILE)",
                    ));
                }
                Ok(Self::ApiKeys(entries))
            }
            AuthMode::Jwt => {
                let keys = match (&settings.jwt_secret, &settings.jwt_public_key_file, &settings.jwks_file) {
                    (Some(secret), None, None) => {
                        JwtKeys::Single(DecodingKey::from_secret(secret.as_bytes()), vec![Algorithm::HS256])
                    }
                    (None, Some(path), None) => {
                        let pem = read("JWT_PUBLIC_KEY_FILE", path)?;
                        if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                            JwtKeys::Single(key, vec![Algorithm::RS256])
                        } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
                            JwtKeys::Single(key, vec![Algorithm::ES256])
                        } else {
                            return Err(ConfigError::new(
                                "JWT_PUBLIC_KEY_FILE",
                                "is not an RSA or EC public key in PEM",
                            ));
                        }
                    }
                    (None, None, Some(path)) => {
                        let set: JwkSet = serde_json::from_str(&read("JWKS_FILE", path)?)
                            .map_err(|e| ConfigError::new("JWKS_FILE", format!("is not a JSON Web Key Set: {e}")))?;
                        if set.keys.is_empty() {
                            return Err(ConfigError::new("JWKS_FILE", "holds no key"));
                        }
                        JwtKeys::Set(set)
                    }
                    _ => {
                        return Err(ConfigError::new(
                            "AUTH_MODE",
                            "jwt needs exactly one of JWT_SECRET, JWT_PUBLIC_KEY_FILE and JWKS_FILE",
                        ));
                    }
                };
                Ok(Self::Jwt(Box::new(JwtAuth {
                    keys,
                    issuer: settings.jwt_issuer.clone(),
                    audience: settings.jwt_audience.clone(),
                    tenant_claim: settings.jwt_tenant_claim.clone(),
                })))
            }
        }
    }

    /// Whether requests need credentials.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open)
    }

    /// How many bytes the tenant prefix (`<tenant>/`) takes from an object name's 1024 at most: none when
    /// requests are open, the longest configured tenant's with API keys, and `None` with JWTs, whose tenants are
    /// not known in advance.
    pub fn longest_tenant_prefix(&self) -> Option<usize> {
        match self {
            Self::Open => Some(0),
            Self::ApiKeys(entries) => entries.iter().map(|(tenant, _)| tenant.as_str().len() + 1).max(),
            Self::Jwt(_) => None,
        }
    }

    /// Identifies the caller from an `Authorization` header value. Every failure is the same `Unauthenticated`;
    /// the reason goes to the log only.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Error> {
        if let Self::Open = self {
            return Ok(Caller::anonymous());
        }
        let token = authorization
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| unauthenticated("no bearer token"))?;
        let tenant = match self {
            Self::Open => unreachable!("handled above"),
            Self::ApiKeys(keys) => {
                let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                // Every key is compared, in constant time, so timing tells nothing about which nearly matched.
                let mut found = None;
                for (tenant, expected) in keys {
                    if bool::from(expected.ct_eq(&digest)) && found.is_none() {
                        found = Some(tenant.clone());
                    }
                }
                found.ok_or_else(|| unauthenticated("unknown API key"))?
            }
            Self::Jwt(jwt) => jwt.tenant(token)?,
        };
        Ok(Caller { tenant: Some(tenant) })
    }
}

impl JwtAuth {
    fn tenant(&self, token: &str) -> Result<Tenant, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(unauthenticated)?;
        let owned;
        let (key, algorithms) = match &self.keys {
            JwtKeys::Single(key, algorithms) => (key, algorithms.clone()),
            JwtKeys::Set(set) => {
                let jwk = match (&header.kid, set.keys.as_slice()) {
                    (Some(kid), _) => set.find(kid).ok_or_else(|| unauthenticated("unknown kid"))?,
                    (None, [only]) => only,
                    (None, _) => return Err(unauthenticated("a token without kid, and several keys")),
                };
                owned = DecodingKey::from_jwk(jwk).map_err(unauthenticated)?;
                let allowed = [
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                    Algorithm::ES256,
                    Algorithm::ES384,
                    Algorithm::EdDSA,
                ];
                if !allowed.contains(&header.alg) || header.alg.family() != owned.family() {
                    return Err(unauthenticated("algorithm does not fit the key"));
                }
                (&owned, vec![header.alg])
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = jsonwebtoken::decode::<HashMap<String, serde_json::Value>>(token, key, &validation)
            .map_err(unauthenticated)?
            .claims;
        let tenant = claims
            .get(&self.tenant_claim)
            .and_then(|value| value.as_str())
            .ok_or_else(|| unauthenticated(format!("no string claim '{}'", self.tenant_claim)))?;
        Tenant::parse(tenant).map_err(unauthenticated)
    }
}

fn read(var: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::new(var, format!("cannot read {}: {e}", path.display())))
}

fn parse_api_keys<'a>(
    var: &'static str,
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(Tenant, [u8; 32])>, ConfigError> {
    let mut keys = Vec::new();
    for line in lines.map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (tenant, digest) = line
            .split_once(':')
            .ok_or_else(|| ConfigError::new(var, "expected tenant:sha256-hex-of-key entries (value not shown)"))?;
        let tenant = Tenant::parse(tenant.trim()).map_err(|e| ConfigError::new(var, e))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digest.trim(), &mut bytes).map_err(|_| {
            ConfigError::new(var, format!("the key digest of tenant '{}' is not 64 hex digits", tenant.as_str()))
        })?;
        keys.push((tenant, bytes));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// AUTH_MODE=api-key with these API_KEYS, parsed as the binary parses them.
    fn api_key_settings(inline: &str) -> AuthSettings {
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            auth: AuthSettings,
        }
        Args::try_parse_from(["draftstore", "--auth-mode", "api-key", "--api-keys", inline]).expect("parses").auth
    }

    fn api_keys(keys: &[(&str, &str)]) -> Authenticator {
        let inline =
            keys.iter().map(|(t, k)| format!("{t}:{}", hex::encode(Sha256::digest(k)))).collect::<Vec<_>>().join(",");
        Authenticator::from_settings(&api_key_settings(&inline)).expect("valid")
    }

    #[test]
    fn api_keys_identify_their_tenant_and_nothing_else_passes() {
        let auth = api_keys(&[("alice", "k-alice"), ("bob", "k-bob")]);
        let tenant = |header: &str| auth.authenticate(Some(header)).map(|c| c.tenant().map(|t| t.as_str().to_owned()));
        assert_eq!(tenant("Bearer k-alice").ok().flatten().as_deref(), Some("alice"));
        assert_eq!(tenant("bearer k-bob").ok().flatten().as_deref(), Some("bob"));
        for bad in ["Bearer k-carol", "Basic k-alice", "Bearer ", "k-alice", ""] {
            assert!(matches!(auth.authenticate(Some(bad)), Err(Error::Unauthenticated)), "{bad:?}");
        }
        assert!(matches!(auth.authenticate(None), Err(Error::Unauthenticated)));
    }

    #[test]
    fn bad_key_lists_are_refused_at_start_up() {
        for inline in ["alice", "alice:nothex", "a/b:00", ""] {
            assert!(Authenticator::from_settings(&api_key_settings(inline)).is_err(), "{inline:?}");
        }
    }

    #[test]
    fn tenants_prefix_keys_and_are_single_segments() {
        let caller = Caller { tenant: Some(Tenant::parse("alice").expect("valid")) };
        let key = caller.key(&ObjectName::parse("docs/a.txt").expect("valid")).expect("fits");
        assert_eq!(key.as_str(), "alice/docs/a.txt");
        assert!(caller.key(&ObjectName::parse(&"x".repeat(1020)).expect("valid")).is_err());
        for bad in ["", "a/b", "..", ".", "nul\0"] {
            assert!(Tenant::parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! Authentication: who calls, and so which tenant's namespace a request works in.
//!
//! `AUTH_MODE=none` trusts every caller and uses no namespace. `api-key` and `jwt` require
//! `Authorization: Bearer …` on every API request and RPC, and put every object under `<tenant>/`. The operator
//! calls (`draft-bucket`) are open to the tenants of `ADMIN_TENANTS` only, once authentication is on.
//!
//! JWTs are verified with a shared secret (HS256, 32 bytes at least) or with public keys: one PEM key, or a JSON Web
//! Key Set read from `JWKS_FILE` or fetched from `JWKS_URL`, whose keys are used only for what each says (`use`,
//! `key_ops`, `alg`). A key set is read again on a schedule and when a token names a `kid` it lacks (at most once per
//! [`KID_RELOAD_COOLDOWN`]), so that an identity provider's rotation needs no restart. Public keys verify tokens of
//! any application of their issuer: `JWT_ISSUER` and `JWT_AUDIENCE` are then required.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use draftstore_storage::ObjectKey;

use crate::domain::ObjectName;
use crate::error::Error;
use crate::setting::ConfigError;

mod settings;

pub use settings::{AuthMode, AuthSettings};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY: u64 = 5;

/// The longest tenant name, in bytes: a tenant is a folder and the start of every key of its objects.
pub const MAX_TENANT_LEN: usize = 128;

/// The shortest pause between two reloads of a key set asked for by tokens with an unknown `kid`: forged `kid`s
/// cannot make DraftStore fetch the identity provider's keys more often than this.
pub const KID_RELOAD_COOLDOWN: Duration = Duration::from_secs(30);

/// Largest key set fetched from JWKS_URL.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Longest wait for JWKS_URL.
const JWKS_TIMEOUT: Duration = Duration::from_secs(10);

/// A tenant name: one object-name segment of at most [`MAX_TENANT_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(String);

impl Tenant {
    /// Parses a tenant name with the rules of an object-name segment, and its length limit.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.len() > MAX_TENANT_LEN {
            return Err(format!("a tenant name is at most {MAX_TENANT_LEN} bytes; this one has {}", name.len()));
        }
        if name.contains('/') {
            return Err("a tenant name must not contain '/'".to_owned());
        }
        ObjectKey::parse(name).map(|_| Self(name.to_owned())).map_err(|e| format!("invalid tenant name: {e}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which tenant names the store can keep apart, as probed in DATA_DIR at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantNames {
    /// The store tells every name from every other (S3; a case-sensitive filesystem).
    AsGiven,
    /// The local backend is on a filesystem that folds case (`Alice` and `alice` would be one folder): tenant names
    /// must be lower-case ASCII, so that no two tenants can share a folder.
    LowerCaseAscii,
}

impl TenantNames {
    /// Probes `dir` (the local backend's root): a file made there under a lower-case name is looked up under the
    /// upper-case one.
    pub fn probe(dir: &Path) -> std::io::Result<TenantNames> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        let name = format!(".case-probe-{}", hex::encode(bytes));
        let lower = dir.join(&name);
        std::fs::File::create_new(&lower)?;
        let folded = std::fs::symlink_metadata(dir.join(name.to_uppercase())).is_ok();
        std::fs::remove_file(&lower)?;
        Ok(if folded { TenantNames::LowerCaseAscii } else { TenantNames::AsGiven })
    }

    /// Refuses a tenant name this store could merge with another.
    pub fn check(self, tenant: &Tenant) -> Result<(), String> {
        match self {
            TenantNames::AsGiven => Ok(()),
            TenantNames::LowerCaseAscii => {
                let name = tenant.as_str();
                if name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase()) {
                    Ok(())
                } else {
                    Err(format!(
                        "tenant '{name}' must be lower-case ASCII: DATA_DIR is on a case-insensitive filesystem, \
                         where it could share a folder with another tenant"
                    ))
                }
            }
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    tenant: Option<Tenant>,
    /// One of ADMIN_TENANTS.
    operator: bool,
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

    /// Refuses an operator call (`what`) to any caller but the operator's: every caller when requests are open,
    /// the tenants of ADMIN_TENANTS once authentication is on.
    pub fn require_operator(&self, what: &str) -> Result<(), Error> {
        match &self.tenant {
            None => Ok(()),
            Some(_) if self.operator => Ok(()),
            Some(tenant) => Err(Error::Forbidden(format!(
                "{what} is an operator call: tenant '{}' is not in ADMIN_TENANTS",
                tenant.as_str()
            ))),
        }
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
pub struct Authenticator {
    kind: Kind,
    /// ADMIN_TENANTS.
    operators: Vec<Tenant>,
    names: TenantNames,
}

#[derive(Debug)]
enum Kind {
    /// `AUTH_MODE=none`.
    Open,
    /// `AUTH_MODE=api-key`: SHA-256 digests of the keys, never the keys.
    ApiKeys(Vec<(Tenant, [u8; 32])>),
    /// `AUTH_MODE=jwt`.
    Jwt(Box<JwtAuth>),
}

/// What authentication made of a request's credentials.
#[derive(Debug)]
pub enum Verdict {
    /// The caller, or why it is refused.
    Decided(Result<Caller, Error>),
    /// A token names a key the key set lacks: [`Authenticator::after_reload`] reloads the set and decides.
    UnknownKey,
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
    /// A key set, read again on a schedule and on an unknown `kid`.
    Set(KeySet),
}

/// A public key of a key set, with the algorithms it may verify.
struct SetKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// Where a key set comes from.
#[derive(Debug, Clone)]
enum KeySource {
    File(PathBuf),
    Url(Url, reqwest::Client),
}

impl KeySource {
    fn var(&self) -> &'static str {
        match self {
            KeySource::File(_) => "JWKS_FILE",
            KeySource::Url(..) => "JWKS_URL",
        }
    }

    /// The key set's text.
    async fn fetch(&self) -> Result<String, String> {
        match self {
            KeySource::File(path) => {
                tokio::fs::read_to_string(path).await.map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            KeySource::Url(url, client) => {
                let mut response = client
                    .get(url.clone())
                    .send()
                    .await
                    .map_err(|e| format!("cannot fetch it: {}", e.without_url()))?;
                if !response.status().is_success() {
                    return Err(format!("answered {}", response.status()));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| format!("{}", e.without_url()))? {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(format!("answered more than {MAX_JWKS_BYTES} bytes"));
                    }
                    body.extend_from_slice(&chunk);
                }
                String::from_utf8(body).map_err(|_| "answered a body that is not UTF-8".to_owned())
            }
        }
    }
}

/// The keys of a key set as last read, and what governs reading them again.
struct KeySet {
    source: KeySource,
    keys: RwLock<Arc<Vec<SetKey>>>,
    /// Serialises reloads: requests that find the same unknown `kid` at once wait for one fetch.
    reloading: tokio::sync::Mutex<()>,
    /// When a reload was last asked for by an unknown `kid`.
    last_kid_reload: Mutex<Option<Instant>>,
}

impl KeySet {
    fn current(&self) -> Arc<Vec<SetKey>> {
        Arc::clone(&self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Reads the set again and keeps it when it holds a usable key; otherwise the set in use stays.
    async fn reload(&self) -> Result<usize, String> {
        let text = self.source.fetch().await?;
        let keys = usable_keys(&text)?;
        let count = keys.len();
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        Ok(count)
    }

    /// Reloads for a token whose `kid` the set lacked, unless another request just did or the cooldown is on.
    async fn reload_for_unknown_kid(&self, seen: &Arc<Vec<SetKey>>) {
        let _one_at_a_time = self.reloading.lock().await;
        if !Arc::ptr_eq(seen, &self.current()) {
            return;
        }
        {
            let mut last = self.last_kid_reload.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < KID_RELOAD_COOLDOWN) {
                return;
            }
            *last = Some(Instant::now());
        }
        match self.reload().await {
            Ok(count) => {
                tracing::info!(source = self.source.var(), keys = count, "key set reloaded for an unknown kid")
            }
            Err(e) => tracing::warn!(source = self.source.var(), error = %e, "cannot reload the key set; keeping it"),
        }
    }
}

/// The keys of a JSON Web Key Set that may verify token signatures, each with the algorithms it allows; an error
/// when the text is not a key set or holds no such key.
fn usable_keys(text: &str) -> Result<Vec<SetKey>, String> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("is not a JSON Web Key Set: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        match set_key(jwk) {
            Ok(key) => keys.push(key),
            Err(reason) => tracing::info!(kid = ?jwk.common.key_id, reason, "a key of the key set is not used"),
        }
    }
    if keys.is_empty() {
        return Err(format!("holds no public key for signatures (of {} keys)", set.keys.len()));
    }
    Ok(keys)
}

/// A key of the set, used only as it says: for signatures (`use`, `key_ops`), with its `alg` alone when it names
/// one, and otherwise the algorithms of its type (an EC key's by its curve). Secret (`oct`) keys never verify: a
/// published key set is public.
fn set_key(jwk: &Jwk) -> Result<SetKey, String> {
    let common = &jwk.common;
    if let Some(usage) = &common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err(format!("its use is {usage:?}, not sig"));
    }
    if let Some(operations) = &common.key_operations
        && !operations.contains(&KeyOperations::Verify)
    {
        return Err("its key_ops do not include verify".to_owned());
    }
    let fitting: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("an elliptic curve no JWT algorithm here uses".to_owned()),
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        AlgorithmParameters::OctetKeyPair(_) => return Err("an OKP key that is not Ed25519".to_owned()),
        AlgorithmParameters::OctetKey(_) => return Err("a secret key, in a public key set".to_owned()),
        _ => return Err("a key type DraftStore does not verify with".to_owned()),
    };
    let algorithms = match &common.key_algorithm {
        None => fitting,
        Some(named) => {
            let algorithm =
                signing_algorithm(named).ok_or_else(|| format!("its alg {named:?} is not for signatures"))?;
            if !fitting.contains(&algorithm) {
                return Err(format!("its alg {named:?} does not fit its key type"));
            }
            vec![algorithm]
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("cannot be read: {e}"))?;
    Ok(SetKey { kid: common.key_id.clone(), key, algorithms })
}

/// The JWT signature algorithm a JWK's `alg` names, when it names one of public keys.
fn signing_algorithm(named: &KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn unauthenticated(reason: impl std::fmt::Display) -> Error {
    tracing::info!(%reason, "request refused: missing or invalid credentials");
    Error::Unauthenticated
}

impl Authenticator {
    /// Builds the authenticator, reading key files; errors name the variable. A key set at JWKS_URL is fetched by
    /// [`Authenticator::start`]. `names` says which tenant names the store can keep apart.
    pub fn from_settings(settings: &AuthSettings, names: TenantNames) -> Result<Self, ConfigError> {
        let kind = match settings.mode {
            AuthMode::None => {
                if !settings.admin_tenants.is_empty() {
                    return Err(ConfigError::new(
                        "ADMIN_TENANTS",
                        "names tenants, and AUTH_MODE=none has none: every caller may make operator calls",
                    ));
                }
                Kind::Open
            }
            AuthMode::ApiKey => {
                let mut entries = Vec::new();
                if let Some(path) = &settings.api_keys_file {
                    let text = read("API_KEYS_FILE", path)?;
                    entries.extend(parse_api_keys("API_KEYS_FILE", text.lines(), names)?);
                }
                if let Some(inline) = &settings.api_keys {
                    entries.extend(parse_api_keys("API_KEYS", inline.expose_secret().split([',', '\n']), names)?);
                }
                if entries.is_empty() {
                    return Err(ConfigError::new(
                        "API_KEYS",
                        "AUTH_MODE=api-key needs at least one key (API_KEYS or API_KEYS_FILE)",
                    ));
                }
                Kind::ApiKeys(entries)
            }
            AuthMode::Jwt => Kind::Jwt(Box::new(JwtAuth::from_settings(settings)?)),
        };
        let mut operators = Vec::new();
        for name in &settings.admin_tenants {
            let tenant = Tenant::parse(name).map_err(|e| ConfigError::new("ADMIN_TENANTS", e))?;
            if let Kind::ApiKeys(entries) = &kind
                && !entries.iter().any(|(known, _)| *known == tenant)
            {
                return Err(ConfigError::new(
                    "ADMIN_TENANTS",
                    format!("'{name}' is no tenant of API_KEYS or API_KEYS_FILE"),
                ));
            }
            operators.push(tenant);
        }
        Ok(Self { kind, operators, names })
    }

    /// Fetches a key set at JWKS_URL, and keeps every key set read again every `every` for as long as the
    /// authenticator lives. Call once, from within the runtime, before serving.
    pub async fn start(self: &Arc<Self>, every: Duration) -> Result<(), ConfigError> {
        let Kind::Jwt(jwt) = &self.kind else { return Ok(()) };
        let JwtKeys::Set(set) = &jwt.keys else { return Ok(()) };
        if let KeySource::Url(..) = set.source {
            set.reload().await.map_err(|e| ConfigError::new("JWKS_URL", e))?;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(auth) = weak.upgrade() else { return };
                let Kind::Jwt(jwt) = &auth.kind else { return };
                let JwtKeys::Set(set) = &jwt.keys else { return };
                match set.reload().await {
                    Ok(count) => tracing::debug!(source = set.source.var(), keys = count, "key set reloaded"),
                    Err(e) => {
                        tracing::warn!(source = set.source.var(), error = %e, "cannot reload the key set; keeping it")
                    }
                }
            }
        });
        Ok(())
    }

    /// Whether requests need credentials.
    pub fn is_open(&self) -> bool {
        matches!(self.kind, Kind::Open)
    }

    /// How many bytes the tenant prefix (`<tenant>/`) takes from an object name's 1024 at most: none when
    /// requests are open, the longest configured tenant's with API keys, and `None` with JWTs, whose tenants are
    /// not known in advance.
    pub fn longest_tenant_prefix(&self) -> Option<usize> {
        match &self.kind {
            Kind::Open => Some(0),
            Kind::ApiKeys(entries) => entries.iter().map(|(tenant, _)| tenant.as_str().len() + 1).max(),
            Kind::Jwt(_) => None,
        }
    }

    /// Identifies the caller from an `Authorization` header value, with the keys in hand. Every failure of the
    /// credential itself is the same `Unauthenticated`, the reason going to the log only.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Error> {
        match self.verdict(authorization) {
            Verdict::Decided(decided) => decided,
            Verdict::UnknownKey => Err(unauthenticated("unknown kid")),
        }
    }

    /// What the credentials say with the keys in hand, or that a key set must be read again first.
    pub fn verdict(&self, authorization: Option<&str>) -> Verdict {
        if let Kind::Open = self.kind {
            return Verdict::Decided(Ok(Caller::anonymous()));
        }
        let token = match bearer(authorization) {
            Some(token) => token,
            None => return Verdict::Decided(Err(unauthenticated("no bearer token"))),
        };
        let tenant = match &self.kind {
            Kind::Open => return Verdict::Decided(Ok(Caller::anonymous())),
            Kind::ApiKeys(keys) => {
                let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                // Every key is compared, in constant time, so timing tells nothing about which nearly matched.
                let mut found = None;
                for (tenant, expected) in keys {
                    if bool::from(expected.ct_eq(&digest)) && found.is_none() {
                        found = Some(tenant.clone());
                    }
                }
                match found {
                    Some(tenant) => tenant,
                    None => return Verdict::Decided(Err(unauthenticated("unknown API key"))),
                }
            }
            Kind::Jwt(jwt) => match jwt.tenant(token, self.names) {
                Some(Ok(tenant)) => tenant,
                Some(Err(e)) => return Verdict::Decided(Err(e)),
                None => return Verdict::UnknownKey,
            },
        };
        let operator = self.operators.contains(&tenant);
        Verdict::Decided(Ok(Caller { tenant: Some(tenant), operator }))
    }

    /// Reads the key set again (unless another request just did, or the cooldown is on), then decides.
    pub async fn after_reload(self: Arc<Self>, authorization: String) -> Result<Caller, Error> {
        if let Kind::Jwt(jwt) = &self.kind
            && let JwtKeys::Set(set) = &jwt.keys
        {
            let seen = set.current();
            // Decided meanwhile by a reload of another request's.
            if let Verdict::Decided(decided) = self.verdict(Some(&authorization)) {
                return decided;
            }
            set.reload_for_unknown_kid(&seen).await;
        }
        self.authenticate(Some(&authorization))
    }
}

/// The token of a `Bearer` authorization.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

impl JwtAuth {
    fn from_settings(settings: &AuthSettings) -> Result<Self, ConfigError> {
        let sources = (&settings.jwt_secret, &settings.jwt_public_key_file, &settings.jwks_file, &settings.jwks_url);
        let keys = match sources {
            (Some(secret), None, None, None) => {
                JwtKeys::Single(DecodingKey::from_secret(secret.expose_secret().as_bytes()), vec![Algorithm::HS256])
            }
            (None, Some(path), None, None) => {
                let pem = read("JWT_PUBLIC_KEY_FILE", path)?;
                if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    JwtKeys::Single(key, vec![Algorithm::RS256])
                } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
                    JwtKeys::Single(key, vec![Algorithm::ES256])
                } else {
                    return Err(ConfigError::new("JWT_PUBLIC_KEY_FILE", "is not an RSA or EC public key in PEM"));
                }
            }
            (None, None, Some(path), None) => {
                let keys = usable_keys(&read("JWKS_FILE", path)?).map_err(|e| ConfigError::new("JWKS_FILE", e))?;
                JwtKeys::Set(KeySet::new(KeySource::File(path.clone()), keys))
            }
            (None, None, None, Some(url)) => {
                let client = reqwest::Client::builder()
                    .timeout(JWKS_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| ConfigError::new("JWKS_URL", format!("cannot make an HTTP client: {e}")))?;
                JwtKeys::Set(KeySet::new(KeySource::Url(url.clone(), client), Vec::new()))
            }
            _ => {
                return Err(ConfigError::new(
                    "AUTH_MODE",
                    "jwt needs exactly one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWKS_FILE and JWKS_URL",
                ));
            }
        };
        // A public key verifies the tokens its issuer makes for every application: only `iss` and `aud` say that a
        // token was made for this one.
        if let JwtKeys::Set(_) | JwtKeys::Single(_, _) = &keys
            && settings.jwt_secret.is_none()
        {
            for (var, value) in [("JWT_ISSUER", &settings.jwt_issuer), ("JWT_AUDIENCE", &settings.jwt_audience)] {
                if value.is_none() {
                    return Err(ConfigError::new(
                        var,
                        "is required with JWT_PUBLIC_KEY_FILE, JWKS_FILE or JWKS_URL: a public key verifies the \
                         tokens its identity provider makes for any application, and only the issuer and the \
                         audience say that a token was made for this one",
                    ));
                }
            }
        }
        Ok(JwtAuth {
            keys,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            tenant_claim: settings.jwt_tenant_claim.clone(),
        })
    }

    /// The token's tenant, or why it is refused; `None` when the token names a `kid` the key set lacks.
    fn tenant(&self, token: &str, names: TenantNames) -> Option<Result<Tenant, Error>> {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            Err(e) => return Some(Err(unauthenticated(e))),
        };
        let keys;
        let (key, algorithms): (&DecodingKey, &[Algorithm]) = match &self.keys {
            JwtKeys::Single(key, algorithms) => (key, algorithms),
            JwtKeys::Set(set) => {
                keys = set.current();
                let found = match (&header.kid, keys.as_slice()) {
                    (Some(kid), _) => keys.iter().find(|key| key.kid.as_deref() == Some(kid)),
                    (None, [only]) => Some(only),
                    (None, _) => return Some(Err(unauthenticated("a token without kid, and several keys"))),
                };
                match found {
                    Some(found) => (&found.key, &found.algorithms),
                    None => return None,
                }
            }
        };
        if !algorithms.contains(&header.alg) {
            return Some(Err(unauthenticated("algorithm does not fit the key")));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        // A configured issuer or audience is required in the token, not only checked when the token has one.
        let required: Vec<&str> = std::iter::once("exp")
            .chain(self.issuer.as_ref().map(|_| "iss"))
            .chain(self.audience.as_ref().map(|_| "aud"))
            .collect();
        validation.set_required_spec_claims(&required);
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = match jsonwebtoken::decode::<HashMap<String, serde_json::Value>>(token, key, &validation) {
            Ok(data) => data.claims,
            Err(e) => return Some(Err(unauthenticated(e))),
        };
        let Some(tenant) = claims.get(&self.tenant_claim).and_then(|value| value.as_str()) else {
            return Some(Err(unauthenticated(format!("no string claim '{}'", self.tenant_claim))));
        };
        // As every refusal, the same 401 to the caller; the reason goes to the log.
        let refused = |reason: String| {
            unauthenticated(format!("the token's tenant claim '{}' cannot be used: {reason}", self.tenant_claim))
        };
        Some(Tenant::parse(tenant).map_err(refused).and_then(|tenant| {
            names.check(&tenant).map_err(refused)?;
            Ok(tenant)
        }))
    }
}

impl KeySet {
    fn new(source: KeySource, keys: Vec<SetKey>) -> Self {
        KeySet {
            source,
            keys: RwLock::new(Arc::new(keys)),
            reloading: tokio::sync::Mutex::new(()),
            last_kid_reload: Mutex::new(None),
        }
    }
}

fn read(var: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::new(var, format!("cannot read {}: {e}", path.display())))
}

fn parse_api_keys<'a>(
    var: &'static str,
    lines: impl Iterator<Item = &'a str>,
    names: TenantNames,
) -> Result<Vec<(Tenant, [u8; 32])>, ConfigError> {
    let mut keys: Vec<(Tenant, [u8; 32])> = Vec::new();
    for line in lines.map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (tenant, digest) = line
            .split_once(':')
            .ok_or_else(|| ConfigError::new(var, "expected tenant:sha256-hex-of-key entries (value not shown)"))?;
        let tenant = Tenant::parse(tenant.trim()).map_err(|e| ConfigError::new(var, e))?;
        names.check(&tenant).map_err(|e| ConfigError::new(var, e))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digest.trim(), &mut bytes).map_err(|_| {
            ConfigError::new(var, format!("the key digest of tenant '{}' is not 64 hex digits", tenant.as_str()))
        })?;
        keys.push((tenant, bytes));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests;

//! The one typed configuration: built-in defaults (the embedded development setup), then the TOML
//! file, then `OSAM_`-prefixed environment variables (`OSAM_SERVER__LISTEN=0.0.0.0:50051`; a double
//! underscore separates sections). Validated once at start-up with errors that name the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use jsonwebtoken::Algorithm;

use crate::auth::keys::is_hmac;
use osam_policy::{RoleScopeTable, ScopeEdit};
use serde::{Deserialize, Serialize};

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// `value` of `key` must lie in `range`.
fn bounded(key: &'static str, value: u64, range: std::ops::RangeInclusive<u64>) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub catalog: CatalogConfig,
    pub directory: DirectoryConfig,
    pub storage: StorageConfig,
    pub accounts: AccountsConfig,
    pub metrics: MetricsConfig,
    pub audit: AuditConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// Allows the development key on a non-loopback address (a shared development cluster).
    /// Without it, `key_source = "development"` only serves on 127.0.0.0/8 or ::1, so a production
    /// file that forgot `key_source` cannot end up accepting locally minted tokens on the network.
    pub allow_development_key_on_network: bool,
    /// Where osam keeps local state (the development signing key). Empty: `$XDG_STATE_HOME/osam`,
    /// else `$HOME/.local/state/osam`, else `.osam-state`.
    pub state_dir: PathBuf,
    /// How long shutdown waits for in-flight calls after health turns NOT_SERVING.
    pub shutdown_grace_seconds: u64,
    /// How long the server keeps accepting calls after health turns NOT_SERVING on SIGTERM, so a
    /// load balancer's readiness checks take it out of rotation first (0 in the embedded default).
    pub shutdown_drain_delay_seconds: u64,
    /// The largest request message accepted (and response sent), in bytes.
    pub max_message_bytes: usize,
    /// Calls running at once; more are refused at once with RESOURCE_EXHAUSTED (`OVERLOADED`)
    /// instead of queueing. Health checks are never refused.
    pub max_concurrent_requests: usize,
    /// The longest a call may run; a shorter client deadline (`grpc-timeout`) wins.
    pub request_timeout_seconds: u64,
    /// HTTP/2 PING interval on idle connections, and how long an unanswered PING waits before
    /// the connection is closed.
    pub http2_keepalive_interval_seconds: u64,
    pub http2_keepalive_timeout_seconds: u64,
    /// Streams (calls) one connection may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// TLS for the gRPC port; off when `cert_file` is empty.
    pub tls: TlsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            allow_development_key_on_network: false,
            state_dir: PathBuf::new(),
            shutdown_grace_seconds: 10,
            shutdown_drain_delay_seconds: 0,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 1024,
            request_timeout_seconds: 30,
            http2_keepalive_interval_seconds: 60,
            http2_keepalive_timeout_seconds: 20,
            http2_max_concurrent_streams: 256,
            tls: TlsConfig::default(),
        }
    }
}

/// TLS, and mutual TLS when `client_ca_file` is set. The files are re-read when they change, so a
/// renewed certificate (cert-manager, a mounted Secret) is served without a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; set for mutual TLS.
    pub client_ca_file: PathBuf,
    /// How often the files are checked for changes.
    pub reload_interval_seconds: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            client_ca_file: PathBuf::new(),
            reload_interval_seconds: 30,
        }
    }
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics` (Prometheus, OpenMetrics text) is served, such as `0.0.0.0:9090`; empty
    /// turns the endpoint off.
    pub listen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The share of allowed decisions written to the audit log (1.0 all, 0.0 none); denied
    /// decisions and state changes are always written.
    pub allowed_decisions_sample_rate: f64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            allowed_decisions_sample_rate: 1.0,
        }
    }
}

impl ServerConfig {
    /// The state directory with the documented fallbacks applied.
    pub fn effective_state_dir(&self) -> PathBuf {
        if !self.state_dir.as_os_str().is_empty() {
            return self.state_dir.clone();
        }
        let from_env = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        from_env("XDG_STATE_HOME")
            .or_else(|| from_env("HOME").map(|home| home.join(".local/state")))
            .map(|base| base.join("osam"))
            .unwrap_or_else(|| PathBuf::from(".osam-state"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `osam_server=debug,info`; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

/// Where token signing keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// A key generated in the state directory; `osam dev-token` signs with it. Local use only.
    Development,
    /// A JWKS document at `auth.jwks_url` (Keycloak: `{base}/realms/{realm}/protocol/openid-connect/certs`).
    Jwks,
    /// A PEM public key file at `auth.public_key_file`.
    PublicKeyFile,
    /// The JWKS named by the issuer's discovery document (`{auth.issuer}/.well-known/openid-configuration`),
    /// whose `issuer` must equal `auth.issuer`.
    OidcDiscovery,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub key_source: KeySource,
    pub jwks_url: String,
    pub public_key_file: PathBuf,
    /// A file holding an HMAC shared secret; HS256/384/512 are accepted only when it is set.
    pub hmac_secret_file: PathBuf,
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud` (one of the token's audiences).
    pub audience: String,
    /// Accepted signature algorithms; `none` never is (it is not an algorithm here).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// An unknown `kid` refreshes the JWKS at most once per this interval.
    pub jwks_min_refresh_seconds: u64,
    /// Timeout of a JWKS request.
    pub jwks_timeout_seconds: u64,
    /// Dotted claim paths holding role lists; all are merged.
    pub role_claims: Vec<String>,
    /// The claim holding group paths.
    pub groups_claim: String,
    /// The claim holding the username.
    pub username_claim: String,
    /// How many verified tokens are kept (until they expire).
    pub token_cache_capacity: usize,
    /// Edits of the role → scope table (`[auth.roles.<role>] scopes_add = [...]`).
    pub roles: BTreeMap<String, ScopeEdit>,
    /// Re-read the caller's roles and groups from the directory instead of trusting the token's,
    /// so that a revoked role (or a disabled user) takes effect before the token expires.
    pub live_roles: bool,
    /// How long a caller read from the directory (live roles, or the disabled-user check) is reused.
    pub live_roles_ttl_seconds: u64,
    /// With the Keycloak directory, refuse the tokens of users who are disabled or deleted (one
    /// cached directory read per user and TTL), even without live roles.
    pub reject_disabled_users: bool,
    /// Usernames with this prefix keep their token's roles in live-roles mode (Keycloak's client
    /// service accounts, which are not people in the directory); empty exempts no one.
    pub live_roles_exempt_prefix: String,
}

pub const DEVELOPMENT_ISSUER: &str = "osam-development";

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            key_source: KeySource::Development,
            jwks_url: String::new(),
            public_key_file: PathBuf::new(),
            hmac_secret_file: PathBuf::new(),
            issuer: DEVELOPMENT_ISSUER.to_owned(),
            audience: "osam".to_owned(),
            algorithms: vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
            ],
            leeway_seconds: 30,
            jwks_min_refresh_seconds: 30,
            jwks_timeout_seconds: 5,
            role_claims: vec![
                "realm_access.roles".to_owned(),
                "resource_access.osam.roles".to_owned(),
            ],
            groups_claim: "groups".to_owned(),
            username_claim: "preferred_username".to_owned(),
            token_cache_capacity: 10_000,
            roles: BTreeMap::new(),
            live_roles: false,
            live_roles_ttl_seconds: 30,
            reject_disabled_users: true,
            live_roles_exempt_prefix: "service-account-".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Roles that are granted every catalog action (empty by default).
    pub admin_roles: Vec<String>,
    /// The largest BatchCheck accepted.
    pub max_batch_size: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            admin_roles: Vec::new(),
            max_batch_size: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    /// A YAML file of users, roles and scopes (bluesky `DictionaryAPIAccessControl` format).
    Static,
    /// Keycloak's admin REST API with a client-credentials service account.
    Keycloak,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    pub kind: DirectoryKind,
    /// The static directory YAML file. Empty: the example users built into the binary
    /// (`deploy/examples/users.yaml`).
    pub file: PathBuf,
    /// How often the file is checked for changes.
    pub reload_interval_seconds: u64,
    /// The `keycloak` directory's settings.
    pub keycloak: KeycloakDirectoryConfig,
}

/// The `keycloak` directory: where the realm is and the service account that reads it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeycloakDirectoryConfig {
    /// Keycloak's base URL, such as `https://sso.example.org` (without `/realms/...`).
    pub base_url: String,
    pub realm: String,
    /// The confidential client whose service account has realm-management's view-users,
    /// query-users and manage-users roles.
    pub client_id: String,
    /// Prefer `client_secret_file` or `OSAM_DIRECTORY__KEYCLOAK__CLIENT_SECRET`; never printed.
    pub client_secret: String,
    pub client_secret_file: PathBuf,
    /// Clients whose client roles count as the user's roles, next to the realm roles.
    pub client_roles: Vec<String>,
    /// Timeout of one admin API call.
    pub request_timeout_seconds: u64,
    /// Attempts of a call that failed transiently (connect error, 5xx, 429), the first included.
    pub max_attempts: u32,
    /// Users read per page (`max`).
    pub page_size: u32,
    /// Users whose roles and groups are read at once when listing every user.
    pub concurrency: usize,
}

impl Default for KeycloakDirectoryConfig {
    fn default() -> Self {
        KeycloakDirectoryConfig {
            base_url: String::new(),
            realm: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            client_secret_file: PathBuf::new(),
            client_roles: Vec::new(),
            request_timeout_seconds: 10,
            max_attempts: 4,
            page_size: 100,
            concurrency: 8,
        }
    }
}

impl std::fmt::Debug for KeycloakDirectoryConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeycloakDirectoryConfig")
            .field("base_url", &self.base_url)
            .field("realm", &self.realm)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("client_secret_file", &self.client_secret_file)
            .field("client_roles", &self.client_roles)
            .field("request_timeout_seconds", &self.request_timeout_seconds)
            .field("max_attempts", &self.max_attempts)
            .field("page_size", &self.page_size)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl KeycloakDirectoryConfig {
    /// The client secret, from the file when one is configured.
    pub fn resolved_secret(&self) -> Result<String, ConfigError> {
        inline_or_file(
            "directory.keycloak.client_secret_file",
            &self.client_secret,
            &self.client_secret_file,
        )
    }

    /// The admin client's settings.
    pub fn settings(&self) -> Result<osam_keycloak::KeycloakSettings, ConfigError> {
        let mut settings = osam_keycloak::KeycloakSettings::new(
            self.base_url.clone(),
            self.realm.clone(),
            self.client_id.clone(),
            osam_keycloak::ClientSecret::new(self.resolved_secret()?),
        );
        settings.client_roles = self.client_roles.clone();
        settings.request_timeout = std::time::Duration::from_secs(self.request_timeout_seconds);
        settings.max_attempts = self.max_attempts;
        settings.page_size = self.page_size;
        settings.concurrency = self.concurrency;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("directory.keycloak.base_url", &self.base_url),
            ("directory.keycloak.realm", &self.realm),
            ("directory.keycloak.client_id", &self.client_id),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(key, "required when directory.kind = \"keycloak\""));
            }
        }
        let url = reqwest::Url::parse(&self.base_url)
            .map_err(|error| invalid("directory.keycloak.base_url", format!("not a URL: {error}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "directory.keycloak.base_url",
                "must not carry credentials (use client_id and client_secret_file)",
            ));
        }
        let host = url.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback());
        match url.scheme() {
            "https" => {}
            // The client secret and admin tokens cross this connection.
            "http" if loopback => {}
            "http" => {
                return Err(invalid(
                    "directory.keycloak.base_url",
                    "must use https:// (plain http:// is accepted only for a loopback host)",
                ));
            }
            _ => {
                return Err(invalid(
                    "directory.keycloak.base_url",
                    "must be an http:// or https:// URL",
                ));
            }
        }
        if self.base_url.contains("/realms/") {
            return Err(invalid(
                "directory.keycloak.base_url",
                "is Keycloak's base URL, without /realms/<realm> (set directory.keycloak.realm)",
            ));
        }
        if self.resolved_secret()?.is_empty() {
            return Err(invalid(
                "directory.keycloak.client_secret_file",
                "a client secret is required (client_secret_file or OSAM_DIRECTORY__KEYCLOAK__CLIENT_SECRET)",
            ));
        }
        bounded(
            "directory.keycloak.request_timeout_seconds",
            self.request_timeout_seconds,
            1..=300,
        )?;
        bounded(
            "directory.keycloak.max_attempts",
            u64::from(self.max_attempts),
            1..=10,
        )?;
        bounded(
            "directory.keycloak.page_size",
            u64::from(self.page_size),
            1..=1000,
        )?;
        bounded("directory.keycloak.concurrency", self.concurrency as u64, 1..=64)?;
        Ok(())
    }
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            kind: DirectoryKind::Static,
            file: PathBuf::new(),
            reload_interval_seconds: 2,
            keycloak: KeycloakDirectoryConfig::default(),
        }
    }
}

/// Where the bucket configuration CSV is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketConfigSourceKind {
    File,
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `file` (a local CSV) or `s3` (an object in `bucket_config_bucket`/`bucket_config_key`).
    pub bucket_config_source: BucketConfigSourceKind,
    /// The CSV file. Empty: the example built into the binary (`deploy/examples/buckets.csv`).
    pub bucket_config_file: PathBuf,
    pub bucket_config_bucket: String,
    pub bucket_config_key: String,
    /// How often the file's modification time or the object's ETag is checked.
    pub poll_interval_seconds: u64,
    /// The object store holding the configuration object, and users' buckets.
    pub s3: S3ConnectionConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            bucket_config_source: BucketConfigSourceKind::File,
            bucket_config_file: PathBuf::new(),
            bucket_config_bucket: String::new(),
            bucket_config_key: "buckets.csv".to_owned(),
            poll_interval_seconds: 30,
            s3: S3ConnectionConfig::default(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3ConnectionConfig {
    /// The endpoint URL of an S3-compatible server; empty for AWS.
    pub endpoint: String,
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), as most S3-compatible servers need.
    pub force_path_style: bool,
    pub access_key_id: String,
    /// Prefer `secret_access_key_file` (or `OSAM_STORAGE__S3__SECRET_ACCESS_KEY`); never printed.
    pub secret_access_key: String,
    pub secret_access_key_file: PathBuf,
}

impl Default for S3ConnectionConfig {
    fn default() -> Self {
        S3ConnectionConfig {
            endpoint: String::new(),
            region: "us-east-1".to_owned(),
            force_path_style: true,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            secret_access_key_file: PathBuf::new(),
        }
    }
}

/// Never shows the secret key, so a logged or printed configuration cannot leak it.
impl std::fmt::Debug for S3ConnectionConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("S3ConnectionConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("secret_access_key_file", &self.secret_access_key_file)
            .finish()
    }
}

impl S3ConnectionConfig {
    /// The secret key, from the file when one is configured.
    pub fn resolved_secret(&self) -> Result<String, ConfigError> {
        inline_or_file(
            "storage.s3.secret_access_key_file",
            &self.secret_access_key,
            &self.secret_access_key_file,
        )
    }
}

/// Which account provider holds users' object-storage accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountProviderKind {
    /// Accounts in a file under the state directory (development and tests).
    Embedded,
    /// IAM users through the IAM API (AWS or any IAM-compatible store), secrets sealed in S3.
    Iam,
}

/// The `iam` provider: where the IAM API is, how osam's users are marked, and where their sealed
/// secrets live (an S3 bucket reached with `[storage.s3]`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IamAccountsConfig {
    /// The IAM endpoint; empty for AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    /// Prefer `secret_access_key_file` or `OSAM_ACCOUNTS__IAM__SECRET_ACCESS_KEY`; never printed.
    pub secret_access_key: String,
    pub secret_access_key_file: PathBuf,
    /// The IAM path of osam's users; only users under it are listed or deleted.
    pub user_path: String,
    /// The tag holding the ownership marker.
    pub marker_tag_key: String,
    /// The name of the inline policy holding a user's S3 rights.
    pub policy_name: String,
    /// The bucket and prefix of the sealed secrets (IAM never returns a secret key twice).
    pub secrets_bucket: String,
    pub secrets_prefix: String,
    /// The AES-256-GCM master key (32 bytes, base64) sealing the secrets; prefer the file or
    /// `OSAM_ACCOUNTS__IAM__SEALING_KEY`; never printed.
    pub sealing_key: String,
    pub sealing_key_file: PathBuf,
}

impl Default for IamAccountsConfig {
    fn default() -> Self {
        IamAccountsConfig {
            endpoint: String::new(),
            region: "us-east-1".to_owned(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            secret_access_key_file: PathBuf::new(),
            user_path: "/osam/".to_owned(),
            marker_tag_key: "osam-owner".to_owned(),
            policy_name: "osam-rights".to_owned(),
            secrets_bucket: String::new(),
            secrets_prefix: "osam/iam-secrets/".to_owned(),
            sealing_key: String::new(),
            sealing_key_file: PathBuf::new(),
        }
    }
}

impl std::fmt::Debug for IamAccountsConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IamAccountsConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("secret_access_key_file", &self.secret_access_key_file)
            .field("user_path", &self.user_path)
            .field("marker_tag_key", &self.marker_tag_key)
            .field("policy_name", &self.policy_name)
            .field("secrets_bucket", &self.secrets_bucket)
            .field("secrets_prefix", &self.secrets_prefix)
            .field("sealing_key", &redacted(&self.sealing_key))
            .field("sealing_key_file", &self.sealing_key_file)
            .finish()
    }
}

/// How Debug output shows an inline secret: whether one is set, never its value.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() { "" } else { "<redacted>" }
}

/// A secret given inline or in a file (the file wins), trimmed.
fn inline_or_file(key: &'static str, inline: &str, file: &Path) -> Result<String, ConfigError> {
    if file.as_os_str().is_empty() {
        return Ok(inline.trim().to_owned());
    }
    std::fs::read_to_string(file)
        .map(|secret| secret.trim().to_owned())
        .map_err(|error| invalid(key, format!("{}: {error}", file.display())))
}

impl IamAccountsConfig {
    pub fn resolved_secret(&self) -> Result<String, ConfigError> {
        inline_or_file(
            "accounts.iam.secret_access_key_file",
            &self.secret_access_key,
            &self.secret_access_key_file,
        )
    }

    pub fn resolved_sealing_key(&self) -> Result<String, ConfigError> {
        inline_or_file(
            "accounts.iam.sealing_key_file",
            &self.sealing_key,
            &self.sealing_key_file,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    pub provider: AccountProviderKind,
    /// The ownership marker written on each account; `%keycloak-user%` is replaced by the username.
    pub marker_template: String,
    /// The directory attribute holding the id of the user's account.
    pub link_attribute: String,
    /// A sync that would delete more than this share of the managed accounts is refused unless
    /// forced: an empty or broken directory answer must never wipe every account.
    pub max_delete_share: f64,
    /// Provider and directory calls running at once during a sync.
    pub concurrency: usize,
    /// Timeout of one provider or directory call.
    pub call_timeout_seconds: u64,
    /// Attempts of a call that failed transiently (the first included).
    pub call_attempts: u32,
    /// Apply every user's S3 policy after linking.
    pub apply_policies_after_sync: bool,
    /// Run a sync every this many seconds; 0 turns the interval off.
    pub sync_interval_seconds: u64,
    /// Run a sync when the server starts.
    pub sync_on_start: bool,
    /// How long a user's credentials are served from memory before the provider is asked again.
    pub credentials_cache_seconds: u64,
    /// The `iam` provider's settings.
    pub iam: IamAccountsConfig,
    /// One replica at a time runs syncs, through a Kubernetes Lease.
    pub leader_election: LeaderElectionConfig,
}

/// Leader election for the sync when several replicas run (Kubernetes only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    /// The `coordination.k8s.io/v1` Lease.
    pub lease_name: String,
    /// Empty: `POD_NAMESPACE`, else the pod's service-account namespace.
    pub namespace: String,
    /// This replica's name in the Lease. Empty: `POD_NAME`, else the host name.
    pub identity: String,
    /// Other replicas take over this long after the last renewal they saw.
    pub lease_duration_seconds: u64,
    /// The leader stops syncing this long after its last successful renewal (shorter than the
    /// lease duration: the difference is the safety margin).
    pub renew_deadline_seconds: u64,
    /// How often the Lease is renewed or tried.
    pub retry_period_seconds: u64,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            enabled: false,
            lease_name: "osam-sync".to_owned(),
            namespace: String::new(),
            identity: String::new(),
            lease_duration_seconds: 15,
            renew_deadline_seconds: 10,
            retry_period_seconds: 2,
        }
    }
}

impl LeaderElectionConfig {
    pub fn timings(&self) -> osam_lease::ElectionTimings {
        osam_lease::ElectionTimings {
            lease_duration: std::time::Duration::from_secs(self.lease_duration_seconds),
            renew_deadline: std::time::Duration::from_secs(self.renew_deadline_seconds),
            retry_period: std::time::Duration::from_secs(self.retry_period_seconds),
        }
    }

    /// The namespace of the Lease: configured, else `POD_NAMESPACE`, else the service account's.
    pub fn effective_namespace(&self) -> Option<String> {
        first_set(
            &self.namespace,
            "POD_NAMESPACE",
            "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
        )
    }

    /// This replica's identity: configured, else `POD_NAME`, else the host name.
    pub fn effective_identity(&self) -> Option<String> {
        first_set(&self.identity, "POD_NAME", "/proc/sys/kernel/hostname")
    }
}

/// The first non-empty of a configured value, an environment variable and a file's content.
fn first_set(configured: &str, variable: &str, file: &str) -> Option<String> {
    let non_empty = |value: String| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
    non_empty(configured.to_owned())
        .or_else(|| std::env::var(variable).ok().and_then(non_empty))
        .or_else(|| std::fs::read_to_string(file).ok().and_then(non_empty))
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            provider: AccountProviderKind::Embedded,
            marker_template: "osam-managed:%keycloak-user%".to_owned(),
            link_attribute: "obs-user".to_owned(),
            max_delete_share: 0.10,
            concurrency: 8,
            call_timeout_seconds: 10,
            call_attempts: 3,
            apply_policies_after_sync: false,
            sync_interval_seconds: 0,
            sync_on_start: false,
            credentials_cache_seconds: 60,
            iam: IamAccountsConfig::default(),
            leader_election: LeaderElectionConfig::default(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (when given), then `OSAM_*` environment variables, and
    /// validates the result.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::Load(format!(
                    "configuration file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only `OSAM_<SECTION>__<KEY>` variables configure the server; other OSAM_* variables (such as
        // the client's OSAM_ENV) are not configuration keys and must not be rejected as unknown.
        let sections = [
            "server__",
            "log__",
            "auth__",
            "catalog__",
            "directory__",
            "storage__",
            "accounts__",
            "metrics__",
            "audit__",
        ];
        let environment = Env::prefixed("OSAM_")
            .filter(move |key| {
                sections
                    .iter()
                    .any(|section| key.as_str().to_ascii_lowercase().starts_with(section))
            })
            .split("__")
            .lowercase(true);
        figment = figment.merge(environment);
        let config: Config = figment
            .extract()
            .map_err(|error| ConfigError::Load(describe_figment_error(error)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        if auth.algorithms.is_empty() {
            return Err(invalid("auth.algorithms", "at least one algorithm is needed"));
        }
        let has_secret = !auth.hmac_secret_file.as_os_str().is_empty();
        if auth.algorithms.iter().copied().any(is_hmac) && !has_secret {
            return Err(invalid(
                "auth.algorithms",
                "HMAC algorithms need auth.hmac_secret_file",
            ));
        }
        match auth.key_source {
            KeySource::Development
                if !auth.jwks_url.is_empty() || !auth.public_key_file.as_os_str().is_empty() =>
            {
                return Err(invalid(
                    "auth.key_source",
                    "is \"development\" (the default) while auth.jwks_url or auth.public_key_file is set; \
                     set key_source = \"jwks\" or \"public-key-file\"",
                ));
            }
            KeySource::Development
                if !self.server.listen.ip().is_loopback()
                    && !self.server.allow_development_key_on_network =>
            {
                return Err(invalid(
                    "auth.key_source",
                    format!(
                        "the development key only serves on a loopback address, not {}; configure a real key source \
                         or set server.allow_development_key_on_network = true",
                        self.server.listen
                    ),
                ));
            }
            KeySource::Jwks if auth.jwks_url.is_empty() => {
                return Err(invalid(
                    "auth.jwks_url",
                    "required when auth.key_source = \"jwks\"",
                ));
            }
            KeySource::Jwks
                if !auth.jwks_url.starts_with("http://") && !auth.jwks_url.starts_with("https://") =>
            {
                return Err(invalid("auth.jwks_url", "must be an http:// or https:// URL"));
            }
            KeySource::OidcDiscovery
                if !auth.issuer.starts_with("http://") && !auth.issuer.starts_with("https://") =>
            {
                return Err(invalid(
                    "auth.issuer",
                    "must be the issuer's http:// or https:// URL when auth.key_source = \"oidc-discovery\"",
                ));
            }
            KeySource::PublicKeyFile if auth.public_key_file.as_os_str().is_empty() => {
                return Err(invalid(
                    "auth.public_key_file",
                    "required when auth.key_source = \"public-key-file\"",
                ));
            }
            _ => {}
        }
        // Zero would disable the JWKS rate limit or make every fetch fail; a long leeway would
        // make `exp` meaningless.
        bounded("auth.leeway_seconds", auth.leeway_seconds, 0..=300)?;
        bounded(
            "auth.jwks_min_refresh_seconds",
            auth.jwks_min_refresh_seconds,
            1..=3600,
        )?;
        bounded("auth.jwks_timeout_seconds", auth.jwks_timeout_seconds, 1..=60)?;
        bounded(
            "auth.live_roles_ttl_seconds",
            auth.live_roles_ttl_seconds,
            0..=3600,
        )?;
        self.validate_server_limits()?;
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "metrics.listen",
                "must be an address such as 0.0.0.0:9090, or empty to turn the endpoint off",
            ));
        }
        if !(0.0..=1.0).contains(&self.audit.allowed_decisions_sample_rate) {
            return Err(invalid(
                "audit.allowed_decisions_sample_rate",
                "must be between 0.0 and 1.0",
            ));
        }
        if self.directory.kind == DirectoryKind::Keycloak {
            self.directory.keycloak.validate()?;
        }
        bounded(
            "directory.reload_interval_seconds",
            self.directory.reload_interval_seconds,
            1..=3600,
        )?;
        for (key, value) in [
            ("auth.issuer", &auth.issuer),
            ("auth.audience", &auth.audience),
            ("auth.username_claim", &auth.username_claim),
        ] {
            if value.is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        if auth.token_cache_capacity == 0 {
            return Err(invalid("auth.token_cache_capacity", "must be at least 1"));
        }
        self.role_scope_table()?;
        if self.catalog.max_batch_size == 0 {
            return Err(invalid("catalog.max_batch_size", "must be at least 1"));
        }
        bounded(
            "storage.poll_interval_seconds",
            self.storage.poll_interval_seconds,
            1..=86_400,
        )?;
        if self.storage.bucket_config_source == BucketConfigSourceKind::S3 {
            if self.storage.bucket_config_bucket.is_empty() {
                return Err(invalid(
                    "storage.bucket_config_bucket",
                    "required when storage.bucket_config_source = \"s3\"",
                ));
            }
            if self.storage.bucket_config_key.is_empty() {
                return Err(invalid("storage.bucket_config_key", "must not be empty"));
            }
            self.storage.s3.resolved_secret()?;
        }
        osam_policy::accounts::MarkerTemplate::parse(&self.accounts.marker_template)
            .map_err(|message| invalid("accounts.marker_template", message))?;
        let accounts = &self.accounts;
        if !(0.0..=1.0).contains(&accounts.max_delete_share) {
            return Err(invalid(
                "accounts.max_delete_share",
                "must be between 0.0 and 1.0",
            ));
        }
        if accounts.link_attribute.trim().is_empty() {
            return Err(invalid("accounts.link_attribute", "must not be empty"));
        }
        bounded("accounts.concurrency", accounts.concurrency as u64, 1..=256)?;
        bounded(
            "accounts.call_timeout_seconds",
            accounts.call_timeout_seconds,
            1..=600,
        )?;
        bounded(
            "accounts.call_attempts",
            u64::from(accounts.call_attempts),
            1..=10,
        )?;
        let election = &accounts.leader_election;
        if election.enabled {
            if election.lease_name.trim().is_empty() {
                return Err(invalid(
                    "accounts.leader_election.lease_name",
                    "must not be empty",
                ));
            }
            election.timings().validate().map_err(|_| {
                invalid(
                    "accounts.leader_election",
                    "timings must satisfy 0 < retry_period_seconds < renew_deadline_seconds < lease_duration_seconds",
                )
            })?;
            if accounts.provider == AccountProviderKind::Embedded {
                return Err(invalid(
                    "accounts.leader_election.enabled",
                    "the embedded provider keeps accounts in one replica's state directory; use the iam provider with several replicas",
                ));
            }
        }
        bounded(
            "accounts.credentials_cache_seconds",
            accounts.credentials_cache_seconds,
            0..=3600,
        )?;
        Ok(())
    }

    fn validate_server_limits(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        bounded(
            "server.max_message_bytes",
            server.max_message_bytes as u64,
            1024..=(256 << 20),
        )?;
        bounded(
            "server.max_concurrent_requests",
            server.max_concurrent_requests as u64,
            1..=100_000,
        )?;
        bounded(
            "server.request_timeout_seconds",
            server.request_timeout_seconds,
            1..=3600,
        )?;
        bounded(
            "server.shutdown_drain_delay_seconds",
            server.shutdown_drain_delay_seconds,
            0..=300,
        )?;
        bounded(
            "server.http2_keepalive_interval_seconds",
            server.http2_keepalive_interval_seconds,
            1..=3600,
        )?;
        bounded(
            "server.http2_keepalive_timeout_seconds",
            server.http2_keepalive_timeout_seconds,
            1..=600,
        )?;
        bounded(
            "server.http2_max_concurrent_streams",
            u64::from(server.http2_max_concurrent_streams),
            1..=10_000,
        )?;
        let tls = &server.tls;
        if tls.enabled() == tls.key_file.as_os_str().is_empty() {
            return Err(invalid("server.tls", "cert_file and key_file go together"));
        }
        if !tls.enabled() && !tls.client_ca_file.as_os_str().is_empty() {
            return Err(invalid(
                "server.tls.client_ca_file",
                "mutual TLS needs cert_file and key_file",
            ));
        }
        bounded(
            "server.tls.reload_interval_seconds",
            tls.reload_interval_seconds,
            1..=86_400,
        )?;
        Ok(())
    }

    /// The IAM provider's settings, validated against IAM's rules.
    pub fn iam_settings(&self) -> Result<osam_s3::IamSettings, ConfigError> {
        let iam = &self.accounts.iam;
        let endpoint = Some(iam.endpoint.clone()).filter(|endpoint| !endpoint.is_empty());
        let mut settings = osam_s3::IamSettings::new(
            endpoint,
            iam.region.clone(),
            iam.access_key_id.clone(),
            iam.resolved_secret()?,
        );
        settings.user_path = iam.user_path.clone();
        settings.marker_tag_key = iam.marker_tag_key.clone();
        settings.policy_name = iam.policy_name.clone();
        settings.validate().map_err(|error| ConfigError::Invalid {
            key: "accounts.iam",
            message: format!("{}: {}", error.setting, error.problem),
        })?;
        Ok(settings)
    }

    /// The role → scope table: osam's defaults edited by `[auth.roles]`.
    pub fn role_scope_table(&self) -> Result<RoleScopeTable, ConfigError> {
        let mut table = RoleScopeTable::osam_defaults();
        table
            .apply_edits(&self.auth.roles)
            .map_err(|error| invalid("auth.roles", error.to_string()))?;
        Ok(table)
    }

    /// Whether this is the development setup that `osam dev-token` may mint tokens for.
    pub fn is_development(&self) -> bool {
        self.auth.key_source == KeySource::Development
    }

    /// The effective configuration as TOML, with secrets redacted: any non-empty value whose key
    /// names a secret, password or token (`storage.s3.secret_access_key`) is replaced; the paths
    /// of secret files are shown.
    pub fn to_redacted_toml(&self) -> String {
        let mut value =
            toml::Value::try_from(self).unwrap_or_else(|_| toml::Value::Table(Default::default()));
        redact(&mut value);
        toml::to_string_pretty(&value).unwrap_or_default()
    }
}

fn redact(value: &mut toml::Value) {
    if let toml::Value::Table(table) = value {
        for (key, entry) in table.iter_mut() {
            let secret_key = ["secret", "password", "token", "sealing_key"]
                .iter()
                .any(|word| key.contains(word))
                && !key.ends_with("_file");
            if secret_key && entry.as_str().is_some_and(|text| !text.is_empty()) {
                *entry = toml::Value::String("<redacted>".to_owned());
            } else {
                redact(entry);
            }
        }
    }
}

/// figment errors name the key path (`auth.leeway_seconds`) and the source; keep all of it.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let source = error
                .metadata
                .as_ref()
                .map(|metadata| metadata.name.to_string())
                .unwrap_or_default();
            let kind = error.kind.to_string();
            match (key.is_empty(), source.is_empty()) {
                (true, _) => kind,
                (false, true) => format!("{key}: {kind}"),
                (false, false) => format!("{key}: {kind} (from {source})"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        file
    }

    #[test]
    fn defaults_are_the_development_setup() {
        let config = Config::load(None).expect("defaults are valid");
        assert!(config.is_development());
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:50051");
    }

    #[test]
    fn errors_name_the_bad_key() {
        let file = write("[auth]\nleeway_seconds = \"soon\"\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("auth.leeway_seconds"), "{error}");

        let file = write("[server]\nlisten_on = \"x\"\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("listen_on"), "{error}");

        let file = write("[auth]\nkey_source = \"jwks\"\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.starts_with("auth.jwks_url"), "{error}");

        let file = write("[auth]\nalgorithms = [\"HS256\"]\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("hmac_secret_file"), "{error}");

        let file = write("[auth.roles.\"bad-role\"]\nscopes_add = [\"x\"]\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(
            error.starts_with("auth.roles") && error.contains("bad-role"),
            "{error}"
        );
    }

    #[test]
    fn the_development_key_cannot_be_used_by_mistake() {
        let file = write("[auth]\njwks_url = \"https://idp.example.org/certs\"\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.starts_with("auth.key_source"), "{error}");

        let file = write("[server]\nlisten = \"0.0.0.0:50051\"\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("loopback"), "{error}");

        let file = write("[server]\nlisten = \"0.0.0.0:50051\"\nallow_development_key_on_network = true\n");
        assert!(Config::load(Some(file.path())).is_ok());
    }

    #[test]
    fn limits_that_would_disable_a_protection_are_rejected() {
        for (text, key) in [
            (
                "[auth]\njwks_min_refresh_seconds = 0\n",
                "auth.jwks_min_refresh_seconds",
            ),
            ("[auth]\njwks_timeout_seconds = 0\n", "auth.jwks_timeout_seconds"),
            ("[auth]\nleeway_seconds = 86400\n", "auth.leeway_seconds"),
            ("[auth]\nalgorithms = [\"none\"]\n", "auth.algorithms"),
        ] {
            let file = write(text);
            let error = Config::load(Some(file.path())).unwrap_err().to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let error = Config::load(Some(Path::new("/nonexistent/osam.toml")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/osam.toml"), "{error}");
    }

    #[test]
    fn role_edits_apply_to_the_defaults() {
        let file = write("[auth.roles.rs_osam_read]\nscopes_add = [\"Accounts:Sync\"]\n");
        let table = Config::load(Some(file.path()))
            .expect("valid")
            .role_scope_table()
            .expect("valid");
        assert!(
            table
                .role("rs_osam_read")
                .expect("role")
                .contains("accounts:sync")
        );
    }

    #[test]
    fn the_s3_secret_never_shows() {
        let mut config = Config::default();
        config.storage.s3.secret_access_key = "inline-s3-secret".to_owned();
        assert!(!format!("{config:?}").contains("inline-s3-secret"));
        assert!(!config.to_redacted_toml().contains("inline-s3-secret"));
    }

    #[test]
    fn redaction_hides_inline_secrets_but_not_paths() {
        let mut value: toml::Value =
            toml::from_str("client_secret = \"s3cr3t\"\nclient_secret_file = \"/run/x\"\n").expect("toml");
        redact(&mut value);
        let text = toml::to_string(&value).expect("toml");
        assert!(!text.contains("s3cr3t") && text.contains("/run/x"), "{text}");
        let mut config = Config::default();
        config.accounts.iam.sealing_key = "c2VhbGluZy1rZXktdGhhdC1tdXN0LW5vdC1zaG93".to_owned();
        assert!(
            !config
                .to_redacted_toml()
                .contains("c2VhbGluZy1rZXktdGhhdC1tdXN0LW5vdC1zaG93")
        );
    }

    const KEYCLOAK: &str =
        "[directory]\nkind = \"keycloak\"\n[directory.keycloak]\nrealm = \"osam\"\nclient_id = \"osam\"\n";

    #[test]
    fn the_keycloak_directory_needs_its_settings_and_a_safe_url() {
        let secret = write("kc-secret-value\n");
        let with = |base_url: &str, secret_line: &str| {
            write(&format!("{KEYCLOAK}base_url = \"{base_url}\"\n{secret_line}\n"))
        };
        let secret_line = format!("client_secret_file = {:?}", secret.path());

        let valid = Config::load(Some(with("https://sso.example.org", &secret_line).path())).expect("valid");
        let settings = valid.directory.keycloak.settings().expect("settings");
        assert_eq!(
            settings.client_secret.expose(),
            "kc-secret-value",
            "the file is read and trimmed"
        );
        assert!(!format!("{valid:?}").contains("kc-secret-value"));
        assert!(!valid.to_redacted_toml().contains("kc-secret-value"));
        Config::load(Some(with("http://127.0.0.1:8080", &secret_line).path())).expect("loopback http");
        Config::load(Some(with("http://[::1]:8080", &secret_line).path())).expect("IPv6 loopback http");

        // An inline secret (as OSAM_DIRECTORY__KEYCLOAK__CLIENT_SECRET gives it) never shows.
        let inline_line = "client_secret = \"inline-kc-secret\"";
        let inline = Config::load(Some(with("https://sso.example.org", inline_line).path())).expect("valid");
        let settings = inline.directory.keycloak.settings().expect("settings");
        assert_eq!(settings.client_secret.expose(), "inline-kc-secret");
        assert!(!format!("{inline:?}").contains("inline-kc-secret"));
        assert!(!inline.to_redacted_toml().contains("inline-kc-secret"));

        for (base_url, secret_line, key) in [
            (
                "http://sso.example.org",
                secret_line.as_str(),
                "directory.keycloak.base_url",
            ),
            (
                "https://sso.example.org/realms/osam",
                secret_line.as_str(),
                "directory.keycloak.base_url",
            ),
            (
                "sso.example.org",
                secret_line.as_str(),
                "directory.keycloak.base_url",
            ),
            (
                "http://localhost:x@sso.example.org",
                secret_line.as_str(),
                "directory.keycloak.base_url",
            ),
            (
                "https://user:pass@sso.example.org",
                secret_line.as_str(),
                "directory.keycloak.base_url",
            ),
            (
                "https://sso.example.org",
                "",
                "directory.keycloak.client_secret_file",
            ),
            (
                "https://sso.example.org",
                "client_secret_file = \"/nonexistent/secret\"",
                "directory.keycloak.client_secret_file",
            ),
        ] {
            let error = Config::load(Some(with(base_url, secret_line).path()))
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{base_url} / {secret_line}: {error}");
        }
        let missing_realm = write("[directory]\nkind = \"keycloak\"\n");
        let error = Config::load(Some(missing_realm.path())).unwrap_err().to_string();
        assert!(error.contains("directory.keycloak.base_url"), "{error}");
    }

    #[test]
    fn oidc_discovery_needs_an_issuer_url() {
        let file = write("[auth]\nkey_source = \"oidc-discovery\"\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("auth.issuer"), "{error}");
        let file = write(
            "[auth]\nkey_source = \"oidc-discovery\"\nissuer = \"https://sso.example.org/realms/osam\"\n",
        );
        Config::load(Some(file.path())).expect("valid");
    }
}

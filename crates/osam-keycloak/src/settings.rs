//! Where the realm is, the service account that reads it, and how hard to try: one plain struct
//! with defaults, and the well-known URLs derived from it.

use std::fmt;
use std::time::Duration;

/// The service account's client secret. Its `Debug` and `Display` never show the value, so a
/// secret cannot reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: String) -> ClientSecret {
        ClientSecret(secret)
    }

    /// The secret itself, for the token request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

/// How to reach a Keycloak realm's admin API with a client-credentials service account.
#[derive(Debug, Clone)]
pub struct KeycloakSettings {
    /// Keycloak's base URL, such as `https://sso.example.org`; a trailing `/` is tolerated.
    pub base_url: String,
    pub realm: String,
    /// The confidential client whose service account reads (and writes attributes of) users.
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// Client ids whose client roles count as the user's roles, next to the realm roles.
    pub client_roles: Vec<String>,
    /// The timeout of one HTTP attempt, connecting included.
    pub request_timeout: Duration,
    /// Attempts of a call that fails transiently (connect error, timeout, 5xx, 429), the first
    /// included.
    pub max_attempts: u32,
    /// The first retry waits about this long; each further retry doubles it (with jitter).
    pub retry_base_delay: Duration,
    /// Users read per page when listing (`max`).
    pub page_size: u32,
    /// Users whose roles and groups are read at once when listing every user.
    pub concurrency: usize,
}

impl KeycloakSettings {
    /// Settings with the defaults: 10 s per attempt, 4 attempts from 100 ms backoff, pages of 100
    /// users, 8 users read at once, no client roles.
    pub fn new(
        base_url: String,
        realm: String,
        client_id: String,
        client_secret: ClientSecret,
    ) -> KeycloakSettings {
        KeycloakSettings {
            base_url,
            realm,
            client_id,
            client_secret,
            client_roles: Vec::new(),
            request_timeout: Duration::from_secs(10),
            max_attempts: 4,
            retry_base_delay: Duration::from_millis(100),
            page_size: 100,
            concurrency: 8,
        }
    }

    /// The base URL without trailing slashes.
    fn trimmed_base_url(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The realm's token issuer, `{base}/realms/{realm}`, as it appears in `iss`.
    pub fn issuer(&self) -> String {
        format!("{}/realms/{}", self.trimmed_base_url(), self.realm)
    }

    /// The realm's signing keys.
    pub fn jwks_url(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer())
    }

    /// Where the service account obtains its admin tokens.
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

    /// The realm's OpenID Connect discovery document.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(base_url: &str) -> KeycloakSettings {
        KeycloakSettings::new(
            base_url.to_owned(),
            "osam".to_owned(),
            "osam-admin".to_owned(),
            ClientSecret::new("s3cr3t-value".to_owned()),
        )
    }

    #[test]
    fn urls_are_derived_from_the_base_and_the_realm_with_or_without_a_trailing_slash() {
        for base_url in ["https://sso.example.org", "https://sso.example.org/"] {
            let settings = settings(base_url);
            assert_eq!(settings.issuer(), "https://sso.example.org/realms/osam");
            assert_eq!(
                settings.jwks_url(),
                "https://sso.example.org/realms/osam/protocol/openid-connect/certs"
            );
            assert_eq!(
                settings.token_url(),
                "https://sso.example.org/realms/osam/protocol/openid-connect/token"
            );
            assert_eq!(
                settings.discovery_url(),
                "https://sso.example.org/realms/osam/.well-known/openid-configuration"
            );
        }
    }

    #[test]
    fn the_secret_is_never_printed() {
        let settings = settings("https://sso.example.org");
        assert!(!format!("{settings:?}").contains("s3cr3t-value"));
        assert_eq!(settings.client_secret.to_string(), "[redacted]");
        assert_eq!(settings.client_secret.expose(), "s3cr3t-value");
    }
}

//! The service account's admin token and when to replace it: before it expires, with a margin of
//! a tenth of its lifetime (at most 30 s), so a call never leaves with a token about to lapse.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The longest refresh margin, for tokens that live long.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// An admin access token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AdminToken(String);

impl AdminToken {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("AdminToken([redacted])")
    }
}

/// The token in use and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) token: AdminToken,
    refresh_at: Instant,
}

impl CachedToken {
    /// A token requested at `requested_at` that lives `lifetime`. Counting from the request, not
    /// the answer, errs on the early side.
    pub(crate) fn new(token: String, requested_at: Instant, lifetime: Duration) -> CachedToken {
        CachedToken {
            token: AdminToken(token),
            refresh_at: requested_at + lifetime - refresh_margin(lifetime),
        }
    }

    /// Whether the token can still be sent at `now`.
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

/// The rule: a token is replaced when less than a tenth of its lifetime, or 30 s, whichever is
/// smaller, is left.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_REFRESH_MARGIN)
}

/// The token endpoint's answer to a granted request.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    /// Seconds; Keycloak always sends it, a missing one counts as a minute.
    #[serde(default = "default_expires_in")]
    pub(crate) expires_in: u64,
}

fn default_expires_in() -> u64 {
    60
}

/// The token endpoint's answer to a refused request (RFC 6749 section 5.2).
#[derive(Deserialize, Default)]
pub(crate) struct TokenErrorResponse {
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_a_tenth_of_the_lifetime_up_to_thirty_seconds() {
        assert_eq!(refresh_margin(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(refresh_margin(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(refresh_margin(Duration::from_secs(3600)), Duration::from_secs(30));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_token_is_replaced_once_inside_the_margin() {
        let requested_at = Instant::now();
        let cached = CachedToken::new("t".into(), requested_at, Duration::from_secs(60));
        assert!(cached.is_fresh(requested_at + Duration::from_secs(53)));
        assert!(!cached.is_fresh(requested_at + Duration::from_secs(54)));
    }

    #[test]
    fn the_token_is_not_printed() {
        let cached = CachedToken::new("eyJsecret".into(), Instant::now(), Duration::from_secs(60));
        assert!(!format!("{cached:?}").contains("eyJsecret"));
    }
}

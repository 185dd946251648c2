//! What can go wrong talking to Keycloak. Every message names the call (method and path, never
//! the query) so an operator knows which permission or endpoint is at fault; no message carries
//! the client secret or a token.

/// Why a Keycloak call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeycloakError {
    /// The settings cannot be used (a base URL that does not parse, a zero page size).
    #[error("invalid Keycloak settings: {0}")]
    InvalidSettings(String),
    /// No HTTP answer: connection refused or dropped, DNS, timeout; after every attempt.
    #[error("{call}: Keycloak is unreachable: {message}")]
    Unreachable { call: String, message: String },
    /// Keycloak answered with an error status (after every attempt, for transient ones).
    #[error("{call}: Keycloak answered {status}{}", detail_suffix(detail))]
    Status {
        call: String,
        status: u16,
        /// A short snippet of Keycloak's error body; may be empty.
        detail: String,
    },
    /// The token endpoint refused the client credentials.
    #[error(
        "Keycloak refused an admin token to client {client_id:?} ({status}): {error}{}",
        detail_suffix(description)
    )]
    TokenRefused {
        client_id: String,
        status: u16,
        /// Keycloak's OAuth `error` code, such as `unauthorized_client`.
        error: String,
        /// Keycloak's `error_description`; may be empty.
        description: String,
    },
    /// Keycloak answered 2xx with something osam cannot read.
    #[error("{call}: unexpected answer from Keycloak: {message}")]
    InvalidResponse { call: String, message: String },
}

impl KeycloakError {
    /// The HTTP status of a [`KeycloakError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            KeycloakError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// At most this many characters of an error body end up in a message.
const SNIPPET_CHARS: usize = 200;

/// A short, single-line excerpt of an error body.
pub(crate) fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let single_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if single_line.chars().count() <= SNIPPET_CHARS {
        return single_line;
    }
    let mut snippet: String = single_line.chars().take(SNIPPET_CHARS).collect();
    snippet.push('…');
    snippet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_short_and_on_one_line() {
        assert_eq!(body_snippet(b"{\"error\":\n  \"nope\"}"), "{\"error\": \"nope\"}");
        let long = "x".repeat(5000);
        let snippet = body_snippet(long.as_bytes());
        assert_eq!(snippet.chars().count(), SNIPPET_CHARS + 1);
    }

    #[test]
    fn messages_name_the_call_and_the_status() {
        let error = KeycloakError::Status {
            call: "GET /admin/realms/osam/users".into(),
            status: 403,
            detail: "{\"error\":\"unknown_error\"}".into(),
        };
        assert_eq!(
            error.to_string(),
            "GET /admin/realms/osam/users: Keycloak answered 403: {\"error\":\"unknown_error\"}"
        );
    }
}

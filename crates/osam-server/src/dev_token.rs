//! `osam dev-token`: a token for an example user, signed with the development key that `osam
//! serve` verifies in the embedded default. Refused for any other configuration.

use serde_json::{Map, Value, json};

use crate::auth::dev_key::DevelopmentKey;
use crate::auth::token::unix_now;
use crate::config::Config;
use crate::server::load_static_directory;

#[derive(Debug, thiserror::Error)]
pub enum DevTokenError {
    #[error(
        "refusing to mint a token: auth.key_source is not \"development\"; dev-token only serves the embedded development setup"
    )]
    NotDevelopment,
    #[error("user {user:?} is not in the static directory; known users: {known}")]
    UnknownUser { user: String, known: String },
    #[error("{0}")]
    Other(String),
}

/// The longest lifetime of a developer token: a week.
const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// Mints a token for `username`, valid for `ttl_seconds`.
pub async fn mint(config: &Config, username: &str, ttl_seconds: u64) -> Result<String, DevTokenError> {
    if !config.is_development() {
        return Err(DevTokenError::NotDevelopment);
    }
    let directory = load_static_directory(config).map_err(|error| DevTokenError::Other(error.to_string()))?;
    let users = osam_policy::Directory::list_users(directory.as_ref())
        .await
        .map_err(|error| DevTokenError::Other(error.to_string()))?;
    let Some(user) = users.iter().find(|user| user.username == username) else {
        let known = users
            .iter()
            .map(|user| user.username.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DevTokenError::UnknownUser {
            user: username.to_owned(),
            known,
        });
    };
    let key = DevelopmentKey::load_or_create(&config.server.effective_state_dir())
        .map_err(|error| DevTokenError::Other(error.to_string()))?;

    if ttl_seconds == 0 || ttl_seconds > MAX_TTL_SECONDS {
        return Err(DevTokenError::Other(format!(
            "--ttl must be between 1 and {MAX_TTL_SECONDS} seconds"
        )));
    }
    let now = unix_now();
    let mut claims = json!({
        "iss": config.auth.issuer,
        "aud": config.auth.audience,
        "sub": user.username,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "typ": "Bearer",
    });
    set_claim(&mut claims, &config.auth.username_claim, json!(user.username));
    // Roles go where the server reads them first, as Keycloak puts realm roles in realm_access.
    if let Some(role_claim) = config.auth.role_claims.first() {
        set_claim(&mut claims, role_claim, json!(user.roles));
    }
    let groups: Vec<String> = user.groups.iter().map(ToString::to_string).collect();
    set_claim(&mut claims, &config.auth.groups_claim, json!(groups));
    if let Some(name) = &user.name {
        set_claim(&mut claims, "name", json!(name));
    }
    if let Some(email) = &user.email {
        set_claim(&mut claims, "email", json!(email));
    }
    key.sign(&claims)
        .map_err(|error| DevTokenError::Other(error.to_string()))
}

/// Sets a dotted claim path, creating the objects on the way.
fn set_claim(claims: &mut Value, path: &str, value: Value) {
    let mut segments: Vec<&str> = path.split('.').collect();
    let Some(last) = segments.pop() else { return };
    let mut object = claims;
    for segment in segments {
        let Value::Object(map) = object else { return };
        object = map
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(map) = object {
        map.insert(last.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_claims_are_created() {
        let mut claims = json!({});
        set_claim(&mut claims, "realm_access.roles", json!(["a"]));
        set_claim(&mut claims, "groups", json!([]));
        assert_eq!(claims, json!({"realm_access": {"roles": ["a"]}, "groups": []}));
    }
}

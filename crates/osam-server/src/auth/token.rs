//! Bearer token verification: header checks, signature, `iss`/`aud`/`exp`/`nbf`, then the claims
//! that make a principal. Verified tokens are cached until they expire, keyed by a SHA-256 of the
//! token so the cache never holds a usable credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use osam_policy::{GroupPath, Principal, RoleScopeTable};
use serde_json::Value;

use crate::auth::keys::KeyStore;
use crate::digest::sha256;
use crate::error::ApiError;
use crate::metrics::{Metrics, metrics};

/// Where the claims that make a principal are found; Keycloak and other issuers differ.
#[derive(Debug, Clone)]
pub struct ClaimMapping {
    pub role_claims: Vec<String>,
    pub groups_claim: String,
    pub username_claim: String,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone)]
pub struct TokenIdentity {
    pub principal: Arc<Principal>,
    pub name: Option<String>,
    pub email: Option<String>,
    expires_at: u64,
    scope_table: Arc<RoleScopeTable>,
}

/// What the token must satisfy.
pub struct TokenRules {
    pub algorithms: Vec<Algorithm>,
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: u64,
}

pub struct TokenVerifier {
    keys: KeyStore,
    rules: TokenRules,
    claims: ClaimMapping,
    cache: Mutex<HashMap<[u8; 32], TokenIdentity>>,
    cache_capacity: usize,
}

impl TokenVerifier {
    pub fn new(
        keys: KeyStore,
        rules: TokenRules,
        claims: ClaimMapping,
        cache_capacity: usize,
    ) -> TokenVerifier {
        TokenVerifier {
            keys,
            rules,
            claims,
            cache: Mutex::new(HashMap::new()),
            cache_capacity,
        }
    }

    /// Verifies `token` and returns its identity, with scopes from `scope_table`.
    pub async fn verify(
        &self,
        token: &str,
        scope_table: &Arc<RoleScopeTable>,
    ) -> Result<TokenIdentity, ApiError> {
        let cache_key = sha256(token.as_bytes());
        if let Some(identity) = self.cached(&cache_key, scope_table) {
            Metrics::record_result(&metrics().token_cache, "hit");
            return Ok(identity);
        }
        Metrics::record_result(&metrics().token_cache, "miss");
        let identity = self.verify_uncached(token, scope_table).await?;
        self.remember(cache_key, identity.clone());
        Ok(identity)
    }

    fn cached(&self, cache_key: &[u8; 32], scope_table: &Arc<RoleScopeTable>) -> Option<TokenIdentity> {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let identity = cache.get(cache_key)?;
        // A changed scope table (directory reload) or an expired token means verifying again.
        let still_valid = unix_now() <= identity.expires_at.saturating_add(self.rules.leeway_seconds)
            && Arc::ptr_eq(&identity.scope_table, scope_table);
        if still_valid {
            Some(identity.clone())
        } else {
            cache.remove(cache_key);
            None
        }
    }

    fn remember(&self, cache_key: [u8; 32], identity: TokenIdentity) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= self.cache_capacity {
            let now = unix_now();
            let leeway = self.rules.leeway_seconds;
            cache.retain(|_, cached| now <= cached.expires_at.saturating_add(leeway));
            if cache.len() >= self.cache_capacity {
                cache.clear();
            }
        }
        cache.insert(cache_key, identity);
    }

    async fn verify_uncached(
        &self,
        token: &str,
        scope_table: &Arc<RoleScopeTable>,
    ) -> Result<TokenIdentity, ApiError> {
        // `alg: none` and unknown algorithms fail here: they are not jsonwebtoken algorithms.
        let header =
            jsonwebtoken::decode_header(token).map_err(|error| ApiError::InvalidToken(error.to_string()))?;
        if !self.rules.algorithms.contains(&header.alg) {
            return Err(ApiError::InvalidToken(format!(
                "the algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self.keys.key_for(header.kid.as_deref(), header.alg).await?;

        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.rules.issuer]);
        validation.set_audience(&[&self.rules.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.rules.leeway_seconds;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => ApiError::TokenExpired,
                ErrorKind::InvalidIssuer => ApiError::InvalidToken("wrong issuer".into()),
                ErrorKind::InvalidAudience => ApiError::InvalidToken("wrong audience".into()),
                ErrorKind::ImmatureSignature => {
                    ApiError::InvalidToken("the token is not valid yet (nbf)".into())
                }
                ErrorKind::InvalidSignature => ApiError::InvalidToken("bad signature".into()),
                _ => ApiError::InvalidToken(error.to_string()),
            })?
            .claims;
        self.identity_from_claims(&claims, scope_table)
    }

    fn identity_from_claims(
        &self,
        claims: &Value,
        scope_table: &Arc<RoleScopeTable>,
    ) -> Result<TokenIdentity, ApiError> {
        let username = claim_path(claims, &self.claims.username_claim)
            .and_then(Value::as_str)
            .filter(|username| !username.is_empty())
            .ok_or_else(|| {
                ApiError::InvalidToken(format!("the claim {:?} is missing", self.claims.username_claim))
            })?;
        let roles = self
            .claims
            .role_claims
            .iter()
            .filter_map(|path| claim_path(claims, path))
            .flat_map(string_list)
            .collect::<Vec<_>>();
        let groups = claim_path(claims, &self.claims.groups_claim)
            .map(string_list)
            .unwrap_or_default();
        let groups = groups
            .into_iter()
            .filter_map(|group| match GroupPath::parse(&group) {
                Ok(path) => Some(path),
                Err(error) => {
                    tracing::debug!(%error, "ignoring a group claim that is not a full group path");
                    None
                }
            });
        let text_claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(TokenIdentity {
            principal: Arc::new(Principal::new(username, roles, groups, scope_table)),
            name: text_claim("name"),
            email: text_claim("email"),
            expires_at: claims.get("exp").and_then(Value::as_u64).unwrap_or(0),
            scope_table: scope_table.clone(),
        })
    }
}

/// Follows a dotted path (`resource_access.osam.roles`) through nested objects.
fn claim_path<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(claims, |value, segment| value.get(segment))
}

/// A list of strings, or a single string; anything else is empty.
fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Seconds since the Unix epoch, as JWT times are.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_paths_follow_nested_objects() {
        let claims = serde_json::json!({"realm_access": {"roles": ["a", "b"]}, "resource_access": {"osam": {"roles": "c"}}});
        assert_eq!(
            claim_path(&claims, "realm_access.roles").map(string_list),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            claim_path(&claims, "resource_access.osam.roles").map(string_list),
            Some(vec!["c".into()])
        );
        assert_eq!(claim_path(&claims, "resource_access.other.roles"), None);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::auth::dev_key::DevelopmentKey;
    use crate::auth::keys::AsymmetricKeys;

    fn verifier(key: &DevelopmentKey, capacity: usize) -> TokenVerifier {
        let keys = KeyStore::new(
            AsymmetricKeys::Fixed {
                kid: Some(key.kid().to_owned()),
                key: Arc::new(key.decoding_key().clone()),
            },
            None,
        );
        let rules = TokenRules {
            algorithms: vec![Algorithm::RS256],
            issuer: "test".into(),
            audience: "osam".into(),
            leeway_seconds: 0,
        };
        let claims = ClaimMapping {
            role_claims: vec!["roles".into()],
            groups_claim: "groups".into(),
            username_claim: "preferred_username".into(),
        };
        TokenVerifier::new(keys, rules, claims, capacity)
    }

    fn token(key: &DevelopmentKey, username: &str, expires_at: u64) -> String {
        let claims = serde_json::json!({
            "iss": "test", "aud": "osam", "exp": expires_at, "preferred_username": username, "roles": ["rs_osam_read"],
        });
        key.sign(&claims).expect("signed")
    }

    #[tokio::test]
    async fn a_repeated_token_is_served_from_the_cache_until_the_scope_table_changes() {
        let state = tempfile::tempdir().expect("temp dir");
        let key = DevelopmentKey::load_or_create(state.path()).expect("key");
        let verifier = verifier(&key, 10);
        let table = Arc::new(RoleScopeTable::osam_defaults());
        let token = token(&key, "zoe", unix_now() + 600);

        let first = verifier.verify(&token, &table).await.expect("valid");
        let second = verifier.verify(&token, &table).await.expect("valid");
        assert!(
            Arc::ptr_eq(&first.principal, &second.principal),
            "the second call is a cache hit"
        );
        assert!(first.principal.has_scope("rights:read"));

        let edited = Arc::new(RoleScopeTable::empty());
        let third = verifier.verify(&token, &edited).await.expect("valid");
        assert!(
            !Arc::ptr_eq(&first.principal, &third.principal),
            "a new table rebuilds the principal"
        );
        assert!(!third.principal.has_scope("rights:read"));
    }

    #[tokio::test]
    async fn the_cache_stays_bounded_and_expired_tokens_are_refused() {
        let state = tempfile::tempdir().expect("temp dir");
        let key = DevelopmentKey::load_or_create(state.path()).expect("key");
        let verifier = verifier(&key, 3);
        let table = Arc::new(RoleScopeTable::osam_defaults());
        for user in ["a", "b", "c", "d", "e"] {
            verifier
                .verify(&token(&key, user, unix_now() + 600), &table)
                .await
                .expect("valid");
        }
        assert!(verifier.cache.lock().expect("cache").len() <= 3);

        let expired = token(&key, "old", unix_now() - 10);
        assert_eq!(
            verifier.verify(&expired, &table).await.map(|_| ()),
            Err(ApiError::TokenExpired)
        );
    }
}

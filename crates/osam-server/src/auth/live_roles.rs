//! Live roles: the caller's roles and groups re-read from the directory instead of taken from the
//! token, so that a revoked role or a disabled user takes effect within a TTL rather than at the
//! token's expiry. The token still proves who the caller is; the directory says what they hold.
//!
//! Fails closed: a user the directory no longer has (deleted or disabled) is refused with
//! `USER_DISABLED`, and an unreachable directory refuses the call with `DIRECTORY_UNAVAILABLE`
//! rather than falling back to the token's possibly revoked roles.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::identity::Identity;

/// How many users' live roles are kept at once.
const CAPACITY: usize = 10_000;

pub struct LiveRoles {
    ttl: Duration,
    /// Usernames starting with this keep their token's roles: Keycloak's client service accounts
    /// (`service-account-<client>`) are not people in the directory, and a client's access ends
    /// with its credentials, not with a user being disabled.
    exempt_prefix: String,
    cache: Mutex<HashMap<String, (Instant, Caller)>>,
}

impl LiveRoles {
    pub fn new(ttl: Duration, exempt_prefix: impl Into<String>) -> LiveRoles {
        LiveRoles {
            ttl,
            exempt_prefix: exempt_prefix.into(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the caller `username`'s roles are read from the directory.
    pub fn applies_to(&self, username: &str) -> bool {
        self.exempt_prefix.is_empty() || !username.starts_with(&self.exempt_prefix)
    }

    /// The caller `username` is, with the roles and groups the directory gives them now (or at
    /// most `ttl` ago).
    pub async fn caller(&self, username: &str, identity: &Identity) -> Result<Caller, ApiError> {
        if let Some(caller) = self.cached(username) {
            return Ok(caller);
        }
        let user = match identity.find_user(username).await {
            Ok(user) => user,
            Err(ApiError::UserNotFound(_)) => {
                tracing::info!(
                    user = username,
                    "live roles: the user is disabled or deleted; call refused"
                );
                return Err(ApiError::UserDisabled(username.to_owned()));
            }
            Err(error) => return Err(error),
        };
        let caller = Caller {
            principal: identity.principal_of(&user),
            name: user.name,
            email: user.email,
        };
        self.remember(username, caller.clone());
        Ok(caller)
    }

    fn cached(&self, username: &str) -> Option<Caller> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (read_at, caller) = cache.get(username)?;
        (read_at.elapsed() < self.ttl).then(|| caller.clone())
    }

    fn remember(&self, username: &str, caller: Caller) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CAPACITY {
            let ttl = self.ttl;
            cache.retain(|_, (read_at, _)| read_at.elapsed() < ttl);
            if cache.len() >= CAPACITY {
                cache.clear();
            }
        }
        cache.insert(username.to_owned(), (Instant::now(), caller));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::static_file::StaticFileDirectory;
    use osam_policy::RoleScopeTable;

    fn identity_with(yaml: &str) -> (tempfile::NamedTempFile, Arc<StaticFileDirectory>, Identity) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), yaml).expect("write");
        let directory = Arc::new(
            StaticFileDirectory::load(Some(file.path()), RoleScopeTable::osam_defaults(), None)
                .expect("valid"),
        );
        let identity = Identity::new(directory.clone(), directory.clone());
        (file, directory, identity)
    }

    #[tokio::test]
    async fn roles_come_from_the_directory_and_are_reread_after_the_ttl() {
        let (file, directory, identity) =
            identity_with("users:\n  alice:\n    roles: [rs_catalog_o:c_read]\n");
        let cached = LiveRoles::new(Duration::from_secs(3600), "service-account-");
        let uncached = LiveRoles::new(Duration::ZERO, "service-account-");
        let roles = |caller: &Caller| caller.principal.roles().iter().cloned().collect::<Vec<_>>();

        let first = cached.caller("alice", &identity).await.expect("alice");
        assert!(roles(&first).contains(&"rs_catalog_o:c_read".to_owned()));

        std::fs::write(
            file.path(),
            "users:\n  alice:\n    roles: [rs_catalog_o:d_read]\n",
        )
        .expect("write");
        directory.reload_if_changed();
        let within_ttl = cached.caller("alice", &identity).await.expect("alice");
        assert!(
            roles(&within_ttl).contains(&"rs_catalog_o:c_read".to_owned()),
            "cached within the TTL"
        );
        let reread = uncached.caller("alice", &identity).await.expect("alice");
        assert!(roles(&reread).contains(&"rs_catalog_o:d_read".to_owned()));
        assert!(
            !roles(&reread).contains(&"rs_catalog_o:c_read".to_owned()),
            "the revoked role is gone"
        );
    }

    #[tokio::test]
    async fn a_user_the_directory_no_longer_has_is_refused() {
        let (_file, _directory, identity) = identity_with("users:\n  alice:\n    roles: []\n");
        let live = LiveRoles::new(Duration::from_secs(30), "service-account-");
        let error = live.caller("bob", &identity).await.expect_err("bob is unknown");
        assert_eq!(error.reason(), "USER_DISABLED");
        assert!(live.applies_to("alice"));
        assert!(
            !live.applies_to("service-account-catalog"),
            "service accounts keep their token's roles"
        );
        assert!(LiveRoles::new(Duration::ZERO, "").applies_to("service-account-catalog"));
    }
}

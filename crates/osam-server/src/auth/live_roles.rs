//! Live roles: the caller looked up in the directory (cached for a TTL), so that a disabled user
//! is refused before their token expires and, when roles are live, a revoked role stops granting.
//! The token still proves who the caller is; the directory says whether they still exist and, in
//! live-roles mode, what they hold.
//!
//! Fails closed: a user the directory no longer has (deleted or disabled) is refused with
//! `USER_DISABLED`, and an unreachable directory refuses the call with `DIRECTORY_UNAVAILABLE`
//! rather than falling back to the token's possibly revoked roles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::identity::Identity;

/// How many users' live roles are kept at once.
const CAPACITY: usize = 10_000;

pub struct LiveRoles {
    ttl: Duration,
    /// The directory's roles and groups replace the token's; otherwise only the user's presence
    /// (existing and enabled) is checked and the token's roles stand.
    replace_roles: bool,
    /// Usernames starting with this keep their token's roles: Keycloak's client service accounts
    /// (`service-account-<client>`) are not people in the directory, and a client's access ends
    /// with its credentials, not with a user being disabled.
    exempt_prefix: String,
    cache: Mutex<HashMap<String, (Instant, Caller)>>,
    /// One directory read per user at a time: concurrent first calls of a user wait for the read
    /// in progress and then take its result from the cache, instead of each reading the directory.
    reads: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl LiveRoles {
    pub fn new(ttl: Duration, replace_roles: bool, exempt_prefix: impl Into<String>) -> LiveRoles {
        LiveRoles {
            ttl,
            replace_roles,
            exempt_prefix: exempt_prefix.into(),
            cache: Mutex::new(HashMap::new()),
            reads: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the caller `username` is looked up in the directory.
    pub fn applies_to(&self, username: &str) -> bool {
        self.exempt_prefix.is_empty() || !username.starts_with(&self.exempt_prefix)
    }

    /// The caller a verified token speaks for, checked against the directory: refused when the
    /// user is gone or disabled, with the directory's roles when they are live.
    pub async fn resolve(&self, from_token: Caller, identity: &Identity) -> Result<Caller, ApiError> {
        let username = from_token.principal.username();
        if !self.applies_to(username) {
            return Ok(from_token);
        }
        let from_directory = self.caller(username, identity).await?;
        Ok(if self.replace_roles {
            from_directory
        } else {
            from_token
        })
    }

    /// The caller `username` is, with the roles and groups the directory gives them now (or at
    /// most `ttl` ago).
    pub async fn caller(&self, username: &str, identity: &Identity) -> Result<Caller, ApiError> {
        if let Some(caller) = self.cached(username) {
            return Ok(caller);
        }
        let read = self.read_lock(username);
        let _reading = read.lock().await;
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

    /// The lock of `username`'s directory read, shared by the calls waiting for it.
    fn read_lock(&self, username: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut reads = self.reads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = reads.get(username).and_then(Weak::upgrade) {
            return lock;
        }
        if reads.len() >= CAPACITY {
            reads.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        reads.insert(username.to_owned(), Arc::downgrade(&lock));
        lock
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
        let cached = LiveRoles::new(Duration::from_secs(3600), true, "service-account-");
        let uncached = LiveRoles::new(Duration::ZERO, true, "service-account-");
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

    /// Counts find_user calls, each taking a while, to see concurrent first calls share one read.
    struct CountingDirectory {
        inner: Arc<StaticFileDirectory>,
        finds: std::sync::atomic::AtomicUsize,
    }

    impl osam_policy::Directory for CountingDirectory {
        fn find_user<'a>(
            &'a self,
            username: &'a str,
        ) -> osam_policy::DirectoryFuture<'a, Option<osam_policy::DirectoryUser>> {
            self.finds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.inner.find_user(username).await
            })
        }

        fn list_users(&self) -> osam_policy::DirectoryFuture<'_, Vec<osam_policy::DirectoryUser>> {
            self.inner.list_users()
        }

        fn set_attribute<'a>(
            &'a self,
            username: &'a str,
            name: &'a str,
            values: Vec<String>,
        ) -> osam_policy::DirectoryFuture<'a, ()> {
            self.inner.set_attribute(username, name, values)
        }
    }

    #[tokio::test]
    async fn concurrent_first_calls_of_a_user_share_one_directory_read() {
        let (_file, directory, _) = identity_with("users:\n  alice:\n    roles: []\n");
        let counting = Arc::new(CountingDirectory {
            inner: directory.clone(),
            finds: std::sync::atomic::AtomicUsize::new(0),
        });
        let identity = Identity::new(counting.clone(), directory);
        let live = LiveRoles::new(Duration::from_secs(30), true, "service-account-");
        let calls = (0..8).map(|_| live.caller("alice", &identity));
        for outcome in futures::future::join_all(calls).await {
            outcome.expect("alice");
        }
        assert_eq!(counting.finds.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_user_the_directory_no_longer_has_is_refused() {
        let (_file, _directory, identity) = identity_with("users:\n  alice:\n    roles: []\n");
        let live = LiveRoles::new(Duration::from_secs(30), true, "service-account-");
        let error = live.caller("bob", &identity).await.expect_err("bob is unknown");
        assert_eq!(error.reason(), "USER_DISABLED");
        assert!(live.applies_to("alice"));
        assert!(
            !live.applies_to("service-account-catalog"),
            "service accounts keep their token's roles"
        );
        assert!(LiveRoles::new(Duration::ZERO, true, "").applies_to("service-account-catalog"));
    }
}

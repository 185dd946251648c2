//! Who users are: the configured directory and the role → scope table that goes with it, behind
//! one type so that services and the auth layer resolve users the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use osam_policy::{Directory, DirectoryError, DirectoryUser, GroupPath, Principal, RoleScopeTable};

use crate::digest::sha256_of_fields;
use crate::error::ApiError;

/// How many distinct subjects keep their built principal (and grant index).
const PRINCIPAL_CACHE_CAPACITY: usize = 10_000;

/// Gives the current role → scope table (it can change when a directory file is reloaded).
pub trait ScopeTableSource: Send + Sync {
    fn current(&self) -> Arc<RoleScopeTable>;
}

/// A role → scope table that never changes (osam's defaults with the configuration's edits), for
/// directories that carry no scopes of their own, such as Keycloak.
pub struct FixedScopeTable(Arc<RoleScopeTable>);

impl FixedScopeTable {
    pub fn new(table: RoleScopeTable) -> FixedScopeTable {
        FixedScopeTable(Arc::new(table))
    }
}

impl ScopeTableSource for FixedScopeTable {
    fn current(&self) -> Arc<RoleScopeTable> {
        self.0.clone()
    }
}

pub struct Identity {
    directory: Arc<dyn Directory>,
    scope_tables: Arc<dyn ScopeTableSource>,
    principals: Mutex<PrincipalCache>,
}

/// Principals built for subjects that are not the caller (explicit roles from a calling service,
/// or a directory user), so the grant index is built once per distinct subject, not per request.
/// Valid for one scope table: a new table empties it.
struct PrincipalCache {
    scope_table: Option<Arc<RoleScopeTable>>,
    entries: HashMap<[u8; 32], Arc<Principal>>,
}

impl Identity {
    pub fn new(directory: Arc<dyn Directory>, scope_tables: Arc<dyn ScopeTableSource>) -> Identity {
        let principals = PrincipalCache {
            scope_table: None,
            entries: HashMap::new(),
        };
        Identity {
            directory,
            scope_tables,
            principals: Mutex::new(principals),
        }
    }

    /// The directory, for the account sync.
    pub fn directory(&self) -> Arc<dyn Directory> {
        self.directory.clone()
    }

    pub fn scope_table(&self) -> Arc<RoleScopeTable> {
        self.scope_tables.current()
    }

    /// The directory user, or NOT_FOUND.
    pub async fn find_user(&self, username: &str) -> Result<DirectoryUser, ApiError> {
        match self.directory.find_user(username).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) | Err(DirectoryError::UserNotFound(_)) => {
                Err(ApiError::UserNotFound(username.to_owned()))
            }
            Err(DirectoryError::Unavailable(message)) => Err(ApiError::DirectoryUnavailable(message)),
        }
    }

    /// Every directory user, sorted by username.
    pub async fn list_users(&self) -> Result<Vec<DirectoryUser>, ApiError> {
        self.directory
            .list_users()
            .await
            .map_err(|error| ApiError::DirectoryUnavailable(error.to_string()))
    }

    /// The principal a directory user is.
    pub fn principal_of(&self, user: &DirectoryUser) -> Arc<Principal> {
        self.principal(&user.username, &user.roles, &user.groups)
    }

    /// The principal with exactly these roles and groups, from the cache when it was built before.
    pub fn principal(&self, username: &str, roles: &[String], groups: &[GroupPath]) -> Arc<Principal> {
        let scope_table = self.scope_table();
        let fields = std::iter::once(username.as_bytes())
            .chain(std::iter::once(&b"roles"[..]))
            .chain(roles.iter().map(|role| role.as_bytes()))
            .chain(std::iter::once(&b"groups"[..]))
            .chain(groups.iter().map(|group| group.as_str().as_bytes()));
        let key = sha256_of_fields(fields);
        {
            let mut cache = self
                .principals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let same_table = cache
                .scope_table
                .as_ref()
                .is_some_and(|cached| Arc::ptr_eq(cached, &scope_table));
            if !same_table {
                cache.entries.clear();
                cache.scope_table = Some(scope_table.clone());
            }
            if let Some(principal) = cache.entries.get(&key) {
                return principal.clone();
            }
        }
        // Built outside the lock: building an index for hundreds of roles takes tens of µs.
        let principal = Arc::new(Principal::new(
            username,
            roles.to_vec(),
            groups.to_vec(),
            &scope_table,
        ));
        let mut cache = self
            .principals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.entries.len() >= PRINCIPAL_CACHE_CAPACITY {
            cache.entries.clear();
        }
        if cache
            .scope_table
            .as_ref()
            .is_some_and(|cached| Arc::ptr_eq(cached, &scope_table))
        {
            cache.entries.insert(key, principal.clone());
        }
        principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::static_file::StaticFileDirectory;

    #[test]
    fn principals_are_built_once_per_subject_and_scope_table() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), "users:\n  alice:\n    roles: [rs_osam_read]\n").expect("write");
        let directory = Arc::new(
            StaticFileDirectory::load(Some(file.path()), RoleScopeTable::osam_defaults(), None)
                .expect("valid"),
        );
        let identity = Identity::new(directory.clone(), directory.clone());
        let roles = vec!["rs_catalog_o:c_read".to_owned()];

        let first = identity.principal("svc", &roles, &[]);
        assert!(
            Arc::ptr_eq(&first, &identity.principal("svc", &roles, &[])),
            "the same subject is cached"
        );
        assert!(
            !Arc::ptr_eq(&first, &identity.principal("svc", &[], &[])),
            "other roles are another subject"
        );

        std::fs::write(
            file.path(),
            "users:\n  alice:\n    roles: [rs_osam_read]\nroles:\n  x:\n    scopes_add: [y]\n",
        )
        .expect("write");
        directory.reload_if_changed();
        assert!(
            !Arc::ptr_eq(&first, &identity.principal("svc", &roles, &[])),
            "a new scope table rebuilds"
        );
    }
}

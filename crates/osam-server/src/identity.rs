//! Who users are: the configured directory and the role → scope table that goes with it, behind
//! one type so that services and the auth layer resolve users the same way.

use std::sync::Arc;

use osam_policy::{Directory, DirectoryError, DirectoryUser, Principal, RoleScopeTable};

use crate::error::ApiError;

/// Gives the current role → scope table (it can change when a directory file is reloaded).
pub trait ScopeTableSource: Send + Sync {
    fn current(&self) -> Arc<RoleScopeTable>;
}

pub struct Identity {
    directory: Arc<dyn Directory>,
    scope_tables: Arc<dyn ScopeTableSource>,
}

impl Identity {
    pub fn new(directory: Arc<dyn Directory>, scope_tables: Arc<dyn ScopeTableSource>) -> Identity {
        Identity {
            directory,
            scope_tables,
        }
    }

    pub fn scope_table(&self) -> Arc<RoleScopeTable> {
        self.scope_tables.current()
    }

    /// The directory user, or NOT_FOUND.
    pub async fn find_user(&self, username: &str) -> Result<DirectoryUser, ApiError> {
        match self.directory.find_user(username).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(ApiError::UserNotFound(username.to_owned())),
            Err(DirectoryError::Unavailable(message)) => Err(ApiError::DirectoryUnavailable(message)),
        }
    }

    /// The principal a directory user is.
    pub fn principal_of(&self, user: &DirectoryUser) -> Principal {
        Principal::new(
            user.username.clone(),
            user.roles.clone(),
            user.groups.clone(),
            &self.scope_table(),
        )
    }
}

//! The directory port: where users, their roles and groups come from (a static file, Keycloak).
//! Adapters implement [`Directory`]; the trait returns boxed futures so that it stays object-safe
//! without tying this crate to an async runtime.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::group_path::GroupPath;

/// A user as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub username: String,
    pub roles: Vec<String>,
    pub groups: Vec<GroupPath>,
    /// The person's name ("John Doe"), not the formatted displayed name.
    pub name: Option<String>,
    pub email: Option<String>,
    /// Free attributes, such as the link to the user's object-storage account (`obs-user`).
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl DirectoryUser {
    /// The first value of an attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(name)
            .and_then(|values| values.first())
            .map(String::as_str)
    }
}

/// Why the directory could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The directory could not be reached or has no valid data yet; retrying may help.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The user to change does not exist (any more).
    #[error("user {0:?} is not in the directory")]
    UserNotFound(String),
}

/// The future a directory call returns.
pub type DirectoryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DirectoryError>> + Send + 'a>>;

/// A source of users.
pub trait Directory: Send + Sync {
    /// The user with exactly this username, or `None`. Disabled users are absent.
    fn find_user<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>>;

    /// Every user, sorted by username; implementations page through their source completely.
    fn list_users(&self) -> DirectoryFuture<'_, Vec<DirectoryUser>>;

    /// Sets one attribute of a user to `values`, keeping every other attribute.
    fn set_attribute<'a>(
        &'a self,
        username: &'a str,
        name: &'a str,
        values: Vec<String>,
    ) -> DirectoryFuture<'a, ()>;
}

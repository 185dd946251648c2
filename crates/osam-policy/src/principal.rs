//! The principal: who is asking, with the roles, groups and scopes that decide what they may do,
//! and the app acting for them when a call impersonates a user.

use std::collections::BTreeSet;

use crate::grant_index::GrantIndex;
use crate::group_path::GroupPath;
use crate::scopes::RoleScopeTable;

/// An authenticated user (or a subject given by a calling service). Built once per token or
/// subject: the grant index and scopes are derived here, never per request.
#[derive(Debug, Clone)]
pub struct Principal {
    username: String,
    roles: BTreeSet<String>,
    groups: Vec<GroupPath>,
    scopes: BTreeSet<String>,
    grants: GrantIndex,
    actor: Option<String>,
}

impl Principal {
    /// Builds a principal; scopes come from `scope_table`, groups are sorted and deduplicated.
    pub fn new(
        username: impl Into<String>,
        roles: impl IntoIterator<Item = String>,
        groups: impl IntoIterator<Item = GroupPath>,
        scope_table: &RoleScopeTable,
    ) -> Principal {
        let roles: BTreeSet<String> = roles.into_iter().collect();
        let groups: BTreeSet<GroupPath> = groups.into_iter().collect();
        Principal {
            username: username.into(),
            scopes: scope_table.scopes_for(roles.iter().map(String::as_str)),
            grants: GrantIndex::build(&roles),
            roles,
            groups: groups.into_iter().collect(),
            actor: None,
        }
    }

    /// The same principal, acted for by `actor` (an app holding `users:impersonate`).
    pub fn acted_for_by(mut self, actor: impl Into<String>) -> Principal {
        self.actor = Some(actor.into());
        self
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn roles(&self) -> &BTreeSet<String> {
        &self.roles
    }

    pub fn groups(&self) -> &[GroupPath] {
        &self.groups
    }

    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.scopes
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    pub fn grants(&self) -> &GrantIndex {
        &self.grants
    }

    /// The app acting for this user, when the call impersonates them.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }
}

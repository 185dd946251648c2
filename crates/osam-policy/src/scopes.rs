//! Roles to scopes, with bluesky-httpserver's semantics: a table of roles, each edited by
//! `scopes_set` (replace), then `scopes_add`, then `scopes_remove`; scopes are lower-cased; a
//! user's scopes are the union over their roles. RPCs require scopes, never role names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};

/// The role every authenticated principal holds implicitly; its scopes apply to everyone with a
/// valid token (by default only `catalog:check`, checking one's own catalog rights).
pub const AUTHENTICATED_ROLE: &str = "authenticated";

/// Why a role table edit is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("role name {0:?} does not match ^[a-zA-Z_][0-9a-zA-Z_]*$")]
    InvalidRoleName(String),
    #[error("scope {scope:?} of role {role:?} does not match ^[0-9a-zA-Z:_]+$")]
    InvalidScope { role: String, scope: String },
}

/// An edit of one role's scopes. A missing key leaves that step out; a key present with an empty
/// list or `null` still runs (so `scopes_set: null` clears the role, as in bluesky-httpserver).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeEdit {
    #[serde(
        default,
        deserialize_with = "present_scope_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes_set: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "present_scope_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes_add: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "present_scope_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes_remove: Option<Vec<String>>,
}

impl ScopeEdit {
    /// The edit a `null` role entry means: the role keeps no scope.
    pub fn revoke_all() -> ScopeEdit {
        ScopeEdit {
            scopes_set: Some(Vec::new()),
            ..ScopeEdit::default()
        }
    }
}

/// A scope list as bluesky-httpserver accepts it: one string, a list of strings, or null.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    One(String),
    Many(Vec<String>),
}

fn present_scope_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    let list = Option::<ScopeList>::deserialize(deserializer)?;
    Ok(Some(match list {
        None => Vec::new(),
        Some(ScopeList::One(scope)) => vec![scope],
        Some(ScopeList::Many(scopes)) => scopes,
    }))
}

/// The role → scopes table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleScopeTable {
    roles: BTreeMap<String, BTreeSet<String>>,
}

impl RoleScopeTable {
    /// A table with no role.
    pub fn empty() -> RoleScopeTable {
        RoleScopeTable::default()
    }

    /// osam's shipped defaults; configuration edits them.
    pub fn osam_defaults() -> RoleScopeTable {
        let defaults: [(&str, &[&str]); 5] = [
            (AUTHENTICATED_ROLE, &["catalog:check"]),
            (
                "rs_osam_update",
                &[
                    "accounts:sync",
                    "accounts:read",
                    "rights:read",
                    "rights:apply",
                    "users:read",
                    "storage:read",
                ],
            ),
            (
                "rs_osam_read",
                &["accounts:read", "rights:read", "users:read", "storage:read"],
            ),
            (
                "rs_osam_catalog_service",
                &["catalog:check", "catalog:check:any", "users:read"],
            ),
            ("rs_osam_impersonate", &["users:impersonate"]),
        ];
        let roles = defaults
            .into_iter()
            .map(|(role, scopes)| {
                (
                    role.to_owned(),
                    scopes.iter().map(|scope| scope.to_string()).collect(),
                )
            })
            .collect();
        RoleScopeTable { roles }
    }

    /// Applies one edit: set, then add, then remove; scopes lower-cased. Validates the role name
    /// and every scope against bluesky-httpserver's patterns before changing anything.
    pub fn apply_edit(&mut self, role: &str, edit: &ScopeEdit) -> Result<(), ScopeError> {
        if !is_role_name(role) {
            return Err(ScopeError::InvalidRoleName(role.to_owned()));
        }
        let lists = [&edit.scopes_set, &edit.scopes_add, &edit.scopes_remove];
        for scope in lists.into_iter().flatten().flatten() {
            if scope.is_empty()
                || !scope
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_')
            {
                return Err(ScopeError::InvalidScope {
                    role: role.to_owned(),
                    scope: scope.clone(),
                });
            }
        }
        let lowered = |scopes: &Vec<String>| {
            scopes
                .iter()
                .map(|scope| scope.to_lowercase())
                .collect::<Vec<_>>()
        };
        let role_scopes = self.roles.entry(role.to_owned()).or_default();
        if let Some(scopes) = &edit.scopes_set {
            role_scopes.clear();
            role_scopes.extend(lowered(scopes));
        }
        if let Some(scopes) = &edit.scopes_add {
            role_scopes.extend(lowered(scopes));
        }
        if let Some(scopes) = &edit.scopes_remove {
            for scope in lowered(scopes) {
                role_scopes.remove(&scope);
            }
        }
        Ok(())
    }

    /// Applies edits in order.
    pub fn apply_edits<'e>(
        &mut self,
        edits: impl IntoIterator<Item = (&'e String, &'e ScopeEdit)>,
    ) -> Result<(), ScopeError> {
        edits
            .into_iter()
            .try_for_each(|(role, edit)| self.apply_edit(role, edit))
    }

    /// The union of the scopes of `roles` and of the implicit [`AUTHENTICATED_ROLE`]. Unknown roles
    /// give no scope.
    pub fn scopes_for<'r>(&self, roles: impl IntoIterator<Item = &'r str>) -> BTreeSet<String> {
        std::iter::once(AUTHENTICATED_ROLE)
            .chain(roles)
            .filter_map(|role| self.roles.get(role))
            .flatten()
            .cloned()
            .collect()
    }

    /// The scopes of one role as configured, if the role is in the table.
    pub fn role(&self, role: &str) -> Option<&BTreeSet<String>> {
        self.roles.get(role)
    }
}

/// bluesky-httpserver's role name pattern `^[a-zA-Z_][0-9a-zA-Z_]*$`.
pub fn is_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(scopes: &[&str]) -> Option<Vec<String>> {
        Some(scopes.iter().map(|scope| scope.to_string()).collect())
    }

    fn scopes(table: &RoleScopeTable, role: &str) -> Vec<String> {
        table
            .role(role)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn set_then_add_then_remove() {
        let mut table = RoleScopeTable::empty();
        let edit = ScopeEdit {
            scopes_set: list(&["a:x", "b:y"]),
            scopes_add: list(&["C:Z"]),
            scopes_remove: list(&["B:Y"]),
        };
        table.apply_edit("role", &edit).expect("valid");
        assert_eq!(scopes(&table, "role"), ["a:x", "c:z"]);
    }

    #[test]
    fn add_and_remove_edit_the_defaults() {
        let mut table = RoleScopeTable::osam_defaults();
        let edit = ScopeEdit {
            scopes_add: list(&["extra:scope"]),
            scopes_remove: list(&["accounts:sync"]),
            ..Default::default()
        };
        table.apply_edit("rs_osam_update", &edit).expect("valid");
        let updated = scopes(&table, "rs_osam_update");
        assert!(updated.contains(&"extra:scope".to_string()));
        assert!(!updated.contains(&"accounts:sync".to_string()));
        assert!(updated.contains(&"rights:apply".to_string()));
    }

    #[test]
    fn revoke_all_empties_a_role() {
        let mut table = RoleScopeTable::osam_defaults();
        table
            .apply_edit("rs_osam_update", &ScopeEdit::revoke_all())
            .expect("valid");
        assert!(scopes(&table, "rs_osam_update").is_empty());
    }

    #[test]
    fn an_empty_edit_changes_nothing_but_declares_the_role() {
        let mut table = RoleScopeTable::osam_defaults();
        let before = scopes(&table, "rs_osam_read");
        table
            .apply_edit("rs_osam_read", &ScopeEdit::default())
            .expect("valid");
        table
            .apply_edit("new_role", &ScopeEdit::default())
            .expect("valid");
        assert_eq!(scopes(&table, "rs_osam_read"), before);
        assert_eq!(table.role("new_role"), Some(&BTreeSet::new()));
    }

    #[test]
    fn user_scopes_are_the_union_plus_the_implicit_role() {
        let table = RoleScopeTable::osam_defaults();
        let union = table.scopes_for(["rs_osam_impersonate", "unknown_role"]);
        assert_eq!(
            union.into_iter().collect::<Vec<_>>(),
            ["catalog:check", "users:impersonate"]
        );
    }

    #[test]
    fn invalid_names_and_scopes_are_rejected() {
        let mut table = RoleScopeTable::empty();
        assert_eq!(
            table.apply_edit("9role", &ScopeEdit::default()),
            Err(ScopeError::InvalidRoleName("9role".into()))
        );
        let edit = ScopeEdit {
            scopes_add: list(&["read-all"]),
            ..Default::default()
        };
        assert!(matches!(
            table.apply_edit("role", &edit),
            Err(ScopeError::InvalidScope { .. })
        ));
        assert_eq!(table.role("role"), None, "a rejected edit changes nothing");
    }

    #[test]
    fn scope_lists_accept_a_string_a_list_or_null() {
        let edit: ScopeEdit =
            serde_yaml_ng::from_str("scopes_set: A:B\nscopes_add: [c:d]\nscopes_remove: null\n")
                .expect("valid yaml");
        assert_eq!(edit.scopes_set, list(&["A:B"]));
        assert_eq!(edit.scopes_add, list(&["c:d"]));
        assert_eq!(edit.scopes_remove, Some(vec![]));
        let absent: ScopeEdit = serde_yaml_ng::from_str("scopes_add: x\n").expect("valid yaml");
        assert_eq!(absent.scopes_set, None);
    }
}

//! The static directory file: bluesky-httpserver's `DictionaryAPIAccessControl` `args` (`users:`
//! and `roles:`), with the same validation and normalisation, plus a `groups` list per user.
//!
//! Validation follows bluesky-httpserver: unknown keys are rejected; usernames match
//! `^[0-9a-zA-Z_]+$`; `roles` is a string, a list or null; `displayed_name` is a non-empty line;
//! `email` matches `^.+@.+$`; role names matching `^[a-zA-Z_][0-9a-zA-Z_]*$` are lower-cased.
//! One extension: catalog roles (`rs_catalog_<owner>:<collection>_<action>`) are accepted and kept
//! verbatim, because catalog matching is case-sensitive.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::catalog_role::CatalogRole;
use crate::directory::DirectoryUser;
use crate::group_path::{GroupPath, GroupPathError};
use crate::scopes::{RoleScopeTable, ScopeEdit, ScopeError, is_role_name};

/// Why a static directory file is invalid. Each variant names the user or role concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaticDirectoryError {
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("username {0:?} does not match ^[0-9a-zA-Z_]+$")]
    InvalidUsername(String),
    #[error(
        "user {user:?}: role {role:?} is neither a plain role (^[a-zA-Z_][0-9a-zA-Z_]*$) nor a catalog role \
         (rs_catalog_<owner>:<collection>_<read|write|download>)"
    )]
    InvalidRole { user: String, role: String },
    #[error("user {user:?}: displayed_name must be a non-empty single line")]
    InvalidDisplayedName { user: String },
    #[error("user {user:?}: email {email:?} does not match ^.+@.+$")]
    InvalidEmail { user: String, email: String },
    #[error("user {user:?}: {source}")]
    InvalidGroup { user: String, source: GroupPathError },
    #[error("roles: {0}")]
    InvalidRoleEdit(#[from] ScopeError),
}

/// The parsed file: users by name, and the edits of the role → scope table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticDirectory {
    users: BTreeMap<String, DirectoryUser>,
    role_edits: BTreeMap<String, ScopeEdit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    users: Option<BTreeMap<String, Option<RawUser>>>,
    #[serde(default)]
    roles: Option<BTreeMap<String, Option<ScopeEdit>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUser {
    #[serde(default)]
    roles: Option<OneOrMany>,
    #[serde(default)]
    displayed_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl StaticDirectory {
    /// Parses and validates the YAML text of a static directory file.
    pub fn parse(yaml: &str) -> Result<StaticDirectory, StaticDirectoryError> {
        // An empty file is an empty directory, as `args: {}` is in bluesky-httpserver.
        let raw: Option<RawFile> =
            serde_yaml_ng::from_str(yaml).map_err(|error| StaticDirectoryError::Yaml(error.to_string()))?;
        let raw = raw.unwrap_or(RawFile {
            users: None,
            roles: None,
        });

        let role_edits: BTreeMap<String, ScopeEdit> = raw
            .roles
            .unwrap_or_default()
            .into_iter()
            .map(|(role, edit)| (role, edit.unwrap_or_else(ScopeEdit::revoke_all)))
            .collect();
        // Validate the edits now so that a bad file is rejected as a whole at load time.
        RoleScopeTable::empty().apply_edits(&role_edits)?;

        let users = raw
            .users
            .unwrap_or_default()
            .into_iter()
            .map(|(username, user)| {
                let user = parse_user(username.clone(), user.unwrap_or_default())?;
                Ok((username, user))
            })
            .collect::<Result<_, StaticDirectoryError>>()?;
        Ok(StaticDirectory { users, role_edits })
    }

    /// The user with this exact username.
    pub fn user(&self, username: &str) -> Option<&DirectoryUser> {
        self.users.get(username)
    }

    /// Every user, sorted by username.
    pub fn users(&self) -> impl Iterator<Item = &DirectoryUser> {
        self.users.values()
    }

    /// The `roles:` edits of the role → scope table, by role name.
    pub fn role_edits(&self) -> &BTreeMap<String, ScopeEdit> {
        &self.role_edits
    }
}

fn parse_user(username: String, raw: RawUser) -> Result<DirectoryUser, StaticDirectoryError> {
    if username.is_empty() || !username.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StaticDirectoryError::InvalidUsername(username));
    }
    let roles = match raw.roles {
        None => Vec::new(),
        Some(OneOrMany::One(role)) => vec![role],
        Some(OneOrMany::Many(roles)) => roles,
    };
    let roles = roles
        .into_iter()
        .map(|role| normalise_role(&username, role))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(name) = &raw.displayed_name
        && (name.is_empty() || name.contains('\n'))
    {
        return Err(StaticDirectoryError::InvalidDisplayedName { user: username });
    }
    if let Some(email) = &raw.email
        && !is_email(email)
    {
        return Err(StaticDirectoryError::InvalidEmail {
            user: username,
            email: email.clone(),
        });
    }
    let groups = raw
        .groups
        .unwrap_or_default()
        .iter()
        .map(|group| GroupPath::parse(group))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| StaticDirectoryError::InvalidGroup {
            user: username.clone(),
            source,
        })?;
    Ok(DirectoryUser {
        username,
        roles,
        groups,
        name: raw.displayed_name,
        email: raw.email,
        attributes: Default::default(),
    })
}

/// Plain roles are lower-cased like bluesky-httpserver; catalog roles are kept as written.
fn normalise_role(username: &str, role: String) -> Result<String, StaticDirectoryError> {
    if is_role_name(&role) {
        Ok(role.to_lowercase())
    } else if CatalogRole::parse(&role).is_some() && !role.ends_with('\n') {
        Ok(role)
    } else {
        Err(StaticDirectoryError::InvalidRole {
            user: username.to_owned(),
            role,
        })
    }
}

/// `^.+@.+$` with Python's `.`: some `@` with a character on each side, no newline.
fn is_email(email: &str) -> bool {
    !email.contains('\n')
        && email
            .char_indices()
            .any(|(at, c)| c == '@' && at > 0 && at + 1 < email.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
users:
  bob:
    roles:
      - Admin
      - rs_catalog_toto:S1_L1_read
    email: bob@example.org
    groups: [/institutions/esa/ops]
  jdoe:
    roles: advanced
    displayed_name: Doe, John
  nobody:
  empty:
    roles: null
roles:
  advanced:
    scopes_add: Read:Status
  user:
"#;

    #[test]
    fn parses_the_bluesky_format_with_groups() {
        let directory = StaticDirectory::parse(EXAMPLE).expect("valid");
        let bob = directory.user("bob").expect("bob");
        assert_eq!(bob.roles, ["admin", "rs_catalog_toto:S1_L1_read"]);
        assert_eq!(bob.email.as_deref(), Some("bob@example.org"));
        assert_eq!(bob.groups[0].as_str(), "/institutions/esa/ops");
        assert_eq!(directory.user("jdoe").expect("jdoe").roles, ["advanced"]);
        assert!(directory.user("nobody").expect("nobody").roles.is_empty());
        assert!(directory.user("empty").expect("empty").roles.is_empty());
        assert_eq!(directory.role_edits()["user"], ScopeEdit::revoke_all());
        assert_eq!(directory.users().count(), 4);
    }

    #[test]
    fn empty_and_null_files_are_empty_directories() {
        assert_eq!(
            StaticDirectory::parse("").expect("valid"),
            StaticDirectory::default()
        );
        assert_eq!(
            StaticDirectory::parse("users: null\n").expect("valid"),
            StaticDirectory::default()
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = StaticDirectory::parse("users:\n  bob:\n    mail: b@x.org\n").unwrap_err();
        assert!(error.to_string().contains("unknown field `mail`"), "{error}");
        assert!(StaticDirectory::parse("policy: x\n").is_err());
    }

    #[test]
    fn patterns_are_enforced_and_named() {
        let cases = [
            ("users:\n  bad-name: {}\n", "bad-name"),
            ("users:\n  bob:\n    roles: [ops-team]\n", "ops-team"),
            (
                "users:\n  bob:\n    roles: [\"rs_catalog_x:y\"]\n",
                "rs_catalog_x:y",
            ),
            ("users:\n  bob:\n    email: bob\n", "bob"),
            ("users:\n  bob:\n    displayed_name: ''\n", "displayed_name"),
            ("users:\n  bob:\n    groups: [esa]\n", "esa"),
            ("roles:\n  bad-role: {}\n", "bad-role"),
            ("roles:\n  r:\n    scopes_add: [a b]\n", "a b"),
        ];
        for (yaml, named) in cases {
            let error = StaticDirectory::parse(yaml).expect_err(yaml).to_string();
            assert!(error.contains(named), "{error:?} should name {named:?}");
        }
    }

    #[test]
    fn emails_need_text_on_both_sides_of_an_at() {
        assert!(is_email("a@b"));
        assert!(is_email("a@@b"));
        assert!(!is_email("@b"));
        assert!(!is_email("a@"));
        assert!(!is_email("a@b\n"));
    }
}

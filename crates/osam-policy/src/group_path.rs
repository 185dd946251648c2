//! Keycloak group paths such as `/institutions/esa/ops`, and the containment rule of the group
//! hierarchy: a group contains its subgroups, compared segment by segment.

use std::fmt;

/// Why a string is not a group path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupPathError {
    #[error("group path {0:?} must start with '/'")]
    NotAbsolute(String),
    #[error("group path {0:?} has an empty segment")]
    EmptySegment(String),
}

/// An absolute group path with non-empty segments (`/a/b`). A single trailing `/` is accepted and
/// dropped, so `/a/` and `/a` are the same group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupPath(String);

impl GroupPath {
    /// Parses a group path, naming the bad input on error.
    pub fn parse(path: &str) -> Result<GroupPath, GroupPathError> {
        let Some(relative) = path.strip_prefix('/') else {
            return Err(GroupPathError::NotAbsolute(path.to_owned()));
        };
        let relative = relative.strip_suffix('/').unwrap_or(relative);
        if relative.is_empty() || relative.split('/').any(str::is_empty) {
            return Err(GroupPathError::EmptySegment(path.to_owned()));
        }
        Ok(GroupPath(format!("/{relative}")))
    }

    /// The rule: `self` contains `other` when they are the same group or `other` is a subgroup of
    /// `self`. Separator-aware: `/a` contains `/a/b` but not `/ab`.
    pub fn contains(&self, other: &GroupPath) -> bool {
        match other.0.strip_prefix(self.0.as_str()) {
            Some("") => true,
            Some(rest) => rest.starts_with('/'),
            None => false,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> GroupPath {
        GroupPath::parse(text).expect("valid path")
    }

    #[test]
    fn a_group_contains_itself_and_its_subgroups() {
        assert!(path("/a").contains(&path("/a")));
        assert!(path("/a").contains(&path("/a/b")));
        assert!(path("/a").contains(&path("/a/b/c")));
        assert!(path("/a/b").contains(&path("/a/b/c")));
    }

    #[test]
    fn containment_is_separator_aware() {
        assert!(!path("/a").contains(&path("/ab")));
        assert!(!path("/a/b").contains(&path("/a/bc/d")));
    }

    #[test]
    fn a_subgroup_does_not_contain_its_parent() {
        assert!(!path("/a/b").contains(&path("/a")));
        assert!(!path("/a/b").contains(&path("/a/c")));
    }

    #[test]
    fn trailing_slash_is_normalised() {
        assert_eq!(path("/a/b/"), path("/a/b"));
    }

    #[test]
    fn malformed_paths_are_rejected_with_the_input() {
        assert_eq!(
            GroupPath::parse("a/b"),
            Err(GroupPathError::NotAbsolute("a/b".into()))
        );
        for bad in ["/", "//a", "/a//b", ""] {
            assert!(GroupPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            GroupPath::parse("/a//b")
                .unwrap_err()
                .to_string()
                .contains("/a//b")
        );
    }
}

//! Catalog roles: `rs_catalog_<owner>:<collection>_<action>`.
//!
//! The parse is exactly the reference catalog's regular expression
//! `rs_catalog_(?P<owner>.*(?=:)):(?P<collection>.+)_(?P<action>read|write|download)(?=$)` applied
//! with Python's `re.match`: anchored at the start, `.` never matching a newline, the owner greedy
//! up to the last `:` that leaves a non-empty collection, the collection greedy up to the final
//! `_<action>`, and `$` also matching just before one final newline.

use crate::action::CatalogAction;

const ROLE_PREFIX: &str = "rs_catalog_";

/// The owner or collection part of a catalog role: `*` matches any value, anything else only
/// itself (there are no partial globs: `S1_*` is the literal collection `S1_*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RolePattern {
    Any,
    Exact(String),
}

impl RolePattern {
    fn from_role_part(part: &str) -> RolePattern {
        if part == "*" {
            RolePattern::Any
        } else {
            RolePattern::Exact(part.to_owned())
        }
    }

    /// Whether `value` is covered by this pattern.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            RolePattern::Any => true,
            RolePattern::Exact(expected) => expected == value,
        }
    }

    /// The pattern as written in the role (`*` for any).
    pub fn as_str(&self) -> &str {
        match self {
            RolePattern::Any => "*",
            RolePattern::Exact(value) => value,
        }
    }
}

/// A parsed catalog role: the action it grants on the collections it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CatalogRole {
    pub owner: RolePattern,
    pub collection: RolePattern,
    pub action: CatalogAction,
}

impl CatalogRole {
    /// Parses a role the way the reference catalog does; `None` for roles that are not catalog
    /// roles (they are ignored by catalog decisions, never an error).
    pub fn parse(role: &str) -> Option<CatalogRole> {
        let body = role.strip_prefix(ROLE_PREFIX)?;
        // Python's `$` also matches before a single trailing newline.
        let body = body.strip_suffix('\n').unwrap_or(body);
        // `.` does not match a newline, so no part may contain one.
        if body.contains('\n') {
            return None;
        }
        let (owner_and_collection, action) = split_action_suffix(body)?;
        let (owner, collection) = split_owner(owner_and_collection)?;
        Some(CatalogRole {
            owner: RolePattern::from_role_part(owner),
            collection: RolePattern::from_role_part(collection),
            action,
        })
    }
}

/// Splits `<rest>_<action>` at the final underscore-action suffix.
fn split_action_suffix(body: &str) -> Option<(&str, CatalogAction)> {
    let (rest, action_name) = body.rsplit_once('_')?;
    let action = CatalogAction::from_role_suffix(action_name)?;
    Some((rest, action))
}

/// Splits `<owner>:<collection>` at the last `:` that leaves a non-empty collection, as the
/// greedy `.*(?=:)` followed by `:(.+)` does.
fn split_owner(owner_and_collection: &str) -> Option<(&str, &str)> {
    let mut search_end = owner_and_collection.len();
    while let Some(colon) = owner_and_collection[..search_end].rfind(':') {
        let collection = &owner_and_collection[colon + 1..];
        if !collection.is_empty() {
            return Some((&owner_and_collection[..colon], collection));
        }
        search_end = colon;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(role: &str) -> Option<(String, String, CatalogAction)> {
        CatalogRole::parse(role).map(|parsed| {
            (
                parsed.owner.as_str().to_owned(),
                parsed.collection.as_str().to_owned(),
                parsed.action,
            )
        })
    }

    fn expect(
        owner: &str,
        collection: &str,
        action: CatalogAction,
    ) -> Option<(String, String, CatalogAction)> {
        Some((owner.to_owned(), collection.to_owned(), action))
    }

    #[test]
    fn greedy_owner_takes_the_last_colon() {
        assert_eq!(
            parts("rs_catalog_a:b:c_read"),
            expect("a:b", "c", CatalogAction::Read)
        );
    }

    #[test]
    fn greedy_collection_keeps_inner_action_words() {
        assert_eq!(
            parts("rs_catalog_o:x_read_read"),
            expect("o", "x_read", CatalogAction::Read)
        );
        assert_eq!(
            parts("rs_catalog_o:x_read_write"),
            expect("o", "x_read", CatalogAction::Write)
        );
    }

    #[test]
    fn empty_owner_is_allowed_but_empty_collection_is_not() {
        assert_eq!(
            parts("rs_catalog_:s1_read"),
            expect("", "s1", CatalogAction::Read)
        );
        assert_eq!(parts("rs_catalog_o:_read"), None);
    }

    #[test]
    fn a_trailing_colon_moves_the_owner_split_left() {
        // `.+` may contain a colon: the last colon leaves nothing, the one before leaves `b:`.
        assert_eq!(
            parts("rs_catalog_a:b:_read"),
            expect("a", "b:", CatalogAction::Read)
        );
    }

    #[test]
    fn wildcards_are_whole_values_only() {
        let role = CatalogRole::parse("rs_catalog_*:S1_*_read").expect("parses");
        assert_eq!(role.owner, RolePattern::Any);
        assert_eq!(role.collection, RolePattern::Exact("S1_*".to_owned()));
    }

    #[test]
    fn non_catalog_roles_do_not_parse() {
        for role in [
            "admin",
            "rs_catalog_x",
            "rs_catalog_bob:s1_delete",
            "rs_catalog_bob:s1_READ",
            "xrs_catalog_bob:s1_read",
            "rs_catalog_bob:s1_read ",
            "rs_catalog_bobs1_read",
            "rs_catalog_bob:s1_read\n\n",
            "rs_catalog_b\nob:s1_read",
        ] {
            assert_eq!(CatalogRole::parse(role), None, "{role:?}");
        }
    }

    #[test]
    fn one_trailing_newline_matches_like_python_dollar() {
        assert_eq!(
            parts("rs_catalog_bob:s1_read\n"),
            expect("bob", "s1", CatalogAction::Read)
        );
    }

    #[test]
    fn role_patterns_match_whole_values() {
        assert!(RolePattern::Any.matches("anything"));
        assert!(RolePattern::Exact("a".into()).matches("a"));
        assert!(!RolePattern::Exact("a".into()).matches("A"));
    }
}

//! Property tests over large input spaces: the role parser against the reference regular
//! expression itself, and the indexed decision against the reference's naive algorithm.

use osam_policy::{CatalogAction, CatalogPolicy, CatalogRequest, CatalogRole, Principal, RoleScopeTable};
use proptest::prelude::*;
use regex::Regex;

/// The reference pattern, with Python's `.*(?=:):` written as the equivalent `.*:`. Rust's `$`
/// does not match before a final newline as Python's does, so the oracle strips one first.
fn reference_parse(pattern: &Regex, role: &str) -> Option<(String, String, String)> {
    let role = role.strip_suffix('\n').unwrap_or(role);
    let captures = pattern.captures(role)?;
    Some((
        captures[1].to_owned(),
        captures[2].to_owned(),
        captures[3].to_owned(),
    ))
}

/// Strings built from the characters that matter to the grammar, often with the role prefix.
fn role_like() -> impl Strategy<Value = String> {
    let body = proptest::collection::vec(
        prop_oneof![
            Just(":".to_owned()),
            Just("_".to_owned()),
            Just("*".to_owned()),
            Just("\n".to_owned()),
            Just("_read".to_owned()),
            Just("_write".to_owned()),
            Just("_download".to_owned()),
            Just("_READ".to_owned()),
            "[a-c]{1,3}",
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat());
    (prop::bool::weighted(0.9), body).prop_map(|(prefixed, body)| {
        if prefixed {
            format!("rs_catalog_{body}")
        } else {
            body
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_parser_agrees_with_the_reference_regex(role in role_like()) {
        let pattern = Regex::new(r"^rs_catalog_(.*):(.+)_(read|write|download)$").expect("pattern");
        let ours = CatalogRole::parse(&role).map(|parsed| {
            (parsed.owner.as_str().to_owned(), parsed.collection.as_str().to_owned(), parsed.action.as_str().to_owned())
        });
        prop_assert_eq!(ours, reference_parse(&pattern, &role), "role {:?}", role);
    }
}

const OWNERS: [&str; 4] = ["o", "p", "o_p", "*"];
const COLLECTIONS: [&str; 5] = ["a", "b", "o_a", "p_b", "*"];

fn catalog_roles() -> impl Strategy<Value = Vec<String>> {
    let role = (0..OWNERS.len(), 0..COLLECTIONS.len(), 0..3usize).prop_map(|(owner, collection, action)| {
        format!(
            "rs_catalog_{}:{}_{}",
            OWNERS[owner],
            COLLECTIONS[collection],
            CatalogAction::ALL[action].as_str()
        )
    });
    proptest::collection::vec(role, 0..12)
}

/// The reference catalog's algorithm, role by role for each collection.
fn naive_decide(
    user: &str,
    roles: &[String],
    owner: &str,
    collections: &[String],
    action: CatalogAction,
    owner_prefix: bool,
) -> bool {
    if user == owner {
        return true;
    }
    let parsed: Vec<CatalogRole> = roles.iter().filter_map(|role| CatalogRole::parse(role)).collect();
    collections.iter().all(|collection| {
        let prefix = format!("{owner}_");
        let collection = if owner_prefix {
            collection.strip_prefix(&prefix).unwrap_or(collection)
        } else {
            collection
        };
        parsed.iter().any(|role| {
            role.action == action && role.owner.matches(owner) && role.collection.matches(collection)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_indexed_decision_equals_the_naive_one(
        roles in catalog_roles(),
        user in prop::sample::select(vec!["u", "o", "p"]),
        owner in prop::sample::select(vec!["o", "p", "o_p", "q"]),
        collections in proptest::collection::vec(prop::sample::select(vec!["a", "b", "o_a", "p_b", "o_o_a", "c"]), 0..4),
        action in prop::sample::select(CatalogAction::ALL.to_vec()),
        owner_prefix in any::<bool>(),
    ) {
        let collections: Vec<String> = collections.into_iter().map(str::to_owned).collect();
        let principal = Principal::new(user, roles.clone(), [], &RoleScopeTable::empty());
        let request = CatalogRequest { owner, collections: &collections, action, owner_prefix, resource: None };
        let expected = naive_decide(user, &roles, owner, &collections, action, owner_prefix);
        let policy = CatalogPolicy::default();
        prop_assert_eq!(policy.decide(&principal, &request, false).allowed, expected);
        let explained = policy.decide(&principal, &request, true);
        prop_assert_eq!(explained.allowed, expected);
        prop_assert_eq!(explained.collections.len(), collections.len());
    }
}

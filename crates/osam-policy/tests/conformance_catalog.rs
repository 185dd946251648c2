//! Runs every vector of `shared/conformance/catalog.yaml` (read in place, never copied) through
//! the catalog decision, with and without explanations.

use std::path::PathBuf;

use osam_policy::{CatalogAction, CatalogPolicy, CatalogRequest, Principal, RoleScopeTable};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    user: String,
    roles: Vec<String>,
    owner: String,
    collections: Vec<String>,
    action: String,
    owner_prefix: bool,
    allowed: bool,
}

/// `shared/` sits beside the repository; `OSAM_CONFORMANCE_DIR` points elsewhere when needed.
fn conformance_file(name: &str) -> PathBuf {
    let directory = std::env::var_os("OSAM_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"));
    directory.join(name)
}

#[test]
fn every_catalog_vector_passes() {
    let path = conformance_file("catalog.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let vectors: Vectors = serde_yaml_ng::from_str(&text).expect("catalog.yaml parses");
    assert!(
        vectors.cases.len() >= 30,
        "expected the full vector set, found {}",
        vectors.cases.len()
    );

    let policy = CatalogPolicy::default();
    let scope_table = RoleScopeTable::osam_defaults();
    let mut failures = Vec::new();
    for case in &vectors.cases {
        let action = CatalogAction::from_role_suffix(&case.action).expect("known action");
        let principal = Principal::new(case.user.clone(), case.roles.clone(), [], &scope_table);
        let request = CatalogRequest {
            owner: &case.owner,
            collections: &case.collections,
            action,
            owner_prefix: case.owner_prefix,
            resource: None,
        };
        let quick = policy.decide(&principal, &request, false);
        let explained = policy.decide(&principal, &request, true);
        if quick.allowed != case.allowed || explained.allowed != case.allowed {
            failures.push(format!(
                "{}: expected {}, got {}/{}",
                case.name, case.allowed, quick.allowed, explained.allowed
            ));
        }
        assert_eq!(
            explained.collections.len(),
            case.collections.len(),
            "{}",
            case.name
        );
        let every_collection_allowed = explained.collections.iter().all(|decision| decision.allowed);
        assert_eq!(
            every_collection_allowed, explained.allowed,
            "{}: reasons agree with the verdict",
            case.name
        );
    }
    assert!(failures.is_empty(), "failing vectors:\n{}", failures.join("\n"));
}

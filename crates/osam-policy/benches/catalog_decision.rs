//! The catalog decision in process: a subject with 200 catalog roles checking 10 collections, with
//! the grant index against a naive baseline that re-parses every role string on every call (as the
//! reference catalog does). Both answer the same question; the bench asserts they agree.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use osam_policy::{CatalogAction, CatalogPolicy, CatalogRequest, CatalogRole, Principal, RoleScopeTable};

const OWNER: &str = "owner7";

fn roles() -> Vec<String> {
    // 20 owners × 10 collections, spread over the three actions; owner7 has read on its 10.
    (0..200)
        .map(|i| {
            let action = ["read", "write", "download"][i % 3];
            let action = if i / 10 == 7 { "read" } else { action };
            format!("rs_catalog_owner{}:collection_{}_{}", i / 10, i % 10, action)
        })
        .collect()
}

fn requested_collections() -> Vec<String> {
    (0..10).map(|i| format!("collection_{i}")).collect()
}

/// The reference algorithm: parse every role, then scan them for each collection.
fn naive_decide(
    username: &str,
    roles: &[String],
    owner: &str,
    collections: &[String],
    action: CatalogAction,
) -> bool {
    if username == owner {
        return true;
    }
    let parsed: Vec<CatalogRole> = roles.iter().filter_map(|role| CatalogRole::parse(role)).collect();
    collections.iter().all(|collection| {
        parsed.iter().any(|role| {
            role.action == action && role.owner.matches(owner) && role.collection.matches(collection)
        })
    })
}

fn bench_decisions(criterion: &mut Criterion) {
    let roles = roles();
    let collections = requested_collections();
    let principal = Principal::new("alice", roles.clone(), [], &RoleScopeTable::osam_defaults());
    let policy = CatalogPolicy::default();
    let request = CatalogRequest {
        owner: OWNER,
        collections: &collections,
        action: CatalogAction::Read,
        owner_prefix: false,
        resource: None,
    };
    assert!(policy.decide(&principal, &request, false).allowed);
    assert!(naive_decide(
        "alice",
        &roles,
        OWNER,
        &collections,
        CatalogAction::Read
    ));

    let mut group = criterion.benchmark_group("decision_200_roles_10_collections");
    group.bench_function("indexed", |bencher| {
        bencher.iter(|| {
            policy
                .decide(black_box(&principal), black_box(&request), false)
                .allowed
        })
    });
    group.bench_function("indexed_explained", |bencher| {
        bencher.iter(|| {
            policy
                .decide(black_box(&principal), black_box(&request), true)
                .allowed
        })
    });
    group.bench_function("naive_reparse", |bencher| {
        bencher.iter(|| {
            naive_decide(
                black_box("alice"),
                black_box(&roles),
                OWNER,
                black_box(&collections),
                CatalogAction::Read,
            )
        })
    });
    group.finish();

    criterion.bench_function("index_build_200_roles", |bencher| {
        bencher.iter(|| {
            Principal::new(
                "alice",
                black_box(roles.clone()),
                [],
                &RoleScopeTable::osam_defaults(),
            )
        })
    });
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);

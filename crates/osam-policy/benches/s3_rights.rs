//! S3 rights and the policy document for a user with 100 catalog roles against a 1,000-row bucket
//! configuration: the work of one GetUserRights call (target: under 1 ms).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use osam_policy::{BucketConfig, PolicyDocument, RightsLevel, S3Rights};

/// 1,000 rules: a catch-all, a few owner-wide and collection-wide rules, and rules for 100 owners
/// × 25 collections spread over 50 buckets and three product types.
fn configuration() -> String {
    let mut lines = vec!["*,*,*,30,catch-all-bucket".to_owned()];
    for owner in 0..5 {
        lines.push(format!("owner{owner}, *, *, 30, owner-bucket-{owner}"));
    }
    for collection in 0..5 {
        lines.push(format!(
            "*, collection{collection}, *, 30, collection-bucket-{collection}"
        ));
    }
    let mut row = 0usize;
    while lines.len() < 1000 {
        let product_type = ["*", "type-a", "type-b"][row % 3];
        lines.push(format!(
            "owner{}, collection{}, {product_type}, {}, bucket-{}",
            row % 100,
            (row / 100) % 25,
            row % 365,
            row % 50
        ));
        row += 1;
    }
    lines.join("\n")
}

/// 100 roles: mostly exact owner and collection, some collection globs, a few whole wildcards.
fn roles() -> Vec<String> {
    (0..100)
        .map(|index| {
            let action = ["read", "download", "write"][index % 3];
            let owner = if index % 25 == 0 {
                "*".to_owned()
            } else {
                format!("owner{}", index % 40)
            };
            let collection = match index % 10 {
                0 => "*".to_owned(),
                1 => format!("collection{}*", index % 3),
                _ => format!("collection{}", index % 25),
            };
            format!("rs_catalog_{owner}:{collection}_{action}")
        })
        .collect()
}

fn bench_rights_and_policy(criterion: &mut Criterion) {
    let config = BucketConfig::parse(&configuration()).expect("valid configuration");
    assert_eq!(config.rules().len(), 1000);
    let roles = roles();
    let rights = S3Rights::compute("alice", roles.iter().map(String::as_str), &config);
    let paths: usize = RightsLevel::ALL
        .iter()
        .map(|level| rights.level(*level).len())
        .sum();
    let json = PolicyDocument::for_rights(&rights).to_json().expect("serialises");
    eprintln!("{paths} rights paths, policy of {} bytes", json.len());

    criterion.bench_function("rights + policy JSON, 100 roles × 1,000 rules", |bencher| {
        bencher.iter(|| {
            let rights = S3Rights::compute(
                black_box("alice"),
                roles.iter().map(String::as_str),
                black_box(&config),
            );
            PolicyDocument::for_rights(&rights).to_json().expect("serialises")
        })
    });
    criterion.bench_function("policy document from the rights, with JSON", |bencher| {
        bencher.iter(|| {
            PolicyDocument::for_rights(black_box(&rights))
                .to_json()
                .expect("serialises")
        })
    });
    let document = PolicyDocument::for_rights(&rights);
    criterion.bench_function("JSON only", |bencher| {
        bencher.iter(|| black_box(&document).to_json().expect("serialises"))
    });
    criterion.bench_function("rights lists only", |bencher| {
        bencher.iter(|| {
            S3Rights::compute(
                black_box("alice"),
                roles.iter().map(String::as_str),
                black_box(&config),
            )
        })
    });
}

criterion_group!(benches, bench_rights_and_policy);
criterion_main!(benches);

//! Runs every vector of `shared/conformance/s3-rights.yaml` (read in place, never copied) through
//! the S3 rights computation, and checks that each case also gives a well-formed policy document
//! that leaves out only paths of its lists.

use std::path::PathBuf;

use osam_policy::{BucketConfig, PolicyDocument, RightsLevel, S3Rights};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    bucket_config: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    user: String,
    roles: Vec<String>,
    read: Vec<String>,
    read_download: Vec<String>,
    write_download: Vec<String>,
}

impl Case {
    fn expected(&self, level: RightsLevel) -> &[String] {
        match level {
            RightsLevel::Read => &self.read,
            RightsLevel::ReadDownload => &self.read_download,
            RightsLevel::WriteDownload => &self.write_download,
        }
    }
}

/// `shared/` sits beside the repository; `OSAM_CONFORMANCE_DIR` points elsewhere when needed.
fn conformance_file(name: &str) -> PathBuf {
    let directory = std::env::var_os("OSAM_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"));
    directory.join(name)
}

fn vectors() -> Vectors {
    let path = conformance_file("s3-rights.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_yaml_ng::from_str(&text).expect("s3-rights.yaml parses")
}

#[test]
fn every_s3_rights_vector_passes() {
    let vectors = vectors();
    assert!(
        vectors.cases.len() >= 13,
        "expected the full vector set, found {}",
        vectors.cases.len()
    );
    let config = BucketConfig::parse(&vectors.bucket_config).expect("the vectors' configuration parses");

    let mut failures = Vec::new();
    for (index, case) in vectors.cases.iter().enumerate() {
        let rights = S3Rights::compute(&case.user, case.roles.iter().map(String::as_str), &config);
        for level in RightsLevel::ALL {
            let computed = rights.level_strings(level);
            if computed != case.expected(level) {
                failures.push(format!(
                    "case {index} ({} {:?}) {}: expected {:?}, got {computed:?}",
                    case.user,
                    case.roles,
                    level.as_str(),
                    case.expected(level)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "failing vectors:\n{}", failures.join("\n"));
}

#[test]
fn every_vector_gives_a_deterministic_policy_with_unique_sids() {
    let vectors = vectors();
    let config = BucketConfig::parse(&vectors.bucket_config).expect("the vectors' configuration parses");
    for case in &vectors.cases {
        let rights = S3Rights::compute(&case.user, case.roles.iter().map(String::as_str), &config);
        let reversed_roles = case.roles.iter().rev().map(String::as_str);
        let rights_again = S3Rights::compute(&case.user, reversed_roles, &config);
        let document = PolicyDocument::for_rights(&rights);
        let json = document.to_json().expect("serialises");
        let json_again = PolicyDocument::for_rights(&rights_again)
            .to_json()
            .expect("serialises");
        assert_eq!(json, json_again, "{} {:?}", case.user, case.roles);

        let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(value["Version"], "2012-10-17");
        let statements = value["Statement"].as_array().expect("a statement list");
        // Every vector user has the catch-all folder, so there is always something to grant.
        assert!(!statements.is_empty());
        let mut sids: Vec<&str> = statements
            .iter()
            .map(|statement| statement["Sid"].as_str().expect("a Sid"))
            .collect();
        assert!(
            sids.iter()
                .all(|sid| sid.chars().all(|c| c.is_ascii_alphanumeric()))
        );
        sids.sort_unstable();
        let count = sids.len();
        sids.dedup();
        assert_eq!(sids.len(), count, "duplicate Sid in {json}");

        // A path left out of the document (IAM cannot express it) is one of the case's paths at
        // that level, and never the user's own folder.
        let own_folder = format!("rspython-ops-catalog/{}/*/", case.user);
        for left_out in document.left_out() {
            assert!(
                case.expected(left_out.level())
                    .iter()
                    .any(|path| path == left_out.path()),
                "{} {:?}: {left_out} is not in the lists",
                case.user,
                case.roles
            );
            assert_ne!(left_out.path(), own_folder);
        }
    }
}

/// The vector with an owner `*` and a named collection: its read paths cannot be expressed in IAM
/// without granting more, so the document leaves every one of them out and reports it.
#[test]
fn the_owner_wildcard_vector_is_left_out_of_the_document() {
    let vectors = vectors();
    let config = BucketConfig::parse(&vectors.bucket_config).expect("the vectors' configuration parses");
    let case = vectors
        .cases
        .iter()
        .find(|case| case.roles == ["rs_catalog_*:s1-l1_read"])
        .expect("the vector of rs_catalog_*:s1-l1_read");
    let rights = S3Rights::compute(&case.user, case.roles.iter().map(String::as_str), &config);
    let document = PolicyDocument::for_rights(&rights);
    let left_out: Vec<(RightsLevel, &str)> = document
        .left_out()
        .iter()
        .map(|path| (path.level(), path.path()))
        .collect();
    let expected: Vec<(RightsLevel, &str)> = case
        .read
        .iter()
        .map(|path| (RightsLevel::Read, path.as_str()))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(left_out, expected);
    let json = document.to_json().expect("serialises");
    assert!(
        !json.contains("ReadObjects") && !json.contains("*/s1-l1"),
        "{json}"
    );
}

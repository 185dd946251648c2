//! Property tests of the S3 policy document against the rights lists it is built from, over random
//! catalog roles (globs included), bucket configurations and usernames:
//!
//! - soundness: every (bucket, key, action) the document grants, judged by an IAM-style matcher
//!   written here, is granted by a rights path of a level that has that action; judged with
//!   segment-aware wildcards, it is granted too unless the path is one the module documents as
//!   inexact in IAM (`object_arn_is_exact` is false);
//! - completeness: every key a rights path grants (segment-aware) is granted by the document;
//! - listing: every `s3:prefix` the document allows stays inside a path of that bucket;
//! - determinism and Sids: the same rights in another role order give byte-identical JSON, and
//!   Sids are unique and alphanumeric.

use osam_policy::policy_document::object_arn_is_exact;
use osam_policy::{BucketConfig, PathSegment, PolicyDocument, RightsLevel, RightsPath, S3Rights};
use proptest::prelude::*;
use regex::Regex;

const ROLE_OWNERS: [&str; 7] = ["paul", "pauline", "copernicus", "*", "p*", "pa?l", "cop*"];
const ROLE_COLLECTIONS: [&str; 7] = ["s1-l1", "s1-aux", "s1-*", "*", "s1-l?", "*-l1", "s2"];
const ACTIONS: [&str; 3] = ["read", "download", "write"];
const RULE_OWNERS: [&str; 5] = ["*", "paul", "pauline", "copernicus", "emilie"];
const RULE_COLLECTIONS: [&str; 5] = ["*", "s1-l1", "s1-aux", "s1-auxx", "s2"];
const PRODUCT_TYPES: [&str; 2] = ["*", "x"];
const BUCKETS: [&str; 3] = ["bkt-a", "bkt-b", "bkt-c"];
const USERNAMES: [&str; 5] = ["bob", "paul", "st*r", "a$b", "q?x"];
/// Key segments: owners, collections, usernames, and near misses of each.
const KEY_SEGMENTS: [&str; 17] = [
    "paul",
    "pauline",
    "pal",
    "copernicus",
    "emilie",
    "bob",
    "st*r",
    "stir",
    "a$b",
    "q?x",
    "s1-l1",
    "s1-aux",
    "s1-auxx",
    "s1-",
    "s2",
    "x-l1",
    "",
];

/// The object actions of each level in the reference (rs-server), written out independently.
fn levels_with_action(action: &str) -> &'static [RightsLevel] {
    match action {
        "s3:ListMultipartUploadParts" => &[
            RightsLevel::Read,
            RightsLevel::ReadDownload,
            RightsLevel::WriteDownload,
        ],
        "s3:GetObject" => &[RightsLevel::ReadDownload, RightsLevel::WriteDownload],
        "s3:PutObject" | "s3:DeleteObject" | "s3:AbortMultipartUpload" => &[RightsLevel::WriteDownload],
        _ => &[],
    }
}
const OBJECT_ACTIONS: [&str; 5] = [
    "s3:ListMultipartUploadParts",
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
];

/// IAM matching of a resource or `StringLike` pattern: `*` any run (including `/`), `?` one
/// character, `${*}` `${?}` `${$}` the literal characters, everything else itself.
fn iam_regex(pattern: &str) -> Regex {
    let mut regex = String::from("(?s)^");
    let mut rest = pattern;
    while let Some(character) = rest.chars().next() {
        let escaped_literal = ["${*}", "${?}", "${$}"]
            .into_iter()
            .find(|escape| rest.starts_with(escape));
        if let Some(escape) = escaped_literal {
            regex.push_str(&regex::escape(&escape[2..3]));
            rest = &rest[escape.len()..];
            continue;
        }
        match character {
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            other => regex.push_str(&regex::escape(&other.to_string())),
        }
        rest = &rest[character.len_utf8()..];
    }
    regex.push('$');
    Regex::new(&regex).expect("a valid regex")
}

/// A segment as a regex fragment: a glob's `*`/`?` never cross `/` when `segment_aware`, and
/// cross it otherwise (IAM's reading); a literal is itself.
fn segment_regex(segment: &PathSegment, segment_aware: bool) -> String {
    match segment {
        PathSegment::Literal(text) => regex::escape(text),
        PathSegment::Glob(text) => text
            .chars()
            .map(|character| match (character, segment_aware) {
                ('*', true) => "[^/]*".to_owned(),
                ('?', true) => "[^/]".to_owned(),
                ('*', false) => ".*".to_owned(),
                ('?', false) => ".".to_owned(),
                (other, _) => regex::escape(&other.to_string()),
            })
            .collect(),
    }
}

/// A rights path with its meaning compiled: the keys it grants start with `<owner>/<collection>/`,
/// read as globs whose wildcards stop at `/` (`exact`) or cross it as IAM's do (`loose`).
struct CompiledPath<'a> {
    path: &'a RightsPath,
    exact: Regex,
    loose: Regex,
    /// The collection folder itself or anything inside it, for `s3:prefix`.
    listing: Regex,
}

impl<'a> CompiledPath<'a> {
    fn new(path: &'a RightsPath) -> CompiledPath<'a> {
        let key_prefix = |segment_aware: bool| {
            let pattern = format!(
                "(?s)^{}/{}/",
                segment_regex(path.owner(), segment_aware),
                segment_regex(path.collection(), segment_aware)
            );
            Regex::new(&pattern).expect("a valid regex")
        };
        let listing = format!(
            "(?s)^{}/{}(/.*)?$",
            segment_regex(path.owner(), false),
            segment_regex(path.collection(), false)
        );
        CompiledPath {
            path,
            exact: key_prefix(true),
            loose: key_prefix(false),
            listing: Regex::new(&listing).expect("a valid regex"),
        }
    }
}

fn compiled_paths(rights: &S3Rights, level: RightsLevel) -> Vec<CompiledPath<'_>> {
    rights.level(level).iter().map(CompiledPath::new).collect()
}

struct CompiledStatement {
    actions: Vec<String>,
    resources: Vec<Regex>,
    prefixes: Vec<Regex>,
}

fn compile(document_json: &str) -> Vec<CompiledStatement> {
    let document: serde_json::Value = serde_json::from_str(document_json).expect("valid JSON");
    assert_eq!(document["Version"], "2012-10-17");
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().expect("a string").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    document["Statement"]
        .as_array()
        .expect("a statement list")
        .iter()
        .map(|statement| {
            assert_eq!(statement["Effect"], "Allow");
            CompiledStatement {
                actions: strings(&statement["Action"]),
                resources: strings(&statement["Resource"])
                    .iter()
                    .map(|r| iam_regex(r))
                    .collect(),
                prefixes: strings(&statement["Condition"]["StringLike"]["s3:prefix"])
                    .iter()
                    .map(|p| iam_regex(p))
                    .collect(),
            }
        })
        .collect()
}

fn document_grants(statements: &[CompiledStatement], action: &str, resource: &str) -> bool {
    statements.iter().any(|statement| {
        statement.actions.iter().any(|granted| granted == action)
            && statement
                .resources
                .iter()
                .any(|pattern| pattern.is_match(resource))
    })
}

fn document_allows_listing(statements: &[CompiledStatement], bucket: &str, prefix: &str) -> bool {
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    statements.iter().any(|statement| {
        statement.actions.iter().any(|granted| granted == "s3:ListBucket")
            && statement.resources.iter().any(|pattern| pattern.is_match(&bucket_arn))
            // The test server ignores conditions; here a ListBucket grant must carry one.
            && !statement.prefixes.is_empty()
            && statement.prefixes.iter().any(|pattern| pattern.is_match(prefix))
    })
}

fn roles() -> impl Strategy<Value = Vec<String>> {
    let role = (0..ROLE_OWNERS.len(), 0..ROLE_COLLECTIONS.len(), 0..ACTIONS.len()).prop_map(
        |(owner, collection, action)| {
            format!(
                "rs_catalog_{}:{}_{}",
                ROLE_OWNERS[owner], ROLE_COLLECTIONS[collection], ACTIONS[action]
            )
        },
    );
    proptest::collection::vec(
        prop_oneof![9 => role, 1 => Just("not_a_catalog_role".to_owned())],
        0..8,
    )
}

fn configuration() -> impl Strategy<Value = String> {
    let rule = (
        0..RULE_OWNERS.len(),
        0..RULE_COLLECTIONS.len(),
        0..PRODUCT_TYPES.len(),
        0..BUCKETS.len(),
    )
        .prop_map(|(owner, collection, product_type, bucket)| {
            format!(
                "{}, {}, {}, 30, {}",
                RULE_OWNERS[owner],
                RULE_COLLECTIONS[collection],
                PRODUCT_TYPES[product_type],
                BUCKETS[bucket]
            )
        });
    proptest::collection::vec(rule, 0..8).prop_map(|rules| rules.join("\n"))
}

/// Keys of one to five segments from the vocabulary, so that many land near granted paths.
fn keys() -> impl Strategy<Value = Vec<String>> {
    let key = proptest::collection::vec(proptest::sample::select(KEY_SEGMENTS.to_vec()), 1..6)
        .prop_map(|segments| segments.join("/"));
    proptest::collection::vec(key, 40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn the_document_grants_exactly_what_the_rights_lists_allow(
        roles in roles(),
        configuration in configuration(),
        username in proptest::sample::select(USERNAMES.to_vec()),
        keys in keys(),
    ) {
        let config = BucketConfig::parse(&configuration).expect("generated configurations are valid");
        let rights = S3Rights::compute(username, roles.iter().map(String::as_str), &config);
        let json = PolicyDocument::for_rights(&rights).to_json().expect("serialises");
        let statements = compile(&json);

        let by_level: Vec<(RightsLevel, Vec<CompiledPath>)> =
            RightsLevel::ALL.into_iter().map(|level| (level, compiled_paths(&rights, level))).collect();
        for bucket in BUCKETS {
            for key in &keys {
                let resource = format!("arn:aws:s3:::{bucket}/{key}");
                for action in OBJECT_ACTIONS {
                    let paths: Vec<&CompiledPath> = by_level
                        .iter()
                        .filter(|(level, _)| levels_with_action(action).contains(level))
                        .flat_map(|(_, paths)| paths)
                        .filter(|compiled| compiled.path.bucket().as_str() == bucket)
                        .collect();
                    let granted = document_grants(&statements, action, &resource);
                    let exactly_allowed = paths.iter().any(|compiled| compiled.exact.is_match(key));
                    let allowed_through_inexact_path = paths
                        .iter()
                        .any(|compiled| !object_arn_is_exact(compiled.path) && compiled.loose.is_match(key));
                    prop_assert!(
                        !granted || exactly_allowed || allowed_through_inexact_path,
                        "{action} on {resource} is granted but no rights path allows it\n{json}"
                    );
                    prop_assert!(
                        !exactly_allowed || granted,
                        "{action} on {resource} is allowed by the rights lists but not granted\n{json}"
                    );
                }
            }
        }
    }

    #[test]
    fn listing_stays_inside_the_paths_of_the_bucket(
        roles in roles(),
        configuration in configuration(),
        username in proptest::sample::select(USERNAMES.to_vec()),
        keys in keys(),
    ) {
        let config = BucketConfig::parse(&configuration).expect("generated configurations are valid");
        let rights = S3Rights::compute(username, roles.iter().map(String::as_str), &config);
        let json = PolicyDocument::for_rights(&rights).to_json().expect("serialises");
        let statements = compile(&json);
        let every_path: Vec<CompiledPath> = rights.all_paths().map(|(_, path)| CompiledPath::new(path)).collect();
        for bucket in BUCKETS {
            for prefix in &keys {
                let covered = every_path
                    .iter()
                    .any(|compiled| compiled.path.bucket().as_str() == bucket && compiled.listing.is_match(prefix));
                prop_assert!(
                    !document_allows_listing(&statements, bucket, prefix) || covered,
                    "listing {bucket} with prefix {prefix:?} is allowed outside every path\n{json}"
                );
            }
        }
    }

    #[test]
    fn the_document_is_deterministic_with_unique_sids(
        roles in roles(),
        configuration in configuration(),
        username in proptest::sample::select(USERNAMES.to_vec()),
        rotation in 0usize..8,
    ) {
        let config = BucketConfig::parse(&configuration).expect("generated configurations are valid");
        let rights = S3Rights::compute(username, roles.iter().map(String::as_str), &config);
        let json = PolicyDocument::for_rights(&rights).to_json().expect("serialises");

        let mut reordered = roles.clone();
        reordered.reverse();
        let rotation = if reordered.is_empty() { 0 } else { rotation % reordered.len() };
        reordered.rotate_left(rotation);
        let rights_again = S3Rights::compute(username, reordered.iter().map(String::as_str), &config);
        prop_assert_eq!(&rights, &rights_again);
        let json_again = PolicyDocument::for_rights(&rights_again).to_json().expect("serialises");
        prop_assert_eq!(&json, &json_again);

        let document: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        let mut sids: Vec<String> = document["Statement"]
            .as_array()
            .expect("a statement list")
            .iter()
            .map(|statement| statement["Sid"].as_str().expect("a Sid").to_owned())
            .collect();
        prop_assert!(sids.iter().all(|sid| !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric())));
        let count = sids.len();
        sids.sort_unstable();
        sids.dedup();
        prop_assert_eq!(sids.len(), count, "duplicate Sid in {}", json);
    }
}

#[test]
fn the_matchers_of_this_test_agree_with_iam_on_known_cases() {
    assert!(iam_regex("arn:aws:s3:::b/*/s1/*").is_match("arn:aws:s3:::b/a/x/s1/k"));
    assert!(iam_regex("a?c").is_match("a/c"));
    assert!(!iam_regex("st${*}r/*").is_match("stir/x"));
    assert!(iam_regex("st${*}r/*").is_match("st*r/x"));
    assert!(iam_regex("a${$}b").is_match("a$b"));
    assert!(!iam_regex("a${$}b").is_match("a${$}b"));
}

/// The documented limit, shown on one case: an owner `*` cannot stop at `/` in IAM, so the document
/// also grants a folder `s1-l1` nested in another collection, and the path says it is inexact.
#[test]
fn an_owner_wildcard_is_the_documented_inexact_case() {
    let config = BucketConfig::parse("*,*,*,30,bkt-a").expect("valid");
    let rights = S3Rights::compute("bob", ["rs_catalog_*:s1-l1_download"], &config);
    let json = PolicyDocument::for_rights(&rights).to_json().expect("serialises");
    let statements = compile(&json);
    let path = rights
        .level(RightsLevel::ReadDownload)
        .iter()
        .find(|path| path.as_str() == "bkt-a/*/s1-l1/")
        .expect("the role's path");
    let compiled = CompiledPath::new(path);

    let nested = "alice/private/s1-l1/x";
    assert!(document_grants(
        &statements,
        "s3:GetObject",
        &format!("arn:aws:s3:::bkt-a/{nested}")
    ));
    assert!(!compiled.exact.is_match(nested));
    assert!(!object_arn_is_exact(path));
    // The intended keys are granted, and nothing outside a folder named s1-l1.
    assert!(document_grants(
        &statements,
        "s3:GetObject",
        "arn:aws:s3:::bkt-a/alice/s1-l1/x"
    ));
    assert!(!document_grants(
        &statements,
        "s3:GetObject",
        "arn:aws:s3:::bkt-a/alice/s1-aux/x"
    ));
}

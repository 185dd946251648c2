//! Property tests of the S3 policy document against the rights lists it is built from, over random
//! catalog roles (globs included, with paths IAM cannot express), bucket configurations and
//! usernames. Two matchers, both written here: IAM's reading of the document (`*` spans `/`), and
//! the rights lists' reading of a path (`*` and `?` stay within one segment).
//!
//! - soundness, strict: every (bucket, key, action) the document grants is allowed by a rights
//!   path of a level that has that action, with no exception; keys are random and also built to
//!   make a wildcard span a `/`;
//! - completeness: every key a path allows is granted, unless the document reports the path as
//!   left out, and it reports exactly the paths `object_arn_is_exact` calls inexact;
//! - listing: every `s3:prefix` the document allows stays inside a path of that bucket (strict),
//!   and every prefix inside a path that is not left out is allowed;
//! - bucket statements: `GetBucketLocation` and `ListBucketMultipartUploads` name exactly the
//!   buckets with a path (a write path) that is not left out;
//! - determinism and Sids: the same rights in another role order give byte-identical JSON, and
//!   Sids are unique and alphanumeric.

use std::collections::BTreeSet;

use osam_policy::policy_document::object_arn_is_exact;
use osam_policy::{BucketConfig, PathSegment, PolicyDocument, RightsLevel, RightsPath, S3Rights};
use proptest::prelude::*;
use regex::Regex;

const ROLE_OWNERS: [&str; 7] = ["paul", "pauline", "copernicus", "*", "p*", "pa?l", "cop*"];
const ROLE_COLLECTIONS: [&str; 8] = ["s1-l1", "s1-aux", "s1-*", "*", "s1-l?", "*-l1", "s2", "s1-*-l1"];
const ACTIONS: [&str; 3] = ["read", "download", "write"];
const RULE_OWNERS: [&str; 5] = ["*", "paul", "pauline", "copernicus", "emilie"];
const RULE_COLLECTIONS: [&str; 5] = ["*", "s1-l1", "s1-aux", "s1-auxx", "s2"];
const PRODUCT_TYPES: [&str; 2] = ["*", "x"];
const BUCKETS: [&str; 3] = ["bkt-a", "bkt-b", "bkt-c"];
const USERNAMES: [&str; 5] = ["bob", "paul", "st*r", "a$b", "q?x"];
/// Key segments: owners, collections, usernames, and near misses of each.
const KEY_SEGMENTS: [&str; 18] = [
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
    "s1-x-l1",
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

/// A segment as the rights lists read it, as a regex fragment: a glob's `*` and `?` never match
/// `/`; a literal is itself.
fn segment_regex(segment: &PathSegment) -> String {
    match segment {
        PathSegment::Literal(text) => regex::escape(text),
        PathSegment::Glob(text) => text
            .chars()
            .map(|character| match character {
                '*' => "[^/]*".to_owned(),
                '?' => "[^/]".to_owned(),
                other => regex::escape(&other.to_string()),
            })
            .collect(),
    }
}

/// A rights path with its meaning compiled, independently of the document: the keys it allows
/// start with `<owner>/<collection>/`, and the prefixes it lets a user list are the collection
/// folder itself or anything inside it; wildcards stay within one segment.
struct CompiledPath<'a> {
    level: RightsLevel,
    path: &'a RightsPath,
    keys: Regex,
    listing: Regex,
}

impl<'a> CompiledPath<'a> {
    fn new(level: RightsLevel, path: &'a RightsPath) -> CompiledPath<'a> {
        let folder = format!(
            "{}/{}",
            segment_regex(path.owner()),
            segment_regex(path.collection())
        );
        CompiledPath {
            level,
            path,
            keys: Regex::new(&format!("(?s)^{folder}/")).expect("a valid regex"),
            listing: Regex::new(&format!("(?s)^{folder}(/.*)?$")).expect("a valid regex"),
        }
    }

    fn in_bucket(&self, bucket: &str) -> bool {
        self.path.bucket().as_str() == bucket
    }
}

fn compiled_paths(rights: &S3Rights) -> Vec<CompiledPath<'_>> {
    rights
        .all_paths()
        .map(|(level, path)| CompiledPath::new(level, path))
        .collect()
}

/// Keys aimed at a path: one inside it (each wildcard replaced by a plain value), and ones where a
/// wildcard is replaced by a run holding `/` (what IAM's `*` accepts and the rights lists do not).
fn probe_keys(path: &RightsPath) -> Vec<String> {
    let concrete = |segment: &PathSegment, star: &str, question: &str| match segment {
        PathSegment::Literal(text) => text.clone(),
        PathSegment::Glob(text) => text.replace('*', star).replace('?', question),
    };
    [
        ("zz", "q"),
        ("zz/s1-l1", "/"),
        ("a/b", "q"),
        ("zz", "/"),
        ("", "q"),
    ]
    .into_iter()
    .map(|(star, question)| {
        format!(
            "{}/{}/k",
            concrete(path.owner(), star, question),
            concrete(path.collection(), star, question)
        )
    })
    .collect()
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

/// The left-out report as (level, path) pairs.
fn left_out(document: &PolicyDocument) -> Vec<(RightsLevel, String)> {
    document
        .left_out()
        .iter()
        .map(|path| (path.level(), path.path().to_owned()))
        .collect()
}

fn is_left_out(left_out: &[(RightsLevel, String)], compiled: &CompiledPath) -> bool {
    left_out
        .iter()
        .any(|(level, path)| *level == compiled.level && path == compiled.path.as_str())
}

/// The buckets the document names for a bucket-level action.
fn buckets_with_action(statements: &[CompiledStatement], action: &str) -> BTreeSet<&'static str> {
    BUCKETS
        .into_iter()
        .filter(|bucket| document_grants(statements, action, &format!("arn:aws:s3:::{bucket}")))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn the_document_grants_only_what_the_rights_lists_allow_and_all_it_can(
        roles in roles(),
        configuration in configuration(),
        username in proptest::sample::select(USERNAMES.to_vec()),
        random_keys in keys(),
    ) {
        let config = BucketConfig::parse(&configuration).expect("generated configurations are valid");
        let rights = S3Rights::compute(username, roles.iter().map(String::as_str), &config);
        let document = PolicyDocument::for_rights(&rights);
        let json = document.to_json().expect("serialises");
        let statements = compile(&json);
        let paths = compiled_paths(&rights);
        let left_out = left_out(&document);

        // The report is sorted, unique, and holds exactly the inexact paths of each level.
        let expected_left_out: Vec<(RightsLevel, String)> = paths
            .iter()
            .filter(|compiled| !object_arn_is_exact(compiled.path))
            .map(|compiled| (compiled.level, compiled.path.as_str().to_owned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        prop_assert_eq!(&left_out, &expected_left_out);

        let mut keys = random_keys;
        keys.extend(paths.iter().flat_map(|compiled| probe_keys(compiled.path)));
        for bucket in BUCKETS {
            for key in &keys {
                let resource = format!("arn:aws:s3:::{bucket}/{key}");
                for action in OBJECT_ACTIONS {
                    let allowing: Vec<&CompiledPath> = paths
                        .iter()
                        .filter(|compiled| {
                            compiled.in_bucket(bucket)
                                && levels_with_action(action).contains(&compiled.level)
                                && compiled.keys.is_match(key)
                        })
                        .collect();
                    let granted = document_grants(&statements, action, &resource);
                    prop_assert!(
                        !granted || !allowing.is_empty(),
                        "{} on {} is granted but no rights path allows it\n{}", action, resource, json
                    );
                    let enforced = allowing.iter().any(|compiled| !is_left_out(&left_out, compiled));
                    prop_assert!(
                        !enforced || granted,
                        "{} on {} is allowed by a path the document keeps, but not granted\n{}",
                        action, resource, json
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
        random_prefixes in keys(),
    ) {
        let config = BucketConfig::parse(&configuration).expect("generated configurations are valid");
        let rights = S3Rights::compute(username, roles.iter().map(String::as_str), &config);
        let document = PolicyDocument::for_rights(&rights);
        let json = document.to_json().expect("serialises");
        let statements = compile(&json);
        let paths = compiled_paths(&rights);
        let left_out = left_out(&document);

        let mut prefixes = random_prefixes;
        for compiled in &paths {
            for key in probe_keys(compiled.path) {
                // The collection folder, its contents, and the key itself.
                let folder = key.trim_end_matches("/k").to_owned();
                prefixes.push(format!("{folder}/"));
                prefixes.push(folder);
                prefixes.push(key);
            }
        }
        for bucket in BUCKETS {
            for prefix in &prefixes {
                let covering: Vec<&CompiledPath> = paths
                    .iter()
                    .filter(|compiled| compiled.in_bucket(bucket) && compiled.listing.is_match(prefix))
                    .collect();
                let allowed = document_allows_listing(&statements, bucket, prefix);
                prop_assert!(
                    !allowed || !covering.is_empty(),
                    "listing {} with prefix {:?} is allowed outside every path\n{}", bucket, prefix, json
                );
                let enforced = covering.iter().any(|compiled| !is_left_out(&left_out, compiled));
                prop_assert!(
                    !enforced || allowed,
                    "listing {} with prefix {:?} is inside a kept path but not allowed\n{}",
                    bucket, prefix, json
                );
            }
        }
    }

    #[test]
    fn bucket_statements_name_exactly_the_buckets_with_a_kept_path(
        roles in roles(),
        configuration in configuration(),
        username in proptest::sample::select(USERNAMES.to_vec()),
    ) {
        let config = BucketConfig::parse(&configuration).expect("generated configurations are valid");
        let rights = S3Rights::compute(username, roles.iter().map(String::as_str), &config);
        let document = PolicyDocument::for_rights(&rights);
        let json = document.to_json().expect("serialises");
        let statements = compile(&json);
        let left_out = left_out(&document);
        let kept: Vec<CompiledPath> = compiled_paths(&rights)
            .into_iter()
            .filter(|compiled| !is_left_out(&left_out, compiled))
            .collect();
        let buckets_of = |write_only: bool| -> BTreeSet<&'static str> {
            BUCKETS
                .into_iter()
                .filter(|bucket| {
                    kept.iter().any(|compiled| {
                        compiled.in_bucket(bucket)
                            && (!write_only || compiled.level == RightsLevel::WriteDownload)
                    })
                })
                .collect()
        };
        let located = buckets_with_action(&statements, "s3:GetBucketLocation");
        prop_assert_eq!(located, buckets_of(false), "{}", json);
        let uploads = buckets_with_action(&statements, "s3:ListBucketMultipartUploads");
        prop_assert_eq!(uploads, buckets_of(true), "{}", json);
        let listable: BTreeSet<&str> = BUCKETS
            .into_iter()
            .filter(|bucket| {
                let bucket_arn = format!("arn:aws:s3:::{bucket}");
                statements.iter().any(|statement| {
                    statement.actions.iter().any(|action| action == "s3:ListBucket")
                        && statement.resources.iter().any(|pattern| pattern.is_match(&bucket_arn))
                })
            })
            .collect();
        prop_assert_eq!(listable, buckets_of(false), "{}", json);
        prop_assert_eq!(document.is_empty(), kept.is_empty());
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

    // The rights lists' reading: wildcards stay within a segment, a username is literal.
    let config = BucketConfig::parse("*,*,*,30,bkt-a").expect("valid");
    let rights = S3Rights::compute("st*r", ["rs_catalog_*:s1-l?_read"], &config);
    let paths = compiled_paths(&rights);
    let find = |text: &str| {
        paths
            .iter()
            .find(|compiled| compiled.path.as_str() == text)
            .expect("a path of the rights")
    };
    let glob = find("bkt-a/*/s1-l?/");
    assert!(glob.keys.is_match("alice/s1-l1/x"));
    assert!(!glob.keys.is_match("alice/private/s1-l1/x"));
    assert!(!glob.keys.is_match("alice/s1-l/x/y"));
    assert!(glob.listing.is_match("alice/s1-l1") && !glob.listing.is_match("a/b/s1-l1"));
    let own = find("bkt-a/st*r/*/");
    assert!(own.keys.is_match("st*r/c/x") && own.keys.is_match("st*r//x"));
    assert!(!own.keys.is_match("stir/c/x"));
}

/// The documented rule, shown on one case: an owner `*` with a named collection cannot stop at `/`
/// in IAM, so the path is left out and reported; nothing of it is granted, not even the keys it
/// means, and the rest of the document is untouched.
#[test]
fn an_owner_wildcard_with_a_named_collection_is_left_out_and_reported() {
    let config = BucketConfig::parse("*,*,*,30,bkt-a").expect("valid");
    let rights = S3Rights::compute("bob", ["rs_catalog_*:s1-l1_download"], &config);
    let document = PolicyDocument::for_rights(&rights);
    let json = document.to_json().expect("serialises");
    let statements = compile(&json);
    assert_eq!(
        left_out(&document),
        [(RightsLevel::ReadDownload, "bkt-a/*/s1-l1/".to_owned())]
    );
    for key in ["alice/private/s1-l1/x", "alice/s1-l1/x", "alice/s1-aux/x"] {
        assert!(
            !document_grants(&statements, "s3:GetObject", &format!("arn:aws:s3:::bkt-a/{key}")),
            "{key}: {json}"
        );
    }
    assert!(!document_allows_listing(&statements, "bkt-a", "alice/s1-l1"));
    // The user's own folder is exact and still granted.
    assert!(document_grants(
        &statements,
        "s3:PutObject",
        "arn:aws:s3:::bkt-a/bob/anything/x"
    ));
    assert!(document_allows_listing(&statements, "bkt-a", "bob/anything/"));
}

/// The same for a glob in the middle of a segment: IAM's `*` would reach `paul/s1-a/b-l1/x`.
#[test]
fn a_mid_segment_glob_is_left_out_and_reported() {
    let config = BucketConfig::parse("paul,*,*,30,bkt-p").expect("valid");
    let rights = S3Rights::compute(
        "bob",
        ["rs_catalog_paul:s1-*-l1_write", "rs_catalog_paul:s1-*_read"],
        &config,
    );
    let document = PolicyDocument::for_rights(&rights);
    let json = document.to_json().expect("serialises");
    let statements = compile(&json);
    assert_eq!(
        left_out(&document),
        [(RightsLevel::WriteDownload, "bkt-p/paul/s1-*-l1/".to_owned())]
    );
    for key in ["paul/s1-a/b-l1/x", "paul/s1-a-l1/x"] {
        let resource = format!("arn:aws:s3:::bkt-p/{key}");
        assert!(
            !document_grants(&statements, "s3:PutObject", &resource),
            "{key}: {json}"
        );
    }
    // `paul/s1-*/` is exact and stays, at its own level.
    assert!(document_grants(
        &statements,
        "s3:ListMultipartUploadParts",
        "arn:aws:s3:::bkt-p/paul/s1-a/b-l1/x"
    ));
    assert!(!document_grants(
        &statements,
        "s3:GetObject",
        "arn:aws:s3:::bkt-p/paul/s1-a/x"
    ));
    assert_eq!(
        buckets_with_action(&statements, "s3:ListBucketMultipartUploads"),
        BTreeSet::new()
    );
}

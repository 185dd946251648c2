//! The IAM policy document that enforces a user's S3 rights on an IAM-compatible object store,
//! built only from the three rights lists. The same rights always give byte-identical JSON.
//!
//! # From a rights path to IAM
//!
//! A rights path `<bucket>/<owner>/<collection>/` grants, in `<bucket>`, every object key that
//! starts with a string matching the glob `<owner>/<collection>/` in which `*` and `?` never match
//! `/`: one owner segment, one collection segment, then anything.
//!
//! **Object ARN rule**: the path becomes `arn:aws:s3:::<bucket>/<owner>/<collection>/*`, the
//! owner and collection written with [`iam_text`] (a role's glob kept as a glob, a username made
//! literal); the path is never truncated, because in IAM a `*` matches any run of characters
//! including `/`, so cutting after an inner `*` (as the reference does, e.g. `bucket/*/s1-l1/` →
//! `bucket/*`) would grant every collection of every owner.
//!
//! **Where IAM cannot be exact**: IAM has no wildcard that stops at `/`. The ARN grants exactly
//! the keys of the path when [`object_arn_is_exact`] holds: no `?`, and every `*` is the last
//! character of its segment and followed only by segments that are exactly `*` (`paul/s1-*/`,
//! `paul/*/`, `*/*/`). Otherwise it may also grant keys where a wildcard spans a `/`: for the owner
//! `*` and the collection `s1-l1`, `arn:aws:s3:::bucket/*/s1-l1/*` also grants
//! `bucket/alice/private/s1-l1/x`, a folder `s1-l1` inside alice's collection `private`. This is
//! the narrowest IAM can say without dropping the role; callers can detect such paths with
//! [`object_arn_is_exact`]. The `s3:prefix` conditions below have the same limit.
//!
//! # Statements, in this order
//!
//! 1. One object statement per non-empty level (`ReadObjects`, `ReadDownloadObjects`,
//!    `WriteDownloadObjects`) with the reference's action lists ([`object_actions`]).
//! 2. `ListBucketN`: `s3:ListBucket` on bucket ARNs, with a `StringLike` `s3:prefix` condition
//!    holding `<owner>/<collection>` and `<owner>/<collection>/*` for each path of that bucket;
//!    buckets with identical prefix lists share one statement, numbered in bucket-name order.
//!    The bare `<owner>/<collection>` lets tools list the collection folder itself; a listing
//!    with that exact prefix and no delimiter also returns keys of sibling collections whose
//!    name extends it (`s1-aux` → `s1-aux-infinite/...`), as it does in the reference.
//! 3. `BucketLocation`: `s3:GetBucketLocation` on every bucket of the lists.
//! 4. `WriteBucketUploads`: `s3:ListBucketMultipartUploads` on the buckets with a write path
//!    only (the reference grants it on every bucket; readers have no uploads to resume).
//!
//! A document without statements means "no S3 access" (only possible without a `*,*,*` rule);
//! IAM-compatible servers may reject an empty `Statement`, so an adapter should then remove the
//! user's policy rather than put this one.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use serde::Serialize;
use thiserror::Error;

use crate::bucket_config::BucketName;
use crate::s3_rights::{PathSegment, RightsLevel, RightsPath, S3Rights};

/// The only policy language version with policy variables (and so with `${*}` escapes).
pub const POLICY_VERSION: &str = "2012-10-17";

const READ_OBJECT_ACTIONS: &[&str] = &["s3:ListMultipartUploadParts"];
const READ_DOWNLOAD_OBJECT_ACTIONS: &[&str] = &["s3:GetObject", "s3:ListMultipartUploadParts"];
const WRITE_DOWNLOAD_OBJECT_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
];
const LIST_BUCKET_ACTIONS: &[&str] = &["s3:ListBucket"];
const BUCKET_LOCATION_ACTIONS: &[&str] = &["s3:GetBucketLocation"];
const WRITE_BUCKET_ACTIONS: &[&str] = &["s3:ListBucketMultipartUploads"];

/// Serialising a policy document failed (it only holds strings, so this is not expected).
#[derive(Debug, Error)]
#[error("cannot serialise the policy document: {0}")]
pub struct PolicyDocumentError(#[from] serde_json::Error);

/// The object actions of each level are the reference's (rs-server `tasks.py`): read lists
/// multipart parts only, read_download adds `GetObject`, write_download adds put, delete and
/// abort.
pub fn object_actions(level: RightsLevel) -> &'static [&'static str] {
    match level {
        RightsLevel::Read => READ_OBJECT_ACTIONS,
        RightsLevel::ReadDownload => READ_DOWNLOAD_OBJECT_ACTIONS,
        RightsLevel::WriteDownload => WRITE_DOWNLOAD_OBJECT_ACTIONS,
    }
}

fn object_statement_sid(level: RightsLevel) -> &'static str {
    match level {
        RightsLevel::Read => "ReadObjects",
        RightsLevel::ReadDownload => "ReadDownloadObjects",
        RightsLevel::WriteDownload => "WriteDownloadObjects",
    }
}

/// The only effect osam writes: it grants, never denies, so a document can only add access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
}

/// `{"StringLike": {"s3:prefix": [...]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    #[serde(rename = "StringLike")]
    pub string_like: PrefixPatterns,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixPatterns {
    #[serde(rename = "s3:prefix")]
    pub prefixes: Vec<String>,
}

/// One statement; fields serialise in IAM's usual order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    #[serde(rename = "Action")]
    pub actions: &'static [&'static str],
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// An IAM policy document (`Version` 2012-10-17).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Statement")]
    statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Builds the document of a user's rights: object statements per level, prefix-restricted
    /// listing per bucket, then bucket-level statements (see the module documentation).
    pub fn for_rights(rights: &S3Rights) -> PolicyDocument {
        let mut statements: Vec<Statement> = RightsLevel::ALL
            .into_iter()
            .filter_map(|level| object_statement(level, rights.level(level)))
            .collect();
        statements.extend(list_bucket_statements(rights));
        statements.extend(bucket_level_statements(rights));
        PolicyDocument {
            version: POLICY_VERSION,
            statements,
        }
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// True when the document grants nothing (see the module documentation).
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Compact JSON, the form given to `PutUserPolicy` (IAM counts size without whitespace).
    pub fn to_json(&self) -> Result<String, PolicyDocumentError> {
        Ok(serde_json::to_string(self)?)
    }

    /// Indented JSON, for operators reviewing a policy.
    pub fn to_json_pretty(&self) -> Result<String, PolicyDocumentError> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

fn object_statement(level: RightsLevel, paths: &[RightsPath]) -> Option<Statement> {
    if paths.is_empty() {
        return None;
    }
    Some(Statement {
        sid: object_statement_sid(level).to_owned(),
        effect: Effect::Allow,
        actions: object_actions(level),
        resources: sorted_unique(paths.iter().map(object_arn).collect()),
        condition: None,
    })
}

/// One `ListBucket` statement per distinct set of prefixes, each naming every bucket that has
/// exactly that set, in bucket-name order.
fn list_bucket_statements(rights: &S3Rights) -> Vec<Statement> {
    let mut prefixes_by_bucket: BTreeMap<&BucketName, Vec<String>> = BTreeMap::new();
    for (_, path) in rights.all_paths() {
        prefixes_by_bucket
            .entry(path.bucket())
            .or_default()
            .extend(list_prefixes(path));
    }
    let prefixes_by_bucket: Vec<(&BucketName, Vec<String>)> = prefixes_by_bucket
        .into_iter()
        .map(|(bucket, prefixes)| (bucket, sorted_unique(prefixes)))
        .collect();

    // Groups in order of their first bucket; the map only finds a group, it never orders one.
    let mut groups: Vec<(Vec<String>, &[String])> = Vec::new();
    let mut group_of_prefixes: FxHashMap<&[String], usize> = FxHashMap::default();
    for (bucket, prefixes) in &prefixes_by_bucket {
        match group_of_prefixes.get(prefixes.as_slice()) {
            Some(&group) => groups[group].0.push(bucket_arn(bucket)),
            None => {
                group_of_prefixes.insert(prefixes, groups.len());
                groups.push((vec![bucket_arn(bucket)], prefixes));
            }
        }
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(index, (buckets, prefixes))| Statement {
            sid: format!("ListBucket{}", index + 1),
            effect: Effect::Allow,
            actions: LIST_BUCKET_ACTIONS,
            resources: buckets,
            condition: Some(Condition {
                string_like: PrefixPatterns {
                    prefixes: prefixes.to_vec(),
                },
            }),
        })
        .collect()
}

fn sorted_unique(mut values: Vec<String>) -> Vec<String> {
    values.sort_unstable();
    values.dedup();
    values
}

/// `GetBucketLocation` on every bucket of the lists; `ListBucketMultipartUploads` only where the
/// user may write.
fn bucket_level_statements(rights: &S3Rights) -> Vec<Statement> {
    let every_bucket: BTreeSet<&BucketName> = rights.all_paths().map(|(_, path)| path.bucket()).collect();
    let write_buckets: BTreeSet<&BucketName> = rights
        .level(RightsLevel::WriteDownload)
        .iter()
        .map(RightsPath::bucket)
        .collect();
    [
        ("BucketLocation", BUCKET_LOCATION_ACTIONS, every_bucket),
        ("WriteBucketUploads", WRITE_BUCKET_ACTIONS, write_buckets),
    ]
    .into_iter()
    .filter(|(_, _, buckets)| !buckets.is_empty())
    .map(|(sid, actions, buckets)| Statement {
        sid: sid.to_owned(),
        effect: Effect::Allow,
        actions,
        resources: buckets.into_iter().map(bucket_arn).collect(),
        condition: None,
    })
    .collect()
}

/// `arn:aws:s3:::<bucket>`.
pub fn bucket_arn(bucket: &BucketName) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// The path's object ARN, `arn:aws:s3:::<bucket>/<owner>/<collection>/*`, never truncated (see
/// the module documentation for when it is exact).
pub fn object_arn(path: &RightsPath) -> String {
    format!(
        "arn:aws:s3:::{}/{}/{}/*",
        path.bucket(),
        iam_text(path.owner()),
        iam_text(path.collection())
    )
}

/// The `s3:prefix` patterns that let the path be listed: the collection folder itself
/// (`<owner>/<collection>`) and everything in it (`<owner>/<collection>/*`).
pub fn list_prefixes(path: &RightsPath) -> [String; 2] {
    let folder = format!("{}/{}", iam_text(path.owner()), iam_text(path.collection()));
    let contents = format!("{folder}/*");
    [folder, contents]
}

/// A segment as IAM pattern text: a glob keeps `*` and `?` as wildcards, a literal has them
/// written `${*}` and `${?}`, and every `$` becomes `${$}` so that no value is ever read as a
/// policy variable such as `${aws:username}`.
pub fn iam_text(segment: &PathSegment) -> Cow<'_, str> {
    let (text, is_literal) = match segment {
        PathSegment::Glob(text) => (text, false),
        PathSegment::Literal(text) => (text, true),
    };
    let needs_escape = |character: char| character == '$' || (is_literal && matches!(character, '*' | '?'));
    if !text.contains(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if needs_escape(character) {
            escaped.push_str("${");
            escaped.push(character);
            escaped.push('}');
        } else {
            escaped.push(character);
        }
    }
    Cow::Owned(escaped)
}

/// The object ARN grants exactly the path's keys (no key where a wildcard spans a `/`) when, over
/// the `/`-separated parts of `<owner>/<collection>`, no glob part has a `?` and every `*` ends its
/// part and is followed only by parts that are exactly `*`; when this is false the ARN may grant
/// more (see the module documentation).
pub fn object_arn_is_exact(path: &RightsPath) -> bool {
    let parts = [path.owner(), path.collection()].into_iter().flat_map(|segment| {
        let is_glob = matches!(segment, PathSegment::Glob(_));
        segment.as_str().split('/').map(move |part| (part, is_glob))
    });
    let mut after_a_star = false;
    for (part, is_glob) in parts {
        if !is_glob {
            // Literal characters, escaped in the ARN, match only themselves.
            if after_a_star {
                return false;
            }
            continue;
        }
        if part.contains('?') {
            return false;
        }
        if after_a_star {
            if part != "*" {
                return false;
            }
            continue;
        }
        let star_count = part.matches('*').count();
        if star_count > 1 || (star_count == 1 && !part.ends_with('*')) {
            return false;
        }
        after_a_star = star_count == 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket_config::BucketConfig;

    fn rights(username: &str, roles: &[&str], config: &str) -> S3Rights {
        let config = BucketConfig::parse(config).expect("valid configuration");
        S3Rights::compute(username, roles.iter().copied(), &config)
    }

    fn only_path(rights: &S3Rights, level: RightsLevel) -> RightsPath {
        let paths = rights.level(level);
        assert_eq!(paths.len(), 1, "{paths:?}");
        paths[0].clone()
    }

    fn role_path(owner: &str, collection: &str) -> RightsPath {
        let rights = rights(
            "u",
            &[&format!("rs_catalog_{owner}:{collection}_read")],
            "*,*,*,1,bucket-a\n",
        );
        only_path(&rights, RightsLevel::Read)
    }

    #[test]
    fn object_arns_keep_the_glob_and_are_never_truncated() {
        let cases = [
            (
                "copernicus",
                "s1-l1",
                "arn:aws:s3:::bucket-a/copernicus/s1-l1/*",
                true,
            ),
            (
                "copernicus",
                "s1-*",
                "arn:aws:s3:::bucket-a/copernicus/s1-*/*",
                true,
            ),
            ("copernicus", "*", "arn:aws:s3:::bucket-a/copernicus/*/*", true),
            ("*", "*", "arn:aws:s3:::bucket-a/*/*/*", true),
            ("cop*", "*", "arn:aws:s3:::bucket-a/cop*/*/*", true),
            // Owner `*`: IAM's `*` also spans `/`, so deeper folders named s1-l1 match too.
            ("*", "s1-l1", "arn:aws:s3:::bucket-a/*/s1-l1/*", false),
            ("cop*", "s1-l1", "arn:aws:s3:::bucket-a/cop*/s1-l1/*", false),
            ("*", "s1-*", "arn:aws:s3:::bucket-a/*/s1-*/*", false),
            (
                "copernicus",
                "*-l1",
                "arn:aws:s3:::bucket-a/copernicus/*-l1/*",
                false,
            ),
            (
                "copernicus",
                "s1-*-*",
                "arn:aws:s3:::bucket-a/copernicus/s1-*-*/*",
                false,
            ),
            (
                "copernicus",
                "s1-l?",
                "arn:aws:s3:::bucket-a/copernicus/s1-l?/*",
                false,
            ),
            ("a/b", "c", "arn:aws:s3:::bucket-a/a/b/c/*", true),
            ("o", "x/*", "arn:aws:s3:::bucket-a/o/x/*/*", true),
        ];
        for (owner, collection, arn, exact) in cases {
            let path = role_path(owner, collection);
            assert_eq!(object_arn(&path), arn, "{owner}:{collection}");
            assert_eq!(object_arn_is_exact(&path), exact, "{owner}:{collection}");
        }
    }

    #[test]
    fn a_username_is_literal_in_arns_and_prefixes() {
        let rights = rights("st*r?$x", &[], "*,*,*,1,catch-all\n");
        let own = only_path(&rights, RightsLevel::WriteDownload);
        assert_eq!(object_arn(&own), "arn:aws:s3:::catch-all/st${*}r${?}${$}x/*/*");
        assert!(object_arn_is_exact(&own));
        assert_eq!(
            list_prefixes(&own),
            ["st${*}r${?}${$}x/*".to_owned(), "st${*}r${?}${$}x/*/*".to_owned()]
        );
    }

    #[test]
    fn a_dollar_in_a_role_never_becomes_a_policy_variable() {
        let path = role_path("${aws:username}", "s1");
        assert_eq!(object_arn(&path), "arn:aws:s3:::bucket-a/${$}{aws:username}/s1/*");
    }

    #[test]
    fn list_prefixes_cover_the_folder_and_its_contents() {
        assert_eq!(
            list_prefixes(&role_path("copernicus", "s1-aux")),
            ["copernicus/s1-aux".to_owned(), "copernicus/s1-aux/*".to_owned()]
        );
        assert_eq!(
            list_prefixes(&role_path("*", "s1-*")),
            ["*/s1-*".to_owned(), "*/s1-*/*".to_owned()]
        );
    }

    #[test]
    fn list_bucket_statements_group_buckets_with_identical_prefixes() {
        let rights = rights(
            "bob",
            &["rs_catalog_copernicus:s1-aux_read", "rs_catalog_paul:s1_write"],
            "copernicus,*,*,1,bucket-a\ncopernicus,*,*,1,bucket-b\npaul,*,*,1,bucket-c\n",
        );
        let document = PolicyDocument::for_rights(&rights);
        let list_statements: Vec<&Statement> = document
            .statements()
            .iter()
            .filter(|statement| statement.actions == LIST_BUCKET_ACTIONS)
            .collect();
        assert_eq!(list_statements.len(), 2);
        assert_eq!(list_statements[0].sid, "ListBucket1");
        assert_eq!(
            list_statements[0].resources,
            vec![
                "arn:aws:s3:::bucket-a".to_owned(),
                "arn:aws:s3:::bucket-b".to_owned()
            ]
        );
        assert_eq!(
            list_statements[0].condition,
            Some(Condition {
                string_like: PrefixPatterns {
                    prefixes: vec!["copernicus/s1-aux".to_owned(), "copernicus/s1-aux/*".to_owned()]
                }
            })
        );
        assert_eq!(list_statements[1].sid, "ListBucket2");
        assert_eq!(
            list_statements[1].resources,
            vec!["arn:aws:s3:::bucket-c".to_owned()]
        );
        assert_eq!(
            list_statements[1]
                .condition
                .as_ref()
                .map(|condition| &condition.string_like.prefixes),
            Some(&vec!["paul/s1".to_owned(), "paul/s1/*".to_owned()])
        );
    }

    #[test]
    fn the_document_has_the_expected_shape() {
        let rights = rights(
            "bob",
            &[
                "rs_catalog_paul:s1_read",
                "rs_catalog_copernicus:s1-aux_download",
                "rs_catalog_emilie:*_write",
            ],
            "*,*,*,1,catch-all\npaul,*,*,1,bucket-p\n",
        );
        let json = PolicyDocument::for_rights(&rights).to_json().expect("serialises");
        let expected = concat!(
            r#"{"Version":"2012-10-17","Statement":["#,
            r#"{"Sid":"ReadObjects","Effect":"Allow","Action":["s3:ListMultipartUploadParts"],"#,
            r#""Resource":["arn:aws:s3:::bucket-p/paul/s1/*","arn:aws:s3:::catch-all/paul/s1/*"]},"#,
            r#"{"Sid":"ReadDownloadObjects","Effect":"Allow","Action":["s3:GetObject","s3:ListMultipartUploadParts"],"#,
            r#""Resource":["arn:aws:s3:::catch-all/bob/*/*","arn:aws:s3:::catch-all/copernicus/s1-aux/*"]},"#,
            r#"{"Sid":"WriteDownloadObjects","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","#,
            r#""s3:DeleteObject","s3:ListMultipartUploadParts","s3:AbortMultipartUpload"],"#,
            r#""Resource":["arn:aws:s3:::catch-all/bob/*/*","arn:aws:s3:::catch-all/emilie/*/*"]},"#,
            r#"{"Sid":"ListBucket1","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::bucket-p"],"#,
            r#""Condition":{"StringLike":{"s3:prefix":["paul/s1","paul/s1/*"]}}},"#,
            r#"{"Sid":"ListBucket2","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::catch-all"],"#,
            r#""Condition":{"StringLike":{"s3:prefix":["bob/*","bob/*/*","copernicus/s1-aux","copernicus/s1-aux/*","#,
            r#""emilie/*","emilie/*/*","paul/s1","paul/s1/*"]}}},"#,
            r#"{"Sid":"BucketLocation","Effect":"Allow","Action":["s3:GetBucketLocation"],"#,
            r#""Resource":["arn:aws:s3:::bucket-p","arn:aws:s3:::catch-all"]},"#,
            r#"{"Sid":"WriteBucketUploads","Effect":"Allow","Action":["s3:ListBucketMultipartUploads"],"#,
            r#""Resource":["arn:aws:s3:::catch-all"]}"#,
            r#"]}"#
        );
        assert_eq!(json, expected);
    }

    #[test]
    fn empty_levels_have_no_statement_and_no_rights_give_an_empty_document() {
        let reader = rights("bob", &["rs_catalog_paul:s1_read"], "paul,*,*,1,bucket-p\n");
        let document = PolicyDocument::for_rights(&reader);
        let sids: Vec<&str> = document
            .statements()
            .iter()
            .map(|statement| statement.sid.as_str())
            .collect();
        assert_eq!(sids, ["ReadObjects", "ListBucket1", "BucketLocation"]);
        let nobody = PolicyDocument::for_rights(&rights("bob", &[], "paul,*,*,1,bucket-p\n"));
        assert!(nobody.is_empty());
        assert_eq!(
            nobody.to_json().expect("serialises"),
            r#"{"Version":"2012-10-17","Statement":[]}"#
        );
    }

    #[test]
    fn pretty_json_is_the_same_document() {
        let document = PolicyDocument::for_rights(&rights("bob", &[], "*,*,*,1,catch-all\n"));
        let compact: serde_json::Value =
            serde_json::from_str(&document.to_json().expect("serialises")).expect("json");
        let pretty: serde_json::Value =
            serde_json::from_str(&document.to_json_pretty().expect("serialises")).expect("json");
        assert_eq!(compact, pretty);
    }
}

//! The IAM policy document that enforces a user's S3 rights on an IAM-compatible object store,
//! built only from the three rights lists. The same rights always give byte-identical JSON, and
//! the document never grants more than the lists.
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
//! **Paths IAM cannot express are left out**: IAM has no wildcard that stops at `/`. The ARN
//! grants exactly the keys of the path when [`object_arn_is_exact`] holds: no `?`, and every `*`
//! is the last character of its segment and followed only by segments that are exactly `*`
//! (`paul/s1-*/`, `paul/*/`, `*/*/`): a key the ARN matches then has the path's literal start
//! followed by at least as many `/` as the path has, so the path's glob matches it too. Otherwise
//! the ARN would also grant keys where a wildcard spans a `/`: for the owner `*` and the
//! collection `s1-l1`, `arn:aws:s3:::bucket/*/s1-l1/*` would also grant
//! `bucket/alice/private/s1-l1/x`, a folder `s1-l1` inside alice's collection `private`; a
//! mid-segment glob such as `paul/s1-*-l1/` would grant `paul/s1-a/b-l1/x`. Such a path is
//! therefore **left out of the document**: no object ARN, no `s3:prefix` condition (they have the
//! same limit), and it counts for no bucket-level statement. The document never grants more than
//! the lists, at the price of not enforcing those paths on S3 at all: a user gets no S3 access
//! from them (the role still counts in catalog decisions, which do not go through IAM).
//! [`PolicyDocument::left_out`] reports each such path with its level so that the server can say
//! so instead of failing silently; [`object_arn`] and [`list_prefixes`] return `None` for them.
//!
//! # Statements, in this order
//!
//! Built from the paths that are not left out only:
//!
//! 1. One object statement per level with at least one path (`ReadObjects`,
//!    `ReadDownloadObjects`, `WriteDownloadObjects`) with the reference's action lists
//!    ([`object_actions`]).
//! 2. `ListBucketN`: `s3:ListBucket` on bucket ARNs, with a `StringLike` `s3:prefix` condition
//!    holding `<owner>/<collection>` and `<owner>/<collection>/*` for each path of that bucket;
//!    buckets with identical prefix lists share one statement, numbered in bucket-name order.
//!    The bare `<owner>/<collection>` lets tools list the collection folder itself; a listing
//!    with that exact prefix and no delimiter also returns keys of sibling collections whose
//!    name extends it (`s1-aux` → `s1-aux-infinite/...`), as it does in the reference.
//! 3. `BucketLocation`: `s3:GetBucketLocation` on every bucket with a path.
//! 4. `WriteBucketUploads`: `s3:ListBucketMultipartUploads` on the buckets with a write path
//!    only (the reference grants it on every bucket; readers have no uploads to resume).
//!
//! A document without statements means "no S3 access" (no path, or only paths that are left
//! out); IAM-compatible servers may reject an empty `Statement`, so an adapter should then remove
//! the user's policy rather than put this one.

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

/// An IAM policy document (`Version` 2012-10-17), with the rights paths it leaves out (never
/// serialised: they are a report for the server, not part of the policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Statement")]
    statements: Vec<Statement>,
    #[serde(skip)]
    left_out: Vec<LeftOutPath>,
}

/// A rights path the document leaves out because IAM cannot express it exactly (see the module
/// documentation): it is in the rights lists but not enforced on S3. Serialises as
/// `{"level": "read", "path": "bucket/*/s1-l1/"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LeftOutPath {
    #[serde(serialize_with = "serialize_level")]
    level: RightsLevel,
    path: String,
}

impl LeftOutPath {
    /// The level of the list the path is in.
    pub fn level(&self) -> RightsLevel {
        self.level
    }

    /// The path as the rights lists write it, e.g. `bucket/*/s1-l1/`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl std::fmt::Display for LeftOutPath {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} {}", self.level.as_str(), self.path)
    }
}

fn serialize_level<S: serde::Serializer>(level: &RightsLevel, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(level.as_str())
}

impl PolicyDocument {
    /// Builds the document of a user's rights: object statements per level, prefix-restricted
    /// listing per bucket, then bucket-level statements, from the paths IAM can express exactly;
    /// the others are left out and listed by [`PolicyDocument::left_out`] (see the module
    /// documentation).
    pub fn for_rights(rights: &S3Rights) -> PolicyDocument {
        let (paths, left_out) = ExpressiblePaths::split(rights);
        let mut statements: Vec<Statement> = RightsLevel::ALL
            .into_iter()
            .filter_map(|level| object_statement(level, paths.level(level)))
            .collect();
        statements.extend(list_bucket_statements(&paths));
        statements.extend(bucket_level_statements(&paths));
        PolicyDocument {
            version: POLICY_VERSION,
            statements,
            left_out,
        }
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The rights paths left out of the document because IAM cannot express them without
    /// granting more, sorted by level (weakest first) then path, without duplicates. They are not
    /// enforced on S3; report them rather than ignore them.
    pub fn left_out(&self) -> &[LeftOutPath] {
        &self.left_out
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

/// The paths of each level that IAM can express exactly, in the lists' order: the only input of
/// the statements, so that no statement can be built from a path that would widen the grant.
struct ExpressiblePaths<'rights> {
    levels: [(RightsLevel, Vec<&'rights RightsPath>); 3],
}

impl<'rights> ExpressiblePaths<'rights> {
    fn split(rights: &'rights S3Rights) -> (ExpressiblePaths<'rights>, Vec<LeftOutPath>) {
        let mut left_out = Vec::new();
        let levels = RightsLevel::ALL.map(|level| {
            let mut kept = Vec::with_capacity(rights.level(level).len());
            for path in rights.level(level) {
                if object_arn_is_exact(path) {
                    kept.push(path);
                } else {
                    left_out.push(LeftOutPath {
                        level,
                        path: path.as_str().to_owned(),
                    });
                }
            }
            (level, kept)
        });
        // The lists are sorted and unique per level already; this keeps the report so by
        // construction rather than by the lists' contract.
        left_out.sort_unstable();
        left_out.dedup();
        (ExpressiblePaths { levels }, left_out)
    }

    fn level(&self, level: RightsLevel) -> &[&'rights RightsPath] {
        self.levels
            .iter()
            .find(|(candidate, _)| *candidate == level)
            .map_or(&[], |(_, paths)| paths.as_slice())
    }

    fn all(&self) -> impl Iterator<Item = &'rights RightsPath> + '_ {
        self.levels.iter().flat_map(|(_, paths)| paths.iter().copied())
    }
}

fn object_statement(level: RightsLevel, paths: &[&RightsPath]) -> Option<Statement> {
    if paths.is_empty() {
        return None;
    }
    Some(Statement {
        sid: object_statement_sid(level).to_owned(),
        effect: Effect::Allow,
        actions: object_actions(level),
        resources: sorted_unique(paths.iter().map(|path| expressible_object_arn(path)).collect()),
        condition: None,
    })
}

/// One `ListBucket` statement per distinct set of prefixes, each naming every bucket that has
/// exactly that set, in bucket-name order.
fn list_bucket_statements(paths: &ExpressiblePaths<'_>) -> Vec<Statement> {
    let mut prefixes_by_bucket: BTreeMap<&BucketName, Vec<String>> = BTreeMap::new();
    for path in paths.all() {
        prefixes_by_bucket
            .entry(path.bucket())
            .or_default()
            .extend(expressible_list_prefixes(path));
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

/// `GetBucketLocation` on every bucket with a path; `ListBucketMultipartUploads` only where the
/// user may write.
fn bucket_level_statements(paths: &ExpressiblePaths<'_>) -> Vec<Statement> {
    let every_bucket: BTreeSet<&BucketName> = paths.all().map(RightsPath::bucket).collect();
    let write_buckets: BTreeSet<&BucketName> = paths
        .level(RightsLevel::WriteDownload)
        .iter()
        .map(|path| path.bucket())
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

/// The path's object ARN, `arn:aws:s3:::<bucket>/<owner>/<collection>/*`, never truncated; `None`
/// when IAM cannot express the path exactly ([`object_arn_is_exact`]), as the ARN would then grant
/// more than the path (see the module documentation).
pub fn object_arn(path: &RightsPath) -> Option<String> {
    object_arn_is_exact(path).then(|| expressible_object_arn(path))
}

/// The `s3:prefix` patterns that let the path be listed: the collection folder itself
/// (`<owner>/<collection>`) and everything in it (`<owner>/<collection>/*`); `None` when IAM
/// cannot express the path exactly, like [`object_arn`].
pub fn list_prefixes(path: &RightsPath) -> Option<[String; 2]> {
    object_arn_is_exact(path).then(|| expressible_list_prefixes(path))
}

/// [`object_arn`] for a path already known to be exact.
fn expressible_object_arn(path: &RightsPath) -> String {
    format!(
        "arn:aws:s3:::{}/{}/{}/*",
        path.bucket(),
        iam_text(path.owner()),
        iam_text(path.collection())
    )
}

/// [`list_prefixes`] for a path already known to be exact.
fn expressible_list_prefixes(path: &RightsPath) -> [String; 2] {
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
/// part and is followed only by parts that are exactly `*`. When this is false the ARN would grant
/// more, so the document leaves the path out (see the module documentation).
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
    fn object_arns_keep_the_glob_are_never_truncated_and_never_widen() {
        let exact = [
            ("copernicus", "s1-l1", "arn:aws:s3:::bucket-a/copernicus/s1-l1/*"),
            ("copernicus", "s1-*", "arn:aws:s3:::bucket-a/copernicus/s1-*/*"),
            ("copernicus", "*", "arn:aws:s3:::bucket-a/copernicus/*/*"),
            ("*", "*", "arn:aws:s3:::bucket-a/*/*/*"),
            ("cop*", "*", "arn:aws:s3:::bucket-a/cop*/*/*"),
            ("a/b", "c", "arn:aws:s3:::bucket-a/a/b/c/*"),
            ("o", "x/*", "arn:aws:s3:::bucket-a/o/x/*/*"),
        ];
        for (owner, collection, arn) in exact {
            let path = role_path(owner, collection);
            assert!(object_arn_is_exact(&path), "{owner}:{collection}");
            assert_eq!(object_arn(&path).as_deref(), Some(arn), "{owner}:{collection}");
            assert!(list_prefixes(&path).is_some(), "{owner}:{collection}");
        }
        // IAM's `*` also spans `/`: owner `*` with a named collection would also grant deeper
        // folders named s1-l1, a mid-segment `*` or a `?` would match across segments.
        let inexact = [
            ("*", "s1-l1"),
            ("cop*", "s1-l1"),
            ("*", "s1-*"),
            ("copernicus", "*-l1"),
            ("copernicus", "s1-*-l1"),
            ("copernicus", "s1-*-*"),
            ("copernicus", "s1-l?"),
            ("c*s", "*"),
            ("o", "*/x"),
        ];
        for (owner, collection) in inexact {
            let path = role_path(owner, collection);
            assert!(!object_arn_is_exact(&path), "{owner}:{collection}");
            assert_eq!(object_arn(&path), None, "{owner}:{collection}");
            assert_eq!(list_prefixes(&path), None, "{owner}:{collection}");
        }
    }

    #[test]
    fn a_username_is_literal_in_arns_and_prefixes() {
        let rights = rights("st*r?$x", &[], "*,*,*,1,catch-all\n");
        let own = only_path(&rights, RightsLevel::WriteDownload);
        assert!(object_arn_is_exact(&own));
        assert_eq!(
            object_arn(&own).as_deref(),
            Some("arn:aws:s3:::catch-all/st${*}r${?}${$}x/*/*")
        );
        assert_eq!(
            list_prefixes(&own),
            Some(["st${*}r${?}${$}x/*".to_owned(), "st${*}r${?}${$}x/*/*".to_owned()])
        );
        assert!(PolicyDocument::for_rights(&rights).left_out().is_empty());
    }

    #[test]
    fn a_dollar_in_a_role_never_becomes_a_policy_variable() {
        let path = role_path("${aws:username}", "s1");
        assert_eq!(
            object_arn(&path).as_deref(),
            Some("arn:aws:s3:::bucket-a/${$}{aws:username}/s1/*")
        );
    }

    #[test]
    fn list_prefixes_cover_the_folder_and_its_contents() {
        assert_eq!(
            list_prefixes(&role_path("copernicus", "s1-aux")),
            Some(["copernicus/s1-aux".to_owned(), "copernicus/s1-aux/*".to_owned()])
        );
        assert_eq!(
            list_prefixes(&role_path("paul", "s1-*")),
            Some(["paul/s1-*".to_owned(), "paul/s1-*/*".to_owned()])
        );
        assert_eq!(
            list_prefixes(&role_path("*", "*")),
            Some(["*/*".to_owned(), "*/*/*".to_owned()])
        );
    }

    fn sids(document: &PolicyDocument) -> Vec<&str> {
        document
            .statements()
            .iter()
            .map(|statement| statement.sid.as_str())
            .collect()
    }

    fn left_out(document: &PolicyDocument) -> Vec<(RightsLevel, &str)> {
        document
            .left_out()
            .iter()
            .map(|path| (path.level(), path.path()))
            .collect()
    }

    #[test]
    fn inexact_paths_are_left_out_and_reported_exact_globs_stay() {
        let rights = rights(
            "bob",
            &[
                // Exact: kept.
                "rs_catalog_paul:s1-*_read",
                "rs_catalog_paul:*_read",
                "rs_catalog_*:*_read",
                // Owner `*` with a named collection, and a mid-segment glob: left out.
                "rs_catalog_*:s1-l1_download",
                "rs_catalog_paul:s1-*-l1_write",
            ],
            "*,*,*,1,catch-all\n",
        );
        let document = PolicyDocument::for_rights(&rights);
        assert_eq!(
            left_out(&document),
            [
                (RightsLevel::ReadDownload, "catch-all/*/s1-l1/"),
                (RightsLevel::WriteDownload, "catch-all/paul/s1-*-l1/"),
            ]
        );
        let json = document.to_json().expect("serialises");
        let expected = concat!(
            r#"{"Version":"2012-10-17","Statement":["#,
            r#"{"Sid":"ReadObjects","Effect":"Allow","Action":["s3:ListMultipartUploadParts"],"#,
            r#""Resource":["arn:aws:s3:::catch-all/*/*/*","arn:aws:s3:::catch-all/paul/*/*","#,
            r#""arn:aws:s3:::catch-all/paul/s1-*/*"]},"#,
            r#"{"Sid":"ReadDownloadObjects","Effect":"Allow","Action":["s3:GetObject","s3:ListMultipartUploadParts"],"#,
            r#""Resource":["arn:aws:s3:::catch-all/bob/*/*"]},"#,
            r#"{"Sid":"WriteDownloadObjects","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","#,
            r#""s3:DeleteObject","s3:ListMultipartUploadParts","s3:AbortMultipartUpload"],"#,
            r#""Resource":["arn:aws:s3:::catch-all/bob/*/*"]},"#,
            r#"{"Sid":"ListBucket1","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::catch-all"],"#,
            r#""Condition":{"StringLike":{"s3:prefix":["*/*","*/*/*","bob/*","bob/*/*","#,
            r#""paul/*","paul/*/*","paul/s1-*","paul/s1-*/*"]}}},"#,
            r#"{"Sid":"BucketLocation","Effect":"Allow","Action":["s3:GetBucketLocation"],"#,
            r#""Resource":["arn:aws:s3:::catch-all"]},"#,
            r#"{"Sid":"WriteBucketUploads","Effect":"Allow","Action":["s3:ListBucketMultipartUploads"],"#,
            r#""Resource":["arn:aws:s3:::catch-all"]}"#,
            r#"]}"#
        );
        assert_eq!(json, expected);
        // Nothing of the left-out paths reaches the JSON, nor does the report itself.
        assert!(!json.contains("-l1"), "{json}");
        assert!(!json.contains("left"), "{json}");
    }

    #[test]
    fn a_level_or_a_bucket_with_only_left_out_paths_gets_no_statement() {
        let mixed = rights(
            "bob",
            &[
                "rs_catalog_*:s1-l1_read",
                "rs_catalog_paul:s1-*-l1_write",
                "rs_catalog_paul:s1-l1_download",
            ],
            "*,s1-l1,*,1,bucket-l1\npaul,*,*,1,bucket-p\nemilie,*,*,1,bucket-e\n",
        );
        // Read: `*/s1-l1/` in every bucket; write: bucket-p/paul/s1-*-l1/; download:
        // bucket-l1/paul/s1-l1/ and bucket-p/paul/s1-l1/. bucket-e has left-out paths only.
        let document = PolicyDocument::for_rights(&mixed);
        assert_eq!(
            left_out(&document),
            [
                (RightsLevel::Read, "bucket-e/*/s1-l1/"),
                (RightsLevel::Read, "bucket-l1/*/s1-l1/"),
                (RightsLevel::Read, "bucket-p/*/s1-l1/"),
                (RightsLevel::WriteDownload, "bucket-p/paul/s1-*-l1/"),
            ]
        );
        assert_eq!(
            sids(&document),
            ["ReadDownloadObjects", "ListBucket1", "BucketLocation"]
        );
        let buckets = ["arn:aws:s3:::bucket-l1", "arn:aws:s3:::bucket-p"];
        let list = &document.statements()[1];
        assert_eq!(list.resources, buckets);
        assert_eq!(document.statements()[2].resources, buckets);
        assert_eq!(
            list.condition
                .as_ref()
                .map(|condition| &condition.string_like.prefixes),
            Some(&vec!["paul/s1-l1".to_owned(), "paul/s1-l1/*".to_owned()])
        );

        // Only left-out paths: no statement at all, every path reported.
        let only_inexact = rights("bob", &["rs_catalog_*:s1-l1_write"], "*,s1-l1,*,1,bucket-l1\n");
        let document = PolicyDocument::for_rights(&only_inexact);
        assert!(document.is_empty());
        assert_eq!(
            left_out(&document),
            [(RightsLevel::WriteDownload, "bucket-l1/*/s1-l1/")]
        );
        assert_eq!(
            document.to_json().expect("serialises"),
            r#"{"Version":"2012-10-17","Statement":[]}"#
        );
    }

    #[test]
    fn a_path_in_two_levels_is_reported_once_per_level() {
        let rights = rights(
            "bob",
            &["rs_catalog_*:s1-l1_download", "rs_catalog_*:s1-l1_write"],
            "*,s1-l1,*,1,bucket-l1\n",
        );
        let document = PolicyDocument::for_rights(&rights);
        assert_eq!(
            left_out(&document),
            [
                (RightsLevel::ReadDownload, "bucket-l1/*/s1-l1/"),
                (RightsLevel::WriteDownload, "bucket-l1/*/s1-l1/"),
            ]
        );
        let report = &document.left_out()[0];
        assert_eq!(report.to_string(), "read_download bucket-l1/*/s1-l1/");
        assert_eq!(
            serde_json::to_string(report).expect("serialises"),
            r#"{"level":"read_download","path":"bucket-l1/*/s1-l1/"}"#
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

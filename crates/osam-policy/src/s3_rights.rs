//! S3 rights: which `<bucket>/<owner>/<collection>/` paths a user may list, download or write,
//! computed from their catalog roles and the bucket configuration as the reference (rs-server
//! `build_s3_rights`) does, so both platforms give a user the same three lists
//! (`shared/conformance/s3-rights.yaml`).
//!
//! Where the reference is loose, osam is narrower, never wider: a glob has only `*` and `?` (a
//! `[...]` is literal, as in IAM); only the first `*,*,*` rule gives the user's own folder; and a
//! username that is empty or contains `/` gets none. What a path grants in object keys, and how
//! IAM expresses it, is in [`crate::policy_document`].

use rustc_hash::{FxHashMap, FxHashSet};

use crate::action::CatalogAction;
use crate::bucket_config::{BucketConfig, BucketName, BucketRule, RuleValue};
use crate::catalog_role::{CatalogRole, RolePattern};

/// The three levels of S3 rights, from the weakest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RightsLevel {
    /// Listing only: the paths of read roles without a download or write role on the same path.
    Read,
    /// Listing and downloading: the paths of download roles.
    ReadDownload,
    /// Listing, downloading and writing: the paths of write roles.
    WriteDownload,
}

impl RightsLevel {
    /// Every level, in the order of the lists and of the policy statements.
    pub const ALL: [RightsLevel; 3] = [
        RightsLevel::Read,
        RightsLevel::ReadDownload,
        RightsLevel::WriteDownload,
    ];

    /// The level's name, as the key of its list in the reference and in `osam rights --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RightsLevel::Read => "read",
            RightsLevel::ReadDownload => "read_download",
            RightsLevel::WriteDownload => "write_download",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The owner or collection part of a rights path: a role's value, which is a glob (`*` any run of
/// characters, `?` one character), or a username, which is always literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    Glob(String),
    Literal(String),
}

impl PathSegment {
    /// The segment as it appears in the rights path.
    pub fn as_str(&self) -> &str {
        match self {
            PathSegment::Glob(text) | PathSegment::Literal(text) => text,
        }
    }
}

/// One entry of a rights list: `<bucket>/<owner>/<collection>/`, with the owner and collection
/// kept typed so that the policy document knows which characters are wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RightsPath {
    bucket: BucketName,
    owner: PathSegment,
    collection: PathSegment,
    text: String,
}

impl RightsPath {
    fn new(bucket: &BucketName, owner: PathSegment, collection: PathSegment) -> RightsPath {
        let text = format!("{}/{}/{}/", bucket, owner.as_str(), collection.as_str());
        RightsPath {
            bucket: bucket.clone(),
            owner,
            collection,
            text,
        }
    }

    pub fn bucket(&self) -> &BucketName {
        &self.bucket
    }

    pub fn owner(&self) -> &PathSegment {
        &self.owner
    }

    pub fn collection(&self) -> &PathSegment {
        &self.collection
    }

    /// The path as the reference writes it, e.g. `bucket/owner/collection/`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A user's three rights lists, each sorted by byte order and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Rights {
    levels: [Vec<RightsPath>; 3],
}

impl S3Rights {
    /// Computes the rights of `username` from role strings; roles that are not catalog roles are
    /// ignored, as they are by the reference.
    pub fn compute<'role>(
        username: &str,
        roles: impl IntoIterator<Item = &'role str>,
        config: &BucketConfig,
    ) -> S3Rights {
        let catalog_roles: Vec<CatalogRole> = roles.into_iter().filter_map(CatalogRole::parse).collect();
        S3Rights::from_catalog_roles(username, &catalog_roles, config)
    }

    /// read = read paths − download paths − write paths (exact strings), read_download = download
    /// paths, write_download = write paths, and the user's own folder in the last two.
    pub fn from_catalog_roles(username: &str, roles: &[CatalogRole], config: &BucketConfig) -> S3Rights {
        let mut read = paths_for_action(roles, CatalogAction::Read, config);
        let mut download = paths_for_action(roles, CatalogAction::Download, config);
        let mut write = paths_for_action(roles, CatalogAction::Write, config);
        if let Some(own_folder) = own_folder(username, config) {
            // A role-derived path with the same text is kept: its glob covers the literal folder.
            download
                .entry(own_folder.text.clone())
                .or_insert_with(|| own_folder.clone());
            write.entry(own_folder.text.clone()).or_insert(own_folder);
        }
        read.retain(|text, _| !download.contains_key(text) && !write.contains_key(text));
        S3Rights {
            levels: [sorted(read), sorted(download), sorted(write)],
        }
    }

    /// The paths of one level, sorted by byte order.
    pub fn level(&self, level: RightsLevel) -> &[RightsPath] {
        &self.levels[level.index()]
    }

    /// The paths of one level as strings, sorted by byte order (the reference's list).
    pub fn level_strings(&self, level: RightsLevel) -> Vec<String> {
        self.level(level)
            .iter()
            .map(|path| path.as_str().to_owned())
            .collect()
    }

    /// Every path of every level, weakest level first.
    pub fn all_paths(&self) -> impl Iterator<Item = (RightsLevel, &RightsPath)> {
        RightsLevel::ALL
            .into_iter()
            .flat_map(move |level| self.level(level).iter().map(move |path| (level, path)))
    }
}

type PathsByText = FxHashMap<String, RightsPath>;

fn sorted(paths: PathsByText) -> Vec<RightsPath> {
    let mut paths: Vec<RightsPath> = paths.into_values().collect();
    paths.sort_unstable_by(|left, right| left.text.cmp(&right.text));
    paths
}

/// Every rule that matches a role of this action yields `<rule bucket>/<role owner>/<role
/// collection>/`: the role's values, not the rule's, so a glob role keeps its glob.
fn paths_for_action(roles: &[CatalogRole], action: CatalogAction, config: &BucketConfig) -> PathsByText {
    // Many rules share a bucket: deduplicate on borrowed parts before building any string.
    let mut seen: FxHashSet<(&str, &str, &str)> = FxHashSet::default();
    let mut paths = PathsByText::default();
    for role in roles.iter().filter(|role| role.action == action) {
        let matcher = RoleMatcher::new(role);
        for rule in config.rules_for_role_owner(matcher.literal_owner()) {
            if !matcher.matches(rule) {
                continue;
            }
            if !seen.insert((
                rule.bucket.as_str(),
                role.owner.as_str(),
                role.collection.as_str(),
            )) {
                continue;
            }
            let path = RightsPath::new(
                &rule.bucket,
                PathSegment::Glob(role.owner.as_str().to_owned()),
                PathSegment::Glob(role.collection.as_str().to_owned()),
            );
            paths.insert(path.text.clone(), path);
        }
    }
    paths
}

/// A catalog role prepared for matching many rules: whether its values have wildcards is decided
/// once, not per rule.
struct RoleMatcher<'role> {
    owner: ValueMatcher<'role>,
    collection: ValueMatcher<'role>,
}

impl<'role> RoleMatcher<'role> {
    fn new(role: &'role CatalogRole) -> RoleMatcher<'role> {
        RoleMatcher {
            owner: ValueMatcher::new(&role.owner),
            collection: ValueMatcher::new(&role.collection),
        }
    }

    /// A rule matches a role when its owner and its collection each match the role's value used
    /// as a glob; the product type plays no part.
    fn matches(&self, rule: &BucketRule) -> bool {
        self.owner.matches(&rule.owner) && self.collection.matches(&rule.collection)
    }

    /// The role's owner when it has no wildcard, so only that owner's rules need a look.
    fn literal_owner(&self) -> Option<&'role str> {
        match self.owner {
            ValueMatcher::Literal(owner) => Some(owner),
            ValueMatcher::Any | ValueMatcher::Glob(_) => None,
        }
    }
}

enum ValueMatcher<'role> {
    Any,
    Literal(&'role str),
    Glob(&'role str),
}

impl<'role> ValueMatcher<'role> {
    fn new(role_pattern: &'role RolePattern) -> ValueMatcher<'role> {
        match role_pattern {
            RolePattern::Any => ValueMatcher::Any,
            RolePattern::Exact(pattern) if pattern.contains(['*', '?']) => ValueMatcher::Glob(pattern),
            RolePattern::Exact(literal) => ValueMatcher::Literal(literal),
        }
    }

    /// A rule value `*` matches every role, a role value `*` every rule, and otherwise the rule's
    /// literal value must match the role's value as a glob.
    fn matches(&self, rule_value: &RuleValue) -> bool {
        match (rule_value, self) {
            (RuleValue::Any, _) | (_, ValueMatcher::Any) => true,
            (RuleValue::Exact(value), ValueMatcher::Literal(literal)) => value == literal,
            (RuleValue::Exact(value), ValueMatcher::Glob(pattern)) => glob_matches(pattern, value),
        }
    }
}

/// Every user may read, download and write `<catch-all bucket>/<username>/*/` when a `*,*,*` rule
/// exists; a username that is empty or contains `/` gets no folder, because it would name another
/// owner's collection instead of a folder of its own.
fn own_folder(username: &str, config: &BucketConfig) -> Option<RightsPath> {
    if username.is_empty() || username.contains('/') {
        return None;
    }
    let bucket = config.catch_all_bucket()?;
    Some(RightsPath::new(
        bucket,
        PathSegment::Literal(username.to_owned()),
        PathSegment::Glob("*".to_owned()),
    ))
}

/// Whether `value` matches `pattern`, where `*` matches any run of characters (empty included),
/// `?` exactly one character, and every other character itself (Python's `fnmatch` without the
/// `[...]` classes, which are taken literally here, as IAM takes them).
fn glob_matches(pattern: &str, value: &str) -> bool {
    let pattern = pattern.as_bytes();
    let value = value.as_bytes();
    let mut pattern_at = 0;
    let mut value_at = 0;
    // The last `*` seen: where the pattern resumes after it, and where its run currently ends.
    let mut last_star: Option<(usize, usize)> = None;
    while value_at < value.len() {
        match pattern.get(pattern_at) {
            Some(b'*') => {
                pattern_at += 1;
                last_star = Some((pattern_at, value_at));
                continue;
            }
            Some(b'?') => {
                pattern_at += 1;
                value_at += utf8_width(value[value_at]);
                continue;
            }
            Some(&byte) if byte == value[value_at] => {
                pattern_at += 1;
                value_at += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` swallow one more character, or fail if there was none.
        let Some((resume_at, run_end)) = last_star else {
            return false;
        };
        let longer_run_end = run_end + utf8_width(value[run_end]);
        last_star = Some((resume_at, longer_run_end));
        pattern_at = resume_at;
        value_at = longer_run_end;
    }
    pattern[pattern_at..].iter().all(|&byte| byte == b'*')
}

/// The byte length of the UTF-8 character starting with `first_byte`, so `?` and `*` step over
/// whole characters as Python's `fnmatch` does.
fn utf8_width(first_byte: u8) -> usize {
    match first_byte {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> BucketConfig {
        BucketConfig::parse(text).expect("valid configuration")
    }

    fn lists(rights: &S3Rights) -> [Vec<String>; 3] {
        RightsLevel::ALL.map(|level| rights.level_strings(level))
    }

    const NOTHING: [Vec<String>; 3] = [Vec::new(), Vec::new(), Vec::new()];

    #[test]
    fn glob_matches_like_fnmatch() {
        let cases = [
            ("s1-*", "s1-l1", true),
            ("s1-*", "s1-", true),
            ("s1-*", "s2-l1", false),
            ("*", "", true),
            ("*", "a/b", true),
            ("?", "a", true),
            ("?", "", false),
            ("?", "ab", false),
            ("?", "é", true),
            ("a?c", "aéc", true),
            ("*é", "caféé", true),
            ("*l1", "s1-l1", true),
            ("*-*-*", "a-b", false),
            ("*-*-*", "a-b-c", true),
            ("a*b*c", "abxbxc", true),
            ("a*b*c", "abxbx", false),
            ("[ab]", "a", false),
            ("[ab]", "[ab]", true),
            ("paul", "paul", true),
            ("paul", "Paul", false),
            ("**", "x", true),
        ];
        for (pattern, value, expected) in cases {
            assert_eq!(glob_matches(pattern, value), expected, "{pattern:?} vs {value:?}");
        }
    }

    #[test]
    fn paths_use_the_role_values_and_the_rule_bucket() {
        let config = config("copernicus,s1-l1,*,1,bucket-a\n*,s1-aux,*,1,bucket-b\ncop,s1-l1,*,1,bucket-c\n");
        let rights = S3Rights::compute("bob", ["rs_catalog_cop*:s1-*_write"], &config);
        assert_eq!(
            lists(&rights),
            [
                Vec::<String>::new(),
                Vec::new(),
                vec![
                    "bucket-a/cop*/s1-*/".to_owned(),
                    "bucket-b/cop*/s1-*/".to_owned(),
                    "bucket-c/cop*/s1-*/".to_owned(),
                ],
            ]
        );
    }

    #[test]
    fn read_excludes_exact_download_and_write_paths_only() {
        let config = config("*,*,*,1,catch-all\n");
        let rights = S3Rights::compute(
            "bob",
            [
                "rs_catalog_paul:s1_read",
                "rs_catalog_paul:s1_download",
                "rs_catalog_paul:*_read",
                "rs_catalog_emilie:s2_read",
                "rs_catalog_emilie:s2_write",
            ],
            &config,
        );
        // `paul/*/` is not removed by `paul/s1/`: the difference is on strings, not on globs.
        assert_eq!(
            rights.level_strings(RightsLevel::Read),
            vec!["catch-all/paul/*/".to_owned()]
        );
        assert_eq!(
            rights.level_strings(RightsLevel::ReadDownload),
            vec!["catch-all/bob/*/".to_owned(), "catch-all/paul/s1/".to_owned()]
        );
        assert_eq!(
            rights.level_strings(RightsLevel::WriteDownload),
            vec!["catch-all/bob/*/".to_owned(), "catch-all/emilie/s2/".to_owned()]
        );
    }

    #[test]
    fn the_own_folder_needs_a_catch_all_rule_and_a_single_segment_username() {
        let without_catch_all = config("paul,*,*,1,bucket-a\n");
        assert_eq!(lists(&S3Rights::compute("paul", [], &without_catch_all)), NOTHING);
        let with_catch_all = config("*,*,*,1,catch-all\n");
        for username in ["", "a/b"] {
            assert_eq!(
                lists(&S3Rights::compute(username, [], &with_catch_all)),
                NOTHING,
                "{username:?}"
            );
        }
        let rights = S3Rights::compute("st*r", [], &with_catch_all);
        let own = &rights.level(RightsLevel::WriteDownload)[0];
        assert_eq!(own.as_str(), "catch-all/st*r/*/");
        assert_eq!(own.owner(), &PathSegment::Literal("st*r".to_owned()));
    }

    #[test]
    fn a_role_path_equal_to_the_own_folder_keeps_its_glob() {
        let config = config("*,*,*,1,catch-all\n");
        let rights = S3Rights::compute("b*b", ["rs_catalog_b*b:*_write"], &config);
        let write = rights.level(RightsLevel::WriteDownload);
        assert_eq!(write.len(), 1);
        assert_eq!(write[0].owner(), &PathSegment::Glob("b*b".to_owned()));
        // The download level only has the literal folder.
        let download = rights.level(RightsLevel::ReadDownload);
        assert_eq!(download[0].owner(), &PathSegment::Literal("b*b".to_owned()));
    }

    #[test]
    fn lists_are_sorted_by_bytes_and_deduplicated() {
        let config = config("*,*,*,1,bkt\n*,*,*,1,bkt-c\np,*,*,1,bkt\n");
        let rights = S3Rights::compute("u", ["rs_catalog_p:x_read", "rs_catalog_p:x_read"], &config);
        // '-' (0x2d) sorts before '/' (0x2f).
        assert_eq!(
            rights.level_strings(RightsLevel::Read),
            vec!["bkt-c/p/x/".to_owned(), "bkt/p/x/".to_owned()]
        );
        let all: Vec<(RightsLevel, &str)> = rights
            .all_paths()
            .map(|(level, path)| (level, path.as_str()))
            .collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].0, RightsLevel::Read);
        assert_eq!(all[3], (RightsLevel::WriteDownload, "bkt/u/*/"));
    }
}

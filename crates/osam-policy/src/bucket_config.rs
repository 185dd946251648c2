//! The bucket configuration: which bucket holds which owner's collections, from the CSV
//! `owner,collection,product_type,expiration_days,bucket` shared with the reference platform.
//! Parsed once into typed rules; a broken file is rejected whole, with the line and column.

use std::fmt;

use rustc_hash::FxHashMap;
use thiserror::Error;

/// The columns of a configuration row, in file order (1-based column = index + 1).
const COLUMN_NAMES: [&str; 5] = ["owner", "collection", "product_type", "expiration_days", "bucket"];
const OWNER_COLUMN: usize = 1;
const COLLECTION_COLUMN: usize = 2;
const PRODUCT_TYPE_COLUMN: usize = 3;
const EXPIRATION_COLUMN: usize = 4;
const BUCKET_COLUMN: usize = 5;

/// A problem in the bucket configuration, naming the 1-based line and column where it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BucketConfigError {
    #[error(
        "bucket configuration line {line}: expected 5 columns \
         (owner,collection,product_type,expiration_days,bucket), found {found}; \
         column {column} is the first one missing or extra"
    )]
    WrongColumnCount {
        line: usize,
        column: usize,
        found: usize,
    },
    #[error("bucket configuration line {line}, column {column} ({}): the value is empty", column_name(*.column))]
    EmptyValue { line: usize, column: usize },
    #[error(
        "bucket configuration line {line}, column {column} (expiration_days): \
         {value:?} is not a whole number of days"
    )]
    NonNumericExpiration {
        line: usize,
        column: usize,
        value: String,
    },
    #[error("bucket configuration line {line}, column {column} (bucket): the bucket name is empty")]
    EmptyBucketName { line: usize, column: usize },
    #[error(
        "bucket configuration line {line}, column {column} (bucket): {name:?} is not a valid S3 bucket name: {reason}"
    )]
    InvalidBucketName {
        line: usize,
        column: usize,
        name: String,
        reason: BucketNameError,
    },
}

impl BucketConfigError {
    /// The 1-based line of the file where the problem is.
    pub fn line(&self) -> usize {
        match self {
            BucketConfigError::WrongColumnCount { line, .. }
            | BucketConfigError::EmptyValue { line, .. }
            | BucketConfigError::NonNumericExpiration { line, .. }
            | BucketConfigError::EmptyBucketName { line, .. }
            | BucketConfigError::InvalidBucketName { line, .. } => *line,
        }
    }

    /// The 1-based column (CSV field) where the problem is.
    pub fn column(&self) -> usize {
        match self {
            BucketConfigError::WrongColumnCount { column, .. }
            | BucketConfigError::EmptyValue { column, .. }
            | BucketConfigError::NonNumericExpiration { column, .. }
            | BucketConfigError::EmptyBucketName { column, .. }
            | BucketConfigError::InvalidBucketName { column, .. } => *column,
        }
    }
}

fn column_name(column: usize) -> &'static str {
    column
        .checked_sub(1)
        .and_then(|index| COLUMN_NAMES.get(index))
        .copied()
        .unwrap_or("unknown")
}

/// Why a string is not an S3 bucket name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BucketNameError {
    #[error("it has {0} characters, a bucket name has 3 to 63")]
    WrongLength(usize),
    #[error("{0:?} is not allowed; use lowercase letters, digits, dots and hyphens")]
    InvalidCharacter(char),
    #[error("it must start and end with a lowercase letter or a digit")]
    BadFirstOrLastCharacter,
    #[error("it contains two adjacent dots")]
    AdjacentDots,
    #[error("it is formatted as an IP address")]
    IpAddress,
}

/// A valid S3 bucket name (general-purpose bucket naming rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

impl BucketName {
    /// Accepts a bucket name iff it has 3 to 63 characters, only lowercase letters, digits, dots and
    /// hyphens, starts and ends with a letter or digit, has no `..` and is not an IPv4 address.
    pub fn parse(name: &str) -> Result<BucketName, BucketNameError> {
        let length = name.chars().count();
        if !(3..=63).contains(&length) {
            return Err(BucketNameError::WrongLength(length));
        }
        if let Some(invalid) = name
            .chars()
            .find(|character| !matches!(character, 'a'..='z' | '0'..='9' | '.' | '-'))
        {
            return Err(BucketNameError::InvalidCharacter(invalid));
        }
        let is_letter_or_digit = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
        let bytes = name.as_bytes();
        // Length was checked above, so the first and last bytes exist (and are ASCII by now).
        let edges_ok = bytes.first().copied().is_some_and(is_letter_or_digit)
            && bytes.last().copied().is_some_and(is_letter_or_digit);
        if !edges_ok {
            return Err(BucketNameError::BadFirstOrLastCharacter);
        }
        if name.contains("..") {
            return Err(BucketNameError::AdjacentDots);
        }
        if looks_like_ipv4_address(name) {
            return Err(BucketNameError::IpAddress);
        }
        Ok(BucketName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// S3 refuses names "formatted as an IP address": four dot-separated groups of digits, whether or
/// not each group is a valid octet.
fn looks_like_ipv4_address(name: &str) -> bool {
    let groups: Vec<&str> = name.split('.').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|group| !group.is_empty() && group.bytes().all(|byte| byte.is_ascii_digit()))
}

/// The owner, collection or product type of a rule: `*` matches every value, anything else is a
/// literal value (a rule never holds a partial glob; globs come from the roles).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleValue {
    Any,
    Exact(String),
}

impl RuleValue {
    fn from_field(field: &str) -> RuleValue {
        if field == "*" {
            RuleValue::Any
        } else {
            RuleValue::Exact(field.to_owned())
        }
    }

    /// The value as written in the file (`*` for any).
    pub fn as_str(&self) -> &str {
        match self {
            RuleValue::Any => "*",
            RuleValue::Exact(value) => value,
        }
    }
}

/// One row of the configuration: where products of an owner, collection and product type go, and
/// how long they are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRule {
    pub owner: RuleValue,
    pub collection: RuleValue,
    pub product_type: RuleValue,
    pub expiration_days: u32,
    pub bucket: BucketName,
    /// The 1-based line of the file the rule comes from, to explain decisions.
    pub line: usize,
}

impl BucketRule {
    /// A rule is the catch-all when owner, collection and product type are all `*`.
    pub fn is_catch_all(&self) -> bool {
        self.owner == RuleValue::Any
            && self.collection == RuleValue::Any
            && self.product_type == RuleValue::Any
    }
}

/// The parsed configuration, rules in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketConfig {
    rules: Vec<BucketRule>,
    /// Positions of the rules by literal owner, and of those with owner `*`: a role naming one
    /// owner can only match these, which keeps rights for many roles over many rules cheap.
    rules_by_owner: FxHashMap<String, Vec<usize>>,
    any_owner_rules: Vec<usize>,
}

impl BucketConfig {
    /// Parses the CSV: no header, no quoting, five comma-separated columns per line, whitespace
    /// around values ignored, blank lines skipped; the first error rejects the whole file.
    pub fn parse(text: &str) -> Result<BucketConfig, BucketConfigError> {
        // Spreadsheet exports often start with a byte-order mark; it is not part of the owner.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, line_text) in text.lines().enumerate() {
            if line_text.trim().is_empty() {
                continue;
            }
            rules.push(parse_rule(index + 1, line_text)?);
        }
        let mut rules_by_owner: FxHashMap<String, Vec<usize>> = FxHashMap::default();
        let mut any_owner_rules = Vec::new();
        for (position, rule) in rules.iter().enumerate() {
            match &rule.owner {
                RuleValue::Any => any_owner_rules.push(position),
                RuleValue::Exact(owner) => rules_by_owner.entry(owner.clone()).or_default().push(position),
            }
        }
        Ok(BucketConfig {
            rules,
            rules_by_owner,
            any_owner_rules,
        })
    }

    /// Every rule, in file order (as `GetStorageConfiguration` returns them).
    pub fn rules(&self) -> &[BucketRule] {
        &self.rules
    }

    /// The catch-all bucket is the bucket of the first `*,*,*` rule; later ones are shadowed, as in
    /// the reference's storage settings.
    pub fn catch_all_bucket(&self) -> Option<&BucketName> {
        self.rules
            .iter()
            .find(|rule| rule.is_catch_all())
            .map(|rule| &rule.bucket)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules whose owner can match a role owner: with `Some(owner)` (a literal role owner)
    /// only the rules for that owner and those for `*`, in no particular order; with `None` (a
    /// glob role owner) every rule.
    pub(crate) fn rules_for_role_owner(
        &self,
        literal_owner: Option<&str>,
    ) -> impl Iterator<Item = &BucketRule> {
        let every_rule = literal_owner
            .is_none()
            .then(|| self.rules.iter())
            .into_iter()
            .flatten();
        let indexed_rules = literal_owner
            .map(|owner| {
                let exact_owner_rules = self.rules_by_owner.get(owner).into_iter().flatten();
                self.any_owner_rules.iter().chain(exact_owner_rules)
            })
            .into_iter()
            .flatten()
            .map(|&position| &self.rules[position]);
        every_rule.chain(indexed_rules)
    }
}

/// One non-blank line into a rule; `line` is 1-based.
fn parse_rule(line: usize, line_text: &str) -> Result<BucketRule, BucketConfigError> {
    let fields: Vec<&str> = line_text.split(',').map(str::trim).collect();
    if fields.len() != COLUMN_NAMES.len() {
        let first_missing_or_extra = fields.len().min(COLUMN_NAMES.len()) + 1;
        return Err(BucketConfigError::WrongColumnCount {
            line,
            column: first_missing_or_extra,
            found: fields.len(),
        });
    }
    let field = |column: usize| fields[column - 1];
    for column in [
        OWNER_COLUMN,
        COLLECTION_COLUMN,
        PRODUCT_TYPE_COLUMN,
        EXPIRATION_COLUMN,
    ] {
        if field(column).is_empty() {
            return Err(BucketConfigError::EmptyValue { line, column });
        }
    }
    let expiration_text = field(EXPIRATION_COLUMN);
    let expiration_days =
        expiration_text
            .parse::<u32>()
            .map_err(|_| BucketConfigError::NonNumericExpiration {
                line,
                column: EXPIRATION_COLUMN,
                value: expiration_text.to_owned(),
            })?;
    let bucket_text = field(BUCKET_COLUMN);
    if bucket_text.is_empty() {
        return Err(BucketConfigError::EmptyBucketName {
            line,
            column: BUCKET_COLUMN,
        });
    }
    let bucket = BucketName::parse(bucket_text).map_err(|reason| BucketConfigError::InvalidBucketName {
        line,
        column: BUCKET_COLUMN,
        name: bucket_text.to_owned(),
        reason,
    })?;
    Ok(BucketRule {
        owner: RuleValue::from_field(field(OWNER_COLUMN)),
        collection: RuleValue::from_field(field(COLLECTION_COLUMN)),
        product_type: RuleValue::from_field(field(PRODUCT_TYPE_COLUMN)),
        expiration_days,
        bucket,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_in_file_order_with_spaces_and_blank_lines() {
        let config = BucketConfig::parse(
            "copernicus, s1-l1, *, 100, bucket-a\n\n  \r\n*,*,*,30,catch-all\r\npaul , * , x ,7, bucket-b\n",
        )
        .expect("valid");
        let rules = config.rules();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].owner, RuleValue::Exact("copernicus".into()));
        assert_eq!(rules[0].collection, RuleValue::Exact("s1-l1".into()));
        assert_eq!(rules[0].product_type, RuleValue::Any);
        assert_eq!(rules[0].expiration_days, 100);
        assert_eq!(rules[0].bucket.as_str(), "bucket-a");
        assert_eq!(rules[0].line, 1);
        assert_eq!(rules[1].line, 4);
        assert_eq!(rules[2].owner.as_str(), "paul");
        assert_eq!(rules[2].product_type.as_str(), "x");
        assert_eq!(rules[2].line, 5);
        assert_eq!(
            config.catch_all_bucket().map(BucketName::as_str),
            Some("catch-all")
        );
    }

    #[test]
    fn the_first_catch_all_row_wins_and_partial_wildcards_are_not_catch_alls() {
        let config = BucketConfig::parse("*,*,x,1,not-this\n*,*,*,1,first\n*,*,*,1,second\n").expect("valid");
        assert_eq!(config.catch_all_bucket().map(BucketName::as_str), Some("first"));
        let without = BucketConfig::parse("*,*,x,1,bucket-a\n").expect("valid");
        assert_eq!(without.catch_all_bucket(), None);
        assert!(BucketConfig::parse("\n\n").expect("valid").is_empty());
    }

    #[test]
    fn a_wrong_column_count_names_the_line_and_the_first_missing_or_extra_column() {
        let too_few = BucketConfig::parse("*,*,*,1,bucket-a\na,b,c,1\n").unwrap_err();
        assert_eq!(
            too_few,
            BucketConfigError::WrongColumnCount {
                line: 2,
                column: 5,
                found: 4
            }
        );
        let too_many = BucketConfig::parse("a,b,c,1,bucket-a,extra").unwrap_err();
        assert_eq!((too_many.line(), too_many.column()), (1, 6));
        assert!(too_many.to_string().contains("line 1"), "{too_many}");
    }

    #[test]
    fn a_non_numeric_expiration_names_line_and_column() {
        for value in ["ten", "-1", "1.5", "99999999999"] {
            let error = BucketConfig::parse(&format!("\na,b,c,{value},bucket-a")).unwrap_err();
            assert_eq!(
                error,
                BucketConfigError::NonNumericExpiration {
                    line: 2,
                    column: 4,
                    value: value.to_owned()
                }
            );
            assert!(error.to_string().contains("expiration_days"), "{error}");
        }
    }

    #[test]
    fn empty_values_and_bucket_names_are_rejected() {
        assert_eq!(
            BucketConfig::parse("a,b,c,1, ").unwrap_err(),
            BucketConfigError::EmptyBucketName { line: 1, column: 5 }
        );
        let empty_collection = BucketConfig::parse("a,,c,1,bucket-a").unwrap_err();
        assert_eq!(
            empty_collection,
            BucketConfigError::EmptyValue { line: 1, column: 2 }
        );
        assert!(
            empty_collection.to_string().contains("(collection)"),
            "{empty_collection}"
        );
    }

    #[test]
    fn invalid_bucket_names_name_the_reason() {
        let cases = [
            ("ab", BucketNameError::WrongLength(2)),
            (&"a".repeat(64), BucketNameError::WrongLength(64)),
            ("Bucket", BucketNameError::InvalidCharacter('B')),
            ("my_bucket", BucketNameError::InvalidCharacter('_')),
            ("my bucket", BucketNameError::InvalidCharacter(' ')),
            ("-bucket", BucketNameError::BadFirstOrLastCharacter),
            ("bucket.", BucketNameError::BadFirstOrLastCharacter),
            ("my..bucket", BucketNameError::AdjacentDots),
            ("192.168.5.4", BucketNameError::IpAddress),
            ("999.1.1.1", BucketNameError::IpAddress),
        ];
        for (name, reason) in cases {
            let error = BucketConfig::parse(&format!("a,b,c,1,{name}")).unwrap_err();
            assert_eq!(
                error,
                BucketConfigError::InvalidBucketName {
                    line: 1,
                    column: 5,
                    name: name.to_owned(),
                    reason
                },
                "{name}"
            );
        }
    }

    #[test]
    fn valid_bucket_names_are_accepted() {
        for name in [
            "abc",
            "a.b-c",
            "rspython-ops-catalog",
            "1.2.3",
            "1.2.3.4.5",
            &"a".repeat(63),
        ] {
            assert_eq!(
                BucketName::parse(name).map(|bucket| bucket.to_string()),
                Ok(name.to_owned())
            );
        }
    }

    #[test]
    fn rules_for_a_literal_owner_are_that_owners_and_the_wildcard_ones() {
        let config = BucketConfig::parse("a,x,*,1,bkt-1\n*,x,*,1,bkt-2\nb,x,*,1,bkt-3\na,y,*,1,bkt-4\n")
            .expect("valid");
        let buckets = |owner: Option<&str>| {
            let mut buckets: Vec<&str> = config
                .rules_for_role_owner(owner)
                .map(|rule| rule.bucket.as_str())
                .collect();
            buckets.sort_unstable();
            buckets
        };
        assert_eq!(buckets(Some("a")), ["bkt-1", "bkt-2", "bkt-4"]);
        assert_eq!(buckets(Some("nobody")), ["bkt-2"]);
        assert_eq!(buckets(None), ["bkt-1", "bkt-2", "bkt-3", "bkt-4"]);
    }

    #[test]
    fn the_first_error_stops_the_parse() {
        let error = BucketConfig::parse("a,b,c,x,bucket-a\na,b\n").unwrap_err();
        assert_eq!(error.line(), 1);
    }
}

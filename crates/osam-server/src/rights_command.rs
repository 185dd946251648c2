//! `osam rights`: a user's S3 rights lists and policy document computed offline from roles and a
//! bucket configuration file, so an operator can review a policy before it is applied.

use std::path::Path;

use osam_policy::bucket_config::BucketConfig;
use osam_policy::policy_document::PolicyDocument;
use osam_policy::s3_rights::{RightsLevel, S3Rights};
use serde_json::{Map, Value};

/// The rights and policy of `username` with `roles`, as text for people or one JSON object with the
/// keys `read`, `read_download`, `write_download` (sorted lists) and `policy` for scripts.
pub fn render(username: &str, roles: &[String], bucket_config: &Path, json: bool) -> Result<String, String> {
    let text = std::fs::read_to_string(bucket_config)
        .map_err(|error| format!("{}: {error}", bucket_config.display()))?;
    let config =
        BucketConfig::parse(&text).map_err(|error| format!("{}: {error}", bucket_config.display()))?;
    let rights = S3Rights::compute(username, roles.iter().map(String::as_str), &config);
    let document = PolicyDocument::for_rights(&rights);
    let policy = document.to_json_pretty().map_err(|error| error.to_string())?;
    if json {
        let mut object = Map::new();
        for level in RightsLevel::ALL {
            object.insert(
                level.as_str().to_owned(),
                Value::from(rights.level_strings(level)),
            );
        }
        let policy_value: Value = serde_json::from_str(&policy).map_err(|error| error.to_string())?;
        object.insert("policy".to_owned(), policy_value);
        return serde_json::to_string_pretty(&Value::Object(object)).map_err(|error| error.to_string());
    }
    let mut out = String::new();
    for level in RightsLevel::ALL {
        out.push_str(&format!("{}:\n", level.as_str()));
        let paths = rights.level_strings(level);
        if paths.is_empty() {
            out.push_str("  (none)\n");
        }
        for path in paths {
            out.push_str(&format!("  {path}\n"));
        }
    }
    out.push_str("policy:\n");
    out.push_str(&policy);
    out.push('\n');
    Ok(out)
}

//! `osam rights`: a user's S3 rights lists and policy document computed offline from roles and a
//! bucket configuration file, so an operator can review a policy before it is applied.

use std::path::Path;

use osam_policy::bucket_config::BucketConfig;
use osam_policy::policy_document::PolicyDocument;
use osam_policy::s3_rights::{RightsLevel, S3Rights};

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
        // The policy is embedded as the exact text ApplyUserRights sends (re-parsing it into a
        // map would reorder its keys), so what an operator reviews is byte for byte what applies.
        let mut fields = Vec::new();
        for level in RightsLevel::ALL {
            let paths =
                serde_json::to_string(&rights.level_strings(level)).map_err(|error| error.to_string())?;
            fields.push(format!("  \"{}\": {paths}", level.as_str()));
        }
        let left_out = serde_json::to_string(document.left_out()).map_err(|error| error.to_string())?;
        fields.push(format!("  \"not_enforceable\": {left_out}"));
        fields.push(format!("  \"policy\": {}", policy.replace('\n', "\n  ")));
        return Ok(format!("{{\n{}\n}}", fields.join(",\n")));
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
    if !document.left_out().is_empty() {
        out.push_str("not enforceable on S3 (IAM would widen them; left out of the policy):\n");
        for left_out in document.left_out() {
            out.push_str(&format!("  {left_out}\n"));
        }
    }
    out.push_str("policy:\n");
    out.push_str(&policy);
    out.push('\n');
    Ok(out)
}

//! Building an S3 client for AWS or an S3-compatible server (MinIO, Ceph, OVH, moto): endpoint,
//! region, path-style addressing and static credentials, all from osam's configuration.

use std::fmt;

use aws_credential_types::Credentials;
use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Region};

/// Where and how to reach the object store. The Debug output never shows the secret key.
#[derive(Clone)]
pub struct S3Settings {
    /// The endpoint URL; `None` for AWS's regional endpoints.
    pub endpoint: Option<String>,
    pub region: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`, as most
    /// S3-compatible servers need.
    pub force_path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The timeouts of every SDK call osam makes (S3 and IAM): a stalled endpoint must not hang
/// start-up, a poller or a sync.
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// Fixed credentials from osam's configuration (no SDK credential chain: the configuration says
/// exactly which key is used).
pub fn static_credentials(access_key_id: &str, secret_access_key: &str) -> Credentials {
    Credentials::new(access_key_id, secret_access_key, None, None, "osam-configuration")
}

/// An S3 client for `settings`.
pub fn s3_client(settings: &S3Settings) -> aws_sdk_s3::Client {
    let credentials = static_credentials(&settings.access_key_id, &settings.secret_access_key);
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .force_path_style(settings.force_path_style)
        .timeout_config(sdk_timeouts());
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_secret() {
        let settings = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: "us-east-1".into(),
            force_path_style: true,
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "very-secret-value".into(),
        };
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("very-secret-value") && debug.contains("AKIAEXAMPLE"),
            "{debug}"
        );
    }
}

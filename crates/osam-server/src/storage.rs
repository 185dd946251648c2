//! The object-storage side of the server, composed from the configuration: the bucket
//! configuration source and the account provider, and the rights computation that joins them
//! with the directory.

use std::sync::Arc;
use std::time::Duration;

use osam_policy::DirectoryUser;
use osam_policy::accounts::{AccountProvider, MarkerTemplate, ProviderError};
use osam_policy::bucket_config::BucketConfig;
use osam_policy::bucket_source::BucketConfigSource;
use osam_policy::policy_document::PolicyDocument;
use osam_policy::s3_rights::S3Rights;
use osam_s3::{
    EmbeddedProvider, FileBucketConfig, IamProvider, ObjectBucketConfig, S3Settings, SealingKey, SecretStore,
};

use crate::config::{AccountProviderKind, BucketConfigSourceKind, Config, ConfigError};
use crate::error::ApiError;
use crate::metrics::InstrumentedProvider;

/// The example bucket configuration of the embedded development setup.
pub const EMBEDDED_BUCKETS: &str = include_str!("../../../deploy/examples/buckets.csv");

pub struct Storage {
    pub bucket_config: Arc<dyn BucketConfigSource>,
    pub accounts: Arc<dyn AccountProvider>,
    pub marker_template: MarkerTemplate,
}

/// A user's computed rights and the policy document they give.
pub struct ComputedRights {
    pub rights: S3Rights,
    pub policy_json: String,
    /// The document has no statement: applying it means removing the account's policy.
    pub grants_nothing: bool,
    /// Paths IAM cannot express without widening them, left out of the document ("level path").
    pub not_enforceable: Vec<String>,
}

impl Storage {
    /// Builds the sources and the provider, and starts the pollers.
    pub async fn start(config: &Config) -> Result<Storage, String> {
        let storage = &config.storage;
        let interval = Duration::from_secs(storage.poll_interval_seconds);
        let bucket_config: Arc<dyn BucketConfigSource> = match storage.bucket_config_source {
            BucketConfigSourceKind::File if storage.bucket_config_file.as_os_str().is_empty() => {
                Arc::new(FileBucketConfig::fixed(
                    "embedded example buckets (deploy/examples/buckets.csv)",
                    EMBEDDED_BUCKETS,
                )?)
            }
            BucketConfigSourceKind::File => {
                let source = Arc::new(FileBucketConfig::open(&storage.bucket_config_file));
                source.spawn_poller(interval);
                source
            }
            BucketConfigSourceKind::S3 => {
                let client = osam_s3::s3_client(&s3_settings(config).map_err(|error| error.to_string())?);
                let source = Arc::new(
                    ObjectBucketConfig::open(
                        client,
                        &storage.bucket_config_bucket,
                        &storage.bucket_config_key,
                    )
                    .await,
                );
                source.spawn_poller(interval);
                source
            }
        };
        let accounts: Arc<dyn AccountProvider> = match config.accounts.provider {
            AccountProviderKind::Embedded => Arc::new(
                EmbeddedProvider::open(&config.server.effective_state_dir())
                    .map_err(|error| error.to_string())?,
            ),
            AccountProviderKind::Iam => {
                let iam = &config.accounts.iam;
                let sealing_key = iam.resolved_sealing_key().map_err(|error| error.to_string())?;
                let sealing_key = SealingKey::parse(&sealing_key)
                    .map_err(|error| format!("accounts.iam.sealing_key: {error}"))?;
                let s3 = osam_s3::s3_client(&s3_settings(config).map_err(|error| error.to_string())?);
                let secrets = SecretStore::new(
                    s3,
                    iam.secrets_bucket.clone(),
                    iam.secrets_prefix.clone(),
                    sealing_key,
                );
                let settings = config.iam_settings().map_err(|error| error.to_string())?;
                let provider = IamProvider::new(&settings, secrets)
                    .map_err(|error| format!("accounts.iam.{}: {}", error.setting, error.problem))?;
                Arc::new(provider)
            }
        };
        let accounts: Arc<dyn AccountProvider> = Arc::new(InstrumentedProvider(accounts));
        let marker_template = MarkerTemplate::parse(&config.accounts.marker_template)?;
        Ok(Storage {
            bucket_config,
            accounts,
            marker_template,
        })
    }

    /// The current bucket configuration, or the precondition error naming where it comes from.
    pub fn bucket_config(&self) -> Result<Arc<BucketConfig>, ApiError> {
        self.bucket_config
            .current()
            .ok_or_else(|| ApiError::BucketConfigNotLoaded(self.bucket_config.origin()))
    }

    /// The rights and policy of a directory user.
    pub fn rights_of(&self, user: &DirectoryUser) -> Result<ComputedRights, ApiError> {
        let config = self.bucket_config()?;
        let rights = S3Rights::compute(&user.username, user.roles.iter().map(String::as_str), &config);
        let document = PolicyDocument::for_rights(&rights);
        let policy_json = document
            .to_json()
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        let not_enforceable = document.left_out().iter().map(ToString::to_string).collect();
        Ok(ComputedRights {
            rights,
            policy_json,
            grants_nothing: document.is_empty(),
            not_enforceable,
        })
    }

    /// The account linked to `username` by its ownership marker.
    pub async fn account_of(&self, username: &str) -> Result<String, ApiError> {
        let marker = self.marker_template.marker_for(username);
        let account = self
            .accounts
            .account_with_marker(&marker)
            .await
            .map_err(provider_error)?;
        account
            .map(|account| account.id)
            .ok_or_else(|| ApiError::NoAccount(username.to_owned()))
    }
}

/// The S3 connection settings of the configuration.
pub fn s3_settings(config: &Config) -> Result<S3Settings, ConfigError> {
    let s3 = &config.storage.s3;
    Ok(S3Settings {
        endpoint: Some(s3.endpoint.clone()).filter(|endpoint| !endpoint.is_empty()),
        region: s3.region.clone(),
        force_path_style: s3.force_path_style,
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: s3.resolved_secret()?,
    })
}

/// How a provider failure reaches the caller.
pub fn provider_error(error: ProviderError) -> ApiError {
    match error {
        ProviderError::NotFound(account) => ApiError::AccountNotFound(account),
        ProviderError::Rejected(reason) => ApiError::ProviderRejected(reason),
        ProviderError::SecretLost(account) => ApiError::SecretLost(account),
        ProviderError::Unavailable(reason) => ApiError::ProviderUnavailable(reason),
    }
}

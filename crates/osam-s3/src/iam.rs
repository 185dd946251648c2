//! The IAM account provider: each account is an IAM user under a path of osam's own (`/osam/`),
//! tagged with its ownership marker, with one access key and one inline policy. It works with any
//! IAM-compatible API (AWS, moto, Ceph RGW, ...). IAM never shows a secret key again after
//! CreateAccessKey, so each secret is sealed into a [`SecretStore`] before the account is returned.
//!
//! # A lost secret, and key rotation as the recovery
//!
//! A secret is lost when its sealed object is missing, does not open (another master key, an
//! altered or moved object), or belongs to an access key the user no longer has. Nothing can bring
//! it back: [`AccountProvider::credentials`] reports [`ProviderError::SecretLost`], and the way out
//! is to rotate the user's access key, which `create_account` does when called again with the
//! account's marker (the sync does this for a user whose link no longer yields credentials):
//!
//! 1. make room: IAM allows two keys per user, so if there are two, the oldest is deleted first;
//! 2. create the new key;
//! 3. seal its secret and store it, replacing the lost one; if storing fails, the new key is
//!    deleted again and the rotation reports the failure;
//! 4. only then delete the old keys.
//!
//! New key first, then delete the old: a client still holding the old secret keeps working until
//! the new one is safely stored, and a crash at any step leaves either a stored secret that works
//! or one that is reported lost and repaired by the next rotation. A stored secret never silently
//! belongs to a deleted key: the sealed object names its access key, and `credentials` checks that
//! the user still has it. Two replicas rotating at once converge the same way: the loser's key is
//! deleted or its stored secret is stale, and the next create rotates again.

use std::fmt;
use std::sync::Arc;

use aws_sdk_iam::config::{BehaviorVersion, Region};
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{AccessKeyMetadata, Tag};
use osam_policy::accounts::{
    Account, AccountCredentials, AccountProvider, ProviderError, ProviderFuture, Secret,
};

use crate::sealed::SecretStore;

/// The IAM path of osam's users, unless configured otherwise.
pub const DEFAULT_USER_PATH: &str = "/osam/";
/// The key of the tag holding the ownership marker, unless configured otherwise.
pub const DEFAULT_MARKER_TAG_KEY: &str = "osam-owner";
/// The name of the inline policy holding a user's rights, unless configured otherwise.
pub const DEFAULT_POLICY_NAME: &str = "osam-rights";

/// Every IAM user name osam derives starts with this.
const USER_NAME_PREFIX: &str = "osam-";
/// How much of the marker appears, made safe, in the user name (for people reading the console).
const READABLE_MARKER_CHARACTERS: usize = 32;
/// IAM's limit of access keys per user.
const MAX_ACCESS_KEYS_PER_USER: usize = 2;
/// How many users `list_accounts` describes at once (two calls each: tags and keys).
const LIST_CONCURRENCY: usize = 8;

/// Where the IAM API is and how osam's accounts look in it. Debug never shows the secret key.
#[derive(Clone)]
pub struct IamSettings {
    /// The endpoint URL; `None` for AWS's IAM endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The IAM path osam creates users under and lists users from, such as `/osam/`.
    pub user_path: String,
    /// The key of the user tag holding the ownership marker.
    pub marker_tag_key: String,
    /// The name of the inline user policy holding the account's rights.
    pub policy_name: String,
}

impl IamSettings {
    /// Settings for the IAM API at `endpoint`, with the default path, tag key and policy name.
    pub fn new(
        endpoint: Option<String>,
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> IamSettings {
        IamSettings {
            endpoint,
            region: region.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            user_path: DEFAULT_USER_PATH.to_owned(),
            marker_tag_key: DEFAULT_MARKER_TAG_KEY.to_owned(),
            policy_name: DEFAULT_POLICY_NAME.to_owned(),
        }
    }

    /// Checks the path, tag key and policy name against IAM's rules, so a mistake shows at
    /// start-up instead of as a failure of every call.
    pub fn validate(&self) -> Result<(), IamSettingsError> {
        let invalid = |setting: &'static str, problem: String| IamSettingsError { setting, problem };
        let path = &self.user_path;
        if path.len() < 3 || !path.starts_with('/') || !path.ends_with('/') {
            return Err(invalid(
                "user_path",
                format!(
                    "{path:?} is not a path of osam's own: it must start and end with / and name a folder, such as {DEFAULT_USER_PATH:?} (/ alone would list every IAM user)"
                ),
            ));
        }
        if path.len() > 512 || !path.chars().all(|c| ('!'..='~').contains(&c)) {
            return Err(invalid(
                "user_path",
                format!("{path:?} must be at most 512 printable ASCII characters without spaces"),
            ));
        }
        let tag_key = &self.marker_tag_key;
        let tag_key_character = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
        if tag_key.is_empty()
            || tag_key.chars().count() > 128
            || !tag_key.chars().all(tag_key_character)
            || tag_key.to_ascii_lowercase().starts_with("aws:")
        {
            return Err(invalid(
                "marker_tag_key",
                format!(
                    "{tag_key:?} is not an IAM tag key: 1 to 128 letters, digits, spaces or _.:/=+-@, not starting with aws:"
                ),
            ));
        }
        let policy_name = &self.policy_name;
        if policy_name.is_empty()
            || policy_name.len() > 128
            || !policy_name.chars().all(is_iam_name_character)
        {
            return Err(invalid(
                "policy_name",
                format!("{policy_name:?} is not an IAM policy name: 1 to 128 letters, digits or +=,.@_-"),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for IamSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IamSettings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("user_path", &self.user_path)
            .field("marker_tag_key", &self.marker_tag_key)
            .field("policy_name", &self.policy_name)
            .finish()
    }
}

/// A setting of the IAM provider that IAM would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IAM provider setting {setting}: {problem}")]
pub struct IamSettingsError {
    pub setting: &'static str,
    pub problem: String,
}

/// An IAM client for `settings`, every call bounded in time like the S3 client's.
pub fn iam_client(settings: &IamSettings) -> aws_sdk_iam::Client {
    let credentials = crate::client::static_credentials(&settings.access_key_id, &settings.secret_access_key);
    let mut config = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .timeout_config(crate::client::sdk_timeouts());
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_iam::Client::from_conf(config.build())
}

/// The IAM user name of the account carrying `marker`: `osam-`, the marker's first characters
/// with anything IAM refuses replaced by `-`, then 16 hex digits of the marker's SHA-256. The same
/// marker always gives the same name, so a create retried after a timeout finds the user it
/// already made instead of making a second one; the hash keeps markers that differ only in case
/// or in replaced characters apart (IAM user names are case-insensitive). At most 54 characters.
pub fn iam_user_name(marker: &str) -> String {
    let readable: String = marker
        .chars()
        .take(READABLE_MARKER_CHARACTERS)
        .map(|c| if is_iam_name_character(c) { c } else { '-' })
        .collect();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, marker.as_bytes());
    let hash: String = digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{USER_NAME_PREFIX}{readable}-{hash}")
}

/// The characters IAM allows in user and policy names.
fn is_iam_name_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// Accounts as IAM users, secrets sealed in a [`SecretStore`].
pub struct IamProvider {
    client: aws_sdk_iam::Client,
    secrets: SecretStore,
    user_path: String,
    marker_tag_key: String,
    policy_name: String,
}

impl IamProvider {
    /// The provider for `settings`, validated; no call is made yet.
    pub fn new(settings: &IamSettings, secrets: SecretStore) -> Result<IamProvider, IamSettingsError> {
        settings.validate()?;
        Ok(IamProvider {
            client: iam_client(settings),
            secrets,
            user_path: settings.user_path.clone(),
            marker_tag_key: settings.marker_tag_key.clone(),
            policy_name: settings.policy_name.clone(),
        })
    }

    async fn list(&self) -> Result<Vec<Account>, ProviderError> {
        let users = self
            .client
            .list_users()
            .path_prefix(&self.user_path)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|error| sort_failure("ListUsers", error).unexpected())?;
        // Two calls per user: a bounded number of users is described at once.
        let permits = Arc::new(tokio::sync::Semaphore::new(LIST_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, user) in users.iter().enumerate() {
            let client = self.client.clone();
            let tag_key = self.marker_tag_key.clone();
            let user_name = user.user_name().to_owned();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (index, describe_user(&client, &tag_key, &user_name).await)
            });
        }
        let mut accounts = Vec::with_capacity(users.len());
        while let Some(joined) = tasks.join_next().await {
            let (index, described) = joined.map_err(|error| ProviderError::Unavailable(error.to_string()))?;
            if let Some(account) = described? {
                accounts.push((index, account));
            }
        }
        accounts.sort_by_key(|(index, _)| *index);
        Ok(accounts.into_iter().map(|(_, account)| account).collect())
    }

    async fn create(&self, marker: &str) -> Result<(Account, AccountCredentials), ProviderError> {
        let user_name = iam_user_name(marker);
        let owner_tag = Tag::builder()
            .key(&self.marker_tag_key)
            .value(marker)
            .build()
            .map_err(|error| ProviderError::Rejected(error.to_string()))?;
        let created = self
            .client
            .create_user()
            .path(&self.user_path)
            .user_name(&user_name)
            .tags(owner_tag)
            .send()
            .await;
        let credentials = match created {
            Ok(_) => {
                tracing::info!(account = %user_name, marker, "created the IAM user");
                let fresh = self.create_key(&user_name).await?;
                self.store_new_key(&user_name, fresh).await?
            }
            Err(error) => match sort_failure("CreateUser", error) {
                // A retry of an earlier create, or a create whose secret was lost.
                IamFailure::AlreadyExists(_) => {
                    self.check_owned(&user_name, marker).await?;
                    self.ensure_stored_key(&user_name).await?
                }
                other => return Err(other.for_account(&user_name)),
            },
        };
        let account = Account {
            id: user_name,
            marker: marker.to_owned(),
            access_key_id: credentials.access_key_id.clone(),
        };
        Ok((account, credentials))
    }

    /// Refuses an existing user that is not this marker's account: one made by someone else, or
    /// for another marker whose name collides, is never taken over.
    async fn check_owned(&self, user_name: &str, marker: &str) -> Result<(), ProviderError> {
        let user = self
            .client
            .get_user()
            .user_name(user_name)
            .send()
            .await
            .map_err(|error| sort_failure("GetUser", error).for_account(user_name))?;
        let path = user.user().map(|user| user.path()).unwrap_or_default();
        let tags = user_tags(&self.client, user_name)
            .await
            .map_err(|failure| failure.for_account(user_name))?;
        let owner = owner_marker(&tags, &self.marker_tag_key);
        if path != self.user_path || owner.as_deref() != Some(marker) {
            return Err(ProviderError::Rejected(format!(
                "the IAM user {user_name} already exists but is not the account for {marker:?} (path {path}, tag {} = {owner:?}); osam does not take it over",
                self.marker_tag_key
            )));
        }
        Ok(())
    }

    /// The credentials of an existing user of osam's: the stored ones if they are still the
    /// user's, otherwise those of a rotated key.
    async fn ensure_stored_key(&self, user_name: &str) -> Result<AccountCredentials, ProviderError> {
        let keys = access_keys(&self.client, user_name)
            .await
            .map_err(|failure| failure.for_account(user_name))?;
        match self.secrets.get(user_name).await {
            Ok(stored) if has_key(&keys, &stored.access_key_id) => return Ok(stored),
            Ok(stored) => tracing::warn!(
                account = user_name,
                access_key_id = %stored.access_key_id,
                "the stored secret is of an access key the user no longer has; rotating"
            ),
            Err(ProviderError::SecretLost(_)) => {
                tracing::warn!(account = user_name, "the secret is lost; rotating the access key");
            }
            Err(other) => return Err(other),
        }
        self.rotate(user_name, keys).await
    }

    /// New key first, then delete the old (see the module documentation).
    async fn rotate(
        &self,
        user_name: &str,
        mut old_keys: Vec<AccessKeyMetadata>,
    ) -> Result<AccountCredentials, ProviderError> {
        while old_keys.len() >= MAX_ACCESS_KEYS_PER_USER {
            let oldest = old_keys.remove(0);
            self.delete_key(user_name, oldest.access_key_id().unwrap_or_default())
                .await?;
        }
        let fresh = self.create_key(user_name).await?;
        let fresh = self.store_new_key(user_name, fresh).await?;
        for old in &old_keys {
            self.delete_key(user_name, old.access_key_id().unwrap_or_default())
                .await?;
        }
        tracing::info!(
            account = user_name,
            access_key_id = %fresh.access_key_id,
            deleted_keys = old_keys.len(),
            "rotated the access key"
        );
        Ok(fresh)
    }

    async fn create_key(&self, user_name: &str) -> Result<AccountCredentials, ProviderError> {
        let created = self
            .client
            .create_access_key()
            .user_name(user_name)
            .send()
            .await
            .map_err(|error| sort_failure("CreateAccessKey", error).for_account(user_name))?;
        let key = created.access_key().ok_or_else(|| {
            ProviderError::Unavailable(format!("CreateAccessKey for {user_name} returned no key"))
        })?;
        Ok(AccountCredentials {
            access_key_id: key.access_key_id().to_owned(),
            secret_access_key: Secret::new(key.secret_access_key()),
        })
    }

    /// Seals and stores a key just created. A key whose secret cannot be stored is useless to
    /// osam, so it is deleted again (as far as possible) before the failure is reported.
    async fn store_new_key(
        &self,
        user_name: &str,
        fresh: AccountCredentials,
    ) -> Result<AccountCredentials, ProviderError> {
        if let Err(error) = self.secrets.put(user_name, &fresh).await {
            if let Err(cleanup) = self.delete_key(user_name, &fresh.access_key_id).await {
                tracing::warn!(
                    account = user_name,
                    access_key_id = %fresh.access_key_id,
                    %cleanup,
                    "an access key whose secret could not be stored is left behind; the next rotation deletes it"
                );
            }
            return Err(error);
        }
        Ok(fresh)
    }

    /// Deletes one access key; one already gone is fine.
    async fn delete_key(&self, user_name: &str, access_key_id: &str) -> Result<(), ProviderError> {
        let deleted = self
            .client
            .delete_access_key()
            .user_name(user_name)
            .access_key_id(access_key_id)
            .send()
            .await;
        ignore_missing(deleted.map(|_| ()), "DeleteAccessKey", user_name)
    }

    async fn delete(&self, user_name: &str) -> Result<(), ProviderError> {
        let user = match self.client.get_user().user_name(user_name).send().await {
            Ok(user) => user,
            Err(error) => {
                let failure = sort_failure("GetUser", error);
                if matches!(failure, IamFailure::NoSuchEntity(_)) {
                    // A delete interrupted after DeleteUser may have left the sealed secret.
                    self.secrets.delete(user_name).await?;
                }
                return Err(failure.for_account(user_name));
            }
        };
        let path = user.user().map(|user| user.path()).unwrap_or_default();
        if !path.starts_with(&self.user_path) {
            // Not under osam's path, so not one of this provider's accounts.
            return Err(ProviderError::NotFound(user_name.to_owned()));
        }
        self.detach_everything(user_name).await?;
        self.client
            .delete_user()
            .user_name(user_name)
            .send()
            .await
            .map_err(|error| sort_failure("DeleteUser", error).for_account(user_name))?;
        self.secrets.delete(user_name).await?;
        tracing::info!(account = user_name, "deleted the IAM user");
        Ok(())
    }

    /// Removes what makes DeleteUser fail with DeleteConflict: access keys, inline and managed
    /// policies, group memberships and a console password.
    async fn detach_everything(&self, user_name: &str) -> Result<(), ProviderError> {
        let client = &self.client;
        let keys = access_keys(client, user_name)
            .await
            .map_err(|failure| failure.for_account(user_name))?;
        for key in &keys {
            self.delete_key(user_name, key.access_key_id().unwrap_or_default())
                .await?;
        }
        let inline_policies = client
            .list_user_policies()
            .user_name(user_name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|error| sort_failure("ListUserPolicies", error).for_account(user_name))?;
        for policy_name in &inline_policies {
            let deleted = client
                .delete_user_policy()
                .user_name(user_name)
                .policy_name(policy_name)
                .send()
                .await;
            ignore_missing(deleted.map(|_| ()), "DeleteUserPolicy", user_name)?;
        }
        let managed_policies = client
            .list_attached_user_policies()
            .user_name(user_name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|error| sort_failure("ListAttachedUserPolicies", error).for_account(user_name))?;
        for policy in &managed_policies {
            let detached = client
                .detach_user_policy()
                .user_name(user_name)
                .policy_arn(policy.policy_arn().unwrap_or_default())
                .send()
                .await;
            ignore_missing(detached.map(|_| ()), "DetachUserPolicy", user_name)?;
        }
        let groups = client
            .list_groups_for_user()
            .user_name(user_name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|error| sort_failure("ListGroupsForUser", error).for_account(user_name))?;
        for group in &groups {
            let removed = client
                .remove_user_from_group()
                .user_name(user_name)
                .group_name(group.group_name())
                .send()
                .await;
            ignore_missing(removed.map(|_| ()), "RemoveUserFromGroup", user_name)?;
        }
        let password = client.delete_login_profile().user_name(user_name).send().await;
        ignore_missing(password.map(|_| ()), "DeleteLoginProfile", user_name)
    }

    async fn stored_credentials(&self, user_name: &str) -> Result<AccountCredentials, ProviderError> {
        // The user first: a missing account is NotFound, not a lost secret.
        let keys = access_keys(&self.client, user_name)
            .await
            .map_err(|failure| failure.for_account(user_name))?;
        let stored = self.secrets.get(user_name).await?;
        if !has_key(&keys, &stored.access_key_id) {
            tracing::warn!(
                account = user_name,
                access_key_id = %stored.access_key_id,
                "the stored secret is of an access key the user no longer has"
            );
            return Err(ProviderError::SecretLost(user_name.to_owned()));
        }
        Ok(stored)
    }

    async fn put_policy(&self, user_name: &str, policy_json: &str) -> Result<(), ProviderError> {
        self.client
            .put_user_policy()
            .user_name(user_name)
            .policy_name(&self.policy_name)
            .policy_document(policy_json)
            .send()
            .await
            .map_err(|error| sort_failure("PutUserPolicy", error).for_account(user_name))?;
        Ok(())
    }

    async fn delete_policy(&self, user_name: &str) -> Result<(), ProviderError> {
        let deleted = self
            .client
            .delete_user_policy()
            .user_name(user_name)
            .policy_name(&self.policy_name)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) => match sort_failure("DeleteUserPolicy", error) {
                // Either the policy or the user is missing; only the latter is an error.
                IamFailure::NoSuchEntity(_) => {
                    self.client
                        .get_user()
                        .user_name(user_name)
                        .send()
                        .await
                        .map_err(|error| sort_failure("GetUser", error).for_account(user_name))?;
                    Ok(())
                }
                other => Err(other.for_account(user_name)),
            },
        }
    }
}

impl fmt::Debug for IamProvider {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IamProvider")
            .field("user_path", &self.user_path)
            .field("marker_tag_key", &self.marker_tag_key)
            .field("policy_name", &self.policy_name)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl AccountProvider for IamProvider {
    fn list_accounts(&self) -> ProviderFuture<'_, Vec<Account>> {
        Box::pin(self.list())
    }

    /// One user looked up by the name derived from the marker, instead of listing every user:
    /// the tag must still carry exactly this marker.
    fn account_with_marker<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, Option<Account>> {
        Box::pin(async move {
            let described = describe_user(&self.client, &self.marker_tag_key, &iam_user_name(marker)).await?;
            Ok(described.filter(|account| account.marker == marker))
        })
    }

    fn create_account<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, (Account, AccountCredentials)> {
        Box::pin(self.create(marker))
    }

    fn delete_account<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(self.delete(account_id))
    }

    fn credentials<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, AccountCredentials> {
        Box::pin(self.stored_credentials(account_id))
    }

    fn apply_policy<'a>(&'a self, account_id: &'a str, policy_json: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(self.put_policy(account_id, policy_json))
    }

    fn remove_policy<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(self.delete_policy(account_id))
    }
}

/// The account of one listed user, or `None` if it was deleted while being described. A user
/// without the marker tag is listed with an empty marker: visible, and never osam's to delete.
async fn describe_user(
    client: &aws_sdk_iam::Client,
    tag_key: &str,
    user_name: &str,
) -> Result<Option<Account>, ProviderError> {
    let tags = match user_tags(client, user_name).await {
        Ok(tags) => tags,
        Err(IamFailure::NoSuchEntity(_)) => return Ok(None),
        Err(other) => return Err(other.for_account(user_name)),
    };
    let keys = match access_keys(client, user_name).await {
        Ok(keys) => keys,
        Err(IamFailure::NoSuchEntity(_)) => return Ok(None),
        Err(other) => return Err(other.for_account(user_name)),
    };
    // The newest key: during a rotation the new key exists before the old one is deleted.
    let access_key_id = keys
        .last()
        .and_then(AccessKeyMetadata::access_key_id)
        .unwrap_or_default()
        .to_owned();
    Ok(Some(Account {
        id: user_name.to_owned(),
        marker: owner_marker(&tags, tag_key).unwrap_or_default(),
        access_key_id,
    }))
}

async fn user_tags(client: &aws_sdk_iam::Client, user_name: &str) -> Result<Vec<Tag>, IamFailure> {
    client
        .list_user_tags()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|error| sort_failure("ListUserTags", error))
}

fn owner_marker(tags: &[Tag], tag_key: &str) -> Option<String> {
    tags.iter()
        .find(|tag| tag.key() == tag_key)
        .map(|tag| tag.value().to_owned())
}

/// The user's access keys, oldest first.
async fn access_keys(
    client: &aws_sdk_iam::Client,
    user_name: &str,
) -> Result<Vec<AccessKeyMetadata>, IamFailure> {
    let mut keys = client
        .list_access_keys()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|error| sort_failure("ListAccessKeys", error))?;
    keys.sort_by_key(|key| {
        key.create_date()
            .map(|created| (created.secs(), created.subsec_nanos()))
    });
    Ok(keys)
}

fn has_key(keys: &[AccessKeyMetadata], access_key_id: &str) -> bool {
    keys.iter().any(|key| key.access_key_id() == Some(access_key_id))
}

/// An IAM call's failure, sorted by what the provider does next. Messages name the call and carry
/// IAM's code and message; no request or response body, so never a secret.
enum IamFailure {
    NoSuchEntity(String),
    AlreadyExists(String),
    Failed(ProviderError),
}

impl IamFailure {
    /// The failure of a call about `account_id`: a missing entity is a missing account.
    fn for_account(self, account_id: &str) -> ProviderError {
        match self {
            IamFailure::NoSuchEntity(_) => ProviderError::NotFound(account_id.to_owned()),
            IamFailure::AlreadyExists(message) => ProviderError::Rejected(message),
            IamFailure::Failed(error) => error,
        }
    }

    /// The failure of a call about no entity in particular.
    fn unexpected(self) -> ProviderError {
        match self {
            IamFailure::NoSuchEntity(message) | IamFailure::AlreadyExists(message) => {
                ProviderError::Rejected(message)
            }
            IamFailure::Failed(error) => error,
        }
    }
}

/// IAM error codes meaning "try again later" even though IAM answered.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceFailure",
    "ServiceUnavailable",
    "InternalFailure",
    "ConcurrentModification",
    "RequestTimeout",
];

/// Throttling, 5xx, timeouts and connection failures are `Unavailable` (worth retrying); other
/// answers (MalformedPolicyDocument, LimitExceeded, DeleteConflict, AccessDenied, ...) are
/// `Rejected` with IAM's message, since repeating the same request would fail the same way.
fn sort_failure<E>(call: &str, error: SdkError<E>) -> IamFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(_) = &error else {
        let described = format!("{call}: {}", DisplayErrorContext(&error));
        return IamFailure::Failed(match error {
            SdkError::ConstructionFailure(_) => ProviderError::Rejected(described),
            _ => ProviderError::Unavailable(described),
        });
    };
    let code = error.code().unwrap_or("Unknown").to_owned();
    let message = format!("{call}: {code}: {}", error.message().unwrap_or_default());
    let status = error
        .raw_response()
        .map_or(0, |response| response.status().as_u16());
    match code.as_str() {
        "NoSuchEntity" => IamFailure::NoSuchEntity(message),
        "EntityAlreadyExists" => IamFailure::AlreadyExists(message),
        _ if status >= 500 || TRANSIENT_CODES.contains(&code.as_str()) => {
            IamFailure::Failed(ProviderError::Unavailable(message))
        }
        _ => IamFailure::Failed(ProviderError::Rejected(message)),
    }
}

/// A call whose target being already gone is as good as its success.
fn ignore_missing<E>(
    outcome: Result<(), SdkError<E>>,
    call: &str,
    user_name: &str,
) -> Result<(), ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match outcome {
        Ok(()) => Ok(()),
        Err(error) => match sort_failure(call, error) {
            IamFailure::NoSuchEntity(_) => Ok(()),
            other => Err(other.for_account(user_name)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IamSettings {
        IamSettings::new(
            Some("http://127.0.0.1:1".to_owned()),
            "us-east-1",
            "AKIAEXAMPLE",
            "very-secret-value",
        )
    }

    #[test]
    fn user_names_are_deterministic_valid_and_distinct() {
        let name = iam_user_name("osam:alice");
        assert_eq!(name, iam_user_name("osam:alice"));
        assert!(name.starts_with("osam-osam-alice-"), "{name}");
        for marker in [
            "osam:alice",
            "osam:Alice",
            "osam:älice",
            "osam:alice with spaces/and?slashes",
            &"x".repeat(300),
            "",
        ] {
            let name = iam_user_name(marker);
            assert!(name.len() <= 64, "{name}");
            assert!(name.chars().all(is_iam_name_character), "{name}");
        }
        assert_ne!(iam_user_name("osam:alice"), iam_user_name("osam:Alice"));
        assert_ne!(iam_user_name("osam:a/b"), iam_user_name("osam:a?b"));
    }

    #[test]
    fn settings_are_checked_against_iam_rules() {
        assert_eq!(settings().validate(), Ok(()));
        for path in ["", "/", "osam/", "/osam", "/os am/"] {
            let mut bad = settings();
            bad.user_path = path.to_owned();
            let error = bad.validate().expect_err(path);
            assert_eq!(error.setting, "user_path");
        }
        for tag_key in ["", "aws:owner", "owner#1"] {
            let mut bad = settings();
            bad.marker_tag_key = tag_key.to_owned();
            assert_eq!(bad.validate().expect_err(tag_key).setting, "marker_tag_key");
        }
        let mut bad = settings();
        bad.policy_name = "osam rights".to_owned();
        assert_eq!(bad.validate().expect_err("space").setting, "policy_name");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let debug = format!("{:?}", settings());
        assert!(
            !debug.contains("very-secret-value") && debug.contains("AKIAEXAMPLE"),
            "{debug}"
        );
    }
}

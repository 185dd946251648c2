//! The account provider port: object-storage accounts, one per directory user, each carrying an
//! ownership marker that says which user it was created for. Adapters implement
//! [`AccountProvider`] (embedded file, IAM-compatible API, ...).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A secret value (an S3 secret key). Its Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (a GetMyCredentials answer, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

/// An account as the provider lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    /// The ownership marker written at creation (the configured template filled with the
    /// username); accounts without an exact marker are not osam's to delete.
    pub marker: String,
    pub access_key_id: String,
}

/// The credentials of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("account {0:?} does not exist")]
    NotFound(String),
    /// The provider refused the request (an invalid or too large policy, a quota).
    #[error("the provider rejected the request: {0}")]
    Rejected(String),
    /// The secret of the account cannot be recovered; rotating the access key is the way out.
    #[error("the secret of account {0:?} is lost or unreadable; rotate its access key")]
    SecretLost(String),
    /// The provider could not be reached or failed; retrying may help.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// The future a provider call returns.
pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A store of object-storage accounts.
pub trait AccountProvider: Send + Sync {
    /// Every account the provider holds, osam's or not.
    fn list_accounts(&self) -> ProviderFuture<'_, Vec<Account>>;

    /// The account carrying exactly `marker` (the smallest id if there are several, as the sync
    /// plan chooses). The default scans every account; a provider that can find an account by its
    /// marker directly should, since this runs for every credentials or policy request.
    fn account_with_marker<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, Option<Account>> {
        Box::pin(async move {
            let accounts = self.list_accounts().await?;
            Ok(accounts
                .into_iter()
                .filter(|account| account.marker == marker)
                .min_by(|left, right| left.id.cmp(&right.id)))
        })
    }

    /// Creates an account carrying `marker`, with an access key.
    fn create_account<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, (Account, AccountCredentials)>;

    /// Deletes an account and everything attached to it (keys, policies).
    fn delete_account<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()>;

    /// The account's current credentials.
    fn credentials<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, AccountCredentials>;

    /// Replaces the account's bucket policy with `policy_json`.
    fn apply_policy<'a>(&'a self, account_id: &'a str, policy_json: &'a str) -> ProviderFuture<'a, ()>;

    /// Removes the account's policy: how "no S3 access" is applied, since IAM rejects a policy
    /// without statements. Removing a policy that is not there is not an error.
    fn remove_policy<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()>;
}

/// The ownership marker template, validated: non-empty, holding the placeholder, and more than
/// the placeholder alone (a bare placeholder would make every account look owned by someone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerTemplate(String);

/// The placeholder replaced by the username.
pub const USERNAME_PLACEHOLDER: &str = "%keycloak-user%";

impl MarkerTemplate {
    pub fn parse(template: &str) -> Result<MarkerTemplate, String> {
        if template.trim().is_empty() {
            return Err("the account marker template is empty".to_owned());
        }
        if !template.contains(USERNAME_PLACEHOLDER) {
            return Err(format!(
                "the account marker template {template:?} lacks the placeholder {USERNAME_PLACEHOLDER}"
            ));
        }
        if template.trim() == USERNAME_PLACEHOLDER {
            return Err(format!(
                "the account marker template is only {USERNAME_PLACEHOLDER}: every account named like a user would look owned"
            ));
        }
        Ok(MarkerTemplate(template.to_owned()))
    }

    /// The marker of `username`'s account.
    pub fn marker_for(&self, username: &str) -> String {
        self.0.replace(USERNAME_PLACEHOLDER, username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_templates_are_validated() {
        assert!(MarkerTemplate::parse("").is_err());
        assert!(MarkerTemplate::parse("osam-user").is_err());
        assert!(MarkerTemplate::parse(" %keycloak-user% ").is_err());
        let template = MarkerTemplate::parse("osam:%keycloak-user%").expect("valid");
        assert_eq!(template.marker_for("alice"), "osam:alice");
    }

    #[test]
    fn secrets_never_show() {
        let secret = Secret::new("wJalrXUtnFEMI");
        assert!(!format!("{secret:?}").contains("wJalr"));
    }
}

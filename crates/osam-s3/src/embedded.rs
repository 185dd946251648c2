//! The embedded account provider: accounts kept in one JSON file under the state directory, for
//! the local development setup. Every change is written to a temporary file, synced, renamed over
//! the old one and the directory synced, so a crash at any point leaves either the old or the new
//! state, never a torn file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use osam_policy::accounts::{
    Account, AccountCredentials, AccountProvider, ProviderError, ProviderFuture, Secret,
};
use serde::{Deserialize, Serialize};

/// The largest policy accepted: IAM's limit for a managed policy (6,144 characters without
/// whitespace). A user's inline policies are limited to 2,048, which one glob role over a few
/// buckets already approaches, so policies are meant to be attached as managed policies.
pub const MAX_POLICY_CHARACTERS: usize = 6144;

const STATE_FILE_NAME: &str = "accounts.json";

/// Holds secrets: deliberately not Debug.
#[derive(Default, Serialize, Deserialize)]
struct State {
    /// Ever increasing, so a deleted account's id is never reused.
    next_id: u64,
    accounts: BTreeMap<String, StoredAccount>,
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    marker: String,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    policy: Option<serde_json::Value>,
}

pub struct EmbeddedProvider {
    path: PathBuf,
    /// Serialises read-modify-write cycles of the state file. The guard moves into the blocking
    /// task, so a cancelled call cannot release it while its write is still running.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl EmbeddedProvider {
    /// The provider keeping its state in `state_dir/accounts.json`; the file is created at the
    /// first change. An unreadable file is an error now rather than an empty state later.
    pub fn open(state_dir: &Path) -> Result<EmbeddedProvider, ProviderError> {
        let provider = EmbeddedProvider {
            path: state_dir.join(STATE_FILE_NAME),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        read_state(&provider.path)?;
        Ok(provider)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read-modify-write cycle of the state under the lock, off the async runtime.
    async fn change<T: Send + 'static>(
        &self,
        edit: impl FnOnce(&mut State) -> Result<T, ProviderError> + Send + 'static,
    ) -> Result<T, ProviderError> {
        let guard = self.lock.clone().lock_owned().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let mut state = read_state(&path)?;
            let outcome = edit(&mut state)?;
            write_state(&path, &state)?;
            Ok(outcome)
        })
        .await
        .map_err(|error| ProviderError::Unavailable(error.to_string()))?
    }

    async fn read(&self) -> Result<State, ProviderError> {
        let guard = self.lock.clone().lock_owned().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            read_state(&path)
        })
        .await
        .map_err(|error| ProviderError::Unavailable(error.to_string()))?
    }
}

fn read_state(path: &Path) -> Result<State, ProviderError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
            ProviderError::Unavailable(format!("{} is not a valid state file: {error}", path.display()))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(error) => Err(ProviderError::Unavailable(format!("{}: {error}", path.display()))),
    }
}

fn write_state(path: &Path, state: &State) -> Result<(), ProviderError> {
    let failed = |error: std::io::Error| ProviderError::Unavailable(format!("{}: {error}", path.display()));
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).map_err(failed)?;
    // A name of its own per write: two processes sharing a state directory never write one file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let write = WRITES.fetch_add(1, Ordering::Relaxed);
    let temporary = directory.join(format!(".{STATE_FILE_NAME}.{}.{write}.tmp", std::process::id()));
    let bytes =
        serde_json::to_vec_pretty(state).map_err(|error| ProviderError::Unavailable(error.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(failed)?;
    file.write_all(&bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(failed)?;
    Ok(())
}

/// The checks IAM makes of a policy, so what the embedded provider accepts IAM accepts too:
/// at most 6,144 non-whitespace characters, JSON, version 2012-10-17, at least one statement.
fn check_like_iam(policy_json: &str) -> Result<serde_json::Value, ProviderError> {
    let characters = policy_json.chars().filter(|c| !c.is_whitespace()).count();
    if characters > MAX_POLICY_CHARACTERS {
        return Err(ProviderError::Rejected(format!(
            "the policy has {characters} non-whitespace characters; the limit is {MAX_POLICY_CHARACTERS}"
        )));
    }
    let policy: serde_json::Value = serde_json::from_str(policy_json)
        .map_err(|error| ProviderError::Rejected(format!("the policy is not JSON: {error}")))?;
    if policy.get("Version").and_then(serde_json::Value::as_str) != Some("2012-10-17") {
        return Err(ProviderError::Rejected(
            "the policy lacks \"Version\": \"2012-10-17\"".to_owned(),
        ));
    }
    let statements = policy
        .get("Statement")
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    if statements == 0 {
        return Err(ProviderError::Rejected("the policy has no statement".to_owned()));
    }
    Ok(policy)
}

/// A random string of `length` characters from `alphabet`, from the operating system's generator.
fn random_string(alphabet: &[u8], length: usize) -> Result<String, ProviderError> {
    let mut bytes = vec![0u8; length];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ProviderError::Unavailable("no randomness".to_owned()))?;
    Ok(bytes
        .iter()
        .map(|byte| alphabet[*byte as usize % alphabet.len()] as char)
        .collect())
}

impl AccountProvider for EmbeddedProvider {
    fn list_accounts(&self) -> ProviderFuture<'_, Vec<Account>> {
        Box::pin(async move {
            let state = self.read().await?;
            Ok(state
                .accounts
                .into_iter()
                .map(|(id, stored)| Account {
                    id,
                    marker: stored.marker,
                    access_key_id: stored.access_key_id,
                })
                .collect())
        })
    }

    fn create_account<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, (Account, AccountCredentials)> {
        let marker = marker.to_owned();
        Box::pin(async move {
            let access_key_id = format!("OSAM{}", random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)?);
            let secret = random_string(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            )?;
            self.change(move |state| {
                state.next_id += 1;
                let id = format!("embedded-{:06}", state.next_id);
                let stored = StoredAccount {
                    marker: marker.clone(),
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret.clone(),
                    policy: None,
                };
                state.accounts.insert(id.clone(), stored);
                let credentials = AccountCredentials {
                    access_key_id: access_key_id.clone(),
                    secret_access_key: Secret::new(secret),
                };
                Ok((
                    Account {
                        id,
                        marker,
                        access_key_id,
                    },
                    credentials,
                ))
            })
            .await
        })
    }

    fn delete_account<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()> {
        let account_id = account_id.to_owned();
        Box::pin(async move {
            self.change(move |state| {
                state
                    .accounts
                    .remove(&account_id)
                    .map(|_| ())
                    .ok_or(ProviderError::NotFound(account_id))
            })
            .await
        })
    }

    fn credentials<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, AccountCredentials> {
        Box::pin(async move {
            let state = self.read().await?;
            let stored = state
                .accounts
                .get(account_id)
                .ok_or_else(|| ProviderError::NotFound(account_id.to_owned()))?;
            Ok(AccountCredentials {
                access_key_id: stored.access_key_id.clone(),
                secret_access_key: Secret::new(stored.secret_access_key.clone()),
            })
        })
    }

    fn apply_policy<'a>(&'a self, account_id: &'a str, policy_json: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            let policy = check_like_iam(policy_json)?;
            self.set_policy(account_id, Some(policy)).await
        })
    }

    fn remove_policy<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()> {
        self.set_policy(account_id, None)
    }
}

impl EmbeddedProvider {
    fn set_policy(&self, account_id: &str, policy: Option<serde_json::Value>) -> ProviderFuture<'_, ()> {
        let account_id = account_id.to_owned();
        Box::pin(async move {
            self.change(move |state| {
                let stored = state
                    .accounts
                    .get_mut(&account_id)
                    .ok_or_else(|| ProviderError::NotFound(account_id.clone()))?;
                stored.policy = policy;
                Ok(())
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accounts_are_created_listed_and_deleted_durably() {
        let state = tempfile::tempdir().expect("temp dir");
        let provider = EmbeddedProvider::open(state.path()).expect("open");
        let (account, credentials) = provider.create_account("osam:alice").await.expect("created");
        assert_eq!(account.marker, "osam:alice");
        assert!(!format!("{credentials:?}").contains(credentials.secret_access_key.expose()));

        let reopened = EmbeddedProvider::open(state.path()).expect("reopen");
        assert_eq!(
            reopened.account_with_marker("osam:alice").await.expect("lookup"),
            Some(account.clone())
        );
        assert_eq!(
            reopened.account_with_marker("osam:bob").await.expect("lookup"),
            None
        );
        assert_eq!(
            reopened.list_accounts().await.expect("list"),
            vec![account.clone()]
        );
        assert_eq!(
            reopened.credentials(&account.id).await.expect("credentials"),
            credentials
        );

        reopened.delete_account(&account.id).await.expect("deleted");
        assert!(reopened.list_accounts().await.expect("list").is_empty());
        assert_eq!(
            reopened.delete_account(&account.id).await,
            Err(ProviderError::NotFound(account.id.clone()))
        );
        let (next, _) = reopened.create_account("osam:bob").await.expect("created");
        assert_ne!(next.id, account.id, "ids are never reused");
    }

    #[tokio::test]
    async fn policies_are_checked_like_iam_before_they_are_stored() {
        let state = tempfile::tempdir().expect("temp dir");
        let provider = EmbeddedProvider::open(state.path()).expect("open");
        let (account, _) = provider.create_account("osam:alice").await.expect("created");
        let valid = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        provider.apply_policy(&account.id, valid).await.expect("applied");
        let stored = std::fs::read_to_string(provider.path()).expect("state");
        assert!(stored.contains("2012-10-17"));

        let too_large = format!(
            r#"{{"Version":"2012-10-17","Statement":"{}"}}"#,
            "x".repeat(MAX_POLICY_CHARACTERS)
        );
        assert!(matches!(
            provider.apply_policy(&account.id, &too_large).await,
            Err(ProviderError::Rejected(_))
        ));
        assert!(matches!(
            provider.apply_policy(&account.id, "{}").await,
            Err(ProviderError::Rejected(_))
        ));
        assert!(matches!(
            provider.apply_policy("nobody", valid).await,
            Err(ProviderError::NotFound(_))
        ));
        let empty = r#"{"Version":"2012-10-17","Statement":[]}"#;
        assert!(matches!(
            provider.apply_policy(&account.id, empty).await,
            Err(ProviderError::Rejected(_))
        ));
        provider.remove_policy(&account.id).await.expect("removed");
        assert!(
            !std::fs::read_to_string(provider.path())
                .expect("state")
                .contains("GetObject")
        );
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_not_an_empty_state() {
        let state = tempfile::tempdir().expect("temp dir");
        std::fs::write(state.path().join(STATE_FILE_NAME), "{ not json").expect("write");
        assert!(matches!(
            EmbeddedProvider::open(state.path()),
            Err(ProviderError::Unavailable(_))
        ));
    }
}

//! The static directory: a bluesky-httpserver style YAML file (or the example users built into
//! the binary), re-read when its content changes. A broken edit keeps the last good version and
//! logs why, so a typo never locks everyone out. The YAML format has no attributes, so attributes
//! osam writes (the `obs-user` account link) live in a JSON file of the state directory, laid
//! over the users of the file.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use osam_policy::static_directory::StaticDirectory;
use osam_policy::{Directory, DirectoryError, DirectoryFuture, DirectoryUser, RoleScopeTable};

use crate::identity::ScopeTableSource;

/// The example users of the embedded development setup.
pub const EMBEDDED_USERS: &str = include_str!("../../../../deploy/examples/users.yaml");

struct Snapshot {
    directory: StaticDirectory,
    scope_table: Arc<RoleScopeTable>,
    content_hash: u64,
}

/// Attribute values by username, then by attribute name.
type Attributes = BTreeMap<String, BTreeMap<String, Vec<String>>>;

pub struct StaticFileDirectory {
    file: Option<PathBuf>,
    base_scope_table: RoleScopeTable,
    snapshot: RwLock<Arc<Snapshot>>,
    attributes_file: Option<PathBuf>,
    attributes: RwLock<Attributes>,
    /// Serialises attribute writes so that two concurrent changes cannot lose one another.
    attribute_writes: tokio::sync::Mutex<()>,
}

/// What a reload check found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    Unchanged,
    Reloaded,
    KeptPrevious(String),
}

impl StaticFileDirectory {
    /// Loads the file (or the embedded example users when `file` is `None`); the first load must
    /// succeed. `base_scope_table` is the configured table, which the file's `roles:` edit further.
    /// Attributes written on users are kept in `attributes_file` (none: attributes cannot be set).
    pub fn load(
        file: Option<&Path>,
        base_scope_table: RoleScopeTable,
        attributes_file: Option<&Path>,
    ) -> Result<StaticFileDirectory, String> {
        let attributes = match attributes_file {
            Some(path) if path.exists() => {
                let text =
                    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
                serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?
            }
            _ => Attributes::new(),
        };
        let text = match file {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?
            }
            None => EMBEDDED_USERS.to_owned(),
        };
        let origin = file
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| "embedded example users".into());
        let snapshot =
            build_snapshot(&text, &base_scope_table).map_err(|error| format!("{origin}: {error}"))?;
        Ok(StaticFileDirectory {
            file: file.map(Path::to_path_buf),
            base_scope_table,
            snapshot: RwLock::new(Arc::new(snapshot)),
            attributes_file: attributes_file.map(Path::to_path_buf),
            attributes: RwLock::new(attributes),
            attribute_writes: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Re-reads the file and swaps in its content when it changed and is valid.
    pub fn reload_if_changed(&self) -> ReloadOutcome {
        let Some(path) = &self.file else {
            return ReloadOutcome::Unchanged;
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => return ReloadOutcome::KeptPrevious(format!("{}: {error}", path.display())),
        };
        if hash_of(&text) == self.snapshot().content_hash {
            return ReloadOutcome::Unchanged;
        }
        match build_snapshot(&text, &self.base_scope_table) {
            Ok(snapshot) => {
                *self
                    .snapshot
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(snapshot);
                ReloadOutcome::Reloaded
            }
            Err(error) => ReloadOutcome::KeptPrevious(format!("{}: {error}", path.display())),
        }
    }

    /// Checks the file every `interval` until the runtime stops. A broken version is reported
    /// once per distinct content, not at every check.
    pub fn spawn_reloader(self: &Arc<Self>, interval: Duration) {
        if self.file.is_none() {
            return;
        }
        let directory = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_complaint = String::new();
            loop {
                ticker.tick().await;
                let Some(directory) = directory.upgrade() else {
                    break;
                };
                let outcome = tokio::task::spawn_blocking(move || directory.reload_if_changed()).await;
                match outcome {
                    Ok(ReloadOutcome::Reloaded) => {
                        tracing::info!("static directory reloaded");
                        last_complaint.clear();
                    }
                    Ok(ReloadOutcome::KeptPrevious(reason)) if reason != last_complaint => {
                        tracing::warn!(%reason, "static directory not reloaded; keeping the last good version");
                        last_complaint = reason;
                    }
                    _ => {}
                }
            }
        });
    }
}

fn build_snapshot(text: &str, base_scope_table: &RoleScopeTable) -> Result<Snapshot, String> {
    let directory = StaticDirectory::parse(text).map_err(|error| error.to_string())?;
    let mut scope_table = base_scope_table.clone();
    scope_table
        .apply_edits(directory.role_edits())
        .map_err(|error| error.to_string())?;
    Ok(Snapshot {
        directory,
        scope_table: Arc::new(scope_table),
        content_hash: hash_of(text),
    })
}

fn hash_of(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

impl StaticFileDirectory {
    /// The user with the attributes written for them.
    fn with_attributes(&self, mut user: DirectoryUser) -> DirectoryUser {
        let attributes = self
            .attributes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(written) = attributes.get(&user.username) {
            user.attributes.extend(written.clone());
        }
        user
    }
}

impl Directory for StaticFileDirectory {
    fn find_user<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        let user = self
            .snapshot()
            .directory
            .user(username)
            .cloned()
            .map(|user| self.with_attributes(user));
        Box::pin(async move { Ok(user) })
    }

    fn list_users(&self) -> DirectoryFuture<'_, Vec<DirectoryUser>> {
        let users = self
            .snapshot()
            .directory
            .users()
            .cloned()
            .map(|user| self.with_attributes(user))
            .collect();
        Box::pin(async move { Ok(users) })
    }

    fn set_attribute<'a>(
        &'a self,
        username: &'a str,
        name: &'a str,
        values: Vec<String>,
    ) -> DirectoryFuture<'a, ()> {
        Box::pin(async move {
            if self.snapshot().directory.user(username).is_none() {
                return Err(DirectoryError::UserNotFound(username.to_owned()));
            }
            let Some(path) = self.attributes_file.clone() else {
                return Err(DirectoryError::Unavailable(
                    "this static directory has no attribute file".to_owned(),
                ));
            };
            let _write = self.attribute_writes.lock().await;
            let mut updated = self
                .attributes
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            updated
                .entry(username.to_owned())
                .or_default()
                .insert(name.to_owned(), values);
            let bytes = serde_json::to_vec_pretty(&updated)
                .map_err(|error| DirectoryError::Unavailable(error.to_string()))?;
            tokio::task::spawn_blocking(move || crate::atomic_file::replace(&path, &bytes))
                .await
                .map_err(|error| DirectoryError::Unavailable(error.to_string()))?
                .map_err(|error| {
                    DirectoryError::Unavailable(format!("writing the attribute file: {error}"))
                })?;
            // Published only once durable, so readers never see a link that a crash would lose.
            *self
                .attributes
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = updated;
            Ok(())
        })
    }
}

impl ScopeTableSource for StaticFileDirectory {
    fn current(&self) -> Arc<RoleScopeTable> {
        self.snapshot().scope_table.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_roles(directory: &StaticFileDirectory, username: &str) -> Option<Vec<String>> {
        directory
            .snapshot()
            .directory
            .user(username)
            .map(|user| user.roles.clone())
    }

    #[test]
    fn the_embedded_example_users_are_valid() {
        let directory =
            StaticFileDirectory::load(None, RoleScopeTable::osam_defaults(), None).expect("valid");
        assert!(directory.snapshot().directory.users().count() >= 5);
    }

    #[test]
    fn edits_are_picked_up_and_broken_edits_keep_the_last_good_version() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), "users:\n  alice:\n    roles: [rs_osam_read]\n").expect("write");
        let directory = StaticFileDirectory::load(Some(file.path()), RoleScopeTable::osam_defaults(), None)
            .expect("valid");
        assert_eq!(directory.reload_if_changed(), ReloadOutcome::Unchanged);

        std::fs::write(file.path(), "users:\n  alice:\n    roles: [rs_osam_update]\n").expect("write");
        assert_eq!(directory.reload_if_changed(), ReloadOutcome::Reloaded);
        assert_eq!(
            user_roles(&directory, "alice"),
            Some(vec!["rs_osam_update".to_owned()])
        );

        std::fs::write(file.path(), "users:\n  alice:\n    rolez: [x]\n").expect("write");
        assert!(
            matches!(directory.reload_if_changed(), ReloadOutcome::KeptPrevious(reason) if reason.contains("rolez"))
        );
        assert_eq!(
            user_roles(&directory, "alice"),
            Some(vec!["rs_osam_update".to_owned()])
        );
    }

    #[tokio::test]
    async fn written_attributes_survive_a_restart_and_unknown_users_are_refused() {
        let state = tempfile::tempdir().expect("state dir");
        let attributes = state.path().join("attributes.json");
        let load = || {
            StaticFileDirectory::load(None, RoleScopeTable::osam_defaults(), Some(&attributes))
                .expect("valid")
        };
        let directory = load();
        directory
            .set_attribute("alice", "obs-user", vec!["account-1".into()])
            .await
            .expect("written");
        directory
            .set_attribute("alice", "other", vec!["kept".into()])
            .await
            .expect("written");
        let alice = load().find_user("alice").await.expect("lookup").expect("alice");
        assert_eq!(alice.attribute("obs-user"), Some("account-1"));
        assert_eq!(
            alice.attribute("other"),
            Some("kept"),
            "writing one attribute keeps the others"
        );
        assert_eq!(
            directory.set_attribute("ghost", "obs-user", vec![]).await,
            Err(DirectoryError::UserNotFound("ghost".into()))
        );
    }

    #[test]
    fn role_edits_in_the_file_change_the_scope_table() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(
            file.path(),
            "roles:\n  rs_osam_read:\n    scopes_add: [accounts:sync]\n",
        )
        .expect("write");
        let directory = StaticFileDirectory::load(Some(file.path()), RoleScopeTable::osam_defaults(), None)
            .expect("valid");
        assert!(
            directory
                .current()
                .role("rs_osam_read")
                .expect("role")
                .contains("accounts:sync")
        );
    }
}

//! The static directory: a bluesky-httpserver style YAML file (or the example users built into
//! the binary), re-read when its content changes. A broken edit keeps the last good version and
//! logs why, so a typo never locks everyone out.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use osam_policy::static_directory::StaticDirectory;
use osam_policy::{Directory, DirectoryFuture, DirectoryUser, RoleScopeTable};

use crate::identity::ScopeTableSource;

/// The example users of the embedded development setup.
pub const EMBEDDED_USERS: &str = include_str!("../../../../deploy/examples/users.yaml");

struct Snapshot {
    directory: StaticDirectory,
    scope_table: Arc<RoleScopeTable>,
    content_hash: u64,
}

pub struct StaticFileDirectory {
    file: Option<PathBuf>,
    base_scope_table: RoleScopeTable,
    snapshot: RwLock<Arc<Snapshot>>,
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
    pub fn load(
        file: Option<&Path>,
        base_scope_table: RoleScopeTable,
    ) -> Result<StaticFileDirectory, String> {
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

impl Directory for StaticFileDirectory {
    fn find_user<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        let user = self.snapshot().directory.user(username).cloned();
        Box::pin(async move { Ok(user) })
    }

    fn list_users(&self) -> DirectoryFuture<'_, Vec<DirectoryUser>> {
        let users = self.snapshot().directory.users().cloned().collect();
        Box::pin(async move { Ok(users) })
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
        let directory = StaticFileDirectory::load(None, RoleScopeTable::osam_defaults()).expect("valid");
        assert!(directory.snapshot().directory.users().count() >= 5);
    }

    #[test]
    fn edits_are_picked_up_and_broken_edits_keep_the_last_good_version() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), "users:\n  alice:\n    roles: [rs_osam_read]\n").expect("write");
        let directory =
            StaticFileDirectory::load(Some(file.path()), RoleScopeTable::osam_defaults()).expect("valid");
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

    #[test]
    fn role_edits_in_the_file_change_the_scope_table() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(
            file.path(),
            "roles:\n  rs_osam_read:\n    scopes_add: [accounts:sync]\n",
        )
        .expect("write");
        let directory =
            StaticFileDirectory::load(Some(file.path()), RoleScopeTable::osam_defaults()).expect("valid");
        assert!(
            directory
                .current()
                .role("rs_osam_read")
                .expect("role")
                .contains("accounts:sync")
        );
    }
}

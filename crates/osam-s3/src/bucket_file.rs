//! The bucket configuration from a local CSV file, re-read when its modification time or size
//! changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use osam_policy::bucket_config::BucketConfig;
use osam_policy::bucket_source::BucketConfigSource;

use crate::last_good::{LastGood, ReloadOutcome, spawn_poller};

/// When the file was last seen to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    length: u64,
}

pub struct FileBucketConfig {
    path: Option<PathBuf>,
    last_good: LastGood<FileStamp>,
}

impl FileBucketConfig {
    /// The file at `path`, read now; a missing or broken file is logged and served as "no
    /// configuration yet" until a valid version appears.
    pub fn open(path: &Path) -> FileBucketConfig {
        let source = FileBucketConfig {
            path: Some(path.to_owned()),
            last_good: LastGood::new(path.display().to_string()),
        };
        source.reload_if_changed();
        source
    }

    /// A fixed configuration compiled into the binary (the embedded development setup).
    pub fn fixed(origin: &str, text: &str) -> Result<FileBucketConfig, String> {
        let source = FileBucketConfig {
            path: None,
            last_good: LastGood::new(origin.to_owned()),
        };
        match source.last_good.offer(
            FileStamp {
                modified: None,
                length: text.len() as u64,
            },
            text,
        ) {
            ReloadOutcome::KeptPrevious(reason) => Err(reason),
            _ => Ok(source),
        }
    }

    /// Reads the file again when its stamp changed.
    pub fn reload_if_changed(&self) -> ReloadOutcome {
        let Some(path) = &self.path else {
            return ReloadOutcome::Unchanged;
        };
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => return self.last_good.complain(format!("{}: {error}", path.display())),
        };
        let stamp = FileStamp {
            modified: metadata.modified().ok(),
            length: metadata.len(),
        };
        if self.last_good.version() == Some(stamp) {
            return ReloadOutcome::Unchanged;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => self.last_good.offer(stamp, &text),
            Err(error) => self.last_good.complain(format!("{}: {error}", path.display())),
        }
    }

    /// Checks the file every `interval` while the source is alive.
    pub fn spawn_poller(self: &Arc<Self>, interval: Duration) {
        if self.path.is_none() {
            return;
        }
        // Reading the file blocks: off the async runtime.
        spawn_poller(self, interval, |source| async move {
            let _ = tokio::task::spawn_blocking(move || source.reload_if_changed()).await;
        });
    }
}

impl BucketConfigSource for FileBucketConfig {
    fn current(&self) -> Option<Arc<BucketConfig>> {
        self.last_good.current()
    }

    fn origin(&self) -> String {
        self.last_good.origin().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "*,*,*,30,catch-all-bucket\ncopernicus, s1-l1, *, 10, s1-bucket\n";

    #[test]
    fn edits_are_served_and_broken_edits_keep_the_last_valid_version() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("buckets.csv");
        let source = FileBucketConfig::open(&path);
        assert!(source.current().is_none(), "no file yet: no configuration");

        std::fs::write(&path, VALID).expect("write");
        assert_eq!(source.reload_if_changed(), ReloadOutcome::Reloaded);
        assert_eq!(source.current().expect("config").rules().len(), 2);
        assert_eq!(source.reload_if_changed(), ReloadOutcome::Unchanged);

        std::fs::write(&path, "copernicus,s1-l1,*,ten,s1-bucket\n").expect("write");
        let outcome = source.reload_if_changed();
        assert!(
            matches!(&outcome, ReloadOutcome::KeptPrevious(reason) if reason.contains("line 1")),
            "{outcome:?}"
        );
        assert_eq!(source.current().expect("still served").rules().len(), 2);
    }

    #[test]
    fn a_fixed_configuration_must_be_valid() {
        assert!(FileBucketConfig::fixed("built-in", VALID).is_ok());
        assert!(FileBucketConfig::fixed("built-in", "a,b\n").is_err());
    }
}

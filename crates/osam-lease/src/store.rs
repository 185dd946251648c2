//! Where the lease lives: read it with its version, create it, replace it only if nobody wrote it
//! since it was read. [`InMemoryLeaseStore`] is the in-process implementation for tests; the
//! Kubernetes one is `KubeLeaseStore`.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::record::{LeaseRecord, VersionedLease};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone wrote the lease since it was read (or created it first): the write was not applied.
    #[error("the lease was written by another replica since it was read")]
    Conflict,
    /// The store could not be reached or refused the call; the write may or may not have happened.
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
}

/// One named lease in a store with optimistic concurrency.
pub trait LeaseStore: Send + Sync {
    /// The lease and its version, or `None` when it does not exist.
    fn get(&self) -> impl Future<Output = Result<Option<VersionedLease>, StoreError>> + Send;

    /// Creates the lease; [`StoreError::Conflict`] when it already exists.
    fn create(&self, record: &LeaseRecord)
    -> impl Future<Output = Result<VersionedLease, StoreError>> + Send;

    /// Replaces the lease if its version is still `version`; [`StoreError::Conflict`] otherwise.
    fn replace(
        &self,
        record: &LeaseRecord,
        version: &str,
    ) -> impl Future<Output = Result<VersionedLease, StoreError>> + Send;
}

/// A lease in memory; clones share it, as replicas share a Kubernetes Lease.
#[derive(Debug, Clone, Default)]
pub struct InMemoryLeaseStore {
    lease: Arc<Mutex<StoredLease>>,
}

#[derive(Debug, Default)]
struct StoredLease {
    current: Option<VersionedLease>,
    writes: u64,
}

impl StoredLease {
    fn write(&mut self, record: &LeaseRecord) -> VersionedLease {
        self.writes += 1;
        let written = VersionedLease {
            record: record.clone(),
            version: self.writes.to_string(),
        };
        self.current = Some(written.clone());
        written
    }
}

impl InMemoryLeaseStore {
    pub fn new() -> InMemoryLeaseStore {
        InMemoryLeaseStore::default()
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, StoredLease> {
        self.lease.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LeaseStore for InMemoryLeaseStore {
    async fn get(&self) -> Result<Option<VersionedLease>, StoreError> {
        Ok(self.locked().current.clone())
    }

    async fn create(&self, record: &LeaseRecord) -> Result<VersionedLease, StoreError> {
        let mut lease = self.locked();
        if lease.current.is_some() {
            return Err(StoreError::Conflict);
        }
        Ok(lease.write(record))
    }

    async fn replace(&self, record: &LeaseRecord, version: &str) -> Result<VersionedLease, StoreError> {
        let mut lease = self.locked();
        match &lease.current {
            Some(current) if current.version == version => Ok(lease.write(record)),
            _ => Err(StoreError::Conflict),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn record(holder: &str) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.to_owned()),
            acquired_at: SystemTime::UNIX_EPOCH,
            renewed_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_secs(15),
            transitions: 0,
        }
    }

    #[tokio::test]
    async fn writes_are_optimistic() {
        let store = InMemoryLeaseStore::new();
        assert_eq!(store.get().await, Ok(None));
        let first = store.create(&record("a")).await.expect("created");
        assert_eq!(store.create(&record("b")).await, Err(StoreError::Conflict));

        let second = store
            .replace(&record("b"), &first.version)
            .await
            .expect("replaced");
        assert_ne!(first.version, second.version);
        assert_eq!(
            store.replace(&record("c"), &first.version).await,
            Err(StoreError::Conflict),
            "a replace computed from an old version is refused"
        );
        assert_eq!(store.get().await, Ok(Some(second)));
    }
}

//! What a lease says: who holds it, since when, until when it counts, and how often it changed
//! hands. The same shape as a Kubernetes `coordination.k8s.io/v1` Lease spec.

use std::time::{Duration, SystemTime};

/// The content of the lease object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The replica holding the lease; `None` once it was released.
    pub holder: Option<String>,
    /// When the current holder took it (wall time, for people reading the object).
    pub acquired_at: SystemTime,
    /// When the current holder last renewed it (wall time, for people reading the object).
    pub renewed_at: SystemTime,
    /// How long other replicas wait, from the moment they see this version, before they may take
    /// the lease over.
    pub duration: Duration,
    /// How many times the lease changed hands.
    pub transitions: u32,
}

/// A lease as read from or written to a store, with the store's version of it: every write gets a
/// new version, and a replace names the version it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedLease {
    pub record: LeaseRecord,
    pub version: String,
}

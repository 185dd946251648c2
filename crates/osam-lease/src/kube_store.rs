//! The lease as a Kubernetes `coordination.k8s.io/v1` Lease object, written with optimistic
//! concurrency on its `resourceVersion`. The pod's service account needs `get`, `create` and
//! `update` on `leases` in its namespace (the Helm chart's Role grants exactly that).

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use crate::record::{LeaseRecord, VersionedLease};
use crate::store::{LeaseStore, StoreError};

/// One named Lease in one namespace.
#[derive(Clone)]
pub struct KubeLeaseStore {
    api: Api<Lease>,
    name: String,
}

impl KubeLeaseStore {
    pub fn new(client: kube::Client, namespace: &str, name: impl Into<String>) -> KubeLeaseStore {
        KubeLeaseStore {
            api: Api::namespaced(client, namespace),
            name: name.into(),
        }
    }

    /// A store using the pod's service account (or the local kubeconfig outside a cluster).
    pub async fn from_environment(
        namespace: &str,
        name: impl Into<String>,
    ) -> Result<KubeLeaseStore, StoreError> {
        let client = kube::Client::try_default()
            .await
            .map_err(|error| StoreError::Unavailable(format!("Kubernetes client: {error}")))?;
        Ok(KubeLeaseStore::new(client, namespace, name))
    }

    fn to_lease(&self, record: &LeaseRecord, version: Option<&str>) -> Lease {
        lease_object(&self.name, record, version)
    }
}

impl LeaseStore for KubeLeaseStore {
    async fn get(&self) -> Result<Option<VersionedLease>, StoreError> {
        let lease = self.api.get_opt(&self.name).await.map_err(store_error)?;
        lease.map(|lease| versioned_record(&lease)).transpose()
    }

    async fn create(&self, record: &LeaseRecord) -> Result<VersionedLease, StoreError> {
        let created = self
            .api
            .create(&PostParams::default(), &self.to_lease(record, None))
            .await
            .map_err(store_error)?;
        versioned_record(&created)
    }

    async fn replace(&self, record: &LeaseRecord, version: &str) -> Result<VersionedLease, StoreError> {
        let replaced = self
            .api
            .replace(
                &self.name,
                &PostParams::default(),
                &self.to_lease(record, Some(version)),
            )
            .await
            .map_err(store_error)?;
        versioned_record(&replaced)
    }
}

/// `AlreadyExists` (on create) and `Conflict` (a stale `resourceVersion`) both answer 409.
fn store_error(error: kube::Error) -> StoreError {
    match &error {
        kube::Error::Api(status) if status.code == 409 => StoreError::Conflict,
        _ => StoreError::Unavailable(error.to_string()),
    }
}

fn lease_object(name: &str, record: &LeaseRecord, version: Option<&str>) -> Lease {
    // Kubernetes counts whole seconds; rounding up only makes other replicas wait longer.
    let duration_seconds = record.duration.as_secs() + u64::from(record.duration.subsec_nanos() > 0);
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            resource_version: version.map(str::to_owned),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: record.holder.clone(),
            lease_duration_seconds: Some(i32::try_from(duration_seconds).unwrap_or(i32::MAX)),
            acquire_time: micro_time(record.acquired_at),
            renew_time: micro_time(record.renewed_at),
            lease_transitions: Some(i32::try_from(record.transitions).unwrap_or(i32::MAX)),
            ..LeaseSpec::default()
        }),
    }
}

/// A Lease written by anyone, read leniently: an empty holder is no holder, a missing duration is
/// zero (such a lease expires as soon as it has been seen once), missing times are the epoch.
fn versioned_record(lease: &Lease) -> Result<VersionedLease, StoreError> {
    let version = lease
        .metadata
        .resource_version
        .clone()
        .ok_or_else(|| StoreError::Unavailable("the Lease has no resourceVersion".to_owned()))?;
    let spec = lease.spec.clone().unwrap_or_default();
    let record = LeaseRecord {
        holder: spec.holder_identity.filter(|holder| !holder.is_empty()),
        acquired_at: system_time(spec.acquire_time),
        renewed_at: system_time(spec.renew_time),
        duration: Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0)),
        transitions: u32::try_from(spec.lease_transitions.unwrap_or(0)).unwrap_or(0),
    };
    Ok(VersionedLease { record, version })
}

fn micro_time(time: SystemTime) -> Option<MicroTime> {
    Timestamp::try_from(time).ok().map(MicroTime)
}

fn system_time(time: Option<MicroTime>) -> SystemTime {
    time.map_or(SystemTime::UNIX_EPOCH, |MicroTime(timestamp)| {
        SystemTime::from(timestamp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_lease_object() {
        let record = LeaseRecord {
            holder: Some("osam-7d9f-abcde".to_owned()),
            acquired_at: SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            renewed_at: SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_010_654_321),
            duration: Duration::from_secs(15),
            transitions: 3,
        };
        let mut lease = lease_object("osam-sync", &record, Some("41"));
        assert_eq!(lease.metadata.name.as_deref(), Some("osam-sync"));
        lease.metadata.resource_version = Some("42".to_owned());
        let read = versioned_record(&lease).expect("versioned");
        assert_eq!(read.record, record);
        assert_eq!(read.version, "42");
    }

    #[test]
    fn a_fractional_duration_rounds_up_and_a_foreign_lease_reads_leniently() {
        let record = LeaseRecord {
            holder: None,
            acquired_at: SystemTime::UNIX_EPOCH,
            renewed_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(1500),
            transitions: 0,
        };
        let lease = lease_object("osam-sync", &record, Some("1"));
        assert_eq!(
            lease.spec.as_ref().and_then(|spec| spec.lease_duration_seconds),
            Some(2)
        );

        let foreign = Lease {
            metadata: ObjectMeta {
                resource_version: Some("7".to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(String::new()),
                ..LeaseSpec::default()
            }),
        };
        let read = versioned_record(&foreign).expect("versioned");
        assert_eq!(read.record.holder, None);
        assert_eq!(read.record.duration, Duration::ZERO);

        let unversioned = Lease::default();
        assert!(versioned_record(&unversioned).is_err());
    }

    #[test]
    fn conflicts_are_recognised() {
        let conflict = kube::Error::Api(Box::new(
            kube::core::Status::failure("stale", "Conflict").with_code(409),
        ));
        assert_eq!(store_error(conflict), StoreError::Conflict);
        let forbidden = kube::Error::Api(Box::new(
            kube::core::Status::failure("no", "Forbidden").with_code(403),
        ));
        assert!(matches!(store_error(forbidden), StoreError::Unavailable(_)));
    }
}

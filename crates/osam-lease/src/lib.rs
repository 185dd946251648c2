//! Leader election for the account sync: one replica at a time, through a Kubernetes Lease.
//!
//! Every replica serves the API; only the replica holding the Lease runs syncs. The pieces:
//!
//! - [`LeaderElector`]: the pure election rules (create, take over, renew, wait, step down),
//!   measured on a [`Clock`] so tests move time by hand with [`FakeClock`].
//! - [`LeaseStore`]: read, create and optimistically replace the lease; [`InMemoryLeaseStore`] for
//!   tests and [`KubeLeaseStore`] over `coordination.k8s.io/v1` `Lease` objects.
//! - [`run_elected`]: the loop a replica runs: it renews every `retry_period`, publishes "is leader"
//!   on a `tokio::sync::watch` channel, runs the leader's work only while it leads, and releases the
//!   lease on shutdown.
//!
//! **Safety.** A leader stops acting `renew_deadline` after the last renewal it sent, while another
//! replica may take over only `lease_duration` after it first saw that renewal, measured on its own
//! monotonic clock; with `renew_deadline < lease_duration` two leaders never act at once, whatever
//! the wall clocks say, as long as the clocks' rates differ by less than the margin (see
//! [`elector`] for the argument).
//!
//! **When the leader dies mid-sync** (crash, eviction, network partition): its sync stops where it
//! is, possibly after creating some accounts but before linking them, or after deleting some of
//! the accounts it planned to delete. Nothing resumes that run. The next leader, once the lease
//! has expired, runs a full sync from scratch (whoever uses this crate starts one whenever
//! `is_leader` turns true), and the sync plan is idempotent, so a half-applied run converges:
//!
//! - an account created but not yet linked carries the user's exact ownership marker, so the next
//!   plan relinks it instead of creating a second one (and the `iam` provider names users from a
//!   hash of the marker, so even a retried create finds the same user);
//! - deletes only ever target accounts whose marker is exactly the template filled with a user who
//!   is no longer in the directory, so repeating or finishing a delete can never touch anything
//!   else, and an account already deleted is simply absent from the next plan;
//! - policies are written whole (a replace, not an edit), so applying one twice is harmless.
//!
//! A leader cut off from the API server stops its work at its renew deadline (the work future is
//! dropped); calls it already sent may still land, which is the same half-applied state as a crash.

#![forbid(unsafe_code)]

mod clock;
pub mod elector;
mod kube_store;
mod record;
mod run;
mod store;

pub use clock::{Clock, FakeClock, SystemClock};
pub use elector::{Action, ElectionTimings, InvalidTimings, LeaderElector};
pub use kube_store::KubeLeaseStore;
pub use record::{LeaseRecord, VersionedLease};
pub use run::run_elected;
pub use store::{InMemoryLeaseStore, LeaseStore, StoreError};

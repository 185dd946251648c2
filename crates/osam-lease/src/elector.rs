//! The election rules as a state machine: from the lease as just read, this replica's identity and
//! its monotonic time, decide whether to create, take over, renew or wait, and whether this
//! replica may act as the leader right now.
//!
//! Two rules keep two leaders from ever acting at once:
//!
//! - A candidate never trusts the wall times written in the lease. It measures expiry on its own
//!   clock, from the moment it first saw the current version of the lease (the moment a read
//!   returned it, which is after that version was written): the lease expires `duration` later if
//!   no new version appeared meanwhile.
//! - The leader measures its own term from the moment it *sent* the write that last confirmed the
//!   lease (before that version could be stored), and stops acting `renew_deadline` later unless a
//!   newer write succeeded.
//!
//! So a takeover happens at least `duration` after the leader's last confirmed write was sent,
//! while the leader stopped `renew_deadline` after it: `duration - renew_deadline` is the margin
//! for the two clocks' rates to differ and for the leader's work to notice it must stop. Wall
//! clocks may disagree by any amount. Writes are optimistic (they name the version they were
//! computed from), so two replicas racing for the same version cannot both win.

use std::time::{Duration, Instant, SystemTime};

use crate::clock::Clock;
use crate::record::{LeaseRecord, VersionedLease};
use crate::store::{LeaseStore, StoreError};

/// How long a lease lasts and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTimings {
    /// How long other replicas wait after the last renewal they saw before taking the lease over.
    pub lease_duration: Duration,
    /// How long the leader keeps acting after the last renewal it sent; shorter than
    /// `lease_duration`, the difference being the safety margin.
    pub renew_deadline: Duration,
    /// How often the lease is read, renewed or tried; shorter than `renew_deadline`, so a leader
    /// gets several attempts before it must step down.
    pub retry_period: Duration,
}

impl Default for ElectionTimings {
    /// Kubernetes' own controllers' timings: 15 s, 10 s, 2 s.
    fn default() -> Self {
        ElectionTimings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Timings that would let two leaders act at once, or a leader lose its lease between renewals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("election timings must satisfy 0 < retry_period < renew_deadline < lease_duration, got {0:?}")]
pub struct InvalidTimings(pub ElectionTimings);

impl ElectionTimings {
    pub fn validate(&self) -> Result<(), InvalidTimings> {
        let ordered = Duration::ZERO < self.retry_period
            && self.retry_period < self.renew_deadline
            && self.renew_deadline < self.lease_duration;
        if ordered {
            Ok(())
        } else {
            Err(InvalidTimings(*self))
        }
    }
}

/// What to do with the lease just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// There is no lease: create it, held by this replica.
    Create(LeaseRecord),
    /// The lease was released or has expired: take it over, if it is still at `version`.
    Take { record: LeaseRecord, version: String },
    /// This replica holds the lease: extend it, if it is still at `version`.
    Renew { record: LeaseRecord, version: String },
    /// Another replica holds a lease that has not expired yet.
    Wait,
}

/// One replica's side of the election.
#[derive(Debug)]
pub struct LeaderElector {
    identity: String,
    timings: ElectionTimings,
    /// The version of another replica's lease seen last, and when it was first seen.
    observed: Option<Observation>,
    /// The lease this replica holds, as last written, and when that write was sent.
    held: Option<HeldLease>,
}

/// The observed "version" of a missing lease (no stored object has an empty resource version).
const ABSENT: &str = "";

#[derive(Debug)]
struct Observation {
    version: String,
    first_seen: Instant,
}

#[derive(Debug)]
struct HeldLease {
    lease: VersionedLease,
    confirmed_at: Instant,
}

impl LeaderElector {
    /// `identity` must differ between replicas alive at the same time (a pod name does).
    pub fn new(
        identity: impl Into<String>,
        timings: ElectionTimings,
    ) -> Result<LeaderElector, InvalidTimings> {
        timings.validate()?;
        Ok(LeaderElector {
            identity: identity.into(),
            timings,
            observed: None,
            held: None,
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timings(&self) -> ElectionTimings {
        self.timings
    }

    /// Whether this replica may act as the leader at `now`: it holds the lease and sent its last
    /// confirmed write less than `renew_deadline` ago.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.leader_deadline().is_some_and(|deadline| now < deadline)
    }

    /// When this replica must stop acting unless a renewal succeeds first.
    pub fn leader_deadline(&self) -> Option<Instant> {
        self.held
            .as_ref()
            .map(|held| held.confirmed_at + self.timings.renew_deadline)
    }

    /// Decides what to do with `current`, the lease as read at `now` (taken after the read
    /// returned). `wall_time` only fills the record's informative times.
    pub fn decide(
        &mut self,
        current: Option<&VersionedLease>,
        now: Instant,
        wall_time: SystemTime,
    ) -> Action {
        let Some(current) = current else {
            // Never created, or deleted by someone. The replica that held it, or one that never
            // saw a holder, creates it at once (a former holder stops acting until that write
            // succeeds). One that saw another holder waits a lease duration from when it first
            // saw the lease missing, as for an expiring lease: that holder may not have noticed
            // the deletion yet and still be acting.
            let was_ours = self.held.take().is_some();
            if was_ours || self.observed.is_none() {
                self.observed = None;
                return Action::Create(self.record_taking_over(None, wall_time));
            }
            let first_seen = match &self.observed {
                Some(observation) if observation.version == ABSENT => observation.first_seen,
                _ => {
                    self.observed = Some(Observation {
                        version: ABSENT.to_owned(),
                        first_seen: now,
                    });
                    now
                }
            };
            return if now.saturating_duration_since(first_seen) >= self.timings.lease_duration {
                Action::Create(self.record_taking_over(None, wall_time))
            } else {
                Action::Wait
            };
        };
        match current.record.holder.as_deref() {
            // Ours, also after this replica restarted with the same identity: its previous process
            // is gone, so extending the lease cannot make two leaders.
            Some(holder) if holder == self.identity => {
                self.observed = None;
                let record = LeaseRecord {
                    holder: Some(self.identity.clone()),
                    renewed_at: wall_time,
                    duration: self.timings.lease_duration,
                    ..current.record.clone()
                };
                Action::Renew {
                    record,
                    version: current.version.clone(),
                }
            }
            // Released by a leader that stopped acting first: free to take at once.
            None => {
                self.held = None;
                self.observed = None;
                Action::Take {
                    record: self.record_taking_over(Some(&current.record), wall_time),
                    version: current.version.clone(),
                }
            }
            Some(_another_replica) => {
                self.held = None;
                let first_seen = match &self.observed {
                    Some(observation) if observation.version == current.version => observation.first_seen,
                    _ => {
                        self.observed = Some(Observation {
                            version: current.version.clone(),
                            first_seen: now,
                        });
                        now
                    }
                };
                if now.saturating_duration_since(first_seen) >= current.record.duration {
                    Action::Take {
                        record: self.record_taking_over(Some(&current.record), wall_time),
                        version: current.version.clone(),
                    }
                } else {
                    Action::Wait
                }
            }
        }
    }

    fn record_taking_over(&self, previous: Option<&LeaseRecord>, wall_time: SystemTime) -> LeaseRecord {
        LeaseRecord {
            holder: Some(self.identity.clone()),
            acquired_at: wall_time,
            renewed_at: wall_time,
            duration: self.timings.lease_duration,
            transitions: previous.map_or(0, |previous| previous.transitions.saturating_add(1)),
        }
    }

    /// Records that the write of a `Create`, `Take` or `Renew` succeeded; `sent_at` is when it was
    /// sent, so the leader's term is never counted from later than the store's.
    pub fn write_succeeded(&mut self, written: VersionedLease, sent_at: Instant) {
        self.observed = None;
        self.held = Some(HeldLease {
            lease: written,
            confirmed_at: sent_at,
        });
    }

    /// Records that a write failed. A conflict means another replica wrote the lease, most likely
    /// taking it: stop acting at once. Any other failure leaves the leader acting until its
    /// deadline, as the lease is still its own until then.
    pub fn write_failed(&mut self, error: &StoreError) {
        if *error == StoreError::Conflict {
            self.held = None;
            self.observed = None;
        }
    }

    /// One round: reads the lease, decides, writes. Returns whether this replica leads afterwards;
    /// on an error, [`LeaderElector::is_leader`] still says whether it may act until its deadline.
    pub async fn try_acquire_or_renew<S: LeaseStore, C: Clock>(
        &mut self,
        store: &S,
        clock: &C,
    ) -> Result<bool, StoreError> {
        let current = store.get().await?;
        let action = self.decide(current.as_ref(), clock.now(), clock.wall_time());
        let sent_at = clock.now();
        let was_leading = self.is_leader(sent_at);
        let written = match &action {
            Action::Wait => return Ok(false),
            Action::Create(record) => store.create(record).await,
            Action::Take { record, version } | Action::Renew { record, version } => {
                store.replace(record, version).await
            }
        };
        match written {
            Ok(written) => {
                self.write_succeeded(written, sent_at);
                if !was_leading {
                    tracing::info!(identity = %self.identity, "acquired the lease");
                }
                Ok(self.is_leader(clock.now()))
            }
            Err(error) => {
                self.write_failed(&error);
                Err(error)
            }
        }
    }

    /// Gives the lease up so another replica can take it at once. Call it only once this replica
    /// has stopped acting as the leader. A conflict means the lease is no longer ours (nothing to
    /// release); an unavailable store leaves the lease to expire.
    pub async fn release<S: LeaseStore, C: Clock>(&mut self, store: &S, clock: &C) -> Result<(), StoreError> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let released = LeaseRecord {
            holder: None,
            renewed_at: clock.wall_time(),
            ..held.lease.record
        };
        store.replace(&released, &held.lease.version).await?;
        tracing::info!(identity = %self.identity, "released the lease");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::store::InMemoryLeaseStore;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn timings() -> ElectionTimings {
        ElectionTimings::default()
    }

    fn elector(identity: &str) -> LeaderElector {
        LeaderElector::new(identity, timings()).expect("valid timings")
    }

    /// A replica's view of the shared store that can be cut off.
    struct FlakyStore {
        inner: InMemoryLeaseStore,
        failing: AtomicBool,
    }

    impl FlakyStore {
        fn new(inner: &InMemoryLeaseStore) -> FlakyStore {
            FlakyStore {
                inner: inner.clone(),
                failing: AtomicBool::new(false),
            }
        }

        fn check(&self) -> Result<(), StoreError> {
            if self.failing.load(Ordering::SeqCst) {
                Err(StoreError::Unavailable("cut off".to_owned()))
            } else {
                Ok(())
            }
        }
    }

    impl LeaseStore for FlakyStore {
        async fn get(&self) -> Result<Option<VersionedLease>, StoreError> {
            self.check()?;
            self.inner.get().await
        }

        async fn create(&self, record: &LeaseRecord) -> Result<VersionedLease, StoreError> {
            self.check()?;
            self.inner.create(record).await
        }

        async fn replace(&self, record: &LeaseRecord, version: &str) -> Result<VersionedLease, StoreError> {
            self.check()?;
            self.inner.replace(record, version).await
        }
    }

    #[test]
    fn timings_must_leave_a_safety_margin() {
        assert!(ElectionTimings::default().validate().is_ok());
        let no_margin = ElectionTimings {
            renew_deadline: Duration::from_secs(15),
            ..ElectionTimings::default()
        };
        assert_eq!(no_margin.validate(), Err(InvalidTimings(no_margin)));
        let no_retry = ElectionTimings {
            retry_period: Duration::ZERO,
            ..ElectionTimings::default()
        };
        assert!(LeaderElector::new("a", no_retry).is_err());
    }

    #[tokio::test]
    async fn exactly_one_of_two_replicas_leads() {
        let store = InMemoryLeaseStore::new();
        let clock = FakeClock::new();
        let (mut a, mut b) = (elector("a"), elector("b"));
        for _ in 0..100 {
            let a_leads = a.try_acquire_or_renew(&store, &clock).await.expect("store up");
            let b_leads = b.try_acquire_or_renew(&store, &clock).await.expect("store up");
            assert!(
                a_leads && !b_leads,
                "the first to create keeps the lease by renewing it"
            );
            assert!(a.is_leader(clock.now()) && !b.is_leader(clock.now()));
            clock.advance(timings().retry_period);
        }
        let lease = store.get().await.expect("store up").expect("lease");
        assert_eq!(lease.record.holder.as_deref(), Some("a"));
        assert_eq!(lease.record.transitions, 0);
    }

    #[tokio::test]
    async fn a_dead_leader_is_replaced_only_after_the_lease_duration() {
        let store = InMemoryLeaseStore::new();
        let clock = FakeClock::new();
        let (mut a, mut b) = (elector("a"), elector("b"));
        assert!(a.try_acquire_or_renew(&store, &clock).await.expect("store up"));
        clock.advance(Duration::from_secs(1));
        assert!(a.try_acquire_or_renew(&store, &clock).await.expect("store up"));
        let last_renewal = clock.elapsed();
        // `a` dies here: it never renews again. `b` polls every retry period.
        let step = Duration::from_millis(500);
        loop {
            let b_leads = b.try_acquire_or_renew(&store, &clock).await.expect("store up");
            let since_last_renewal = clock.elapsed() - last_renewal;
            if b_leads {
                assert!(
                    since_last_renewal >= timings().lease_duration,
                    "{since_last_renewal:?}"
                );
                assert!(since_last_renewal <= timings().lease_duration + step);
                break;
            }
            clock.advance(step);
        }
        let lease = store.get().await.expect("store up").expect("lease");
        assert_eq!(lease.record.holder.as_deref(), Some("b"));
        assert_eq!(lease.record.transitions, 1);
        assert!(
            !a.try_acquire_or_renew(&store, &clock).await.expect("store up"),
            "a came back: it waits"
        );
    }

    #[tokio::test]
    async fn a_leader_that_cannot_renew_steps_down_before_another_can_take_over() {
        let shared = InMemoryLeaseStore::new();
        let (a_store, b_store) = (FlakyStore::new(&shared), FlakyStore::new(&shared));
        let clock = FakeClock::new();
        let (mut a, mut b) = (elector("a"), elector("b"));
        assert!(a.try_acquire_or_renew(&a_store, &clock).await.expect("store up"));
        assert!(!b.try_acquire_or_renew(&b_store, &clock).await.expect("store up"));
        let last_renewal = clock.elapsed();
        a_store.failing.store(true, Ordering::SeqCst);

        let step = Duration::from_millis(250);
        let mut a_stepped_down = None;
        let b_took_over = loop {
            clock.advance(step);
            let a_round = a.try_acquire_or_renew(&a_store, &clock).await;
            assert!(a_round.is_err());
            let b_leads = b.try_acquire_or_renew(&b_store, &clock).await.expect("store up");
            let now = clock.now();
            assert!(
                !(a.is_leader(now) && b.is_leader(now)),
                "two leaders at {:?}",
                clock.elapsed()
            );
            if !a.is_leader(now) && a_stepped_down.is_none() {
                a_stepped_down = Some(clock.elapsed() - last_renewal);
            }
            if b_leads {
                break clock.elapsed() - last_renewal;
            }
        };
        let a_stepped_down = a_stepped_down.expect("a stepped down");
        assert_eq!(a_stepped_down, timings().renew_deadline);
        assert_eq!(b_took_over, timings().lease_duration);
    }

    #[tokio::test]
    async fn concurrent_acquisitions_conflict_and_only_one_wins() {
        let store = InMemoryLeaseStore::new();
        let clock = FakeClock::new();
        let (mut a, mut b) = (elector("a"), elector("b"));

        // Both read "no lease" before either writes.
        let a_action = a.decide(None, clock.now(), clock.wall_time());
        let b_action = b.decide(None, clock.now(), clock.wall_time());
        let (Action::Create(a_record), Action::Create(b_record)) = (a_action, b_action) else {
            panic!("both should create");
        };
        let a_written = store.create(&a_record).await.expect("first create wins");
        a.write_succeeded(a_written, clock.now());
        let conflict = store.create(&b_record).await.expect_err("second create loses");
        assert_eq!(conflict, StoreError::Conflict);
        b.write_failed(&conflict);
        assert!(a.is_leader(clock.now()) && !b.is_leader(clock.now()));

        // Both see the same released lease and race to take it.
        a.release(&store, &clock).await.expect("released");
        let released = store.get().await.expect("store up");
        let a_take = a.decide(released.as_ref(), clock.now(), clock.wall_time());
        let b_take = b.decide(released.as_ref(), clock.now(), clock.wall_time());
        let (
            Action::Take {
                record: a_record,
                version: a_version,
            },
            Action::Take {
                record: b_record,
                version: b_version,
            },
        ) = (a_take, b_take)
        else {
            panic!("both should take the released lease");
        };
        let b_written = store
            .replace(&b_record, &b_version)
            .await
            .expect("first replace wins");
        b.write_succeeded(b_written, clock.now());
        let conflict = store
            .replace(&a_record, &a_version)
            .await
            .expect_err("second replace loses");
        a.write_failed(&conflict);
        assert!(b.is_leader(clock.now()) && !a.is_leader(clock.now()));
    }

    #[tokio::test]
    async fn a_conflicting_renewal_stops_the_leader_at_once() {
        let store = InMemoryLeaseStore::new();
        let clock = FakeClock::new();
        let mut a = elector("a");
        assert!(a.try_acquire_or_renew(&store, &clock).await.expect("store up"));
        let current = store.get().await.expect("store up").expect("lease");
        let Action::Renew { record, version } = a.decide(Some(&current), clock.now(), clock.wall_time())
        else {
            panic!("a renews its own lease");
        };
        // An operator edits the lease between a's read and a's write.
        store
            .replace(&current.record, &current.version)
            .await
            .expect("edited");
        let conflict = store.replace(&record, &version).await.expect_err("stale");
        a.write_failed(&conflict);
        assert!(!a.is_leader(clock.now()));
    }

    #[tokio::test]
    async fn a_released_lease_is_taken_at_once() {
        let store = InMemoryLeaseStore::new();
        let clock = FakeClock::new();
        let (mut a, mut b) = (elector("a"), elector("b"));
        assert!(a.try_acquire_or_renew(&store, &clock).await.expect("store up"));
        assert!(!b.try_acquire_or_renew(&store, &clock).await.expect("store up"));
        a.release(&store, &clock).await.expect("released");
        assert!(!a.is_leader(clock.now()));
        assert!(
            b.try_acquire_or_renew(&store, &clock).await.expect("store up"),
            "no waiting"
        );
        let lease = store.get().await.expect("store up").expect("lease");
        assert_eq!(lease.record.holder.as_deref(), Some("b"));
        assert_eq!(lease.record.transitions, 1);
    }

    #[tokio::test]
    async fn a_restarted_replica_renews_its_own_lease() {
        let store = InMemoryLeaseStore::new();
        let clock = FakeClock::new();
        let mut before_restart = elector("a");
        assert!(
            before_restart
                .try_acquire_or_renew(&store, &clock)
                .await
                .expect("store up")
        );
        let acquired_at = clock.wall_time();
        clock.advance(Duration::from_secs(5));
        let mut after_restart = elector("a");
        assert!(
            after_restart
                .try_acquire_or_renew(&store, &clock)
                .await
                .expect("store up")
        );
        let lease = store.get().await.expect("store up").expect("lease");
        assert_eq!(lease.record.acquired_at, acquired_at);
        assert_eq!(lease.record.renewed_at, clock.wall_time());
        assert_eq!(lease.record.transitions, 0);
    }

    #[tokio::test]
    async fn expiry_is_measured_on_the_local_clock_not_the_written_times() {
        let store = InMemoryLeaseStore::new();
        let clock = FakeClock::new();
        // A lease whose writer's wall clock was an hour behind.
        let stale_looking = LeaseRecord {
            holder: Some("a".to_owned()),
            acquired_at: clock.wall_time() - Duration::from_secs(3600),
            renewed_at: clock.wall_time() - Duration::from_secs(3600),
            duration: Duration::from_secs(15),
            transitions: 0,
        };
        store.create(&stale_looking).await.expect("created");
        let mut b = elector("b");
        assert!(!b.try_acquire_or_renew(&store, &clock).await.expect("store up"));
        clock.advance(Duration::from_secs(14));
        assert!(!b.try_acquire_or_renew(&store, &clock).await.expect("store up"));
        clock.advance(Duration::from_secs(1));
        assert!(b.try_acquire_or_renew(&store, &clock).await.expect("store up"));
    }

    #[test]
    fn a_deleted_lease_is_recreated_by_its_holder_at_once_and_by_others_only_after_the_duration() {
        let clock = FakeClock::new();
        let wall = SystemTime::UNIX_EPOCH;
        let lease = |holder: &str, version: &str| VersionedLease {
            record: LeaseRecord {
                holder: Some(holder.to_owned()),
                acquired_at: wall,
                renewed_at: wall,
                duration: timings().lease_duration,
                transitions: 0,
            },
            version: version.to_owned(),
        };
        let mut follower = elector("b");
        assert_eq!(
            follower.decide(Some(&lease("a", "1")), clock.now(), wall),
            Action::Wait
        );
        // Someone deletes the lease while "a" may still be acting.
        clock.advance(Duration::from_secs(1));
        assert_eq!(follower.decide(None, clock.now(), wall), Action::Wait);
        clock.advance(timings().lease_duration - Duration::from_millis(1));
        assert_eq!(
            follower.decide(None, clock.now(), wall),
            Action::Wait,
            "not before the duration"
        );
        clock.advance(Duration::from_millis(1));
        assert!(matches!(
            follower.decide(None, clock.now(), wall),
            Action::Create(_)
        ));

        // A replica that never saw a holder creates at once (a first deployment).
        assert!(matches!(
            elector("c").decide(None, clock.now(), wall),
            Action::Create(_)
        ));
    }
}

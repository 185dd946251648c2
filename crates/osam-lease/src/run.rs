//! The election loop a replica runs for its whole life: try to acquire, renew while leading, run
//! the leader's work only while the lease is held, and give the lease back on shutdown.

use std::future::Future;
use std::pin::{Pin, pin};

use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::elector::LeaderElector;
use crate::store::LeaseStore;

/// Runs the election until `shutdown` completes.
///
/// Every `retry_period` it reads the lease and acquires or renews it. Whenever this replica
/// becomes the leader it sets `is_leader` to `true` and starts the future `lead()` returns; that
/// future is polled alongside the election and dropped, cancelling the work where it stands, the
/// moment leadership ends (a renewal not confirmed within `renew_deadline`, or the lease taken by
/// another replica), and `is_leader` goes back to `false`. A `lead` future that finishes early is
/// not restarted until leadership is lost and won again. Store errors are logged and retried; they
/// end leadership only through the deadline.
///
/// On shutdown the work is dropped and `is_leader` set to `false` first, then the lease is released
/// so another replica takes over at once instead of after `lease_duration`. Code that only watches
/// `is_leader` (instead of running inside `lead`) must itself stop acting when it turns `false`.
pub async fn run_elected<S, F, Fut>(
    store: S,
    mut elector: LeaderElector,
    is_leader: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
    mut lead: F,
) where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let clock = SystemClock;
    let timings = elector.timings();
    let mut shutdown = pin!(shutdown);
    let mut leading = false;
    let mut work: Option<Pin<Box<Fut>>> = None;

    'election: loop {
        let round_started = clock.now();
        // A leader's round may last until its deadline; past it, the round's outcome would come too
        // late to keep acting anyway.
        let round_limit = match elector.leader_deadline() {
            Some(deadline) if deadline > round_started => deadline - round_started,
            _ => timings.renew_deadline,
        };
        {
            let mut round = pin!(tokio::time::timeout(
                round_limit,
                elector.try_acquire_or_renew(&store, &clock)
            ));
            loop {
                tokio::select! {
                    biased;
                    () = &mut shutdown => break 'election,
                    outcome = &mut round => {
                        match outcome {
                            Ok(Ok(_)) => {}
                            Ok(Err(error)) => tracing::warn!(%error, "lease round failed"),
                            Err(_) => tracing::warn!(?round_limit, "lease round timed out"),
                        }
                        break;
                    }
                    () = poll_work(&mut work) => {}
                }
            }
        }
        update_leadership(&elector, &clock, &mut leading, &mut work, &is_leader, &mut lead);

        let mut wake_at = round_started + timings.retry_period;
        if let Some(deadline) = elector.leader_deadline().filter(|_| leading) {
            wake_at = wake_at.min(deadline);
        }
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break 'election,
                () = tokio::time::sleep_until(wake_at.into()) => break,
                () = poll_work(&mut work) => {}
            }
        }
        update_leadership(&elector, &clock, &mut leading, &mut work, &is_leader, &mut lead);
    }

    drop(work);
    is_leader.send_replace(false);
    match tokio::time::timeout(timings.renew_deadline, elector.release(&store, &clock)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not release the lease; it will expire"),
        Err(_) => tracing::warn!("releasing the lease timed out; it will expire"),
    }
}

/// Starts or stops the leader's work when leadership changed.
fn update_leadership<F, Fut>(
    elector: &LeaderElector,
    clock: &SystemClock,
    leading: &mut bool,
    work: &mut Option<Pin<Box<Fut>>>,
    is_leader: &watch::Sender<bool>,
    lead: &mut F,
) where
    F: FnMut() -> Fut,
{
    let leads_now = elector.is_leader(clock.now());
    if leads_now == *leading {
        return;
    }
    *leading = leads_now;
    if leads_now {
        tracing::info!(identity = elector.identity(), "leading");
        *work = Some(Box::pin(lead()));
    } else {
        tracing::warn!(
            identity = elector.identity(),
            "no longer leading; stopping the leader's work"
        );
        *work = None;
    }
    is_leader.send_replace(leads_now);
}

/// Drives the leader's work; never completes while there is none. Clears it once it finished.
async fn poll_work<Fut: Future<Output = ()>>(work: &mut Option<Pin<Box<Fut>>>) {
    match work.as_mut() {
        Some(running) => {
            running.await;
            *work = None;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use tokio::sync::oneshot;
    use tokio::time::Instant as TokioInstant;

    use super::*;
    use crate::elector::ElectionTimings;
    use crate::record::{LeaseRecord, VersionedLease};
    use crate::store::{InMemoryLeaseStore, StoreError};

    fn elector(identity: &str) -> LeaderElector {
        LeaderElector::new(identity, ElectionTimings::default()).expect("valid timings")
    }

    struct Replica {
        is_leader: watch::Receiver<bool>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start<S: LeaseStore + 'static>(store: S, identity: &str) -> Replica {
        let (sender, receiver) = watch::channel(false);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run_elected(store, elector(identity), sender, shutdown, || {
            std::future::pending::<()>()
        }));
        Replica {
            is_leader: receiver,
            stop: Some(stop),
            task,
        }
    }

    async fn holder(store: &InMemoryLeaseStore) -> Option<String> {
        store
            .get()
            .await
            .expect("store up")
            .and_then(|lease| lease.record.holder)
    }

    #[tokio::test(start_paused = true)]
    async fn one_replica_leads_and_a_clean_shutdown_hands_over_at_once() {
        let store = InMemoryLeaseStore::new();
        let mut a = start(store.clone(), "a");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut b = start(store.clone(), "b");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(*a.is_leader.borrow() && !*b.is_leader.borrow());
        assert_eq!(holder(&store).await.as_deref(), Some("a"));

        let stopped_at = TokioInstant::now();
        a.stop.take().expect("running").send(()).expect("a runs");
        a.task.await.expect("a stopped");
        assert!(!*a.is_leader.borrow());
        b.is_leader.wait_for(|leading| *leading).await.expect("b runs");
        let handover = stopped_at.elapsed();
        assert!(
            handover <= ElectionTimings::default().retry_period,
            "{handover:?}"
        );
        b.stop.take().expect("running").send(()).expect("b runs");
        b.task.await.expect("b stopped");
        assert_eq!(holder(&store).await, None, "released on shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_crashed_leader_is_replaced_after_the_lease_duration() {
        let store = InMemoryLeaseStore::new();
        let mut a = start(store.clone(), "a");
        a.is_leader.wait_for(|leading| *leading).await.expect("a runs");
        let mut b = start(store.clone(), "b");
        tokio::time::sleep(Duration::from_secs(30)).await;

        let version_before_crash = store.get().await.expect("store up").expect("lease").version;
        let crashed_at = TokioInstant::now();
        a.task.abort();
        b.is_leader.wait_for(|leading| *leading).await.expect("b runs");
        let takeover = crashed_at.elapsed();
        let timings = ElectionTimings::default();
        // a renewed at most one retry period before the crash; b waits a full lease from then.
        assert!(
            takeover >= timings.lease_duration - timings.retry_period,
            "{takeover:?}"
        );
        assert!(
            takeover <= timings.lease_duration + timings.retry_period,
            "{takeover:?}"
        );
        assert_ne!(
            store.get().await.expect("store up").expect("lease").version,
            version_before_crash
        );
        drop(b.stop.take());
    }

    /// A store that hangs forever once cut off, like an unreachable API server.
    #[derive(Clone)]
    struct HangingStore {
        inner: InMemoryLeaseStore,
        cut_off: Arc<AtomicBool>,
    }

    impl HangingStore {
        async fn reachable(&self) {
            if self.cut_off.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
        }
    }

    impl LeaseStore for HangingStore {
        async fn get(&self) -> Result<Option<VersionedLease>, StoreError> {
            self.reachable().await;
            self.inner.get().await
        }

        async fn create(&self, record: &LeaseRecord) -> Result<VersionedLease, StoreError> {
            self.reachable().await;
            self.inner.create(record).await
        }

        async fn replace(&self, record: &LeaseRecord, version: &str) -> Result<VersionedLease, StoreError> {
            self.reachable().await;
            self.inner.replace(record, version).await
        }
    }

    /// Sets its flag when dropped, i.e. when the leader's work is cancelled.
    struct StopSignal(Arc<AtomicBool>);

    impl Drop for StopSignal {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_off_leader_stops_its_work_by_the_renew_deadline() {
        let shared = InMemoryLeaseStore::new();
        let a_store = HangingStore {
            inner: shared.clone(),
            cut_off: Arc::new(AtomicBool::new(false)),
        };
        let work_stopped = Arc::new(AtomicBool::new(false));
        let (sender, mut a_is_leader) = watch::channel(false);
        let stopped = work_stopped.clone();
        let lead = move || {
            let guard = StopSignal(stopped.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        };
        let a_task = tokio::spawn(run_elected(
            a_store.clone(),
            elector("a"),
            sender,
            std::future::pending(),
            lead,
        ));
        a_is_leader.wait_for(|leading| *leading).await.expect("a runs");
        let mut b = start(shared.clone(), "b");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(!work_stopped.load(Ordering::SeqCst));

        let cut_at = TokioInstant::now();
        a_store.cut_off.store(true, Ordering::SeqCst);
        a_is_leader.wait_for(|leading| !*leading).await.expect("a runs");
        let stepped_down = cut_at.elapsed();
        assert!(
            work_stopped.load(Ordering::SeqCst),
            "the work was dropped with leadership"
        );
        let timings = ElectionTimings::default();
        assert!(stepped_down <= timings.renew_deadline, "{stepped_down:?}");
        assert!(!*b.is_leader.borrow(), "b cannot have taken over yet");

        b.is_leader.wait_for(|leading| *leading).await.expect("b runs");
        let taken_over = cut_at.elapsed();
        assert!(taken_over > stepped_down);
        assert!(
            taken_over >= timings.lease_duration - timings.retry_period,
            "{taken_over:?}"
        );
        a_task.abort();
        drop(b.stop.take());
    }
}

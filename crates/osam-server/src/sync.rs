//! The account sync: one background task runs the plan of `osam_policy::sync_plan` against the
//! directory and the account provider. Triggers that arrive during a run coalesce into one more
//! run; calls run with bounded concurrency, a timeout each and retries with backoff on transient
//! failures; one failing user never stops the others, and the report lists every failure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use osam_policy::accounts::{AccountProvider, ProviderError};
use osam_policy::sync_plan::{DeleteShare, SyncPlan, SyncUser, marker_owner};
use osam_policy::{Directory, DirectoryError, DirectoryUser};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::audit;
use crate::config::AccountsConfig;
use crate::metrics::{Metrics, metrics};
use crate::storage::Storage;

/// How a run ended, or where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Finished,
    Refused,
    Failed,
}

/// One failed step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub subject: String,
    pub step: &'static str,
    pub message: String,
}

/// What a run did, so far or in all.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub state: RunState,
    pub triggered_at: SystemTime,
    pub duration: Duration,
    pub created: u32,
    pub deleted: u32,
    pub relinked: u32,
    pub kept: u32,
    pub policies_applied: u32,
    pub failures: Vec<Failure>,
    pub refusal: Option<String>,
}

impl RunReport {
    fn new(triggered_at: SystemTime) -> RunReport {
        RunReport {
            state: RunState::Running,
            triggered_at,
            duration: Duration::ZERO,
            created: 0,
            deleted: 0,
            relinked: 0,
            kept: 0,
            policies_applied: 0,
            failures: Vec::new(),
            refusal: None,
        }
    }
}

/// The outcome of a trigger.
#[derive(Debug, Clone, Copy)]
pub struct Triggered {
    /// The run that will include this trigger.
    pub run_id: u64,
    /// The trigger joined a run that was already waiting to start.
    pub coalesced: bool,
}

#[derive(Debug)]
struct Pending {
    run_id: u64,
    force: bool,
    triggered_at: SystemTime,
}

#[derive(Default)]
struct State {
    next_run_id: u64,
    pending: Option<Pending>,
    current: Option<(u64, Instant, RunReport)>,
    last: Option<(u64, RunReport)>,
}

/// The sync settings, from `[accounts]`.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub link_attribute: String,
    pub max_delete_share: DeleteShare,
    pub concurrency: usize,
    pub call_timeout: Duration,
    pub call_attempts: u32,
    pub apply_policies: bool,
}

impl SyncSettings {
    /// The settings; `max_delete_share` was validated with the configuration.
    pub fn from_config(accounts: &AccountsConfig) -> Result<SyncSettings, String> {
        Ok(SyncSettings {
            link_attribute: accounts.link_attribute.clone(),
            max_delete_share: DeleteShare::new(accounts.max_delete_share)
                .map_err(|error| error.to_string())?,
            concurrency: accounts.concurrency,
            call_timeout: Duration::from_secs(accounts.call_timeout_seconds),
            call_attempts: accounts.call_attempts,
            apply_policies: accounts.apply_policies_after_sync,
        })
    }
}

/// Whether this replica may run syncs.
pub enum Leadership {
    /// The only replica: it always may.
    Alone,
    /// One replica among several: only while the channel says it holds the sync Lease. A run in
    /// progress stops at once when leadership is lost, and a replica that becomes the leader runs
    /// a full sync (the previous leader may have stopped halfway; the plan converges).
    Elected(watch::Receiver<bool>),
}

pub struct SyncWorker {
    directory: Arc<dyn Directory>,
    storage: Arc<Storage>,
    settings: SyncSettings,
    leadership: Option<watch::Receiver<bool>>,
    /// Set at shutdown: no run starts, and the one in progress stops.
    stopping: watch::Sender<bool>,
    state: Mutex<State>,
    wake: Notify,
    completed: watch::Sender<u64>,
}

impl SyncWorker {
    /// The worker and its background task; `interval` triggers runs periodically when set.
    pub fn start(
        directory: Arc<dyn Directory>,
        storage: Arc<Storage>,
        settings: SyncSettings,
        interval: Option<Duration>,
        leadership: Leadership,
    ) -> Arc<SyncWorker> {
        let (completed, _) = watch::channel(0);
        let leadership = match leadership {
            Leadership::Alone => None,
            Leadership::Elected(receiver) => Some(receiver),
        };
        let worker = Arc::new(SyncWorker {
            directory,
            storage,
            settings,
            leadership,
            stopping: watch::channel(false).0,
            state: Mutex::new(State {
                next_run_id: 1,
                ..State::default()
            }),
            wake: Notify::new(),
            completed,
        });
        let runner = worker.clone();
        tokio::spawn(async move { runner.run_loop().await });
        if let Some(mut leadership) = worker.leadership.clone() {
            let elected_worker = Arc::downgrade(&worker);
            tokio::spawn(async move {
                loop {
                    if leadership.wait_for(|leading| *leading).await.is_err() {
                        return;
                    }
                    let Some(worker) = elected_worker.upgrade() else {
                        return;
                    };
                    tracing::info!("this replica now holds the sync lease: running a full sync");
                    worker.trigger(false);
                    drop(worker);
                    if leadership.wait_for(|leading| !*leading).await.is_err() {
                        return;
                    }
                    tracing::warn!("this replica lost the sync lease: syncs stop here");
                }
            });
        }
        if let Some(interval) = interval {
            let ticker_worker = Arc::downgrade(&worker);
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    let Some(worker) = ticker_worker.upgrade() else {
                        break;
                    };
                    worker.trigger(false);
                }
            });
        }
        worker
    }

    /// Whether this replica may run syncs now.
    pub fn is_leader(&self) -> bool {
        !*self.stopping.borrow()
            && self
                .leadership
                .as_ref()
                .is_none_or(|leadership| *leadership.borrow())
    }

    /// Stops syncing for good (shutdown): the run in progress stops where it is (the next run,
    /// here or on the next leader, converges), and this returns once it has. Called before the
    /// sync lease is released, so that the next leader never overlaps this replica's run.
    pub async fn stop(&self) {
        self.stopping.send_replace(true);
        let mut completed = self.completed.subscribe();
        while self.lock().current.is_some() {
            if completed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Resolves once this replica is the leader (at once when it is alone).
    async fn until_leader(&self) {
        if let Some(mut leadership) = self.leadership.clone()
            && leadership.wait_for(|leading| *leading).await.is_err()
        {
            // The election ended (shutdown): never lead again.
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when this replica stops being the leader, or stops syncing at shutdown.
    pub async fn until_not_leader(&self) {
        let mut stopping = self.stopping.subscribe();
        let lost = async {
            match self.leadership.clone() {
                Some(mut leadership) => {
                    let _ = leadership.wait_for(|leading| !*leading).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = lost => {}
            _ = stopping.wait_for(|stopping| *stopping) => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks for a run: a new one, or the one already waiting to start (coalesced).
    pub fn trigger(&self, force: bool) -> Triggered {
        let triggered = {
            let mut state = self.lock();
            match &mut state.pending {
                Some(pending) => {
                    pending.force |= force;
                    Triggered {
                        run_id: pending.run_id,
                        coalesced: true,
                    }
                }
                None => {
                    let run_id = state.next_run_id;
                    state.next_run_id += 1;
                    state.pending = Some(Pending {
                        run_id,
                        force,
                        triggered_at: SystemTime::now(),
                    });
                    Triggered {
                        run_id,
                        coalesced: false,
                    }
                }
            }
        };
        self.wake.notify_one();
        triggered
    }

    /// Waits until run `run_id` has finished and returns its report, or the report of a later run
    /// when that one finished before this waiter looked (a later run includes the trigger too).
    pub async fn wait_for(&self, run_id: u64) -> Option<RunReport> {
        let mut completed = self.completed.subscribe();
        if completed.wait_for(|finished| *finished >= run_id).await.is_err() {
            return None;
        }
        self.lock()
            .last
            .as_ref()
            .filter(|(id, _)| *id >= run_id)
            .map(|(_, report)| report.clone())
    }

    /// The run in progress (with its duration so far) and the last finished one.
    pub fn status(&self) -> (Option<RunReport>, Option<RunReport>) {
        let state = self.lock();
        let current = state.current.as_ref().map(|(_, started, report)| {
            let mut report = report.clone();
            report.duration = started.elapsed();
            report
        });
        (current, state.last.as_ref().map(|(_, report)| report.clone()))
    }

    /// The plan a run would execute now, and why it would be refused without force.
    pub async fn dry_run(&self) -> Result<(SyncPlan, Option<String>), String> {
        let (_, plan, _) = self.plan().await?;
        let refusal = plan
            .refusal(self.settings.max_delete_share, false)
            .map(|refusal| refusal.to_string());
        Ok((plan, refusal))
    }

    async fn run_loop(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            loop {
                self.until_leader().await;
                if *self.stopping.borrow() {
                    return;
                }
                let pending = {
                    let mut state = self.lock();
                    let pending = state.pending.take();
                    if let Some(pending) = &pending {
                        state.current = Some((
                            pending.run_id,
                            Instant::now(),
                            RunReport::new(pending.triggered_at),
                        ));
                    }
                    pending
                };
                let Some(pending) = pending else { break };
                let started = Instant::now();
                tracing::info!(run = pending.run_id, force = pending.force, "sync started");
                let run = format!("run {}", pending.run_id);
                let detail = format!("{run}, force {}", pending.force);
                audit::state_change(None, "sync_started", "", "started", &detail);
                let mut report = tokio::select! {
                    report = self.run(pending.force, pending.triggered_at) => report,
                    // Dropping the run aborts its steps where they are; the next leader converges.
                    () = self.until_not_leader() => {
                        let mut report = self
                            .lock()
                            .current
                            .as_ref()
                            .map(|(_, _, report)| report.clone())
                            .unwrap_or_else(|| RunReport::new(pending.triggered_at));
                        report.state = RunState::Failed;
                        report.refusal = Some(if *self.stopping.borrow() {
                            "the server shut down during the run; the next run converges".into()
                        } else {
                            "this replica lost the sync lease during the run; the new leader runs a full sync".into()
                        });
                        report
                    }
                };
                report.duration = started.elapsed();
                record_finished_run(&run, &report);
                tracing::info!(
                    run = pending.run_id,
                    state = ?report.state,
                    created = report.created,
                    deleted = report.deleted,
                    relinked = report.relinked,
                    failures = report.failures.len(),
                    "sync finished"
                );
                {
                    let mut state = self.lock();
                    state.current = None;
                    state.last = Some((pending.run_id, report));
                }
                self.completed.send_replace(pending.run_id);
            }
        }
    }

    /// The directory's users, the plan, and the owner (username) of each account the plan deletes.
    async fn plan(&self) -> Result<(Vec<DirectoryUser>, SyncPlan, HashMap<String, String>), String> {
        let users = self
            .directory
            .list_users()
            .await
            .map_err(|error| format!("listing directory users: {error}"))?;
        let accounts = self
            .storage
            .accounts
            .list_accounts()
            .await
            .map_err(|error| format!("listing accounts: {error}"))?;
        let entries: Vec<SyncUser> = users
            .iter()
            .map(|user| SyncUser {
                username: user.username.clone(),
                linked_account: user.attribute(&self.settings.link_attribute).map(str::to_owned),
            })
            .collect();
        let template = &self.storage.marker_template;
        let plan = SyncPlan::compute(&entries, &accounts, template);
        let owners = accounts
            .iter()
            .filter(|account| plan.delete().contains(&account.id))
            .filter_map(|account| {
                marker_owner(template, &account.marker).map(|owner| (account.id.clone(), owner.to_owned()))
            })
            .collect();
        Ok((users, plan, owners))
    }

    async fn run(self: &Arc<Self>, force: bool, triggered_at: SystemTime) -> RunReport {
        let mut report = RunReport::new(triggered_at);
        let (users, plan, owners) = match self.plan().await {
            Ok(planned) => planned,
            Err(reason) => {
                report.state = RunState::Failed;
                report.refusal = Some(reason);
                return report;
            }
        };
        if let Some(refusal) = plan.refusal(self.settings.max_delete_share, force) {
            tracing::warn!(%refusal, "sync refused");
            report.state = RunState::Refused;
            report.refusal = Some(refusal.to_string());
            return report;
        }
        report.kept = plan.keep().len() as u32;

        let limit = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut steps: JoinSet<(Step, Result<(), Failure>)> = JoinSet::new();
        for username in plan.create() {
            self.spawn_step(&mut steps, &limit, Step::Create(username.clone()));
        }
        for link in plan.relink() {
            self.spawn_step(
                &mut steps,
                &limit,
                Step::Relink(link.username.clone(), link.account_id.clone()),
            );
        }
        for account_id in plan.delete() {
            // The plan deletes only accounts whose marker names a user (marker_owner), so the
            // owner is known; an account without one would be a bug, and is kept.
            let Some(owner) = owners.get(account_id) else {
                continue;
            };
            self.spawn_step(
                &mut steps,
                &limit,
                Step::Delete(account_id.clone(), owner.clone()),
            );
        }
        while let Some(joined) = steps.join_next().await {
            match joined {
                Ok((step, Ok(()))) => match step {
                    Step::Create(_) => report.created += 1,
                    Step::Relink(..) => report.relinked += 1,
                    Step::Delete(..) => report.deleted += 1,
                    Step::ApplyPolicy(_) => report.policies_applied += 1,
                },
                Ok((_, Err(failure))) => report.failures.push(failure),
                Err(error) => report.failures.push(Failure {
                    subject: String::new(),
                    step: "task",
                    message: error.to_string(),
                }),
            }
            self.publish_progress(&report);
        }

        if self.settings.apply_policies {
            // Only users who have an account now: a failed create is already in the report.
            let markers: std::collections::HashSet<String> = match self.storage.accounts.list_accounts().await
            {
                Ok(accounts) => accounts.into_iter().map(|account| account.marker).collect(),
                Err(error) => {
                    report.failures.push(Failure {
                        subject: String::new(),
                        step: "apply_policy",
                        message: error.to_string(),
                    });
                    Default::default()
                }
            };
            let template = &self.storage.marker_template;
            for user in users
                .into_iter()
                .filter(|user| markers.contains(&template.marker_for(&user.username)))
            {
                self.spawn_step(&mut steps, &limit, Step::ApplyPolicy(Box::new(user)));
            }
            while let Some(joined) = steps.join_next().await {
                match joined {
                    Ok((_, Ok(()))) => report.policies_applied += 1,
                    Ok((_, Err(failure))) => report.failures.push(failure),
                    Err(error) => report.failures.push(Failure {
                        subject: String::new(),
                        step: "task",
                        message: error.to_string(),
                    }),
                }
            }
        }
        report
            .failures
            .sort_by(|left, right| (&left.subject, left.step).cmp(&(&right.subject, right.step)));
        report.state = RunState::Finished;
        report
    }

    fn publish_progress(&self, report: &RunReport) {
        if let Some((_, _, current)) = self.lock().current.as_mut() {
            current.created = report.created;
            current.deleted = report.deleted;
            current.relinked = report.relinked;
            current.kept = report.kept;
            current.failures = report.failures.clone();
        }
    }

    fn spawn_step(
        self: &Arc<Self>,
        steps: &mut JoinSet<(Step, Result<(), Failure>)>,
        limit: &Arc<Semaphore>,
        step: Step,
    ) {
        let worker = self.clone();
        let limit = limit.clone();
        steps.spawn(async move {
            let Ok(_permit) = limit.acquire_owned().await else {
                return (
                    step,
                    Err(Failure {
                        subject: String::new(),
                        step: "task",
                        message: "shutting down".into(),
                    }),
                );
            };
            let outcome = worker.execute(&step).await;
            (step, outcome)
        });
    }

    async fn execute(&self, step: &Step) -> Result<(), Failure> {
        let provider: &dyn AccountProvider = self.storage.accounts.as_ref();
        match step {
            Step::Create(username) => {
                let marker = self.storage.marker_template.marker_for(username);
                let (account, _) =
                    self.retrying(|| provider.create_account(&marker))
                        .await
                        .map_err(|message| Failure {
                            subject: username.clone(),
                            step: "create",
                            message,
                        })?;
                tracing::info!(user = %username, account = %account.id, "account created");
                audit::state_change(None, "account_created", username, "ok", &account.id);
                self.link(username, &account.id).await
            }
            Step::Relink(username, account_id) => self.link(username, account_id).await,
            Step::Delete(account_id, owner) => {
                self.confirm_gone(account_id, owner).await?;
                let deleted = self.retrying(|| provider.delete_account(account_id)).await;
                match deleted {
                    Ok(()) => {
                        tracing::info!(account = %account_id, "account deleted");
                        audit::state_change(None, "account_deleted", account_id, "ok", "");
                        Ok(())
                    }
                    // Already gone: the goal of the step is reached.
                    Err(message) if message.starts_with(NOT_FOUND_PREFIX) => Ok(()),
                    Err(message) => Err(Failure {
                        subject: account_id.clone(),
                        step: "delete",
                        message,
                    }),
                }
            }
            Step::ApplyPolicy(user) => {
                let failure = |message: String| Failure {
                    subject: user.username.clone(),
                    step: "apply_policy",
                    message,
                };
                let computed = self
                    .storage
                    .rights_of(user)
                    .map_err(|error| failure(error.to_string()))?;
                let account_id = self
                    .storage
                    .account_of(&user.username)
                    .await
                    .map_err(|error| failure(error.to_string()))?;
                let applied = if computed.grants_nothing {
                    self.retrying(|| provider.remove_policy(&account_id)).await
                } else {
                    self.retrying(|| provider.apply_policy(&account_id, &computed.policy_json))
                        .await
                };
                audit::policy_change(
                    None,
                    &user.username,
                    &account_id,
                    computed.grants_nothing,
                    applied.is_ok(),
                );
                applied.map_err(failure)
            }
        }
    }

    /// Asks the directory once more, for this one user, before their account is deleted: a listing
    /// that missed a user (Keycloak pages by offset, and the realm may change while it is read)
    /// must never cost them their account. Unsure means keep.
    async fn confirm_gone(&self, account_id: &str, owner: &str) -> Result<(), Failure> {
        let kept = |message: String| Failure {
            subject: account_id.to_owned(),
            step: "delete",
            message,
        };
        let call = self.directory.find_user(owner);
        match tokio::time::timeout(self.settings.call_timeout, call).await {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(_))) => Err(kept(format!(
                "kept: the directory listing missed user {owner:?}, who still exists"
            ))),
            Ok(Err(error)) => Err(kept(format!(
                "kept: cannot confirm that user {owner:?} is gone: {error}"
            ))),
            Err(_) => Err(kept(format!(
                "kept: confirming that user {owner:?} is gone timed out after {:?}",
                self.settings.call_timeout
            ))),
        }
    }

    /// Writes the link attribute, retrying while the directory is unavailable.
    async fn link(&self, username: &str, account_id: &str) -> Result<(), Failure> {
        let attribute = self.settings.link_attribute.as_str();
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=self.settings.call_attempts {
            let call = self
                .directory
                .set_attribute(username, attribute, vec![account_id.to_owned()]);
            let outcome = tokio::time::timeout(self.settings.call_timeout, call).await;
            let message = match outcome {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(DirectoryError::UserNotFound(_))) => {
                    "the user left the directory during the sync".to_owned()
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("timed out after {:?}", self.settings.call_timeout),
            };
            let transient = !message.starts_with("the user left");
            if !transient || attempt == self.settings.call_attempts {
                return Err(Failure {
                    subject: username.to_owned(),
                    step: "link",
                    message,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        Err(Failure {
            subject: username.to_owned(),
            step: "link",
            message: "no attempt was made".to_owned(),
        })
    }

    /// Runs a provider call with a timeout, retrying transient failures (unavailable, timed out)
    /// with backoff; other failures are final.
    async fn retrying<'a, T, Call, Answer>(&self, call: Call) -> Result<T, String>
    where
        Call: Fn() -> Answer,
        Answer: Future<Output = Result<T, ProviderError>> + 'a,
    {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=self.settings.call_attempts {
            let (message, transient) = match tokio::time::timeout(self.settings.call_timeout, call()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(ProviderError::Unavailable(reason))) => (format!("unavailable: {reason}"), true),
                Ok(Err(ProviderError::NotFound(what))) => (format!("{NOT_FOUND_PREFIX}{what}"), false),
                Ok(Err(error)) => (error.to_string(), false),
                Err(_) => (format!("timed out after {:?}", self.settings.call_timeout), true),
            };
            if !transient || attempt == self.settings.call_attempts {
                return Err(message);
            }
            tracing::debug!(attempt, %message, "provider call failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        Err("no attempt was made".to_owned())
    }
}

const NOT_FOUND_PREFIX: &str = "not found: ";

enum Step {
    Create(String),
    Relink(String, String),
    /// The account, and the user its marker names.
    Delete(String, String),
    ApplyPolicy(Box<DirectoryUser>),
}

/// The audit event and metrics of a finished run.
fn record_finished_run(run: &str, report: &RunReport) {
    let state = match report.state {
        RunState::Finished if report.failures.is_empty() => "finished",
        RunState::Finished => "finished_with_failures",
        RunState::Refused => "refused",
        RunState::Failed => "failed",
        RunState::Running => "running",
    };
    let detail = format!(
        "{run}: created {}, deleted {}, relinked {}, failures {}{}",
        report.created,
        report.deleted,
        report.relinked,
        report.failures.len(),
        report
            .refusal
            .as_deref()
            .map(|refusal| format!(", {refusal}"))
            .unwrap_or_default()
    );
    audit::state_change(None, "sync_finished", "", state, &detail);
    let metrics = metrics();
    Metrics::record_result(&metrics.sync_runs, state);
    metrics.accounts_created.inc_by(u64::from(report.created));
    metrics.accounts_deleted.inc_by(u64::from(report.deleted));
    metrics.sync_failures.inc_by(report.failures.len() as u64);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use osam_policy::accounts::{Account, AccountCredentials, MarkerTemplate};
    use osam_policy::bucket_source::BucketConfigSource;
    use osam_policy::{RoleScopeTable, sync_plan::SyncUser};
    use osam_s3::{EmbeddedProvider, FileBucketConfig};

    use super::*;
    use crate::directory::static_file::StaticFileDirectory;

    /// Wraps the embedded provider: chosen calls fail (transiently or for good), and creates can
    /// be held at a gate to observe a run in progress.
    struct FaultyProvider {
        inner: EmbeddedProvider,
        /// Marker -> how many more creates fail as unavailable.
        transient_create_failures: Mutex<HashMap<String, u32>>,
        /// Markers whose create is always rejected.
        rejected_markers: Vec<String>,
        /// Markers whose first create hangs (longer than the call timeout) before doing anything.
        hanging_markers: Mutex<Vec<String>>,
        gate: Option<Arc<Semaphore>>,
    }

    impl AccountProvider for FaultyProvider {
        fn list_accounts(&self) -> osam_policy::accounts::ProviderFuture<'_, Vec<Account>> {
            self.inner.list_accounts()
        }

        fn create_account<'a>(
            &'a self,
            marker: &'a str,
        ) -> osam_policy::accounts::ProviderFuture<'a, (Account, AccountCredentials)> {
            Box::pin(async move {
                if let Some(gate) = &self.gate {
                    let _pass = gate
                        .acquire()
                        .await
                        .map_err(|error| ProviderError::Unavailable(error.to_string()))?;
                }
                let hangs = {
                    let mut hanging = self.hanging_markers.lock().expect("lock");
                    let position = hanging.iter().position(|hanging| hanging == marker);
                    position.map(|position| hanging.remove(position)).is_some()
                };
                if hangs {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                if self.rejected_markers.iter().any(|rejected| rejected == marker) {
                    return Err(ProviderError::Rejected("quota exceeded".into()));
                }
                {
                    let mut failures = self.transient_create_failures.lock().expect("lock");
                    if let Some(remaining) = failures.get_mut(marker).filter(|remaining| **remaining > 0) {
                        *remaining -= 1;
                        return Err(ProviderError::Unavailable("injected".into()));
                    }
                }
                self.inner.create_account(marker).await
            })
        }

        fn delete_account<'a>(
            &'a self,
            account_id: &'a str,
        ) -> osam_policy::accounts::ProviderFuture<'a, ()> {
            self.inner.delete_account(account_id)
        }

        fn credentials<'a>(
            &'a self,
            account_id: &'a str,
        ) -> osam_policy::accounts::ProviderFuture<'a, AccountCredentials> {
            self.inner.credentials(account_id)
        }

        fn apply_policy<'a>(
            &'a self,
            account_id: &'a str,
            policy_json: &'a str,
        ) -> osam_policy::accounts::ProviderFuture<'a, ()> {
            self.inner.apply_policy(account_id, policy_json)
        }

        fn remove_policy<'a>(&'a self, account_id: &'a str) -> osam_policy::accounts::ProviderFuture<'a, ()> {
            self.inner.remove_policy(account_id)
        }
    }

    const USERS: &str = "users:\n  alice:\n  bob:\n  carol:\n  dave:\n";

    struct Fixture {
        _state: tempfile::TempDir,
        directory: Arc<StaticFileDirectory>,
        provider: Arc<FaultyProvider>,
        worker: Arc<SyncWorker>,
    }

    fn fixture(provider: impl FnOnce(EmbeddedProvider) -> FaultyProvider) -> Fixture {
        fixture_with(provider, None, Leadership::Alone)
    }

    fn fixture_with_interval(
        provider: impl FnOnce(EmbeddedProvider) -> FaultyProvider,
        interval: Option<Duration>,
    ) -> Fixture {
        fixture_with(provider, interval, Leadership::Alone)
    }

    fn fixture_with(
        provider: impl FnOnce(EmbeddedProvider) -> FaultyProvider,
        interval: Option<Duration>,
        leadership: Leadership,
    ) -> Fixture {
        let state = tempfile::tempdir().expect("state");
        let users = state.path().join("users.yaml");
        std::fs::write(&users, USERS).expect("write");
        let attributes = state.path().join("attributes.json");
        let directory = Arc::new(
            StaticFileDirectory::load(Some(&users), RoleScopeTable::osam_defaults(), Some(&attributes))
                .expect("valid"),
        );
        let provider = Arc::new(provider(EmbeddedProvider::open(state.path()).expect("provider")));
        let bucket_config: Arc<dyn BucketConfigSource> =
            Arc::new(FileBucketConfig::fixed("test", "*,*,*,30,osam-test\n").expect("valid"));
        let storage = Arc::new(Storage {
            bucket_config,
            accounts: provider.clone(),
            marker_template: MarkerTemplate::parse("osam:%keycloak-user%").expect("valid"),
        });
        let settings = SyncSettings {
            link_attribute: "obs-user".into(),
            max_delete_share: DeleteShare::new(0.5).expect("valid"),
            concurrency: 2,
            call_timeout: Duration::from_millis(300),
            call_attempts: 3,
            apply_policies: true,
        };
        let worker = SyncWorker::start(directory.clone(), storage, settings, interval, leadership);
        Fixture {
            _state: state,
            directory,
            provider,
            worker,
        }
    }

    fn clean(inner: EmbeddedProvider) -> FaultyProvider {
        FaultyProvider {
            inner,
            transient_create_failures: Mutex::new(HashMap::new()),
            rejected_markers: vec![],
            hanging_markers: Mutex::new(vec![]),
            gate: None,
        }
    }

    async fn run(worker: &SyncWorker, force: bool) -> RunReport {
        let triggered = worker.trigger(force);
        worker.wait_for(triggered.run_id).await.expect("report")
    }

    /// The plan the state would give now: empty when the sync has converged.
    async fn remaining_plan(fixture: &Fixture) -> SyncPlan {
        let users = fixture.directory.list_users().await.expect("users");
        let entries: Vec<SyncUser> = users
            .iter()
            .map(|user| SyncUser {
                username: user.username.clone(),
                linked_account: user.attribute("obs-user").map(str::to_owned),
            })
            .collect();
        let accounts = fixture.provider.list_accounts().await.expect("accounts");
        SyncPlan::compute(
            &entries,
            &accounts,
            &MarkerTemplate::parse("osam:%keycloak-user%").expect("valid"),
        )
    }

    #[tokio::test]
    async fn a_clean_run_creates_links_applies_and_converges() {
        let fixture = fixture(clean);
        let report = run(&fixture.worker, false).await;
        assert_eq!(
            (report.state, report.created, report.failures.len()),
            (RunState::Finished, 4, 0),
            "{report:?}"
        );
        assert_eq!(report.policies_applied, 4);
        assert!(remaining_plan(&fixture).await.changes_nothing());
        let again = run(&fixture.worker, false).await;
        assert_eq!((again.created, again.kept), (0, 4));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_lasting_ones_reported_without_stopping_others() {
        let fixture = fixture(|inner| FaultyProvider {
            inner,
            transient_create_failures: Mutex::new(HashMap::from([("osam:bob".to_owned(), 2)])),
            rejected_markers: vec!["osam:carol".to_owned()],
            hanging_markers: Mutex::new(vec!["osam:dave".to_owned()]),
            gate: None,
        });
        let report = run(&fixture.worker, false).await;
        assert_eq!(
            report.created, 3,
            "bob succeeded on the third attempt: {report:?}"
        );
        let failures: Vec<(&str, &str)> = report
            .failures
            .iter()
            .map(|failure| (failure.subject.as_str(), failure.step))
            .collect();
        assert!(failures.contains(&("carol", "create")), "{failures:?}");
        assert!(
            report.failures.iter().all(|failure| failure.subject == "carol"),
            "nobody else failed: {failures:?}"
        );

        // Nobody is linked to a missing account, and only carol is left to create.
        let accounts = fixture.provider.list_accounts().await.expect("accounts");
        for user in fixture.directory.list_users().await.expect("users") {
            if let Some(linked) = user.attribute("obs-user") {
                assert!(
                    accounts.iter().any(|account| account.id == linked),
                    "{} linked to a missing account",
                    user.username
                );
            }
        }
        assert_eq!(remaining_plan(&fixture).await.create(), ["carol".to_owned()]);

        // A second run, with the faults gone, converges to the state of a clean run.
        let healed = run(&fixture.worker, false).await;
        assert_eq!((healed.created, healed.kept), (0, 3));
        assert_eq!(
            healed.failures.len(),
            1,
            "carol is still rejected and nothing else: {healed:?}"
        );
        let accounts = fixture.provider.list_accounts().await.expect("accounts");
        assert_eq!(
            accounts.len(),
            3,
            "one account per created user, no duplicate from the timed-out attempt"
        );
    }

    #[tokio::test]
    async fn an_interval_runs_syncs_without_any_trigger_and_none_runs_at_start_by_default() {
        let idle = fixture(clean);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            idle.worker.status().1.is_none(),
            "no interval, no trigger: no run"
        );

        let periodic = fixture_with_interval(clean, Some(Duration::from_millis(100)));
        let mut last = None;
        for _ in 0..100 {
            last = periodic.worker.status().1;
            if last.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last = last.expect("a run started by the interval");
        assert_eq!(last.created, 4);
        assert!(remaining_plan(&periodic).await.changes_nothing());
    }

    #[tokio::test]
    async fn triggers_during_a_run_coalesce_into_one_more_run() {
        let gate = Arc::new(Semaphore::new(0));
        let held = gate.clone();
        let fixture = fixture(move |inner| FaultyProvider {
            inner,
            transient_create_failures: Mutex::new(HashMap::new()),
            rejected_markers: vec![],
            hanging_markers: Mutex::new(vec![]),
            gate: Some(held),
        });
        let first = fixture.worker.trigger(false);
        // Wait until the first run is in progress (held at the gate).
        for _ in 0..100 {
            if fixture.worker.status().0.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(fixture.worker.status().0.is_some(), "the first run is running");
        let second = fixture.worker.trigger(false);
        let third = fixture.worker.trigger(true);
        assert!(!second.coalesced && third.coalesced);
        assert_eq!(second.run_id, third.run_id);
        assert_ne!(first.run_id, second.run_id);

        gate.add_permits(1000);
        let first_report = fixture.worker.wait_for(first.run_id).await.expect("first");
        let second_report = fixture.worker.wait_for(second.run_id).await.expect("second");
        assert_eq!(first_report.created, 4);
        assert_eq!(
            (second_report.created, second_report.kept),
            (0, 4),
            "the coalesced run found nothing left to do"
        );
    }

    /// Polls `condition` every 20 ms for at most 10 s.
    async fn until(mut condition: impl FnMut() -> bool) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if condition() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn only_the_leader_runs_and_a_lost_lease_stops_the_run_in_progress() {
        let gate = Arc::new(Semaphore::new(0));
        let held = gate.clone();
        let (is_leader, leadership) = watch::channel(false);
        let fixture = fixture_with(
            |inner| FaultyProvider {
                gate: Some(held),
                ..clean(inner)
            },
            None,
            Leadership::Elected(leadership),
        );
        let worker = &fixture.worker;
        assert!(!worker.is_leader());
        let first = worker.trigger(false);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            matches!(worker.status(), (None, None)),
            "a replica without the lease runs nothing"
        );

        is_leader.send_replace(true);
        assert!(worker.is_leader());
        assert!(
            until(|| worker.status().0.is_some()).await,
            "the leader starts the waiting run"
        );
        is_leader.send_replace(false);
        let stopped = worker.wait_for(first.run_id).await.expect("report");
        assert_eq!(stopped.state, RunState::Failed, "{stopped:?}");
        assert!(
            stopped
                .refusal
                .as_deref()
                .is_some_and(|why| why.contains("lost the sync lease"))
        );

        // Leading again runs a full sync by itself, and it converges.
        gate.add_permits(1000);
        is_leader.send_replace(true);
        let second = worker.wait_for(first.run_id + 1).await.expect("report");
        assert_eq!(
            (second.state, second.created),
            (RunState::Finished, 4),
            "{second:?}"
        );
        assert!(remaining_plan(&fixture).await.changes_nothing());
    }

    /// Two replicas share the directory and the provider and campaign for one Lease: exactly one
    /// syncs; when it shuts down (releasing the Lease), the other takes over and syncs.
    #[tokio::test]
    async fn two_replicas_sync_one_at_a_time_through_the_lease() {
        let first = fixture(clean);
        let store = osam_lease::InMemoryLeaseStore::new();
        let timings = osam_lease::ElectionTimings {
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(200),
        };
        let replica = |name: &str| {
            let (is_leader, leadership) = watch::channel(false);
            let worker = SyncWorker::start(
                first.directory.clone(),
                first.worker.storage.clone(),
                first.worker.settings.clone(),
                None,
                Leadership::Elected(leadership),
            );
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let elector = osam_lease::LeaderElector::new(name, timings).expect("timings");
            tokio::spawn(osam_lease::run_elected(
                store.clone(),
                elector,
                is_leader,
                async move {
                    let _ = stopped.await;
                },
                std::future::pending::<()>,
            ));
            (worker, stop)
        };
        let (a, stop_a) = replica("replica-a");
        let (b, stop_b) = replica("replica-b");
        assert!(until(|| a.is_leader() || b.is_leader()).await, "someone leads");
        assert!(!(a.is_leader() && b.is_leader()), "never two leaders");
        let (leader, follower, stop_leader) = if a.is_leader() {
            (a, b, stop_a)
        } else {
            (b, a, stop_b)
        };

        let led = leader.wait_for(1).await.expect("the new leader's own full sync");
        assert_eq!((led.state, led.created), (RunState::Finished, 4), "{led:?}");
        assert!(
            matches!(follower.status(), (None, None)),
            "the follower ran nothing"
        );

        let _ = stop_leader.send(());
        assert!(
            until(|| follower.is_leader()).await,
            "the follower takes over after the release"
        );
        assert!(!leader.is_leader());
        let taken_over = follower.wait_for(1).await.expect("the new leader's full sync");
        assert_eq!(
            (taken_over.state, taken_over.created, taken_over.kept),
            (RunState::Finished, 0, 4)
        );
    }

    /// Lists every user but one, as a listing that pages by offset can while the realm changes;
    /// finds everyone.
    struct ListingMisses {
        inner: Arc<StaticFileDirectory>,
        missed: &'static str,
    }

    impl Directory for ListingMisses {
        fn find_user<'a>(
            &'a self,
            username: &'a str,
        ) -> osam_policy::DirectoryFuture<'a, Option<DirectoryUser>> {
            self.inner.find_user(username)
        }

        fn list_users(&self) -> osam_policy::DirectoryFuture<'_, Vec<DirectoryUser>> {
            Box::pin(async move {
                let users = self.inner.list_users().await?;
                Ok(users
                    .into_iter()
                    .filter(|user| user.username != self.missed)
                    .collect())
            })
        }

        fn set_attribute<'a>(
            &'a self,
            username: &'a str,
            name: &'a str,
            values: Vec<String>,
        ) -> osam_policy::DirectoryFuture<'a, ()> {
            self.inner.set_attribute(username, name, values)
        }
    }

    #[tokio::test]
    async fn a_user_the_listing_missed_keeps_their_account() {
        let fixture = fixture(clean);
        assert_eq!(run(&fixture.worker, false).await.created, 4);
        let missing = SyncWorker::start(
            Arc::new(ListingMisses {
                inner: fixture.directory.clone(),
                missed: "bob",
            }),
            fixture.worker.storage.clone(),
            fixture.worker.settings.clone(),
            None,
            Leadership::Alone,
        );
        let report = run(&missing, true).await;
        assert_eq!(report.deleted, 0, "{report:?}");
        assert_eq!(report.failures.len(), 1, "{report:?}");
        assert!(
            report.failures[0].message.contains("listing missed user \"bob\""),
            "{report:?}"
        );
        assert!(
            fixture
                .provider
                .account_with_marker("osam:bob")
                .await
                .expect("provider")
                .is_some(),
            "bob's account survives"
        );
        assert!(remaining_plan(&fixture).await.changes_nothing());
    }
}

//! The state every reloading source shares: the last valid configuration and the version (file
//! stamp or ETag) it was read at. A broken new version is reported once and otherwise ignored.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use osam_policy::bucket_config::BucketConfig;

/// What a reload check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The same version as before.
    Unchanged,
    /// A new valid version is now served.
    Reloaded,
    /// The new version is broken or unreadable; the previous one (if any) is still served.
    KeptPrevious(String),
}

#[derive(Default)]
struct State<V> {
    config: Option<Arc<BucketConfig>>,
    version: Option<V>,
    last_complaint: Option<String>,
}

pub(crate) struct LastGood<V> {
    origin: String,
    state: RwLock<State<V>>,
}

impl<V: PartialEq + Clone> LastGood<V> {
    pub(crate) fn new(origin: String) -> LastGood<V> {
        LastGood {
            origin,
            state: RwLock::new(State {
                config: None,
                version: None,
                last_complaint: None,
            }),
        }
    }

    pub(crate) fn current(&self) -> Option<Arc<BucketConfig>> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .config
            .clone()
    }

    pub(crate) fn version(&self) -> Option<V> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .version
            .clone()
    }

    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Parses `text` read at `version` and serves it when valid.
    pub(crate) fn offer(&self, version: V, text: &str) -> ReloadOutcome {
        match BucketConfig::parse(text) {
            Ok(config) => {
                let mut state = self
                    .state
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                state.config = Some(Arc::new(config));
                state.version = Some(version);
                state.last_complaint = None;
                tracing::info!(origin = %self.origin, "bucket configuration loaded");
                ReloadOutcome::Reloaded
            }
            Err(error) => {
                // Remember the broken version so it is not parsed (and reported) again and again.
                self.state
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .version = Some(version);
                self.complain(error.to_string())
            }
        }
    }

    /// Reports a failure once per distinct reason, and keeps serving the previous version.
    pub(crate) fn complain(&self, reason: String) -> ReloadOutcome {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.last_complaint.as_deref() != Some(reason.as_str()) {
            tracing::warn!(origin = %self.origin, %reason, serving_previous = state.config.is_some(),
                "bucket configuration not reloaded; keeping the last valid version");
            state.last_complaint = Some(reason.clone());
        }
        ReloadOutcome::KeptPrevious(reason)
    }
}

/// Runs `check` on `source` every `interval` for as long as the source is alive (the poller holds
/// only a weak reference, so dropping the source stops it). The first check is the opener's.
pub(crate) fn spawn_poller<Source, Check, Checked>(source: &Arc<Source>, interval: Duration, check: Check)
where
    Source: Send + Sync + 'static,
    Check: Fn(Arc<Source>) -> Checked + Send + 'static,
    Checked: Future<Output = ()> + Send,
{
    let source = Arc::downgrade(source);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(source) = source.upgrade() else { break };
            check(source).await;
        }
    });
}

//! The audit log: one structured event per catalog decision and per state change (account
//! created or deleted, policy applied, sync started or finished), on the tracing target
//! `osam::audit` so that a log pipeline can route it apart from operational logs.
//!
//! Every event names the method, the caller, the actor when an app acts for the caller, the
//! subject and the outcome, plus the request id when there is a request. Denied decisions are
//! always recorded; allowed ones can be sampled (`audit.allowed_decisions_sample_rate`) because the
//! hot path makes many. Nothing secret is ever a field: no token, no secret key.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::auth::Caller;
use crate::edge::{MethodPath, RequestId};

/// The tracing target of audit events.
pub const TARGET: &str = "osam::audit";

/// Who made a call and which call, as the audit log records it.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub method: &'a str,
    pub request_id: Option<&'a RequestId>,
    pub caller: &'a Caller,
}

impl<'a> CallContext<'a> {
    /// The call whose extensions (filled by the edge layer) these are, made by `caller`.
    pub fn of(extensions: &'a tonic::Extensions, caller: &'a Caller) -> CallContext<'a> {
        CallContext {
            method: extensions
                .get::<MethodPath>()
                .map_or("", |method| method.0.as_str()),
            request_id: extensions.get::<RequestId>(),
            caller,
        }
    }

    fn request_id(&self) -> &str {
        self.request_id.map_or("", |id| id.0.as_str())
    }

    /// The user the call acts as, and the app acting for them (empty when none).
    fn who(&self) -> (&str, &str) {
        let principal = &self.caller.principal;
        (principal.username(), principal.actor().unwrap_or_default())
    }
}

/// One catalog decision.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRecord<'a> {
    pub subject: &'a str,
    pub owner: &'a str,
    pub collections: &'a [String],
    pub action: &'a str,
    pub allowed: bool,
    /// `collection=REASON` pairs when the decision was explained, empty otherwise.
    pub reasons: &'a str,
}

pub struct Audit {
    /// The share of allowed decisions recorded, 0.0..=1.0.
    sample_rate: f64,
    allowed_seen: AtomicU64,
}

impl Audit {
    /// `sample_rate` in 0.0..=1.0: the share of allowed decisions recorded.
    pub fn new(sample_rate: f64) -> Audit {
        Audit {
            sample_rate: sample_rate.clamp(0.0, 1.0),
            allowed_seen: AtomicU64::new(0),
        }
    }

    /// Whether an allowed decision is recorded: deterministic and spread evenly, the n-th being
    /// recorded when it brings the recorded count `floor(n × rate)` up by one.
    fn sample_allowed(&self) -> bool {
        if self.sample_rate >= 1.0 {
            return true;
        }
        if self.sample_rate <= 0.0 {
            return false;
        }
        let seen = self.allowed_seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((seen + 1.0) * self.sample_rate).floor() > (seen * self.sample_rate).floor()
    }

    pub fn decision(&self, call: &CallContext<'_>, decision: &DecisionRecord<'_>) {
        if decision.allowed && !self.sample_allowed() {
            return;
        }
        let (caller, actor) = call.who();
        tracing::info!(
            target: TARGET,
            event = "decision",
            request_id = call.request_id(),
            method = call.method,
            caller,
            actor,
            subject = decision.subject,
            owner = decision.owner,
            collections = %decision.collections.join(","),
            action = decision.action,
            outcome = if decision.allowed { "allowed" } else { "denied" },
            reasons = decision.reasons,
            "audit"
        );
    }
}

/// A change of stored state made for a call (`call`) or by the server itself (a sync run: `None`,
/// recorded with the caller `osam`). State changes are never sampled.
pub fn state_change(
    call: Option<&CallContext<'_>>,
    change: &str,
    subject: &str,
    outcome: &str,
    detail: &str,
) {
    let (method, request_id, caller, actor) = match call {
        Some(call) => {
            let (caller, actor) = call.who();
            (call.method, call.request_id(), caller, actor)
        }
        None => ("", "", "osam", ""),
    };
    tracing::info!(
        target: TARGET,
        event = change,
        request_id,
        method,
        caller,
        actor,
        subject,
        outcome,
        detail,
        "audit"
    );
}

/// A user's policy written (or removed, when their rights grant nothing) on their account.
pub fn policy_change(
    call: Option<&CallContext<'_>>,
    username: &str,
    account_id: &str,
    removed: bool,
    succeeded: bool,
) {
    let change = if removed {
        "policy_removed"
    } else {
        "policy_applied"
    };
    let outcome = if succeeded { "ok" } else { "failed" };
    state_change(call, change, username, outcome, account_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_decisions_are_sampled_deterministically() {
        let count = |audit: &Audit| (0..1000).filter(|_| audit.sample_allowed()).count();
        assert_eq!(count(&Audit::new(1.0)), 1000);
        assert_eq!(count(&Audit::new(0.0)), 0);
        assert_eq!(count(&Audit::new(0.1)), 100);
        assert_eq!(count(&Audit::new(0.25)), 250);
        assert_eq!(count(&Audit::new(0.75)), 750);
        assert_eq!(count(&Audit::new(0.4)), 400);
    }
}

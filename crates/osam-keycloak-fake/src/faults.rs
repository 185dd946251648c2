//! Fault injection: latency, error statuses, rate limiting and dropped connections, applied to
//! every request before it reaches a handler.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The faults the next requests will suffer. Shared by every endpoint of one [`crate::FakeKeycloak`].
#[derive(Debug, Default)]
pub struct Faults {
    plan: Mutex<FaultPlan>,
}

#[derive(Debug, Default)]
struct FaultPlan {
    latency: Duration,
    drops_remaining: usize,
    failures_remaining: usize,
    failure_status: u16,
    rate_limits_remaining: usize,
    retry_after_seconds: u64,
}

/// What the server does with one request instead of (or before) answering it normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InjectedFault {
    None,
    DropConnection,
    FailWithStatus(u16),
    RateLimit { retry_after_seconds: u64 },
}

impl Faults {
    /// Adds `latency` before every response (and before every dropped connection).
    pub fn set_latency(&self, latency: Duration) {
        self.plan().latency = latency;
    }

    /// The next `count` requests, on any endpoint, answer `status` with a Keycloak-style JSON
    /// error body. A status outside 100..=999 is answered as 500.
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut plan = self.plan();
        plan.failures_remaining = count;
        plan.failure_status = status;
    }

    /// The next `count` requests answer 429 with `Retry-After: retry_after_seconds`.
    pub fn rate_limit_next(&self, count: usize, retry_after_seconds: u64) {
        let mut plan = self.plan();
        plan.rate_limits_remaining = count;
        plan.retry_after_seconds = retry_after_seconds;
    }

    /// The next `count` requests have their connection closed without any HTTP response.
    pub fn drop_next(&self, count: usize) {
        self.plan().drops_remaining = count;
    }

    /// Takes the fault for one request. Drops win over failures, failures over rate limits;
    /// only the fault applied is consumed.
    pub(crate) fn take_next(&self) -> (Duration, InjectedFault) {
        let mut plan = self.plan();
        let fault = if plan.drops_remaining > 0 {
            plan.drops_remaining -= 1;
            InjectedFault::DropConnection
        } else if plan.failures_remaining > 0 {
            plan.failures_remaining -= 1;
            InjectedFault::FailWithStatus(plan.failure_status)
        } else if plan.rate_limits_remaining > 0 {
            plan.rate_limits_remaining -= 1;
            InjectedFault::RateLimit {
                retry_after_seconds: plan.retry_after_seconds,
            }
        } else {
            InjectedFault::None
        };
        (plan.latency, fault)
    }

    fn plan(&self) -> MutexGuard<'_, FaultPlan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_one_request_at_a_time_in_priority_order() {
        let faults = Faults::default();
        faults.rate_limit_next(1, 7);
        faults.fail_next(1, 503);
        faults.drop_next(1);
        let taken: Vec<InjectedFault> = (0..4).map(|_| faults.take_next().1).collect();
        assert_eq!(
            taken,
            vec![
                InjectedFault::DropConnection,
                InjectedFault::FailWithStatus(503),
                InjectedFault::RateLimit {
                    retry_after_seconds: 7
                },
                InjectedFault::None,
            ]
        );
    }
}

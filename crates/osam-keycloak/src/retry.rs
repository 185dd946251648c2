//! When a failed call is tried again and how long to wait first: exponential backoff with jitter,
//! or the server's own `Retry-After` when it gives one (capped, so a confused server cannot park a
//! sync for an hour).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// The longest `Retry-After` osam honours.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The longest backoff step, however many retries came before.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The rule: 429 and the 5xx statuses that describe a passing condition are worth another try;
/// every other status is the answer.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 429 || matches!(status, 500 | 502 | 503 | 504)
}

/// A `Retry-After` value in seconds, capped at [`MAX_RETRY_AFTER`]. The HTTP-date form is not
/// understood (Keycloak and the proxies in front of it send seconds); it falls back to backoff.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The wait before retry number `retry` (1 for the first retry): the step `base * 2^(retry-1)`,
/// capped at [`MAX_BACKOFF`], then "equal jitter", uniformly within `[step/2, step]`, so that
/// clients that failed together do not retry together. `random` is any random number.
pub(crate) fn backoff_delay(base: Duration, retry: u32, random: u64) -> Duration {
    let doublings = retry.saturating_sub(1).min(20);
    let step = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    let half_nanos = (step.as_nanos() / 2) as u64;
    let jitter_nanos = if half_nanos == 0 {
        0
    } else {
        random % (half_nanos + 1)
    };
    Duration::from_nanos(half_nanos + jitter_nanos)
}

/// The wait before retry number `retry`: the server's `Retry-After` when it gave one, else backoff.
pub(crate) fn retry_delay(base: Duration, retry: u32, retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or_else(|| backoff_delay(base, retry, random_number()))
}

/// A random number good enough for jitter, without a random-number crate: every `RandomState` is
/// seeded afresh.
fn random_number() -> u64 {
    RandomState::new().hash_one(0u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("3600"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_is_capped() {
        let base = Duration::from_millis(100);
        for random in [0, 1, 7, u64::MAX / 3, u64::MAX] {
            for retry in 1..=8 {
                let step = (base * 2u32.pow(retry - 1)).min(MAX_BACKOFF);
                let delay = backoff_delay(base, retry, random);
                assert!(delay >= step / 2, "retry {retry}: {delay:?} < half of {step:?}");
                assert!(delay <= step, "retry {retry}: {delay:?} > {step:?}");
            }
            assert!(backoff_delay(base, u32::MAX, random) <= MAX_BACKOFF);
        }
        assert_eq!(backoff_delay(base, 1, 0), Duration::from_millis(50));
        assert_eq!(backoff_delay(Duration::ZERO, 3, 42), Duration::ZERO);
    }

    #[test]
    fn the_server_s_retry_after_wins_over_backoff() {
        let base = Duration::from_millis(100);
        assert_eq!(
            retry_delay(base, 1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert!(retry_delay(base, 1, None) <= base);
    }

    #[test]
    fn only_passing_conditions_are_transient() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 501, 505] {
            assert!(!is_transient_status(status), "{status}");
        }
    }
}

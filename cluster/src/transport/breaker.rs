//! The per-peer circuit breaker and the retry backoff: pure state machines
//! that take the current time as an argument, so they are tested without a
//! network or a clock.

use std::time::{Duration, Instant};

use rand::Rng;

/// When a peer's breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed calls that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before it lets one probe through.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            cool_down: Duration::from_secs(1),
        }
    }
}

/// Retries of idempotent calls (Ping, opening PullSlot, and Forward when the
/// caller says the command may run twice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls sent at most, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles for each further retry.
    pub base_backoff: Duration,
    /// Cap of the doubling backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first retry):
    /// `d = min(max_backoff, base_backoff * 2^(retry-1))`, then a uniformly
    /// random point in `[d/2, d]` ("equal jitter"), so that callers that
    /// failed together do not retry together, yet each waits at least `d/2`.
    #[must_use]
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        let full = self
            .base_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_ns = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=jitter_ns))
    }
}

/// The state of a peer's circuit breaker, as reported in [`PeerStats`](super::PeerStats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused without being sent until the cool-down has passed.
    Open,
    /// The cool-down has passed and one probe call is in flight; other calls
    /// are refused until it succeeds (closed) or fails (open again).
    HalfOpen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen,
}

/// What the breaker says about a call about to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Send it. `probe`: it is the half-open probe whose outcome decides.
    Go { probe: bool },
    /// Do not send it; a probe is possible in `retry_in`.
    Refuse { retry_in: Duration },
}

/// A circuit breaker: closed until `failure_threshold` consecutive failures,
/// then open for `cool_down`, then half-open with a single probe.
///
/// Outcome rules: any success closes the breaker (the peer answered). A
/// failure counts while closed; while half-open only the probe's failure
/// counts (it reopens the breaker); while open, late failures of calls sent
/// before it opened are ignored (they would only extend the cool-down).
#[derive(Debug)]
pub(crate) struct Breaker {
    state: State,
    consecutive_failures: u32,
}

impl Breaker {
    pub(crate) fn new() -> Self {
        Breaker {
            state: State::Closed,
            consecutive_failures: 0,
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            // Past the cool-down the next call is a probe; until a call comes
            // the breaker is still open.
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        match self.state {
            State::Closed => Admit::Go { probe: false },
            State::Open { until } if now < until => Admit::Refuse {
                retry_in: until - now,
            },
            State::Open { .. } => {
                self.state = State::HalfOpen;
                Admit::Go { probe: true }
            }
            State::HalfOpen => Admit::Refuse {
                retry_in: Duration::ZERO,
            },
        }
    }

    /// Records a successful call. Returns whether the breaker was not closed.
    pub(crate) fn success(&mut self) -> bool {
        let was_closed = self.state == State::Closed;
        self.state = State::Closed;
        self.consecutive_failures = 0;
        !was_closed
    }

    /// Records a failed call. Returns whether this failure opened the breaker.
    pub(crate) fn failure(&mut self, now: Instant, probe: bool, policy: &BreakerPolicy) -> bool {
        match self.state {
            State::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= policy.failure_threshold.max(1) {
                    self.state = State::Open {
                        until: now + policy.cool_down,
                    };
                    true
                } else {
                    false
                }
            }
            State::HalfOpen if probe => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.state = State::Open {
                    until: now + policy.cool_down,
                };
                true
            }
            State::HalfOpen | State::Open { .. } => false,
        }
    }

    /// The probe ended without an outcome (its caller gave up): let the
    /// next call probe at once instead of staying half-open forever.
    pub(crate) fn probe_abandoned(&mut self, now: Instant) {
        if self.state == State::HalfOpen {
            self.state = State::Open { until: now };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy {
        failure_threshold: 3,
        cool_down: Duration::from_secs(1),
    };

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        assert!(!b.failure(t0, false, &POLICY));
        assert!(!b.failure(t0, false, &POLICY));
        // A success resets the count.
        assert!(!b.success());
        assert_eq!(b.consecutive_failures(), 0);
        assert!(!b.failure(t0, false, &POLICY));
        assert!(!b.failure(t0, false, &POLICY));
        assert_eq!(b.admit(t0), Admit::Go { probe: false });
        assert!(b.failure(t0, false, &POLICY), "third consecutive failure");
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.admit(t0 + Duration::from_millis(400)),
            Admit::Refuse {
                retry_in: Duration::from_millis(600)
            }
        );
        // Late failures of calls sent before it opened do not extend it.
        assert!(!b.failure(t0 + Duration::from_millis(900), false, &POLICY));
        assert_eq!(
            b.admit(t0 + Duration::from_millis(999)),
            Admit::Refuse {
                retry_in: Duration::from_millis(1)
            }
        );
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_outcome_decides() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        for _ in 0..3 {
            b.failure(t0, false, &POLICY);
        }
        let t1 = t0 + POLICY.cool_down;
        assert_eq!(b.admit(t1), Admit::Go { probe: true });
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Only one probe at a time.
        assert_eq!(
            b.admit(t1),
            Admit::Refuse {
                retry_in: Duration::ZERO
            }
        );
        // A non-probe failure (a call sent long ago) does not decide.
        assert!(!b.failure(t1, false, &POLICY));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // The probe fails: open for another cool-down.
        assert!(b.failure(t1, true, &POLICY));
        assert_eq!(
            b.admit(t1 + Duration::from_millis(10)),
            Admit::Refuse {
                retry_in: Duration::from_millis(990)
            }
        );
        // Next probe succeeds: closed.
        let t2 = t1 + POLICY.cool_down;
        assert_eq!(b.admit(t2), Admit::Go { probe: true });
        assert!(b.success(), "was half-open");
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
        assert_eq!(b.admit(t2), Admit::Go { probe: false });
    }

    #[test]
    fn an_abandoned_probe_allows_the_next_one_at_once() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        for _ in 0..3 {
            b.failure(t0, false, &POLICY);
        }
        let t1 = t0 + POLICY.cool_down;
        assert_eq!(b.admit(t1), Admit::Go { probe: true });
        b.probe_abandoned(t1);
        assert_eq!(b.admit(t1), Admit::Go { probe: true });
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = policy.backoff(2);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let capped = policy.backoff(40);
            assert!(capped >= Duration::from_millis(250) && capped <= Duration::from_millis(500));
        }
        // Jitter: not every draw is the same.
        let draws: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.backoff(3)).collect();
        assert!(draws.len() > 1);
    }
}

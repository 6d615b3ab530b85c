//! Throttling of sign-in and enrollment attempts (NIST SP 800-63B-4 §3.2.2, ASVS 6.1.1,
//! RFC 4226 §7.3 for the back-off shape).
//!
//! - Per IP address: a token bucket (governor) on every attempt.
//! - Per account: consecutive failures, counted apart for the account's known browsers and for
//!   everything else; after [`FREE_FAILURES`] a growing delay, and after [`LOCK_AFTER`] the
//!   account locks for that kind of browser only. An attacker elsewhere can lock the account for
//!   unknown browsers, but never for the owner's own.
//! - Usernames that match no account are throttled the same way in memory (keyed by a hash), so
//!   the responses do not tell which usernames exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::model::Failures;
use crate::clock::Millis;

/// Failures allowed before any delay.
pub const FREE_FAILURES: u32 = 5;
/// Longest delay between attempts once back-off applies, ms.
pub const MAX_DELAY_MS: Millis = 15 * 60 * 1000;
/// Consecutive failures at which an account locks for that kind of browser (NIST: at most 100).
pub const LOCK_AFTER: u32 = 100;
/// Sign-in and enrollment attempts per minute from one IP address, sustained.
pub const PER_IP_PER_MINUTE: u32 = 30;
/// ... and in a burst.
pub const PER_IP_BURST: u32 = 10;
/// Unmatched usernames remembered (a memory bound); when full, entries that are neither locked
/// nor in back-off are forgotten first.
pub const MAX_UNMATCHED: usize = 100_000;
/// Codes for new browsers one account may be sent in a burst ...
pub const DEVICE_CODES_BURST: u32 = 20;
/// ... and then one per this many minutes (twenty an hour).
pub const DEVICE_CODE_EVERY_MINUTES: u64 = 3;

/// Support code redemptions one staff member may try in a burst ...
pub const SUPPORT_REDEEM_BURST: u32 = 5;
/// ... and then one per this many seconds.
pub const SUPPORT_REDEEM_EVERY_SECS: u64 = 60;

/// The per-IP table forgets idle addresses every this many attempts.
const RETAIN_EVERY: u64 = 1000;

/// The decision before checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Open,
    /// Wait this many milliseconds.
    Wait(Millis),
    /// Locked for this kind of browser.
    Locked,
}

/// The delay after `n` consecutive failures: none for the first few, then doubling from one
/// second up to [`MAX_DELAY_MS`].
pub fn delay_after(n: u32) -> Millis {
    if n < FREE_FAILURES {
        return 0;
    }
    let exp = (n - FREE_FAILURES).min(20);
    (1000u64 << exp).min(MAX_DELAY_MS)
}

/// The gate for an account in this state, for a known browser or not.
pub fn gate(f: &Failures, known_browser: bool, now: Millis) -> Gate {
    let (n, last) = if known_browser { (f.known, f.known_last_ms) } else { (f.unknown, f.unknown_last_ms) };
    if n >= LOCK_AFTER {
        return Gate::Locked;
    }
    let until = last.saturating_add(delay_after(n));
    if now < until { Gate::Wait(until - now) } else { Gate::Open }
}

/// Records a failure.
pub fn fail(f: &mut Failures, known_browser: bool, now: Millis) {
    let (n, last) =
        if known_browser { (&mut f.known, &mut f.known_last_ms) } else { (&mut f.unknown, &mut f.unknown_last_ms) };
    *n = n.saturating_add(1);
    *last = now;
}

/// The in-memory throttles.
#[derive(Debug)]
pub struct Throttle {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    device_codes: DefaultKeyedRateLimiter<[u8; 16]>,
    support_redeem: DefaultKeyedRateLimiter<[u8; 16]>,
    attempts: std::sync::atomic::AtomicU64,
    unmatched: Mutex<HashMap<[u8; 32], Failures>>,
}

impl Default for Throttle {
    fn default() -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(PER_IP_PER_MINUTE).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(PER_IP_BURST).unwrap_or(NonZeroU32::MIN));
        let codes = Quota::with_period(std::time::Duration::from_secs(DEVICE_CODE_EVERY_MINUTES * 60))
            .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(DEVICE_CODES_BURST).unwrap_or(NonZeroU32::MIN));
        let redeem = Quota::with_period(std::time::Duration::from_secs(SUPPORT_REDEEM_EVERY_SECS))
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(SUPPORT_REDEEM_BURST).unwrap_or(NonZeroU32::MIN));
        Throttle {
            per_ip: RateLimiter::keyed(quota),
            device_codes: RateLimiter::keyed(codes),
            support_redeem: RateLimiter::keyed(redeem),
            attempts: Default::default(),
            unmatched: Mutex::new(HashMap::new()),
        }
    }
}

impl Throttle {
    /// Takes one attempt from `ip`'s bucket; `Err(ms)` says how long to wait. IPv6 addresses
    /// share a bucket per /64 (one customer's network), or an attacker would use a new address
    /// for every guess.
    pub fn ip(&self, ip: IpAddr) -> Result<(), Millis> {
        use governor::clock::{Clock, DefaultClock};
        let key = match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let n = self.attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.per_ip.retain_recent();
        }
        self.per_ip.check_key(&key).map_err(|nu| {
            u64::try_from(nu.wait_time_from(DefaultClock::default().now()).as_millis()).unwrap_or(MAX_DELAY_MS).max(1)
        })
    }

    /// Takes one code from `user`'s bucket of codes for new browsers; `Err(ms)` says how long
    /// to wait.
    pub fn device_codes(&self, user: super::model::Id) -> Result<(), Millis> {
        Self::take(&self.device_codes, &user.0)
    }

    /// Takes one redemption from a support staff member's bucket; `Err(ms)` says how long to
    /// wait. (Codes have 100 random bits; this keeps guessing pointless and visible.)
    pub fn support_redeem(&self, staff: super::model::Id) -> Result<(), Millis> {
        Self::take(&self.support_redeem, &staff.0)
    }

    fn take(limiter: &DefaultKeyedRateLimiter<[u8; 16]>, key: &[u8; 16]) -> Result<(), Millis> {
        use governor::clock::{Clock, DefaultClock};
        limiter.check_key(key).map_err(|nu| {
            u64::try_from(nu.wait_time_from(DefaultClock::default().now()).as_millis()).unwrap_or(MAX_DELAY_MS).max(1)
        })
    }

    /// For a username that matches no account: the gate, and when it is open, a failure counted
    /// at once (the attempt will fail), exactly as for an account.
    pub fn attempt_unmatched(&self, key: [u8; 32], now: Millis) -> Gate {
        let Ok(mut m) = self.unmatched.lock() else { return Gate::Wait(MAX_DELAY_MS) };
        if m.len() >= MAX_UNMATCHED {
            // Forget names whose state no longer differs from a fresh one's (no lock, back-off
            // over), so forgetting cannot tell an unmatched name from an account.
            m.retain(|_, f| f.unknown >= LOCK_AFTER || gate(f, false, now) != Gate::Open);
        }
        if m.len() >= MAX_UNMATCHED {
            return Gate::Wait(MAX_DELAY_MS);
        }
        let f = m.entry(key).or_default();
        let g = gate(f, false, now);
        if g == Gate::Open {
            fail(f, false, now);
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_then_locks_only_that_kind_of_browser() {
        let mut f = Failures::default();
        for i in 0..FREE_FAILURES {
            assert_eq!(gate(&f, false, 1000), Gate::Open, "failure {i}");
            fail(&mut f, false, 1000);
        }
        assert_eq!(gate(&f, false, 1000), Gate::Wait(1000));
        assert_eq!(gate(&f, false, 2000), Gate::Open);
        fail(&mut f, false, 2000);
        assert_eq!(gate(&f, false, 2000), Gate::Wait(2000));
        while f.unknown < LOCK_AFTER {
            fail(&mut f, false, 3000);
        }
        assert_eq!(gate(&f, false, u64::MAX), Gate::Locked);
        // The owner's known browser is neither locked nor delayed by the attacker's failures.
        assert_eq!(gate(&f, true, 3000), Gate::Open);
        assert_eq!(delay_after(99), MAX_DELAY_MS);
        // ... and the owner's own failures keep their own clock.
        fail(&mut f, true, 3000);
        fail(&mut f, false, 9_000_000);
        assert_eq!(gate(&f, true, 3001), Gate::Open);
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let t = Throttle::default();
        let mut refused = 0;
        for i in 0..(PER_IP_BURST + 5) {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap_or(IpAddr::from([0; 16]));
            refused += u32::from(t.ip(ip).is_err());
        }
        assert_eq!(refused, 5);
        assert!(t.ip("2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 16]))).is_ok(), "another /64");
    }
}

//! Bounded, adaptive spinning before a thread blocks for a wake-up from another thread.
//!
//! Blocking costs both sides a trip through the kernel: the sleeper's `epoll_wait` (or futex
//! wait) and context switch, the waker's `eventfd` write (or futex wake), and the time the
//! scheduler takes to run the sleeper again. When the wake-up comes within a few microseconds
//! (a ping-pong between two hubs, a joiner waiting for a short greenlet), spinning on the
//! wake-up flag costs less CPU than that round trip and answers much sooner: the waker then
//! sees the waiter awake and makes no system call at all.
//!
//! Spinning blindly would waste CPU on a thread whose wake-ups come rarely, so a [`Spinner`]
//! spins only while its recent waits say that it pays:
//! - it spins only if its last wait ended with a wake-up from another thread within
//!   [`WARM_WITHIN`] of going idle (traffic between threads is going on);
//! - it spins at most [`SPIN_FOR`]; a spin that runs out makes it skip its next 1, 3, 7, ... 63
//!   waits (doubling with each consecutive failure), and a spin that succeeds resets that. A
//!   thread whose wake-ups come a little too late to catch so wastes at most about one
//!   `SPIN_FOR` per 64 waits.
//!
//! `WARM_WITHIN` is larger than `SPIN_FOR` on purpose: when two threads both sleep, each one's
//! wait includes the other's wake-up latency, so judging by `SPIN_FOR` alone would keep a
//! ping-pong asleep for good; once both spin, their waits are short.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long one spin lasts at most: longer than a sleep and a wake-up through the kernel take on
/// the virtual machines measured, so that the wake-up of a peer that had just gone to sleep is
/// still caught. On the first host measured that round trip took a few µs and 8 µs sufficed; on
/// a later one (std's `mpsc` took 24 µs a message between two threads there) a two-hub
/// ping-pong spinning at most 8 µs missed nearly every wake-up: 8.9–13.8 µs a message against
/// 0.26–0.34 µs spinning 15 µs and 0.28–0.59 µs spinning 30 µs (`bench __micro xchannel`,
/// interleaved runs). 30 µs leaves a margin over that host's latency; a spin that fails still
/// costs at most one `SPIN_FOR` per 64 waits (see the module docs).
pub(crate) const SPIN_FOR: Duration = Duration::from_micros(30);

/// A wait that ended with a wake-up from another thread within this time makes the next one
/// spin.
pub(crate) const WARM_WITHIN: Duration = Duration::from_micros(100);

/// Consecutive failed spins past which the skip stops doubling (`2^6 - 1` waits skipped).
const MAX_BACKOFF: u32 = 6;

/// Spin-loop iterations between two looks at the clock.
const SPINS_PER_CHECK: u32 = 32;

/// One thread's spinning state (a hub's, or a plain thread's). `Cell`s of `Copy` values only:
/// it needs no destructor, so it can live in a const thread-local read during thread exit.
#[derive(Debug)]
pub(crate) struct Spinner {
    /// The last wait ended with a wake-up from another thread within `WARM_WITHIN`.
    warm: Cell<bool>,
    /// Waits left to skip after failed spins.
    skip: Cell<u32>,
    /// Consecutive failed spins.
    failures: Cell<u32>,
    /// When the current wait began (set by [`spin`](Spinner::spin), read by
    /// [`woke`](Spinner::woke)).
    idle_since: Cell<Option<Instant>>,
}

impl Spinner {
    pub(crate) const fn new() -> Spinner {
        Spinner {
            warm: Cell::new(false),
            skip: Cell::new(0),
            failures: Cell::new(0),
            idle_since: Cell::new(None),
        }
    }

    /// The thread is about to wait: spins until `ready()` if recent waits say it pays, at
    /// most [`SPIN_FOR`]. Returns whether `ready()` became true (then the thread need not
    /// block). Either way it starts timing the wait for [`woke`](Spinner::woke).
    #[inline]
    pub(crate) fn spin(&self, ready: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        self.idle_since.set(Some(start));
        if !self.warm.get() {
            return false;
        }
        if self.skip.get() > 0 {
            self.skip.set(self.skip.get() - 1);
            return false;
        }
        self.spin_from(start, ready)
    }

    #[cold]
    fn spin_from(&self, start: Instant, ready: impl Fn() -> bool) -> bool {
        loop {
            for _ in 0..SPINS_PER_CHECK {
                if ready() {
                    self.failures.set(0);
                    self.idle_since.set(None);
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN_FOR {
                let failures = (self.failures.get() + 1).min(MAX_BACKOFF);
                self.failures.set(failures);
                self.skip.set((1 << failures) - 1);
                return false;
            }
        }
    }

    /// The thread's blocking wait (after a [`spin`](Spinner::spin) that did not end it) is
    /// over; `remote`: whether a wake-up from another thread ended it.
    #[inline]
    pub(crate) fn woke(&self, remote: bool) {
        if let Some(since) = self.idle_since.take() {
            self.waited(remote, since.elapsed());
        }
    }

    /// Judges a wait of `waited` that a wake-up from another thread (`remote`) or not ended.
    fn waited(&self, remote: bool, waited: Duration) {
        self.warm.set(remote && waited < WARM_WITHIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spin` with a `ready` that counts its calls and answers `answer`: (returned, calls).
    fn spin(s: &Spinner, answer: bool) -> (bool, u32) {
        let looked = Cell::new(0);
        let r = s.spin(|| {
            looked.set(looked.get() + 1);
            answer
        });
        (r, looked.get())
    }

    #[test]
    fn a_cold_spinner_does_not_spin_and_a_quick_remote_wake_up_warms_it() {
        let s = Spinner::new();
        assert_eq!(spin(&s, true), (false, 0), "cold: no spinning at all");
        s.waited(true, Duration::from_micros(20));
        assert_eq!(
            spin(&s, true),
            (true, 1),
            "warm after a quick wake-up from another thread"
        );
    }

    #[test]
    fn slow_or_local_wake_ups_cool_the_spinner() {
        let s = Spinner::new();
        s.waited(true, Duration::from_micros(1));
        s.waited(true, WARM_WITHIN);
        assert_eq!(spin(&s, true), (false, 0), "the last wake-up came too late");
        s.waited(true, Duration::from_micros(1));
        s.waited(false, Duration::from_micros(1));
        assert_eq!(
            spin(&s, true),
            (false, 0),
            "the last wait was not ended by another thread"
        );
    }

    #[test]
    fn failed_spins_back_off_doubling_and_a_success_resets() {
        let s = Spinner::new();
        for failures in 1..=MAX_BACKOFF + 1 {
            s.waited(true, Duration::ZERO);
            let (r, calls) = spin(&s, false);
            assert!(!r && calls > 0, "spun (and failed) at failure {failures}");
            let skips = (1u32 << failures.min(MAX_BACKOFF)) - 1;
            for _ in 0..skips {
                s.waited(true, Duration::ZERO);
                assert_eq!(
                    spin(&s, true),
                    (false, 0),
                    "skipped after failure {failures}"
                );
            }
        }
        s.waited(true, Duration::ZERO);
        assert_eq!(spin(&s, true), (true, 1), "spins again after the skips");
        s.waited(true, Duration::ZERO);
        let (r, _) = spin(&s, false);
        assert!(!r);
        assert_eq!(s.skip.get(), 1, "the success reset the backoff");
    }
}

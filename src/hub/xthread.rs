//! Waiting for another OS thread: the one mechanism under every `Send + Sync` primitive
//! (`sync::Mutex`, `RwLock`, `Condvar`, `mpsc`, a `Runtime`'s join handles).
//!
//! A waiter is either a greenlet, which parks so that its hub runs the others and is woken
//! through the hub's remote-wake path ([`RemoteWaker`]), or a plain thread (one without a hub,
//! or one unwinding a panic, where switching is not allowed), which blocks in
//! `std::thread::park`. The primitive keeps a [`Unparker`] (`Send + Sync`) in its wait queue;
//! whichever thread releases what the waiter waits for calls [`Unparker::unpark`].
//!
//! Wake-ups may be spurious: a waiter always re-checks its own condition (usually a flag set
//! by the waker before it unparks) after every [`Parker::park`], and checks it before the first
//! one, so a wake-up that comes before the park is never lost. That flag lives with the
//! unparker ([`Unparker::notify`], [`Unparker::is_notified`]): for a greenlet, on the same cache
//! line as what the hub takes off its wake-up list, so that a hand-over between threads moves
//! as few lines as it can.
//!
//! A plain thread first spins on its condition for a few microseconds ([`Parker::spin`]) when
//! its recent waits ended that quickly (see `super::spin`): a joiner that keeps waiting for
//! short greenlets then neither sleeps nor makes its waker call `futex`. A greenlet never spins
//! (the other greenlets of its hub may be ready); its hub does, once nothing is ready.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, Thread};
use std::time::Instant;

use super::remote::{RemoteWait, RemoteWaker};
use super::spin::Spinner;
use super::waitlist::BlockError;

thread_local! {
    /// A plain thread's spinning state (no destructor: usable during thread exit).
    static THREAD_SPINNER: Spinner = const { Spinner::new() };
}

/// The waiting side; stays on the waiter's thread.
pub(crate) struct Parker {
    kind: ParkerKind,
}

enum ParkerKind {
    Greenlet(RemoteWait),
    Thread,
}

/// The waking side: any thread may hold it and call [`unpark`](Unparker::unpark).
pub(crate) struct Unparker {
    kind: UnparkerKind,
}

enum UnparkerKind {
    Greenlet(RemoteWaker),
    Thread {
        thread: Thread,
        notified: AtomicBool,
    },
}

/// A parker for the calling context, and its unparker.
///
/// A greenlet parks on its hub; so does a thread's main code once the thread has a hub (its
/// other greenlets keep running while it waits). A thread without a hub, and any code running
/// while a panic unwinds or the thread exits (no switch is allowed then), blocks the OS thread
/// instead.
pub(crate) fn parker() -> (Parker, Unparker) {
    // While the thread exits nothing switches any more (see `crate::thread_state`): a
    // destructor run then that waits for another thread blocks the thread, as std's would.
    let plain = thread::panicking()
        || crate::thread_state::is_exiting()
        || (!super::exists() && crate::switch::outside_greenlets())
        || crate::switch::in_hub();
    if !plain {
        match RemoteWait::new() {
            Ok((waker, wait)) => {
                return (
                    Parker {
                        kind: ParkerKind::Greenlet(wait),
                    },
                    Unparker {
                        kind: UnparkerKind::Greenlet(waker),
                    },
                );
            }
            Err(e) => log::warn!(
                "greenlet: cannot park on the hub ({e}); blocking the thread while waiting"
            ),
        }
    }
    (
        Parker {
            kind: ParkerKind::Thread,
        },
        Unparker {
            kind: UnparkerKind::Thread {
                thread: thread::current(),
                notified: AtomicBool::new(false),
            },
        },
    )
}

impl Parker {
    /// Before parking: a plain thread spins until `ready()` while its recent waits say that
    /// pays; returns whether `ready()` became true. A greenlet returns false at once.
    pub(crate) fn spin(&self, ready: impl Fn() -> bool) -> bool {
        match self.kind {
            ParkerKind::Greenlet(_) => false,
            ParkerKind::Thread => THREAD_SPINNER.try_with(|s| s.spin(ready)).unwrap_or(false),
        }
    }

    /// Waits until unparked (possibly spuriously) or `deadline`.
    ///
    /// `honour_timeouts`: whether a greenlet's [`Timeout`](crate::Timeout)s cut the wait short
    /// as well (a plain thread has none).
    ///
    /// # Errors
    /// [`BlockError::TimedOut`] at the deadline; [`BlockError::LoopExit`] when a greenlet's hub
    /// was stopped, or the wait was refused.
    pub(crate) fn park(
        &self,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
        honour_timeouts: bool,
    ) -> Result<(), BlockError> {
        match &self.kind {
            ParkerKind::Greenlet(wait) => wait.wait_with(deadline, what, honour_timeouts),
            ParkerKind::Thread => {
                match deadline {
                    None => thread::park(),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return Err(BlockError::TimedOut);
                        }
                        thread::park_timeout(d - now);
                    }
                }
                let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
                let _ = THREAD_SPINNER.try_with(|s| s.woke(!timed_out));
                if timed_out {
                    Err(BlockError::TimedOut)
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Unparker {
    /// Serves the waiter: sets its notified flag, then wakes it. Waking a greenlet twice does
    /// nothing more; a thread's second wake-up may make its next park return early (a spurious
    /// wake-up).
    pub(crate) fn notify(&self) {
        match &self.kind {
            UnparkerKind::Greenlet(w) => w.notify(),
            UnparkerKind::Thread { thread, notified } => {
                notified.store(true, Ordering::Release);
                thread.unpark();
            }
        }
    }

    /// Whether [`notify`](Unparker::notify) was called.
    pub(crate) fn is_notified(&self) -> bool {
        match &self.kind {
            UnparkerKind::Greenlet(w) => w.is_notified(),
            UnparkerKind::Thread { notified, .. } => notified.load(Ordering::Acquire),
        }
    }

    /// Drops the unparker without waking anyone: the waiter gave up by itself.
    pub(crate) fn disarm(&self) {
        if let UnparkerKind::Greenlet(w) = &self.kind {
            w.disarm();
        }
    }
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ParkerKind::Greenlet(_) => "greenlet",
            ParkerKind::Thread => "thread",
        };
        f.debug_struct("Parker").field("kind", &kind).finish()
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            UnparkerKind::Greenlet(w) => f.debug_tuple("Unparker").field(w).finish(),
            UnparkerKind::Thread { thread, .. } => {
                f.debug_tuple("Unparker").field(&thread.id()).finish()
            }
        }
    }
}

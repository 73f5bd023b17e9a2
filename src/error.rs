//! Errors of switching, and the payloads that end a greenlet.

use std::any::Any;
use std::error::Error;
use std::fmt;

/// The exception that kills a greenlet quietly, as Python greenlet's `GreenletExit`.
///
/// Thrown into a greenlet with [`Greenlet::throw`](crate::Greenlet::throw) (or by dropping the
/// last handle of a suspended greenlet), it unwinds the greenlet's stack, running every
/// destructor. It is not a failure: the parent receives it as a value, so
/// `parent.switch::<_, GreenletExit>(..)` returns `Ok(GreenletExit)`, and a switch that expected
/// another type returns [`SwitchError::Exited`], which [`SwitchError::is_failure`] calls no
/// failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("greenlet exited (GreenletExit)")
    }
}

impl Error for GreenletExit {}

/// The error of a blocking call whose greenlet was killed softly: the Rust form of gevent's
/// `except GreenletExit:` cleanup.
///
/// [`JoinHandle::kill_timeout`](crate::JoinHandle::kill_timeout) and
/// [`killall`](crate::killall) with [`Kill::Grace`](crate::Kill::Grace) first ask a greenlet to
/// finish: the blocking call it is parked in (or its next one) fails with this error, once.
/// Its code then runs on normally, `?` and destructors included, and its later blocking calls
/// work as usual, so it can say goodbye to its peer before it returns. If it has not finished
/// when the kill's grace time is up, it is unwound with [`GreenletExit`].
///
/// Each API reports it in its own error type: `JoinError::Killed`, `WaitError::Killed`,
/// `RecvError::Killed`, `SendError::Killed`, `AsyncError::Killed`, and for I/O an
/// [`io::Error`](std::io::Error) of kind `Other` that carries this type (see
/// [`Killed::is_in`]). [`sleep`](crate::sleep) returns early. Calls that mirror std and have
/// no error of their own for it (the cross-thread [`sync::Mutex`](crate::sync::Mutex) family's
/// `lock`) go on waiting and hand the kill to the greenlet's next blocking call; under the
/// `monkey` feature a hooked libc call fails with `ECANCELED`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::sync::{Queue, RecvError};
///
/// let jobs = Queue::<u32>::new();
/// let goodbye = Queue::new();
/// let (j, g) = (jobs.clone(), goodbye.clone());
/// let worker = greenlet::spawn(move || {
///     loop {
///         match j.get() {
///             Ok(_job) => {}
///             Err(RecvError::Killed) => break, // asked to finish
///             Err(e) => panic!("{e}"),
///         }
///     }
///     // Cleanup may block: this sleep and put work as usual.
///     greenlet::sleep(Duration::from_millis(1));
///     g.put("bye").unwrap();
/// });
/// greenlet::yield_now(); // it starts and waits for a job
/// worker.kill_timeout(Duration::from_secs(5)).unwrap();
/// assert_eq!(goodbye.try_get(), Ok("bye"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Killed;

impl Killed {
    /// Whether `error` is the I/O form of a soft kill.
    ///
    /// # Examples
    /// ```
    /// let e = std::io::Error::other(greenlet::Killed);
    /// assert!(greenlet::Killed::is_in(&e));
    /// assert!(!greenlet::Killed::is_in(&std::io::Error::other("no")));
    /// ```
    pub fn is_in(error: &std::io::Error) -> bool {
        error.get_ref().is_some_and(|e| e.is::<Killed>())
    }
}

impl fmt::Display for Killed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the greenlet was killed (asked to finish)")
    }
}

impl Error for Killed {}

/// A panic caught at the root of a greenlet, handed to its parent instead of aborting.
///
/// It is `Send + Sync` (the payload sits behind a mutex), so errors that carry it can travel
/// inside an `io::Error` or across threads.
pub struct Panic {
    message: Option<String>,
    /// Whether the crate's panic hook reported it when it happened (then it is not logged
    /// again).
    reported: bool,
    payload: std::sync::Mutex<Box<dyn Any + Send>>,
}

impl Panic {
    pub(crate) fn new(payload: Box<dyn Any + Send>) -> Panic {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some((*s).to_owned())
        } else {
            payload.downcast_ref::<String>().cloned()
        };
        Panic {
            message,
            reported: crate::debug::take_reported(),
            payload: std::sync::Mutex::new(payload),
        }
    }

    /// The panic message, when the payload is a string (as with `panic!("...")`).
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// Whether the panic hook reported it already, naming its greenlet.
    pub(crate) fn was_reported(&self) -> bool {
        self.reported
    }

    /// The raw payload, for `std::panic::resume_unwind`.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Panic")
            .field(&self.message().unwrap_or("<non-string payload>"))
            .finish()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(m) => write!(f, "greenlet panicked: {m}"),
            None => f.write_str("greenlet panicked"),
        }
    }
}

/// Why a [`switch`](crate::Greenlet::switch) (or a generator step) did not produce a value.
#[derive(Debug)]
#[non_exhaustive]
pub enum SwitchError {
    /// The value received has a different type than the one the receiving `switch` asked for.
    /// The value is dropped.
    WrongType {
        /// The type the receiver asked for.
        expected: &'static str,
        /// The type of the value that arrived.
        found: &'static str,
    },
    /// A greenlet whose parent is the receiver panicked; the panic ended it.
    Panicked(Panic),
    /// An error thrown into a greenlet with `throw` was not caught and ended it.
    Thrown(Box<dyn Error + Send + Sync>),
    /// A greenlet was ended by [`GreenletExit`]: a quiet end, not a failure.
    Exited,
    /// The target greenlet has already finished; no switch happened and the value was dropped.
    Dead,
    /// The switch was attempted from code that may not switch: a destructor running while a
    /// greenlet is being destroyed, or a callback run by the hub itself.
    NotAllowed(&'static str),
    /// The hub had nothing left that could wake the waiting greenlet (gevent's `LoopExit`), or
    /// was asked to stop.
    LoopExit {
        /// Whether the hub was stopped on request rather than running dry.
        stopped: bool,
    },
}

impl SwitchError {
    /// Whether this is a real failure; [`SwitchError::Exited`] is not.
    pub fn is_failure(&self) -> bool {
        !matches!(self, SwitchError::Exited)
    }
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::WrongType { expected, found } => {
                write!(
                    f,
                    "switch expected a value of type `{expected}` but received a `{found}`"
                )
            }
            SwitchError::Panicked(p) => fmt::Display::fmt(p, f),
            SwitchError::Thrown(e) => write!(f, "greenlet ended by a thrown error: {e}"),
            SwitchError::Exited => f.write_str("greenlet exited (GreenletExit)"),
            SwitchError::Dead => {
                f.write_str("cannot switch to a greenlet that has already finished")
            }
            SwitchError::NotAllowed(why) => write!(f, "cannot switch here: {why}"),
            SwitchError::LoopExit { stopped: true } => f.write_str("the hub was stopped"),
            SwitchError::LoopExit { stopped: false } => f.write_str(
                "LoopExit: this operation would block forever (nothing can wake the hub)",
            ),
        }
    }
}

impl Error for SwitchError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SwitchError::Thrown(e) => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors that carry a panic can go inside an `io::Error` (which needs `Send + Sync`).
    #[test]
    fn errors_carrying_a_panic_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Panic>();
        send_sync::<SwitchError>();
        send_sync::<crate::JoinError>();
        send_sync::<crate::threadpool::BlockingError>();
        let e = std::io::Error::other(SwitchError::Panicked(Panic::new(Box::new("boom"))));
        assert_eq!(e.to_string(), "greenlet panicked: boom");
    }
}

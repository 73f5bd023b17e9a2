//! Waiting for Unix signals in a greenlet (gevent's `signal_handler`, the other way round).
//!
//! A [`Signals`] catches the signals it was made for and lets a greenlet wait for them with
//! [`recv`](Signals::recv), [`recv_timeout`](Signals::recv_timeout) or
//! [`try_recv`](Signals::try_recv). Only the calling greenlet waits: the hub keeps running the
//! others, and what is done about a signal is ordinary code in that greenlet, not code in a
//! signal handler.
//!
//! ```
//! use greenlet::signal::Signals;
//!
//! let signals = Signals::new(&[libc::SIGUSR1])?;
//! // Something (here the process itself) sends the signal.
//! // SAFETY: raise has no memory preconditions; SIGUSR1 is caught by `signals`.
//! unsafe { libc::raise(libc::SIGUSR1) };
//! assert_eq!(signals.recv()?, libc::SIGUSR1);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How it works
//!
//! Each `Signals` owns a non-blocking pipe. The process-wide handler that it installs does one
//! thing, which is async-signal-safe: it writes the signal's number, one byte, into the pipe of
//! every `Signals` that asked for it (a raw `write` system call, so that no hook of the
//! `monkey` feature and no lock is involved). The reading end is an ordinary descriptor
//! watched by the hub of the thread that waits, so a `recv` parks like a socket read. Any
//! number of `Signals` may ask for the same signal, on one hub or on several threads' hubs:
//! each gets its own copy of every delivery.
//!
//! While at least one `Signals` asks for a signal, its handler replaces the disposition the
//! process had for it; when the last one is dropped, the disposition from before the first
//! comes back (the default action for `SIGTERM`, for example). Handlers are installed with
//! `SA_RESTART`, so blocking system calls on other threads are not interrupted.
//!
//! Deliveries that arrive faster than they are received are kept in the pipe (tens of
//! thousands); past that they coalesce, as the kernel coalesces a standard signal that is
//! already pending.
//!
//! # Signals that cannot be waited for
//!
//! `SIGKILL` and `SIGSTOP` cannot be caught at all, and the fault signals (`SIGSEGV`,
//! `SIGBUS`, `SIGILL`, `SIGFPE`) re-run the faulting instruction when a handler returns, so
//! they are refused with an error of kind `InvalidInput` that names the signal, as are numbers
//! outside `1..=SIGRTMAX` and the real-time signals the C library reserves for itself.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libc::c_int;

use crate::hub::Direction;
use crate::hub::waitlist::{BlockError, deadline_after};
use crate::net::{Io, blocked_error};

/// How many `Signals` may exist in the process at once (each is one slot the handler scans).
const MAX_SIGNALS: usize = 256;

/// The highest signal number on Linux (`SIGRTMAX`); numbers fit in one byte.
const MAX_SIGNO: c_int = 64;

/// One `Signals` as the handler sees it: the pipe to write to and the signals it wants.
struct Slot {
    /// The pipe's writing end, or -1 when the slot is free.
    fd: AtomicI32,
    /// Bit `n - 1` is set when signal `n` is wanted.
    mask: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise `SLOTS`
const FREE: Slot = Slot {
    fd: AtomicI32::new(-1),
    mask: AtomicU64::new(0),
};

static SLOTS: [Slot; MAX_SIGNALS] = [FREE; MAX_SIGNALS];

/// How many handlers are running right now, on any thread. A `Signals` being dropped waits
/// for this to reach zero after freeing its slot and before closing its pipe: a handler that
/// read the descriptor just before must not write into a descriptor number that has been
/// reused for something else.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Per signal number: how many `Signals` want it, and the disposition to restore after the
/// last one.
struct Registry {
    users: [u32; MAX_SIGNO as usize + 1],
    previous: Vec<(c_int, libc::sigaction)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    users: [0; MAX_SIGNO as usize + 1],
    previous: Vec::new(),
});

fn bit(signo: c_int) -> u64 {
    1u64 << (signo - 1)
}

/// The process-wide handler: async-signal-safe (atomics and the `write` system call only).
extern "C" fn on_signal(signo: c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for the thread's
    // life; the handler saves and restores it so that the interrupted code sees its own errno.
    let errno = unsafe { *libc::__errno_location() };
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    if (1..=MAX_SIGNO).contains(&signo) {
        let byte = signo as u8;
        for slot in &SLOTS {
            let fd = slot.fd.load(Ordering::SeqCst);
            if fd >= 0 && slot.mask.load(Ordering::SeqCst) & bit(signo) != 0 {
                // SAFETY: `fd` is the open writing end of a pipe: a slot's descriptor is closed
                // only after the slot is freed and no handler is running (see IN_HANDLER).
                // `byte` outlives the call. A full pipe fails with EAGAIN (non-blocking): the
                // delivery coalesces with those still unread.
                unsafe {
                    libc::syscall(
                        libc::SYS_write,
                        fd,
                        &byte as *const u8 as *const libc::c_void,
                        1usize,
                    );
                }
            }
        }
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Checks that `signo` can be caught and waited for.
fn check_signo(signo: c_int) -> io::Result<()> {
    let why = match signo {
        libc::SIGKILL => Some("SIGKILL cannot be caught"),
        libc::SIGSTOP => Some("SIGSTOP cannot be caught"),
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => Some(
            "a fault signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE) cannot be waited for: \
             the faulting instruction runs again when a handler returns",
        ),
        n if !(1..=MAX_SIGNO).contains(&n) => Some("not a signal number (1..=SIGRTMAX)"),
        n if n > 31 && n < libc::SIGRTMIN() => {
            Some("this real-time signal is reserved by the C library")
        }
        _ => None,
    };
    match why {
        Some(why) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signo}: {why}"),
        )),
        None => Ok(()),
    }
}

/// Installs the handler for every signal in `signos` that has no user yet, and counts one
/// more user for each. All or nothing: on error, what was installed is undone.
fn acquire(registry: &mut Registry, signos: &[c_int]) -> io::Result<()> {
    for (i, &signo) in signos.iter().enumerate() {
        if registry.users[signo as usize] == 0 {
            // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask, SIG_DFL).
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: the pointers are to live, initialised sigaction values, and the handler
            // installed is async-signal-safe.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let r = unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signo, &action, &mut old)
            };
            if r != 0 {
                let e = io::Error::last_os_error();
                release(registry, &signos[..i]);
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot install a handler for signal {signo}: {e}"),
                ));
            }
            registry.previous.push((signo, old));
        }
        registry.users[signo as usize] += 1;
    }
    Ok(())
}

/// Counts one user less for each of `signos`; puts back the old disposition after the last.
fn release(registry: &mut Registry, signos: &[c_int]) {
    for &signo in signos {
        let users = &mut registry.users[signo as usize];
        *users -= 1;
        if *users == 0
            && let Some(i) = registry.previous.iter().position(|(s, _)| *s == signo)
        {
            let (_, old) = registry.previous.swap_remove(i);
            // SAFETY: `old` is the disposition the kernel reported for this signal before our
            // handler replaced it.
            if unsafe { libc::sigaction(signo, &old, std::ptr::null_mut()) } != 0 {
                log::error!(
                    "greenlet: could not restore the disposition of signal {signo}: {}",
                    io::Error::last_os_error()
                );
            }
        }
    }
}

fn lock_registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A set of Unix signals that greenlets of this thread can wait for.
///
/// Made with [`Signals::new`]; the signals are caught from then until it is dropped (see the
/// [module documentation](self) for dispositions and delivery). Receiving parks only the
/// calling greenlet. A `Signals` belongs to the thread whose hub watches it (it is not `Send`);
/// another thread makes its own, and each receives every delivery.
///
/// # Examples
/// A greenlet that waits for `SIGUSR1` while another keeps working:
/// ```
/// use greenlet::signal::Signals;
/// use std::time::Duration;
///
/// let signals = Signals::new(&[libc::SIGUSR1])?;
/// let waiter = greenlet::spawn(move || signals.recv());
/// let worker = greenlet::spawn(|| {
///     greenlet::sleep(Duration::from_millis(5));
///     // SAFETY: raise has no memory preconditions; SIGUSR1 is caught by `signals`.
///     unsafe { libc::raise(libc::SIGUSR1) };
/// });
/// worker.join().unwrap();
/// assert_eq!(waiter.get().unwrap()?, libc::SIGUSR1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signals {
    slot: usize,
    signos: Vec<c_int>,
    /// The pipe's reading end, watched by the hub.
    read: OwnedFd,
    /// The writing end; the handler writes to it by number, so it stays open until the slot is
    /// freed and no handler runs (it is closed after `drop` has waited for that).
    _write: OwnedFd,
    io: Io,
    /// Signal numbers read from the pipe but not handed out yet.
    unread: RefCell<VecDeque<c_int>>,
}

impl Signals {
    /// Starts catching `signals` for this thread's greenlets.
    ///
    /// # Errors
    /// `InvalidInput` naming the signal if one cannot be caught or waited for (`SIGKILL`,
    /// `SIGSTOP`, the fault signals, a number outside `1..=SIGRTMAX`) or if `signals` is empty;
    /// the pipe's or `sigaction`'s error; `OutOfMemory` when 256 `Signals` exist already.
    ///
    /// # Examples
    /// ```
    /// let err = greenlet::signal::Signals::new(&[libc::SIGKILL]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(err.to_string().contains("SIGKILL cannot be caught"));
    /// ```
    pub fn new(signals: &[c_int]) -> io::Result<Signals> {
        if signals.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Signals::new needs at least one signal",
            ));
        }
        let mut signos = Vec::with_capacity(signals.len());
        let mut mask = 0;
        for &signo in signals {
            check_signo(signo)?;
            if mask & bit(signo) == 0 {
                mask |= bit(signo);
                signos.push(signo);
            }
        }
        let (read, write) = pipe()?;
        let mut registry = lock_registry();
        let slot = SLOTS
            .iter()
            .position(|s| s.fd.load(Ordering::SeqCst) < 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("at most {MAX_SIGNALS} Signals may exist at once"),
                )
            })?;
        acquire(&mut registry, &signos)?;
        // The mask first: a handler that sees the descriptor sees the mask that goes with it.
        SLOTS[slot].mask.store(mask, Ordering::SeqCst);
        SLOTS[slot].fd.store(write.as_raw_fd(), Ordering::SeqCst);
        drop(registry);
        Ok(Signals {
            slot,
            signos,
            read,
            _write: write,
            io: Io::new(),
            unread: RefCell::new(VecDeque::new()),
        })
    }

    /// The signals this `Signals` catches, in the order given (without repeats).
    pub fn signals(&self) -> &[c_int] {
        &self.signos
    }

    /// Parks the calling greenlet until one of the signals arrives; returns its number.
    /// Deliveries are returned in the order they arrived.
    ///
    /// # Errors
    /// `TimedOut` if a [`Timeout`](crate::Timeout) of the calling greenlet runs out; kind
    /// `Other` wrapping the [`LoopExit`](crate::LoopExit) if the hub is stopped.
    pub fn recv(&self) -> io::Result<c_int> {
        self.recv_until(None)
            .map(|s| s.expect("a wait without deadline ends with a signal"))
    }

    /// [`recv`](Signals::recv) for at most `timeout`: `Ok(None)` if no signal came in time.
    ///
    /// # Errors
    /// As [`recv`](Signals::recv).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let signals = greenlet::signal::Signals::new(&[libc::SIGWINCH])?;
    /// // Nothing is sent: the greenlet parks 10 ms, then gets `None`.
    /// assert_eq!(signals.recv_timeout(Duration::from_millis(10))?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<c_int>> {
        self.recv_until(deadline_after(Some(timeout)))
    }

    /// The next signal that has arrived, without waiting: `Ok(None)` if none has.
    ///
    /// # Errors
    /// The pipe's read error (none is expected).
    ///
    /// # Examples
    /// ```
    /// use greenlet::signal::Signals;
    /// let signals = Signals::new(&[libc::SIGUSR2])?;
    /// assert_eq!(signals.try_recv()?, None);
    /// // SAFETY: raise has no memory preconditions; SIGUSR2 is caught by `signals`.
    /// unsafe { libc::raise(libc::SIGUSR2) };
    /// assert_eq!(signals.try_recv()?, Some(libc::SIGUSR2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self) -> io::Result<Option<c_int>> {
        if let Some(s) = self.unread.borrow_mut().pop_front() {
            return Ok(Some(s));
        }
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: `buf` is writable for its length; the descriptor is our pipe's open end.
            let n = unsafe {
                libc::read(
                    self.read.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => Ok(None),
                    _ => Err(e),
                };
            }
            let mut unread = self.unread.borrow_mut();
            unread.extend(buf[..n as usize].iter().map(|&b| c_int::from(b)));
            return Ok(unread.pop_front());
        }
    }

    /// Forgets every delivery that has arrived, without waiting (the `SIGCHLD` watch of
    /// [`process`](crate::process) only needs to know that something arrived since).
    pub(crate) fn discard(&self) -> io::Result<()> {
        while self.try_recv()?.is_some() {}
        Ok(())
    }

    /// Parks the calling greenlet until a delivery arrives (or `deadline`), without taking it.
    /// Every greenlet parked here is woken by each delivery; each then checks what it waits
    /// for and, if it goes on waiting, [`discard`](Signals::discard)s first, so that the next
    /// delivery is a new readiness edge.
    ///
    /// # Errors
    /// The outer error if the pipe cannot be registered with the hub; the inner one for a wait
    /// that ended without a delivery.
    pub(crate) fn wait_arrival(
        &self,
        deadline: Option<Instant>,
    ) -> io::Result<Result<(), BlockError>> {
        if !self.unread.borrow().is_empty() {
            return Ok(Ok(()));
        }
        let reg = self.io.registration(self.read.as_raw_fd())?;
        Ok(reg.wait(Direction::Read, deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> io::Result<Option<c_int>> {
        loop {
            if let Some(s) = self.try_recv()? {
                return Ok(Some(s));
            }
            let reg = self.io.registration(self.read.as_raw_fd())?;
            match reg.wait(Direction::Read, deadline) {
                Ok(()) => {}
                Err(BlockError::TimedOut) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    // One last look: the signal may have come as the time ran out.
                    return self.try_recv();
                }
                Err(e) => return Err(blocked_error(e, None)),
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let mut registry = lock_registry();
        SLOTS[self.slot].fd.store(-1, Ordering::SeqCst);
        SLOTS[self.slot].mask.store(0, Ordering::SeqCst);
        release(&mut registry, &self.signos);
        drop(registry);
        // A handler that loaded our descriptor before the store above is counted in
        // IN_HANDLER (it counts itself before it loads); wait for it before the pipe closes.
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("signals", &self.signos)
            .field("unread", &self.unread.borrow().len())
            .finish_non_exhaustive()
    }
}

/// A non-blocking, close-on-exec pipe: (reading end, writing end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_out_of_range_numbers_are_refused() {
        for signo in [0, -1, 65, 1000, 32] {
            let e = check_signo(signo).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{signo}");
        }
        assert!(check_signo(libc::SIGRTMIN()).is_ok());
        assert!(check_signo(libc::SIGRTMAX()).is_ok());
    }
}

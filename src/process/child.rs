//! A running child process ([`Child`]) and how a greenlet waits for it to exit: on a pidfd
//! where the kernel has `pidfd_open`, on `SIGCHLD` otherwise; never by polling.

use std::cell::OnceCell;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

use super::pipes::{ChildStderr, ChildStdin, ChildStdout, read_both};
use super::sys::pidfd_open;
use crate::hub::Direction;
use crate::hub::waitlist::{BlockError, deadline_after};
use crate::net::{Io, blocked_error};
use crate::signal::Signals;

/// How a child's exit is noticed.
enum ExitWatch {
    /// A pidfd, readable once the child has exited; registered with the hub like a socket.
    Pidfd { io: Io, fd: OwnedFd },
    /// This thread's `SIGCHLD` receiver: every delivery wakes every greenlet waiting for a
    /// child, and each checks its own with `waitpid(WNOHANG)`.
    Sigchld,
}

thread_local! {
    /// The `SIGCHLD` receiver of this thread's hub, made on the first wait that needs it and
    /// kept for the thread's life (making one per wait would run out of `Signals` slots).
    static SIGCHLD: OnceCell<Signals> = const { OnceCell::new() };
}

/// A child process started by [`Command::spawn`](super::Command::spawn): std's `Child`, whose
/// waits park only the calling greenlet.
///
/// As in std, the pipes asked for with [`Stdio::piped`](super::Stdio::piped) are in the public
/// fields, and dropping a `Child` neither kills nor waits for the process.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::process::Command;
///
/// let mut child = Command::new("sleep").arg("10").spawn()?;
/// // Parks this greenlet (other greenlets run) for 10 ms, then gives up.
/// assert!(child.wait_timeout(Duration::from_millis(10))?.is_none());
/// child.kill()?;
/// let status = child.wait()?;
/// use std::os::unix::process::ExitStatusExt;
/// assert_eq!(status.signal(), Some(libc::SIGKILL));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Child {
    inner: std::process::Child,
    watch: ExitWatch,
    /// The handle for writing to the child's standard input, if it was piped.
    pub stdin: Option<ChildStdin>,
    /// The handle for reading the child's standard output, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The handle for reading the child's standard error, if it was piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// Takes over a child std has just started: its pipes become green, and its exit is
    /// watched through a pidfd (opened now, before anything can reap it) or `SIGCHLD`.
    pub(crate) fn adopt(mut inner: std::process::Child) -> io::Result<Child> {
        let stdin = inner.stdin.take().map(ChildStdin::new).transpose()?;
        let stdout = inner.stdout.take().map(ChildStdout::new).transpose()?;
        let stderr = inner.stderr.take().map(ChildStderr::new).transpose()?;
        let watch = match pidfd_open(inner.id()) {
            Ok(fd) => ExitWatch::Pidfd { io: Io::new(), fd },
            Err(_) => ExitWatch::Sigchld,
        };
        Ok(Child {
            inner,
            watch,
            stdin,
            stdout,
            stderr,
        })
    }

    /// The child's process id (std's `id`).
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `SIGKILL` to the child (std's `kill`); does not wait for it to die.
    ///
    /// # Errors
    /// As std's: the error of `kill(2)`; `Ok` if the child has already exited and been waited
    /// for.
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// Waits for the child to exit and returns its status, parking only the calling greenlet.
    /// Closes the child's standard input first, as std does, so a child reading it sees its
    /// end instead of waiting forever. Calling it again returns the same status.
    ///
    /// # Errors
    /// `TimedOut` when a [`Timeout`](crate::Timeout) of the calling greenlet runs out (the
    /// child keeps running); kind `Other` wrapping the [`LoopExit`](crate::LoopExit) when the
    /// hub is stopped; `waitpid`'s errors.
    ///
    /// # Examples
    /// ```
    /// let status = greenlet::process::Command::new("sh").args(["-c", "exit 3"]).spawn()?.wait()?;
    /// assert_eq!(status.code(), Some(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        Ok(self
            .wait_until(None)?
            .expect("a wait without deadline ends with the exit"))
    }

    /// [`wait`](Child::wait) for at most `timeout`: `Ok(None)` if the child is still running
    /// then.
    ///
    /// # Errors
    /// As [`wait`](Child::wait).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let mut child = greenlet::process::Command::new("true").spawn()?;
    /// let status = child.wait_timeout(Duration::from_secs(60))?.expect("exits at once");
    /// assert!(status.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        drop(self.stdin.take());
        self.wait_until(deadline_after(Some(timeout)))
    }

    /// The exit status if the child has exited, without waiting (std's `try_wait`).
    ///
    /// # Errors
    /// `waitpid`'s errors.
    ///
    /// # Examples
    /// ```
    /// let mut child = greenlet::process::Command::new("sleep").arg("10").spawn()?;
    /// assert!(child.try_wait()?.is_none());
    /// child.kill()?;
    /// child.wait()?;
    /// assert!(child.try_wait()?.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Closes standard input, reads standard output and error to their ends (both at once, so
    /// that a child filling one cannot deadlock on the other), and waits for the exit (std's
    /// `wait_with_output`). Streams that were not piped come back empty.
    ///
    /// # Errors
    /// A read error, or as [`wait`](Child::wait).
    ///
    /// # Examples
    /// ```
    /// use greenlet::process::{Command, Stdio};
    /// let child = Command::new("sh").args(["-c", "echo out; echo err >&2"])
    ///     .stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    /// let out = child.wait_with_output()?;
    /// assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        self.wait_with_output_in_place()
    }

    /// [`wait_with_output`](Child::wait_with_output) that leaves the child with its owner
    /// (`Command::output`, which kills it if this fails).
    pub(crate) fn wait_with_output_in_place(&mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Gives back std's `Child`, its pipes (those still here) in blocking mode again, for
    /// code that waits without a hub.
    ///
    /// # Examples
    /// ```
    /// let child = greenlet::process::Command::new("true").spawn()?;
    /// let mut std_child = child.into_std();
    /// assert!(std_child.wait()?.success()); // std's blocking wait
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> std::process::Child {
        fn std_pipe<G: Into<OwnedFd>, S: From<OwnedFd>>(p: Option<G>) -> Option<S> {
            p.map(|p| S::from(p.into()))
        }
        let Child {
            mut inner,
            watch,
            stdin,
            stdout,
            stderr,
        } = self;
        drop(watch);
        inner.stdin = std_pipe(stdin);
        inner.stdout = std_pipe(stdout);
        inner.stderr = std_pipe(stderr);
        inner
    }

    /// Waits until the child exits or `deadline` passes (`Ok(None)`).
    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.inner.try_wait()? {
            return Ok(Some(status));
        }
        match &self.watch {
            ExitWatch::Pidfd { io, fd } => {
                let reg = io.registration(fd.as_raw_fd())?;
                loop {
                    let waited = reg.wait(Direction::Read, deadline);
                    if let Some(status) = self.inner.try_wait()? {
                        return Ok(Some(status));
                    }
                    if deadline_passed(waited, deadline)? {
                        return Ok(None);
                    }
                }
            }
            ExitWatch::Sigchld => SIGCHLD.with(|cell| {
                let signals = match cell.get() {
                    Some(s) => s,
                    None => {
                        let s = Signals::new(&[libc::SIGCHLD])?;
                        cell.get_or_init(|| s)
                    }
                };
                loop {
                    // Forget the deliveries seen so far, then look: a `SIGCHLD` from now on is
                    // a new readiness edge that wakes this greenlet.
                    signals.discard()?;
                    if let Some(status) = self.inner.try_wait()? {
                        return Ok(Some(status));
                    }
                    let waited = signals.wait_arrival(deadline)?;
                    if let Some(status) = self.inner.try_wait()? {
                        return Ok(Some(status));
                    }
                    if deadline_passed(waited, deadline)? {
                        return Ok(None);
                    }
                }
            }),
        }
    }
}

/// After a wait for the exit that found the child still running: `Ok(false)` to wait again,
/// `Ok(true)` when the caller's own deadline has passed.
///
/// # Errors
/// `TimedOut` when a [`Timeout`](crate::Timeout) of the greenlet cut the wait short; the
/// [`LoopExit`](crate::LoopExit) (kind `Other`) when the hub was stopped.
fn deadline_passed(waited: Result<(), BlockError>, deadline: Option<Instant>) -> io::Result<bool> {
    match waited {
        Ok(()) => Ok(false),
        Err(BlockError::TimedOut) if deadline.is_some_and(|d| Instant::now() >= d) => Ok(true),
        Err(e) => Err(blocked_error(e, None)),
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.inner.id())
            .field(
                "watch",
                &match self.watch {
                    ExitWatch::Pidfd { .. } => "pidfd",
                    ExitWatch::Sigchld => "SIGCHLD",
                },
            )
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

//! Child processes that a greenlet waits for without blocking the hub (gevent's
//! `gevent.subprocess`), with std's API.
//!
//! [`Command`], [`Child`], [`ChildStdin`], [`ChildStdout`] and [`ChildStderr`] have the names,
//! methods and defaults of `std::process`; [`ExitStatus`], [`Output`] and [`Stdio`] are std's
//! own types. What differs is what blocks: waiting for a child to exit and reading or writing
//! its pipes park only the calling greenlet, so one thread runs many children and serves its
//! sockets meanwhile.
//!
//! ```
//! use greenlet::process::Command;
//!
//! // Ten children at once: each greenlet waits for its own, the hub runs them all.
//! let children: Vec<_> = (0..10)
//!     .map(|i| greenlet::spawn(move || {
//!         Command::new("sh").args(["-c", &format!("sleep 0.05; echo {i}")]).output()
//!     }))
//!     .collect();
//! for (i, h) in children.into_iter().enumerate() {
//!     let out = h.get().unwrap()?;
//!     assert!(out.status.success());
//!     assert_eq!(out.stdout, format!("{i}\n").into_bytes());
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Waiting for an exit
//!
//! Right after `spawn`, the child gets a process descriptor (`pidfd_open`, Linux 5.3+), which
//! becomes readable when the child exits; the hub watches it like a socket, and a waiting
//! greenlet is woken by that event, then reaps the child with `waitpid(WNOHANG)`. Where the
//! kernel has no `pidfd_open` (or a seccomp filter refuses it; setting `GREENLET_NO_PIDFD=1`
//! asks for the same), each thread's hub catches `SIGCHLD` with a
//! [`Signals`](crate::signal::Signals): every delivery wakes the greenlets waiting for a child
//! and each checks its own, again with `waitpid(WNOHANG)` on its own pid only (never
//! `waitpid(-1)`, which would reap children that other code waits for). Neither way polls.
//!
//! `spawn` itself is std's, on the calling thread: it returns once the program has been
//! executed (or has failed to be, which std reports as the spawn's error), which is a fork
//! and an exec, not a wait for the child's work.
//!
//! # What differs from std
//!
//! - A child and its pipes belong to the thread that spawned it (its hub watches them): they
//!   are neither `Send` nor `Sync`. [`Child::into_std`] gives std's `Child` back.
//! - A [`Timeout`](crate::Timeout) of the calling greenlet bounds every wait (the error has
//!   kind `TimedOut`); [`Child::wait_timeout`] bounds one.
//! - [`Command::output`] and [`Command::status`] own their child: when their wait is cut short
//!   (a `Timeout`, the greenlet killed, the hub stopped) they kill the child and reap it on the
//!   thread pool, rather than leave it running unseen and then a zombie. A [`Child`] you hold
//!   is yours, as in std: dropping it neither kills nor waits for it.

mod child;
mod pipes;
mod sys;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;

pub use self::child::Child;
pub use self::pipes::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

/// A process builder with std's methods and defaults, whose [`spawn`](Command::spawn)ed
/// children, [`output`](Command::output) and [`status`](Command::status) are waited for by
/// parking the calling greenlet.
///
/// # Examples
/// ```
/// use greenlet::process::Command;
///
/// let out = Command::new("echo").arg("hello").output()?;
/// assert!(out.status.success());
/// assert_eq!(out.stdout, b"hello\n");
///
/// // A program that does not exist is std's `NotFound`.
/// let err = Command::new("/no/such/program").status().unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command {
    inner: std::process::Command,
    /// Which streams were configured: the others get the default of the call that spawns
    /// (inherit for `spawn` and `status`; null stdin and piped stdout/stderr for `output`).
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A builder for running `program` (looked up in `PATH` when it has no slash), with
    /// std's defaults: no arguments, the parent's environment and working directory.
    ///
    /// # Examples
    /// Every builder method of std's is here:
    /// ```
    /// use greenlet::process::{Command, Stdio};
    /// let out = Command::new("sh")
    ///     .arg("-c")
    ///     .args(["echo \"$GREETING from $(pwd)\"; cat"])
    ///     .env("GREETING", "hello")
    ///     .env_remove("UNUSED")
    ///     .current_dir("/")
    ///     .stdin(Stdio::null())
    ///     .stdout(Stdio::piped())
    ///     .output()?;
    /// assert_eq!(out.stdout, b"hello from /\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command {
            inner: std::process::Command::new(program),
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Configures the child's standard input ([`Stdio::piped`] gives a green [`ChildStdin`]).
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// Configures the child's standard output ([`Stdio::piped`] gives a green
    /// [`ChildStdout`]).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// Configures the child's standard error ([`Stdio::piped`] gives a green
    /// [`ChildStderr`]).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Runs the child as user `id` (std's `CommandExt::uid`).
    pub fn uid(&mut self, id: u32) -> &mut Command {
        std::os::unix::process::CommandExt::uid(&mut self.inner, id);
        self
    }

    /// Runs the child as group `id` (std's `CommandExt::gid`).
    pub fn gid(&mut self, id: u32) -> &mut Command {
        std::os::unix::process::CommandExt::gid(&mut self.inner, id);
        self
    }

    /// Puts the child in process group `pgroup` (0: a new group of its own), std's
    /// `CommandExt::process_group`.
    pub fn process_group(&mut self, pgroup: i32) -> &mut Command {
        std::os::unix::process::CommandExt::process_group(&mut self.inner, pgroup);
        self
    }

    /// Sets the child's `argv[0]` (std's `CommandExt::arg0`).
    pub fn arg0<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        std::os::unix::process::CommandExt::arg0(&mut self.inner, arg);
        self
    }

    /// The program to run.
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments (without the program).
    pub fn get_args(&self) -> std::process::CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment changes made with `env`, `envs` and `env_remove`.
    pub fn get_envs(&self) -> std::process::CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// The working directory set with `current_dir`.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// Starts the child and returns it; streams not configured are inherited from the parent.
    ///
    /// # Errors
    /// std's: `NotFound` for a program that does not exist, `PermissionDenied` for one that
    /// cannot be executed, the fork's errors; the pidfd's registration errors (out of
    /// descriptors).
    ///
    /// # Examples
    /// ```
    /// let mut child = greenlet::process::Command::new("true").spawn()?;
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with(Stdio::inherit, Stdio::inherit, Stdio::inherit)
    }

    /// Runs the child to its end, collecting its standard output and error; the child's
    /// standard input is empty unless configured (std's `output`).
    ///
    /// # Errors
    /// As [`spawn`](Command::spawn) and [`Child::wait_with_output`]. If the wait is cut short,
    /// the child is killed (see the [module documentation](self)).
    ///
    /// # Examples
    /// ```
    /// let out = greenlet::process::Command::new("sh").args(["-c", "echo 1; exit 2"]).output()?;
    /// assert_eq!((out.status.code(), &out.stdout[..]), (Some(2), &b"1\n"[..]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn output(&mut self) -> io::Result<Output> {
        let child = self.spawn_with(Stdio::null, Stdio::piped, Stdio::piped)?;
        let mut owned = Owned(Some(child));
        let out = owned.child().wait_with_output_in_place()?;
        owned.0 = None;
        Ok(out)
    }

    /// Runs the child to its end and returns its exit status; streams not configured are
    /// inherited (std's `status`).
    ///
    /// # Errors
    /// As [`spawn`](Command::spawn) and [`Child::wait`]. If the wait is cut short, the child
    /// is killed (see the [module documentation](self)).
    ///
    /// # Examples
    /// ```
    /// assert!(!greenlet::process::Command::new("false").status()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        let child = self.spawn_with(Stdio::inherit, Stdio::inherit, Stdio::inherit)?;
        let mut owned = Owned(Some(child));
        let status = owned.child().wait()?;
        owned.0 = None;
        Ok(status)
    }

    /// Spawns with the given defaults for the streams that were not configured. std keeps a
    /// stream's setting in the command, so a default is set explicitly for every spawn (an
    /// `output` leaves pipes behind that a later `spawn` must not inherit).
    fn spawn_with(
        &mut self,
        stdin: fn() -> Stdio,
        stdout: fn() -> Stdio,
        stderr: fn() -> Stdio,
    ) -> io::Result<Child> {
        if !self.stdin_set {
            self.inner.stdin(stdin());
        }
        if !self.stdout_set {
            self.inner.stdout(stdout());
        }
        if !self.stderr_set {
            self.inner.stderr(stderr());
        }
        Child::adopt(self.inner.spawn()?)
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A child that `output` or `status` owns until its wait completes: if the wait ends any other
/// way (an error, a kill unwinding the greenlet), the child is killed and reaped on the thread
/// pool, so that it neither runs on unseen nor stays a zombie.
struct Owned(Option<Child>);

impl Owned {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("owned until the wait completes")
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let mut child = child.into_std();
            let _ = child.kill();
            if !matches!(child.try_wait(), Ok(Some(_))) {
                crate::threadpool::detach(move || {
                    let _ = child.wait();
                });
            }
        }
    }
}

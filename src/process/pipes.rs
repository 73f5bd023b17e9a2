//! The pipes to a child: [`ChildStdin`], [`ChildStdout`], [`ChildStderr`], std's types with
//! their descriptors in non-blocking mode and a hub registration, so that a read or a write
//! that would block parks only the calling greenlet.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Stdio;

use super::sys::set_nonblocking;
use crate::hub::{Direction, IoRegistration, wait_any_io};
use crate::net::{Io, blocked_error};

/// Declares one of the three pipe types: the struct, its constructor from std's type, `Debug`,
/// the descriptor traits, and the conversions that hand the descriptor on (to another child as
/// its `Stdio`, or as an `OwnedFd`), in blocking mode again as std's pipes are.
macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident, $std:ty) => {
        $(#[$doc])*
        pub struct $name {
            // Field order matters: deregister from the hub before the descriptor closes.
            io: Io,
            inner: $std,
        }

        impl $name {
            /// Takes over std's pipe: non-blocking from now on, registered with this thread's
            /// hub on the first operation that would block.
            pub(crate) fn new(inner: $std) -> io::Result<$name> {
                set_nonblocking(inner.as_raw_fd(), true)?;
                Ok($name { io: Io::new(), inner })
            }

            /// The descriptor back in blocking mode, for another owner.
            fn into_blocking_fd(self) -> OwnedFd {
                let $name { io, inner } = self;
                drop(io);
                let fd = OwnedFd::from(inner);
                // Best effort, as std's `From` conversions cannot fail: a descriptor left
                // non-blocking makes a reader's `read` fail with `WouldBlock` instead of waiting.
                let _ = set_nonblocking(fd.as_raw_fd(), false);
                fd
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("fd", &self.inner.as_raw_fd())
                    .finish()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl From<$name> for OwnedFd {
            /// Gives up the descriptor, in blocking mode again.
            fn from(p: $name) -> OwnedFd {
                p.into_blocking_fd()
            }
        }

        impl From<$name> for Stdio {
            /// Hands the pipe to another child (a shell pipeline), in blocking mode again.
            fn from(p: $name) -> Stdio {
                Stdio::from(p.into_blocking_fd())
            }
        }
    };
}

pipe_type!(
    /// The writing end of a child's standard input (std's `ChildStdin`), green: a write that
    /// would block (the pipe is full) parks only the calling greenlet.
    ///
    /// Dropping it closes the pipe, which the child sees as the end of its input. A write
    /// after the child has closed its end fails with `BrokenPipe`.
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// let mut stdin = child.stdin.take().unwrap();
    /// stdin.write_all(b"through cat")?;
    /// drop(stdin); // end of input: cat exits
    /// let mut out = String::new();
    /// child.stdout.take().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "through cat");
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ChildStdin,
    std::process::ChildStdin
);

pipe_type!(
    /// The reading end of a child's standard output (std's `ChildStdout`), green: a read that
    /// would block parks only the calling greenlet. A read returns 0 once the child (and every
    /// process it passed the pipe on to) has closed it.
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn()?;
    /// let mut out = String::new();
    /// child.stdout.take().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "hi\n");
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ChildStdout,
    std::process::ChildStdout
);

pipe_type!(
    /// The reading end of a child's standard error (std's `ChildStderr`), green, as
    /// [`ChildStdout`].
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("sh").args(["-c", "echo oops >&2"])
    ///     .stderr(Stdio::piped()).spawn()?;
    /// let mut err = String::new();
    /// child.stderr.take().unwrap().read_to_string(&mut err)?;
    /// assert_eq!(err, "oops\n");
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ChildStderr,
    std::process::ChildStderr
);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let inner = &mut self.inner;
        self.io.write(fd, || inner.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let inner = &mut self.inner;
        self.io.write(fd, || inner.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Read` for the two reading pipes: std's read, parking while it would block.
macro_rules! green_read {
    ($name:ident) => {
        impl $name {
            /// The hub registration of this pipe, made on first use.
            fn registration(&self) -> io::Result<&IoRegistration> {
                self.io.registration(self.inner.as_raw_fd())
            }
        }

        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let fd = self.inner.as_raw_fd();
                let inner = &mut self.inner;
                self.io.read(fd, || inner.read(buf))
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                let fd = self.inner.as_raw_fd();
                let inner = &mut self.inner;
                self.io.read(fd, || inner.read_vectored(bufs))
            }
        }
    };
}

green_read!(ChildStdout);
green_read!(ChildStderr);

/// Reads what is available from a non-blocking pipe into `buf`: `Ok(true)` at its end,
/// `Ok(false)` when it would block.
fn drain(pipe: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        // `read_to_end` keeps what it read before an error, `WouldBlock` included.
        match pipe.read_to_end(buf) {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads both pipes to their ends at once, as std's `wait_with_output` does, so that a child
/// that fills one pipe while we wait on the other cannot deadlock; parks on whichever of the
/// two is still open.
pub(crate) fn read_both(
    mut out: Option<ChildStdout>,
    mut err: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let (mut out_buf, mut err_buf) = (Vec::new(), Vec::new());
    loop {
        if let Some(o) = &mut out
            && drain(&mut o.inner, &mut out_buf)?
        {
            out = None;
        }
        if let Some(e) = &mut err
            && drain(&mut e.inner, &mut err_buf)?
        {
            err = None;
        }
        let mut sources = Vec::with_capacity(2);
        if let Some(o) = &out {
            sources.push((o.registration()?, Direction::Read));
        }
        if let Some(e) = &err {
            sources.push((e.registration()?, Direction::Read));
        }
        if sources.is_empty() {
            return Ok((out_buf, err_buf));
        }
        wait_any_io(&sources, None).map_err(|e| blocked_error(e, None))?;
    }
}

//! Parking until any descriptor is ready (gevent's `wait_read` / `wait_write`), so that
//! sockets owned by other libraries can be waited on cooperatively.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::Registration;
use crate::hub::Direction;
use crate::hub::waitlist::{BlockError, deadline_after};
use crate::select::{Selectable, Source};

/// Parks the calling greenlet until `fd` is readable (data, end-of-file, an error or a
/// pending connection), or `timeout` passes; returns whether it is readable.
///
/// `fd` is a green socket (which is waited on through its own hub registration), a std
/// socket, a raw descriptor (`RawFd`, as from another library's `as_raw_fd()`), or a
/// reference to any of these. A descriptor that is ready already returns at once after one
/// `poll(2)`; otherwise it is registered with the hub for the wait only. `Some(Duration::ZERO)`
/// just checks. A greenlet [`Timeout`](crate::Timeout) ends the wait like `timeout` does.
///
/// # Errors
/// `EBADF` for a descriptor that is not open; a registration error (e.g. `EPERM` for a
/// descriptor epoll cannot watch); the [`LoopExit`](crate::LoopExit) (kind `Other`) when
/// the hub is stopped.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// // Another library's socket: here a std one.
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// assert!(!greenlet::net::wait_readable(a.as_raw_fd(), Some(Duration::from_millis(5)))?);
/// b.write_all(b"x")?;
/// assert!(greenlet::net::wait_readable(a.as_raw_fd(), None)?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "wait_read")]
pub fn wait_readable<S: Selectable>(fd: S, timeout: Option<Duration>) -> io::Result<bool> {
    wait_one(fd.source(), Direction::Read, timeout)
}

/// Parks the calling greenlet until `fd` is writable (or has an error or was shut down), or
/// `timeout` passes; returns whether it is writable. As [`wait_readable`] otherwise.
///
/// # Errors
/// As [`wait_readable`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let (a, _b) = greenlet::net::UnixStream::pair()?;
/// assert!(greenlet::net::wait_writable(&a, Some(Duration::from_secs(1)))?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "wait_write")]
pub fn wait_writable<S: Selectable>(fd: S, timeout: Option<Duration>) -> io::Result<bool> {
    wait_one(fd.source(), Direction::Write, timeout)
}

fn wait_one(src: Source<'_>, dir: Direction, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = deadline_after(timeout);
    let mut pfd = [pollfd(src.fd, dir)];
    if poll_now(&mut pfd)? > 0 {
        return Ok(true);
    }
    if timeout == Some(Duration::ZERO) {
        return Ok(false);
    }
    let temp;
    let reg = match src.io {
        Some(io) => io.registration(src.fd)?,
        None => {
            temp = Registration::new(src.fd)?;
            temp.io()
        }
    };
    loop {
        match reg.wait(dir, deadline) {
            // Registration is edge-triggered and the wake-up may be for another waiter that
            // has taken the data already: check the level.
            Ok(()) => {
                if poll_now(&mut pfd)? > 0 {
                    return Ok(true);
                }
            }
            Err(BlockError::TimedOut) => return Ok(poll_now(&mut pfd)? > 0),
            Err(e) => return Err(super::blocked_error(e, None)),
        }
    }
}

/// A `pollfd` asking about `dir`.
pub(crate) fn pollfd(fd: RawFd, dir: Direction) -> libc::pollfd {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Whether a polled descriptor is ready for what it asked (errors and hang-ups count as
/// ready: the next operation reports them).
pub(crate) fn is_ready(p: &libc::pollfd) -> bool {
    p.revents & (p.events | libc::POLLERR | libc::POLLHUP) != 0
}

/// `poll(2)` without waiting: fills in `revents`, returns how many descriptors are ready.
///
/// # Errors
/// `EBADF` when a descriptor is not open (`POLLNVAL`); `poll`'s own errors.
pub(crate) fn poll_now(fds: &mut [libc::pollfd]) -> io::Result<usize> {
    loop {
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds for the
        // duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        return Ok(fds.iter().filter(|p| is_ready(p)).count());
    }
}

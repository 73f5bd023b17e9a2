//! The system calls of the process module that std does not wrap: `pidfd_open`, and the
//! `O_NONBLOCK` flag of a pipe's descriptor. The module's only `unsafe`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// Whether `GREENLET_NO_PIDFD` is set: every child is then watched through `SIGCHLD`, as on a
/// kernel without `pidfd_open` (older than 5.3) or under a seccomp filter that refuses it.
fn pidfd_disabled() -> bool {
    static DISABLED: OnceLock<bool> = OnceLock::new();
    *DISABLED.get_or_init(|| std::env::var_os("GREENLET_NO_PIDFD").is_some_and(|v| v != "0"))
}

/// A process descriptor for `pid`, readable once the process has exited.
///
/// # Errors
/// `ENOSYS` on kernels older than 5.3, `EPERM` under a filter that refuses the call,
/// `Unsupported` when `GREENLET_NO_PIDFD` asks for the fallback; `pidfd_open`'s own errors.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    if pidfd_disabled() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "pidfd_open disabled by GREENLET_NO_PIDFD",
        ));
    }
    // SAFETY: pidfd_open takes a pid and a flags word and returns a new descriptor or -1; it
    // touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call succeeded, so `fd` is a new open descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sets or clears `O_NONBLOCK` on `fd` (a pipe end the caller owns; the flag belongs to the open
/// file description, which the child's end does not share).
pub(crate) fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL on a descriptor the caller keeps open for the call; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above, F_SETFL with an int argument.
    if wanted != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

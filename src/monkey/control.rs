//! The hooks that change a descriptor's options (`fcntl`, `ioctl(FIONBIO)`, `setsockopt`):
//! they make the call and keep the table's view of the user's options true. They never park
//! and never allocate, so they are as async-signal-safe as libc's.
//!
//! libc declares `fcntl` and `ioctl` variadic. Their hooks take the optional argument as one
//! word: on x86-64 and AArch64 Linux a variadic integer or pointer argument travels in the
//! same register as a fixed one, and calls that pass none leave a value the kernel ignores.

use libc::{c_int, c_ulong, c_void, socklen_t};

use super::fdtable::{self, Dir};
use super::io::duplicated;
use super::sys;

/// `SO_RCVTIMEO` / `SO_SNDTIMEO` with 64-bit time (asm-generic's `SO_*TIMEO_NEW`), which a
/// libc built with 64-bit `time_t` on a 32-bit-time ABI passes; same layout here.
const SO_RCVTIMEO_NEW: c_int = 66;
const SO_SNDTIMEO_NEW: c_int = 67;

/// libc's `fcntl`. On a listener the hooks made non-blocking, `F_GETFL` and `F_SETFL` show and
/// change the user's view of `O_NONBLOCK` while the file stays non-blocking.
///
/// # Safety
/// libc's contract for `fcntl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    match cmd {
        libc::F_GETFL => {
            let r = sys::fcntl(fd, cmd, arg);
            match fdtable::slot(fd) {
                Some(slot) if r >= 0 && slot.is_flipped() && slot.nonblocking() == Some(false) => {
                    r & !libc::O_NONBLOCK
                }
                _ => r,
            }
        }
        libc::F_SETFL => {
            let nb = arg as c_int & libc::O_NONBLOCK != 0;
            let slot = fdtable::slot(fd);
            if let Some(slot) = slot.filter(|s| s.is_flipped()) {
                let r = sys::fcntl(fd, cmd, arg | libc::O_NONBLOCK as usize);
                if r == 0 {
                    slot.set_nonblocking(nb);
                }
                return r;
            }
            let r = sys::fcntl(fd, cmd, arg);
            if r == 0 {
                nonblocking_changed(fd, nb);
            }
            r
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => duplicated(fd, sys::fcntl(fd, cmd, arg)),
        _ => sys::fcntl(fd, cmd, arg),
    }
}

/// Records a successful change of `O_NONBLOCK` made through `fd`.
fn nonblocking_changed(fd: c_int, nb: bool) {
    match fdtable::slot(fd) {
        Some(slot) => slot.option_changed(|s| s.set_nonblocking(nb)),
        None => fdtable::bump_epoch(),
    }
}

/// libc's `ioctl`; `FIONBIO` (std's `set_nonblocking`) is tracked as `F_SETFL` is.
///
/// # Safety
/// libc's contract for `ioctl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if request != libc::FIONBIO || arg.is_null() {
        return sys::ioctl(fd, request, arg);
    }
    // SAFETY: FIONBIO takes a pointer to an int (libc's contract); checked non-null.
    let nb = unsafe { *arg.cast::<c_int>() } != 0;
    if let Some(slot) = fdtable::slot(fd).filter(|s| s.is_flipped()) {
        let mut on: c_int = 1;
        let r = sys::ioctl(fd, request, (&raw mut on).cast());
        if r == 0 {
            slot.set_nonblocking(nb);
        }
        return r;
    }
    let r = sys::ioctl(fd, request, arg);
    if r == 0 {
        nonblocking_changed(fd, nb);
    }
    r
}

/// libc's `setsockopt`; the socket timeouts are tracked, since a blocking call honours them.
///
/// # Safety
/// libc's contract for `setsockopt`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let r = sys::setsockopt(fd, level, name, val, len);
    if r == 0 && level == libc::IPPROTO_TCP && name == libc::TCP_ULP {
        // An upper layer protocol (kernel TLS) makes reads stop short with data left.
        match fdtable::slot(fd) {
            Some(slot) => slot.option_changed(|s| s.set_plain_tcp(false)),
            None => fdtable::bump_epoch(),
        }
        return r;
    }
    if r != 0 || level != libc::SOL_SOCKET {
        return r;
    }
    let dir = match name {
        libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => Dir::Read,
        libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => Dir::Write,
        _ => return r,
    };
    let t = if !val.is_null() && len as usize >= size_of::<libc::timeval>() {
        // SAFETY: the kernel accepted `val` as a timeval of `len` bytes.
        sys::timeout_of_timeval(unsafe { &*val.cast::<libc::timeval>() })
    } else {
        None
    };
    match fdtable::slot(fd) {
        Some(slot) => slot.option_changed(|s| s.set_timeout(dir, t)),
        None => fdtable::bump_epoch(),
    }
    r
}

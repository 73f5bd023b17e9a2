//! The real calls behind the hooks: raw system calls, never this crate's own symbols (calling
//! `libc::read` from here would call the `read` hook again), plus libc's own functions, found
//! with `dlsym(RTLD_NEXT)`, where glibc does more than the system call (`sigaction` supplies
//! the signal return trampoline, `getaddrinfo` is a whole resolver).
//!
//! Every function here is a thin wrapper with libc's calling convention: `-1` (or the error
//! number, for the `clock_nanosleep` family) and `errno` on failure. All are async-signal-safe
//! except [`real`], which calls `dlsym` the first time a symbol is looked up.

use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use libc::{c_int, c_long, c_uint, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

/// The calling thread's `errno`.
#[inline]
pub(super) fn errno() -> c_int {
    // SAFETY: `__errno_location` returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
#[inline]
pub(super) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Returns `-1` with `errno` set to `e`: a failed libc call.
#[inline]
pub(super) fn fail(e: c_int) -> ssize_t {
    set_errno(e);
    -1
}

/// A system call with up to six word-sized arguments; `-1` and `errno` on failure.
macro_rules! syscall {
    ($nr:expr $(, $arg:expr)* $(,)?) => {
        // SAFETY: the wrappers below pass their callers' arguments through unchanged; the
        // kernel checks every pointer it is given (EFAULT), so a bad one is an error, not
        // undefined behaviour on our side.
        unsafe { libc::syscall($nr $(, $arg as c_long)*) }
    };
}

pub(super) fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    syscall!(libc::SYS_read, fd, buf, n) as ssize_t
}

pub(super) fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    syscall!(libc::SYS_write, fd, buf, n) as ssize_t
}

pub(super) fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    syscall!(libc::SYS_readv, fd, iov, cnt) as ssize_t
}

pub(super) fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    syscall!(libc::SYS_writev, fd, iov, cnt) as ssize_t
}

/// `preadv2(fd, iov, cnt, -1, flags)`: at the file position, with per-call flags
/// (`RWF_NOWAIT`). On 64-bit Linux the offset is passed whole in the low word.
pub(super) fn preadv2(fd: c_int, iov: *const iovec, cnt: c_int, flags: c_int) -> ssize_t {
    syscall!(libc::SYS_preadv2, fd, iov, cnt, -1i64, 0, flags) as ssize_t
}

pub(super) fn pwritev2(fd: c_int, iov: *const iovec, cnt: c_int, flags: c_int) -> ssize_t {
    syscall!(libc::SYS_pwritev2, fd, iov, cnt, -1i64, 0, flags) as ssize_t
}

pub(super) fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    syscall!(libc::SYS_recvfrom, fd, buf, n, flags, addr, len) as ssize_t
}

pub(super) fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    syscall!(libc::SYS_sendto, fd, buf, n, flags, addr, len) as ssize_t
}

pub(super) fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    syscall!(libc::SYS_recvmsg, fd, msg, flags) as ssize_t
}

pub(super) fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    syscall!(libc::SYS_sendmsg, fd, msg, flags) as ssize_t
}

pub(super) fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    syscall!(libc::SYS_accept4, fd, addr, len, flags) as c_int
}

pub(super) fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    syscall!(libc::SYS_connect, fd, addr, len) as c_int
}

pub(super) fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    syscall!(libc::SYS_socket, domain, ty, protocol) as c_int
}

pub(super) fn close(fd: c_int) -> c_int {
    syscall!(libc::SYS_close, fd) as c_int
}

pub(super) fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    syscall!(libc::SYS_close_range, first, last, flags) as c_int
}

pub(super) fn dup(fd: c_int) -> c_int {
    syscall!(libc::SYS_dup, fd) as c_int
}

pub(super) fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    syscall!(libc::SYS_dup3, old, new, flags) as c_int
}

pub(super) fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    syscall!(libc::SYS_fcntl, fd, cmd, arg) as c_int
}

pub(super) fn ioctl(fd: c_int, request: libc::c_ulong, arg: *mut c_void) -> c_int {
    syscall!(libc::SYS_ioctl, fd, request, arg) as c_int
}

pub(super) fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    syscall!(libc::SYS_setsockopt, fd, level, name, val, len) as c_int
}

pub(super) fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    syscall!(libc::SYS_getsockopt, fd, level, name, val, len) as c_int
}

/// `ppoll` with a relative timeout (`None`: forever) and an optional signal mask.
pub(super) fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    timeout: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    // The kernel writes the time left into the timespec: give it a copy.
    let mut ts = if timeout.is_null() {
        None
    } else {
        // SAFETY: the caller passes a valid timespec or null.
        Some(unsafe { *timeout })
    };
    let tsp = ts
        .as_mut()
        .map_or(std::ptr::null_mut(), |t| t as *mut libc::timespec);
    syscall!(libc::SYS_ppoll, fds, n, tsp, sigmask, SIGSET_BYTES) as c_int
}

/// `poll(fds, n, ms)` as the kernel's `ppoll`.
pub(super) fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, ms: c_int) -> c_int {
    if ms < 0 {
        return ppoll(fds, n, std::ptr::null(), std::ptr::null());
    }
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    ppoll(fds, n, &ts, std::ptr::null())
}

/// The kernel's `pselect6`: the timespec is updated with the time left; the signal mask is
/// passed as the kernel's `{ mask, size }` pair.
pub(super) fn pselect6(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *mut libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let pair: [usize; 2] = [sigmask as usize, SIGSET_BYTES];
    let pair_ptr = if sigmask.is_null() {
        std::ptr::null()
    } else {
        pair.as_ptr()
    };
    syscall!(libc::SYS_pselect6, nfds, r, w, e, timeout, pair_ptr) as c_int
}

pub(super) fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    ms: c_int,
    sigmask: *const libc::sigset_t,
) -> c_int {
    syscall!(
        libc::SYS_epoll_pwait,
        epfd,
        events,
        max,
        ms,
        sigmask,
        SIGSET_BYTES
    ) as c_int
}

pub(super) fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    syscall!(libc::SYS_nanosleep, req, rem) as c_int
}

/// `clock_nanosleep`: returns the error number itself and leaves `errno` alone, as libc's.
pub(super) fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let saved = errno();
    let r = syscall!(libc::SYS_clock_nanosleep, clock, flags, req, rem);
    let e = if r < 0 { errno() } else { 0 };
    set_errno(saved);
    e
}

/// The size of the kernel's signal set, which the `*_pwait` and `p*` calls take.
const SIGSET_BYTES: usize = 8;

/// `poll(2)` on one descriptor without waiting: its `revents`, or `errno` on failure.
pub(super) fn poll_now(fd: c_int, events: i16) -> Result<i16, c_int> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let r = poll(&mut p, 1, 0);
        if r >= 0 {
            return Ok(p.revents);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Blocks the thread until `fd` is ready for `events` or `timeout` passes (pass-through
/// emulation of a blocking call on a descriptor the hooks made non-blocking).
pub(super) fn poll_wait(fd: c_int, events: i16, timeout: Option<Duration>) -> c_int {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    match timeout {
        None => ppoll(&mut p, 1, std::ptr::null(), std::ptr::null()),
        Some(t) => {
            let ts = timespec_of(t);
            ppoll(&mut p, 1, &ts, std::ptr::null())
        }
    }
}

/// `t` as a `timespec`, saturating.
pub(super) fn timespec_of(t: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    }
}

/// A `timespec` as a duration; `None` when it is invalid (negative, or nanoseconds out of
/// range), which the sleeping calls report as `EINVAL`.
pub(super) fn duration_of(ts: &libc::timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// A socket timeout as `SO_RCVTIMEO` holds it: `None` for zero (no timeout).
pub(super) fn timeout_of_timeval(tv: &libc::timeval) -> Option<Duration> {
    (tv.tv_sec > 0 || tv.tv_usec > 0).then(|| {
        Duration::new(
            tv.tv_sec.max(0) as u64,
            tv.tv_usec.clamp(0, 999_999) as u32 * 1000,
        )
    })
}

/// Libc's own definition of `name` (the next one after this binary's), looked up once.
///
/// Not async-signal-safe the first time (it calls `dlsym`); callers that may run in a signal
/// handler resolve their symbol beforehand.
pub(super) fn real(slot: &AtomicPtr<c_void>, name: &CStr) -> *mut c_void {
    let p = slot.load(Ordering::Acquire);
    if !p.is_null() {
        return p;
    }
    // SAFETY: `name` is a NUL-terminated string; RTLD_NEXT asks for the definition after the
    // object that makes the call, which for this crate's hooks is libc's.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    slot.store(p, Ordering::Release);
    p
}

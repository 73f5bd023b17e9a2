//! The waiting hooks: `poll`, `ppoll`, `select`, `pselect`, `epoll_wait` and `epoll_pwait`
//! park a cooperating greenlet on every descriptor they watch (an epoll descriptor is itself
//! pollable), so a library running its own small event loop cooperates too.
//!
//! Each asks the kernel first with a zero timeout; only when nothing is ready does the greenlet
//! park, and after every wake-up the kernel is asked again, so what the call returns is always
//! the kernel's own answer. A call with a signal mask passes through: the mask could not be
//! kept while other greenlets run.

use std::time::{Duration, Instant};

use libc::{c_int, fd_set, pollfd, sigset_t, timespec, timeval};

use super::cooperating;
use super::fdtable::{self, Dir};
use super::sys::{self, fail};
use super::wait::{self, Blocked, blocking, guarded};

/// The descriptors and directions a set of `pollfd`s waits for.
fn interests(fds: &[pollfd]) -> Vec<(c_int, u32, Dir)> {
    let mut out = Vec::with_capacity(fds.len());
    for p in fds.iter().filter(|p| p.fd >= 0) {
        let generation = fdtable::slot(p.fd).map_or(0, |s| s.generation());
        let read = p.events & (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) != 0;
        let write = p.events & (libc::POLLOUT | libc::POLLWRBAND) != 0;
        if read || !write {
            // Hang-ups and errors wake readers too.
            out.push((p.fd, generation, Dir::Read));
        }
        if write {
            out.push((p.fd, generation, Dir::Write));
        }
    }
    out
}

/// The cooperative loop shared by every waiting call: `check()` asks the kernel without
/// waiting (`> 0` ready, `< 0` error, `0` nothing); `block(left)` is the plain blocking call.
fn wait_loop(
    name: &'static str,
    fds: Vec<(c_int, u32, Dir)>,
    timeout: Option<Duration>,
    mut check: impl FnMut() -> c_int,
    block: impl FnOnce(Option<Duration>) -> c_int,
) -> c_int {
    let first = check();
    if first != 0 || timeout == Some(Duration::ZERO) {
        return first;
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let wait_result = loop {
        // Descriptors that are not tracked, or no descriptor at all: wait on the timer alone.
        let r = if fds.is_empty() {
            match deadline {
                Some(d) => wait::sleep_until(d).map_err(|b| match b {
                    Blocked::Green if Instant::now() >= d => Blocked::Own,
                    b => b,
                }),
                None => Err(Blocked::Impossible),
            }
        } else {
            wait::wait_for(&fds, deadline)
        };
        match r {
            Ok(()) => {
                let n = check();
                if n != 0 {
                    return n;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return 0;
                }
            }
            Err(e) => break e,
        }
    };
    match wait_result {
        // The call's own timeout: the kernel's last word.
        Blocked::Own => check(),
        Blocked::Impossible => {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            blocking(name, fds.first().map_or(-1, |f| f.0), || block(left))
        }
        b => fail(b.errno(0)) as c_int,
    }
}

/// A `timespec` timeout (null: none); `Err` when it is invalid.
fn timeout_of(ts: *const timespec) -> Result<Option<Duration>, ()> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: a non-null `ts` is readable (libc's contract).
    sys::duration_of(unsafe { &*ts }).map(Some).ok_or(())
}

fn millis(ms: c_int) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

fn poll_coop(
    fds: *mut pollfd,
    n: libc::nfds_t,
    timeout: Option<Duration>,
    name: &'static str,
) -> c_int {
    guarded(-1, || {
        let list: &[pollfd] = if fds.is_null() || n == 0 {
            &[]
        } else {
            // SAFETY: `fds` holds `n` pollfds (libc's contract).
            unsafe { std::slice::from_raw_parts(fds, n as usize) }
        };
        let interests = interests(list);
        wait_loop(
            name,
            interests,
            timeout,
            || sys::poll(fds, n, 0),
            |left| match left {
                None => sys::poll(fds, n, -1),
                Some(t) => sys::ppoll(fds, n, &sys::timespec_of(t), std::ptr::null()),
            },
        )
    })
}

/// libc's `poll`.
///
/// # Safety
/// libc's contract for `poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: libc::nfds_t, ms: c_int) -> c_int {
    if !cooperating() || ms == 0 {
        return sys::poll(fds, n, ms);
    }
    poll_coop(fds, n, millis(ms), "poll")
}

/// libc's `ppoll`; with a signal mask it passes through.
///
/// # Safety
/// libc's contract for `ppoll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: libc::nfds_t,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    if !cooperating() {
        return sys::ppoll(fds, n, ts, sigmask);
    }
    if !sigmask.is_null() {
        return blocking("ppoll", -1, || sys::ppoll(fds, n, ts, sigmask));
    }
    let Ok(timeout) = timeout_of(ts) else {
        return fail(libc::EINVAL) as c_int;
    };
    if timeout == Some(Duration::ZERO) {
        return sys::ppoll(fds, n, ts, sigmask);
    }
    poll_coop(fds, n, timeout, "ppoll")
}

/// The `(fd, direction)` pairs of three fd_sets.
fn set_interests(nfds: c_int, sets: [*mut fd_set; 3]) -> Vec<(c_int, u32, Dir)> {
    let mut out = Vec::new();
    for fd in 0..nfds.clamp(0, libc::FD_SETSIZE as c_int) {
        for (i, set) in sets.iter().enumerate() {
            // SAFETY: a non-null set is a valid fd_set (libc's contract); fd < FD_SETSIZE.
            if !set.is_null() && unsafe { libc::FD_ISSET(fd, *set) } {
                let generation = fdtable::slot(fd).map_or(0, |s| s.generation());
                out.push((fd, generation, if i == 1 { Dir::Write } else { Dir::Read }));
            }
        }
    }
    out
}

/// `select`-style call on copies of the caller's sets; copies the result back.
fn select_coop(
    nfds: c_int,
    sets: [*mut fd_set; 3],
    timeout: Option<Duration>,
    name: &'static str,
) -> (c_int, Option<Duration>) {
    let saved: [Option<fd_set>; 3] = sets.map(|s| {
        // SAFETY: a non-null set is a valid fd_set (libc's contract).
        (!s.is_null()).then(|| unsafe { *s })
    });
    let restore = || {
        for (s, v) in sets.iter().zip(saved.iter()) {
            if let Some(v) = v {
                // SAFETY: as above; writing back the caller's own set.
                unsafe { **s = *v };
            }
        }
    };
    let started = Instant::now();
    let interests = set_interests(nfds, sets);
    let r = guarded(-1, || {
        wait_loop(
            name,
            interests,
            timeout,
            || {
                restore();
                let mut zero = timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                sys::pselect6(nfds, sets[0], sets[1], sets[2], &mut zero, std::ptr::null())
            },
            |left| {
                restore();
                let mut ts = left.map(sys::timespec_of);
                let tsp = ts
                    .as_mut()
                    .map_or(std::ptr::null_mut(), |t| t as *mut timespec);
                sys::pselect6(nfds, sets[0], sets[1], sets[2], tsp, std::ptr::null())
            },
        )
    });
    let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
    (r, left)
}

/// libc's `select`; like Linux's, it updates the timeout with the time left.
///
/// # Safety
/// libc's contract for `select`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    let timeout = if tv.is_null() {
        None
    } else {
        // SAFETY: a non-null `tv` is readable and writable (libc's contract).
        let t = unsafe { *tv };
        if t.tv_sec < 0 || !(0..1_000_000).contains(&t.tv_usec) {
            return fail(libc::EINVAL) as c_int;
        }
        Some(Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000))
    };
    if !cooperating() || timeout == Some(Duration::ZERO) {
        let mut ts = timeout.map(sys::timespec_of);
        let tsp = ts
            .as_mut()
            .map_or(std::ptr::null_mut(), |t| t as *mut timespec);
        let n = sys::pselect6(nfds, r, w, e, tsp, std::ptr::null());
        if let Some(ts) = ts.filter(|_| !tv.is_null()) {
            // SAFETY: as above.
            unsafe {
                (*tv).tv_sec = ts.tv_sec;
                (*tv).tv_usec = ts.tv_nsec / 1000;
            }
        }
        return n;
    }
    let (n, left) = select_coop(nfds, [r, w, e], timeout, "select");
    if let Some(left) = left.filter(|_| !tv.is_null()) {
        // SAFETY: as above.
        unsafe {
            (*tv).tv_sec = left.as_secs() as libc::time_t;
            (*tv).tv_usec = left.subsec_micros() as libc::suseconds_t;
        }
    }
    n
}

/// libc's `pselect`; with a signal mask it passes through.
///
/// # Safety
/// libc's contract for `pselect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    let Ok(timeout) = timeout_of(ts) else {
        return fail(libc::EINVAL) as c_int;
    };
    let coop = cooperating();
    if !coop || !sigmask.is_null() || timeout == Some(Duration::ZERO) {
        // pselect leaves the caller's timespec alone.
        let mut copy = timeout.map(sys::timespec_of);
        let tsp = copy
            .as_mut()
            .map_or(std::ptr::null_mut(), |t| t as *mut timespec);
        let call = || sys::pselect6(nfds, r, w, e, tsp, sigmask);
        return if coop && !sigmask.is_null() {
            blocking("pselect", -1, call)
        } else {
            call()
        };
    }
    select_coop(nfds, [r, w, e], timeout, "pselect").0
}

fn epoll_coop(epfd: c_int, events: *mut libc::epoll_event, max: c_int, ms: c_int) -> c_int {
    guarded(-1, || {
        let generation = fdtable::slot(epfd).map_or(0, |s| s.generation());
        wait_loop(
            "epoll_wait",
            vec![(epfd, generation, Dir::Read)],
            millis(ms),
            || sys::epoll_pwait(epfd, events, max, 0, std::ptr::null()),
            |left| {
                let ms = left.map_or(-1, |t| t.as_millis().min(c_int::MAX as u128) as c_int);
                sys::epoll_pwait(epfd, events, max, ms, std::ptr::null())
            },
        )
    })
}

/// libc's `epoll_wait`: the epoll descriptor itself is waited for on the hub.
///
/// # Safety
/// libc's contract for `epoll_wait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    ms: c_int,
) -> c_int {
    if !cooperating() || ms == 0 {
        return sys::epoll_pwait(epfd, events, max, ms, std::ptr::null());
    }
    epoll_coop(epfd, events, max, ms)
}

/// libc's `epoll_pwait`; with a signal mask it passes through.
///
/// # Safety
/// libc's contract for `epoll_pwait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    ms: c_int,
    sigmask: *const sigset_t,
) -> c_int {
    if !cooperating() || ms == 0 {
        return sys::epoll_pwait(epfd, events, max, ms, sigmask);
    }
    if !sigmask.is_null() {
        return blocking("epoll_pwait", epfd, || {
            sys::epoll_pwait(epfd, events, max, ms, sigmask)
        });
    }
    epoll_coop(epfd, events, max, ms)
}

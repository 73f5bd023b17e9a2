//! The sleeping hooks: `nanosleep`, `clock_nanosleep`, `usleep` and `sleep` park a cooperating
//! greenlet on a hub timer.
//!
//! A greenlet `Timeout` ends a hooked sleep early, reported as an interruption with nothing
//! left to sleep (`EINTR`, remaining time zero): the only early end std's `thread::sleep`
//! accepts (it asserts `EINTR` and sleeps the remainder, here none). A kill does the same.

use std::time::{Duration, Instant};

use libc::{c_int, c_uint, timespec};

use super::cooperating;
use super::sys::{self, fail};
use super::wait::{self, Blocked, blocking, guarded};

/// Sleeps for `d` on the hub; `Err(errno)` when it ends early or cannot park.
fn park_for(d: Duration) -> Result<(), Blocked> {
    if d.is_zero() {
        return Ok(());
    }
    match Instant::now().checked_add(d) {
        Some(deadline) => wait::sleep_until(deadline),
        None => Err(Blocked::Impossible),
    }
}

fn zero(rem: *mut timespec) {
    if !rem.is_null() {
        // SAFETY: a non-null `rem` is writable (libc's contract).
        unsafe {
            *rem = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
}

/// libc's `nanosleep`.
///
/// # Safety
/// libc's contract for `nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if !cooperating() || req.is_null() {
        return sys::nanosleep(req, rem);
    }
    guarded(-1, || {
        // SAFETY: a non-null `req` is readable (libc's contract).
        let Some(d) = sys::duration_of(unsafe { &*req }) else {
            return fail(libc::EINVAL) as c_int;
        };
        match park_for(d) {
            Ok(()) => 0,
            Err(Blocked::Impossible) => blocking("nanosleep", -1, || sys::nanosleep(req, rem)),
            Err(_) => {
                zero(rem);
                fail(libc::EINTR) as c_int
            }
        }
    })
}

/// libc's `clock_nanosleep` (returns the error number, as libc's). CPU-time clocks pass
/// through: the hub's timers measure wall time.
///
/// # Safety
/// libc's contract for `clock_nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let wall = matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    );
    if !cooperating() || req.is_null() || !wall {
        return sys::clock_nanosleep(clock, flags, req, rem);
    }
    let saved = sys::errno();
    let r = guarded(libc::ECANCELED, || {
        // SAFETY: a non-null `req` is readable (libc's contract).
        let Some(t) = sys::duration_of(unsafe { &*req }) else {
            return libc::EINVAL;
        };
        let d = if flags & libc::TIMER_ABSTIME != 0 {
            let mut now = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `now` is writable; clock_gettime is not hooked.
            unsafe { libc::clock_gettime(clock, &mut now) };
            t.saturating_sub(sys::duration_of(&now).unwrap_or_default())
        } else {
            t
        };
        match park_for(d) {
            Ok(()) => 0,
            Err(Blocked::Impossible) => blocking("clock_nanosleep", -1, || {
                sys::clock_nanosleep(clock, flags, req, rem)
            }),
            Err(_) => {
                if flags & libc::TIMER_ABSTIME == 0 {
                    zero(rem);
                }
                libc::EINTR
            }
        }
    });
    sys::set_errno(saved);
    r
}

/// libc's `usleep`.
///
/// # Safety
/// libc's contract for `usleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    let ts = sys::timespec_of(Duration::from_micros(us as u64));
    // SAFETY: a valid timespec and no remainder pointer.
    unsafe { nanosleep(&ts, std::ptr::null_mut()) }
}

/// libc's `sleep`: returns the seconds left when interrupted.
///
/// # Safety
/// libc's contract for `sleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let ts = timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let mut rem = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespecs.
    if unsafe { nanosleep(&ts, &mut rem) } == 0 {
        return 0;
    }
    (rem.tv_sec as c_uint).saturating_add((rem.tv_nsec > 0) as c_uint)
}

//! Knowing when a hook runs inside a signal handler: once patched, every handler installed
//! with `sigaction` or `signal` is wrapped in [`trampoline`], which counts how deep the thread
//! is in handlers (`super::SIGNAL_DEPTH`) around the user's handler. A hooked call made in a
//! handler then goes straight to the kernel: it would be unsound to park or to touch the hub's
//! state from a handler that interrupted the greenlet using it.
//!
//! The kernel sees the trampoline; everyone else sees their own handler: `sigaction` reports
//! the user's handler and flags as the old action, so code that saves and later restores or
//! chains to the previous handler keeps working. libc's `sigaction` itself (which supplies the
//! signal return trampoline on x86-64) does the installing.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use libc::{c_int, c_void, sighandler_t, siginfo_t};

use super::sys::{self, fail};

/// Signals are numbered 1 to 64 on Linux.
const NSIG: usize = 65;

type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

static REAL_SIGACTION: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// The user's handler of each wrapped signal, and whether it takes `siginfo`.
static HANDLERS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
static TAKES_INFO: [AtomicBool; NSIG] = [const { AtomicBool::new(false) }; NSIG];

/// Resolves libc's `sigaction` ahead of time.
pub(super) fn prepare() {
    sys::real(&REAL_SIGACTION, c"sigaction");
}

fn real() -> Option<SigactionFn> {
    let p = sys::real(&REAL_SIGACTION, c"sigaction");
    // SAFETY: libc's `sigaction` has this signature; null means not found.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, SigactionFn>(p) })
}

/// What the kernel runs for a wrapped signal.
extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let depth = &super::SIGNAL_DEPTH;
    depth.set(depth.get() + 1);
    let i = sig as usize;
    if i < NSIG {
        let h = HANDLERS[i].load(Ordering::Acquire);
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            if TAKES_INFO[i].load(Ordering::Acquire) {
                // SAFETY: the user installed `h` with SA_SIGINFO, so it has this signature.
                let f = unsafe {
                    std::mem::transmute::<usize, extern "C" fn(c_int, *mut siginfo_t, *mut c_void)>(
                        h,
                    )
                };
                f(sig, info, ctx);
            } else {
                // SAFETY: the user installed `h` without SA_SIGINFO: a one-argument handler.
                let f = unsafe { std::mem::transmute::<usize, extern "C" fn(c_int)>(h) };
                f(sig);
            }
        }
    }
    depth.set(depth.get() - 1);
}

fn trampoline_addr() -> usize {
    trampoline as extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as usize
}

/// libc's `sigaction`. Once patched, a handler is installed behind the trampoline; the old
/// action reported is always the user's own.
///
/// # Safety
/// libc's contract for `sigaction`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let Some(real) = real() else {
        return fail(libc::ENOSYS) as c_int;
    };
    let i = sig as usize;
    if !(1..NSIG).contains(&i) {
        // SAFETY: the caller's arguments; libc reports the bad signal number.
        return unsafe { real(sig, act, old) };
    }
    let before = (
        HANDLERS[i].load(Ordering::Acquire),
        TAKES_INFO[i].load(Ordering::Acquire),
    );
    // SAFETY: all-zero is a valid sigaction to be overwritten.
    let mut prev: libc::sigaction = unsafe { std::mem::zeroed() };
    let wrap = !act.is_null() && super::is_patched() && {
        // SAFETY: a non-null `act` is a valid sigaction (libc's contract).
        let h = unsafe { (*act).sa_sigaction };
        h != libc::SIG_DFL && h != libc::SIG_IGN && h != trampoline_addr()
    };
    let r = if wrap {
        // SAFETY: as above.
        let mut a = unsafe { *act };
        HANDLERS[i].store(a.sa_sigaction, Ordering::Release);
        TAKES_INFO[i].store(a.sa_flags & libc::SA_SIGINFO != 0, Ordering::Release);
        a.sa_sigaction = trampoline_addr();
        a.sa_flags |= libc::SA_SIGINFO;
        // SAFETY: a valid action and a writable old-action buffer.
        unsafe { real(sig, &a, &mut prev) }
    } else {
        // SAFETY: the caller's action (or null) and a writable old-action buffer.
        unsafe { real(sig, act, &mut prev) }
    };
    if r != 0 {
        if wrap {
            HANDLERS[i].store(before.0, Ordering::Release);
            TAKES_INFO[i].store(before.1, Ordering::Release);
        }
        return r;
    }
    if prev.sa_sigaction == trampoline_addr() {
        prev.sa_sigaction = before.0;
        if before.1 {
            prev.sa_flags |= libc::SA_SIGINFO;
        } else {
            prev.sa_flags &= !libc::SA_SIGINFO;
        }
    }
    if !old.is_null() {
        // SAFETY: a non-null `old` is writable (libc's contract).
        unsafe { *old = prev };
    }
    r
}

/// libc's `signal` (BSD semantics, as glibc's: `SA_RESTART`, the signal blocked while its
/// handler runs), installed through [`sigaction`].
///
/// # Safety
/// libc's contract for `signal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: all-zero is a valid sigaction; the set functions get valid pointers.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act.sa_mask` is a valid sigset to fill.
    unsafe {
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaddset(&mut act.sa_mask, sig);
    }
    // SAFETY: all-zero is a valid sigaction to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid action and old-action pointers.
    if unsafe { sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

/// Wraps the handlers installed before [`super::patch_all`] (std's own `SIGSEGV`/`SIGBUS`
/// handlers, ...).
pub(super) fn wrap_installed() {
    let Some(real) = real() else { return };
    for sig in 1..NSIG as c_int {
        // SAFETY: all-zero is a valid sigaction to be overwritten.
        let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: querying only (null action), into a writable buffer.
        if unsafe { real(sig, std::ptr::null(), &mut cur) } != 0 {
            continue;
        }
        let h = cur.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN && h != trampoline_addr() {
            // SAFETY: re-installing the action just read, through the wrapping hook.
            unsafe { sigaction(sig, &cur, std::ptr::null_mut()) };
        }
    }
}

//! The greenlet state of one thread (its "runtime" below; not the multi-hub
//! [`Runtime`](crate::Runtime), which starts threads that each have one): which greenlet runs,
//! the thread's main and hub greenlets, the list of its coroutine greenlets, and the end of all
//! that at thread exit.
//!
//! The state lives in const-initialised thread-locals that have no destructor (plain cells of
//! raw pointers), so it can be read at any time, during thread exit included: reading the
//! running greenlet is one load on every switch, and the stack-overflow signal handler reads it
//! too. The runtime owns one strong count on each of its two root greenlets (main and hub),
//! held as raw pointers in [`MAIN`] and [`HUB`].
//!
//! # Thread exit
//!
//! A thread-local guard whose first use comes right after the stack pool's runs [`teardown`]
//! when the thread's thread-locals are destroyed (in the reverse order of their first use, so
//! the teardown runs before the stack pool goes). The teardown destroys every coroutine greenlet
//! of the thread that has not finished (parked, suspended or never started: each unwinds, its
//! destructors run, and its stack goes back to the pool, which then returns every slab to the
//! OS), drops main's greenlet-locals, drains the hub's queues, and frees the hub and the roots.
//! At process exit (the main thread's teardown, which only `exit` runs) suspended greenlets are
//! abandoned instead: their stacks are leaked with the process, not unwound, as std leaves other
//! threads' stacks, so a process with a million parked greenlets exits at once instead of
//! spending seconds unwinding them.
//! From the moment it starts, the thread is [`Phase::Exiting`]: switches are refused, blocking
//! calls fail at once, and spawned greenlets never start.
//!
//! Code that runs later still (the destructor of a thread-local first used before the runtime)
//! may call into the crate again: a fresh runtime is created for it, still `Exiting`, and is torn
//! down by a POSIX thread-specific-data destructor, which runs after every thread-local
//! destructor (and runs again if it is armed again, up to the system's limit).
//!
//! This is one of the few modules with `unsafe`: the raw pointers above, and the
//! thread-specific-data key.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::OnceLock;

use crate::greenlet::{Greenlet, Inner, Kind, State};
use crate::sched::{Sched, Scheduler};

/// Where a thread's runtime is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not created yet: the first use creates it.
    Unborn,
    /// Running.
    Live,
    /// The thread is exiting: the runtime is being torn down, or has been. Nothing can switch,
    /// so blocking calls fail at once and new greenlets never start.
    Exiting,
}

thread_local! {
    /// The running greenlet. Kept alive by whoever resumed it (the dispatch loop's `target`, or
    /// the runtime, for main) for as long as it is current; null before the runtime exists and
    /// after it is torn down.
    pub(crate) static CURRENT: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// The main and hub greenlets of this thread; each pointer owns one strong count.
    pub(crate) static MAIN: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    pub(crate) static HUB: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    static PHASE: Cell<Phase> = const { Cell::new(Phase::Unborn) };
    /// The most recently created coroutine greenlet still allocated: the head of a list linked
    /// through [`Links`], which the teardown walks.
    static COROUTINES: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// Runs the teardown when the thread's thread-locals are destroyed.
    static EXIT: ExitGuard = const { ExitGuard };
}

/// Whether the thread is exiting (its runtime is being torn down, or has been).
#[inline]
pub(crate) fn is_exiting() -> bool {
    PHASE.get() == Phase::Exiting
}

/// Creates this thread's runtime if it does not exist: at first use, or again for code that
/// runs after the teardown (then it stays [`Phase::Exiting`]).
#[cold]
pub(crate) fn init() {
    if !MAIN.get().is_null() {
        return;
    }
    match PHASE.get() {
        Phase::Unborn | Phase::Live => {
            crate::stack::install_overflow_handler();
            crate::debug::install_once();
            // Thread-locals are destroyed in the reverse order of their first use: touching the
            // stack pool first makes it outlive the teardown, which gives every stack back.
            crate::stack::touch_pool();
            create_roots();
            PHASE.set(Phase::Live);
            if EXIT.try_with(|_| ()).is_err() {
                // Created by a thread-local destructor after ours ran: tear down later.
                PHASE.set(Phase::Exiting);
                arm_late_teardown();
            }
        }
        Phase::Exiting => {
            create_roots();
            arm_late_teardown();
        }
    }
}

fn create_roots() {
    let main = Inner::new_root(Kind::Main);
    let hub = Inner::new_root(Kind::Hub);
    let main = Rc::into_raw(main);
    CURRENT.set(main);
    MAIN.set(main);
    HUB.set(Rc::into_raw(hub));
}

/// Links of the list of a thread's coroutine greenlets, kept in each [`Inner`]. The list is
/// the thread's one registry of greenlets: the teardown walks it, and so does `debug::dump`.
#[derive(Debug, Default)]
pub(crate) struct Links {
    prev: Cell<*const Inner>,
    next: Cell<*const Inner>,
}

/// Adds a new coroutine greenlet to this thread's list.
pub(crate) fn register(g: &Greenlet) {
    let p = g.as_ptr();
    let head = COROUTINES.get();
    g.inner().links.next.set(head);
    if !head.is_null() {
        // SAFETY: every greenlet in the list is allocated: `unregister` takes it out first thing
        // in its destructor. Greenlets never leave their thread, so the list is this thread's.
        unsafe { (*head).links.prev.set(p) };
    }
    COROUTINES.set(p);
}

/// Takes a greenlet out of this thread's list (from its destructor).
pub(crate) fn unregister(inner: &Inner) {
    let (prev, next) = (inner.links.prev.get(), inner.links.next.get());
    if !next.is_null() {
        // SAFETY: as in `register`: listed greenlets are allocated.
        unsafe { (*next).links.prev.set(prev) };
    }
    if prev.is_null() {
        if std::ptr::eq(COROUTINES.get(), inner) {
            COROUTINES.set(next);
        }
    } else {
        // SAFETY: as above.
        unsafe { (*prev).links.next.set(next) };
    }
}

/// Handles on every listed greenlet for which `keep` says yes, newest first.
pub(crate) fn coroutines(mut keep: impl FnMut(&Inner) -> bool) -> Vec<Greenlet> {
    let mut found = Vec::new();
    let mut p = COROUTINES.get();
    while !p.is_null() {
        // SAFETY: listed greenlets are allocated (see `register`); taking a strong count makes
        // a new owned handle, and the count is not zero (the list loses a greenlet before its
        // last count goes).
        let inner = unsafe { &*p };
        if keep(inner) {
            // SAFETY: as above.
            found.push(unsafe { handle_from_ptr(p) });
        }
        p = inner.links.next.get();
    }
    found
}

/// Handles on every listed greenlet that has not finished (started or not).
fn unfinished_coroutines() -> Vec<Greenlet> {
    coroutines(|g| matches!(g.state.get(), State::Unstarted | State::Started))
}

/// A new owned handle from a pointer into a live `Rc<Inner>`.
///
/// # Safety
/// `p` must come from `Rc::as_ptr` (or `Rc::into_raw`) of a greenlet whose strong count is not
/// zero for the duration of the call.
#[inline]
pub(crate) unsafe fn handle_from_ptr(p: *const Inner) -> Greenlet {
    // SAFETY: the caller guarantees `p` points into a live Rc; incrementing the strong count
    // before `from_raw` makes a new owned handle without touching the existing ones.
    unsafe {
        Rc::increment_strong_count(p);
        Greenlet::from_inner(Rc::from_raw(p))
    }
}

/// Drops `value`, logging instead of propagating a panic of its destructor: for values that
/// the runtime drops on nobody's behalf (in the hub, at thread exit, a finished greenlet's
/// value that nobody receives), where a panic must not reach an innocent caller.
pub(crate) fn drop_quietly<T>(value: T, what: &str) {
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        log::error!(
            "greenlet: a destructor panicked while {what}: {}",
            crate::error::Panic::new(p)
        );
    }
}

/// How many rounds the teardown makes before it gives up on destructors that keep spawning,
/// waking or parking things.
const TEARDOWN_ROUNDS: usize = 16;

/// Ends this thread's runtime; see the module docs. Never panics (it runs in thread-local and
/// thread-specific-data destructors, where a panic aborts the process).
fn teardown() {
    PHASE.set(Phase::Exiting);
    for _ in 0..TEARDOWN_ROUNDS {
        if MAIN.get().is_null() && !Sched::exists() {
            return;
        }
        let ended = panic::catch_unwind(end_everything);
        if let Err(p) = ended {
            log::error!(
                "greenlet: tearing down the runtime of an exiting thread failed: {}",
                crate::error::Panic::new(p)
            );
        }
        Sched::free();
        free_roots();
    }
    log::error!("greenlet: destructors kept recreating the runtime of an exiting thread");
}

/// Destroys every unfinished greenlet, drops main's locals and drains the hub, until nothing
/// is left to do.
fn end_everything() {
    let main = MAIN.get();
    if !main.is_null() {
        // The thread's own code runs the teardown.
        CURRENT.set(main);
    }
    if process_is_exiting() {
        for g in unfinished_coroutines() {
            crate::switch::abandon(&g);
        }
    }
    for _ in 0..TEARDOWN_ROUNDS {
        let mut busy = false;
        for g in unfinished_coroutines() {
            busy = true;
            crate::switch::destroy(&g);
            drop_quietly(g, "dropping a greenlet at thread exit");
        }
        let main = MAIN.get();
        // SAFETY: MAIN owns a strong count on main; the scheduler's values for it are cleared
        // through a shared reference.
        if !main.is_null() && Sched::clear_main(unsafe { &*main }) {
            busy = true;
        }
        busy |= Sched::drain();
        if !busy {
            return;
        }
    }
}

/// Whether this teardown is the process's: the main thread's thread-local destructors run only
/// from `exit` (main returned, or `std::process::exit` was called), when every other thread is
/// about to vanish without unwinding too. (A main thread that calls `pthread_exit` while the
/// process goes on is taken for the same; its suspended greenlets' memory is then leaked.)
fn process_is_exiting() -> bool {
    // SAFETY: getpid and gettid have no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t == libc::getpid() }
}

/// Frees the main and hub greenlets (their pointers own a strong count each).
fn free_roots() {
    CURRENT.set(ptr::null());
    for cell in [&MAIN, &HUB] {
        let p = cell.replace(ptr::null());
        if !p.is_null() {
            // SAFETY: the pointer owned one strong count (see `create_roots`), given up here.
            let root = unsafe { Rc::from_raw(p) };
            drop_quietly(root, "dropping the main greenlet at thread exit");
        }
    }
}

/// The thread-local whose destructor tears the runtime down.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        teardown();
    }
}

/// Arms a thread-specific-data destructor that tears down a runtime created after the
/// thread-local teardown ran.
#[cold]
fn arm_late_teardown() {
    static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: plain FFI call with a valid out-pointer and an `extern "C"` destructor that
        // never unwinds (`teardown` catches every panic).
        (unsafe { libc::pthread_key_create(&mut key, Some(late_teardown)) } == 0).then_some(key)
    });
    match key {
        // SAFETY: the key was created above; the value only needs to be non-null for the
        // destructor to run, and is never dereferenced.
        Some(key) => unsafe {
            libc::pthread_setspecific(*key, ptr::NonNull::<u8>::dangling().as_ptr().cast());
        },
        None => log::error!(
            "greenlet: no thread-specific-data key: a runtime used after thread exit is leaked"
        ),
    }
}

extern "C" fn late_teardown(_: *mut libc::c_void) {
    teardown();
}

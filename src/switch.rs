//! The switch core: per-thread state, the trampoline, and the greenlet's root function.
//!
//! corosensei coroutines are asymmetric (resume/suspend). Symmetric `switch` is built by
//! trampolining: every greenlet is resumed from one dispatch loop that runs on the thread's own
//! stack, inside the main greenlet's pending switch. A greenlet that switches suspends with a
//! [`Cmd`] naming its target; the loop resumes the target. When the target is the main greenlet,
//! the loop returns and main's `switch` returns. When it is the hub, the loop asks the hub for
//! the next greenlet to run.
//!
//! This is one of the few modules with `unsafe`: the running greenlet is kept in a
//! const-initialised thread-local raw pointer (cheap to read on every switch, and readable from
//! the stack-overflow signal handler), and each greenlet's coroutine lives in an `UnsafeCell`
//! touched only by the dispatch loop.

use std::cell::{Cell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{GreenletExit, Panic, SwitchError};
use crate::greenlet::{Greenlet, Inner, Kind, State};
use crate::stack::PooledStack;
use crate::value::Value;

/// What a greenlet is resumed with.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A value from `switch(v)`, or the return value of a child.
    Value(Value),
    /// The failure of a child (panic, uncaught throw) or an error for the resumed switch;
    /// boxed because it is rare and large, and every message is moved through the trampoline.
    Failure(Box<SwitchError>),
    /// Raise this payload at the suspension point (throw / kill).
    Throw(Box<dyn std::any::Any + Send>),
    /// A plain hand-over through the hub (a wake-up, a yield): received as `()`. Cheaper than
    /// `Value(Value::new(()))`, which the hub's hot path would build and drop on every switch.
    Wake,
}

impl Msg {
    #[cold]
    pub(crate) fn failure(e: SwitchError) -> Msg {
        Msg::Failure(Box::new(e))
    }
}

/// Why switching is refused during unwinding.
pub(crate) const UNWINDING: &str = "cannot switch or block while unwinding a panic or a kill";

/// What a greenlet suspends with: switch to this target (`None`: the hub, without taking a
/// counted handle on it), delivering this message.
pub(crate) struct Cmd(pub(crate) Option<Greenlet>, pub(crate) Msg);

pub(crate) type Coro = Coroutine<Msg, Cmd, Msg, PooledStack>;
pub(crate) type GYielder = Yielder<Msg, Cmd>;

thread_local! {
    /// The running greenlet. Kept alive by whoever resumed it (the dispatch loop's `target`, or
    /// the runtime's handle on main) for as long as it is current.
    static CURRENT: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// The main and hub greenlets of this thread, cached from [`RUNTIME`] so that the switch
    /// path reads const-initialised thread-locals only. Set when the runtime is created and
    /// cleared when it is destroyed.
    static MAIN: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    static HUB: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// The thread's runtime: owns its main greenlet and hub. Created on first use.
    static RUNTIME: Runtime = Runtime::new();
}

/// The per-thread greenlet runtime.
pub(crate) struct Runtime {
    // Owned only: they are reached through the MAIN and HUB pointers.
    #[allow(dead_code)]
    main: Greenlet,
    #[allow(dead_code)]
    hub: Greenlet,
}

impl Runtime {
    fn new() -> Runtime {
        crate::stack::install_overflow_handler();
        let main = Greenlet::from_inner(Inner::new_root(Kind::Main));
        main.inner().state.set(State::Running);
        let hub = Greenlet::from_inner(Inner::new_root(Kind::Hub));
        CURRENT.set(main.as_ptr());
        MAIN.set(main.as_ptr());
        HUB.set(hub.as_ptr());
        Runtime { main, hub }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // The thread is exiting: nothing may be current any more.
        CURRENT.set(ptr::null());
        MAIN.set(ptr::null());
        HUB.set(ptr::null());
    }
}

/// Creates this thread's runtime if it does not exist yet.
#[cold]
fn init_runtime() {
    RUNTIME.with(|_| ());
}

/// The running greenlet, as a raw pointer; initialises the runtime on first use.
#[inline]
pub(crate) fn current_ptr() -> *const Inner {
    let cur = CURRENT.get();
    if cur.is_null() {
        init_runtime();
        CURRENT.get()
    } else {
        cur
    }
}

/// A new owned handle from a pointer into a live `Rc<Inner>`.
///
/// # Safety
/// `p` must come from `Rc::as_ptr` of a greenlet that is alive for the duration of the call.
#[inline]
unsafe fn handle_from_ptr(p: *const Inner) -> Greenlet {
    // SAFETY: the caller guarantees `p` points into a live Rc; incrementing the strong count
    // before `from_raw` makes a new owned handle without touching the existing ones.
    unsafe {
        Rc::increment_strong_count(p);
        Greenlet::from_inner(Rc::from_raw(p))
    }
}

/// A new handle on the running greenlet.
#[inline]
pub(crate) fn current() -> Greenlet {
    let cur = current_ptr();
    // SAFETY: CURRENT always points into a live `Rc<Inner>`: the greenlet it names is kept alive
    // by the dispatch loop (or the runtime, for main) while it runs.
    unsafe { handle_from_ptr(cur) }
}

/// The kind of the running greenlet.
#[inline]
pub(crate) fn current_kind() -> Kind {
    // SAFETY: see `current`.
    unsafe { (*current_ptr()).kind }
}

/// Whether the hub itself is running (the dispatch loop is in the hub's step). Never creates
/// the runtime, so it is safe during thread exit.
#[inline]
pub(crate) fn in_hub() -> bool {
    let cur = CURRENT.get();
    // SAFETY: a non-null CURRENT points into a live greenlet (see `current`).
    !cur.is_null() && unsafe { (*cur).kind } == Kind::Hub
}

/// Whether no greenlet other than main runs on this thread (its own code, or nothing yet).
/// Never creates the runtime.
#[inline]
pub(crate) fn outside_greenlets() -> bool {
    let cur = CURRENT.get();
    // SAFETY: a non-null CURRENT points into a live greenlet (see `current`).
    cur.is_null() || unsafe { (*cur).kind } == Kind::Main
}

/// Whether a greenlet of this thread's runtime (main included) is running, rather than the hub
/// or nothing (no runtime yet, or destroyed at thread exit). Reads one const-initialised
/// thread-local and an immutable field of a live greenlet: it never creates the runtime and is
/// async-signal-safe, which the `monkey` hooks rely on.
#[cfg(feature = "monkey")]
#[inline]
pub(crate) fn in_greenlet() -> bool {
    let cur = CURRENT.get();
    // SAFETY: a non-null CURRENT points into a live greenlet (see `current`); `kind` never
    // changes after creation.
    !cur.is_null() && unsafe { (*cur).kind } != Kind::Hub
}

/// Runs `f` with the running greenlet, without taking a counted handle on it.
#[cfg(feature = "monkey")]
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Inner) -> R) -> R {
    // SAFETY: CURRENT points into a live greenlet while it runs (see `current`), and `f` cannot
    // switch away with the reference: it is not handed a handle.
    f(unsafe { &*current_ptr() })
}

/// This thread's hub pseudo-greenlet.
#[inline]
pub(crate) fn hub_greenlet() -> Greenlet {
    // SAFETY: runtime_ptr returns a non-null HUB, which is set while the runtime (which owns
    // the hub greenlet) exists.
    unsafe { handle_from_ptr(runtime_ptr(&HUB)) }
}

/// A cached runtime pointer, creating the runtime if needed.
///
/// # Panics
/// During thread exit, once the runtime has been destroyed (std's thread-local access panics
/// cleanly there; the pointer is never null when this returns).
#[inline]
fn runtime_ptr(cell: &'static std::thread::LocalKey<Cell<*const Inner>>) -> *const Inner {
    let p = cell.get();
    if !p.is_null() {
        return p;
    }
    init_runtime();
    let p = cell.get();
    assert!(
        !p.is_null(),
        "the greenlet runtime of this thread has been destroyed"
    );
    p
}

/// This thread's main greenlet.
#[inline]
pub(crate) fn main_greenlet() -> Greenlet {
    // SAFETY: as for `hub_greenlet`, with MAIN.
    unsafe { handle_from_ptr(runtime_ptr(&MAIN)) }
}

/// Identity of the running greenlet for the stack-overflow handler: its id and name bytes.
///
/// Reads only a const-initialised thread-local and immutable fields of the greenlet, so it is
/// async-signal-safe.
pub(crate) fn current_identity_for_signal() -> (u64, &'static [u8]) {
    let cur = CURRENT.get();
    if cur.is_null() {
        return (0, b"");
    }
    // SAFETY: see `current`; the id and name of a greenlet never change after creation, and the
    // greenlet outlives the fault that is being reported (the process aborts right after). The
    // 'static lifetime is a lie confined to that report.
    unsafe {
        let inner = &*cur;
        let name: &[u8] = inner.name.as_deref().map(str::as_bytes).unwrap_or(b"");
        (inner.id, &*(name as *const [u8]))
    }
}

/// Switches from the running greenlet to `target` with `msg`; returns what the running
/// greenlet is resumed with.
#[inline]
pub(crate) fn switch_to(target: Greenlet, msg: Msg) -> Msg {
    switch_to_target(Some(target), msg)
}

/// Switches from the running greenlet to the hub with `msg` (a park or a yield); returns what
/// the running greenlet is resumed with. The hot path of every hand-over through the hub: no
/// counted handle on the hub is taken.
#[inline]
pub(crate) fn switch_to_hub(msg: Msg) -> Msg {
    switch_to_target(None, msg)
}

#[inline]
fn switch_to_target(target: Option<Greenlet>, msg: Msg) -> Msg {
    // The panic count is per thread: a greenlet switched to while another unwinds would run with
    // `thread::panicking()` set, and any panic of its own would abort the process.
    if std::thread::panicking() {
        return Msg::failure(SwitchError::NotAllowed(UNWINDING));
    }
    let cur = current_ptr();
    // SAFETY: `cur` is the live running greenlet (see `current`).
    let cur = unsafe { &*cur };
    match cur.kind {
        Kind::Main => {
            cur.state.set(State::Suspended);
            dispatch(target, msg)
        }
        Kind::Hub => Msg::failure(SwitchError::NotAllowed(
            "the hub itself cannot block or switch",
        )),
        Kind::Coroutine => {
            let yielder = cur.yielder.get();
            debug_assert!(!yielder.is_null());
            // SAFETY: a running coroutine greenlet set `yielder` at its root to the yielder on
            // its own stack, which lives until its root function returns; it is running now, so
            // the root has not returned.
            unsafe { (*yielder).suspend(Cmd(target, msg)) }
        }
    }
}

/// Makes the hub current and asks it for the next greenlet to resume (blocking in its poll if
/// none is ready).
#[inline]
fn enter_hub(msg: Msg) -> (Greenlet, Msg) {
    // The runtime exists: a greenlet is switching.
    CURRENT.set(HUB.get());
    crate::hub::next(msg)
}

/// The trampoline. Runs on the main greenlet's stack; returns when control goes back to main.
/// Kept out of line so that a coroutine's own switch (a plain suspend) stays small. `target`
/// `None` is the hub.
#[inline(never)]
fn dispatch(target: Option<Greenlet>, mut msg: Msg) -> Msg {
    let mut target = match target {
        Some(t) => t,
        None => {
            let (t, m) = enter_hub(msg);
            msg = m;
            t
        }
    };
    loop {
        let inner = target.inner();
        match inner.kind {
            Kind::Main => {
                inner.state.set(State::Running);
                CURRENT.set(target.as_ptr());
                return msg;
            }
            Kind::Hub => {
                // A spawned greenlet that returned (the hub is its parent).
                (target, msg) = enter_hub(msg);
                continue;
            }
            Kind::Coroutine => {}
        }
        if inner.state.get() == State::Dead {
            // Only a parent chain can lead here (explicit switches to the dead are refused):
            // deliver to the nearest live ancestor, as greenlet does.
            target = live_ancestor(&target);
            continue;
        }
        inner.state.set(State::Running);
        CURRENT.set(target.as_ptr());
        // SAFETY: only the dispatch loop touches `coro`, it runs on one thread and is not
        // re-entered while a coroutine runs (coroutines suspend instead of dispatching).
        let coro = unsafe { &mut *inner.coro.get() };
        let Some(co) = coro.as_mut() else {
            unreachable!("a live coroutine greenlet always owns its coroutine")
        };
        match co.resume(msg) {
            CoroutineResult::Yield(Cmd(Some(next), m)) => {
                inner.state.set(State::Suspended);
                target = next;
                msg = m;
            }
            CoroutineResult::Yield(Cmd(None, m)) => {
                inner.state.set(State::Suspended);
                (target, msg) = enter_hub(m);
            }
            CoroutineResult::Return(outcome) => {
                inner.state.set(State::Dead);
                inner.yielder.set(ptr::null());
                // The stack goes back to the pool now, not when the last handle drops.
                *coro = None;
                let parent = live_ancestor(&target);
                target = parent;
                msg = outcome;
            }
        }
    }
}

/// The nearest ancestor of `g` that has not finished (main never finishes).
fn live_ancestor(g: &Greenlet) -> Greenlet {
    let mut p = g.parent_or_main();
    while p.inner().state.get() == State::Dead {
        p = p.parent_or_main();
    }
    p
}

/// The root function of every coroutine greenlet: runs `f` on the first switch's value and
/// turns its end (return, panic, throw, kill) into the message for the parent.
pub(crate) fn root<A: 'static, R: 'static>(
    f: impl FnOnce(A) -> R,
    yielder: &GYielder,
    first: Msg,
) -> Msg {
    let cur = CURRENT.get();
    // SAFETY: the dispatch loop made this greenlet current before resuming it.
    unsafe { (*cur).yielder.set(yielder) };
    let first = match first {
        Msg::Value(v) => v,
        Msg::Wake => Value::new(()),
        Msg::Failure(e) => return Msg::Failure(e),
        Msg::Throw(payload) => return outcome_of_unwind(payload),
    };
    let arg = match first.take::<A>() {
        Ok(a) => a,
        // `Greenlet::switch` checks the argument type before starting, so only a parent chain
        // delivering a child's result to an unstarted parent gets here.
        Err(v) => {
            return Msg::failure(SwitchError::WrongType {
                expected: std::any::type_name::<A>(),
                found: v.type_name(),
            });
        }
    };
    let outcome = match panic::catch_unwind(AssertUnwindSafe(move || f(arg))) {
        Ok(r) => Msg::Value(Value::new(r)),
        Err(payload) => {
            // SAFETY: as above, this greenlet is current while its root runs.
            if unsafe { (*cur).state.get() } == State::Dying {
                // corosensei is unwinding this stack to destroy it: let its payload through.
                panic::resume_unwind(payload)
            }
            outcome_of_unwind(payload)
        }
    };
    // A kill that reached the greenlet inside a hooked libc call could not unwind through C
    // frames: it was kept for later, and is the outcome if nothing raised it since.
    #[cfg(feature = "monkey")]
    // SAFETY: as above, this greenlet is current while its root runs.
    let outcome = match crate::monkey::take_deferred(unsafe { &*cur }) {
        Some(payload) if matches!(outcome, Msg::Value(_)) => outcome_of_unwind(payload),
        _ => outcome,
    };
    // The greenlet is finished: its greenlet-local values go now, while it is still current
    // (their destructors may use the hub), not when the last handle on it is dropped.
    // SAFETY: as above, this greenlet is current while its root runs.
    unsafe { (*cur).hub.locals.clear() };
    outcome
}

/// What the parent receives when a greenlet ends by unwinding with `payload`.
fn outcome_of_unwind(payload: Box<dyn std::any::Any + Send>) -> Msg {
    if payload.is::<GreenletExit>() {
        return Msg::Value(Value::new(GreenletExit));
    }
    match payload.downcast::<Box<dyn std::error::Error + Send + Sync>>() {
        Ok(thrown) => Msg::failure(SwitchError::Thrown(*thrown)),
        Err(payload) => Msg::failure(SwitchError::Panicked(Panic::new(payload))),
    }
}

/// Destroys a suspended greenlet whose last handle is going away: throws [`GreenletExit`] into
/// it so its stack unwinds and every destructor runs, resuming it directly (nested) from the
/// current stack so this works from any context. Switches attempted by its destructors fail
/// with [`SwitchError::NotAllowed`] (also switches from greenlets they resume); if it keeps
/// suspending anyway, corosensei's forced unwind finishes the job.
pub(crate) fn destroy(g: &Greenlet) {
    let inner = g.inner();
    // SAFETY: the greenlet is suspended (not running), so no resume of it is in progress and the
    // dispatch loop does not hold a reference into `coro`; we are its last owner.
    let coro: &mut Option<Coro> = unsafe { &mut *inner.coro.get() };
    let Some(co) = coro.as_mut() else { return };
    let prev = CURRENT.replace(g.as_ptr());
    // The greenlet that was current steps aside while `g` unwinds, so that a switch to it is a
    // real (refused) switch. There is none at thread exit (the runtime is gone), and it is `g`
    // itself when the dispatch loop drops the last handle of a greenlet that just switched away.
    let prev_inner = if prev.is_null() || prev == g.as_ptr() {
        None
    } else {
        // SAFETY: `prev` was current, so it is alive (see `current`); it stays alive while we
        // run nested below it.
        Some(unsafe { &*prev })
    };
    let prev_state = prev_inner.map(|p| p.state.replace(State::Suspended));
    inner.state.set(State::Destroying);
    let mut msg = Msg::Throw(Box::new(GreenletExit));
    let mut finished = false;
    for _ in 0..DESTROY_ATTEMPTS {
        match co.resume(msg) {
            CoroutineResult::Return(_) => {
                finished = true;
                break;
            }
            CoroutineResult::Yield(_) => {
                msg = Msg::failure(SwitchError::NotAllowed(crate::greenlet::DESTROYING));
            }
        }
    }
    if !finished {
        // It catches everything and keeps waiting: a forced unwind would be caught the same
        // way, over and over. Abandon it: its stack and what is on it are leaked, not run.
        log::error!(
            "greenlet {:?} ignored GreenletExit {DESTROY_ATTEMPTS} times while being destroyed; \
             its stack is leaked",
            g
        );
        if let Some(co) = coro.take() {
            std::mem::forget(co);
        }
    }
    inner.state.set(State::Dying);
    // Drops the coroutine; if it is still not finished, corosensei force-unwinds it.
    *coro = None;
    inner.state.set(State::Dead);
    inner.yielder.set(ptr::null());
    if let (Some(p), Some(state)) = (prev_inner, prev_state) {
        p.state.set(state);
    }
    CURRENT.set(prev);
}

/// How many times a greenlet being destroyed may refuse to finish before it is abandoned.
const DESTROY_ATTEMPTS: usize = 16;

/// Wraps an `UnsafeCell<Option<Coro>>` for `Inner`.
pub(crate) type CoroCell = UnsafeCell<Option<Coro>>;

//! The switch core: the trampoline, the greenlet's root function, and destruction.
//!
//! corosensei coroutines are asymmetric (resume/suspend). Symmetric `switch` is built by
//! trampolining: every greenlet is resumed from one dispatch loop that runs on the thread's own
//! stack, inside the main greenlet's pending switch. A greenlet that switches suspends with a
//! [`Cmd`] naming its target; the loop resumes the target. When the target is the main greenlet,
//! the loop returns and main's `switch` returns. When it is the hub, the loop asks the hub for
//! the next greenlet to run.
//!
//! The running greenlet is a raw pointer in a thread-local of `crate::runtime`; every change of
//! it that is followed by user code is undone on unwind (`Destroying`, `Unwound`), and between
//! two resumes the hub is current, so it never names a freed greenlet.
//!
//! This is one of the few modules with `unsafe`: the running greenlet's raw pointer, and each
//! greenlet's coroutine, which lives in an `UnsafeCell` touched only by the dispatch loop and
//! `destroy`.

use std::cell::{Cell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{GreenletExit, Panic, SwitchError};
use crate::greenlet::{Greenlet, Inner, Kind, State};
use crate::hub;
use crate::stack::PooledStack;
use crate::thread_state::{self, CURRENT, HUB, MAIN, handle_from_ptr};
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

/// A new handle on the running greenlet.
#[inline]
pub(crate) fn current() -> Greenlet {
    let cur = current_ptr();
    // SAFETY: CURRENT always points into a live `Rc<Inner>`: the greenlet it names is kept alive
    // by the dispatch loop (or the runtime, for main) while it runs, and no handle on it is
    // dropped while it is current without first making another greenlet current (see
    // `last_handle_dropped`).
    unsafe { handle_from_ptr(cur) }
}

/// The running greenlet, as a raw pointer; creates the runtime if there is none (at first use,
/// or for code that runs after the thread's teardown).
#[inline]
pub(crate) fn current_ptr() -> *const Inner {
    let cur = CURRENT.get();
    if cur.is_null() {
        thread_state::init();
        CURRENT.get()
    } else {
        cur
    }
}

/// The kind of the running greenlet.
#[inline]
pub(crate) fn current_kind() -> Kind {
    // SAFETY: see `current`.
    unsafe { (*current_ptr()).kind }
}

/// Whether the hub itself is running (the dispatch loop is in the hub's step, or between two
/// resumes). Never creates the runtime, so it is safe during thread exit.
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

/// Whether a greenlet of this thread's runtime is running, rather than the hub or nothing (no
/// runtime yet). Main counts until the thread exits: then it is the thread's own code again
/// (see `crate::thread_state`), while a greenlet destroyed by the teardown still counts (its
/// parks are refused, as when it is killed). Reads const-initialised thread-locals and an
/// immutable field of a live greenlet: it never creates the runtime and is async-signal-safe,
/// which the `monkey` hooks rely on.
#[cfg(feature = "monkey")]
#[inline]
pub(crate) fn in_greenlet() -> bool {
    let cur = CURRENT.get();
    if cur.is_null() {
        return false;
    }
    // SAFETY: a non-null CURRENT points into a live greenlet (see `current`); `kind` never
    // changes after creation.
    match unsafe { (*cur).kind } {
        Kind::Hub => false,
        Kind::Main => !thread_state::is_exiting(),
        Kind::Coroutine => true,
    }
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
    // SAFETY: HUB owns a strong count while the runtime exists, and `root_ptr` creates it.
    unsafe { handle_from_ptr(root_ptr(&HUB)) }
}

/// This thread's main greenlet.
#[inline]
pub(crate) fn main_greenlet() -> Greenlet {
    // SAFETY: as for `hub_greenlet`, with MAIN.
    unsafe { handle_from_ptr(root_ptr(&MAIN)) }
}

/// A root greenlet's pointer, creating the runtime if needed (never null).
#[inline]
fn root_ptr(cell: &'static std::thread::LocalKey<Cell<*const Inner>>) -> *const Inner {
    let p = cell.get();
    if !p.is_null() {
        return p;
    }
    thread_state::init();
    cell.get()
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
        return refused(target, msg, UNWINDING);
    }
    let cur = current_ptr();
    // SAFETY: `cur` is the live running greenlet (see `current`).
    let cur = unsafe { &*cur };
    match cur.kind {
        Kind::Main => dispatch(cur, target, msg),
        Kind::Hub => refused(target, msg, "the hub itself cannot block or switch"),
        Kind::Coroutine => {
            let yielder = cur.yielder.get();
            debug_assert!(!yielder.is_null());
            // SAFETY: a running coroutine greenlet set `yielder` at its root to the yielder on
            // its own stack, which lives until its root function returns; it is running now, so
            // the root has not returned (a finished greenlet is never current: see `dispatch`
            // and `destroy`, which make another one current before anything else runs).
            unsafe { (*yielder).suspend(Cmd(target, msg)) }
        }
    }
}

/// The answer to a switch that may not happen: the message and target it would have carried
/// are handed back to the caller's context to drop, as if the switch returned at once.
#[cold]
fn refused(target: Option<Greenlet>, msg: Msg, why: &'static str) -> Msg {
    drop((target, msg));
    Msg::failure(SwitchError::NotAllowed(why))
}

/// Why switching is refused while the thread exits.
pub(crate) const EXITING: &str = "the thread is exiting: its greenlets can no longer run";

/// The trampoline. Runs on the main greenlet's stack; returns when control goes back to main.
/// Kept out of line so that a coroutine's own switch (a plain suspend) stays small. `target`
/// `None` is the hub.
///
/// Between two resumes no greenlet runs. Whatever the loop drops there (the last handle of the
/// greenlet that just stopped, a finished greenlet's value) is dropped with the hub current
/// (see [`last_handle_dropped`] and `hub::next`), so `CURRENT` never names a freed greenlet and
/// a destructor run there cannot switch. Should anything unwind out of the loop all the same,
/// [`Unwound`] makes main current and running again.
#[inline(never)]
fn dispatch(main: &Inner, target: Option<Greenlet>, mut msg: Msg) -> Msg {
    if thread_state::is_exiting() {
        return refused(target, msg, EXITING);
    }
    main.state.set(State::Suspended);
    let unwound = Unwound;
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
                std::mem::forget(unwound);
                return msg;
            }
            Kind::Hub => {
                // A greenlet whose parent is the hub returned.
                drop(target);
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
        // SAFETY: only the dispatch loop and `destroy` touch `coro`; they run on one thread, the
        // loop is not re-entered while a coroutine runs (coroutines suspend instead of
        // dispatching), and `destroy` only touches suspended greenlets, never this running one.
        let coro = unsafe { &mut *inner.coro.get() };
        let Some(co) = coro.as_mut() else {
            unreachable!("a live coroutine greenlet always owns its coroutine")
        };
        match co.resume(msg) {
            CoroutineResult::Yield(Cmd(Some(next), m)) => {
                inner.state.set(State::Suspended);
                // Dropping the old target may destroy it (last handle): see
                // `last_handle_dropped`, which makes the hub current for that.
                target = next;
                msg = m;
            }
            CoroutineResult::Yield(Cmd(None, m)) => {
                inner.state.set(State::Suspended);
                // The hub is current before the old target goes, so that a destruction its
                // last handle causes is deferred to the hub's next step, which comes right away.
                CURRENT.set(HUB.get());
                drop(target);
                (target, msg) = hub::next(m);
            }
            CoroutineResult::Return(outcome) => {
                inner.state.set(State::Dead);
                inner.yielder.set(ptr::null());
                // The stack goes back to the pool now, not when the last handle drops.
                *coro = None;
                target = live_ancestor(&target);
                msg = outcome;
            }
        }
    }
}

/// Makes the hub current and asks it for the next greenlet to resume (blocking in its poll if
/// none is ready); `msg` is what the greenlet that handed over left for the hub.
#[inline]
fn enter_hub(msg: Msg) -> (Greenlet, Msg) {
    // The runtime exists: a greenlet is switching.
    CURRENT.set(HUB.get());
    hub::next(msg)
}

/// Restores main as the running greenlet if something unwinds out of the dispatch loop.
///
/// Nothing should: greenlet bodies run under `catch_unwind` (see [`root`]) and the values the
/// loop drops are dropped quietly. This is the net under that rule. It is `mem::forget`ten on
/// the normal path, so it costs nothing there.
struct Unwound;

impl Drop for Unwound {
    #[cold]
    fn drop(&mut self) {
        let cur = CURRENT.get();
        // SAFETY: a non-null CURRENT is alive: the loop's `target` was dropped just before this
        // guard, and had it been the last handle of the current greenlet, the hub would have
        // been made current first (see `last_handle_dropped`).
        if let Some(inner) = unsafe { cur.as_ref() }
            && inner.kind == Kind::Coroutine
            && inner.state.get() == State::Running
        {
            // Its resume unwound: corosensei has finished its coroutine.
            mark_finished(inner);
        }
        let main = MAIN.get();
        CURRENT.set(main);
        // SAFETY: MAIN owns a strong count while the runtime exists, which it does here.
        unsafe { (*main).state.set(State::Running) };
    }
}

/// Marks a greenlet whose coroutine has returned or unwound as dead and frees its stack.
fn mark_finished(inner: &Inner) {
    inner.state.set(State::Dead);
    inner.yielder.set(ptr::null());
    // SAFETY: the coroutine is not running (it finished) and nobody else holds a reference into
    // `coro` (see `dispatch`).
    let coro = unsafe { &mut *inner.coro.get() };
    if let Some(co) = coro.take() {
        if co.done() {
            drop(co);
        } else {
            // Not finished: dropping it would force an unwind, i.e. run its code here.
            std::mem::forget(co);
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
///
/// Nothing here unwinds out of the coroutine except corosensei's own forced unwind: the body
/// runs under `catch_unwind`, and what the root drops itself is dropped quietly.
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
        // Ended before it started (a throw, or its destruction): the function is dropped here,
        // on its own stack, and its captures' destructors may panic.
        Msg::Failure(e) => {
            thread_state::drop_quietly(f, "dropping the function of a greenlet that never started");
            return Msg::Failure(e);
        }
        Msg::Throw(payload) => {
            thread_state::drop_quietly(f, "dropping the function of a greenlet that never started");
            return outcome_of_unwind(payload);
        }
    };
    let arg = match first.take::<A>() {
        Ok(a) => a,
        // `Greenlet::switch` checks the argument type before starting, so only a parent chain
        // delivering a child's result to an unstarted parent gets here.
        Err(v) => {
            let e = SwitchError::WrongType {
                expected: std::any::type_name::<A>(),
                found: v.type_name(),
            };
            thread_state::drop_quietly(v, "dropping a value of the wrong type for a greenlet");
            thread_state::drop_quietly(f, "dropping the function of a greenlet that cannot start");
            return Msg::failure(e);
        }
    };
    let outcome = match panic::catch_unwind(AssertUnwindSafe(move || f(arg))) {
        Ok(r) => Msg::Value(Value::new(r)),
        Err(payload) => outcome_of_unwind(payload),
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

/// Called when the last handle of a greenlet is about to go (its `Drop`, with the count still
/// one): destroys it if it is suspended mid-function, with the running greenlet made
/// consistent first.
///
/// Only the dispatch loop can drop the last handle of the greenlet that is current (one that
/// just switched away or finished): no greenlet runs then, so the hub is made current for the
/// rest of the loop's step. `CURRENT` then never points at the greenlet being freed, and
/// destructors that run here (this greenlet's, its locals', its parent's) cannot switch.
#[cold]
pub(crate) fn last_handle_dropped(g: &Greenlet) {
    let inner = g.inner();
    let between_resumes = CURRENT.get() == g.as_ptr();
    if between_resumes {
        CURRENT.set(HUB.get());
    }
    // An unstarted one too: corosensei cannot propagate a panic of its function's captures
    // out of dropping its coroutine (it aborts), so they are dropped on its own stack instead.
    if inner.kind != Kind::Coroutine
        || !matches!(inner.state.get(), State::Suspended | State::Unstarted)
    {
        return;
    }
    if in_hub() && !between_resumes {
        // The hub is running and may hold borrows of its own state (a wait list it is waking);
        // the greenlet's destructors may need that state. Destroy it at the hub's next safe
        // point instead.
        hub::defer_destroy(g.clone());
    } else {
        destroy(g);
    }
}

/// Drops `value` as the running context allows: quietly in the hub (nobody could receive the
/// panic), normally elsewhere (the code that dropped it does).
pub(crate) fn drop_in_context<T>(value: T) {
    if in_hub() || thread_state::is_exiting() {
        thread_state::drop_quietly(value, "dropping a greenlet's leftovers in the hub");
    } else {
        drop(value);
    }
}

/// Destroys a greenlet that has not finished and whose last handle is going away (or whose
/// thread is exiting): throws [`GreenletExit`] into it so its stack unwinds and every destructor
/// runs (an unstarted one just drops its function), resuming it directly (nested) from the
/// current stack so this works from any context. Switches attempted by its destructors fail
/// with [`SwitchError::NotAllowed`] (also switches from greenlets they resume); if it keeps
/// suspending anyway, it is abandoned (its stack leaks) after a few attempts.
///
/// Whatever happens, `CURRENT` and the states are restored before this returns or unwinds
/// ([`Destroying`]), and what the greenlet leaves behind (its return value after catching
/// `GreenletExit`) is dropped only then, quietly: a panic there is logged, never handed to the
/// code that dropped the handle.
pub(crate) fn destroy(g: &Greenlet) {
    let inner = g.inner();
    // SAFETY: the greenlet has not finished and is not running (it is unstarted or suspended),
    // so no resume of it is in progress and the dispatch loop holds no reference into `coro`.
    let coro: &mut Option<Coro> = unsafe { &mut *inner.coro.get() };
    let Some(co) = coro.as_mut() else { return };
    let scope = Destroying::enter(g);
    let mut msg = Msg::Throw(Box::new(GreenletExit));
    let mut left = None;
    for _ in 0..DESTROY_ATTEMPTS {
        match co.resume(msg) {
            CoroutineResult::Return(outcome) => {
                left = Some(outcome);
                break;
            }
            CoroutineResult::Yield(cmd) => {
                thread_state::drop_quietly(
                    cmd,
                    "dropping a switch made by a greenlet being destroyed",
                );
                msg = Msg::failure(SwitchError::NotAllowed(crate::greenlet::DESTROYING));
            }
        }
    }
    if left.is_none() {
        // It catches everything and keeps waiting: a forced unwind would be caught the same
        // way, over and over. Abandon it: its stack and what is on it are leaked, not run.
        log::error!(
            "greenlet {:?} ignored GreenletExit {DESTROY_ATTEMPTS} times while being destroyed; \
             its stack is leaked",
            g
        );
    }
    drop(scope);
    thread_state::drop_quietly(left, "dropping what a destroyed greenlet returned");
}

/// How many times a greenlet being destroyed may refuse to finish before it is abandoned.
const DESTROY_ATTEMPTS: usize = 16;

/// The switch state while a greenlet is destroyed: the greenlet is current and `Destroying`,
/// the greenlet that was current steps aside (suspended, so that a switch to it is a real,
/// refused switch). Dropping it, on return or unwind alike, marks the greenlet finished and
/// puts the previous greenlet back.
struct Destroying<'a> {
    g: &'a Inner,
    prev: *const Inner,
    prev_state: Option<State>,
}

impl<'a> Destroying<'a> {
    fn enter(g: &'a Greenlet) -> Destroying<'a> {
        let prev = CURRENT.replace(g.as_ptr());
        // There is none when the runtime is gone, and the greenlet itself is never current here
        // (see `last_handle_dropped`); checked all the same.
        let prev_state = if prev.is_null() || prev == g.as_ptr() {
            None
        } else {
            // SAFETY: `prev` was current, so it is alive (see `current`), and stays alive while
            // we run nested below it.
            Some(unsafe { &*prev }.state.replace(State::Suspended))
        };
        let inner = g.inner();
        inner.state.set(State::Destroying);
        Destroying {
            g: inner,
            prev,
            prev_state,
        }
    }
}

impl Drop for Destroying<'_> {
    fn drop(&mut self) {
        // Finished, or abandoned: either way its coroutine goes (an unfinished one is leaked).
        mark_finished(self.g);
        if let Some(state) = self.prev_state {
            // SAFETY: as in `enter`.
            unsafe { &*self.prev }.state.set(state);
        }
        CURRENT.set(self.prev);
    }
}

/// Wraps an `UnsafeCell<Option<Coro>>` for `Inner`.
pub(crate) type CoroCell = UnsafeCell<Option<Coro>>;

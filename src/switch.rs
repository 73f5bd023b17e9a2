//! The switch core: the trampoline, the greenlet's root function, and destruction.
//!
//! corosensei coroutines are asymmetric (resume/suspend). Symmetric `switch` is built by
//! trampolining: every greenlet is resumed from the main greenlet's stack, inside main's pending
//! switch. A greenlet that switches suspends with a [`Cmd`] naming its target; main's side
//! resumes the target. When the target is main, main's `switch` returns; when it is the hub,
//! the scheduler (see `crate::sched`) picks the next greenlet.
//!
//! # The fast paths
//!
//! A switch is two stack switches (suspend into main's side, resume the target) when neither
//! end is main, one when one is. What costs time around them is less the instructions than the
//! returns the CPU mispredicts: after a stack switch its return-address predictor holds the
//! other stack's calls, so every frame between the user's code and the switch itself costs a
//! misprediction on the way out. So the stack switch is inlined into the caller's frame on both
//! sides: a coroutine suspends right in the `switch` (or `yield_now`) that user code called,
//! and main resumes its target right there too, going out of line (to the dispatch loop, [`run`])
//! only when the greenlet it resumed does not come straight back. Counted handles are not taken
//! on the way: the greenlet that runs is kept alive by the rule below instead of by a count.
//!
//! # Who keeps the running greenlet alive
//!
//! The running greenlet is a raw pointer in a thread-local ([`CURRENT`]). A greenlet is resumed
//! only through a pointer known to be alive at that moment (the switching greenlet's own handle
//! on its target, in its suspended frame; a counted handle the loop holds); while it runs, if
//! its last handle goes, the count passes to the loop instead of freeing it (it is *orphaned*,
//! see [`last_handle_dropped`]), and the loop drops it once the greenlet has stopped, with the
//! hub current. Before the loop drops anything between two resumes (which may run a destructor
//! and drop other handles), it pins the next target with a counted handle of its own.
//!
//! Every change of the running greenlet that is followed by user code is undone on unwind
//! (`Destroying`, `Unwound`), and between two resumes the hub is current, so `CURRENT` never
//! names a freed greenlet.
//!
//! This is one of the few modules with `unsafe`: the running greenlet's raw pointer, and each
//! greenlet's coroutine, which lives in an `UnsafeCell` touched only by main's side of the
//! switch and `destroy`.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{GreenletExit, Panic, SwitchError};
use crate::greenlet::{Greenlet, Inner, Kind, State};
use crate::sched::{Sched, Scheduler};
use crate::stack::PooledStack;
use crate::thread_state::{self, CURRENT, HUB, MAIN, handle_from_ptr};
use crate::value::{Slot, Value};

/// What a greenlet is resumed with: a type-erased value, three words.
///
/// A failure, a throw and a plain wake-up are values too, of private types (the first two) and
/// of `()`: so the receiving `switch::<_, R>` makes one type check on its fast path (is it an
/// `R`?) and looks further only when it is not.
pub(crate) struct Msg(Value);

/// The failure of a child (panic, uncaught throw), or an error for the resumed switch.
struct Failure(Box<SwitchError>);

/// A payload to raise at the suspension point (throw, kill).
struct Throw(Box<dyn Any + Send>);

/// What a received message is, once it is not the value the receiver hoped for.
pub(crate) enum Received {
    Value(Value),
    Failure(SwitchError),
    Throw(Box<dyn Any + Send>),
}

impl Msg {
    /// A plain hand-over (a wake-up, a yield): received as `()`.
    #[inline]
    pub(crate) fn wake() -> Msg {
        Msg(Value::unit())
    }

    /// A value from `switch(v)`, or the return value of a child.
    #[inline]
    pub(crate) fn value<T: 'static>(v: T) -> Msg {
        Msg(Value::new(v))
    }

    #[cold]
    pub(crate) fn failure(e: SwitchError) -> Msg {
        Msg(Value::new(Failure(Box::new(e))))
    }

    /// Raise `payload` where the greenlet is suspended.
    pub(crate) fn throw(payload: Box<dyn Any + Send>) -> Msg {
        Msg(Value::new(Throw(payload)))
    }

    /// Whether this is a plain wake-up (or a `()` from an explicit switch, which counts as one).
    #[inline]
    pub(crate) fn is_wake(&self) -> bool {
        self.0.is_unit()
    }

    /// Drops a message that [`is_wake`](Msg::is_wake): a `()` owns nothing, so nothing runs.
    #[inline(always)]
    pub(crate) fn discard_wake(self) {
        debug_assert!(self.is_wake());
        std::mem::forget(self);
    }

    pub(crate) fn is_throw(&self) -> bool {
        self.0.is::<Throw>()
    }

    /// The failure this message carries, if it is one.
    pub(crate) fn failure_ref(&self) -> Option<&SwitchError> {
        self.0.downcast_ref::<Failure>().map(|f| &*f.0)
    }

    /// Sorts the message out.
    pub(crate) fn received(self) -> Received {
        match self.0.take::<Failure>() {
            Ok(Failure(e)) => Received::Failure(*e),
            Err(v) => match v.take::<Throw>() {
                Ok(Throw(p)) => Received::Throw(p),
                Err(v) => Received::Value(v),
            },
        }
    }

    /// The result of the pending switch this message resumes: a value, a failure, or (a throw)
    /// an unwind from here.
    pub(crate) fn receive(self) -> Result<Value, SwitchError> {
        match self.received() {
            Received::Value(v) => Ok(v),
            Received::Failure(e) => Err(e),
            Received::Throw(p) => panic::resume_unwind(p),
        }
    }

    /// [`receive`](Msg::receive) for a switch that expects an `R`: one type check when it is.
    #[inline]
    pub(crate) fn take<R: 'static>(self) -> Result<R, SwitchError> {
        match self.0.take::<R>() {
            Ok(r) => Ok(r),
            Err(v) => Msg(v).take_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn take_slow<R: 'static>(self) -> Result<R, SwitchError> {
        let v = self.receive()?;
        Err(crate::greenlet::wrong_type::<R>(&v))
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Msg").field(&self.0.type_name()).finish()
    }
}

/// Why switching is refused during unwinding.
pub(crate) const UNWINDING: &str = "cannot switch or block while unwinding a panic or a kill";

/// Where the message for a greenlet waits during the stack switch that resumes it: the switching
/// side puts it there right before the switch, the greenlet takes it right after. corosensei
/// carries one register each way; a resume carries nothing, a suspend the target's address,
/// and the message goes through the target's inbox. It holds a message only between those two
/// points (see `run` for the loop's part); a greenlet being destroyed cannot put one (its
/// switches are refused first, `refused_while_destroyed`), so nothing nested overwrites a
/// message in flight.
pub(crate) struct Inbox(Slot);

impl Inbox {
    pub(crate) const fn new() -> Inbox {
        Inbox(Slot::new())
    }

    #[inline(always)]
    pub(crate) fn put(&self, msg: Msg) {
        self.0.put(msg.0);
    }

    /// # Safety
    /// A message must be in the inbox (put there and not taken since).
    #[inline(always)]
    unsafe fn take(&self) -> Msg {
        // SAFETY: as the caller guarantees.
        Msg(unsafe { self.0.take() })
    }

    /// Takes the message unless it is a plain wake-up, which is left in place: a `()` owns
    /// nothing, so leaving it is taking and dropping it, without moving three words around.
    ///
    /// # Safety
    /// As [`take`](Inbox::take).
    #[inline(always)]
    unsafe fn take_unless_wake(&self) -> Option<Msg> {
        // SAFETY: as the caller guarantees.
        if unsafe { self.0.holds_unit() } {
            None
        } else {
            // SAFETY: as the caller guarantees.
            Some(unsafe { self.take() })
        }
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

/// A coroutine is resumed with nothing and suspends with the address of the greenlet to switch
/// to next; the message is in that greenlet's [`Inbox`]. It returns its outcome.
pub(crate) type Coro = Coroutine<(), *const Inner, Msg, PooledStack>;
pub(crate) type GYielder = Yielder<(), *const Inner>;

/// A new handle on the running greenlet.
#[inline]
pub(crate) fn current() -> Greenlet {
    let cur = current_ptr();
    // SAFETY: CURRENT always points into a live greenlet: the running one is never freed while
    // it runs (see the module docs), main and the hub are owned by the runtime.
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

/// Whether `g` is the running greenlet. Never creates the runtime.
#[inline]
pub(crate) fn is_running(g: &Inner) -> bool {
    ptr::eq(CURRENT.get(), g)
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

/// Switches from the running greenlet to `target` (a live coroutine greenlet that is not
/// being destroyed, or main) with `msg`; returns what the running greenlet is resumed with.
/// Inlined into the caller, so that the stack switch happens in the caller's own frame (see
/// the module docs).
#[inline(always)]
pub(crate) fn switch_to(target: &Inner, msg: Msg) -> Msg {
    target.inbox.put(msg);
    switch_put(target)
}

/// [`switch_to`] with the message already in `target`'s inbox: the caller builds the message
/// right where it goes, so that it is not moved around (through the stack) on the way.
#[inline(always)]
pub(crate) fn switch_put(target: &Inner) -> Msg {
    // The panic count is per thread: a greenlet switched to while another unwinds would run with
    // `thread::panicking()` set, and any panic of its own would abort the process.
    if std::thread::panicking() {
        return refused(target, UNWINDING);
    }
    let cur = current_ptr();
    if ptr::eq(cur, target) {
        // Switching to oneself hands the value straight back, as in greenlet.
        // SAFETY: the caller put it.
        return unsafe { target.inbox.take() };
    }
    // SAFETY: `cur` is the live running greenlet (see `current`).
    let cur = unsafe { &*cur };
    match cur.kind {
        Kind::Coroutine => suspend(cur, target),
        Kind::Main => from_main(cur, target),
        Kind::Hub => refused(target, "the hub itself cannot block or switch"),
    }
}

/// Switches from the running greenlet to the hub with a wake-up (a park or a yield); returns
/// what the running greenlet is resumed with. Inlined, as [`switch_to`].
#[inline(always)]
pub(crate) fn switch_to_hub() -> Msg {
    if std::thread::panicking() {
        return refused_msg(Msg::wake(), UNWINDING);
    }
    switch_to_hub_unchecked()
}

/// [`switch_to_hub`] for a caller that has just seen that the thread is not unwinding.
#[inline(always)]
pub(crate) fn switch_to_hub_unchecked() -> Msg {
    // SAFETY: HUB owns a count on the hub while the runtime exists, and `root_ptr` creates it.
    let hub = unsafe { &*root_ptr(&HUB) };
    hub.inbox.put(Msg::wake());
    // SAFETY: see `current`; the runtime exists.
    let cur = unsafe { &*CURRENT.get() };
    match cur.kind {
        Kind::Coroutine => {
            // Where its stack is, for the hub's prefetch before it resumes the greenlet: the
            // address of a local of the frame that suspends (the park's, or the yield's).
            let here = 0u8;
            cur.stack_hint.set(ptr::addr_of!(here) as usize);
            suspend(cur, hub)
        }
        Kind::Main => main_enters_hub(cur),
        Kind::Hub => refused(hub, "the hub itself cannot block or switch"),
    }
}

/// A coroutine greenlet hands control to main's side, naming `target` (alive: the caller holds
/// a handle on it, or it is the hub) as the greenlet to switch to; the message for it is in its
/// inbox.
#[inline(always)]
fn suspend(cur: &Inner, target: &Inner) -> Msg {
    if cur.state.get() == State::Destroying {
        return refused_while_destroyed(cur, target);
    }
    let yielder = cur.yielder.get();
    debug_assert!(!yielder.is_null());
    // SAFETY: a running coroutine greenlet set `yielder` at its root to the yielder on its own
    // stack, which lives until its root function returns; it is running now, so the root has
    // not returned (a finished greenlet is never current: see `run` and `destroy`, which make
    // another one current before anything else runs).
    unsafe { (*yielder).suspend(target) };
    // SAFETY: whoever resumed this greenlet put its message first.
    unsafe { cur.inbox.take() }
}

/// A greenlet being destroyed tries to switch: its message is dropped and it suspends into
/// `destroy`, naming no target (null) and putting nothing in any inbox, so that `destroy` counts
/// the attempt (and gives up on a greenlet that keeps trying) and resumes it with the refusal.
#[cold]
#[inline(never)]
fn refused_while_destroyed(cur: &Inner, target: &Inner) -> Msg {
    // SAFETY: the caller put it.
    let msg = unsafe { target.inbox.take() };
    thread_state::drop_quietly(msg, "dropping a switch made by a greenlet being destroyed");
    // SAFETY: as in `suspend`.
    unsafe { (*cur.yielder.get()).suspend(ptr::null()) };
    // SAFETY: `destroy` puts the refusal before it resumes the greenlet.
    unsafe { cur.inbox.take() }
}

/// The answer to a switch that may not happen: the message it would have carried (in
/// `target`'s inbox) is handed back to the caller's context to drop, as if the switch returned
/// at once.
#[cold]
#[inline(never)]
fn refused(target: &Inner, why: &'static str) -> Msg {
    // SAFETY: the caller put it.
    refused_msg(unsafe { target.inbox.take() }, why)
}

#[cold]
#[inline(never)]
fn refused_msg(msg: Msg, why: &'static str) -> Msg {
    drop(msg);
    Msg::failure(SwitchError::NotAllowed(why))
}

/// Why switching is refused while the thread exits.
pub(crate) const EXITING: &str = "the thread is exiting: its greenlets can no longer run";

/// Main switches to the coroutine `target`: resumes it right here, and returns at once when it
/// comes straight back to main (the explicit ping-pong of `switch`); anything else goes on in
/// the dispatch loop, [`run`].
#[inline(always)]
fn from_main(main: &Inner, target: &Inner) -> Msg {
    if thread_state::is_exiting() {
        return refused(target, EXITING);
    }
    debug_assert!(target.kind == Kind::Coroutine);
    // Should anything unwind out of the resume (nothing should: greenlet bodies run under
    // `catch_unwind`), main is made current and running again.
    let unwound = Unwound;
    CURRENT.set(target);
    // SAFETY: only main's side of the switch and `destroy` touch `coro`; they run on one thread,
    // main's side is not re-entered while a coroutine runs (coroutines suspend instead), and
    // `destroy` only touches greenlets that are not running.
    let coro = unsafe { &mut *target.coro.get() };
    let Some(co) = coro.as_mut() else {
        unreachable!("a live coroutine greenlet always owns its coroutine")
    };
    let result = co.resume(());
    std::mem::forget(unwound);
    match result {
        CoroutineResult::Yield(next) if ptr::eq(next, main) && !target.orphaned.get() => {
            CURRENT.set(main);
            // SAFETY: the greenlet put its message for main before suspending.
            unsafe { main.inbox.take() }
        }
        result => {
            let (next, owned) = after_resume(target, result, None);
            run(main, next, owned)
        }
    }
}

/// Main blocks: the hub picks what runs until main is woken.
#[inline(never)]
fn main_enters_hub(main: &Inner) -> Msg {
    let hub = HUB.get();
    if thread_state::is_exiting() {
        // SAFETY: as in `switch_to_hub`.
        return refused(unsafe { &*hub }, EXITING);
    }
    run(main, hub, None)
}

/// The dispatch loop: resumes `target` with the message in its inbox, and whatever each resumed
/// greenlet asks for after it, until control goes back to main. Runs on main's stack, inside
/// main's pending switch. `owned`, when set, is a counted handle on `target` that the loop holds
/// while it runs.
///
/// Between two resumes no greenlet runs. Whatever the loop drops there (the last handle of the
/// greenlet that just stopped, a finished greenlet's value) is dropped with the hub current (see
/// [`after_resume`] and `Scheduler::next`), so `CURRENT` never names a freed greenlet and a
/// destructor run there cannot switch. Should anything unwind out of the loop all the same,
/// [`Unwound`] makes main current and running again.
#[inline(never)]
fn run(main: &Inner, mut target: *const Inner, mut owned: Option<Greenlet>) -> Msg {
    let unwound = Unwound;
    loop {
        // SAFETY: `target` is alive: pinned by `owned`, by the parent link of a greenlet that is
        // alive, or by the suspended frame of the greenlet that named it (see the module docs).
        let inner = unsafe { &*target };
        match inner.kind {
            Kind::Main => {
                CURRENT.set(main);
                // A count on main (its ready entry) is never its last: MAIN owns one.
                drop(owned);
                std::mem::forget(unwound);
                // SAFETY: every path to main put its message first.
                return unsafe { main.inbox.take() };
            }
            Kind::Hub => {
                // A greenlet parked or yielded, or one whose parent is the hub returned.
                // SAFETY: every path to the hub put its message first. A wake-up is left where
                // it is, as taken: a `()` owns nothing.
                let msg = unsafe { inner.inbox.take_unless_wake() };
                CURRENT.set(target);
                release(owned.take());
                if let Some(msg) = msg {
                    Sched::delivered(msg);
                }
                let next = Sched::next();
                target = next.as_ptr();
                owned = Some(next);
                continue;
            }
            Kind::Coroutine => {}
        }
        if inner.state.get() == State::Dead {
            // Only a parent chain or a stale ready entry leads here (explicit switches to the
            // dead are refused): deliver to the nearest live ancestor, as greenlet does.
            // SAFETY: every path to a target put its message first.
            let msg = unsafe { inner.inbox.take() };
            let ancestor = live_ancestor(inner);
            target = ancestor.as_ptr();
            CURRENT.set(HUB.get());
            release(owned.replace(ancestor));
            // SAFETY: pinned by `owned`.
            unsafe { (*target).inbox.put(msg) };
            continue;
        }
        CURRENT.set(target);
        // SAFETY: as in `from_main`.
        let coro = unsafe { &mut *inner.coro.get() };
        let Some(co) = coro.as_mut() else {
            unreachable!("a live coroutine greenlet always owns its coroutine")
        };
        let result = co.resume(());
        (target, owned) = after_resume(inner, result, owned);
    }
}

/// What follows the resume of `inner` that ended with `result`: the next target (its message
/// in its inbox), and the counted handle the loop now holds (on the next target, if any).
/// `owned` is the one it held on `inner`.
#[inline]
fn after_resume(
    inner: &Inner,
    result: CoroutineResult<*const Inner, Msg>,
    mut owned: Option<Greenlet>,
) -> (*const Inner, Option<Greenlet>) {
    match result {
        CoroutineResult::Yield(target) => {
            if owned.is_some() || inner.orphaned.get() {
                // Dropping `inner`'s count may destroy it, and its frame may hold the only
                // handle on the target: pin the target first (the hub needs no pin).
                let hub = HUB.get();
                let pin = (!ptr::eq(target, hub))
                    // SAFETY: the target is alive (the suspended frame of `inner` holds a
                    // handle on it) and nothing was dropped since `inner` named it.
                    .then(|| unsafe { handle_from_ptr(target) });
                CURRENT.set(hub);
                let held = std::mem::replace(&mut owned, pin);
                release(held.or_else(|| take_orphan(inner)));
            }
            (target, owned)
        }
        CoroutineResult::Return(outcome) => {
            mark_finished(inner);
            // The parent is pinned before `inner` (which links to it) may go.
            let ancestor = live_ancestor(inner);
            let target = ancestor.as_ptr();
            CURRENT.set(HUB.get());
            let held = owned.replace(ancestor);
            release(held.or_else(|| take_orphan(inner)));
            // SAFETY: pinned by `owned`. Put only now: what `release` ran could not put a
            // message anywhere (see `Inbox`).
            unsafe { (*target).inbox.put(outcome) };
            (target, owned)
        }
    }
}

/// Drops a handle between two resumes, with the hub current: if it is the last handle of a
/// suspended greenlet, that greenlet is destroyed now (nothing holds a borrow of hub state
/// here), as `last_handle_dropped` would do later in the hub.
#[inline]
fn release(g: Option<Greenlet>) {
    if let Some(g) = g
        && g.is_last_handle()
    {
        release_last(g);
    }
}

#[cold]
#[inline(never)]
fn release_last(g: Greenlet) {
    let inner = g.inner();
    if inner.kind == Kind::Coroutine
        && matches!(inner.state.get(), State::Started | State::Unstarted)
    {
        destroy(&g);
    }
    // Dead now (or never started and already destroyed): what is left goes quietly.
    thread_state::drop_quietly(g, "dropping the last handle of a greenlet between resumes");
}

/// The count that the last handle of `inner` passed to the loop while it ran, if it did. (When
/// the loop holds a count on `inner` itself, that handle was not the last: only one of the two
/// exists.)
#[inline]
fn take_orphan(inner: &Inner) -> Option<Greenlet> {
    if !inner.orphaned.get() {
        return None;
    }
    inner.orphaned.set(false);
    // SAFETY: an orphaned greenlet's last strong count was kept for the loop by
    // `last_handle_dropped` (see there); this takes it back, once.
    Some(unsafe { Greenlet::from_raw(inner) })
}

/// Restores main as the running greenlet if something unwinds out of main's side of a switch.
///
/// Nothing should: greenlet bodies run under `catch_unwind` (see [`root`]) and the values the
/// loop drops are dropped quietly. This is the net under that rule. It is `mem::forget`ten on
/// the normal path, so it costs nothing there.
struct Unwound;

impl Drop for Unwound {
    #[cold]
    fn drop(&mut self) {
        let cur = CURRENT.get();
        // SAFETY: a non-null CURRENT is alive: the loop's handles are dropped before this guard,
        // and had one been the last handle of the current greenlet, it would have been orphaned
        // instead (see `last_handle_dropped`).
        if let Some(inner) = unsafe { cur.as_ref() }
            && inner.kind == Kind::Coroutine
            && inner.state.get() == State::Started
        {
            // It was being resumed, and the resume unwound: corosensei has finished its
            // coroutine.
            mark_finished(inner);
        }
        let main = MAIN.get();
        CURRENT.set(main);
    }
}

/// Marks a greenlet whose coroutine has returned or unwound as dead and frees its stack.
fn mark_finished(inner: &Inner) {
    inner.state.set(State::Dead);
    inner.yielder.set(ptr::null());
    // SAFETY: the coroutine is not running (it finished) and nobody else holds a reference into
    // `coro` (see `from_main`).
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
fn live_ancestor(g: &Inner) -> Greenlet {
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
pub(crate) fn root<A: 'static, R: 'static>(f: impl FnOnce(A) -> R, yielder: &GYielder) -> Msg {
    let cur = CURRENT.get();
    // SAFETY: main's side made this greenlet current before resuming it.
    let me = unsafe { &*cur };
    me.yielder.set(yielder);
    // SAFETY: whoever resumed it put the first message in its inbox.
    let first = unsafe { me.inbox.take() };
    if me.state.get() == State::Unstarted {
        // Not when it is being destroyed before it started: it stays `Destroying`.
        me.state.set(State::Started);
    }
    let first = match first.received() {
        Received::Value(v) => v,
        // Ended before it started (a throw, or its destruction): the function is dropped here,
        // on its own stack, and its captures' destructors may panic.
        Received::Failure(e) => {
            thread_state::drop_quietly(f, "dropping the function of a greenlet that never started");
            return Msg::failure(e);
        }
        Received::Throw(payload) => {
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
        Ok(r) => Msg::value(r),
        Err(payload) => outcome_of_unwind(payload),
    };
    // The greenlet is finished: what the scheduler keeps for it (its greenlet-local values) goes
    // now, while it is still current (their destructors may use the hub), not when the last
    // handle on it is dropped.
    Sched::finishing(me, outcome)
}

/// What the parent receives when a greenlet ends by unwinding with `payload`.
pub(crate) fn outcome_of_unwind(payload: Box<dyn Any + Send>) -> Msg {
    if payload.is::<GreenletExit>() {
        return Msg::value(GreenletExit);
    }
    match payload.downcast::<Box<dyn std::error::Error + Send + Sync>>() {
        Ok(thrown) => Msg::failure(SwitchError::Thrown(*thrown)),
        Err(payload) => Msg::failure(SwitchError::Panicked(Panic::new(payload))),
    }
}

/// Called when the last handle of a greenlet is about to go (its `Drop`, with the count still
/// one). Returns whether the count must be kept: the greenlet is running, so it is *orphaned*
/// (the count passes to main's side of the switch, which drops it once the greenlet has
/// stopped; see the module docs). Otherwise destroys it if it is suspended mid-function (or has
/// not started), with the running greenlet made consistent.
#[cold]
pub(crate) fn last_handle_dropped(g: &Greenlet) -> bool {
    let inner = g.inner();
    if inner.kind != Kind::Coroutine {
        return false;
    }
    let state = inner.state.get();
    if is_running(inner) && state == State::Started {
        inner.orphaned.set(true);
        return true;
    }
    // An unstarted one too: corosensei cannot propagate a panic of its function's captures
    // out of dropping its coroutine (it aborts), so they are dropped on its own stack instead.
    if !matches!(state, State::Started | State::Unstarted) {
        return false;
    }
    if in_hub() {
        // The hub is running and may hold borrows of its own state (a wait list it is waking);
        // the greenlet's destructors may need that state. Destroy it at the hub's next safe
        // point instead.
        Sched::defer_destroy(g.clone());
    } else {
        destroy(g);
    }
    false
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
    if is_running(inner) {
        // Never expected (a running greenlet's last handle orphans it instead); resuming it
        // from here would re-enter its stack.
        return;
    }
    // SAFETY: the greenlet has not finished and is not running (it is unstarted or suspended),
    // so no resume of it is in progress and main's side holds no reference into `coro`.
    let coro: &mut Option<Coro> = unsafe { &mut *inner.coro.get() };
    let Some(co) = coro.as_mut() else { return };
    let scope = Destroying::enter(g);
    inner.inbox.put(Msg::throw(Box::new(GreenletExit)));
    let mut left = None;
    for _ in 0..DESTROY_ATTEMPTS {
        match co.resume(()) {
            CoroutineResult::Return(outcome) => {
                left = Some(outcome);
                break;
            }
            // It tried to switch, and put nothing anywhere (`refused_while_destroyed`).
            CoroutineResult::Yield(_) => {
                inner.inbox.put(Msg::failure(SwitchError::NotAllowed(
                    crate::greenlet::DESTROYING,
                )));
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

/// Process exit: ends a suspended greenlet without running it. Its stack, and what lives on it,
/// is leaked, not unwound, as std leaves other threads' stacks at process exit: unwinding cost
/// 4–15 µs a greenlet depending on the host (ARCHITECTURE.md, "Thread exit", says how it was
/// measured), for destructors whose effects the exiting process could not keep anyway.
/// Unstarted and running greenlets are left to [`destroy`] (the first unwinds nothing, the
/// second is never touched).
pub(crate) fn abandon(g: &Greenlet) {
    let inner = g.inner();
    if is_running(inner) || inner.state.get() != State::Started {
        return;
    }
    // SAFETY: the greenlet is suspended and not running, so no resume of it is in progress and
    // nothing holds a reference into `coro`.
    let coro: &mut Option<Coro> = unsafe { &mut *inner.coro.get() };
    if let Some(co) = coro.take() {
        // Dropping a suspended coroutine would force an unwind of its stack: forget it instead.
        std::mem::forget(co);
    }
    inner.state.set(State::Dead);
}

/// How many times a greenlet being destroyed may refuse to finish before it is abandoned.
const DESTROY_ATTEMPTS: usize = 16;

/// The switch state while a greenlet is destroyed: the greenlet is current and `Destroying`;
/// the greenlet that was current steps aside (no longer current, so a switch to it is a real,
/// refused switch). Dropping it, on return or unwind alike, marks the greenlet finished and
/// puts the previous greenlet back.
struct Destroying<'a> {
    g: &'a Inner,
    prev: *const Inner,
}

impl<'a> Destroying<'a> {
    fn enter(g: &'a Greenlet) -> Destroying<'a> {
        let prev = CURRENT.replace(g.as_ptr());
        let inner = g.inner();
        inner.state.set(State::Destroying);
        Destroying { g: inner, prev }
    }
}

impl Drop for Destroying<'_> {
    fn drop(&mut self) {
        // Finished, or abandoned: either way its coroutine goes (an unfinished one is leaked).
        mark_finished(self.g);
        CURRENT.set(self.prev);
    }
}

/// Wraps an `UnsafeCell<Option<Coro>>` for `Inner`.
pub(crate) type CoroCell = UnsafeCell<Option<Coro>>;

/// Starts loading the first lines of `g`'s allocation (its handle counts, which `Rc` keeps in
/// the 16 bytes before it, and its hot fields) and its stack hint, ahead of a resume: see
/// [`prefetch_stack`].
#[inline(always)]
pub(crate) fn prefetch_inner(g: &Inner) {
    let p = (g as *const Inner).cast::<u8>().wrapping_sub(16);
    prefetch(p);
    prefetch(p.wrapping_add(64));
    prefetch(p.wrapping_add(128));
    prefetch(g.stack_hint.as_ptr().cast());
}

/// Starts loading the stack lines around where `g` last suspended, ahead of its resume: with
/// thousands of greenlets, each is resumed after the others pushed its lines out of the cache.
/// Reads `g`'s hint, so call it once [`prefetch_inner`] has had time to bring that in.
#[inline(always)]
pub(crate) fn prefetch_stack(g: &Inner) {
    let sp = g.stack_hint.get();
    if sp == 0 {
        return;
    }
    let p = (sp & !63).wrapping_sub(PREFETCH_BELOW) as *const u8;
    for i in 0..PREFETCH_STACK_LINES {
        prefetch(p.wrapping_add(64 * i));
    }
}

/// The stack lines [`prefetch_stack`] loads, from [`PREFETCH_BELOW`] bytes under the hint: the
/// switch's saved registers and the rest of the suspending frame below it, the park's frames
/// (432 bytes from a socket read down to the switch) and the handler's locals above it. On
/// the `hub/yield_2000` bench and HTTP at c=2000, 12, 16 and 24 lines did equally well.
const PREFETCH_STACK_LINES: usize = 16;
const PREFETCH_BELOW: usize = 256;

/// A hint to load the line at `p` into the cache. Elsewhere than on x86-64 it does nothing.
#[inline(always)]
fn prefetch(p: *const u8) {
    // SAFETY: SSE is part of x86-64, and a prefetch of any address, mapped or not, has no
    // effect but on the cache.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

//! The hub: one per thread, it runs whichever greenlet is ready while others block.
//!
//! The hub is not a greenlet with a stack of its own: it is a pseudo-greenlet of the dispatch
//! loop, so a greenlet that blocks (parks) suspends straight into the loop, which picks the next
//! ready greenlet and resumes it: two stack switches per hand-over. The ready queue is FIFO. One
//! loop turn runs a batch of ready greenlets (those ready at its start, and at least
//! [`MIN_BATCH`] resumes while the queue is not empty, so that two greenlets handing over to
//! each other do not pay a turn per hand-over), fires due timers, and polls mio; it blocks in
//! mio only when nothing is ready, with the next deadline as timeout. When nothing at all can
//! wake anyone (no ready greenlet, no timer, no registered I/O, no work on other threads), the
//! main greenlet's blocking call gets [`LoopExit`] instead of hanging.

mod idslab;
mod io;
mod local;
mod monitor;
mod ready;
mod remote;
mod sampler;
mod spawn;
mod spin;
mod timeout;
mod timer;
mod waitable;
pub(crate) mod waitlist;
mod waits;
mod wakelist;
mod xthread;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::error::SwitchError;
use crate::greenlet::{Greenlet, Inner, Kind};
use crate::sched::Scheduler;
use crate::switch::{self, Msg};

pub(crate) use self::io::{
    Direction, IoRegistration, harvests as io_harvests, wait_any as wait_any_io,
};
pub use self::local::LocalKey;
pub use self::remote::HubHandle;
pub(crate) use self::remote::{LoadToken, RemoteNotify, RemoteWait, RemoteWaker};
pub use self::spawn::{
    JoinError, JoinHandle, LinkFn, LinkKey, SpawnBuilder, spawn, spawn_later, spawn_raw,
};
pub use self::timeout::{Elapsed, Timeout, with_timeout};
pub use self::waitable::{Waitable, Wakeup, iwait_objects, wait_any, wait_objects};
pub use self::waits::{Kill, idle, idle_timeout, iwait, joinall, killall, wait, wait_all};
pub(crate) use self::xthread::{Parker, Unparker, parker};

use self::ready::Ready;
use self::timer::{TimerKey, Timers, Wake};

/// Per-greenlet data kept by the hub. In declaration order, what every park and wake-up reads
/// first (see `Inner`, which starts with it).
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct GreenletData {
    /// Non-zero while the greenlet is parked: the token its current waiters carry.
    park_token: Cell<u64>,
    /// A soft kill is pending: the greenlet's next (or current) park fails with `Killed`.
    kill_requested: Cell<bool>,
    /// Active [`Timeout`]s of the greenlet.
    pub(crate) deadlines: timeout::Deadlines,
    /// The greenlet's park timer, if one is armed (see `timer`): it may outlive the park that
    /// armed it, and fires no later than the deadline of the park that relies on it.
    park_timer: Cell<Option<TimerKey>>,
    /// The deadline of the greenlet's current park, if it has one.
    park_deadline: Cell<Option<Instant>>,
    /// Greenlet-local storage (see [`LocalKey`]).
    pub(crate) locals: local::Locals,
    /// A kill or throw that reached the greenlet inside a hooked libc call, kept to be raised
    /// at its next park (see `crate::monkey`).
    #[cfg(feature = "monkey")]
    pub(crate) deferred: crate::monkey::Deferred,
    /// What `greenlet::debug` knows of the greenlet.
    pub(crate) diag: crate::debug::Diag,
}

/// How many bytes at the start of [`GreenletData`] every park and wake-up reads: the park
/// token and the kill request (see the layout test of `Inner`).
#[cfg(test)]
pub(crate) const HOT_GREENLET_DATA: usize =
    std::mem::offset_of!(GreenletData, kill_requested) + std::mem::size_of::<Cell<bool>>();

/// A registration to wake one parked greenlet once. Stale waiters (whose greenlet has been
/// woken already, or has moved on) do nothing, so a greenlet parked on several sources at once
/// (a wait list and a timeout) is resumed exactly once.
#[derive(Clone)]
pub(crate) struct Waiter {
    greenlet: Greenlet,
    token: u64,
}

impl Waiter {
    /// Schedules the greenlet if it is still parked on this waiter; returns whether it was.
    pub(crate) fn wake(&self) -> bool {
        let data = &self.greenlet.inner().sched;
        if self.token != 0 && data.park_token.get() == self.token {
            data.park_token.set(0);
            let entry = Ready::Wake(self.greenlet.clone());
            with_hub(|hub| hub.ready.borrow_mut().push_back(entry));
            true
        } else {
            false
        }
    }

    /// Whether the greenlet is still parked on this waiter.
    pub(crate) fn is_waiting(&self) -> bool {
        self.token != 0 && self.greenlet.inner().sched.park_token.get() == self.token
    }
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("greenlet", &self.greenlet)
            .field("token", &self.token)
            .finish()
    }
}

/// Why a blocking call of the main greenlet gave up instead of waiting.
///
/// One pointer wide: every park returns a `Result` with this error, so the usual `Ok` comes
/// back in registers instead of through a stack slot in each frame of a blocked call.
#[derive(Clone, PartialEq, Eq)]
pub struct LoopExit(Box<LoopExitInfo>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct LoopExitInfo {
    waiting_on: String,
    stopped: bool,
    /// Set when the call could not block at all (it was made while unwinding a panic).
    refused: Option<&'static str>,
    /// Set when the call gave up because its greenlet was killed softly (see
    /// [`JoinHandle::kill_timeout`]).
    killed: bool,
}

impl LoopExit {
    #[cold]
    fn new(
        what: &dyn fmt::Display,
        stopped: bool,
        refused: Option<&'static str>,
        killed: bool,
    ) -> LoopExit {
        LoopExit(Box::new(LoopExitInfo {
            waiting_on: what.to_string(),
            stopped,
            refused,
            killed,
        }))
    }

    /// What the blocked call was waiting for.
    pub fn waiting_on(&self) -> &str {
        &self.0.waiting_on
    }

    /// Whether the hub was asked to stop (by [`HubHandle::stop`]) rather than running dry.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped
    }

    /// Whether the call was refused because blocking was not allowed where it was made (for
    /// example in a destructor running while a panic or a kill unwinds the greenlet).
    pub fn is_refused(&self) -> bool {
        self.0.refused.is_some()
    }

    /// Whether the call gave up because its greenlet was asked to finish by a soft kill
    /// ([`JoinHandle::kill_timeout`], [`killall`] with [`Kill::Grace`]). The error types of the
    /// blocking calls report this as their own `Killed`.
    pub fn is_killed(&self) -> bool {
        self.0.killed
    }

    pub(crate) fn killed(what: &dyn fmt::Display) -> LoopExit {
        LoopExit::new(what, false, None, true)
    }
}

impl fmt::Debug for LoopExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LoopExitInfo {
            waiting_on,
            stopped,
            refused,
            killed,
        } = &*self.0;
        f.debug_struct("LoopExit")
            .field("waiting_on", waiting_on)
            .field("stopped", stopped)
            .field("refused", refused)
            .field("killed", killed)
            .finish()
    }
}

impl fmt::Display for LoopExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = self.0.refused {
            write!(f, "cannot wait on {} here: {why}", self.0.waiting_on)
        } else if self.0.killed {
            write!(
                f,
                "the greenlet was killed while waiting on {}",
                self.0.waiting_on
            )
        } else if self.0.stopped {
            write!(
                f,
                "the hub was stopped while waiting on {}",
                self.0.waiting_on
            )
        } else {
            write!(
                f,
                "LoopExit: this operation would block forever: nothing can wake the hub \
                 (no ready greenlet, timer, I/O or thread-pool work) while waiting on {}",
                self.0.waiting_on
            )
        }
    }
}

impl std::error::Error for LoopExit {}

thread_local! {
    /// This thread's hub, created on first use and freed by the runtime's teardown at thread
    /// exit (see `crate::thread_state`). A const-initialised thread-local without a destructor: a
    /// plain load on the park/wake path, and readable during thread exit.
    static HUB_PTR: Cell<*const Hub> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with this thread's hub, creating it on first use (also for code that runs after
/// the thread's teardown: that hub is freed again, see `crate::thread_state`).
#[inline]
pub(crate) fn with_hub<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let mut p = HUB_PTR.get();
    if p.is_null() {
        p = create_hub();
    }
    // SAFETY: HUB_PTR is non-null only while the boxed hub it points to is alive (set when it is
    // created, cleared in `free` before the box is dropped); the box never moves. The hub is
    // thread-local and is only used through shared references.
    f(unsafe { &*p })
}

/// The serial number of this thread's hub, or 0 if it has none (never creates one).
#[inline]
pub(crate) fn current_serial() -> u64 {
    let p = HUB_PTR.get();
    if p.is_null() {
        return 0;
    }
    // SAFETY: as in `with_hub`.
    unsafe { (*p).remote.serial() }
}

/// Whether this thread has a hub (never creates one).
#[inline]
pub(crate) fn exists() -> bool {
    !HUB_PTR.get().is_null()
}

/// Tells the blocking monitor (when it is on) which libc call the running greenlet is about to
/// block the thread in, or, with `None`, that the call returned.
#[cfg(feature = "monkey")]
pub(crate) fn note_blocking_call(call: Option<(&'static str, i32)>) {
    let _ = try_with_hub(|hub| hub.monitor.note_call(call));
}

/// Whether a hooked call may use the hub: always, as [`with_hub`] never fails (during thread
/// exit it gives a hub in which the parks of the greenlets being destroyed are refused, as a
/// kill's are; see `crate::thread_state`).
#[cfg(feature = "monkey")]
pub(crate) fn is_available() -> bool {
    true
}

#[cold]
fn create_hub() -> *const Hub {
    // The runtime tears the hub down at thread exit: make sure it exists.
    switch::current_ptr();
    let p = Box::into_raw(Box::new(Hub::new()));
    HUB_PTR.set(p);
    // The hub's idle turns give back what bursts of greenlets leave in the stack pool.
    crate::stack::set_stack_decay_driven(true);
    p
}

/// [`with_hub`] if the hub exists: does nothing during thread exit, once the hub is gone.
pub(crate) fn try_with_hub<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let p = HUB_PTR.get();
    // SAFETY: as in `with_hub`.
    (!p.is_null()).then(|| f(unsafe { &*p }))
}

/// Thread exit: empties the hub's queues (ready greenlets, timers, greenlets waiting to be
/// destroyed, remote wake-ups), dropping their entries quietly outside any borrow. Returns
/// whether there was anything.
pub(crate) fn drain() -> bool {
    let Some((ready, timers, doomed, remote)) = try_with_hub(|hub| {
        (
            std::mem::take(&mut *hub.ready.borrow_mut()),
            std::mem::take(&mut *hub.timers.borrow_mut()),
            std::mem::take(&mut *hub.doomed.borrow_mut()),
            hub.remote.take_waiting(),
        )
    }) else {
        return false;
    };
    let busy = !ready.is_empty() || !timers.is_empty() || !doomed.is_empty() || !remote.is_empty();
    for g in &doomed {
        switch::destroy(g);
    }
    crate::thread_state::drop_quietly(
        (ready, timers, doomed, remote),
        "emptying the hub at thread exit",
    );
    busy
}

/// Thread exit: frees the hub. What its drop runs finds no hub (`try_with_hub` is `None`).
pub(crate) fn free() {
    let p = HUB_PTR.replace(std::ptr::null());
    if !p.is_null() {
        crate::stack::set_stack_decay_driven(false);
        // SAFETY: `p` came from `Box::into_raw` in `create_hub` and is freed once: the pointer
        // was cleared above.
        let hub = unsafe { Box::from_raw(p.cast_mut()) };
        crate::thread_state::drop_quietly(hub, "freeing the hub at thread exit");
    }
}

/// How many greenlets to resume between two non-blocking I/O polls when greenlets keep each
/// other busy: the poll is a system call, so it is amortised, but I/O is never starved.
const RESUMES_PER_POLL: u32 = 61;

/// The fewest resumes between two loop turns while greenlets are ready. A turn between every
/// batch of "what was ready at its start" cost a turn per hand-over or two when a few
/// greenlets yield to each other; a due timer or a remote wake-up still waits at most this many
/// resumes (or one batch, when more than this many greenlets are ready), and I/O is polled
/// after [`RESUMES_PER_POLL`] as before.
const MIN_BATCH: usize = 64;

/// How many greenlets must be ready after the one picked for the pick to prefetch what the
/// next ones' resumes will touch. Below it, what they touch is still in the cache from their
/// last run (a few greenlets yielding to each other), and the prefetches would be wasted work.
const PREFETCH_QUEUE: usize = 16;
/// Which ready entry's stack the pick prefetches (0: the next to run), and which one's first
/// lines: one further, so that its stack hint is in the cache when its turn comes. Prefetching
/// two further did no better at 2,000 or 10,000 greenlets.
const PREFETCH_STACK_AHEAD: usize = 0;
const PREFETCH_INNER_AHEAD: usize = 1;

/// Starts loading what the next resumes will touch: the next greenlet's stack (its hint came
/// in with its first lines, prefetched at the last pick) and the first lines of the one after.
/// With thousands of connections, each greenlet is resumed after the others have pushed its
/// lines out of the cache; loaded during the resume before it, they are no longer misses.
#[inline(never)]
fn prefetch_ahead(ready: &VecDeque<Ready>) {
    if let Some(next) = ready.get(PREFETCH_STACK_AHEAD) {
        switch::prefetch_stack(next.greenlet().inner());
    }
    if let Some(after) = ready.get(PREFETCH_INNER_AHEAD) {
        switch::prefetch_inner(after.greenlet().inner());
    }
}

/// The per-thread scheduler state.
pub(crate) struct Hub {
    /// Greenlets to resume, with what to resume them with.
    ready: RefCell<VecDeque<Ready>>,
    /// How many entries of `ready` belong to the current loop turn.
    batch_left: Cell<usize>,
    resumes_since_poll: Cell<u32>,
    timers: RefCell<Timers>,
    io: io::Reactor,
    remote: remote::RemoteState,
    token_seq: Cell<u64>,
    monitor: monitor::Monitor,
    /// Suspended greenlets whose last handle went while the hub was running: destroyed at the
    /// start of the hub's next step, when it holds no borrow of its own state.
    doomed: RefCell<Vec<Greenlet>>,
    /// Greenlets in [`idle`]: woken when nothing else is ready.
    idlers: waitlist::WaitList,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("ready", &self.ready.borrow().len())
            .field("timers", &self.timers.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    fn new() -> Hub {
        Hub {
            ready: RefCell::new(VecDeque::new()),
            batch_left: Cell::new(0),
            resumes_since_poll: Cell::new(0),
            timers: RefCell::new(Timers::default()),
            io: io::Reactor::default(),
            remote: remote::RemoteState::default(),
            token_seq: Cell::new(0),
            monitor: monitor::Monitor::from_env(),
            doomed: RefCell::new(Vec::new()),
            idlers: waitlist::WaitList::new(),
        }
    }

    /// Picks the next greenlet to resume and puts its message in its inbox; blocks in mio when
    /// nothing is ready. The usual case (a batch under way, nothing to destroy, a live entry at
    /// the front) is inlined into the dispatch loop; the rest goes out of line.
    #[inline]
    fn next(&self) -> Greenlet {
        if self.batch_left.get() > 0 && self.doomed.borrow().is_empty() {
            let entry = {
                let mut ready = self.ready.borrow_mut();
                let entry = ready.pop_front();
                if ready.len() >= PREFETCH_QUEUE {
                    prefetch_ahead(&ready);
                }
                entry
            };
            return match entry {
                Some(Ready::Wake(g)) if !g.is_dead() => {
                    self.batch_left.set(self.batch_left.get() - 1);
                    self.resuming(g, Msg::wake())
                }
                popped => self.next_slow(popped),
            };
        }
        self.next_slow(None)
    }

    /// [`next`](Hub::next) for the rest: `popped` is the entry the fast path took out, if any
    /// (a dead greenlet's, or none).
    #[cold]
    #[inline(never)]
    fn next_slow(&self, popped: Option<Ready>) -> Greenlet {
        if let Some(entry) = popped {
            // It counts against the batch as if popped here.
            self.batch_left.set(self.batch_left.get() - 1);
            let (g, msg) = entry.into_parts();
            if !g.is_dead() {
                return self.resuming(g, msg);
            }
            // A dead greenlet's entry is stale.
            drop((g, msg));
        }
        self.destroy_doomed();
        loop {
            if self.batch_left.get() > 0 {
                self.batch_left.set(self.batch_left.get() - 1);
                let entry = self.ready.borrow_mut().pop_front();
                if let Some((g, msg)) = entry.map(Ready::into_parts) {
                    if g.is_dead() {
                        continue;
                    }
                    return self.resuming(g, msg);
                }
            }
            if let Err(exit) = self.turn() {
                let main = switch::main_greenlet();
                main.inbox().put(Msg::failure(exit));
                return main;
            }
            self.batch_left
                .set(self.ready.borrow().len().max(MIN_BATCH));
        }
    }

    /// `g` is resumed next with `msg`: puts the message in its inbox.
    #[inline]
    fn resuming(&self, g: Greenlet, msg: Msg) -> Greenlet {
        self.resumes_since_poll
            .set(self.resumes_since_poll.get() + 1);
        self.monitor.resuming(&g);
        g.inbox().put(msg);
        g
    }

    /// Destroys the greenlets handed to [`defer_destroy`]; no borrow of hub state is held here.
    #[inline]
    fn destroy_doomed(&self) {
        if self.doomed.borrow().is_empty() {
            return;
        }
        loop {
            let g = self.doomed.borrow_mut().pop();
            let Some(g) = g else { break };
            switch::destroy(&g);
            // Dead now: dropping the handle runs only what is left of it, quietly (in the hub).
            drop(g);
        }
    }

    /// One loop turn between batches: remote wake-ups, due timers, I/O. Blocks when nothing is
    /// ready. Fails when nothing could ever make anything ready.
    fn turn(&self) -> Result<(), SwitchError> {
        self.monitor.idle();
        self.remote.drain();
        if self.remote.stop_requested() {
            // Main gets the stop now; a wake-up already queued for it would be spurious later.
            // (Main's handle is never its last, and what main is scheduled with is no user
            // value: nothing runs while the queue is borrowed.)
            self.ready.borrow_mut().retain(|e| !e.greenlet().is_main());
            return Err(SwitchError::LoopExit { stopped: true });
        }
        self.fire_timers();
        let idle = self.ready.borrow().is_empty();
        if idle && !self.idlers.is_empty() {
            // Greenlets wait for the hub to be idle: ready I/O counts as work, so look first.
            self.poll(Some(Duration::ZERO));
            self.fire_timers();
            if self.ready.borrow().is_empty() {
                self.idlers.wake_all();
            }
        } else if idle {
            let (timeout, strong_timer) = {
                let timers = self.timers.borrow();
                let timeout = timers
                    .next_deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()));
                (timeout, timers.has_strong())
            };
            // Weak timers (the timeout of `wait_all`) do not keep the hub alive.
            if !strong_timer && !self.io.has_waiters() && !self.remote.has_outstanding() {
                // A remote waker puts its wake-up in the inbox before it stops counting as
                // outstanding: one that fired since the drain above is in there now.
                self.remote.drain();
                if self.ready.borrow().is_empty() {
                    return Err(SwitchError::LoopExit { stopped: false });
                }
                return Ok(());
            }
            // The stack pool's decay (see `crate::stack`) does not keep the hub alive, but it
            // bounds its sleep; nothing is read when no decay step is scheduled.
            let decay = crate::stack::next_stack_decay();
            let timeout = match decay {
                Some(due) => {
                    let left = due.saturating_duration_since(Instant::now());
                    Some(timeout.map_or(left, |t| t.min(left)))
                }
                None => timeout,
            };
            self.poll(timeout);
            if decay.is_some() {
                crate::stack::decay_stacks_if_due();
            }
            self.fire_timers();
        } else if self.resumes_since_poll.get() >= RESUMES_PER_POLL
            && (self.io.has_waiters() || self.remote.is_live())
        {
            self.poll(Some(Duration::ZERO));
        }
        Ok(())
    }

    fn poll(&self, timeout: Option<Duration>) {
        if timeout != Some(Duration::ZERO)
            && self.remote.spin_for_wake_up(timeout)
            && !(self.io.has_waiters() && self.resumes_since_poll.get() >= RESUMES_PER_POLL)
        {
            // Another thread woke a greenlet while the hub spun: no system call on either side.
            self.remote.drain();
            return;
        }
        self.resumes_since_poll.set(0);
        if timeout == Some(Duration::ZERO) {
            self.io.poll(timeout);
        } else {
            // A wake-up from another thread that came in before the hub was marked asleep
            // would not interrupt the poll: look for one first.
            let timeout = if self.remote.prepare_sleep() {
                timeout
            } else {
                Some(Duration::ZERO)
            };
            self.io.poll(timeout);
            self.remote.woke_up();
        }
        self.remote.drain();
    }

    #[inline]
    fn fire_timers(&self) {
        if !self.timers.borrow().is_empty() {
            self.fire_due_timers();
        }
    }

    fn fire_due_timers(&self) {
        let now = Instant::now();
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            match due {
                Some((_, Wake::Waiter(waiter, _))) => {
                    waiter.wake();
                }
                Some((key, Wake::Park(g))) => self.fire_park_timer(key, g, now),
                None => break,
            }
        }
    }

    /// The park timer `key` of greenlet `weak` fired: it wakes the greenlet's current park if
    /// that park's deadline has passed, re-arms itself for the deadline if it is later, and
    /// goes otherwise (no park with a deadline, or an earlier timer replaced it).
    fn fire_park_timer(&self, key: TimerKey, weak: crate::greenlet::WeakGreenlet, now: Instant) {
        let Some(g) = weak.upgrade() else {
            return; // the greenlet is gone
        };
        let data = &g.inner().sched;
        if data.park_timer.get() != Some(key) {
            return;
        }
        data.park_timer.set(None);
        let token = data.park_token.get();
        let Some(deadline) = data.park_deadline.get().filter(|_| token != 0) else {
            return;
        };
        if deadline <= now {
            Waiter { greenlet: g, token }.wake();
        } else {
            let key = self.timers.borrow_mut().insert_park(deadline, weak);
            data.park_timer.set(Some(key));
        }
    }

    fn new_token(&self) -> u64 {
        let t = self.token_seq.get() + 1;
        self.token_seq.set(t);
        t
    }
}

/// The hub as the core's scheduler (see `crate::sched`).
#[derive(Debug)]
pub(crate) struct HubScheduler;

impl Scheduler for HubScheduler {
    type Data = GreenletData;
    type Leftovers = local::Locals;

    #[inline]
    fn next() -> Greenlet {
        with_hub(Hub::next)
    }

    fn delivered(msg: Msg) {
        delivered_to_hub(msg);
    }

    fn defer_destroy(g: Greenlet) {
        with_hub(|hub| hub.doomed.borrow_mut().push(g));
    }

    fn finishing(g: &Inner, outcome: Msg) -> Msg {
        // A kill that reached the greenlet inside a hooked libc call could not unwind through C
        // frames: it was kept for later, and is the outcome if nothing raised it since.
        #[cfg(feature = "monkey")]
        let outcome = match crate::monkey::take_deferred(g) {
            Some(payload) if !outcome.is_throw() && outcome.failure_ref().is_none() => {
                switch::outcome_of_unwind(payload)
            }
            _ => outcome,
        };
        g.sched.locals.clear();
        // Its park timer (if one is still armed) goes with it, rather than when it fires.
        if let Some(key) = g.sched.park_timer.take() {
            cancel_timer(&key);
        }
        outcome
    }

    fn leftovers(data: &mut GreenletData) -> Option<local::Locals> {
        (!data.locals.is_empty()).then(|| std::mem::take(&mut data.locals))
    }

    fn clear_main(main: &Inner) -> bool {
        main.sched.locals.clear()
    }

    fn drain() -> bool {
        drain()
    }

    fn free() {
        free()
    }

    fn exists() -> bool {
        exists()
    }
}

/// The outcome of a greenlet whose parent is the hub (as in gevent: spawned greenlets, and any
/// greenlet given the hub as parent): nobody receives it. A value is dropped, a failure is
/// logged (gevent's hub prints it); a panic of a destructor is logged too, never propagated:
/// the hub must keep running.
#[cold]
fn delivered_to_hub(msg: Msg) {
    if let Some(e) = msg.failure_ref()
        && e.is_failure()
    {
        log::error!("greenlet: a greenlet whose parent is the hub failed: {e}");
    }
    crate::thread_state::drop_quietly(msg, "dropping a value left for the hub");
}

/// Keeps the handle of a greenlet placed on this hub by another thread, for
/// [`shut_down_remote`].
pub(crate) fn track_remote(handle: JoinHandle<()>) {
    with_hub(|hub| hub.remote.track(handle));
}

/// Shuts this hub's remote side down: no more greenlets from other threads (those sent
/// already are started), then waits up to `grace` for the greenlets placed here from other
/// threads, and kills those still running. Returns how many were killed.
pub(crate) fn shut_down_remote(grace: Duration) -> usize {
    with_hub(|hub| hub.remote.close());
    let placed = with_hub(|hub| hub.remote.spawned());
    if placed.is_empty() {
        return 0;
    }
    let _ = joinall(&placed, Some(grace), None);
    let left: Vec<_> = placed.into_iter().filter(|h| !h.is_ready()).collect();
    if !left.is_empty() {
        let _ = killall(&left, Kill::JoinTimeout(Duration::from_secs(1)));
    }
    left.len()
}

/// Prepares the current greenlet to park: the returned waiter wakes it once.
#[inline]
pub(crate) fn waiter() -> Waiter {
    let greenlet = crate::current();
    // A kill that had to wait (it reached the greenlet inside a hooked libc call) is raised
    // now, before the greenlet is put on any wait list.
    #[cfg(feature = "monkey")]
    if let Some(payload) = crate::monkey::take_deferred(greenlet.inner()) {
        drop(greenlet);
        std::panic::resume_unwind(payload);
    }
    let token = with_hub(Hub::new_token);
    greenlet.inner().sched.park_token.set(token);
    Waiter { greenlet, token }
}

/// Parks the current greenlet until one of the waiters made by the last [`waiter`] call wakes
/// it, or `deadline` passes. Returns whether it was woken before the deadline.
///
/// # Errors
/// [`LoopExit`] when the current greenlet is main and nothing could ever wake it.
pub(crate) fn park(
    waiter: &Waiter,
    deadline: Option<Instant>,
    what: &dyn fmt::Display,
) -> Result<bool, LoopExit> {
    park_with(waiter, deadline, what, false, true)
}

/// [`park`], with a choice of whether the timer for `deadline` is weak (a weak timer does not
/// keep the hub from reporting that it ran dry: gevent's `ref=False` timers), and of whether
/// the greenlet's [`Timeout`]s cut the park short (std-shaped calls that have no error to
/// report a timeout with, such as `sync::Mutex::lock`, ignore them).
pub(crate) fn park_with(
    waiter: &Waiter,
    deadline: Option<Instant>,
    what: &dyn fmt::Display,
    weak_timer: bool,
    honour_timeouts: bool,
) -> Result<bool, LoopExit> {
    let data = &waiter.greenlet.inner().sched;
    if data.kill_requested.get() {
        return Err(killed_before_park(data, what));
    }
    let deadline = if honour_timeouts {
        timeout::effective_deadline(&waiter.greenlet, deadline)
    } else {
        deadline
    };
    let serial = match deadline {
        Some(d) => arm_park_deadline(waiter, d, weak_timer),
        None => 0,
    };
    crate::debug::parking(&data.diag, waiter.token, what);
    let msg = switch::switch_to_hub();
    // Whatever resumed us, we are no longer parked: stale waiters must not wake us again.
    data.park_token.set(0);
    if deadline.is_some() {
        disarm_park_deadline(data, serial, weak_timer);
    }
    // The usual end, and the only one decided here: a wake-up. The rest goes out of line, so
    // that this frame, which a server's every request writes and reads back after the others
    // have pushed it out of the cache, stays small.
    if msg.is_wake() && !data.kill_requested.get() {
        return Ok(deadline.is_none_or(|d| !timed_out(data, d)));
    }
    park_ended(data, msg, deadline, what)
}

/// The park with a deadline is over: its timer no longer keeps the hub alive. (The timer
/// itself stays armed for the next park, see [`arm_park_deadline`].)
#[inline]
fn disarm_park_deadline(data: &GreenletData, serial: u64, weak_timer: bool) {
    data.park_deadline.set(None);
    // Not on a hub made since (at thread exit), which does not count this park.
    if !weak_timer && current_serial() == serial {
        with_hub(|hub| hub.timers.borrow_mut().strong_park(false));
    }
}

/// Whether a park woken up with `deadline` ended because the deadline passed; records which
/// `Timeout`s cut it short (see `with_timeout`). The clock is read only for a park with a
/// deadline: most have none, and the read was a sixth of a channel hand-over.
#[inline]
fn timed_out(data: &GreenletData, deadline: Instant) -> bool {
    let timed_out = Instant::now() >= deadline;
    if timed_out {
        data.deadlines.mark_fired(deadline);
    }
    timed_out
}

/// A soft kill came before this park: it fails at once, and only this one.
#[cold]
#[inline(never)]
fn killed_before_park(data: &GreenletData, what: &dyn fmt::Display) -> LoopExit {
    data.kill_requested.set(false);
    data.park_token.set(0);
    LoopExit::killed(what)
}

/// Arms the park timer for `deadline` when none fires by then; returns the hub's serial.
///
/// The park timer is armed only when none fires by the deadline: a greenlet that parks again
/// and again with a later deadline each time (a socket under a read timeout) re-arms it about
/// once per timeout period instead of inserting and cancelling one per park.
#[inline(never)]
fn arm_park_deadline(waiter: &Waiter, deadline: Instant, weak_timer: bool) -> u64 {
    let data = &waiter.greenlet.inner().sched;
    data.park_deadline.set(Some(deadline));
    with_hub(|hub| {
        let mut timers = hub.timers.borrow_mut();
        if !weak_timer {
            timers.strong_park(true);
        }
        if data.park_timer.get().is_none_or(|(at, _)| at > deadline) {
            let key = timers.insert_park(deadline, waiter.greenlet.downgrade());
            data.park_timer.set(Some(key));
        }
        hub.remote.serial()
    })
}

/// The end of a park that was not a plain wake-up: a kill, a throw, a failure, or a stray
/// switch.
#[inline(never)]
fn park_ended(
    data: &GreenletData,
    msg: Msg,
    deadline: Option<Instant>,
    what: &dyn fmt::Display,
) -> Result<bool, LoopExit> {
    if data.kill_requested.get() && !msg.is_throw() {
        // Woken by a soft kill (or killed softly while already woken): this call fails.
        data.kill_requested.set(false);
        return Err(LoopExit::killed(what));
    }
    match msg.receive() {
        Ok(_) => Ok(deadline.is_none_or(|d| !timed_out(data, d))),
        Err(SwitchError::LoopExit { stopped }) => Err(LoopExit::new(what, stopped, None, false)),
        Err(SwitchError::NotAllowed(why)) => Err(LoopExit::new(what, false, Some(why), false)),
        // A stray explicit switch into a parked greenlet: treat it as a wake-up; callers
        // re-check their condition.
        Err(_) => Ok(true),
    }
}

fn cancel_timer(key: &TimerKey) {
    // The waiter is dropped after the borrow ends: it may hold the last handle of a greenlet.
    let removed = try_with_hub(|hub| hub.timers.borrow_mut().remove(key));
    drop(removed);
}

/// Schedules `greenlet` to be resumed with `msg` in this or the next loop turn.
pub(crate) fn schedule(greenlet: Greenlet, msg: Msg) {
    let entry = Ready::new(greenlet, msg);
    with_hub(|hub| hub.ready.borrow_mut().push_back(entry));
}

/// Resumes a parked greenlet by raising `payload` at its park (kill); returns whether it was
/// parked. An explicitly suspended greenlet (not parked) is scheduled the same way.
pub(crate) fn interrupt(greenlet: &Greenlet, payload: Box<dyn std::any::Any + Send>) {
    greenlet.inner().sched.park_token.set(0);
    schedule(greenlet.clone(), Msg::throw(payload));
}

/// The ids of the greenlets waiting in the ready queue (for `debug::dump`).
pub(crate) fn ready_ids() -> Vec<u64> {
    try_with_hub(|hub| {
        hub.ready
            .borrow()
            .iter()
            .map(|e| e.greenlet().id())
            .collect()
    })
    .unwrap_or_default()
}

/// The token of `g`'s current park, 0 when it is not parked on the hub.
pub(crate) fn park_token(g: &crate::greenlet::Inner) -> u64 {
    g.sched.park_token.get()
}

/// Asks `greenlet` to finish softly: its current park (if it is parked on the hub) or its next
/// one fails with `Killed`, once; the blocking calls after that work as usual, so its cleanup
/// code may block.
pub(crate) fn request_kill(greenlet: &Greenlet) {
    let data = &greenlet.inner().sched;
    data.kill_requested.set(true);
    if data.park_token.get() != 0 {
        // Parked: wake it now; `park` sees the request and fails.
        data.park_token.set(0);
        schedule(greenlet.clone(), Msg::wake());
    }
}

/// Whether the current greenlet may block on the hub.
#[inline]
pub(crate) fn check_can_block() {
    if switch::current_kind() == Kind::Hub {
        hub_blocking_misuse();
    }
}

#[cold]
fn hub_blocking_misuse() -> ! {
    panic!("cannot block inside the hub (a callback run by the hub must not wait)");
}

/// Suspends the current greenlet for `duration`, letting others run (gevent's `sleep`).
///
/// `sleep(Duration::ZERO)` is [`yield_now`]. When the main greenlet sleeps, it runs the hub
/// until the time is up.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// greenlet::sleep(Duration::from_millis(20));
/// assert!(t.elapsed() >= Duration::from_millis(20));
/// ```
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        yield_now();
        return;
    }
    let deadline = Instant::now() + duration;
    sleep_until(deadline);
}

/// Suspends the current greenlet until `deadline`.
pub fn sleep_until(deadline: Instant) {
    check_can_block();
    loop {
        let w = waiter();
        // A sleep has its own timer, so the hub cannot run dry under it; it can be stopped.
        // Ok(false): this deadline or an enclosing `Timeout` passed; Err: the hub stopped.
        if !matches!(park(&w, Some(deadline), &"sleep"), Ok(true)) || Instant::now() >= deadline {
            return;
        }
    }
}

/// Lets every other ready greenlet run once, then continues (gevent's `sleep(0)`).
///
/// Greenlets that yield are resumed in FIFO order within one loop turn: two greenlets printing
/// `1A`/`1B` and `2A`/`2B` around a yield print `1A 2A 1B 2B`.
///
/// It is inlined into its caller, so that the stack switch happens in the caller's own frame:
/// a greenlet that yields in its own loop is resumed right there, and the CPU predicts where
/// its returns go. A yield inside a helper function costs about twice as much (two
/// mispredicted returns per hand-over, see the README's Performance section); in a hot loop,
/// call `yield_now` from the loop itself.
#[doc(alias = "sleep(0)")]
#[inline(always)]
pub fn yield_now() {
    if std::thread::panicking() {
        // Switching is refused while unwinding; do not leave a queued entry behind either.
        return;
    }
    let me = crate::current();
    if me.inner().kind == Kind::Hub {
        hub_blocking_misuse();
    }
    with_hub(|hub| hub.ready.borrow_mut().push_back(Ready::Wake(me)));
    // Not unwinding: checked above, and nothing since could have started a panic.
    let msg = switch::switch_to_hub_unchecked();
    if msg.is_wake() {
        msg.discard_wake(); // the common case
    } else {
        yield_interrupted(msg);
    }
}

/// A yield resumed with something other than a wake-up: a kill or a throw.
#[cold]
#[inline(never)]
fn yield_interrupted(msg: Msg) {
    // We were ready, so no LoopExit; a kill unwinds from `receive`.
    let _ = msg.receive();
}

/// Configures this thread's hub before its first use.
///
/// # Examples
/// ```
/// greenlet::HubBuilder::new()
///     .monitor(std::time::Duration::from_millis(100))
///     .threadpool_size(4)
///     .init();
/// ```
#[derive(Debug, Clone, Default)]
pub struct HubBuilder {
    monitor: Option<Duration>,
    threadpool_size: Option<usize>,
}

impl HubBuilder {
    /// A builder with the defaults (monitor off unless `GREENLET_MONITOR` is set).
    pub fn new() -> HubBuilder {
        HubBuilder::default()
    }

    /// Switches the blocking monitor on: any greenlet that keeps the hub from running for
    /// longer than `threshold` is reported through `log::warn!` with its name and a backtrace
    /// of where it is (gevent's `max_blocking_time`; 100 ms is gevent's default).
    ///
    /// The backtrace is taken by the blocked thread itself, on a signal (`SIGRTMAX - 2`) from
    /// the monitor's thread, once per blocking stretch. Like any signal, it makes a system call
    /// that Linux never restarts (`poll`, `select`, `epoll_wait`, `nanosleep` outside std's
    /// `sleep`, which retries) fail once with `EINTR`, so code that blocks in those without
    /// retrying on `EINTR` sees one such failure; with the `monkey` feature a greenlet blocked
    /// in a libc call that the hooks saw is not sampled (the warning names the call instead).
    /// The handler is installed only if nothing else handles that signal.
    ///
    /// The warning is logged shortly after the stretch is seen, from the monitor's second
    /// thread, `greenlet-monitor-report` (started at the first warning): looking up the names
    /// in a backtrace can take a second, and the monitor goes on watching meanwhile.
    pub fn monitor(mut self, threshold: Duration) -> HubBuilder {
        self.monitor = Some(threshold);
        self
    }

    /// Sets how many OS threads [`spawn_blocking`](crate::threadpool::spawn_blocking) may use.
    ///
    /// The pool is process-wide, so this is [`threadpool::set_max_threads`]: the last setting
    /// wins, from whichever thread it comes (gevent's `threadpool.maxsize` is a setter too).
    /// Lowering it starts no new thread until the pool is below the limit; see there.
    ///
    /// [`threadpool::set_max_threads`]: crate::threadpool::set_max_threads
    pub fn threadpool_size(mut self, threads: usize) -> HubBuilder {
        self.threadpool_size = Some(threads);
        self
    }

    /// Applies the settings to the current thread's hub.
    pub fn init(self) {
        if let Some(threshold) = self.monitor {
            with_hub(|hub| hub.monitor.enable(threshold));
        }
        if let Some(n) = self.threadpool_size {
            crate::threadpool::set_max_threads(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hub prefetches a greenlet's stack from its hint: the hint must be in the greenlet's
    /// own stack, next to the frame of its body, whichever way it suspended (below it for a
    /// park; in it for a yield, which is inlined into its caller).
    #[test]
    fn a_suspended_greenlets_stack_hint_is_next_to_its_body_frame() {
        use std::rc::Rc;
        let frame = Rc::new(Cell::new(0usize));
        let f = frame.clone();
        let g = crate::spawn(move || {
            let local = 0u8;
            f.set(std::ptr::addr_of!(local) as usize);
            yield_now();
            f.set(std::ptr::addr_of!(local) as usize);
            sleep(Duration::from_millis(1));
        });
        let inner = g.greenlet().inner();
        assert_eq!(inner.stack_hint.get(), 0, "never suspended yet");
        for how in ["a yield", "a park"] {
            yield_now();
            let (hint, body) = (inner.stack_hint.get(), frame.get());
            assert!(
                body.abs_diff(hint) < 4096,
                "{how}: hint {hint:#x}, body {body:#x}"
            );
            let main_local = 0u8;
            let main_frame = std::ptr::addr_of!(main_local) as usize;
            assert!(
                main_frame.abs_diff(hint) > 64 * 1024,
                "{how}: the hint is in main's stack"
            );
        }
        g.join().unwrap();
    }

    #[test]
    fn waiter_wakes_once() {
        let w = waiter();
        assert!(w.is_waiting());
        assert!(w.wake());
        assert!(!w.wake());
        // The scheduled entry is for the main greenlet; drain it by parking.
        let w2 = waiter();
        assert!(!w.is_waiting());
        drop(w2);
        with_hub(|hub| hub.ready.borrow_mut().clear());
    }
}

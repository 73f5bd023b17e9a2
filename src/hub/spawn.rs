//! Spawned greenlets (gevent's `spawn`): handles to join, get, kill and link them, and the
//! functions that wait on many at once.

use std::cell::{Cell, Ref, RefCell};
use std::fmt;
use std::io;
use std::ops::Not;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::timer::TimerKey;
use super::waitlist::{BlockError, WaitList, block_on, deadline_after};
use super::{LoopExit, Waiter, cancel_timer, interrupt, schedule, with_hub};
use crate::error::{GreenletExit, Panic};
use crate::greenlet::{Builder, Greenlet};
use crate::switch::{self, Msg};

/// A callback run when a spawned greenlet finishes; see [`JoinHandle::link`].
pub type LinkFn<T> = Box<dyn FnOnce(&JoinHandle<T>)>;

/// Why a spawned greenlet produced no value, or a wait on it gave up.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The greenlet panicked; the panic is here.
    Panicked(Panic),
    /// The greenlet was killed (gevent's `GreenletExit`) before it returned.
    Killed,
    /// The value was already taken by an earlier `get`.
    Taken,
    /// The time given to the wait ran out first.
    TimedOut,
    /// Nothing could ever finish the greenlet (see [`LoopExit`]).
    LoopExit(LoopExit),
    /// The greenlet could not be started (no stack could be had, or the hub it was sent to
    /// from another thread had exited).
    Spawn(io::Error),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => fmt::Display::fmt(p, f),
            JoinError::Killed => f.write_str("greenlet was killed"),
            JoinError::Taken => f.write_str("the greenlet's value was already taken by `get`"),
            JoinError::TimedOut => f.write_str("timed out waiting for the greenlet"),
            JoinError::LoopExit(e) => fmt::Display::fmt(e, f),
            JoinError::Spawn(e) => write!(f, "the greenlet could not be started: {e}"),
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JoinError::LoopExit(e) => Some(e),
            JoinError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BlockError> for JoinError {
    fn from(e: BlockError) -> JoinError {
        match e {
            BlockError::TimedOut => JoinError::TimedOut,
            BlockError::LoopExit(e) => JoinError::LoopExit(e),
        }
    }
}

/// What a spawned greenlet's handles share.
struct Shared<T> {
    /// The given name; empty for the automatic `Greenlet-<id>`.
    name: String,
    id: Cell<u64>,
    /// `None` while running; then the outcome (the value is moved out by `get`).
    result: RefCell<Option<Result<T, JoinError>>>,
    done: Cell<bool>,
    joiners: WaitList,
    /// Completion callbacks of multi-handle waits (`joinall`, `iwait`): run once at the end.
    watchers: RefCell<Vec<Box<dyn FnOnce()>>>,
    links: RefCell<Vec<LinkFn<T>>>,
    /// Set by a kill that came before the greenlet started: it then never runs its function.
    killed_before_start: Cell<bool>,
    /// The start timer of a `spawn_later` greenlet, cancelled by a kill before the start: left
    /// in the hub, it would keep the hub from seeing that it ran dry (no `LoopExit`) until then.
    start_timer: Cell<Option<TimerKey>>,
    /// Set while the links run: a link added meanwhile (by a link) is queued behind the others
    /// instead of running at once, so links run in order of adding.
    running_links: Cell<bool>,
    /// Whether anyone looked at the outcome (joined, linked, asked); an unobserved panic is
    /// logged when the last handle goes.
    observed: Cell<bool>,
}

impl<T> Shared<T> {
    fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("Greenlet-{}", self.id.get())
        } else {
            self.name.clone()
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if !self.observed.get()
            && let Some(Err(JoinError::Panicked(p))) = &*self.result.borrow()
        {
            log::error!(
                "greenlet {:?} panicked and nobody joined it: {}",
                self.display_name(),
                p
            );
        }
    }
}

/// A handle on a spawned greenlet (gevent's `Greenlet` object): join it, get its value, kill
/// it, link callbacks to its end. Cloning gives another handle on the same greenlet.
///
/// # Examples
/// ```
/// let h = greenlet::spawn(|| 6 * 7);
/// assert_eq!(h.get().unwrap(), 42);
/// assert!(h.is_ready() && h.is_successful());
/// ```
pub struct JoinHandle<T> {
    greenlet: Greenlet,
    shared: Rc<Shared<T>>,
}

impl<T> Clone for JoinHandle<T> {
    fn clone(&self) -> Self {
        JoinHandle {
            greenlet: self.greenlet.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.shared.result.borrow() {
            None if self.greenlet.is_started() => "running",
            None => "pending",
            Some(Ok(_)) => "succeeded",
            Some(Err(JoinError::Killed)) => "killed",
            Some(Err(JoinError::Taken)) => "taken",
            Some(Err(_)) => "failed",
        };
        f.debug_struct("JoinHandle")
            .field("id", &self.greenlet.id())
            .field("name", &self.shared.display_name())
            .field("state", &state)
            .finish()
    }
}

/// Configures a greenlet to spawn: name and stack size.
///
/// # Examples
/// ```
/// let h = greenlet::SpawnBuilder::new().name("worker").stack_size(128 * 1024)
///     .spawn(|| "done").unwrap();
/// assert_eq!(h.name(), "worker");
/// assert_eq!(h.get().unwrap(), "done");
/// ```
#[derive(Debug, Clone, Default)]
pub struct SpawnBuilder {
    builder: Builder,
}

impl SpawnBuilder {
    /// Defaults: an automatic name (`Greenlet-<id>`), the default stack size.
    pub fn new() -> SpawnBuilder {
        SpawnBuilder::default()
    }

    /// Names the greenlet, for `Debug`, logs, the monitor and stack-overflow reports.
    pub fn name(mut self, name: impl Into<String>) -> SpawnBuilder {
        self.builder = self.builder.name(name);
        self
    }

    /// Sets the greenlet's usable stack size in bytes.
    pub fn stack_size(mut self, bytes: usize) -> SpawnBuilder {
        self.builder = self.builder.stack_size(bytes);
        self
    }

    /// Spawns `f` to run on the hub as soon as the current greenlet blocks or yields.
    ///
    /// # Errors
    /// When no stack can be had (the message names the system limit).
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> io::Result<JoinHandle<T>> {
        let handle = self.create(f)?;
        if !handle.is_ready() {
            schedule(handle.greenlet.clone(), Msg::Wake);
        }
        Ok(handle)
    }

    /// Spawns `f` to start once `delay` has passed (gevent's `spawn_later`).
    ///
    /// # Errors
    /// As [`spawn`](SpawnBuilder::spawn).
    pub fn spawn_later<T: 'static>(
        self,
        delay: Duration,
        f: impl FnOnce() -> T + 'static,
    ) -> io::Result<JoinHandle<T>> {
        let handle = self.create(f)?;
        if handle.is_ready() {
            return Ok(handle);
        }
        let g = handle.greenlet.clone();
        let token = with_hub(super::Hub::new_token);
        g.inner().hub.park_token.set(token);
        let w = Waiter { greenlet: g, token };
        let deadline = deadline_after(Some(delay))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(u32::MAX as u64));
        let key = with_hub(|hub| hub.timers.borrow_mut().insert(deadline, w));
        handle.shared.start_timer.set(Some(key));
        Ok(handle)
    }

    fn create<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> io::Result<JoinHandle<T>> {
        let name = self.builder.name_ref().map(str::to_owned);
        let shared = Rc::new(Shared {
            name: name.unwrap_or_default(),
            id: Cell::new(0),
            result: RefCell::new(None),
            done: Cell::new(false),
            joiners: WaitList::new(),
            watchers: RefCell::new(Vec::new()),
            links: RefCell::new(Vec::new()),
            killed_before_start: Cell::new(false),
            start_timer: Cell::new(None),
            running_links: Cell::new(false),
            observed: Cell::new(false),
        });
        if crate::thread_state::is_exiting() {
            // The thread is exiting: nothing can run any more, so the greenlet is born killed
            // (no stack is taken, and `f` is dropped now).
            drop(f);
            let greenlet = Greenlet::finished(
                shared
                    .name
                    .is_empty()
                    .not()
                    .then(|| shared.name.clone().into_boxed_str()),
            );
            shared.id.set(greenlet.id());
            shared.killed_before_start.set(true);
            *shared.result.borrow_mut() = Some(Err(JoinError::Killed));
            shared.done.set(true);
            return Ok(JoinHandle { greenlet, shared });
        }
        let body_shared = shared.clone();
        let greenlet = self.builder.build(move |()| run_spawned(body_shared, f))?;
        greenlet
            .set_parent(&switch::hub_greenlet())
            .expect("the hub is nobody's descendant");
        shared.id.set(greenlet.id());
        Ok(JoinHandle { greenlet, shared })
    }
}

/// The body of every spawned greenlet: runs `f` unless killed first, records the outcome,
/// wakes joiners and runs links.
fn run_spawned<T: 'static>(shared: Rc<Shared<T>>, f: impl FnOnce() -> T) {
    let outcome = if shared.killed_before_start.get() {
        Err(JoinError::Killed)
    } else {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        // A kill that reached the greenlet inside a hooked libc call, and was never raised
        // since, is how it ended.
        #[cfg(feature = "monkey")]
        let r = match (r, crate::monkey::take_deferred(crate::current().inner())) {
            (Ok(_), Some(payload)) => Err(payload),
            (r, _) => r,
        };
        match r {
            Ok(v) => Ok(v),
            Err(payload) if payload.is::<GreenletExit>() => Err(JoinError::Killed),
            Err(payload) => Err(JoinError::Panicked(Panic::new(payload))),
        }
    };
    // Drop the greenlet's locals before publishing the outcome, so that a joiner finds them
    // gone even when their destructors block (the root drops any that links create later).
    crate::current().inner().hub.locals.clear();
    *shared.result.borrow_mut() = Some(outcome);
    shared.done.set(true);
    shared.joiners.wake_all();
    let watchers = std::mem::take(&mut *shared.watchers.borrow_mut());
    for notify in watchers {
        notify();
    }
    shared.running_links.set(true);
    let handle = JoinHandle {
        greenlet: crate::current(),
        shared,
    };
    loop {
        // Links may add links; run until none are left, in order of adding.
        let links = std::mem::take(&mut *handle.shared.links.borrow_mut());
        if links.is_empty() {
            break;
        }
        for link in links {
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| link(&handle))) {
                log::error!(
                    "a link callback of greenlet {:?} panicked: {}",
                    handle.name(),
                    Panic::new(p)
                );
            }
        }
    }
    handle.shared.running_links.set(false);
}

impl<T: 'static> JoinHandle<T> {
    /// The name given at spawn, or `Greenlet-<id>`.
    pub fn name(&self) -> String {
        self.shared.display_name()
    }

    /// The underlying greenlet.
    pub fn greenlet(&self) -> &Greenlet {
        &self.greenlet
    }

    /// Whether the greenlet has finished, one way or another (gevent's `ready()`).
    pub fn is_ready(&self) -> bool {
        self.shared.done.get()
    }

    /// Whether the greenlet finished by returning a value (gevent's `successful()`).
    pub fn is_successful(&self) -> bool {
        self.shared.observed.set(true);
        matches!(
            &*self.shared.result.borrow(),
            Some(Ok(_)) | Some(Err(JoinError::Taken))
        )
    }

    /// The value the greenlet returned, if it did and it was not taken by `get`.
    pub fn value(&self) -> Option<Ref<'_, T>> {
        self.shared.observed.set(true);
        Ref::filter_map(self.shared.result.borrow(), |r| r.as_ref()?.as_ref().ok()).ok()
    }

    /// Why the greenlet failed (gevent's `exception`), if it did.
    pub fn error(&self) -> Option<Ref<'_, JoinError>> {
        self.shared.observed.set(true);
        Ref::filter_map(self.shared.result.borrow(), |r| match r {
            Some(Err(JoinError::Taken)) => None,
            Some(r) => r.as_ref().err(),
            None => None,
        })
        .ok()
    }

    /// Waits until the greenlet finishes (gevent's `join()`): its own failure is not an error
    /// here; use [`get`](JoinHandle::get) for the value.
    ///
    /// # Errors
    /// [`JoinError::LoopExit`] when nothing could ever finish it.
    pub fn join(&self) -> Result<(), JoinError> {
        self.wait(None)
    }

    /// [`join`](JoinHandle::join) for at most `timeout`.
    ///
    /// # Errors
    /// [`JoinError::TimedOut`], or [`JoinError::LoopExit`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.wait(deadline_after(Some(timeout)))
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<(), JoinError> {
        self.shared.observed.set(true);
        if self.shared.done.get() {
            return Ok(());
        }
        let what = JoinWhat(self);
        block_on(&self.shared.joiners, deadline, &what, || {
            self.shared.done.get().then_some(())
        })?;
        Ok(())
    }

    /// Waits for the greenlet and takes its value (gevent's `get()`).
    ///
    /// # Errors
    /// [`JoinError::Panicked`] / [`JoinError::Killed`] for how it ended;
    /// [`JoinError::Taken`] if an earlier `get` took the value; [`JoinError::LoopExit`].
    pub fn get(&self) -> Result<T, JoinError> {
        self.join()?;
        self.take()
    }

    /// [`get`](JoinHandle::get) without waiting: `Err(JoinError::TimedOut)` if not finished.
    ///
    /// # Errors
    /// As `get`, with `TimedOut` meaning "not finished yet".
    pub fn try_get(&self) -> Result<T, JoinError> {
        self.shared.observed.set(true);
        if !self.is_ready() {
            return Err(JoinError::TimedOut);
        }
        self.take()
    }

    /// [`get`](JoinHandle::get) for at most `timeout`.
    ///
    /// # Errors
    /// As `get`, plus [`JoinError::TimedOut`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, JoinError> {
        self.join_timeout(timeout)?;
        self.take()
    }

    fn take(&self) -> Result<T, JoinError> {
        let mut slot = self.shared.result.borrow_mut();
        match slot.as_mut() {
            Some(Ok(_)) => match slot.replace(Err(JoinError::Taken)) {
                Some(Ok(v)) => Ok(v),
                _ => unreachable!("checked above"),
            },
            Some(Err(JoinError::Panicked(_))) => match slot.replace(Err(JoinError::Taken)) {
                Some(Err(e)) => Err(e),
                _ => unreachable!("checked above"),
            },
            Some(Err(JoinError::Killed)) => Err(JoinError::Killed),
            Some(Err(_)) => Err(JoinError::Taken),
            None => Err(JoinError::TimedOut),
        }
    }

    /// Kills the greenlet and waits until it is dead (gevent's `kill(block=True)`).
    ///
    /// The greenlet gets [`GreenletExit`] raised where it is blocked, so its stack unwinds and
    /// its destructors run; a greenlet that has not started yet never runs its function, but
    /// its links still fire. Killing a finished greenlet does nothing.
    ///
    /// # Errors
    /// [`JoinError::LoopExit`] if the kill cannot complete.
    ///
    /// # Examples
    /// ```
    /// let h = greenlet::spawn(|| greenlet::sleep(std::time::Duration::from_secs(3600)));
    /// greenlet::yield_now(); // let it start and block
    /// h.kill().unwrap();
    /// assert!(matches!(h.get(), Err(greenlet::JoinError::Killed)));
    /// ```
    pub fn kill(&self) -> Result<(), JoinError> {
        self.kill_nowait();
        self.join()
    }

    /// [`kill`](JoinHandle::kill) waiting at most `timeout` for the greenlet to die.
    ///
    /// # Errors
    /// [`JoinError::TimedOut`] if its destructors keep it alive longer; `LoopExit`.
    pub fn kill_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.kill_nowait();
        self.join_timeout(timeout)
    }

    /// Asks the greenlet to die without waiting (gevent's `kill(block=False)`). Idempotent.
    pub fn kill_nowait(&self) {
        if self.is_ready() {
            return;
        }
        let g = &self.greenlet;
        if !g.is_started() {
            self.shared.killed_before_start.set(true);
            // Run it now (it ends at once), even if spawn_later meant it for later.
            g.inner().hub.park_token.set(0);
            if let Some(key) = self.shared.start_timer.take() {
                cancel_timer(&key);
            }
            schedule(g.clone(), Msg::Wake);
        } else if g.is_current() {
            panic::resume_unwind(Box::new(GreenletExit));
        } else {
            interrupt(g, Box::new(GreenletExit));
        }
    }

    /// Calls `callback` with this handle when the greenlet finishes (at once if it has), in the
    /// order links were added (gevent's `link`). It runs on the finishing greenlet; a panic in
    /// it is logged, not propagated.
    pub fn link(&self, callback: impl FnOnce(&JoinHandle<T>) + 'static) {
        self.shared.observed.set(true);
        if self.is_ready() && !self.shared.running_links.get() {
            callback(self);
        } else {
            self.shared.links.borrow_mut().push(Box::new(callback));
        }
    }

    /// [`link`](JoinHandle::link) for the crate's own bookkeeping (pools, groups): it does not
    /// count as looking at the outcome, so a panic nobody joins is still logged.
    pub(crate) fn link_internal(&self, callback: impl FnOnce(&JoinHandle<T>) + 'static) {
        if self.is_ready() {
            callback(self);
        } else {
            self.shared.links.borrow_mut().push(Box::new(callback));
        }
    }
}

/// Describes a join for a [`LoopExit`] message, formatted only if that happens.
struct JoinWhat<'a, T>(&'a JoinHandle<T>);

impl<T: 'static> fmt::Display for JoinWhat<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "join of greenlet {:?}", self.0.name())
    }
}

/// Spawns `f` as a new greenlet on this thread's hub (gevent's `spawn`).
///
/// It starts when the current greenlet next blocks or yields.
///
/// # Panics
/// Panics if no stack can be had; [`SpawnBuilder::spawn`] returns that as an error.
///
/// # Examples
/// ```
/// let a = greenlet::spawn(|| 1);
/// let b = greenlet::spawn(|| 2);
/// assert_eq!(a.get().unwrap() + b.get().unwrap(), 3);
/// ```
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
    SpawnBuilder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("greenlet::spawn: {e}"))
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`).
///
/// # Panics
/// As [`spawn`].
pub fn spawn_later<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
    SpawnBuilder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("greenlet::spawn_later: {e}"))
}

/// Waits until the given greenlets finish: all of them, or `count` of them, or until
/// `timeout`; returns the indices of those that finished, in order (gevent's `joinall`).
///
/// # Errors
/// [`LoopExit`] when nothing could finish them.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = (0..3u64).map(|i| greenlet::spawn(move || greenlet::sleep(Duration::from_millis(i)))).collect();
/// assert_eq!(greenlet::joinall(&hs, None, None).unwrap(), [0, 1, 2]);
/// ```
pub fn joinall<T: 'static>(
    handles: &[JoinHandle<T>],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Result<Vec<usize>, LoopExit> {
    let want = count.unwrap_or(handles.len()).min(handles.len());
    let deadline = deadline_after(timeout);
    if want == handles.len() {
        // Waiting for all: joining one after the other is enough, with nothing to allocate.
        for h in handles {
            match h.wait(deadline) {
                Ok(()) | Err(JoinError::TimedOut) => {}
                Err(JoinError::LoopExit(e)) => return Err(e),
                Err(_) => unreachable!("wait fails only by time or LoopExit"),
            }
        }
        return Ok((0..handles.len())
            .filter(|&i| handles[i].is_ready())
            .collect());
    }
    let finished = Finished::watch(handles);
    match finished.wait_for(want, deadline, handles.len()) {
        Ok(()) | Err(BlockError::TimedOut) => {}
        Err(BlockError::LoopExit(e)) => return Err(e),
    }
    let mut done = finished.order.borrow().clone();
    done.sort_unstable();
    Ok(done)
}

/// Collects the indices of watched handles in the order they finish: each handle notifies it
/// once, so waiting on n handles costs O(n), not a rescan per wake-up.
struct Finished {
    order: RefCell<Vec<usize>>,
    waiters: WaitList,
}

impl Finished {
    fn watch<T: 'static>(handles: &[JoinHandle<T>]) -> Rc<Finished> {
        let finished = Rc::new(Finished {
            order: RefCell::new(Vec::new()),
            waiters: WaitList::new(),
        });
        for (i, h) in handles.iter().enumerate() {
            h.shared.observed.set(true);
            if h.is_ready() {
                finished.order.borrow_mut().push(i);
            } else {
                // Weak: a wait that gave up must not keep its collector alive in the handle.
                let weak = Rc::downgrade(&finished);
                h.shared.watchers.borrow_mut().push(Box::new(move || {
                    if let Some(f) = weak.upgrade() {
                        f.order.borrow_mut().push(i);
                        f.waiters.wake_all();
                    }
                }));
            }
        }
        finished
    }

    fn wait_for(
        &self,
        want: usize,
        deadline: Option<Instant>,
        of: usize,
    ) -> Result<(), BlockError> {
        let what = format!("{want} of {of} greenlets");
        block_on(&self.waiters, deadline, &what, || {
            (self.order.borrow().len() >= want).then_some(())
        })
    }
}

/// [`joinall`] by another name: waits for the given greenlets (gevent's `wait(objects)`).
///
/// # Errors
/// As [`joinall`].
pub fn wait<T: 'static>(
    handles: &[JoinHandle<T>],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Result<Vec<usize>, LoopExit> {
    joinall(handles, timeout, count)
}

/// Kills every greenlet given (gevent's `killall`), waiting for them to die when `block`.
///
/// # Errors
/// [`JoinError::LoopExit`] / [`JoinError::TimedOut`] while waiting.
pub fn killall<T: 'static>(
    handles: &[JoinHandle<T>],
    block: bool,
    timeout: Option<Duration>,
) -> Result<(), JoinError> {
    for h in handles {
        h.kill_nowait();
    }
    if block {
        let done = joinall(handles, timeout, None).map_err(JoinError::LoopExit)?;
        if done.len() < handles.len() {
            return Err(JoinError::TimedOut);
        }
    }
    Ok(())
}

/// Yields the indices of `handles` as they finish, in finishing order (gevent's `iwait`).
/// The iterator ends when all have finished, or at `timeout`, or on [`LoopExit`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let slow = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(30)));
/// let fast = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(1)));
/// let order: Vec<usize> = greenlet::iwait(&[slow, fast], None).collect();
/// assert_eq!(order, [1, 0]);
/// ```
pub fn iwait<T: 'static>(
    handles: &[JoinHandle<T>],
    timeout: Option<Duration>,
) -> impl Iterator<Item = usize> + '_ {
    let deadline = deadline_after(timeout);
    let finished = Finished::watch(handles);
    let mut next = 0;
    std::iter::from_fn(move || {
        if next == handles.len() {
            return None;
        }
        finished.wait_for(next + 1, deadline, handles.len()).ok()?;
        next += 1;
        Some(finished.order.borrow()[next - 1])
    })
}

/// Runs the hub until nothing is left that could ever run (gevent's `wait()` without
/// objects, `hub.join()`): every spawned greenlet has finished or waits on something that can
/// never happen. Returns `Ok(true)` then, or `Ok(false)` if `timeout` (or a [`Timeout`] of the
/// main greenlet) ran out first. The timeout itself does not keep the hub running.
///
/// [`Timeout`]: crate::Timeout
///
/// # Errors
/// A [`LoopExit`] whose [`is_stopped`](LoopExit::is_stopped) is true when the hub was stopped
/// by a [`HubHandle`](crate::HubHandle).
///
/// # Panics
/// When called from a greenlet other than the main one: only the main greenlet is told that
/// the hub ran dry (gevent asserts the same).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// for i in 0..3u64 {
///     // Fire and forget: nobody keeps the handles.
///     greenlet::spawn(move || greenlet::sleep(Duration::from_millis(i)));
/// }
/// assert!(greenlet::wait_all(None).unwrap());
/// ```
#[doc(alias = "wait()")]
pub fn wait_all(timeout: Option<Duration>) -> Result<bool, LoopExit> {
    super::check_can_block();
    assert!(
        crate::current().is_main(),
        "greenlet::wait_all can only be called from the main greenlet"
    );
    let deadline = deadline_after(timeout);
    loop {
        let w = super::waiter();
        // Nothing holds `w` but the (weak) timer: only the hub running dry, the timeout or a
        // stop resume us.
        match super::park_with(&w, deadline, &"everything to finish (wait_all)", true, true) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if e.is_stopped() => return Err(e),
            Err(_) => return Ok(true),
        }
    }
}

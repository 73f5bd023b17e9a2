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

/// Names one callback added with [`JoinHandle::link`] (or `link_value` / `link_exception`), to
/// take it back with [`JoinHandle::unlink`] (gevent's `unlink(callback)`: Rust closures cannot
/// be compared, so the link hands out this key instead).
///
/// It is a plain value: copying or dropping it does nothing to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkKey {
    greenlet: u64,
    id: u64,
}

/// Why a spawned greenlet produced no value, or a wait on it gave up.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The greenlet panicked; the panic is here.
    Panicked(Panic),
    /// The greenlet was killed (gevent's `GreenletExit`) before it returned; or, from a wait,
    /// the waiting greenlet itself was killed softly (see [`Killed`](crate::Killed); then the
    /// awaited one is not [`is_ready`](JoinHandle::is_ready)).
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
            BlockError::Killed => JoinError::Killed,
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
    /// Callbacks run at the end, in order of adding, each with its key's id.
    links: RefCell<Vec<(u64, LinkFn<T>)>>,
    next_link: Cell<u64>,
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
            && !p.was_reported()
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
            schedule(handle.greenlet.clone(), Msg::wake());
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
        g.inner().sched.park_token.set(token);
        let w = Waiter { greenlet: g, token };
        let deadline = deadline_after(Some(delay))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(u32::MAX as u64));
        let key = with_hub(|hub| hub.timers.borrow_mut().insert(deadline, w));
        handle.shared.start_timer.set(Some(key));
        Ok(handle)
    }

    /// Spawns `f` as a raw greenlet, without a [`JoinHandle`] (gevent's `spawn_raw`); see
    /// [`spawn_raw`](crate::spawn_raw).
    ///
    /// # Errors
    /// As [`spawn`](SpawnBuilder::spawn).
    pub fn spawn_raw(self, f: impl FnOnce() + 'static) -> io::Result<Greenlet> {
        // The greenlet's root catches a panic and hands it to the parent, the hub, which drops
        // it: the panic hook has reported it already.
        let greenlet = self
            .builder
            .build_with_parent(switch::hub_greenlet(), move |()| f())?;
        schedule(greenlet.clone(), Msg::wake());
        Ok(greenlet)
    }

    fn create<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> io::Result<JoinHandle<T>> {
        let name = self.builder.name_ref().map(str::to_owned);
        let shared = crate::greenlet::rc_in_place(|| Shared {
            name: name.unwrap_or_default(),
            id: Cell::new(0),
            result: RefCell::new(None),
            done: Cell::new(false),
            joiners: WaitList::new(),
            watchers: RefCell::new(Vec::new()),
            links: RefCell::new(Vec::new()),
            next_link: Cell::new(0),
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
        let greenlet = self
            .builder
            .build_with_parent(switch::hub_greenlet(), move |()| {
                run_spawned(body_shared, f)
            })?;
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
    crate::current().inner().sched.locals.clear();
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
    // One link at a time, taken from the shared list only when it is its turn: a link may add
    // links (they run after the others, in order of adding) or unlink one that has not run yet
    // (it must not run: gevent's "no notification after unlink").
    loop {
        let next = {
            let mut links = handle.shared.links.borrow_mut();
            (!links.is_empty()).then(|| links.remove(0))
        };
        let Some((_, link)) = next else { break };
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| link(&handle))) {
            log::error!(
                "a link callback of greenlet {:?} panicked: {}",
                handle.name(),
                Panic::new(p)
            );
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
    ///
    /// A killed greenlet is not successful: it has no value to give, so [`get`](Self::get)
    /// fails with [`JoinError::Killed`] (gevent counts a kill as a success whose value is
    /// `GreenletExit`).
    pub fn is_successful(&self) -> bool {
        self.shared.observed.set(true);
        self.succeeded()
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

    /// Marks the outcome as looked at (a multi-handle wait does).
    pub(super) fn observe(&self) {
        self.shared.observed.set(true);
    }

    /// The greenlets joining this one.
    pub(super) fn joiners(&self) -> &WaitList {
        &self.shared.joiners
    }

    /// Runs `notify` once the greenlet finishes (before its links); `false` (and `notify`
    /// dropped) if it has finished already.
    pub(super) fn watch(&self, notify: Box<dyn FnOnce()>) -> bool {
        if self.is_ready() {
            return false;
        }
        self.shared.watchers.borrow_mut().push(notify);
        true
    }

    pub(super) fn wait(&self, deadline: Option<Instant>) -> Result<(), JoinError> {
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

    /// Kills the greenlet at once and waits until it is dead (gevent's `kill(block=True)`).
    ///
    /// The greenlet gets [`GreenletExit`] raised where it is blocked, so its stack unwinds and
    /// its destructors run. A destructor cannot block during that unwind: a switch while
    /// unwinding is refused (the panic count is per thread), so its blocking calls fail or
    /// return at once (`sleep` returns, a `get` fails with `LoopExit`, whose
    /// [`is_refused`](LoopExit::is_refused) is true). Cleanup that must block (a goodbye
    /// message to a peer) belongs in [`kill_timeout`](JoinHandle::kill_timeout), which first
    /// asks the greenlet to finish. A greenlet that has not started yet never runs its
    /// function, but its links still fire. Killing a finished greenlet does nothing.
    ///
    /// # Errors
    /// [`JoinError::LoopExit`] if the kill cannot complete; [`JoinError::Killed`] if the calling
    /// greenlet is itself killed softly while it waits.
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

    /// Kills the greenlet gracefully: asks it to finish (a soft kill), gives it `timeout` to do
    /// so, then unwinds it as [`kill`](JoinHandle::kill) does and waits at most `timeout` more
    /// (gevent's `kill(timeout=...)`, where the greenlet may block in `except GreenletExit`).
    ///
    /// The soft kill makes the blocking call the greenlet is parked in (or its next one) fail
    /// with its own form of [`Killed`](crate::Killed), once; its code then runs on normally and
    /// its later blocking calls work, so it can block to clean up. If it returns a value
    /// meanwhile, that value is its outcome. A greenlet that has not started, or the calling
    /// greenlet itself, is unwound at once.
    ///
    /// # Errors
    /// [`JoinError::TimedOut`] if it is still alive after both waits (only a greenlet that
    /// catches the unwind and keeps running can be); [`JoinError::LoopExit`];
    /// [`JoinError::Killed`] if the calling greenlet is killed softly meanwhile.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{Queue, RecvError};
    ///
    /// let said = Queue::new();
    /// let s = said.clone();
    /// let h = greenlet::spawn(move || {
    ///     let inbox = Queue::<String>::new();
    ///     match inbox.get() {
    ///         Err(RecvError::Killed) => {
    ///             greenlet::sleep(Duration::from_millis(1)); // cleanup may block
    ///             s.put("goodbye").unwrap();
    ///         }
    ///         other => panic!("{other:?}"),
    ///     }
    /// });
    /// greenlet::yield_now(); // it starts and waits
    /// h.kill_timeout(Duration::from_secs(5)).unwrap();
    /// assert_eq!(said.try_get(), Ok("goodbye"));
    /// ```
    pub fn kill_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        if self.is_ready() {
            return Ok(());
        }
        self.kill_soft();
        match self.join_timeout(timeout) {
            Err(JoinError::TimedOut) => {
                self.kill_nowait();
                self.join_timeout(timeout)
            }
            r => r,
        }
    }

    /// Asks the greenlet to finish without waiting (a soft kill, see
    /// [`kill_timeout`](JoinHandle::kill_timeout)): the blocking call it is parked in, or its
    /// next one, fails with [`Killed`](crate::Killed), once. A greenlet that has not started,
    /// or the calling greenlet itself, is unwound instead, as by
    /// [`kill_nowait`](JoinHandle::kill_nowait). Idempotent until it is delivered.
    pub fn kill_soft(&self) {
        let g = &self.greenlet;
        if self.is_ready() {
            return;
        }
        if g.is_started() && !g.is_current() {
            super::request_kill(g);
        } else {
            self.kill_nowait();
        }
    }

    /// Asks the greenlet to die without waiting (gevent's `kill(block=False)`): it is unwound
    /// with [`GreenletExit`] when it next runs. Idempotent.
    pub fn kill_nowait(&self) {
        if self.is_ready() {
            return;
        }
        let g = &self.greenlet;
        if !g.is_started() {
            self.shared.killed_before_start.set(true);
            // Run it now (it ends at once), even if spawn_later meant it for later.
            g.inner().sched.park_token.set(0);
            if let Some(key) = self.shared.start_timer.take() {
                cancel_timer(&key);
            }
            schedule(g.clone(), Msg::wake());
        } else if g.is_current() {
            panic::resume_unwind(Box::new(GreenletExit));
        } else {
            interrupt(g, Box::new(GreenletExit));
        }
    }

    /// Calls `callback` with this handle when the greenlet finishes, however it ends (gevent's
    /// `link`); returns a key for [`unlink`](JoinHandle::unlink).
    ///
    /// Links run in the order they were added (`link`, `link_value` and `link_exception`
    /// alike), on the finishing greenlet, right after its outcome is recorded and its joiners
    /// are woken (they run after the links). A link added to a finished greenlet runs at
    /// once, in the caller. A panic in a link is logged, not propagated.
    ///
    /// # Examples
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let h = greenlet::spawn(|| 7);
    /// let (s1, s2) = (seen.clone(), seen.clone());
    /// h.link(move |h| s1.borrow_mut().push(format!("first: {:?}", h.value().map(|v| *v))));
    /// let key = h.link(move |_| s2.borrow_mut().push("never".to_string()));
    /// assert!(h.unlink(key)); // taken back before it ran
    /// h.join().unwrap();
    /// assert_eq!(*seen.borrow(), ["first: Some(7)"]);
    /// ```
    pub fn link(&self, callback: impl FnOnce(&JoinHandle<T>) + 'static) -> LinkKey {
        self.shared.observed.set(true);
        self.add_link(Box::new(callback))
    }

    /// [`link`](JoinHandle::link) for a greenlet that returns a value (gevent's `link_value`):
    /// `callback` runs only if it [`is_successful`](JoinHandle::is_successful).
    ///
    /// # Examples
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let got = Rc::new(Cell::new(0));
    /// let ok = greenlet::spawn(|| 6 * 7);
    /// let g = got.clone();
    /// ok.link_value(move |h| g.set(*h.value().unwrap()));
    /// ok.join().unwrap();
    /// assert_eq!(got.get(), 42);
    /// ```
    pub fn link_value(&self, callback: impl FnOnce(&JoinHandle<T>) + 'static) -> LinkKey {
        self.link(move |h| {
            if h.succeeded() {
                callback(h)
            }
        })
    }

    /// [`link`](JoinHandle::link) for a greenlet that fails (gevent's `link_exception`):
    /// `callback` runs only if it panicked or was killed; [`error`](JoinHandle::error) says
    /// which. (gevent counts a kill as success, with `GreenletExit` as the value; here a kill
    /// is a failure, as [`is_successful`](JoinHandle::is_successful) says.)
    ///
    /// # Examples
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let why = Rc::new(RefCell::new(String::new()));
    /// let h = greenlet::spawn(|| -> u32 { panic!("expected panic: no luck") });
    /// let w = why.clone();
    /// h.link_exception(move |h| *w.borrow_mut() = h.error().unwrap().to_string());
    /// h.join().unwrap();
    /// assert_eq!(*why.borrow(), "greenlet panicked: expected panic: no luck");
    /// ```
    pub fn link_exception(&self, callback: impl FnOnce(&JoinHandle<T>) + 'static) -> LinkKey {
        self.link(move |h| {
            if !h.succeeded() {
                callback(h)
            }
        })
    }

    /// Takes back a link that has not run yet (gevent's `unlink`); returns whether it was
    /// still waiting to run. A key of another greenlet's link does nothing here.
    pub fn unlink(&self, key: LinkKey) -> bool {
        if key.greenlet != self.greenlet.id() {
            return false;
        }
        let removed = {
            let mut links = self.shared.links.borrow_mut();
            let i = links.iter().position(|(id, _)| *id == key.id);
            i.map(|i| links.remove(i))
        };
        // Dropped outside the borrow: the closure's captures may have destructors of their own.
        removed.is_some()
    }

    /// [`link`](JoinHandle::link) for the crate's own bookkeeping (pools, groups): it does not
    /// count as looking at the outcome, so a panic nobody joins is still logged.
    pub(crate) fn link_internal(&self, callback: impl FnOnce(&JoinHandle<T>) + 'static) {
        self.add_link(Box::new(callback));
    }

    fn add_link(&self, callback: LinkFn<T>) -> LinkKey {
        let id = self.shared.next_link.get() + 1;
        self.shared.next_link.set(id);
        let key = LinkKey {
            greenlet: self.greenlet.id(),
            id,
        };
        if self.is_ready() && !self.shared.running_links.get() {
            callback(self);
        } else {
            self.shared.links.borrow_mut().push((id, callback));
        }
        key
    }

    /// Whether it finished with a value, without marking the outcome as looked at.
    fn succeeded(&self) -> bool {
        matches!(
            &*self.shared.result.borrow(),
            Some(Ok(_)) | Some(Err(JoinError::Taken))
        )
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

/// Spawns `f` as a raw greenlet (gevent's `spawn_raw`): it runs on the hub like [`spawn`]'s,
/// without a [`JoinHandle`] and its bookkeeping.
///
/// What that saves: the handle's shared record (one allocation), recording the outcome,
/// waking joiners and running links at the end. What it costs: nothing can join it, get its
/// value or link to it; a panic is reported by the panic hook and then dropped. The returned
/// [`Greenlet`] tells whether it [`is_dead`](Greenlet::is_dead); keeping or dropping it does
/// not affect the greenlet. To stop one, have it wait on something you control (an
/// [`Event`](crate::sync::Event), a queue's `close`). Use it for fire-and-forget work at high
/// rates; use [`spawn`] whenever a result or a kill matters.
///
/// # Panics
/// As [`spawn`].
///
/// # Examples
/// ```
/// use std::{cell::Cell, rc::Rc};
///
/// let count = Rc::new(Cell::new(0));
/// for _ in 0..3 {
///     let c = count.clone();
///     greenlet::spawn_raw(move || c.set(c.get() + 1));
/// }
/// greenlet::idle().unwrap(); // until they all ran
/// assert_eq!(count.get(), 3);
/// ```
pub fn spawn_raw(f: impl FnOnce() + 'static) -> Greenlet {
    SpawnBuilder::new()
        .spawn_raw(f)
        .unwrap_or_else(|e| panic!("greenlet::spawn_raw: {e}"))
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

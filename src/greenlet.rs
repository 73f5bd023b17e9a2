//! Greenlets: stackful coroutines with symmetric, typed `switch`.

use std::any::TypeId;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::error::Error;
use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use corosensei::Coroutine;

use crate::error::{GreenletExit, SwitchError};
use crate::sched::{Sched, SchedData, Scheduler};
use crate::stack::{self, DEFAULT_STACK_SIZE};
use crate::switch::{self, CoroCell, GYielder, Inbox, Msg};
use crate::value::Value;

pub(crate) use crate::switch::current_identity_for_signal;

/// What kind of greenlet an [`Inner`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The thread's own code, running on the thread's stack.
    Main,
    /// The hub pseudo-greenlet: switching to it runs the scheduler on main's stack.
    Hub,
    /// A greenlet with its own stack.
    Coroutine,
}

/// The life cycle of a greenlet. Whether it is the one running is not a state: it is whether
/// the running-greenlet pointer names it (`switch::is_running`), so a switch writes no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Created, never switched to.
    Unstarted,
    /// Started and not finished: running, or waiting in a switch (explicit, or parked on the
    /// hub). Main and the hub are always in this state.
    Started,
    /// Its last handle went away while it was suspended (or its thread is exiting): it is
    /// unwinding under [`GreenletExit`] and may not switch.
    Destroying,
    /// Finished.
    Dead,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The shared state of a greenlet; [`Greenlet`] is a counted handle on it.
///
/// In declaration order (`repr(C)`), with what every switch, park and wake-up touches first:
/// right after the handle count, in the allocation's first three cache lines (they were in
/// five). A server with thousands of connections resumes each greenlet after the others have
/// pushed its lines out of the cache, so each line on the path is a miss per request.
#[repr(C)]
pub(crate) struct Inner {
    pub(crate) kind: Kind,
    pub(crate) state: Cell<State>,
    /// Its last handle went while it was running: the count was kept for main's side of the
    /// switch, which drops it once the greenlet has stopped (see `switch`).
    pub(crate) orphaned: Cell<bool>,
    /// The yielder on this greenlet's own stack; set by its root, valid while it runs.
    pub(crate) yielder: Cell<*const GYielder>,
    /// Where the message it is resumed with waits during the stack switch (see `switch`).
    pub(crate) inbox: Inbox,
    pub(crate) coro: CoroCell,
    /// What the scheduler keeps in each greenlet (park token, locals); see `crate::sched`.
    /// Its own hot fields come first.
    pub(crate) sched: SchedData,
    pub(crate) id: u64,
    /// About where its stack pointer was when it last suspended (0 before that): where the
    /// lines its resume will touch are, for `switch::prefetch_stack`. Not a hot field: the
    /// prefetch of the allocation's first lines brings it in too.
    pub(crate) stack_hint: Cell<usize>,
    pub(crate) name: Option<Box<str>>,
    pub(crate) parent: RefCell<Option<Greenlet>>,
    /// The type the greenlet's function takes (its id and name), checked before it starts:
    /// a function, which is one word where the pair would be four.
    arg_type: Option<fn() -> (TypeId, &'static str)>,
    stack_size: usize,
    /// Its place in the list of the thread's coroutine greenlets (see `crate::thread_state`).
    pub(crate) links: crate::thread_state::Links,
}

/// `Rc::new(make())`, with the value written straight into the allocation: `Rc::new` builds
/// it on the stack and copies it over (a `memcpy` call for a spawn's shared record), and
/// `Rc::new_uninit` computes its layout at run time. `Builder` writes its `Inner` without the
/// closure: through it, LLVM still built the 344 bytes in a temporary (43 instructions more per
/// greenlet under callgrind).
#[inline(always)]
pub(crate) fn rc_in_place<T>(make: impl FnOnce() -> T) -> Rc<T> {
    let mut rc = Rc::new(MaybeUninit::<T>::uninit());
    Rc::get_mut(&mut rc)
        .expect("a new Rc has one handle")
        .write(make());
    // SAFETY: the value was written just above.
    unsafe { rc.assume_init() }
}

/// The id and name of `T`, for [`Inner::arg_type`].
fn type_of<T: 'static>() -> (TypeId, &'static str) {
    (TypeId::of::<T>(), std::any::type_name::<T>())
}

impl Inner {
    /// A greenlet without a coroutine (yet): the main greenlet, the hub, one born finished.
    fn bare(kind: Kind, name: Option<Box<str>>, state: State) -> Inner {
        Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            kind,
            state: Cell::new(state),
            coro: UnsafeCell::new(None),
            yielder: Cell::new(ptr::null()),
            stack_hint: Cell::new(0),
            inbox: Inbox::new(),
            parent: RefCell::new(None),
            orphaned: Cell::new(false),
            arg_type: None,
            stack_size: 0,
            sched: Default::default(),
            links: Default::default(),
        }
    }

    /// The parent of this greenlet, or main when it has none.
    pub(crate) fn parent_or_main(&self) -> Greenlet {
        self.parent
            .borrow()
            .clone()
            .unwrap_or_else(switch::main_greenlet)
    }

    pub(crate) fn new_root(kind: Kind) -> Rc<Inner> {
        let name = match kind {
            Kind::Main => "main",
            Kind::Hub => "hub",
            Kind::Coroutine => "",
        };
        Rc::new(Inner::bare(kind, Some(name.into()), State::Started))
    }
}

/// A handle on a greenlet: a stackful coroutine that any greenlet of the same thread can
/// [`switch`](Greenlet::switch) to, with Python greenlet's semantics.
///
/// Handles are cheap to clone (reference counted). When the last handle of a greenlet that is
/// suspended mid-function goes away, [`GreenletExit`] is thrown into it so that its stack
/// unwinds and every destructor on it runs; the greenlet may not switch elsewhere while that
/// happens.
///
/// Greenlets belong to the thread that created them: the handle is neither `Send` nor `Sync`.
///
/// ```compile_fail
/// let g = greenlet::Greenlet::new(|()| ());
/// std::thread::spawn(move || drop(g)); // error: `Rc<..>` cannot be sent between threads
/// ```
///
/// # Examples
///
/// ```
/// use greenlet::Greenlet;
///
/// let doubler = Greenlet::new(|mut x: u64| {
///     let main = greenlet::main();
///     loop {
///         // Hand the double to main, and wait for the next number.
///         x = main.switch(x * 2).unwrap();
///     }
/// });
/// assert_eq!(doubler.switch::<u64, u64>(1).unwrap(), 2);
/// assert_eq!(doubler.switch::<u64, u64>(21).unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct Greenlet(Rc<Inner>);

impl Greenlet {
    pub(crate) fn from_inner(inner: Rc<Inner>) -> Greenlet {
        Greenlet(inner)
    }

    /// Takes over one strong count on a greenlet.
    ///
    /// # Safety
    /// `p` must point into a live greenlet (from `Rc::as_ptr`/`into_raw`) whose strong count
    /// includes one that nobody else will give up: the handle made here gives it up.
    #[inline]
    pub(crate) unsafe fn from_raw(p: *const Inner) -> Greenlet {
        // SAFETY: as the caller guarantees.
        Greenlet(unsafe { Rc::from_raw(p) })
    }

    /// The greenlet's inbox, to put the message it will be resumed with.
    #[inline]
    pub(crate) fn inbox(&self) -> &Inbox {
        &self.inner().inbox
    }

    /// Whether this is the only handle on the greenlet.
    #[inline]
    pub(crate) fn is_last_handle(&self) -> bool {
        Rc::strong_count(&self.0) == 1
    }

    #[inline]
    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> *const Inner {
        Rc::as_ptr(&self.0)
    }

    /// Creates an unstarted greenlet that will run `f` with the value of the first switch to it.
    /// Its parent is the current greenlet; its stack has [`DEFAULT_STACK_SIZE`] bytes.
    ///
    /// # Panics
    /// Panics if no stack can be had (the message names the system limit that was hit); use
    /// [`Builder::build`] to get that as an error instead. While the thread exits (a
    /// destructor run at thread exit), a greenlet that can get no stack is born finished
    /// instead: nothing could run it anyway.
    pub fn new<A, R, F>(f: F) -> Greenlet
    where
        F: FnOnce(A) -> R + 'static,
        A: 'static,
        R: 'static,
    {
        match Builder::new().build(f) {
            Ok(g) => g,
            // At thread exit nothing can run any more: a greenlet that cannot be given a stack
            // then is born finished, rather than panicking inside a thread-local destructor.
            Err(_) if crate::thread_state::is_exiting() => Greenlet::finished(None),
            Err(e) => panic!("greenlet::Greenlet::new: {e}"),
        }
    }

    /// A greenlet that is finished from the start: it never runs. For what is created while
    /// the thread exits.
    pub(crate) fn finished(name: Option<Box<str>>) -> Greenlet {
        Greenlet(Rc::new(Inner::bare(Kind::Coroutine, name, State::Dead)))
    }

    /// Switches to this greenlet, handing it `value`; returns the value that the next switch
    /// back to the calling greenlet carries.
    ///
    /// The first switch to a greenlet starts its function with `value`; later switches make the
    /// greenlet's own pending `switch` return `value`. When a greenlet's function returns, its
    /// return value goes to its parent, whose pending `switch` returns it.
    ///
    /// # Errors
    /// - [`SwitchError::WrongType`]: the value that came back is not an `R` (or, for an
    ///   unstarted greenlet, `value` is not the type its function takes; nothing is started).
    /// - [`SwitchError::Panicked`] / [`SwitchError::Thrown`]: a child greenlet ended with a panic
    ///   or an uncaught thrown error, and the calling greenlet is its parent.
    /// - [`SwitchError::Exited`]: a child ended by [`GreenletExit`] (not a failure).
    /// - [`SwitchError::Dead`]: this greenlet has already finished; `value` is dropped.
    ///   (greenlet hands it to the finished greenlet's nearest live parent instead; here a
    ///   stale handle is reported where it is used, and the parent's pending switch never
    ///   receives a value meant for someone else: see the crate's front page.)
    /// - [`SwitchError::NotAllowed`]: called from a context that may not switch.
    ///
    /// # Examples
    /// ```
    /// let g = greenlet::Greenlet::new(|name: &'static str| format!("hello {name}"));
    /// let s: String = g.switch("world").unwrap();
    /// assert_eq!(s, "hello world");
    /// assert!(g.is_dead());
    /// ```
    #[inline]
    pub fn switch<T: 'static, R: 'static>(&self, value: T) -> Result<R, SwitchError> {
        let inner = self.inner();
        if inner.state.get() == State::Started && inner.kind != Kind::Hub {
            // The fast path: a started greenlet (or main), which takes any value. The value goes
            // straight into its inbox.
            inner.inbox.put(Msg::value(value));
            return switch::switch_put(inner).take::<R>();
        }
        self.switch_cold(value)?.take::<R>()
    }

    /// The rest of [`switch`](Greenlet::switch): greenlets not started, finished or being
    /// destroyed, and the hub.
    #[cold]
    #[inline(never)]
    fn switch_cold<T: 'static>(&self, value: T) -> Result<Msg, SwitchError> {
        let inner = self.inner();
        match inner.state.get() {
            State::Dead => return Err(SwitchError::Dead),
            State::Destroying => return Err(SwitchError::NotAllowed(DESTROYING)),
            State::Unstarted => {
                if let Some((id, expected)) = inner.arg_type.map(|arg_type| arg_type())
                    && id != TypeId::of::<T>()
                {
                    let found = std::any::type_name::<T>();
                    return Err(SwitchError::WrongType { expected, found });
                }
            }
            State::Started => {}
        }
        if inner.kind == Kind::Hub {
            return Err(SwitchError::NotAllowed(
                "the hub is switched to only by blocking calls",
            ));
        }
        Ok(switch::switch_to(inner, Msg::value(value)))
    }

    /// [`switch`](Greenlet::switch), returning the type-erased value that came back.
    pub(crate) fn switch_value<T: 'static>(&self, value: T) -> Result<Value, SwitchError> {
        self.switch_cold(value)?.receive()
    }

    /// Raises `error` inside this greenlet at the point where it is suspended, unwinding its
    /// stack (destructors run); the calling greenlet then waits like a `switch` does.
    ///
    /// Throwing into an unstarted greenlet ends it without running its function. If the error
    /// is not caught, the greenlet dies and its parent receives [`SwitchError::Thrown`] with the
    /// error; [`GreenletExit`] is the quiet exception: the parent receives it as a value.
    ///
    /// # Errors
    /// As [`switch`](Greenlet::switch). Two refusals differ from greenlet, which raises the
    /// error elsewhere (see the crate's front page for why):
    /// - into a finished greenlet: [`SwitchError::Dead`], and the error is dropped (greenlet
    ///   raises it in the finished greenlet's parent);
    /// - into the main greenlet (or the hub): [`SwitchError::NotAllowed`] (greenlet raises it
    ///   in main; here main would be the whole thread unwinding). To make main's pending
    ///   switch fail, switch to it with an error value instead.
    ///
    /// # Examples
    /// ```
    /// use greenlet::{Greenlet, GreenletExit};
    ///
    /// let g = Greenlet::new(|()| {
    ///     let _: () = greenlet::main().switch(()).unwrap();
    ///     unreachable!("killed while suspended");
    /// });
    /// let _: () = g.switch(()).unwrap();
    /// let exit: GreenletExit = g.throw(GreenletExit).unwrap();
    /// assert_eq!(exit, GreenletExit);
    /// assert!(g.is_dead());
    /// ```
    pub fn throw<E, R>(&self, error: E) -> Result<R, SwitchError>
    where
        E: Error + Send + Sync + 'static,
        R: 'static,
    {
        let inner = self.inner();
        if inner.kind != Kind::Coroutine {
            return Err(SwitchError::NotAllowed(
                "cannot throw into the main greenlet or the hub",
            ));
        }
        match inner.state.get() {
            State::Dead => return Err(SwitchError::Dead),
            State::Destroying => return Err(SwitchError::NotAllowed(DESTROYING)),
            // Throwing into oneself raises right here, as in greenlet.
            State::Started if switch::is_running(inner) => {
                std::panic::resume_unwind(throw_payload(error))
            }
            State::Unstarted | State::Started => {}
        }
        switch::switch_to(inner, Msg::throw(throw_payload(error))).take::<R>()
    }

    /// The greenlet that receives this one's return value (or failure) when it finishes.
    /// `None` for the main greenlet and the hub.
    ///
    /// A spawned greenlet's parent is the hub, as in gevent: a handle on the hub's
    /// pseudo-greenlet, which may be given to [`set_parent`](Greenlet::set_parent) but not
    /// switched to or thrown into ([`SwitchError::NotAllowed`]). What a greenlet whose parent is
    /// the hub ends with is dropped by the hub; a failure is logged.
    pub fn parent(&self) -> Option<Greenlet> {
        self.inner().parent.borrow().clone()
    }

    pub(crate) fn parent_or_main(&self) -> Greenlet {
        self.inner().parent_or_main()
    }

    /// Makes `parent` this greenlet's parent.
    ///
    /// # Errors
    /// [`ParentError::Cycle`] if `parent` is this greenlet or one of its descendants;
    /// [`ParentError::Main`] for the main greenlet, which has no parent.
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), ParentError> {
        if self.inner().kind != Kind::Coroutine {
            return Err(ParentError::Main);
        }
        let mut p = Some(parent.clone());
        while let Some(g) = p {
            if g == *self {
                return Err(ParentError::Cycle);
            }
            p = g.parent();
        }
        // Drop the old parent only after the borrow ends: dropping it may destroy it, and its
        // destructors may look at this greenlet's parent.
        let old = self.inner().parent.replace(Some(parent.clone()));
        drop(old);
        Ok(())
    }

    /// Whether the greenlet has been switched to at least once (Python's `bool(g.gr_frame)`
    /// family: started, then active until dead).
    pub fn is_started(&self) -> bool {
        self.inner().state.get() != State::Unstarted
    }

    /// Whether the greenlet has started and not finished (Python's `bool(g)`).
    pub fn is_active(&self) -> bool {
        matches!(self.inner().state.get(), State::Started | State::Destroying)
    }

    /// Whether the greenlet has finished (returned, panicked, or been killed).
    pub fn is_dead(&self) -> bool {
        self.inner().state.get() == State::Dead
    }

    /// Whether this is the running greenlet.
    pub fn is_current(&self) -> bool {
        std::ptr::eq(self.as_ptr(), switch::current_ptr())
    }

    /// Whether this is the thread's main greenlet.
    pub fn is_main(&self) -> bool {
        self.inner().kind == Kind::Main
    }

    /// A process-unique number, for diagnostics.
    pub fn id(&self) -> u64 {
        self.inner().id
    }

    /// The name given with [`Builder::name`], if any (`"main"` for the main greenlet).
    pub fn name(&self) -> Option<&str> {
        self.inner().name.as_deref()
    }

    /// The usable size of the greenlet's stack in bytes (0 for the main greenlet).
    pub fn stack_size(&self) -> usize {
        self.inner().stack_size
    }

    /// A weak handle on this greenlet (Python's `weakref.ref(g)`): it does not keep the
    /// greenlet alive, and [`WeakGreenlet::upgrade`] gives a handle back while one exists.
    ///
    /// Handles are reference counted, and a cycle of them is never freed (Rust has no cycle
    /// collector, unlike Python): a greenlet that keeps a handle on itself, or on a greenlet
    /// that keeps one on it, should keep a weak one.
    ///
    /// # Examples
    /// ```
    /// let g = greenlet::Greenlet::new(|()| ());
    /// let weak = g.downgrade();
    /// assert_eq!(weak.upgrade().as_ref(), Some(&g));
    /// drop(g);
    /// assert!(weak.upgrade().is_none());
    /// ```
    #[doc(alias = "weakref")]
    pub fn downgrade(&self) -> WeakGreenlet {
        WeakGreenlet(Rc::downgrade(&self.0))
    }

    fn state_name(&self) -> &'static str {
        match self.inner().state.get() {
            State::Unstarted => "unstarted",
            State::Started if switch::is_running(self.inner()) => "running",
            State::Started => "suspended",
            State::Destroying => "destroying",
            State::Dead => "dead",
        }
    }
}

/// The error for a value that is not the `R` its receiver asked for.
#[cold]
pub(crate) fn wrong_type<R>(v: &Value) -> SwitchError {
    if v.is::<GreenletExit>() {
        SwitchError::Exited
    } else {
        SwitchError::WrongType {
            expected: std::any::type_name::<R>(),
            found: v.type_name(),
        }
    }
}

/// The message for switches attempted by a greenlet that is being destroyed.
pub(crate) const DESTROYING: &str = "a greenlet being destroyed cannot switch";

/// The unwind payload that carries a thrown error: [`GreenletExit`] itself, or the error as a
/// `Box<dyn Error + Send + Sync>`, so that a greenlet that catches it with `catch_unwind` can
/// downcast and inspect it.
fn throw_payload<E: Error + Send + Sync + 'static>(error: E) -> Box<dyn std::any::Any + Send> {
    let boxed: Box<dyn Error + Send + Sync> = Box::new(error);
    match boxed.downcast::<GreenletExit>() {
        Ok(exit) => exit,
        Err(other) => Box::new(other),
    }
}

impl Drop for Greenlet {
    #[inline]
    fn drop(&mut self) {
        if Rc::strong_count(&self.0) == 1 && switch::last_handle_dropped(self) {
            // Orphaned (it is running): main's side of the switch takes this count over and
            // drops it once the greenlet has stopped.
            // SAFETY: the count is not zero (this handle holds it); one more is added before
            // the field's own drop takes one away.
            unsafe { Rc::increment_strong_count(Rc::as_ptr(&self.0)) };
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.kind == Kind::Coroutine {
            crate::thread_state::unregister(self);
        }
        let leftovers = Sched::leftovers(&mut self.sched);
        // What is left of a greenlet (the function of one that never started, greenlet-locals
        // created after it finished) is user code: dropped as the context allows, quietly where
        // nobody could receive a panic (in the hub, at thread exit).
        let coro = self.coro.get_mut().take();
        if let Some(co) = &coro
            && co.started()
            && !co.done()
        {
            // Only `switch::destroy` may end a suspended greenlet; dropping its coroutine would
            // force an unwind here. Never expected: leak it rather than run it.
            log::error!(
                "greenlet {}: dropped while suspended; its stack is leaked",
                self.id
            );
            std::mem::forget(coro);
        } else if coro.is_some() || leftovers.is_some() {
            switch::drop_in_context((coro, leftovers));
        }
        // A dead greenlet keeps its parent alive, so greenlets that each create their successor
        // and die form a chain. Unlink it iteratively: dropping recursively would take one
        // stack frame per generation.
        let mut next = self.parent.get_mut().take();
        while let Some(parent) = next {
            if Rc::strong_count(&parent.0) == 1 && parent.inner().state.get() == State::Dead {
                next = parent.inner().parent.borrow_mut().take();
            } else {
                next = None;
            }
            drop(parent);
        }
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Greenlet) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Greenlet {}

impl std::hash::Hash for Greenlet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_ptr().hash(state)
    }
}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Greenlet");
        d.field("id", &self.id());
        if let Some(name) = self.name().filter(|n| !n.is_empty()) {
            d.field("name", &name);
        }
        d.field("state", &self.state_name()).finish()
    }
}

/// A weak handle on a greenlet, made by [`Greenlet::downgrade`]: it does not keep the greenlet
/// alive (Python's `weakref.ref` to a greenlet).
///
/// # Examples
/// ```
/// use greenlet::Greenlet;
///
/// // A greenlet that refers to itself weakly is freed with its last handle.
/// let g = Greenlet::new(|me: greenlet::WeakGreenlet| me.upgrade().is_some());
/// let weak = g.downgrade();
/// assert!(g.switch::<_, bool>(weak.clone()).unwrap());
/// drop(g);
/// assert!(weak.upgrade().is_none());
/// ```
#[derive(Clone)]
pub struct WeakGreenlet(std::rc::Weak<Inner>);

impl WeakGreenlet {
    /// A handle on the greenlet, if it still exists (some [`Greenlet`] handle on it is alive).
    pub fn upgrade(&self) -> Option<Greenlet> {
        self.0.upgrade().map(Greenlet)
    }
}

impl fmt::Debug for WeakGreenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.upgrade() {
            Some(g) => f.debug_tuple("WeakGreenlet").field(&g).finish(),
            None => f.write_str("WeakGreenlet(<freed>)"),
        }
    }
}

/// Why [`Greenlet::set_parent`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParentError {
    /// The new parent is the greenlet itself or one of its descendants.
    Cycle,
    /// The main greenlet has no parent.
    Main,
}

impl fmt::Display for ParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParentError::Cycle => f.write_str("set_parent would create a cycle of parents"),
            ParentError::Main => f.write_str("the main greenlet cannot have a parent"),
        }
    }
}

impl Error for ParentError {}

/// Configures a greenlet before it is created: name and stack size.
///
/// # Examples
/// ```
/// let g = greenlet::Builder::new()
///     .name("worker")
///     .stack_size(256 * 1024)
///     .build(|x: u32| x + 1)
///     .unwrap();
/// assert_eq!(g.name(), Some("worker"));
/// assert_eq!(g.switch::<u32, u32>(1).unwrap(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: no name, [`DEFAULT_STACK_SIZE`].
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet, for `Debug` output, logs and the stack-overflow message.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the usable stack size in bytes (rounded up to whole pages).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    pub(crate) fn name_ref(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Creates the greenlet, unstarted, with the current greenlet as its parent.
    ///
    /// # Errors
    /// When no stack can be had: the error names the system limit hit (memory map count,
    /// address space) and how to raise it.
    pub fn build<A, R, F>(self, f: F) -> io::Result<Greenlet>
    where
        F: FnOnce(A) -> R + 'static,
        A: 'static,
        R: 'static,
    {
        self.build_with_parent(switch::current(), f)
    }

    /// [`build`](Builder::build) with another parent than the current greenlet: the hub, for a
    /// spawn. A greenlet that does not exist yet is nobody's ancestor, so no cycle check.
    pub(crate) fn build_with_parent<A, R, F>(self, parent: Greenlet, f: F) -> io::Result<Greenlet>
    where
        F: FnOnce(A) -> R + 'static,
        A: 'static,
        R: 'static,
    {
        let size = self
            .stack_size
            .unwrap_or(DEFAULT_STACK_SIZE)
            .max(corosensei::stack::MIN_STACK_SIZE);
        let stack = stack::acquire(size)?;
        let stack_size = stack.size();
        let coro = Coroutine::with_stack(stack, move |y: &GYielder, ()| switch::root::<A, R>(f, y));
        // Written in place, as `rc_in_place` does.
        let mut rc = Rc::new(MaybeUninit::<Inner>::uninit());
        Rc::get_mut(&mut rc)
            .expect("a new Rc has one handle")
            .write(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                name: self.name.map(String::into_boxed_str),
                kind: Kind::Coroutine,
                state: Cell::new(State::Unstarted),
                coro: UnsafeCell::new(Some(coro)),
                yielder: Cell::new(ptr::null()),
                stack_hint: Cell::new(0),
                inbox: Inbox::new(),
                parent: RefCell::new(Some(parent)),
                orphaned: Cell::new(false),
                arg_type: Some(type_of::<A>),
                stack_size,
                sched: Default::default(),
                links: Default::default(),
            });
        // SAFETY: written just above.
        let g = Greenlet(unsafe { rc.assume_init() });
        crate::thread_state::register(&g);
        Ok(g)
    }
}

/// The running greenlet (Python's `greenlet.getcurrent()`).
///
/// The handle is a strong one: kept across a switch of the greenlet itself, it keeps that
/// greenlet alive while it waits, so dropping every other handle no longer destroys it. A
/// temporary lives to the end of its statement, so
/// `greenlet::current().parent().unwrap().switch(v)` holds one while suspended; take the
/// parent first (`let p = greenlet::current().parent().unwrap(); p.switch(v)`), or keep a
/// [`WeakGreenlet`].
///
/// # Examples
/// ```
/// let main = greenlet::current();
/// assert!(main.is_main());
/// let g = greenlet::Greenlet::new(|()| greenlet::current().is_main());
/// assert_eq!(g.switch::<(), bool>(()).unwrap(), false);
/// ```
#[doc(alias = "getcurrent")]
pub fn current() -> Greenlet {
    switch::current()
}

/// The thread's main greenlet: the thread's own code, the root of every parent chain.
///
/// During thread exit, once the runtime is torn down, this is the main greenlet of a fresh
/// runtime in which nothing can switch any more (see the crate docs); it never panics.
pub fn main() -> Greenlet {
    switch::main_greenlet()
}

#[cfg(test)]
mod layout {
    use std::mem::{offset_of, size_of};

    use super::Inner;
    use crate::switch::CoroCell;

    /// What a switch, a park and a wake-up touch ends within the first 120 bytes of `Inner`
    /// (the allocation's first three cache lines with the handle count before it), and the
    /// order that gives it costs no size.
    #[test]
    fn hot_fields_come_first() {
        let hot_end = offset_of!(Inner, sched) + crate::hub::HOT_GREENLET_DATA;
        assert!(offset_of!(Inner, coro) + size_of::<CoroCell>() <= offset_of!(Inner, sched));
        assert!(hot_end <= 120, "hot fields end at byte {hot_end}");
        // 344 bytes with the default features; `monkey` adds a field to the scheduler's data.
        #[cfg(feature = "monkey")]
        let limit = 344 + size_of::<crate::monkey::Deferred>();
        #[cfg(not(feature = "monkey"))]
        let limit = 344;
        assert!(
            size_of::<Inner>() <= limit,
            "Inner grew to {}",
            size_of::<Inner>()
        );
    }
}

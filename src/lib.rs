//! Python's greenlet + gevent for Rust: stackful coroutines with explicit `switch()`, and a hub
//! that runs straight-line, blocking-looking code for thousands of connections on one OS thread.
//!
//! # Four things to know first
//!
//! - **Blocking outside this crate blocks every greenlet.** All greenlets of a thread share it:
//!   a call that blocks the OS thread (a crate built on `std::net`, `std::thread::sleep`, a
//!   blocking C library) stops the hub and every other greenlet until it returns. Use the green
//!   types ([`net`], [`sync`], [`sleep`]), run the call with [`threadpool::spawn_blocking`], or
//!   build with the `monkey` feature, whose `monkey::patch_all()` makes libc's blocking calls
//!   (sockets, pipes, `poll`, sleeps, name lookups) park only the calling greenlet.
//! - **A `std::sync::Mutex` held across a green call can deadlock the hub.** A greenlet that
//!   blocks (parks) while holding it lets the others run on the same thread; the first of them
//!   that locks the same mutex blocks the OS thread, and with it the holder, forever. Use
//!   [`sync::Mutex`] (std's API; a waiting greenlet parks, on any hub), [`sync::Lock`] between
//!   greenlets of one thread, or keep std's lock only around code that does not block.
//! - **A [`Timeout`] makes blocking calls fail, it does not raise.** Rust has no exception to
//!   throw into a greenlet: while a `Timeout` is alive, each blocking call of its greenlet gives
//!   up at the deadline with its own timeout error (`JoinError::TimedOut`, an `io::Error` of
//!   kind `TimedOut`, ...), and the code between calls runs on; [`with_timeout`] tells whether it
//!   fired.
//! - **[`net::ToSocketAddrs`] is its own trait.** std's resolves host names with a blocking
//!   `getaddrinfo` on the calling thread, which would stop the hub; this one has std's
//!   implementations (addresses, `(ip, port)`, `"host:port"`, ...) but resolves names on lookup
//!   threads of its own (apart from [`threadpool::spawn_blocking`]'s, so slow DNS never delays
//!   other blocking work; [`net::set_resolver`] replaces the resolver). A type of yours that implements only std's trait is resolved with it first
//!   (`std::net::ToSocketAddrs::to_socket_addrs(&x)?.collect::<Vec<_>>()`, which blocks).
//!
//! How it is built (the trampoline, the hub's loop, stacks, the soundness rules) is in
//! [`architecture`].
//!
//! # Greenlets: explicit switching
//!
//! A [`Greenlet`] is a function running on its own small stack. Any greenlet can
//! [`switch`](Greenlet::switch) to any other on the same thread, handing it a value; the switch
//! returns when someone switches back. When a greenlet's function returns, its value goes to
//! its parent (by default the greenlet that created it). This is the reference article's first
//! demo, which prints 12, 56, 34, 78:
//!
//! ```
//! use greenlet::Greenlet;
//! use std::{cell::OnceCell, rc::Rc};
//!
//! let gr2: Rc<OnceCell<Greenlet>> = Rc::default();
//! let out: Rc<std::cell::RefCell<Vec<u32>>> = Rc::default();
//! let (g2, o1) = (gr2.clone(), out.clone());
//! let gr1 = Greenlet::new(move |()| {
//!     o1.borrow_mut().push(12);
//!     let () = g2.get().unwrap().switch(()).unwrap();
//!     o1.borrow_mut().push(34);
//!     let () = g2.get().unwrap().switch(()).unwrap();
//! });
//! let (g1, o2) = (gr1.clone(), out.clone());
//! gr2.set(Greenlet::new(move |()| {
//!     o2.borrow_mut().push(56);
//!     let () = g1.switch(()).unwrap();
//!     o2.borrow_mut().push(78);
//! })).unwrap();
//! let () = gr1.switch(()).unwrap();
//! assert_eq!(*out.borrow(), [12, 56, 34, 78]);
//! ```
//!
//! Values are typed at the call site: `g.switch::<T, R>(value)` sends a `T` and expects an `R`
//! back; a value of another type is a [`SwitchError::WrongType`], never undefined behaviour. A
//! panic in a greenlet reaches its parent as [`SwitchError::Panicked`]; [`Greenlet::throw`]
//! raises an error inside a suspended greenlet, and dropping the last handle of a suspended
//! greenlet unwinds it so that every destructor on its stack runs. What such a greenlet leaves
//! behind is dropped by the runtime, and a panic of that value's destructor is logged, never
//! thrown at the code that dropped the handle. Greenlets never leave their thread: handles are
//! `!Send`.
//!
//! [`Generator`] builds Python-style generators on the same machinery (`send`, `yield_`, and
//! `Iterator` when the input is `()`).
//!
//! ## Where greenlet's rules were changed, and why
//!
//! The crate is held to greenlet's and gevent's own test suites, case by case
//! (`tests/PORTED.md` in the repository). Three of greenlet's rules were decided differently:
//!
//! - **A switch to a finished greenlet is refused** with [`SwitchError::Dead`] (the value is
//!   dropped); greenlet delivers it to the finished greenlet's nearest live parent instead.
//!   Values are typed: the parent's pending `switch` asked for a value of its own type, from
//!   someone else, so the value would arrive as a [`SwitchError::WrongType`] somewhere
//!   unrelated, or worse, be taken for the answer it was waiting for. A stale handle is a bug
//!   where it is used, and is reported there. A finished greenlet's *return value* still goes
//!   to its nearest live ancestor, as in greenlet.
//! - **A throw into a finished greenlet is refused** with [`SwitchError::Dead`] (the error is
//!   dropped, not raised); greenlet raises it in the finished greenlet's parent. A thrown
//!   error unwinds the stack of the greenlet it is thrown into; a finished one has none, and
//!   unwinding its parent instead (often the caller itself) would tear down a stack nobody
//!   named.
//! - **[`Greenlet::throw`] into the main greenlet is refused** with
//!   [`SwitchError::NotAllowed`]; greenlet raises the error in main. Main runs the thread's
//!   own code and never finishes: an error unwinding it is a panic of the whole thread, which
//!   no greenlet can contain. To make main's pending switch fail, switch to it with a value
//!   that says so (`main.switch(Err::<T, E>(e))`: values are typed); blocking calls report
//!   [`LoopExit`] the same way, as an error, where gevent throws it into main.
//!
//! # The hub: gevent on one thread
//!
//! [`spawn`] starts a greenlet that the thread's hub runs whenever the current greenlet blocks:
//! in [`sleep`], a [`JoinHandle::join`], a [`sync`] primitive, or a `net` socket operation.
//! Blocking calls park the calling greenlet and let the others run, so sequential code
//! interleaves:
//!
//! ```
//! use std::time::Duration;
//!
//! let handles: Vec<_> = [30u64, 10, 20]
//!     .into_iter()
//!     .map(|ms| greenlet::spawn(move || {
//!         greenlet::sleep(Duration::from_millis(ms));
//!         ms
//!     }))
//!     .collect();
//! // The finishing order is the sleeping order: [1, 2, 0].
//! let order: Vec<usize> = greenlet::iwait(&handles, None).collect();
//! assert_eq!(order, [1, 2, 0]);
//! ```
//!
//! When the main greenlet blocks, it runs the hub until it is woken; when nothing could ever
//! wake it, its call fails with [`LoopExit`] instead of hanging. [`Timeout`] and
//! [`with_timeout`] bound any blocking call; [`threadpool::spawn_blocking`] runs work that has
//! no green form on OS threads while the hub carries on.
//!
//! As in gevent, a spawned greenlet's parent is the hub (its [`JoinHandle::greenlet`]'s
//! `parent()`), and any greenlet may be given the hub as parent: what it ends with goes to the
//! hub, which drops it (logging a failure). The hub cannot be switched to or thrown into.
//!
//! When a thread ends, its greenlets end with it: every greenlet that has not finished (parked,
//! suspended, never started) is destroyed, so its destructors run, main's greenlet-locals are
//! dropped, and the thread's stacks go back to the OS. Destructors that run then may use the
//! crate without aborting the process: nothing switches any more, so blocking calls fail at
//! once and a greenlet spawned then never runs (its `get` says [`JoinError::Killed`]).
//!
//! A [`JoinHandle`] is gevent's `Greenlet` object: [`get`](JoinHandle::get) its value,
//! [`link`](JoinHandle::link) callbacks to its end ([`link_value`](JoinHandle::link_value),
//! [`link_exception`](JoinHandle::link_exception), [`unlink`](JoinHandle::unlink) by the
//! returned [`LinkKey`]). [`spawn_raw`] skips the handle for fire-and-forget work, and
//! [`idle`] waits until the hub has nothing else ready. [`pool::Pool`] bounds how many run at
//! once ([`apply`](pool::Pool::apply), `map`, `imap`).
//!
//! ## Where gevent's rules were changed, and why
//!
//! Held to gevent's own tests, a few cases came out differently by decision; each type's docs
//! say more:
//!
//! - **A killed greenlet is not successful**: it has no value, so `get` is
//!   [`JoinError::Killed`] ([`JoinHandle::is_successful`]); gevent calls it a success whose
//!   value is `GreenletExit`.
//! - **A wait on a set [`sync::Event`] returns at once**, even while greenlets woken by the
//!   same `set` have not run yet; gevent makes the late waiter yield to them first.
//! - **`imap` has no `maxsize`**: a [`pool::Pool`]'s runs at most its size ahead of a slow
//!   reader, a [`pool::Group`]'s starts every item at once.
//! - **[`server::StreamServer::bind`] listens at once**, as std's `bind` does: a client that
//!   connects before `start` waits and is served; gevent binds at `start` and refuses it.
//! - **Sockets follow Rust's ownership**: one in use cannot be closed from elsewhere
//!   (`shutdown` ends a blocked read instead), and two greenlets may read one socket, served
//!   in turn, as two threads may with std's.
//! - **Greenlets left when their thread exits are unwound** then (their destructors run, see
//!   above); Python frees them without running them. At process exit (main returns, or
//!   `std::process::exit`) the main thread's suspended greenlets are not unwound: like std's
//!   other threads, they end with the process, at once. And reference cycles of greenlet handles
//!   are not collected: refer to a greenlet weakly with [`WeakGreenlet`].
//!
//! # Waiting on different things at once
//!
//! [`joinall`] and [`iwait`] take handles of one result type. To wait for whichever comes
//! first among greenlets of different types, an event, a result, a queue with an item, a
//! timeout (gevent's `wait(objects)`), give them as [`Waitable`]s to [`wait_any`],
//! [`wait_objects`] or [`iwait_objects`]:
//!
//! ```
//! use std::time::Duration;
//! use greenlet::{Waitable, sync::{Event, Queue}};
//!
//! let count = greenlet::spawn(|| { greenlet::sleep(Duration::from_millis(20)); 3u32 });
//! let jobs: Queue<String> = Queue::new();
//! let stop = Event::new();
//! let j = jobs.clone();
//! greenlet::spawn(move || j.put("first job".into()).unwrap());
//! let objects: [&dyn Waitable; 3] = [&count, &jobs, &stop];
//! assert_eq!(greenlet::wait_any(&objects, None), Some(1)); // the queue got an item first
//! ```
//!
//! # Killing, and cleaning up
//!
//! [`JoinHandle::kill`] unwinds a greenlet at once with [`GreenletExit`], running its
//! destructors; they cannot block (no switch is allowed while a thread unwinds), so their
//! blocking calls fail or return at once. For cleanup that must block (a goodbye message, a
//! flush), kill gracefully: [`JoinHandle::kill_timeout`] and [`killall`] with
//! [`Kill::Grace`] first make the greenlet's blocking call fail with [`Killed`], once, so its
//! code handles that as an ordinary error (gevent's `except GreenletExit:`) and may block; only
//! if it has not finished within the grace time is it unwound.
//!
//! # Diagnostics
//!
//! [`debug::dump`] lists every greenlet of the thread with its state, what it waits on and
//! where it parked (Go's goroutine dump); [`debug::dump_on_signal`] prints it on `SIGQUIT`.
//! The blocking monitor ([`HubBuilder::monitor`], `GREENLET_MONITOR`) names a greenlet that
//! keeps the hub from running, with a backtrace of where it is. A panic in a greenlet is
//! reported once, naming the greenlet.
//!
//! # Several cores: a `Runtime` of hubs
//!
//! One hub runs on one OS thread, so it uses one core. [`Runtime::new(n)`](Runtime::new) starts
//! n threads with a hub each; [`Runtime::spawn`] places a greenlet on one of them (the least
//! loaded) and returns a `Send` [`RemoteJoinHandle`] whose `join` parks a greenlet, or blocks a
//! plain thread, until the value is there:
//!
//! ```
//! use std::sync::Arc;
//! use greenlet::{Runtime, sync::Mutex};
//!
//! let rt = Runtime::new(2).unwrap();
//! let total = Arc::new(Mutex::new(0u64));
//! let handles: Vec<_> = (0..8u64).map(|i| {
//!     let total = total.clone();
//!     rt.spawn(move || {
//!         let square = i * i;                   // runs in parallel on the two hubs
//!         let mut t = total.lock().unwrap();    // a waiting greenlet parks, its hub runs on
//!         greenlet::sleep(std::time::Duration::from_millis(1)); // held across a green call
//!         *t += square;
//!     })
//! }).collect();
//! for h in handles {
//!     h.join().unwrap();
//! }
//! assert_eq!(*total.lock().unwrap(), 140);
//! ```
//!
//! The model: **a greenlet is placed on a hub when it is spawned, and never moves.** It runs
//! on that hub's thread from its first instruction to its last, so everything thread-bound
//! stays sound inside it: thread-locals (std's and C libraries'), `Rc`, the green sockets and
//! handles it creates, the stack it runs on (stacks are pooled per thread). Runtimes that move
//! coroutines between threads while they run (may's `go!`, Go) must forbid or break exactly
//! these. What crosses threads is only what the compiler lets cross: the `Send` closure given
//! to `spawn`, its `Send` result, and the [`sync`] types made for it ([`sync::Mutex`],
//! [`sync::RwLock`], [`sync::Condvar`], [`sync::mpsc`]). Greenlets and their handles are
//! `!Send`, so a program that would move one does not compile:
//!
//! ```compile_fail
//! let h = greenlet::spawn(|| 1);
//! std::thread::spawn(move || h.get()); // JoinHandle is !Send
//! ```
//!
//! The price of no migration is that balance is decided once, at spawn: a hub that got the
//! long-running greenlets keeps them. Least-loaded placement is the answer for work; for
//! servers the pattern is **one hub per core, one `SO_REUSEPORT` listener per hub**:
//! [`StreamServer::start_on`](server::StreamServer::start_on) binds a listener per hub, the
//! kernel spreads new connections over them, and each connection lives on the hub that
//! accepted it. Past one machine, run several processes behind a load balancer.
//!
//! # The operating system
//!
//! Child processes, files, signals and Rust futures are waited for the same way as sockets:
//! the calling greenlet parks, the hub runs the others.
//!
//! - [`process`] has std's `Command`, `Child` and pipes (gevent's `subprocess`): waiting for a
//!   child parks on a pidfd the hub watches (on `SIGCHLD` where the kernel has no
//!   `pidfd_open`), and reading or writing its pipes parks like a socket. Ten children
//!   started at once run at once.
//! - [`fs`] has std's `fs` functions and a `File` (gevent's `FileObjectThread`): regular files
//!   cannot be polled, so each call runs on a bounded thread pool of its own, and a slow disk
//!   delays only file work.
//! - [`signal::Signals`] lets a greenlet wait for Unix signals (`SIGTERM`, `SIGHUP`, ...): the
//!   handler only wakes the hub, and the greenlet handles the signal in ordinary code (the
//!   `graceful_shutdown` example stops a server on `SIGTERM`).
//! - [`block_on`] runs a Rust `Future` inside a greenlet, parking it while the future is
//!   pending; its `Waker` may be woken from any thread. The other way round, a
//!   [`JoinHandle`] turns into a `Send` future ([`future::JoinFuture`]) that async code on any
//!   executor awaits. Futures that need a tokio reactor are out of scope (see [`future`]).
//!
//! ```
//! use greenlet::process::Command;
//!
//! let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
//! let t = ticks.clone();
//! let ticker = greenlet::spawn(move || loop {
//!     greenlet::sleep(std::time::Duration::from_millis(1));
//!     t.set(t.get() + 1);
//! });
//! // The child runs for 20 ms; this greenlet parks meanwhile and the ticker ticks.
//! let out = Command::new("sh").args(["-c", "sleep 0.02; echo done"]).output()?;
//! assert_eq!(out.stdout, b"done\n");
//! assert!(ticks.get() > 0);
//!
//! let path = std::env::temp_dir().join(format!("greenlet-front-{}", std::process::id()));
//! greenlet::fs::write(&path, "on the file pool")?;
//! assert_eq!(greenlet::fs::read_to_string(&path)?, "on the file pool");
//! greenlet::fs::remove_file(&path)?;
//!
//! assert_eq!(greenlet::block_on(async { 40 + 2 }), 42);
//! ticker.kill_nowait();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! TLS and WebSocket libraries that work over any `Read + Write` stream work over the green
//! sockets unchanged: the `tls_echo` (rustls) and `websocket_echo` (tungstenite) examples are
//! servers and clients written as blocking code.
//!
//! # Unmodified blocking code: the `monkey` feature
//!
//! Code written against `std::net`, `std::thread::sleep` or a blocking crate (an HTTP client,
//! a database driver) blocks the OS thread, and with it every greenlet. Built with the `monkey`
//! feature, the crate defines libc's blocking functions itself (`read`, `recv`, `send`,
//! `accept`, `connect`, `poll`, `select`, `epoll_wait`, `nanosleep`, `getaddrinfo`, ...); after
//! `greenlet::monkey::patch_all()`, such a call made by a greenlet parks that greenlet on the
//! hub instead, and returns what libc would have returned. This is gevent's
//! `monkey.patch_all()`, done at the level of libc's symbols, as Tencent's libco does:
//!
//! ```toml
//! greenlet = { version = "0.1", features = ["monkey"] }
//! ```
//!
#![cfg_attr(feature = "monkey", doc = "```")]
#![cfg_attr(not(feature = "monkey"), doc = "```ignore")]
//! use std::time::Duration;
//!
//! greenlet::monkey::patch_all();
//! // std's sleep, in two greenlets: both sleep at once.
//! let a = greenlet::spawn(|| std::thread::sleep(Duration::from_millis(50)));
//! let b = greenlet::spawn(|| std::thread::sleep(Duration::from_millis(50)));
//! greenlet::joinall(&[a, b], None, None).unwrap();
//! ```
//!
//! A hooked call cooperates only when a greenlet of the calling thread makes it (main
//! included), outside the hub, outside a panic's unwinding and outside a signal handler;
//! everywhere else (other threads, before `patch_all`) it is the plain system call, a few
//! nanoseconds dearer. The user's view of every descriptor is kept: a non-blocking socket
//! still returns `EAGAIN`, `set_read_timeout` still ends a read with `WouldBlock`, a blocking
//! `write` still writes everything. What cannot cooperate: `std::sync`'s locks and channels
//! (futexes: use [`sync`]), regular files (use [`threadpool::spawn_blocking`]), the standard
//! streams, and libc's calls to itself. C libraries linked as shared objects (libcurl) reach
//! the hooks too, through the executable's dynamic symbol table. The `monkey` module's page (built with the feature) has the whole model and its limits;
//! `examples/monkey_fetch.rs` is the reference article's concurrent fetch with the unmodified
//! `ureq` client.
//!
//! # Stacks
//!
//! Each greenlet gets a guarded [`DEFAULT_STACK_SIZE`] stack ([`Builder::stack_size`] for
//! more), carved out of large shared mappings and pooled per thread, so that a million parked
//! greenlets fit in one process on a default Linux kernel. The stacks of finished greenlets are
//! reused by the next ones; a thread that goes idle after a burst keeps a bounded number of
//! them (about 6 MiB for shallow 64 KiB stacks, whatever the size of the burst) and gives the
//! rest back to the OS. A stack overflow is reported with the greenlet's name and stack size,
//! then aborts: it is never silent corruption.
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod debug;
mod error;
pub mod fs;
pub mod future;
mod generator;
mod greenlet;
mod hub;
#[cfg(feature = "monkey")]
pub mod monkey;
pub mod net;
pub mod pool;
pub mod process;
pub mod runtime;
mod sched;
pub mod select;
pub mod server;
pub mod signal;
mod stack;
mod switch;
pub mod sync;
mod thread_state;
pub mod threadpool;
mod value;

pub use crate::error::{GreenletExit, Killed, Panic, SwitchError};
pub use crate::future::{block_on, block_on_timeout};
pub use crate::generator::{Generator, GeneratorState, Yielder};
pub use crate::greenlet::{Builder, Greenlet, ParentError, WeakGreenlet, current, main};
pub use crate::hub::{
    Elapsed, HubBuilder, HubHandle, JoinError, JoinHandle, Kill, LinkFn, LinkKey, LocalKey,
    LoopExit, SpawnBuilder, Timeout, Waitable, Wakeup, idle, idle_timeout, iwait, iwait_objects,
    joinall, killall, sleep, sleep_until, spawn, spawn_later, spawn_raw, wait, wait_all, wait_any,
    wait_objects, with_timeout, yield_now,
};
pub use crate::runtime::{RemoteJoinHandle, Runtime};
pub use crate::stack::DEFAULT_STACK_SIZE;

#[doc = include_str!("../ARCHITECTURE.md")]
pub mod architecture {}

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

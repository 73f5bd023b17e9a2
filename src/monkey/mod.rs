//! Monkey patching: unmodified blocking code (`std::net`, `std::thread::sleep`, `std::process`
//! pipes, `ureq` and any crate built on libc's blocking calls) cooperates with the hub, as
//! gevent's `monkey.patch_all()` makes Python's blocking code cooperate.
//!
//! Built with the `monkey` feature, the crate defines libc's blocking entry points (`read`,
//! `recv`, `connect`, `poll`, `nanosleep`, `getaddrinfo`, ...) itself. The linker binds std and
//! every Rust crate in the binary to them instead of libc's. After [`patch_all`], a hooked call
//! made by a greenlet (main included) waits the way the crate's own green calls do: it parks the
//! greenlet on the hub's readiness or timers and lets the others run, then returns exactly what
//! libc would have returned.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//!
//! greenlet::monkey::patch_all();
//! assert!(greenlet::monkey::is_patched());
//!
//! // Plain std code, nothing green in it.
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = greenlet::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     std::thread::sleep(Duration::from_millis(10)); // parks this greenlet only
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     conn.write_all(&buf)
//! });
//! let mut client = std::net::TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! let mut echo = [0; 5];
//! client.read_exact(&mut echo)?; // main parks; the server greenlet runs
//! assert_eq!(&echo, b"hello");
//! server.get().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # When a hooked call cooperates
//!
//! Only when all of these hold; otherwise it is the plain system call, at a cost of a few
//! nanoseconds (`cargo bench --features monkey --bench monkey` measures it):
//!
//! - [`patch_all`] was called (in this process: the child of a `fork` runs unpatched);
//! - the calling thread has a greenlet runtime and a greenlet is running (main included), not
//!   the hub itself: mio's own `epoll_wait` and the hub's waker never come back into the hub;
//! - the thread is not unwinding a panic, and is not in a signal handler (the hooks wrap every
//!   handler installed with `sigaction` or `signal` to know this; a handler's calls always go
//!   straight to the kernel);
//! - the descriptor can be waited for: a socket, pipe, FIFO, character device, eventfd, epoll
//!   descriptor, ... Regular files, directories and block devices cannot (epoll refuses them;
//!   gevent leaves them blocking too), and neither can the standard streams 0, 1 and 2: std's
//!   `stdout` lock is per thread and re-entrant, so a greenlet parked inside `println!` would
//!   let another greenlet into the same buffer (a `RefCell` panic), and `stdin`'s lock would
//!   deadlock the thread.
//!
//! # What stays as libc has it
//!
//! - **The user's view of the descriptor.** A descriptor the user made non-blocking
//!   (`O_NONBLOCK`, `FIONBIO`, `set_nonblocking`) keeps returning `EAGAIN`. A blocking one is
//!   never switched to non-blocking behind the user's back: each attempt is made non-blocking
//!   for that call only (`MSG_DONTWAIT` for sockets, `RWF_NOWAIT` for pipes; `poll` first where
//!   the kernel has no `RWF_NOWAIT`). The exceptions: a listening socket that a greenlet
//!   accepts on is made non-blocking for good (the hooks report it as the user set it, and a
//!   blocking `accept` on it from a thread without a runtime still blocks); a blocking
//!   `connect` sets `O_NONBLOCK` for the duration of that one call.
//! - **Timeouts.** `SO_RCVTIMEO` / `SO_SNDTIMEO` (std's `set_read_timeout`) are honoured: when
//!   one expires the call fails with `EAGAIN` (`EINPROGRESS` for `connect`), exactly as
//!   unpatched. A [`Timeout`](crate::Timeout) of the greenlet ends the wait with `ETIMEDOUT`
//!   (an `io::Error` of kind `TimedOut`), except for sleeps, which std's `thread::sleep` only
//!   lets end early through `EINTR`: they end at the `Timeout` with nothing left to sleep.
//! - **Blocking semantics.** A blocking `send`/`write` writes everything before it returns (or
//!   a partial count when its timeout expires), `recv` with `MSG_WAITALL` waits for the whole
//!   buffer, `connect` parks until the handshake ends and reports `SO_ERROR`.
//! - **One system call per keep-alive request.** A `read` or `recv` (no flags) of plain TCP
//!   that returned less than it asked for emptied the receive buffer, so the next read parks
//!   without first asking the kernel for what it would only answer `EAGAIN` to, as a green
//!   [`TcpStream`](crate::net::TcpStream) does: what arrives meanwhile wakes it. It asks first after
//!   the hub polled, on a descriptor the user made non-blocking, and once the socket reported
//!   urgent data, its end or an error. Datagram and Unix sockets never take this path, nor
//!   does a TCP socket given an upper layer protocol (kernel TLS) through the hooked
//!   `setsockopt`; one given it by a raw `syscall` is outside what the hooks can see.
//! - **Errors.** `EBADF` for a closed descriptor; a descriptor closed (through the hooks) by
//!   another greenlet while one is parked on it wakes the parked one with `EBADF`, even if its
//!   number has been reused meanwhile. `ECONNREFUSED`, `EMFILE`, `EPIPE`, ... as the kernel
//!   gives them.
//!
//! # What cannot cooperate
//!
//! - **`std::sync`.** `Mutex`, `Condvar`, `RwLock`, `mpsc` and `Barrier` wait with the futex
//!   system call, made directly, not through libc: a greenlet blocked on one blocks the thread
//!   and all its greenlets. Between greenlets use [`crate::sync`]. A `std::sync::Mutex` held
//!   across a hooked call that parks can deadlock the thread as a green call can.
//! - **Files.** Regular-file I/O blocks (see above); run it with
//!   [`spawn_blocking`](crate::threadpool::spawn_blocking).
//! - **Other threads.** Cooperation is per thread: a thread without greenlets is untouched. A
//!   descriptor closed by another thread while a greenlet is parked on it does not wake that
//!   greenlet (epoll forgets the file silently, as a thread blocked in `read` is not woken by
//!   another thread's `close` on Linux either): its timeout, if any, ends the wait.
//! - **Cancellation points.** The hooks make raw system calls, which are not `pthread_cancel`
//!   cancellation points (Rust does not use thread cancellation).
//! - **Calls libc makes to itself** (glibc's `fopen`/`fread`, `system`, its resolver's own
//!   sockets) and raw `syscall`s, and a few calls that are not hooked: `waitpid`, `futex`,
//!   `sendfile`, `splice`, `recvmmsg`/`sendmmsg`, `gethostbyname`. A `ppoll`, `pselect` or
//!   `epoll_pwait` with a signal mask passes through (the mask cannot be kept while other
//!   greenlets run).
//! - **C libraries** reach the hooks through the dynamic symbol table: see below.
//! - **Signals** do not interrupt a parked call with `EINTR` (as `SA_RESTART` would not); a
//!   signal still interrupts a call that really blocks, as unpatched.
//! - **Kills.** A [`kill`](crate::JoinHandle::kill) or `throw` that reaches a greenlet parked
//!   in a hooked call cannot unwind through the C frames of libc's signature: the call fails
//!   with `ECANCELED` (as every later hooked call of that greenlet does), and the kill is
//!   raised at the greenlet's next green blocking call, or is its outcome when it returns. A
//!   soft kill ([`kill_timeout`](crate::JoinHandle::kill_timeout)) makes the hooked call it
//!   reaches fail with `ECANCELED`, once: std reports it as an `io::Error` with that
//!   `raw_os_error`, and the greenlet's cleanup may block in hooked calls as usual.
//! - **`fork`.** The child runs unpatched (a memory page that the kernel wipes on fork says
//!   so); a prefork server forks first and calls `patch_all` in each child.
//!
//! - **Stacks.** Code written for threads may need more than a greenlet's default
//!   [64 KiB stack](crate::DEFAULT_STACK_SIZE): `ureq` in a debug build and libcurl do. Spawn
//!   such greenlets with [`SpawnBuilder::stack_size`](crate::SpawnBuilder::stack_size); an
//!   overflow is reported with the greenlet's name, never silent.
//!
//! When the [blocking monitor](crate::HubBuilder::monitor) is on and a greenlet blocks the hub
//! in a hooked call that could not cooperate, the warning names the call and its descriptor.
//!
//! # C libraries
//!
//! Rust code (std included) calls libc through symbols that the static linker resolves to the
//! hooks. A C library linked as a shared object (libcurl, libpq, ...) resolves its calls at run
//! time through the executable's *dynamic* symbol table, and the hooks are there without any
//! flag: the linker (rust-lld, GNU ld) exports every symbol that the executable defines and a
//! shared library on the link line defines too, and libc.so.6 defines every hooked name. The
//! dynamic linker then binds libcurl's `recv`, `poll`, `connect`, `getaddrinfo`, ... to the
//! hooks, since the executable comes first in the lookup order (`monkey-c/` in the repository
//! tests it with libcurl: ten transfers in flight at once). A build that hides the
//! executable's symbols (a version script, `-Wl,--exclude-libs,ALL`) can put them back with
//! `-C link-arg=-rdynamic`. A C library compiled into the binary statically reaches the hooks as
//! Rust code does. What never reaches them: libc's calls to itself, and a C library's raw
//! `syscall`s.

mod connect;
mod control;
mod dns;
mod fdtable;
mod io;
mod poll;
mod signal;
mod sleep;
mod sys;
mod wait;

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use crate::greenlet::Inner;

/// The flag value in the state page that means "patched".
const ON: u8 = 1;

/// The page holding the patched flag, once [`patch_all`] made it. The page is
/// `MADV_WIPEONFORK`: in a forked child it reads as zero, so the child runs unpatched without
/// any fork handler running (`clone3` and raw `fork` system calls included).
static STATE: AtomicPtr<AtomicU8> = AtomicPtr::new(std::ptr::null_mut());

/// Set in a forked child when the kernel could not wipe the page (`pthread_atfork` fallback).
static FORKED: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// How deep this thread is in signal handlers (maintained by the `sigaction` wrapper).
    static SIGNAL_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Turns cooperation on for the whole process: from now on, blocking libc calls made by a
/// greenlet park it instead of blocking the thread (gevent's `monkey.patch_all()`).
///
/// Idempotent, and safe to call from any thread at any time. Calls already blocked in the
/// kernel finish as they started. In the child of a `fork` made after patching, it does
/// nothing: the child inherited the parent's hub state, which it must not use.
///
/// # Examples
/// ```
/// greenlet::monkey::patch_all();
/// greenlet::monkey::patch_all(); // idempotent
/// assert!(greenlet::monkey::is_patched());
///
/// // std::thread::sleep now parks only the calling greenlet.
/// let a = greenlet::spawn(|| std::thread::sleep(std::time::Duration::from_millis(20)));
/// let b = greenlet::spawn(|| std::thread::sleep(std::time::Duration::from_millis(20)));
/// greenlet::joinall(&[a, b], None, None).unwrap();
/// ```
#[doc(alias = "monkey.patch_all")]
pub fn patch_all() {
    if !STATE.load(Ordering::Acquire).is_null() || FORKED.load(Ordering::Relaxed) != 0 {
        return;
    }
    // Libc's functions are resolved now, outside any signal handler.
    signal::prepare();
    dns::prepare();
    let page = make_state_page();
    if STATE
        .compare_exchange(
            std::ptr::null_mut(),
            page,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
    {
        // Handlers installed before patching (std's own SIGSEGV handler, ...) get wrapped too.
        signal::wrap_installed();
    }
}

/// Whether [`patch_all`] has been called in this process (false in a child forked after it).
///
/// # Examples
/// ```
/// greenlet::monkey::patch_all();
/// assert!(greenlet::monkey::is_patched());
/// ```
pub fn is_patched() -> bool {
    let p = STATE.load(Ordering::Acquire);
    // SAFETY: the page is mapped once and never unmapped.
    !p.is_null() && unsafe { &*p }.load(Ordering::Relaxed) == ON
}

/// Maps the state page and sets its flag; falls back to a leaked heap byte plus a fork handler
/// when the kernel has no `MADV_WIPEONFORK` (before Linux 4.14).
fn make_state_page() -> *mut AtomicU8 {
    // SAFETY: an anonymous private mapping of one page, with no address hint.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    // SAFETY: `page` is the mapping made just above (checked before use).
    let wiped = page != libc::MAP_FAILED
        && unsafe { libc::madvise(page, 4096, libc::MADV_WIPEONFORK) } == 0;
    let flag: *mut AtomicU8 = if wiped {
        page.cast()
    } else {
        if page != libc::MAP_FAILED {
            // SAFETY: unmapping the page mapped above, which nothing else uses.
            unsafe { libc::munmap(page, 4096) };
        }
        extern "C" fn in_child() {
            FORKED.store(1, Ordering::Relaxed);
            let p = STATE.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: the flag is never freed.
                unsafe { &*p }.store(0, Ordering::Relaxed);
            }
        }
        // SAFETY: registering a plain function that only stores to atomics.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        Box::into_raw(Box::new(AtomicU8::new(0)))
    };
    // SAFETY: `flag` points to a live, never-freed AtomicU8 (mapped page or leaked box).
    unsafe { &*flag }.store(ON, Ordering::Release);
    flag
}

/// The question every hook asks first: should this call cooperate? Reads one static, the
/// state page and two thread-locals; allocates nothing and takes no lock, so it is
/// async-signal-safe (a handler's calls answer no, through [`SIGNAL_DEPTH`]).
#[inline(always)]
pub(crate) fn cooperating() -> bool {
    let p = STATE.load(Ordering::Relaxed);
    if p.is_null() {
        return false;
    }
    // SAFETY: the page is mapped once and never unmapped.
    if unsafe { &*p }.load(Ordering::Relaxed) != ON {
        return false;
    }
    crate::switch::in_greenlet() && SIGNAL_DEPTH.get() == 0 && !std::thread::panicking()
}

/// A kill or throw that reached a greenlet inside a hooked call, kept for its next park.
#[derive(Default)]
pub(crate) struct Deferred(Cell<Option<Box<dyn Any + Send>>>);

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = {
            let p = self.0.take();
            let pending = p.is_some();
            self.0.set(p);
            pending
        };
        f.debug_struct("Deferred")
            .field("pending", &pending)
            .finish()
    }
}

/// Takes the deferred unwind of `g`, if any.
pub(crate) fn take_deferred(g: &Inner) -> Option<Box<dyn Any + Send>> {
    g.sched.deferred.0.take()
}

/// Whether the current greenlet has a deferred unwind pending.
fn has_deferred() -> bool {
    crate::switch::with_current(|me| {
        let p = me.sched.deferred.0.take();
        let pending = p.is_some();
        me.sched.deferred.0.set(p);
        pending
    })
}

/// Keeps `payload` to be raised at the current greenlet's next park (the first one wins).
fn defer(payload: Box<dyn Any + Send>) {
    let me = crate::current();
    let slot = &me.inner().sched.deferred.0;
    match slot.take() {
        Some(first) => slot.set(Some(first)),
        None => slot.set(Some(payload)),
    }
}

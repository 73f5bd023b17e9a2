//! Stack overflow reporting: a `SIGSEGV`/`SIGBUS` handler that recognises greenlet guard pages.
//!
//! A greenlet that runs off the bottom of its stack touches the guard below it and the kernel
//! sends `SIGSEGV`. The handler runs on the thread's alternate signal stack (the greenlet stack is
//! exhausted), looks the fault address up in the lock-free slab [`registry`], and, if it is a
//! guard, writes one line naming the greenlet and its stack size and aborts. Any other fault is
//! handed back to whoever handled the signal before us (Rust's own "thread has overflowed its
//! stack" reporter, or the default action) by restoring their handler and returning, so the
//! faulting instruction runs again under it.
//!
//! Everything reachable from the handler is async-signal-safe: atomics, `write(2)`, `abort(3)`,
//! `sigaction(2)`; no allocation, no locks, no formatting machinery.

use std::cell::OnceCell;
use std::sync::{Once, OnceLock};

use super::{advice, registry, slab};

/// Size of the alternate signal stack we add to threads that have none.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// `AT_MINSIGSTKSZ` auxv entry (Linux ≥ 5.14): the kernel's minimum signal stack size.
const AT_MINSIGSTKSZ: libc::c_ulong = 51;

/// Longest greenlet name (in bytes) quoted in the overflow message; longer names are cut.
const MAX_NAME_IN_MESSAGE: usize = 200;

/// Installs the process-wide handlers once.
static INSTALL: Once = Once::new();

/// The `SIGSEGV` disposition in place before ours.
static PREVIOUS_SEGV: OnceLock<libc::sigaction> = OnceLock::new();

/// The `SIGBUS` disposition in place before ours.
static PREVIOUS_BUS: OnceLock<libc::sigaction> = OnceLock::new();

thread_local! {
    /// This thread's alternate signal stack, once checked (and created if it was missing).
    static ALT_STACK: OnceCell<AltStack> = const { OnceCell::new() };
}

/// Makes greenlet stack overflows on this thread abort with a clear message.
///
/// Installs the `SIGSEGV`/`SIGBUS` handler once per process and makes sure the calling thread
/// has an alternate signal stack (threads spawned by std already have one). Idempotent and cheap
/// after the first call on a thread.
pub(crate) fn install_overflow_handler() {
    INSTALL.call_once(|| {
        // SAFETY: runs once (under `INSTALL`); the handler only makes async-signal-safe calls.
        unsafe {
            install(libc::SIGSEGV, &PREVIOUS_SEGV);
            install(libc::SIGBUS, &PREVIOUS_BUS);
        }
    });
    // During thread-local destruction there is nothing left to set up; ignore.
    let _ = ALT_STACK.try_with(|cell| {
        cell.get_or_init(AltStack::ensure);
    });
}

/// Saves the current disposition of `signal` in `previous`, then installs [`on_fault`].
///
/// # Safety
///
/// Must be called at most once per signal (`previous` is set once) and not concurrently with
/// other code that changes the disposition of `signal`.
unsafe fn install(signal: libc::c_int, previous: &OnceLock<libc::sigaction>) {
    // SAFETY: `sigaction` is a plain C struct for which all-zeroes is a valid value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying the disposition writes only into `old`.
    if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } != 0 {
        return;
    }
    // Saved before ours is installed, so the handler always finds it.
    let _ = previous.set(old);
    // SAFETY: as above, all-zeroes is a valid `sigaction`.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_fault;
    new.sa_sigaction = handler as libc::sighandler_t;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `new.sa_mask` is a valid `sigset_t` owned by us; `new` is fully initialised and
    // its handler is async-signal-safe.
    unsafe {
        libc::sigemptyset(&mut new.sa_mask);
        libc::sigaction(signal, &new, std::ptr::null_mut());
    }
}

/// The `SIGSEGV`/`SIGBUS` handler.
extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid `siginfo_t` to `SA_SIGINFO` handlers, and for SIGSEGV and
    // SIGBUS its `si_addr` field is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(stack_size) = registry::guard_hit(addr) {
        report_and_abort(stack_size);
    }
    // Not one of our guards: give the fault back to the previous handler by reinstalling it; when
    // we return, the faulting instruction runs again and faults under that handler.
    let previous = if signal == libc::SIGBUS {
        &PREVIOUS_BUS
    } else {
        &PREVIOUS_SEGV
    };
    match previous.get() {
        // SAFETY: `previous` is a disposition the kernel gave us; reinstalling it is what the
        // kernel would do for a handler installed with SA_RESETHAND.
        Some(previous) => unsafe {
            libc::sigaction(signal, previous, std::ptr::null_mut());
        },
        // SAFETY: resetting to the default action is always valid.
        None => unsafe {
            libc::signal(signal, libc::SIG_DFL);
        },
    }
}

/// Writes the overflow line for the current greenlet to stderr and aborts.
fn report_and_abort(stack_size: usize) -> ! {
    // Async-signal-safe: reads a const-initialised thread-local pointer and immutable fields.
    let (id, name) = crate::greenlet::current_identity_for_signal();
    let mut line = Line::new();
    line.push(b"greenlet: stack overflow in greenlet #");
    line.push_u64(id);
    if !name.is_empty() {
        line.push(b" \"");
        line.push_name(name);
        line.push(b"\"");
    }
    line.push(b" (stack size ");
    line.push_u64((stack_size / 1024) as u64);
    line.push(b" KiB); give it a bigger stack with greenlet::Builder::stack_size(...)\n");
    line.write_to_stderr();
    // SAFETY: abort is async-signal-safe and never returns.
    unsafe { libc::abort() }
}

/// A fixed-size line buffer, formatted without allocating (usable in a signal handler).
struct Line {
    /// The bytes written so far.
    buf: [u8; 512],
    /// Number of valid bytes in `buf`.
    len: usize,
}

impl Line {
    /// An empty line.
    fn new() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }

    /// Appends `bytes`, dropping what does not fit.
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == self.buf.len() {
                return;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Appends a greenlet name, cut to `MAX_NAME_IN_MESSAGE` bytes and with control characters
    /// replaced by `?` so the message stays on one line.
    fn push_name(&mut self, name: &[u8]) {
        for &b in name.iter().take(MAX_NAME_IN_MESSAGE) {
            self.push(&[if b.is_ascii_control() { b'?' } else { b }]);
        }
        if name.len() > MAX_NAME_IN_MESSAGE {
            self.push(b"...");
        }
    }

    /// Appends `n` in decimal.
    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }

    /// Writes the line to file descriptor 2 with `write(2)`, retrying on `EINTR` and short writes.
    fn write_to_stderr(&self) {
        let mut rest = &self.buf[..self.len];
        while !rest.is_empty() {
            // SAFETY: `rest` is a valid, initialised byte slice for the duration of the call.
            let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                rest = &rest[n as usize..];
            } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            } else {
                return;
            }
        }
    }
}

/// This thread's alternate signal stack as we found or made it.
#[derive(Debug)]
struct AltStack {
    /// The mapping we created and registered (`start`, `len`), or `None` if the thread already had
    /// an alternate stack (std's, or the application's) or creating one failed.
    ours: Option<(usize, usize)>,
}

impl AltStack {
    /// Makes sure the thread has an alternate signal stack, creating one if it has none.
    fn ensure() -> AltStack {
        // SAFETY: all-zeroes is a valid `stack_t`.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: querying writes only into `current`.
        let queried = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) } == 0;
        if !queried || current.ss_flags & libc::SS_DISABLE == 0 {
            return AltStack { ours: None };
        }
        let page = slab::page_size();
        // SAFETY: getauxval has no preconditions; it returns 0 for unknown entries.
        let min = unsafe { libc::getauxval(AT_MINSIGSTKSZ) } as usize;
        let size = ALT_STACK_SIZE
            .max(min.saturating_mul(4))
            .next_multiple_of(page);
        let len = size + slab::guard_len();
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing aliases
        // nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            log::warn!(
                "greenlet: could not map an alternate signal stack ({}); stack overflows on this \
                 thread will not be reported",
                std::io::Error::last_os_error()
            );
            return AltStack { ours: None };
        }
        let start = ptr as usize;
        let stack = libc::stack_t {
            ss_sp: (start + slab::guard_len()) as *mut libc::c_void,
            ss_flags: 0,
            ss_size: size,
        };
        // SAFETY: the guard is the low end of the mapping just created, which holds nothing; the
        // stack registered above it stays mapped until `Drop` unregisters it.
        let ok = unsafe { advice::install_guards(&[(start, slab::guard_len())]) }.is_ok()
            && unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) } == 0;
        if !ok {
            // SAFETY: the mapping was created above and was not registered as a signal stack.
            unsafe { libc::munmap(ptr, len) };
            return AltStack { ours: None };
        }
        AltStack {
            ours: Some((start, len)),
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let Some((start, len)) = self.ours else {
            return;
        };
        // SAFETY: all-zeroes is a valid `stack_t`.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: querying writes only into `current`.
        let queried = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) } == 0;
        if !queried {
            return; // Leak rather than unmap a stack the kernel may still use.
        }
        if current.ss_sp as usize == start + slab::guard_len() {
            if current.ss_flags & libc::SS_ONSTACK != 0 {
                return; // Running on it (cannot happen from a TLS destructor); leak.
            }
            let disable = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disabling the alternate stack of the current thread, which is not on it.
            if unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) } != 0 {
                return;
            }
        }
        // SAFETY: the mapping is ours and no longer registered as this thread's signal stack.
        unsafe { libc::munmap(start as *mut libc::c_void, len) };
    }
}

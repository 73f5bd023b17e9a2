//! The cooperative side of the hooks: how a hooked call parks its greenlet, and the loops that
//! turn "would block" into "park, then try again" with the kernel's blocking semantics.
//!
//! Each thread keeps its own map from descriptor numbers to hub registrations, made the first
//! time a hooked call has to wait on a descriptor and kept until the descriptor is closed
//! through the hooks. An entry carries the descriptor's generation (see `fdtable`): an entry
//! of an older generation belongs to a file that was closed behind this thread's back, and is
//! released without touching epoll (the number may already name another file).
//!
//! Nothing here may unwind into the C caller: every park runs under `catch_unwind`, and a kill
//! or throw that arrives is kept (`super::defer`) and reported as `ECANCELED`.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use libc::{c_int, ssize_t};

use super::fdtable::{self, Dir, Kind, Slot};
use super::sys::{self, errno, fail, set_errno};
use crate::hub::waitlist::BlockError;
use crate::hub::{self, Direction};
use crate::net::Registration;

/// A registration, with the generation of the descriptor it was made for.
struct Entry {
    generation: u32,
    reg: Rc<Watched>,
}

/// A descriptor this thread waits on: its hub registration, and what its reads left.
pub(super) struct Watched {
    registration: Registration,
    /// 1 + the reactor's harvest count when a read of this descriptor last emptied its receive
    /// buffer, 0 when the last read did not (see [`Watched::known_empty`]).
    emptied: Cell<u64>,
}

impl Watched {
    fn io(&self) -> &hub::IoRegistration {
        self.registration.io()
    }

    fn release(&self, closing: bool) {
        self.registration.release(closing);
    }

    /// Whether the last read of this stream emptied its receive buffer and nothing can have
    /// come in unseen since, so that the next read may park without asking the kernel first
    /// (see `super::io::stream_read`). Never for a descriptor the user made non-blocking,
    /// which must not park.
    pub(super) fn known_empty(&self, ctx: &Ctx) -> bool {
        self.emptied.get() == hub::io_harvests() + 1
            && !self.io().read_sticky()
            && !ctx.nonblocking()
    }

    /// Records whether a read of `n` bytes that returned `r` emptied the stream's receive
    /// buffer: a read of plain TCP that returned less than it asked for. Only for a
    /// registration made before the read: whatever arrived after the read then queued an
    /// edge on it.
    pub(super) fn note_read(&self, ctx: &Ctx, r: ssize_t, n: usize) {
        // Linux caps one read at `MAX_RW_COUNT`: a read of more may stop there, short of `n`.
        const MAX_RW_COUNT: usize = (i32::MAX as usize) & !4095;
        let short = r > 0 && (r as usize) < n.min(MAX_RW_COUNT);
        // Read in the same run as the read itself: no harvest can come between.
        self.emptied.set(if short && ctx.plain_tcp() {
            hub::io_harvests() + 1
        } else {
            0
        });
    }
}

thread_local! {
    /// This thread's registrations, by descriptor number.
    static REGS: RefCell<Vec<Option<Entry>>> = const { RefCell::new(Vec::new()) };
    /// Whether [`REGS`] was ever used on this thread: `close` looks only then.
    static REGS_USED: Cell<bool> = const { Cell::new(false) };
}

/// Why a wait ended without the descriptor becoming ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blocked {
    /// The call's own timeout (`SO_RCVTIMEO`, `poll`'s timeout, ...) expired.
    Own,
    /// A `Timeout` of the greenlet expired.
    Green,
    /// The descriptor was closed through the hooks while the greenlet waited.
    Closed,
    /// A kill or throw arrived (kept for later), or the hub was stopped.
    Canceled,
    /// Waiting cooperatively is impossible here (the hub ran dry, the descriptor cannot be
    /// registered, the hub is gone): the caller makes the plain blocking call instead.
    Impossible,
}

impl Blocked {
    /// The `errno` the call fails with, `own` being what its own timeout gives.
    pub(super) fn errno(self, own: c_int) -> c_int {
        match self {
            Blocked::Own => own,
            Blocked::Green => libc::ETIMEDOUT,
            Blocked::Closed => libc::EBADF,
            Blocked::Canceled | Blocked::Impossible => libc::ECANCELED,
        }
    }
}

/// Runs the cooperative part of a hook so that no unwind reaches the C caller: a kill or
/// throw (or a bug's panic) is kept for the greenlet's next park, and the call fails with
/// `ECANCELED`.
pub(super) fn guarded<R>(on_unwind: R, f: impl FnOnce() -> R) -> R {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            super::defer(payload);
            set_errno(libc::ECANCELED);
            on_unwind
        }
    }
}

/// A cooperating call's view of one descriptor.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx {
    pub(super) fd: c_int,
    pub(super) slot: &'static Slot,
    pub(super) generation: u32,
}

impl Ctx {
    /// The descriptor's context, or `None` when calls on it must go straight to the kernel:
    /// a standard stream, an untracked number, or a thread whose hub is gone.
    pub(super) fn enter(fd: c_int) -> Option<Ctx> {
        if fd <= 2 || !hub::is_available() {
            return None;
        }
        let slot = fdtable::slot_or_alloc(fd)?;
        Some(Ctx {
            fd,
            slot,
            generation: slot.generation(),
        })
    }

    /// What the descriptor is, looked up once per generation.
    pub(super) fn kind(&self) -> Kind {
        let k = self.slot.kind();
        if k != Kind::Unknown {
            return k;
        }
        // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid, writable stat buffer. fstat is not hooked.
        if unsafe { libc::fstat(self.fd, &mut st) } < 0 {
            // A bad descriptor: the plain call reports it.
            return Kind::Blocking;
        }
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFSOCK => Kind::Socket,
            // Anonymous inodes (eventfd, timerfd, epoll, signalfd) have no file type.
            libc::S_IFIFO | libc::S_IFCHR | 0 => Kind::NoWait,
            _ => Kind::Blocking,
        };
        self.slot.set_kind(kind);
        kind
    }

    /// The user's view of `O_NONBLOCK`. Leaves `errno` alone.
    pub(super) fn nonblocking(&self) -> bool {
        if let Some(nb) = self.slot.nonblocking() {
            return nb;
        }
        let saved = errno();
        let flags = sys::fcntl(self.fd, libc::F_GETFL, 0);
        set_errno(saved);
        let nb = flags >= 0 && flags & libc::O_NONBLOCK != 0;
        if flags >= 0 {
            self.slot.set_nonblocking(nb);
        }
        nb
    }

    /// The socket timeout for `dir` (`None` for other descriptors, or none set).
    pub(super) fn timeout(&self, dir: Dir) -> Option<Duration> {
        if let Some(t) = self.slot.timeout(dir) {
            return t;
        }
        if self.kind() != Kind::Socket {
            return None;
        }
        let name = match dir {
            Dir::Read => libc::SO_RCVTIMEO,
            Dir::Write => libc::SO_SNDTIMEO,
        };
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let mut len = size_of::<libc::timeval>() as libc::socklen_t;
        let saved = errno();
        let r = sys::getsockopt(
            self.fd,
            libc::SOL_SOCKET,
            name,
            (&raw mut tv).cast(),
            &mut len,
        );
        set_errno(saved);
        if r != 0 {
            return None;
        }
        let t = sys::timeout_of_timeval(&tv);
        self.slot.set_timeout(dir, t);
        t
    }

    /// Whether the descriptor is a TCP socket with no upper layer protocol, learned once per
    /// generation (epoch) when `socket` or `accept` did not tell. Leaves `errno` alone.
    pub(super) fn plain_tcp(&self) -> bool {
        if let Some(tcp) = self.slot.plain_tcp() {
            return tcp;
        }
        let saved = errno();
        let int_opt = |level: c_int, name: c_int| {
            let mut v: c_int = 0;
            let mut len = size_of::<c_int>() as libc::socklen_t;
            let r = sys::getsockopt(self.fd, level, name, (&raw mut v).cast(), &mut len);
            (r == 0).then_some(v)
        };
        let domain = int_opt(libc::SOL_SOCKET, libc::SO_DOMAIN);
        let tcp = matches!(domain, Some(libc::AF_INET | libc::AF_INET6))
            && int_opt(libc::SOL_SOCKET, libc::SO_PROTOCOL) == Some(libc::IPPROTO_TCP)
            && {
                // The name of the upper layer protocol (kernel TLS: "tls"), empty when none.
                let mut name = [0u8; 16];
                let mut len = name.len() as libc::socklen_t;
                let r = sys::getsockopt(
                    self.fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_ULP,
                    name.as_mut_ptr().cast(),
                    &mut len,
                );
                r == 0 && (len == 0 || name[0] == 0)
            };
        set_errno(saved);
        if domain.is_some() {
            self.slot.set_plain_tcp(tcp);
        }
        tcp
    }

    /// The deadline of a call that starts waiting now, from its socket timeout.
    pub(super) fn deadline(&self, dir: Dir) -> Option<Instant> {
        self.timeout(dir)
            .and_then(|t| Instant::now().checked_add(t))
    }

    /// Parks the calling greenlet until the descriptor may be ready for `dir`, or until
    /// `deadline` (or the greenlet's `Timeout`).
    pub(super) fn wait(&self, dir: Dir, deadline: Option<Instant>) -> Result<(), Blocked> {
        self.wait_on(None, dir, deadline)
    }

    /// As [`wait`](Ctx::wait), on `watched` when the caller has already looked it up.
    pub(super) fn wait_on(
        &self,
        watched: Option<&Rc<Watched>>,
        dir: Dir,
        deadline: Option<Instant>,
    ) -> Result<(), Blocked> {
        let r = wait_one(self.fd, self.generation, watched, dir, deadline);
        if self.slot.generation() != self.generation {
            return Err(Blocked::Closed);
        }
        r
    }
}

/// The registration of `fd` (generation `generation`) on this thread's hub, made on first use.
fn registration(fd: c_int, generation: u32) -> Result<Rc<Watched>, Blocked> {
    let i = usize::try_from(fd).map_err(|_| Blocked::Impossible)?;
    let looked = REGS.try_with(|regs| {
        let mut regs = regs.try_borrow_mut().ok()?;
        if regs.len() <= i {
            regs.resize_with(i + 1, || None);
        }
        match &regs[i] {
            Some(e) if e.generation == generation => Some(Ok(e.reg.clone())),
            _ => Some(Err(regs[i].take())),
        }
    });
    let stale = match looked {
        Ok(Some(Ok(reg))) => return Ok(reg),
        Ok(Some(Err(stale))) => stale,
        // The map is in use further up this stack, or gone with the thread.
        _ => return Err(Blocked::Impossible),
    };
    if let Some(old) = stale {
        // Its file was closed behind our back; the number may name another file now.
        old.reg.release(false);
    }
    let reg = Rc::new(Watched {
        registration: Registration::new(fd).map_err(|_| Blocked::Impossible)?,
        emptied: Cell::new(0),
    });
    REGS_USED.set(true);
    let stored = REGS.try_with(|regs| {
        if let Ok(mut regs) = regs.try_borrow_mut() {
            regs[i] = Some(Entry {
                generation,
                reg: reg.clone(),
            });
        }
    });
    stored.map_err(|_| Blocked::Impossible)?;
    Ok(reg)
}

/// Drops this thread's registration of `fd`, which is about to be closed: its waiters wake
/// (to find the descriptor's generation changed) and epoll forgets it while it is still open.
/// Does nothing on threads that never waited on a descriptor; never allocates.
pub(super) fn forget(fd: c_int) {
    if !REGS_USED.get() {
        return;
    }
    let Ok(i) = usize::try_from(fd) else { return };
    let taken = REGS
        .try_with(|regs| {
            regs.try_borrow_mut()
                .ok()
                .and_then(|mut regs| regs.get_mut(i).and_then(Option::take))
        })
        .ok()
        .flatten();
    if let Some(e) = taken {
        e.reg.release(true);
    }
}

/// This thread's registration of the descriptor, if it has one (of this generation): made by
/// an earlier park, never here.
pub(super) fn watched(ctx: &Ctx) -> Option<Rc<Watched>> {
    let i = usize::try_from(ctx.fd).ok()?;
    REGS.try_with(|regs| {
        let regs = regs.try_borrow().ok()?;
        let e = regs.get(i)?.as_ref()?;
        (e.generation == ctx.generation).then(|| e.reg.clone())
    })
    .ok()
    .flatten()
}

/// Parks until `fd` may be ready for `dir`, or `deadline`: the hot path of every hooked socket
/// call that waits, with no allocation.
fn wait_one(
    fd: c_int,
    generation: u32,
    watched: Option<&Rc<Watched>>,
    dir: Dir,
    deadline: Option<Instant>,
) -> Result<(), Blocked> {
    if super::has_deferred() {
        return Err(Blocked::Canceled);
    }
    // The caller's record, which it keeps alive across the park, or this thread's own.
    let looked_up;
    let reg = match watched {
        Some(w) => w,
        None => {
            looked_up = registration(fd, generation)?;
            &looked_up
        }
    };
    let r = panic::catch_unwind(AssertUnwindSafe(|| reg.io().wait(direction(dir), deadline)));
    settle(r, deadline)
}

/// What a park under `catch_unwind` amounts to.
fn settle(
    r: std::thread::Result<Result<(), BlockError>>,
    deadline: Option<Instant>,
) -> Result<(), Blocked> {
    match r {
        Err(payload) => {
            super::defer(payload);
            Err(Blocked::Canceled)
        }
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(blocked(e, deadline)),
    }
}

/// Parks until any of `fds` (number, generation, direction) may be ready, or `deadline`.
pub(super) fn wait_for(
    fds: &[(c_int, u32, Dir)],
    deadline: Option<Instant>,
) -> Result<(), Blocked> {
    if super::has_deferred() {
        return Err(Blocked::Canceled);
    }
    let regs = fds
        .iter()
        .map(|&(fd, generation, dir)| Ok((registration(fd, generation)?, direction(dir))))
        .collect::<Result<Vec<_>, Blocked>>()?;
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        let sources: Vec<_> = regs.iter().map(|(reg, dir)| (reg.io(), *dir)).collect();
        match sources.as_slice() {
            [(reg, dir)] => reg.wait(*dir, deadline),
            many => hub::wait_any_io(many, deadline),
        }
    }));
    drop(regs);
    settle(r, deadline)
}

/// Parks until `deadline` (a hooked sleep). `Err(Green)` when a `Timeout` ends it first.
pub(super) fn sleep_until(deadline: Instant) -> Result<(), Blocked> {
    if super::has_deferred() {
        return Err(Blocked::Canceled);
    }
    let r = panic::catch_unwind(|| {
        loop {
            let w = hub::waiter();
            match hub::park(&w, Some(deadline), &"a hooked sleep") {
                Ok(true) if Instant::now() < deadline => continue,
                Ok(_) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    });
    match r {
        Err(payload) => {
            super::defer(payload);
            Err(Blocked::Canceled)
        }
        Ok(Ok(())) if Instant::now() >= deadline => Ok(()),
        Ok(Ok(())) => Err(Blocked::Green),
        Ok(Err(e)) => Err(blocked(e, Some(deadline))),
    }
}

fn blocked(e: BlockError, deadline: Option<Instant>) -> Blocked {
    match e {
        BlockError::TimedOut if deadline.is_some_and(|d| Instant::now() >= d) => Blocked::Own,
        BlockError::TimedOut => Blocked::Green,
        BlockError::LoopExit(e) if e.is_stopped() || e.is_refused() => Blocked::Canceled,
        // A soft kill: this call fails (`ECANCELED`), once; nothing is kept for later.
        BlockError::Killed => Blocked::Canceled,
        // Nothing else could run: the plain call blocks the thread, as it would unpatched.
        BlockError::LoopExit(_) => Blocked::Impossible,
    }
}

fn direction(dir: Dir) -> Direction {
    match dir {
        Dir::Read => Direction::Read,
        Dir::Write => Direction::Write,
    }
}

/// Makes a call that will block the thread, telling the blocking monitor which one.
pub(super) fn blocking<R>(name: &'static str, fd: c_int, call: impl FnOnce() -> R) -> R {
    hub::note_blocking_call(Some((name, fd)));
    let r = call();
    let saved = errno();
    hub::note_blocking_call(None);
    set_errno(saved);
    r
}

/// The loop of a call that returns as soon as it has something (a read, an accept):
/// `attempt(true)` tries without blocking; when it would block on a blocking descriptor the
/// greenlet parks until the descriptor is ready, then tries again. `attempt(false)` is the
/// plain blocking call, made when parking is impossible.
pub(super) fn run(
    ctx: &Ctx,
    dir: Dir,
    name: &'static str,
    attempt: impl FnMut(bool) -> ssize_t,
) -> ssize_t {
    run_from(ctx, dir, name, false, None, attempt)
}

/// As [`run`], parking first when `park_first` (a read known to find nothing: see
/// [`Watched::known_empty`]), on `watched` when the caller has looked it up.
pub(super) fn run_from(
    ctx: &Ctx,
    dir: Dir,
    name: &'static str,
    mut park_first: bool,
    watched: Option<&Rc<Watched>>,
    mut attempt: impl FnMut(bool) -> ssize_t,
) -> ssize_t {
    let mut deadline = None;
    loop {
        if !park_first {
            let r = attempt(true);
            if r >= 0 || errno() != libc::EAGAIN || ctx.nonblocking() {
                return r;
            }
        }
        park_first = false;
        let d = *deadline.get_or_insert_with(|| ctx.deadline(dir));
        match ctx.wait_on(watched, dir, d) {
            Ok(()) => {}
            Err(Blocked::Impossible) => return blocking(name, ctx.fd, || attempt(false)),
            Err(b) => return fail(b.errno(libc::EAGAIN)),
        }
    }
}

/// The loop of a call that blocks until it has done all of `len` (a blocking `send`/`write`,
/// `recv` with `MSG_WAITALL`): `attempt(done, nonblocking)` moves the part from `done` on;
/// the result is everything moved, or a partial count when a timeout or an error cut it
/// short after some progress, as the kernel reports it.
pub(super) fn run_all(
    ctx: &Ctx,
    dir: Dir,
    name: &'static str,
    len: usize,
    mut attempt: impl FnMut(usize, bool) -> ssize_t,
) -> ssize_t {
    let mut done = 0usize;
    let mut deadline = None;
    loop {
        let r = attempt(done, true);
        if r > 0 {
            done += r as usize;
            if done >= len {
                return done as ssize_t;
            }
            continue;
        }
        if r == 0 {
            // End of file (or a zero-length call).
            return done as ssize_t;
        }
        let progress = |r: ssize_t| if done > 0 { done as ssize_t } else { r };
        if errno() != libc::EAGAIN || ctx.nonblocking() {
            return progress(r);
        }
        let d = *deadline.get_or_insert_with(|| ctx.deadline(dir));
        match ctx.wait(dir, d) {
            Ok(()) => {}
            Err(Blocked::Impossible) => {
                let r = blocking(name, ctx.fd, || attempt(done, false));
                return if r >= 0 {
                    (done + r as usize) as ssize_t
                } else {
                    progress(r)
                };
            }
            Err(b) => return progress(fail(b.errno(libc::EAGAIN))),
        }
    }
}

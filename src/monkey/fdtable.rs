//! What the hooks know about each descriptor number: what kind of file it is, the user's view
//! of it (non-blocking or not, its socket timeouts), and a generation that every close bumps.
//!
//! The table is process-wide and lock-free, because descriptors are process-wide and the hooks
//! may run anywhere, signal handlers included: reading a slot or bumping a generation is a few
//! atomic operations on memory that is never freed. Slots come in chunks of [`CHUNK`]; a chunk
//! is allocated the first time a cooperating call needs one of its slots, never on a path that
//! may run in a signal handler ([`slot`] only looks).
//!
//! What is cached is learned lazily (one `fstat`, `fcntl(F_GETFL)`, `getsockopt`) and kept
//! true by the hooks that change it (`close`, `dup*`, `fcntl(F_SETFL)`, `ioctl(FIONBIO)`,
//! `setsockopt`). Options are a property of the open file, which `dup` shares between
//! descriptor numbers: a change made through a descriptor known to be shared invalidates every
//! cached option (the global [`EPOCH`]), one made through an unshared one updates its own slot.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use libc::c_int;

/// Slots per chunk.
const CHUNK: usize = 1024;
/// Chunks: descriptors up to 2^21 are tracked; beyond, every call passes through.
const CHUNKS: usize = 2048;

static TABLE: [AtomicPtr<Chunk>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// Bumped when an option changes on a descriptor that shares its file with others.
static EPOCH: AtomicU32 = AtomicU32::new(1);

type Chunk = [Slot; CHUNK];

/// What a descriptor is, as far as waiting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Not looked at yet (in this generation).
    Unknown = 0,
    /// A socket: per-call `MSG_DONTWAIT`.
    Socket = 1,
    /// A pipe, FIFO, character device or anonymous inode (eventfd, timerfd, ...): per-call
    /// `RWF_NOWAIT`.
    NoWait = 2,
    /// As `NoWait`, on a kernel or file without `RWF_NOWAIT`: `poll` first, then the call.
    PollFirst = 3,
    /// Never waited for: a regular file, directory or block device (not pollable), or a
    /// standard stream (see `super::io`).
    Blocking = 4,
}

const KIND_MASK: u64 = 0b111;
/// The user's `O_NONBLOCK` is known (valid in its epoch).
const NB_KNOWN: u64 = 1 << 3;
/// The user's view: non-blocking.
const USER_NB: u64 = 1 << 4;
/// The hooks set `O_NONBLOCK` on the file for good (listeners): the user's view lives here only.
const FLIPPED: u64 = 1 << 5;
/// Known to be the only descriptor of its file: made by the hooked `socket` or `accept` and
/// never duplicated through the hooks since. Option changes through any other descriptor
/// invalidate every cached option, since other descriptors may share its file.
const PRIVATE: u64 = 1 << 6;
const RCV_KNOWN: u64 = 1 << 7;
const SND_KNOWN: u64 = 1 << 8;
/// Whether the socket is plain TCP is known (see [`Slot::plain_tcp`]).
const TCP_KNOWN: u64 = 1 << 9;
/// A TCP socket with no upper layer protocol (`TCP_ULP`) installed.
const TCP: u64 = 1 << 10;
/// The bits that expire with the epoch. Plain TCP is among them because an upper layer
/// protocol installed through a shared descriptor changes the file under every number.
const OPTIONS: u64 = NB_KNOWN | USER_NB | RCV_KNOWN | SND_KNOWN | TCP_KNOWN | TCP;

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    Read,
    Write,
}

/// One descriptor number's state.
#[derive(Debug)]
pub(super) struct Slot {
    generation: AtomicU32,
    /// Kind and flag bits; the epoch the options were learned in, in the high half.
    info: AtomicU64,
    /// `SO_RCVTIMEO` / `SO_SNDTIMEO` in microseconds, 0 for none.
    rcv_us: AtomicU64,
    snd_us: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            generation: AtomicU32::new(0),
            info: AtomicU64::new(0),
            rcv_us: AtomicU64::new(0),
            snd_us: AtomicU64::new(0),
        }
    }

    /// The flag bits, current options only.
    fn bits(&self) -> u64 {
        normalize(self.info.load(Ordering::Acquire))
    }

    fn update(&self, f: impl Fn(u64) -> u64) {
        let _ = self
            .info
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                let epoch = EPOCH.load(Ordering::Acquire) as u64;
                Some((f(normalize(v)) & 0xffff_ffff) | (epoch << 32))
            });
    }

    /// The generation: bumped by every close of this number through the hooks.
    pub(super) fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    pub(super) fn kind(&self) -> Kind {
        match self.bits() & KIND_MASK {
            1 => Kind::Socket,
            2 => Kind::NoWait,
            3 => Kind::PollFirst,
            4 => Kind::Blocking,
            _ => Kind::Unknown,
        }
    }

    pub(super) fn set_kind(&self, kind: Kind) {
        self.update(|v| (v & !KIND_MASK) | kind as u64);
    }

    /// The user's view of `O_NONBLOCK`, if known.
    pub(super) fn nonblocking(&self) -> Option<bool> {
        let v = self.bits();
        (v & NB_KNOWN != 0).then_some(v & USER_NB != 0)
    }

    pub(super) fn set_nonblocking(&self, nb: bool) {
        self.update(|v| (v & !USER_NB) | NB_KNOWN | if nb { USER_NB } else { 0 });
    }

    /// Whether the hooks made the file non-blocking for good (the user's view is kept here).
    pub(super) fn is_flipped(&self) -> bool {
        self.bits() & FLIPPED != 0
    }

    pub(super) fn set_flipped(&self) {
        self.update(|v| v | FLIPPED);
    }

    pub(super) fn is_private(&self) -> bool {
        self.bits() & PRIVATE != 0
    }

    /// The file got a second descriptor.
    pub(super) fn clear_private(&self) {
        self.update(|v| v & !PRIVATE);
    }

    /// Whether the descriptor is a TCP socket with no upper layer protocol, if known: one whose
    /// read that returns less than it asked for has emptied the receive buffer (see
    /// `super::io::stream_read`).
    pub(super) fn plain_tcp(&self) -> Option<bool> {
        let v = self.bits();
        (v & TCP_KNOWN != 0).then_some(v & TCP != 0)
    }

    pub(super) fn set_plain_tcp(&self, tcp: bool) {
        self.update(|v| (v & !TCP) | TCP_KNOWN | if tcp { TCP } else { 0 });
    }

    /// A descriptor fresh from `socket` or `accept`: a socket, the only one of its file, with
    /// the given `O_NONBLOCK`, when `no_timeouts` no socket timeouts, and plain TCP or not as
    /// `tcp` says (`None`: not known).
    pub(super) fn fresh_socket(&self, nonblocking: bool, no_timeouts: bool, tcp: Option<bool>) {
        self.rcv_us.store(0, Ordering::Release);
        self.snd_us.store(0, Ordering::Release);
        let timeouts = if no_timeouts {
            RCV_KNOWN | SND_KNOWN
        } else {
            0
        };
        let nb = if nonblocking { USER_NB } else { 0 };
        let tcp = match tcp {
            Some(true) => TCP_KNOWN | TCP,
            Some(false) => TCP_KNOWN,
            None => 0,
        };
        self.update(|_| Kind::Socket as u64 | PRIVATE | NB_KNOWN | nb | timeouts | tcp);
    }

    /// Records a new option value set through this descriptor: in its own slot when it is the
    /// only descriptor of its file, otherwise by invalidating every cached option.
    pub(super) fn option_changed(&self, apply: impl FnOnce(&Slot)) {
        if self.is_private() {
            apply(self);
        } else {
            bump_epoch();
        }
    }

    /// The socket timeout for `dir`, if known: `Some(None)` for none.
    pub(super) fn timeout(&self, dir: Dir) -> Option<Option<Duration>> {
        let (known, cell) = self.timeout_parts(dir);
        if self.bits() & known == 0 {
            return None;
        }
        let us = cell.load(Ordering::Acquire);
        Some((us != 0).then(|| Duration::from_micros(us)))
    }

    pub(super) fn set_timeout(&self, dir: Dir, t: Option<Duration>) {
        let (known, cell) = self.timeout_parts(dir);
        let us = t.map_or(0, |t| (t.as_micros() as u64).max(1));
        cell.store(us, Ordering::Release);
        self.update(|v| v | known);
    }

    fn timeout_parts(&self, dir: Dir) -> (u64, &AtomicU64) {
        match dir {
            Dir::Read => (RCV_KNOWN, &self.rcv_us),
            Dir::Write => (SND_KNOWN, &self.snd_us),
        }
    }

    /// The number was closed (or replaced by `dup2`): forget everything, move to the next
    /// generation. Async-signal-safe.
    pub(super) fn closed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.info.store(0, Ordering::Release);
    }

    /// This number now names a duplicate of `from`'s file (`None`: of a file not tracked).
    pub(super) fn duplicate_of(&self, from: Option<&Slot>) {
        let Some(from) = from else {
            self.info.store(0, Ordering::Release);
            return;
        };
        from.clear_private();
        let v = from.bits() & !PRIVATE;
        self.rcv_us
            .store(from.rcv_us.load(Ordering::Acquire), Ordering::Release);
        self.snd_us
            .store(from.snd_us.load(Ordering::Acquire), Ordering::Release);
        self.update(|_| v);
    }
}

/// `v` with its options cleared when they were learned in an older epoch (except the user's
/// view of a flipped descriptor, which nothing else knows).
fn normalize(v: u64) -> u64 {
    if (v >> 32) as u32 == EPOCH.load(Ordering::Acquire) {
        return v;
    }
    let keep = if v & FLIPPED != 0 {
        NB_KNOWN | USER_NB
    } else {
        0
    };
    v & !(OPTIONS & !keep)
}

/// Invalidates every cached option (a shared file's option changed).
pub(super) fn bump_epoch() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

fn index(fd: c_int) -> Option<(usize, usize)> {
    let fd = usize::try_from(fd).ok()?;
    let (chunk, i) = (fd / CHUNK, fd % CHUNK);
    (chunk < CHUNKS).then_some((chunk, i))
}

/// The slot of `fd` if its chunk exists. Never allocates: async-signal-safe.
pub(super) fn slot(fd: c_int) -> Option<&'static Slot> {
    let (chunk, i) = index(fd)?;
    let p = TABLE[chunk].load(Ordering::Acquire);
    // SAFETY: a non-null chunk pointer comes from `Box::into_raw` in `slot_or_alloc` and is
    // never freed or replaced, so it is valid for 'static; slots are only used through atomics.
    (!p.is_null()).then(|| unsafe { &(*p)[i] })
}

/// The slot of `fd`, allocating its chunk if needed (not for signal handlers). `None` for
/// negative or untracked descriptor numbers.
pub(super) fn slot_or_alloc(fd: c_int) -> Option<&'static Slot> {
    if let Some(s) = slot(fd) {
        return Some(s);
    }
    let (chunk, _) = index(fd)?;
    let fresh: Box<Chunk> = Box::new([const { Slot::new() }; CHUNK]);
    let fresh = Box::into_raw(fresh);
    if TABLE[chunk]
        .compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        // Another thread installed the chunk first.
        // SAFETY: `fresh` came from `Box::into_raw` just above and was never shared.
        drop(unsafe { Box::from_raw(fresh) });
    }
    slot(fd)
}

/// Every allocated slot from `first` to `last` (inclusive), for `close_range`.
pub(super) fn for_each_in(first: u32, last: u32, mut f: impl FnMut(c_int, &'static Slot)) {
    let last = (last as u64).min((CHUNK * CHUNKS - 1) as u64) as usize;
    let mut fd = first as usize;
    while fd <= last {
        match slot(fd as c_int) {
            Some(s) => {
                f(fd as c_int, s);
                fd += 1;
            }
            // A missing chunk: skip it whole.
            None => fd = (fd / CHUNK + 1) * CHUNK,
        }
    }
}

//! Process-global registry of slab address ranges, readable from a signal handler.
//!
//! The overflow handler must decide whether a faulting address lies in the guard of some stack,
//! of any thread's pool, without allocating or locking. Slabs are recorded in a fixed array of
//! atomics; writers (slab map/unmap, rare) serialise on a mutex, and each entry is a seqlock so
//! the handler can read it lock-free and skip an entry that is being rewritten. The entry of the
//! slab that overflowed is never being rewritten: its stack is in use, so the slab stays mapped.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

/// Number of slabs the registry can describe at once. With 1024-slot slabs of 64 KiB stacks that
/// is 16 million stacks; a slab that finds the registry full still works, but an overflow in it is
/// reported as a plain `SIGSEGV`.
const CAPACITY: usize = 16 * 1024;

/// One slab's range, as a seqlock: `seq` is odd while the entry is being written.
#[derive(Debug)]
struct Entry {
    /// Seqlock counter; even = stable.
    seq: AtomicUsize,
    /// Start of the slab, 0 if the entry is free.
    start: AtomicUsize,
    /// Length of the slab in bytes.
    len: AtomicUsize,
    /// Size of one slot (guard + usable).
    slot_size: AtomicUsize,
    /// Size of the guard at the low end of each slot.
    guard_len: AtomicUsize,
}

impl Entry {
    /// A free entry.
    const fn empty() -> Entry {
        Entry {
            seq: AtomicUsize::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            slot_size: AtomicUsize::new(0),
            guard_len: AtomicUsize::new(0),
        }
    }

    /// Rewrites the entry. Callers hold `FREE` (writers are serialised).
    fn write(&self, start: usize, len: usize, slot_size: usize, guard_len: usize) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.start.store(start, Ordering::Relaxed);
        self.len.store(len, Ordering::Relaxed);
        self.slot_size.store(slot_size, Ordering::Relaxed);
        self.guard_len.store(guard_len, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

/// The entries; `[0, HIGH)` have been used at least once.
static ENTRIES: [Entry; CAPACITY] = [const { Entry::empty() }; CAPACITY];

/// Number of entries ever used (the handler scans `[0, HIGH)`).
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// Indices of freed entries below `HIGH`, for reuse. Only writers touch it.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Set once the registry has been found full, so the warning is logged once.
static WARNED_FULL: AtomicBool = AtomicBool::new(false);

/// Records a slab; returns its entry index, or `None` if the registry is full.
pub(super) fn register(
    start: usize,
    len: usize,
    slot_size: usize,
    guard_len: usize,
) -> Option<usize> {
    let mut free = FREE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let index = match free.pop() {
        Some(index) => index,
        None => {
            let high = HIGH.load(Ordering::Relaxed);
            if high == CAPACITY {
                if !WARNED_FULL.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "greenlet stacks: overflow registry full ({CAPACITY} slabs); \
                         stack overflows in new slabs are reported as plain SIGSEGV"
                    );
                }
                return None;
            }
            high
        }
    };
    ENTRIES[index].write(start, len, slot_size, guard_len);
    // Publish the entry before the handler may scan that far.
    HIGH.fetch_max(index + 1, Ordering::Release);
    Some(index)
}

/// Forgets a slab that is about to be unmapped.
pub(super) fn unregister(index: usize) {
    let mut free = FREE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    ENTRIES[index].write(0, 0, 0, 0);
    free.push(index);
}

/// If `addr` lies in the guard of a registered slot, returns that slot's usable size.
///
/// Async-signal-safe: only atomic loads, no allocation, no locks.
pub(super) fn guard_hit(addr: usize) -> Option<usize> {
    let high = HIGH.load(Ordering::Acquire);
    for entry in &ENTRIES[..high] {
        let seq = entry.seq.load(Ordering::Acquire);
        if seq % 2 == 1 {
            continue;
        }
        let start = entry.start.load(Ordering::Relaxed);
        let len = entry.len.load(Ordering::Relaxed);
        let slot_size = entry.slot_size.load(Ordering::Relaxed);
        let guard_len = entry.guard_len.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if entry.seq.load(Ordering::Relaxed) != seq || start == 0 || slot_size == 0 {
            continue;
        }
        if addr >= start && addr - start < len {
            return ((addr - start) % slot_size < guard_len).then(|| slot_size - guard_len);
        }
    }
    None
}

//! Memcheck's view of a reused stack slot.
//!
//! Memcheck follows each stack by its stack pointer: when frames are popped it marks the memory
//! under them inaccessible. A slot that comes back from the pool still carries those marks from
//! its last greenlet, and memcheck did not always notice the next greenlet's first frames being
//! pushed there (its coroutine entry, on a slot reused right after a greenlet that had parked
//! many times): it then reported that greenlet's own fresh locals as invalid reads and writes.
//! So every slot handed out is marked as memcheck marks any new stack memory: addressable, its
//! contents undefined. The process asks once whether it runs under memcheck; natively, and
//! under valgrind's other tools (callgrind's instruction counts stay those of a native run),
//! it then makes no request.

use std::sync::atomic::{AtomicU8, Ordering};

/// `VG_USERREQ__RUNNING_ON_VALGRIND`: how many valgrinds the process runs under (0 natively).
const RUNNING_ON_VALGRIND: u64 = 0x1001;
/// `VG_USERREQ__MAKE_MEM_UNDEFINED`: memcheck's tool base (`'M' << 24 | 'C' << 16`) plus one.
const MAKE_MEM_UNDEFINED: u64 = (0x4d << 24 | 0x43 << 16) + 1;

/// Whether the process runs under memcheck: 0 not asked yet, 1 no, 2 yes. Asked once, so that
/// a slot handed out otherwise costs a load and a branch, not the request's set-up.
static UNDER_MEMCHECK: AtomicU8 = AtomicU8::new(0);

/// Tells memcheck that `[start, start + len)` is addressable and undefined, if the process
/// runs under it.
#[inline]
pub(super) fn mark_undefined(start: usize, len: usize) {
    if UNDER_MEMCHECK.load(Ordering::Relaxed) != 1 && under_memcheck() {
        request([MAKE_MEM_UNDEFINED, start as u64, len as u64, 0, 0, 0]);
    }
}

/// Valgrind runs the program with its tool's preload library in `LD_PRELOAD`: memcheck's is
/// `vgpreload_memcheck-<platform>.so`.
#[cold]
fn under_memcheck() -> bool {
    match UNDER_MEMCHECK.load(Ordering::Relaxed) {
        0 => {
            let yes = request([RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]) != 0
                && std::env::var_os("LD_PRELOAD")
                    .is_some_and(|p| p.to_string_lossy().contains("vgpreload_memcheck"));
            UNDER_MEMCHECK.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// Makes a valgrind client request; returns its answer, 0 when not under valgrind (and on
/// other architectures, where this crate makes none).
#[inline]
fn request(args: [u64; 6]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let answer: u64;
        // SAFETY: this is valgrind's client-request sequence for x86-64: the four rotations of
        // rdi add up to 128 bits (rdi is left as it was) and `xchg rbx, rbx` does nothing, so
        // outside valgrind it only leaves the default (0) in rdx. Under valgrind it reads the
        // six words at rax, which live until the asm block ends, and writes nothing but its own
        // state and rdx. No stack is used.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdx") 0u64 => answer,
                in("rax") args.as_ptr(),
                options(nostack),
            );
        }
        answer
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = args;
        0
    }
}

//! What the `monkey` hooks cost where they do not cooperate: a hooked `read(2)` of one byte
//! from `/dev/zero` on a thread that has no greenlets, next to the same read made as a raw
//! system call. Every hook asks one question first (is a greenlet of this thread running,
//! after `patch_all`?) and, when the answer is no, makes the raw call: this is that question's
//! price.
//!
//! ```text
//! cargo run --release --features monkey --example monkey_cost          # prints the costs
//! cargo run --release --features monkey --example monkey_cost -- --measure 2000000
//! ```
//!
//! Times are the measuring thread's CPU time, the best of five rounds. `--measure N` prints one
//! machine-readable line (the bench harness reads it):
//! `raw_ns=… unpatched_ns=… patched_ns=…`.

use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// This thread's CPU time: unlike the wall clock, it does not count the time other processes
/// had the core, so the figure holds on a loaded machine too.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill; clock_gettime is not hooked.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU nanoseconds per call of `read` over `n` calls, the best of a few rounds.
fn per_call(n: u64, mut read: impl FnMut() -> isize) -> f64 {
    (0..5)
        .map(|_| {
            let t = thread_cpu();
            for _ in 0..n {
                black_box(read());
            }
            (thread_cpu() - t).as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// The three costs, measured on a fresh thread with no greenlet runtime: the raw system call,
/// the hook before `patch_all`, the hook after it.
pub fn measure(n: u64) -> (f64, f64, f64) {
    std::thread::spawn(move || {
        let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
        let fd = zero.as_raw_fd();
        let mut byte = 0u8;
        let buf = (&raw mut byte).cast::<libc::c_void>();
        // SAFETY: reading one byte into a valid one-byte buffer from an open descriptor.
        let raw = || unsafe { libc::syscall(libc::SYS_read, fd, buf, 1) as isize };
        // SAFETY: as above; `libc::read` is the hook in a binary built with `monkey`.
        let hooked = || unsafe { libc::read(fd, buf, 1) };
        let raw_ns = per_call(n, raw);
        let unpatched_ns = if greenlet::monkey::is_patched() {
            f64::NAN
        } else {
            per_call(n, hooked)
        };
        greenlet::monkey::patch_all();
        let patched_ns = per_call(n, hooked);
        (raw_ns, unpatched_ns, patched_ns.min(per_call(n, hooked)))
    })
    .join()
    .expect("the measuring thread")
}

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        let n = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        let (raw, unpatched, patched) = measure(n);
        println!("raw_ns={raw:.2} unpatched_ns={unpatched:.2} patched_ns={patched:.2}");
        return;
    }
    let (raw, unpatched, patched) = measure(200_000);
    println!("read(2) of 1 byte from /dev/zero, on a thread without greenlets:");
    println!("  raw system call          {raw:7.1} ns");
    if !unpatched.is_nan() {
        println!("  hooked, before patch_all {unpatched:7.1} ns");
    }
    println!(
        "  hooked, after patch_all  {patched:7.1} ns  (the hook's question: {:+.1} ns)",
        patched - raw
    );
}

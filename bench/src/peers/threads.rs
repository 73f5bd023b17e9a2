//! OS threads: what green threads exist to avoid. Spawned with a 64 KiB stack, the size of a
//! greenlet's, so that the figure is the kernel's cost and not a big default stack.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Alive, AliveProbe};

/// Stack size of every thread spawned here.
const STACK: usize = 64 * 1024;

fn spawn_small<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    thread::Builder::new().stack_size(STACK).spawn(f)
}

/// Spawns `n` threads that return at once, joins them all: µs per thread.
pub fn spawn(n: u64) -> f64 {
    let start = Instant::now();
    let all: Vec<_> = (0..n)
        .map(|i| spawn_small(move || i).expect("spawn thread"))
        .collect();
    let sum: u64 = all.into_iter().map(|h| h.join().expect("joined")).sum();
    let dt = start.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    dt.as_secs_f64() * 1e6 / n as f64
}

/// `n` threads, each blocked on one shared condition variable; stops at the first thread the
/// kernel refuses.
pub fn alive(n: u64) -> Result<Alive, String> {
    let probe = AliveProbe::start(n);
    let started = Arc::new(AtomicU64::new(0));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let mut all = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (started, gate) = (started.clone(), gate.clone());
        let h = spawn_small(move || {
            started.fetch_add(1, Ordering::Relaxed);
            let (open, cv) = &*gate;
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            while !*open {
                open = cv.wait(open).unwrap_or_else(|e| e.into_inner());
            }
        })
        .map_err(|e| probe.failed(i, &format!("thread spawn: {e}")))?;
        all.push(h);
        probe.tick(i + 1);
    }
    while started.load(Ordering::Relaxed) < n {
        thread::sleep(Duration::from_millis(1));
    }
    let figures = probe.finish();
    std::mem::forget((all, gate));
    Ok(figures)
}

#[cfg(test)]
mod tests {
    #[test]
    fn spawn_gives_a_time() {
        assert!(super::spawn(16) > 0.0);
    }

    #[test]
    fn alive_parks_them_all() {
        assert_eq!(super::alive(16).expect("16 threads").n, 16);
    }
}

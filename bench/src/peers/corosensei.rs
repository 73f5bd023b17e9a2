//! Raw corosensei, the floor: the cost of one stack switch with nothing around it.
//!
//! greenlet is built on corosensei, so `resume` + `suspend` is what a greenlet switch cannot beat.
//! Its "alive" figure uses one `DefaultStack` per coroutine (one mmap and one guard page each),
//! which is how far a naive design gets before `vm.max_map_count` stops it.

use std::hint::black_box;
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};

use super::{Alive, AliveProbe};

/// Stack size of each coroutine in the alive workload, the same as greenlet's default.
const ALIVE_STACK: usize = 64 * 1024;

/// `n` resume + suspend round trips; nanoseconds per switch (half a round trip).
pub fn switch(n: u64) -> f64 {
    let mut co = Coroutine::new(|yielder, mut x: u64| {
        loop {
            x = yielder.suspend(x + 1);
        }
    });
    let start = Instant::now();
    let mut v = 0u64;
    for _ in 0..n {
        match co.resume(black_box(v)) {
            CoroutineResult::Yield(r) => v = r,
            CoroutineResult::Return(()) => unreachable!("the loop never returns"),
        }
    }
    let dt = start.elapsed();
    assert_eq!(v, n, "every round trip adds one");
    dt.as_nanos() as f64 / (2 * n) as f64
}

/// `n` coroutines, each resumed once and suspended; stops at the first stack that cannot be
/// mapped and reports how far it got.
pub fn alive(n: u64) -> Result<Alive, String> {
    let probe = AliveProbe::start(n);
    let mut all = Vec::with_capacity(n as usize);
    for i in 0..n {
        let stack = DefaultStack::new(ALIVE_STACK)
            .map_err(|e| probe.failed(i, &format!("DefaultStack::new: {e}")))?;
        let mut co = Coroutine::with_stack(stack, |yielder, ()| {
            yielder.suspend(());
        });
        match co.resume(()) {
            CoroutineResult::Yield(()) => {}
            CoroutineResult::Return(()) => unreachable!("parked coroutines do not return"),
        }
        all.push(co);
        probe.tick(i + 1);
    }
    let figures = probe.finish();
    // Unwinding a million suspended coroutines would only time the teardown: leave them.
    std::mem::forget(all);
    Ok(figures)
}

#[cfg(test)]
mod tests {
    #[test]
    fn switch_gives_a_time() {
        let ns = super::switch(1_000);
        assert!(ns.is_finite() && ns > 0.0);
    }

    #[test]
    fn alive_parks_them_all() {
        let a = super::alive(64).expect("64 stacks fit");
        assert_eq!(a.n, 64);
    }
}

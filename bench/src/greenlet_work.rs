//! This crate's side of every micro workload, written the way its users would write them.
//!
//! Each function mirrors a peer's in `peers/`: same size, same shape, same unit.

use std::time::Instant;

use greenlet::Greenlet;

use crate::peers::{Alive, AliveProbe, time_children, time_chunked_read, time_whole_read};

/// Main and one greenlet ping-ponging with `Greenlet::switch`, `n` round trips: ns per switch.
pub fn switch(n: u64) -> f64 {
    let main = greenlet::current();
    let echo = Greenlet::new(move |mut x: u64| -> u64 {
        while x != u64::MAX {
            x = main.switch(x + 1).expect("main switches back");
        }
        x
    });
    let start = Instant::now();
    let mut v = 0u64;
    for _ in 0..n {
        v = echo.switch(v).expect("echo switches back");
    }
    let dt = start.elapsed();
    assert_eq!(v, n, "every round trip adds one");
    // Let the echo greenlet return, so the measurement ends with no greenlet suspended.
    let last: u64 = echo.switch(u64::MAX).expect("echo finishes");
    assert_eq!(last, u64::MAX);
    dt.as_nanos() as f64 / (2 * n) as f64
}

/// Two spawned greenlets, each calling `yield_now` `n` times through the hub: ns per switch.
pub fn yield_now(n: u64) -> f64 {
    two_yielders(n, greenlet::yield_now)
}

/// A yield made inside a function, as most code yields (in a helper, a library, a loop body
/// of its own): not inlined into the greenlet's loop.
#[inline(never)]
fn yield_in_a_call() {
    greenlet::yield_now();
}

/// [`yield_now`] with each yield inside a called function: ns per yield.
pub fn yield_nested(n: u64) -> f64 {
    two_yielders(n, yield_in_a_call)
}

/// Two spawned greenlets, each running `step` `n` times: ns per step. Generic, so that a
/// `step` that yields inline stays inline in the greenlet's loop.
fn two_yielders(n: u64, step: impl Fn() + Copy + 'static) -> f64 {
    let start = Instant::now();
    let both: Vec<_> = (0..2)
        .map(|_| {
            greenlet::spawn(move || {
                for _ in 0..n {
                    step();
                }
            })
        })
        .collect();
    for h in both {
        h.join().expect("yielder finished");
    }
    start.elapsed().as_nanos() as f64 / (2 * n) as f64
}

/// Spawns `n` greenlets that each yield once, joins them all: µs per greenlet.
pub fn spawn(n: u64) -> f64 {
    let start = Instant::now();
    let all: Vec<_> = (0..n)
        .map(|i| {
            greenlet::spawn(move || {
                greenlet::yield_now();
                i
            })
        })
        .collect();
    let sum: u64 = all.into_iter().map(|h| h.get().expect("joined")).sum();
    let dt = start.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    dt.as_secs_f64() * 1e6 / n as f64
}

/// [`spawn`] twice in this process: µs per greenlet of the second round, which finds the stacks
/// the first one left (the pool keeps a burst's stacks and gives them back over seconds).
pub fn spawn_warm(n: u64) -> f64 {
    spawn(n);
    spawn(n)
}

/// Ping-pong between main and an echo greenlet over two `sync::channel`s (unbounded, like may's
/// mpsc): ns per message.
pub fn channel(n: u64) -> f64 {
    let (to_echo, echo_rx) = greenlet::sync::channel::<u64>();
    let (to_main, main_rx) = greenlet::sync::channel::<u64>();
    let echo = greenlet::spawn(move || {
        while let Ok(v) = echo_rx.recv() {
            if to_main.send(v + 1).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut v = 0u64;
    for _ in 0..n {
        to_echo.send(v).expect("echo alive");
        v = main_rx.recv().expect("echo alive");
    }
    let dt = start.elapsed();
    assert_eq!(v, n);
    drop(to_echo);
    echo.join().expect("echo finished");
    dt.as_nanos() as f64 / (2 * n) as f64
}

/// Runs `true` to completion with `greenlet::process::Command::output`, `n` times, from the
/// main greenlet: µs per child (spawn, pidfd wait, pipes read to their ends).
pub fn process_output(n: u64) -> f64 {
    time_children(n, || greenlet::process::Command::new("true").output())
}

/// Reads an `mib` MiB file (in the page cache) in 64 KiB `read` calls through
/// `greenlet::fs::File` (served on this thread, without waiting, from the page cache): MB/s.
pub fn file_read_chunks(mib: u64) -> f64 {
    time_chunked_read(mib, false, |p| greenlet::fs::File::open(p))
}

/// Reads an `mib` MiB file evicted from the page cache in 64 KiB `read` calls through
/// `greenlet::fs::File` (what is not cached: a trip to the file pool): MB/s.
pub fn file_read_cold(mib: u64) -> f64 {
    time_chunked_read(mib, true, |p| greenlet::fs::File::open(p))
}

/// Reads an `mib` MiB file (in the page cache) whole with `greenlet::fs::read`: MB/s.
pub fn file_read_whole(mib: u64) -> f64 {
    time_whole_read(mib, |p| greenlet::fs::read(p))
}

/// What every parked greenlet runs: hand control back to main and stay suspended there.
fn park(_: ()) {
    let _: Result<(), _> = greenlet::main().switch(());
}

/// `n` greenlets, each started and then suspended in a switch back to main; stops at the first
/// greenlet that cannot get a stack and reports how far it got.
pub fn alive(n: u64) -> Result<Alive, String> {
    let probe = AliveProbe::start(n);
    let mut all = Vec::with_capacity(n as usize);
    for i in 0..n {
        let g = greenlet::Builder::new()
            .build(park)
            .map_err(|e| probe.failed(i, &e.to_string()))?;
        let parked: Result<(), _> = g.switch(());
        parked.map_err(|e| probe.failed(i, &format!("first switch: {e}")))?;
        all.push(g);
        probe.tick(i + 1);
    }
    let figures = probe.finish();
    // Unwinding a million suspended greenlets would only time the teardown: leave them.
    std::mem::forget(all);
    Ok(figures)
}

/// Serves with `parse` on 127.0.0.1:`port` until the process is killed: the harness's own
/// request parsing and response (`proto.rs`, exactly what the mio loop runs) over
/// `greenlet::net`, one greenlet per connection from a [`StreamServer`] with no timeouts (the
/// mio loop has none), each a plain read, answer, write loop. Set against the mio loop, only
/// the runtime differs; `http_hello` adds a full HTTP parser and timeouts on top.
///
/// [`StreamServer`]: greenlet::server::StreamServer
pub fn serve(port: u16, parse: fn(&[u8], &mut Vec<u8>) -> usize) -> Result<(), String> {
    let server = greenlet::server::StreamServer::bind(("127.0.0.1", port), move |conn, _peer| {
        // A connection's error ends that connection only, as in the mio loop.
        let _ = connection(&conn, parse);
    })
    .map_err(|e| format!("bind: {e}"))?;
    server.serve_forever().map_err(|e| format!("serve: {e}"))
}

/// One connection: read, answer every complete request, write the answers, until the client
/// closes.
fn connection(
    mut conn: &greenlet::net::TcpStream,
    parse: fn(&[u8], &mut Vec<u8>) -> usize,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut buf = crate::proto::ConnBuf::new();
    loop {
        let n = conn.read(buf.spare())?;
        if n == 0 {
            return Ok(());
        }
        buf.filled(n, parse);
        if !buf.out.is_empty() {
            conn.write_all(&buf.out)?;
            buf.out.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn switch_gives_a_time() {
        let ns = super::switch(1_000);
        assert!(ns.is_finite() && ns > 0.0);
    }

    #[test]
    fn hub_workloads_give_times() {
        assert!(super::yield_now(100) > 0.0);
        assert!(super::yield_nested(100) > 0.0);
        assert!(super::spawn(100) > 0.0);
        assert!(super::spawn_warm(100) > 0.0);
        assert!(super::channel(100) > 0.0);
    }

    #[test]
    fn os_workloads_give_figures() {
        assert!(super::process_output(3) > 0.0);
        assert!(super::file_read_chunks(1) > 0.0);
        assert!(super::file_read_whole(1) > 0.0);
        assert!(super::file_read_cold(1) > 0.0);
    }

    #[test]
    fn alive_parks_them_all() {
        assert_eq!(super::alive(64).expect("64 greenlets").n, 64);
    }

    #[test]
    fn serves_http_with_the_harness_parser() {
        use crate::proto::{self, testing};
        testing::check_http(testing::start(|port| super::serve(port, proto::http)));
    }
}

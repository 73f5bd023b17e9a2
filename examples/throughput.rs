//! Bulk throughput over loopback: a green `TcpStream` against a std blocking one, in one run.
//!
//! ```text
//! cargo run --release --example throughput [MiB, default 1024] [runs, default 3]
//! ```
//!
//! Three set-ups move the same bytes in 128 KiB writes and reads:
//! - `std`: std sockets, writer and reader on two OS threads;
//! - `green, 2 hubs`: green sockets, writer and reader on two OS threads, each thread's main
//!   greenlet blocking on its hub (the set-up comparable to `std`);
//! - `green, 1 hub`: green sockets, writer and reader greenlets sharing one thread.
//!
//! The set-ups are run in turn, `runs` times; the best wall-clock time and the least CPU time
//! (user + system, all threads) of each are reported, with the ratios to `std` (throughput:
//! higher is better; CPU: lower is better).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

const CHUNK: usize = 128 << 10;

/// One set-up: moves `total` bytes, returns the wall-clock time the reader took.
type Setup = fn(usize) -> Duration;

fn write_all_bytes(mut w: impl Write, total: usize) {
    let buf = vec![0x5Au8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK);
        w.write_all(&buf[..n]).unwrap();
        left -= n;
    }
}

fn read_all_bytes(mut r: impl Read, total: usize) {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < total {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "early EOF after {got} bytes");
        got += n;
    }
}

fn run_std(total: usize) -> Duration {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        write_all_bytes(std::net::TcpStream::connect(addr).unwrap(), total)
    });
    let (conn, _) = l.accept().unwrap();
    let start = Instant::now();
    read_all_bytes(&conn, total);
    let t = start.elapsed();
    writer.join().unwrap();
    t
}

fn run_green_two_hubs(total: usize) -> Duration {
    let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        write_all_bytes(greenlet::net::TcpStream::connect(addr).unwrap(), total)
    });
    let (conn, _) = l.accept().unwrap();
    let start = Instant::now();
    read_all_bytes(&conn, total);
    let t = start.elapsed();
    writer.join().unwrap();
    t
}

fn run_green_one_hub(total: usize) -> Duration {
    let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let writer = greenlet::spawn(move || {
        write_all_bytes(greenlet::net::TcpStream::connect(addr).unwrap(), total)
    });
    let (conn, _) = l.accept().unwrap();
    let start = Instant::now();
    read_all_bytes(&conn, total);
    let t = start.elapsed();
    writer.join().unwrap();
    t
}

/// CPU time (user + system, all threads) of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: `usage` is a valid rusage to fill in.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args
        .next()
        .map_or(1024, |a| a.parse().expect("size in MiB"));
    let runs: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("number of runs"));
    let total = mib << 20;
    let setups: [(&str, Setup); 3] = [
        ("std, 2 threads", run_std),
        ("green, 2 hubs", run_green_two_hubs),
        ("green, 1 hub", run_green_one_hub),
    ];
    // Interleaved, so that load from elsewhere hits every set-up alike; best run of each.
    let mut best = [(Duration::MAX, Duration::MAX); 3];
    for _ in 0..runs.max(1) {
        for (i, (_, f)) in setups.iter().enumerate() {
            let cpu = cpu_time();
            let wall = f(total);
            let cpu = cpu_time() - cpu;
            best[i] = (best[i].0.min(wall), best[i].1.min(cpu));
        }
    }
    println!(
        "{mib} MiB over loopback in {} KiB writes, best of {runs} interleaved runs:",
        CHUNK >> 10
    );
    println!(
        "  {:<16} {:>10} {:>9} {:>12} {:>9}",
        "", "MB/s", "vs std", "CPU s/GiB", "vs std"
    );
    let gib = total as f64 / (1u64 << 30) as f64;
    for (i, (name, _)) in setups.iter().enumerate() {
        let (wall, cpu) = best[i];
        println!(
            "  {name:<16} {:>10.0} {:>8.2}x {:>12.3} {:>8.2}x",
            total as f64 / 1e6 / wall.as_secs_f64(),
            best[0].0.as_secs_f64() / wall.as_secs_f64(),
            cpu.as_secs_f64() / gib,
            cpu.as_secs_f64() / best[0].1.as_secs_f64(),
        );
    }
}

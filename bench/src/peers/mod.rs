//! The runtimes measured, this crate included, and what each one can run inside a child process.
//!
//! One file per peer: raw [`corosensei`] (the floor for a switch), [`may`] (stackful coroutines
//! on one worker), [`tokio`] (stackless tasks on a current-thread runtime), [`threads`] (OS
//! threads), [`mio`] (a hand-written event loop, the floor for the HTTP server) and
//! [`blocking`] (std's blocking process and file calls, the floor for the `os` workload);
//! [`floor`] is no runtime at all but the kernel work of guarded stacks, the floor of the alive
//! workload. This crate's own workloads live in `greenlet_work.rs`.

pub mod blocking;
pub mod cores;
pub mod corosensei;
pub mod floor;
pub mod may;
pub mod mio;
pub mod threads;
pub mod tokio;

use std::time::{Duration, Instant};

use crate::child;

/// A runtime that appears as a column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    /// This crate.
    Greenlet,
    /// This crate's `http_hello` written with plain `std::net` under `monkey::patch_all()`.
    GreenletMonkey,
    /// This crate's `greenlet::net` and `StreamServer` with the harness's own HTTP parser and
    /// response (`proto.rs`, the mio loop's): the like-for-like comparison with the mio loop.
    GreenletProto,
    /// No runtime: one guard and one fresh page per 64 KiB stack slot, the floor of `alive`.
    Floor,
    /// Raw corosensei resume/suspend: the floor for a switch.
    Corosensei,
    /// A hand-written mio event loop: the floor for an HTTP server.
    Mio,
    /// redis-server itself, when installed: the floor for RESP PING.
    RedisServer,
    /// may, one worker.
    May,
    /// tokio, current-thread runtime.
    Tokio,
    /// OS threads.
    Threads,
    /// crossbeam-channel between OS threads.
    Crossbeam,
    /// The bare system call: the floor for a hooked libc call.
    Syscall,
    /// std's blocking calls on the calling thread.
    Std,
}

impl Runtime {
    /// Every runtime, in table column order.
    pub const ALL: [Runtime; 13] = [
        Runtime::Greenlet,
        Runtime::GreenletMonkey,
        Runtime::GreenletProto,
        Runtime::Floor,
        Runtime::Corosensei,
        Runtime::Mio,
        Runtime::RedisServer,
        Runtime::May,
        Runtime::Tokio,
        Runtime::Threads,
        Runtime::Crossbeam,
        Runtime::Syscall,
        Runtime::Std,
    ];

    /// The name used on the command line, in the JSON file and as a column heading.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Greenlet => "greenlet",
            Runtime::GreenletMonkey => "greenlet + monkey",
            Runtime::GreenletProto => "greenlet (harness parser)",
            Runtime::Floor => "floor",
            Runtime::Corosensei => "corosensei",
            Runtime::Mio => "mio",
            Runtime::RedisServer => "redis-server",
            Runtime::May => "may",
            Runtime::Tokio => "tokio",
            Runtime::Threads => "threads",
            Runtime::Crossbeam => "crossbeam",
            Runtime::Syscall => "raw syscall",
            Runtime::Std => "std",
        }
    }

    /// The runtime called `name`.
    pub fn parse(name: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The micro workloads a child can run: each returns one figure per repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Micro {
    /// Explicit switch between two coroutines: ns per switch.
    Switch,
    /// Two coroutines yielding through the scheduler: ns per switch.
    Yield,
    /// [`Micro::Yield`] with each yield made inside a function the coroutine calls (not
    /// inlined): ns per switch.
    YieldNested,
    /// Spawn n that each yield once, join all: µs per spawn+join.
    Spawn,
    /// [`Micro::Spawn`] twice in one process, on one runtime: µs per spawn+join of the second
    /// round, which finds what the first one left (warm stacks, allocator caches).
    SpawnWarm,
    /// Ping-pong over a channel: ns per message (one switch each way).
    Channel,
    /// Ping-pong over a channel between two threads (two hubs, two workers): ns per message.
    XChannel,
    /// Spawn n onto two threads (hubs, workers) from the main thread, each yields once, join
    /// all from the main thread: µs per spawn+join.
    XSpawn,
    /// `Command::new("true").output()`, n times: µs per child.
    Process,
    /// Reading an n MiB file in 64 KiB reads: MB/s.
    FileChunks,
    /// Reading an n MiB file whole: MB/s.
    FileWhole,
    /// Reading an n MiB file evicted from the page cache, in 64 KiB reads: MB/s.
    FileCold,
}

impl Micro {
    /// Every micro workload.
    pub const ALL: [Micro; 12] = [
        Micro::Switch,
        Micro::Yield,
        Micro::YieldNested,
        Micro::Spawn,
        Micro::SpawnWarm,
        Micro::Channel,
        Micro::XChannel,
        Micro::XSpawn,
        Micro::Process,
        Micro::FileChunks,
        Micro::FileWhole,
        Micro::FileCold,
    ];

    /// The name used on a child's command line.
    pub fn name(self) -> &'static str {
        match self {
            Micro::Switch => "switch",
            Micro::Yield => "yield",
            Micro::YieldNested => "yield-nested",
            Micro::Spawn => "spawn",
            Micro::SpawnWarm => "spawn-warm",
            Micro::Channel => "channel",
            Micro::XChannel => "xchannel",
            Micro::XSpawn => "xspawn",
            Micro::Process => "process",
            Micro::FileChunks => "file-chunks",
            Micro::FileWhole => "file-whole",
            Micro::FileCold => "file-cold",
        }
    }

    /// The workload called `name`.
    pub fn parse(name: &str) -> Option<Micro> {
        Micro::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Runs `micro` on `runtime` with size `n`, after a warm-up at a tenth of the size.
pub fn run_micro(micro: Micro, runtime: Runtime, n: u64) -> Result<f64, String> {
    let f: fn(u64) -> f64 = match (micro, runtime) {
        (Micro::Switch, Runtime::Greenlet) => crate::greenlet_work::switch,
        (Micro::Yield, Runtime::Greenlet) => crate::greenlet_work::yield_now,
        (Micro::Spawn, Runtime::Greenlet) => crate::greenlet_work::spawn,
        (Micro::SpawnWarm, Runtime::Greenlet) => crate::greenlet_work::spawn_warm,
        (Micro::Channel, Runtime::Greenlet) => crate::greenlet_work::channel,
        (Micro::Switch, Runtime::Corosensei) => corosensei::switch,
        (Micro::Yield, Runtime::Floor) => floor::yield_now,
        (Micro::YieldNested, Runtime::Greenlet) => crate::greenlet_work::yield_nested,
        (Micro::YieldNested, Runtime::Floor) => floor::yield_nested,
        (Micro::YieldNested, Runtime::May) => may::yield_nested,
        (Micro::Yield, Runtime::May) => may::yield_now,
        (Micro::Spawn, Runtime::May) => may::spawn,
        (Micro::SpawnWarm, Runtime::May) => may::spawn_warm,
        (Micro::Channel, Runtime::May) => may::channel,
        (Micro::Yield, Runtime::Tokio) => tokio::yield_now,
        (Micro::Spawn, Runtime::Tokio) => tokio::spawn,
        (Micro::SpawnWarm, Runtime::Tokio) => tokio::spawn_warm,
        (Micro::Channel, Runtime::Tokio) => tokio::channel,
        (Micro::Spawn, Runtime::Threads) => threads::spawn,
        (Micro::XChannel, Runtime::Greenlet) => cores::greenlet_xchannel,
        (Micro::XChannel, Runtime::Threads) => cores::std_xchannel,
        (Micro::XChannel, Runtime::Crossbeam) => cores::crossbeam_xchannel,
        (Micro::XChannel, Runtime::Tokio) => cores::tokio_xchannel,
        (Micro::XChannel, Runtime::May) => cores::may_xchannel,
        (Micro::XSpawn, Runtime::Greenlet) => cores::greenlet_xspawn,
        (Micro::XSpawn, Runtime::Tokio) => cores::tokio_xspawn,
        (Micro::XSpawn, Runtime::May) => cores::may_xspawn,
        (Micro::Process, Runtime::Greenlet) => crate::greenlet_work::process_output,
        (Micro::FileChunks, Runtime::Greenlet) => crate::greenlet_work::file_read_chunks,
        (Micro::FileWhole, Runtime::Greenlet) => crate::greenlet_work::file_read_whole,
        (Micro::FileCold, Runtime::Greenlet) => crate::greenlet_work::file_read_cold,
        (Micro::Process, Runtime::Std) => blocking::process_output,
        (Micro::FileChunks, Runtime::Std) => blocking::file_read_chunks,
        (Micro::FileWhole, Runtime::Std) => blocking::file_read_whole,
        (Micro::FileCold, Runtime::Std) => blocking::file_read_cold,
        (m, r) => return Err(format!("{} has no {} workload", r.name(), m.name())),
    };
    if runtime == Runtime::May {
        match micro {
            Micro::XChannel | Micro::XSpawn => may::configure_workers(2),
            _ => may::configure(),
        }
    }
    f((n / 10).max(1));
    Ok(f(n))
}

/// Parks `n` coroutines of `runtime`; the figures of a run that got that far.
pub fn run_alive(runtime: Runtime, n: u64) -> Result<Alive, String> {
    match runtime {
        Runtime::Greenlet => crate::greenlet_work::alive(n),
        Runtime::Floor => floor::alive(n),
        Runtime::Corosensei => corosensei::alive(n),
        Runtime::May => {
            may::configure();
            may::alive(n)
        }
        Runtime::Tokio => tokio::alive(n),
        Runtime::Threads => threads::alive(n),
        r => Err(format!("{} has no alive workload", r.name())),
    }
}

/// Serves `proto` ("http" or "resp") with `runtime` on 127.0.0.1:`port` until killed.
pub fn serve(runtime: Runtime, proto: &str, port: u16) -> Result<(), String> {
    match (runtime, proto) {
        (Runtime::Tokio, "http") => tokio::serve(port, crate::proto::http),
        (Runtime::Tokio, "http2") => tokio::serve_threads(port, 2, crate::proto::http),
        (Runtime::May, "http2") => {
            may::configure_workers(2);
            may::serve(port, crate::proto::http)
        }
        (Runtime::Tokio, "resp") => tokio::serve(port, crate::proto::resp),
        (Runtime::May, "http") => {
            may::configure();
            may::serve(port, crate::proto::http)
        }
        (Runtime::May, "resp") => {
            may::configure();
            may::serve(port, crate::proto::resp)
        }
        (Runtime::Mio, "http") => mio::serve(port, crate::proto::http),
        (Runtime::GreenletProto, "http") => crate::greenlet_work::serve(port, crate::proto::http),
        (r, p) => Err(format!("no {p} server for {}", r.name())),
    }
    .map_err(|e| format!("{} {proto} server: {e}", runtime.name()))
}

/// What the alive workload measured.
#[derive(Debug, Clone, Copy)]
pub struct Alive {
    /// How many coroutines were parked.
    pub n: u64,
    /// From the first spawn until all of them were parked.
    pub created: Duration,
    /// Resident memory grown while they were created, in bytes.
    pub rss_delta: u64,
}

/// Measures an alive run: elapsed time, resident memory, and progress for the parent.
#[derive(Debug)]
pub struct AliveProbe {
    n: u64,
    every: u64,
    rss0: u64,
    start: Instant,
}

impl AliveProbe {
    /// Takes the baseline: call it after the runtime is set up, before the first spawn.
    pub fn start(n: u64) -> AliveProbe {
        AliveProbe {
            n,
            every: (n / 50).clamp(1, 500),
            rss0: rss_bytes(),
            start: Instant::now(),
        }
    }

    /// Reports `done` coroutines parked (now and then, not every time).
    pub fn tick(&self, done: u64) {
        if done.is_multiple_of(self.every) {
            child::progress(done);
        }
    }

    /// Reports exactly how far a failed run got (`done`), returning `why` as the error.
    pub fn failed(&self, done: u64, why: &str) -> String {
        child::progress(done);
        why.to_string()
    }

    /// The figures, taken now: call it once all `n` are parked.
    pub fn finish(&self) -> Alive {
        let created = self.start.elapsed();
        let rss = rss_bytes();
        Alive {
            n: self.n,
            created,
            rss_delta: rss.saturating_sub(self.rss0),
        }
    }
}

/// A file of `mib` MiB in the temporary directory, written (and so in the page cache) before
/// a read workload times anything; removed on drop.
#[derive(Debug)]
pub struct ScratchFile(std::path::PathBuf);

impl ScratchFile {
    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Drops its pages from the page cache, so that the next read comes from the disk.
    pub fn evict(&self) {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&self.0).expect("open the scratch file");
        f.sync_all().expect("sync the scratch file");
        // SAFETY: advice on a descriptor held open for the call; no memory is passed.
        let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(r, 0, "posix_fadvise");
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `true` to completion `n` times with `output` (std's or this crate's `Command`): µs
/// per child.
pub fn time_children(n: u64, output: impl Fn() -> std::io::Result<std::process::Output>) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let out = output().expect("run true");
        assert!(out.status.success());
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Reads a fresh `mib` MiB scratch file (evicted from the page cache first if `cold`) in 64
/// KiB `read` calls on what `open` gives: MB/s.
pub fn time_chunked_read<R: std::io::Read>(
    mib: u64,
    cold: bool,
    open: impl FnOnce(&std::path::Path) -> std::io::Result<R>,
) -> f64 {
    let file = scratch_file(mib);
    if cold {
        file.evict();
    }
    let start = Instant::now();
    let mut f = open(file.path()).expect("open the scratch file");
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert_eq!(total, mib << 20);
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// Reads a fresh `mib` MiB scratch file (in the page cache) whole with `read`: MB/s.
pub fn time_whole_read(
    mib: u64,
    read: impl FnOnce(&std::path::Path) -> std::io::Result<Vec<u8>>,
) -> f64 {
    let file = scratch_file(mib);
    let start = Instant::now();
    let data = read(file.path()).expect("read the scratch file");
    let dt = start.elapsed();
    assert_eq!(data.len() as u64, mib << 20);
    data.len() as f64 / dt.as_secs_f64() / 1e6
}

/// Writes a scratch file of `mib` MiB (not timed).
pub fn scratch_file(mib: u64) -> ScratchFile {
    use std::io::Write;
    let path = std::env::temp_dir().join(format!("greenlet-bench-{}.bin", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("create the scratch file");
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    for _ in 0..mib {
        f.write_all(&chunk).expect("write the scratch file");
    }
    ScratchFile(path)
}

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as u64
}

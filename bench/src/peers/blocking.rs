//! std's blocking calls on the calling thread: the floor for the operating-system workloads
//! (a child's `output`, reading a file), which this crate runs without blocking its hub.

use std::io::Read;
use std::process::Command;
use std::time::Instant;

use super::{ScratchFile, scratch_file};

/// Runs `true` to completion with `Command::output`, `n` times: µs per child.
pub fn process_output(n: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let out = Command::new("true").output().expect("run true");
        assert!(out.status.success());
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Reads an `mib` MiB file (in the page cache) in 64 KiB `read` calls: MB/s.
pub fn file_read_chunks(mib: u64) -> f64 {
    read_chunks(&scratch_file(mib), mib)
}

/// Reads an `mib` MiB file evicted from the page cache in 64 KiB `read` calls: MB/s.
pub fn file_read_cold(mib: u64) -> f64 {
    let file = scratch_file(mib);
    file.evict();
    read_chunks(&file, mib)
}

fn read_chunks(file: &ScratchFile, mib: u64) -> f64 {
    let start = Instant::now();
    let mut f = std::fs::File::open(file.path()).expect("open the scratch file");
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

/// Reads an `mib` MiB file (in the page cache) whole with `fs::read`: MB/s.
pub fn file_read_whole(mib: u64) -> f64 {
    let file = scratch_file(mib);
    let start = Instant::now();
    let data = std::fs::read(file.path()).expect("read the scratch file");
    let dt = start.elapsed();
    assert_eq!(data.len() as u64, mib << 20);
    data.len() as f64 / dt.as_secs_f64() / 1e6
}

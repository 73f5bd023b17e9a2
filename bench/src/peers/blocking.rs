//! std's blocking calls on the calling thread: the floor for the operating-system workloads
//! (a child's `output`, reading a file), which this crate runs without blocking its hub.

use super::{time_children, time_chunked_read, time_whole_read};

/// Runs `true` to completion with `Command::output`, `n` times: µs per child.
pub fn process_output(n: u64) -> f64 {
    time_children(n, || std::process::Command::new("true").output())
}

/// Reads an `mib` MiB file (in the page cache) in 64 KiB `read` calls: MB/s.
pub fn file_read_chunks(mib: u64) -> f64 {
    time_chunked_read(mib, false, |p| std::fs::File::open(p))
}

/// Reads an `mib` MiB file evicted from the page cache in 64 KiB `read` calls: MB/s.
pub fn file_read_cold(mib: u64) -> f64 {
    time_chunked_read(mib, true, |p| std::fs::File::open(p))
}

/// Reads an `mib` MiB file (in the page cache) whole with `fs::read`: MB/s.
pub fn file_read_whole(mib: u64) -> f64 {
    time_whole_read(mib, |p| std::fs::read(p))
}

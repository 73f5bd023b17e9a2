//! Reads that never wait for the disk: `preadv2(RWF_NOWAIT)` (Linux 4.14+) reads what the page
//! cache holds and fails with `EAGAIN` instead of waiting for the disk or a lock (it may start
//! readahead, which the pool's read then finds under way), so a [`File`](super::File) read can
//! be served on the hub's thread when the data is cached, and goes to the file pool only when
//! it is not. The module's only `unsafe`.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether non-waiting reads are worth trying on one file: cleared for good on the first
/// sign that the file (its file system, or the kernel) does not support them.
#[derive(Debug)]
pub(super) struct NoWait(AtomicBool);

impl NoWait {
    pub(super) fn new() -> NoWait {
        NoWait(AtomicBool::new(true))
    }

    /// Reads into `buf` at the file's current position (moving it, as `read`) if that needs
    /// no disk I/O and no wait: `Some(result)` (a short count when only part is cached, 0 at
    /// the end of the file), or `None` when the read must go to the file pool.
    pub(super) fn read(&self, fd: RawFd, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if buf.is_empty() || !self.0.load(Ordering::Relaxed) {
            return None;
        }
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        loop {
            // SAFETY: `iov` describes `buf`, writable for its length and exclusively borrowed
            // for the call; `fd` is the caller's open descriptor; offset -1 means "the current
            // position", as `read(2)`.
            let n = unsafe { libc::preadv2(fd, &iov, 1, -1, libc::RWF_NOWAIT) };
            if n >= 0 {
                return Some(Ok(n as usize));
            }
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // Not cached (or a lock is held): the pool will wait for it.
                Some(libc::EAGAIN) => None,
                // This file, its file system or the kernel cannot do it: never again here.
                Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS) => {
                    self.0.store(false, Ordering::Relaxed);
                    None
                }
                _ => Some(Err(e)),
            };
        }
    }
}

//! For the tests of reads that park before asking the kernel: whether a call parked, and
//! waiting for data to be queued without parking.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The read timeout of the sockets under test: a read parked on data with no edge to come
/// fails after this instead of hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `f` with a bystander greenlet ready: its result, and whether it parked (the bystander
/// ran meanwhile).
pub fn parks<R>(f: impl FnOnce() -> R) -> (R, bool) {
    let ran = Rc::new(Cell::new(false));
    let bystander = {
        let ran = ran.clone();
        greenlet::spawn(move || ran.set(true))
    };
    let r = f();
    let parked = ran.get();
    bystander.join().unwrap();
    (r, parked)
}

/// Waits, without parking and without a reactor harvest, until `fd` has at least `n` bytes
/// queued (`FIONREAD`).
pub fn wait_queued(fd: RawFd, n: usize) {
    let start = Instant::now();
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: `fd` is an open socket; FIONREAD writes one int.
        assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) }, 0);
        if queued as usize >= n {
            return;
        }
        assert!(start.elapsed() < READ_TIMEOUT, "the data never arrived");
        std::thread::yield_now();
    }
}

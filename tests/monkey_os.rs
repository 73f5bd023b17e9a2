//! `process`, `fs`, `signal` and `block_on` still work once `greenlet::monkey::patch_all()`
//! has hooked libc's `read`, `write`, `fcntl`, `close` and `sigaction`: the green pipes set
//! their own descriptors non-blocking through the hooked `fcntl`, the signal handler is
//! installed through the hooked `sigaction`, and the hooks must pass both through unchanged.
#![cfg(feature = "monkey")]

mod util;

use std::io::Read;

use greenlet::process::Command;
use util::{Ticker, on_fresh_thread};

#[test]
fn the_os_modules_work_under_patch_all() {
    greenlet::monkey::patch_all();
    on_fresh_thread(|| {
        let ticker = Ticker::start();
        // A child fed through a green pipe by a greenlet that waits for the ticker first.
        let back = util::cat_fed_after_ticks(&ticker, 3, b"through hooked pipes".to_vec());
        assert_eq!(back, b"through hooked pipes");
        assert_eq!(
            Command::new("echo").arg("hi").output().unwrap().stdout,
            b"hi\n"
        );

        // Files on the file pool, and a cached read on this thread.
        let dir = util::TempPath::new("monkey-os");
        let path = dir.dir.join("f");
        greenlet::fs::write(&path, "hooked").unwrap();
        let mut s = String::new();
        greenlet::fs::File::open(&path)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hooked");

        // A signal, through the hooked sigaction.
        let signals = greenlet::signal::Signals::new(&[libc::SIGRTMIN() + 9]).unwrap();
        let signo = libc::SIGRTMIN() + 9;
        greenlet::spawn(move || {
            // SAFETY: raising a signal whose handler the Signals above installed.
            unsafe { libc::raise(signo) };
        });
        assert_eq!(signals.recv().unwrap(), signo);

        assert_eq!(greenlet::block_on(async { 6 * 7 }), 42);
    });
}

//! The blocking monitor names the libc call that blocks the hub when the monkey hooks see it
//! (a call that cannot cooperate). Its own binary: the logger is process-global.
#![cfg(feature = "monkey")]

mod util;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Recorder(Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

fn recorder() -> &'static Recorder {
    static R: OnceLock<&'static Recorder> = OnceLock::new();
    R.get_or_init(|| {
        let r: &'static Recorder = Box::leak(Box::new(Recorder(Mutex::new(Vec::new()))));
        log::set_logger(r).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
        r
    })
}

#[test]
fn the_warning_names_the_hooked_call_that_blocked_the_hub() {
    let rec = recorder();
    greenlet::monkey::patch_all();
    greenlet::HubBuilder::new()
        .monitor(Duration::from_millis(20))
        .init();
    let g = greenlet::SpawnBuilder::new()
        .name("masked-wait")
        .spawn(|| {
            // A ppoll with a signal mask cannot cooperate: it blocks the thread for real.
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 300_000_000,
            };
            // SAFETY (test): an empty mask and no descriptors.
            unsafe {
                let mut mask: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut mask);
                libc::ppoll(std::ptr::null_mut(), 0, &ts, &mask)
            }
        })
        .unwrap();
    assert_eq!(g.get().unwrap(), 0);
    let give_up = Instant::now() + util::NOT_HANGING;
    let found = loop {
        let found = rec
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.contains("masked-wait"))
            .cloned();
        if found.is_some() || Instant::now() > give_up {
            break found;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let warning = found.expect("the monitor reported the blocked greenlet");
    assert!(
        warning.contains("in the blocking libc call ppoll()"),
        "{warning}"
    );
}

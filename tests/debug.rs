//! `greenlet::debug`: the dump of every greenlet of a thread, with what each waits on and the
//! backtrace of its park.

mod util;

use std::time::Duration;

use greenlet::SpawnBuilder;
use greenlet::sync::Event;

/// A function with a name to look for in the dump's backtrace.
#[inline(never)]
fn waits_in_a_named_function_for_the_dump(event: &Event) {
    event.wait().unwrap();
    std::hint::black_box(());
}

/// The dump names a greenlet parked in a named function, its state, what it waits on, and
/// that function in the backtrace of its park.
#[test]
fn dump_shows_the_parked_greenlet_its_wait_and_the_named_function() {
    util::on_fresh_thread(|| {
        greenlet::debug::enable();
        let event = Event::new();
        let e = event.clone();
        let h = SpawnBuilder::new()
            .name("dump-subject")
            .spawn(move || waits_in_a_named_function_for_the_dump(&e))
            .unwrap();
        let sleeper = SpawnBuilder::new()
            .name("dump-sleeper")
            .spawn(|| greenlet::sleep(Duration::from_secs(3600)))
            .unwrap();
        let ready = SpawnBuilder::new().name("dump-ready").spawn(|| ()).unwrap();
        greenlet::yield_now(); // the first two park; the third finished
        let unstarted = SpawnBuilder::new()
            .name("dump-unstarted")
            .spawn(|| ())
            .unwrap();
        let text = greenlet::debug::dump();
        let subject = paragraph(&text, "\"dump-subject\"");
        assert!(
            subject.contains(": parked on Event::wait for "),
            "{subject}"
        );
        assert!(
            subject.contains("waits_in_a_named_function_for_the_dump"),
            "the named function is not in the backtrace:\n{subject}"
        );
        assert!(
            paragraph(&text, "\"dump-sleeper\"").contains("parked on sleep"),
            "{text}"
        );
        assert!(
            paragraph(&text, "\"dump-unstarted\"").contains(": unstarted"),
            "{text}"
        );
        assert!(paragraph(&text, "\"main\"").contains(": running"), "{text}");
        assert!(
            paragraph(&text, "\"dump-ready\"").contains(": dead"),
            "{text}"
        );
        drop(ready);
        event.set();
        h.join().unwrap();
        sleeper.kill().unwrap();
        unstarted.join().unwrap();
        greenlet::debug::disable();
    });
}

/// Without capture the dump still lists every greenlet with its state, and says how to get
/// more; a greenlet that yields is ready.
#[test]
fn dump_without_capture_lists_ids_names_and_states() {
    util::on_fresh_thread(|| {
        let h = SpawnBuilder::new()
            .name("dump-yielder")
            .spawn(|| {
                for _ in 0..3 {
                    greenlet::yield_now();
                }
            })
            .unwrap();
        let me = SpawnBuilder::new()
            .name("dump-caller")
            .spawn(move || {
                greenlet::yield_now(); // the yielder is in the ready queue now
                greenlet::debug::dump()
            })
            .unwrap();
        let text = me.get().unwrap();
        assert!(
            paragraph(&text, "\"dump-caller\"").contains(": running"),
            "{text}"
        );
        assert!(
            paragraph(&text, "\"dump-yielder\"").contains(": ready"),
            "{text}"
        );
        assert!(
            paragraph(&text, "\"main\"").contains(": parked") || !greenlet::debug::is_enabled(),
            "{text}"
        );
        h.join().unwrap();
    });
}

/// The paragraph of the dump that starts with the greenlet `name`.
fn paragraph<'a>(dump: &'a str, name: &str) -> &'a str {
    let start = dump
        .find(&format!(" {name}: "))
        .unwrap_or_else(|| panic!("{name} not in the dump:\n{dump}"));
    let rest = &dump[start..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    &rest[..end]
}

/// `GREENLET_DEBUG=1` turns capture on, and `dump_on_signal` prints the dump to stderr when
/// the signal comes (here `SIGQUIT`, raised by the process itself). In a child process, for
/// its environment, its signal disposition and its stderr.
#[test]
fn dump_on_signal_prints_the_dump_with_capture_from_the_environment() {
    let run = util::run_test_in_child_with("dump_on_signal_child", &[("GREENLET_DEBUG", "1")]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
    let subject = paragraph(&run.stderr, "\"signal-subject\"");
    assert!(
        subject.contains(": parked on Event::wait for "),
        "{subject}"
    );
    assert!(
        subject.contains("waits_in_a_named_function_for_the_dump"),
        "{subject}"
    );
}

/// The body of [`dump_on_signal_prints_the_dump_with_capture_from_the_environment`].
#[test]
fn dump_on_signal_child() {
    if !util::in_child() {
        return;
    }
    let dumper = greenlet::debug::dump_on_signal(libc::SIGQUIT).unwrap();
    let event = Event::new();
    let e = event.clone();
    let h = SpawnBuilder::new()
        .name("signal-subject")
        .spawn(move || waits_in_a_named_function_for_the_dump(&e))
        .unwrap();
    greenlet::yield_now(); // both park
    assert!(
        greenlet::debug::is_enabled(),
        "GREENLET_DEBUG=1 turns capture on"
    );
    // SAFETY: raising a signal the process handles (the dumper's `Signals`) is sound.
    unsafe { libc::raise(libc::SIGQUIT) };
    // The handler has written to the dumper's pipe: the hub's next poll finds it, and the
    // dumper prints before the hub is idle again.
    greenlet::idle().unwrap();
    event.set();
    h.join().unwrap();
    dumper.kill().unwrap();
}

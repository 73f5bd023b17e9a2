//! Links on spawned greenlets: `link`, `link_value`, `link_exception` and `unlink` (gevent's
//! `Greenlet.link*` and `unlink`).

mod util;

use std::time::Duration;

use greenlet::JoinError;
use util::Log;

/// `link_value` runs for a value only, `link_exception` for a panic or a kill only, and all
/// links run in the order they were added.
#[test]
fn link_value_and_link_exception_run_only_for_their_outcome_in_order() {
    let log = Log::new();
    let ok = greenlet::spawn(|| 1);
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    ok.link_exception(move |_| a.push("ok: exception"));
    ok.link_value(move |h| b.push(format!("ok: value {}", *h.value().unwrap())));
    ok.link(move |_| c.push("ok: any"));
    ok.join().unwrap();

    let bad = greenlet::spawn(|| -> i32 { panic!("expected panic: for link_exception") });
    let (a, b) = (log.clone(), log.clone());
    bad.link_value(move |_| a.push("bad: value"));
    bad.link_exception(move |h| b.push(format!("bad: exception {}", h.error().unwrap())));
    bad.join().unwrap();

    let killed = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600)));
    let k = log.clone();
    killed.link_exception(move |h| {
        k.push(format!(
            "killed: {}",
            matches!(*h.error().unwrap(), JoinError::Killed)
        ))
    });
    greenlet::yield_now();
    killed.kill().unwrap();

    assert_eq!(
        log.events(),
        [
            "ok: value 1",
            "ok: any",
            "bad: exception greenlet panicked: expected panic: for link_exception",
            "killed: true",
        ]
    );
}

/// `unlink` takes back a link that has not run; a key works only on its own greenlet, once.
#[test]
fn unlink_takes_back_a_pending_link_by_its_key() {
    let log = Log::new();
    let a = greenlet::spawn(|| ());
    let b = greenlet::spawn(|| ());
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let k1 = a.link(move |_| l1.push("a1"));
    let k2 = a.link_value(move |_| l2.push("a2"));
    let kb = b.link(move |_| l3.push("b"));
    assert_ne!(k1, k2);
    assert!(!a.unlink(kb), "a key of another greenlet's link");
    assert!(a.unlink(k2));
    assert!(!a.unlink(k2), "already taken back");
    greenlet::joinall(&[a.clone(), b.clone()], None, None).unwrap();
    assert!(!a.unlink(k1), "it ran");
    assert_eq!(log.events(), ["a1", "b"]);
}

/// A link added to a finished greenlet runs at once; unlinking it then finds nothing.
#[test]
fn a_link_on_a_finished_greenlet_runs_at_once() {
    let log = Log::new();
    let h = greenlet::spawn(|| 5);
    h.join().unwrap();
    let l = log.clone();
    let key = h.link_value(move |h| l.push(format!("{}", *h.value().unwrap())));
    assert_eq!(log.events(), ["5"]);
    assert!(!h.unlink(key));
}

//! Links on spawned greenlets: `link`, `link_value`, `link_exception` and `unlink` (gevent's
//! `Greenlet.link*` and `unlink`).

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenlet::sync::{AsyncError, AsyncResult, Queue};
use greenlet::{JoinError, JoinHandle};
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

// ---------------------------------------------------------------------------------------------
// Ports of gevent's test__greenlet.py and test__event.py cases about links.

const DELAY: Duration = Duration::from_millis(10);

/// Ports gevent's `test__greenlet.py::TestUnlink::test_func_link`, `TestUnlink::test_func_link_value`
/// and `TestUnlink::test_func_link_exception`: a callback linked (by `link`,
/// `link_value` or `link_exception`) and then unlinked before the greenlet ends never runs;
/// `unlink` says it removed it (gevent: `has_links()` goes 1 -> 0).
#[test]
fn unlinked_callbacks_never_run() {
    for how in ["link", "link_value", "link_exception"] {
        let p = greenlet::spawn(|| ());
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let cb = move |_: &JoinHandle<()>| r.set(true);
        let key = match how {
            "link" => p.link(cb),
            "link_value" => p.link_value(cb),
            _ => p.link_exception(cb),
        };
        assert!(p.unlink(key), "{how}: unlink removes it");
        assert!(!p.unlink(key), "{how}: only once");
        p.kill().unwrap();
        assert!(!ran.get(), "{how}: an unlinked callback ran");
    }
}

/// The links gevent's `LinksTestCase.set_links` adds through `link_method`: a result, a
/// queue's put, a flag cleared by a callback, and ten more of the first two.
struct Links {
    result: AsyncResult<String>,
    queue: Queue<String>,
    flag: Rc<Cell<bool>>,
}

fn set_links<T: std::fmt::Debug + 'static>(
    p: &JoinHandle<T>,
    link: &dyn Fn(&JoinHandle<T>, greenlet::LinkFn<T>),
) -> Links {
    let describe = |h: &JoinHandle<T>| match (h.value(), h.error()) {
        (Some(v), _) => format!("value {v:?}"),
        (None, Some(e)) => format!("error {e}"),
        _ => "taken".to_string(),
    };
    let links = Links {
        result: AsyncResult::new(),
        queue: Queue::bounded(1),
        flag: Rc::new(Cell::new(true)),
    };
    let r = links.result.clone();
    link(
        p,
        Box::new(move |h| {
            r.set(describe(h));
        }),
    );
    let q = links.queue.clone();
    link(p, Box::new(move |h| q.put(describe(h)).unwrap()));
    let f = links.flag.clone();
    link(p, Box::new(move |_| f.set(false)));
    for _ in 0..10 {
        let r = AsyncResult::new();
        link(
            p,
            Box::new(move |h| {
                r.set(describe(h));
            }),
        );
        let q = Queue::bounded(1);
        link(p, Box::new(move |h| q.put(describe(h)).unwrap()));
    }
    links
}

/// gevent's `check_timed_out`: links that must not fire leave their result and queue empty.
fn assert_not_fired(links: &Links) {
    assert!(matches!(
        links.result.get_timeout(DELAY),
        Err(AsyncError::TimedOut)
    ));
    assert!(links.queue.get_timeout(DELAY).is_err());
    assert!(links.flag.get());
}

fn assert_fired(links: &Links, what: &str) {
    assert!(links.result.get().unwrap().starts_with(what));
    assert!(links.queue.get().unwrap().starts_with(what));
    assert!(!links.flag.get());
}

/// Ports gevent's `test__greenlet.py::TestReturn_link::test_return` and
/// `TestReturn_link_value::test_return`: for a greenlet that returns 25, the links
/// added with `link` (and with `link_value`) fire with the value; those added with
/// `link_exception` never fire. Three rounds on the same (finished) greenlet, as gevent does.
#[test]
fn links_of_a_greenlet_that_returns() {
    let p = greenlet::spawn(|| 25);
    for round in 0..3 {
        for value_only in [false, true] {
            let fired = set_links(&p, &|p, cb| {
                if value_only {
                    p.link_value(cb);
                } else {
                    p.link(cb);
                }
            });
            let silent = set_links(&p, &|p, cb| {
                p.link_exception(cb);
            });
            greenlet::sleep(DELAY);
            assert!(p.is_ready(), "round {round}");
            assert_fired(&fired, "value 25");
            assert_not_fired(&silent);
        }
    }
}

/// Ports gevent's `test__greenlet.py::TestReturn_link::test_kill` and
/// `TestReturn_link_value::test_kill`, with this crate's rule that a killed greenlet is not
/// successful (gevent: successful, value `GreenletExit`). `link` callbacks fire with
/// the `Killed` error and `link_exception` ones fire too; `link_value` ones do not fire (in
/// gevent they fire with `GreenletExit`). Three rounds.
#[test]
fn links_of_a_killed_greenlet() {
    let p = greenlet::spawn(|| greenlet::sleep(DELAY));
    for round in 0..3 {
        let fired = set_links(&p, &|p, cb| {
            p.link(cb);
        });
        let on_error = set_links(&p, &|p, cb| {
            p.link_exception(cb);
        });
        let on_value = set_links(&p, &|p, cb| {
            p.link_value(cb);
        });
        p.kill().unwrap();
        greenlet::sleep(DELAY);
        assert!(p.is_ready(), "round {round}");
        assert_fired(&fired, "error");
        assert_fired(&on_error, "error");
        assert_not_fired(&on_value);
    }
}

/// Ports gevent's `test__greenlet.py::TestRaise_link::test_raise` and
/// `TestRaise_link_exception::test_raise`: for a greenlet that fails, `link` and
/// `link_exception` callbacks fire with the error; `link_value` ones never fire. Three rounds.
#[test]
fn links_of_a_greenlet_that_fails() {
    let p = greenlet::spawn(|| -> u32 { panic!("expected panic: test_raise") });
    for round in 0..3 {
        for errors_only in [false, true] {
            let fired = set_links(&p, &|p, cb| {
                if errors_only {
                    p.link_exception(cb);
                } else {
                    p.link(cb);
                }
            });
            let silent = set_links(&p, &|p, cb| {
                p.link_value(cb);
            });
            greenlet::sleep(DELAY);
            assert!(p.is_ready(), "round {round}");
            assert_fired(&fired, "error");
            assert_not_fired(&silent);
        }
    }
}

/// Ports gevent's `test__greenlet.py::TestBasic::test_spawn_raw_kwargs`: a raw
/// greenlet runs its function with what it captured, soon after the spawner yields, and is
/// dead afterwards.
#[test]
fn a_raw_greenlet_runs_and_dies() {
    let value = Rc::new(RefCell::new(Vec::new()));
    let v = value.clone();
    let g = greenlet::spawn_raw(move || v.borrow_mut().push((1, "value")));
    greenlet::sleep(DELAY);
    assert!(g.is_dead());
    assert_eq!(*value.borrow(), [(1, "value")]);
}

/// Ports gevent's `test__event.py::TestAsyncResultAsLinkTarget::test_set` and
/// `TestAsyncResultAsLinkTarget::test_set_exception`: results linked with `link`
/// and `link_value` get a returning greenlet's value, one linked with `link_exception` stays
/// pending; for a failing greenlet, `link` and `link_exception` ones get the failure and the
/// `link_value` one stays pending.
#[test]
fn results_as_link_targets() {
    for fails in [false, true] {
        let g = greenlet::spawn(move || -> u32 {
            if fails {
                panic!("expected panic: test_set_exception")
            }
            1
        });
        let (s1, s2, s3) = (AsyncResult::new(), AsyncResult::new(), AsyncResult::new());
        let fill = |r: &AsyncResult<u32>| {
            let r = r.clone();
            move |h: &JoinHandle<u32>| match h.value() {
                Some(v) => {
                    r.set(*v);
                }
                None => {
                    r.set_error("failed");
                }
            }
        };
        g.link(fill(&s1));
        g.link_value(fill(&s2));
        g.link_exception(fill(&s3));
        if fails {
            assert!(matches!(s1.get(), Err(AsyncError::Failed(_))));
            assert!(matches!(s2.get_timeout(DELAY), Err(AsyncError::TimedOut)));
            assert!(matches!(s3.get(), Err(AsyncError::Failed(_))));
        } else {
            assert_eq!(s1.get().unwrap(), 1);
            assert_eq!(s2.get().unwrap(), 1);
            assert!(matches!(s3.get_timeout(DELAY), Err(AsyncError::TimedOut)));
        }
    }
}

/// Ports gevent's `test__greenlet.py::TestStuff::test_multiple_listeners_error_unlink_Greenlet_link`
/// and `TestStuff::test_multiple_listeners_error_unlink_Greenlet_rawlink`. Expected: of two
/// listeners that each unlink the other and then panic, only the first runs (notification
/// must not reach a callback unlinked while notification is under way); a third that panics
/// does not stop anything. `results == [5]`.
#[test]
fn a_link_unlinked_by_an_earlier_link_does_not_run() {
    let p = greenlet::spawn(|| 5);
    let results = Rc::new(RefCell::new(Vec::new()));
    let keys: Rc<RefCell<[Option<greenlet::LinkKey>; 2]>> = Rc::default();
    for me in 0..2 {
        let (r, k) = (results.clone(), keys.clone());
        let key = p.link(move |h| {
            let other = k.borrow()[1 - me].unwrap();
            h.unlink(other);
            r.borrow_mut().push(5);
            panic!("expected panic: listener {me}");
        });
        keys.borrow_mut()[me] = Some(key);
    }
    p.link(|_| panic!("expected panic: listener3"));
    greenlet::sleep(DELAY);
    assert_eq!(*results.borrow(), [5]);
}

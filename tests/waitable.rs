//! Waiting on objects of different kinds (`Waitable`, `wait_any`, `wait_objects`,
//! `iwait_objects`), for the hub to be idle (`idle`), and raw greenlets (`spawn_raw`).

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenlet::sync::{AsyncResult, Event, LifoQueue, PriorityQueue, Queue, WaitError};
use greenlet::{Timeout, Waitable, Wakeup};

/// gevent's `wait(objects, count=1)` over greenlets of different result types, an event and
/// an async result: whichever comes first.
#[test]
fn wait_any_returns_whichever_object_comes_first() {
    let number = greenlet::spawn(|| {
        greenlet::sleep(Duration::from_millis(20));
        1u64
    });
    let text = greenlet::spawn(|| {
        greenlet::sleep(Duration::from_millis(20));
        String::from("t")
    });
    let event = Event::new();
    let result: AsyncResult<Vec<u8>> = AsyncResult::new();
    let r = result.clone();
    greenlet::spawn(move || r.set(vec![1]));
    let objects: [&dyn Waitable; 4] = [&number, &text, &event, &result];
    assert_eq!(greenlet::wait_any(&objects, None), Some(3));
    // Ready objects are found without waiting, the first in order.
    assert_eq!(greenlet::wait_any(&objects, Some(Duration::ZERO)), Some(3));
    assert_eq!(
        greenlet::wait_any(&objects[..3], Some(Duration::from_millis(1))),
        None
    );
    assert_eq!(
        greenlet::wait_objects(&objects, None, Some(3)).unwrap(),
        [0, 1, 3]
    );
}

/// An `AsyncResult` completed from another thread wakes a mixed wait.
#[test]
fn wait_any_wakes_for_a_result_sent_from_another_thread() {
    let result: AsyncResult<u32> = AsyncResult::new();
    let tx = result.sender();
    let never = Event::new();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.set(9);
    });
    let objects: [&dyn Waitable; 2] = [&never, &result];
    assert_eq!(
        greenlet::wait_any(&objects, Some(Duration::from_secs(10))),
        Some(1)
    );
    assert_eq!(result.get().unwrap(), 9);
}

/// Queues are ready when an item can be taken (or they are closed); a timeout when it expires.
#[test]
fn queues_and_timeouts_are_waitable() {
    let fifo = Queue::<u8>::new();
    let lifo = LifoQueue::<u8>::new();
    let prio = PriorityQueue::<u8>::new();
    let (tx, rx) = greenlet::sync::channel::<u8>();
    let objects: [&dyn Waitable; 4] = [&fifo, &lifo, &prio, &rx];
    assert_eq!(greenlet::wait_any(&objects, Some(Duration::ZERO)), None);
    let p = prio.clone();
    greenlet::spawn(move || p.put(3).unwrap());
    assert_eq!(greenlet::wait_any(&objects, None), Some(2));
    assert_eq!(prio.get(), Ok(3));
    drop(tx); // closed: a recv returns at once
    assert_eq!(greenlet::wait_any(&objects, None), Some(3));

    let timeout = Timeout::start(Some(Duration::from_millis(2)));
    let never = Event::new();
    let objects: [&dyn Waitable; 2] = [&never, &timeout];
    assert_eq!(greenlet::wait_any(&objects, None), Some(1));
}

/// The main greenlet waiting on objects nothing could make ready gets `LoopExit` from
/// `wait_objects` (and `None` from `wait_any`) instead of hanging.
#[test]
fn a_mixed_wait_that_could_never_end_is_a_loop_exit() {
    util::on_fresh_thread(|| {
        let event = Event::new();
        let q = Queue::<u8>::new();
        let objects: [&dyn Waitable; 2] = [&event, &q];
        let e = greenlet::wait_objects(&objects, None, None).unwrap_err();
        assert!(e.to_string().contains("2 waitable objects"), "{e}");
        assert_eq!(greenlet::wait_any(&objects, None), None);
    });
}

/// `iwait_objects` yields each object once, as it becomes ready.
#[test]
fn iwait_objects_yields_each_object_once_in_readiness_order() {
    let e1 = Event::new();
    let e2 = Event::new();
    let g = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(10)));
    let (a, b) = (e1.clone(), e2.clone());
    greenlet::spawn(move || {
        b.set();
        greenlet::sleep(Duration::from_millis(1));
        a.set();
        b.set(); // again: not yielded twice
    });
    let objects: [&dyn Waitable; 3] = [&e1, &g, &e2];
    let order: Vec<usize> = greenlet::iwait_objects(&objects, None).collect();
    assert_eq!(order, [2, 0, 1]);
}

/// Waits leave no stale wake-ups behind in the objects' wait lists.
#[test]
fn mixed_waits_leave_no_waiters_behind() {
    let q = Queue::<u8>::new();
    for _ in 0..100 {
        let objects: [&dyn Waitable; 1] = [&q];
        assert_eq!(greenlet::wait_any(&objects, Some(Duration::ZERO)), None);
        assert_eq!(
            greenlet::wait_any(&objects, Some(Duration::from_micros(1))),
            None
        );
    }
    assert_eq!(q.waiting_getters(), 0);
    let dbg = format!("{q:?}");
    assert!(dbg.contains("getters: 0"), "{dbg}");
}

/// A type of the user's can take part in a mixed wait.
#[test]
fn a_user_type_can_be_waitable() {
    #[derive(Clone, Default)]
    struct Flag(Rc<(Cell<bool>, std::cell::RefCell<Vec<Wakeup>>)>);
    impl Waitable for Flag {
        fn is_ready(&self) -> bool {
            self.0.0.get()
        }
        fn add_waiter(&self, wakeup: &Wakeup) {
            self.0.1.borrow_mut().push(wakeup.clone());
        }
        fn remove_waiters(&self) {
            self.0.1.borrow_mut().retain(Wakeup::is_waiting);
        }
    }
    let flag = Flag::default();
    let f = flag.clone();
    greenlet::spawn(move || {
        f.0.0.set(true);
        for w in f.0.1.borrow_mut().drain(..) {
            w.wake();
        }
    });
    let objects: [&dyn Waitable; 1] = [&flag];
    assert_eq!(greenlet::wait_any(&objects, None), Some(0));
}

/// gevent's `idle()`: returns only once every other ready greenlet has run.
#[test]
fn idle_waits_until_nothing_else_is_ready() {
    let steps = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let s = steps.clone();
        greenlet::spawn(move || {
            for _ in 0..5 {
                s.set(s.get() + 1);
                greenlet::yield_now();
            }
        });
    }
    greenlet::idle().unwrap();
    assert_eq!(steps.get(), 15);
    // Nothing else: idle returns at once, with no LoopExit.
    greenlet::idle().unwrap();
}

/// `idle_timeout` gives up while other greenlets keep the hub busy.
#[test]
fn idle_timeout_gives_up_while_the_hub_stays_busy() {
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    greenlet::spawn(move || {
        while !s.get() {
            greenlet::yield_now();
        }
    });
    assert_eq!(
        greenlet::idle_timeout(Duration::from_millis(2)),
        Err(WaitError::TimedOut)
    );
    stop.set(true);
    greenlet::idle().unwrap();
}

/// `spawn_raw` runs without a handle; a panic hurts only it.
#[test]
fn spawn_raw_runs_and_a_panic_hurts_only_it() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let g = greenlet::spawn_raw(move || r.set(r.get() + 1));
    let bad = greenlet::spawn_raw(|| panic!("expected panic: in a raw greenlet"));
    let r = ran.clone();
    greenlet::spawn_raw(move || {
        greenlet::sleep(Duration::from_millis(1));
        r.set(r.get() + 1);
    });
    assert!(!g.is_dead());
    assert!(greenlet::wait_all(None).unwrap());
    assert_eq!(ran.get(), 2);
    assert!(g.is_dead() && bad.is_dead());
}

//! `greenlet::sync`: events, async results, queues, channels, semaphores and locks.
//!
//! Ports of gevent's `test__event.py`, `test__queue.py` and `test__semaphore.py` say so; no
//! assertion depends on how long something took, except generous "did not hang" bounds.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::sync::{
    AsyncError, AsyncResult, BoundedSemaphore, Channel, Event, LifoQueue, Lock, PriorityQueue,
    Queue, RLock, RecvError, ReleaseError, Semaphore, SemaphoreGuard, SendError, TryRecvError,
    TrySendError, WaitError, channel, sync_channel,
};
use greenlet::{JoinError, LoopExit, Timeout, joinall, sleep, spawn, yield_now};

/// An ordered record of events, shared between greenlets.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, event: impl ToString) {
        self.0.borrow_mut().push(event.to_string());
    }
    fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

const SHORT: Duration = Duration::from_millis(5);

/// Asserts that `e` is a prompt, explanatory `LoopExit`.
fn assert_loop_exit(e: &LoopExit, started: Instant) {
    assert!(e.to_string().contains("would block forever"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ----- Event -----

/// Ports gevent's `test__event.py::TestEvent_SetThenClear::test`,
/// `TestEvent_SetThenClear100::test` and `TestEvent_SetThenClear1000::test`: 1, 100 and 1000
/// waiters woken by a `set` return even though the event is cleared again before they run.
#[test]
fn event_set_then_clear_wakes_every_waiter() {
    for n in [1, 100, 1000] {
        let e = Event::new();
        let waiters: Vec<_> = (0..n)
            .map(|_| {
                let e = e.clone();
                spawn(move || e.wait())
            })
            .collect();
        sleep(Duration::from_millis(1));
        e.set();
        e.clear();
        for w in &waiters {
            w.get().unwrap().unwrap();
        }
        assert!(!e.is_set());
    }
}

/// Ports `test__event.py::TestGeventWaitOnEvent::test_set_during_wait`: after a clear, a new
/// wait does not see the old set.
#[test]
fn event_wait_after_clear_blocks_until_the_next_set() {
    let e = Event::new();
    let setter = {
        let e = e.clone();
        spawn(move || e.set())
    };
    e.wait().unwrap();
    assert!(e.is_set());
    setter.join().unwrap();
    e.clear();
    assert!(!e.try_wait());
    assert_eq!(e.wait_timeout(SHORT), Err(WaitError::TimedOut));
    e.set();
    assert_eq!(e.wait_timeout(SHORT), Ok(()));
}

/// Ports `test__event.py::TestEventWait`: a wait with a timeout gives up.
#[test]
fn event_wait_timeout_times_out() {
    let e = Event::new();
    assert!(e.wait_timeout(SHORT).unwrap_err().is_timeout());
    let t = Timeout::start(Some(SHORT));
    assert_eq!(e.wait(), Err(WaitError::TimedOut));
    assert!(t.is_expired());
}

#[test]
fn event_wait_in_main_with_nothing_to_set_it_is_loop_exit() {
    let started = Instant::now();
    match Event::new().wait() {
        Err(WaitError::LoopExit(e)) => {
            assert_loop_exit(&e, started);
            assert!(e.waiting_on().contains("Event::wait"));
        }
        other => panic!("{other:?}"),
    }
}

// ----- AsyncResult -----

#[test]
fn async_result_set_by_a_greenlet_wakes_every_getter() {
    let r = AsyncResult::new();
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let r = r.clone();
            spawn(move || r.get())
        })
        .collect();
    yield_now();
    assert!(!r.is_ready());
    let setter = r.clone();
    spawn(move || assert!(setter.set(7)));
    assert_eq!(r.get().unwrap(), 7);
    for g in &getters {
        assert_eq!(g.get().unwrap().unwrap(), 7);
    }
    assert!(r.is_successful());
    assert!(!r.set(8), "only the first completion counts");
    assert_eq!(r.try_get().unwrap(), 7);
}

/// Ports `test__event.py::TestAsyncResult::test_set_exc`: `set_error` reaches the getter.
#[test]
fn async_result_set_error_is_delivered_to_the_getter() {
    let r = AsyncResult::<i32>::new();
    let log = Log::default();
    let waiter = {
        let (r, log) = (r.clone(), log.clone());
        spawn(move || match r.get() {
            Err(AsyncError::Failed(e)) => log.push(format!("caught {e}")),
            other => log.push(format!("unexpected {other:?}")),
        })
    };
    yield_now();
    assert!(r.set_error("boom"));
    waiter.join().unwrap();
    assert_eq!(log.events(), ["caught boom"]);
    assert!(r.is_ready() && !r.is_successful());
    assert!(matches!(r.take(), Err(AsyncError::Failed(_))));
}

/// Ports `test__event.py::TestAsyncResult::test_set_with_timeout` and
/// `test_nonblocking_get`.
#[test]
fn async_result_timeout_and_nonblocking_forms() {
    let r = AsyncResult::<u8>::new();
    assert!(matches!(r.try_get(), Err(AsyncError::NotReady)));
    assert!(matches!(r.get_timeout(SHORT), Err(AsyncError::TimedOut)));
    assert!(r.wait_timeout(SHORT).unwrap_err().is_timeout());
    assert!(!r.try_wait());
    // Ports `test_set`: a Timeout of the greenlet interrupts a plain `get`.
    let _t = Timeout::start(Some(Duration::ZERO));
    assert!(matches!(r.get(), Err(AsyncError::TimedOut)));
}

#[test]
fn async_result_take_moves_the_value_out() {
    let r = AsyncResult::new();
    assert!(matches!(r.take(), Err(AsyncError::NotReady)));
    r.set(String::from("once"));
    assert_eq!(r.take().unwrap(), "once");
    assert!(matches!(r.take(), Err(AsyncError::Taken)));
    assert!(matches!(r.get(), Err(AsyncError::Taken)));
}

#[test]
fn async_result_in_main_with_no_sender_is_loop_exit() {
    let started = Instant::now();
    match AsyncResult::<()>::new().get() {
        Err(AsyncError::LoopExit(e)) => assert_loop_exit(&e, started),
        other => panic!("{other:?}"),
    }
}

/// The cross-thread wake: an OS thread completes the result; main and two greenlets waiting
/// for it all wake.
#[test]
fn async_result_set_from_another_thread_wakes_main_and_greenlets() {
    let r = AsyncResult::new();
    let tx = r.sender();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let r = r.clone();
            spawn(move || r.get())
        })
        .collect();
    yield_now();
    let started = Instant::now();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        assert!(tx.set(String::from("from a thread")));
        assert!(!tx.set(String::from("again")));
    });
    assert_eq!(r.get().unwrap(), "from a thread");
    for w in &waiters {
        assert_eq!(w.get().unwrap().unwrap(), "from a thread");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    thread.join().unwrap();
}

/// The waiter on the thread's wake-up is a spawned greenlet, and main waits on it.
#[test]
fn async_result_set_from_another_thread_wakes_a_greenlet() {
    let r = AsyncResult::<u64>::new();
    let tx = r.sender();
    let g = {
        let r = r.clone();
        spawn(move || r.get().unwrap() * 2)
    };
    std::thread::spawn(move || tx.set(21));
    assert_eq!(g.get().unwrap(), 42);
}

#[test]
fn async_result_set_error_from_another_thread() {
    let r = AsyncResult::<u64>::new();
    let tx = r.sender();
    std::thread::spawn(move || tx.set_error(std::io::Error::other("disk on fire")));
    match r.get() {
        Err(AsyncError::Failed(e)) => assert_eq!(e.to_string(), "disk on fire"),
        other => panic!("{other:?}"),
    }
}

/// Dropping every sender without a value is an error, not a hang.
#[test]
fn async_result_sender_dropped_is_an_error() {
    let r = AsyncResult::<u64>::new();
    let tx = r.sender();
    let tx2 = tx.clone();
    let started = Instant::now();
    std::thread::spawn(move || {
        drop(tx);
        std::thread::sleep(Duration::from_millis(10));
        drop(tx2);
    });
    assert!(matches!(r.get(), Err(AsyncError::SenderDropped)));
    assert!(r.is_ready());
    assert!(started.elapsed() < Duration::from_secs(5));
    // A new sender opens it again.
    let tx = r.sender();
    assert!(tx.set(5));
    assert_eq!(r.get().unwrap(), 5);
}

/// Regression (issue 8, defect 6: lost cross-thread wake-up): greenlets that park in `get()`
/// before any sender exists wait on the result's local list; the sender made afterwards, set
/// from another thread, used to wake nobody (only a greenlet that arrived after the sender
/// watched for it), and main's join of them ended in a false `LoopExit` once the sender was
/// spent. Every waiter, whenever it arrived, is woken.
#[test]
fn async_result_waiters_that_came_before_the_sender_are_woken_by_it() {
    let r = AsyncResult::<u32>::new();
    let early: Vec<_> = (0..3)
        .map(|_| {
            let r = r.clone();
            spawn(move || r.get())
        })
        .collect();
    yield_now();
    let tx = r.sender();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        assert!(tx.set(7));
    });
    for h in &early {
        assert_eq!(h.get().unwrap().unwrap(), 7);
    }
    thread.join().unwrap();
}

/// Regression (issue 8, defect 6, as main sees it): main parks in `get()` (no timeout) while a
/// greenlet makes the sender and hands it to a thread. The set used to be lost and main got a
/// false `LoopExit` once the sender was gone.
#[test]
fn async_result_main_waiting_before_the_sender_exists_gets_the_value() {
    let r = AsyncResult::<u32>::new();
    let maker = {
        let r = r.clone();
        spawn(move || {
            let tx = r.sender();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                tx.set(9)
            })
        })
    };
    assert_eq!(r.get().unwrap(), 9);
    maker.get().unwrap().join().unwrap();
}

/// A greenlet completes the result while another waits for a sender: the waiter wakes.
#[test]
fn async_result_local_set_while_a_sender_exists() {
    let r = AsyncResult::new();
    let tx = r.sender();
    let setter = {
        let r = r.clone();
        spawn(move || {
            sleep(Duration::from_millis(1));
            r.set(1)
        })
    };
    assert_eq!(r.get().unwrap(), 1);
    assert!(setter.get().unwrap());
    assert!(!tx.is_open());
    assert!(!tx.set(2));
    assert_eq!(r.get().unwrap(), 1);
}

/// A waiter for a sender that times out hands the watch over to the next waiter.
#[test]
fn async_result_watch_passes_on_when_the_watcher_times_out() {
    let r = AsyncResult::new();
    let tx = r.sender();
    let impatient = {
        let r = r.clone();
        spawn(move || r.get_timeout(Duration::from_millis(1)))
    };
    let patient = {
        let r = r.clone();
        spawn(move || r.get())
    };
    assert!(matches!(
        impatient.get().unwrap(),
        Err(AsyncError::TimedOut)
    ));
    std::thread::spawn(move || tx.set("late"));
    assert_eq!(patient.get().unwrap().unwrap(), "late");
}

// ----- Queues -----

#[test]
fn queue_orders() {
    let fifo = Queue::new();
    let lifo = LifoQueue::new();
    let prio = PriorityQueue::new();
    for i in [3, 1, 2] {
        fifo.put(i).unwrap();
        lifo.put(i).unwrap();
        prio.put(i).unwrap();
    }
    let drain = |f: &dyn Fn() -> Result<i32, TryRecvError>| {
        std::iter::from_fn(|| f().ok()).collect::<Vec<_>>()
    };
    assert_eq!(drain(&|| fifo.try_get()), [3, 1, 2]);
    assert_eq!(drain(&|| lifo.try_get()), [2, 1, 3]);
    assert_eq!(drain(&|| prio.try_get()), [1, 2, 3]);
}

/// Ports gevent's `test__queue.py::TestQueue::test_max_size` and `TestSimpleQueue::test_max_size`:
/// a bounded put blocks until a get.
#[test]
fn bounded_put_blocks_until_a_get() {
    let q = Queue::bounded(2);
    let log = Log::default();
    let putter = {
        let (q, log) = (q.clone(), log.clone());
        spawn(move || {
            for item in ["a", "b", "c"] {
                q.put(item).unwrap();
                log.push(item);
            }
            "OK"
        })
    };
    yield_now();
    assert_eq!(log.events(), ["a", "b"]);
    assert!(q.is_full());
    assert_eq!(q.waiting_putters(), 1);
    assert_eq!(q.get().unwrap(), "a");
    yield_now();
    assert_eq!(log.events(), ["a", "b", "c"]);
    assert_eq!(q.get().unwrap(), "b");
    assert_eq!(q.get().unwrap(), "c");
    assert_eq!(putter.try_get().unwrap(), "OK");
}

#[test]
fn bounded_try_put_and_put_timeout_give_the_item_back() {
    let q = Queue::bounded(1);
    q.try_put(1).unwrap();
    assert!(matches!(q.try_put(2), Err(TrySendError::Full(2))));
    match q.put_timeout(3, SHORT) {
        Err(SendError::TimedOut(v)) => assert_eq!(v, 3),
        other => panic!("{other:?}"),
    }
    // A blocking put in main that nothing could ever make room for: LoopExit, item back.
    let started = Instant::now();
    match q.put(4) {
        Err(SendError::LoopExit(v, e)) => {
            assert_eq!(v, 4);
            assert_loop_exit(&e, started);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(q.len(), 1);
}

/// Ports gevent's `test__queue.py::TestQueue::test_send_first` and `TestQueue::test_peek_empty`,
/// and the same two of `TestSimpleQueue`.
#[test]
fn peek_forms() {
    let q = Queue::new();
    let started = Instant::now();
    match q.peek() {
        Err(RecvError::LoopExit(e)) => assert_loop_exit(&e, started),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.try_peek(), Err(TryRecvError::Empty));
    assert_eq!(q.peek_timeout(SHORT), Err(RecvError::TimedOut));
    q.put("hi").unwrap();
    assert_eq!(q.peek().unwrap(), "hi");
    assert_eq!(q.len(), 1);
    assert_eq!(q.get().unwrap(), "hi");
}

/// Ports gevent's `test__queue.py::TestQueue::test_peek_multi_greenlet` and
/// `TestSimpleQueue::test_peek_multi_greenlet`.
#[test]
fn peek_waits_for_a_put_without_taking_it() {
    let q = Queue::new();
    let peeker = {
        let q = q.clone();
        spawn(move || q.peek())
    };
    yield_now();
    q.put(1).unwrap();
    assert_eq!(peeker.get().unwrap(), Ok(1));
    assert_eq!(q.peek(), Ok(1));
    assert_eq!(q.len(), 1);
}

#[test]
fn len_empty_full_capacity() {
    let q = Queue::bounded(2);
    assert!(q.is_empty() && !q.is_full());
    assert_eq!(q.capacity(), Some(2));
    q.put('x').unwrap();
    q.put('y').unwrap();
    assert_eq!(q.len(), 2);
    assert!(q.is_full());
    assert_eq!(Queue::<u8>::new().capacity(), None);
}

/// Ports gevent's `test__queue.py::TestQueue::test_multiple_waiters` and
/// `TestSimpleQueue::test_multiple_waiters`: getters are served in order.
#[test]
fn waiting_getters_are_served_in_arrival_order() {
    let q = Queue::new();
    let log = Log::default();
    let getters: Vec<_> = (0..4)
        .map(|i| {
            let (q, log) = (q.clone(), log.clone());
            spawn(move || log.push(format!("{i}:{}", q.get().unwrap())))
        })
        .collect();
    sleep(Duration::from_millis(1));
    assert_eq!(q.waiting_getters(), 4);
    for item in ["a", "b", "c", "d"] {
        q.put(item).unwrap();
    }
    // Hand-off: nobody ran yet, but every item is already spoken for.
    assert!(q.is_empty());
    assert_eq!(q.try_get(), Err(TryRecvError::Empty));
    joinall(&getters, None, None).unwrap();
    assert_eq!(log.events(), ["0:a", "1:b", "2:c", "3:d"]);
}

/// Ports gevent's `test__queue.py::TestQueue::test_waiters_that_cancel`,
/// `TestQueue::test_two_waiters_one_dies` and `TestQueue::test_two_bogus_waiters`, and the same
/// three of `TestSimpleQueue`: a waiter that times out takes nothing with it.
#[test]
fn getters_that_time_out_take_nothing() {
    let q = Queue::new();
    let bogus = |q: &Queue<&'static str>| {
        let q = q.clone();
        spawn(move || {
            let _t = Timeout::start(Some(Duration::ZERO));
            q.get()
        })
    };
    let (dying1, dying2) = (bogus(&q), bogus(&q));
    let live = {
        let q = q.clone();
        spawn(move || q.get())
    };
    sleep(Duration::from_millis(2));
    q.put("sent").unwrap();
    assert_eq!(dying1.get().unwrap(), Err(RecvError::TimedOut));
    assert_eq!(dying2.get().unwrap(), Err(RecvError::TimedOut));
    assert_eq!(live.get().unwrap(), Ok("sent"));
    q.put("hi").unwrap();
    assert_eq!(q.get().unwrap(), "hi");
}

/// A killed getter does not lose the item: it goes to the next getter.
#[test]
fn a_killed_getter_does_not_lose_an_item() {
    let q = Queue::new();
    let first = {
        let q = q.clone();
        spawn(move || q.get())
    };
    let second = {
        let q = q.clone();
        spawn(move || q.get())
    };
    yield_now();
    first.kill_nowait();
    q.put(42).unwrap();
    assert_eq!(second.get().unwrap(), Ok(42));
    assert!(matches!(first.get(), Err(JoinError::Killed)));
    assert!(q.is_empty());
}

/// Ports gevent's `test__queue.py::TestQueue::test_shutdown_all_methods_in_one_thread` (not
/// immediate): after close, puts fail and gets drain what is left, then fail.
#[test]
fn close_fails_puts_and_drains_gets() {
    let q = Queue::new();
    q.put("L").unwrap();
    q.try_put("O").unwrap();
    q.close();
    assert!(q.is_closed());
    assert!(matches!(q.put("E"), Err(SendError::Closed("E"))));
    assert!(matches!(q.try_put("W"), Err(TrySendError::Closed("W"))));
    assert_eq!(q.get(), Ok("L"));
    q.task_done().unwrap();
    assert_eq!(q.try_get(), Ok("O"));
    q.task_done().unwrap();
    q.join().unwrap();
    assert_eq!(q.get(), Err(RecvError::Closed));
    assert_eq!(q.try_get(), Err(TryRecvError::Closed));
    assert_eq!(
        q.get_timeout(Duration::from_secs(1)),
        Err(RecvError::Closed)
    );
    assert_eq!(q.peek(), Err(RecvError::Closed));
}

#[test]
fn close_wakes_blocked_getters_and_putters() {
    let empty = Queue::<u32>::new();
    let full = Queue::bounded(1);
    full.put(1).unwrap();
    let getter = {
        let q = empty.clone();
        spawn(move || q.get())
    };
    let putter = {
        let q = full.clone();
        spawn(move || q.put(2).map_err(SendError::into_inner))
    };
    yield_now();
    empty.close();
    full.close();
    assert_eq!(getter.get().unwrap(), Err(RecvError::Closed));
    assert_eq!(putter.get().unwrap(), Err(2));
    assert_eq!(full.get(), Ok(1));
    assert_eq!(full.get(), Err(RecvError::Closed));
}

/// Ports gevent's `test__queue.py::TestQueue::test_task_done` and `TestQueue::test_issue_45`.
#[test]
fn task_done_and_join() {
    let q = Queue::new();
    q.join().unwrap(); // nothing put: returns at once
    assert!(q.try_join());
    let putter = {
        let q = q.clone();
        spawn(move || q.put("X").unwrap())
    };
    assert_eq!(q.get().unwrap(), "X");
    putter.join().unwrap();
    assert_eq!(q.unfinished_tasks(), 1);
    assert!(q.join_timeout(SHORT).unwrap_err().is_timeout());
    let started = Instant::now();
    match q.join() {
        Err(WaitError::LoopExit(e)) => assert_loop_exit(&e, started),
        other => panic!("{other:?}"),
    }
    let worker = {
        let q = q.clone();
        spawn(move || q.task_done())
    };
    q.join().unwrap();
    worker.get().unwrap().unwrap();
    assert_eq!(q.unfinished_tasks(), 0);
    assert!(q.task_done().is_err());
}

#[test]
fn get_in_main_on_an_empty_queue_is_loop_exit() {
    let started = Instant::now();
    match LifoQueue::<u8>::new().get() {
        Err(RecvError::LoopExit(e)) => {
            assert_loop_exit(&e, started);
            assert!(
                e.waiting_on().contains("LifoQueue::get"),
                "{}",
                e.waiting_on()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn queue_get_timeout_and_try_get() {
    let q = PriorityQueue::<u8>::new();
    assert_eq!(q.try_get(), Err(TryRecvError::Empty));
    assert_eq!(q.get_timeout(SHORT), Err(RecvError::TimedOut));
    let putter = {
        let q = q.clone();
        spawn(move || {
            sleep(Duration::from_millis(1));
            q.put(9).unwrap();
        })
    };
    assert_eq!(q.get_timeout(Duration::from_secs(5)), Ok(9));
    putter.join().unwrap();
}

#[test]
fn queue_iter_ends_when_closed() {
    let q = Queue::new();
    let producer = {
        let q = q.clone();
        spawn(move || {
            for i in 0..5 {
                q.put(i).unwrap();
                yield_now();
            }
            q.close();
        })
    };
    assert_eq!(q.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    producer.join().unwrap();
}

// ----- Channels -----

/// Ports `test__queue.py::TestChannel::test_send`.
#[test]
fn channel_send_waits_for_the_receiver() {
    let ch = Channel::new();
    let log = Log::default();
    let g = {
        let (ch, log) = (ch.clone(), log.clone());
        spawn(move || {
            log.push(ch.recv().unwrap());
            log.push(ch.recv().unwrap());
        })
    };
    log.push("sending");
    ch.send("hello").unwrap();
    log.push("sent hello");
    ch.send("world").unwrap();
    log.push("sent world");
    assert_eq!(
        log.events(),
        ["sending", "hello", "sent hello", "world", "sent world"]
    );
    g.get().unwrap();
}

/// Ports `test__queue.py::TestChannel::test_wait`.
#[test]
fn channel_receiver_waits_for_the_sender() {
    let ch = Channel::new();
    let log = Log::default();
    let g = {
        let (ch, log) = (ch.clone(), log.clone());
        spawn(move || {
            log.push("sending hello");
            ch.send("hello").unwrap();
            log.push("sending world");
            ch.send("world").unwrap();
            log.push("sent world");
        })
    };
    log.push("waiting");
    log.push(ch.recv().unwrap());
    log.push(ch.recv().unwrap());
    assert_eq!(
        log.events(),
        [
            "waiting",
            "sending hello",
            "hello",
            "sending world",
            "world"
        ]
    );
    yield_now();
    assert_eq!(
        log.events(),
        [
            "waiting",
            "sending hello",
            "hello",
            "sending world",
            "world",
            "sent world"
        ]
    );
    g.get().unwrap();
}

/// Ports `test__queue.py::TestChannel::test_zero_max_size`: a send is not done until a
/// receiver takes the item.
#[test]
fn channel_send_blocks_until_a_receiver_comes() {
    let ch = Channel::new();
    let sent = AsyncResult::new();
    let sender = {
        let (ch, sent) = (ch.clone(), sent.clone());
        spawn(move || {
            ch.send("hi").unwrap();
            sent.set("done");
        })
    };
    sleep(Duration::from_millis(1));
    assert!(!sent.is_ready());
    assert_eq!(ch.waiting_senders(), 1);
    let receiver = {
        let ch = ch.clone();
        spawn(move || ch.recv())
    };
    assert_eq!(receiver.get().unwrap(), Ok("hi"));
    assert_eq!(sent.get().unwrap(), "done");
    sender.join().unwrap();
}

#[test]
fn channel_try_and_timeout_forms() {
    let ch = Channel::<u8>::new();
    assert!(matches!(ch.try_send(1), Err(TrySendError::Full(1))));
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    assert!(matches!(
        ch.send_timeout(2, SHORT),
        Err(SendError::TimedOut(2))
    ));
    assert_eq!(ch.recv_timeout(SHORT), Err(RecvError::TimedOut));
    let receiver = {
        let ch = ch.clone();
        spawn(move || ch.recv())
    };
    yield_now();
    ch.try_send(3).unwrap();
    assert_eq!(receiver.get().unwrap(), Ok(3));
    let started = Instant::now();
    match ch.recv() {
        Err(RecvError::LoopExit(e)) => assert_loop_exit(&e, started),
        other => panic!("{other:?}"),
    }
    match ch.send(4) {
        Err(SendError::LoopExit(4, e)) => assert_loop_exit(&e, started),
        other => panic!("{other:?}"),
    }
    ch.close();
    assert!(matches!(ch.send(5), Err(SendError::Closed(5))));
    assert_eq!(ch.recv(), Err(RecvError::Closed));
}

#[test]
fn channel_pair_closes_when_senders_are_gone() {
    let (tx, rx) = channel();
    let tx2 = tx.clone();
    tx.send(1).unwrap(); // unbounded: never waits
    tx2.send(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    drop(tx2);
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn channel_pair_send_fails_when_receivers_are_gone() {
    let (tx, rx) = sync_channel(0);
    let waiting = {
        let tx = tx.clone();
        spawn(move || tx.send("pending"))
    };
    yield_now();
    drop(rx);
    assert!(matches!(
        waiting.get().unwrap(),
        Err(SendError::Closed("pending"))
    ));
    assert!(matches!(tx.send("late"), Err(SendError::Closed("late"))));
    assert!(matches!(
        tx.try_send("late"),
        Err(TrySendError::Closed("late"))
    ));
}

#[test]
fn sync_channel_bounds_the_senders() {
    let (tx, rx) = sync_channel(1);
    let log = Log::default();
    let sender = {
        let log = log.clone();
        spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
                log.push(format!("sent {i}"));
            }
        })
    };
    yield_now();
    assert_eq!(log.events(), ["sent 0"]);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    sender.join().unwrap();
    assert!(rx.recv_timeout(SHORT).is_err());
}

#[test]
fn channel_ping_pong() {
    let (ping_tx, ping_rx) = sync_channel::<u32>(0);
    let (pong_tx, pong_rx) = sync_channel::<u32>(0);
    let ponger = spawn(move || {
        for n in ping_rx.iter() {
            pong_tx.send(n + 1).unwrap();
        }
    });
    let mut n = 0;
    for _ in 0..1000 {
        ping_tx.send(n).unwrap();
        n = pong_rx.recv().unwrap();
    }
    assert_eq!(n, 1000);
    drop(ping_tx);
    ponger.join().unwrap();
}

// ----- Semaphores and locks -----

/// Ports gevent's `test__semaphore.py::TestSemaphoreFair::test_fair_or_hangs`: if the
/// semaphore were not fair, two greenlets would keep passing it between themselves and the
/// test would hang instead of ending in `LoopExit`.
#[test]
fn semaphore_fair_or_hangs() {
    fn acquire_then_exit(sem: Semaphore, should_quit: Rc<Cell<bool>>) {
        sem.acquire().unwrap().forget();
        should_quit.set(true);
    }
    fn acquire_then_spawn(sem: Semaphore, should_quit: Rc<Cell<bool>>) {
        if should_quit.get() {
            return;
        }
        // Never satisfied for the last one: the test ends in LoopExit.
        match sem.acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => return,
        }
        let g = spawn(move || release_then_spawn(sem, should_quit));
        let _ = g.join();
    }
    fn release_then_spawn(sem: Semaphore, should_quit: Rc<Cell<bool>>) {
        sem.release();
        if should_quit.get() {
            return;
        }
        let g = spawn(move || acquire_then_spawn(sem, should_quit));
        let _ = g.join();
    }
    let sem = Semaphore::new(1);
    let should_quit = Rc::new(Cell::new(false));
    let go = |f: fn(Semaphore, Rc<Cell<bool>>)| {
        let (sem, q) = (sem.clone(), should_quit.clone());
        spawn(move || f(sem, q))
    };
    let keep_going1 = go(acquire_then_spawn);
    let keep_going2 = go(acquire_then_spawn);
    let exiting = go(acquire_then_exit);
    let started = Instant::now();
    let r = joinall(
        &[keep_going1.clone(), keep_going2.clone(), exiting.clone()],
        None,
        None,
    );
    let e = r.unwrap_err();
    assert_loop_exit(&e, started);
    assert!(exiting.is_ready());
    assert!(keep_going2.is_ready());
    assert!(!keep_going1.is_ready());
}

/// Waiters get permits in arrival order, and a greenlet that runs between a release and the
/// waiter's wake-up cannot take the permit.
#[test]
fn semaphore_hands_permits_to_waiters_in_order() {
    let sem = Semaphore::new(0);
    let log = Log::default();
    let waiters: Vec<_> = (0..5)
        .map(|i| {
            let (sem, log) = (sem.clone(), log.clone());
            spawn(move || {
                sem.acquire().unwrap().forget();
                log.push(i);
            })
        })
        .collect();
    yield_now();
    for _ in 0..5 {
        sem.release();
        // Barging: the permit is already spoken for.
        assert!(sem.try_acquire().is_none());
    }
    assert_eq!(sem.available_permits(), 0);
    joinall(&waiters, None, None).unwrap();
    assert_eq!(log.events(), ["0", "1", "2", "3", "4"]);
    sem.release();
    assert!(sem.try_acquire().is_some());
}

/// A killed or timed-out waiter does not take a permit with it.
#[test]
fn semaphore_waiter_that_leaves_takes_no_permit() {
    let sem = Semaphore::new(0);
    let killed = {
        let sem = sem.clone();
        spawn(move || sem.acquire().map(SemaphoreGuard::forget))
    };
    let impatient = {
        let sem = sem.clone();
        spawn(move || sem.acquire_timeout(Duration::from_millis(1)).map(drop))
    };
    let patient = {
        let sem = sem.clone();
        spawn(move || sem.acquire().map(SemaphoreGuard::forget))
    };
    yield_now();
    killed.kill().unwrap();
    assert_eq!(impatient.get().unwrap(), Err(WaitError::TimedOut));
    sem.release();
    patient.get().unwrap().unwrap();
    assert_eq!(sem.available_permits(), 0);
    sem.release();
    assert_eq!(sem.available_permits(), 1);
}

/// Ports `test__semaphore.py::TestSemaphore::test_acquire_returns_false_after_timeout`.
#[test]
fn semaphore_try_and_timeout_forms() {
    let sem = Semaphore::new(0);
    assert!(sem.is_locked());
    assert!(sem.try_acquire().is_none());
    assert_eq!(sem.acquire_timeout(SHORT).unwrap_err(), WaitError::TimedOut);
    let started = Instant::now();
    match sem.acquire() {
        Err(WaitError::LoopExit(e)) => assert_loop_exit(&e, started),
        other => panic!("{other:?}"),
    }
    sem.release();
    sem.release();
    assert_eq!(sem.available_permits(), 2);
    let a = sem.acquire_timeout(SHORT).unwrap();
    let b = sem.acquire().unwrap();
    assert_eq!(sem.available_permits(), 0);
    drop((a, b));
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn bounded_semaphore_over_release_is_an_error() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(), Err(ReleaseError::Overflow { limit: 2 }));
    sem.acquire().unwrap().forget();
    sem.try_acquire().unwrap().forget();
    assert!(sem.try_acquire().is_none());
    assert_eq!(sem.acquire_timeout(SHORT).unwrap_err(), WaitError::TimedOut);
    sem.release().unwrap();
    sem.release().unwrap();
    let err = sem.release().unwrap_err();
    assert!(err.to_string().contains("released too many times"), "{err}");
    assert_eq!(sem.available_permits(), 2);
}

/// Regression: a greenlet killed while it held a permit kept it (measured: 0 of 1 permits
/// left); its guard now gives it back as the kill unwinds its stack, and the next waiter gets it.
#[test]
fn semaphore_permit_of_a_killed_holder_comes_back() {
    for bounded in [false, true] {
        let (sem, bsem) = (Semaphore::new(1), BoundedSemaphore::new(1));
        let holder = {
            let (sem, bsem) = (sem.clone(), bsem.clone());
            spawn(move || {
                let _a = sem.acquire().unwrap();
                let _b = bsem.acquire().unwrap();
                sleep(Duration::from_secs(3600));
            })
        };
        let next = {
            let (sem, bsem) = (sem.clone(), bsem.clone());
            spawn(move || {
                if bounded {
                    bsem.acquire().map(drop)
                } else {
                    sem.acquire().map(drop)
                }
            })
        };
        yield_now();
        assert_eq!((sem.available_permits(), bsem.available_permits()), (0, 0));
        holder.kill().unwrap();
        next.get().unwrap().unwrap();
        assert_eq!((sem.available_permits(), bsem.available_permits()), (1, 1));
    }
}

/// A guard given back after the permit was released by hand does not push a bounded
/// semaphore over its limit.
#[test]
fn bounded_semaphore_guard_after_manual_release_stays_bounded() {
    let sem = BoundedSemaphore::new(1);
    let guard = sem.acquire().unwrap();
    sem.release().unwrap();
    drop(guard);
    assert_eq!(sem.available_permits(), 1);
    assert!(format!("{:?}", sem.try_acquire().unwrap()).contains("SemaphoreGuard"));
}

#[test]
fn lock_is_fifo_and_guarded() {
    let lock = Lock::new();
    let log = Log::default();
    let guard = lock.lock().unwrap();
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let (lock, log) = (lock.clone(), log.clone());
            spawn(move || {
                let _g = lock.lock().unwrap();
                log.push(format!("{i} in"));
                yield_now();
                log.push(format!("{i} out"));
            })
        })
        .collect();
    yield_now();
    assert!(lock.try_lock().is_none());
    assert_eq!(lock.lock_timeout(SHORT).unwrap_err(), WaitError::TimedOut);
    drop(guard);
    joinall(&hs, None, None).unwrap();
    assert_eq!(
        log.events(),
        ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]
    );
    assert!(!lock.is_locked());
}

#[test]
fn lock_relocked_by_its_holder_in_main_is_loop_exit() {
    let lock = Lock::new();
    let _held = lock.lock().unwrap();
    let started = Instant::now();
    match lock.lock() {
        Err(WaitError::LoopExit(e)) => assert_loop_exit(&e, started),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lock_raw_acquire_release() {
    let lock = Lock::new();
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    lock.acquire().unwrap();
    assert!(!lock.try_acquire());
    assert!(lock.acquire_timeout(SHORT).is_err());
    // As in gevent, any greenlet may release a Lock.
    let other = lock.clone();
    spawn(move || other.release()).get().unwrap().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn rlock_is_reentrant_for_its_owner_only() {
    let lock = RLock::new();
    let a = lock.lock().unwrap();
    let b = lock.lock().unwrap();
    assert!(lock.try_acquire());
    assert!(lock.is_owned());
    let other = {
        let lock = lock.clone();
        spawn(move || {
            let not_owner = lock.release();
            let tried = lock.try_lock().is_some();
            let timed = lock.lock_timeout(Duration::from_millis(1)).map(drop);
            let waited = lock.lock().map(|_| "got it");
            (not_owner, tried, timed, waited)
        })
    };
    yield_now();
    lock.release().unwrap();
    drop(b);
    assert!(lock.is_locked());
    sleep(Duration::from_millis(3));
    drop(a);
    assert!(!lock.is_locked());
    let (not_owner, tried, timed, waited) = other.get().unwrap();
    assert_eq!(not_owner, Err(ReleaseError::NotOwner));
    assert!(!tried);
    assert_eq!(timed, Err(WaitError::TimedOut));
    assert_eq!(waited, Ok("got it"));
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
}

#[test]
fn rlock_waiters_are_served_in_order() {
    let lock = RLock::new();
    let log = Log::default();
    let held = lock.lock().unwrap();
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let (lock, log) = (lock.clone(), log.clone());
            spawn(move || {
                let _outer = lock.lock().unwrap();
                let _inner = lock.lock().unwrap();
                log.push(i);
                yield_now();
            })
        })
        .collect();
    yield_now();
    drop(held);
    joinall(&hs, None, None).unwrap();
    assert_eq!(log.events(), ["0", "1", "2"]);
}

#[test]
fn errors_display_and_compare() {
    assert_eq!(
        RecvError::Closed.to_string(),
        "receiving on a closed and empty queue or channel"
    );
    assert_eq!(format!("{:?}", SendError::Closed(vec![1u8])), "Closed(..)");
    assert_eq!(SendError::TimedOut(3).into_inner(), 3);
    assert_eq!(TrySendError::Full(4).into_inner(), 4);
    assert!(
        ReleaseError::NotOwner
            .to_string()
            .contains("another greenlet")
    );
    let e: Box<dyn std::error::Error> = Box::new(WaitError::TimedOut);
    assert_eq!(e.to_string(), "timed out waiting");
}

#[test]
fn only_the_sender_crosses_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<greenlet::sync::AsyncSender<String>>();
    send_sync::<AsyncError>();
    send_sync::<WaitError>();
}

/// `sync_channel(0)` is a rendezvous in Go's order: a send to a waiting receiver hands the item
/// over and goes on; `Channel` (gevent's order) lets the receiver run first.
#[test]
fn sync_channel_zero_hands_over_and_goes_on() {
    let (tx, rx) = sync_channel(0);
    let log = Log::default();
    let receiver = {
        let log = log.clone();
        spawn(move || log.push(rx.recv().unwrap()))
    };
    yield_now();
    tx.send("item").unwrap();
    log.push("sent");
    receiver.join().unwrap();
    assert_eq!(log.events(), ["sent", "item"]);
}

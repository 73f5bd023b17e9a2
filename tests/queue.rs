//! Queues and channels: ports of gevent's `test__queue.py` that `tests/sync.rs` and
//! `tests/waits.rs` do not already hold.
//!
//! gevent's `SimpleQueue` and `Queue` (joinable) are one type here, `Queue`, so a port names
//! both classes. gevent calls `put_nowait`/`get_nowait` from hub callbacks
//! (`loop.run_callback`), which have no counterpart; the calls are made from the test's
//! greenlet, which is what matters: they never block.

mod util;

use std::time::Duration;

use greenlet::sync::{Channel, Queue, RecvError, TryRecvError, TrySendError};

/// Ports gevent's `test__queue.py::TestSimpleQueue::test_put_nowait_simple` and
/// `TestQueue::test_put_nowait_simple`: into a queue of one, the first non-blocking put
/// fits and the second finds it full.
#[test]
fn try_put_fills_a_queue_of_one() {
    let q = Queue::bounded(1);
    assert_eq!(q.try_put(2), Ok(()));
    assert_eq!(q.try_put(3), Err(TrySendError::Full(3)));
    assert_eq!(q.try_get(), Ok(2));
}

/// Ports gevent's `test__queue.py::TestChannel::test_put_nowait_simple`: a channel holds
/// nothing, so a non-blocking send with no receiver waiting never fits.
#[test]
fn try_send_on_a_channel_without_a_receiver_is_full() {
    let ch = Channel::new();
    assert_eq!(ch.try_send(2), Err(TrySendError::Full(2)));
    assert_eq!(ch.try_send(3), Err(TrySendError::Full(3)));
}

/// Ports gevent's `test__queue.py::TestSimpleQueue::test_put_nowait_unlock` and
/// `TestQueue::test_put_nowait_unlock`: a non-blocking put hands the item to a getter that
/// waits, which is then done; the queue stays empty.
#[test]
fn try_put_wakes_a_waiting_getter() {
    let q = Queue::new();
    let p = {
        let q = q.clone();
        greenlet::spawn(move || q.get())
    };
    assert!(q.is_empty() && !q.is_full());
    greenlet::sleep(Duration::from_millis(1));
    assert!(q.is_empty() && !q.is_full());
    assert_eq!(q.try_put(10), Ok(()));
    assert!(!p.is_ready());
    greenlet::sleep(Duration::from_millis(1));
    assert!(p.is_ready());
    assert_eq!(p.get().unwrap(), Ok(10));
    assert!(q.is_empty());
}

/// Ports gevent's `test__queue.py::TestChannel::test_put_nowait_unlock`: a non-blocking send
/// succeeds when a receiver waits, and wakes it.
#[test]
fn try_send_wakes_a_waiting_receiver() {
    let ch = Channel::new();
    let p = {
        let ch = ch.clone();
        greenlet::spawn(move || ch.recv())
    };
    greenlet::sleep(Duration::from_millis(1));
    assert_eq!(ch.waiting_receivers(), 1);
    assert_eq!(ch.try_send(10), Ok(()));
    assert!(!p.is_ready());
    greenlet::sleep(Duration::from_millis(1));
    assert_eq!(p.get().unwrap(), Ok(10));
}

/// Ports gevent's `test__queue.py::TestSimpleQueue::test_send_last`,
/// `TestQueue::test_send_last` and `TestChannel::test_send_last`: a getter that waits (under a
/// timeout) receives an item put later, in time.
#[test]
fn a_waiting_getter_receives_a_later_put() {
    let q = Queue::new();
    let waiter = {
        let q = q.clone();
        greenlet::spawn(move || {
            let got = greenlet::with_timeout(util::NOT_HANGING, || q.get());
            assert_eq!(got, Ok(Ok("hi2")));
            "OK"
        })
    };
    greenlet::sleep(Duration::from_millis(2));
    q.put("hi2").unwrap();
    greenlet::sleep(Duration::from_millis(2));
    assert_eq!(waiter.try_get().unwrap(), "OK");

    let ch = Channel::new();
    let waiter = {
        let ch = ch.clone();
        greenlet::spawn(move || {
            let got = greenlet::with_timeout(util::NOT_HANGING, || ch.recv());
            assert_eq!(got, Ok(Ok("hi2")));
            "OK"
        })
    };
    greenlet::sleep(Duration::from_millis(2));
    ch.send("hi2").unwrap();
    greenlet::sleep(Duration::from_millis(2));
    assert_eq!(waiter.try_get().unwrap(), "OK");
}

/// Ports gevent's `test__queue.py::TestSimpleQueue::test_get_nowait_simple` and
/// `TestQueue::test_get_nowait_simple`: a non-blocking get takes the item, the next finds the
/// queue empty.
#[test]
fn try_get_takes_then_finds_empty() {
    let q = Queue::bounded(1);
    q.put(4).unwrap();
    assert_eq!(q.try_get(), Ok(4));
    assert_eq!(q.try_get(), Err(TryRecvError::Empty));
}

/// Ports gevent's `test__queue.py::TestSimpleQueue::test_get_nowait_unlock` and
/// `TestQueue::test_get_nowait_unlock`: a greenlet's put fills a queue of one; a non-blocking
/// get empties it, and the putter is long done.
#[test]
fn try_get_empties_a_queue_filled_by_another_greenlet() {
    let q = Queue::bounded(1);
    let p = {
        let q = q.clone();
        greenlet::spawn(move || q.put(5).unwrap())
    };
    assert!(q.is_empty());
    greenlet::yield_now();
    assert!(q.is_full());
    assert_eq!(q.try_get(), Ok(5));
    greenlet::yield_now();
    assert!(q.is_empty());
    assert!(p.is_ready() && p.greenlet().is_dead());
}

/// Ports gevent's `test__queue.py::TestChannel::test_get_nowait_unlock_channel`: a sender
/// waits on a channel (nothing is held); a non-blocking receive takes its item and lets it go
/// on.
#[test]
fn try_recv_takes_from_a_waiting_sender() {
    let ch = Channel::new();
    let p = {
        let ch = ch.clone();
        greenlet::spawn(move || ch.send(5).unwrap())
    };
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    greenlet::sleep(Duration::from_millis(1));
    assert_eq!(ch.waiting_senders(), 1);
    assert_eq!(ch.try_recv(), Ok(5));
    greenlet::sleep(Duration::from_millis(1));
    assert!(p.is_ready() && p.greenlet().is_dead());
    assert_eq!(ch.waiting_senders(), 0);
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
}

/// Ports gevent's `test__queue.py::TestSimpleQueue::test_senders_that_die` and
/// `TestQueue::test_senders_that_die`: an item put by a greenlet that then ends is still there
/// for the getter.
#[test]
fn an_item_outlives_the_greenlet_that_put_it() {
    let q = Queue::new();
    let sender = {
        let q = q.clone();
        greenlet::spawn(move || q.put("sent").unwrap())
    };
    sender.join().unwrap();
    assert!(sender.greenlet().is_dead());
    assert_eq!(q.get(), Ok("sent"));
}

/// Ports gevent's `test__queue.py::TestChannel::test_iterable`: iterating a channel ends when
/// it is told to stop (gevent sends `StopIteration`; here the sender closes the channel).
#[test]
fn iterating_a_channel_ends_when_it_is_closed() {
    let ch = Channel::<u32>::new();
    let closer = {
        let ch = ch.clone();
        greenlet::spawn(move || ch.close())
    };
    assert_eq!(ch.iter().collect::<Vec<_>>(), Vec::<u32>::new());
    closer.join().unwrap();
    assert_eq!(ch.recv(), Err(RecvError::Closed));
}

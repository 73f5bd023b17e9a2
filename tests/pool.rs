//! `greenlet::pool`: groups and bounded pools of greenlets, and mapping over them.
//!
//! Ports of gevent's `test__pool.py` say so. Orders are forced with events, not with timing.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::pool::{Group, Pool};
use greenlet::sync::{Event, WaitError};
use greenlet::{JoinError, sleep, spawn, yield_now};

/// Counts the greenlets inside a section, and the most there ever were at once.
#[derive(Clone, Default)]
struct Gauge {
    now: Rc<Cell<usize>>,
    most: Rc<Cell<usize>>,
    done: Rc<Cell<usize>>,
}

impl Gauge {
    fn enter(&self) {
        self.now.set(self.now.get() + 1);
        self.most.set(self.most.get().max(self.now.get()));
    }
    fn leave(&self) {
        self.now.set(self.now.get() - 1);
        self.done.set(self.done.get() + 1);
    }
}

const SHORT: Duration = Duration::from_millis(5);

/// A pool never runs more than its size, and a spawn into a full pool waits for a member to
/// finish.
#[test]
fn pool_bounds_concurrency_and_blocks_the_spawner() {
    let pool = Pool::new(2);
    let gauge = Gauge::default();
    for i in 0..6 {
        let g = gauge.clone();
        pool.spawn(move || {
            g.enter();
            yield_now();
            yield_now();
            g.leave();
        })
        .unwrap();
        // The first two spawns do not wait; each later one waits for one more to finish.
        assert!(gauge.done.get() + 1 >= i, "spawn {i} did not wait");
        assert!(pool.len() <= 2);
    }
    pool.join().unwrap();
    assert_eq!(gauge.most.get(), 2);
    assert_eq!(gauge.done.get(), 6);
    assert!(pool.is_empty());
    assert_eq!(pool.free_count(), 2);
}

/// Ports gevent's `test__pool.py::PoolBasicTests::test_execute_async` (`apply_async` there,
/// `spawn` here: the same greenlets).
#[test]
fn pool_free_count_follows_its_members() {
    let p = Pool::new(2);
    assert_eq!(p.free_count(), 2);
    let r = Rc::new(RefCell::new(Vec::new()));
    let push = |n| {
        let r = r.clone();
        move || r.borrow_mut().push(n)
    };
    let first = p.spawn(push(1)).unwrap();
    assert_eq!(p.free_count(), 1);
    first.get().unwrap();
    assert_eq!(*r.borrow(), [1]);
    assert_eq!(p.free_count(), 2);
    p.spawn(push(2)).unwrap();
    assert_eq!(p.free_count(), 1);
    p.spawn(push(3)).unwrap();
    assert_eq!(p.free_count(), 0);
    assert!(p.is_full());
    assert_eq!(*r.borrow(), [1]);
    // The pool is full: this spawn waits, letting the others run.
    p.spawn(push(4)).unwrap();
    assert_eq!(*r.borrow(), [1, 2, 3]);
    p.join().unwrap();
    assert_eq!(*r.borrow(), [1, 2, 3, 4]);
}

/// Ports gevent's `test__pool.py::PoolBasicTests::test_discard`.
#[test]
fn pool_discard_returns_the_slot() {
    let p = Pool::new(1);
    let first = p.spawn(|| sleep(Duration::from_secs(1000))).unwrap();
    assert!(p.contains(&first));
    assert!(p.discard(&first));
    assert!(!p.discard(&first));
    first.kill().unwrap();
    assert!(p.is_empty());
    assert_eq!(p.free_count(), 1);
}

/// Ports gevent's `test__pool.py::PoolBasicTests::test_add_method`,
/// `PoolBasicTests::test_add_method_non_blocking` and `PoolBasicTests::test_add_method_timeout`.
#[test]
fn pool_add_waits_while_full() {
    let p = Pool::new(1);
    let first = spawn(|| sleep(Duration::from_secs(1000)));
    let second = spawn(|| sleep(Duration::from_secs(1000)));
    assert_eq!(p.free_count(), 1);
    p.add(&first).unwrap();
    p.add(&first).unwrap(); // already in: no second slot
    assert_eq!(p.free_count(), 0);
    assert_eq!(p.len(), 1);
    assert!(!p.try_add(&second));
    assert_eq!(p.add_timeout(&second, SHORT), Err(WaitError::TimedOut));
    {
        let _t = greenlet::Timeout::start(Some(SHORT));
        assert_eq!(p.add(&second), Err(WaitError::TimedOut));
    }
    assert_eq!(p.len(), 1);
    first.kill().unwrap();
    assert!(p.is_empty());
    assert!(p.try_add(&second));
    p.kill().unwrap();
    assert!(matches!(second.get(), Err(JoinError::Killed)));
}

/// Ports gevent's `test__pool.py::TestPool0::test_wait_full`.
#[test]
fn pool_of_zero_is_always_full() {
    let p = Pool::new(0);
    assert_eq!(p.free_count(), 0);
    assert!(p.is_full());
    assert_eq!(p.wait_available_timeout(SHORT), Err(WaitError::TimedOut));
    assert!(p.try_spawn(|| ()).is_none());
    assert_eq!(
        p.spawn_timeout(SHORT, || ()).unwrap_err(),
        WaitError::TimedOut
    );
    let started = Instant::now();
    match p.spawn(|| ()) {
        Err(WaitError::LoopExit(e)) => {
            assert!(e.to_string().contains("would block forever"));
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pool_wait_available() {
    let p = Pool::new(1);
    assert_eq!(p.wait_available().unwrap(), 1);
    let gate = Event::new();
    let g = gate.clone();
    p.spawn(move || g.wait().unwrap()).unwrap();
    assert_eq!(p.try_wait_available(), 0);
    assert!(p.wait_available_timeout(SHORT).unwrap_err().is_timeout());
    let g = gate.clone();
    spawn(move || g.set());
    assert_eq!(p.wait_available().unwrap(), 1);
}

/// Ports gevent's `test__pool.py::TestSpawn::test` and `TestSpawn::testSpawnAndWait`: a spawn
/// into a full pool of one waits until the member finishes, so the pool never holds two; a
/// join with a short timeout gives up on a full pool, a plain join waits until it is empty.
#[test]
fn pool_join_timeout_then_join() {
    let p = Pool::new(1);
    assert_eq!(p.len(), 0);
    let first = p.spawn(|| sleep(Duration::from_millis(20))).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p.join_timeout(Duration::from_millis(1)),
        Err(WaitError::TimedOut)
    );
    assert!(!p.try_join());
    p.spawn(|| sleep(Duration::from_millis(1))).unwrap(); // waits for the first
    assert!(first.is_ready());
    assert_eq!(p.len(), 1);
    p.join().unwrap();
    assert_eq!(p.len(), 0);
}

/// Ports gevent's `test__pool.py::PoolBasicTests::test_start_method_timeout`: adding a
/// greenlet that has not started yet to a full pool gives up at the timeout; the pool keeps
/// only its member.
#[test]
fn pool_add_timeout_of_an_unstarted_greenlet() {
    let p = Pool::new(1);
    let first = spawn(|| sleep(Duration::from_secs(1000)));
    p.add(&first).unwrap();
    let second = greenlet::spawn_later(Duration::from_secs(1000), || ());
    assert_eq!(p.add_timeout(&second, SHORT), Err(WaitError::TimedOut));
    assert_eq!(p.len(), 1);
    assert!(!p.contains(&second));
    second.kill().unwrap();
    first.kill().unwrap();
}

/// Ports gevent's `test__pool.py::TestJoinEmpty::test`.
#[test]
fn joining_an_empty_group_returns_at_once() {
    Group::new().join().unwrap();
    Pool::new(3).join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// gevent's `TestPool`, run as gevent runs it against `TestPool` (size 1), `TestPool2`,
// `TestPool3`, `TestPool10` and `TestPoolUnlimit` (no bound: here a `Group`). Each test below
// ports one case for all five classes. (`test_apply` and the `test_async*` cases need
// `apply`/`apply_async`, see `tests/PORTED.md`.)

/// Runs `$body` with `$p` bound to each of gevent's five test pools and `$size` to its bound.
macro_rules! for_each_test_pool {
    (|$p:ident, $size:ident| $body:block) => {{
        for size in [1usize, 2, 3, 10] {
            let $size = Some(size);
            let $p = Pool::new(size);
            $body
        }
        {
            let $size: Option<usize> = None;
            let $p = Group::new();
            $body
        }
    }};
}

/// gevent's `sqr`: the square, after an optional sleep.
fn sqr(x: u64, wait: Duration) -> u64 {
    if !wait.is_zero() {
        sleep(wait);
    }
    x * x
}

/// A sleep of 0 to 9 ms that depends on `x` in a scrambled way (gevent's `random.random()`
/// sleeps, made repeatable).
fn scrambled(x: u64) -> Duration {
    Duration::from_millis(x.wrapping_mul(7919).wrapping_add(13) % 10)
}

fn squares(n: u64) -> Vec<u64> {
    (0..n).map(|x| x * x).collect()
}

/// Ports gevent's `test__pool.py::TestPool::test_map`, `TestPool2::test_map`,
/// `TestPool3::test_map`, `TestPool10::test_map` and `TestPoolUnlimit::test_map`: results keep
/// the order of the items, and no more than the pool's size run at once.
#[test]
fn map_keeps_order_and_bounds_concurrency() {
    for_each_test_pool!(|pool, size| {
        for n in [10, 100] {
            let gauge = Gauge::default();
            let g = gauge.clone();
            let got = pool
                .map(0..n, move |x| {
                    g.enter();
                    if x % 3 == 0 {
                        yield_now();
                    }
                    g.leave();
                    x * x
                })
                .unwrap();
            assert_eq!(got, squares(n));
            if let Some(size) = size {
                assert!(gauge.most.get() <= size, "{} > {size}", gauge.most.get());
            }
            assert!(pool.is_empty());
        }
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_list_small`,
/// `TestPool2::test_imap_list_small`, `TestPool3::test_imap_list_small`,
/// `TestPool10::test_imap_list_small` and `TestPoolUnlimit::test_imap_list_small`.
#[test]
fn imap_small_collects_in_order() {
    for_each_test_pool!(|pool, _size| {
        let got: Vec<u64> = pool
            .imap(0..10, |x| sqr(x, Duration::ZERO))
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, squares(10));
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_it_small` and `test_imap_it_large`, and
/// the same two of `TestPool2`, `TestPool3`, `TestPool10` and `TestPoolUnlimit`: item by item,
/// then the end.
#[test]
fn imap_step_by_step_then_the_end() {
    for_each_test_pool!(|pool, _size| {
        for n in [10u64, 1000] {
            let mut it = pool.imap(0..n, |x| {
                yield_now();
                x * x
            });
            for i in 0..n {
                assert_eq!(it.next().unwrap().unwrap(), i * i);
            }
            assert!(it.next().is_none());
        }
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_random`, `TestPool2::test_imap_random`,
/// `TestPool3::test_imap_random`, `TestPool10::test_imap_random` and
/// `TestPoolUnlimit::test_imap_random`: items that take scrambled times come out in item
/// order.
#[test]
fn imap_of_scrambled_durations_keeps_item_order() {
    for_each_test_pool!(|pool, _size| {
        let got: Vec<u64> = pool
            .imap(0..10, |x| sqr(x, scrambled(x)))
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, squares(10));
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_unordered` and
/// `test_imap_unordered_random`, and the same two of `TestPool2`, `TestPool3`, `TestPool10` and
/// `TestPoolUnlimit`: every result comes out once, in some order.
#[test]
fn imap_unordered_gives_every_result_once() {
    for_each_test_pool!(|pool, _size| {
        for _ in 0..2 {
            let mut got: Vec<u64> = pool
                .imap_unordered(0..1000, |x| sqr(x, Duration::ZERO))
                .map(Result::unwrap)
                .collect();
            got.sort_unstable();
            assert_eq!(got, squares(1000));
        }
        let mut got: Vec<u64> = pool
            .imap_unordered(0..10, |x| sqr(x, scrambled(x)))
            .map(Result::unwrap)
            .collect();
        got.sort_unstable();
        assert_eq!(got, squares(10));
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_empty_imap_unordered`, `test_empty_imap` and
/// `test_empty_map`, and the same three of `TestPool2`, `TestPool3`, `TestPool10` and
/// `TestPoolUnlimit`.
#[test]
fn mapping_nothing_gives_nothing() {
    for_each_test_pool!(|pool, _size| {
        assert_eq!(pool.map(Vec::<u8>::new(), |x| x).unwrap(), Vec::<u8>::new());
        assert_eq!(pool.imap(0..0, |x: i32| x).count(), 0);
        assert_eq!(pool.imap_unordered(0..0, |x: i32| x).count(), 0);
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_terminate`, `TestPool2::test_terminate`,
/// `TestPool3::test_terminate`, `TestPool10::test_terminate` and
/// `TestPoolUnlimit::test_terminate`: killing the pool while a map over it runs (in another
/// greenlet) ends the members at once, and the map with them.
#[test]
fn killing_a_pool_ends_a_running_map() {
    for_each_test_pool!(|pool, size| {
        let n = 2 * size.unwrap_or(10);
        let mapper = {
            let pool = pool.clone();
            spawn(move || pool.map(0..n, |_| sleep(Duration::from_secs(3600))))
        };
        sleep(Duration::from_millis(1));
        assert!(!pool.is_empty());
        pool.kill().unwrap();
        assert!(matches!(mapper.get().unwrap(), Err(JoinError::Killed)));
        pool.join().unwrap();
        assert!(pool.is_empty());
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_unordered_sleep`: with a pool of one,
/// items finish in item order whatever their durations.
#[test]
fn imap_unordered_with_a_pool_of_one_is_sequential() {
    let pool = Pool::new(1);
    let got: Vec<u64> = pool
        .imap_unordered([20u64, 1, 2], |ms| {
            sleep(Duration::from_millis(ms));
            ms
        })
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [20, 1, 2]);
}

/// Ports gevent's `test__pool.py::TestPool2::test_imap_unordered_sleep`,
/// `TestPool3::test_imap_unordered_sleep`, `TestPool10::test_imap_unordered_sleep` and
/// `TestPoolUnlimit::test_imap_unordered_sleep` (the long item forced last with an event
/// instead of a long sleep): `imap_unordered` yields in completion order, `imap` in item order.
#[test]
fn imap_unordered_yields_in_completion_order() {
    for_each_test_pool!(|pool, size| {
        // A pool of one is sequential: the test above.
        let orders: &[bool] = if size == Some(1) { &[] } else { &[false, true] };
        for &ordered in orders {
            let gate = Event::new();
            let done = Rc::new(Cell::new(0));
            let releaser = {
                let (gate, done) = (gate.clone(), done.clone());
                spawn(move || {
                    while done.get() < 2 {
                        yield_now();
                    }
                    gate.set();
                })
            };
            let f = {
                let (gate, done) = (gate.clone(), done.clone());
                move |x: u64| {
                    if x == 10 {
                        gate.wait().unwrap();
                    } else {
                        yield_now();
                        done.set(done.get() + 1);
                    }
                    x.to_string()
                }
            };
            let items = [10u64, 1, 2];
            let got: Vec<String> = if ordered {
                pool.imap(items, f).map(Result::unwrap).collect()
            } else {
                pool.imap_unordered(items, f).map(Result::unwrap).collect()
            };
            let want = if ordered {
                ["10", "1", "2"]
            } else {
                ["1", "2", "10"]
            };
            assert_eq!(got, want, "size {size:?}, ordered {ordered}");
            releaser.join().unwrap();
        }
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_no_stop` and `test_imap_unordered_no_stop`,
/// and the same two of `TestPool2`, `TestPool3`, `TestPool10` and `TestPoolUnlimit`: the items
/// come from a queue that blocks until it is closed later (gevent puts `StopIteration`).
#[test]
fn imap_over_a_queue_ends_when_it_closes() {
    for_each_test_pool!(|pool, _size| {
        for ordered in [true, false] {
            let q = greenlet::sync::Queue::new();
            q.put(123u32).unwrap();
            let closer = {
                let q = q.clone();
                greenlet::spawn_later(Duration::from_millis(2), move || q.close())
            };
            let got: Vec<u32> = if ordered {
                pool.imap(q.iter(), |x| x).map(Result::unwrap).collect()
            } else {
                pool.imap_unordered(q.iter(), |x| x)
                    .map(Result::unwrap)
                    .collect()
            };
            assert_eq!(got, [123]);
            closer.join().unwrap();
        }
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_final_sleep` and
/// `test_imap_unordered_final_sleep`, and the same two of `TestPool2`, `TestPool3`,
/// `TestPool10` and `TestPoolUnlimit`: the items' iterator may itself block after its last
/// item.
#[test]
fn imap_items_may_block() {
    for_each_test_pool!(|pool, _size| {
        for ordered in [true, false] {
            let items = (0..4u64)
                .inspect(|&i| {
                    if i == 3 {
                        sleep(Duration::from_millis(2));
                    }
                })
                .take_while(|&i| i < 3);
            let mut got: Vec<u64> = if ordered {
                pool.imap(items, |x| x * x).map(Result::unwrap).collect()
            } else {
                pool.imap_unordered(items, |x| x * x)
                    .map(Result::unwrap)
                    .collect()
            };
            got.sort_unstable();
            assert_eq!(got, [0, 1, 4]);
        }
    });
}

/// Ports gevent's `test__pool.py::TestPool::test_imap_unordered_bounded_queue` and the same
/// case of `TestPool2`, `TestPool3`, `TestPool10` and `TestPoolUnlimit`, with this crate's
/// rule: gevent bounds how far the mapping runs ahead of a slow reader with `maxsize=1` (at
/// most two items ahead, whatever the pool). Here `imap` has no `maxsize`: it starts items
/// only while its reader asks for the next one, and only as the pool has room, so it runs at
/// most the pool's size ahead (two for `TestPool2`, one for `TestPool`, more for bigger pools),
/// and a `Group`, which has no bound, starts everything at once.
#[test]
fn imap_runs_at_most_the_pools_size_ahead_of_its_reader() {
    for_each_test_pool!(|pool, size| {
        for ordered in [false, true] {
            let running = Rc::new(Cell::new(0usize));
            let r = running.clone();
            let f = move |i: usize| {
                r.set(r.get() + 1);
                i
            };
            let mut got = Vec::new();
            let mut most_ahead = 0;
            let mut check = |i: usize, x: usize| {
                most_ahead = most_ahead.max(running.get() - i);
                got.push(x);
                sleep(Duration::from_millis(1)); // a slow reader
            };
            if ordered {
                for (i, x) in pool.imap(0..100, f).enumerate() {
                    check(i, x.unwrap());
                }
            } else {
                for (i, x) in pool.imap_unordered(0..100, f).enumerate() {
                    check(i, x.unwrap());
                }
            }
            got.sort_unstable();
            assert_eq!(got, (0..100).collect::<Vec<_>>());
            match size {
                Some(size) => assert!(most_ahead <= size, "{most_ahead} ahead with size {size}"),
                None => assert_eq!(most_ahead, 100, "a group starts every item at once"),
            }
        }
    });
}

/// Ports gevent's `test__pool.py::TestErrorInHandler::test_map`, `TestErrorInHandler::test_imap`
/// and `TestErrorInHandler::test_imap_unordered`: a failing item is an error in its place; the
/// others go on.
#[test]
fn imap_reports_a_panicking_item_in_its_place() {
    let pool = Pool::new(1);
    let divide = |x: u32| 100 / x;
    let mut it = pool.imap([1u32, 0, 2], divide);
    assert_eq!(it.next().unwrap().unwrap(), 100);
    assert!(matches!(it.next(), Some(Err(JoinError::Panicked(_)))));
    assert_eq!(it.next().unwrap().unwrap(), 50);
    assert!(it.next().is_none());

    let mut it = pool.imap_unordered([1u32, 0, 2], divide);
    assert_eq!(it.next().unwrap().unwrap(), 100);
    assert!(matches!(it.next(), Some(Err(JoinError::Panicked(_)))));
    assert_eq!(it.next().unwrap().unwrap(), 50);
    assert!(it.next().is_none());

    assert!(matches!(
        Pool::new(3).map([1u32, 0, 2], divide),
        Err(JoinError::Panicked(_))
    ));
}

#[test]
fn imap_in_main_that_cannot_finish_ends_with_loop_exit() {
    let group = Group::new();
    let never = Event::new();
    let mut it = group.imap([1], move |_: i32| never.wait());
    assert!(matches!(it.next(), Some(Err(JoinError::LoopExit(_)))));
    assert!(it.next().is_none());
}

#[test]
fn group_join_and_kill() {
    let group = Group::new();
    let sleepers: Vec<_> = (0..3)
        .map(|_| group.spawn(|| sleep(Duration::from_secs(3600))))
        .collect();
    let quick = group.spawn(|| 5);
    assert_eq!(group.len(), 4);
    assert_eq!(
        group.join_timeout(Duration::from_millis(1)),
        Err(WaitError::TimedOut)
    );
    assert_eq!(group.len(), 3, "finished greenlets leave the group");
    assert_eq!(quick.get().unwrap(), 5);
    group.kill().unwrap();
    assert!(group.is_empty());
    for s in &sleepers {
        assert!(matches!(s.get(), Err(JoinError::Killed)));
    }
}

#[test]
fn group_kill_nowait_and_kill_timeout() {
    let group = Group::new();
    let h = group.spawn(|| sleep(Duration::from_secs(3600)));
    yield_now();
    group.kill_nowait();
    assert!(!h.is_ready());
    group.kill_timeout(Duration::from_secs(5)).unwrap();
    assert!(h.is_ready());
    // Killing before they start: they never run.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = group.spawn(move || r.set(true));
    group.kill().unwrap();
    assert!(!ran.get());
    assert!(matches!(h.get(), Err(JoinError::Killed)));
}

#[test]
fn group_add_and_discard_existing_greenlets() {
    let group = Group::new();
    let gate = Event::new();
    let g = gate.clone();
    let h = spawn(move || g.wait().unwrap());
    group.add(&h);
    group.add(&h);
    assert_eq!(group.len(), 1);
    assert!(group.contains(&h));
    gate.set();
    group.join().unwrap();
    assert!(h.is_ready() && !group.contains(&h));
    // A finished greenlet leaves at once.
    group.add(&h);
    assert!(group.is_empty());
}

#[test]
fn group_join_in_main_that_cannot_finish_is_loop_exit() {
    let group = Group::new();
    let never = Event::new();
    group.spawn(move || never.wait());
    let started = Instant::now();
    match group.join() {
        Err(WaitError::LoopExit(e)) => {
            assert!(e.to_string().contains("would block forever"));
            assert!(e.waiting_on().contains("Group::join"));
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
}

/// A member may spawn into its own pool: it waits for a slot like anyone else.
#[test]
fn members_spawn_into_their_own_pool() {
    let pool = Pool::new(2);
    let p = pool.clone();
    let outer = pool
        .spawn(move || {
            let inner = p.spawn(|| 6).unwrap();
            inner.get().unwrap() * 7
        })
        .unwrap();
    assert_eq!(outer.get().unwrap(), 42);
    pool.join().unwrap();
}

#[test]
fn debug_output() {
    let pool = Pool::new(2);
    assert_eq!(format!("{pool:?}"), "Pool { size: 2, len: 0, free: 2 }");
    assert_eq!(format!("{:?}", Group::new()), "Group { len: 0 }");
}

/// Ports gevent's `test__pool.py::TestErrorInIterator::test` and
/// `TestErrorInIterator::test_unordered`: a panic in the items' iterator reaches the caller,
/// and the pool keeps all its slots.
#[test]
fn a_panicking_items_iterator_loses_no_slot() {
    let p = Pool::new(3);
    let items = (1..=3).map(|i| {
        if i == 3 {
            panic!("ExpectedException")
        } else {
            i
        }
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.map(items, |x: i32| x)));
    assert!(r.is_err());
    p.join().unwrap();
    assert_eq!(p.free_count(), 3);

    let items = (1..=3).map(|i| {
        if i == 3 {
            panic!("ExpectedException")
        } else {
            i
        }
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.imap_unordered(items, |x: i32| x).count()
    }));
    assert!(r.is_err());
    p.join().unwrap();
    assert_eq!(p.free_count(), 3);
}

/// gevent's `apply`: the value of `f`, run in a member greenlet; a member calling it on its
/// own full pool runs `f` itself instead of waiting forever.
#[test]
fn apply_returns_the_value_and_runs_inline_in_a_member() {
    let pool = Pool::new(1);
    assert_eq!(pool.apply(|| 6 * 7).unwrap(), 42);
    assert!(matches!(
        pool.apply(|| -> u8 { panic!("expected panic: in apply") }),
        Err(JoinError::Panicked(_))
    ));
    let p = pool.clone();
    let outer = pool
        .spawn(move || {
            let me = greenlet::current().id();
            // The pool is full (this greenlet holds its one place).
            p.apply(move || greenlet::current().id() == me).unwrap()
        })
        .unwrap();
    assert!(outer.get().unwrap(), "ran in the calling member");
    let group = Group::new();
    assert_eq!(group.apply(|| "g").unwrap(), "g");
}

/// gevent's `apply_async`: the handle at once, the callback with the value in the member;
/// no callback for a panic; a full pool makes it wait like `spawn`.
#[test]
fn apply_async_calls_back_with_the_value() {
    let pool = Pool::new(1);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let a = pool
        .apply_async(|| 1, move |v| s.borrow_mut().push(*v))
        .unwrap();
    let s = seen.clone();
    let b = pool
        .apply_async(
            || -> i32 { panic!("expected panic: in apply_async") },
            move |v| s.borrow_mut().push(*v),
        )
        .unwrap(); // waited for `a` to finish
    assert!(a.is_ready());
    assert!(matches!(b.get(), Err(JoinError::Panicked(_))));
    let full = Pool::new(0);
    assert!(matches!(
        full.apply_async(|| (), |_| ()),
        Err(WaitError::LoopExit(_))
    ));
    assert_eq!(
        full.apply_async_timeout(Duration::from_millis(1), || (), |_| ())
            .unwrap_err(),
        WaitError::TimedOut
    );
    assert!(matches!(
        full.apply_timeout(Duration::from_millis(1), || ()),
        Err(JoinError::TimedOut)
    ));
    assert_eq!(*seen.borrow(), [1]);
    let group = Group::new();
    let s = seen.clone();
    assert_eq!(
        group
            .apply_async(|| 2, move |v| s.borrow_mut().push(*v))
            .get()
            .unwrap(),
        2
    );
    assert_eq!(*seen.borrow(), [1, 2]);
}

/// `kill_timeout` on a group is graceful: each member's blocking call fails with `Killed`,
/// its cleanup blocks and completes; a member that ignores it is unwound after the grace.
#[test]
fn group_kill_timeout_lets_members_clean_up_then_unwinds_the_rest() {
    let group = Group::new();
    let cleaned = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let c = cleaned.clone();
        group.spawn(move || {
            if Event::new().wait() == Err(WaitError::Killed) {
                sleep(Duration::from_millis(1)); // cleanup may block
                c.set(c.get() + 1);
            }
        });
    }
    let stubborn = group.spawn(|| {
        loop {
            let _ = Event::new().wait(); // ignores every failure
        }
    });
    yield_now();
    group.kill_timeout(Duration::from_millis(20)).unwrap();
    assert_eq!(cleaned.get(), 3);
    assert!(group.is_empty());
    assert!(matches!(stubborn.get(), Err(JoinError::Killed)));
}

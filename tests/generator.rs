//! Generators, ported from Python greenlet's `test_generator.py` and `test_generator_nested.py`
//! (generators built on greenlets) and from the reference article's producer/consumer.
//!
//! Each test names the Python test it ports, or says that it has no counterpart.

mod util;

use std::cell::Cell;
use std::panic;
use std::rc::Rc;

use greenlet::{Builder, Generator, GeneratorState, Greenlet, Yielder};
use util::{DropCounter, Log};

/// Ports the `send` protocol of Python generators that greenlet's `genlet` imitates: the first
/// `send` starts the body with its input, each `yield_` hands a value out and returns the next
/// input, and the body's return value completes the generator.
#[test]
fn send_and_yield_exchange_values_until_the_body_returns() {
    let mut total = Generator::new(|co: &Yielder<i64, i64>, mut x: i64| {
        let mut sum = 0;
        while x != 0 {
            sum += x;
            x = co.yield_(sum);
        }
        format!("total {sum}")
    });
    assert_eq!(total.send(5), GeneratorState::Yielded(5));
    assert_eq!(total.resume(10), GeneratorState::Yielded(15));
    assert!(!total.is_complete());
    assert_eq!(
        total.send(0),
        GeneratorState::Complete(String::from("total 15"))
    );
    assert!(total.is_complete());
}

/// Ports greenlet's `test_generator.py::GeneratorTests::test_generator`: a generator with `()`
/// input is an `Iterator`; three fresh generators each yield 0..5, interleaved with the
/// consumer's own work.
#[test]
fn a_generator_with_unit_input_is_an_iterator() {
    let seen = Log::new();
    let gen_of = |n: u32, seen: Log| {
        Generator::new(move |co: &Yielder<(), u32>, ()| {
            for i in 0..n {
                seen.push(format!("g{i}"));
                co.yield_(i);
            }
        })
    };
    for _ in 0..3 {
        for j in gen_of(5, seen.clone()) {
            seen.push(format!("c{j}"));
        }
    }
    let one: Vec<String> = (0..5)
        .flat_map(|i| [format!("g{i}"), format!("c{i}")])
        .collect();
    assert_eq!(seen.events(), [one.clone(), one.clone(), one].concat());
}

/// Ports the end of iteration in greenlet's `test_generator.py::GeneratorTests::test_generator`
/// (`StopIteration` once the genlet is dead): after the body returns, `next` keeps returning
/// `None`.
#[test]
fn an_exhausted_iterator_keeps_returning_none() {
    let mut it = Generator::new(|co: &Yielder<(), u8>, ()| co.yield_(1));
    assert_eq!(it.next(), Some(1));
    assert_eq!(it.next(), None);
    assert!(it.is_complete());
    assert_eq!(it.next(), None);
}

/// Ports Python's rule for an exception in a generator (raised in the caller of `send`), which
/// greenlet's genlets follow: a panic in the body propagates to the caller of `send`, with its
/// message.
#[test]
#[should_panic(expected = "boom in the generator body")]
fn a_panic_in_the_body_propagates_to_the_caller_of_send() {
    let mut g = Generator::new(|co: &Yielder<u32, u32>, x: u32| -> () {
        let y = co.yield_(x);
        panic!("boom in the generator body {y}");
    });
    assert_eq!(g.send(1), GeneratorState::Yielded(1));
    g.send(2);
}

/// No Python counterpart (a finished Python generator raises `StopIteration`): a generator
/// whose body panicked is complete, and its greenlet is gone.
#[test]
fn a_generator_whose_body_panicked_is_complete() {
    let mut g = Generator::new(|_: &Yielder<(), ()>, ()| -> u32 { panic!("early") });
    let payload = panic::catch_unwind(panic::AssertUnwindSafe(|| g.send(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"early"));
    assert!(g.is_complete());
    assert_eq!(g.next(), None);
}

/// No Python counterpart (a finished Python generator raises `StopIteration` on `send`):
/// resuming a complete generator panics with a clear message.
#[test]
#[should_panic(expected = "greenlet::Generator resumed after it completed")]
fn resuming_a_complete_generator_panics() {
    let mut g = Generator::new(|_: &Yielder<u32, ()>, x: u32| x);
    assert_eq!(g.send(3), GeneratorState::Complete(3));
    g.send(4);
}

/// Ports Python's `generator.close()` on a suspended generator (greenlet's genlets get
/// `GreenletExit` when collected): dropping a generator mid-way unwinds its body, running
/// every destructor on its stack; the code after the pending yield never runs.
#[test]
fn dropping_a_generator_mid_way_runs_its_destructors() {
    let drops = DropCounter::new();
    let after = Rc::new(Cell::new(false));
    let (d, a) = (drops.clone(), after.clone());
    let mut g = Generator::new(move |co: &Yielder<(), u32>, ()| {
        let _outer = d.token();
        for i in 0..100 {
            let _per_step = d.token();
            co.yield_(i);
        }
        a.set(true);
    });
    assert_eq!(g.next(), Some(0));
    assert_eq!(g.next(), Some(1));
    assert_eq!(drops.dropped(), 1, "the first step's token");
    drop(g);
    assert_eq!(
        drops.dropped(),
        3,
        "the outer token and the pending step's token"
    );
    assert!(!after.get());
}

/// No Python counterpart: dropping a generator that never started drops its body's captures
/// without running it.
#[test]
fn dropping_an_unstarted_generator_drops_its_captures() {
    let drops = DropCounter::new();
    let capture = drops.token();
    let g: Generator<(), (), ()> = Generator::new(move |_, ()| drop(capture));
    drop(g);
    assert_eq!(drops.dropped(), 1);
}

/// Ports greenlet's `test_generator_nested.py::NestedGeneratorTests::test_genlet_simple`
/// (`g3`, which yields from a nested function): the body can yield from any depth of calls.
#[test]
fn a_generator_yields_from_nested_calls() {
    fn nested(co: &Yielder<(), u32>, i: u32) {
        co.yield_(i);
    }
    let seen = Log::new();
    let s = seen.clone();
    let g = Generator::new(move |co: &Yielder<(), u32>, ()| {
        for i in 0..5 {
            s.push(format!("{}", i + 1));
            nested(co, i);
        }
    });
    for j in g {
        seen.push(format!("{j}"));
    }
    assert_eq!(
        seen.events(),
        ["1", "0", "2", "1", "3", "2", "4", "3", "5", "4"]
    );
}

/// The recursive generator of greenlet's `test_generator_nested.py` (`ax`): yields every
/// value of `ax(n - 1)`, then `n`.
fn ax(n: u32) -> Generator<(), u32, ()> {
    Generator::new(move |co: &Yielder<(), u32>, ()| {
        if n == 0 {
            return;
        }
        for ii in ax(n - 1) {
            co.yield_(ii);
        }
        co.yield_(n);
    })
}

/// Ports greenlet's `test_generator_nested.py::NestedGeneratorTests::test_nested_genlets`:
/// a generator that iterates a generator inside its body (each on its own greenlet, five deep)
/// yields through the chain.
#[test]
fn nested_generators_yield_through_each_other() {
    assert_eq!(ax(5).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

/// The recursive permutations generator of greenlet's `test_generator_nested.py` (`perms`).
fn perms(l: Vec<u32>) -> Generator<(), Vec<u32>, ()> {
    Generator::new(move |co: &Yielder<(), Vec<u32>>, ()| {
        if l.len() > 1 {
            for &e in &l {
                let rest: Vec<u32> = l.iter().copied().filter(|&x| x != e).collect();
                for p in perms(rest) {
                    let mut v = vec![e];
                    v.extend(p);
                    co.yield_(v);
                }
            }
        } else {
            co.yield_(l.clone());
        }
    })
}

/// Ports greenlet's `test_generator_nested.py::NestedGeneratorTests::test_permutations`:
/// recursive generators, and two of them advanced in lock step (`zip`).
#[test]
fn recursive_generators_produce_permutations() {
    let all: Vec<Vec<u32>> = perms(vec![0, 1, 2, 3]).collect();
    assert_eq!(all.len(), 24);
    assert!(all.contains(&vec![0, 1, 2, 3]));
    assert!(all.contains(&vec![3, 2, 1, 0]));
    let zipped: Vec<(Vec<u32>, Vec<u32>)> =
        perms(vec![0, 1, 2, 3]).zip(perms(vec![0, 1, 2])).collect();
    let expected: Vec<(Vec<u32>, Vec<u32>)> = [
        ([0, 1, 2, 3], [0, 1, 2]),
        ([0, 1, 3, 2], [0, 2, 1]),
        ([0, 2, 1, 3], [1, 0, 2]),
        ([0, 2, 3, 1], [1, 2, 0]),
        ([0, 3, 1, 2], [2, 0, 1]),
        ([0, 3, 2, 1], [2, 1, 0]),
    ]
    .iter()
    .map(|(a, b)| (a.to_vec(), b.to_vec()))
    .collect();
    assert_eq!(zipped, expected);
}

/// Ports greenlet's `test_generator_nested.py::NestedGeneratorTests::test_layered_genlets`
/// (a genlet consumed inside another genlet's body), without its two-level `Yield`: a
/// generator created and resumed inside a greenlet yields to that greenlet, not to main.
#[test]
fn a_generator_inside_a_greenlet_yields_to_that_greenlet() {
    let g = Greenlet::new(|()| {
        let squares = Generator::new(|co: &Yielder<(), u32>, ()| {
            for i in 1..5 {
                assert!(!greenlet::current().is_main());
                co.yield_(i * i);
            }
        });
        squares.collect::<Vec<u32>>()
    });
    assert_eq!(g.switch::<(), Vec<u32>>(()).unwrap(), [1, 4, 9, 16]);
    assert!(g.is_dead());
}

/// No Python counterpart (a Python generator yields to whoever calls `next`, as here): a
/// generator's yields go to whoever resumed it, main one time, a greenlet the next.
#[test]
fn yields_go_to_whoever_resumed_the_generator() {
    let counter = Rc::new(std::cell::RefCell::new(Generator::new(
        |co: &Yielder<(), u32>, ()| {
            for i in 0.. {
                co.yield_(i);
            }
        },
    )));
    assert_eq!(counter.borrow_mut().next(), Some(0));
    let c = counter.clone();
    let g = Greenlet::new(move |()| c.borrow_mut().next());
    assert_eq!(g.switch::<(), Option<u32>>(()).unwrap(), Some(1));
    assert_eq!(counter.borrow_mut().next(), Some(2));
}

/// The reference article's consumer: announces itself, then eats what it is sent.
fn consumer(name: &'static str, log: Log) -> Generator<u32, (), ()> {
    Generator::new(move |co: &Yielder<u32, ()>, _first: u32| {
        log.push("--->starting eating baozi...");
        loop {
            let baozi = co.yield_(());
            log.push(format!("[{name}] is eating baozi {baozi}"));
        }
    })
}

/// Ports the reference article's producer/consumer (the baozi shape; greenlet's tests have no
/// counterpart): two generators resumed alternately by one producer, each keeping its own place.
#[test]
fn two_generators_interleave() {
    let log = Log::new();
    let mut c1 = consumer("c1", log.clone());
    let mut c2 = consumer("c2", log.clone());
    c1.send(0);
    c2.send(0);
    for n in 1..=3 {
        c1.send(n);
        c2.send(n);
        log.push(format!("[producer] is making baozi {n}"));
    }
    let mut expected = vec![String::from("--->starting eating baozi..."); 2];
    for n in 1..=3 {
        expected.push(format!("[c1] is eating baozi {n}"));
        expected.push(format!("[c2] is eating baozi {n}"));
        expected.push(format!("[producer] is making baozi {n}"));
    }
    assert_eq!(log.events(), expected);
}

/// No Python counterpart: a generator built with a `Builder` runs on a greenlet with that name
/// and stack size.
#[test]
fn a_generator_can_be_built_with_a_name_and_stack_size() {
    let mut g = Generator::with_builder(
        Builder::new().name("gen").stack_size(256 * 1024),
        |co: &Yielder<(), String>, ()| {
            let me = greenlet::current();
            co.yield_(format!("{:?}", me));
            me.stack_size()
        },
    )
    .unwrap();
    match g.send(()) {
        GeneratorState::Yielded(dbg) => assert!(dbg.contains("gen"), "{dbg}"),
        other => panic!("expected a yield, got {other:?}"),
    }
    match g.send(()) {
        GeneratorState::Complete(size) => assert!(size >= 256 * 1024),
        other => panic!("expected completion, got {other:?}"),
    }
}

/// Runs `examples/baozi.rs`, the reference article's producer/consumer, and checks its exact
/// output.
#[test]
fn example_baozi_prints_the_producer_consumer_dialogue() {
    let mut expected = String::from("--->starting eating baozi...\n").repeat(2);
    for n in 1..=5 {
        expected += &format!("[c1] is eating baozi {n}\n");
        expected += &format!("[c2] is eating baozi {n}\n");
        expected += &format!("[producer] is making baozi {n}\n");
    }
    assert_eq!(util::run_example("baozi", &[]), expected);
}

/// No counterpart (Python's "generator ignored GeneratorExit"): a generator dropped while
/// suspended is unwound; a body that catches that unwind and yields again is told it cannot
/// yield there, by a panic that stays inside the generator (the drop returns).
#[test]
fn yielding_after_catching_the_unwind_of_a_drop_panics_inside_the_generator() {
    let said = Rc::new(std::cell::RefCell::new(String::new()));
    let seen = said.clone();
    let mut g = Generator::new(move |co: &Yielder<(), u32>, ()| {
        if panic::catch_unwind(panic::AssertUnwindSafe(|| co.yield_(1))).is_err() {
            let again = panic::catch_unwind(panic::AssertUnwindSafe(|| co.yield_(2)));
            let payload = again.unwrap_err();
            *seen.borrow_mut() = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
        }
    });
    assert_eq!(g.send(()), GeneratorState::Yielded(1));
    drop(g);
    let said = said.borrow();
    assert!(said.starts_with("a generator cannot yield here"), "{said}");
}

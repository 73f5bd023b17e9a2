//! The reference article's producer/consumer with `yield` (section 1): one producer feeds two
//! consumer generators with `send`.

use greenlet::{Generator, Yielder};

/// Python's `consumer(name)`: announces itself, then eats every baozi it is sent.
fn consumer(name: &'static str) -> Generator<u32, (), ()> {
    Generator::new(move |co: &Yielder<u32, ()>, _first: u32| {
        println!("--->starting eating baozi...");
        loop {
            let baozi = co.yield_(());
            println!("[{name}] is eating baozi {baozi}");
        }
    })
}

/// Python's `producer()`: primes both consumers, then makes five baozi and sends each to both.
fn producer(con: &mut Generator<u32, (), ()>, con2: &mut Generator<u32, (), ()>) {
    // `con.__next__()`: run each consumer up to its first `yield`.
    con.send(0);
    con2.send(0);
    for n in 1..=5 {
        con.send(n);
        con2.send(n);
        println!("[producer] is making baozi {n}");
    }
}

pub fn main() {
    let mut con = consumer("c1");
    let mut con2 = consumer("c2");
    producer(&mut con, &mut con2);
}

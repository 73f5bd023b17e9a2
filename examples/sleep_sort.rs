//! Sleep sort: every number sleeps in its own greenlet for that many ticks, then prints
//! itself. The hub's timers wake the sleepers in deadline order, so the numbers come out
//! sorted, one per line.
//!
//! All deadlines count from one instant taken before spawning, so the order depends only on
//! the numbers: timers that fall due together still fire in deadline order.

use std::time::{Duration, Instant};

/// One tick: numbers that differ by one wake this far apart.
const TICK: Duration = Duration::from_millis(10);

pub fn main() {
    let numbers = [5u32, 2, 8, 1, 4, 7, 3, 6];
    let start = Instant::now();
    let sleepers: Vec<_> = numbers
        .iter()
        .map(|&n| {
            greenlet::spawn(move || {
                greenlet::sleep_until(start + TICK * n);
                println!("{n}");
            })
        })
        .collect();
    greenlet::joinall(&sleepers, None, None).expect("every sleeper wakes up");
}

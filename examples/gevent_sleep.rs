//! The reference article's gevent demo (section 1.2): two greenlets hand over control by
//! sleeping, so the hub switches between them.

use std::time::Duration;

fn foo() {
    println!("Running in foo");
    greenlet::sleep(Duration::ZERO);
    println!("Explicit context switch to foo again");
}

fn bar() {
    println!("Explicit context to bar");
    greenlet::sleep(Duration::ZERO);
    println!("Implicit context switch back to bar");
}

pub fn main() {
    let handles = [greenlet::spawn(foo), greenlet::spawn(bar)];
    greenlet::joinall(&handles, None, None).expect("both greenlets finish");
}

//! The reference article's greenlet demo (section 1.1): two greenlets hand control back and
//! forth with explicit `switch()`, printing 12, 56, 34, 78.

use greenlet::Greenlet;
use std::cell::OnceCell;
use std::rc::Rc;

pub fn main() {
    // gr1 and gr2 refer to each other, as the module globals do in the Python program.
    let gr2_slot: Rc<OnceCell<Greenlet>> = Rc::new(OnceCell::new());
    let gr1_slot: Rc<OnceCell<Greenlet>> = Rc::new(OnceCell::new());

    let gr2 = gr2_slot.clone();
    let test1 = move |()| {
        println!("12");
        let _: () = gr2.get().unwrap().switch(()).unwrap();
        println!("34");
        let _: () = gr2.get().unwrap().switch(()).unwrap();
    };
    let gr1 = gr1_slot.clone();
    let test2 = move |()| {
        println!("56");
        let _: () = gr1.get().unwrap().switch(()).unwrap();
        println!("78");
    };

    gr1_slot.set(Greenlet::new(test1)).unwrap();
    gr2_slot.set(Greenlet::new(test2)).unwrap();
    let _: () = gr1_slot.get().unwrap().switch(()).unwrap();
}

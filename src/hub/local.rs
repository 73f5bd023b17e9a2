//! Greenlet-local storage (gevent's `local`): a value per greenlet, like `thread_local!` is a
//! value per thread.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use crate::error::{GreenletExit, Panic};

/// The locals of one greenlet: few per greenlet, so a vector searched by key.
#[derive(Default)]
pub(crate) struct Locals {
    values: RefCell<Vec<(usize, Rc<dyn Any>)>>,
}

impl Locals {
    /// Drops every value: called as the greenlet finishes, so that its locals go with it even
    /// while handles on it remain (gevent's `test_locals_collected_when_greenlet_dead_but_still_referenced`).
    /// A destructor may touch locals again; what it creates is dropped in the next round.
    /// Returns whether there was anything to drop.
    #[inline]
    pub(crate) fn clear(&self) -> bool {
        // Most greenlets have no locals: skip the loop and its unwind landing pads.
        !self.values.borrow().is_empty() && self.clear_some()
    }

    #[cold]
    #[inline(never)]
    fn clear_some(&self) -> bool {
        let mut dropped = false;
        for _ in 0..8 {
            let values = std::mem::take(&mut *self.values.borrow_mut());
            if values.is_empty() {
                break;
            }
            dropped = true;
            for (_, value) in values {
                match panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
                    Ok(()) => {}
                    // Killed while a destructor blocked: the greenlet is ending anyway.
                    Err(p) if p.is::<GreenletExit>() => {}
                    Err(p) => log::error!(
                        "a greenlet-local value panicked while being dropped: {}",
                        Panic::new(p)
                    ),
                }
            }
        }
        dropped
    }

    /// Whether the greenlet has no local values.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.borrow().is_empty()
    }
}

impl fmt::Debug for Locals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locals")
            .field("count", &self.values.borrow().len())
            .finish()
    }
}

/// A key for greenlet-local values, declared with [`greenlet_local!`](crate::greenlet_local).
///
/// Each greenlet (the main one included) sees its own value, created by the key's initialiser
/// on first access and dropped with the greenlet.
pub struct LocalKey<T: 'static> {
    #[doc(hidden)]
    pub init: fn() -> T,
}

impl<T: 'static> LocalKey<T> {
    /// Calls `f` with the current greenlet's value, creating it on first use.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const LocalKey<T> as usize;
        let current = crate::current();
        let locals = &current.inner().sched.locals;
        let found = locals
            .values
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone());
        let value = match found {
            Some(v) => v,
            None => {
                // Initialise without holding the borrow: the initialiser may use other locals.
                let v: Rc<dyn Any> = Rc::new((self.init)());
                locals.values.borrow_mut().push((key, v.clone()));
                v
            }
        };
        let value = value
            .downcast_ref::<T>()
            .expect("a local key maps to values of its own type");
        f(value)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey")
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

/// Declares greenlet-local keys, as `thread_local!` declares thread-local ones.
///
/// # Examples
/// ```
/// use std::cell::Cell;
/// greenlet::greenlet_local! {
///     static REQUEST_ID: Cell<u32> = Cell::new(0);
/// }
/// REQUEST_ID.with(|id| id.set(1));
/// let h = greenlet::spawn(|| {
///     REQUEST_ID.with(|id| id.set(2));
///     REQUEST_ID.with(Cell::get)
/// });
/// assert_eq!(h.get().unwrap(), 2);
/// assert_eq!(REQUEST_ID.with(Cell::get), 1); // main's own value is untouched
/// ```
#[macro_export]
macro_rules! greenlet_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;)+) => {
        $(
            $(#[$attr])*
            $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey { init: || $init };
        )+
    };
}

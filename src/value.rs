//! A type-erased value passed through `switch()`.
//!
//! Greenlet switches are typed at the call site (`g.switch::<T, R>(v)`), so the value in flight
//! has to travel without a static type. `Box<dyn Any>` would allocate on every switch of an
//! integer; this keeps values of up to two words inline and boxes only larger ones.

use std::any::{TypeId, type_name};
use std::fmt;
use std::mem::{self, MaybeUninit};

/// Inline storage: two machine words, word-aligned.
type Storage = MaybeUninit<[usize; 2]>;

/// What a [`Value`] knows about its type; one static instance per type.
struct VTable {
    type_id: TypeId,
    type_name: fn() -> &'static str,
    /// Drops the value in the storage.
    drop: unsafe fn(*mut Storage),
}

/// Provides the static [`VTable`] of each type.
trait HasVTable {
    const VTABLE: VTable;
}

impl<T: 'static> HasVTable for T {
    const VTABLE: VTable = VTable {
        type_id: TypeId::of::<T>(),
        type_name: type_name::<T>,
        drop: if is_inline::<T>() {
            drop_inline::<T>
        } else {
            drop_boxed::<T>
        },
    };
}

/// A value of some `'static` type, moved through a switch and taken out by type.
///
/// Three words: the type's vtable and two words of storage, so moving a message through the
/// trampoline copies little.
pub(crate) struct Value {
    /// `None` once the value has been taken out.
    vtable: Option<&'static VTable>,
    storage: Storage,
}

const fn is_inline<T>() -> bool {
    mem::size_of::<T>() <= mem::size_of::<Storage>()
        && mem::align_of::<T>() <= mem::align_of::<Storage>()
}

/// Drops a `T` stored inline.
///
/// # Safety
/// `storage` must hold an initialised `T` written by [`Value::new`] that has not been taken.
unsafe fn drop_inline<T>(storage: *mut Storage) {
    // SAFETY: the caller guarantees an initialised, untaken T lives at the start of storage.
    unsafe { storage.cast::<T>().drop_in_place() }
}

/// Drops a `Box<T>` whose raw pointer is stored inline.
///
/// # Safety
/// `storage` must hold a pointer from `Box::into_raw` written by [`Value::new`], not yet taken.
unsafe fn drop_boxed<T>(storage: *mut Storage) {
    // SAFETY: the caller guarantees the first word is a live pointer from Box::<T>::into_raw.
    unsafe { drop(Box::from_raw(storage.cast::<*mut T>().read())) }
}

impl Value {
    /// Wraps `value`; it is dropped normally if never taken out.
    #[inline]
    pub(crate) fn new<T: 'static>(value: T) -> Value {
        let mut storage = Storage::uninit();
        if is_inline::<T>() {
            // SAFETY: is_inline checked that T fits in Storage's size and alignment.
            unsafe { storage.as_mut_ptr().cast::<T>().write(value) };
        } else {
            let raw = Box::into_raw(Box::new(value));
            // SAFETY: a pointer is one word, which fits in Storage and is word-aligned.
            unsafe { storage.as_mut_ptr().cast::<*mut T>().write(raw) };
        }
        Value {
            vtable: Some(&<T as HasVTable>::VTABLE),
            storage,
        }
    }

    /// Whether the value is a `T`.
    #[inline]
    pub(crate) fn is<T: 'static>(&self) -> bool {
        self.vtable
            .is_some_and(|vt| vt.type_id == TypeId::of::<T>())
    }

    /// The name of the value's type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        self.vtable.map_or("<taken>", |vt| (vt.type_name)())
    }

    /// Takes the value out as a `T`, or gives the value back if it has another type.
    #[inline]
    pub(crate) fn take<T: 'static>(mut self) -> Result<T, Value> {
        if !self.is::<T>() {
            return Err(self);
        }
        self.vtable = None;
        let value = if is_inline::<T>() {
            // SAFETY: the type id matches, so `new::<T>` wrote a T inline, and the vtable was
            // still set, so it has not been taken; clearing it above makes this the only read.
            unsafe { self.storage.as_ptr().cast::<T>().read() }
        } else {
            // SAFETY: as above, but `new::<T>` stored a pointer from Box::<T>::into_raw.
            unsafe { *Box::from_raw(self.storage.as_ptr().cast::<*mut T>().read()) }
        };
        Ok(value)
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        if let Some(vt) = self.vtable.take() {
            // SAFETY: the vtable's drop matches the representation `new` chose for this type,
            // and the value was not taken (the vtable is cleared when it is).
            unsafe { (vt.drop)(&mut self.storage) }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("type", &self.type_name())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn small_and_large_values_round_trip() {
        assert_eq!(Value::new(7u64).take::<u64>().unwrap(), 7);
        assert_eq!(
            Value::new((1u64, 2u64)).take::<(u64, u64)>().unwrap(),
            (1, 2)
        );
        let big = [9u8; 100];
        assert_eq!(Value::new(big).take::<[u8; 100]>().unwrap(), big);
        assert_eq!(
            Value::new(String::from("hi")).take::<String>().unwrap(),
            "hi"
        );
    }

    #[test]
    fn wrong_type_gives_the_value_back() {
        let v = Value::new(5i32);
        let v = v.take::<u32>().unwrap_err();
        assert_eq!(v.type_name(), "i32");
        assert_eq!(v.take::<i32>().unwrap(), 5);
    }

    #[test]
    fn untaken_values_are_dropped_once() {
        let rc = Rc::new(());
        drop(Value::new(rc.clone()));
        drop(Value::new([rc.clone(), rc.clone(), rc.clone()]));
        assert_eq!(Rc::strong_count(&rc), 1);
        let taken = Value::new(rc.clone()).take::<Rc<()>>().unwrap();
        assert_eq!(Rc::strong_count(&rc), 2);
        drop(taken);
        assert_eq!(Rc::strong_count(&rc), 1);
    }
}

//! A type-erased value passed through `switch()`.
//!
//! Greenlet switches are typed at the call site (`g.switch::<T, R>(v)`), so the value in flight
//! has to travel without a static type. `Box<dyn Any>` would allocate on every switch of an
//! integer; this keeps values of up to two words inline and boxes only larger ones.

use std::any::{TypeId, type_name};
use std::cell::UnsafeCell;
use std::fmt;
use std::mem::{self, MaybeUninit};

/// Inline storage: two machine words, word-aligned.
type Storage = MaybeUninit<[usize; 2]>;

/// What a [`Value`] knows about its type; one static instance per type (per codegen unit:
/// the compiler may duplicate it, so its address is a fast test of the type, not the test).
struct VTable {
    type_id: TypeId,
    type_name: fn() -> &'static str,
    /// Drops the value in the storage; `None` for types without drop glue, so that dropping a
    /// wake-up (a `()`) or an integer costs no call.
    drop: Option<unsafe fn(*mut Storage)>,
}

/// Provides the static [`VTable`] of each type.
trait HasVTable {
    const VTABLE: VTable;
}

impl<T: 'static> HasVTable for T {
    const VTABLE: VTable = VTable {
        type_id: TypeId::of::<T>(),
        type_name: type_name::<T>,
        drop: if !is_inline::<T>() {
            Some(drop_boxed::<T>)
        } else if mem::needs_drop::<T>() {
            Some(drop_inline::<T>)
        } else {
            None
        },
    };
}

/// A value of some `'static` type, moved through a switch and taken out by type.
///
/// Three words: the type's vtable and two words of storage, so moving a message through the
/// trampoline copies little. Taking the value out consumes the `Value`, so there is no "taken"
/// state to check; the vtable reference leaves a niche, so `Option<Value>` is three words too.
#[repr(C)]
pub(crate) struct Value {
    vtable: &'static VTable,
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

/// The vtable of `()`, as one static: the plain wake-up of every park and yield is a `()`, and
/// testing for it is then one pointer comparison wherever the test is compiled (the per-type
/// constant may be duplicated per codegen unit, so its address differs between them).
static UNIT_VTABLE: VTable = <() as HasVTable>::VTABLE;

impl Value {
    /// A `()`, with the one [`UNIT_VTABLE`].
    #[inline]
    pub(crate) fn unit() -> Value {
        Value {
            vtable: &UNIT_VTABLE,
            storage: Storage::uninit(),
        }
    }

    /// Whether the value is a `()`: one pointer comparison for one made by [`unit`](Value::unit).
    #[inline]
    pub(crate) fn is_unit(&self) -> bool {
        std::ptr::eq(self.vtable, &UNIT_VTABLE) || self.is::<()>()
    }

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
            vtable: &<T as HasVTable>::VTABLE,
            storage,
        }
    }

    /// Whether the value is a `T`: one pointer comparison when the vtable is the one this code
    /// would make (the usual case), else a comparison of type ids.
    #[inline]
    pub(crate) fn is<T: 'static>(&self) -> bool {
        std::ptr::eq(self.vtable, &<T as HasVTable>::VTABLE)
            || self.vtable.type_id == TypeId::of::<T>()
    }

    /// A reference to the value, if it is a `T`.
    pub(crate) fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        if !self.is::<T>() {
            return None;
        }
        let p = if is_inline::<T>() {
            self.storage.as_ptr().cast::<T>()
        } else {
            // SAFETY: the type matches, so `new::<T>` stored a pointer from Box::<T>::into_raw
            // in the first word.
            unsafe { self.storage.as_ptr().cast::<*const T>().read() }
        };
        // SAFETY: the type matches and the value has not been taken (taking consumes it), so
        // `p` points to a live `T` owned by `self`, borrowed as long as `self` is.
        Some(unsafe { &*p })
    }

    /// The name of the value's type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        (self.vtable.type_name)()
    }

    /// Takes the value out as a `T`, or gives the value back if it has another type.
    #[inline]
    pub(crate) fn take<T: 'static>(self) -> Result<T, Value> {
        if !self.is::<T>() {
            return Err(self);
        }
        // The value is moved out below: its destructor must not run.
        let this = mem::ManuallyDrop::new(self);
        let value = if is_inline::<T>() {
            // SAFETY: the type matches, so `new::<T>` wrote a T inline; `this` is never dropped,
            // so this is the only read.
            unsafe { this.storage.as_ptr().cast::<T>().read() }
        } else {
            // SAFETY: as above, but `new::<T>` stored a pointer from Box::<T>::into_raw.
            unsafe { *Box::from_raw(this.storage.as_ptr().cast::<*mut T>().read()) }
        };
        Ok(value)
    }
}

/// A [`Value`] in flight: written by a greenlet that switches, read by the one it switches to
/// right after the stack switch (see `switch::Inbox`). Word by word, with volatile accesses of
/// one word each, so that the compiler neither merges nor splits them: a load that spans two
/// stores (or half of a wider one) made just before cannot be forwarded from the store buffer
/// and stalls, which, measured, costs more than the rest of a switch.
pub(crate) struct Slot(UnsafeCell<[MaybeUninit<usize>; 3]>);

impl Slot {
    pub(crate) const fn new() -> Slot {
        Slot(UnsafeCell::new([MaybeUninit::uninit(); 3]))
    }

    /// Moves `value` into the slot, which must be empty (its previous value taken).
    #[inline(always)]
    pub(crate) fn put(&self, value: Value) {
        let value = mem::ManuallyDrop::new(value);
        let vtable: *const VTable = value.vtable;
        // SAFETY: the storage is two words (`Storage`), read as possibly uninitialised words.
        let [a, b] = unsafe {
            value
                .storage
                .as_ptr()
                .cast::<[MaybeUninit<usize>; 2]>()
                .read()
        };
        let p = self.0.get().cast::<MaybeUninit<usize>>();
        // SAFETY: `p` points to three words owned by the slot, which is not shared across
        // threads (it lives in a greenlet, which never leaves its thread).
        unsafe {
            p.write_volatile(MaybeUninit::new(vtable as usize));
            p.add(1).write_volatile(a);
            p.add(2).write_volatile(b);
        }
    }

    /// Whether the slot holds a `()` made by [`Value::unit`] (one word read; a `()` made by
    /// `Value::new` counts as not, and is taken as usual).
    ///
    /// # Safety
    /// As [`take`](Slot::take).
    #[inline(always)]
    pub(crate) unsafe fn holds_unit(&self) -> bool {
        let p = self.0.get().cast::<MaybeUninit<usize>>();
        // SAFETY: as in `take`: the first word is the vtable of the value put there.
        let vtable = unsafe { p.read_volatile().assume_init() } as *const VTable;
        std::ptr::eq(vtable, &UNIT_VTABLE)
    }

    /// Moves the value out of the slot.
    ///
    /// # Safety
    /// The slot must hold a value put there by [`put`](Slot::put) and not taken since.
    #[inline(always)]
    pub(crate) unsafe fn take(&self) -> Value {
        let p = self.0.get().cast::<MaybeUninit<usize>>();
        // SAFETY: as in `put`; the caller guarantees that the words are a `Value` put there.
        unsafe {
            let vtable = p.read_volatile().assume_init() as *const VTable;
            let words = [p.add(1).read_volatile(), p.add(2).read_volatile()];
            let mut storage = Storage::uninit();
            storage
                .as_mut_ptr()
                .cast::<[MaybeUninit<usize>; 2]>()
                .write(words);
            Value {
                vtable: &*vtable,
                storage,
            }
        }
    }
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        if let Some(drop) = self.vtable.drop {
            // SAFETY: the vtable's drop matches the representation `new` chose for this type,
            // and the value was not taken (`take` consumes the `Value` without dropping it).
            unsafe { drop(&mut self.storage) }
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

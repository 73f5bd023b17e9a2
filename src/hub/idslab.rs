//! A slab whose keys carry a generation: the hub's tables of remote waits and of greenlets
//! placed by other threads.
//!
//! Those tables are touched on every cross-thread wait and every placed greenlet, so a
//! `HashMap` (hashing every key with SipHash) cost a measurable share of each hand-over. Here a
//! key is the slot's index in the low 32 bits and the slot's generation in the high 32: a
//! lookup is an index and a compare. A slot's generation moves on when its value is removed,
//! so a key kept after its removal (a [`RemoteWaker`](super::RemoteWaker) that fires late)
//! never reaches the value that reuses the slot.

use std::fmt;

/// Values under generational `u64` keys; freed slots are reused, last freed first.
pub(crate) struct IdSlab<T> {
    slots: Vec<Slot<T>>,
    /// Indices of the slots with no value.
    free: Vec<u32>,
    len: usize,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for IdSlab<T> {
    fn default() -> Self {
        IdSlab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

fn split(key: u64) -> (usize, u32) {
    ((key & u64::from(u32::MAX)) as usize, (key >> 32) as u32)
}

impl<T> IdSlab<T> {
    /// Stores `value`; returns its key.
    pub(crate) fn insert(&mut self, value: T) -> u64 {
        self.len += 1;
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].value = Some(value);
                i
            }
            None => {
                let i = u32::try_from(self.slots.len())
                    .expect("fewer than 2^32 entries in a hub's table");
                self.slots.push(Slot {
                    generation: 0,
                    value: Some(value),
                });
                i
            }
        };
        u64::from(self.slots[index as usize].generation) << 32 | u64::from(index)
    }

    /// The value under `key`, mutably, unless it was removed.
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        let (i, generation) = split(key);
        self.slots
            .get_mut(i)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.value.as_mut())
    }

    /// Takes the value under `key` out and frees its slot (a stale key finds nothing).
    pub(crate) fn remove(&mut self, key: u64) -> Option<T> {
        let (i, generation) = split(key);
        let slot = self
            .slots
            .get_mut(i)
            .filter(|s| s.generation == generation)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(i as u32);
        self.len -= 1;
        Some(value)
    }

    /// How many values it holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The values, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }

    /// The values, mutably, in slot order.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(|s| s.value.as_mut())
    }
}

impl<T> fmt::Debug for IdSlab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdSlab")
            .field("len", &self.len)
            .field("slots", &self.slots.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::IdSlab;

    #[test]
    fn a_removed_key_does_not_reach_the_value_that_reuses_its_slot() {
        let mut slab = IdSlab::default();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the slot is reused");
        assert_ne!(a, b);
        assert_eq!(slab.get_mut(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get_mut(b).copied(), Some("b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn values_are_those_not_removed() {
        let mut slab = IdSlab::default();
        let keys: Vec<u64> = (0..5).map(|i| slab.insert(i)).collect();
        assert_eq!(slab.remove(keys[2]), Some(2));
        for v in slab.values_mut() {
            *v *= 10;
        }
        assert_eq!(
            slab.values().copied().collect::<Vec<_>>(),
            vec![0, 10, 30, 40]
        );
        assert_eq!(slab.len(), 4);
        let again = slab.insert(9);
        assert_eq!(again & 0xffff_ffff, 2, "the freed slot is reused");
        assert_eq!(slab.get_mut(keys[4]).copied(), Some(40));
    }
}

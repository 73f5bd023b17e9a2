//! `map`, `imap` and `imap_unordered` over a group or pool.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::rc::{Rc, Weak};

use super::{Inner, What, join_error};
use crate::JoinError;
use crate::JoinHandle;
use crate::hub::waitlist::{WaitList, block_on};

/// The state of one `imap` shared with the links of its greenlets.
struct MapShared<R> {
    finished: RefCell<VecDeque<(usize, JoinHandle<R>)>>,
    wake: WaitList,
}

/// The iterator behind `imap` and `imap_unordered`.
pub(super) struct Mapper<A, R, I, F> {
    group: Rc<Inner>,
    items: Option<I>,
    f: Rc<F>,
    shared: Rc<MapShared<R>>,
    ordered: bool,
    next_in: usize,
    next_out: usize,
    in_flight: usize,
    /// Ordered: results by index; unordered: by finishing order (keys ascending).
    ready: BTreeMap<usize, Result<R, JoinError>>,
    finishing: usize,
    failed: bool,
    _item: PhantomData<fn(A)>,
}

impl<A: 'static, R: 'static, I: Iterator<Item = A>, F: Fn(A) -> R + 'static> Mapper<A, R, I, F> {
    fn collect_finished(&mut self) {
        let finished = std::mem::take(&mut *self.shared.finished.borrow_mut());
        for (index, h) in finished {
            self.in_flight -= 1;
            let key = if self.ordered { index } else { self.finishing };
            self.finishing += 1;
            self.ready.insert(key, h.try_get());
        }
    }

    fn pop_ready(&mut self) -> Option<Result<R, JoinError>> {
        if self.ordered {
            let r = self.ready.remove(&self.next_out)?;
            self.next_out += 1;
            Some(r)
        } else {
            self.ready.pop_first().map(|(_, r)| r)
        }
    }

    /// Starts greenlets for the next items while the group has room; waits for room only when
    /// none of ours is running.
    fn fill(&mut self) -> Result<(), JoinError> {
        while let Some(items) = &mut self.items {
            if self.in_flight == 0 {
                self.group.acquire(None, "imap").map_err(join_error)?;
            } else if !self.group.try_acquire() {
                return Ok(());
            }
            // Returned if no item comes: the items ran out, or their iterator panicked.
            let mut permit = Permit {
                group: &self.group,
                held: true,
            };
            let Some(item) = items.next() else {
                self.items = None;
                return Ok(());
            };
            permit.held = false;
            let f = self.f.clone();
            let h = self.group.start(move || f(item));
            let index = self.next_in;
            self.next_in += 1;
            self.in_flight += 1;
            let shared = Rc::downgrade(&self.shared);
            h.link_internal(move |h| {
                if let Some(shared) = Weak::upgrade(&shared) {
                    shared.finished.borrow_mut().push_back((index, h.clone()));
                    shared.wake.wake_all();
                }
            });
        }
        Ok(())
    }
}

/// A permit of the group taken for an item not yet spawned.
struct Permit<'a> {
    group: &'a Inner,
    held: bool,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.held {
            self.group.release();
        }
    }
}

impl<A: 'static, R: 'static, I: Iterator<Item = A>, F: Fn(A) -> R + 'static> Iterator
    for Mapper<A, R, I, F>
{
    type Item = Result<R, JoinError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.collect_finished();
            if let Some(r) = self.pop_ready() {
                return Some(r);
            }
            if let Err(e) = self.fill() {
                self.failed = true;
                return Some(Err(e));
            }
            if self.in_flight == 0 && self.items.is_none() {
                return None;
            }
            let shared = &self.shared;
            let what = What(self.group.kind, "imap");
            let woken = block_on(&shared.wake, None, &what, || {
                (!shared.finished.borrow().is_empty()).then_some(())
            });
            if let Err(e) = woken {
                self.failed = true;
                return Some(Err(join_error(e.into())));
            }
        }
    }
}

pub(super) fn mapper<A, R, I, F>(
    group: &Rc<Inner>,
    items: I,
    f: F,
    ordered: bool,
) -> Mapper<A, R, I::IntoIter, F>
where
    I: IntoIterator<Item = A>,
{
    Mapper {
        group: group.clone(),
        items: Some(items.into_iter()),
        f: Rc::new(f),
        shared: Rc::new(MapShared {
            finished: RefCell::new(VecDeque::new()),
            wake: WaitList::new(),
        }),
        ordered,
        next_in: 0,
        next_out: 0,
        in_flight: 0,
        ready: BTreeMap::new(),
        finishing: 0,
        failed: false,
        _item: PhantomData,
    }
}

//! Waiting on objects of different kinds at once (gevent's `wait(objects)` and `iwait`): the
//! [`Waitable`] trait, and [`wait_any`], [`wait_objects`] and [`iwait_objects`].
//!
//! A wait registers one [`Wakeup`] of the calling greenlet with every object, parks once, and
//! on wake-up asks each object whether it is ready: a stale wake-up (a wait that ended, an
//! object that became ready and then not) costs a look, never a lost or double resume.

use std::fmt;
use std::time::{Duration, Instant};

use super::waitlist::deadline_after;
use super::{LoopExit, Waiter, check_can_block, park, waiter};

/// A one-shot wake-up of a greenlet parked in [`wait_any`] (or another mixed wait), handed to
/// each [`Waitable`] it waits on. Waking a greenlet that has stopped waiting does nothing.
#[derive(Debug, Clone)]
pub struct Wakeup(Waiter);

impl Wakeup {
    /// Wakes the waiting greenlet if it still waits on this wake-up; returns whether it did.
    pub fn wake(&self) -> bool {
        self.0.wake()
    }

    /// Whether the greenlet still waits on this wake-up.
    pub fn is_waiting(&self) -> bool {
        self.0.is_waiting()
    }

    pub(crate) fn waiter(&self) -> &Waiter {
        &self.0
    }
}

/// Something a greenlet can wait for together with other things (gevent's objects with
/// `rawlink`): [`JoinHandle`](crate::JoinHandle) (finished), [`Event`](crate::sync::Event)
/// (set), [`AsyncResult`](crate::sync::AsyncResult) (complete), the queues and channel
/// receivers (an item to take, or closed), [`Semaphore`](crate::sync::Semaphore) and
/// [`BoundedSemaphore`](crate::sync::BoundedSemaphore) (a permit free, not taken),
/// [`Timeout`](crate::Timeout) (expired).
///
/// A type of yours can take part: say whether it is ready, and keep the [`Wakeup`]s it is
/// given until it becomes ready, then wake them. Waking too often is harmless (the waiter looks
/// again); failing to wake leaves the waiter parked until its timeout.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::{Waitable, sync::Event};
///
/// let worker = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(5)));
/// let cancel = Event::new();
/// let objects: [&dyn Waitable; 2] = [&worker, &cancel];
/// assert_eq!(greenlet::wait_any(&objects, None), Some(0)); // the worker finished first
/// ```
pub trait Waitable {
    /// Whether a wait on it would return at once.
    fn is_ready(&self) -> bool;

    /// Keeps `wakeup` and wakes it once this becomes ready.
    fn add_waiter(&self, wakeup: &Wakeup);

    /// Forgets the wake-ups that no longer wait (called after each wait on it).
    fn remove_waiters(&self) {}

    /// The instant it becomes ready by itself, if any (a [`Timeout`](crate::Timeout)'s
    /// deadline): the wait wakes up then.
    fn ready_at(&self) -> Option<Instant> {
        None
    }
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
    fn add_waiter(&self, wakeup: &Wakeup) {
        (**self).add_waiter(wakeup)
    }
    fn remove_waiters(&self) {
        (**self).remove_waiters()
    }
    fn ready_at(&self) -> Option<Instant> {
        (**self).ready_at()
    }
}

impl<T: 'static> Waitable for crate::JoinHandle<T> {
    fn is_ready(&self) -> bool {
        self.observe();
        crate::JoinHandle::is_ready(self)
    }
    fn add_waiter(&self, wakeup: &Wakeup) {
        self.joiners().push(wakeup.waiter().clone());
    }
    fn remove_waiters(&self) {
        self.joiners().prune();
    }
}

impl Waitable for super::Timeout {
    fn is_ready(&self) -> bool {
        self.is_expired()
    }
    fn add_waiter(&self, _: &Wakeup) {
        // The wait wakes at `ready_at`; nothing else makes a timeout expire.
    }
    fn ready_at(&self) -> Option<Instant> {
        self.deadline()
    }
}

/// Parks once on `objects` (those `skip` does not exclude) until one may be ready, or
/// `deadline`. Returns whether the deadline passed.
fn park_on(
    objects: &[&dyn Waitable],
    skip: impl Fn(usize) -> bool,
    deadline: Option<Instant>,
    what: &dyn fmt::Display,
) -> Result<bool, LoopExit> {
    check_can_block();
    let deadline = objects
        .iter()
        .enumerate()
        .filter(|&(i, _)| !skip(i))
        .filter_map(|(_, o)| o.ready_at())
        .chain(deadline)
        .min();
    let w = waiter();
    let wakeup = Wakeup(w.clone());
    for (_, o) in objects.iter().enumerate().filter(|&(i, _)| !skip(i)) {
        o.add_waiter(&wakeup);
    }
    // However the park ends (a kill included), the objects forget this wait's wake-up.
    struct Forget<'a, 'b>(&'a [&'b dyn Waitable]);
    impl Drop for Forget<'_, '_> {
        fn drop(&mut self) {
            for o in self.0 {
                o.remove_waiters();
            }
        }
    }
    let _forget = Forget(objects);
    let woken = park(&w, deadline, what)?;
    Ok(!woken)
}

/// Waits until one of `objects` is ready, at most `timeout`; returns the index of a ready one
/// (the first in `objects` order when several are), or `None` (gevent's
/// `wait(objects, timeout, count=1)`).
///
/// `None` also covers a wait that could never end (the main greenlet waiting on objects that
/// nothing will make ready: [`LoopExit`]) and a soft kill of the caller; [`wait_objects`]
/// tells those apart.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::{Waitable, sync::{AsyncResult, Queue}};
///
/// let number = greenlet::spawn(|| 42u32);
/// let text: AsyncResult<String> = AsyncResult::new();
/// let q: Queue<u8> = Queue::new();
/// let t = text.clone();
/// greenlet::spawn(move || { greenlet::sleep(Duration::from_millis(5)); t.set("late".into()) });
/// let objects: [&dyn Waitable; 3] = [&text, &q, &number];
/// assert_eq!(greenlet::wait_any(&objects, None), Some(2)); // the number came first
/// assert_eq!(greenlet::wait_any(&objects[..2], Some(Duration::from_millis(1))), None);
/// ```
pub fn wait_any(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Option<usize> {
    let deadline = deadline_after(timeout);
    loop {
        if let Some(i) = objects.iter().position(|o| o.is_ready()) {
            return Some(i);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        match park_on(objects, |_| false, deadline, &WaitWhat(objects.len())) {
            Ok(_) => {}
            Err(_) => return objects.iter().position(|o| o.is_ready()),
        }
    }
}

/// Waits until `count` of `objects` (all of them with `None`) are ready, at most `timeout`;
/// returns the indices of the ready ones, in `objects` order (gevent's
/// `wait(objects, timeout, count)`, for objects of any kinds).
///
/// # Errors
/// [`LoopExit`] when nothing could make enough of them ready, or when the caller was killed
/// softly ([`LoopExit::is_killed`]).
///
/// # Examples
/// ```
/// use greenlet::{Waitable, sync::Event};
///
/// let done = greenlet::spawn(|| ());
/// let (a, b) = (Event::new(), Event::new());
/// let setter = a.clone();
/// greenlet::spawn(move || setter.set());
/// let objects: [&dyn Waitable; 3] = [&a, &b, &done];
/// assert_eq!(greenlet::wait_objects(&objects, None, Some(2)).unwrap(), [0, 2]);
/// ```
pub fn wait_objects(
    objects: &[&dyn Waitable],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Result<Vec<usize>, LoopExit> {
    let want = count.unwrap_or(objects.len()).min(objects.len());
    let deadline = deadline_after(timeout);
    loop {
        let ready: Vec<usize> = (0..objects.len())
            .filter(|&i| objects[i].is_ready())
            .collect();
        if ready.len() >= want || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
        // Only the objects not ready yet: a ready one would wake the wait at once.
        let timed_out = park_on(
            objects,
            |i| ready.binary_search(&i).is_ok(),
            deadline,
            &WaitWhat(objects.len()),
        )?;
        if timed_out {
            return Ok((0..objects.len())
                .filter(|&i| objects[i].is_ready())
                .collect());
        }
    }
}

/// Yields the index of each of `objects` as it becomes ready, each once (gevent's `iwait`,
/// for objects of any kinds). Objects ready together come in `objects` order. The iterator
/// ends when all have come, at `timeout`, or when the wait could never end ([`LoopExit`]) or
/// the caller is killed softly.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::{Waitable, sync::{Event, Queue}};
///
/// let slow = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(20)));
/// let q = Queue::new();
/// let never = Event::new();
/// let p = q.clone();
/// greenlet::spawn(move || p.put("item").unwrap());
/// let objects: [&dyn Waitable; 3] = [&slow, &never, &q];
/// let order: Vec<usize> = greenlet::iwait_objects(&objects, Some(Duration::from_secs(5)))
///     .take(2)
///     .collect();
/// assert_eq!(order, [2, 0]); // the queue got an item, then the greenlet finished
/// ```
pub fn iwait_objects<'a>(
    objects: &'a [&'a dyn Waitable],
    timeout: Option<Duration>,
) -> impl Iterator<Item = usize> + 'a {
    let deadline = deadline_after(timeout);
    let mut yielded = vec![false; objects.len()];
    let mut left = objects.len();
    std::iter::from_fn(move || {
        loop {
            if left == 0 {
                return None;
            }
            if let Some(i) = (0..objects.len()).find(|&i| !yielded[i] && objects[i].is_ready()) {
                yielded[i] = true;
                left -= 1;
                return Some(i);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            let timed_out = park_on(objects, |i| yielded[i], deadline, &WaitWhat(left)).ok()?;
            if timed_out && !(0..objects.len()).any(|i| !yielded[i] && objects[i].is_ready()) {
                return None;
            }
        }
    })
}

/// Describes a mixed wait for a [`LoopExit`] message.
struct WaitWhat(usize);

impl fmt::Display for WaitWhat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} waitable objects", self.0)
    }
}

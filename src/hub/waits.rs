//! Waiting on many greenlets at once (gevent's `joinall`, `wait`, `iwait`, `killall`), on the
//! whole hub (`wait_all`), and for the hub to have nothing else to do (`idle`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::spawn::{JoinError, JoinHandle};
use super::waitlist::{BlockError, WaitList, block_on, deadline_after};
use super::{LoopExit, park, waiter, with_hub};
use crate::sync::WaitError;

/// Waits until the given greenlets finish: all of them, or `count` of them, or until
/// `timeout`; returns the indices of those that finished, in order (gevent's `joinall`).
///
/// # Errors
/// [`LoopExit`] when nothing could finish them.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = (0..3u64).map(|i| greenlet::spawn(move || greenlet::sleep(Duration::from_millis(i)))).collect();
/// assert_eq!(greenlet::joinall(&hs, None, None).unwrap(), [0, 1, 2]);
/// ```
pub fn joinall<T: 'static>(
    handles: &[JoinHandle<T>],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Result<Vec<usize>, LoopExit> {
    let want = count.unwrap_or(handles.len()).min(handles.len());
    let deadline = deadline_after(timeout);
    if want == handles.len() {
        // Waiting for all: joining one after the other is enough, with nothing to allocate.
        for h in handles {
            match h.wait(deadline) {
                Ok(()) | Err(JoinError::TimedOut) => {}
                Err(JoinError::LoopExit(e)) => return Err(e),
                Err(JoinError::Killed) => return Err(LoopExit::killed(&"joinall")),
                Err(_) => unreachable!("wait fails only by time, LoopExit or a soft kill"),
            }
        }
        return Ok((0..handles.len())
            .filter(|&i| handles[i].is_ready())
            .collect());
    }
    let finished = Finished::watch(handles);
    match finished.wait_for(want, deadline, handles.len()) {
        Ok(()) | Err(BlockError::TimedOut) => {}
        Err(BlockError::LoopExit(e)) => return Err(e),
        Err(BlockError::Killed) => return Err(LoopExit::killed(&"joinall")),
    }
    let mut done = finished.order.borrow().clone();
    done.sort_unstable();
    Ok(done)
}

/// Collects the indices of watched handles in the order they finish: each handle notifies it
/// once, so waiting on n handles costs O(n), not a rescan per wake-up.
struct Finished {
    order: RefCell<Vec<usize>>,
    waiters: WaitList,
}

impl Finished {
    fn watch<T: 'static>(handles: &[JoinHandle<T>]) -> Rc<Finished> {
        let finished = Rc::new(Finished {
            order: RefCell::new(Vec::new()),
            waiters: WaitList::new(),
        });
        for (i, h) in handles.iter().enumerate() {
            h.observe();
            // Weak: a wait that gave up must not keep its collector alive in the handle.
            let weak = Rc::downgrade(&finished);
            let watching = h.watch(Box::new(move || {
                if let Some(f) = weak.upgrade() {
                    f.order.borrow_mut().push(i);
                    f.waiters.wake_all();
                }
            }));
            if !watching {
                finished.order.borrow_mut().push(i);
            }
        }
        finished
    }

    fn wait_for(
        &self,
        want: usize,
        deadline: Option<Instant>,
        of: usize,
    ) -> Result<(), BlockError> {
        let what = format!("{want} of {of} greenlets");
        block_on(&self.waiters, deadline, &what, || {
            (self.order.borrow().len() >= want).then_some(())
        })
    }
}

/// [`joinall`] by another name: waits for the given greenlets (gevent's `wait(objects)`).
///
/// # Errors
/// As [`joinall`].
pub fn wait<T: 'static>(
    handles: &[JoinHandle<T>],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Result<Vec<usize>, LoopExit> {
    joinall(handles, timeout, count)
}

/// How [`killall`] kills and how long it waits: the `block` and `timeout` of gevent's
/// `killall(greenlets, block, timeout)`, as one value that reads at the call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// Unwind each greenlet with [`GreenletExit`](crate::GreenletExit) when it next runs, and
    /// return at once (`block=False`).
    Now,
    /// Unwind each greenlet and wait until all are dead (`block=True`, no timeout). Their
    /// destructors cannot block (see [`JoinHandle::kill`]).
    Join,
    /// Unwind each greenlet and wait at most this long for all to be dead (`block=True,
    /// timeout=...` as this crate did it before [`Kill::Grace`]: only a greenlet that catches
    /// the unwind and keeps running can outlast it).
    JoinTimeout(Duration),
    /// Ask each greenlet to finish (a soft kill: its blocking call fails with
    /// [`Killed`](crate::Killed), and its cleanup may block), wait up to this long for all to
    /// finish, then unwind those still running and wait up to this long again (`block=True,
    /// timeout=...`).
    Grace(Duration),
}

impl Kill {
    /// The value for the `block` and `timeout` arguments of the old `killall(handles, block,
    /// timeout)`, with the same behaviour: `false` is [`Kill::Now`]; `true` is [`Kill::Join`]
    /// without a timeout and [`Kill::JoinTimeout`] with one. The mechanical migration is
    /// `killall(handles, Kill::from_block(block, timeout))`; where the greenlets' cleanup
    /// must block (gevent's `except GreenletExit:`), [`Kill::Grace`] is what gevent does.
    pub const fn from_block(block: bool, timeout: Option<Duration>) -> Kill {
        match (block, timeout) {
            (false, _) => Kill::Now,
            (true, None) => Kill::Join,
            (true, Some(t)) => Kill::JoinTimeout(t),
        }
    }
}

/// Kills every greenlet given (gevent's `killall`), as `how` says: at once without waiting, at
/// once waiting for them to die (at most a time, or not), or gracefully with a soft kill first
/// (see [`Kill`]).
///
/// # Errors
/// [`JoinError::TimedOut`] if some are still alive when the waits of [`Kill::JoinTimeout`] or
/// [`Kill::Grace`] are over (only a greenlet that catches the unwind and keeps running can
/// be); [`JoinError::LoopExit`];
/// [`JoinError::Killed`] if the calling greenlet is killed softly while it waits.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::Kill;
///
/// let hs: Vec<_> = (0..3)
///     .map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600))))
///     .collect();
/// greenlet::yield_now(); // they start and sleep
/// // Each sleep returns early (a soft kill); they have up to 50 ms to finish.
/// greenlet::killall(&hs, Kill::Grace(Duration::from_millis(50))).unwrap();
/// assert!(hs.iter().all(|h| h.is_ready()));
/// ```
pub fn killall<T: 'static>(handles: &[JoinHandle<T>], how: Kill) -> Result<(), JoinError> {
    let join = |timeout| match joinall(handles, timeout, None) {
        Ok(done) => Ok(done.len() == handles.len()),
        Err(e) if e.is_killed() => Err(JoinError::Killed),
        Err(e) => Err(JoinError::LoopExit(e)),
    };
    let unwind = || {
        for h in handles {
            h.kill_nowait();
        }
    };
    let all_dead = match how {
        Kill::Now => {
            unwind();
            return Ok(());
        }
        Kill::Join => {
            unwind();
            join(None)?
        }
        Kill::JoinTimeout(t) => {
            unwind();
            join(Some(t))?
        }
        Kill::Grace(t) => {
            for h in handles {
                h.kill_soft();
            }
            join(Some(t))? || {
                unwind();
                join(Some(t))?
            }
        }
    };
    if all_dead {
        Ok(())
    } else {
        Err(JoinError::TimedOut)
    }
}

/// Yields the indices of `handles` as they finish, in finishing order (gevent's `iwait`).
/// The iterator ends when all have finished, or at `timeout`, or on [`LoopExit`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let slow = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(30)));
/// let fast = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(1)));
/// let order: Vec<usize> = greenlet::iwait(&[slow, fast], None).collect();
/// assert_eq!(order, [1, 0]);
/// ```
pub fn iwait<T: 'static>(
    handles: &[JoinHandle<T>],
    timeout: Option<Duration>,
) -> impl Iterator<Item = usize> + '_ {
    let deadline = deadline_after(timeout);
    let finished = Finished::watch(handles);
    let mut next = 0;
    std::iter::from_fn(move || {
        if next == handles.len() {
            return None;
        }
        finished.wait_for(next + 1, deadline, handles.len()).ok()?;
        next += 1;
        Some(finished.order.borrow()[next - 1])
    })
}

/// Runs the hub until nothing is left that could ever run (gevent's `wait()` without
/// objects, `hub.join()`): every spawned greenlet has finished or waits on something that can
/// never happen. Returns `Ok(true)` then, or `Ok(false)` if `timeout` (or a [`Timeout`] of the
/// main greenlet) ran out first. The timeout itself does not keep the hub running.
///
/// [`Timeout`]: crate::Timeout
///
/// # Errors
/// A [`LoopExit`] whose [`is_stopped`](LoopExit::is_stopped) is true when the hub was stopped
/// by a [`HubHandle`](crate::HubHandle).
///
/// # Panics
/// When called from a greenlet other than the main one: only the main greenlet is told that
/// the hub ran dry (gevent asserts the same).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// for i in 0..3u64 {
///     // Fire and forget: nobody keeps the handles.
///     greenlet::spawn(move || greenlet::sleep(Duration::from_millis(i)));
/// }
/// assert!(greenlet::wait_all(None).unwrap());
/// ```
#[doc(alias = "wait()")]
pub fn wait_all(timeout: Option<Duration>) -> Result<bool, LoopExit> {
    super::check_can_block();
    assert!(
        crate::current().is_main(),
        "greenlet::wait_all can only be called from the main greenlet"
    );
    let deadline = deadline_after(timeout);
    loop {
        let w = super::waiter();
        // Nothing holds `w` but the (weak) timer: only the hub running dry, the timeout or a
        // stop resume us.
        match super::park_with(&w, deadline, &"everything to finish (wait_all)", true, true) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if e.is_stopped() => return Err(e),
            Err(_) => return Ok(true),
        }
    }
}

/// Waits until the hub has nothing else to do (gevent's `idle()`): every greenlet that is
/// ready has run, and no I/O or timer is due. Then the caller runs again, before the hub would
/// block in its poll.
///
/// # Errors
/// [`WaitError::TimedOut`] under an expired [`Timeout`](crate::Timeout);
/// [`WaitError::Killed`] if the greenlet is killed softly; [`WaitError::LoopExit`] when the
/// hub is stopped.
///
/// # Examples
/// ```
/// use std::{cell::Cell, rc::Rc};
///
/// let steps = Rc::new(Cell::new(0));
/// let s = steps.clone();
/// greenlet::spawn(move || {
///     for _ in 0..10 {
///         s.set(s.get() + 1);
///         greenlet::yield_now(); // stays ready: the hub is not idle
///     }
/// });
/// greenlet::idle().unwrap();
/// assert_eq!(steps.get(), 10);
/// ```
#[doc(alias = "gevent.idle")]
pub fn idle() -> Result<(), WaitError> {
    idle_until(None)
}

/// [`idle`], waiting at most `timeout` for the hub to run out of other work.
///
/// # Errors
/// [`WaitError::TimedOut`] when other greenlets kept the hub busy that long; otherwise as
/// [`idle`].
pub fn idle_timeout(timeout: Duration) -> Result<(), WaitError> {
    idle_until(deadline_after(Some(timeout)))
}

fn idle_until(deadline: Option<Instant>) -> Result<(), WaitError> {
    super::check_can_block();
    let w = waiter();
    with_hub(|hub| hub.idlers.push(w.clone()));
    let r = park(&w, deadline, &"the hub to be idle");
    match r {
        Ok(true) => Ok(()),
        Ok(false) => {
            with_hub(|hub| hub.idlers.prune());
            Err(WaitError::TimedOut)
        }
        Err(e) => {
            with_hub(|hub| hub.idlers.prune());
            Err(e.into())
        }
    }
}

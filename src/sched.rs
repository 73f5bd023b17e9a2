//! The seam between the core and the scheduler built on it.
//!
//! The core is the greenlets themselves and their switches (`greenlet.rs`, `switch.rs`,
//! `thread_state.rs`, `value.rs`, `stack/`); the scheduler is the hub (`crate::hub`), which
//! parks, wakes and schedules greenlets on top of it. The core calls the scheduler only
//! through [`Scheduler`], and [`Sched`] names the one implementation, so a reader can change
//! the hub without reading the switch, and the switch without reading the hub, as long as this
//! contract holds. gevent's split is the model: greenlet knows nothing of the hub, the hub is
//! one more greenlet (here a pseudo-greenlet of the dispatch loop, `Kind::Hub`).
//!
//! The hub, in turn, uses the core's crate-internal API (`switch::switch_to_hub`, handles,
//! `switch::destroy`); nothing in the core names a hub type except [`Sched`] below.

use crate::greenlet::{Greenlet, Inner};
use crate::switch::Msg;

/// What the core needs from a scheduler. All of it runs on the greenlets' own thread.
pub(crate) trait Scheduler {
    /// What the scheduler keeps in every greenlet (its park state, greenlet-locals, timeouts):
    /// the core stores it in the greenlet and never looks inside.
    type Data: Default;
    /// What is left of a greenlet's [`Data`](Scheduler::Data) when it is freed: user values,
    /// which the core drops as the context allows.
    type Leftovers;

    /// Control reached the scheduler (the hub is current): a greenlet parked or yielded (with
    /// a wake-up, which the core does not hand over), or one whose parent is the hub finished
    /// (see [`delivered`](Scheduler::delivered)). Returns the greenlet to resume, with what to
    /// resume it with put in its inbox (main when nothing else can ever run: its blocking call
    /// then fails). May block the thread until something is ready.
    fn next() -> Greenlet;

    /// What reached the scheduler was not a wake-up: `msg` is the outcome of a greenlet whose
    /// parent is the hub (or a value switched to it). Called before [`next`](Scheduler::next).
    fn delivered(msg: Msg);

    /// The last handle of the suspended greenlet `g` went while the scheduler runs (and may hold
    /// borrows of its own state): destroy it at the scheduler's next safe point.
    fn defer_destroy(g: Greenlet);

    /// `g`'s function ended with `outcome`, on its own stack, while it is still current: the
    /// scheduler drops what it keeps for the greenlet (its destructors may use the scheduler)
    /// and may replace the outcome (a kill it had to hold back).
    fn finishing(g: &Inner, outcome: Msg) -> Msg;

    /// Takes what is left in `data` when its greenlet is freed; `None` when there is nothing.
    fn leftovers(data: &mut Self::Data) -> Option<Self::Leftovers>;

    /// Thread exit: drops the values the scheduler keeps for main (which never finishes);
    /// returns whether there were any.
    fn clear_main(main: &Inner) -> bool;

    /// Thread exit: empties the scheduler's queues, destroying the greenlets it was asked to;
    /// returns whether there was anything.
    fn drain() -> bool;

    /// Thread exit: frees the scheduler's own state. Code that runs later finds none and may
    /// create it again.
    fn free();

    /// Whether the scheduler's state exists on this thread.
    fn exists() -> bool;
}

/// The scheduler of this crate: the hub.
pub(crate) type Sched = crate::hub::HubScheduler;

/// The per-greenlet data of [`Sched`].
pub(crate) type SchedData = <Sched as Scheduler>::Data;

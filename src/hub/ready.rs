//! An entry of the hub's ready queue: a greenlet to resume, and what to resume it with.
//!
//! Nearly every entry is a plain wake-up (a yield, a wait that ended, a spawn), so that case is
//! the greenlet's handle alone: sixteen bytes to push and pop on every hand-over instead of the
//! thirty-two a handle and a message take. The rare message (a kill's payload) is boxed.

use crate::greenlet::Greenlet;
use crate::switch::Msg;

pub(crate) enum Ready {
    /// Resume with a plain wake-up.
    Wake(Greenlet),
    /// Resume with another message.
    With(Box<(Greenlet, Msg)>),
}

impl Ready {
    /// An entry resuming `g` with `msg`.
    pub(crate) fn new(g: Greenlet, msg: Msg) -> Ready {
        if msg.is_wake() {
            msg.discard_wake();
            Ready::Wake(g)
        } else {
            Ready::With(Box::new((g, msg)))
        }
    }

    pub(crate) fn greenlet(&self) -> &Greenlet {
        match self {
            Ready::Wake(g) => g,
            Ready::With(entry) => &entry.0,
        }
    }

    pub(crate) fn into_parts(self) -> (Greenlet, Msg) {
        match self {
            Ready::Wake(g) => (g, Msg::wake()),
            Ready::With(entry) => *entry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_up_is_not_boxed_and_other_messages_keep_their_value() {
        let g = crate::current();
        let wake = Ready::new(g.clone(), Msg::wake());
        assert!(matches!(wake, Ready::Wake(_)));
        assert!(*wake.greenlet() == g);
        assert!(wake.into_parts().1.is_wake());

        let with = Ready::new(g.clone(), Msg::value(7_u32));
        assert!(matches!(with, Ready::With(_)));
        assert!(*with.greenlet() == g);
        assert_eq!(with.into_parts().1.take::<u32>().unwrap(), 7);
        assert_eq!(std::mem::size_of::<Ready>(), 16);
    }
}

//! The hub (in progress).
use crate::greenlet::Greenlet;
use crate::switch::Msg;

/// Per-greenlet data the hub keeps.
#[derive(Debug, Default)]
pub(crate) struct GreenletData {}

pub(crate) fn next(_msg: Msg) -> (Greenlet, Msg) {
    (crate::switch::main_greenlet(), Msg::Failure(crate::SwitchError::NotAllowed("no hub yet")))
}

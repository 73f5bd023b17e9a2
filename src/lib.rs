//! Python's greenlet + gevent for Rust.
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod error;
mod generator;
mod greenlet;
mod hub;
mod stack;
mod switch;
pub mod threadpool;
mod value;

pub use crate::error::{GreenletExit, Panic, SwitchError};
pub use crate::generator::{Generator, GeneratorState, Yielder};
pub use crate::greenlet::{Builder, Greenlet, ParentError, current, main};
pub use crate::hub::{
    Elapsed, HubBuilder, HubHandle, JoinError, JoinHandle, LinkFn, LocalKey, LoopExit, SpawnBuilder, iwait,
    joinall, killall, sleep, sleep_until, spawn, spawn_later, wait, with_timeout, yield_now, Timeout,
};
pub use crate::stack::DEFAULT_STACK_SIZE;

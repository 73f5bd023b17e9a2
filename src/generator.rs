//! Generators: a greenlet that hands values back to whoever resumes it, like a Python generator.

use std::fmt;
use std::marker::PhantomData;

use crate::error::SwitchError;
use crate::greenlet::{Builder, Greenlet};

/// What one step of a [`Generator`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorState<Y, R> {
    /// The body called [`Yielder::yield_`] with this value and is suspended.
    Yielded(Y),
    /// The body returned this value; the generator is complete.
    Complete(R),
}

/// What a generator's greenlet hands its resumer when it yields.
struct Yielded<Y>(Y);

/// What a generator's greenlet hands its resumer when its body returns.
struct Returned<R>(R);

/// The generator's side of the conversation: passed to its body, used to yield.
pub struct Yielder<I, Y> {
    _types: PhantomData<fn(Y) -> I>,
}

impl<I: 'static, Y: 'static> Yielder<I, Y> {
    /// Hands `value` to the resumer and suspends until the next [`Generator::send`], whose
    /// input it returns.
    ///
    /// The generator's body runs as a greenlet, so it may also block on the hub (sleep, I/O)
    /// between yields; its resumer simply waits.
    ///
    /// # Panics
    /// Panics if called from anything other than the body of the generator it was given to,
    /// and where no switch is allowed (see the crate docs): in particular from a destructor
    /// that runs while the body unwinds, whether from a panic of its own or because the
    /// generator was dropped while suspended (Python raises "generator ignored GeneratorExit"
    /// there). A yield cannot return without an input, and a panic in a destructor during an
    /// unwind aborts the process, so a destructor in the body must not yield.
    #[doc(alias = "yield")]
    pub fn yield_(&self, value: Y) -> I {
        let resumer = crate::current().parent_or_main();
        match resumer.switch::<Yielded<Y>, I>(Yielded(value)) {
            Ok(input) => input,
            Err(e @ SwitchError::NotAllowed(_)) => panic!("a generator cannot yield here: {e}"),
            Err(e) => panic!("generator resumed with something other than `send`: {e}"),
        }
    }
}

impl<I, Y> fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}

/// A generator: a function that yields values of type `Y`, receives values of type `I` at each
/// resumption, and finally returns an `R`. It runs on its own greenlet stack.
///
/// Where the input is `()`, a generator is an [`Iterator`] over what it yields.
///
/// # Examples
/// ```
/// use greenlet::{Generator, GeneratorState};
///
/// // A running total: each `send` adds to it and gets the new total back.
/// let mut total = Generator::new(|co, mut x: i64| {
///     let mut sum = 0;
///     loop {
///         sum += x;
///         if x == 0 { return sum; }
///         x = co.yield_(sum);
///     }
/// });
/// assert_eq!(total.send(5), GeneratorState::Yielded(5));
/// assert_eq!(total.send(10), GeneratorState::Yielded(15));
/// assert_eq!(total.send(0), GeneratorState::Complete(15));
///
/// let squares: Vec<u32> = greenlet::Generator::new(|co, ()| {
///     for i in 1..=4 { co.yield_(i * i); }
/// })
/// .collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub struct Generator<I, Y, R> {
    greenlet: Greenlet,
    complete: bool,
    _types: PhantomData<fn(I) -> (Y, R)>,
}

impl<I: 'static, Y: 'static, R: 'static> Generator<I, Y, R> {
    /// Creates a generator running `body` with a [`Yielder`] and the first input.
    ///
    /// # Panics
    /// Panics if no stack can be had; see [`Generator::with_builder`].
    pub fn new<F>(body: F) -> Generator<I, Y, R>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        match Generator::with_builder(Builder::new(), body) {
            Ok(g) => g,
            Err(e) => panic!("greenlet::Generator::new: {e}"),
        }
    }

    /// Creates a generator on a greenlet configured by `builder` (name, stack size).
    ///
    /// # Errors
    /// When no stack can be had (see [`Builder::build`]).
    pub fn with_builder<F>(builder: Builder, body: F) -> std::io::Result<Generator<I, Y, R>>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        let greenlet = builder.build(move |input: I| {
            let co = Yielder {
                _types: PhantomData,
            };
            Returned(body(&co, input))
        })?;
        Ok(Generator {
            greenlet,
            complete: false,
            _types: PhantomData,
        })
    }

    /// Resumes the generator with `input`: the first call starts the body with it, later calls
    /// make the pending [`Yielder::yield_`] return it. Python's `gen.send(input)`.
    ///
    /// # Panics
    /// Panics if the generator is already complete, and propagates a panic of the body to the
    /// caller (as a Python generator raises in its caller).
    pub fn send(&mut self, input: I) -> GeneratorState<Y, R> {
        assert!(
            !self.complete,
            "greenlet::Generator resumed after it completed"
        );
        // Whoever resumes is where yields and the final value go.
        let me = crate::current();
        if self.greenlet.set_parent(&me).is_err() {
            panic!("a generator cannot resume itself");
        }
        let outcome = self.greenlet.switch_value(input);
        let value = match outcome {
            Ok(value) => value,
            Err(SwitchError::Panicked(p)) => {
                self.complete = true;
                std::panic::resume_unwind(p.into_payload())
            }
            Err(e) => {
                self.complete = true;
                panic!("greenlet::Generator body ended abnormally: {e}")
            }
        };
        match value.take::<Yielded<Y>>() {
            Ok(Yielded(y)) => GeneratorState::Yielded(y),
            Err(value) => {
                self.complete = true;
                match value.take::<Returned<R>>() {
                    Ok(Returned(r)) => GeneratorState::Complete(r),
                    Err(v) => panic!("generator received an unexpected `{}`", v.type_name()),
                }
            }
        }
    }

    /// Alias of [`send`](Generator::send), named after `corosensei`/std coroutines.
    pub fn resume(&mut self, input: I) -> GeneratorState<Y, R> {
        self.send(input)
    }

    /// Whether the body has returned.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

impl<Y: 'static, R: 'static> Iterator for Generator<(), Y, R> {
    type Item = Y;

    fn next(&mut self) -> Option<Y> {
        if self.complete {
            return None;
        }
        match self.send(()) {
            GeneratorState::Yielded(y) => Some(y),
            GeneratorState::Complete(_) => None,
        }
    }
}

impl<I, Y, R> fmt::Debug for Generator<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("greenlet", &self.greenlet)
            .field("complete", &self.complete)
            .finish()
    }
}

//! Nothing but tests: see `tests/curl.rs`.

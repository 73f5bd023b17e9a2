//! The protocol parsers of the network examples (`examples/common/*.rs`), tested here because
//! example targets do not run unit tests.

#[path = "../examples/common/http.rs"]
mod http;
#[path = "../examples/common/resp.rs"]
mod resp;

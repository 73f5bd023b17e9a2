//! The tour: every demo of this crate, one after another, each headed by a line saying what
//! it shows. `cargo run --example tour` runs them all; `cargo run --example tour -- NAME...`
//! runs only those named.
//!
//! Each demo is an example of its own (`cargo run --example NAME`) whose file has a
//! `pub fn main()`; the tour includes its code as a module and runs it on a fresh thread, so
//! every demo starts with a fresh hub. Adding a demo is one line in the `demos!` list below.

// Each demo is also a binary of its own and includes the shared helpers of examples/common as
// its own modules; gathered here, those files are loaded once per demo that uses them.
#![allow(clippy::duplicate_mod)]

macro_rules! demos {
    ($($file:literal => $name:ident: $what:literal,)*) => {
        $(
            #[path = $file]
            mod $name;
        )*

        /// Every demo: its name, what it shows, and its `main`.
        const DEMOS: &[(&str, &str, fn())] = &[$((stringify!($name), $what, $name::main),)*];
    };
}

demos! {
    "greenlet_switch.rs" => greenlet_switch: "two greenlets switching explicitly (article 1.1)",
    "baozi.rs" => baozi: "a producer feeding two consumer generators with send (article 1)",
    "gevent_sleep.rs" => gevent_sleep: "two greenlets handing control over through the hub with sleep(0) (article 1.2)",
    "sleep_sort.rs" => sleep_sort: "the hub's timers waking sleeping greenlets in deadline order",
    "alive.rs" => alive: "parked greenlets and what each costs in memory (1,000 here; pass 1000000 to the example)",
    "echo_server.rs" => echo_server: "the article's gevent echo server, one greenlet per connection (article 1.2)",
    "echo_clients.rs" => echo_clients: "100 concurrent echo clients as greenlets on one thread (article 1.2)",
    "select_server.rs" => select_server: "the article's select() echo server, on greenlet::select (article 2.3)",
    "select_client.rs" => select_client: "the article's select() client (article 2.3)",
    "selectors_echo.rs" => selectors_echo: "the article's selectors echo server, on greenlet::select::Selector (article 2.4)",
    "http_hello.rs" => http_hello: "an HTTP/1.1 keep-alive hello server, pipelined requests answered in order",
    "redis_server.rs" => redis_server: "a RESP server that redis-cli, redis-benchmark and redis-py talk to",
    "concurrent_fetch.rs" => concurrent_fetch: "fetching URLs one after another, then concurrently (article 1.2)",
    "graceful_shutdown.rs" => graceful_shutdown: "SIGTERM caught by a greenlet stops a StreamServer with stop(grace)",
    "tls_echo.rs" => tls_echo: "a TLS echo server and clients, rustls over green sockets, certificate made by rcgen",
    "websocket_echo.rs" => websocket_echo: "a WebSocket echo server and clients, tungstenite over green sockets",
}

// Built with `--features monkey`: unmodified blocking code cooperating. Last, because its
// `patch_all()` holds for the rest of the process.
#[cfg(feature = "monkey")]
#[path = "http_hello_std.rs"]
mod http_hello_std;
#[cfg(feature = "monkey")]
#[path = "monkey_cost.rs"]
mod monkey_cost;
#[cfg(feature = "monkey")]
#[path = "monkey_fetch.rs"]
mod monkey_fetch;

/// The demos this build has.
fn demos() -> Vec<(&'static str, &'static str, fn())> {
    #[allow(unused_mut)]
    let mut all = DEMOS.to_vec();
    #[cfg(feature = "monkey")]
    all.extend([
        (
            "monkey_fetch",
            "the article's concurrent fetch with an unmodified blocking client (ureq) after monkey::patch_all()",
            monkey_fetch::main as fn(),
        ),
        (
            "http_hello_std",
            "http_hello written with plain std::net, concurrent through monkey::patch_all()",
            http_hello_std::main,
        ),
        (
            "monkey_cost",
            "what a hooked read costs on a thread without greenlets, next to the raw system call",
            monkey_cost::main,
        ),
    ]);
    all
}

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut failed = Vec::new();
    let mut first = true;
    for (name, what, demo) in demos() {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        if !first {
            println!();
        }
        first = false;
        println!("== {name}: {what} ==");
        let ran = std::thread::Builder::new()
            .name(name.into())
            .spawn(demo)
            .and_then(|t| {
                t.join()
                    .map_err(|_| std::io::Error::other("the demo panicked"))
            });
        if let Err(e) = ran {
            eprintln!("tour: demo {name} failed: {e}");
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        eprintln!(
            "tour: {} demo(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
        std::process::exit(1);
    }
}

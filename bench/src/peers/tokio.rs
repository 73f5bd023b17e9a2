//! tokio on a current-thread runtime: stackless tasks, the single-threaded async baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::Notify;

use super::{Alive, AliveProbe};
use crate::proto::ConnBuf;

fn runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio current-thread runtime")
}

/// Two tasks each calling `yield_now` `n` times: ns per switch.
pub fn yield_now(n: u64) -> f64 {
    runtime().block_on(async move {
        let start = Instant::now();
        let both: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..n {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in both {
            h.await.expect("yielder panicked");
        }
        start.elapsed().as_nanos() as f64 / (2 * n) as f64
    })
}

/// Spawns `n` tasks that each yield once, joins them all: µs per task.
pub fn spawn(n: u64) -> f64 {
    spawn_on(&runtime(), n)
}

/// [`spawn`] twice on one runtime: µs per task of the second round.
pub fn spawn_warm(n: u64) -> f64 {
    let rt = runtime();
    spawn_on(&rt, n);
    spawn_on(&rt, n)
}

/// [`spawn`] on the runtime given (the two-core rows use a multi-thread one).
pub fn spawn_on(rt: &Runtime, n: u64) -> f64 {
    rt.block_on(async move {
        let start = Instant::now();
        let all: Vec<_> = (0..n)
            .map(|i| {
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for h in all {
            sum += h.await.expect("joined");
        }
        let dt = start.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        dt.as_secs_f64() * 1e6 / n as f64
    })
}

/// Ping-pong between the main task and an echo task over two `mpsc::channel(1)`: ns per message.
pub fn channel(n: u64) -> f64 {
    runtime().block_on(async move {
        let (to_echo, mut echo_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (to_main, mut main_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = echo_rx.recv().await {
                if to_main.send(v + 1).await.is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..n {
            to_echo.send(v).await.expect("echo alive");
            v = main_rx.recv().await.expect("echo alive");
        }
        let dt = start.elapsed();
        assert_eq!(v, n);
        drop(to_echo);
        echo.await.expect("echo panicked");
        dt.as_nanos() as f64 / (2 * n) as f64
    })
}

/// `n` tasks, each parked on one shared `Notify`.
pub fn alive(n: u64) -> Result<Alive, String> {
    let rt = runtime();
    let figures = rt.block_on(async move {
        let probe = AliveProbe::start(n);
        let started = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Notify::new());
        let mut all = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (started, gate) = (started.clone(), gate.clone());
            all.push(tokio::spawn(async move {
                started.fetch_add(1, Ordering::Relaxed);
                gate.notified().await;
            }));
            probe.tick(i + 1);
        }
        while started.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        let figures = probe.finish();
        std::mem::forget((all, gate));
        Ok(figures)
    });
    // Dropping the runtime would cancel every task: only the teardown would be timed.
    std::mem::forget(rt);
    figures
}

/// A task per connection; answers with `parse` until the process is killed.
pub fn serve(port: u16, parse: fn(&[u8], &mut Vec<u8>) -> usize) -> Result<(), String> {
    runtime().block_on(accept_loop(port, parse))
}

/// [`serve`] on a multi-thread runtime of `threads` workers (one listener; tokio's scheduler
/// moves the tasks between workers).
pub fn serve_threads(
    port: u16,
    threads: usize,
    parse: fn(&[u8], &mut Vec<u8>) -> usize,
) -> Result<(), String> {
    Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio multi-thread runtime: {e}"))?
        .block_on(accept_loop(port, parse))
}

async fn accept_loop(port: u16, parse: fn(&[u8], &mut Vec<u8>) -> usize) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut conn = ConnBuf::new();
            loop {
                let n = match stream.read(conn.spare()).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                conn.filled(n, parse);
                if !conn.out.is_empty() {
                    if stream.write_all(&conn.out).await.is_err() {
                        return;
                    }
                    conn.out.clear();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::{self, testing};

    #[test]
    fn micro_workloads_give_times() {
        for f in [
            super::yield_now,
            super::spawn,
            super::spawn_warm,
            super::channel,
        ] {
            let v = f(100);
            assert!(v.is_finite() && v > 0.0);
        }
    }

    #[test]
    fn alive_parks_them_all() {
        assert_eq!(super::alive(100).expect("100 tasks").n, 100);
    }

    #[test]
    fn serves_http_and_resp() {
        testing::check_http(testing::start(|port| super::serve(port, proto::http)));
        testing::check_resp(testing::start(|port| super::serve(port, proto::resp)));
    }
}

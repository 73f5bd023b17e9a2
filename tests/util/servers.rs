//! Example programs run as servers and clients, for the tests that drive them: an example
//! server process killed on drop, bounded runs of other programs, the Python clients of
//! `tests/py/`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The timeout of every client socket of these tests.
pub const T: Duration = Duration::from_secs(10);

/// Whether `program` is on the PATH; prints a note when it is not.
pub fn have(program: &str, purpose: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()));
    if !found {
        println!("note: {program} is not installed: skipping {purpose}");
    }
    found
}

/// An example server process, killed on drop.
pub struct ExampleServer {
    /// The server process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What the server printed after its first line (drained by a thread, so that a
    /// chatty server never blocks on a full pipe).
    output: Arc<Mutex<String>>,
}

impl ExampleServer {
    /// Starts example `name` with port 0 and reads the `listening on ADDR` line.
    pub fn start(name: &str) -> ExampleServer {
        ExampleServer::start_with(name, &[])
    }

    /// [`ExampleServer::start`] with more arguments after the port.
    pub fn start_with(name: &str, args: &[&str]) -> ExampleServer {
        let mut child = Command::new(super::example_binary(name))
            .arg("0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let mut out = sink.lock().unwrap_or_else(|e| e.into_inner());
                out.push_str(&line);
                out.push('\n');
            }
        });
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}: expected `listening on ADDR` first, got {first:?}"));
        ExampleServer {
            child,
            addr,
            output,
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.set_write_timeout(Some(T)).unwrap();
        s
    }

    /// What the server printed so far, after its first line.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion, killing it after 60 s.
pub fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

impl ExampleServer {
    /// Waits until the server has printed `pattern` (after its first line); fails the test if
    /// it has not within [`super::NOT_HANGING`].
    pub fn wait_for_output(&self, pattern: &str) -> String {
        let deadline = Instant::now() + super::NOT_HANGING;
        loop {
            let out = self.output();
            if out.contains(pattern) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "the server never printed {pattern:?}; it printed:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the server process to exit (bounded by [`super::NOT_HANGING`]).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + super::NOT_HANGING;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn py_script(name: &str) -> String {
    format!("{}/tests/py/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `python3 tests/py/SCRIPT args...` with `input` on its stdin.
pub fn python(script: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new("python3")
        .arg(py_script(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python3 {script} {args:?}:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

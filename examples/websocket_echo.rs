//! A WebSocket echo server and its clients: tungstenite over green `TcpStream`s, one greenlet
//! per connection, written as blocking code.
//!
//! ```text
//! cargo run --example websocket_echo              # self-run: server, clients, a bad peer
//! cargo run --example websocket_echo 8765         # serve ws://127.0.0.1:8765/
//! python3 -c 'from websockets.sync.client import connect
//! with connect("ws://127.0.0.1:8765/") as ws: ws.send("hi"); print(ws.recv())'
//! ```
//!
//! tungstenite's `accept` and `client` take any `Read + Write` stream and block on it; on a
//! green socket each of those calls parks only its greenlet. Text and binary messages come
//! back as they came; pings are answered by tungstenite; a close handshake ends the
//! connection cleanly. A peer that is not speaking WebSocket fails its handshake alone.

#[path = "common/cli.rs"]
mod cli;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;
use tungstenite::{Message, WebSocket};

/// How long a peer may take to send its opening handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an open connection may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One connection: the opening handshake, then every text or binary message sent back, until
/// the peer closes. Errors end this connection only.
fn handle(conn: TcpStream, peer: SocketAddr) {
    match serve(conn) {
        Ok(n) => println!("{peer}: closed after {n} message(s)"),
        Err(e) => println!("{peer}: {e}"),
    }
}

fn serve(conn: TcpStream) -> Result<u64, String> {
    conn.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut ws = tungstenite::accept(conn).map_err(|e| format!("handshake failed: {e}"))?;
    ws.get_ref()
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut echoed = 0;
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                ws.send(m).map_err(|e| e.to_string())?;
                echoed += 1;
            }
            // Pings are answered and closes acknowledged by tungstenite itself.
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(echoed),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Starts the server on 127.0.0.1:`port` (0: any free port); prints where it listens.
pub fn start(port: u16) -> io::Result<StreamServer> {
    let server = StreamServer::bind(("127.0.0.1", port), handle)?;
    println!("listening on {}", server.local_addr());
    server.start()?;
    Ok(server)
}

/// A WebSocket client: connects, sends each message and reads its echo, then closes.
pub fn client(addr: SocketAddr, messages: Vec<Message>) -> Result<Vec<Message>, String> {
    let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}/echo");
    let (mut ws, _response): (WebSocket<TcpStream>, _) =
        tungstenite::client(url.as_str(), sock).map_err(|e| format!("handshake: {e}"))?;
    let mut echoes = Vec::new();
    for m in messages {
        ws.send(m).map_err(|e| e.to_string())?;
        loop {
            // Pongs and other control frames are skipped.
            if let m @ (Message::Text(_) | Message::Binary(_)) =
                ws.read().map_err(|e| e.to_string())?
            {
                echoes.push(m);
                break;
            }
        }
    }
    ws.close(None).map_err(|e| e.to_string())?;
    // Read until the server acknowledges the close.
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(echoes),
            Err(e) => return Err(format!("closing: {e}")),
        }
    }
}

/// The tour's self-run: three clients at once sending text, binary and a 64 KiB message, then
/// a peer that speaks plain HTTP, then one more client.
pub fn demo() {
    let server = start(0).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let clients: Vec<_> = (0..3)
        .map(|i| {
            greenlet::spawn(move || {
                let sent = vec![
                    Message::text(format!("hello from client {i}")),
                    Message::binary(vec![i as u8; 3]),
                    Message::binary(vec![b'x'; 64 * 1024]),
                ];
                let echoes = client(addr, sent.clone()).expect("WebSocket echo");
                assert_eq!(echoes, sent);
                println!("client {i}: {:?} came back", echoes[0].to_text().unwrap());
            })
        })
        .collect();
    greenlet::joinall(&clients, Some(Duration::from_secs(10)), None).expect("clients finish");
    for h in &clients {
        h.get().expect("client succeeded");
    }

    // Plain HTTP instead of an upgrade request: the handshake fails, the connection closes.
    let mut http = TcpStream::connect(addr).expect("connect");
    use std::io::{Read, Write};
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = http.read_to_end(&mut answer);
    println!("plain HTTP peer: connection closed by the server");

    let last = client(addr, vec![Message::text("still served")])
        .expect("WebSocket echo after the bad peer");
    println!(
        "after it, a client still gets {:?}",
        last[0].to_text().unwrap()
    );
    server.stop(Duration::from_secs(1));
    println!("server stopped");
}

/// Serves on the port given as first argument (0: any free port), or self-runs.
pub fn main() {
    let port = match cli::mode_or_self_run("websocket_echo") {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, _) => port,
    };
    let server = start(port).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Err(e) = server.serve_forever() {
        eprintln!("websocket_echo: {e}");
    }
}

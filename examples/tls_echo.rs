//! A TLS echo server and its clients: rustls over green `TcpStream`s, one greenlet per
//! connection, written as blocking code. The certificate (for `localhost` and 127.0.0.1) is
//! made at start with rcgen.
//!
//! ```text
//! cargo run --example tls_echo                          # self-run: server, clients, bad peers
//! cargo run --example tls_echo 8443 /tmp/tls_echo.pem   # serve; the PEM is for clients to trust
//! python3 -c 'import ssl, socket; c = ssl.create_default_context(cafile="/tmp/tls_echo.pem");
//!   s = c.wrap_socket(socket.create_connection(("127.0.0.1", 8443)), server_hostname="localhost");
//!   s.sendall(b"hi"); print(s.recv(2))'
//! ```
//!
//! rustls's `StreamOwned` drives the TLS state machine with `Read` and `Write` calls on the
//! socket; the green socket parks the greenlet whenever one would block, so the same code that
//! would block a thread serves many connections on one. A peer that sends garbage fails its
//! handshake; one that goes silent mid-handshake is dropped after `HANDSHAKE_TIMEOUT`; either
//! way only its connection closes.

#[path = "common/cli.rs"]
mod cli;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// How long a peer may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an established connection may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The stack of a greenlet that runs a TLS session: rustls's handshake needs more than the
/// default 64 KiB (well over it in debug builds).
const TLS_STACK: usize = 512 * 1024;

/// Runs `f` in a greenlet with a stack big enough for rustls, and waits for it.
fn with_tls_stack<T: 'static>(f: impl FnOnce() -> T + 'static) -> T {
    greenlet::SpawnBuilder::new()
        .stack_size(TLS_STACK)
        .spawn(f)
        .expect("a stack for the TLS session")
        .get()
        .expect("the TLS session's greenlet")
}

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    pem: String,
}

impl Identity {
    /// Makes a fresh key pair and certificate.
    pub fn generate() -> Identity {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("generate a self-signed certificate");
        Identity {
            cert: made.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()),
            pem: made.cert.pem(),
        }
    }

    /// The server side: this certificate, no client authentication.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        // The crypto provider is the one rustls is built with here: ring.
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key().into())
            .expect("a valid certificate and key");
        Arc::new(config)
    }

    /// The client side: trusts exactly this certificate.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).expect("a valid certificate");
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// One connection: the handshake (bounded by `HANDSHAKE_TIMEOUT`), then echo until the peer
/// is done, then `close_notify`. Errors end this connection only.
fn handle(config: &Arc<ServerConfig>, conn: TcpStream, peer: SocketAddr) {
    let config = config.clone();
    if let Err(e) = with_tls_stack(move || serve(&config, conn)) {
        println!("{peer}: {e}");
    }
}

fn serve(config: &Arc<ServerConfig>, conn: TcpStream) -> io::Result<()> {
    conn.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let session = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(session, conn);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| annotate(e, "TLS handshake failed"))?;
    }
    tls.sock.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            tls.conn.send_close_notify();
            tls.flush()?;
            return Ok(());
        }
        tls.write_all(&buf[..n])?;
    }
}

/// `e` with what was being done in front, keeping its kind.
fn annotate(e: io::Error, what: &str) -> io::Error {
    let e = if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "the peer went silent")
    } else {
        e
    };
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Starts the server on 127.0.0.1:`port` (0: any free port); prints where it listens.
pub fn start(port: u16, identity: &Identity) -> io::Result<StreamServer> {
    let config = identity.server_config();
    let server = StreamServer::bind(("127.0.0.1", port), move |conn, peer| {
        handle(&config, conn, peer)
    })?;
    println!("listening on {}", server.local_addr());
    server.start()?;
    Ok(server)
}

/// A TLS client: connects, sends each message and reads its echo; returns the echoes.
pub fn client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    messages: &[String],
) -> io::Result<Vec<String>> {
    let name = ServerName::try_from("localhost").expect("a valid name");
    let session = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(session, sock);
    let mut echoes = Vec::new();
    for m in messages {
        tls.write_all(m.as_bytes())?;
        let mut echo = vec![0; m.len()];
        tls.read_exact(&mut echo)?;
        echoes.push(String::from_utf8_lossy(&echo).into_owned());
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    // The server answers with its own close_notify: a clean end of stream.
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest)?;
    Ok(echoes)
}

/// The tour's self-run: three clients at once, then a peer that sends garbage and one that
/// stops halfway through its handshake; both fail alone, and a last client is served.
pub fn demo() {
    let identity = Identity::generate();
    println!("certificate made for localhost and 127.0.0.1");
    let server = start(0, &identity).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let config = identity.client_config();
            greenlet::SpawnBuilder::new()
                .stack_size(TLS_STACK)
                .spawn(move || {
                    let messages: Vec<String> = (0..3).map(|j| format!("hello {i}.{j}")).collect();
                    let echoes = client(addr, config, &messages).expect("TLS echo");
                    assert_eq!(echoes, messages);
                    println!("client {i}: {} echoes over TLS", echoes.len());
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .expect("stacks for the clients");
    greenlet::joinall(&clients, Some(Duration::from_secs(10)), None).expect("clients finish");
    for h in &clients {
        h.get().expect("client succeeded");
    }

    // Garbage where a ClientHello should be: the handshake fails, the connection closes.
    let mut garbage = TcpStream::connect(addr).expect("connect");
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = garbage.read_to_end(&mut answer);
    println!(
        "garbage peer: closed by the server after {} byte(s) (a TLS alert)",
        answer.len()
    );

    // Half a handshake, then the peer hangs up.
    let mut half = TcpStream::connect(addr).expect("connect");
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = half.read_to_end(&mut answer);
    println!("half-handshake peer: closed by the server");

    let config = identity.client_config();
    let echoes = with_tls_stack(move || client(addr, config, &["still served".to_string()]))
        .expect("TLS echo after the bad peers");
    println!("after them, a client still gets {:?}", echoes[0]);
    server.stop(Duration::from_secs(1));
    println!("server stopped");
}

/// Serves on the port given as first argument (0: any free port), writing the certificate to
/// the path given as second argument, or self-runs.
pub fn main() {
    let (port, rest) = match cli::mode_or_self_run("tls_echo") {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => (port, rest),
    };
    let identity = Identity::generate();
    let server =
        start(port, &identity).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Some(path) = rest.first() {
        std::fs::write(path, &identity.pem)
            .unwrap_or_else(|e| panic!("cannot write the certificate to {path}: {e}"));
        println!("certificate in {path}");
    }
    if let Err(e) = server.serve_forever() {
        eprintln!("tls_echo: {e}");
    }
}

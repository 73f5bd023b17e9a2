"""A TLS echo client with Python's ssl module, verifying the server's certificate.

usage: tls_client.py PORT CAFILE [CLIENTS] [MESSAGES]

Opens CLIENTS connections at once (threads), each sending MESSAGES lines and checking each
echo; prints "ok N of N" with the number of echoes checked.
"""
import socket
import ssl
import sys
import threading

port, cafile = int(sys.argv[1]), sys.argv[2]
clients = int(sys.argv[3]) if len(sys.argv) > 3 else 10
messages = int(sys.argv[4]) if len(sys.argv) > 4 else 5

context = ssl.create_default_context(cafile=cafile)
ok = []
errors = []


def run(i):
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            for j in range(messages):
                msg = f"python {i}.{j}\n".encode()
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(len(msg) - len(got))
                    if not chunk:
                        raise RuntimeError("closed early")
                    got += chunk
                if got != msg:
                    raise RuntimeError(f"echo {got!r} != {msg!r}")
                ok.append(1)
            version = s.version()
        if i == 0:
            print(f"negotiated {version}")
    except Exception as e:  # reported below
        errors.append(f"client {i}: {e!r}")


threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors:
    print(e)
print(f"ok {len(ok)} of {clients * messages}")
sys.exit(1 if errors else 0)

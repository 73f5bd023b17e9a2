"""A WebSocket echo client with the `websockets` package.

usage: ws_client.py PORT [CLIENTS]

Opens CLIENTS connections at once, each sending a text message, a binary one and a
100 kB one and checking each echo, then closing cleanly; prints "ok N of N".
"""
import asyncio
import sys

import websockets

port = int(sys.argv[1])
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 10
url = f"ws://127.0.0.1:{port}/"


def messages(i):
    return [f"text from python {i}", bytes([i % 256]) * 5, b"y" * 100_000]


async def one(i):
    # websockets >= 14 has the new asyncio API; older releases only the legacy one.
    try:
        from websockets.asyncio.client import connect
    except ImportError:
        connect = websockets.connect
    checked = 0
    async with connect(url, max_size=None) as ws:
        for m in messages(i):
            await ws.send(m)
            got = await ws.recv()
            if got != m:
                raise RuntimeError(f"client {i}: echo differs ({len(got)} vs {len(m)})")
            checked += 1
    return checked


async def main():
    results = await asyncio.gather(*(one(i) for i in range(clients)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    for e in errors:
        print(repr(e))
    done = sum(r for r in results if isinstance(r, int))
    print(f"websockets {websockets.__version__}")
    print(f"ok {done} of {clients * 3}")
    return 1 if errors else 0


sys.exit(asyncio.run(main()))

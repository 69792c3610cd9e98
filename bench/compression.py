"""
Compression: throughput and bytes on the wire of the ``small`` workload (``_server.gen_small``:
``id:`` and one JSON line of about 60 bytes), uncompressed and in each content coding the
clients undo, for both clients.

    python bench/compression.py [--events 20000] [--rounds 5] [--markdown FILE]

A server in a process of its own serves each case from memory: the response head, then the
body in chunks of 64 KiB, as fast as the socket takes it. "flushed" cases are what a live
stream sends: the server's compressor flushed after each event (``Z_SYNC_FLUSH``, brotli's
and zstd's flush), so that each event can be decoded as soon as it arrives; "whole" cases are
the stream compressed in one go (the best ratio, what a replay of stored events could send).
Each case runs ``--rounds`` times per client, interleaved; the table gives the median.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _server import gen_small

CHUNK = 64 * 1024


def _compressor(coding: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """(compress and flush one event, finish the stream) for ``coding``."""
    if coding in ("gzip", "deflate"):
        z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS if coding == "gzip" else 15)
        return (lambda data: z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)), z.flush
    if coding == "br":
        import brotli

        b = brotli.Compressor(quality=5)
        return (lambda data: b.process(data) + b.flush()), b.finish
    import zstandard

    zs = zstandard.ZstdCompressor(level=3).compressobj()
    return (lambda data: zs.compress(data) + zs.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)), zs.flush


def _whole(coding: str, body: bytes) -> bytes:
    if coding == "gzip":
        z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return z.compress(body) + z.flush()
    if coding == "deflate":
        return zlib.compress(body, 6)
    if coding == "br":
        import brotli

        return brotli.compress(body, quality=5)  # type: ignore[no-any-return]
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(body)


def build(count: int, codings: list[str]) -> dict[str, tuple[str, bytes]]:
    """Each case's Content-Encoding and body (before chunked framing)."""
    events, _ = gen_small(count)
    body = b"".join(events)
    cases = {"identity": ("identity", body)}
    for coding in codings:
        compress, finish = _compressor(coding)
        cases[f"{coding} flushed"] = (coding, b"".join(compress(e) for e in events) + finish())
        cases[f"{coding} whole"] = (coding, _whole(coding, body))
    return cases


def _response(coding: str, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    if coding != "identity":
        head += b"Content-Encoding: " + coding.encode() + b"\r\n"
    pieces = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    framed = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces)
    return head + b"Connection: close\r\n\r\n" + framed + b"0\r\n\r\n"


def serve(sock: socket.socket, cases: dict[str, tuple[str, bytes]]) -> None:
    """The server process: each request's path names a case (``/0``, ``/1``...)."""
    responses = [_response(coding, body) for coding, body in cases.values()]
    while True:
        conn, _ = sock.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(65536)
                if not data:
                    break
                request += data
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
            try:
                conn.sendall(responses[int(path.strip(b"/").split(b"?")[0])])
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except (OSError, ValueError, IndexError):
                pass


def read_sync(url: str) -> int:
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy

    with SSEClient(ConnectStrategy.http(url, proxy=False)) as client:
        return sum(1 for _ in client.events)


def read_async(url: str) -> int:
    from ld_eventsource import AsyncSSEClient
    from ld_eventsource.config import AsyncConnectStrategy

    async def main() -> int:
        async with AsyncSSEClient(AsyncConnectStrategy.http(url, proxy=False)) as client:
            n = 0
            async for _ in client.events:
                n += 1
            return n

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args()

    from ld_eventsource._decompress import CODINGS

    codings: list[str] = [c for c in ("gzip", "deflate", "br", "zstd") if c in CODINGS]
    cases = build(args.events, codings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(sock, cases), daemon=True
    )
    server.start()
    sock.close()
    readers = {"sync": read_sync, "async": read_async}
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for read in readers.values():  # imports and first connections, not measured
            read(f"http://127.0.0.1:{port}/0")
        for _ in range(args.rounds):
            for index, name in enumerate(cases):
                for client, read in readers.items():
                    url = f"http://127.0.0.1:{port}/{index}"
                    start = time.perf_counter()
                    got = read(url)
                    elapsed = time.perf_counter() - start
                    if got != args.events:
                        raise SystemExit(f"{client} {name}: {got} events of {args.events}")
                    times.setdefault((name, client), []).append(elapsed)
    finally:
        server.kill()
        server.join()

    identity = len(cases["identity"][1])
    rows = []
    for name, (_, body) in cases.items():
        sync = args.events / statistics.median(times[(name, "sync")])
        async_ = args.events / statistics.median(times[(name, "async")])
        rows.append(
            (
                name,
                f"{len(body):,}",
                f"{len(body) / identity:.1%}",
                f"{sync:,.0f}",
                f"{async_:,.0f}",
            )
        )
    header = ("body", "body bytes on the wire", "of identity", "sync events/s", "async events/s")
    lines = [
        f"`small` workload, {args.events:,} events, median of {args.rounds} rounds"
        f" (Python {sys.version.split()[0]}):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

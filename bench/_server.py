"""
The load server of the benchmarks: SSE over HTTP/1.1 on 127.0.0.1 in a process of its own
(started by ``_harness.LoadServer``), on asyncio protocols, so that one process serves one fast
reader or ten thousand held streams alike; the standard library only.

    python bench/_server.py [--counts small:20000,large:10] [--framings chunk-per-event,...]
                            [--extra small:100000[:FRAMING],...] [--ports N] [--interval-ms MS]

It builds every response of ``--counts`` and ``--extra`` in full, prints the manifest (one
JSON line: ``ports`` and, by ``<workload>/<framing>`` (``<workload>-<count>/<framing>`` for
``--extra``), ``response_bytes``, ``body_bytes``, ``events`` and ``crc``, crc32 over the data),
serves until its stdin closes or ``--lifetime`` runs out, then prints ``connections``, ``open``
and ``cpu``. ``GET /<case>?run=<token>&mode=<mode>``: ``burst`` (the default: the whole
response as fast as the socket takes it), ``hold`` (without its end: the stream stays open
until the client closes it), ``paced`` (``/stamped/<framing>?mode=paced&events=N``: one
event every ``--interval-ms``, ``data: <n> <time.time_ns() at its send>``). A second request
with the same ``run`` token gets a 204 (an SSE client stops reconnecting), so no client reads
twice. Framings: ``chunk-per-event``, ``large-chunks`` (64 KiB chunks cut anywhere) and
``close-delimited``. ``--codings``: each case of ``--counts`` also compressed, flushed after
each event (``<workload>+<coding>-flushed``) and in one go (``...-whole``); ``body_bytes`` is
then the compressed body. docs/performance.md ("Load server") has the details.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import sys
import time
import zlib
from collections.abc import Callable
from urllib.parse import parse_qs

from _worker import raise_nofile

FRAMINGS = ("chunk-per-event", "large-chunks", "close-delimited")
# The full sizes: events per workload (large: events of LARGE_EVENT_BYTES).
BASE_EVENTS = {"small": 200_000, "llm-tokens": 200_000, "multiline": 20_000, "large": 50}
BASE_EVENTS["crlf"] = 200_000
MULTILINE_LINES = 20
LARGE_EVENT_BYTES = 1024 * 1024
LARGE_CHUNK = 64 * 1024
HEAD_LIMIT = 64 * 1024
MAX_PACED = 100_000

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
CLOSE = "close-delimited"
HEADS = {f: _HEAD + b"Transfer-Encoding: chunked\r\n\r\n" for f in FRAMINGS if f != CLOSE}
HEADS[CLOSE] = _HEAD + b"Connection: close\r\n\r\n"
ENDS = {f: b"" if f == CLOSE else b"0\r\n\r\n" for f in FRAMINGS}
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

# --- workloads: the events (each with its blank line) and the data a client must report ----

Events = tuple[list[bytes], list[str]]


def gen_small(count: int, eol: str = "\n") -> Events:
    """``id: <n>`` and one JSON ``data:`` line of about 60 bytes."""
    events, data = [], []
    for i in range(count):
        on = "true" if i % 2 else "false"
        value = f'{{"kind":"patch","key":"flag-{i:06d}","version":{i % 1000},"on":{on}}}'
        events.append(f"id: {i}{eol}data: {value}{eol}{eol}".encode())
        data.append(value)
    return events, data


_TOKENS = (
    " the", " a", " of", " to", "ing", " and", " stream", " event", "s", ".", ",", " is",
    " in", " server", " token", " model", "\\n", " it", " for", " that", " with", " on",
    " as", " data", "ed", " be", " by", " this", " an", " or", " are", "ly", " from", " we",
)  # fmt: skip


def gen_llm_tokens(count: int) -> Events:
    """``event: token`` and a short JSON delta, ``{"delta":" the"}``, as LLM APIs stream."""
    rng = random.Random(42)
    data = ['{"delta":"' + rng.choice(_TOKENS) + '"}' for _ in range(count)]
    return [f"event: token\ndata: {value}\n\n".encode() for value in data], data


def gen_multiline(count: int) -> Events:
    """Events of ``MULTILINE_LINES`` ``data:`` lines of about 40 bytes each."""
    events, data = [], []
    for i in range(count):
        lines = [f"{i:06d}.{j:02d} lorem ipsum dolor sit amet" for j in range(MULTILINE_LINES)]
        events.append(("".join(f"data: {line}\n" for line in lines) + "\n").encode())
        data.append("\n".join(lines))
    return events, data


def gen_large(count: int, size: int = LARGE_EVENT_BYTES) -> Events:
    """Events of one ``data:`` line of ``size`` bytes (random URL-safe characters)."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    table = bytes(alphabet[b % len(alphabet)] for b in range(256))
    base = random.Random(7).randbytes(size + count).translate(table)
    values = [base[i : i + size] for i in range(count)]
    return [b"data: " + value + b"\n\n" for value in values], [v.decode() for v in values]


def gen_flags(count: int) -> Events:
    """``id``, ``event: put`` and a small JSON flag, as a feature-flag stream sends."""
    data = [f'{{"key":"flag-{k}","version":{k},"on":true}}' for k in range(count)]
    return [f"id: {k}\nevent: put\ndata: {v}\n\n".encode() for k, v in enumerate(data)], data


GENERATORS: dict[str, Callable[[int], Events]] = {
    "small": gen_small, "llm-tokens": gen_llm_tokens, "multiline": gen_multiline,
    "large": gen_large, "crlf": lambda count: gen_small(count, "\r\n"), "flags": gen_flags,
}  # fmt: skip


def frame_body(events: list[bytes], framing: str) -> bytes:
    """The body that carries ``events`` in ``framing``, without the end of the body."""
    body = b"".join(events)
    if framing == "close-delimited":
        return body
    if framing == "chunk-per-event":
        pieces = events
    elif framing == "large-chunks":
        pieces = [body[i : i + LARGE_CHUNK] for i in range(0, len(body), LARGE_CHUNK)]
    else:
        raise ValueError(f"unknown framing {framing!r}")
    return b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces)


def encode(events: list[bytes], coding: str) -> tuple[list[bytes], list[bytes]]:
    """``events`` compressed in ``coding`` as a live stream sends them (the compressor flushed
    after each event: ``Z_SYNC_FLUSH``, brotli's and zstd's flush), and in one go (``whole``)."""
    step: Callable[[bytes], bytes]
    end: Callable[[], bytes]
    once: Callable[[bytes], bytes]
    if coding in ("gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
        z, whole = (zlib.compressobj(6, zlib.DEFLATED, wbits) for _ in range(2))
        step, end = (lambda e: z.compress(e) + z.flush(zlib.Z_SYNC_FLUSH)), z.flush
        once = lambda body: whole.compress(body) + whole.flush()  # noqa: E731
    elif coding == "br":
        import brotli

        b = brotli.Compressor(quality=5)
        step, end = (lambda e: b.process(e) + b.flush()), b.finish
        once = lambda body: brotli.compress(body, quality=5)  # noqa: E731
    else:
        import zstandard

        zs = zstandard.ZstdCompressor(level=3).compressobj()
        flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        step, end = (lambda e: zs.compress(e) + zs.flush(flush)), zs.flush
        once = zstandard.ZstdCompressor(level=3).compress
    return [*map(step, events), end()], [once(b"".join(events))]


# --- the server ----------------------------------------------------------------------------


class Server:
    """The prepared responses (``response, length without its end``) and the connections."""

    def __init__(self, responses: dict[str, tuple[bytes, int]], interval: float):
        self.responses, self.interval = responses, interval
        self.seen: set[str] = set()
        self.connections = self.open = 0

    async def serve(self, ports: int, lifetime: float, manifest: dict[str, object]) -> None:
        loop = asyncio.get_running_loop()
        protocol = lambda: Connection(self)  # noqa: E731
        servers = [
            await loop.create_server(protocol, "127.0.0.1", 0, backlog=4096, reuse_address=True)
            for _ in range(ports)
        ]
        numbers = [server.sockets[0].getsockname()[1] for server in servers]
        print(json.dumps({"ports": numbers, **manifest}), flush=True)
        stop = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the driver closes our stdin to stop us
        with contextlib.suppress(asyncio.TimeoutError):  # a forgotten server ends by itself
            await asyncio.wait_for(stop.wait(), lifetime)
        loop.remove_reader(sys.stdin.fileno())
        for server in servers:
            server.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        print(
            json.dumps({"connections": self.connections, "open": self.open, "cpu": cpu}), flush=True
        )


class Connection(asyncio.Protocol):
    """
    One connection: reads the request head, answers it, then waits for the client to close
    (closing first with its bytes unread could reset the connection under data it has not
    read yet). Protocol callbacks rather than a task a connection: ten thousand held streams
    cost the server little.
    """

    def __init__(self, server: Server):
        self.server = server
        self.head: bytes | None = b""
        self.task: asyncio.Task[None] | None = None  # a burst's or a paced stream's

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections += 1
        self.server.open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.open -= 1
        if self.task is not None:
            self.task.cancel()

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def data_received(self, data: bytes) -> None:
        if self.head is None:
            return  # answered: anything more is ignored
        self.head += data
        if b"\r\n\r\n" in self.head:
            request, self.head = self.head, None
            self.answer(request)
        elif len(self.head) > HEAD_LIMIT:
            self.transport.close()

    def answer(self, request: bytes) -> None:
        path, _, query = request.split(b" ", 2)[1].decode("latin-1").partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        token, mode, case = params.get("run", ""), params.get("mode", "burst"), path.strip("/")
        workload, _, framing = case.partition("/")
        if token and token in self.server.seen:
            self.transport.write(NO_CONTENT)
            self.transport.close()
        elif mode == "paced" and workload == "stamped" and framing in FRAMINGS:
            events = min(int(params.get("events", 1)), MAX_PACED)
            self.task = asyncio.get_running_loop().create_task(self.paced(framing, events))
        elif case in self.server.responses and mode in ("burst", "hold"):
            response, length = self.server.responses[case]
            if mode == "hold":
                self.transport.write(response[:length])
            else:
                self.task = asyncio.get_running_loop().create_task(self.burst(response))
        else:
            self.transport.write(NOT_FOUND)
            self.transport.close()
        self.server.seen.add(token)

    async def burst(self, response: bytes) -> None:
        # Straight from the response to the socket (a duplicate of the transport's, which
        # writes nothing here): the transport would copy what the socket does not take at once.
        fd = self.transport.get_extra_info("socket").fileno()
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_sendall(sock, memoryview(response))
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client went away: its run reports what it got

    async def paced(self, framing: str, events: int) -> None:
        self.transport.write(HEADS[framing])
        start = time.perf_counter() + self.server.interval
        for seq in range(events):
            delay = start + seq * self.server.interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = f"id: {seq}\ndata: {seq} {time.time_ns()}\n\n".encode()
            self.transport.write(frame_body([event], framing))
        self.transport.write(ENDS[framing])
        self.transport.write_eof()


def build(
    counts: dict[str, int], framings: list[str], extra: list[tuple[str, int, str]],
    codings: list[str],
) -> tuple[dict[str, tuple[bytes, int]], dict[str, dict[str, int]]]:  # fmt: skip
    """The responses by case, and the manifest entry of each case."""
    responses: dict[str, tuple[bytes, int]] = {}
    manifest: dict[str, dict[str, int]] = {}

    def add(name: str, stream: Events, framing: str, coding: str = "") -> None:
        events, data = stream
        crc = 0
        for value in data:
            crc = zlib.crc32(value.encode(), crc)
        head = HEADS[framing]
        if coding:
            head = head[:-2] + f"Content-Encoding: {coding}\r\n\r\n".encode()
        response = head + frame_body(events, framing)
        responses[f"{name}/{framing}"] = (response + ENDS[framing], len(response))
        manifest[f"{name}/{framing}"] = {
            "response_bytes": len(response + ENDS[framing]), "body_bytes": sum(map(len, events)),
            "events": len(data), "crc": crc,
        }  # fmt: skip

    for workload, count in counts.items():
        stream = GENERATORS[workload](count)
        for framing in framings:
            add(workload, stream, framing)
        for coding in codings:
            flushed, whole = encode(stream[0], coding)
            for framing in framings:
                add(f"{workload}+{coding}-flushed", (flushed, stream[1]), framing, coding)
                add(f"{workload}+{coding}-whole", (whole, stream[1]), framing, coding)
        del stream
    for workload, count, framing in extra:
        add(f"{workload}-{count}", GENERATORS[workload](count), framing)
    return responses, manifest


def main() -> int:
    parser = argparse.ArgumentParser(description="SSE load server of the benchmarks")
    add = parser.add_argument
    add("--counts", default="", help="WORKLOAD:EVENTS,... (none by default)")
    add("--framings", default=",".join(FRAMINGS))
    add("--extra", default="", help="WORKLOAD:COUNT[:FRAMING],... (chunk-per-event by default)")
    add("--ports", type=int, default=1, help="listening ports (1)")
    add("--interval-ms", type=float, default=20.0, help="of mode=paced (20)")
    add("--lifetime", type=float, default=3600.0, help="seconds at most")
    add("--codings", default="", help="gzip,deflate,br,zstd: also each case compressed")
    args = parser.parse_args()
    counts = {w: int(n) for w, _, n in (i.partition(":") for i in args.counts.split(",") if i)}
    framings = [f for f in args.framings.split(",") if f]
    extra = []
    for item in filter(None, args.extra.split(",")):
        workload, count, *framing = item.split(":")
        extra.append((workload, int(count), framing[0] if framing else "chunk-per-event"))
    codings = [c for c in args.codings.split(",") if c]
    responses, manifest = build(counts, framings, extra, codings)
    raise_nofile(1 << 20)
    server = Server(responses, args.interval_ms / 1000)
    asyncio.run(server.serve(args.ports, args.lifetime, {"cases": manifest}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

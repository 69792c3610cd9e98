"""
A small HTTP/1.1 server on raw sockets for the endurance and chaos tests, run in a process
of its own so that the test process's file descriptors, threads and memory are the client's
alone.

:class:`SoakServer` starts it (``python -m tests.soak_server``) and stops it; the server
stops by itself when its standard input closes, so it never outlives the test. One asyncio
loop serves every connection; one request per connection (``Connection: close``). Routes:

``/cycle``
    One short response per connection, taking turns through :data:`CYCLE_KINDS`: a chunked
    event then the last chunk, or the connection closed (FIN) or reset (RST) after the event
    with no last chunk, a close-delimited event then FIN, a 503.
``/hang``
    A chunked ``data: ready`` event, then silence until the client goes away.
``/hold``
    Reads the request and never answers, until the client goes away.
``/chaos?events=N&drops=D&seed=S``
    The numbered events of :func:`chaos_stream`, resumed after ``Last-Event-ID``, with the
    connection cut at D byte offsets drawn from the seed (see :class:`_Chaos`).
``/stats``
    The counters as JSON: requests per request target (path and query), ``/hang`` and
    ``/hold`` connections that the client closed (``TARGET closed by client``), and per chaos
    stream its connections, drops, framings, and the errors the server saw (a
    ``Last-Event-ID`` other than the last event the client got in full, a cut not past the
    resume point).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import termios
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, Final
from urllib.parse import parse_qsl, urlsplit

__all__ = ["CYCLE_KINDS", "ChaosEvent", "SoakServer", "chaos_stream"]

CYCLE_KINDS: Final = ("end", "fin", "reset", "close-delimited", "status")
"""How the n-th ``/cycle`` connection ends, n modulo 5."""

_HEAD_LIMIT: Final = 65536
_SSE_HEAD: Final = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
_CHUNKED_HEAD: Final = _SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
_PLAIN_HEAD: Final = _SSE_HEAD + b"\r\n"


# -- the chaos stream ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosEvent:
    """One numbered event of the chaos stream, as the client must see it."""

    id: str
    event: str
    data: str
    block: bytes
    """Its bytes on the wire (comment and ``retry:`` lines included)."""
    dispatch: int
    """How many bytes of ``block`` the client needs to dispatch it: up to the byte that
    completes its blank line (the CR of a CRLF one)."""


def chaos_stream(events: int, seed: int) -> list[ChaosEvent]:
    """
    Events 1 to ``events``, the same for the same seed: each with its id, a data of one to
    three lines (its number, then padding of random length), now and then a type, a comment
    or ``retry: 0``, and the lines ended by LF, CRLF or CR at random.
    """
    rng = random.Random(seed)
    out: list[ChaosEvent] = []
    for n in range(1, events + 1):
        eol = rng.choice(("\n", "\r\n", "\r"))
        data_lines = [str(n)] + ["x" * rng.randrange(120) for _ in range(rng.randrange(3))]
        lines = [f"data: {line}" for line in data_lines]
        event = "message"
        if rng.random() < 0.2:
            event = rng.choice(("tick", "update"))
            lines.insert(rng.randrange(len(lines) + 1), f"event: {event}")
        if rng.random() < 0.1:
            lines.insert(rng.randrange(len(lines) + 1), f": comment {n}")
        if rng.random() < 0.02:
            lines.insert(rng.randrange(len(lines) + 1), "retry: 0")
        lines.insert(rng.randrange(len(lines) + 1), f"id: {n}")
        text = "".join(line + eol for line in lines)
        block = (text + eol).encode()
        out.append(ChaosEvent(str(n), event, "\n".join(data_lines), block, len(text) + 1))
    return out


@dataclass
class _Chaos:
    """
    One chaos stream: its bytes, and the cut points still to come.

    The cuts are distinct byte offsets of the whole stream, drawn at once and taken in order,
    one per connection. A connection resumes at the start of the event after the one named
    in ``Last-Event-ID`` and is cut at the next cut point; since the client had all the
    events before that offset, the next resume point is never past the next cut, so every
    connection but the last is cut, after its head, at a random byte of the stream.
    """

    events: list[ChaosEvent]
    payload: bytes
    starts: list[int]
    """The offset of each event in ``payload``."""
    cuts: list[int]
    rng: random.Random
    expected_last_id: str | None = None
    stats: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, events: int, drops: int, seed: int) -> _Chaos:
        stream = chaos_stream(events, seed)
        starts = []
        offset = 0
        for event in stream:
            starts.append(offset)
            offset += len(event.block)
        rng = random.Random(seed + 1)
        cuts = sorted(rng.sample(range(1, offset), drops))
        cuts.reverse()  # popped from the end
        return cls(stream, b"".join(e.block for e in stream), starts, cuts, rng)

    def delivered_through(self, start_event: int, cut: int) -> str | None:
        """The id of the last event dispatched when the stream stops at byte ``cut``."""
        last = None
        for index in range(start_event, len(self.events)):
            if self.starts[index] + self.events[index].dispatch > cut:
                break
            last = self.events[index].id
        return last


class _Server:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.chaos: dict[str, _Chaos] = {}
        self.cycle = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _HEAD_LIMIT:
                return
            await self.route(head, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the server is stopping (asyncio would log the cancelled task)
        finally:
            writer.close()  # after a reset, a no-op
            self.counts["closed"] += 1

    async def route(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        self.counts[target] += 1
        if url.path == "/cycle":
            await self.serve_cycle(writer)
        elif url.path == "/hang":
            writer.write(_CHUNKED_HEAD + b"d\r\ndata: ready\n\n\r\n")
            await writer.drain()
            await self.until_client_gone(reader, target)
        elif url.path == "/hold":
            await self.until_client_gone(reader, target)
        elif url.path == "/chaos":
            query = dict(parse_qsl(url.query))
            await self.serve_chaos(url.query, query, headers.get("last-event-id"), writer)
        elif url.path == "/stats":
            body = json.dumps(self.snapshot()).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
            )
            await writer.drain()
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    def snapshot(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "chaos": {
                key: {"stats": dict(c.stats), "errors": c.errors[:20], "cuts_left": len(c.cuts)}
                for key, c in self.chaos.items()
            },
        }

    async def until_client_gone(self, reader: asyncio.StreamReader, target: str) -> None:
        while await reader.read(65536):
            pass
        self.counts[f"{target} closed by client"] += 1

    async def serve_cycle(self, writer: asyncio.StreamWriter) -> None:
        self.cycle += 1
        kind = CYCLE_KINDS[self.cycle % len(CYCLE_KINDS)]
        event = b"id: %d\ndata: cycle\n\n" % self.cycle
        if kind == "status":
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Connection: close\r\nContent-Length: 5\r\n\r\nbusy\n"
            )
        elif kind == "close-delimited":
            writer.write(_PLAIN_HEAD + event)
        else:
            writer.write(_CHUNKED_HEAD + b"%x\r\n%b\r\n" % (len(event), event))
            if kind == "end":
                writer.write(b"0\r\n\r\n")
        await _flush(writer)
        if kind == "reset":
            _reset(writer)

    async def serve_chaos(
        self, key: str, query: dict[str, str], last_id: str | None, writer: asyncio.StreamWriter
    ) -> None:
        chaos = self.chaos.get(key)
        if chaos is None:
            chaos = self.chaos[key] = _Chaos.make(
                int(query["events"]), int(query["drops"]), int(query["seed"])
            )
        stats = chaos.stats
        stats["connections"] += 1
        if last_id != chaos.expected_last_id:
            chaos.errors.append(
                f"connection {stats['connections']}: Last-Event-ID {last_id!r}, "
                f"expected {chaos.expected_last_id!r}"
            )
        start_event = int(last_id) if last_id else 0  # the index of the event after it
        start = chaos.starts[start_event] if start_event < len(chaos.events) else len(chaos.payload)
        rng = chaos.rng
        chunked = rng.random() < 0.5
        stats["chunked" if chunked else "close-delimited"] += 1
        writer.write(_CHUNKED_HEAD if chunked else _PLAIN_HEAD)
        if not chaos.cuts:
            # No cut left: the rest of the stream, then an orderly end.
            chaos.expected_last_id = chaos.events[-1].id
            _write_body(writer, chaos.payload[start:], chunked, rng)
            if chunked:
                writer.write(b"0\r\n\r\n")
            await writer.drain()
            stats["ended"] += 1
            return
        cut = chaos.cuts.pop()
        if cut <= start:
            chaos.errors.append(f"cut {cut} not past the resume point {start}")
        chaos.expected_last_id = chaos.delivered_through(start_event, cut) or last_id
        body = chaos.payload[start:cut]
        if chunked:
            # Where the framing is cut: after a whole chunk, inside a chunk's data (its
            # size says more), before the CRLF after the data, or inside the next size line.
            where = rng.choice(("boundary", "in-data", "before-crlf", "in-size-line"))
            stats[where] += 1
            last = body[-rng.randrange(1, len(body) + 1) :] if body else b""
            _write_body(writer, body[: len(body) - len(last)], True, rng)
            if where == "in-data" and last:
                writer.write(b"%x\r\n%b" % (len(last) + rng.randrange(1, 100), last))
            elif where == "before-crlf" and last:
                writer.write(b"%x\r\n%b%b" % (len(last), last, b"\r"[: rng.randrange(2)]))
            else:
                _write_body(writer, last, True, rng)
                if where == "in-size-line":
                    writer.write(b"1f\r"[: rng.randrange(1, 4)])
        else:
            _write_body(writer, body, False, rng)
        await _flush(writer)
        stats["drops"] += 1
        if rng.random() < 0.5:
            stats["reset"] += 1
            _reset(writer)
        else:
            stats["fin"] += 1


def _write_body(
    writer: asyncio.StreamWriter, body: bytes, chunked: bool, rng: random.Random
) -> None:
    """``body`` in pieces of random size: chunks, or plain writes."""
    pos = 0
    while pos < len(body):
        size = rng.randrange(1, 600)
        piece = body[pos : pos + size]
        writer.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
        pos += size


async def _flush(writer: asyncio.StreamWriter) -> None:
    """
    Returns once every byte written has reached the client's host (acknowledged), so that a
    reset after it cannot take any back: not in asyncio's buffer (drain() alone returns
    while up to 64 KiB wait there), not in the kernel's send queue (TIOCOUTQ).
    """
    transport = writer.transport
    transport.set_write_buffer_limits(0)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    for _ in range(10_000):
        if transport.get_write_buffer_size() == 0:
            unsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))
            if unsent[0] == 0:
                return
        await asyncio.sleep(0.0005)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset: SO_LINGER on with a zero timeout, then close."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _main() -> None:
    server = _Server()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, backlog=512)
    port = listener.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096) and not stdin_closed.done():
            stdin_closed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    async with listener:
        await stdin_closed


# -- the test side ----------------------------------------------------------------------------


class SoakServer:
    """
    Starts the server in a child process; :meth:`close` (or ``with``) stops it.

    :attr:`url` is ``http://127.0.0.1:PORT``; :meth:`stats` fetches ``/stats``.
    """

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.soak_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        stdout: IO[bytes] = self._process.stdout  # type: ignore[assignment]
        line = stdout.readline().decode()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the soak server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        """The server's counters (see the module docstring)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", "/stats")
            return json.loads(connection.getresponse().read())  # type: ignore[no-any-return]
        finally:
            connection.close()

    def close(self) -> None:
        """Closes the server's standard input, which stops it; kills it if it does not."""
        process = self._process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> SoakServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":
    asyncio.run(_main())

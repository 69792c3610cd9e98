"""
The clients of ``bench/throughput.py`` (each library as its documentation shows, and two
plain-Python baselines) and the worker that times one run of one of them:

    python _tp_clients.py CLIENT URL EVENTS KIND [DIST,...]

KIND ``ours`` or ``ref`` imports that ``ld_eventsource``; every import is done before the
clock starts (at the first event). It emits one message (events, crc, wall, cpu, maxrss_mb,
versions). Every client has the same consumer loop (count, crc32 of the data); one that
reconnects at the end of a stream is stopped after the expected count. Cheap imports only: a
worker starts afresh every run and its peak RSS is reported.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import zlib
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from resource import RUSAGE_SELF, getrusage
from time import perf_counter
from typing import Any, NamedTuple

READ_SIZE = 65536  # what the naive floor asks of each recv (ours asks http.client the same)
RAW_READ_SIZE = 256 * 1024


class Target(NamedTuple):
    url: str
    host: str
    port: int
    path: str  # with the query
    stop_at: int  # the expected number of events


class Timing(NamedTuple):
    wall: float  # seconds from the first event to the end of the stream
    cpu: float  # user+sys seconds of this process over the same span
    events: int
    crc: int


class Clock:
    """The clocks of the consumer loop, started at the first event, and that event's crc32."""

    def __init__(self, first: str = "") -> None:
        self.start, self.cpu = perf_counter(), getrusage(RUSAGE_SELF)
        self.crc = zlib.crc32(first.encode())

    def timing(self, count: int, crc: int) -> Timing:
        now, then = getrusage(RUSAGE_SELF), self.cpu
        cpu = now.ru_utime - then.ru_utime + now.ru_stime - then.ru_stime
        return Timing(perf_counter() - self.start, cpu, count, crc)


def consume(events: Iterable[Any], stop_at: int | None) -> Timing:
    """The consumer loop of every sync client: count the events and chain crc32 over their
    ``.data``; the clock starts once the first event is in."""
    iterator = iter(events)
    first = next(iterator, None)
    if first is None:
        return Timing(0.0, 0.0, 0, 0)
    clock = Clock(first.data)
    crc32, crc, count = zlib.crc32, clock.crc, 1
    if count != stop_at:
        for event in iterator:
            crc = crc32(event.data.encode(), crc)
            count += 1
            if count == stop_at:
                break
    return clock.timing(count, crc)


async def aconsume(events: AsyncIterable[Any], stop_at: int | None) -> Timing:
    """:func:`consume` for async iterables (the same loop, with ``async for``)."""
    iterator = aiter(events)
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        return Timing(0.0, 0.0, 0, 0)
    clock = Clock(first.data)
    crc32, crc, count = zlib.crc32, clock.crc, 1
    if count != stop_at:
        async for event in iterator:
            crc = crc32(event.data.encode(), crc)
            count += 1
            if count == stop_at:
                break
    return clock.timing(count, crc)


# --- the clients: each library as its documentation shows --------------------------------------

ASYNC = {"ours-async", "ref-async", "httpx-sse-async", "aiohttp-sse-client2"}
"""The async clients; the others are sync."""
RECONNECTING = {"requests-sse", "aiohttp-sse-client2"}
"""The clients that reconnect at the end of a stream: stopped after the expected count."""


def sync_events(name: str, url: str, stack: contextlib.ExitStack) -> Any:
    """The events of sync client ``name`` on ``url``; what it opens, ``stack`` closes."""
    if name in ("ours-sync", "ref-sync"):  # this project or the reference: same code
        from ld_eventsource import SSEClient

        return stack.enter_context(SSEClient(url)).events
    if name == "httpx-sse-sync":
        import httpx
        from httpx_sse import connect_sse

        client = stack.enter_context(httpx.Client())
        return stack.enter_context(connect_sse(client, "GET", url)).iter_sse()
    if name == "sseclient-py":  # the README's first example: a urllib3 response
        import sseclient
        import urllib3

        headers = {"Accept": "text/event-stream"}
        response = urllib3.PoolManager().request("GET", url, preload_content=False, headers=headers)
        client = sseclient.SSEClient(response)
        stack.callback(client.close)
        return client.events()
    from requests_sse import EventSource  # requests-sse

    return stack.enter_context(EventSource(url))


async def async_events(name: str, url: str, stack: contextlib.AsyncExitStack) -> Any:
    """:func:`sync_events` for the async clients."""
    if name in ("ours-async", "ref-async"):
        from ld_eventsource import AsyncSSEClient

        return (await stack.enter_async_context(AsyncSSEClient(url))).events
    if name == "httpx-sse-async":
        import httpx
        from httpx_sse import aconnect_sse

        client = await stack.enter_async_context(httpx.AsyncClient())
        return (await stack.enter_async_context(aconnect_sse(client, "GET", url))).aiter_sse()
    from aiohttp_sse_client2 import client as sse_client  # aiohttp-sse-client2

    return await stack.enter_async_context(sse_client.EventSource(url))


# --- baselines ---------------------------------------------------------------------------------


def _request(target: Target, accept: bool = True) -> socket.socket:
    sock = socket.create_connection((target.host, target.port))
    head = "Accept: text/event-stream\r\nCache-Control: no-cache\r\n" if accept else ""
    host = f"{target.host}:{target.port}"
    sock.sendall(f"GET {target.path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
    return sock


def naive_bodies(sock: socket.socket) -> Iterator[bytes]:
    """The body of the response on ``sock``, read and de-framed by hand: up to the blank line
    that ends the head (only whether it says ``chunked`` is looked at, not even the status),
    then :func:`_dechunk` or every read until the close."""
    head = b""
    while (end := head.find(b"\r\n\r\n")) < 0:
        more = sock.recv(READ_SIZE)
        if not more:
            raise ConnectionError("closed before the end of the response head")
        head += more
    first = head[end + 4 :]
    if b"transfer-encoding: chunked" in head[:end].lower():
        return _dechunk(first, sock.recv)
    return _until_close(first, sock.recv)


def raw_socket(target: Target) -> tuple[int, Timing]:
    """The I/O limit: the request, then ``recv_into`` a 256 KiB buffer until the server closes.
    Returns the number of bytes of the whole response (the head included), and the time from
    the first read."""
    with _request(target, accept=False) as sock:
        buffer = bytearray(RAW_READ_SIZE)
        recv_into = sock.recv_into
        total = recv_into(buffer)  # the clock starts at the first bytes, as for the others
        clock = Clock()
        while n := recv_into(buffer):
            total += n
    return total, clock.timing(0, 0)


def _dechunk(first: bytes, recv: Callable[[int], bytes]) -> Iterator[bytes]:
    """
    The body of a chunked response, one ``bytes`` per ``recv``: the payload bytes of every
    chunk (or part of a chunk) that the read completed, joined. Chunk extensions and trailers
    are not supported (the load server sends neither).
    """
    remaining = skip = 0  # payload bytes left in the current chunk; of the CRLF after it
    carry, data = b"", first  # an incomplete size line; the bytes of the last read
    while True:
        if carry:
            data, carry = carry + data, b""
        parts: list[bytes] = []
        pos, size = 0, len(data)
        while pos < size:
            if remaining:
                stop = min(pos + remaining, size)
                parts.append(data[pos:stop])
                remaining -= stop - pos
                pos = stop
            elif skip:
                step = min(skip, size - pos)
                skip -= step
                pos += step
            else:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    carry = data[pos:]
                    break
                length = int(data[pos:eol], 16)
                pos = eol + 2
                if length == 0:
                    if parts:
                        yield b"".join(parts)
                    return
                remaining = length
                skip = 2
        if parts:
            yield b"".join(parts)
        data = recv(READ_SIZE)
        if not data:
            raise ConnectionError("closed inside a chunked body")


def _until_close(first: bytes, recv: Callable[[int], bytes]) -> Iterator[bytes]:
    if first:
        yield first
    while data := recv(READ_SIZE):
        yield data


def _naive_events(bodies: Iterable[bytes]) -> Iterator[tuple[str, str, str | None]]:
    """
    The naive SSE parser: normalise CRLF to LF, split the buffer on blank lines (the part after
    the last one is kept for the next read), and for each block decode it, split it into lines,
    ``partition(":")`` each, drop one leading space from the value, and keep ``data``,
    ``event`` and ``id``; a block with data becomes an ``(event, data, id)`` tuple. No comments,
    no ``retry``, no bare-CR line ends, no size bound, no BOM; the kept tail is concatenated
    with each new read (so an event that spans many reads is copied that many times).
    """
    rest = b""
    for body in bodies:
        data = rest + body if rest else body
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        blocks = data.split(b"\n\n")
        rest = blocks.pop()
        for block in blocks:
            if not block:
                continue
            etype, eid, lines = "message", None, []
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                if value[:1] == " ":
                    value = value[1:]
                if name == "data":
                    lines.append(value)
                elif name == "event":
                    etype = value
                elif name == "id":
                    eid = value
            if lines:
                yield (etype, "\n".join(lines), eid)


def naive_floor(target: Target) -> Timing:
    """The naive parser floor: :func:`naive_bodies`, :func:`_naive_events`, and the same
    consumer loop as every client (inlined: a tuple has no ``.data``)."""
    with _request(target) as sock:
        iterator = _naive_events(naive_bodies(sock))
        event = next(iterator, None)
        if event is None:
            return Timing(0.0, 0.0, 0, 0)
        clock = Clock(event[1])
        crc32, crc, count = zlib.crc32, clock.crc, 1
        for event in iterator:
            crc = crc32(event[1].encode(), crc)
            count += 1
    return clock.timing(count, crc)


def run(name: str, target: Target) -> Timing:
    """Runs client ``name`` on ``target``: its :class:`Timing`."""
    stop_at = target.stop_at if name in RECONNECTING else None
    if name == "naive-floor":
        return naive_floor(target)
    if name in ASYNC:
        import asyncio

        async def read() -> Timing:
            async with contextlib.AsyncExitStack() as stack:
                return await aconsume(await async_events(name, target.url, stack), stop_at)

        return asyncio.run(read())
    with contextlib.ExitStack() as stack:
        return consume(sync_events(name, target.url, stack), stop_at)


def main(argv: list[str]) -> int:
    from _worker import describe, emit, peak_rss_mb, use_ld_eventsource

    name, url, events, kind = argv[:4]
    dists = [d for d in argv[4].split(",") if d] if len(argv) > 4 else []
    if kind in ("ours", "ref"):
        use_ld_eventsource(kind)
    host, _, rest = url.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    target = Target(url, host, int(port), "/" + path, int(events))
    out: dict[str, object] = {}
    try:
        if name == "raw-socket":
            out["bytes"], timing = raw_socket(target)
        else:
            timing = run(name, target)
        out.update(ok=True, events=timing.events, crc=timing.crc, wall=timing.wall, cpu=timing.cpu)
    except Exception as e:  # reported, not raised: the driver shows it as ERR
        out.update(ok=False, error=f"{type(e).__name__}: {e}"[:300])
    out["maxrss_mb"] = peak_rss_mb()
    if dists:
        out.update(describe(dists))
    emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

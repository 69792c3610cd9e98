"""
Where the time of our sync client goes, per event, next to the naive floor of
``bench/throughput.py`` (``small`` events, chunk-per-event by default); then cProfile's top
functions of the whole client (``--async-profile``: of the async client too).

    python bench/profile_sync.py [--events 50000] [--framing close-delimited] [--markdown out.md]

Each stage is timed over the whole stream, ``--repeat`` rounds interleaved, the least time
kept (as timeit does), per event; docs/performance.md ("Where the time goes") says what each
stage holds. For a sampling profile: ``py-spy record -- python bench/profile_sync.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from _harness import LoadServer, markdown_table
from _server import FRAMINGS
from _worker import SRC_DIR

sys.path.insert(0, str(SRC_DIR))

import _tp_clients as tc
from ld_eventsource._common import null_logger
from ld_eventsource._parser import SSEParser
from ld_eventsource.actions import Event
from ld_eventsource.config.connect_strategy import ConnectStrategy


class Server(LoadServer):
    """The load server with one case: ``events`` small events in ``framing``."""

    def __init__(self, events: int, framing: str):
        super().__init__("--framings", framing, "--extra", f"small:{events}:{framing}")
        self.case = f"small-{events}/{framing}"
        self.expect = (self.cases[self.case]["events"], self.cases[self.case]["crc"])

    def target(self) -> tc.Target:
        url = self.url(self.case)
        return tc.Target(url, "127.0.0.1", self.port, url.split(str(self.port), 1)[1], 0)


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


# --- the stages --------------------------------------------------------------------------------


def consume_list(events: Iterable[Any]) -> tuple[int, int]:
    return tc.consume(events, None)[2:]  # the consumer loop of throughput.py: (events, crc)


def consume_tuples(events: Iterable[tuple[str, str, str | None]]) -> tuple[int, int]:
    crc32, crc, count = zlib.crc32, 0, 0
    for event in events:
        crc = crc32(event[1].encode(), crc)
        count += 1
    return count, crc


def full_client(url: str, name: str = "ours-sync") -> tuple[int, int]:
    """The whole client, ``ours-sync`` or ``ours-async``, as throughput.py runs it."""
    return tc.run(name, tc.Target(url, "", 0, "", 0))[2:]


def socket_read(server: Server) -> int:
    with tc._request(server.target(), accept=False) as sock:
        recv, total = sock.recv, 0
        while data := recv(65536):
            total += len(data)
    return total


def transport(server: Server) -> list[bytes]:
    client = ConnectStrategy.http(server.url(server.case)).create_client(null_logger())
    result = client.connect(None)
    try:
        return list(result.stream)
    finally:
        result.close()
        client.close()


def parse(chunks: list[bytes]) -> int:
    """Feeds the chunks; what each feed returns is dropped at once, as the client does (kept,
    200k events would make the garbage collector walk them over and over)."""
    feed, count = SSEParser().feed, 0
    for chunk in chunks:
        count += len(feed(chunk))
    return count


def parse_kept(chunks: list[bytes]) -> list[Any]:
    parser, out = SSEParser(), []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


def event_creation(events: list[Any]) -> float:
    """Seconds to create ``len(events)`` Events with ``tuple.__new__`` (each dropped at once),
    net of the same loop building nothing."""
    new, fields = tuple.__new__, [tuple(e) for e in events]

    def with_new() -> None:
        for f in fields:
            new(Event, f)

    def bare() -> None:
        for f in fields:
            tuple(f)  # the same call overhead, no new object (tuple(t) is t)

    return timed(with_new)[0] - timed(bare)[0]


def floor(server: Server, parse: bool = True) -> Any:
    """The naive floor's whole loop (events, crc), or only its bodies (not ``parse``)."""
    with tc._request(server.target()) as sock:
        bodies = tc.naive_bodies(sock)
        return consume_tuples(tc._naive_events(bodies)) if parse else list(bodies)


def one_round(server: Server, add: Callable[[str, float], None]) -> None:
    def check(name: str, fn: Callable[[Any], tuple[int, int]], arg: Any) -> None:
        seconds, got = timed(fn, arg)
        assert got == server.expect, (name, got, server.expect)
        add(name, seconds)

    check("client", full_client, server.url(server.case))
    add("socket", timed(socket_read, server)[0])
    seconds, chunks = timed(transport, server)
    add("transport", seconds)
    add("chunks", len(chunks))
    add("parser", timed(parse, chunks)[0])
    items = parse_kept(chunks)
    add("creation", event_creation(items))
    check("iteration", consume_list, (item for item in items))
    add("consumer", timed(consume_list, items)[0])
    check("async", lambda url: full_client(url, "ours-async"), server.url(server.case))
    check("floor", floor, server)
    seconds, bodies = timed(floor, server, False)
    add("floor-dechunk", seconds)
    add("floor-reads", len(bodies))
    add("floor-parser", timed(lambda: sum(1 for _ in tc._naive_events(bodies)))[0])
    add("floor-consumer", timed(consume_tuples, list(tc._naive_events(bodies)))[0])


def breakdown(server: Server, repeat: int) -> dict[str, float]:
    """Least seconds of each stage over ``repeat`` interleaved rounds."""
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):
        one_round(server, lambda name, seconds: samples.setdefault(name, []).append(seconds))
    # The least of the rounds, as timeit does: other load on the machine only adds time, and
    # the stages are subtracted from one another, so a disturbed round would skew them.
    return {name: min(values) for name, values in samples.items()}


STAGES = [  # (row, ours: the stages added and (-) subtracted, floor: the same)
    ("socket read (recv 64 KiB until close)", "socket", "socket"),
    ("HTTP de-chunking (ours: ConnectionResult.stream less the socket read; floor: _dechunk)",
     "transport -socket", "floor-dechunk -socket"),
    ("parser (ours: SSEParser.feed less Event creation; floor: split, decode, partition, "
     "tuple, generator)", "parser -creation", "floor-parser"),
    ("Event creation (tuple.__new__(Event, ...))", "creation", ""),
    ("driver loop (ours: SSEClient._read; floor: the rest of its loop)",
     "client -transport -parser -iteration", "floor -floor-dechunk -floor-parser -floor-consumer"),
    ("iteration (generator resume into the for loop)", "iteration -consumer", ""),
    ("consumer (count, crc32 of the data)", "consumer", "floor-consumer"),
    ("whole client", "client", "floor"),
    ("whole async client (AsyncSSEClient, same consumer loop)", "async", ""),
]  # fmt: skip


def report(least: dict[str, float], events: int, framing: str, repeat: int) -> list[str]:
    def us(terms: str) -> str:
        if not terms:
            return ""
        total = sum(-least[t[1:]] if t.startswith("-") else least[t] for t in terms.split())
        return f"{total / events * 1e6:.2f}"

    return [
        f"Per event, in microseconds: {events} `small` events, {framing}, the least of "
        f"{repeat} interleaved rounds for each stage; ours read {least['chunks']:.0f} chunks, "
        f"the floor {least['floor-reads']:.0f} reads.",
        "",
        *markdown_table(
            ["stage", "ours (sync)", "naive floor"],
            [[name, us(ours), us(floor)] for name, ours, floor in STAGES],
            {1, 2},
        ),
    ]


def profile(server: Server, top: int, name: str) -> list[str]:
    if name == "ours-async":
        full_client(server.url(server.case), name)  # imports aiohttp outside the profile
    url, profiler = server.url(server.case), cProfile.Profile()
    profiler.enable()
    got = full_client(url, name)
    profiler.disable()
    assert got == server.expect
    stats, events = pstats.Stats(profiler, stream=io.StringIO()), server.expect[0]
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(
        ((tt, ct, nc, f"{Path(file).name}:{line}({func})")
         for (file, line, func), (_, nc, tt, ct, _) in stats.stats.items()),  # type: ignore[attr-defined]
        reverse=True,
    )  # fmt: skip
    per_event = [
        [f"`{name}`", f"{nc / events:.2f}", f"{tt / events * 1e6:.2f}",
         f"{ct / events * 1e6:.2f}", f"{tt / total:.0%}"]
        for tt, ct, nc, name in rows[:top]
    ]  # fmt: skip
    header = ["function", "calls/event", "own us/event", "cumulative us/event", "share"]
    return [
        f"cProfile of the whole {name.partition('-')[2]} client "
        f"({total:.2f} s under the profiler): own time per event",
        "",
        *markdown_table(header, per_event, {1, 2, 3, 4}),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="Per-event time breakdown of our sync client")
    add = parser.add_argument
    add("--events", type=int, default=200_000)
    add("--framing", choices=FRAMINGS, default="chunk-per-event")
    add("--repeat", type=int, default=7)
    add("--top", type=int, default=15)
    add("--async-profile", action="store_true", help="also run cProfile on AsyncSSEClient")
    add("--markdown", metavar="PATH", help="write the tables as Markdown")
    args = parser.parse_args()
    server = Server(args.events, args.framing)
    try:
        lines = report(breakdown(server, args.repeat), args.events, args.framing, args.repeat)
        for name in ["ours-sync", "ours-async"][: 1 + args.async_profile]:
            lines += profile(server, args.top, name)
    finally:
        server.stop()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

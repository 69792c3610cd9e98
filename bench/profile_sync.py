"""
Where the time of our sync client goes, per event, next to the naive floor of
``bench/throughput.py``: the ``small`` workload, chunk-per-event by default.

Usage::

    python bench/profile_sync.py                     # breakdown, then cProfile's top functions
    python bench/profile_sync.py --events 50000 --framing close-delimited
    python bench/profile_sync.py --py-spy            # also sample with py-spy (installed in
                                                     # bench/.venvs/profile on first use)
    python bench/profile_sync.py --async-profile     # cProfile AsyncSSEClient as well
    python bench/profile_sync.py --markdown out.md

Runs under the project's interpreter (it imports ``ld_eventsource`` from ``src/``), against the
load server of the benchmarks (``bench/_server.py``) in its own process. Each stage is timed over the whole stream,
``--repeat`` times interleaved (the least time, as timeit takes), and divided by the number of
events:

- socket read: ``recv(65536)`` until close, the same for both (ours reads 64 KiB at a time
  too);
- transport: our ``ConnectionResult.stream`` (urllib3's response, the socket's
  ``BufferedReader.read1`` and, for a chunked body, the de-chunking in
  ``ld_eventsource._chunked``), every chunk kept; de-chunking = transport - socket read;
- parser: ``SSEParser.feed`` over those same chunks (Event creation included); Event creation
  alone is ``tuple.__new__(Event, ...)`` timed in a loop of its own;
- iteration: the consumer loop (count, crc32 of ``.data``) over a generator that yields the
  parsed events from a list; consumer alone: the same loop over the list;
- driver loop: the whole client (``SSEClient(url).events``) minus transport, parser and
  iteration: ``SSEClient._read``'s own work per item;
- and, for comparison, the whole async client (``AsyncSSEClient(url).events``).

The floor is broken down the same way (its de-chunker over the socket, its parser over the
de-chunked reads). Then cProfile runs the whole client once and lists the functions by own
time (profiling inflates every call, so read shares rather than absolute numbers), and with
``--py-spy`` a sampling profile does the same without that distortion.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import socket
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from _harness import LoadServer, Venv, interpreter, markdown_table
from _server import FRAMINGS
from _worker import BENCH_DIR, SRC_DIR

sys.path.insert(0, str(SRC_DIR))

import _tp_clients as tc
from ld_eventsource import SSEClient
from ld_eventsource._common import null_logger
from ld_eventsource._parser import SSEParser
from ld_eventsource.actions import Event
from ld_eventsource.config.connect_strategy import ConnectStrategy

PY_SPY = Venv("profile", ("py-spy==0.4.3",))


class Server(LoadServer):
    """The load server with one case: ``events`` small events in ``framing``."""

    def __init__(self, events: int, framing: str):
        super().__init__("--framings", framing, "--extra", f"small:{events}:{framing}")
        self.case = f"small-{events}/{framing}"
        self.expect = self.cases[self.case]

    def stream_url(self) -> str:
        """A URL of the case, for one reading."""
        return self.url(self.case)

    def target(self) -> tc.Target:
        url = self.stream_url()
        return tc.Target(url, "127.0.0.1", self.port, url.split(str(self.port), 1)[1], 0)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# --- the stages --------------------------------------------------------------------------------


def consume_list(events: Iterable[Any]) -> tuple[int, int]:
    timing = tc.consume(events, None)  # the consumer loop of throughput.py
    return timing.events, timing.crc


def consume_tuples(events: Iterable[tuple[str, str, str | None]]) -> tuple[int, int]:
    crc32 = zlib.crc32
    crc = 0
    count = 0
    for event in events:
        crc = crc32(event[1].encode(), crc)
        count += 1
    return count, crc


def yield_from(items: list[Any]) -> Iterator[Any]:
    yield from items


def full_client(url: str) -> tuple[int, int]:
    with SSEClient(url) as client:
        return consume_list(client.events)


def full_async_client(url: str) -> tuple[int, int]:
    timing = tc.run("ours-async", tc.Target(url, "", 0, "", 0))
    return timing.events, timing.crc


def socket_read(server: Server, size: int) -> int:
    target = server.target()
    sock = socket.create_connection((target.host, target.port))
    with sock:
        sock.sendall(f"GET {target.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        recv = sock.recv
        total = 0
        while data := recv(size):
            total += len(data)
    return total


def transport(server: Server) -> list[bytes]:
    client = ConnectStrategy.http(server.stream_url()).create_client(null_logger())
    result = client.connect(None)
    try:
        return list(result.stream)
    finally:
        result.close()
        client.close()


def parse(chunks: list[bytes]) -> int:
    """Feeds the chunks; what each feed returns is dropped at once, as the client does (kept,
    200k events would make the garbage collector walk them over and over)."""
    parser = SSEParser()
    feed = parser.feed
    count = 0
    for chunk in chunks:
        count += len(feed(chunk))
    return count


def parse_kept(chunks: list[bytes]) -> list[Any]:
    parser = SSEParser()
    out: list[Any] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


def event_creation(events: list[Any]) -> float:
    """Seconds to create ``len(events)`` Events with ``tuple.__new__`` (each dropped at once),
    net of the same loop building nothing."""
    new = tuple.__new__
    fields = [tuple(e) for e in events]

    def with_new() -> None:
        for f in fields:
            new(Event, f)

    def bare() -> None:
        for f in fields:
            tuple(f)  # the same call overhead, no new object (tuple(t) is t)

    return timed(with_new)[0] - timed(bare)[0]


def floor_parse(bodies: list[bytes]) -> int:
    count = 0
    for _ in tc._naive_events(bodies):
        count += 1
    return count


def floor_dechunk(server: Server) -> list[bytes]:
    sock, head, first = tc._connect(server.target())
    with sock:
        chunked = b"transfer-encoding: chunked" in head
        return list((tc._dechunk if chunked else tc._until_close)(first, sock.recv))


def floor_full(server: Server) -> tuple[int, int]:
    sock, head, first = tc._connect(server.target())
    with sock:
        chunked = b"transfer-encoding: chunked" in head
        bodies = (tc._dechunk if chunked else tc._until_close)(first, sock.recv)
        return consume_tuples(tc._naive_events(bodies))


def one_round(server: Server, add: Callable[[str, float], None]) -> None:
    expect = (server.expect["events"], server.expect["crc"])
    seconds, got = timed(partial(full_client, server.stream_url()))
    assert got == expect, (got, expect)
    add("ours: whole client", seconds)
    add("socket: recv 64 KiB", timed(partial(socket_read, server, 65536))[0])
    seconds, chunks = timed(partial(transport, server))
    add("ours: transport", seconds)
    add("ours: chunks", len(chunks))
    add("ours: parser", timed(partial(parse, chunks))[0])
    items = parse_kept(chunks)
    add("ours: Event creation", event_creation(items))
    seconds, got = timed(partial(consume_list, yield_from(items)))
    assert got == expect
    add("ours: iteration + consumer", seconds)
    add("consumer over a list", timed(partial(consume_list, items))[0])
    seconds, got = timed(partial(full_async_client, server.stream_url()))
    assert got == expect
    add("ours async: whole client", seconds)
    seconds, got = timed(partial(floor_full, server))
    assert got == expect
    add("floor: whole", seconds)
    seconds, bodies = timed(partial(floor_dechunk, server))
    add("floor: socket + de-chunk", seconds)
    add("floor: reads", len(bodies))
    add("floor: parser + tuples", timed(partial(floor_parse, bodies))[0])
    tuples = list(tc._naive_events(bodies))
    add("floor: consumer over a list", timed(partial(consume_tuples, tuples))[0])


def breakdown(server: Server, repeat: int) -> dict[str, float]:
    """Least seconds of each stage over ``repeat`` interleaved rounds."""
    samples: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)

    for _ in range(repeat):
        one_round(server, add)
    # The least of the rounds, as timeit does: other load on the machine only adds time, and
    # the stages are subtracted from one another, so a disturbed round would skew them.
    return {name: min(values) for name, values in samples.items()}


def report(medians: dict[str, float], events: int, framing: str, repeat: int) -> list[str]:
    us = {name: value / events * 1e6 for name, value in medians.items()}
    sock = us["socket: recv 64 KiB"]
    creation = us["ours: Event creation"]
    ours_rest = (
        us["ours: whole client"]
        - us["ours: transport"]
        - us["ours: parser"]
        - us["ours: iteration + consumer"]
    )
    floor_parse = us["floor: parser + tuples"]
    floor_consumer = us["floor: consumer over a list"]
    floor_rest = us["floor: whole"] - us["floor: socket + de-chunk"] - floor_parse - floor_consumer
    rows: list[tuple[str, float | None, float | None]] = [
        ("socket read (recv 64 KiB until close)", sock, sock),
        (
            "HTTP de-chunking (ours: ConnectionResult.stream less the socket read; "
            "floor: _dechunk)",
            us["ours: transport"] - sock,
            us["floor: socket + de-chunk"] - sock,
        ),
        (
            "parser (ours: SSEParser.feed less Event creation; floor: split, decode, "
            "partition, tuple, generator)",
            us["ours: parser"] - creation,
            floor_parse,
        ),
        ("Event creation (tuple.__new__(Event, ...))", creation, None),
        ("driver loop (ours: SSEClient._read; floor: the rest of its loop)", ours_rest, floor_rest),
        (
            "iteration (generator resume into the for loop)",
            us["ours: iteration + consumer"] - us["consumer over a list"],
            None,
        ),
        ("consumer (count, crc32 of the data)", us["consumer over a list"], floor_consumer),
        ("whole client", us["ours: whole client"], us["floor: whole"]),
        (
            "whole async client (AsyncSSEClient, same consumer loop)",
            us["ours async: whole client"],
            None,
        ),
    ]

    def show(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    return [
        f"Per event, in microseconds: {events} `small` events, {framing}, the least of "
        f"{repeat} interleaved rounds for each stage; ours read {medians['ours: chunks']:.0f} chunks, the floor "
        f"{medians['floor: reads']:.0f} reads.",
        "",
        *markdown_table(
            ["stage", "ours (sync)", "naive floor"],
            [[name, show(ours), show(floor)] for name, ours, floor in rows],
            {1, 2},
        ),
    ]


def profile(
    server: Server, events: int, top: int, client: Callable[[str], tuple[int, int]]
) -> list[str]:
    if client is full_async_client:
        full_async_client(server.stream_url())  # imports aiohttp outside the profile
    url = server.stream_url()
    profiler = cProfile.Profile()
    profiler.enable()
    got = client(url)
    profiler.disable()
    assert got == (server.expect["events"], server.expect["crc"])
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{Path(file).name}:{line}({func})"))
    rows.sort(reverse=True)
    return [
        f"cProfile of the whole {'async' if client is full_async_client else 'sync'} client "
        f"({total:.2f} s under the profiler): own time per event",
        "",
        *markdown_table(
            ["function", "calls/event", "own us/event", "cumulative us/event", "share"],
            [
                [
                    f"`{name}`",
                    f"{nc / events:.2f}",
                    f"{tt / events * 1e6:.2f}",
                    f"{ct / events * 1e6:.2f}",
                    f"{tt / total:.0%}",
                ]
                for tt, ct, nc, name in rows[:top]
            ],
            {1, 2, 3, 4},
        ),
    ]


def py_spy(server: Server, events: int, top: int) -> list[str]:
    try:
        venv_python, env = interpreter(PY_SPY)
    except Exception as e:
        return [f"py-spy: could not be installed ({e})", ""]
    spy = Path(venv_python).parent / "py-spy"
    out = Path("/tmp") / f"py-spy-{uuid.uuid4().hex}.txt"
    urls = [server.stream_url() for _ in range(3)]
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); import profile_sync as p; "
        f"[p.full_client(url) for url in {urls!r}]"
    )
    cmd = [str(spy), "record", "-r", "2000", "-f", "raw", "-o", str(out), "--", sys.executable]
    result = subprocess.run(
        [*cmd, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not out.exists():
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"py-spy: failed ({tail})", ""]
    by_function: dict[str, int] = {}
    by_line: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "full_client" not in stack or "importlib._bootstrap" in stack:
            continue  # start-up and imports (the first stream imports urllib3)
        n = int(count)
        total += n
        leaf = stack.split(";")[-1]  # "function (path/file.py:line)"
        name, _, where = leaf.partition(" (")
        file = where.rsplit(":", 1)[0]
        function = f"{name} ({file})"
        by_function[function] = by_function.get(function, 0) + n
        by_line[leaf] = by_line.get(leaf, 0) + n
    out.unlink()
    if not total:
        return ["py-spy: no samples inside the client", ""]
    lines = [
        f"py-spy (sampling at 2 kHz, 3 whole streams, {total} samples inside the client; it "
        "pauses the process to sample, so read shares): own time by function, and the hottest "
        "lines",
        "",
    ]
    for what, counts in (("function", by_function), ("line", by_line)):
        rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        lines += markdown_table(
            [what, "share of samples"], [[f"`{k}`", f"{n / total:.1%}"] for k, n in rows], {1}
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="Per-event time breakdown of our sync client")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--framing", choices=FRAMINGS, default="chunk-per-event")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--py-spy", action="store_true", help="also sample with py-spy")
    parser.add_argument(
        "--async-profile", action="store_true", help="also run cProfile on AsyncSSEClient"
    )
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    args = parser.parse_args()
    server = Server(args.events, args.framing)
    try:
        lines = report(breakdown(server, args.repeat), args.events, args.framing, args.repeat)
        lines += profile(server, args.events, args.top, full_client)
        if args.async_profile:
            lines += profile(server, args.events, args.top, full_async_client)
        if args.py_spy:
            lines += py_spy(server, args.events, args.top)
    finally:
        server.stop()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""
Many concurrent streams in one event loop: memory and CPU per stream, against
launchdarkly-eventsource 1.7.4's AsyncSSEClient, aiohttp-sse-client2 and bare readers.

    python bench/fanout.py               # N = 1,000 and 10,000, prints a table
    python bench/fanout.py --n 1000      # one N (repeatable)
    python bench/fanout.py --quick       # N = 200: a smoke run

For each (implementation, N), a fresh load server (``hold`` mode: 10 events, then the stream
stays open) and a client process (this script with ``--impl``) that opens N streams at once,
waits until all have their events, then cancels them. RSS/stream = (peak - RSS before) / N;
CPU/stream = CPU time / N. ``ours``, ``ref`` and ``sse2`` share one session; ``-own``: a
session per client; ``aiohttp`` and ``bare`` count blank lines (the floors);
``aiohttp-parse`` is the aiohttp reader with this project's parser, the least that any SSE
client on aiohttp does. Runs with ``ours`` and a floor print their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import resource
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from _harness import REF, SSE2, Check, LoadServer, Report, arguments, collect, interpreter, progress
from _worker import REF_VERSION, describe, emit, raise_nofile, status_kb, use_ld_eventsource

SCRIPT = Path(__file__).resolve()
EVENTS = 10
HOST = "127.0.0.1"
TARGET_RSS_KB = 15.0
TARGET_CPU_MS = 0.8
SSE2_VERSION = "0.3.0"
FRAMINGS = {"chunked": "chunk-per-event", "close": "close-delimited"}
"""The choices of ``--framing``, and their names for the load server."""

IMPLS: dict[str, str] = {  # in the order of the table
    "bare": "bare asyncio reader", "aiohttp": "bare aiohttp reader, shared session",
    "aiohttp-parse": "aiohttp reader + our parser, shared",
    "ours": "ours, shared session", "ours-own": "ours, own session each",
    "ref": f"ref {REF_VERSION}, shared session", "ref-own": f"ref {REF_VERSION}, own session each",
    "sse2": f"aiohttp-sse-client2 {SSE2_VERSION}, shared",
}  # fmt: skip
OURS = ("ours", "ours-own")
VENVS = {"ref": REF, "ref-own": REF, "sse2": SSE2}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- client worker: one implementation --------------------------------------------------------

# One stream: open it, read events, call ``reached()`` once it has read EVENTS of them, and
# go on reading (waiting for more, as a subscriber does) until cancelled; closes on the way out.
Reached = Callable[[], None]
Stream = Callable[[str, Reached, Any], Awaitable[None]]


async def count_events(
    read: Callable[[], Awaitable[bytes]], reached: Reached, count: int = 0, tail: bytes = b""
) -> None:
    """
    Counts the blank lines (ends of events) of what ``read`` returns, past ``count`` already
    seen (``tail``: the last byte seen), calling ``reached`` once there are EVENTS; until the
    end of the body.
    """
    if count >= EVENTS:
        reached()
    while more := await read():
        before = count
        count += (tail + more).count(b"\n\n")
        tail = more[-1:]
        if before < EVENTS <= count:
            reached()


async def bare(url: str, reached: Reached, session: Any) -> None:
    hostport, _, path = url.split("://", 1)[1].partition("/")
    host, _, port = hostport.partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            if not (more := await reader.read(65536)):
                return
            data += more
        body = data.split(b"\r\n\r\n", 1)[1]
        count, tail = body.count(b"\n\n"), body[-1:]
        del data, body  # not kept while the stream is open
        await count_events(lambda: reader.read(65536), reached, count, tail)
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await writer.wait_closed()


async def bare_aiohttp(url: str, reached: Reached, session: Any) -> None:
    import aiohttp

    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    no_total = aiohttp.ClientTimeout(total=None)
    async with session.get(url, headers=headers, timeout=no_total) as response:
        await count_events(response.content.readany, reached)


async def parsed_aiohttp(
    parser_class: Any, event_class: type, url: str, reached: Reached, session: Any
) -> None:
    """
    The bare aiohttp reader with its bytes parsed into events by this project's parser:
    the least that any SSE client on aiohttp does.
    """
    import aiohttp

    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    no_total = aiohttp.ClientTimeout(total=None)
    parser, count = parser_class(), 0
    async with session.get(url, headers=headers, timeout=no_total) as response:
        while chunk := await response.content.readany():
            for item in parser.feed(chunk):
                if item.__class__ is event_class:
                    count += 1
                    if count == EVENTS:
                        reached()


async def until_cancelled(events: AsyncIterable[Any], reached: Reached) -> None:
    """Reads ``events``, calling ``reached`` at the EVENTS-th, then waits for more."""
    count = 0
    async for _ in events:
        count += 1
        if count == EVENTS:
            reached()


async def ld(client_class: Any, strategy: Any, url: str, reached: Reached, session: Any) -> None:
    """One stream of ``AsyncSSEClient`` (this project's or the reference's)."""
    source = url if session is None else strategy.http(url, session=session)
    async with client_class(source) as client:
        await until_cancelled(client.events, reached)


async def sse2(event_source: Any, url: str, reached: Reached, session: Any) -> None:
    async with event_source(url, session=session) as source:
        await until_cancelled(source, reached)


SHARED = ("aiohttp", "aiohttp-parse", "ours", "ref", "sse2")
"""The implementations whose streams share one session."""


def load_impl(impl: str) -> tuple[Stream, dict[str, Any]]:
    """What one stream does under ``impl``, everything it uses imported; what was imported."""
    meta: dict[str, Any] = {"impl": impl, "python": describe()["python"], "module": "asyncio"}
    if impl == "bare":
        return bare, meta
    import aiohttp

    meta.update(aiohttp=aiohttp.__version__, module=str(Path(aiohttp.__file__).resolve().parent))
    meta["version"] = aiohttp.__version__
    if impl == "aiohttp":
        return bare_aiohttp, meta
    if impl == "aiohttp-parse":
        use_ld_eventsource("ours")
        from ld_eventsource._parser import SSEParser
        from ld_eventsource.actions import Event

        return partial(parsed_aiohttp, SSEParser, Event), meta
    if impl == "sse2":
        from aiohttp_sse_client2 import client as sse_client

        meta["module"] = str(Path(sse_client.__file__).resolve().parent)
        meta["version"] = describe(["aiohttp-sse-client2"])["versions"]["aiohttp-sse-client2"]
        return partial(sse2, sse_client.EventSource), meta
    found = use_ld_eventsource(impl.partition("-")[0])
    from ld_eventsource import AsyncSSEClient
    from ld_eventsource.config.async_connect_strategy import AsyncConnectStrategy

    suffix = " (this project)" if impl.startswith("ours") else ""
    meta.update(module=found["module"], version=found["version"] + suffix)
    return partial(ld, AsyncSSEClient, AsyncConnectStrategy), meta


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return status_kb("VmHWM") <= status_kb("VmRSS") + 64


async def run_streams(
    stream: Stream, urls: list[str], budget: float, session: Any
) -> dict[str, Any]:
    """
    Runs one task per URL until every stream has received EVENTS events (or ``budget``
    seconds have passed), then cancels them all: each closes its stream as it ends.
    """
    n, all_done, complete, start = len(urls), asyncio.Event(), 0, time.perf_counter()
    done_at: float | None = None

    def reached() -> None:
        nonlocal complete, done_at
        complete += 1
        if complete == n:
            done_at = time.perf_counter()
            all_done.set()

    tasks = [asyncio.ensure_future(stream(url, reached, session)) for url in urls]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(all_done.wait(), budget)
    await asyncio.sleep(0.2)  # a moment of the steady state: every stream open and waiting
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=30)
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    errors = collections.Counter(type(task.exception()).__name__ for task in failed)
    received = None if done_at is None else done_at - start
    pending_n = len(pending)
    return {
        "complete": complete,
        "all_received_s": received,
        "errors": dict(errors),
        "pending": pending_n,
    }


async def measured(
    stream: Stream, urls: list[str], budget: float, session: Any,
    close: Callable[[], Awaitable[object]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """
    :func:`run_streams` and what it cost: everything imported and ``session`` created, the
    count starts here; ``close`` (the session's, if any) is awaited at the end, in the count.
    """
    n = len(urls)
    await asyncio.sleep(0)
    gc.collect()
    peak_reset = _reset_peak()
    rss0, cpu0, wall0 = status_kb("VmRSS"), cpu_seconds(), time.perf_counter()
    outcome = await run_streams(stream, urls, budget, session)
    if close is not None:
        await close()
    wall, cpu, peak = time.perf_counter() - wall0, cpu_seconds() - cpu0, status_kb("VmHWM")
    return {
        **outcome, "n": n, "rss0_kb": rss0, "peak_kb": peak, "peak_reset": peak_reset,
        "rss_per_stream_kb": (peak - rss0) / n, "cpu_s": cpu,
        "cpu_per_stream_ms": cpu * 1000 / n, "wall_s": wall,
    }  # fmt: skip


def worker(impl: str, n: int, ports: list[int], framing: str, budget: float) -> None:
    limit = raise_nofile(n + 1024)
    if limit < n + 64:
        raise RuntimeError(f"RLIMIT_NOFILE is {limit}, too low for {n} streams")
    stream, meta = load_impl(impl)
    case = f"flags/{FRAMINGS[framing]}?mode=hold"
    urls = [f"http://{HOST}:{ports[i % len(ports)]}/{case}&stream={i}" for i in range(n)]

    async def main() -> dict[str, Any]:
        session = None
        if impl in SHARED:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
            session = aiohttp.ClientSession(connector=connector)
        close = None if session is None else session.close
        return {**await measured(stream, urls, budget, session, close), **meta}

    emit(asyncio.run(main()))


# --- driver ---------------------------------------------------------------------------------


@dataclass
class Result:
    impl: str
    n: int
    data: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def measure(impl: str, n: int, args: argparse.Namespace) -> Result:
    result = Result(impl, n)
    python, env = interpreter(VENVS.get(impl))
    server = LoadServer(
        "--counts", f"flags:{EVENTS}", "--framings", FRAMINGS[args.framing],
        "--ports", str(args.ports), "--lifetime", str(args.budget + 120),
    )  # fmt: skip
    try:
        cmd = [python, str(SCRIPT), "--impl", impl, "--n", str(n), "--budget", str(args.budget)]
        cmd += ["--ports", ",".join(map(str, server.ports)), "--framing", args.framing]
        run = collect(cmd, env, args.budget + 90)
        if run.error or not run.messages:
            result.error = f"client {run.error or 'reported nothing'}"
        else:
            result.data = run.messages[-1]
    finally:
        server.stop()
        result.server = server.stats
    return result


def verdict(result: Result) -> tuple[str, list[Check]]:
    """The OK/MISS cell of one of our rows, and the checks behind it."""
    d, name = result.data, f"{result.impl} N={result.n}"
    if result.error or not d:
        return "FAIL", [(f"{name} ran", False, "")]
    checks: list[Check] = [
        (f"{name}: {what}", ok, "")
        for what, ok in (
            (f"all {result.n} complete", d["complete"] == result.n),
            (f"RSS/stream <= {TARGET_RSS_KB:g} KB", d["rss_per_stream_kb"] <= TARGET_RSS_KB),
            (f"CPU/stream <= {TARGET_CPU_MS:g} ms", d["cpu_per_stream_ms"] <= TARGET_CPU_MS),
        )
    ]
    missed = [name.split(": ", 1)[1] for name, ok, _ in checks if not ok]
    return ("OK" if not missed else "MISS: " + "; ".join(missed)), checks


def ratios(results: list[Result]) -> list[str]:
    """Ours over each floor of the same N (CPU and RSS per stream), for the runs that have them."""
    lines = []
    for ours in results:
        if ours.impl != "ours" or not ours.data:
            continue
        for floor in results:
            if (
                floor.n != ours.n
                or floor.impl not in ("aiohttp", "aiohttp-parse")
                or not floor.data
            ):
                continue
            cpu = ours.data["cpu_per_stream_ms"] / floor.data["cpu_per_stream_ms"]
            rss = ours.data["rss_per_stream_kb"] / floor.data["rss_per_stream_kb"]
            lines.append(f"  N={ours.n} ours / {IMPLS[floor.impl]}: CPU {cpu:.2f}x, RSS {rss:.2f}x")
    return lines


def drive(args: argparse.Namespace) -> int:
    sizes = [200] if args.quick else (args.n or [1000, 10000])
    impls = args.impls.split(",") if args.impls else list(IMPLS)
    for impl in impls:
        if impl not in IMPLS:
            raise SystemExit(f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}")
        interpreter(VENVS.get(impl))  # every venv ready before the first run
    results: list[Result] = []
    for n in sizes:
        for impl in impls:
            progress(f"N={n:6} {IMPLS[impl]} ...")
            result = measure(impl, n, args)
            d = result.data
            got = f"{d.get('rss_per_stream_kb', 0):.1f} KB, {d.get('cpu_per_stream_ms', 0):.3f} ms"
            progress(f"  {result.error or 'complete ' + str(d.get('complete')) + f'/{n}, {got}'}")
            results.append(result)

    out = Report()
    out.line()
    out.line(
        f"Fan-out: N concurrent streams in one event loop, {EVENTS} events each, loopback "
        f"server in another process ({args.ports} ports); per stream = (peak - before) / N"
    )
    metas = {r.impl: r.data for r in reversed(results)}  # the first run's of each
    for impl in impls:
        meta = metas.get(impl, {})
        extra = f", aiohttp {meta['aiohttp']}" if meta.get("aiohttp") else ""
        out.line(
            f"  {impl:8} {meta.get('version', '-')}{extra}, {meta.get('python', '?')}  "
            f"{meta.get('module', '?')}"
        )
    out.line()
    checks: list[Check] = []
    rows: list[list[str]] = []
    notes: list[str] = []
    for result in results:
        d, label = result.data, IMPLS[result.impl]
        if result.impl in OURS:
            checks.extend(verdict(result)[1])
        if result.error or not d:
            rows.append([str(result.n), label, f"FAIL: {result.error}", *[""] * 6])
            continue
        received, server_cpu = d["all_received_s"], result.server.get("cpu")
        rows.append(
            [
                str(result.n), label, f"{d['complete']}/{result.n}",
                "-" if received is None else f"{received:.2f}", f"{d['wall_s']:.2f}",
                f"{d['rss_per_stream_kb']:.1f} KB", f"{d['cpu_per_stream_ms']:.3f} ms",
                "-" if server_cpu is None else f"{server_cpu:.2f} s",
                verdict(result)[0] if result.impl in OURS else "",
            ]
        )  # fmt: skip
        if d.get("errors"):
            notes.append(f"  N={result.n} {label}: errors: {d['errors']}")
        if not d.get("peak_reset", True):
            notes.append(f"  N={result.n} {label}: peak RSS not reset, an upper bound")
    header = ["N", "implementation", "complete", "all recv s", "wall s", "RSS/stream"]
    out.table([*header, "CPU/stream", "server CPU", "target"], rows, {0, 2, 3, 4, 5, 6, 7})
    for note in notes:
        out.line(note)
    for line in ratios(results):
        out.line(line)
    what = f"(all complete, <= {TARGET_RSS_KB:g} KB and <= {TARGET_CPU_MS:g} ms per stream)"
    out.targets(checks, f"for ours {what}")
    keys = ("impl", "n", "data", "server", "error")
    out.save(
        args.json, [{k.replace("data", "client"): getattr(r, k) for k in keys} for r in results]
    )
    return 0 if all(r.error is None for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__, "N = 200 only")
    add = parser.add_argument
    add("--n", type=int, action="append", help="streams (repeatable)")
    add("--impls", help=f"comma-separated, from {', '.join(IMPLS)} (default: all)")
    add("--budget", type=float, default=60.0, help="seconds for all streams to complete (60)")
    add("--ports", default="4", help="listening ports of the server (4)")
    add("--framing", choices=tuple(FRAMINGS), default="chunked", help="chunked (default) or close")
    add("--impl", choices=tuple(IMPLS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.impl and (not args.n or len(args.n) != 1):
        parser.error("a worker takes one --n")
    if args.impl:
        worker(
            args.impl, args.n[0], [int(p) for p in args.ports.split(",")], args.framing, args.budget
        )
        return 0
    if (ports := int(args.ports)) < 1:
        parser.error("--ports must be at least 1")
    args.ports = ports
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())

"""
Many concurrent streams in one event loop: memory and CPU per stream, against
launchdarkly-eventsource 1.7.4's AsyncSSEClient, aiohttp-sse-client2 and a bare asyncio reader.

Usage::

    python bench/fanout.py               # N = 1,000 and 10,000, prints a table
    python bench/fanout.py --n 1000      # one N (repeatable)
    python bench/fanout.py --quick       # N = 200: a smoke run
    python bench/fanout.py --json out.json

For every (implementation, N) pair the driver (``bench/_harness.py``) starts two processes:

* the load server (``bench/_server.py``, ``hold`` mode) on a few loopback ports (fresh
  ephemeral ports for every run, so TIME_WAIT sockets of the previous run never collide); it
  answers every request with a ``text/event-stream`` holding 10 small events, written at once
  (chunked, a chunk per event; ``--framing close`` for a body ended by the close instead),
  then holds the connection until the client closes it;
* a client (this script with ``--impl NAME``) under the interpreter of that implementation:
  ours under the project's ``.venv``, the reference and aiohttp-sse-client2 under their own
  venvs in ``bench/.venvs/``.

The client raises RLIMIT_NOFILE, imports everything and creates its shared session, resets
its peak-RSS mark (``/proc/self/clear_refs``), then opens N streams at once (one task each).
A stream counts as complete when it has received all 10 events; it then goes on reading,
waiting for more as a subscriber does, until every stream is complete (or the time budget
runs out), so that all N streams are open together; then every task is cancelled and
closes its stream. (The peak itself comes earlier, while all N requests are in flight at
once: aiohttp's request state is larger than that of an open stream.) Figures, measured in
the client process:

* RSS/stream: (peak RSS ``VmHWM`` - RSS before opening the streams) / N;
* CPU/stream: user + system CPU time of the whole run (create, connect, read, close) / N;
* completion: streams that received all 10 events, and the wall time until they had.

Implementations (``--impls`` to choose):

* ``ours``      this project, one shared ``aiohttp.ClientSession(connector=TCPConnector(limit=0))``
  passed as ``AsyncConnectStrategy.http(url, session=...)``;
* ``ours-own``  this project, each client with the session it creates by itself;
* ``ref``       launchdarkly-eventsource 1.7.4 AsyncSSEClient, the same kind of shared session;
* ``ref-own``   launchdarkly-eventsource 1.7.4, each client with its own (default) session;
* ``sse2``      aiohttp-sse-client2 EventSource, the same kind of shared session;
* ``aiohttp``   the same kind of shared session, ``session.get`` and ``readany()`` with a count
  of blank lines: the floor of any client on aiohttp;
* ``bare``      asyncio.open_connection, a GET, and a count of blank lines: the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
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

IMPLS: dict[str, str] = {
    "bare": "bare asyncio reader",
    "ours": "ours, shared session",
    "ours-own": "ours, own session each",
    "ref": f"ref {REF_VERSION}, shared session",
    "ref-own": f"ref {REF_VERSION}, own session each",
    "sse2": f"aiohttp-sse-client2 {SSE2_VERSION}, shared",
    "aiohttp": "bare aiohttp reader, shared session",
}
DEFAULT_IMPLS = ("bare", "aiohttp", "ours", "ours-own", "ref", "ref-own", "sse2")
OURS = ("ours", "ours-own")
VENVS = {"ref": REF, "ref-own": REF, "sse2": SSE2}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- client worker: one implementation --------------------------------------------------------

# One stream: open it, read events, call ``reached()`` once it has read EVENTS of them, and
# go on reading (waiting for more, as a subscriber does) until cancelled; closes on the way out.
Reached = Callable[[], None]
Stream = Callable[[str, Reached], Awaitable[None]]


def _shared_session() -> Any:
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))


class Shared:
    """The shared session of an implementation, created in the event loop by :meth:`setup`."""

    def __init__(self, wanted: bool):
        self.wanted = wanted
        self.session: Any = None

    async def setup(self) -> None:
        if self.wanted:
            self.session = _shared_session()

    async def cleanup(self) -> None:
        if self.session is not None:
            await self.session.close()


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


def load_impl(impl: str) -> tuple[Stream, Shared, dict[str, Any]]:
    """What one stream does under ``impl``, its shared session, and what was imported."""
    import importlib.metadata

    meta: dict[str, Any] = {"impl": impl, "python": describe()["python"]}
    shared = Shared(impl in ("ours", "ref", "sse2", "aiohttp"))

    if impl == "bare":

        async def bare(url: str, reached: Reached) -> None:
            rest = url.split("://", 1)[1]
            hostport, _, path = rest.partition("/")
            host, _, port = hostport.partition(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(
                    f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n"
                    "Accept: text/event-stream\r\n\r\n".encode()
                )
                data = b""
                while b"\r\n\r\n" not in data:
                    more = await reader.read(65536)
                    if not more:
                        return
                    data = data + more
                body = data.split(b"\r\n\r\n", 1)[1]
                count, tail = body.count(b"\n\n"), body[-1:]
                del data, body  # not kept while the stream is open
                await count_events(lambda: reader.read(65536), reached, count, tail)
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except (OSError, asyncio.CancelledError):
                    pass

        meta["module"] = "asyncio"
        return bare, shared, meta

    import aiohttp

    meta["aiohttp"] = aiohttp.__version__
    if impl in ("ours", "ours-own", "ref", "ref-own"):
        ours = impl.startswith("ours")
        found = use_ld_eventsource("ours" if ours else "ref")
        from ld_eventsource import AsyncSSEClient
        from ld_eventsource.config.async_connect_strategy import AsyncConnectStrategy

        meta["module"] = found["module"]
        meta["version"] = found["version"] + (" (this project)" if ours else "")

        def strategy(url: str) -> Any:
            if shared.session is None:
                return url
            return AsyncConnectStrategy.http(url, session=shared.session)

        async def ld(url: str, reached: Reached) -> None:
            client = AsyncSSEClient(strategy(url))
            try:
                count = 0
                async for _ in client.events:
                    count += 1
                    if count == EVENTS:
                        reached()
            finally:
                await client.close()

        return ld, shared, meta

    if impl == "aiohttp":
        meta["module"] = str(Path(aiohttp.__file__).resolve().parent)
        meta["version"] = aiohttp.__version__
        no_total = aiohttp.ClientTimeout(total=None)

        async def bare_aiohttp(url: str, reached: Reached) -> None:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            async with shared.session.get(url, headers=headers, timeout=no_total) as response:
                await count_events(response.content.readany, reached)

        return bare_aiohttp, shared, meta

    if impl == "sse2":
        from aiohttp_sse_client2 import client as sse_client

        meta["module"] = str(Path(sse_client.__file__).resolve().parent)
        meta["version"] = importlib.metadata.version("aiohttp-sse-client2")

        async def sse2(url: str, reached: Reached) -> None:
            count = 0
            async with sse_client.EventSource(url, session=shared.session) as source:
                async for _ in source:
                    count += 1
                    if count == EVENTS:
                        reached()

        return sse2, shared, meta

    raise ValueError(f"unknown implementation {impl!r}")


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return status_kb("VmHWM") <= status_kb("VmRSS") + 64


async def run_streams(stream: Stream, urls: list[str], budget: float) -> dict[str, Any]:
    """
    Runs one task per URL until every stream has received EVENTS events (or ``budget``
    seconds have passed), then cancels them all: each closes its stream as it ends.
    """
    n = len(urls)
    all_done = asyncio.Event()
    complete = 0
    start = time.perf_counter()
    done_at: float | None = None

    def reached() -> None:
        nonlocal complete, done_at
        complete += 1
        if complete == n:
            done_at = time.perf_counter()
            all_done.set()

    tasks = [asyncio.ensure_future(stream(url, reached)) for url in urls]
    try:
        await asyncio.wait_for(all_done.wait(), budget)
    except asyncio.TimeoutError:
        pass
    await asyncio.sleep(0.2)  # a moment of the steady state: every stream open and waiting
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=30)
    errors: dict[str, int] = {}
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            name = type(task.exception()).__name__
            errors[name] = errors.get(name, 0) + 1
    return {
        "complete": complete,
        "all_received_s": None if done_at is None else done_at - start,
        "errors": errors,
        "pending": len(pending),
    }


def worker(impl: str, n: int, ports: list[int], framing: str, budget: float) -> None:
    limit = raise_nofile(n + 1024)
    if limit < n + 64:
        raise RuntimeError(f"RLIMIT_NOFILE is {limit}, too low for {n} streams")
    stream, shared, meta = load_impl(impl)
    case = f"flags/{FRAMINGS[framing]}?mode=hold"
    urls = [f"http://{HOST}:{ports[i % len(ports)]}/{case}&stream={i}" for i in range(n)]

    async def main() -> dict[str, Any]:
        # Everything imported and the shared session created: start the count here.
        await shared.setup()
        await asyncio.sleep(0)
        gc.collect()
        peak_reset = _reset_peak()
        rss0 = status_kb("VmRSS")
        cpu0 = cpu_seconds()
        wall0 = time.perf_counter()
        outcome = await run_streams(stream, urls, budget)
        await shared.cleanup()
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        peak = status_kb("VmHWM")
        return {
            **outcome,
            **meta,
            "n": n,
            "rss0_kb": rss0,
            "peak_kb": peak,
            "peak_reset": peak_reset,
            "rss_per_stream_kb": (peak - rss0) / n,
            "cpu_s": cpu,
            "cpu_per_stream_ms": cpu * 1000 / n,
            "wall_s": wall,
        }

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
        messages, error = collect(cmd, env, args.budget + 90)
        if error or not messages:
            result.error = f"client {error or 'reported nothing'}"
        else:
            result.data = messages[-1]
    finally:
        server.stop()
        result.server = server.stats
    return result


def verdict(result: Result) -> tuple[str, list[Check]]:
    """The OK/MISS cell of one of our rows, and the checks behind it."""
    d = result.data
    name = f"{result.impl} N={result.n}"
    if result.error or not d:
        return "FAIL", [(f"{name} ran", False, "")]
    checks: list[Check] = [
        (f"{name}: all {result.n} complete", d["complete"] == result.n, ""),
        (
            f"{name}: RSS/stream <= {TARGET_RSS_KB:g} KB",
            d["rss_per_stream_kb"] <= TARGET_RSS_KB,
            "",
        ),
        (
            f"{name}: CPU/stream <= {TARGET_CPU_MS:g} ms",
            d["cpu_per_stream_ms"] <= TARGET_CPU_MS,
            "",
        ),
    ]
    missed = [name.split(": ", 1)[1] for name, ok, _ in checks if not ok]
    return ("OK" if not missed else "MISS: " + "; ".join(missed)), checks


def drive(args: argparse.Namespace) -> int:
    sizes = [200] if args.quick else (args.n or [1000, 10000])
    impls = args.impls.split(",") if args.impls else list(DEFAULT_IMPLS)
    for impl in impls:
        if impl not in IMPLS:
            raise SystemExit(f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}")
    for impl in impls:
        interpreter(VENVS.get(impl))  # every venv ready before the first run
    results: list[Result] = []
    for n in sizes:
        for impl in impls:
            progress(f"N={n:6} {IMPLS[impl]} ...")
            result = measure(impl, n, args)
            if result.error:
                progress(f"  {result.error}")
            else:
                d = result.data
                progress(
                    f"  complete {d['complete']}/{n}, {d['rss_per_stream_kb']:.1f} KB, "
                    f"{d['cpu_per_stream_ms']:.3f} ms, {d['wall_s']:.2f} s"
                )
            results.append(result)

    out = Report()
    out.line()
    out.line(
        f"Fan-out: N concurrent streams in one event loop, {EVENTS} events each, loopback "
        f"server in another process ({args.ports} ports); per stream = (peak - before) / N"
    )
    metas: dict[str, dict[str, Any]] = {}
    for result in results:
        metas.setdefault(result.impl, result.data)
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
        d = result.data
        label = IMPLS[result.impl]
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
            notes.append(
                f"  N={result.n} {label}: peak RSS not reset, the figure is an upper bound"
            )
    header = ["N", "implementation", "complete", "all recv s", "wall s", "RSS/stream"]
    out.table([*header, "CPU/stream", "server CPU", "target"], rows, {0, 2, 3, 4, 5, 6, 7})
    for note in notes:
        out.line(note)
    out.targets(
        checks,
        f"for ours (all complete, <= {TARGET_RSS_KB:g} KB and <= {TARGET_CPU_MS:g} ms per stream)",
    )
    report = [
        {"impl": r.impl, "n": r.n, "client": r.data, "server": r.server, "error": r.error}
        for r in results
    ]
    out.save(args.json, report)
    return 0 if all(r.error is None for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__, "N = 200 only")
    parser.add_argument("--n", type=int, action="append", help="streams (repeatable)")
    parser.add_argument("--impls", help=f"comma-separated, from {', '.join(IMPLS)} (default: all)")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds for all streams to complete (60)"
    )
    parser.add_argument("--ports", default="4", help="listening ports of the server (4)")
    parser.add_argument(
        "--framing",
        choices=tuple(FRAMINGS),
        default="chunked",
        help="the body: chunked, one chunk per event (default), or ended by the close",
    )
    parser.add_argument("--impl", choices=tuple(IMPLS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.impl:
        if not args.n or len(args.n) != 1:
            parser.error("a worker takes one --n")
        ports = [int(p) for p in args.ports.split(",")]
        worker(args.impl, args.n[0], ports, args.framing, args.budget)
        return 0
    args.ports = int(args.ports)
    if args.ports < 1:
        parser.error("--ports must be at least 1")
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())

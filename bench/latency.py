"""
Delivery latency of one small event at a time, against launchdarkly-eventsource 1.7.4.

Usage::

    python bench/latency.py                # 300 events every 20 ms per run, prints a table
    python bench/latency.py --quick        # 100 events per run: a smoke run
    python bench/latency.py --events 500 --json out.json

The load server (``bench/_server.py``, ``paced`` mode) streams one small event every
``--interval-ms`` on each request, in one of two framings:

- ``chunked``: ``Transfer-Encoding: chunked``, one chunk (one ``send``) per event;
- ``close-delimited``: no ``Content-Length`` and no chunking; the body ends when the server
  closes the connection, after the last event.

Every event carries the wall-clock time at which it was sent (``time.time_ns()``, taken right
before the ``send``), and the client subtracts it from ``time.time_ns()`` when the event is
handed to the application: both ends run on this machine, so they share the clock. TCP_NODELAY
is set on every server socket, so the framing is the only difference between the two.

Each (client, framing) pair runs in a subprocess with its own interpreter, one after another
(``bench/_harness.py``): ours (sync ``SSEClient`` and ``AsyncSSEClient``) under the project's
``.venv``, the reference under ``bench/.venvs/ref-1.7.4`` (skipped with a note if it cannot
be had), and two floors with no SSE client: a bare socket reader (no HTTP either), and
aiohttp's ``readany()`` under asyncio, which is what an aiohttp-based client cannot beat. A
client is this same script run with ``--client NAME``; it reports every event. A run is
stopped after the stream's length plus ``--grace`` seconds and reports what it got (the
reference's sync client waits for 10 kB on a close-delimited body).

The table's ``cpu`` column is how busy the whole machine was during each run (from
/proc/stat): other processes delay the client's wake-ups by milliseconds and show up in p99
and max, for the floors as much as for any client. The first ``--warmup`` events of each run
are discarded. Target: ours (sync and async) p99 <= 2 ms on both framings, no event missing.
Use ``--only`` to run some clients only.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _harness import (
    REF,
    Check,
    LoadServer,
    Report,
    Worker,
    arguments,
    interpreter,
    progress,
    schedule,
    src_state,
)
from _worker import REF_VERSION, describe, emit, use_ld_eventsource

SCRIPT = Path(__file__).resolve()
FRAMINGS = {"chunked": "chunk-per-event", "close-delimited": "close-delimited"}
"""The framings of the table, and their names for the load server."""
TARGET_P99_MS = 2.0

# --- client: one implementation, one message per event --------------------------------------

CLIENTS = ("raw", "raw-aiohttp", "ours-sync", "ours-async", "ref-sync", "ref-async")
LABELS = {
    "raw": "bare socket",
    "raw-aiohttp": "bare aiohttp",
    "ours-sync": "ours sync",
    "ours-async": "ours async",
    "ref-sync": f"ref {REF_VERSION} sync",
    "ref-async": f"ref {REF_VERSION} async",
}


def _meta(client: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"client": client}
    if client.startswith(("ours", "ref")):
        meta.update(use_ld_eventsource(client.partition("-")[0]))
    transport = "urllib3" if client.endswith("-sync") else "aiohttp"
    info = describe([] if client == "raw" else [transport])
    if client != "raw":
        meta["transport"] = f"{transport} {info['versions'][transport]}"
    return {**meta, "python": info["python"], "executable": info["executable"]}


def _on_event(data: str, last: int) -> bool:
    """Reports one event received now; True when it was the last."""
    now = time.time_ns()
    seq, sent = data.split()
    emit({"seq": int(seq), "ns": now - int(sent)})
    return int(seq) >= last


def run_raw(url: str, events: int) -> None:
    """Reads the response off a bare socket and finds the data lines in it: no HTTP parsing
    and no SSE parsing, so this is the floor set by the machine, the server and Python."""
    host, _, rest = url.removeprefix("http://").partition("/")
    address, _, port = host.partition(":")
    pattern = re.compile(rb"data: (\d+) (\d+)\n")
    with socket.create_connection((address, int(port)), timeout=60.0) as sock:
        request = f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        sock.sendall(request.encode())
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer, done = _emit_found(pattern, buffer + chunk, time.time_ns(), events)
            if done:
                return


def _emit_found(
    pattern: re.Pattern[bytes], buffer: bytes, now: int, events: int
) -> tuple[bytes, bool]:
    """Emits the latency of every data line in ``buffer``; returns what is left and whether
    the last expected event was seen."""
    end = 0
    for match in pattern.finditer(buffer):
        emit({"seq": int(match[1]), "ns": now - int(match[2])})
        end = match.end()
        if int(match[1]) >= events - 1:
            return buffer[end:], True
    return buffer[end:], False


def run_raw_aiohttp(url: str, events: int) -> None:
    """aiohttp and asyncio with no SSE client: ``readany()`` on the body and the data lines
    found in it, as :func:`run_raw` does; the floor of an aiohttp-based client."""
    import asyncio

    import aiohttp

    pattern = re.compile(rb"data: (\d+) (\d+)\n")

    async def main() -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=60.0)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers={"Accept": "text/event-stream"}) as response,
        ):
            buffer = b""
            while True:
                chunk = await response.content.readany()
                if not chunk:
                    return
                buffer, done = _emit_found(pattern, buffer + chunk, time.time_ns(), events)
                if done:
                    return

    asyncio.run(main())


def run_sync(url: str, events: int) -> None:
    from ld_eventsource import SSEClient

    client = SSEClient(url)
    try:
        for event in client.events:
            if _on_event(event.data, events - 1):
                return
    finally:
        client.close()


def run_async(url: str, events: int) -> None:
    import asyncio

    from ld_eventsource import AsyncSSEClient

    async def main() -> None:
        client = AsyncSSEClient(url)
        try:
            async for event in client.events:
                if _on_event(event.data, events - 1):
                    return
        finally:
            await client.close()

    asyncio.run(main())


def client_main(client: str, url: str, events: int) -> int:
    try:
        emit({"meta": _meta(client)})
        if client == "raw":
            run_raw(url, events)
        elif client == "raw-aiohttp":
            run_raw_aiohttp(url, events)
        elif client in ("ours-sync", "ref-sync"):
            run_sync(url, events)
        else:
            run_async(url, events)
    except Exception as e:  # reported to the driver, which shows it in the table
        emit({"error": f"{type(e).__name__}: {e}"})
        return 1
    emit({"done": True})
    return 0


# --- driver: server, subprocesses, table ----------------------------------------------------


@dataclass
class Run:
    client: str
    framing: str
    expected: int  # events after warm-up
    latencies_ms: list[float] = field(default_factory=list)
    received: int = 0  # events after warm-up
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    timed_out: bool = False
    seconds: float = 0.0
    cpu_busy: float | None = None  # fraction of the machine's CPU time busy during the run

    def stats(self) -> dict[str, float] | None:
        if not self.latencies_ms:
            return None
        values = sorted(self.latencies_ms)
        p99 = (
            statistics.quantiles(values, n=100, method="inclusive")[98]
            if len(values) > 1
            else values[0]
        )
        return {"p50": statistics.median(values), "p99": p99, "max": values[-1]}

    @property
    def complete(self) -> bool:
        return self.error is None and not self.timed_out and self.received == self.expected

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "meta"}
        latencies = [round(x, 4) for x in self.latencies_ms]
        return {**data, "stats_ms": self.stats(), "latencies_ms": latencies}


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def measure(
    client: str,
    python: tuple[str, dict[str, str]],
    url: str,
    framing: str,
    args: argparse.Namespace,
) -> Run:
    run = Run(client, framing, expected=args.events - args.warmup)
    cmd = [python[0], str(SCRIPT), "--client", client, "--url", url, "--events", str(args.events)]
    started = time.monotonic()
    cpu_before = _cpu_times()
    worker = Worker(cmd, python[1])
    seen: set[int] = set()
    try:
        for message in worker.messages(args.events * args.interval_ms / 1000 + args.grace):
            if "meta" in message:
                run.meta = message["meta"]
            elif "error" in message:
                run.error = message["error"]
            elif "seq" in message and message["seq"] >= args.warmup and message["seq"] not in seen:
                seen.add(message["seq"])
                run.latencies_ms.append(message["ns"] / 1e6)
    except TimeoutError:
        run.timed_out = True
    code = worker.stop(kill=run.timed_out)
    run.seconds = time.monotonic() - started
    run.cpu_busy = _busy(cpu_before, _cpu_times())
    run.received = len(seen)
    if code and not run.timed_out and run.error is None:
        run.error = f"client {worker.failure()}"
    return run


def _status(run: Run) -> str:
    if run.error:
        return f"error: {run.error}"
    if run.timed_out:
        return f"stopped after {run.seconds:.1f} s"
    return ""


def drive(args: argparse.Namespace) -> int:
    interpreters = {client: interpreter(None) for client in CLIENTS[:4]}
    note = ""
    try:
        ref = interpreter(REF)
        interpreters.update({"ref-sync": ref, "ref-async": ref})
        note = f"ref {REF_VERSION} async: AsyncSSEClient with the project's aiohttp"
    except Exception as e:
        note = f"ref {REF_VERSION} skipped: {e}"
    clients = [c for c in CLIENTS if (not args.only or c in args.only) and c in interpreters]

    runs: list[Run] = []
    src = src_state()
    load_before = os.getloadavg()
    stream = args.events * args.interval_ms / 1000 + args.grace
    lifetime = len(clients) * len(FRAMINGS) * (stream + 30) + 60
    server = LoadServer("--interval-ms", str(args.interval_ms), "--lifetime", str(lifetime))
    try:
        for _, framing, client in schedule(1, list(FRAMINGS), clients, rotate=False):
            if client == clients[0]:
                progress(f"{framing}:")
            url = server.url(f"stamped/{FRAMINGS[framing]}", mode="paced", events=args.events)
            run = measure(client, interpreters[client], url, framing, args)
            runs.append(run)
            stats = run.stats()
            summary = (
                "no events" if stats is None else f"p99 {stats['p99']:.3f} ms"
            ) + f", {run.received}/{run.expected} events, {run.seconds:.1f} s"
            progress(f"  {LABELS[client]:16} {summary} {_status(run)}")
    finally:
        server.stop()
    load_after = os.getloadavg()

    out = Report()
    out.line()
    out.line(
        f"SSE delivery latency (receive - send), 127.0.0.1: {args.events} events every "
        f"{args.interval_ms:g} ms per run, first {args.warmup} discarded, "
        f"a run stopped after {stream:g} s"
    )
    out.line(
        f"  src at {src['commit']}, uncommitted under src/: {', '.join(src['uncommitted']) or 'none'}"
    )
    loads = ["/".join(f"{x:.2f}" for x in load) for load in (load_before, load_after)]
    out.line(
        f"  load average (1/5/15 min) before {loads[0]}, after {loads[1]}, {os.cpu_count()} CPUs"
    )
    metas = {run.client: run.meta for run in runs if run.meta}
    for client in clients:
        meta = metas.get(client, {})
        detail = meta.get("module", "no SSE library")
        if "version" in meta:
            detail = f"{meta['version']}, {meta.get('transport', '?')}  {detail}"
        elif "transport" in meta:
            detail = f"{meta['transport']}, {detail}"
        out.line(f"  {LABELS[client]:16} {meta.get('python', '?'):16} {detail}")
    if "ref-async" not in clients:
        out.line(f"  note: {note if 'ref-async' not in interpreters else 'ref async not selected'}")
    out.line()
    checks: list[Check] = []
    rows: list[list[str]] = []
    failed = False
    for run in runs:
        stats = run.stats()
        cells = (
            ["-", "-", "-"] if stats is None else [f"{stats[k]:.3f}" for k in ("p50", "p99", "max")]
        )
        busy = "-" if run.cpu_busy is None else f"{run.cpu_busy * 100:.0f}%"
        verdict = ""
        if run.client.startswith("ours"):
            passed = run.complete and stats is not None and stats["p99"] <= TARGET_P99_MS
            verdict = "OK" if passed else "MISS"
            checks.append(
                (f"{LABELS[run.client]} p99 <= {TARGET_P99_MS:g} ms, {run.framing}", passed, "")
            )
            failed = failed or run.error is not None or run.timed_out
        status = _status(run)
        target = f"{verdict}{'  ' if verdict and status else ''}{status}"
        rows.append(
            [
                LABELS[run.client],
                run.framing,
                f"{run.received}/{run.expected}",
                *cells,
                busy,
                target,
            ]
        )
    header = ["client", "framing", "events", "p50 ms", "p99 ms", "max ms", "cpu", "target"]
    out.table(header, rows, {2, 3, 4, 5, 6})
    out.line(
        "cpu: the machine's CPU time busy during the run, all processes counted (this "
        "benchmark's own share is a few %); other load delays wake-ups and shows in the tails"
    )
    out.targets(checks, f"(ours p99 <= {TARGET_P99_MS:g} ms, all events)")
    report = {
        "events": args.events,
        "interval_ms": args.interval_ms,
        "warmup": args.warmup,
        "grace_seconds": args.grace,
        "target_p99_ms": TARGET_P99_MS,
        "notes": [note],
        "src": src,
        "load_average": {"before": load_before, "after": load_after},
        "cpus": os.cpu_count(),
        "clients": metas,
        "runs": [run.to_json() for run in runs],
        "targets": [{"name": name, "ok": passed} for name, passed, _ in checks],
    }
    out.save(args.json, report)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__, "100 events per run, 5 discarded")
    parser.add_argument("--events", type=int, default=None, help="events per run (300)")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="between events (20)")
    parser.add_argument("--warmup", type=int, default=None, help="events discarded (10)")
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds a run may take past the stream (10)"
    )
    parser.add_argument(
        "--only", action="append", choices=CLIENTS, help="only this client (repeatable)"
    )
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 100 if args.quick else 300
    if args.warmup is None:
        args.warmup = 5 if args.quick else 10
    if not 0 <= args.warmup < args.events or args.events > 100_000:
        parser.error("need 0 <= --warmup < --events <= 100000")
    if not 0 < args.interval_ms <= 10_000:
        parser.error("--interval-ms must be in (0, 10000]")
    if args.client:
        if not args.url:
            parser.error("--client needs --url")
        return client_main(args.client, args.url, args.events)
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())

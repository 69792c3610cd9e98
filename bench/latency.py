"""
Delivery latency of one small event at a time, against launchdarkly-eventsource 1.7.4.

    python bench/latency.py                # 300 events every 20 ms per run, prints a table
    python bench/latency.py --quick        # 100 events per run: a smoke run
    python bench/latency.py --events 500 --only ours-sync --json out.json

The load server (``paced`` mode) sends one event every ``--interval-ms`` carrying the
``time.time_ns()`` of its send; the client (this script with ``--client``) reports the
difference on arrival. Floors: a bare socket and aiohttp's ``readany()``. ``cpu``: how busy
the whole machine was during the run. Target: ours p99 <= 2 ms on both framings, no event lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _harness as h
from _harness import REF, Check, LoadServer, Report
from _worker import REF_VERSION, describe, emit, use_ld_eventsource

SCRIPT = Path(__file__).resolve()
FRAMINGS = {"chunked": "chunk-per-event", "close-delimited": "close-delimited"}
"""The framings of the table, and their names for the load server."""
TARGET_P99_MS = 2.0

# --- client: one implementation, one message per event --------------------------------------

CLIENTS = ("raw", "raw-aiohttp", "ours-sync", "ours-async", "ref-sync", "ref-async")
LABELS = {"raw": "bare socket", "raw-aiohttp": "bare aiohttp"}
LABELS |= {c: c.replace("-", " ").replace("ref", f"ref {REF_VERSION}") for c in CLIENTS[2:]}


def _meta(client: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"client": client}
    if client.startswith(("ours", "ref")):
        meta.update(use_ld_eventsource(client.partition("-")[0]))
    transport = "urllib3" if client.endswith("-sync") else "aiohttp"
    info = describe([] if client == "raw" else [transport])
    if client != "raw":
        meta["transport"] = f"{transport} {info['versions'][transport]}"
    return {**meta, "python": info["python"], "executable": info["executable"]}


DATA_LINE = re.compile(rb"data: (\d+) (\d+)\n")


def _found(buffer: bytes, events: int) -> tuple[bytes, bool]:
    """Emits the latency of every data line in ``buffer`` (no HTTP and no SSE parsing: the
    floors); returns what is left and whether the last expected event was seen."""
    now, end = time.time_ns(), 0
    for match in DATA_LINE.finditer(buffer):
        emit({"seq": int(match[1]), "ns": now - int(match[2])})
        end = match.end()
        if int(match[1]) >= events - 1:
            return buffer[end:], True
    return buffer[end:], False


def run_raw(url: str, events: int) -> None:
    """A bare socket: the floor set by the machine, the server and Python."""
    host, _, rest = url.removeprefix("http://").partition("/")
    address, _, port = host.partition(":")
    with socket.create_connection((address, int(port)), timeout=60.0) as sock:
        request = f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        sock.sendall(request.encode())
        buffer, done = b"", False
        while not done and (chunk := sock.recv(65536)):
            buffer, done = _found(buffer + chunk, events)


async def run_raw_aiohttp(url: str, events: int) -> None:
    """``readany()`` on an aiohttp body: the floor of an aiohttp-based client."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60.0)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers={"Accept": "text/event-stream"}) as response,
    ):
        buffer, done = b"", False
        while not done and (chunk := await response.content.readany()):
            buffer, done = _found(buffer + chunk, events)


def _on_event(data: str, last: int) -> bool:
    """Reports one event received now; True when it was the last."""
    now = time.time_ns()
    seq, sent = data.split()
    emit({"seq": int(seq), "ns": now - int(sent)})
    return int(seq) >= last


def run_sync(url: str, events: int) -> None:
    from ld_eventsource import SSEClient

    with SSEClient(url) as client:
        for event in client.events:
            if _on_event(event.data, events - 1):
                return


async def run_async(url: str, events: int) -> None:
    from ld_eventsource import AsyncSSEClient

    async with AsyncSSEClient(url) as client:
        async for event in client.events:
            if _on_event(event.data, events - 1):
                return


READERS: dict[str, Callable[[str, int], Any]] = {"raw": run_raw, "raw-aiohttp": run_raw_aiohttp}
READERS |= {f"{who}-{how}": run_sync if how == "sync" else run_async
            for who in ("ours", "ref") for how in ("sync", "async")}  # fmt: skip


def client_main(client: str, url: str, events: int) -> int:
    try:
        emit({"meta": _meta(client)})
        if asyncio.iscoroutine(done := READERS[client](url, events)):
            asyncio.run(done)
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
        v = sorted(self.latencies_ms)
        p99 = statistics.quantiles(v, n=100, method="inclusive")[98] if v[1:] else v[0]
        return {"p50": statistics.median(v), "p99": p99, "max": v[-1]}

    @property
    def complete(self) -> bool:
        return self.error is None and not self.timed_out and self.received == self.expected

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "meta"}
        return {
            **data,
            "stats_ms": self.stats(),
            "latencies_ms": [round(x, 4) for x in self.latencies_ms],
        }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat ((0, 0) off Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields) - sum(fields[3:5]), sum(fields)  # less idle and iowait


def measure(
    client: str,
    python: tuple[str, dict[str, str]],
    url: str,
    framing: str,
    args: argparse.Namespace,
) -> Run:
    run = Run(client, framing, expected=args.events - args.warmup)
    cmd = [python[0], str(SCRIPT), "--client", client, "--url", url, "--events", str(args.events)]
    started, cpu_before = time.monotonic(), _cpu_times()
    seen: set[int] = set()

    def on(message: dict[str, Any]) -> None:
        run.meta = message.get("meta", run.meta)
        run.error = message.get("error", run.error)
        if message.get("seq", -1) >= args.warmup and message["seq"] not in seen:
            seen.add(message["seq"])
            run.latencies_ms.append(message["ns"] / 1e6)

    outcome = h.collect(cmd, python[1], args.events * args.interval_ms / 1000 + args.grace, seen=on)
    run.seconds, after = time.monotonic() - started, _cpu_times()
    if after[1] > cpu_before[1] > 0:
        run.cpu_busy = (after[0] - cpu_before[0]) / (after[1] - cpu_before[1])
    run.received, run.timed_out = len(seen), outcome.timed_out
    if outcome.error and not run.timed_out and run.error is None:
        run.error = f"client {outcome.error}"
    return run


def _status(run: Run) -> str:
    stopped = f"stopped after {run.seconds:.1f} s" if run.timed_out else ""
    return f"error: {run.error}" if run.error else stopped


def drive(args: argparse.Namespace) -> int:
    interpreters = {client: h.interpreter(None) for client in CLIENTS[:4]}
    try:
        ref = h.interpreter(REF)
        interpreters.update({"ref-sync": ref, "ref-async": ref})
        note = f"ref {REF_VERSION} async: AsyncSSEClient with the project's aiohttp"
    except Exception as e:
        note = f"ref {REF_VERSION} skipped: {e}"
    clients = [c for c in CLIENTS if (not args.only or c in args.only) and c in interpreters]

    runs: list[Run] = []
    src, load_before = h.src_state(), os.getloadavg()
    stream = args.events * args.interval_ms / 1000 + args.grace
    lifetime = len(clients) * len(FRAMINGS) * (stream + 30) + 60
    server = LoadServer("--interval-ms", str(args.interval_ms), "--lifetime", str(lifetime))
    try:
        for _, framing, client in h.schedule(1, list(FRAMINGS), clients, rotate=False):
            if client == clients[0]:
                h.progress(f"{framing}:")
            url = server.url(f"stamped/{FRAMINGS[framing]}", mode="paced", events=args.events)
            runs.append(run := measure(client, interpreters[client], url, framing, args))
            stats = run.stats()
            p99 = "no events" if stats is None else f"p99 {stats['p99']:.3f} ms"
            got = f"{run.received}/{run.expected} events, {run.seconds:.1f} s"
            h.progress(f"  {LABELS[client]:16} {p99}, {got} {_status(run)}")
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
    for run in runs:
        stats = run.stats()
        cells = ["-"] * 3 if stats is None else [f"{stats[k]:.3f}" for k in ("p50", "p99", "max")]
        verdict = ""
        if run.client.startswith("ours"):
            passed = run.complete and stats is not None and stats["p99"] <= TARGET_P99_MS
            verdict = "OK" if passed else "MISS"
            name = f"{LABELS[run.client]} p99 <= {TARGET_P99_MS:g} ms, {run.framing}"
            checks.append((name, passed, ""))
        busy = "-" if run.cpu_busy is None else f"{run.cpu_busy * 100:.0f}%"
        target = "  ".join(filter(None, [verdict, _status(run)]))
        rows.append([LABELS[run.client], run.framing, f"{run.received}/{run.expected}", *cells])
        rows[-1] += [busy, target]
    header = ["client", "framing", "events", "p50 ms", "p99 ms", "max ms", "cpu", "target"]
    out.table(header, rows, {2, 3, 4, 5, 6})
    out.line(
        "cpu: the machine's CPU time busy during the run, all processes counted (this "
        "benchmark's own share is a few %); other load delays wake-ups and shows in the tails"
    )
    out.targets(checks, f"(ours p99 <= {TARGET_P99_MS:g} ms, all events)")
    report = {
        "events": args.events, "interval_ms": args.interval_ms, "warmup": args.warmup,
        "grace_seconds": args.grace, "target_p99_ms": TARGET_P99_MS, "notes": [note], "src": src,
        "load_average": {"before": load_before, "after": load_after}, "cpus": os.cpu_count(),
        "clients": metas, "runs": [run.to_json() for run in runs],
        "targets": [{"name": name, "ok": passed} for name, passed, _ in checks],
    }  # fmt: skip
    out.save(args.json, report)
    ours = [run for run in runs if run.client.startswith("ours")]
    return 1 if any(run.error is not None or run.timed_out for run in ours) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = h.arguments(__doc__, "100 events per run, 5 discarded")
    add = parser.add_argument
    add("--events", type=int, default=None, help="events per run (300)")
    add("--interval-ms", type=float, default=20.0, help="between events (20)")
    add("--warmup", type=int, default=None, help="events discarded (10)")
    add("--grace", type=float, default=10.0, help="seconds a run may take past the stream (10)")
    add("--only", action="append", choices=CLIENTS, help="only this client (repeatable)")
    add("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    add("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.events = (100 if args.quick else 300) if args.events is None else args.events
    args.warmup = (5 if args.quick else 10) if args.warmup is None else args.warmup
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

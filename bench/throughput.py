"""
End-to-end throughput over loopback HTTP, side by side with every Python SSE client we know of.

Usage::

    python bench/throughput.py                       # full run (about 4 minutes on 2 cores)
    python bench/throughput.py --scale 1             # the full event counts (~25 minutes)
    python bench/throughput.py --quick               # a smoke run: small inputs, 1 round
    python bench/throughput.py --clients ours-sync,ref-sync --workloads small --rounds 7
    python bench/throughput.py --json out.json --markdown out.md --plot out.png

A load server (``bench/_tp_server.py``, its own process) pre-generates every response in full,
framing included, and sends it with ``sendall`` as fast as the socket takes it. Workloads
(``--workloads``):

- ``small``: ``id:`` and one ~60-byte JSON ``data:`` line per event;
- ``llm-tokens``: ``event: token`` and a short JSON delta (``{"delta":" the"}``);
- ``multiline``: events of 20 ``data:`` lines of ~40 bytes;
- ``large``: events of one 1 MiB ``data:`` line;
- ``crlf``: ``small`` with CRLF line ends;

each in three framings (``--framings``): ``chunk-per-event`` (HTTP chunked, one chunk per
event, as a server that flushes each event sends), ``large-chunks`` (HTTP chunked, 64 KiB
chunks cut anywhere), ``close-delimited`` (no length, the body ends at close).

Clients (``--clients``), each in its own venv (created under ``bench/.venvs`` on first use) and a
fresh subprocess per run: ours (``SSEClient(url).events``, ``AsyncSSEClient``) under the
project's ``.venv``; ``launchdarkly-eventsource==1.7.4`` (the reference, same API), sync and
async; ``httpx-sse`` sync and async; ``sseclient-py`` over urllib3; ``requests-sse``;
``aiohttp-sse-client2``; and two baselines in plain Python: ``raw-socket`` (``recv_into`` until
close, counting bytes: the I/O limit) and ``naive-floor`` (``bench/_tp_clients.py``: its own
HTTP de-chunking and a split-on-blank-line parser building one tuple per event).

A run is timed from the first event to the end of the stream, so connection set-up and
imports are left out; events/s and MB/s count the events after the first (and the body bytes
in proportion). CPU is user+sys of the client process over the same span, peak RSS the
process's high-water mark. Every run counts the events and chains crc32 over their data; a
wrong count or checksum is FAIL, an exception ERR, a run over ``--budget`` seconds TIMEOUT, and
a (client, case) that fails once is not run again. Clients run round-robin, the order rotated
each round and case, over ``--rounds`` rounds; the tables show medians, and the ratios are the
medians of per-round ratios (each taken between runs of the same round).

Events per run: the default run reads fewer events than the full counts (DEFAULT_COUNTS
below: 20k small, 20k llm-tokens, 4k multiline, 10 large, 20k crlf) to keep ``make bench``
near 10 minutes, and says so in its output; ``--scale F`` runs the full counts times F. A
client whose first run of a case takes over ``--slow`` seconds runs that case only once.

A separate check runs ours with 100k and with 1M ``small`` events (chunk-per-event) and
compares peak RSS; another compares the raw socket's rate with the fastest client's, which
must be 20 times lower for the server not to be part of the measure.

Each run is ``bench/_tp_worker.py`` (kept to cheap imports, as it starts afresh every time)
under the client's interpreter; ``bench/_tp_plot.py`` draws the chart in a venv of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import clean_env, ensure_venv, our_python
from _tp_server import BASE_EVENTS

SCRIPT = Path(__file__).resolve()
SERVER = SCRIPT.parent / "_tp_server.py"
PLOTTER = SCRIPT.parent / "_tp_plot.py"
WORKER = SCRIPT.parent / "_tp_worker.py"
RESULT_MARK = "@@RESULT "  # the line of _tp_worker.py

WORKLOADS = ("small", "llm-tokens", "multiline", "large", "crlf")
FRAMINGS = ("chunk-per-event", "large-chunks", "close-delimited")
# Events per workload in a default run. The full counts (_tp_server.BASE_EVENTS: 200k
# small, 200k llm-tokens, 20k multiline, 50 large, 200k crlf) take about 25 minutes for five
# rounds on 2 cores, since a fresh process per run costs 0.05-0.35 s before the clock starts
# (165 runs a round) and the slowest peers take seconds per run; these keep `make bench` near
# 10 minutes, with every run of ours still reading at least a few MB. --scale F runs the
# full counts times F instead.
DEFAULT_COUNTS = {
    "small": 20_000,
    "llm-tokens": 20_000,
    "multiline": 4_000,
    "large": 10,
    "crlf": 20_000,
}
QUICK_SCALE = 0.05
RSS_COUNTS = (100_000, 1_000_000)
QUICK_RSS_COUNTS = (10_000, 100_000)
RSS_LIMIT_MB = 5.0
FLOOR_LIMIT = 1.2
REF_LIMIT = 0.67
FLOOR_WORKLOADS = ("small", "llm-tokens", "crlf")
DRAIN_FACTOR = 20.0

REF_VERSION = "1.7.4"


@dataclass(frozen=True)
class Client:
    name: str
    kind: str  # "ours", "ref", "peer" or "baseline"
    mode: str  # "sync" or "async"
    venv: str | None  # under bench/.venvs; None: the project's interpreter
    requirements: tuple[str, ...] = ()
    probe: str = ""
    preload: tuple[str, ...] = ()  # imported before the clock starts
    dists: tuple[str, ...] = ()  # distributions whose versions are reported
    note: str = ""


_REF_PROBE = (
    "import importlib.metadata as m, aiohttp, ld_eventsource.async_client; "
    f"assert m.version('launchdarkly-eventsource') == {REF_VERSION!r}"
)
_REF = ("ref-1.7.4", (f"launchdarkly-eventsource=={REF_VERSION}", "aiohttp"), _REF_PROBE)

CLIENTS: dict[str, Client] = {
    c.name: c
    for c in (
        Client(
            "ours-sync", "ours", "sync", None, preload=("ld_eventsource", "urllib3"),
            dists=("launchdarkly-eventsource", "urllib3"), note="SSEClient(url).events",
        ),
        Client(
            "ours-async", "ours", "async", None,
            preload=("ld_eventsource", "ld_eventsource.async_client", "aiohttp"),
            dists=("launchdarkly-eventsource", "aiohttp"), note="AsyncSSEClient(url).events",
        ),
        Client(
            "ref-sync", "ref", "sync", *_REF, preload=("ld_eventsource", "urllib3"),
            dists=("launchdarkly-eventsource", "urllib3"), note="SSEClient(url).events",
        ),
        Client(
            "ref-async", "ref", "async", *_REF,
            preload=("ld_eventsource", "ld_eventsource.async_client", "aiohttp"),
            dists=("launchdarkly-eventsource", "aiohttp"), note="AsyncSSEClient(url).events",
        ),
        Client(
            "httpx-sse-sync", "peer", "sync", "httpx-sse", ("httpx-sse==0.4.3", "httpx"),
            "import httpx_sse, httpx", ("httpx", "httpx_sse"), ("httpx-sse", "httpx", "httpcore"),
            "connect_sse(httpx.Client(), ...).iter_sse()",
        ),
        Client(
            "httpx-sse-async", "peer", "async", "httpx-sse", ("httpx-sse==0.4.3", "httpx"),
            "import httpx_sse, httpx", ("httpx", "httpx_sse"), ("httpx-sse", "httpx", "httpcore"),
            "aconnect_sse(httpx.AsyncClient(), ...).aiter_sse()",
        ),
        Client(
            "sseclient-py", "peer", "sync", "sseclient-py", ("sseclient-py==1.9.0", "urllib3"),
            "import sseclient, urllib3", ("sseclient", "urllib3"), ("sseclient-py", "urllib3"),
            "SSEClient(urllib3 response, preload_content=False).events()",
        ),
        Client(
            "requests-sse", "peer", "sync", "requests-sse", ("requests-sse==0.5.3", "requests"),
            "import requests_sse", ("requests", "requests_sse"), ("requests-sse", "requests"),
            "EventSource(url), stopped after the expected count (it reconnects at the end)",
        ),
        Client(
            "aiohttp-sse-client2", "peer", "async", "aiohttp-sse-client2",
            ("aiohttp-sse-client2==0.3.0",), "import aiohttp_sse_client2",
            ("aiohttp", "aiohttp_sse_client2"), ("aiohttp-sse-client2", "aiohttp"),
            "EventSource(url), stopped after the expected count (it reconnects at the end)",
        ),
        Client(
            "naive-floor", "baseline", "sync", None,
            note="raw socket, hand de-chunking, split-on-blank-line parser, a tuple per event",
        ),
        Client(
            "raw-socket", "baseline", "sync", None,
            note="recv_into a 256 KiB buffer until close, counting bytes (no parsing)",
        ),
    )
}  # fmt: skip


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- driver ------------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float
    rss: float
    round: int


@dataclass
class Cell:
    """The runs of one client on one case."""

    client: str
    case: str
    runs: list[Run] = field(default_factory=list)
    status: str = "OK"  # OK, FAIL, ERR, TIMEOUT, SKIP
    reason: str = ""
    slow: bool = False  # its first run took over --slow seconds: not repeated
    python: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "OK" and bool(self.runs)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(run, attr) for run in self.runs)


class LoadServer:
    def __init__(self, counts: dict[str, int], framings: list[str], extra: str):
        cmd = [
            sys.executable,
            str(SERVER),
            "--counts",
            ",".join(f"{w}:{n}" for w, n in counts.items()),
            "--framings",
            ",".join(framings),
            "--extra",
            extra,
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env(), text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load server exited before it was ready")
        manifest = json.loads(line)
        self.port: int = manifest["port"]
        self.cases: dict[str, dict[str, int]] = manifest["cases"]

    def url(self, case: str) -> str:
        return f"http://127.0.0.1:{self.port}/{case}?run={uuid.uuid4().hex}"

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def interpreters(names: list[str]) -> dict[str, tuple[str, dict[str, str]] | str]:
    """The interpreter and environment of each client, or why it has none."""
    ours = our_python()
    found: dict[str, tuple[str, dict[str, str]] | str] = {}
    for name in names:
        client = CLIENTS[name]
        if client.venv is None:
            found[name] = ours
            continue
        try:
            python = ensure_venv(client.venv, list(client.requirements), client.probe)
        except Exception as e:
            found[name] = f"install failed: {e}"[:200]
            continue
        found[name] = (str(python), clean_env())
    return found


def run_once(
    client: Client,
    interpreter: tuple[str, dict[str, str]],
    server: LoadServer,
    case: str,
    budget: float,
    with_versions: bool = False,
) -> dict[str, Any]:
    """One worker run; its result message, or ``{"status": ..., "reason": ...}``."""
    python, env = interpreter
    expect = server.cases[case]
    cmd = [
        python,
        str(WORKER),
        client.name,
        server.url(case),
        str(expect["events"]),
        client.kind,
        ",".join(client.preload),
        ",".join(client.dists) if with_versions else "",
    ]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=budget, check=False
        )
    except subprocess.TimeoutExpired:
        return {"status": "TIMEOUT", "reason": f"over {budget:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "ERR", "reason": f"exit {proc.returncode}: {tail}"[:200]}
    message = json.loads(lines[-1][len(RESULT_MARK) :])
    if not message["ok"]:
        return {"status": "ERR", "reason": message["error"], **message}
    if client.name == "raw-socket":
        if message["bytes"] != expect["response_bytes"]:
            return {
                "status": "FAIL",
                "reason": f"{message['bytes']} bytes, expected {expect['response_bytes']}",
                **message,
            }
    elif (message["events"], message["crc"]) != (expect["events"], expect["crc"]):
        reason = f"{message['events']} events, expected {expect['events']}"
        if message["events"] == expect["events"]:
            reason = "wrong data (crc32 differs)"
        return {"status": "FAIL", "reason": reason, **message}
    return {"status": "OK", **message}


def record(cell: Cell, message: dict[str, Any], round_index: int) -> None:
    if message["status"] != "OK":
        cell.status = message["status"]
        reason = " ".join(str(message["reason"]).split())
        cell.reason = reason if len(reason) <= 90 else reason[:87] + "..."
        return
    cell.runs.append(Run(message["wall"], message["cpu"], message["maxrss_mb"], round_index))


def paired_ratio(num: Cell, den: Cell, attr: str = "wall") -> float | None:
    """Median over rounds of num's wall time (or CPU time) / den's, both from the same round."""
    if not (num.ok and den.ok):
        return None
    a = {run.round: getattr(run, attr) for run in num.runs}
    b = {run.round: getattr(run, attr) for run in den.runs}
    ratios = [a[r] / b[r] for r in a if r in b and b[r] > 0]
    return statistics.median(ratios) if ratios else None


def fmt_rate(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.3g}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)

    def text(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def both(self, line: str = "") -> None:
        self.text(line)
        self.markdown.append(line)

    def table(self, header: list[str], rows: list[list[str]], right: set[int]) -> None:
        widths = [
            max(len(str(x)) for x in [h, *(r[i] for r in rows)]) for i, h in enumerate(header)
        ]

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        self.text(line(header))
        self.text("  ".join("-" * w for w in widths))
        for row in rows:
            self.text(line(row))
        self.markdown.append("| " + " | ".join(header) + " |")
        self.markdown.append(
            "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"
        )
        for row in rows:
            self.markdown.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        self.markdown.append("")


def case_rows(
    cells: dict[str, Cell], names: list[str], expect: dict[str, int]
) -> tuple[list[list[str]], dict[str, dict[str, Any]]]:
    rows: list[list[str]] = []
    data: dict[str, dict[str, Any]] = {}
    events = max(expect["events"] - 1, 1)
    body = expect["body_bytes"] * events / expect["events"]
    ref_sync, ref_async, floor = (cells.get(n) for n in ("ref-sync", "ref-async", "naive-floor"))
    for name in names:
        cell = cells[name]
        entry: dict[str, Any] = {"status": cell.status, "reason": cell.reason, "runs": []}
        if not cell.ok:
            status = cell.status if cell.status != "OK" else "SKIP"
            rows.append([name, status, "", "", "", "", "", "", "", cell.reason])
            data[name] = entry
            continue
        wall = cell.median("wall")
        ratios = {
            "ref_sync": paired_ratio(cell, ref_sync) if ref_sync else None,
            "ref_async": paired_ratio(cell, ref_async) if ref_async else None,
            "floor": paired_ratio(cell, floor) if floor else None,
        }
        if name == "raw-socket":
            mbps = expect["response_bytes"] / wall / 1e6
            evps = "-"
        else:
            mbps = body / wall / 1e6
            evps = fmt_rate(events / wall)
        rows.append(
            [
                name,
                evps,
                f"{mbps:.1f}",
                f"{wall:.3f}",
                f"{cell.median('cpu'):.3f}",
                f"{cell.median('rss'):.1f}",
                fmt_ratio(ratios["ref_sync"]),
                fmt_ratio(ratios["ref_async"]),
                fmt_ratio(ratios["floor"]),
                f"{len(cell.runs)} run{'s' if len(cell.runs) > 1 else ''}"
                + (" (slow: not repeated)" if cell.slow else ""),
            ]
        )
        entry.update(
            wall=wall,
            cpu=cell.median("cpu"),
            rss_mb=cell.median("rss"),
            mb_per_s=mbps,
            events_per_s=None if name == "raw-socket" else events / wall,
            ratios=ratios,
            runs=[run.__dict__ for run in cell.runs],
        )
        data[name] = entry
    return rows, data


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


def drive(args: argparse.Namespace) -> int:
    started = time.monotonic()
    names = args.clients
    cases = [f"{w}/{f}" for w in args.workloads for f in args.framings]
    if args.scale is None:
        counts = {w: DEFAULT_COUNTS[w] for w in args.workloads}
    else:
        counts = {w: max(1, round(BASE_EVENTS[w] * args.scale)) for w in args.workloads}
    rss_counts = QUICK_RSS_COUNTS if args.quick else RSS_COUNTS
    rss_clients = [n for n in ("ours-sync", "ours-async") if n in names] if args.rss else []
    extra = ",".join(f"small:{n}" for n in rss_counts) if rss_clients else ""

    progress("preparing venvs ...")
    found = interpreters(names)
    progress(f"building responses ({', '.join(f'{w} {n}' for w, n in counts.items())}) ...")
    server = LoadServer(counts, args.framings, extra)
    progress(f"load server on 127.0.0.1:{server.port}, {len(server.cases)} cases")

    cells = {case: {name: Cell(name, case) for name in names} for case in cases}
    for case in cases:
        for name in names:
            if isinstance(found[name], str):
                cells[case][name].status = "ERR"
                cells[case][name].reason = str(found[name])
    versions_of: dict[str, dict[str, str]] = {}
    try:
        for round_index in range(args.rounds):
            for k, case in enumerate(cases):
                shift = (round_index + k) % len(names)
                order = names[shift:] + names[:shift]
                for name in order:
                    cell = cells[case][name]
                    if cell.status != "OK" or cell.slow:
                        continue
                    interpreter = found[name]
                    assert not isinstance(interpreter, str)
                    message = run_once(
                        CLIENTS[name],
                        interpreter,
                        server,
                        case,
                        args.budget,
                        with_versions=name not in versions_of,
                    )
                    if "versions" in message:
                        versions_of[name] = message["versions"]
                        cell.python = message.get("python", "")
                    record(cell, message, round_index)
                    cell.slow = message["status"] == "OK" and message["wall"] > args.slow
                    shown = (
                        f"{message['wall']:.3f} s"
                        if message["status"] == "OK"
                        else f"{message['status']}: {message['reason']}"
                    )
                    progress(f"round {round_index + 1}/{args.rounds} {case:28} {name:20} {shown}")
        rss_results: dict[str, dict[int, float]] = {}
        for name in rss_clients:
            interpreter = found[name]
            if isinstance(interpreter, str):
                continue
            for count in rss_counts:
                message = run_once(
                    CLIENTS[name],
                    interpreter,
                    server,
                    f"small-{count}/chunk-per-event",
                    args.budget * 4,
                )
                progress(
                    f"rss {name} {count} events: {message.get('maxrss_mb', 0):.1f} MB ({message['status']})"
                )
                if message["status"] == "OK":
                    rss_results.setdefault(name, {})[count] = message["maxrss_mb"]
    finally:
        server.stop()
    elapsed = time.monotonic() - started
    return report(args, names, cases, cells, server, rss_results, rss_counts, elapsed, versions_of)


def report(
    args: argparse.Namespace,
    names: list[str],
    cases: list[str],
    cells: dict[str, dict[str, Cell]],
    server: LoadServer,
    rss_results: dict[str, dict[int, float]],
    rss_counts: tuple[int, int],
    elapsed: float,
    versions_of: dict[str, dict[str, str]],
) -> int:
    out = Report()
    info = machine()
    out.text()
    out.both(
        f"## SSE client throughput over loopback HTTP ({'quick' if args.quick else 'full'} run)"
    )
    out.both()
    out.both(
        f"Command: `{' '.join(['python', 'bench/throughput.py', *sys.argv[1:]])}`; "
        f"{args.rounds} round(s), "
        + (
            "event counts scaled down from the full counts to keep `make bench` near 10 minutes "
            "(`--scale 1` runs the full counts), "
            if args.scale is None
            else f"{args.scale:g} times the full event counts, "
        )
        + f"budget {args.budget:g} s per run (a client whose first run of a case takes over "
        f"{args.slow:g} s runs it once), {elapsed / 60:.1f} min in all."
    )
    out.both()
    out.both(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['python']}, {info['platform']}."
    )
    out.both()
    versions = {
        name: ", ".join(f"{k} {v}" for k, v in versions_of.get(name, {}).items())
        or ("stdlib only" if name in versions_of or CLIENTS[name].kind == "baseline" else "?")
        for name in names
    }
    rows = [
        [name, CLIENTS[name].mode, versions.get(name, "?"), CLIENTS[name].note] for name in names
    ]
    out.table(["client", "mode", "versions", "how it reads"], rows, set())
    out.both(
        "Timed from the first event to the end of the stream; medians over rounds; ratios are "
        "medians of per-round wall-time ratios (below 1: faster). CPU: user+sys of the client "
        "process over the same span; RSS: the client process's peak."
    )
    out.both()

    all_data: dict[str, Any] = {}
    header = [
        "client", "events/s", "MB/s", "wall s", "CPU s", "RSS MB",
        "x ref-sync", "x ref-async", "x floor", "note",
    ]  # fmt: skip
    for case in cases:
        expect = server.cases[case]
        out.both(
            f"### {case}: {expect['events']} events, {expect['body_bytes'] / 1e6:.1f} MB body, "
            f"{expect['response_bytes'] / 1e6:.1f} MB response"
        )
        out.both()
        rows, data = case_rows(cells[case], names, expect)
        out.table(header, rows, {1, 2, 3, 4, 5, 6, 7, 8})
        all_data[case] = {"expect": expect, "clients": data}

    # The load server's headroom: raw socket vs the fastest client.
    out.both("### Load server headroom: raw socket vs the fastest parsing client")
    out.both()
    drain_rows: list[list[str]] = []
    drain_ok: bool | None = True if "raw-socket" in names else None
    for case in cases:
        raw = cells[case].get("raw-socket")
        parsing = [c for n, c in cells[case].items() if n != "raw-socket" and c.ok]
        if raw is None or not raw.ok or not parsing:
            drain_rows.append([case, "n/a", "", "", ""])
            drain_ok = None if drain_ok is None else False
            continue
        expect = server.cases[case]
        raw_mbps = expect["response_bytes"] / raw.median("wall") / 1e6
        best = min(parsing, key=lambda c: c.median("wall"))
        best_mbps = expect["response_bytes"] / best.median("wall") / 1e6
        factor = raw_mbps / best_mbps
        drain_ok = bool(drain_ok) and factor >= DRAIN_FACTOR
        drain_rows.append(
            [
                case,
                f"{raw_mbps:.0f}",
                f"{best_mbps:.0f} ({best.client})",
                f"{factor:.0f}x",
                "OK" if factor >= DRAIN_FACTOR else f"below {DRAIN_FACTOR:g}x",
            ]
        )
    out.table(
        ["case", "raw MB/s", "fastest client MB/s", "raw / fastest", f">= {DRAIN_FACTOR:g}x"],
        drain_rows,
        {1, 2, 3},
    )

    checks: list[tuple[str, bool, str]] = []
    summary_rows: list[list[str]] = []
    peers = [n for n in names if CLIENTS[n].kind in ("ref", "peer")]
    for case in cases:
        row = [case]
        c = cells[case]
        workload = case.split("/")[0]
        for ours, ref in (("ours-sync", "ref-sync"), ("ours-async", "ref-async")):
            if ours not in c:
                row.append("")
                continue
            value = paired_ratio(c[ours], c[ref]) if ref in c else None
            row.append(fmt_ratio(value) if c[ours].ok else c[ours].status)
            if ref in c:
                passed = value is not None and value <= REF_LIMIT
                if c[ours].ok and not c[ref].ok:
                    passed, value = True, None  # the reference fails: we are faster
                checks.append(
                    (
                        f"{ours} <= {REF_LIMIT}x {ref} on {case}",
                        passed,
                        fmt_ratio(value) if value is not None else f"{ref} {c[ref].status}",
                    )
                )
        for ours in ("ours-sync", "ours-async"):
            if ours not in c:
                row.append("")
                continue
            value = paired_ratio(c[ours], c["naive-floor"]) if "naive-floor" in c else None
            row.append(fmt_ratio(value))
            if workload in FLOOR_WORKLOADS and "naive-floor" in c:
                checks.append(
                    (
                        f"{ours} within {FLOOR_LIMIT}x of naive-floor on {case}",
                        value is not None and value <= FLOOR_LIMIT,
                        fmt_ratio(value),
                    )
                )
        for ours in ("ours-sync", "ours-async"):
            if ours not in c:
                row.append("")
                continue
            beaten_by = []
            best: tuple[float, str] | None = None
            for peer in peers:
                if peer not in c or not c[peer].ok:
                    continue
                value = paired_ratio(c[ours], c[peer])
                if value is None or value >= 1:
                    beaten_by.append(peer)
                if value is not None and (best is None or value > best[0]):
                    best = (value, peer)
            if not c[ours].ok:
                beaten_by = ["(ours failed)"]
            elif best is None and not beaten_by:
                row.append("no peer ran")
                continue
            row.append("n/a" if best is None else f"{best[0]:.2f}x {best[1]}")
            checks.append(
                (
                    f"{ours} faster than every peer on {case}",
                    not beaten_by,
                    "" if not beaten_by else "not faster than " + ", ".join(beaten_by),
                )
            )
        for ours, ref in (("ours-sync", "ref-sync"), ("ours-async", "ref-async")):
            value = paired_ratio(c[ours], c[ref], "cpu") if ours in c and ref in c else None
            row.append(fmt_ratio(value))
        summary_rows.append(row)
    out.both("### Summary: our wall-time ratios")
    out.both()
    out.both(
        "`vs ref`: ours / the reference of the same mode; `vs floor`: ours / naive-floor; "
        "`closest peer`: ours / the fastest other library (below 1: ours is faster); all wall "
        "time, but the last two columns: the same ratio in CPU time, which other load on the "
        "machine disturbs less."
    )
    out.both()
    out.table(
        [
            "case", "sync vs ref", "async vs ref", "sync vs floor", "async vs floor",
            "sync: closest peer", "async: closest peer", "sync vs ref, CPU", "async vs ref, CPU",
        ],
        summary_rows,
        {1, 2, 3, 4, 7, 8},
    )  # fmt: skip

    for name, counts in rss_results.items():
        low, high = rss_counts
        if low in counts and high in counts:
            delta = counts[high] - counts[low]
            checks.append(
                (
                    f"{name} peak RSS flat: {high} vs {low} small events within {RSS_LIMIT_MB:g} MB",
                    abs(delta) <= RSS_LIMIT_MB,
                    f"{counts[low]:.1f} MB -> {counts[high]:.1f} MB ({delta:+.1f} MB)",
                )
            )
    if drain_ok is not None:
        checks.append(
            (
                f"load server drains >= {DRAIN_FACTOR:g}x faster than any client parses",
                drain_ok,
                "see the headroom table",
            )
        )
    hits = sum(passed for _, passed, _ in checks)
    out.both(f"### Targets: {hits}/{len(checks)} OK")
    out.both()
    for name, passed, detail in checks:
        out.both(f"- {'OK  ' if passed else 'MISS'} {name}{': ' + detail if detail else ''}")
    out.both()

    report_data = {
        "command": ["python", "bench/throughput.py", *sys.argv[1:]],
        "machine": info,
        "rounds": args.rounds,
        "scale": args.scale,
        "counts": {case.split("/")[0]: server.cases[case]["events"] for case in cases},
        "budget": args.budget,
        "elapsed_s": elapsed,
        "versions": versions,
        "cases": all_data,
        "rss": {
            name: {str(k): v for k, v in counts.items()} for name, counts in rss_results.items()
        },
        "targets": [{"name": n, "ok": p, "detail": d} for n, p, d in checks],
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report_data, indent=2) + "\n")
        progress(f"wrote {args.json}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text("\n".join(out.markdown) + "\n")
        progress(f"wrote {args.markdown}")
    if args.plot:
        plot(report_data, args.plot)
    failed_ours = any(
        not cells[case][n].ok
        for case in cases
        for n in ("ours-sync", "ours-async")
        if n in cells[case]
    )
    return 1 if failed_ours else 0


def plot(report_data: dict[str, Any], path: str) -> None:
    """Draws the wall-time ratios with matplotlib, from a venv of its own."""
    try:
        python = ensure_venv("plot", ["matplotlib"], "import matplotlib")
    except Exception as e:
        progress(f"no chart: matplotlib could not be installed ({e})")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = Path(path).with_suffix(".plot.json")
    data.write_text(json.dumps(report_data))
    try:
        subprocess.run([str(python), str(PLOTTER), str(data), path], env=clean_env(), check=True)
        progress(f"wrote {path}")
    except subprocess.CalledProcessError as e:
        progress(f"no chart: {e}")
    finally:
        data.unlink(missing_ok=True)


def csv(value: str, allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(unknown)}")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, 1 round, a subset")
    parser.add_argument("--rounds", type=int, help="rounds (5; 1 with --quick)")
    parser.add_argument(
        "--scale",
        type=float,
        help="run the full event counts times this (default: the counts of DEFAULT_COUNTS)",
    )
    parser.add_argument("--clients", help=f"comma-separated, of: {', '.join(CLIENTS)}")
    parser.add_argument("--workloads", help=f"comma-separated, of: {', '.join(WORKLOADS)}")
    parser.add_argument("--framings", help=f"comma-separated, of: {', '.join(FRAMINGS)}")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per run (30)")
    parser.add_argument(
        "--slow",
        type=float,
        default=3.0,
        help="a client whose first run on a case takes longer is not run again on it (3)",
    )
    parser.add_argument("--no-rss", dest="rss", action="store_false", help="skip the RSS check")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    parser.add_argument("--plot", metavar="PATH", help="draw the ratios to a PNG (matplotlib)")
    args = parser.parse_args(argv)
    try:
        args.clients = csv(args.clients or ",".join(CLIENTS), tuple(CLIENTS), "client")
        default_workloads = "small,llm-tokens,crlf" if args.quick else ",".join(WORKLOADS)
        args.workloads = csv(args.workloads or default_workloads, WORKLOADS, "workload")
        default_framings = "chunk-per-event,close-delimited" if args.quick else ",".join(FRAMINGS)
        args.framings = csv(args.framings or default_framings, FRAMINGS, "framing")
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.scale is None and args.quick:
        args.scale = QUICK_SCALE
    if args.rounds < 1 or (args.scale is not None and args.scale <= 0):
        parser.error("--rounds and --scale must be positive")
    # The ratios to the reference and to the floor need them in the run.
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())

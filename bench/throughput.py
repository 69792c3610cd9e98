"""
End-to-end throughput over loopback HTTP, side by side with every Python SSE client we know of.

    python bench/throughput.py                       # full run (about 4 minutes on 2 cores)
    python bench/throughput.py --scale 1             # the full event counts (~25 minutes)
    python bench/throughput.py --quick               # a smoke run: small inputs, 1 round
    python bench/throughput.py --clients ours-sync,ref-sync --workloads small --rounds 7
    python bench/throughput.py --json out.json --markdown out.md --plot out.png

Each client (``CLIENTS``, in its own venv) reads every (workload, framing) case of the load
server in a fresh subprocess (``_tp_clients.py``), round-robin over ``--rounds`` rounds; each
run is timed from the first event to the end of the stream and checked (event count, crc32).
Then a peak-RSS check and a headroom check. docs/performance.md ("How throughput is
measured") has the whole method.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _harness as h
import _tp_clients as tc
from _harness import REF, SSE2, Check, LoadServer, Report, Venv
from _server import BASE_EVENTS, FRAMINGS
from _worker import BENCH_DIR

CLIENTS_SCRIPT = BENCH_DIR / "_tp_clients.py"
PLOTTER = BENCH_DIR / "_tp_plot.py"

WORKLOADS = ("small", "llm-tokens", "multiline", "large", "crlf")
# Events per workload in a default run. The full counts (_server.BASE_EVENTS: 200k small,
# 200k llm-tokens, 20k multiline, 50 large, 200k crlf) take about 25 minutes for five rounds
# on 2 cores, since a fresh process per run costs 0.05-0.35 s before the clock starts (165
# runs a round) and the slowest peers take seconds per run; these keep `make bench` near 10
# minutes, with every run of ours still reading at least a few MB. --scale F runs the full
# counts times F instead.
DEFAULT_COUNTS = {"small": 20_000, "llm-tokens": 20_000, "multiline": 4_000, "large": 10}
DEFAULT_COUNTS["crlf"] = 20_000
QUICK_SCALE = 0.05
RSS_COUNTS = (100_000, 1_000_000)
QUICK_RSS_COUNTS = (10_000, 100_000)
RSS_LIMIT_MB = 5.0
FLOOR_LIMIT = 1.2
REF_LIMIT = 0.67
FLOOR_WORKLOADS = ("small", "llm-tokens", "crlf")
DRAIN_FACTOR = 20.0
OURS = ("ours-sync", "ours-async")
PAIRS = (("ours-sync", "ref-sync"), ("ours-async", "ref-async"))


@dataclass(frozen=True)
class Client:
    name: str
    venv: Venv | None  # None: the project's interpreter
    dists: tuple[str, ...]  # distributions whose versions are reported
    note: str

    @property
    def kind(self) -> str:
        """``ours``, ``ref`` (that ``ld_eventsource``), ``peer`` or ``baseline``."""
        prefix = self.name.partition("-")[0]
        return prefix if prefix in ("ours", "ref") else "peer" if self.venv else "baseline"


_LD_SYNC = ("launchdarkly-eventsource", "urllib3")
_LD_ASYNC = ("launchdarkly-eventsource", "aiohttp")
_HTTPX = Venv("httpx-sse", ("httpx-sse==0.4.3", "httpx"), ("httpx_sse", "httpx"))
_HTTPX_DISTS = ("httpx-sse", "httpx", "httpcore")
_SSECLIENT = Venv("sseclient-py", ("sseclient-py==1.9.0", "urllib3"), ("sseclient", "urllib3"))
_REQUESTS = Venv("requests-sse", ("requests-sse==0.5.3", "requests"), ("requests_sse",))
_RECONNECTS = "EventSource(url), stopped after the expected count (it reconnects at the end)"

CLIENTS: dict[str, Client] = {
    name: Client(name, *spec)
    for name, spec in {  # (venv, distributions whose versions are reported, how it reads)
        "ours-sync": (None, _LD_SYNC, "SSEClient(url).events"),
        "ours-async": (None, _LD_ASYNC, "AsyncSSEClient(url).events"),
        "ref-sync": (REF, _LD_SYNC, "SSEClient(url).events"),
        "ref-async": (REF, _LD_ASYNC, "AsyncSSEClient(url).events"),
        "httpx-sse-sync": (_HTTPX, _HTTPX_DISTS, "connect_sse(httpx.Client(), ...).iter_sse()"),
        "httpx-sse-async": (
            _HTTPX, _HTTPX_DISTS, "aconnect_sse(httpx.AsyncClient(), ...).aiter_sse()"
        ),
        "sseclient-py": (
            _SSECLIENT, ("sseclient-py", "urllib3"),
            "SSEClient(urllib3 response, preload_content=False).events()",
        ),
        "requests-sse": (_REQUESTS, ("requests-sse", "requests"), _RECONNECTS),
        "aiohttp-sse-client2": (SSE2, ("aiohttp-sse-client2", "aiohttp"), _RECONNECTS),
        "naive-floor": (
            None, (), "raw socket, hand de-chunking, split-on-blank-line parser, a tuple per event"
        ),
        "raw-socket": (
            None, (), "recv_into a 256 KiB buffer until close, counting bytes (no parsing)"
        ),
    }.items()
}  # fmt: skip


def mode(name: str) -> str:
    """``sync`` or ``async``, as ``_tp_clients`` runs the client."""
    return "async" if name in tc.ASYNC else "sync"


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

    @property
    def ok(self) -> bool:
        return self.status == "OK" and bool(self.runs)

    def median(self, attr: str) -> float:
        return statistics.median(float(getattr(run, attr)) for run in self.runs)

    def fail(self, status: str, reason: str) -> None:
        reason = " ".join(reason.split())
        self.status, self.reason = status, reason if len(reason) <= 90 else reason[:87] + "..."


def ratio(num: Cell | None, den: Cell | None, attr: str = "wall") -> float | None:
    """The paired ratio of two cells' wall (or CPU) times, if both ran."""
    if num is None or den is None or not (num.ok and den.ok):
        return None
    return h.paired_ratio(*({r.round: getattr(r, attr) for r in c.runs} for c in (num, den)))


def run_once(
    client: Client, python: tuple[str, dict[str, str]], server: LoadServer, case: str,
    budget: float, with_versions: bool = False, worker: Sequence[str] = (str(CLIENTS_SCRIPT),),
) -> dict[str, Any]:  # fmt: skip
    """
    One worker run: its result message with a ``status`` (and ``reason`` if not OK).
    ``worker``: the script (and its first arguments) that runs ``_tp_clients.main``.
    """
    expect = server.cases[case]
    cmd = [
        python[0], *worker, client.name, server.url(case), str(expect["events"]),
        client.kind, ",".join(client.dists) if with_versions else "",
    ]  # fmt: skip
    run = h.collect(cmd, python[1], budget)
    if not run.messages:
        return {"status": "TIMEOUT" if run.timed_out else "ERR", "reason": run.error or "no result"}
    message = run.messages[-1]
    if not message["ok"]:
        return {"status": "ERR", "reason": message["error"], **message}
    got, want = message["events"], expect["events"]
    reason = f"{got} events, expected {want}" if got != want else "wrong data (crc32 differs)"
    if client.name == "raw-socket":
        got, want = message["bytes"], expect["response_bytes"]
        reason = f"{got} bytes, expected {want}"
    elif got == want and message["crc"] != expect["crc"]:
        got = None
    return {"status": "OK" if got == want else "FAIL", "reason": reason, **message}


def drive(args: argparse.Namespace) -> int:
    started = time.monotonic()
    names = args.clients
    cases = [f"{w}/{f}" for w in args.workloads for f in args.framings]
    counts = {
        w: DEFAULT_COUNTS[w] if args.scale is None else max(1, round(BASE_EVENTS[w] * args.scale))
        for w in args.workloads
    }
    rss_counts = QUICK_RSS_COUNTS if args.quick else RSS_COUNTS
    rss_clients = [n for n in OURS if n in names] if args.rss else []

    h.progress("preparing venvs ...")
    found: dict[str, tuple[str, dict[str, str]] | str] = {}
    for name in names:
        try:
            found[name] = h.interpreter(CLIENTS[name].venv)
        except Exception as e:
            found[name] = f"install failed: {e}"[:200]
    h.progress(f"building responses ({', '.join(f'{w} {n}' for w, n in counts.items())}) ...")
    server = LoadServer(
        "--counts", ",".join(f"{w}:{n}" for w, n in counts.items()),
        "--framings", ",".join(args.framings),
        "--extra", ",".join(f"small:{n}" for n in rss_counts) if rss_clients else "",
    )  # fmt: skip
    cells = {case: {name: Cell(name, case) for name in names} for case in cases}
    for case, name in ((c, n) for c in cases for n in names if isinstance(found[n], str)):
        cells[case][name].fail("ERR", str(found[name]))
    versions_of: dict[str, dict[str, str]] = {}
    rss: dict[str, dict[int, float]] = {}
    try:
        for round_index, case, name in h.schedule(args.rounds, cases, names):
            cell, python = cells[case][name], found[name]
            if cell.status != "OK" or cell.slow or isinstance(python, str):
                continue
            first = name not in versions_of
            message = run_once(CLIENTS[name], python, server, case, args.budget, first)
            if "versions" in message:
                versions_of[name] = message["versions"]
            if message["status"] != "OK":
                cell.fail(message["status"], str(message["reason"]))
                shown = f"{message['status']}: {message['reason']}"
            else:
                run = Run(message["wall"], message["cpu"], message["maxrss_mb"], round_index)
                cell.runs.append(run)
                cell.slow = message["wall"] > args.slow
                shown = f"{message['wall']:.3f} s"
            h.progress(f"round {round_index + 1}/{args.rounds} {case:28} {name:20} {shown}")
        for name in rss_clients:
            if isinstance(python := found[name], str):
                continue
            for count in rss_counts:
                case = f"small-{count}/chunk-per-event"
                message = run_once(CLIENTS[name], python, server, case, args.budget * 4)
                rss_mb, status = message.get("maxrss_mb", 0), message["status"]
                h.progress(f"rss {name} {count} events: {rss_mb:.1f} MB ({status})")
                if status == "OK":
                    rss.setdefault(name, {})[count] = rss_mb
    finally:
        server.stop()
    elapsed = time.monotonic() - started
    return report(args, names, cases, cells, server, rss, rss_counts, elapsed, versions_of)


def case_rows(
    cells: dict[str, Cell], names: list[str], expect: dict[str, int]
) -> tuple[list[list[str]], dict[str, dict[str, Any]]]:
    """The table of one case, and its entry of the JSON."""
    rows: list[list[str]] = []
    data: dict[str, dict[str, Any]] = {}
    events = max(expect["events"] - 1, 1)
    body = expect["body_bytes"] * events / expect["events"]
    ref_sync, ref_async, floor = (cells.get(n) for n in ("ref-sync", "ref-async", "naive-floor"))
    for name in names:
        cell = cells[name]
        entry: dict[str, Any] = {"status": cell.status, "reason": cell.reason, "runs": []}
        data[name] = entry
        if not cell.ok:
            status = cell.status if cell.status != "OK" else "SKIP"
            rows.append([name, status, "", "", "", "", "", "", "", cell.reason])
            continue
        wall = cell.median("wall")
        ratios = {"ref_sync": ratio(cell, ref_sync), "ref_async": ratio(cell, ref_async)}
        ratios["floor"] = ratio(cell, floor)
        raw = name == "raw-socket"
        mbps = (expect["response_bytes"] if raw else body) / wall / 1e6
        runs = f"{len(cell.runs)} run{'s' if len(cell.runs) > 1 else ''}"
        rows.append(
            [
                name, "-" if raw else h.fmt_rate(events / wall), f"{mbps:.1f}", f"{wall:.3f}",
                f"{cell.median('cpu'):.3f}", f"{cell.median('rss'):.1f}",
                *map(h.fmt_ratio, ratios.values()), runs + (" (slow: not repeated)" if cell.slow else ""),
            ]
        )  # fmt: skip
        entry.update(
            wall=wall, cpu=cell.median("cpu"), rss_mb=cell.median("rss"), mb_per_s=mbps,
            events_per_s=None if raw else events / wall, ratios=ratios,
            runs=[run.__dict__ for run in cell.runs],
        )  # fmt: skip
    return rows, data


def headroom(
    out: Report, cases: list[str], cells: dict[str, dict[str, Cell]], server: LoadServer
) -> bool | None:
    """The table of the load server's headroom; whether it is enough (None: not measured)."""
    out.para("### Load server headroom: raw socket vs the fastest parsing client")
    rows: list[list[str]] = []
    enough: bool | None = True if any("raw-socket" in cells[case] for case in cases) else None
    for case in cases:
        raw = cells[case].get("raw-socket")
        parsing = [c for n, c in cells[case].items() if n != "raw-socket" and c.ok]
        if raw is None or not raw.ok or not parsing:
            rows.append([case, "n/a", "", "", ""])
            enough = None if enough is None else False
            continue
        size = server.cases[case]["response_bytes"]
        best = min(parsing, key=lambda c: c.median("wall"))
        raw_mbps, best_mbps = size / raw.median("wall") / 1e6, size / best.median("wall") / 1e6
        factor = raw_mbps / best_mbps
        enough = bool(enough) and factor >= DRAIN_FACTOR
        verdict = "OK" if factor >= DRAIN_FACTOR else f"below {DRAIN_FACTOR:g}x"
        rows.append(
            [case, f"{raw_mbps:.0f}", f"{best_mbps:.0f} ({best.client})", f"{factor:.0f}x", verdict]
        )
    header = ["case", "raw MB/s", "fastest client MB/s", "raw / fastest", f">= {DRAIN_FACTOR:g}x"]
    out.table(header, rows, {1, 2, 3})
    return enough


def summary_row(case: str, c: dict[str, Cell], peers: list[str]) -> tuple[list[str], list[Check]]:
    """One row of the summary table, and the targets of ``case``."""
    row, checks = [case], []
    for ours, ref in PAIRS:  # against the reference of the same mode
        value = ratio(c.get(ours), c.get(ref))
        row.append("" if ours not in c else h.fmt_ratio(value) if c[ours].ok else c[ours].status)
        if ours in c and ref in c:
            passed = value is not None and value <= REF_LIMIT
            if c[ours].ok and not c[ref].ok:
                passed, value = True, None  # the reference fails: we are faster
            detail = h.fmt_ratio(value) if value is not None else f"{ref} {c[ref].status}"
            checks.append((f"{ours} <= {REF_LIMIT}x {ref} on {case}", passed, detail))
    for ours in OURS:  # against the naive floor
        value = ratio(c.get(ours), c.get("naive-floor"))
        row.append(h.fmt_ratio(value) if ours in c else "")
        if ours in c and "naive-floor" in c and case.partition("/")[0] in FLOOR_WORKLOADS:
            passed = value is not None and value <= FLOOR_LIMIT
            checks.append(
                (
                    f"{ours} within {FLOOR_LIMIT}x of naive-floor on {case}",
                    passed,
                    h.fmt_ratio(value),
                )
            )
    for ours in OURS:  # against the closest peer
        if ours not in c:
            row.append("")
            continue
        ran = [(ratio(c[ours], c[p]), p) for p in peers if p in c and c[p].ok]
        beaten_by = [p for value, p in ran if value is None or value >= 1]
        best = max(((v, p) for v, p in ran if v is not None), default=None)
        if not c[ours].ok:
            beaten_by = ["(ours failed)"]
        elif not ran:
            row.append("no peer ran")
            continue
        row.append("n/a" if best is None else f"{best[0]:.2f}x {best[1]}")
        detail = "" if not beaten_by else "not faster than " + ", ".join(beaten_by)
        checks.append((f"{ours} faster than every peer on {case}", not beaten_by, detail))
    row += [h.fmt_ratio(ratio(c.get(ours), c.get(ref), "cpu")) for ours, ref in PAIRS]
    return row, checks


HEADER = ["client", "events/s", "MB/s", "wall s", "CPU s", "RSS MB", "x ref-sync", "x ref-async"]
HEADER += ["x floor", "note"]
SUMMARY = [
    "case", "sync vs ref", "async vs ref", "sync vs floor", "async vs floor",
    "sync: closest peer", "async: closest peer", "sync vs ref, CPU", "async vs ref, CPU",
]  # fmt: skip


def report(
    args: argparse.Namespace, names: list[str], cases: list[str], cells: dict[str, dict[str, Cell]],
    server: LoadServer, rss: dict[str, dict[int, float]], rss_counts: tuple[int, int],
    elapsed: float, versions_of: dict[str, dict[str, str]],
) -> int:  # fmt: skip
    out, info = Report(markdown=True), h.machine()
    command = ["python", "bench/throughput.py", *sys.argv[1:]]
    scaled = (
        "event counts scaled down from the full counts to keep `make bench` near 10 minutes "
        "(`--scale 1` runs the full counts), "
        if args.scale is None
        else f"{args.scale:g} times the full event counts, "
    )
    out.line(md=False)
    out.para(
        f"## SSE client throughput over loopback HTTP ({'quick' if args.quick else 'full'} run)"
    )
    out.para(
        f"Command: `{' '.join(command)}`; {args.rounds} round(s), {scaled}budget "
        f"{args.budget:g} s per run (a client whose first run of a case takes over "
        f"{args.slow:g} s runs it once), {elapsed / 60:.1f} min in all."
    )
    out.para(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['python']}, {info['platform']}."
    )
    versions = {
        name: ", ".join(f"{k} {v}" for k, v in versions_of.get(name, {}).items())
        or ("stdlib only" if name in versions_of or CLIENTS[name].kind == "baseline" else "?")
        for name in names
    }
    out.table(
        ["client", "mode", "versions", "how it reads"],
        [[n, mode(n), versions[n], CLIENTS[n].note] for n in names],
    )
    out.para(
        "Timed from the first event to the end of the stream; medians over rounds; ratios are "
        "medians of per-round wall-time ratios (below 1: faster). CPU: user+sys of the client "
        "process over the same span; RSS: the client process's peak."
    )
    all_data: dict[str, Any] = {}
    for case in cases:
        expect = server.cases[case]
        out.para(
            f"### {case}: {expect['events']} events, {expect['body_bytes'] / 1e6:.1f} MB body, "
            f"{expect['response_bytes'] / 1e6:.1f} MB response"
        )
        rows, data = case_rows(cells[case], names, expect)
        out.table(HEADER, rows, set(range(1, 9)))
        all_data[case] = {"expect": expect, "clients": data}
    enough = headroom(out, cases, cells, server)
    checks: list[Check] = []
    summary: list[list[str]] = []
    peers = [n for n in names if CLIENTS[n].kind in ("ref", "peer")]
    for case in cases:
        row, case_checks = summary_row(case, cells[case], peers)
        summary.append(row)
        checks += case_checks
    out.para("### Summary: our wall-time ratios")
    out.para(
        "`vs ref`: ours / the reference of the same mode; `vs floor`: ours / naive-floor; "
        "`closest peer`: ours / the fastest other library (below 1: ours is faster); all wall "
        "time, but the last two columns: the same ratio in CPU time, which other load on the "
        "machine disturbs less."
    )
    out.table(SUMMARY, summary, {1, 2, 3, 4, 7, 8})
    low, high = rss_counts
    for name, by_count in rss.items():
        if low in by_count and high in by_count:
            delta = by_count[high] - by_count[low]
            checks.append((
                f"{name} peak RSS flat: {high} vs {low} small events within {RSS_LIMIT_MB:g} MB",
                abs(delta) <= RSS_LIMIT_MB,
                f"{by_count[low]:.1f} MB -> {by_count[high]:.1f} MB ({delta:+.1f} MB)",
            ))  # fmt: skip
    if enough is not None:
        name = f"load server drains >= {DRAIN_FACTOR:g}x faster than any client parses"
        checks.append((name, enough, "see the headroom table"))
    out.targets(checks)
    report_data = {
        "command": command, "machine": info, "rounds": args.rounds, "scale": args.scale,
        "counts": {case.split("/")[0]: server.cases[case]["events"] for case in cases},
        "budget": args.budget, "elapsed_s": elapsed, "versions": versions, "cases": all_data,
        "rss": {name: {str(k): v for k, v in c.items()} for name, c in rss.items()},
        "targets": [{"name": n, "ok": p, "detail": d} for n, p, d in checks],
    }  # fmt: skip
    out.save(args.json, report_data, args.markdown)
    if args.plot:
        plot(report_data, args.plot)
    return int(any(not cells[case][n].ok for case in cases for n in OURS if n in cells[case]))


def plot(report_data: dict[str, Any], path: str) -> None:
    """Draws the wall-time ratios with matplotlib, from a venv of its own."""
    try:
        python, env = h.interpreter(h.PLOT)
    except Exception as e:
        h.progress(f"no chart: matplotlib could not be installed ({e})")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = Path(path).with_suffix(".plot.json")
    data.write_text(json.dumps(report_data))
    try:
        error = h.collect([python, str(PLOTTER), str(data), path], env, 300).error
        h.progress(f"no chart: {error}" if error else f"wrote {path}")
    finally:
        data.unlink(missing_ok=True)


def csv(value: str, allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if unknown := [item for item in items if item not in allowed]:
        raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(unknown)}")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = h.arguments(__doc__, "small inputs, 1 round, a subset")
    add = parser.add_argument
    add("--rounds", type=int, help="rounds (5; 1 with --quick)")
    add("--scale", type=float, help="the full event counts times this (default: DEFAULT_COUNTS)")
    add("--clients", help=f"comma-separated, of: {', '.join(CLIENTS)}")
    add("--workloads", help=f"comma-separated, of: {', '.join(WORKLOADS)}")
    add("--framings", help=f"comma-separated, of: {', '.join(FRAMINGS)}")
    add("--budget", type=float, default=30.0, help="seconds per run (30)")
    add("--slow", type=float, default=3.0, help="slower first run of a case: not repeated (3)")
    add("--no-rss", dest="rss", action="store_false", help="skip the RSS check")
    add("--markdown", metavar="PATH", help="write the tables as Markdown")
    add("--plot", metavar="PATH", help="draw the ratios to a PNG (matplotlib)")
    args = parser.parse_args(argv)
    quick = {"workloads": "small,llm-tokens,crlf", "framings": "chunk-per-event,close-delimited"}
    try:
        args.clients = csv(args.clients or ",".join(CLIENTS), tuple(CLIENTS), "client")
        for what, allowed in (("workloads", WORKLOADS), ("framings", FRAMINGS)):
            default = quick[what] if args.quick else ",".join(allowed)
            setattr(args, what, csv(getattr(args, what) or default, allowed, what[:-1]))
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    args.rounds = (1 if args.quick else 5) if args.rounds is None else args.rounds
    if args.scale is None and args.quick:
        args.scale = QUICK_SCALE
    if args.rounds < 1 or (args.scale is not None and args.scale <= 0):
        parser.error("--rounds and --scale must be positive")
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())

"""
The httpx transport: throughput against httpx-sse and httpx2's sse(), fan-out over HTTP/2.

Throughput against the SSE readers of the httpx world, and fan-out of many streams over HTTP/2
against our aiohttp transport over HTTP/1.1.

Usage::

    python bench/httpx_transport.py                  # both parts (a few minutes on 2 cores)
    python bench/httpx_transport.py --quick          # a smoke run
    python bench/httpx_transport.py --part fanout --n 1000 --n 10000
    python bench/httpx_transport.py --json out.json

**Throughput** (``--part throughput``): the load server of ``bench/throughput.py``
(``bench/_server.py``, ``burst``) and its client worker (``bench/_tp_clients.py``, timed from
the first event to the end, counted and crc-checked the same way), with these clients, each
in a fresh process:

- ``ours-httpx-sync``/``-async``: ``SSEClient(ConnectStrategy.httpx(url))``, under the
  project's ``.venv`` (httpx from its dev group);
- ``httpx-sse-sync``/``-async``: ``httpx-sse`` 0.4.3 on httpx, in the venv that
  ``bench/throughput.py`` uses for it (its client there);
- ``httpx2-sse-sync``/``-async``: httpx2's built-in ``client.sse(url)``, in a venv of its own;
- ``ours-sync``/``ours-async`` (urllib3, aiohttp) for scale.

**Fan-out** (``--part fanout``): N streams opened at once in one event loop, each reading
``bench/fanout.py``'s 10 events and then held open, measured as ``bench/fanout.py`` measures
(its ``measured``; RSS/stream from the peak, CPU/stream over the whole run, in the client's
process):

- ``httpx-h2``: ours over httpx with HTTP/2, ``ceil(N / 100)`` shared
  ``httpx.AsyncClient(http2=True)`` (httpcore puts at most 100 streams on a connection and
  opens no second one for more: docs/guides/transports.md), against an HTTP/2 server over TLS
  in its own process (``tests/h2_server.py``, on h2), which counts its connections;
- ``aiohttp-h1``: ours over aiohttp, run by ``bench/fanout.py`` as its ``ours`` (one shared
  session without a connection limit), against ``bench/_server.py`` (``hold``, one port), a
  connection a stream.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import _harness as h
import _tp_clients as tc
import fanout
import throughput
from _harness import LoadServer, Report, Venv
from _worker import REPO_ROOT, emit, raise_nofile
from throughput import Cell, Client, Run

SCRIPT = Path(__file__).resolve()
HTTPX2 = Venv("httpx2", ("httpx2==2.16.2",), ("httpx2",))
STREAMS_PER_CLIENT = 100
_OURS_HTTPX = ("httpx", "httpcore", "h2")
CLIENTS: dict[str, Client] = {
    "ours-httpx-sync": Client("ours-httpx-sync", None, _OURS_HTTPX, "SSEClient(ConnectStrategy.httpx(url))"),
    "ours-httpx-async": Client("ours-httpx-async", None, _OURS_HTTPX, "AsyncSSEClient(AsyncConnectStrategy.httpx(url))"),
    "httpx-sse-sync": throughput.CLIENTS["httpx-sse-sync"],
    "httpx-sse-async": throughput.CLIENTS["httpx-sse-async"],
    "httpx2-sse-sync": Client("httpx2-sse-sync", HTTPX2, ("httpx2",), "httpx2.Client().sse(url)"),
    "httpx2-sse-async": Client("httpx2-sse-async", HTTPX2, ("httpx2",), "httpx2.AsyncClient().sse(url)"),
    "ours-sync": throughput.CLIENTS["ours-sync"],
    "ours-async": throughput.CLIENTS["ours-async"],
}  # fmt: skip
LABELS = {"ours-sync": "ours-sync (urllib3)", "ours-async": "ours-async (aiohttp)"}
PEERS = {"ours-httpx-sync": ("httpx-sse-sync", "httpx2-sse-sync"), "ours-httpx-async": ("httpx-sse-async", "httpx2-sse-async")}  # fmt: skip
WORKLOADS = {"small": 20_000, "llm-tokens": 20_000, "multiline": 4_000}
FRAMINGS = ("chunk-per-event", "large-chunks")


# --- the client side of one throughput run (under the client's interpreter) ------------------


def tp_worker(argv: list[str]) -> int:
    """``_tp_clients``' worker, with this script's clients added to the ones it has."""
    sync_events, async_events = tc.sync_events, tc.async_events

    def sync(name: str, url: str, stack: contextlib.ExitStack) -> Any:
        if name == "ours-httpx-sync":
            from ld_eventsource import SSEClient
            from ld_eventsource.config import ConnectStrategy

            return stack.enter_context(SSEClient(ConnectStrategy.httpx(url))).events
        if name == "httpx2-sse-sync":
            import httpx2

            return stack.enter_context(stack.enter_context(httpx2.Client()).sse(url))
        return sync_events(name, url, stack)

    async def asynchronous(name: str, url: str, stack: contextlib.AsyncExitStack) -> Any:
        if name == "ours-httpx-async":
            from ld_eventsource import AsyncSSEClient
            from ld_eventsource.config import AsyncConnectStrategy

            client = AsyncSSEClient(AsyncConnectStrategy.httpx(url))
            return (await stack.enter_async_context(client)).events
        if name == "httpx2-sse-async":
            import httpx2

            http = await stack.enter_async_context(httpx2.AsyncClient())
            return await stack.enter_async_context(http.sse(url))
        return await async_events(name, url, stack)

    tc.sync_events, tc.async_events = sync, asynchronous
    tc.ASYNC.update(name for name in CLIENTS if name.endswith("-async"))
    return tc.main(argv)


# --- throughput ----------------------------------------------------------------------------------


def throughput_part(args: argparse.Namespace, report: Report) -> dict[str, Any]:
    scale = 0.1 if args.quick else 1.0
    counts = {w: max(int(n * scale), 100) for w, n in WORKLOADS.items()}
    rounds = 1 if args.quick else args.rounds
    names = args.clients.split(",") if args.clients else list(CLIENTS)
    if unknown := [n for n in names if n not in CLIENTS]:
        raise SystemExit(f"unknown clients {unknown}; choose from {', '.join(CLIENTS)}")
    cases = [f"{w}/{f}" for w in counts for f in FRAMINGS]
    pythons = {name: h.interpreter(CLIENTS[name].venv) for name in names}
    server = LoadServer(
        "--counts", ",".join(f"{w}:{n}" for w, n in counts.items()), "--framings", ",".join(FRAMINGS)
    )  # fmt: skip
    cells = {(name, case): Cell(name, case) for name in names for case in cases}
    versions: dict[str, str] = {}
    try:
        for round_index, case, name in h.schedule(rounds, cases, names):
            cell = cells[name, case]
            if cell.status != "OK":
                continue
            first = not versions.keys() >= set(CLIENTS[name].dists)  # asks for the versions
            worker = (str(SCRIPT), "--tp-worker")
            message = throughput.run_once(
                CLIENTS[name], pythons[name], server, case, 120, first, worker
            )
            versions.update(message.get("versions") or {})
            if message["status"] != "OK":
                cell.fail(message["status"], str(message["reason"]))
                h.progress(f"{case:28} {name:18} {message['status']}: {message['reason']}")
                continue
            cell.runs.append(
                Run(message["wall"], message["cpu"], message["maxrss_mb"], round_index)
            )
            got = (message["events"] - 1) / message["wall"]
            h.progress(f"{case:28} {name:18} {h.fmt_rate(got)} events/s")
    finally:
        server.stop()

    def rate(cell: Cell) -> str:
        events = server.cases[cell.case]["events"] - 1
        return h.fmt_rate(events / cell.median("wall")) if cell.ok else cell.status

    shown = ", ".join(f"{d} {v}" for d, v in sorted(versions.items()) if v != "?")
    report.line(f"Versions: {shown}; {h.machine()['python']}")
    report.line(f"Throughput, events/s (median of {rounds} rounds; events per run: {counts}):")
    rows = [[case, *(rate(cells[name, case]) for name in names)] for case in cases]
    report.table(["case", *(LABELS.get(n, n) for n in names)], rows, range(1, len(names) + 1))
    ratio_rows = [
        [ours, peer, case, h.fmt_ratio(throughput.ratio(cells[peer, case], cells[ours, case]))]
        for ours, peers in PEERS.items()
        for peer in peers
        for case in cases
        if ours in names and peer in names
    ]
    if ratio_rows:
        report.line()
        report.line(
            "Ours over httpx against each peer (events/s, paired by round; > 1: ours faster):"
        )
        report.table(["ours", "peer", "case", "ratio"], ratio_rows, {3})
    return {
        "counts": counts,
        "rounds": rounds,
        "versions": versions,
        "cells": {
            f"{name} {case}": {"status": c.status, "reason": c.reason, "runs": [r.__dict__ for r in c.runs]}
            for (name, case), c in cells.items()
        },
    }  # fmt: skip


# --- fan-out -------------------------------------------------------------------------------------


def serve_h2(ca_file: str) -> None:
    """The HTTP/2 server process: CA written to ``ca_file``; serves until stdin closes."""
    import trustme

    sys.path.insert(0, str(REPO_ROOT))
    from tests.h2_server import H2SSEServer

    raise_nofile(20_000)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(ca_file)
    with H2SSEServer(ca, total=fanout.EVENTS, interval=0.0, max_streams=STREAMS_PER_CLIENT) as s:
        emit({"ports": [s.port]})
        sys.stdin.read()
        emit({"connections": len(s.connections), "streams": len(s.requests)})


def h2_worker(n: int, url: str, ca_file: str, budget: float) -> None:
    """The client process of ``httpx-h2``: N streams over ``ceil(N / 100)`` HTTP/2 clients."""
    import asyncio
    import ssl

    import httpx

    from ld_eventsource import AsyncSSEClient
    from ld_eventsource.config import AsyncConnectStrategy

    limit = raise_nofile(n + 1024)
    if limit < n + 64:
        raise RuntimeError(f"RLIMIT_NOFILE is {limit}, too low for {n} streams")
    urls = [f"{url}/s{i}" for i in range(n)]

    async def stream(u: str, reached: fanout.Reached, by_url: dict[str, Any]) -> None:
        strategy = AsyncConnectStrategy.httpx(u, client=by_url[u])
        async with AsyncSSEClient(strategy) as client:
            await fanout.until_cancelled(client.events, reached)

    async def main() -> dict[str, Any]:
        context = ssl.create_default_context(cafile=ca_file)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        clients = [
            httpx.AsyncClient(http2=True, verify=context, limits=limits)
            for _ in range(-(-n // STREAMS_PER_CLIENT))
        ]
        by_url = {u: clients[i // STREAMS_PER_CLIENT] for i, u in enumerate(urls)}

        async def close() -> None:
            for client in clients:
                await client.aclose()

        data = await fanout.measured(stream, urls, budget, by_url, close)
        return {**data, "impl": "httpx-h2", "httpx": httpx.__version__}

    emit(asyncio.run(main()))


def h2_measure(n: int, budget: float) -> fanout.Result:
    """One ``httpx-h2`` run: the HTTP/2 server, then the client process."""
    result = fanout.Result("httpx-h2", n)
    python, env = h.interpreter(None)
    with tempfile.TemporaryDirectory() as tmp:
        ca_file = os.path.join(tmp, "ca.pem")
        server = h.Worker([python, str(SCRIPT), "--serve-h2", ca_file], env, stdin=True)
        try:
            ready = server.next(60)
            if ready is None:
                raise RuntimeError(f"the HTTP/2 server did not start ({server.failure()})")
            cmd = [python, str(SCRIPT), "--h2-worker", "--n", str(n), "--budget", str(budget)]
            cmd += ["--url", f"https://127.0.0.1:{ready['ports'][0]}", "--ca", ca_file]
            run = h.collect(cmd, env, budget + 90)
            if run.error or not run.messages:
                result.error = f"client {run.error or 'reported nothing'}"
            else:
                result.data = run.messages[-1]
        finally:
            if server.proc.stdin is not None:
                server.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                result.server = server.next(30) or {}
            server.stop()
    return result


def fanout_part(args: argparse.Namespace, report: Report) -> list[dict[str, Any]]:
    ns = args.n or ([200] if args.quick else [1000, 10000])
    h1 = argparse.Namespace(framing="chunked", ports=1, budget=args.budget)
    results: list[fanout.Result] = []
    for n in ns:
        for impl in ("httpx-h2", "aiohttp-h1"):
            h.progress(f"fan-out {impl} N={n} ...")
            result = (
                h2_measure(n, args.budget) if impl == "httpx-h2" else fanout.measure("ours", n, h1)
            )
            result.impl = impl
            results.append(result)
            h.progress(f"  {result.error or result.data.get('complete')} complete")
    rows = []
    for r in results:
        d, connections = r.data, r.server.get("connections") or 0
        received = d.get("all_received_s")
        rows.append([
            r.impl, f"{r.n:,}", f"{d['complete']:,}" if d else f"FAIL: {r.error}",
            f"{d.get('rss_per_stream_kb', float('nan')):.1f}",
            f"{d.get('cpu_per_stream_ms', float('nan')):.2f}", f"{connections:,}",
            f"{r.n / connections:.0f}" if connections else "?",
            "-" if received is None else f"{received:.2f}",
        ])  # fmt: skip
    report.line()
    report.line("Fan-out: N streams in one event loop, each reading 10 events then held open:")
    report.table(
        ["transport", "N", "complete", "RSS/stream KB", "CPU/stream ms", "server connections", "streams/connection", "all received (s)"],
        rows, range(1, 8),
    )  # fmt: skip
    keys = ("impl", "n", "data", "server", "error")
    return [{k.replace("data", "client"): getattr(r, k) for k in keys} for r in results]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--tp-worker":
        return tp_worker(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-h2":
        serve_h2(sys.argv[2])
        return 0
    parser = h.arguments(__doc__, "small inputs, one round, N = 200")
    add = parser.add_argument
    add("--part", choices=("throughput", "fanout", "all"), default="all", help="what to run (all)")
    add("--rounds", type=int, default=3, help="throughput rounds (3)")
    add("--clients", help=f"comma-separated throughput clients, of: {', '.join(CLIENTS)}")
    add("--n", type=int, action="append", help="fan-out streams (repeatable; 1000 and 10000)")
    add("--budget", type=float, default=120.0, help="seconds for all streams to complete (120)")
    add("--markdown", metavar="PATH", help="write the tables as Markdown")
    add("--h2-worker", action="store_true", help=argparse.SUPPRESS)
    add("--url", help=argparse.SUPPRESS)
    add("--ca", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.h2_worker:
        h2_worker(args.n[0], args.url, args.ca, args.budget)
        return 0
    report = Report(markdown=bool(args.markdown))
    report.line(f"Machine: {h.machine()}")
    data: dict[str, Any] = {}
    if args.part in ("throughput", "all"):
        data["throughput"] = throughput_part(args, report)
    if args.part in ("fanout", "all"):
        data["fanout"] = fanout_part(args, report)
    report.save(args.json, data, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""
The httpx transport: throughput against the SSE readers of the httpx world, and fan-out of
many streams over HTTP/2 against our aiohttp transport over HTTP/1.1.

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
  ``bench/throughput.py`` uses for it;
- ``httpx2-sse-sync``/``-async``: httpx2's built-in ``client.sse(url)``, in a venv of its own;
- ``ours-sync``/``ours-async`` (urllib3, aiohttp) for scale.

**Fan-out** (``--part fanout``): N streams opened at once in one event loop, each reading
``bench/fanout.py``'s 10 events and then held open, measured as ``bench/fanout.py`` measures
(its ``run_streams``; RSS/stream from the peak, CPU/stream over the whole run, in the
client's process):

- ``httpx-h2``: ours over httpx with HTTP/2, ``ceil(N / 100)`` shared
  ``httpx.AsyncClient(http2=True)`` (httpcore puts at most 100 streams on a connection and
  opens no second one for more: docs/guides/transports.md), against an HTTP/2 server over TLS
  in its own process (``tests/h2_server.py``, on h2), which counts its connections;
- ``aiohttp-h1``: ours over aiohttp (``bench/fanout.py``'s ``ours``: one shared session
  without a connection limit), against ``bench/_server.py`` (``hold``), a connection a stream.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    LoadServer,
    Report,
    Venv,
    Worker,
    arguments,
    collect,
    fmt_rate,
    interpreter,
    machine,
    progress,
    schedule,
)
from _worker import BENCH_DIR, REPO_ROOT, emit, raise_nofile, status_kb

SCRIPT = Path(__file__).resolve()
TP_CLIENTS = BENCH_DIR / "_tp_clients.py"
HTTPX_SSE = Venv("httpx-sse", ("httpx-sse==0.4.3", "httpx"), ("httpx_sse", "httpx"))
HTTPX2 = Venv("httpx2", ("httpx2==2.16.2",), ("httpx2",))
STREAMS_PER_CLIENT = 100

# name: (venv, kind, preload, what it is)
CLIENTS: dict[str, tuple[Venv | None, str, str, str]] = {
    "ours-httpx-sync": (None, "ours", "ld_eventsource,httpx", "SSEClient(ConnectStrategy.httpx(url))"),
    "ours-httpx-async": (None, "ours", "ld_eventsource,ld_eventsource.async_client,httpx", "AsyncSSEClient(AsyncConnectStrategy.httpx(url))"),
    "httpx-sse-sync": (HTTPX_SSE, "peer", "httpx,httpx_sse", "httpx-sse 0.4.3 connect_sse(...).iter_sse()"),
    "httpx-sse-async": (HTTPX_SSE, "peer", "httpx,httpx_sse", "httpx-sse 0.4.3 aconnect_sse(...).aiter_sse()"),
    "httpx2-sse-sync": (HTTPX2, "peer", "httpx2", "httpx2 2.16.2 Client.sse(url)"),
    "httpx2-sse-async": (HTTPX2, "peer", "httpx2", "httpx2 2.16.2 AsyncClient.sse(url)"),
    "ours-sync": (None, "ours", "ld_eventsource,urllib3", "SSEClient(url) (urllib3)"),
    "ours-async": (None, "ours", "ld_eventsource,ld_eventsource.async_client,aiohttp", "AsyncSSEClient(url) (aiohttp)"),
}  # fmt: skip
OURS_HTTPX = ("ours-httpx-sync", "ours-httpx-async")
PEERS = {"ours-httpx-sync": ("httpx-sse-sync", "httpx2-sse-sync"), "ours-httpx-async": ("httpx-sse-async", "httpx2-sse-async")}  # fmt: skip
WORKLOADS = {"small": 20_000, "llm-tokens": 20_000, "multiline": 4_000}
FRAMINGS = ("chunk-per-event", "large-chunks")


# --- the client side of one throughput run (under the client's interpreter) ------------------


def tp_worker(argv: list[str]) -> int:
    """Adds this script's clients to ``_tp_clients`` and runs its worker."""
    import _tp_clients as tp

    def ours_httpx_sync(target: tp.Target) -> tp.Timing:
        from ld_eventsource import SSEClient
        from ld_eventsource.config import ConnectStrategy

        with SSEClient(ConnectStrategy.httpx(target.url)) as client:
            return tp.consume(client.events, None)

    async def ours_httpx_async(target: tp.Target) -> tp.Timing:
        from ld_eventsource import AsyncSSEClient
        from ld_eventsource.config import AsyncConnectStrategy

        async with AsyncSSEClient(AsyncConnectStrategy.httpx(target.url)) as client:
            return await tp.aconsume(client.events, None)

    def httpx2_sync(target: tp.Target) -> tp.Timing:
        import httpx2

        with httpx2.Client() as client, client.sse(target.url) as source:
            return tp.consume(source, None)

    async def httpx2_async(target: tp.Target) -> tp.Timing:
        import httpx2

        async with httpx2.AsyncClient() as client, client.sse(target.url) as source:
            return await tp.aconsume(source, None)

    tp.CLIENTS.update(
        {
            "ours-httpx-sync": (ours_httpx_sync, False),
            "ours-httpx-async": (ours_httpx_async, True),
            "httpx2-sse-sync": (httpx2_sync, False),
            "httpx2-sse-async": (httpx2_async, True),
        }
    )
    return tp.main(argv)


def throughput(args: Any, report: Report) -> dict[str, Any]:
    scale = 0.1 if args.quick else 1.0
    counts = {w: max(int(n * scale), 100) for w, n in WORKLOADS.items()}
    rounds = 1 if args.quick else args.rounds
    server = LoadServer(
        "--counts", ",".join(f"{w}:{n}" for w, n in counts.items()), "--framings", ",".join(FRAMINGS)
    )  # fmt: skip
    results: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    failures: dict[tuple[str, str], str] = {}
    versions: dict[str, Any] = {}
    try:
        cases = [f"{w}/{f}" for w in counts for f in FRAMINGS]
        names = args.clients.split(",") if args.clients else list(CLIENTS)
        for _, case, name in schedule(rounds, cases, names):
            if (name, case) in failures:
                continue
            venv, kind, preload, _ = CLIENTS[name]
            python, env = interpreter(venv)
            expected = server.cases[case]
            cmd = [
                python,
                str(SCRIPT),
                "--tp-worker",
                name,
                server.url(case),
                str(expected["events"]),
                kind,
                preload,
            ]
            if name not in versions:
                cmd.append("httpx,httpcore,httpx2,httpx-sse,h2")
            messages, error = collect(cmd, env, 120)
            message = messages[-1] if messages else {}
            if error or not message.get("ok"):
                failures[(name, case)] = error or str(message.get("error"))
                continue
            if message["events"] != expected["events"] or message["crc"] != expected["crc"]:
                failures[(name, case)] = f"FAIL: {message['events']} events, crc {message['crc']}"
                continue
            if name not in versions:
                versions[name] = {
                    "python": message.get("python"),
                    **(message.get("versions") or {}),
                }
            rate = (message["events"] - 1) / message["wall"] if message["wall"] > 0 else 0.0
            results.setdefault((name, case), []).append(rate)
            cpu.setdefault((name, case), []).append(message["cpu"])
            progress(f"{case:32} {name:18} {fmt_rate(rate)} events/s")
    finally:
        server.stop()
    median = {key: statistics.median(v) for key, v in results.items()}
    header = ["case", *CLIENTS]
    rows = []
    for case in [f"{w}/{f}" for w in counts for f in FRAMINGS]:
        rows.append(
            [
                case,
                *(
                    fmt_rate(median[(n, case)])
                    if (n, case) in median
                    else failures.get((n, case), "-")[:20]
                    for n in CLIENTS
                ),
            ]
        )
    report.line(f"Throughput, events/s (median of {rounds} rounds; events per run: {counts}):")
    report.table(header, rows)
    ratio_rows = []
    for ours, peers in PEERS.items():
        for peer in peers:
            for case in [f"{w}/{f}" for w in counts for f in FRAMINGS]:
                if (ours, case) in median and (peer, case) in median:
                    ratio_rows.append(
                        [ours, peer, case, f"{median[(ours, case)] / median[(peer, case)]:.2f}x"]
                    )
    report.line("Ours over httpx against each peer (events/s ratio, > 1: ours faster):")
    report.table(["ours", "peer", "case", "ratio"], ratio_rows)
    return {
        "counts": counts,
        "rounds": rounds,
        "median_events_per_s": {f"{n} {c}": v for (n, c), v in median.items()},
        "failures": {f"{n} {c}": v for (n, c), v in failures.items()},
        "versions": versions,
    }


# --- fan-out -------------------------------------------------------------------------------------


def serve_h2(ca_file: str) -> None:
    """The HTTP/2 server process: CA written to ``ca_file``; serves until stdin closes."""
    import trustme

    sys.path.insert(0, str(REPO_ROOT))
    from tests.h2_server import H2SSEServer

    raise_nofile(20_000)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(ca_file)
    import fanout

    with H2SSEServer(
        ca, total=fanout.EVENTS, interval=0.0, max_streams=STREAMS_PER_CLIENT
    ) as server:
        emit({"ports": [server.port]})
        sys.stdin.read()
        emit({"connections": len(server.connections), "streams": len(server.requests)})


def fanout_worker(impl: str, n: int, url: str, ca_file: str, budget: float) -> None:
    import fanout

    limit = raise_nofile(n + 1024)
    if limit < n + 64:
        raise RuntimeError(f"RLIMIT_NOFILE is {limit}, too low for {n} streams")
    if impl == "aiohttp-h1":
        stream, shared, meta = fanout.load_impl("ours")
        urls = [f"{url}&stream={i}" for i in range(n)]
    else:
        import ssl

        import httpx

        from ld_eventsource import AsyncSSEClient
        from ld_eventsource.config import AsyncConnectStrategy

        meta = {"impl": impl, "httpx": httpx.__version__}
        context = ssl.create_default_context(cafile=ca_file)
        clients: list[Any] = []
        by_url: dict[str, Any] = {}

        class Shared:
            async def setup(self) -> None:
                limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
                for _ in range(math.ceil(n / STREAMS_PER_CLIENT)):
                    clients.append(httpx.AsyncClient(http2=True, verify=context, limits=limits))

            async def cleanup(self) -> None:
                for client in clients:
                    await client.aclose()

        shared = Shared()  # type: ignore[assignment]
        urls = [f"{url}/s{i}" for i in range(n)]

        async def h2_stream(u: str, reached: Any) -> None:
            http = by_url[u]
            client = AsyncSSEClient(AsyncConnectStrategy.httpx(u, client=http))
            try:
                count = 0
                async for _ in client.events:
                    count += 1
                    if count == fanout.EVENTS:
                        reached()
            finally:
                await client.close()

        stream = h2_stream  # type: ignore[assignment]

    async def main() -> dict[str, Any]:
        await shared.setup()
        if impl == "httpx-h2":
            for i, u in enumerate(urls):
                by_url[u] = clients[i // STREAMS_PER_CLIENT]
        await asyncio.sleep(0)
        gc.collect()
        fanout._reset_peak()
        rss0 = status_kb("VmRSS")
        cpu0 = fanout.cpu_seconds()
        wall0 = time.perf_counter()
        outcome = await fanout.run_streams(stream, urls, budget)
        await shared.cleanup()
        cpu = fanout.cpu_seconds() - cpu0
        peak = status_kb("VmHWM")
        return {
            **outcome,
            **meta,
            "n": n,
            "rss_per_stream_kb": (peak - rss0) / n,
            "cpu_per_stream_ms": cpu * 1000 / n,
            "wall_s": time.perf_counter() - wall0,
        }

    emit(asyncio.run(main()))


def fanout_part(args: Any, report: Report) -> dict[str, Any]:
    import fanout

    ns = args.n or ([200] if args.quick else [1000, 10000])
    python, env = interpreter(None)
    out: dict[str, Any] = {}
    rows = []
    for n in ns:
        for impl in ("httpx-h2", "aiohttp-h1"):
            with tempfile.TemporaryDirectory() as tmp:
                ca_file = os.path.join(tmp, "ca.pem")
                if impl == "httpx-h2":
                    server: Any = Worker(
                        [python, str(SCRIPT), "--serve-h2", ca_file], env, stdin=True
                    )
                    ready = server.next(60)
                    url = f"https://127.0.0.1:{ready['ports'][0]}" if ready else ""
                else:
                    server = LoadServer(
                        "--counts",
                        f"flags:{fanout.EVENTS}",
                        "--framings",
                        "chunk-per-event",
                        "--lifetime",
                        str(args.budget + 120),
                    )
                    url = f"http://127.0.0.1:{server.port}/flags/chunk-per-event?mode=hold"
                try:
                    cmd = [
                        python,
                        str(SCRIPT),
                        "--fanout-worker",
                        impl,
                        "--n",
                        str(n),
                        "--url",
                        url,
                        "--ca",
                        ca_file,
                        "--budget",
                        str(args.budget),
                    ]
                    messages, error = collect(cmd, env, args.budget + 90)
                finally:
                    if impl == "httpx-h2":
                        if server.proc.stdin is not None:
                            server.proc.stdin.close()
                        stats = server.next(30) or {}
                        server.stop()
                    else:
                        server.stop()
                        stats = server.stats
            data = messages[-1] if messages else {"error": error}
            connections = stats.get("connections") or 0
            data["server_connections"] = connections
            out[f"{impl} {n}"] = data
            progress(f"fan-out {impl} N={n}: {json.dumps(data)[:300]}")
            per_conn = f"{n / connections:.0f}" if connections else "?"
            rows.append([
                impl, f"{n:,}", f"{data.get('complete', 0):,}",
                f"{data.get('rss_per_stream_kb', float('nan')):.1f}",
                f"{data.get('cpu_per_stream_ms', float('nan')):.2f}",
                str(connections), per_conn,
                f"{data.get('all_received_s') or float('nan'):.2f}",
            ])  # fmt: skip
    report.line("Fan-out: N streams in one event loop, each reading 10 events then held open:")
    report.table(
        ["transport", "N", "complete", "RSS/stream KB", "CPU/stream ms", "connections", "streams/conn", "all received s"],
        rows,
    )  # fmt: skip
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--tp-worker":
        return tp_worker(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-h2":
        serve_h2(sys.argv[2])
        return 0
    parser = arguments(__doc__, "small inputs, one round, N = 200")
    parser.add_argument("--part", choices=("throughput", "fanout", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", help="comma-separated throughput clients (default: all)")
    parser.add_argument("--n", type=int, action="append", help="fan-out streams (repeatable)")
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--markdown", metavar="PATH")
    parser.add_argument("--fanout-worker", metavar="IMPL")
    parser.add_argument("--url")
    parser.add_argument("--ca")
    args = parser.parse_args()
    if args.fanout_worker:
        fanout_worker(args.fanout_worker, args.n[0], args.url, args.ca, args.budget)
        return 0
    report = Report(markdown=bool(args.markdown))
    report.line(f"Machine: {machine()}")
    data: dict[str, Any] = {}
    if args.part in ("throughput", "all"):
        data["throughput"] = throughput(args, report)
    if args.part in ("fanout", "all"):
        data["fanout"] = fanout_part(args, report)
    report.save(args.json, data, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

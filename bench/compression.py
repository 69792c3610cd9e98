"""
Compression: throughput and bytes on the wire of the ``small`` workload (``_server.gen_small``:
``id:`` and one JSON line of about 60 bytes), uncompressed and in each content coding the
clients undo, for both clients.

    python bench/compression.py [--events 20000] [--rounds 5] [--markdown FILE] [--quick]

The load server (``--codings``) serves each case from memory in chunks of 64 KiB, as fast as
the socket takes it. "flushed" cases are what a live stream sends (the compressor flushed after
each event, so that each event can be decoded as soon as it arrives); "whole" cases are the
stream compressed in one go (the best ratio, what a replay of stored events could send). Each
case is read by ``ours-sync`` and ``ours-async`` in a worker of ``throughput.py``, ``--rounds``
times, interleaved; the table gives the median.
"""

from __future__ import annotations

import statistics
import sys

from _harness import LoadServer, Report, arguments, interpreter, progress, schedule
from _worker import SRC_DIR
from throughput import CLIENTS, run_once

FRAMING = "large-chunks"
READERS = {"sync": "ours-sync", "async": "ours-async"}


def main() -> int:
    parser = arguments(__doc__, "2,000 events, 1 round")
    parser.add_argument("--events", type=int, default=None, help="events per case (20000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (5)")
    parser.add_argument("--markdown", metavar="FILE", help="write the table as Markdown")
    args = parser.parse_args()
    events = args.events or (2_000 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 5)

    sys.path.insert(0, str(SRC_DIR))
    from ld_eventsource._decompress import CODINGS

    codings = [c for c in ("gzip", "deflate", "br", "zstd") if c in CODINGS]
    server = LoadServer(
        "--counts", f"small:{events}", "--framings", FRAMING, "--codings", ",".join(codings)
    )
    names = ["identity"] + [f"{c} {how}" for c in codings for how in ("flushed", "whole")]
    case = {name: f"small{'+' + name.replace(' ', '-') if name != 'identity' else ''}/{FRAMING}"
            for name in names}  # fmt: skip
    rates: dict[tuple[str, str], list[float]] = {}
    try:
        for _, name, mode in schedule(rounds, names, list(READERS)):
            message = run_once(CLIENTS[READERS[mode]], interpreter(None), server, case[name], 60)
            if message["status"] != "OK":
                raise SystemExit(f"{mode} {name}: {message['status']}: {message['reason']}")
            rates.setdefault((name, mode), []).append((events - 1) / message["wall"])
            progress(f"{name:16} {mode:5} {rates[name, mode][-1]:,.0f} events/s")
    finally:
        server.stop()

    identity = server.cases[case["identity"]]["body_bytes"]
    rows = [
        [name, f"{size:,}", f"{size / identity:.1%}"]
        + [f"{statistics.median(rates[name, mode]):,.0f}" for mode in READERS]
        for name in names
        for size in [server.cases[case[name]]["body_bytes"]]
    ]
    out = Report(markdown=True)
    out.para(
        f"`small` workload, {events:,} events, median of {rounds} rounds"
        f" (Python {sys.version.split()[0]}):"
    )
    header = ["body", "body bytes on the wire", "of identity", "sync events/s", "async events/s"]
    out.table(header, rows, {1, 2, 3, 4})
    out.save(args.json, {"events": events, "rounds": rounds, "rows": rows}, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

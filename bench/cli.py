"""
What the ``sse`` tool costs per event: how fast it streams events into a pipe, by output
format, next to the smallest program that does the same with the library (a loop over
``SSEClient.events`` writing each event's data and flushing).

The responses come from ``bench/_server.py`` (the load server of the benchmarks). The rate
is measured on the reader's side of the pipe, from the first byte of output to the last, so
interpreter start-up is left out.

    .venv/bin/python bench/cli.py [--events N] [--repeat R] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _harness import LoadServer, Report, our_python, progress

# The smallest useful command-line reader: what `sse --format data` does, without the tool.
BASELINE = """
import sys
from ld_eventsource import SSEClient
out = sys.stdout.buffer
with SSEClient(sys.argv[1]) as client:
    for event in client.events:
        out.write(event.data.encode() + b"\\n")
        out.flush()
"""

CASES = [
    # (label, workload/framing, command after the interpreter: "{url}" is replaced)
    ("library loop, data", "small/chunk-per-event", ["-c", BASELINE, "{url}"]),
    ("sse --format data", "small/chunk-per-event", ["-m", "ld_eventsource", "{url}", "--format", "data"]),
    ("sse --format json", "small/chunk-per-event", ["-m", "ld_eventsource", "{url}", "--format", "json"]),
    ("sse (pretty, piped)", "small/chunk-per-event", ["-m", "ld_eventsource", "{url}"]),
    ("sse --format raw", "small/chunk-per-event", ["-m", "ld_eventsource", "{url}", "--format", "raw"]),
    ("sse --format data, 64 KiB chunks", "small/large-chunks", ["-m", "ld_eventsource", "{url}", "--format", "data"]),
    ("library loop, LLM tokens", "llm-tokens/chunk-per-event", ["-c", BASELINE, "{url}"]),
    (
        "sse --field delta --format text",
        "llm-tokens/chunk-per-event",
        ["-m", "ld_eventsource", "{url}", "--field", "delta", "--format", "text"],
    ),
]  # fmt: skip


def measure(python: str, env: dict[str, str], args: list[str]) -> tuple[float, int]:
    """Seconds from the first byte of output to the last, and the bytes read."""
    proc = subprocess.Popen([python, *args], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    first = last = 0.0
    total = 0
    while chunk := os.read(proc.stdout.fileno(), 1 << 20):
        last = time.perf_counter()
        first, total = first or last, total + len(chunk)
    if proc.wait(timeout=600) != 0:
        raise RuntimeError(f"{args} exited with {proc.returncode}")
    return last - first, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--events", type=int, default=100_000, help="events per run")
    add("--repeat", type=int, default=3, help="runs per case (the median counts)")
    add("--json", metavar="FILE", help="also write the results as JSON")
    ns = parser.parse_args()

    python, env = our_python()
    counts = f"small:{ns.events},llm-tokens:{ns.events}"
    server = LoadServer("--counts", counts, "--framings", "chunk-per-event,large-chunks")
    results, rows, baseline = [], [], {}
    try:
        for label, path, template in CASES:
            events = server.cases[path]["events"]
            times = [
                measure(python, env, [a.replace("{url}", server.url(path)) for a in template])[0]
                for _ in range(ns.repeat)
            ]
            rate = events / statistics.median(times)
            progress(f"{label}: {rate:,.0f} events/s")
            workload = path.split("/")[0]
            if label.startswith("library"):
                baseline[workload] = rate
            ratio = rate / baseline[workload] if workload in baseline else float("nan")
            rows.append([label, f"{rate:,.0f}", f"{1e6 / rate:.2f}", f"{ratio:.2f}x"])
            results.append({"case": label, "path": path, "events": events, "events_per_s": rate})
    finally:
        server.stop()
    out = Report()
    out.para(f"{ns.events} events per run, median of {ns.repeat} runs, output into a pipe")
    out.table(["case", "events/s", "us/event", "vs library"], rows, {1, 2, 3})
    out.save(ns.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""
Throughput of the sans-I/O SSE parser, against the parser of launchdarkly-eventsource 1.7.4.

    python bench/parser.py                # full run, median of 5, prints a table
    python bench/parser.py --quick        # smaller inputs, 1 repeat: a smoke run

Each (implementation, input) runs in a worker of its own (this script with ``--impl``, under
its interpreter) that builds the input, then reports each timed run (garbage collector off, as
in :mod:`timeit`, unless ``--keep-gc``); a run over ``--budget`` seconds is a lower bound.
Every run is checked (event count, data length, crc32 of ids and data, no other items).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import _harness as h
from _harness import REF, Check, Report
from _server import gen_large, gen_small
from _worker import describe, emit, use_ld_eventsource

SCRIPT = Path(__file__).resolve()
CHUNK = 64 * 1024
SMALL_CHUNK = 1024
GROUP_LINES = 1000
READY_TIMEOUT = 300.0  # seconds for a worker to start and build its input
TARGET_RATIO = 2.0
DIGEST_SLICE = 64 * 1024  # characters of an event's data encoded at a time for the checksum


# --- inputs ---------------------------------------------------------------------------------


class Scale(NamedTuple):
    small_events: int
    line_bytes: int
    many_lines: int

    @property
    def groups(self) -> int:
        return self.many_lines // GROUP_LINES


FULL, QUICK = Scale(200_000, 8 * 1024 * 1024, 200_000), Scale(20_000, 1024 * 1024, 20_000)


class Digest(NamedTuple):
    """What a correct parse of an input must produce."""

    events: int
    data_len: int  # total length of the events' data, in characters
    crc: int  # crc32 over "<id>\x1f<data>\x1e" of each event, in order
    others: int = 0  # items that are not events (comments, errors, ...)


class _Summer:
    def __init__(self) -> None:
        self.events = self.data_len = self.crc = 0

    def add(self, event_id: str | None, data: str) -> None:
        self.events += 1
        self.data_len += len(data)
        # The value is encoded a slice at a time (crc32 is incremental): a whole-value temporary
        # of a long value would be a multi-MiB allocation whose release lets glibc trim the
        # heap, and the next timed run would pay the page faults of growing it again.
        crc = zlib.crc32(f"{event_id or ''}\x1f".encode(), self.crc)
        for start in range(0, len(data), DIGEST_SLICE):
            crc = zlib.crc32(data[start : start + DIGEST_SLICE].encode(), crc)
        self.crc = zlib.crc32(b"\x1e", crc)

    def digest(self, others: int = 0) -> Digest:
        return Digest(self.events, self.data_len, self.crc, others)


@dataclass(frozen=True)
class Case:
    key: str
    chunks: list[bytes]
    size: int
    expect: Digest


def _small(scale: Scale, eol: str) -> tuple[bytes, Digest]:
    events, data = gen_small(scale.small_events, eol)
    summer = _Summer()
    for i, value in enumerate(data):
        summer.add(str(i), value)
    return b"".join(events), summer.digest()


def _long_line(scale: Scale) -> tuple[bytes, Digest]:
    events, data = gen_large(1, scale.line_bytes)
    summer = _Summer()
    summer.add(None, data[0])
    return events[0], summer.digest()


def _many_lines(scale: Scale, per_event: int) -> tuple[bytes, Digest]:
    values = [f"{i:08d}" + "x" * 16 for i in range(scale.many_lines)]  # "data: " + 24 = 30 bytes
    parts: list[str] = []
    summer = _Summer()
    for start in range(0, len(values), per_event):
        group = values[start : start + per_event]
        parts.extend(f"data: {value}\n" for value in group)
        parts.append("\n")
        summer.add(None, "\n".join(group))
    return "".join(parts).encode(), summer.digest()


# Each input: how it is built, and the size of the pieces it is fed in (0: all at once).
INPUTS: dict[str, tuple[Callable[[Scale], tuple[bytes, Digest]], int]] = {
    "small": (lambda scale: _small(scale, "\n"), CHUNK),
    "line-whole": (_long_line, 0),
    "line-1k": (_long_line, SMALL_CHUNK),
    "many-lines": (lambda scale: _many_lines(scale, scale.many_lines), CHUNK),
    "grouped-lines": (lambda scale: _many_lines(scale, GROUP_LINES), CHUNK),
    "small-crlf": (lambda scale: _small(scale, "\r\n"), CHUNK),
}
CASE_KEYS = tuple(INPUTS)


def labels(scale: Scale) -> dict[str, str]:
    mib = f"{scale.line_bytes // (1024 * 1024)}MiB"
    return {
        "small": "small", "line-whole": f"{mib}-line whole", "line-1k": f"{mib}-line 1KiB",
        "many-lines": f"{scale.many_lines // 1000}k-lines",
        "grouped-lines": f"{scale.groups}x{GROUP_LINES}-lines", "small-crlf": "small-crlf",
    }  # fmt: skip


def build_case(key: str, scale: Scale) -> Case:
    build, size = INPUTS[key]
    data, expect = build(scale)
    chunks = [data[i : i + size] for i in range(0, len(data), size)] if size else [data]
    return Case(key, chunks, len(data), expect)


# --- worker: one implementation, timed runs, JSON lines on stdout ---------------------------

Runner = Callable[[list[bytes]], list[Any]]


def load_impl(impl: str) -> tuple[Runner, type[Any], dict[str, str]]:
    """The parse function of ``impl``, its Event class, and where it was imported from."""
    if impl not in ("ours", "ref"):
        raise ValueError(f"unknown implementation {impl!r}")
    meta = {"impl": impl, **use_ld_eventsource(impl)}
    if impl == "ours":
        from ld_eventsource._parser import SSEParser
        from ld_eventsource.actions import Event

        def run_ours(chunks: list[bytes]) -> list[Any]:
            parser = SSEParser()
            feed = parser.feed
            items: list[Any] = []
            extend = items.extend
            for chunk in chunks:
                extend(feed(chunk))
            parser.end()
            return items

        runner: Runner = run_ours
    else:
        from ld_eventsource.actions import Event

        # The reference's private reader (this project's ld_eventsource.reader has none).
        from ld_eventsource.reader import _BufferedLineReader, _SSEReader  # type: ignore[attr-defined]

        def run_ref(chunks: list[bytes]) -> list[Any]:
            lines = _BufferedLineReader.lines_from(chunks)
            return list(_SSEReader(lines).events_and_comments())

        runner = run_ref
    info = describe()
    return runner, Event, {**meta, "python": info["python"], "executable": info["executable"]}


def digest(items: Iterable[Any], event_class: type[Any]) -> Digest:
    summer = _Summer()
    others = 0
    for item in items:
        if isinstance(item, event_class):
            summer.add(item.id, item.data)
        else:
            others += 1
    return summer.digest(others)


def worker(impl: str, keys: Sequence[str], repeat: int, scale: Scale, keep_gc: bool) -> None:
    runner, event_class, meta = load_impl(impl)
    for key in keys:
        case = build_case(key, scale)
        ready = {"ready": True, "bytes": case.size, "chunks": len(case.chunks)}
        emit({"case": key, **ready, "events": case.expect.events, **meta})
        for index in range(repeat):
            gc.collect()
            if not keep_gc:
                gc.disable()
            try:
                start = time.perf_counter()
                items = runner(case.chunks)
                seconds = time.perf_counter() - start
            finally:
                gc.enable()
            got, expect = digest(items, event_class), case.expect
            del items
            emit({"case": key, "run": index, "seconds": seconds, "ok": got == expect,
                  "got": got._asdict(), "expect": expect._asdict()})  # fmt: skip


# --- driver: subprocesses, budget, table ----------------------------------------------------


@dataclass
class Result:
    impl: str
    case: str
    runs: list[float] = field(default_factory=list)
    ok: bool = True
    timed_out: bool = False
    error: str | None = None
    mismatch: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def time(self, budget: float) -> tuple[float, bool] | None:
        """(seconds, whether only a lower bound: a run went over the budget), or None."""
        if not self.ok or (not self.runs and not self.timed_out):
            return None
        return (budget, True) if self.timed_out else (statistics.median(self.runs), False)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("impl", "case", "meta")}
        usable = self.runs and not (self.timed_out or self.error)
        return {"seconds": statistics.median(self.runs) if usable else None, **data}


def measure(impl: str, key: str, args: argparse.Namespace) -> Result:
    python, env = h.interpreter(REF if impl == "ref" else None)
    cmd = [python, str(SCRIPT), "--impl", impl, "--case", key, "--repeat", str(args.repeat)]
    cmd += ["--quick"] * args.quick + ["--keep-gc"] * args.keep_gc
    result = Result(impl, key)

    def seen(message: dict[str, Any]) -> None:
        if "seconds" not in message:
            result.meta = message  # the input is ready
        elif result.ok:  # up to the first wrong output
            result.runs.append(message["seconds"])
            h.progress(
                f"  {impl:4} {key:14} run {len(result.runs)}/{args.repeat}: {message['seconds']:.3f} s"
            )
            if not message["ok"]:
                result.ok = False
                result.mismatch = {"got": message["got"], "expect": message["expect"]}

    total = READY_TIMEOUT + args.repeat * args.budget
    run = h.collect(cmd, env, total, first=READY_TIMEOUT, each=args.budget, seen=seen)
    result.timed_out = run.timed_out
    if run.timed_out:
        h.progress(f"  {impl:4} {key:14} run exceeded {args.budget:g} s: stopped")
    elif not result.meta:
        result.error = "worker exited before its input was ready"
    elif result.ok and len(result.runs) < args.repeat:
        result.error = f"worker exited during run {len(result.runs) + 1}"
    elif result.ok and run.error:
        result.error = f"worker {run.error}"
    result.ok = result.ok and result.error is None
    return result


def cells(result: Result, events: int, size: int, budget: float) -> list[str]:
    """events/s, MB/s and seconds of a result ("<" and ">": bounds of a run over budget)."""
    seconds = result.time(budget)
    if seconds is None:
        return ["FAIL", "FAIL", "error" if result.error else "wrong"]
    value, bound = seconds
    rate, mbps = h.fmt_rate(events / value), f"{size / value / 1e6:.1f}"
    return [f"<{rate}", f"<{mbps}", f">{budget:g}"] if bound else [rate, mbps, f"{value:.4f}"]


def ratio(
    num: tuple[float, bool] | None, den: tuple[float, bool] | None
) -> tuple[float, str] | None:
    """num/den as a value and a relation: "=", ">" or "<" (one is a bound), "?" (both are)."""
    if num is None or den is None:
        return None
    return num[0] / den[0], {(False, False): "=", (True, False): ">", (False, True): "<"}.get(
        (num[1], den[1]), "?"
    )


def show_ratio(value: tuple[float, str] | None) -> str:
    prefix = {"=": "", ">": "> ", "<": "< ", "?": "~ "}
    return "n/a" if value is None else prefix[value[1]] + f"{value[0]:.2f}x"


def drive(args: argparse.Namespace) -> int:
    scale = QUICK if args.quick else FULL
    names = labels(scale)
    keys = [k for k in CASE_KEYS if not args.case or k in args.case]
    results: dict[str, dict[str, Result]] = {key: {} for key in keys}
    for _, key, impl in h.schedule(1, keys, ("ours", "ref"), rotate=False):
        if impl == "ours":
            h.progress(f"{names[key]}:")
        results[key][impl] = measure(impl, key, args)

    out, metas = Report(), {i: r.meta for row in results.values() for i, r in row.items() if r.meta}
    out.line()
    out.line(
        f"SSE parser throughput: median of {args.repeat} run(s), "
        f"gc {'on' if args.keep_gc else 'off'} while timed, budget {args.budget:g} s per run"
    )
    for impl, meta in ((impl, metas.get(impl, {})) for impl in ("ours", "ref")):
        version, python, module = (meta.get(k, "?") for k in ("version", "python", "module"))
        out.line(f"  {impl:4} {version:8} {python}  {module}")
    out.line()
    checks: list[Check] = []
    rows: list[list[str]] = []
    table: list[dict[str, Any]] = []
    for key in keys:
        ours, ref = results[key]["ours"], results[key]["ref"]
        size, events = (int((ours.meta or ref.meta).get(k, 0)) for k in ("bytes", "events"))
        speedup = ratio(ref.time(args.budget), ours.time(args.budget))
        passed = speedup is not None and speedup[0] > 1 and speedup[1] in "=>"
        passed = passed and ours.ok and ref.ok
        verdict = "OK" if passed else "MISS"
        if not (ours.ok and ref.ok):
            verdict = f"FAIL ({'ours' if not ours.ok else 'ref'})"
        checks.append((f"ours faster than ref on {names[key]}", passed, ""))
        rows.append([
            names[key], f"{size / 1e6:.1f}", str(events), *cells(ours, events, size, args.budget),
            *cells(ref, events, size, args.budget), show_ratio(speedup), verdict,
        ])  # fmt: skip
        table.append({
            "key": key, "label": names[key], "bytes": size, "events": events,
            "ours": ours.to_json(), "ref": ref.to_json(),
            "speedup": None if speedup is None else {"value": speedup[0], "relation": speedup[1]},
        })  # fmt: skip
    header = ["input", "MB", "events", "ours ev/s", "ours MB/s", "ours s", "ref ev/s"]
    out.table([*header, "ref MB/s", "ref s", "speed-up", "target"], rows, set(range(1, 10)))
    for key in keys:
        for result in results[key].values():
            if result.mismatch or result.error:
                out.line(f"  {result.impl} {names[key]}: {result.error or result.mismatch}")
    out.line()
    derived: list[dict[str, Any]] = []
    pairs = [
        ("line-1k", "line-whole", f"{names['line-whole'].split('-')[0]} chunked / whole"),
        ("many-lines", "grouped-lines", f"{names['many-lines']} / {names['grouped-lines']}"),
    ]
    for impl in ("ours", "ref"):
        for num, den, title in (p for p in pairs if p[0] in results and p[1] in results):
            value = ratio(
                results[num][impl].time(args.budget), results[den][impl].time(args.budget)
            )
            line = f"{impl:4} {title:32} {show_ratio(value):>9}"
            if impl == "ours":
                passed = value is not None and value[1] in "=<" and value[0] <= TARGET_RATIO
                checks.append((f"ours {title} <= {TARGET_RATIO:g}x", passed, ""))
                line += f"  (target <= {TARGET_RATIO:g}x)  {'OK' if passed else 'MISS'}"
            out.line(line)
            derived.append({
                "impl": impl, "title": title, "value": None if value is None else value[0],
                "relation": None if value is None else value[1],
            })  # fmt: skip
    out.targets(checks)
    out.save(args.json, {
        "scale": scale._asdict(), "repeat": args.repeat, "budget_seconds": args.budget,
        "gc_during_runs": args.keep_gc, "implementations": metas, "inputs": table,
        "ratios": derived, "targets": [{"name": name, "ok": passed} for name, passed, _ in checks],
    })  # fmt: skip
    return 0 if all(r.ok for row in results.values() for r in row.values()) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = h.arguments(__doc__, "smaller inputs, 1 repeat")
    add = parser.add_argument
    impl = "both (default): run and compare; ours/ref: be a worker and print JSON lines"
    add("--impl", choices=("both", "ours", "ref"), default="both", help=impl)
    add("--repeat", type=int, default=None, help="timed runs per input (5)")
    add("--budget", type=float, default=60.0, help="seconds allowed for one run (60)")
    add("--case", action="append", choices=CASE_KEYS, help="only this input (repeatable)")
    add("--keep-gc", action="store_true", help="leave the garbage collector on while timing")
    args = parser.parse_args(argv)
    args.repeat = (1 if args.quick else 5) if args.repeat is None else args.repeat
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.impl == "both":
        return drive(args)
    scale = QUICK if args.quick else FULL
    worker(args.impl, args.case or CASE_KEYS, args.repeat, scale, args.keep_gc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

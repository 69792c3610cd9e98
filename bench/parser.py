"""
Throughput of the sans-I/O SSE parser, against the parser of launchdarkly-eventsource 1.7.4.

Usage::

    python bench/parser.py                # full run, median of 5, prints a table
    python bench/parser.py --quick        # smaller inputs, 1 repeat: a smoke run
    python bench/parser.py --json out.json

Each (implementation, input) pair runs in its own subprocess (``bench/_harness.py``): ours
under the project's ``.venv``, the reference under ``bench/.venvs/ref-1.7.4``. A worker is
this same script run with ``--impl ours`` or ``--impl ref``; it reports once its input is
ready, then once per timed run. A run that takes longer than ``--budget`` seconds is reported
as "> budget" and the worker is killed.

Every run's output is checked (event count, total data length, crc32 of the ids and data,
and no other items), so a wrong parser shows FAIL rather than a time. The garbage collector
is off while a run is timed (as in :mod:`timeit`) unless ``--keep-gc`` is given.
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

from _harness import (
    REF,
    Check,
    Report,
    Worker,
    arguments,
    fmt_rate,
    interpreter,
    progress,
    schedule,
)
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


@dataclass(frozen=True)
class Scale:
    small_events: int
    line_bytes: int
    many_lines: int

    @property
    def groups(self) -> int:
        return self.many_lines // GROUP_LINES


FULL = Scale(small_events=200_000, line_bytes=8 * 1024 * 1024, many_lines=200_000)
QUICK = Scale(small_events=20_000, line_bytes=1024 * 1024, many_lines=20_000)


class Digest(NamedTuple):
    """What a correct parse of an input must produce."""

    events: int
    data_len: int  # total length of the events' data, in characters
    crc: int  # crc32 over "<id>\x1f<data>\x1e" of each event, in order
    others: int = 0  # items that are not events (comments, errors, ...)


class _Summer:
    def __init__(self) -> None:
        self.events = 0
        self.data_len = 0
        self.crc = 0

    def add(self, event_id: str | None, data: str) -> None:
        self.events += 1
        self.data_len += len(data)
        if len(data) <= DIGEST_SLICE:
            self.crc = zlib.crc32(f"{event_id or ''}\x1f{data}\x1e".encode(), self.crc)
            return
        # A long value is encoded a slice at a time (crc32 is incremental): a whole-value
        # temporary would be a multi-MiB allocation whose release lets glibc trim the heap,
        # and the next timed run would pay the page faults of growing it again.
        crc = zlib.crc32(f"{event_id or ''}\x1f".encode(), self.crc)
        for start in range(0, len(data), DIGEST_SLICE):
            crc = zlib.crc32(data[start : start + DIGEST_SLICE].encode(), crc)
        self.crc = zlib.crc32(b"\x1e", crc)

    def digest(self, others: int = 0) -> Digest:
        return Digest(self.events, self.data_len, self.crc, others)


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    chunks: list[bytes]
    size: int
    expect: Digest


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _small(scale: Scale, crlf: bool) -> tuple[bytes, Digest]:
    events, data = gen_small(scale.small_events, "\r\n" if crlf else "\n")
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


def labels(scale: Scale) -> dict[str, str]:
    mib = f"{scale.line_bytes // (1024 * 1024)}MiB"
    lines = f"{scale.many_lines // 1000}k"
    return {
        "small": "small",
        "line-whole": f"{mib}-line whole",
        "line-1k": f"{mib}-line 1KiB",
        "many-lines": f"{lines}-lines",
        "grouped-lines": f"{scale.groups}x{GROUP_LINES}-lines",
        "small-crlf": "small-crlf",
    }


CASE_KEYS = ("small", "line-whole", "line-1k", "many-lines", "grouped-lines", "small-crlf")


def build_case(key: str, scale: Scale) -> Case:
    if key in ("small", "small-crlf"):
        data, expect = _small(scale, crlf=key == "small-crlf")
        chunks = _split(data, CHUNK)
    elif key == "line-whole":
        data, expect = _long_line(scale)
        chunks = [data]
    elif key == "line-1k":
        data, expect = _long_line(scale)
        chunks = _split(data, SMALL_CHUNK)
    elif key == "many-lines":
        data, expect = _many_lines(scale, per_event=scale.many_lines)
        chunks = _split(data, CHUNK)
    elif key == "grouped-lines":
        data, expect = _many_lines(scale, per_event=GROUP_LINES)
        chunks = _split(data, CHUNK)
    else:
        raise ValueError(f"unknown input {key!r}")
    return Case(key, labels(scale)[key], chunks, len(data), expect)


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
        from ld_eventsource.reader import (  # type: ignore[import-not-found]
            _BufferedLineReader,
            _SSEReader,
        )

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
        emit({"case": key, "ready": True, "bytes": case.size, "chunks": len(case.chunks), **meta})
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
            got = digest(items, event_class)
            del items
            emit(
                {
                    "case": key,
                    "run": index,
                    "seconds": seconds,
                    "ok": got == case.expect,
                    "got": got._asdict(),
                    "expect": case.expect._asdict(),
                }
            )


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

    @property
    def seconds(self) -> float | None:
        """Median of the runs, or None if no run completed or a run timed out."""
        if self.timed_out or self.error or not self.runs:
            return None
        return statistics.median(self.runs)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("impl", "case", "meta")}
        return {"seconds": self.seconds, **data}


def measure(impl: str, key: str, args: argparse.Namespace) -> Result:
    python, env = interpreter(REF if impl == "ref" else None)
    cmd = [python, str(SCRIPT), "--impl", impl, "--case", key, "--repeat", str(args.repeat)]
    if args.quick:
        cmd.append("--quick")
    if args.keep_gc:
        cmd.append("--keep-gc")
    result = Result(impl, key)
    worker = Worker(cmd, env)
    try:
        message = worker.next(READY_TIMEOUT)
        if message is None:
            result.error = "worker exited before its input was ready"
        else:
            result.meta = message
            for index in range(args.repeat):
                message = worker.next(args.budget)
                if message is None:
                    result.error = f"worker exited during run {index + 1}"
                    break
                result.runs.append(message["seconds"])
                progress(
                    f"  {impl:4} {key:14} run {index + 1}/{args.repeat}: {message['seconds']:.3f} s"
                )
                if not message["ok"]:
                    result.ok = False
                    result.mismatch = {"got": message["got"], "expect": message["expect"]}
                    break
    except TimeoutError:
        result.timed_out = True
        progress(f"  {impl:4} {key:14} run exceeded {args.budget:g} s: stopped")
    finally:
        code = worker.stop(kill=result.timed_out)
    if code and not result.timed_out and result.error is None and result.ok:
        result.error = f"worker {worker.failure()}"
    if result.error:
        result.ok = False
    return result


class Cells(NamedTuple):
    events_per_s: str
    mb_per_s: str
    seconds: str


def cells(result: Result, events: int, size: int, budget: float) -> Cells:
    if not result.ok:
        return Cells("FAIL", "FAIL", "error" if result.error else "wrong")
    if result.timed_out:
        return Cells(f"<{fmt_rate(events / budget)}", f"<{size / budget / 1e6:.1f}", f">{budget:g}")
    seconds = result.seconds
    assert seconds is not None
    return Cells(fmt_rate(events / seconds), f"{size / seconds / 1e6:.1f}", f"{seconds:.4f}")


def time_bound(result: Result, budget: float) -> tuple[float, bool] | None:
    """(seconds, is a lower bound) of a result, or None if it has no usable time."""
    if not result.ok:
        return None
    if result.timed_out:
        return budget, True
    seconds = result.seconds
    return None if seconds is None else (seconds, False)


def ratio(
    num: tuple[float, bool] | None, den: tuple[float, bool] | None
) -> tuple[float, str] | None:
    """num/den as a value and a relation ("=", ">", "?") given possibly-bounded operands."""
    if num is None or den is None:
        return None
    (n, n_lower), (d, d_lower) = num, den
    if d_lower:
        return n / d, "?" if n_lower else "<"
    return n / d, ">" if n_lower else "="


def show_ratio(value: tuple[float, str] | None) -> str:
    if value is None:
        return "n/a"
    number, relation = value
    prefix = {"=": "", ">": "> ", "<": "< ", "?": "~ "}[relation]
    return f"{prefix}{number:.2f}x"


def drive(args: argparse.Namespace) -> int:
    scale = QUICK if args.quick else FULL
    names = labels(scale)
    keys = [k for k in CASE_KEYS if not args.case or k in args.case]
    results: dict[str, dict[str, Result]] = {key: {} for key in keys}
    for _, key, impl in schedule(1, keys, ("ours", "ref"), rotate=False):
        if impl == "ours":
            progress(f"{names[key]}:")
        results[key][impl] = measure(impl, key, args)

    out = Report()
    any_meta = {impl: r.meta for row in results.values() for impl, r in row.items() if r.meta}
    out.line()
    out.line(
        f"SSE parser throughput: median of {args.repeat} run(s), "
        f"gc {'on' if args.keep_gc else 'off'} while timed, budget {args.budget:g} s per run"
    )
    for impl in ("ours", "ref"):
        meta = any_meta.get(impl, {})
        version, python, module = (meta.get(k, "?") for k in ("version", "python", "module"))
        out.line(f"  {impl:4} {version:8} {python}  {module}")
    out.line()
    checks: list[Check] = []
    rows: list[list[str]] = []
    table: list[dict[str, Any]] = []
    failed = False
    for key in keys:
        ours, ref = results[key]["ours"], results[key]["ref"]
        size = int((ours.meta or ref.meta).get("bytes", 0))
        case_events = _expected_events(key, scale)
        o = cells(ours, case_events, size, args.budget)
        r = cells(ref, case_events, size, args.budget)
        speedup = ratio(time_bound(ref, args.budget), time_bound(ours, args.budget))
        if not ours.ok:
            verdict, passed = "FAIL (ours)", False
        elif not ref.ok:
            verdict, passed = "FAIL (ref)", False
        elif speedup is not None and speedup[0] > 1 and speedup[1] in ("=", ">"):
            verdict, passed = "OK", True
        else:
            verdict, passed = "MISS", False
        failed = failed or not (ours.ok and ref.ok)
        checks.append((f"ours faster than ref on {names[key]}", passed, ""))
        row = [names[key], f"{size / 1e6:.1f}", str(case_events), *o, *r, show_ratio(speedup)]
        rows.append([*row, verdict])
        table.append(
            {
                "key": key,
                "label": names[key],
                "bytes": size,
                "events": case_events,
                "ours": ours.to_json(),
                "ref": ref.to_json(),
                "speedup": None
                if speedup is None
                else {"value": speedup[0], "relation": speedup[1]},
            }
        )
    header = ["input", "MB", "events", "ours ev/s", "ours MB/s", "ours s", "ref ev/s"]
    header += ["ref MB/s", "ref s", "speed-up", "target"]
    out.table(header, rows, {1, 2, 3, 4, 5, 6, 7, 8, 9})
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
        for num_key, den_key, title in pairs:
            if num_key not in results or den_key not in results:
                continue
            value = ratio(
                time_bound(results[num_key][impl], args.budget),
                time_bound(results[den_key][impl], args.budget),
            )
            line = f"{impl:4} {title:32} {show_ratio(value):>9}"
            if impl == "ours":
                passed = value is not None and value[1] in ("=", "<") and value[0] <= TARGET_RATIO
                checks.append((f"ours {title} <= {TARGET_RATIO:g}x", passed, ""))
                line += f"  (target <= {TARGET_RATIO:g}x)  {'OK' if passed else 'MISS'}"
            out.line(line)
            derived.append(
                {
                    "impl": impl,
                    "title": title,
                    "value": None if value is None else value[0],
                    "relation": None if value is None else value[1],
                }
            )
    out.targets(checks)
    report = {
        "scale": scale.__dict__,
        "repeat": args.repeat,
        "budget_seconds": args.budget,
        "gc_during_runs": args.keep_gc,
        "implementations": any_meta,
        "inputs": table,
        "ratios": derived,
        "targets": [{"name": name, "ok": passed} for name, passed, _ in checks],
    }
    out.save(args.json, report)
    return 1 if failed else 0


def _expected_events(key: str, scale: Scale) -> int:
    if key in ("small", "small-crlf"):
        return scale.small_events
    if key == "grouped-lines":
        return scale.groups
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__, "smaller inputs, 1 repeat")
    parser.add_argument(
        "--impl",
        choices=("both", "ours", "ref"),
        default="both",
        help="both (default): run and compare; ours/ref: be a worker and print JSON lines",
    )
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per input (5)")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds allowed for one run (60)"
    )
    parser.add_argument(
        "--case", action="append", choices=CASE_KEYS, help="only this input (repeatable)"
    )
    parser.add_argument(
        "--keep-gc", action="store_true", help="leave the garbage collector on while timing"
    )
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.impl == "both":
        return drive(args)
    worker(
        args.impl, args.case or CASE_KEYS, args.repeat, QUICK if args.quick else FULL, args.keep_gc
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

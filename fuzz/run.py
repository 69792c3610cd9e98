"""
Runs both fuzz targets one after the other for a bounded time and prints what they did.

``python -m fuzz.run --seconds 600`` gives each target half of the time. The seeds are made
afresh from the tests (``fuzz/seeds.py``) into ``.fuzz/seeds/``; what libFuzzer finds worth
keeping goes to ``.fuzz/corpus/`` (kept between runs), a failing input to
``.fuzz/artifacts/``, each target's output to ``.fuzz/logs/``. The exit status is 1 if a
target failed (a crash, a timeout, or too much memory): its input is then in the artifacts
directory, and belongs in ``tests/test_fuzz_regressions.py`` once fixed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from fuzz.seeds import chunked_seeds, parser_seeds, write_seeds

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".fuzz"

# The longest input each target gets: the parser has paths for lines over 4 KiB, the
# decoder a bound of 4 KiB on a chunk-size line.
TARGETS = {"parser": (parser_seeds, 16384), "chunked": (chunked_seeds, 16384)}
_DONE = re.compile(r"^#(\d+)\s+DONE\b.*?exec/s: (\d+)", re.MULTILINE)
_EXECUTED = re.compile(r"^stat::number_of_executed_units: (\d+)", re.MULTILINE)


def run_target(name: str, seconds: int, extra: list[str]) -> tuple[bool, int, float]:
    """Fuzzes one target; returns (passed, inputs tried, seconds taken)."""
    make_seeds, max_len = TARGETS[name]
    seeds = WORK / "seeds" / name
    corpus = WORK / "corpus" / name
    artifacts = WORK / "artifacts"
    logs = WORK / "logs"
    for directory in (corpus, artifacts, logs):
        directory.mkdir(parents=True, exist_ok=True)
    count = write_seeds(seeds, make_seeds())
    log = logs / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "fuzz.target",
        name,
        f"-max_total_time={seconds}",
        f"-max_len={max_len}",
        "-timeout=10",  # one input taking 10 s is a hang
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{name}-",
        *extra,
        str(corpus),
        str(seeds),
    ]
    print(f"== {name}: {count} seeds, {seconds} s: {' '.join(command[2:])}", flush=True)
    started = time.monotonic()
    with log.open("wb") as out:
        status = subprocess.call(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    took = time.monotonic() - started
    text = log.read_text("utf-8", "replace")
    done = _DONE.search(text)
    executed = _EXECUTED.search(text)  # also printed when a target fails
    runs = int(executed.group(1)) if executed else int(done.group(1)) if done else 0
    if done:
        print(done.group(0).strip())
    passed = status == 0 and done is not None
    if not passed:
        print(f"{name} FAILED (exit status {status}); the end of {log}:")
        print("\n".join(text.splitlines()[-40:]))
    print(f"{name}: {runs} inputs in {took:.0f} s, {'no failure' if passed else 'FAILED'}")
    return passed, runs, took


def main() -> int:
    """Parses the arguments, fuzzes each target, prints the totals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="in all, split between targets")
    parser.add_argument("--target", choices=sorted(TARGETS), action="append")
    parser.add_argument("libfuzzer", nargs="*", help="more libFuzzer options, after --")
    args = parser.parse_args()
    targets = args.target or list(TARGETS)
    share = max(1, args.seconds // len(targets))
    results = {name: run_target(name, share, args.libfuzzer) for name in targets}
    print("\ntarget     inputs      seconds  result")
    for name, (passed, runs, took) in results.items():
        print(f"{name:<10} {runs:>10,} {took:>8.0f}  {'ok' if passed else 'FAILED'}")
    total_runs = sum(runs for _, runs, _ in results.values())
    total_time = sum(took for _, _, took in results.values())
    print(f"{'total':<10} {total_runs:>10,} {total_time:>8.0f}")
    return 0 if all(passed for passed, _, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

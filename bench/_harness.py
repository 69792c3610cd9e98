"""
The benchmark harness, driver side; every script in ``bench/`` is a thin layer over it:
interpreters (the project's ``.venv``; the reference and every peer in a venv of its own,
:class:`Venv`, since the reference shares the import name ``ld_eventsource``), workers
(:class:`Worker`, :func:`collect`: subprocesses that report one JSON object a line with
``_worker.emit``), rounds (:func:`schedule` interleaves them, :func:`paired_ratio` takes ratios
within one round), the load server (:class:`LoadServer`) and the report (:class:`Report`:
tables, targets, ``--json`` and ``--markdown``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from _worker import BENCH_DIR, REF_VERSION, REPO_ROOT, SRC_DIR

VENVS_DIR = BENCH_DIR / ".venvs"
SERVER = BENCH_DIR / "_server.py"


def progress(text: str) -> None:
    """A line of progress on stderr (stdout carries the report)."""
    print(text, file=sys.stderr, flush=True)


def arguments(doc: str | None, quick: str) -> argparse.ArgumentParser:
    """The options every benchmark has: ``--quick`` (a smoke run: ``quick``) and ``--json``."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


# --- interpreters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Venv:
    """
    A venv of its own under ``bench/.venvs/<name>`` with ``requirements`` installed; usable
    once ``imports`` import and every ``dist==version`` requirement has that version. The
    requirement ``"aiohttp"`` means the aiohttp of the project's venv (so that async figures
    compare the clients, not two aiohttp releases).
    """

    name: str
    requirements: tuple[str, ...]
    imports: tuple[str, ...] = ()


REF_REQUIREMENTS = (f"launchdarkly-eventsource=={REF_VERSION}", "aiohttp")
REF = Venv(f"ref-{REF_VERSION}", REF_REQUIREMENTS, ("ld_eventsource.async_client", "aiohttp"))
SSE2_REQUIREMENTS = ("aiohttp-sse-client2==0.3.0", "aiohttp")
SSE2 = Venv("aiohttp-sse-client2", SSE2_REQUIREMENTS, ("aiohttp_sse_client2.client", "aiohttp"))
PLOT = Venv("plot", ("matplotlib",), ("matplotlib",))


def clean_env() -> dict[str, str]:
    """The current environment without anything that would change what a child imports."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"):
        env.pop(name, None)
    return env


def our_python() -> tuple[str, dict[str, str]]:
    """The project's ``.venv`` interpreter if there is one, else this one with ``src/``."""
    env = clean_env()
    candidate = REPO_ROOT / ".venv" / "bin" / "python"
    if candidate.exists():
        return str(candidate), env
    env["PYTHONPATH"] = str(SRC_DIR)
    return sys.executable, env


def _output(*cmd: str, env: dict[str, str] | None = None) -> str | None:
    """What ``cmd`` prints, or None if it fails."""
    done = subprocess.run(cmd, env=env or clean_env(), capture_output=True, text=True, check=False)
    return done.stdout.rstrip() if done.returncode == 0 else None


@functools.cache
def _requirements(venv: Venv) -> list[str]:
    python, env = our_python()
    code = "import importlib.metadata as m; print(m.version('aiohttp'))"
    ours = _output(python, "-c", code, env=env)
    pinned = f"aiohttp=={ours}" if ours else "aiohttp>=3.8,<4"
    return [pinned if r == "aiohttp" else r for r in venv.requirements]


def _usable(python: Path, venv: Venv) -> bool:
    checks = [f"import {module}" for module in venv.imports] + [
        f"assert m.version({dist!r}) == {version!r}"
        for dist, _, version in (r.partition("==") for r in _requirements(venv))
        if version
    ]
    return (
        _output(str(python), "-c", "; ".join(["import importlib.metadata as m", *checks]))
        is not None
    )


@functools.cache
def interpreter(venv: Venv | None) -> tuple[str, dict[str, str]]:
    """
    The interpreter and environment of ``venv`` (None: this project's, :func:`our_python`),
    creating the venv and installing its requirements if it is not usable yet.

    :raises RuntimeError: it cannot be made usable
    """
    if venv is None:
        return our_python()
    path = VENVS_DIR / venv.name
    python = path / "bin" / "python"
    if not (python.exists() and _usable(python, venv)):
        requirements = _requirements(venv)
        if not python.exists():
            progress(f"creating venv {path} ...")
            subprocess.run([sys.executable, "-m", "venv", str(path)], env=clean_env(), check=True)
        progress(f"installing {' '.join(requirements)} into {path} ...")
        pip = [str(python), "-m", "pip", "install", "--quiet", *requirements]
        subprocess.run(pip, env=clean_env(), check=False)
        if not _usable(python, venv):
            raise RuntimeError(f"{path}: could not install {' '.join(requirements)}")
    return str(python), clean_env()


# --- workers -----------------------------------------------------------------------------------


class Worker:
    """
    A subprocess that reports with one JSON object a line on stdout (other lines are passed
    over); the last lines of its stderr are kept for :meth:`failure`. ``stdin``: give it a
    pipe, whose closing tells it to stop (the load server).
    """

    def __init__(self, cmd: Sequence[str], env: dict[str, str] | None = None, stdin: bool = False):
        pipe, env = subprocess.PIPE, clean_env() if env is None else env
        stdin_ = pipe if stdin else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            list(cmd), stdin=stdin_, stdout=pipe, stderr=pipe, env=env, text=True
        )
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._ended = False
        self._stderr: collections.deque[str] = collections.deque(maxlen=10)
        self._threads = [
            threading.Thread(target=target, daemon=True) for target in (self._out, self._err)
        ]
        for thread in self._threads:
            thread.start()

    def _err(self) -> None:
        self._stderr.extend(line.rstrip() for line in self.proc.stderr or () if line.strip())

    def _out(self) -> None:
        for line in self.proc.stdout or ():
            with contextlib.suppress(ValueError):
                if line.startswith("{"):
                    self._messages.put(json.loads(line))
        self._messages.put(None)

    def next(self, timeout: float) -> dict[str, Any] | None:
        """
        The next message, or None once the worker has closed its stdout (ended).

        :raises TimeoutError: none within ``timeout`` seconds
        """
        if self._ended:
            return None
        try:
            message = self._messages.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise TimeoutError(f"no message within {timeout:g} s") from None
        self._ended = message is None
        return message

    def stop(self, kill: bool = False, grace: float = 30.0) -> int:
        """Ends the worker (at once if ``kill``, else after ``grace`` s); its exit status."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if not kill:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def failure(self) -> str:
        """Why it failed: its exit status and the last line of its stderr."""
        tail = self._stderr[-1] if self._stderr else "no output"
        return f"exit {self.proc.returncode}: {tail}"


@dataclass
class Outcome:
    """What a worker run produced: its messages, and what went wrong (None if nothing did)."""

    messages: list[dict[str, Any]]
    error: str | None = None
    timed_out: bool = False


def collect(
    cmd: Sequence[str], env: dict[str, str] | None, timeout: float, *, first: float | None = None,
    each: float | None = None, seen: Callable[[dict[str, Any]], object] = lambda message: None,
) -> Outcome:  # fmt: skip
    """
    Runs a worker to its end, ``seen`` called on each message as it comes. It is killed
    (``timed_out``) past ``timeout`` seconds in all, ``first`` seconds before its first message
    or ``each`` seconds between two; ``error`` says why it failed (that, or its exit status).
    """
    worker, out, deadline = Worker(cmd, env), Outcome([]), time.monotonic() + timeout
    try:
        while True:
            wait = (first if not out.messages else each) or timeout
            message = worker.next(min(wait, deadline - time.monotonic()))
            if message is None:
                break
            out.messages.append(message)
            seen(message)
    except TimeoutError:
        out.timed_out, out.error = True, f"over {timeout:g} s"
    if worker.stop(kill=out.timed_out) and not out.timed_out:
        out.error = worker.failure()
    return out


class LoadServer(Worker):
    """The load server, ``_server.py`` (whose docstring has the arguments), until :meth:`stop`."""

    def __init__(self, *args: str, ready_timeout: float = 600.0):
        super().__init__([sys.executable, str(SERVER), *args], stdin=True)
        manifest = self.next(ready_timeout)
        if manifest is None:
            self.stop()
            raise RuntimeError(f"the load server exited before it was ready ({self.failure()})")
        self.ports: list[int] = manifest["ports"]
        self.port = self.ports[0]
        self.cases: dict[str, dict[str, int]] = manifest["cases"]
        self.stats: dict[str, Any] = {}
        """What it reported on its way out (connections, open, cpu), once stopped."""

    def url(self, case: str, port: int | None = None, **query: object) -> str:
        """The URL of ``case`` with a run token of its own (one reading only) and ``query``."""
        query = {"run": uuid.uuid4().hex, **query}
        return f"http://127.0.0.1:{port or self.port}/{case}?{urlencode(query)}"

    def stop(self, kill: bool = False, grace: float = 30.0) -> int:
        """Stops the server and keeps what it reported in :attr:`stats`."""
        if self.proc.stdin is not None and not kill:
            self.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                self.stats = self.next(grace) or {}
        return super().stop(kill, grace)


# --- rounds and ratios -------------------------------------------------------------------------

C = TypeVar("C")
N = TypeVar("N")


def schedule(
    rounds: int, cases: Sequence[C], names: Sequence[N], rotate: bool = True
) -> Iterator[tuple[int, C, N]]:
    """
    Every (round, case, name), round by round and case by case. With ``rotate`` the order of
    the names shifts by one every round and every case, so that none always runs first, or
    right after the same other one.
    """
    for round_index in range(rounds):
        for k, case in enumerate(cases):
            shift = (round_index + k) % len(names) if rotate and names else 0
            for name in [*names[shift:], *names[:shift]]:
                yield round_index, case, name


def paired_ratio(num: Mapping[int, float], den: Mapping[int, float]) -> float | None:
    """The median over rounds of ``num[r] / den[r]`` (values by round), both of one round."""
    ratios = [num[r] / den[r] for r in num if r in den and den[r] > 0]
    return statistics.median(ratios) if ratios else None


def fmt_rate(value: float) -> str:
    """``value`` with a k, M or G suffix."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.3g}"


def fmt_ratio(value: float | None) -> str:
    """``0.52x``, or ``n/a``."""
    return "n/a" if value is None else f"{value:.2f}x"


# --- the report --------------------------------------------------------------------------------

Check = tuple[str, bool, str]
"""A target: what it is, whether it was met, and a detail (may be empty)."""


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int]
) -> list[str]:
    """A Markdown table, the columns in ``right`` right-aligned; then a blank line."""
    align = "|".join("---:" if i in right else "---" for i in range(len(header)))
    lines = ["| " + " | ".join(header) + " |", f"|{align}|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return [*lines, ""]


class Report:
    """
    What a benchmark prints on stdout. A ``markdown`` report is written in Markdown
    (headings, lists) and also kept as such for ``--markdown``; its tables print aligned and
    are kept as Markdown tables. A plain one lists its targets as ``targets: n/m OK``.
    """

    def __init__(self, markdown: bool = False):
        self.markdown = markdown
        self.md: list[str] = []

    def line(self, text: str = "", md: bool = True) -> None:
        """Prints ``text``; kept for the Markdown too unless ``md`` is false."""
        print(text, flush=True)
        if self.markdown and md:
            self.md.append(text)

    def para(self, text: str) -> None:
        """:meth:`line` ``text``, then a blank line."""
        self.line(text)
        self.line()

    def table(
        self, header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()
    ) -> None:
        """The rows under the header, columns aligned (``right``: right-aligned), a rule."""
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        for text in [line(header), "  ".join("-" * w for w in widths), *map(line, rows)]:
            self.line(text, md=False)
        if self.markdown:
            self.md += markdown_table(header, rows, right)

    def targets(self, checks: Sequence[Check], what: str = "") -> None:
        """How many of ``checks`` were met, then the misses (all of them, if Markdown)."""
        title = f"{' ' + what if what else ''}: {sum(c[1] for c in checks)}/{len(checks)} OK"
        if self.markdown:
            self.para(f"### Targets{title}")
        else:
            self.line()
            self.line(f"targets{title}")
        for name, passed, detail in checks:
            text = f"{name}{': ' + detail if detail else ''}"
            if self.markdown:
                self.line(f"- {'OK  ' if passed else 'MISS'} {text}")
            elif not passed:
                self.line(f"  MISS: {text}")
        if self.markdown:
            self.line()

    def save(self, json_path: str | None, data: Any, markdown_path: str | None = None) -> None:
        """Writes ``data`` as JSON to ``json_path``, and the Markdown to ``markdown_path``."""
        for path, text in (
            (json_path, json.dumps(data, indent=2)),
            (markdown_path, "\n".join(self.md)),
        ):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(text + "\n")
                progress(f"wrote {path}")


def machine() -> dict[str, str]:
    """The CPU model, the number of cores, the interpreter and the platform."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        info = []
    cpu = next((x.split(":", 1)[1].strip() for x in info if x.startswith("model name")), "?")
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": python,
        "platform": platform.platform(),
    }


def src_state() -> dict[str, Any]:
    """The commit and the uncommitted changes under src/ that a run measured."""
    commit = _output("git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD")
    changed = _output("git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src") or ""
    return {"commit": commit or "?", "uncommitted": [line[3:] for line in changed.splitlines()]}

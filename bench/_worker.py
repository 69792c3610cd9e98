"""
The worker side of the benchmark harness (the driver side is ``_harness.py``): what a process
that runs one implementation needs. Only cheap standard modules, since a throughput worker
starts afresh for every run and its peak RSS is part of what is measured.

A worker reports to its driver with :func:`emit`: one JSON object a line on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SRC_DIR = REPO_ROOT / "src"
REF_VERSION = "1.7.4"
"""The launchdarkly-eventsource release measured as the reference."""


def emit(message: dict[str, Any]) -> None:
    """Sends ``message`` to the driver: one line of JSON on stdout, flushed."""
    print(json.dumps(message), flush=True)


def use_ld_eventsource(kind: str) -> dict[str, str]:
    """
    Imports ``ld_eventsource`` for a worker of ``kind`` ``"ours"`` (this project, from
    ``src/``, put first on the path) or ``"ref"`` (launchdarkly-eventsource
    :data:`REF_VERSION`, installed in the running venv; the two share the import name), and
    makes sure it is the one asked for. Returns where it came from and its version.
    """
    if kind == "ours":
        sys.path.insert(0, str(SRC_DIR))
    import ld_eventsource
    from ld_eventsource.version import VERSION

    origin = Path(ld_eventsource.__file__).resolve()
    wrong = kind == "ref" and VERSION != REF_VERSION
    if wrong or (kind == "ours") != origin.is_relative_to(SRC_DIR):
        raise RuntimeError(
            f"a worker of kind {kind!r} imported ld_eventsource {VERSION} from {origin}"
        )
    return {"module": str(origin.parent), "version": VERSION}


def describe(dists: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The interpreter, and the installed version of each of ``dists`` ("?" if absent)."""
    import importlib.metadata
    import platform

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    versions = {dist: version(dist) for dist in dists}
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return {"python": python, "executable": sys.executable, "versions": versions}


def raise_nofile(wanted: int) -> int:
    """Raises the soft RLIMIT_NOFILE towards ``wanted`` (up to the hard limit); the new soft."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def status_kb(name: str) -> int:
    """A figure of ``/proc/self/status`` in kB: ``VmRSS`` (resident now), ``VmHWM`` (peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/self/status")


def peak_rss_mb() -> float:
    """
    The peak RSS of this process in MB. Not ``ru_maxrss``: Linux keeps at ``exec`` the peak
    of the process that spawned this one, when larger, so a worker would report the
    driver's RSS; ``VmHWM`` belongs to the new image only.
    """
    try:
        return status_kb("VmHWM") / 1024
    except (OSError, RuntimeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

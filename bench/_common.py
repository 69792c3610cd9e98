"""
Helpers shared by the benchmark scripts: where things are, which interpreter runs which
implementation, and the private virtual environments that hold reference packages.

Reference packages (``launchdarkly-eventsource==1.7.4`` in particular) use the same import
name as this project, so they live in their own venvs under ``bench/.venvs/`` and never in
the project's ``.venv``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BENCH_DIR",
    "REF_VERSION",
    "REPO_ROOT",
    "SRC_DIR",
    "VENVS_DIR",
    "clean_env",
    "ensure_venv",
    "import_ld_eventsource",
    "our_python",
    "print_targets",
    "venv_python",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SRC_DIR = REPO_ROOT / "src"
VENVS_DIR = BENCH_DIR / ".venvs"
REF_VERSION = "1.7.4"
"""The launchdarkly-eventsource release measured as the reference."""


def venv_python(venv: Path) -> Path:
    """The interpreter of the venv at ``venv``."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def clean_env() -> dict[str, str]:
    """The current environment without anything that would change what a child imports."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"):
        env.pop(name, None)
    return env


def our_python() -> tuple[str, dict[str, str]]:
    """
    The interpreter and environment that run this project's package: the project's
    ``.venv`` if there is one, else the current interpreter with ``src/`` on the path.
    """
    env = clean_env()
    candidate = venv_python(REPO_ROOT / ".venv")
    if candidate.exists():
        return str(candidate), env
    env["PYTHONPATH"] = str(SRC_DIR)
    return sys.executable, env


def _succeeds(cmd: list[str]) -> bool:
    result = subprocess.run(
        cmd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return result.returncode == 0


def ensure_venv(name: str, requirements: list[str], probe: str) -> Path:
    """
    Makes sure ``bench/.venvs/<name>`` exists with ``requirements`` installed, and returns its
    interpreter.

    :param probe: Python code that exits successfully when the venv is usable (for example,
        imports the package and checks its version); nothing is installed if it already does.
    """
    venv = VENVS_DIR / name
    python = venv_python(venv)
    if python.exists() and _succeeds([str(python), "-c", probe]):
        return python
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        print(f"creating venv {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], env=clean_env(), check=True)
    print(f"installing {' '.join(requirements)} into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
        env=clean_env(),
        check=True,
    )
    if not _succeeds([str(python), "-c", probe]):
        raise RuntimeError(f"{venv}: installed {requirements}, but the probe still fails")
    return python


def import_ld_eventsource(ours: bool, label: str) -> tuple[Path, str]:
    """
    Imports ``ld_eventsource``, this project's from ``src/`` if ``ours``, else the reference
    installed in the running venv, and makes sure it is the one asked for: the directory it
    came from and its distribution's version. ``label`` names the run in the error.
    """
    import importlib.metadata

    if ours:
        sys.path.insert(0, str(SRC_DIR))
    import ld_eventsource

    origin = Path(ld_eventsource.__file__).resolve()
    version = importlib.metadata.version("launchdarkly-eventsource")
    is_ours = origin.is_relative_to(SRC_DIR)
    if is_ours != ours or (not ours and version != REF_VERSION):
        raise RuntimeError(f"{label} imported ld_eventsource {version} from {origin}")
    return origin.parent, version


def print_targets(checks: Sequence[tuple[str, bool]], what: str = "") -> None:
    """Prints how many of ``checks`` (name, passed) passed, then each one missed."""
    hits = sum(passed for _, passed in checks)
    print()
    print(f"targets{' ' + what if what else ''}: {hits}/{len(checks)} OK")
    for name, passed in checks:
        if not passed:
            print(f"  MISS: {name}")

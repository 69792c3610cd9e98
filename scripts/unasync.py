"""
Generates the sync client from the async one, so that the two drivers cannot drift apart.

``src/ld_eventsource/async_client.py`` is the source; ``sse_client.py`` is written from it by
the replacements below (each a :class:`Phrase`, replaced as written, or a :class:`Pattern`, a
regular expression), then formatted with ruff. Every replacement must apply at least once: one
that no longer matches anything is an error, since the text it was written for has changed
and the generated client may now be wrong. ``--check`` (run by ``make lint``) also fails if
the committed ``sse_client.py`` differs from what the source generates.

``--source`` and ``--target`` name other files (the tests use them); ruff is the one of this
interpreter's environment, else the first on ``PATH``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "ld_eventsource" / "async_client.py"
TARGET = ROOT / "src" / "ld_eventsource" / "sse_client.py"

HEADER = (
    "# Generated from async_client.py by scripts/unasync.py: edit that file, then run\n"
    "# `make unasync`. `make lint` checks that the two are in step.\n"
)


@dataclass(frozen=True)
class Phrase:
    """Text replaced exactly as written (documentation that differs between the clients)."""

    old: str
    new: str

    def apply(self, text: str) -> tuple[str, int]:
        """``text`` with every occurrence replaced, and how many there were."""
        return text.replace(self.old, self.new), text.count(self.old)


@dataclass(frozen=True)
class Pattern:
    """A regular expression (names and keywords, ``\\b``-bounded), replaced by :func:`re.subn`."""

    regex: str
    new: str

    def apply(self, text: str) -> tuple[str, int]:
        """``text`` with every match replaced, and how many there were."""
        return re.subn(self.regex, self.new, text)


Replacement = Phrase | Pattern

# Whole phrases first (documentation that differs), then names, then keywords.
REPLACEMENTS: list[Replacement] = [
    Phrase(
        '"""The asyncio client, :class:`AsyncSSEClient` (needs the ``async`` extra: aiohttp)."""',
        '"""The blocking client, :class:`SSEClient`."""',
    ),
    Phrase("stream, for asyncio.", "stream that blocks the calling thread."),
    Phrase("it connects with ``aiohttp``", "it connects with ``urllib3``"),
    Phrase("another task: a read pending there", "another thread: a read blocked there"),
    Phrase("safe to read from another task", "safe to read from another thread"),
    Phrase("async_connect_strategy", "connect_strategy"),
    Phrase("_async_io", "_sync_io"),
    Pattern(r"\bAsyncConnectionClient\b", "ConnectionClient"),
    Pattern(r"\bAsyncConnectionResult\b", "ConnectionResult"),
    Pattern(r"\bAsyncConnectStrategy\b", "ConnectStrategy"),
    Pattern(r"\bAsyncSSEClient\b", "SSEClient"),
    Pattern(r"\bAsyncIterator\b", "Iterator"),
    Pattern(r"\b__aenter__\b", "__enter__"),
    Pattern(r"\b__aexit__\b", "__exit__"),
    Pattern(r"\basync def\b", "def"),
    Pattern(r"\bawait ", ""),
    Pattern(r"\b__anext__\b", "__next__"),
    Pattern(r"\bStopAsyncIteration\b", "StopIteration"),
]


class UnasyncError(Exception):
    """The sync client cannot be generated: a replacement is unused, or ruff fails."""


def find_ruff() -> str:
    """
    The ruff executable: the one installed with this interpreter (its venv's ``bin``, or the
    scripts directory of its installation), else the first on ``PATH``.

    :raises UnasyncError: there is none
    """
    for directory in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        found = shutil.which("ruff", path=str(directory))
        if found:
            return found
    found = shutil.which("ruff")
    if found is None:
        raise UnasyncError("ruff not found next to the interpreter nor on PATH")
    return found


def convert(text: str, replacements: Sequence[Replacement] = REPLACEMENTS) -> str:
    """
    ``text`` (the async source) with every replacement applied in order, and the header.

    :raises UnasyncError: a replacement matched nothing
    """
    unused = []
    for replacement in replacements:
        text, count = replacement.apply(text)
        if not count:
            unused.append(replacement)
    if unused:
        names = "\n".join(f"  {r!r}" for r in unused)
        raise UnasyncError(f"replacements that match nothing in the source:\n{names}")
    return HEADER + text


def generate(source: Path = SOURCE, replacements: Sequence[Replacement] = REPLACEMENTS) -> str:
    """
    The text of the sync client as ``source`` generates it, its imports sorted and formatted
    by ruff with the settings of the project (whatever file the text is written to).
    """
    text = convert(source.read_text(encoding="utf-8"), replacements)
    ruff = find_ruff()
    for command in (
        [ruff, "check", "--fix-only", "--select", "I", "--stdin-filename", str(TARGET), "-"],
        [ruff, "format", "--stdin-filename", str(TARGET), "-"],
    ):
        done = subprocess.run(
            command, input=text, capture_output=True, text=True, check=False, cwd=ROOT
        )
        if done.returncode != 0:
            raise UnasyncError(f"{' '.join(command[1:3])} failed: {done.stderr.strip()}")
        text = done.stdout
    return text


def check(
    source: Path = SOURCE,
    target: Path = TARGET,
    replacements: Sequence[Replacement] = REPLACEMENTS,
) -> list[str]:
    """The lines of a diff from ``target`` to what ``source`` generates; empty if in step."""
    generated = generate(source, replacements)
    current = target.read_text(encoding="utf-8") if target.exists() else ""
    return list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            generated.splitlines(keepends=True),
            str(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target),
            "generated",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Writes (or with ``--check`` compares) the generated sync client."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the target is stale")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the async client")
    parser.add_argument("--target", type=Path, default=TARGET, help="the sync client")
    args = parser.parse_args(argv)
    try:
        if not args.check:
            args.target.write_text(generate(args.source), encoding="utf-8")
            return 0
        diff = check(args.source, args.target)
    except UnasyncError as e:
        print(f"unasync: {e}", file=sys.stderr)
        return 1
    if diff:
        sys.stdout.writelines(diff)
        print(f"{args.target.name} is out of date: run `make unasync`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

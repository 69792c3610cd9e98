"""
Generates the sync client from the async one, so that the two drivers cannot drift apart.

``src/ld_eventsource/async_client.py`` is the source; ``sse_client.py`` is written from it
by plain token replacement, then formatted with ruff. ``--check`` (run by ``make lint``)
fails if the committed ``sse_client.py`` differs from what the source generates.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "ld_eventsource" / "async_client.py"
TARGET = ROOT / "src" / "ld_eventsource" / "sse_client.py"

HEADER = (
    "# Generated from async_client.py by scripts/unasync.py: edit that file, then run\n"
    "# `make unasync`. `make lint` checks that the two are in step.\n"
)

# Whole phrases first (documentation that differs), then names, then keywords.
REPLACEMENTS: list[tuple[str, str]] = [
    (
        '"""The asyncio client, :class:`AsyncSSEClient` (needs the ``async`` extra: aiohttp)."""',
        '"""The blocking client, :class:`SSEClient`."""',
    ),
    ("stream, for asyncio.", "stream that blocks the calling thread."),
    ("it connects with ``aiohttp``", "it connects with ``urllib3``"),
    ("another task: a read pending there", "another thread: a read blocked there"),
    ("async_connect_strategy", "connect_strategy"),
    ("_async_io", "_sync_io"),
    (r"\bAsyncConnectionClient\b", "ConnectionClient"),
    (r"\bAsyncConnectionResult\b", "ConnectionResult"),
    (r"\bAsyncConnectStrategy\b", "ConnectStrategy"),
    (r"\bAsyncSSEClient\b", "SSEClient"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\banext\(", "next("),
]


def generate() -> str:
    """The text of the sync client as the async source generates it."""
    text = SOURCE.read_text(encoding="utf-8")
    for pattern, replacement in REPLACEMENTS:
        if pattern.startswith(('"""', "stream,", "it connects", "another task")):
            if pattern not in text:
                sys.exit(f"unasync: phrase not found in {SOURCE.name}: {pattern!r}")
            text = text.replace(pattern, replacement)
        else:
            text = re.sub(pattern, replacement, text)
    text = HEADER + text
    ruff = str(Path(sys.executable).parent / "ruff")
    for command in (
        [ruff, "check", "--fix-only", "--select", "I", "--stdin-filename", str(TARGET), "-"],
        [ruff, "format", "--stdin-filename", str(TARGET), "-"],
    ):
        text = subprocess.run(
            command, input=text, capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    return text


def main() -> int:
    """Writes (or with ``--check`` compares) the generated sync client."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if sse_client.py is stale")
    args = parser.parse_args()
    generated = generate()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != generated:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                str(TARGET.relative_to(ROOT)),
                "generated",
            )
            sys.stdout.writelines(diff)
            print("sse_client.py is out of date: run `make unasync`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(generated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""
``make demo``: a short tour of the ``sse`` tool against its own test server, ``sse serve``.

It needs no external server and no network: everything runs on 127.0.0.1. It shows

1. a price feed served with a forced disconnect every three events, tailed by ``sse``, which
   notices each drop, reconnects with ``Last-Event-ID`` and resumes after the last event it
   received: every event exactly once, in order;
2. an LLM-style stream: a POST request with a JSON body and an ``Authorization`` header,
   answered with one token per event, assembled into text by ``sse --field``.

It checks what it shows (exit status 1 if an event was lost or repeated) and ends by itself
in well under 20 seconds.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

__all__ = ["main"]

HERE: Final = Path(__file__).resolve().parent.parent
FEEDS: Final = HERE / "demo"
_BIN = Path(sys.executable).parent
SSE: Final = (
    [str(_BIN / "sse")] if (_BIN / "sse").exists() else [sys.executable, "-m", "ld_eventsource"]
)
_COLOR = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


class _Console:
    """Our stdout, shared by the relays: whole lines, and pieces of a line that is still
    being written (tokens); a whole line that comes in the middle of such a line goes below
    it, and the line goes on under its prefix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: str | None = None  # the prefix of the unfinished line, if one is
        self._broken = False  # a whole line went below an unfinished one, ending it

    def line(self, text: str) -> None:
        with self._lock:
            if self._open is not None:
                sys.stdout.write("\n")
                self._open = None
                self._broken = True
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def piece(self, prefix: str, text: str) -> None:
        with self._lock:
            for part in text.splitlines(keepends=True):
                broken, self._broken = self._broken, False
                if broken and part == "\n":
                    continue  # that line was already ended
                if self._open is None:
                    sys.stdout.write(prefix)
                    self._open = prefix
                sys.stdout.write(part)
                if part.endswith("\n"):
                    self._open = None
            sys.stdout.flush()

    def end_piece(self) -> None:
        with self._lock:
            self._broken = False
            if self._open is not None:
                sys.stdout.write("\n")
                sys.stdout.flush()
                self._open = None


_console = _Console()


def _style(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if _COLOR else text


def say(text: str = "") -> None:
    """One line of the tour's own narration."""
    _console.line(text)


def _relay(stream: IO[bytes], prefix: str, lines: list[str]) -> None:
    """Prints each line of a child's output with a prefix, as it arrives, and keeps it."""
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        lines.append(line)
        _console.line(f"{prefix}{line}")


def _relay_text(stream: IO[bytes], prefix: str, lines: list[str]) -> None:
    """Prints a child's output piece by piece as it arrives (text without line breaks, such
    as the tokens that ``--format text`` joins), and keeps its lines."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces: list[str] = []
    while raw := os.read(stream.fileno(), 4096):
        piece = decoder.decode(raw)
        pieces.append(piece)
        _console.piece(prefix, piece)
    _console.end_piece()
    lines.extend("".join(pieces).splitlines())


def _shown(arg: str) -> str:
    """A feed path as the reader would type it from the repository's top."""
    path = Path(arg)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return arg


def _command(args: Sequence[str]) -> str:
    return "$ sse " + " ".join(shlex.quote(_shown(a)) for a in args)


class Server:
    """``sse serve`` in a child process; its log lines are relayed as ``server |``."""

    def __init__(self, *args: str) -> None:
        say("  " + _style(_command(["serve", *args]), "1"))
        self.process = subprocess.Popen(
            [*SSE, "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.url = self.process.stdout.readline().decode().strip()
        if not self.url.startswith("http://"):
            self.process.kill()
            self.process.wait()
            error = self.process.stderr.read().decode(errors="replace")
            raise SystemExit(f"demo: sse serve did not start: {error}")
        self.log: list[str] = []
        self._thread = threading.Thread(
            target=_relay,
            args=(self.process.stderr, _style("  server | ", "2"), self.log),
            daemon=True,
        )
        self._thread.start()
        say(f"  serving at {self.url}")

    def stop(self) -> None:
        """Stops the server (as Ctrl-C would) and waits for its last log lines."""
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._thread.join(timeout=2)
        assert self.process.stdout is not None
        self.process.stdout.close()


def run_client(
    args: Sequence[str], timeout: float, *, live_text: bool = False
) -> tuple[int, list[str], list[str]]:
    """Runs ``sse ARGS`` with its output relayed live (line by line, or piece by piece with
    ``live_text``); returns the exit status and the lines of stdout and stderr."""
    say("  " + _style(_command(args), "1"))
    process = subprocess.Popen(
        [*SSE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    out: list[str] = []
    err: list[str] = []
    threads = [
        threading.Thread(
            target=_relay_text if live_text else _relay,
            args=(process.stdout, "  sse    | ", out),
            daemon=True,
        ),
        threading.Thread(
            target=_relay, args=(process.stderr, _style("  sse    ! ", "33"), err), daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    try:
        status = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        status = process.wait()
    for thread in threads:
        thread.join(timeout=2)
    process.stdout.close()
    process.stderr.close()
    return status, out, err


def resume_tour() -> bool:
    """A feed with a drop every three events, read to the end with nothing lost."""
    say(_style("1. Nothing lost across a disconnect", "1;36"))
    say("   A test server streams nine price updates (ids 1 to 9), and cuts every connection")
    say("   after three events, as a flaky network would. sse notices each drop, reconnects")
    say("   with Last-Event-ID, and the server resumes after the last event sse received.")
    say()
    server = Server(str(FEEDS / "prices.sse"), "--interval", "0.25", "--drop-after", "3")
    try:
        status, out, _ = run_client(
            ["--retry-delay", "0.3", "--count", "9", server.url], timeout=20
        )
    finally:
        server.stop()
    ids = [int(m.group(1)) for line in out if (m := re.match(r"^\S+ id=(\d+)$", line))]
    connections = sum(1 for line in server.log if "-> 200" in line)
    say()
    if status == 0 and ids == list(range(1, 10)):
        say(
            _style("   OK", "1;32")
            + f": sse got ids {ids[0]} to {ids[-1]}, each exactly once and in order, over"
            f" {connections} connections."
        )
        say()
        return True
    say(_style("   FAILED", "1;31") + f": exit status {status}, ids received {ids}")
    return False


def llm_tour() -> bool:
    """A POST request answered token by token, assembled into text with --field."""
    say(_style("2. An LLM-style stream: POST a request, assemble the tokens", "1;36"))
    say("   The server answers with one JSON chunk per token, then [DONE], as chat APIs do.")
    say("   --field picks the token out of each event, --format text joins them into one text,")
    say("   and --until stops at the [DONE] marker.")
    say()
    server = Server(str(FEEDS / "tokens.jsonl"), "--interval", "0.08")
    request = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    try:
        status, out, _ = run_client(
            [
                "--json",
                json.dumps(request),
                "-H",
                "Authorization: Bearer demo-token",
                "--field",
                "choices.0.delta.content",
                "--format",
                "text",
                "--until",
                "[DONE]",
                server.url,
            ],
            timeout=20,
            live_text=True,
        )
    finally:
        server.stop()
    text = "\n".join(out).strip()
    posted = any(" POST " in line for line in server.log)
    say()
    if status == 0 and text.endswith("together.") and posted:
        say(_style("   OK", "1;32") + f": the POST request was answered; sse assembled: {text!r}")
        say()
        return True
    say(_style("   FAILED", "1;31") + f": exit status {status}, text {text!r}, POST seen {posted}")
    return False


def main() -> int:
    """Runs the tour; 0 if everything it showed was as expected."""
    started = time.monotonic()
    say(_style("make demo: the sse tool against its own test server, on 127.0.0.1", "1"))
    say("Lines marked 'server |' are logged by sse serve, 'sse |' is what sse prints for you,")
    say("and 'sse !' is what it says on standard error.")
    say()
    ok = resume_tour() and llm_tour()
    elapsed = time.monotonic() - started
    if ok:
        say(f"Done in {elapsed:.1f} s. Next: `sse --help`, `sse serve --help`, and docs/cli.md.")
        return 0
    say(f"The demo failed after {elapsed:.1f} s (see above).")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

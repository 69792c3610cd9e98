"""
The entry point of ``sse`` (and of ``python -m ld_eventsource``): :func:`main` parses the
command line, runs, and turns what happened into an exit status.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _silence_stdout() -> None:
    """
    The reader of standard output went away: point the descriptor at /dev/null, so that
    the interpreter's last flush at exit cannot fail (and print) too.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _serve(argv: list[str]) -> int:
    import importlib

    name = "ld_eventsource._cli.serve"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        print("sse: error: 'sse serve' is not part of this installation", file=sys.stderr)
        return 2
    return int(module.main(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """
    Runs ``sse`` with ``argv`` (``sys.argv[1:]`` if ``None``) and returns the exit status:
    0 done, 1 the stream failed for good, 2 usage error, 130 interrupted.
    ``sse serve ...`` runs the test server command instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "serve":
            return _serve(args[1:])
        from ld_eventsource._cli.args import UsageError, parse_options

        try:
            opts = parse_options(args, stdin=sys.stdin.buffer if sys.stdin else None)
            # Imported only now: a usage error or --help needs neither urllib3 nor the client.
            from ld_eventsource._cli.run import Streams, run

            streams = Streams(
                stdout=sys.stdout.buffer,
                stderr=sys.stderr,
                stdout_terminal=_isatty(sys.stdout),
                stderr_terminal=_isatty(sys.stderr),
                no_color=bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb",
                output_gone=_silence_stdout,
            )
            return run(opts, streams)
        except UsageError as e:
            print(f"sse: error: {e}", file=sys.stderr)
            return 2
    except SystemExit as e:  # --help and --version
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BrokenPipeError:  # sse --help | head -1
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130

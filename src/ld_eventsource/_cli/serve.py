"""
``sse serve``: serve an SSE stream on a loopback port, from a feed file, from stdin, or from
a built-in sample, with the faults a client must survive.

A thin command over :mod:`ld_eventsource.testing` (:class:`~ld_eventsource.testing.Feed`,
:func:`~ld_eventsource.testing.feed_handler`): it parses options, loads the feed, prints the
URL as the first line of stdout and logs connections to stderr. Documented in docs/serve.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import Final

from ld_eventsource.testing import (
    Conn,
    Feed,
    FeedError,
    FeedEvent,
    FeedFormat,
    Handler,
    SSEServer,
    feed_handler,
    load_feed,
    parse_feed,
    sequence_handler,
    status_handler,
)

__all__ = ["build_parser", "main"]

PROG: Final = "sse serve"
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
"""The server could not run: the address cannot be listened on."""
EXIT_USAGE: Final = 2
"""Bad options or a bad feed (unreadable, malformed)."""
EXIT_SIGINT: Final = 130
EXIT_SIGTERM: Final = 143
SAMPLE_INTERVAL: Final = 1.0
"""Seconds between the events of the built-in sample feed unless --interval says."""
STDIN: Final = "<stdin>"
_READ_SIZE: Final = 65536
_WAIT: Final = 0.5
"""How often the main thread looks at the stop flag (signals interrupt the wait anyway)."""

DESCRIPTION: Final = """\
Serve a Server-Sent Events stream on a loopback address, for trying and testing clients.
The URL is printed as the first line of stdout; connections are logged to stderr. Any
method and any path get the stream (a request body is read and ignored).

FEED is a file in the SSE format, or JSON lines (one object per line with data, event,
id, retry, comment; chosen by the .jsonl / .ndjson extension or --feed-format), or - to
read stdin as it comes. Without FEED: an endless sample, event n with id n and data n,
one a second.

Events without an id get their position (1, 2, 3, ...); a client reconnecting with
Last-Event-ID gets the feed from the event after it (an unknown id: from the start)."""

EPILOG: Final = """\
The server runs until it is stopped. Exit status: 130 on Ctrl-C (SIGINT), 143 on SIGTERM;
2 for bad options or a bad feed (FILE:LINE: reason, on stderr); 1 if the address cannot be
listened on."""


def _number(kind: Callable[[str], float], low: float, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low:g}: {text}")
        return value

    return parse


def _positive_int(text: str) -> int:
    return int(_number(int, 0, strict=True)(text))


def _port(text: str) -> int:
    value = int(_number(int, 0, strict=False)(text))
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535: {text}")
    return value


def _status(text: str) -> tuple[int, int]:
    code_text, colon, count_text = text.partition(":")
    try:
        code = int(code_text)
        count = int(count_text) if colon else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CODE or CODE:K, got {text!r}") from None
    if not 200 <= code <= 599:
        raise argparse.ArgumentTypeError(f"the status must be 200 to 599, got {code}")
    if count < 1:
        raise argparse.ArgumentTypeError(f"K must be >= 1, got {count}")
    return code, count


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c in text for c in "\r\n") or " " in name:
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name, value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sse serve`` (its help is the reference of the options)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "feed", nargs="?", metavar="FEED", help="feed file, or - for stdin (default: sample)"
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    add("--port", type=_port, default=0, help="port (default: 0, a free one)")
    add(
        "--feed-format",
        choices=("sse", "jsonl"),
        help="format of FEED (default: jsonl for .jsonl/.ndjson files, else sse)",
    )
    add(
        "--interval",
        type=_number(float, 0, strict=False),
        metavar="S",
        help=f"seconds between events (default: 0; {SAMPLE_INTERVAL:g} for the sample)",
    )
    add(
        "--heartbeat",
        type=_number(float, 0, strict=True),
        metavar="S",
        help="send a ':heartbeat' comment after S seconds without writing",
    )
    add(
        "--retry",
        type=_number(int, 0, strict=False),
        metavar="MS",
        help="send 'retry: MS' at the start of every connection",
    )
    add("--loop", action="store_true", help="repeat the feed endlessly (events numbered 1, 2, ...)")
    add(
        "--keep-open",
        action="store_true",
        help="when the feed runs out, keep the connection open instead of ending it",
    )
    add(
        "--drop-after",
        type=_positive_int,
        metavar="N",
        help="drop each connection after N events",
    )
    add(
        "--drop-mode",
        choices=("close", "end", "abort"),
        default="close",
        help="how --drop-after drops: close mid-body, end in order, abort with a reset "
        "(default: %(default)s)",
    )
    add(
        "--status",
        type=_status,
        metavar="CODE[:K]",
        help="answer the first K requests (default 1) with status CODE and a text body",
    )
    add("--chunk-size", type=_positive_int, metavar="N", help="write in pieces of N bytes")
    add(
        "--drip",
        type=_number(float, 0, strict=True),
        metavar="BPS",
        help="write at most BPS bytes per second (pieces of --chunk-size, else 1 byte)",
    )
    add("--crlf", action="store_true", help="end lines with CRLF")
    add("--bom", action="store_true", help="start every stream with a UTF-8 BOM")
    add(
        "--close-delimited",
        action="store_true",
        help="no chunked framing: the body ends when the connection closes",
    )
    add(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra response header (repeatable), e.g. 'Access-Control-Allow-Origin: *'",
    )
    return parser


class _FeedRejectedError(Exception):
    """The feed cannot be served; the message is the one line to print."""


def _fill(feed: Feed, events: Iterable[FeedEvent], source: str) -> None:
    """Append ``events`` to ``feed`` and finish it; any mistake as one line with its place."""
    try:
        for event in events:
            try:
                feed.append(event)
            except ValueError as exc:
                raise _FeedRejectedError(f"{source}:{event.line}: {exc}") from None
        feed.finish()
    except FeedError as exc:
        raise _FeedRejectedError(str(exc)) from None
    except ValueError as exc:  # finish(): a looped feed without events
        raise _FeedRejectedError(f"{source}: {exc}") from None


def _stdin_lines() -> Iterator[bytes]:
    """
    Lines of fd 0 as they arrive. Read with os.read, not sys.stdin: a thread blocked in the
    buffered reader would hold its lock while the interpreter shuts down.
    """
    pending = b""
    while chunk := os.read(0, _READ_SIZE):
        pending += chunk
        end = pending.rfind(b"\n") + 1
        if end:
            yield pending[:end]
            pending = pending[end:]
    if pending:
        yield pending


class _Log:
    """Timestamped lines on stderr, one write each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}\n"
        # A closed stderr (ValueError) or a reader gone (BrokenPipeError) stops the log,
        # not the server.
        with self._lock, contextlib.suppress(BrokenPipeError, ValueError):
            sys.stderr.write(line)
            sys.stderr.flush()


def _status_handler(code: int, count: int, log: _Log) -> Handler:
    answer = status_handler(code, body=f"{PROG}: status {code} (--status)\n")
    served = 0
    lock = threading.Lock()

    def handler(conn: Conn) -> None:
        nonlocal served
        with lock:
            served += 1
            which = served
        request = conn.request
        host, port = request.client_address
        log(f"{host}:{port} {request.method} {request.path} -> {code} (--status, {which}/{count})")
        answer(conn)

    return handler


def _logged(handler: Handler, log: _Log) -> Handler:
    """``handler``, with what it raises (a bug, not a client leaving) logged as it happens."""

    def run(conn: Conn) -> None:
        try:
            handler(conn)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as exc:
            log(f"error: {exc!r}")
            raise

    return run


def _make_feed(args: argparse.Namespace) -> tuple[Feed, Callable[[], None] | None]:
    """The feed to serve, and for stdin the function that fills it (run in a thread)."""
    if args.feed is None:
        return Feed.counter(), None
    feed = Feed(loop=args.loop, live=True)
    if args.feed == "-":
        fmt: FeedFormat = "jsonl" if args.feed_format == "jsonl" else "sse"
        return feed, lambda: _fill(feed, parse_feed(_stdin_lines(), fmt, source=STDIN), STDIN)
    try:
        events = load_feed(args.feed, args.feed_format)
    except FeedError as exc:
        raise _FeedRejectedError(str(exc)) from None
    except OSError as exc:
        raise _FeedRejectedError(f"cannot read {args.feed}: {exc.strerror or exc}") from None
    _fill(feed, events, args.feed)
    return feed, None


def main(argv: Sequence[str]) -> int:
    """Run ``sse serve`` with ``argv`` (the words after ``serve``); return the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the server runs (say, loading a large feed)
        return EXIT_SIGINT


def _main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
        if args.feed_format is not None and args.feed is None:
            parser.error("--feed-format needs a FEED (a file, or - for stdin)")
    except SystemExit as exc:  # --help, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    log = _Log()
    try:
        feed, fill = _make_feed(args)
    except _FeedRejectedError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    interval = args.interval
    if interval is None:
        interval = SAMPLE_INTERVAL if args.feed is None else 0.0
    handler = feed_handler(
        feed,
        interval=interval,
        heartbeat=args.heartbeat,
        retry=args.retry,
        drop_after=args.drop_after,
        drop=args.drop_mode,
        keep_open=args.keep_open,
        chunked=not args.close_delimited,
        chunk_size=args.chunk_size,
        drip=args.drip,
        crlf=args.crlf,
        bom=args.bom,
        headers=args.header,
        log=log,
    )
    if args.status is not None:
        code, count = args.status
        handler = sequence_handler(*[_status_handler(code, count, log)] * count, handler)
    try:
        server = SSEServer(_logged(handler, log), host=args.host, port=args.port)
    except OSError as exc:
        print(
            f"{PROG}: cannot listen on {args.host} port {args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return _serve(server, fill)


def _serve(server: SSEServer, fill: Callable[[], None] | None) -> int:
    stop = threading.Event()
    status = [EXIT_OK]

    def stop_with(code: int) -> None:
        status[0] = code
        stop.set()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop_with(EXIT_SIGTERM)

    def fill_feed() -> None:
        assert fill is not None
        try:
            fill()
        except _FeedRejectedError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
            stop_with(EXIT_USAGE)
        except OSError as exc:
            print(f"{PROG}: cannot read {STDIN}: {exc.strerror or exc}", file=sys.stderr)
            stop_with(EXIT_USAGE)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        server.start()
        print(f"{server.url}/", flush=True)
        if fill is not None:
            threading.Thread(target=fill_feed, name="sse-serve-stdin", daemon=True).start()
        while not stop.wait(_WAIT):
            pass
    except KeyboardInterrupt:
        status[0] = EXIT_SIGINT
    finally:
        # A second Ctrl-C must not turn a quick, orderly stop into a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.close(raise_errors=False)
        signal.signal(signal.SIGTERM, previous)
    return status[0]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

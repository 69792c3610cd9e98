"""
The command line of ``sse``: the argument parser, and :func:`parse_options`, which turns
``argv`` into checked :class:`Options` or raises :class:`UsageError` (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Final, NoReturn
from urllib.parse import urlsplit

from ld_eventsource._cli.formats import FORMATS, FieldPath
from ld_eventsource.version import VERSION

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Options", "UsageError", "build_parser", "parse_options"]

DEFAULT_MAX_ATTEMPTS: Final = 5
"""Failures in a row after which ``sse`` gives up, unless ``--max-attempts`` or ``--forever``."""

# RFC 9110, 5.6.2: the characters of a header name.
_TCHAR: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# Headers that the library always sets itself; -H cannot change them.
_FIXED_HEADERS: Final = ("accept", "cache-control")


class UsageError(Exception):
    """A wrong argument or an unusable input file, found before connecting: exit status 2."""


@dataclass(frozen=True)
class Options:
    """Everything the command line asked for, checked."""

    url: str
    method: str
    headers: dict[str, str]
    body: bytes | None
    last_event_id: str | None
    state_file: str | None
    connect_timeout: float | None
    read_timeout: float | None
    retry_delay: float
    max_attempts: int | None
    """Failures in a row before giving up; ``None`` with ``--forever``."""
    reconnect: bool
    """``False`` with ``--no-reconnect``."""
    events: frozenset[str]
    """The event types to show; empty: all."""
    comments: bool
    count: int | None
    timeout: float | None
    until: str | None
    format: str
    field: FieldPath | None
    stats: bool
    verbose: bool
    quiet: bool
    color: str
    insecure: bool
    cacert: str | None
    proxy: str | None = None
    """``--proxy``: ``None`` from the environment, ``""`` none."""
    warnings: tuple[str, ...] = ()
    """Things worth saying about the command line that do not stop it."""

    @property
    def reconnect_on_end(self) -> bool:
        """
        Whether an orderly end of the stream is followed by a reconnection: for ``GET`` (the
        SSE way); a stream answering any other request (a POST to an LLM API, say) has ended
        its answer, and asking again would start a new one.
        """
        return self.reconnect and self.method == "GET"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see sse --help)")


def _seconds(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if math.isnan(value) or math.isinf(value):
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
        if value < minimum or (value == minimum and not inclusive):
            relation = "at least" if inclusive else "more than"
            raise argparse.ArgumentTypeError(f"must be {relation} {minimum:g} seconds: {text!r}")
        return value

    return convert


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


_USAGE: Final = """sse [options] URL
       sse serve [options]      (a test SSE server: see sse serve --help)"""

_DESCRIPTION: Final = """\
Read a Server-Sent Events stream and print each event as it arrives. sse reconnects
after a failure (sending Last-Event-ID, so the server can resume the stream), and
exits when a limit (-n, --timeout, --until) is reached or the stream fails for good."""

_EPILOG: Final = f"""\
reconnection:
  An attempt that fails, or a stream that breaks before anything arrived on it,
  is a failure; sse gives up after --max-attempts failures in a row (default
  {DEFAULT_MAX_ATTEMPTS}), waiting between attempts --retry-delay seconds, doubled each time
  (at most 30 s), or the stream's retry: value. HTTP 4xx (except 408 and 429),
  a redirect that cannot be followed and a response that is not an event stream
  end the run at once; HTTP 204 means "no more events": status 0. A GET stream
  that the server ends in order is read again; a stream answering another method
  (-X, -d, --json) is over when the server ends it.

exit status:
  0    done: -n, --timeout or --until reached, the server ended the stream and no
       reconnection is wanted, or the reader of the output went away
  1    the stream failed for good (or --timeout passed before any connection)
  2    usage error, or an unusable input file (-d @FILE, --state-file, --cacert)
  130  interrupted (Ctrl-C)

examples:
  sse https://example.com/stream
  sse -n 10 --format json https://example.com/stream | jq -r .data
  sse --state-file feed.state -e update https://example.com/feed
  sse --json '{{"model": "m", "stream": true, "messages": [...]}}' \\
      -H "Authorization: Bearer $TOKEN" --until '[DONE]' \\
      --field choices.0.delta.content --format text https://api.example.com/v1/chat

The documentation of every option is in docs/cli.md of launchdarkly-eventsource.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sse`` (its ``error`` raises :class:`UsageError`)."""
    parser = _Parser(
        prog="sse",
        usage=_USAGE,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("url", metavar="URL", help="the stream (http:// is assumed if absent)")
    parser.add_argument(
        "--version", action="version", version=f"sse (launchdarkly-eventsource) {VERSION}"
    )

    request = parser.add_argument_group("request")
    request.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable; a name given twice sends both values, joined by ', ')",
    )
    request.add_argument(
        "-X",
        "--method",
        metavar="METHOD",
        help="the request method (default GET, or POST with a body)",
    )
    body = request.add_mutually_exclusive_group()
    body.add_argument(
        "-d",
        "--data",
        metavar="TEXT|@FILE|@-",
        help="the request body: TEXT, the bytes of FILE, or standard input (@-); "
        "sent again on every reconnection",
    )
    body.add_argument(
        "--json",
        metavar="JSON|@FILE|@-",
        help="a JSON request body (checked); Content-Type: application/json unless -H sets one",
    )
    request.add_argument(
        "--last-event-id", metavar="ID", help="the Last-Event-ID of the first connection"
    )
    request.add_argument(
        "--state-file",
        metavar="PATH",
        help="resume from the last event id saved in PATH, and save it there after each event",
    )
    request.add_argument(
        "--connect-timeout",
        type=_seconds(0, inclusive=False),
        metavar="S",
        help="seconds to wait for a TCP/TLS connection (default 10)",
    )
    request.add_argument(
        "--read-timeout",
        type=_seconds(0, inclusive=False),
        metavar="S",
        help="drop a connection on which nothing arrived for S seconds (then reconnect)",
    )
    request.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    request.add_argument(
        "--cacert",
        metavar="FILE",
        help="verify the server's certificate with the CAs in FILE (PEM)",
    )
    request.add_argument(
        "--proxy",
        metavar="URL",
        help="go through the HTTP proxy at URL (http://[USER:PASSWORD@]HOST:PORT); '' for"
        " none (default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY)",
    )

    retry = parser.add_argument_group("reconnection")
    retry.add_argument(
        "--retry-delay",
        type=_seconds(0, inclusive=True),
        default=1.0,
        metavar="S",
        help="the base delay before reconnecting (default 1)",
    )
    limits = retry.add_mutually_exclusive_group()
    limits.add_argument(
        "--max-attempts",
        type=_positive_int,
        metavar="N",
        help=f"give up after N failures in a row (default {DEFAULT_MAX_ATTEMPTS})",
    )
    limits.add_argument(
        "--forever", action="store_true", help="never give up on a failure that may pass"
    )
    limits.add_argument(
        "--no-reconnect",
        action="store_true",
        help="never reconnect: the first end (status 0) or failure (status 1) ends the run",
    )

    select = parser.add_argument_group("selection and limits")
    select.add_argument(
        "-e",
        "--event",
        action="append",
        default=[],
        metavar="TYPE",
        help="show only events of this type (repeatable)",
    )
    select.add_argument("--comments", action="store_true", help="show comment lines too")
    select.add_argument(
        "-n", "--count", type=_positive_int, metavar="N", help="exit after N events are shown"
    )
    select.add_argument(
        "--timeout", type=_seconds(0, inclusive=False), metavar="S", help="exit after S seconds"
    )
    select.add_argument(
        "--until",
        metavar="DATA",
        help="exit at the event whose data is DATA (such as [DONE]); that event is not shown",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--format",
        choices=FORMATS,
        default="pretty",
        help="pretty (default): for people; json: one object per line; data: the data, "
        "one event per line; text: the data of each event, nothing between them; "
        "raw: the SSE wire form",
    )
    output.add_argument(
        "--field",
        metavar="PATH",
        help="parse the data as JSON and show the value at PATH (e.g. choices.0.delta.content)",
    )
    output.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colors in pretty output (auto: on a terminal, unless NO_COLOR is set "
        "or TERM is dumb)",
    )
    output.add_argument(
        "--stats", action="store_true", help="at exit, print counters on standard error"
    )
    talk = output.add_mutually_exclusive_group()
    talk.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each attempt, response and failure on standard error",
    )
    talk.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no notices or warnings on standard error: errors only",
    )
    return parser


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` as ``(name, value)``; raises :class:`UsageError` if malformed."""
    name, colon, value = text.partition(":")
    if not colon:
        raise UsageError(f"-H {text!r}: expected 'Name: value'")
    if not name or not set(name) <= _TCHAR:
        raise UsageError(f"-H {text!r}: {name!r} is not a valid header name")
    value = value.strip(" \t")
    if any(c in value for c in "\r\n\0"):
        raise UsageError(f"-H {name}: the value contains a line break or NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise UsageError(f"-H {name}: the value must be ISO-8859-1 (Latin-1) text") from None
    return name, value


def _read_source(option: str, text: str, stdin: IO[bytes] | None) -> bytes:
    """``TEXT``, ``@FILE`` or ``@-`` (standard input), as bytes."""
    if not text.startswith("@"):
        return text.encode("utf-8")
    path = text[1:]
    if path == "-":
        if stdin is None:
            raise UsageError(f"{option} @-: no standard input")
        try:
            return stdin.read()
        except OSError as e:
            raise UsageError(f"{option} @-: cannot read standard input: {e}") from None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"{option} @{path}: cannot read: {e.strerror or e}") from None


def _check_url(text: str) -> str:
    url = text if "://" in text else "http://" + text
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as e:
        raise UsageError(f"bad URL {text!r}: {e}") from None
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        raise UsageError(f"bad URL {text!r}: no host")
    del port
    return url


def parse_options(argv: Sequence[str], stdin: IO[bytes] | None = None) -> Options:
    """
    Parses and checks the command line. ``--help`` and ``--version`` print and raise
    ``SystemExit(0)``; anything wrong raises :class:`UsageError`.

    :param stdin: where ``-d @-`` and ``--json @-`` read the body
    """
    ns = build_parser().parse_args(list(argv))
    warnings: list[str] = []

    headers: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for text in ns.header:
        name, value = parse_header(text)
        key = name.lower()
        if key in _FIXED_HEADERS:
            warnings.append(f"-H {name}: ignored, sse always sends its own {name} header")
            continue
        if key in spelled:
            headers[spelled[key]] = f"{headers[spelled[key]]}, {value}"
        else:
            spelled[key] = name
            headers[name] = value

    body: bytes | None = None
    if ns.data is not None:
        body = _read_source("-d", ns.data, stdin)
    elif ns.json is not None:
        body = _read_source("--json", ns.json, stdin)
        try:
            json.loads(body)
        except ValueError as e:
            raise UsageError(f"--json: not valid JSON: {e}") from None
        except RecursionError:
            raise UsageError("--json: nested too deeply to be checked") from None
        if "content-type" not in spelled:
            headers["Content-Type"] = "application/json"

    method = ns.method.upper() if ns.method is not None else ("GET" if body is None else "POST")

    field = None
    if ns.field is not None:
        try:
            field = FieldPath.parse(ns.field)
        except ValueError as e:
            raise UsageError(f"--field: {e}") from None
        if ns.format == "raw":
            raise UsageError("--field cannot be used with --format raw (the wire form)")
    if ns.comments and ns.format in ("data", "text"):
        raise UsageError(f"--comments: --format {ns.format} shows no comments")

    return Options(
        url=_check_url(ns.url),
        method=method,
        headers=headers,
        body=body,
        last_event_id=ns.last_event_id,
        state_file=ns.state_file,
        connect_timeout=ns.connect_timeout,
        read_timeout=ns.read_timeout,
        retry_delay=ns.retry_delay,
        max_attempts=None
        if ns.forever
        else (1 if ns.no_reconnect else (ns.max_attempts or DEFAULT_MAX_ATTEMPTS)),
        reconnect=not ns.no_reconnect,
        events=frozenset(ns.event),
        comments=ns.comments,
        count=ns.count,
        timeout=ns.timeout,
        until=ns.until,
        format=ns.format,
        field=field,
        stats=ns.stats,
        verbose=ns.verbose,
        quiet=ns.quiet,
        color=ns.color,
        insecure=ns.insecure,
        cacert=ns.cacert,
        proxy=ns.proxy,
        warnings=tuple(warnings),
    )

"""
What ``sse`` says on standard error: errors, warnings, connection notices, the ``-v`` log,
the ``--stats`` line, and :func:`describe`, which names a failure in one short phrase.
"""

from __future__ import annotations

import http
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, TextIO

from ld_eventsource.errors import (
    EventTooLargeError,
    HTTPContentTypeError,
    HTTPStatusError,
    StreamTimeoutError,
)
from ld_eventsource.stats import ClientStats

__all__ = ["Reporter", "Stats", "causes", "describe", "status_text"]


def status_text(status: int) -> str:
    """``404`` as ``HTTP 404 Not Found``."""
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def causes(error: BaseException) -> list[BaseException]:
    """
    ``error`` and what caused it, outermost first: its ``__cause__`` or ``__context__``,
    and the exceptions it wraps in its arguments (as urllib3's errors do). Bounded, as such
    chains can loop.
    """
    chain: list[BaseException] = []
    todo = [error]
    while todo and len(chain) < 10:
        current = todo.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        cause = current.__cause__ or current.__context__
        if cause is not None:
            todo.append(cause)
    return chain


def describe(error: BaseException) -> str:
    """A failure of the stream in a short phrase, such as ``connection refused``."""
    if isinstance(error, HTTPStatusError):
        if 300 <= error.status < 400:
            return f"{status_text(error.status)}: a redirect that could not be followed"
        return status_text(error.status)
    if isinstance(error, HTTPContentTypeError):
        status = "a response" if error.status is None else status_text(error.status)
        if not error.content_type:
            return f"not an event stream: {status} with no Content-Type"
        return f"not an event stream: {status} with Content-Type {error.content_type}"
    if isinstance(error, (StreamTimeoutError, EventTooLargeError)):
        return str(error)
    chain = causes(error)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message or cause.reason}"
    for cause in chain:
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
    names = {type(cause).__name__ for cause in chain}
    os_error = next((c for c in chain if isinstance(c, OSError) and c.strerror), None)
    if "NameResolutionError" in names or any(c.__class__.__name__ == "gaierror" for c in chain):
        reason = os_error.strerror if os_error is not None else "unknown host"
        return f"cannot resolve the host name: {reason}"
    if "ConnectTimeoutError" in names and os_error is None:
        return "timed out while connecting"
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, ConnectionResetError):
        return "connection reset by the server"
    if os_error is not None:
        return os_error.strerror.lower() if os_error.strerror else str(os_error)
    if "IncompleteRead" in names or "ChunkedEncodingError" in names:
        return f"the response was cut short ({error})"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass
class Stats:
    """The counters of one run, as ``--stats`` prints them (:meth:`of` the client's)."""

    events: int = 0
    comments: int = 0
    bytes: int = 0
    attempts: int = 0
    connections: int = 0
    faults: int = 0
    started: float = field(default_factory=monotonic)

    @classmethod
    def of(cls, stats: ClientStats, started: float) -> Stats:
        """The counters of a client (its :attr:`.SSEClient.stats`), for a run from ``started``."""
        return cls(
            events=stats.events,
            comments=stats.comments,
            bytes=stats.bytes_received,
            attempts=stats.connection_attempts,
            connections=stats.connections,
            faults=stats.errors,
            started=started,
        )

    def line(self, now: float | None = None) -> str:
        """``events=... comments=... ...``: the keys are stable, more may be added."""
        elapsed = max((monotonic() if now is None else now) - self.started, 0.0)
        rate = self.events / elapsed if elapsed > 0 else 0.0
        return (
            f"events={self.events} comments={self.comments} bytes={self.bytes} "
            f"attempts={self.attempts} connections={self.connections} "
            f"reconnects={max(self.connections - 1, 0)} faults={self.faults} "
            f"elapsed={elapsed:.3f}s events/s={rate:.1f}"
        )


class Reporter:
    """
    Writes to standard error: errors always; warnings unless ``quiet``; connection notices
    when standard error is a terminal (and neither ``quiet`` nor ``verbose``); the log only
    when ``verbose``.
    """

    def __init__(self, stream: TextIO, *, verbose: bool, quiet: bool, terminal: bool):
        self._stream = stream
        self.verbose = verbose
        """Whether the ``-v`` log is on."""
        self._quiet = quiet
        self._notices = terminal and not quiet and not verbose

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass  # standard error is gone: nothing else can be told either

    def error(self, message: str) -> None:
        """The reason the run failed."""
        self._write(f"sse: error: {message}")

    def warning(self, message: str) -> None:
        """Something went wrong, and the run goes on."""
        if not self._quiet:
            self._write(f"sse: warning: {message}")

    def notice(self, message: str) -> None:
        """Connection state, for a person watching."""
        if self._notices:
            self._write(f"sse: {message}")

    def log(self, line: str) -> None:
        """A line of the ``-v`` log."""
        if self.verbose:
            self._write(line)

    def log_headers(self, prefix: str, headers: Mapping[str, Any] | None) -> None:
        """Each header as ``{prefix} Name: value`` in the ``-v`` log."""
        if self.verbose and headers:
            for name, value in headers.items():
                self._write(f"{prefix} {name}: {value}")

    def stats(self, stats: Stats) -> None:
        """The ``--stats`` line."""
        self._write(f"sse: stats: {stats.line()}")

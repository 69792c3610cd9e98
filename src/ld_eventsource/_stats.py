"""
The counters behind :class:`.ClientStats`: plain attributes that a client updates as it goes,
and the one rule that names the kind of a failure.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from ld_eventsource.errors import (
    EventTooLargeError,
    HTTPContentTypeError,
    HTTPProtocolError,
    HTTPStatusError,
)
from ld_eventsource.stats import FAILURE_KINDS, ClientStats, State

__all__ = ["ClientLogger", "Counters", "failure_kind"]


def failure_kind(error: BaseException | None) -> str:
    """The :data:`.FAILURE_KINDS` key of a failure (``None``: the server ended the stream)."""
    if error is None:
        return "ended"
    if isinstance(error, HTTPStatusError):
        return "http_status"
    if isinstance(error, HTTPContentTypeError):
        return "content_type"
    if isinstance(error, EventTooLargeError):
        return "size_limit"
    if isinstance(error, HTTPProtocolError):
        return "protocol"
    # StreamTimeoutError is a TimeoutError; the transports' own timeouts are classes named
    # TimeoutError too (asyncio's before Python 3.11, urllib3's, under aiohttp's and
    # urllib3's connect and read timeouts), but for urllib3's NewConnectionError, a
    # ConnectTimeoutError for history's sake whatever stopped the connection.
    names = {cls.__name__ for cls in type(error).__mro__}
    if "TimeoutError" in names and "NewConnectionError" not in names:
        return "timeout"
    return "network"


_NO_FAILURES: dict[str, int] = dict.fromkeys(FAILURE_KINDS, 0)
"""The failures of a client that has had none: never modified (:meth:`Counters.failed`)."""


class Counters:
    """
    The raw counters of one client, plain attributes that the client updates as it goes
    (the events and comments are the parser's); :meth:`snapshot` makes a :class:`ClientStats`.
    """

    __slots__ = (
        "attempts",
        "byte_at",
        "bytes",
        "connections",
        "event_at",
        "failures",
        "last_failure",
        "phase",
    )

    def __init__(self) -> None:
        self.phase: State = "idle"
        """The state when not connected nor closed: idle, connecting or waiting."""
        self.attempts = 0
        self.connections = 0
        # Shared by every client until its first failure (most long-lived streams have few).
        self.failures: dict[str, int] = _NO_FAILURES
        self.last_failure: str | None = None
        self.bytes = 0
        self.byte_at: float | None = None
        self.event_at: float | None = None

    def failed(self, error: BaseException | None, phase: State) -> None:
        """Counts a failed attempt or an ended stream; the client is now in ``phase``."""
        kind = failure_kind(error)
        failures = self.failures
        if failures is _NO_FAILURES:
            failures = self.failures = dict(_NO_FAILURES)
        failures[kind] += 1
        self.last_failure = kind
        self.phase = phase

    def snapshot(
        self,
        *,
        state: State,
        events: int,
        comments: int,
        retry_delay: float,
        last_event_id: str | None,
    ) -> ClientStats:
        """The snapshot, with what the client adds."""
        # One reading of each clock, to place the monotonic times on the wall clock.
        offset = time.time() - time.monotonic()
        event_at, byte_at = self.event_at, self.byte_at
        return ClientStats(
            state=state,
            connection_attempts=self.attempts,
            connections=self.connections,
            failures=MappingProxyType(dict(self.failures)),
            events=events,
            comments=comments,
            bytes_received=self.bytes,
            last_event_at=event_at,
            last_event_time=None if event_at is None else event_at + offset,
            last_byte_at=byte_at,
            last_byte_time=None if byte_at is None else byte_at + offset,
            retry_delay=retry_delay,
            last_event_id=last_event_id,
            last_failure=self.last_failure,
        )


class ClientLogger(logging.Logger):
    """
    The caller's logger as one client writes to it: each record it makes carries the
    client's stats as ``record.sse`` (:meth:`.ClientStats.as_dict`), built only for a record
    that is logged. Everything else is the caller's logger's: its level, its filters and
    handlers (each record is handled by it), its name.
    """

    def __init__(self, logger: logging.Logger, stats: Callable[[], dict[str, Any]]):
        super().__init__(logger.name)
        self.parent = logger
        # A weak reference: the client holds this logger, which must not keep it alive.
        self._stats = weakref.WeakMethod(stats)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging.Logger names)
        # Asked of the caller's logger every time: this one is in no manager, whose caches
        # setLevel() clears.
        assert self.parent is not None
        return self.parent.isEnabledFor(level)

    def getEffectiveLevel(self) -> int:  # noqa: N802
        assert self.parent is not None
        return self.parent.getEffectiveLevel()

    def makeRecord(self, *args: Any, **kwargs: Any) -> logging.LogRecord:  # noqa: N802
        record = super().makeRecord(*args, **kwargs)
        stats = self._stats()
        record.sse = stats() if stats is not None else {}
        return record

    def handle(self, record: logging.LogRecord) -> None:
        assert self.parent is not None
        self.parent.handle(record)

"""
:class:`.ClientStats`, a snapshot of what a client has done: its state, its connections and
their failures, what it received and when. Read it as :attr:`.SSEClient.stats` or
:attr:`.AsyncSSEClient.stats`.

The clients keep plain counters as they go (per chunk and per connection, none per event that
costs anything to speak of) and make a snapshot only when asked, so reading it often is cheap
and not reading it costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

# FAILURE_KINDS, STATES and State are importable too; ClientStats documents their values.
__all__ = ["ClientStats"]

State = Literal["idle", "connecting", "open", "waiting", "closed"]
"""The values of :attr:`ClientStats.state`."""

STATES: Final[tuple[State, ...]] = ("idle", "connecting", "open", "waiting", "closed")
"""Every ``State``, in the order of a connection's life."""

FAILURE_KINDS: Final = (
    "http_status",
    "content_type",
    "network",
    "timeout",
    "protocol",
    "size_limit",
    "ended",
)
"""
The keys of :attr:`ClientStats.failures`, one for each way a connection attempt fails or an
open stream ends:

* ``http_status``: a status that is not a stream (:class:`.HTTPStatusError`, 204 included);
* ``content_type``: not ``text/event-stream`` (:class:`.HTTPContentTypeError`);
* ``network``: the connection could not be made, or broke (refused, reset, DNS, TLS, ...);
* ``timeout``: no byte within the read timeout, or no connection within the connect timeout;
* ``protocol``: a response that breaks HTTP (:class:`.HTTPProtocolError`);
* ``size_limit``: an event over ``max_event_size`` (:class:`.EventTooLargeError`);
* ``ended``: the server ended the stream in an orderly way (``Fault(None)``).
"""


@dataclass(frozen=True, slots=True)
class ClientStats:
    """
    What a client has done since it was created, as of one moment (a snapshot: it does not
    change afterwards). Times are ``None`` until the thing they time has happened.

    Every count only grows; take two snapshots and subtract to get rates.
    """

    state: State
    """
    ``"idle"`` (not started, or stopped by the error strategy: reading starts it again),
    ``"connecting"`` (a connection attempt in progress), ``"open"`` (connected),
    ``"waiting"`` (disconnected, a reconnection due after :attr:`retry_delay`) or
    ``"closed"`` (for good).
    """
    connection_attempts: int
    """Connection attempts started (each one after the retry delay, if any)."""
    connections: int
    """Attempts that connected: a response that is an event stream."""
    failures: Mapping[str, int]
    """
    Failed attempts and ended streams, by kind, every kind present (0 if none):
    ``http_status`` (:class:`.HTTPStatusError`, 204 included), ``content_type``
    (:class:`.HTTPContentTypeError`), ``network`` (refused, reset, DNS, TLS, ...),
    ``timeout`` (the read or the connect timeout), ``protocol``
    (:class:`.HTTPProtocolError`), ``size_limit`` (:class:`.EventTooLargeError`) and
    ``ended`` (the server ended the stream in an orderly way). A stream dropped by
    ``interrupt()`` or ``close()`` is none of them.
    """
    events: int
    """Events received (parsed from the stream), whether or not read from the client yet."""
    comments: int
    """Comment lines received (the usual keep-alives)."""
    bytes_received: int
    """Bytes of the event stream received (after undoing a content coding)."""
    last_event_at: float | None
    """When the bytes that completed the last event arrived, on :func:`time.monotonic`."""
    last_event_time: float | None
    """The same moment as :attr:`last_event_at`, on :func:`time.time` (seconds since the epoch)."""
    last_byte_at: float | None
    """When the last bytes of the stream arrived, on :func:`time.monotonic`."""
    last_byte_time: float | None
    """The same moment as :attr:`last_byte_at`, on :func:`time.time`."""
    retry_delay: float
    """The delay before the next reconnection, in seconds (0 until something failed)."""
    last_event_id: str | None
    """The id that the next connection sends as ``Last-Event-ID``."""
    last_failure: str | None
    """The kind (a key of :attr:`failures`) of the last failure, ``None`` before any."""

    @property
    def reconnects(self) -> int:
        """Connections after the first one."""
        return max(self.connections - 1, 0)

    @property
    def errors(self) -> int:
        """The failures that were errors: all but the streams the server ended in order."""
        return sum(count for kind, count in self.failures.items() if kind != "ended")

    def as_dict(self) -> dict[str, Any]:
        """
        The fields and :attr:`reconnects` and :attr:`errors` as a plain ``dict`` (with
        ``failures`` a ``dict`` too), as log records carry it (``record.sse``).
        """
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["failures"] = dict(self.failures)
        out["reconnects"] = self.reconnects
        out["errors"] = self.errors
        return out

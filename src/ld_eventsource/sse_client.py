# Generated from async_client.py by scripts/unasync.py: edit that file, then run
# `make unasync`. `make lint` checks that the two are in step.
"""The blocking client, :class:`SSEClient`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, cast

from ld_eventsource import _validate
from ld_eventsource._common import null_logger, resolve_connect
from ld_eventsource._parser import (
    DEFAULT_MAX_EVENT_SIZE,
    NO_ITEMS,
    IdChange,
    ItemIterator,
    RetryChange,
    SSEParser,
)
from ld_eventsource._reconnect import ReconnectPolicy
from ld_eventsource._stats import ClientLogger, Counters
from ld_eventsource._sync_io import Wakeup
from ld_eventsource.actions import Action, Comment, Event, Fault, Start
from ld_eventsource.config.connect_strategy import (
    ConnectionClient,
    ConnectionResult,
    ConnectStrategy,
)
from ld_eventsource.config.error_strategy import ErrorStrategy
from ld_eventsource.config.retry_delay_strategy import RetryDelayStrategy

# Re-exported, not used here: launchdarkly-eventsource 1.7.4's sse_client (which is generated
# from this file) offered these names, and code imports them from there (see
# docs/migration.md). ``X as X`` marks a re-export for mypy --strict users.
from ld_eventsource.errors import ExceptionWithHeaders as ExceptionWithHeaders  # noqa: PLC0414
from ld_eventsource.errors import Headers as Headers  # noqa: PLC0414
from ld_eventsource.errors import HTTPContentTypeError as HTTPContentTypeError  # noqa: PLC0414
from ld_eventsource.errors import HTTPStatusError as HTTPStatusError  # noqa: PLC0414
from ld_eventsource.stats import ClientStats, State

__all__ = ["SSEClient"]

# The strategies are immutable (apply() returns the next one), so every client without its
# own can share these.
_DEFAULT_RETRY_DELAY_STRATEGY = RetryDelayStrategy.default()
_DEFAULT_ERROR_STRATEGY = ErrorStrategy.always_fail()

# What _try_start returns for a connection that nobody will see announced: it saves making a
# Start, and the connection's headers (which may be built on demand).
_UNANNOUNCED = Start(None)

_monotonic = time.monotonic


class SSEClient:
    """
    A client for a Server-Sent Events stream that blocks the calling thread.

    Create it, then read :attr:`events` (events only) or :attr:`all` (events, comments,
    connections and failures). Reading starts the stream; :meth:`start` does it explicitly.

    By default it connects with ``urllib3`` (see :meth:`.ConnectStrategy.http`). After a
    failure or the end of the stream, what happens next is up to ``error_strategy``: by
    default the error is raised (an orderly end of stream just ends the iteration), and reading
    again reconnects. With a continuing strategy the client reconnects by itself, after a delay
    that starts at ``initial_retry_delay`` (or the stream's ``retry:``), grows with
    ``retry_delay_strategy`` and goes back to the start once a connection has stayed up for
    ``retry_delay_reset_threshold`` seconds. Each reconnection sends ``Last-Event-ID``.

    :param connect: the stream URL, or a :class:`.ConnectStrategy`
    :param initial_retry_delay: the base delay before reconnecting, in seconds
    :param retry_delay_strategy: how the delay grows; :meth:`.RetryDelayStrategy.default`
        (doubling, capped at 30 s, with jitter) if ``None``
    :param retry_delay_reset_threshold: how long, in seconds, a connection must stay up for
        the delay and the error strategy to start over
    :param error_strategy: what to do after a failure; :meth:`.ErrorStrategy.always_fail`
        if ``None``
    :param last_event_id: the ``Last-Event-ID`` of the first connection, to resume a stream
    :param logger: where to log; nothing is logged if ``None``. Each record it gets from the
        client carries the client's :attr:`stats` as ``record.sse`` (a ``dict``)
    :param url: another name for ``connect``, as some examples write it
    :param max_event_size: the bound, in bytes, of one event; a larger one ends the
        connection with :class:`.EventTooLargeError`
    """

    # One per stream: the client's own attributes in slots. ``__dict__`` stays, made only
    # when something sets another attribute (code and tests replace methods of an instance,
    # e.g. ``client.close = ...``). Weak references are for the logger's stats
    # (_stats.ClientLogger).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_backlog",
        "_client",
        "_closed",
        "_conn",
        "_counters",
        "_logger",
        "_parser",
        "_policy",
        "_stop_after_interrupt",
        "_wake",
    )

    def __init__(
        self,
        connect: str | ConnectStrategy | None = None,
        initial_retry_delay: float = 1,
        retry_delay_strategy: RetryDelayStrategy | None = None,
        retry_delay_reset_threshold: float = 60,
        error_strategy: ErrorStrategy | None = None,
        last_event_id: str | None = None,
        logger: logging.Logger | None = None,
        *,
        url: str | ConnectStrategy | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ):
        # Every argument is checked, and every default filled in, here and only here.
        strategy = resolve_connect(connect, url, ConnectStrategy, ConnectStrategy.http)
        self._counters = Counters()
        # The caller's logger gets every record with the client's stats (record.sse); the
        # default one writes nothing, so needs none. (Anything else that logs, such as a
        # LoggerAdapter, is used as it is.)
        if logger is None:
            logger = null_logger()
        elif isinstance(logger, logging.Logger):
            logger = ClientLogger(logger, self._stats_dict)
        self._logger = logger
        last_event_id = _validate.instance("last_event_id", last_event_id, str, None)
        # One parser for all the connections, reset for each one.
        self._parser = SSEParser(max_event_size=max_event_size, last_event_id=last_event_id)
        self._policy = ReconnectPolicy(
            initial_retry_delay=_validate.seconds("initial_retry_delay", initial_retry_delay),
            retry_delay_strategy=_validate.instance(
                "retry_delay_strategy",
                retry_delay_strategy,
                RetryDelayStrategy,
                _DEFAULT_RETRY_DELAY_STRATEGY,
            ),
            retry_delay_reset_threshold=_validate.seconds(
                "retry_delay_reset_threshold", retry_delay_reset_threshold
            ),
            error_strategy=_validate.instance(
                "error_strategy", error_strategy, ErrorStrategy, _DEFAULT_ERROR_STRATEGY
            ),
            last_event_id=last_event_id,
            logger=logger,
        )
        self._client: ConnectionClient = strategy.create_client(logger)
        self._conn: ConnectionResult | None = None
        self._backlog: ItemIterator = NO_ITEMS  # parsed items not yet handed out
        self._stop_after_interrupt = False
        self._closed = False
        # Ends a reconnection delay at once when close() sets it; made by the first delay,
        # as most clients never wait for one.
        self._wake: Wakeup | None = None

    def start(self) -> None:
        """
        Connects, unless the stream is already active.

        After a failure it first waits for the retry delay. If the connection fails and the
        error strategy says to fail, the error is raised (:class:`.HTTPStatusError`,
        :class:`.HTTPContentTypeError`, or a network error); if it says to continue,
        ``start()`` keeps trying.

        :raises RuntimeError: the client was closed
        """
        if self._closed:
            raise RuntimeError("the client is closed")
        self._try_start(faults=False, announce=False)

    def close(self) -> None:
        """
        Closes the client for good, and its connection.

        Safe to call from another thread: a read blocked there returns at once, and the
        iterators end. Reading afterwards ends at once, never reconnecting.
        """
        self._closed = True
        wake = self._wake
        if wake is not None:
            wake.set()
        self._drop()
        self._client.close()

    def interrupt(self) -> None:
        """
        Drops the current connection, if any, as if the server had ended the stream.

        Unlike :meth:`close`, the client stays usable: reading on (or :meth:`start`)
        reconnects, after the retry delay, sending ``Last-Event-ID``.
        """
        if self._conn is not None:
            # Decided before the connection drops, so that a reader woken by the drop
            # finds the decision made.
            self._counters.phase = "waiting"
            stop = self._stop_after_interrupt = not self._policy.should_retry(None)
            if stop:
                self._counters.phase = "idle"
            self._drop()

    @property
    def all(self) -> Iterator[Action]:
        """
        Everything the stream does: :class:`.Start` on each connection (with its response
        headers), :class:`.Event` and :class:`.Comment` as they arrive, :class:`.Fault` with
        the error on each failure, and ``Fault(None)`` when the server ends the stream.

        Iterating starts or restarts the stream as needed. Breaking out of the loop and
        iterating again later goes on where it stopped, losing nothing.
        """
        return self._read(events_only=False)

    @property
    def events(self) -> Iterator[Event]:
        """
        The events of the stream, as :class:`.Event` objects (nothing else).

        Iterating starts or restarts the stream as needed.
        """
        return cast(Iterator[Event], self._read(events_only=True))

    @property
    def next_retry_delay(self) -> float:
        """
        The delay, in seconds, before the next reconnection: 0 until something fails, then
        the value computed at the last failure.
        """
        return self._policy.next_retry_delay

    @property
    def stats(self) -> ClientStats:
        """
        A snapshot of what the client has done so far: its state, its connection attempts
        and their failures, what it received and when (see :class:`.ClientStats`). Made when
        asked, from counters the client keeps anyway; safe to read from another thread.
        """
        counters = self._counters
        state: State
        if self._closed:
            state = "closed"
        elif self._conn is not None:
            state = "open"
        else:
            state = counters.phase
        parser = self._parser
        policy = self._policy
        return counters.snapshot(
            state=state,
            events=parser.events,
            comments=parser.comments,
            retry_delay=policy.next_retry_delay,
            last_event_id=policy.last_event_id,
        )

    def _stats_dict(self) -> dict[str, Any]:
        return self.stats.as_dict()

    @property
    def last_event_id(self) -> str | None:
        """
        The id of the last event handed out (or of the last id-only block), as will be sent
        in ``Last-Event-ID``; the ``last_event_id`` parameter until the stream sets one.
        """
        return self._policy.last_event_id

    def __enter__(self) -> SSEClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._backlog = NO_ITEMS
        if conn is not None:
            conn.close()

    def _try_start(self, *, faults: bool, announce: bool) -> Start | Fault | None:
        policy = self._policy
        counters = self._counters
        while self._conn is None and not self._closed:
            delay = policy.delay()
            if delay > 0:
                counters.phase = "waiting"
                self._logger.info("Will reconnect after delay of %.3fs", delay)
                wake = self._wake
                if wake is None:
                    wake = self._wake = Wakeup()
                    # close() sets _closed before it looks for the Wakeup, which exists
                    # from here on: either it sees this one, or this sees _closed.
                    if self._closed:
                        return None
                if wake.wait(delay):
                    return None
            counters.phase = "connecting"
            counters.attempts += 1
            try:
                conn = self._client.connect(policy.last_event_id)
            except Exception as e:
                if self._closed:
                    return None
                counters.failed(e, "waiting")
                if not policy.should_retry(e):
                    counters.phase = "idle"
                    raise
                if faults:
                    return Fault(e)
                continue
            if self._closed:
                conn.close()
                return None
            policy.connected()
            counters.connections += 1
            self._conn = conn
            self._parser.reset(policy.last_event_id)
            self._stop_after_interrupt = False
            return Start(conn.headers) if announce else _UNANNOUNCED
        return None

    def _read(self, *, events_only: bool) -> Iterator[Any]:
        """
        The iterator behind :attr:`all` and :attr:`events`: one round of the outer loop per
        connection, until the client is closed or the error strategy says to stop.

        * Not connected: connect (after the retry delay), announcing the connection with a
          :class:`.Start` or the failure with a :class:`.Fault`.
        * Connected: hand out the items parsed from the connection's bytes, those already
          parsed first (``_backlog``: a caller who breaks out of the iteration finds them
          there next time), then those of each chunk the moment it arrives. Reading stops at
          the end of the stream, a failed read, an event over the size limit (the parser's
          last item), or when :meth:`interrupt` or :meth:`close` drops the connection while
          an item is out. Then the policy decides: reconnect, or stop (raising the error).
        """
        policy = self._policy
        counters = self._counters
        while not self._closed:
            conn = self._conn
            if conn is None:
                action = self._try_start(faults=True, announce=not events_only)
                if action is not None and not events_only:
                    yield action
                action = None  # not kept alive for as long as the connection lasts
                continue

            parser = self._parser
            stream = conn.stream
            items = self._backlog
            arrived = counters.byte_at  # when the bytes of the items arrived
            error: Exception | None = None  # what ended the connection; None: the server
            try:
                while True:  # one round per chunk
                    for item in items:
                        cls = item.__class__
                        if cls is Event:
                            policy.last_event_id = item.last_event_id
                            counters.event_at = arrived
                            yield item
                        elif cls is Comment:
                            if not events_only:
                                yield item
                        elif cls is RetryChange:
                            policy.set_retry(item.milliseconds)
                        elif cls is IdChange:
                            policy.last_event_id = item.last_event_id
                        else:
                            error = item  # EventTooLargeError: the connection ends with it
                            break
                        if self._conn is not conn:
                            break  # dropped while the item was out
                    if error is not None or self._conn is not conn:
                        break
                    # Every item handed out, and none kept alive while waiting for the next.
                    item = items = self._backlog = NO_ITEMS
                    try:
                        # (Called directly: the wrapper of the builtin with a default costs
                        # more than parsing a small event.)
                        chunk = stream.__next__()
                    except StopIteration:
                        break  # the server ended the stream
                    arrived = counters.byte_at = _monotonic()
                    counters.bytes += len(chunk)
                    items = self._backlog = iter(parser.feed(chunk))
                    del chunk
            except Exception as e:
                error = e  # the read failed
            if self._closed:
                return
            if self._conn is not conn:
                # interrupt(): the policy has already been told, and a read error is only
                # the dropped connection.
                error = None
                stop = self._stop_after_interrupt
            else:
                self._drop()
                parser.end()
                counters.failed(error, "waiting")
                stop = not policy.should_retry(error)
                if stop:
                    counters.phase = "idle"
            if stop and error is not None:
                raise error
            if not events_only:
                yield Fault(error)
            if stop:
                return

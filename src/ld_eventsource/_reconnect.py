"""
The reconnection policy of both clients, as plain state and decisions: no I/O, no sleeping,
an injected monotonic clock. The sync and async clients only carry out what it decides.

It is handed its strategies, checked and with the clients' defaults filled in by the client
(``async_client.py``), and so imports nothing of the public ``config`` package.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ld_eventsource.config.error_strategy import ErrorStrategy
    from ld_eventsource.config.retry_delay_strategy import RetryDelayStrategy

__all__ = ["ReconnectPolicy"]


class ReconnectPolicy:
    """
    When to reconnect, how long to wait first, and whether to give up.

    * The delay before a reconnection comes from the retry delay strategy applied to the
      base delay: ``initial_retry_delay``, or the last ``retry:`` value of the stream.
    * It is counted from the moment the connection was lost (or the attempt failed), on a
      monotonic clock: time spent before the next read counts towards it.
    * The backoff (the retry delay strategy) and the error strategy go back to their original
      state only after a connection stayed up for ``retry_delay_reset_threshold`` seconds;
      during an outage the backoff keeps growing up to its cap.
    """

    # One per client: no instance dict.
    __slots__ = (
        "_base_delay",
        "_clock",
        "_connected_at",
        "_delay_strategy",
        "_error_strategy",
        "_logger",
        "_lost_at",
        "_next_delay",
        "_original_delay_strategy",
        "_original_error_strategy",
        "_reset_threshold",
        "last_event_id",
    )

    def __init__(
        self,
        *,
        initial_retry_delay: float,
        retry_delay_strategy: RetryDelayStrategy,
        retry_delay_reset_threshold: float,
        error_strategy: ErrorStrategy,
        last_event_id: str | None,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ):
        """The client's arguments, already checked (see :class:`.AsyncSSEClient`)."""
        self._base_delay = initial_retry_delay
        self._reset_threshold = retry_delay_reset_threshold
        self._original_delay_strategy = self._delay_strategy = retry_delay_strategy
        self._original_error_strategy = self._error_strategy = error_strategy
        self.last_event_id = last_event_id
        """The last event id: sent as ``Last-Event-ID`` on the next connection."""
        self._logger = logger
        self._clock = clock
        self._next_delay = 0.0
        self._connected_at: float | None = None
        self._lost_at: float | None = None

    @property
    def next_retry_delay(self) -> float:
        """The delay computed at the last failure, in seconds (0 before any failure)."""
        return self._next_delay

    def set_retry(self, milliseconds: int) -> None:
        """The stream sent ``retry:``: the new base delay of the next reconnections."""
        self._base_delay = milliseconds / 1000.0

    def connected(self) -> None:
        """A connection attempt succeeded."""
        self._connected_at = self._clock()
        self._lost_at = None

    def should_retry(self, error: Exception | None) -> bool:
        """
        A connection attempt failed, or an open stream ended (``error`` is ``None`` when the
        server ended it in order): records it, computes the next delay and asks the error
        strategy whether to go on.

        :return: ``True`` to reconnect (after :meth:`delay`), ``False`` to stop
        """
        now = self._clock()
        if self._connected_at is not None:
            if now - self._connected_at >= self._reset_threshold:
                self._delay_strategy = self._original_delay_strategy
                self._error_strategy = self._original_error_strategy
            self._connected_at = None
        self._lost_at = now
        self._next_delay, self._delay_strategy = self._delay_strategy.apply(self._base_delay)
        strategy = self._error_strategy
        decision, self._error_strategy = strategy.apply(error)
        if error is not None:
            self._logger.warning(
                "Stream error: %r; next retry delay %.3fs", error, self._next_delay
            )
        return decision == strategy.CONTINUE

    def delay(self) -> float:
        """Seconds still to wait before the next connection attempt (0 if none)."""
        if self._lost_at is None or self._next_delay <= 0:
            return 0.0
        return max(0.0, self._next_delay - (self._clock() - self._lost_at))

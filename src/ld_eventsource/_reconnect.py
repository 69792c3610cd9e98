"""
The reconnection policy of both clients, as plain state and decisions: no I/O, no sleeping,
an injected monotonic clock. The sync and async clients only carry out what it decides.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from ld_eventsource.config.error_strategy import ErrorStrategy
from ld_eventsource.config.retry_delay_strategy import RetryDelayStrategy

__all__ = ["ReconnectPolicy"]


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return float(value)


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
        retry_delay_strategy: RetryDelayStrategy | None,
        retry_delay_reset_threshold: float,
        error_strategy: ErrorStrategy | None,
        last_event_id: str | None,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._base_delay = _seconds("initial_retry_delay", initial_retry_delay)
        self._reset_threshold = _seconds("retry_delay_reset_threshold", retry_delay_reset_threshold)
        if retry_delay_strategy is None:
            retry_delay_strategy = RetryDelayStrategy.default()
        elif not isinstance(retry_delay_strategy, RetryDelayStrategy):
            raise TypeError(
                "retry_delay_strategy must be a RetryDelayStrategy, not "
                f"{type(retry_delay_strategy).__name__}"
            )
        if error_strategy is None:
            error_strategy = ErrorStrategy.always_fail()
        elif not isinstance(error_strategy, ErrorStrategy):
            raise TypeError(
                f"error_strategy must be an ErrorStrategy, not {type(error_strategy).__name__}"
            )
        if last_event_id is not None and not isinstance(last_event_id, str):
            raise TypeError(
                f"last_event_id must be a str or None, not {type(last_event_id).__name__}"
            )
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

    def failed(self, error: Exception | None) -> bool:
        """
        A connection attempt failed, or an open stream ended (``error`` is ``None`` when the
        server ended it in order). Computes the next delay and applies the error strategy.

        :return: ``True`` to go on (reconnect), ``False`` to stop
        """
        now = self._clock()
        if self._connected_at is not None:
            if now - self._connected_at >= self._reset_threshold:
                self._delay_strategy = self._original_delay_strategy
                self._error_strategy = self._original_error_strategy
            self._connected_at = None
        self._lost_at = now
        self._next_delay, self._delay_strategy = self._delay_strategy.apply(self._base_delay)
        decision, self._error_strategy = self._error_strategy.apply(error)
        if error is not None:
            self._logger.warning(
                "Stream error: %r; next retry delay %.3fs", error, self._next_delay
            )
        return decision == ErrorStrategy.CONTINUE

    def delay(self) -> float:
        """Seconds still to wait before the next connection attempt (0 if none)."""
        if self._lost_at is None or self._next_delay <= 0:
            return 0.0
        return max(0.0, self._next_delay - (self._clock() - self._lost_at))

"""What the client does after a failure: :class:`ErrorStrategy`."""

from __future__ import annotations

import time
from collections.abc import Callable

from ld_eventsource import _validate

__all__ = ["ErrorStrategy"]


class ErrorStrategy:
    """
    Base class of strategies that decide what the client does when the stream fails or ends.

    :meth:`apply` receives the exception (an I/O error, :class:`.HTTPStatusError`,
    :class:`.HTTPContentTypeError`, :class:`.EventTooLargeError`, ...) or ``None`` when the
    server ended the stream, and answers:

    * :const:`FAIL`: raise the exception to the caller, or, for an orderly end of stream,
      stop iterating;
    * :const:`CONTINUE`: reconnect after the retry delay; readers of ``all`` also get a
      :class:`.Fault` describing the error.

    Either way, reading on (or calling ``start()``) reconnects later. Subclasses must be
    immutable: :meth:`apply` returns the strategy to use next time as its second value. The
    client goes back to the original instance once a connection has stayed up for
    ``retry_delay_reset_threshold`` seconds.
    """

    __slots__ = ()

    FAIL = True
    """Result of :meth:`apply`: raise the error (or stop, for an orderly end of stream)."""
    CONTINUE = False
    """Result of :meth:`apply`: reconnect."""

    def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
        """
        Decides what to do after a failure.

        :param exception: the error, or ``None`` if the stream simply ended
        :return: :const:`FAIL` or :const:`CONTINUE`, and the strategy to use next time
        """
        raise NotImplementedError("ErrorStrategy base class cannot be used by itself")

    @staticmethod
    def always_fail() -> ErrorStrategy:
        """Every error is raised to the caller. This is the default."""
        return _ConstantErrorStrategy(ErrorStrategy.FAIL)

    @staticmethod
    def always_continue() -> ErrorStrategy:
        """
        Never raise: always reconnect (readers of ``all`` see each error as a :class:`.Fault`).

        If the server stays unavailable, reading blocks for as long as it is down.
        """
        return _ConstantErrorStrategy(ErrorStrategy.CONTINUE)

    @staticmethod
    def continue_with_max_attempts(max_attempts: int) -> ErrorStrategy:
        """
        Reconnect after up to ``max_attempts`` consecutive failures, then fail.

        The count starts again once a connection has stayed up for
        ``retry_delay_reset_threshold`` seconds.

        :param max_attempts: the number of consecutive retries allowed
        """
        return _MaxAttemptsErrorStrategy(_validate.count("max_attempts", max_attempts), 0)

    @staticmethod
    def continue_with_time_limit(
        max_time: float, *, clock: Callable[[], float] = time.monotonic
    ) -> ErrorStrategy:
        """
        Reconnect for up to ``max_time`` seconds after the first failure, then fail.

        The time is counted on a monotonic clock from the first failure of a series; the
        series starts again once a connection has stayed up for
        ``retry_delay_reset_threshold`` seconds.

        :param max_time: the time limit in seconds
        :param clock: a monotonic clock in seconds (for tests); ``time.monotonic`` by default
        """
        return _TimeLimitErrorStrategy(
            _validate.seconds("max_time", max_time),
            _validate.function("clock", clock, "seconds"),
            None,
        )

    @staticmethod
    def from_lambda(
        fn: Callable[[Exception | None], tuple[bool, ErrorStrategy | None]],
    ) -> ErrorStrategy:
        """
        A strategy whose :meth:`apply` calls ``fn``.

        ``fn`` returns the decision and the next strategy; the latter may be ``None`` to mean
        "no change", since a lambda cannot refer to the strategy it belongs to.
        """
        return _LambdaErrorStrategy(_validate.function("fn", fn, "a decision and a strategy"))


class _ConstantErrorStrategy(ErrorStrategy):
    __slots__ = ("_decision",)

    def __init__(self, decision: bool):
        self._decision = decision

    def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
        return (self._decision, self)

    def __repr__(self) -> str:
        name = "always_fail" if self._decision else "always_continue"
        return f"ErrorStrategy.{name}()"


class _LambdaErrorStrategy(ErrorStrategy):
    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[Exception | None], tuple[bool, ErrorStrategy | None]]):
        self._fn = fn

    def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
        decision, successor = self._fn(exception)
        return (decision, self if successor is None else successor)


class _MaxAttemptsErrorStrategy(ErrorStrategy):
    __slots__ = ("_count", "_max_attempts")

    def __init__(self, max_attempts: int, count: int):
        self._max_attempts = max_attempts
        self._count = count

    def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
        if self._count >= self._max_attempts:
            return (ErrorStrategy.FAIL, self)
        return (
            ErrorStrategy.CONTINUE,
            _MaxAttemptsErrorStrategy(self._max_attempts, self._count + 1),
        )

    def __repr__(self) -> str:
        return f"ErrorStrategy.continue_with_max_attempts({self._max_attempts}) after {self._count}"


class _TimeLimitErrorStrategy(ErrorStrategy):
    __slots__ = ("_clock", "_max_time", "_started")

    def __init__(self, max_time: float, clock: Callable[[], float], started: float | None):
        self._max_time = max_time
        self._clock = clock
        self._started = started

    def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
        now = self._clock()
        if self._started is None:
            return (
                ErrorStrategy.CONTINUE,
                _TimeLimitErrorStrategy(self._max_time, self._clock, now),
            )
        if now - self._started < self._max_time:
            return (ErrorStrategy.CONTINUE, self)
        return (ErrorStrategy.FAIL, self)

    def __repr__(self) -> str:
        return f"ErrorStrategy.continue_with_time_limit({self._max_time})"

"""How long the client waits before reconnecting: :class:`RetryDelayStrategy`."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any, Final

from ld_eventsource import _validate

__all__ = ["RetryDelayStrategy"]


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<default>"


_UNSET: Final[Any] = _Unset()

DEFAULT_MAX_DELAY: Final = 30.0
"""The cap of :meth:`RetryDelayStrategy.default` when ``max_delay`` is not given, in seconds."""
DEFAULT_JITTER_MULTIPLIER: Final = 0.5
"""The jitter of :meth:`RetryDelayStrategy.default` when ``jitter_multiplier`` is not given."""


class RetryDelayStrategy:
    """
    Base class of strategies that compute how long to wait before reconnecting.

    :meth:`default` gives exponential backoff with jitter. Subclasses must be immutable: to
    change the delay on consecutive retries, :meth:`apply` returns a new instance as its second
    value instead of changing ``self``. The client goes back to the original instance once a
    connection has stayed up for ``retry_delay_reset_threshold`` seconds.
    """

    __slots__ = ()

    def apply(self, base_delay: float) -> tuple[float, RetryDelayStrategy]:
        """
        Computes the next retry delay.

        :param base_delay: the base delay in seconds: ``initial_retry_delay``, or the last
            ``retry:`` value the stream sent
        :return: the delay in seconds, and the strategy to use for the next retry (which can
            be ``self``)
        """
        return (base_delay, self)

    @staticmethod
    def default(
        max_delay: float | None = _UNSET,
        backoff_multiplier: float = 2,
        jitter_multiplier: float | None = _UNSET,
        *,
        random: Callable[[], float] | None = None,
    ) -> RetryDelayStrategy:
        """
        The default strategy: exponential backoff with a cap and jitter.

        * The first retry waits the base delay; each consecutive retry multiplies the previous
          base by ``backoff_multiplier``.
        * The result is capped at ``max_delay`` (30 seconds when not given; ``None`` or ``0``
          means no cap).
        * Up to ``jitter_multiplier`` of the delay is subtracted at random (0.5 when not
          given, so a delay of 8 s becomes one between 4 and 8 s; ``None`` or ``0`` means no
          jitter).

        :param max_delay: the maximum delay in seconds
        :param backoff_multiplier: the factor applied on each consecutive retry (at least 1)
        :param jitter_multiplier: the fraction, from 0 to 1, of the delay that may be
            subtracted at random
        :param random: a source of floats in ``[0, 1)`` for the jitter (for tests);
            ``random.random`` by default
        """
        cap = (
            DEFAULT_MAX_DELAY
            if max_delay is _UNSET
            else _validate.optional_seconds("max_delay", max_delay)
        )
        jitter = DEFAULT_JITTER_MULTIPLIER if jitter_multiplier is _UNSET else jitter_multiplier
        if jitter is not None:
            jitter = _validate.fraction("jitter_multiplier", jitter)
        backoff = _validate.factor("backoff_multiplier", backoff_multiplier)
        if random is not None:
            _validate.function("random", random, "a float in [0, 1)")
        return _DefaultRetryDelayStrategy(
            cap or 0.0,
            backoff,
            jitter or 0.0,
            random or _random.random,
            0.0,
        )

    @staticmethod
    def from_lambda(
        fn: Callable[[float], tuple[float, RetryDelayStrategy | None]],
    ) -> RetryDelayStrategy:
        """
        A strategy whose :meth:`apply` calls ``fn``.

        ``fn`` returns the delay and the next strategy; the latter may be ``None`` to mean "no
        change", since a lambda cannot refer to the strategy it belongs to.
        """
        return _LambdaRetryDelayStrategy(_validate.function("fn", fn, "a delay and a strategy"))


class _DefaultRetryDelayStrategy(RetryDelayStrategy):
    __slots__ = ("_backoff", "_jitter", "_last_base", "_max_delay", "_random")

    def __init__(
        self,
        max_delay: float,
        backoff: float,
        jitter: float,
        random: Callable[[], float],
        last_base: float,
    ):
        self._max_delay = max_delay
        self._backoff = backoff
        self._jitter = jitter
        self._random = random
        self._last_base = last_base

    def apply(self, base_delay: float) -> tuple[float, RetryDelayStrategy]:
        base = base_delay if self._last_base == 0 else self._last_base * self._backoff
        if self._max_delay > 0 and base > self._max_delay:
            base = self._max_delay
        delay = base
        if self._jitter > 0:
            delay -= self._random() * self._jitter * base
        successor = _DefaultRetryDelayStrategy(
            self._max_delay, self._backoff, self._jitter, self._random, base
        )
        return (delay, successor)

    def __repr__(self) -> str:
        return (
            f"RetryDelayStrategy.default(max_delay={self._max_delay or None}, "
            f"backoff_multiplier={self._backoff}, jitter_multiplier={self._jitter or None})"
        )


class _LambdaRetryDelayStrategy(RetryDelayStrategy):
    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[float], tuple[float, RetryDelayStrategy | None]]):
        self._fn = fn

    def apply(self, base_delay: float) -> tuple[float, RetryDelayStrategy]:
        delay, successor = self._fn(base_delay)
        return (delay, self if successor is None else successor)

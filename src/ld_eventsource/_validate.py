"""
The checks of the arguments of every public constructor and factory: one function for each
kind of value, so that every option says the same thing about the same mistake (as urllib3's
``Retry`` keeps its checks in one place).

Each function returns the value as it will be used (a ``float`` for a number of seconds)
or raises ``TypeError`` for the wrong kind of value and ``ValueError`` for a value out of
range, with a message that starts with the argument's name. ``bool`` is never a number here,
although it is an ``int`` to Python, and NaN is never in range.
"""

from __future__ import annotations

import math
from typing import TypeVar

__all__ = [
    "count",
    "factor",
    "fraction",
    "function",
    "instance",
    "optional_seconds",
    "seconds",
]

T = TypeVar("T")
D = TypeVar("D")
F = TypeVar("F")


def _number(name: str, value: object, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    return value


def seconds(name: str, value: object, *, positive: bool = False) -> float:
    """A duration: a number of seconds, not negative (nor zero, if ``positive``)."""
    return _seconds(name, value, positive, "a number of seconds")


def optional_seconds(name: str, value: object, *, positive: bool = False) -> float | None:
    """:func:`seconds`, or ``None`` (no limit)."""
    if value is None:
        return None
    return _seconds(name, value, positive, "a number of seconds or None")


def _seconds(name: str, value: object, positive: bool, kind: str) -> float:
    number = _number(name, value, kind)
    if not (number > 0 if positive else number >= 0):  # also False for NaN
        sign = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a {sign} number of seconds, got {value!r}")
    return float(number)


def count(name: str, value: object, *, positive: bool = False, unit: str = "") -> int:
    """A whole number, not negative (nor zero, if ``positive``), of ``unit`` if given."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = f"an int ({unit})" if unit else "an int"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if value < (1 if positive else 0):
        bound = "be positive" if positive else "not be negative"
        raise ValueError(f"{name} must {bound}, got {value}")
    return value


def fraction(name: str, value: object) -> float:
    """A number from 0 to 1, both included."""
    number = _number(name, value, "a number from 0 to 1")
    if not 0 <= number <= 1:
        raise ValueError(f"{name} must be from 0 to 1, got {value!r}")
    return float(number)


def factor(name: str, value: object) -> float:
    """A finite multiplier of at least 1."""
    number = _number(name, value, "a number")
    if not number >= 1 or math.isinf(number):
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return float(number)


def function(name: str, value: F, returning: str) -> F:
    """A callable; ``returning`` says what it returns, for the message."""
    if not callable(value):
        raise TypeError(f"{name} must be a callable returning {returning}")
    return value


def instance(name: str, value: object, cls: type[T], default: D) -> T | D:
    """An instance of ``cls``, or ``default`` for ``None``."""
    if value is None:
        return default
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__} or None, not {type(value).__name__}")
    return value

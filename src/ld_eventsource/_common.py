"""Constructor rules that the sync and async clients share."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

__all__ = ["null_logger", "resolve_connect"]

T = TypeVar("T")


def resolve_connect(
    connect: object,
    url: object,
    strategy_type: type[T],
    from_url: Callable[[str], T],
) -> T:
    """
    The connect strategy from ``connect`` or its keyword alias ``url`` (several documented
    examples write ``SSEClient(url=...)``): a URL string becomes the default HTTP strategy.
    """
    if connect is not None and url is not None:
        raise TypeError("pass the stream as connect or as url, not both")
    value = connect if connect is not None else url
    if value is None:
        raise TypeError("missing the stream: pass a URL or a connect strategy as connect")
    if isinstance(value, str):
        return from_url(value)
    if isinstance(value, strategy_type):
        return value
    raise TypeError(
        f"connect must be a URL string or a {strategy_type.__name__}, not {type(value).__name__}"
    )


def null_logger() -> logging.Logger:
    """A logger that writes nothing: the clients' default."""
    logger = logging.getLogger("ld_eventsource.null")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger

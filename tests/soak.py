"""What the endurance and chaos tests share: the scale switch and the client options."""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any

from ld_eventsource.config import ErrorStrategy

__all__ = ["SOAK", "no_delay"]

SOAK = os.environ.get("SOAK") == "1"
"""``make soak`` sets ``SOAK=1``: the long counts instead of the short ones."""

_loggers = itertools.count()


def no_delay() -> dict[str, Any]:
    """
    Client options: no retry delay, never give up, and a logger that writes nothing, made
    like the clients' default one, but new. (pytest attaches its capturing handlers to every
    logger that does not propagate when a test starts, the default ``ld_eventsource.null``
    included once it exists, and the records they keep, one per reconnection, would look
    like a leak of the client.) Call it inside the test, not in a fixture, and once per test.
    """
    logger = logging.getLogger(f"tests.soak.quiet{next(_loggers)}")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return {
        "initial_retry_delay": 0,
        "error_strategy": ErrorStrategy.always_continue(),
        "logger": logger,
    }

"""The blocking primitives of the sync client (``_async_io`` has their asyncio twins)."""

from __future__ import annotations

import threading

__all__ = ["Wakeup"]


class Wakeup:
    """A flag that ends a wait at once when set: ``close()`` uses it to cut a retry delay."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Sets the flag, waking every waiter (from any thread)."""
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds; ``True`` if the flag was set."""
        return self._event.wait(min(timeout, threading.TIMEOUT_MAX))

"""The blocking primitives of the sync client (``_async_io`` has their asyncio twins)."""

from __future__ import annotations

import threading

__all__ = ["Wakeup"]


class Wakeup(threading.Event):
    """A flag that ends a wait at once when set: ``close()`` uses it to cut a retry delay."""

    def wait(self, timeout: float | None = None) -> bool:
        """Waits up to ``timeout`` seconds (set from any thread); ``True`` if the flag was set."""
        # threading refuses a timeout past TIMEOUT_MAX (a retry delay may be days).
        return super().wait(None if timeout is None else min(timeout, threading.TIMEOUT_MAX))

"""The asyncio primitives of the async client (``_sync_io`` has their blocking twins)."""

from __future__ import annotations

import asyncio

__all__ = ["Wakeup"]


class Wakeup:
    """A flag that ends a wait at once when set: ``close()`` uses it to cut a retry delay."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Sets the flag, waking every waiter."""
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds; ``True`` if the flag was set."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

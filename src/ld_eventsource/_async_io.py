"""The asyncio primitives of the async client (``_sync_io`` has the blocking twins of those
the generated sync client uses) and of its transports."""

from __future__ import annotations

import asyncio
from typing import Any

from ld_eventsource._connect import AsyncConnectionClient

__all__ = ["InterruptibleClient", "Wakeup"]


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


_INTERRUPTED: Any = object()
"""What ``_pending`` holds once close() has cancelled the task awaiting a request."""


class InterruptibleClient(AsyncConnectionClient):
    """
    The connection client of an async transport whose requests :meth:`close` can end.

    A request is awaited in the reading task itself, never in a task of its own (whose
    objects would cost about 1 KB a stream while many streams connect at once): the
    transport awaits :meth:`_awaiting_request` first thing in the ``try`` of the request, and
    calls :meth:`_request_done` in its ``finally``. ``close()`` (:meth:`_interrupt_request`)
    ends the request by cancelling that task; when the request ends, the cancellation is
    taken back (``Task.uncancel()``, Python 3.11+), so that the task goes on as if it had
    not been cancelled, and :meth:`_closed_while` tells, in an ``except CancelledError``,
    whether close() was the only one to cancel it (then the transport raises its "closed"
    error) or the caller's own cancellation goes on. Python 3.10 counts no cancellations:
    close()'s is taken as the only one.
    """

    __slots__ = ("_closed", "_pending")

    def __init__(self) -> None:
        self._closed = False
        self._pending: asyncio.Task[Any] | None = None

    async def _awaiting_request(self) -> None:
        """
        First thing in the ``try`` of a request: marks the running task as the one awaiting
        it, then yields once, so that the request starts on the next turn of the event loop,
        as in a task of its own (10,000 streams that connect together take less CPU so:
        bench/fanout.py).
        """
        self._pending = asyncio.current_task()
        await asyncio.sleep(0)

    def _closed_while(self) -> bool:
        """In ``except CancelledError``: whether close() alone cancelled the running task."""
        if self._pending is not _INTERRUPTED:
            return False
        self._pending = None
        return _take_back_cancel()

    def _request_done(self) -> None:
        """In the ``finally`` of a request: takes back close()'s cancellation, if left."""
        if self._pending is _INTERRUPTED:
            _take_back_cancel()  # the request ended otherwise all the same
        self._pending = None

    def _interrupt_request(self) -> None:
        """
        First thing in close(): marks the client closed (no request starts from now on) and
        cancels the task awaiting a request, if any.
        """
        self._closed = True
        pending = self._pending
        # (Any task of the loop's, not only asyncio.Task: a task factory may make others.)
        if pending is not None and pending is not _INTERRUPTED:
            if pending is not asyncio.current_task():
                self._pending = _INTERRUPTED
                pending.cancel()


def _take_back_cancel() -> bool:
    """
    Takes back one cancellation of the running task; whether none is left (always ``True``
    on Python 3.10, which does not count them).
    """
    uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python 3.11+
    return uncancel is None or uncancel() == 0

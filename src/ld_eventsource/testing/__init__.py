"""
A real SSE server for the tests of code that consumes Server-Sent Events.

:class:`SSEServer` speaks HTTP/1.1 on a loopback socket, in threads of its own, so the same
server serves a blocking client and an asyncio one. It gives its :attr:`~SSEServer.url`,
records every request, and answers either from a queue filled by the test::

    from ld_eventsource.testing import SSEServer

    with SSEServer() as server:
        server.send("hello", id="1")
        server.drop()
        ...  # point the code under test at server.url
        first = server.wait_request(1)

or from per-request scripts (handlers) that control every byte: framing, splits, delays,
drops at any offset, statuses, redirects. :class:`Feed` and :func:`feed_handler` serve a
list of events with ids and replay after ``Last-Event-ID`` (what ``sse serve`` runs).

The pytest plugin is opt-in: ``pytest_plugins = ["ld_eventsource.testing.pytest_plugin"]``
in a ``conftest.py`` gives the ``sse_server`` fixture. This package needs neither pytest
nor aiohttp, and ``import ld_eventsource`` does not import it.
"""

from __future__ import annotations

from ld_eventsource.testing._feed import (
    Feed,
    FeedError,
    FeedEvent,
    FeedFormat,
    feed_handler,
    load_feed,
    parse_feed,
)
from ld_eventsource.testing._handlers import (
    events_handler,
    redirect_handler,
    sequence_handler,
    status_handler,
)
from ld_eventsource.testing._server import (
    Conn,
    DropMode,
    Handler,
    Headers,
    HeadersArg,
    Request,
    SSEServer,
    SSEServerError,
)
from ld_eventsource.testing._wire import sse

__all__ = [
    "Conn",
    "DropMode",
    "Feed",
    "FeedError",
    "FeedEvent",
    "FeedFormat",
    "Handler",
    "Headers",
    "HeadersArg",
    "Request",
    "SSEServer",
    "SSEServerError",
    "events_handler",
    "feed_handler",
    "load_feed",
    "parse_feed",
    "redirect_handler",
    "sequence_handler",
    "sse",
    "status_handler",
]

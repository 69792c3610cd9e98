"""
The pytest plugin of :mod:`ld_eventsource.testing`: fixtures that give a started
:class:`~ld_eventsource.testing.SSEServer` and close it after the test.

Opt-in, never loaded by itself: enable it in a ``conftest.py`` with
``pytest_plugins = ["ld_eventsource.testing.pytest_plugin"]``. A handler that raised during
the test (anything but a client going away) fails the test at teardown, with the handler's
traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ld_eventsource.testing import Handler, SSEServer

__all__ = ["make_sse_server", "sse_server"]


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A started :class:`~ld_eventsource.testing.SSEServer` with the queue (no handler)."""
    server = SSEServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def make_sse_server() -> Iterator[Callable[..., SSEServer]]:
    """
    A factory: ``make_sse_server(handler=None, **options)`` builds and starts an
    :class:`~ld_eventsource.testing.SSEServer` with these arguments; every server it made
    is closed after the test.
    """
    servers: list[SSEServer] = []

    def make(handler: Handler | None = None, **options: Any) -> SSEServer:
        server = SSEServer(handler, **options)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        errors: list[BaseException] = []
        for server in servers:
            try:
                server.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

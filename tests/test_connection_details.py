"""
What a connection attempt tells its caller: the response status on connection results and on
HTTPContentTypeError (both clients), and the cause of a failed connection.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
from collections.abc import AsyncIterator

import pytest

from ld_eventsource import SSEClient
from ld_eventsource.config import (
    AsyncConnectionResult,
    AsyncConnectStrategy,
    ConnectionResult,
    ConnectStrategy,
)
from ld_eventsource.errors import HTTPContentTypeError
from ld_eventsource.testing import events_handler, sse
from tests.drivers import Driver
from tests.sse_server import SSEServer

LOGGER = logging.getLogger("test")


@pytest.mark.parametrize("status", [200, 201])
def test_sync_connection_result_has_the_status(status: int) -> None:
    with (
        SSEServer(events_handler([sse(data="x")], status=status)) as server,
        ConnectStrategy.http(server.url).create_client(LOGGER) as client,
        client.connect(None) as result,
    ):
        assert result.status == status
        assert result.headers is not None
        assert result.headers["content-type"] == "text/event-stream"


@pytest.mark.parametrize("status", [200, 201])
def test_async_connection_result_has_the_status(status: int) -> None:
    async def connect(url: str) -> int | None:
        async with (
            AsyncConnectStrategy.http(url).create_client(LOGGER) as client,
            await client.connect(None) as result,
        ):
            return result.status

    with SSEServer(events_handler([sse(data="x")], status=status)) as server:
        assert asyncio.run(connect(server.url)) == status


def test_status_defaults_to_none() -> None:
    assert ConnectionResult(iter([]), None).status is None
    assert ConnectionResult(iter([]), None, None, status=204).status == 204

    async def empty() -> None:
        result = AsyncConnectionResult(_no_chunks(), None)
        assert result.status is None
        assert AsyncConnectionResult(_no_chunks(), None, status=200).status == 200

    asyncio.run(empty())


async def _no_chunks() -> AsyncIterator[bytes]:
    chunk: bytes
    for chunk in (b"",)[:0]:
        yield chunk


def test_content_type_error_names_the_status(driver: Driver) -> None:
    handler = events_handler([sse(data="x")], content_type="text/html", status=203)
    with SSEServer(handler) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPContentTypeError) as info:
            driver.start(client)
    assert info.value.status == 203
    assert info.value.content_type == "text/html"


def test_content_type_error_status_survives_pickling() -> None:
    error = HTTPContentTypeError("text/plain", {"Content-Type": "text/plain"}, 200)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.status == 200
    assert copy.content_type == "text/plain"
    assert HTTPContentTypeError("text/plain").status is None


def test_refused_connection_keeps_its_cause() -> None:
    # A bound socket that does not listen: connecting to it is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with SSEClient(f"http://127.0.0.1:{port}/") as client, pytest.raises(Exception) as info:
            client.start()
    assert isinstance(info.value.__cause__, ConnectionRefusedError)

"""What only the async client has: task cancellation, ``async for`` and ``async with``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable

import pytest

from ld_eventsource import AsyncSSEClient
from ld_eventsource.actions import Event
from ld_eventsource.config import AsyncConnectStrategy
from ld_eventsource.testing import Conn, sse
from tests.sse_server import SSEServer


def hanging_server(gone: threading.Event) -> SSEServer:
    def handler(conn: Conn) -> None:
        conn.send_head()
        conn.send(sse(id="1", data="first"))
        if conn.wait_client_gone(10):
            gone.set()

    return SSEServer(handler)


def test_cancelling_the_reading_task_closes_the_response() -> None:
    gone = threading.Event()
    with hanging_server(gone) as server:

        async def main() -> None:
            client = AsyncSSEClient(server.url)
            first = asyncio.Event()

            async def consume() -> None:
                async for _ in client.events:
                    first.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), 5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # The response is closed by the cancellation itself, before close().
            assert await asyncio.to_thread(gone.wait, 2)
            await client.close()

        asyncio.run(main())


def test_async_with_closes_after_break() -> None:
    gone = threading.Event()
    with hanging_server(gone) as server:

        async def main() -> list[Event]:
            got = []
            async with AsyncSSEClient(server.url) as client:
                async for event in client.events:
                    got.append(event)
                    break
            return got

        assert asyncio.run(main()) == [Event("message", "first", "1", "1")]
        assert gone.wait(2)


def test_close_from_another_task_ends_async_for() -> None:
    gone = threading.Event()
    with hanging_server(gone) as server:

        async def main() -> list[Event]:
            client = AsyncSSEClient(server.url)
            got = []

            async def close_soon() -> None:
                await asyncio.sleep(0.2)
                await client.close()

            closer = asyncio.create_task(close_soon())
            async for event in client.events:
                got.append(event)
            await closer
            return got

        assert len(asyncio.run(main())) == 1
        assert gone.wait(2)


def test_client_created_outside_a_running_loop() -> None:
    with SSEServer(lambda conn: conn.send(sse(data="x"))) as server:
        client = AsyncSSEClient(server.url)

        async def main() -> list[str]:
            async with client:
                return [e.data async for e in client.events]

        assert asyncio.run(main()) == ["x"]


def test_read_buffer_is_16_kib_unless_the_request_options_give_one() -> None:
    """A large event still arrives whole, read in pieces of the documented buffer size."""
    import logging

    from ld_eventsource._aiohttp import _Response
    from ld_eventsource.config import AsyncConnectStrategy

    big = "x" * 200_000

    def handler(conn: Conn) -> None:
        conn.send_head()
        conn.send(sse(data=big))
        conn.wait_client_gone(10)

    async def limits(options: dict[str, int] | None) -> tuple[tuple[int, int], str]:
        strategy = AsyncConnectStrategy.http(server.url, aiohttp_request_options=options)
        client = strategy.create_client(logging.getLogger("test.bufsize"))
        try:
            conn = await client.connect(None)
            assert isinstance(conn, _Response)
            result = conn._content.get_read_buffer_limits()
            await conn.close()
        finally:
            await client.close()
        async with AsyncSSEClient(strategy) as sse_client:
            async for event in sse_client.events:
                return result, event.data
        raise AssertionError("no event")

    with SSEServer(handler) as server:
        assert asyncio.run(limits(None)) == ((16384, 32768), big)
        assert asyncio.run(limits({"read_bufsize": 4096})) == ((4096, 8192), big)


def headless_server(asked: threading.Event, gone: threading.Event) -> SSEServer:
    """Takes the request and never answers it, until the client goes."""

    def handler(conn: Conn) -> None:
        asked.set()
        if conn.wait_client_gone(10):
            gone.set()

    return SSEServer(handler)


# Both async transports: close() ends a request by the same rule (_async_io.InterruptibleClient).
TRANSPORTS = pytest.mark.parametrize("transport", ["http", "httpx"])


async def close_during_request(
    client: AsyncSSEClient, attempt: Awaitable[object], asked: threading.Event, *, cancel: bool
) -> asyncio.Future[object]:
    """
    Runs ``attempt`` until the server has its request, then closes ``client`` (after
    cancelling the attempt, with ``cancel``); the attempt, done within 5 s.
    """
    started = asyncio.ensure_future(attempt)
    assert await asyncio.to_thread(asked.wait, 5)
    if cancel:
        started.cancel()
    await client.close()
    await asyncio.wait({started}, timeout=5)
    assert started.done(), "still waiting 5 s after close()"
    return started


@TRANSPORTS
def test_close_during_the_request_leaves_the_waiting_task_as_it_was(transport: str) -> None:
    """
    close() ends a request still waiting for its response by cancelling the task that waits:
    start() returns, and the task is not left cancelled (Python 3.11+ counts that), so that
    what it awaits next is not cancelled in its turn.
    """
    asked, gone = threading.Event(), threading.Event()
    with headless_server(asked, gone) as server:

        async def main() -> None:
            client = AsyncSSEClient(getattr(AsyncConnectStrategy, transport)(server.url))

            async def attempt() -> int:
                await client.start()
                task = asyncio.current_task()
                assert task is not None
                await asyncio.sleep(0.01)  # not cancelled
                cancelling = getattr(task, "cancelling", None)
                return cancelling() if cancelling else 0

            started = await close_during_request(client, attempt(), asked, cancel=False)
            assert started.result() == 0
            assert await asyncio.to_thread(gone.wait, 5)

        asyncio.run(main())


@TRANSPORTS
def test_a_cancellation_of_the_callers_own_goes_on_through_close(transport: str) -> None:
    """
    The task waiting in a request is cancelled by its caller while close() ends the request:
    the caller's cancellation goes on (on Python 3.10, which counts no cancellations, the
    task ends as closed).
    """
    asked, gone = threading.Event(), threading.Event()
    with headless_server(asked, gone) as server:

        async def main() -> None:
            client = AsyncSSEClient(getattr(AsyncConnectStrategy, transport)(server.url))
            started = await close_during_request(client, client.start(), asked, cancel=True)
            if hasattr(asyncio.Task, "uncancel"):
                assert started.cancelled()
            else:
                assert started.result() is None
            assert await asyncio.to_thread(gone.wait, 5)

        asyncio.run(main())


@TRANSPORTS
def test_close_ends_a_request_in_a_task_of_another_kind(transport: str) -> None:
    """
    close() ends the request of a task that is not an ``asyncio.Task`` (a task factory may
    make others; here the pure-Python task of asyncio), on a session or client of the
    caller's, which close() leaves open.
    """
    import aiohttp
    import httpx

    asked, gone = threading.Event(), threading.Event()
    with headless_server(asked, gone) as server:

        async def main() -> None:
            loop = asyncio.get_running_loop()
            py_task = asyncio.tasks._PyTask  # type: ignore[attr-defined]
            loop.set_task_factory(lambda loop, coro: py_task(coro, loop=loop))
            if transport == "http":
                async with aiohttp.ClientSession() as session:
                    await attempt(AsyncConnectStrategy.http(server.url, session=session))
            else:
                async with httpx.AsyncClient() as client:
                    await attempt(AsyncConnectStrategy.httpx(server.url, client=client))

        async def attempt(strategy: AsyncConnectStrategy) -> None:
            client = AsyncSSEClient(strategy)
            started = await close_during_request(client, client.start(), asked, cancel=False)
            assert not isinstance(started, asyncio.Task)
            assert started.result() is None

        asyncio.run(main())
        assert gone.wait(5)

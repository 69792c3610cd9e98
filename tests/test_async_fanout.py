"""
Many AsyncSSEClients in one event loop stream at once, without queueing behind a connection
limit: with one shared session created as the README says, and with the sessions the
clients create for themselves. Also shows the pitfall: a default ``aiohttp.ClientSession``
lets only 100 streams through at a time.

Every server handler sends one event, then waits at a barrier that opens only once every
client has received that event: if the connections were queued, the barrier would never
open (each wait here is bounded, so the test fails instead of hanging).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ld_eventsource import AsyncSSEClient
from ld_eventsource._aiohttp import _SHARED_CONNECTORS
from ld_eventsource.config import AsyncConnectStrategy

WAIT = 20.0  # seconds: the bound of every wait; the whole file takes a few seconds


@pytest.fixture(autouse=True)
def enough_file_descriptors() -> Iterator[None]:
    """Each stream takes two descriptors here (client and server side of the socket)."""
    wanted = 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class BarrierServer:
    """
    An ``aiohttp.web`` server in the test's loop. Each request gets the event ``first``,
    then waits until :attr:`release` is set, then gets ``second`` and the stream ends.
    """

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.connected = 0  # handlers that have sent their first event
        self.finished = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        self.connected += 1
        await asyncio.wait_for(self.release.wait(), WAIT)
        await response.write(b"data: second\n\n")
        await response.write_eof()
        self.finished += 1
        return response

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[BarrierServer]:
        app = web.Application()
        app.router.add_get("/stream", self.handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}/stream"
            yield self
        finally:
            self.release.set()
            await runner.cleanup()


async def _until(condition: Callable[[], bool], what: Callable[[], str]) -> None:
    """Waits, up to WAIT seconds, for ``condition``; fails the test with ``what()`` if not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        if loop.time() > deadline:
            pytest.fail(what())
        await asyncio.sleep(0.01)


async def _stream_all(
    clients: list[AsyncSSEClient], server: BarrierServer, *, expect_at_once: int
) -> list[list[str]]:
    """
    Reads every client to its end. Checks that ``expect_at_once`` of them (and no more)
    receive their first event before the barrier opens, then opens it.
    """
    n = len(clients)
    firsts = 0

    async def read(client: AsyncSSEClient) -> list[str]:
        nonlocal firsts
        data: list[str] = []
        async with client:
            async for event in client.events:
                data.append(event.data)
                if len(data) == 1:
                    firsts += 1
        return data

    tasks = [asyncio.ensure_future(read(client)) for client in clients]
    try:
        await _until(
            lambda: firsts >= expect_at_once,
            lambda: (
                f"only {firsts} of {n} clients got their first event while every "
                f"handler was held open ({server.connected} connected): streams are queued"
            ),
        )
        if expect_at_once < n:
            # Give the others a moment: none may get through while the handlers hold on.
            await asyncio.sleep(0.3)
            assert firsts == expect_at_once
        assert server.finished == 0  # the barrier has held every handler so far
        server.release.set()
        done, _ = await asyncio.wait(tasks, timeout=WAIT)
        assert len(done) == n, f"{n - len(done)} of {n} streams did not end"
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 3 * WAIT))


def test_a_thousand_clients_share_one_session_without_queueing() -> None:
    n = 1000

    async def main() -> None:
        async with (
            BarrierServer().running() as server,
            # As the README says: no limit on the connections of the shared session.
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0)
            ) as session,
        ):
            clients = [
                AsyncSSEClient(AsyncConnectStrategy.http(server.url, session=session))
                for _ in range(n)
            ]
            results = await _stream_all(clients, server, expect_at_once=n)
            assert results == [["first", "second"]] * n
            assert server.finished == n
            assert not session.closed  # the clients never close a session they were given

    _run(main())


def test_clients_with_their_own_sessions_do_not_queue_either() -> None:
    n = 200  # more than aiohttp's default limit of 100

    async def main() -> None:
        async with BarrierServer().running() as server:
            clients = [AsyncSSEClient(server.url) for _ in range(n)]
            results = await _stream_all(clients, server, expect_at_once=n)
            assert results == [["first", "second"]] * n
        # Their sessions shared one connector, closed with the last of them.
        assert not _SHARED_CONNECTORS

    _run(main())


def test_pitfall_a_default_session_lets_only_100_streams_through() -> None:
    n = 150

    async def main() -> None:
        async with (
            BarrierServer().running() as server,
            aiohttp.ClientSession() as session,  # TCPConnector(limit=100): the pitfall
        ):
            clients = [
                AsyncSSEClient(AsyncConnectStrategy.http(server.url, session=session))
                for _ in range(n)
            ]
            # 100 streams hold the 100 connections; the other 50 wait for one to end.
            results = await _stream_all(clients, server, expect_at_once=100)
            assert results == [["first", "second"]] * n

    _run(main())

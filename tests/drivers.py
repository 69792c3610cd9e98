"""
One interface over the sync and the async client, so that one scenario table runs against
both. The async driver runs its client on an event loop of its own, step by step, from the
test's thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal, overload

import httpx

from ld_eventsource import AsyncSSEClient, SSEClient
from ld_eventsource.actions import Action, Event
from ld_eventsource.config import AsyncConnectStrategy, ConnectStrategy


class Driver:
    """Builds clients and reads from them; the same calls for both flavours."""

    name: str

    def strategy(self, url: str, **kwargs: Any) -> Any:
        """``ConnectStrategy.http`` or ``AsyncConnectStrategy.http``."""
        raise NotImplementedError

    def client(self, *args: Any, **kwargs: Any) -> Any:
        """A new client with these arguments."""
        raise NotImplementedError

    @overload
    def take(self, client: Any, n: int, *, events: Literal[True]) -> list[Event]: ...
    @overload
    def take(self, client: Any, n: int, *, events: bool = False) -> list[Action]: ...
    def take(self, client: Any, n: int, *, events: bool = False) -> list[Any]:
        """The next ``n`` items of ``all`` (or ``events``); fewer if the iterator ends."""
        return self._take(client, n, events)

    @overload
    def take_until_end(
        self, client: Any, *, events: Literal[True], limit: int = 100_000
    ) -> list[Event]: ...
    @overload
    def take_until_end(
        self, client: Any, *, events: bool = False, limit: int = 100_000
    ) -> list[Action]: ...
    def take_until_end(
        self, client: Any, *, events: bool = False, limit: int = 100_000
    ) -> list[Any]:
        """Items until the iterator ends (at most ``limit``)."""
        return self._take(client, limit, events)

    def _take(self, client: Any, n: int, events: bool) -> list[Any]:
        """What :meth:`take` returns: ``Event`` items only when ``events``."""
        raise NotImplementedError

    def start(self, client: Any) -> None:
        """``client.start()``."""
        raise NotImplementedError

    def interrupt(self, client: Any) -> None:
        """``client.interrupt()``."""
        raise NotImplementedError

    def close(self, client: Any) -> None:
        """``client.close()``."""
        raise NotImplementedError

    def close_later(self, client: Any, delay: float) -> Callable[[], float]:
        """
        Closes ``client`` after ``delay`` seconds from another thread (sync) or task (async)
        while the test reads; returns a function giving the monotonic time of the close.
        """
        raise NotImplementedError

    def finish(self) -> None:
        """Releases what the driver holds."""


class SyncDriver(Driver):
    """Drives :class:`SSEClient`."""

    name = "sync"

    def __init__(self) -> None:
        self._iters: dict[tuple[int, bool], Iterator[Any]] = {}
        self._threads: list[threading.Thread] = []
        self._clients: list[Any] = []

    def strategy(self, url: str, **kwargs: Any) -> Any:
        return ConnectStrategy.http(url, **kwargs)

    def client(self, *args: Any, **kwargs: Any) -> Any:
        client = SSEClient(*args, **kwargs)
        self._clients.append(client)
        return client

    def _take(self, client: Any, n: int, events: bool) -> list[Any]:
        key = (id(client), events)
        if key not in self._iters:
            self._iters[key] = iter(client.events if events else client.all)
        it = self._iters[key]
        out: list[Action] = []
        for _ in range(n):
            try:
                out.append(next(it))
            except StopIteration:
                del self._iters[key]
                break
        return out

    def start(self, client: Any) -> None:
        client.start()

    def interrupt(self, client: Any) -> None:
        client.interrupt()

    def close(self, client: Any) -> None:
        client.close()

    def close_later(self, client: Any, delay: float) -> Callable[[], float]:
        when: list[float] = []

        def run() -> None:
            time.sleep(delay)
            when.append(time.monotonic())
            client.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

        def closed_at() -> float:
            thread.join(5)
            return when[0]

        return closed_at

    def finish(self) -> None:
        for thread in self._threads:
            thread.join(5)
        for it in self._iters.values():
            it.close()  # type: ignore[attr-defined]
        self._iters.clear()
        for client in self._clients:
            client.close()


class AsyncDriver(Driver):
    """Drives :class:`AsyncSSEClient` on a private event loop."""

    name = "async"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._iters: dict[tuple[int, bool], AsyncIterator[Any]] = {}
        self._clients: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []

    def run(self, coro: Any) -> Any:
        """Runs a coroutine on the driver's loop."""
        return self.loop.run_until_complete(coro)

    def strategy(self, url: str, **kwargs: Any) -> Any:
        return AsyncConnectStrategy.http(url, **kwargs)

    def client(self, *args: Any, **kwargs: Any) -> Any:
        async def make() -> Any:
            return AsyncSSEClient(*args, **kwargs)

        client = self.run(make())
        self._clients.append(client)
        return client

    def _take(self, client: Any, n: int, events: bool) -> list[Any]:
        key = (id(client), events)
        if key not in self._iters:
            self._iters[key] = aiter(client.events if events else client.all)
        it = self._iters[key]

        async def read() -> list[Action]:
            out: list[Action] = []
            for _ in range(n):
                try:
                    out.append(await anext(it))
                except StopAsyncIteration:
                    del self._iters[key]
                    break
            return out

        return self.run(read())  # type: ignore[no-any-return]

    def start(self, client: Any) -> None:
        self.run(client.start())

    def interrupt(self, client: Any) -> None:
        self.run(client.interrupt())

    def close(self, client: Any) -> None:
        self.run(client.close())

    def close_later(self, client: Any, delay: float) -> Callable[[], float]:
        when: list[float] = []

        async def run() -> None:
            await asyncio.sleep(delay)
            when.append(time.monotonic())
            await client.close()

        async def spawn() -> None:
            self._tasks.append(asyncio.get_running_loop().create_task(run()))

        self.run(spawn())

        def closed_at() -> float:
            self.run(asyncio.gather(*self._tasks))
            return when[0]

        return closed_at

    def finish(self) -> None:
        async def cleanup() -> None:
            for it in self._iters.values():
                await it.aclose()  # type: ignore[attr-defined]
            self._iters.clear()
            for client in self._clients:
                await client.close()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        try:
            self.run(cleanup())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


def _with_strategy(
    make: Callable[[str], Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of a client, with a URL given as a ``str`` made into ``make(url)``."""
    if args and isinstance(args[0], str) and "url" not in kwargs:
        args = (make(args[0]), *args[1:])
    elif not args and isinstance(kwargs.get("url"), str):
        kwargs = {**kwargs, "url": make(kwargs["url"])}
    return args, kwargs


class HttpxSyncDriver(SyncDriver):
    """Drives :class:`SSEClient` over :meth:`ConnectStrategy.httpx`."""

    name = "sync-httpx"

    def __init__(self) -> None:
        super().__init__()
        self._http: list[httpx.Client] = []

    def strategy(self, url: str, **kwargs: Any) -> Any:
        return ConnectStrategy.httpx(url, **kwargs)

    def client(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _with_strategy(self.strategy, args, kwargs)
        return super().client(*args, **kwargs)

    def httpx_client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` of the caller's, closed by :meth:`finish` after the clients."""
        http = httpx.Client(**kwargs)
        self._http.append(http)
        return http

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            for http in self._http:
                http.close()


class HttpxAsyncDriver(AsyncDriver):
    """Drives :class:`AsyncSSEClient` over :meth:`AsyncConnectStrategy.httpx`."""

    name = "async-httpx"

    def __init__(self) -> None:
        super().__init__()
        self._http: list[httpx.AsyncClient] = []

    def strategy(self, url: str, **kwargs: Any) -> Any:
        return AsyncConnectStrategy.httpx(url, **kwargs)

    def client(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _with_strategy(self.strategy, args, kwargs)
        return super().client(*args, **kwargs)

    def httpx_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` of the caller's, closed by :meth:`finish` after the clients."""

        async def make() -> httpx.AsyncClient:
            return httpx.AsyncClient(**kwargs)

        http: httpx.AsyncClient = self.run(make())
        self._http.append(http)
        return http

    def finish(self) -> None:
        async def close() -> None:
            for client in self._clients:
                await client.close()
            for http in self._http:
                await http.aclose()

        try:
            self.run(close())
        finally:
            super().finish()


DRIVERS: dict[str, Callable[[], Driver]] = {
    "sync": SyncDriver,
    "async": AsyncDriver,
    "sync-httpx": HttpxSyncDriver,
    "async-httpx": HttpxAsyncDriver,
}
"""Every client over every transport, by the name of its driver."""

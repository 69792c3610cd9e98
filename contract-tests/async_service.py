"""
The contract-test service of :class:`ld_eventsource.AsyncSSEClient`.

An ``aiohttp.web`` server that the external SSE contract-test harness drives: ``POST /``
creates a client instance, read by a task of its own that POSTs what the client sees to the
harness's callback URL (with an ``aiohttp.ClientSession``). The protocol is described in
``service_common.py``.

Usage: ``python contract-tests/async_service.py [--transport aiohttp|httpx] PORT`` (0 picks
a free port; ``--transport httpx`` reads the streams with ``AsyncConnectStrategy.httpx``).
The service listens on the loopback addresses and prints ``Listening on http://localhost:PORT`` once
ready; ``DELETE /`` (or SIGINT/SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal

import aiohttp
from aiohttp import web

from ld_eventsource import AsyncSSEClient
from ld_eventsource.config import AsyncConnectStrategy
from service_common import (
    CALLBACK_TIMEOUT,
    STOP_TIMEOUT,
    Callback,
    InvalidRequestError,
    Reporter,
    Step,
    StreamParams,
    bind_listeners,
    capabilities_body,
    client_options,
    connect_options,
    instance_path,
    parse_command,
    parse_stream_params,
    setup_logging,
)

_log = logging.getLogger("contract-service.async")

STRATEGIES = {"aiohttp": AsyncConnectStrategy.http, "httpx": AsyncConnectStrategy.httpx}
"""The factory of each transport the service can read streams with (``--transport``)."""
TRANSPORT = "aiohttp"
"""The transport in use, set from the command line."""


class Instance:
    """
    One client instance: an :class:`AsyncSSEClient` and the task that reads it and sends the
    callbacks its :class:`Reporter` makes of what it reads, one at a time and in order.
    """

    def __init__(self, name: str, params: StreamParams, session: aiohttp.ClientSession):
        self.name = name
        self.params = params
        self._session = session
        self._logger = logging.getLogger(f"contract-service.async.{name}")
        # May raise TypeError/ValueError for parameters the library rejects (a bad URL...).
        self.client = AsyncSSEClient(
            STRATEGIES[TRANSPORT](params.stream_url, **connect_options(params)),
            **client_options(params, self._logger),
        )
        self._reporter = Reporter(params, self._logger)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts reading the stream, in the instance's task."""
        self._logger.info("Starting %r on %s", self.params.tag, self.params.stream_url)
        self._task = asyncio.create_task(self._run(), name=f"stream-{self.name}")

    async def restart(self) -> None:
        """
        Drops the connection; the client reconnects at once (after its retry delay), as if
        the server had ended the stream.
        """
        self._reporter.restart()
        await self.client.interrupt()

    async def stop(self) -> bool:
        """
        Closes the client (and so its connection) and waits for the task to end, cancelling
        it if it does not within :data:`STOP_TIMEOUT`.

        :return: whether the task ended by itself
        """
        self._reporter.stop()
        await self.client.close()
        task = self._task
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if done:
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    async def _run(self) -> None:
        try:
            async for action in self.client.all:
                await self._do(self._reporter.on_action(action))
        except Exception as e:
            await self._do(self._reporter.on_failure(e))
        finally:
            await self.client.close()
            self._logger.info("Stopped")

    async def _do(self, step: Step) -> None:
        if step.callback is not None:
            await self._send(step.callback)
        if step.close:
            await self.client.close()

    async def _send(self, callback: Callback) -> None:
        try:
            async with self._session.post(
                callback.url,
                json=callback.payload,
                timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT),
            ) as response:
                await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self._logger.warning("Callback %s failed: %r", callback.url, e)
            return
        if response.status >= 300:
            self._logger.warning("Callback %s answered %d", callback.url, response.status)


class Service:
    """The client instances of the service, and the session their callbacks share."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        """Set by ``DELETE /`` (or a signal): the process then stops."""
        self._instances: dict[str, Instance] = {}
        self._names = itertools.count(1)
        self._session = aiohttp.ClientSession()

    async def get_status(self, request: web.Request) -> web.Response:
        """``GET /``: the capabilities."""
        return web.Response(body=capabilities_body(), content_type="application/json")

    async def delete_service(self, request: web.Request) -> web.Response:
        """``DELETE /``: stop the service (once this response is sent)."""
        _log.info("Told to stop")
        self.stopping.set()
        return web.Response(status=204)

    async def create(self, request: web.Request) -> web.Response:
        """``POST /``: create an instance; 201 with its URL in ``Location``."""
        try:
            params = parse_stream_params(await request.read())
            name = str(next(self._names))
            instance = Instance(name, params, self._session)
        except (InvalidRequestError, TypeError, ValueError) as e:
            return web.Response(status=400, text=f"{e}\n")
        self._instances[name] = instance
        instance.start()
        return web.Response(
            status=201, headers={"Location": f"http://{request.host}{instance_path(name)}"}
        )

    async def command(self, request: web.Request) -> web.Response:
        """``POST <instance>``: ``{"command": "restart"}``."""
        instance = self._instances.get(request.match_info["name"])
        if instance is None:
            return web.Response(status=404, text="no such stream\n")
        try:
            command = parse_command(await request.read())
        except InvalidRequestError as e:
            return web.Response(status=400, text=f"{e}\n")
        if command != "restart":
            return web.Response(status=400, text=f"unknown command {command!r}\n")
        await instance.restart()
        return web.Response(status=204)

    async def delete(self, request: web.Request) -> web.Response:
        """``DELETE <instance>``: stop the instance and close its connection."""
        instance = self._instances.pop(request.match_info["name"], None)
        if instance is None:
            return web.Response(status=404, text="no such stream\n")
        if not await instance.stop():
            _log.warning("Instance %s did not stop within %ss", instance.name, STOP_TIMEOUT)
        return web.Response(status=204)

    async def close(self) -> None:
        """Stops every instance and closes the callback session."""
        instances = list(self._instances.values())
        self._instances.clear()
        await asyncio.gather(*(instance.stop() for instance in instances))
        await self._session.close()

    def application(self) -> web.Application:
        """The ``aiohttp.web`` application of the endpoints."""
        app = web.Application()
        app.router.add_get("/", self.get_status)
        app.router.add_delete("/", self.delete_service)
        app.router.add_post("/", self.create)
        app.router.add_post(instance_path("{name}"), self.command)
        app.router.add_delete(instance_path("{name}"), self.delete)
        return app


async def serve(port: int) -> None:
    """Runs the service on ``port`` (0: a free one) until ``DELETE /`` or a signal."""
    service = Service()
    runner = web.AppRunner(service.application(), handle_signals=False)
    try:
        await runner.setup()
        listeners = bind_listeners(port)
        actual_port = listeners[0].getsockname()[1]
        for sock in listeners:
            await web.SockSite(runner, sock).start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, service.stopping.set)
        print(f"Listening on http://localhost:{actual_port}", flush=True)
        await service.stopping.wait()
        _log.info("Stopping")
    finally:
        # The server first, so that the response to DELETE / is sent before the process ends.
        await runner.cleanup()
        await service.close()


def main() -> None:
    """The command line: ``async_service.py [--transport NAME] PORT``."""
    global TRANSPORT
    parser = argparse.ArgumentParser(description="Contract-test service of AsyncSSEClient")
    parser.add_argument("port", type=int, help="the port to listen on (0: any free port)")
    parser.add_argument(
        "--transport", choices=sorted(STRATEGIES), default=TRANSPORT, help="HTTP library"
    )
    args = parser.parse_args()
    TRANSPORT = args.transport
    setup_logging()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()

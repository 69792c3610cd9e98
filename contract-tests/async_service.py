"""
The contract-test service of :class:`ld_eventsource.AsyncSSEClient`, on ``aiohttp.web``:
each client instance is read by a task of its own, which POSTs what the client sees to the
harness's callback URL with an ``aiohttp.ClientSession``. ``service_common.py`` has the
protocol, the usage and everything but the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import aiohttp
from aiohttp import web

import service_common as common
from ld_eventsource import AsyncSSEClient
from ld_eventsource.config import AsyncConnectStrategy

_log = logging.getLogger("contract-service.async")


STRATEGIES: dict[str, Callable[..., AsyncConnectStrategy]] = {
    "aiohttp": AsyncConnectStrategy.http,
    "httpx": AsyncConnectStrategy.httpx,
}
"""The connect strategy of each transport that can read the streams (``--transport``)."""
TRANSPORT = "aiohttp"
"""The transport in use: set from the command line."""


class Instance(common.Instance[AsyncSSEClient]):
    """An :class:`AsyncSSEClient` instance and the task that reads it."""

    def __init__(self, name: str, params: common.StreamParams, session: aiohttp.ClientSession):
        super().__init__("async", name, params, AsyncSSEClient, STRATEGIES[TRANSPORT])
        self._session = session
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts reading the stream, in the instance's task."""
        self._task = asyncio.create_task(self._read(), name=f"stream-{self.name}")

    async def restart(self) -> None:
        """Drops the connection; the client reconnects (after its retry delay)."""
        self.reporter.restart()
        await self.client.interrupt()

    async def stop(self) -> None:
        """
        Closes the client and waits for its task to end, cancelling it if it does not
        within :data:`STOP_TIMEOUT`.
        """
        self.reporter.stop()
        await self.client.close()
        task = self._task
        if task is None or (await asyncio.wait({task}, timeout=common.STOP_TIMEOUT))[0]:
            return
        self.logger.warning("Did not stop within %ss", common.STOP_TIMEOUT)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _read(self) -> None:
        try:
            async for action in self.client.all:
                await self._step(self.reporter.on_action(action))
        except Exception as e:
            await self._step(self.reporter.on_failure(e))
        finally:
            await self.client.close()
            self.logger.info("Stopped")

    async def _step(self, step: common.Step) -> None:
        if step.callback is not None:
            await self._post(step.callback)
        if step.close:
            await self.client.close()

    async def _post(self, callback: common.Callback) -> None:
        timeout = aiohttp.ClientTimeout(total=common.CALLBACK_TIMEOUT)
        try:
            async with self._session.post(
                callback.url, json=callback.payload, timeout=timeout
            ) as response:
                await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self.logger.warning("Callback %s failed: %r", callback.url, e)
            return
        if response.status >= 300:
            self.logger.warning("Callback %s answered %d", callback.url, response.status)


def _response(reply: common.Reply) -> web.Response:
    return web.Response(
        status=reply.status,
        body=reply.body or None,
        headers=dict(reply.headers),
        content_type=reply.content_type if reply.body else None,
        charset=reply.charset if reply.body else None,
    )


def application(instances: common.Instances[Instance], stopping: asyncio.Event) -> web.Application:
    """The ``aiohttp.web`` application of the endpoints, answered by :class:`common.Instances`."""

    async def get_status(request: web.Request) -> web.Response:
        return _response(common.status(request.path))

    async def delete_service(request: web.Request) -> web.Response:
        _log.info("Told to stop")
        stopping.set()  # the process stops once this response is sent
        return _response(common.Reply(204))

    async def create(request: web.Request) -> web.Response:
        reply, instance = instances.create(await request.read(), request.host)
        if instance is not None:
            instance.start()
        return _response(reply)

    async def command(request: web.Request) -> web.Response:
        reply, instance = instances.command(request.path, await request.read())
        if instance is not None:
            await instance.restart()
        return _response(reply)

    async def delete(request: web.Request) -> web.Response:
        reply, instance = instances.delete(request.path)
        if instance is not None:
            await instance.stop()
        return _response(reply)

    app = web.Application()
    app.router.add_get("/", get_status)
    app.router.add_delete("/", delete_service)
    app.router.add_post("/", create)
    app.router.add_post(common.instance_path("{name}"), command)
    app.router.add_delete(common.instance_path("{name}"), delete)
    return app


async def serve(port: int) -> None:
    """Runs the service on ``port`` (0: a free one) until ``DELETE /`` or a signal."""
    session = aiohttp.ClientSession()
    instances = common.Instances(lambda name, params: Instance(name, params, session))
    stopping = asyncio.Event()
    runner = web.AppRunner(application(instances, stopping), handle_signals=False)
    try:
        await runner.setup()
        listeners = common.bind_listeners(port)
        for sock in listeners:
            await web.SockSite(runner, sock).start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        print(f"Listening on http://localhost:{listeners[0].getsockname()[1]}", flush=True)
        await stopping.wait()
        _log.info("Stopping")
    finally:
        # The server first, so that the response to DELETE / is sent before the process ends.
        await runner.cleanup()
        await asyncio.gather(*(instance.stop() for instance in instances.delete_all()))
        await session.close()


if __name__ == "__main__":
    PORT, TRANSPORT = common.command_line(
        "Contract-test service of AsyncSSEClient", tuple(STRATEGIES)
    )
    asyncio.run(serve(PORT))

"""
An HTTP/2 SSE server for the tests, over TLS on 127.0.0.1, on the ``h2`` protocol stack
(the one hypercorn is built on), run on an event loop in a thread of its own.

Every path is a stream: events ``1, 2, 3...`` (``data: <path> <id>``), resumed after the
``Last-Event-ID`` of the request, one every ``interval`` seconds up to ``total``, then the
stream stays open (a path with ``wait=1`` in its query sends no event at all). The server
counts its connections, records the streams that clients reset, and can reset one stream
(``RST_STREAM``) or end every connection (``GOAWAY``, then close).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trustme
from h2.errors import ErrorCodes


@dataclass(frozen=True)
class H2Request:
    """One stream as the server saw it."""

    connection: int
    """The number of its connection (0, 1, ... in the order they were made)."""
    stream_id: int
    path: str
    last_event_id: str | None


class _Connection(asyncio.Protocol):
    def __init__(self, server: H2SSEServer, number: int, max_streams: int):
        self.server = server
        self.number = number
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams},
        )
        self.transport: asyncio.Transport | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.window = asyncio.Event()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers: dict[Any, Any] = dict(event.headers or [])  # str: header_encoding
                request = H2Request(
                    self.number,
                    event.stream_id,
                    str(headers.get(":path", "/")),
                    headers.get("last-event-id"),
                )
                self.server.requests.append(request)
                self.tasks[event.stream_id] = asyncio.ensure_future(self.stream(request))
            elif isinstance(event, h2.events.StreamReset):
                self.server.resets.append((self.number, event.stream_id))
                task = self.tasks.pop(event.stream_id, None)
                if task is not None:
                    task.cancel()
            elif isinstance(event, h2.events.WindowUpdated):
                self.window.set()
        self.flush()

    async def stream(self, request: H2Request) -> None:
        sid = request.stream_id
        self.conn.send_headers(
            sid,
            [
                (":status", "200"),
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
            ],
        )
        self.flush()
        if "wait=1" in request.path:
            return  # the head only: a stream that stays quiet
        start = int(request.last_event_id) + 1 if request.last_event_id else 1
        for i in range(start, self.server.total + 1):
            block = f"id: {i}\ndata: {request.path} {i}\n\n".encode()
            while self.conn.local_flow_control_window(sid) < len(block):
                self.window.clear()
                await self.window.wait()
            self.conn.send_data(sid, block)
            self.flush()
            await asyncio.sleep(self.server.interval)

    def reset(self, stream_id: int) -> None:
        task = self.tasks.pop(stream_id, None)
        if task is not None:
            task.cancel()
        self.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
        self.flush()

    def goaway(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()
        self.conn.close_connection(ErrorCodes.NO_ERROR)
        self.flush()
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()


class H2SSEServer:
    """The server; a context manager that starts it and stops it."""

    def __init__(
        self, ca: trustme.CA, *, total: int = 20, interval: float = 0.01, max_streams: int = 2000
    ):
        self.total = total
        self.interval = interval
        self.requests: list[H2Request] = []
        self.resets: list[tuple[int, int]] = []
        """The streams the clients reset: (connection number, stream id)."""
        self.connections: list[_Connection] = []
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(self._context)
        self._context.set_alpn_protocols(["h2"])
        self._max_streams = max_streams
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def __enter__(self) -> H2SSEServer:
        self._thread.start()
        self._server = self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for connection in self.connections:
                connection.close()
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            await asyncio.sleep(0)

        self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> asyncio.AbstractServer:
        def make() -> _Connection:
            connection = _Connection(self, len(self.connections), self._max_streams)
            self.connections.append(connection)
            return connection

        server = await self._loop.create_server(make, "127.0.0.1", 0, ssl=self._context)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def reset(self, path: str) -> H2Request:
        """Resets the open stream of ``path`` (the latest request for it)."""
        request = [r for r in self.requests if r.path == path][-1]

        async def run() -> None:
            self.connections[request.connection].reset(request.stream_id)

        self._call(run())
        return request

    def goaway(self) -> None:
        """Sends GOAWAY on every open connection and closes it."""

        async def run() -> None:
            for connection in self.connections:
                if not connection.closed:
                    connection.goaway()

        self._call(run())

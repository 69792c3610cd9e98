"""The aiohttp transport of :meth:`.AsyncConnectStrategy.http`."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import AsyncIterator
from logging import Logger
from typing import Any

import aiohttp

from ld_eventsource._http import DEFAULT_CONNECT_TIMEOUT, HttpParams, check_response
from ld_eventsource.config.async_connect_strategy import (
    AsyncConnectionClient,
    AsyncConnectionResult,
    AsyncConnectStrategy,
)
from ld_eventsource.errors import (
    CaseInsensitiveHeaders,
    Headers,
    HTTPStatusError,
    StreamTimeoutError,
)

__all__: list[str] = []

_NO_TOTAL_TIMEOUT = aiohttp.ClientTimeout(total=None)

# The body buffer's low-water mark (aiohttp's ``read_bufsize``, 64 KiB by default). aiohttp
# resumes its parser on every HTTP chunk taken from a buffer below that mark, which costs more
# than parsing the event in it when each event is a chunk of its own; with 16 KiB that happens
# on a small share of the chunks, and a stream of small chunked events reads about 25 % faster
# (bench/profile_sync.py --async-profile). Streams of large events read as fast as with 64 KiB.
_READ_BUFSIZE = 16384


class _SharedConnector:
    """
    The connector under the sessions that clients create for themselves: one per event loop,
    created with the first such session and closed with the last.

    Each of those clients still has a session of its own (its own cookies), but a
    ``TCPConnector`` costs as much again as the session, and would cost that once per
    stream. Every stream holds a connection for as long as it lives, so the connector has
    no limit on them (aiohttp's default is 100 in all).
    """

    __slots__ = ("connector", "loop", "users")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        self.users = 0

    @classmethod
    def acquire(cls) -> _SharedConnector:
        loop = asyncio.get_running_loop()
        shared = _SHARED_CONNECTORS.get(loop)
        if shared is None or shared.connector.closed:
            shared = _SHARED_CONNECTORS[loop] = cls(loop)
        shared.users += 1
        return shared

    async def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        if _SHARED_CONNECTORS.get(self.loop) is self:
            del _SHARED_CONNECTORS[self.loop]
        await self.connector.close()


_SHARED_CONNECTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedConnector] = (
    weakref.WeakKeyDictionary()
)


class _AsyncHttpConnectStrategy(AsyncConnectStrategy):
    # Everything that does not change between connections is worked out here, once for all
    # the clients of this strategy (it is immutable): a client only refers to it.
    def __init__(self, params: HttpParams, session: aiohttp.ClientSession | None):
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        self._params = params
        self._session = session
        options = params.request_options
        if options:
            self._headers, self._options, self._read_timeout = _request_options(params)
        else:
            self._headers = None
            self._options, self._read_timeout = _default_options(
                params.read_timeout, params.max_redirects
            )

    def create_client(self, logger: Logger) -> AsyncConnectionClient:
        return _AsyncHttpConnectionClient(self, logger)


def _request_options(
    params: HttpParams,
) -> tuple[dict[str, Any] | None, dict[str, Any], float | None]:
    """The caller's extra headers, the keyword arguments of every request, and sock_read."""
    options = dict(params.request_options)
    headers = options.pop("headers", None)
    timeout = options.pop("timeout", None)
    if timeout is None:
        # Not aiohttp's default (5 minutes in all), which would cut every long stream.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=DEFAULT_CONNECT_TIMEOUT)
    elif not isinstance(timeout, aiohttp.ClientTimeout):
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=float(timeout), sock_read=float(timeout)
        )
    if params.read_timeout is not None:
        timeout = aiohttp.ClientTimeout(
            total=timeout.total,
            connect=timeout.connect,
            sock_connect=timeout.sock_connect,
            sock_read=params.read_timeout,
        )
    options["timeout"] = timeout
    options.setdefault("read_bufsize", _READ_BUFSIZE)
    # aiohttp counts requests where urllib3 counts redirects followed.
    options.setdefault("max_redirects", params.max_redirects + 1)
    options.setdefault("allow_redirects", params.max_redirects > 0)
    return (dict(headers) if headers else None), options, timeout.sock_read


@functools.lru_cache(maxsize=64)
def _default_options(
    read_timeout: float | None, max_redirects: int
) -> tuple[dict[str, Any], float | None]:
    """
    :func:`_request_options` without caller options: shared by every strategy with the same
    two settings (never modified: each request gets its own copy as keyword arguments).
    """
    params = HttpParams(
        url="",
        headers=None,
        query_params=None,
        method="GET",
        body=None,
        read_timeout=read_timeout,
        max_redirects=max_redirects,
        request_options={},
    )
    _, options, sock_read = _request_options(params)
    return options, sock_read


class _AsyncHttpConnectionClient(AsyncConnectionClient):
    # One per AsyncSSEClient, so kept small: what is shared lives in the strategy.
    __slots__ = ("_closed", "_connector", "_logger", "_own_session", "_pending", "_strategy")

    def __init__(self, strategy: _AsyncHttpConnectStrategy, logger: Logger):
        self._strategy = strategy
        self._own_session: aiohttp.ClientSession | None = None
        self._connector: _SharedConnector | None = None
        self._logger = logger
        self._pending: asyncio.Future[aiohttp.ClientResponse] | None = None
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._strategy._session
        if session is not None:
            return session
        session = self._own_session
        if session is None:
            if self._connector is None:
                self._connector = _SharedConnector.acquire()
            session = self._own_session = aiohttp.ClientSession(
                connector=self._connector.connector,
                connector_owner=False,
                timeout=_NO_TOTAL_TIMEOUT,
            )
        return session

    async def connect(self, last_event_id: str | None) -> AsyncConnectionResult:
        strategy = self._strategy
        request = strategy._params.request(last_event_id)
        self._logger.info("Connecting to stream at %s", request.url)
        headers: dict[str, Any]
        if strategy._headers:
            headers = dict(strategy._headers)
            headers.update(request.headers)
        else:
            headers = request.headers
        for name, value in headers.items():
            if isinstance(value, bytes):
                headers[name] = value.decode("utf-8")  # aiohttp writes header values as UTF-8
        # The request runs as a task of its own, which close() cancels: closing the session
        # would not end it when the connector is shared with other clients, or is the
        # caller's.
        pending = self._pending = asyncio.ensure_future(
            self._get_session().request(
                request.method, request.url, headers=headers, data=request.body, **strategy._options
            )
        )
        try:
            response = await pending
        except asyncio.CancelledError:
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            if self._closed and pending.cancelled() and not (cancelling and cancelling()):
                raise aiohttp.ClientConnectionError("the client was closed") from None
            raise
        except aiohttp.TooManyRedirects as e:
            last = e.history[-1] if e.history else None
            raise HTTPStatusError(
                last.status if last is not None else 310,
                CaseInsensitiveHeaders(last.headers) if last is not None else None,
            ) from e
        finally:
            self._pending = None
        try:
            # The errors make their own CaseInsensitiveHeaders of these.
            check_response(response.status, response.headers, response.headers.get("Content-Type"))
        except Exception:
            response.release()
            raise
        return _Response(response, strategy._read_timeout)

    async def close(self) -> None:
        self._closed = True
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
        session, self._own_session = self._own_session, None
        connector, self._connector = self._connector, None
        try:
            if session is not None:
                await session.close()
        finally:
            if connector is not None:
                await connector.release()


class _Response(AsyncConnectionResult):
    """
    One open response: the connection result, its stream of chunks and its closer at once,
    so that a stream costs one small object.

    Each read returns what is buffered, never waiting for more. The response is closed when
    the body ends, when a read fails (or is cancelled), and by :meth:`close`; after that the
    stream is over.
    """

    __slots__ = ("_content", "_raw_headers", "_read_timeout", "_response")

    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float | None):
        self._response: aiohttp.ClientResponse | None = response
        self._content = response.content
        self._read_timeout = read_timeout
        self._raw_headers = response.headers
        self._headers = None  # made from _raw_headers when first asked for
        self._closer = None
        self._fail_reads_when_lost(response)

    @property
    def stream(self) -> AsyncIterator[bytes]:
        return self

    @property
    def headers(self) -> Headers | None:
        # Built on demand: a reader of events only never asks, and it saves a copy of the
        # headers per stream.
        headers = self._headers
        if headers is None:
            headers = self._headers = CaseInsensitiveHeaders(self._raw_headers)
        return headers

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._response is None:
            raise StopAsyncIteration
        try:
            chunk = await self._content.readany()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as e:
            self._end()
            raise StreamTimeoutError(self._read_timeout or 0.0) from e
        except aiohttp.ClientConnectionError as e:
            if self._response is not None:
                self._end()
                raise
            # close() ended the read. aiohttp fails it with one exception object shared by
            # every response so closed, and each raise adds the frames it goes through to
            # that object's traceback: they, this stream and its client would stay alive for
            # good. Dropped here, and the stream just ends.
            e.__traceback__ = None
            raise StopAsyncIteration from None
        except BaseException:
            self._end()
            raise
        if not chunk:
            self._end()
            raise StopAsyncIteration
        return chunk

    async def close(self) -> None:
        self._end()

    def _end(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()

    def _fail_reads_when_lost(self, response: aiohttp.ClientResponse) -> None:
        """
        Makes a pending read fail once the connection is gone.

        When aiohttp's C parser meets broken chunked framing it closes the connection but
        leaves the body stream open, so a read would wait forever (sock_read does not fire
        either). A callback (this object's bound method: no closure) on the connection's
        ``closed`` future closes that gap.
        """
        connection = response.connection
        closed = getattr(getattr(connection, "protocol", None), "closed", None)
        if isinstance(closed, asyncio.Future):
            closed.add_done_callback(self._lost)

    def _lost(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()  # retrieved, so that asyncio does not log it
        content = self._content
        if not content.is_eof() and content.exception() is None:
            content.set_exception(
                aiohttp.ClientPayloadError("connection lost before the end of the response")
            )

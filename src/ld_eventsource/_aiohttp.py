"""The aiohttp transport of :meth:`.AsyncConnectStrategy.http`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from logging import Logger

import aiohttp

from ld_eventsource._http import DEFAULT_CONNECT_TIMEOUT, HttpParams, check_response
from ld_eventsource.config.async_connect_strategy import (
    AsyncConnectionClient,
    AsyncConnectionResult,
    AsyncConnectStrategy,
)
from ld_eventsource.errors import CaseInsensitiveHeaders, HTTPStatusError, StreamTimeoutError

__all__: list[str] = []


class _AsyncHttpConnectStrategy(AsyncConnectStrategy):
    def __init__(self, params: HttpParams, session: aiohttp.ClientSession | None):
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        self._params = params
        self._session = session

    def create_client(self, logger: Logger) -> AsyncConnectionClient:
        return _AsyncHttpConnectionClient(self._params, self._session, logger)


class _AsyncHttpConnectionClient(AsyncConnectionClient):
    def __init__(self, params: HttpParams, session: aiohttp.ClientSession | None, logger: Logger):
        self._params = params
        self._session = session
        self._own_session: aiohttp.ClientSession | None = None
        self._logger = logger
        options = dict(params.request_options)
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
        self._read_timeout = timeout.sock_read
        options["timeout"] = timeout
        # aiohttp counts requests where urllib3 counts redirects followed.
        options.setdefault("max_redirects", params.max_redirects + 1)
        options.setdefault("allow_redirects", params.max_redirects > 0)
        self._options = options

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._own_session is None or self._own_session.closed:
            # No limit on connections: every stream holds one for as long as it lives.
            self._own_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._own_session

    async def connect(self, last_event_id: str | None) -> AsyncConnectionResult:
        request = self._params.request(last_event_id)
        self._logger.info("Connecting to stream at %s", request.url)
        options = dict(self._options)
        headers: dict[str, str] = dict(options.pop("headers", None) or {})
        for name, value in request.headers.items():
            # aiohttp writes header values as UTF-8.
            headers[name] = value.decode("utf-8") if isinstance(value, bytes) else value
        try:
            response = await self._get_session().request(
                request.method, request.url, headers=headers, data=request.body, **options
            )
        except aiohttp.TooManyRedirects as e:
            last = e.history[-1] if e.history else None
            raise HTTPStatusError(
                last.status if last is not None else 310,
                CaseInsensitiveHeaders(last.headers) if last is not None else None,
            ) from e
        response_headers = CaseInsensitiveHeaders(response.headers)
        try:
            check_response(response.status, response_headers, response.headers.get("Content-Type"))
        except Exception:
            response.release()
            raise
        return AsyncConnectionResult(
            _chunks(response, self._read_timeout), _closer(response), response_headers
        )

    async def close(self) -> None:
        session, self._own_session = self._own_session, None
        if session is not None:
            await session.close()


async def _chunks(
    response: aiohttp.ClientResponse, read_timeout: float | None
) -> AsyncIterator[bytes]:
    """The body as it arrives: each read returns what is buffered, never waiting for more."""
    _fail_reads_when_lost(response)
    readany = response.content.readany
    try:
        while True:
            chunk = await readany()
            if not chunk:
                return
            yield chunk
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as e:
        raise StreamTimeoutError(read_timeout or 0.0) from e
    finally:
        response.close()


def _fail_reads_when_lost(response: aiohttp.ClientResponse) -> None:
    """
    Makes a pending read fail once the connection is gone.

    When aiohttp's C parser meets broken chunked framing it closes the connection but
    leaves the body stream open, so a read would wait forever (sock_read does not fire
    either). One callback per connection closes that gap.
    """
    connection = response.connection
    closed = getattr(getattr(connection, "protocol", None), "closed", None)
    if not isinstance(closed, asyncio.Future):
        return
    content = response.content

    def lost(future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()  # retrieved, so that asyncio does not log it
        if not content.is_eof() and content.exception() is None:
            content.set_exception(
                aiohttp.ClientPayloadError("connection lost before the end of the response")
            )

    closed.add_done_callback(lost)


def _closer(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        response.close()

    return close

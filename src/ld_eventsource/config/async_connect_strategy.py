"""How :class:`.AsyncSSEClient` obtains a stream: :class:`AsyncConnectStrategy` and companions.

Importing this module does not import ``aiohttp``; :meth:`AsyncConnectStrategy.http` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from logging import Logger
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ld_eventsource.config.connect_strategy import DynamicQueryParams, HeadersSource
from ld_eventsource.errors import Headers, _as_headers

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AsyncConnectStrategy", "AsyncConnectionClient", "AsyncConnectionResult"]


class AsyncConnectStrategy:
    """
    How :class:`.AsyncSSEClient` obtains its input stream.

    The default, :meth:`http`, makes HTTP requests with ``aiohttp`` (the ``async`` extra). To
    read a stream from another source, subclass it and implement :meth:`create_client`.

    Instances should be immutable and hold no state of one active stream: the
    :class:`AsyncConnectionClient` they create is the stateful part, owned by one client.
    """

    def create_client(self, logger: Logger) -> AsyncConnectionClient:
        """
        Creates the :class:`AsyncConnectionClient` that one :class:`.AsyncSSEClient` uses for
        all its connection attempts. Called once, when the client is created.

        :param logger: the logger of the AsyncSSEClient
        """
        raise NotImplementedError("AsyncConnectStrategy base class cannot be used by itself")

    @staticmethod
    def http(
        url: str,
        headers: HeadersSource | None = None,
        session: aiohttp.ClientSession | None = None,
        aiohttp_request_options: Mapping[str, Any] | None = None,
        query_params: DynamicQueryParams | None = None,
        *,
        method: str = "GET",
        body: str | bytes | None = None,
        read_timeout: float | None = None,
        max_redirects: int = 10,
    ) -> AsyncConnectStrategy:
        """
        The default HTTP implementation, on ``aiohttp``.

        :param url: the stream URL (``http`` or ``https``)
        :param headers: extra request headers; or a callable returning them, called before
            every connection attempt
        :param session: an ``aiohttp.ClientSession`` to use; the client never closes a session
            it was given. A stream holds one of the session's connections for as long as it
            lives, and aiohttp's default connector allows 100 connections in all: with a
            default session the 101st client would wait, silently, for one of the first 100
            streams to end. To share one session among many clients, create it without a
            limit: ``aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0,
            limit_per_host=0))``. The session's timeout does not apply: each request sets its
            own (no total timeout, 10 seconds to connect, unless ``aiohttp_request_options``
            gives a ``timeout``; ``read_timeout`` if set). Without a session the client
            creates one of its own (its own cookies), on a ``TCPConnector`` without a limit
            that all such clients in the event loop share, and closes it in ``close()``; the
            connector closes with the last of them.
        :param aiohttp_request_options: extra keyword arguments for the ``aiohttp`` request,
            such as ``timeout``; the client passes ``read_bufsize=16384`` (faster on streams
            of small events than aiohttp's 64 KiB) unless these give another, and this
            applies over a ``read_bufsize`` set on the session
        :param query_params: a callable returning query parameters to add to the URL, called
            before every connection attempt
        :param method: the request method, such as ``"POST"`` or ``"REPORT"``
        :param body: the request body, sent again on every reconnection; a ``str`` is encoded
            as UTF-8. ``Content-Type: text/plain`` is sent unless ``headers`` set one.
        :param read_timeout: seconds without any byte on an open stream after which the
            client drops the connection and reports a :class:`.StreamTimeoutError`
        :param max_redirects: how many redirects to follow before failing
        """
        from ld_eventsource._aiohttp import _AsyncHttpConnectStrategy
        from ld_eventsource._http import HttpParams

        return _AsyncHttpConnectStrategy(
            HttpParams.create(
                url,
                headers=headers,
                query_params=query_params,
                method=method,
                body=body,
                read_timeout=read_timeout,
                max_redirects=max_redirects,
                request_options=aiohttp_request_options,
                request_options_name="aiohttp_request_options",
            ),
            session,
        )


class AsyncConnectionClient:
    """
    The connection maker that an :class:`AsyncConnectStrategy` creates for one
    :class:`.AsyncSSEClient`, which uses it for every connection attempt.
    """

    # Empty, so that a subclass may do without an instance dict (subclasses that declare
    # no __slots__ get one as usual).
    __slots__ = ()

    async def connect(self, last_event_id: str | None) -> AsyncConnectionResult:
        """
        Connects to the stream. Raises an exception if it cannot.

        :param last_event_id: the client's current last event id
        :raises HTTPStatusError: the HTTP response status is 4xx, 5xx or 204
        :raises HTTPContentTypeError: the response ``Content-Type`` is not
            ``text/event-stream``
        :raises Exception: a network or I/O error
        """
        raise NotImplementedError("AsyncConnectionClient base class cannot be used by itself")

    async def close(self) -> None:
        """Releases what this client holds; called when the AsyncSSEClient is closed."""

    async def __aenter__(self) -> AsyncConnectionClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AsyncConnectionResult:
    """
    One open stream, as returned by :meth:`AsyncConnectionClient.connect`.

    :param stream: an async iterator of the chunks of bytes of the stream
    :param closer: a callable returning an awaitable that releases the connection, or ``None``
    :param headers: the HTTP response headers, or ``None`` for a non-HTTP stream
    :param status: the HTTP response status, or ``None`` for a non-HTTP stream
    """

    __slots__ = ("_closer", "_headers", "_status", "_stream")

    def __init__(
        self,
        stream: AsyncIterator[bytes],
        closer: Callable[[], Awaitable[object]] | None,
        headers: Headers | None = None,
        *,
        status: int | None = None,
    ):
        self._stream = stream
        self._closer = closer
        self._headers = _as_headers(headers)
        self._status = status

    @property
    def stream(self) -> AsyncIterator[bytes]:
        """An async iterator of the chunks of bytes of the stream."""
        return self._stream

    @property
    def headers(self) -> Headers | None:
        """The HTTP response headers (names case-insensitive), or ``None`` if not HTTP."""
        return self._headers

    @property
    def status(self) -> int | None:
        """The HTTP response status (such as 200), or ``None`` if not HTTP."""
        return self._status

    async def close(self) -> None:
        """Releases the connection. Calling it again does nothing."""
        closer, self._closer = self._closer, None
        if closer is not None:
            await closer()

    async def __aenter__(self) -> AsyncConnectionResult:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

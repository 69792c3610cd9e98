"""
The connection classes that the transports subclass: :class:`ConnectionClient` and
:class:`ConnectionResult` for :class:`.SSEClient`, :class:`AsyncConnectionClient` and
:class:`AsyncConnectionResult` for :class:`.AsyncSSEClient`.

Their public home is ``ld_eventsource.config`` (``connect_strategy`` and
``async_connect_strategy``), which re-exports them and names them as its own
(``__module__``), as ``collections.abc`` does with ``_collections_abc``. They are defined here,
in a module that imports no transport and nothing of ``config``, so that a transport imports
no public module and the factories in ``config`` load the transports in one direction only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from logging import Logger
from typing import Generic, Protocol, TypeVar

from ld_eventsource.errors import Headers, _as_headers

__all__ = [
    "AsyncConnectionClient",
    "AsyncConnectionResult",
    "ConnectionClient",
    "ConnectionResult",
    "TransportStrategy",
]

_SYNC = "ld_eventsource.config.connect_strategy"
_ASYNC = "ld_eventsource.config.async_connect_strategy"

S = TypeVar("S")
C = TypeVar("C")
K_co = TypeVar("K_co", covariant=True)
_Self = TypeVar("_Self", bound="_Closing")
_AsyncSelf = TypeVar("_AsyncSelf", bound="_AsyncClosing")


class _Closing:
    """``with x:`` calls ``x.close()`` at the end."""

    __slots__ = ()

    def close(self) -> None:
        """Releases what this holds."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _AsyncClosing:
    """``async with x:`` awaits ``x.close()`` at the end."""

    __slots__ = ()

    async def close(self) -> None:
        """Releases what this holds."""

    async def __aenter__(self: _AsyncSelf) -> _AsyncSelf:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _Result(Generic[S, C]):
    """What a connection result of either kind holds: its stream, closer, headers, status."""

    __slots__ = ("_closer", "_headers", "_status", "_stream")

    def __init__(
        self,
        stream: S,
        closer: C | None,
        headers: Headers | None = None,
        *,
        status: int | None = None,
    ):
        self._stream = stream
        self._closer = closer
        self._headers = _as_headers(headers)
        self._status = status

    @property
    def stream(self) -> S:
        """The chunks of bytes of the stream (an async iterator of them for asyncio)."""
        return self._stream

    @property
    def headers(self) -> Headers | None:
        """The HTTP response headers (names case-insensitive), or ``None`` if not HTTP."""
        return self._headers

    @property
    def status(self) -> int | None:
        """The HTTP response status (such as 200), or ``None`` if not HTTP."""
        return self._status

    def _take_closer(self) -> C | None:
        """The closer, the first time only: closing again does nothing."""
        closer, self._closer = self._closer, None
        return closer


class ConnectionClient(_Closing):
    """
    The connection maker that a :class:`.ConnectStrategy` creates for one :class:`.SSEClient`,
    which uses it for every connection attempt. For HTTP it holds the connection pool.
    """

    __module__ = _SYNC
    # Empty, so that a subclass may do without an instance dict (subclasses that declare
    # no __slots__ get one as usual).
    __slots__ = ()

    def connect(self, last_event_id: str | None) -> ConnectionResult:
        """
        Connects to the stream. Raises an exception if it cannot.

        :param last_event_id: the client's current last event id, to send to the server so
            that it can resume the stream
        :raises HTTPStatusError: the HTTP response status is 4xx, 5xx or 204
        :raises HTTPContentTypeError: the response ``Content-Type`` is not
            ``text/event-stream``
        :raises Exception: a network or I/O error
        """
        raise NotImplementedError("ConnectionClient base class cannot be used by itself")

    def close(self) -> None:
        """Releases what this client holds; called when the SSEClient is closed."""


class ConnectionResult(_Result[Iterator[bytes], Callable[[], object]], _Closing):
    """
    One open stream, as returned by :meth:`ConnectionClient.connect`.

    :param stream: an iterator of the chunks of bytes of the stream
    :param closer: a callable that releases the connection, or ``None``. It may be called
        from another thread while the stream is being read, and must then make the read end
        promptly.
    :param headers: the HTTP response headers, or ``None`` for a non-HTTP stream
    :param status: the HTTP response status, or ``None`` for a non-HTTP stream
    """

    __module__ = _SYNC
    __slots__ = ()

    def close(self) -> None:
        """Releases the connection. Calling it again does nothing."""
        closer = self._take_closer()
        if closer is not None:
            closer()


class AsyncConnectionClient(_AsyncClosing):
    """
    The connection maker that an :class:`.AsyncConnectStrategy` creates for one
    :class:`.AsyncSSEClient`, which uses it for every connection attempt.
    """

    __module__ = _ASYNC
    __slots__ = ()

    async def connect(self, last_event_id: str | None) -> AsyncConnectionResult:
        """Connects to the stream, or raises, as :meth:`.ConnectionClient.connect` does."""
        raise NotImplementedError("AsyncConnectionClient base class cannot be used by itself")

    async def close(self) -> None:
        """Releases what this client holds; called when the AsyncSSEClient is closed."""


class AsyncConnectionResult(
    _Result[AsyncIterator[bytes], Callable[[], Awaitable[object]]], _AsyncClosing
):
    """
    One open stream, as returned by :meth:`AsyncConnectionClient.connect`.

    :param stream: an async iterator of the chunks of bytes of the stream
    :param closer: a callable returning an awaitable that releases the connection, or ``None``
    :param headers: the HTTP response headers, or ``None`` for a non-HTTP stream
    :param status: the HTTP response status, or ``None`` for a non-HTTP stream
    """

    __module__ = _ASYNC
    __slots__ = ()

    async def close(self) -> None:
        """Releases the connection. Calling it again does nothing."""
        closer = self._take_closer()
        if closer is not None:
            await closer()


class Transport(Protocol[K_co]):
    """The settings of an ``http()`` factory, checked by its transport module."""

    def create_client(self, logger: Logger) -> K_co:
        """The connection client of one SSE client."""
        ...


class TransportStrategy(Generic[K_co]):
    """
    The strategy that an ``http()`` factory returns, mixed in before the public strategy
    class: each SSE client gets its connection client from the transport.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport[K_co]):
        self._transport = transport

    def create_client(self, logger: Logger) -> K_co:
        """The connection client of one SSE client."""
        return self._transport.create_client(logger)

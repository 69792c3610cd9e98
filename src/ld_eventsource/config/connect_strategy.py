"""How :class:`.SSEClient` obtains a stream: :class:`ConnectStrategy` and its companions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from logging import Logger
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ld_eventsource.errors import Headers, _as_headers

if TYPE_CHECKING:
    from urllib3 import PoolManager

__all__ = ["ConnectStrategy", "ConnectionClient", "ConnectionResult", "DynamicQueryParams"]

DynamicQueryParams = Callable[[], Mapping[str, str]]
"""
A callable returning query parameters to add to the stream URL, called again before every
connection attempt (so that a parameter such as a timestamp or a session id stays current).
"""

HeadersSource = Mapping[str, str] | Callable[[], Mapping[str, str]]
"""Request headers: a mapping, or a callable returning one before every connection attempt."""


class ConnectStrategy:
    """
    How :class:`.SSEClient` obtains its input stream.

    The default, :meth:`http`, makes HTTP requests with ``urllib3``. To read a stream from
    another source, subclass it and implement :meth:`create_client`.

    Instances should be immutable and hold no state of one active stream: the
    :class:`ConnectionClient` they create is the stateful part, owned by one client.
    """

    def create_client(self, logger: Logger) -> ConnectionClient:
        """
        Creates the :class:`ConnectionClient` that one :class:`.SSEClient` uses for all its
        connection attempts. Called once, when the client is created.

        :param logger: the logger of the SSEClient
        """
        raise NotImplementedError("ConnectStrategy base class cannot be used by itself")

    @staticmethod
    def http(
        url: str,
        headers: HeadersSource | None = None,
        pool: PoolManager | None = None,
        urllib3_request_options: Mapping[str, Any] | None = None,
        query_params: DynamicQueryParams | None = None,
        *,
        method: str = "GET",
        body: str | bytes | None = None,
        read_timeout: float | None = None,
        max_redirects: int = 10,
    ) -> ConnectStrategy:
        """
        The default HTTP implementation, on ``urllib3``.

        :param url: the stream URL (``http`` or ``https``)
        :param headers: extra request headers; or a callable returning them, called before
            every connection attempt (to refresh a token, say)
        :param pool: a ``urllib3.PoolManager`` to use; the client never closes a pool it was
            given. Without one the client creates its own and closes it in ``close()``.
        :param urllib3_request_options: extra keyword arguments for ``urllib3``'s
            ``request()``, such as ``timeout``
        :param query_params: a callable returning query parameters to add to the URL, called
            before every connection attempt
        :param method: the request method, such as ``"POST"`` or ``"REPORT"``
        :param body: the request body, sent again on every reconnection; a ``str`` is encoded
            as UTF-8. ``Content-Type: text/plain`` is sent unless ``headers`` set one.
        :param read_timeout: seconds without any byte on an open stream after which the
            client drops the connection and reports a :class:`.StreamTimeoutError`
        :param max_redirects: how many redirects to follow before failing
        """
        from ld_eventsource._http import HttpParams
        from ld_eventsource._urllib3 import _HttpConnectStrategy

        return _HttpConnectStrategy(
            HttpParams.create(
                url,
                headers=headers,
                query_params=query_params,
                method=method,
                body=body,
                read_timeout=read_timeout,
                max_redirects=max_redirects,
                request_options=urllib3_request_options,
                request_options_name="urllib3_request_options",
            ),
            pool,
        )


class ConnectionClient:
    """
    The connection maker that a :class:`ConnectStrategy` creates for one :class:`.SSEClient`,
    which uses it for every connection attempt. For HTTP it holds the connection pool.
    """

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

    def __enter__(self) -> ConnectionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ConnectionResult:
    """
    One open stream, as returned by :meth:`ConnectionClient.connect`.

    :param stream: an iterator of the chunks of bytes of the stream
    :param closer: a callable that releases the connection, or ``None``. It may be called
        from another thread while the stream is being read, and must then make the read end
        promptly.
    :param headers: the HTTP response headers, or ``None`` for a non-HTTP stream
    :param status: the HTTP response status, or ``None`` for a non-HTTP stream
    """

    __slots__ = ("_closer", "_headers", "_status", "_stream")

    def __init__(
        self,
        stream: Iterator[bytes],
        closer: Callable[[], object] | None,
        headers: Headers | None = None,
        *,
        status: int | None = None,
    ):
        self._stream = stream
        self._closer = closer
        self._headers = _as_headers(headers)
        self._status = status

    @property
    def stream(self) -> Iterator[bytes]:
        """An iterator of the chunks of bytes of the stream."""
        return self._stream

    @property
    def headers(self) -> Headers | None:
        """The HTTP response headers (names case-insensitive), or ``None`` if not HTTP."""
        return self._headers

    @property
    def status(self) -> int | None:
        """The HTTP response status (such as 200), or ``None`` if not HTTP."""
        return self._status

    def close(self) -> None:
        """Releases the connection. Calling it again does nothing."""
        closer, self._closer = self._closer, None
        if closer is not None:
            closer()

    def __enter__(self) -> ConnectionResult:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

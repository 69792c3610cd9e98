"""Exceptions raised by the SSE clients, and the case-insensitive :data:`Headers` mapping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CaseInsensitiveHeaders",
    "EventTooLargeError",
    "ExceptionWithHeaders",
    "HTTPContentTypeError",
    "HTTPProtocolError",
    "HTTPStatusError",
    "Headers",
    "ProxyError",
    "StreamTimeoutError",
]

Headers = Mapping[str, Any]
"""
A mapping of HTTP response headers.

Header name lookups are case-insensitive (RFC 9110), so ``headers.get('content-type')`` and
``headers.get('Content-Type')`` return the same value. The clients always hand out a
:class:`CaseInsensitiveHeaders`, whatever the transport.
"""


class CaseInsensitiveHeaders(Mapping[str, Any]):
    """
    A read-only, case-insensitive mapping of HTTP header names to values.

    Repeated headers are joined with ``", "`` as RFC 9110 allows. Iteration yields the names as
    the server spelled them. Two instances are equal when they hold the same names (ignoring
    case) and values; they are hashable.
    """

    __slots__ = ("_items",)

    _items: dict[str, tuple[str, Any]]

    def __init__(self, headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None):
        items: dict[str, tuple[str, Any]] = {}
        if headers is not None:
            pairs: Iterable[tuple[str, Any]]
            if isinstance(headers, CaseInsensitiveHeaders):
                pairs = headers._items.values()
            elif isinstance(headers, Mapping):
                # urllib3's HTTPHeaderDict and multidict's CIMultiDict expose every value
                # of a repeated header through items(); a plain dict has one value a name.
                pairs = headers.items()
            else:
                pairs = headers
            for name, value in pairs:
                key = str(name).lower()
                old = items.get(key)
                items[key] = (old[0], f"{old[1]}, {value}") if old is not None else (name, value)
        self._items = items

    def __getitem__(self, name: str) -> Any:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            other_items = (
                other._items
                if isinstance(other, CaseInsensitiveHeaders)
                else CaseInsensitiveHeaders(other)._items
            )
            return {k: v[1] for k, v in self._items.items()} == {
                k: v[1] for k, v in other_items.items()
            }
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset((k, str(v[1])) for k, v in self._items.items()))

    def __repr__(self) -> str:
        return f"CaseInsensitiveHeaders({dict(self._items.values())!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self._items.values()),))


def _as_headers(headers: Mapping[str, Any] | None) -> CaseInsensitiveHeaders | None:
    if headers is None or isinstance(headers, CaseInsensitiveHeaders):
        return headers
    return CaseInsensitiveHeaders(headers)


@runtime_checkable
class ExceptionWithHeaders(Protocol):
    """
    Protocol for exceptions that carry HTTP response headers.

    :class:`HTTPStatusError` and :class:`HTTPContentTypeError` satisfy it, and so does any
    exception with a ``headers`` attribute; :attr:`.Fault.headers` reads headers through it.
    """

    @property
    def headers(self) -> Headers | None:
        """The HTTP response headers associated with this exception, if any."""
        ...


class HTTPStatusError(Exception):
    """
    The client connected, but the HTTP response had an error status (4xx, 5xx or 204), or was
    a redirect that could not be followed (no usable ``Location``, or too many redirects).

    The response headers are available from :attr:`headers`, with case-insensitive names.
    """

    def __init__(self, status: int, headers: Headers | None = None):
        super().__init__(f"HTTP error {status}")
        self._status = status
        self._headers = _as_headers(headers)

    @property
    def status(self) -> int:
        """The HTTP status code of the response."""
        return self._status

    @property
    def headers(self) -> Headers | None:
        """The HTTP response headers, if available. Header names are case-insensitive."""
        return self._headers

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._status, self._headers))


class ProxyError(HTTPStatusError):
    """
    The HTTP proxy refused the request: it answered ``CONNECT`` (the tunnel to an
    ``https://`` stream) with a status other than 2xx, or answered any request with ``407``
    (proxy authentication required or refused). Its ``status`` is the proxy's, such
    as ``407`` or ``502`` (the proxy could not reach the server).

    A subclass of :class:`HTTPStatusError`: code that handles that handles this too. Like
    any stream failure it goes through the error strategy. A proxy that cannot be reached, or
    that drops the connection, is a network error of the transport instead, as for a server.
    The message never holds the proxy's credentials.
    """

    def __init__(self, status: int, headers: Headers | None = None):
        super().__init__(status, headers)
        self.args = (f"HTTP proxy error {status}",)


class HTTPContentTypeError(Exception):
    """
    The HTTP response did not have the content type ``text/event-stream``.

    The media type is compared case-insensitively and may carry parameters
    (``text/event-stream; charset=utf-8`` is accepted). The response headers are available
    from :attr:`headers`, and its status (a 2xx other than 204) from :attr:`status`.
    """

    def __init__(
        self, content_type: str, headers: Headers | None = None, status: int | None = None
    ):
        super().__init__(f'invalid content type "{content_type}"')
        self._content_type = content_type
        self._headers = _as_headers(headers)
        self._status = status

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` the server sent (empty when it sent none)."""
        return self._content_type

    @property
    def headers(self) -> Headers | None:
        """The HTTP response headers, if available. Header names are case-insensitive."""
        return self._headers

    @property
    def status(self) -> int | None:
        """The HTTP status of the response, or ``None`` if unknown."""
        return self._status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._content_type, self._headers, self._status))


class HTTPProtocolError(Exception):
    """
    The server's response broke HTTP/1.1, so the client dropped the connection: a malformed
    status line or header, a response head too large, conflicting or unsupported framing
    (``Content-Length`` with ``Transfer-Encoding``, a transfer or content coding the client
    cannot undo), a broken chunked encoding (a chunk size that is not hex, overflows, or
    whose line never ends), or a body that ended before its declared end.

    :attr:`reason` says which; :attr:`headers` are the response headers when the head was
    read. Like any stream failure, it goes through the error strategy.
    """

    def __init__(self, reason: str, headers: Headers | None = None):
        super().__init__(f"invalid HTTP response: {reason}")
        self._reason = reason
        self._headers = _as_headers(headers)

    @property
    def reason(self) -> str:
        """What was wrong with the response."""
        return self._reason

    @property
    def headers(self) -> Headers | None:
        """The HTTP response headers, if the head was read. Header names are case-insensitive."""
        return self._headers

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._reason, self._headers))


class EventTooLargeError(Exception):
    """
    An event (or a single unterminated line) grew past the configured maximum event size.

    The client drops the connection when this happens, so memory stays bounded whatever the
    server sends; the error strategy then decides whether to reconnect. :attr:`max_size` is
    the limit in bytes (``max_event_size`` of the client, 16 MiB by default).
    """

    def __init__(self, max_size: int):
        super().__init__(f"event exceeds the maximum event size of {max_size} bytes")
        self._max_size = max_size

    @property
    def max_size(self) -> int:
        """The limit, in bytes, that the event exceeded."""
        return self._max_size

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._max_size,))


class StreamTimeoutError(TimeoutError):
    """
    No bytes arrived on an open stream (or, before it, of the response head) for
    ``read_timeout`` seconds, so the client dropped the connection. It is a stream error
    like any other: the error strategy decides whether to reconnect.
    """

    def __init__(self, timeout: float):
        super().__init__(f"no data received for {timeout:g} seconds")
        self._timeout = timeout

    @property
    def timeout(self) -> float:
        """The read timeout, in seconds, that elapsed."""
        return self._timeout

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._timeout,))

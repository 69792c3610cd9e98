"""The aiohttp transport of :meth:`.AsyncConnectStrategy.http`."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from logging import Logger
from typing import Any

import aiohttp

from ld_eventsource._async_io import InterruptibleClient
from ld_eventsource._connect import AsyncConnectionClient, AsyncConnectionResult
from ld_eventsource._decompress import ACCEPT_ENCODING, Decompressor
from ld_eventsource._http import (
    DEFAULT_CONNECT_TIMEOUT,
    HttpParams,
    Proxy,
    Request,
    log_connecting,
    verdict,
)
from ld_eventsource.errors import (
    CaseInsensitiveHeaders,
    Headers,
    HTTPProtocolError,
    ProxyError,
    StreamTimeoutError,
)

__all__ = ["AiohttpTransport"]

_NO_TOTAL_TIMEOUT = aiohttp.ClientTimeout(total=None)

# Since aiohttp 3.10 a request can turn off aiohttp's own decompression (the client undoes
# content codings itself, in bounded pieces: _decompress); before, only a session can.
_PER_REQUEST_DECOMPRESS = tuple(int(p) for p in aiohttp.__version__.split(".")[:2]) >= (3, 10)

# The most bytes a response head may take, with the body bytes aiohttp reads along with it
# (its buffer, at most 2 x read_bufsize, and one read); aiohttp 3.14 allows 128 header
# lines of 8190 bytes, about as much, and 3.8 to 3.13.0 any number of them.
_MAX_HEAD_BYTES = 1024 * 1024

# Bytes the connection may receive with no byte of payload coming out of aiohttp's parser:
# a chunk-size line, extension or trailer that never ends (aiohttp's C parser skips chunk
# extensions without a bound, and bytes that keep coming defeat any read timeout).
_MAX_FRAMING_BYTES = 65536

# The body buffer's low-water mark (aiohttp's ``read_bufsize``, 64 KiB by default). aiohttp
# resumes its parser on every HTTP chunk taken from a buffer below that mark, which costs more
# than parsing the event in it when each event is a chunk of its own; with 16 KiB that happens
# on a small share of the chunks, and a stream of small chunked events reads about 25 % faster
# (bench/profile_sync.py --async-profile). Streams of large events read as fast as with 64 KiB.
_READ_BUFSIZE = 16384


class _GuardedConnector(aiohttp.TCPConnector):
    """
    A connector whose connections have a :class:`_Guard` from the start, so that the head
    of a response is bounded too (on the sessions that clients make for themselves;
    :meth:`aiohttp.BaseConnector.connect` is public API).
    """

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        connection = await super().connect(*args, **kwargs)
        transport = getattr(connection, "transport", None)
        if transport is not None and not transport.is_closing():
            _Guard.install(transport)
        return connection


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
        self.connector = _GuardedConnector(limit=0, limit_per_host=0)
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


class AiohttpTransport:
    """
    The checked settings of :meth:`.AsyncConnectStrategy.http`, for all its clients.

    Everything that does not change between connections is worked out here, once for all
    the clients of the strategy (it is immutable): a client only refers to it.
    """

    __slots__ = ("_headers", "_options", "_params", "_read_timeout", "_session")

    def __init__(self, params: HttpParams, session: aiohttp.ClientSession | None):
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        self._params = params
        self._session = session
        if params.request_options:
            self._headers, self._options, self._read_timeout = _request_options(
                params.request_options, params.read_timeout
            )
        else:
            self._headers = None
            self._options, self._read_timeout = _default_options(params.read_timeout)

    def create_client(self, logger: Logger) -> AsyncConnectionClient:
        """The connection client of one :class:`.AsyncSSEClient`."""
        return _AsyncHttpConnectionClient(self, logger)


def _request_options(
    request_options: Mapping[str, Any], read_timeout: float | None
) -> tuple[dict[str, Any] | None, dict[str, Any], float | None]:
    """The caller's extra headers, the keyword arguments of every request, and sock_read."""
    options = dict(request_options)
    headers = options.pop("headers", None)
    timeout = options.pop("timeout", None)
    if timeout is None:
        # Not aiohttp's default (5 minutes in all), which would cut every long stream.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=DEFAULT_CONNECT_TIMEOUT)
    elif not isinstance(timeout, aiohttp.ClientTimeout):
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=float(timeout), sock_read=float(timeout)
        )
    if read_timeout is not None:
        timeout = aiohttp.ClientTimeout(
            total=timeout.total,
            connect=timeout.connect,
            sock_connect=timeout.sock_connect,
            sock_read=read_timeout,
        )
    options["timeout"] = timeout
    options.setdefault("read_bufsize", _READ_BUFSIZE)
    # Redirects are followed by the client (_http.redirect), never by aiohttp, whose rules
    # changed across releases (some forward Cookie to another origin). aiohttp's own two
    # options still set the bound: aiohttp counts requests where the client counts redirects.
    if not options.pop("allow_redirects", True):
        options["_max_redirects"] = 0
    elif "max_redirects" in options:
        options["_max_redirects"] = max(int(options["max_redirects"]) - 1, 0)
    options.pop("max_redirects", None)
    options["allow_redirects"] = False
    # The client undoes content codings itself (_decompress); the caller's choice changes
    # nothing in what the stream reads.
    options.pop("auto_decompress", None)
    if _PER_REQUEST_DECOMPRESS:
        options["auto_decompress"] = False
    return (dict(headers) if headers else None), options, timeout.sock_read


@functools.lru_cache(maxsize=64)
def _default_options(read_timeout: float | None) -> tuple[dict[str, Any], float | None]:
    """
    :func:`_request_options` without caller options: shared by every strategy with the same
    read timeout (never modified: each request gets its own copy as keyword arguments).
    """
    _, options, sock_read = _request_options({}, read_timeout)
    return options, sock_read


class _AsyncHttpConnectionClient(InterruptibleClient):
    # One per AsyncSSEClient, so kept small: what is shared lives in the strategy.
    __slots__ = ("_connector", "_logger", "_own_session", "_proxies", "_strategy")

    def __init__(self, strategy: AiohttpTransport, logger: Logger):
        super().__init__()
        self._strategy = strategy
        self._proxies = strategy._params.proxy.resolve()
        self._own_session: aiohttp.ClientSession | None = None
        self._connector: _SharedConnector | None = None
        self._logger = logger

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
                auto_decompress=False,
            )
        return session

    async def connect(self, last_event_id: str | None) -> AsyncConnectionResult:
        strategy = self._strategy
        session = self._get_session()
        accept = ACCEPT_ENCODING
        if not _PER_REQUEST_DECOMPRESS and session is strategy._session:
            # aiohttp < 3.10 decompresses on a session of the caller's that says so, and
            # knows gzip and deflate for sure.
            accept = "gzip, deflate"
        request = strategy._params.request(
            last_event_id, base=strategy._headers, accept_encoding=accept
        )
        headers: dict[str, Any] = request.headers
        for name, value in headers.items():
            if isinstance(value, bytes):
                # A value the caller gave as bytes: aiohttp takes str, and writes it as UTF-8.
                headers[name] = value.decode("utf-8")
        options = strategy._options
        max_redirects = options.get("_max_redirects", strategy._params.max_redirects)
        if "_max_redirects" in options:
            options = {k: v for k, v in options.items() if k != "_max_redirects"}
        proxies = self._proxies if "proxy" not in options else None  # the caller's wins
        followed = 0
        while True:
            proxy = proxies.for_url(request.url) if proxies else None
            log_connecting(self._logger, request.url, proxy)
            if proxy is None:
                sent, sent_options = request, options
            else:
                sent, sent_options = _via_proxy(request, options, proxy)
            if self._closed:  # between two requests of a redirect chain
                raise aiohttp.ClientConnectionError("the client was closed")
            # close() ends the request by cancelling the task that awaits it (closing the
            # session would not, when the connector is shared with other clients or is the
            # caller's): InterruptibleClient.
            try:
                await self._awaiting_request()
                response = await session.request(
                    sent.method, sent.url, headers=sent.headers, data=sent.body, **sent_options
                )
            except asyncio.CancelledError:
                if self._closed_while():
                    raise aiohttp.ClientConnectionError("the client was closed") from None
                raise
            except aiohttp.ClientHttpProxyError as e:
                # The proxy refused CONNECT. Not chained: aiohttp's error holds the headers
                # of the CONNECT request, and so the proxy's credentials.
                raise ProxyError(e.status, e.headers) from None
            except aiohttp.ClientResponseError as e:
                cause = e.__cause__
                if isinstance(cause, aiohttp.http_exceptions.HttpProcessingError):
                    # aiohttp's parser rejected the head: a bad status line, a line too
                    # long, too many headers, conflicting framing.
                    raise HTTPProtocolError(_describe(cause)) from e
                raise
            except aiohttp.ServerTimeoutError as e:
                if _is_read_timeout(e) and strategy._read_timeout is not None:
                    raise StreamTimeoutError(strategy._read_timeout) from e
                raise
            finally:
                self._request_done()
            try:
                # The errors make their own CaseInsensitiveHeaders of these headers.
                follow, coding = verdict(
                    request,
                    response.status,
                    response.headers,
                    followed,
                    max_redirects,
                    via_proxy=proxy is not None,
                )
            except Exception:
                response.close()  # at once, whatever the body does
                raise
            if follow is None:
                break
            response.close()  # never drained: the body of a redirect may never end
            followed += 1
            request = follow
        if coding != "identity" and not _PER_REQUEST_DECOMPRESS:
            # aiohttp < 3.10 with a session of the caller's that decompresses: aiohttp has
            # undone the coding already.
            if getattr(session, "auto_decompress", getattr(session, "_auto_decompress", True)):
                coding = "identity"
        return _Response(response, strategy._read_timeout, coding)

    async def close(self) -> None:
        self._interrupt_request()
        session, self._own_session = self._own_session, None
        connector, self._connector = self._connector, None
        try:
            if session is not None:
                await session.close()
        finally:
            if connector is not None:
                await connector.release()


def _via_proxy(
    request: Request, options: dict[str, Any], proxy: Proxy
) -> tuple[Request, dict[str, Any]]:
    """
    A request through ``proxy``, and its keyword arguments. The credentials go in the
    ``CONNECT`` of an ``https://`` request (``proxy_headers``), in the request itself for an
    ``http://`` one, which the proxy forwards; not with ``proxy_auth``, which aiohttp 3.14
    deprecates.
    """
    options = dict(options, proxy=proxy.url)
    authorization = proxy.authorization()
    if authorization is not None:
        if request.url[:6].lower() == "https:":
            options["proxy_headers"] = {"Proxy-Authorization": authorization}
        else:
            headers = dict(request.headers, **{"Proxy-Authorization": authorization})
            request = Request(request.method, request.url, headers, request.body)
    return request, options


def _describe(error: BaseException) -> str:
    """A short description of aiohttp's error, for an HTTPProtocolError."""
    message = " ".join(str(getattr(error, "message", "") or error).split())[:200]
    return f"{type(error).__name__}: {message}"


def _is_read_timeout(error: aiohttp.ServerTimeoutError) -> bool:
    """Whether a timeout is sock_read (aiohttp 3.10+ says so by class, earlier by message)."""
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)
    if connect_timeout is not None:
        return not isinstance(error, connect_timeout)
    return "Connection timeout" not in str(error)


class _Guard(asyncio.Protocol):
    """
    Stands between a connection's transport and aiohttp's protocol, installed with the
    transport's public ``set_protocol`` (so it works on every event loop and every aiohttp
    release).

    Before its response is attached (the head), it counts the bytes received and fails the
    request past :data:`_MAX_HEAD_BYTES` (aiohttp 3.8 to 3.13.0 at least bound each header
    line but not their number). Once a stream is attached (the body), it counts the bytes received
    since the last byte of payload and fails the stream past :data:`_MAX_FRAMING_BYTES`,
    and tells the stream when the connection is lost. Removed when the stream ends.
    """

    __slots__ = ("_content", "_response", "_since", "_total", "lost", "protocol", "transport")

    def __init__(self, transport: asyncio.BaseTransport, protocol: Any):
        self.transport = transport
        self.protocol = protocol
        self._content: aiohttp.StreamReader | None = None
        self._response: _Response | None = None
        self._since = 0
        self._total = 0
        self.lost: Exception | None = None
        """What ended the connection, once it ended: ``None`` for an orderly close."""

    @classmethod
    def install(cls, transport: asyncio.BaseTransport) -> _Guard:
        """The guard of ``transport``, installed if it has none."""
        protocol = transport.get_protocol()
        if isinstance(protocol, _Guard):
            return protocol
        guard = cls(transport, protocol)
        transport.set_protocol(guard)
        return guard

    def attach(self, response: _Response, content: aiohttp.StreamReader) -> None:
        """From now on, guards the body of ``response``."""
        self._response = response
        self._content = content
        self._total = content.total_bytes
        self._since = 0

    def data_received(self, data: bytes) -> None:
        self.protocol.data_received(data)
        content = self._content
        if content is None:
            # The head, and at most aiohttp's buffer of body bytes read along with it.
            self._since += len(data)
            if self._since > _MAX_HEAD_BYTES:
                self._since = -(2**62)  # once
                self.protocol.set_exception(
                    HTTPProtocolError(f"response head over {_MAX_HEAD_BYTES} bytes")
                )
                self.transport.close()
            return
        total = content.total_bytes
        if total != self._total:
            self._total = total
            self._since = 0
            return
        self._since += len(data)
        response = self._response
        if self._since > _MAX_FRAMING_BYTES and content.exception() is None and response:
            response._fail(
                HTTPProtocolError(
                    f"over {_MAX_FRAMING_BYTES} bytes of chunked framing without payload"
                    " (a chunk-size line, extension or trailer that never ends)"
                )
            )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.protocol.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self.protocol.connection_lost(exc)
        if self._response is not None:
            self._response._connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()

    def remove(self) -> None:
        """Gives the transport back to aiohttp's protocol."""
        if self.transport.get_protocol() is self:
            self.transport.set_protocol(self.protocol)


class _Response(AsyncConnectionResult):
    """
    One open response: the connection result, its stream of chunks and its closer at once,
    so that a stream costs one small object.

    Each read returns what is buffered, never waiting for more; a content coding is undone
    in pieces of at most 64 KiB. The response is closed when the body ends, when a read
    fails (or is cancelled), and by :meth:`close`; after that the stream is over.
    """

    __slots__ = (
        "_content",
        "_decoder",
        "_guard",
        "_lost_error",
        "_pieces",
        "_raw_headers",
        "_read_timeout",
        "_response",
    )

    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float | None, coding: str):
        self._response: aiohttp.ClientResponse | None = response
        self._content = response.content
        self._read_timeout = read_timeout
        self._raw_headers = response.headers
        self._headers = None  # made from _raw_headers when first asked for
        self._closer = None
        self._status = response.status
        self._decoder = Decompressor(coding) if coding != "identity" else None
        self._pieces: Iterator[bytes] | None = None
        self._lost_error: BaseException | None = None
        self._guard: _Guard | None = None
        self._guard_framing(response)

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
        pieces = self._pieces
        if pieces is not None:
            piece = self._next_piece(pieces)
            if piece is not None:
                return piece
        while True:
            if self._response is None:
                raise StopAsyncIteration
            try:
                chunk = await self._content.readany()
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as e:
                self._end()
                raise StreamTimeoutError(self._read_timeout or 0.0) from e
            except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as e:
                # A body cut short or whose framing broke (aiohttp's parser says which).
                # When the connection was reset, the reset is the error to see.
                self._end()
                lost = self._lost_error
                if lost is not None:
                    raise lost from e
                raise HTTPProtocolError(_describe(e.__cause__ or e)) from e
            except aiohttp.ClientConnectionError as e:
                if self._response is not None:
                    self._end()
                    raise
                # close() ended the read. aiohttp fails it with one exception object shared
                # by every response so closed, and each raise adds the frames it goes through
                # to that object's traceback: they, this stream and its client would stay
                # alive for good. Dropped here, and the stream just ends.
                e.__traceback__ = None
                raise StopAsyncIteration from None
            except BaseException:
                self._end()
                raise
            if not chunk:
                lost = self._lost_error
                self._end()
                if lost is not None:
                    raise lost  # a close-delimited body ended by a reset, not in order
                raise StopAsyncIteration
            if self._decoder is None:
                return chunk
            piece = self._next_piece(self._decoder.feed(chunk))
            if piece is not None:
                return piece

    def _next_piece(self, pieces: Iterator[bytes]) -> bytes | None:
        try:
            piece = next(pieces, None)
        except BaseException:
            self._end()
            raise
        self._pieces = pieces if piece is not None else None
        return piece

    async def close(self) -> None:
        self._end()

    def _end(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.remove()
        self._pieces = None
        response, self._response = self._response, None
        if response is not None:
            response.close()

    def _fail(self, error: Exception) -> None:
        """Fails the stream from the connection's side: the next read raises ``error``."""
        self._content.set_exception(error)
        response = self._response
        if response is not None:
            response.close()  # no more bytes; the reader still sees the error first

    def _guard_framing(self, response: aiohttp.ClientResponse) -> None:
        connection = response.connection
        transport = getattr(connection, "transport", None)
        if transport is None:
            return  # the body is in already
        if transport.is_closing() and not isinstance(transport.get_protocol(), _Guard):
            return  # the body is in already, with no guard of ours to tell how it ended
        # A connection already closing may not have called connection_lost yet: the guard
        # installed when it was made tells us then, or has seen how it ended (a reset ends a
        # close-delimited body, not in order).
        guard = self._guard = _Guard.install(transport)
        guard.attach(self, self._content)
        if guard.lost is not None:
            self._lost_error = guard.lost

    def _connection_lost(self, exc: BaseException | None) -> None:
        """
        After aiohttp's protocol has seen the connection go: makes a pending read fail, and
        remembers a reset.

        When aiohttp's C parser meets broken chunked framing it closes the connection but
        leaves the body stream open, so a read would wait forever (sock_read does not fire
        either). And for aiohttp a reset ends a close-delimited body as if in order; the
        reset (``ConnectionResetError``, as in the sync client) is the error to see.
        """
        if exc is not None and self._response is not None:
            self._lost_error = exc
        content = self._content
        if not content.is_eof() and content.exception() is None:
            content.set_exception(
                aiohttp.ClientPayloadError("connection lost before the end of the response")
            )

"""
The httpx transport of :meth:`.ConnectStrategy.httpx` and :meth:`.AsyncConnectStrategy.httpx`.

httpx does the I/O (HTTP/1.1, or HTTP/2 with ``h2``); the rules are the shared ones of
:mod:`._http`. httpx follows no redirect here: :func:`._http.redirect_after` does, with its
credential rules, on the headers httpx actually sent (those of the caller's client, its
cookies and its ``auth`` included). The body is read raw (``iter_raw``) and a content coding
is undone by :mod:`._decompress`, in bounded pieces, so that the size limit applies to the
decoded bytes and each event comes out as soon as its bytes arrive.

Proxies: with a client of its own, the proxy of each request is the one that the shared
rule of :mod:`._http` chooses for its URL (:class:`._http.ProxyChoice`: the ``proxy``
option, or the environment with ``NO_PROXY``), not httpx's ``trust_env``, which reads the
environment by other rules. The client routes each request to an httpx transport of that
proxy (:class:`_Routes`), so that a redirect to another host goes the way its URL says. A
caller's client keeps its own proxy settings.

The module works with ``httpx`` and with its fork ``httpx2``, which keeps the client API
under another name: every class and exception is taken from the module of the caller's
client (:class:`_Library`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from logging import Logger
from types import ModuleType
from typing import Any, NoReturn

import httpx

from ld_eventsource._async_io import InterruptibleClient
from ld_eventsource._connect import (
    AsyncConnectionResult,
    ConnectionClient,
    ConnectionResult,
)
from ld_eventsource._decompress import Decompressor
from ld_eventsource._http import (
    DEFAULT_CONNECT_TIMEOUT,
    HttpParams,
    Proxy,
    ProxyChoice,
    Request,
    log_connecting,
    verdict,
)
from ld_eventsource.errors import (
    CaseInsensitiveHeaders,
    HTTPProtocolError,
    ProxyError,
    StreamTimeoutError,
)

__all__ = ["HttpxTransport"]

# Headers of a request that httpx works out for each request itself: never carried over to
# the request that follows a redirect.
_RECOMPUTED = frozenset({b"host", b"content-length", b"transfer-encoding"})

# What httpcore's trace extension reports once a connection has its socket.
_CONNECTED = (
    "connection.connect_tcp.complete",
    "connection.start_tls.complete",
    "connection.connect_unix_socket.complete",
)


class _Library:
    """The classes of ``httpx`` or of ``httpx2``: the module of the client in use."""

    __slots__ = (
        "Request",
        "Timeout",
        "client_class",
        "module",
        "network_error",
        "proxy_error",
        "read_timeout",
        "remote_error",
    )

    def __init__(self, module: ModuleType, *, asynchronous: bool):
        self.module = module
        self.client_class: type = module.AsyncClient if asynchronous else module.Client
        self.Request: Any = module.Request
        self.Timeout: Any = module.Timeout
        self.read_timeout: type[Exception] = module.ReadTimeout
        self.remote_error: type[Exception] = module.RemoteProtocolError
        self.network_error: type[Exception] = module.NetworkError
        self.proxy_error: type[Exception] = module.ProxyError

    @classmethod
    def of(cls, client: Any, *, asynchronous: bool) -> _Library:
        """The library of ``client``; ``TypeError`` unless it is a client of the right kind."""
        kind = "AsyncClient" if asynchronous else "Client"
        for name in ("httpx", "httpx2"):
            module = httpx if name == "httpx" else sys.modules.get(name)
            if module is not None and isinstance(client, getattr(module, kind)):
                return cls(module, asynchronous=asynchronous)
        raise TypeError(f"client must be an httpx.{kind}, not {type(client).__name__}")


class HttpxTransport:
    """
    The checked settings of an ``httpx()`` factory, for all its clients: the parts of each
    request that do not change, worked out once.
    """

    __slots__ = ("_client", "_http2", "_library", "_options", "_params", "_timeout", "read")

    def __init__(self, params: HttpParams, client: Any, *, http2: bool, asynchronous: bool) -> None:
        if not isinstance(http2, bool):
            raise TypeError(f"http2 must be a bool, not {type(http2).__name__}")
        if client is not None and http2:
            raise ValueError(
                "http2=True applies to the client the strategy creates; a client you pass"
                " uses HTTP/2 if you created it with http2=True"
            )
        if client is not None and params.proxy.mode == "fixed":
            raise ValueError(
                "proxy cannot be given with a client of your own: the client's own proxy"
                " settings are used (httpx.Client(proxy=...))"
            )
        self._library = (
            _Library.of(client, asynchronous=asynchronous)
            if client is not None
            else _Library(httpx, asynchronous=asynchronous)
        )
        if http2:
            try:
                import h2  # noqa: F401  (the http2 extra): fail here rather than at connection
            except ImportError as e:
                raise ImportError(
                    "http2=True needs h2: pip install 'launchdarkly-eventsource[http2]'"
                ) from e
        self._params = params
        self._client = client
        self._http2 = http2
        options = dict(params.request_options)
        for name in ("method", "url", "headers", "content", "data", "json", "files"):
            if name in options:
                raise ValueError(f"httpx_request_options cannot set {name!r}")
        timeout = options.pop("timeout", None)
        timeout_class = self._library.Timeout
        if timeout is None:
            # Not httpx's default (5 seconds for everything), which would cut every quiet
            # stream; no bound on the wait for a connection of the pool either.
            timeout = timeout_class(
                None, connect=DEFAULT_CONNECT_TIMEOUT, write=DEFAULT_CONNECT_TIMEOUT
            )
        elif not isinstance(timeout, timeout_class):
            timeout = timeout_class(timeout)
        if params.read_timeout is not None:
            timeout = timeout_class(
                connect=timeout.connect,
                read=params.read_timeout,
                write=timeout.write,
                pool=timeout.pool,
            )
        self._timeout = timeout
        self.read: float | None = timeout.read
        """The read timeout in force: seconds without a byte before StreamTimeoutError."""
        self._options = options

    def create_client(self, logger: Logger) -> Any:
        """The connection client of one SSE client."""
        if self._library.client_class is self._library.module.AsyncClient:
            return _AsyncClient(self, logger)
        return _SyncClient(self, logger)

    def proxies(self) -> ProxyChoice | None:
        """
        The proxies of one connection client (the environment is read here), or ``None``
        when the caller's client decides.
        """
        return self._params.proxy.resolve() if self._client is None else None

    def _new_client(self, proxies: ProxyChoice | None) -> Any:
        """
        A client of our own: no connection limit, no redirects, no environment; through
        the proxies that ``proxies`` chooses for each URL, if it names any.
        """
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        options: dict[str, Any] = {}
        if proxies is not None and any(proxies.proxies.values()):
            asynchronous = self._library.client_class is httpx.AsyncClient
            routes = _Routes(proxies, http2=self._http2, limits=limits, asynchronous=asynchronous)
            options["transport"] = _AsyncRouting(routes) if asynchronous else _SyncRouting(routes)
        return self._library.client_class(
            http2=self._http2,
            limits=limits,
            follow_redirects=False,
            trust_env=False,
            timeout=self._timeout,
            **options,
        )

    def first_request(self, client: Any, request: Request, trace: Any = None) -> Any:
        """The httpx request of the first attempt: the client's headers, cookies, params."""
        # Accept-Encoding is in request.headers already: the shared rule of _http, the codings
        # that _decompress undoes, unless the caller's headers set it.
        headers = _encoded(request.headers)
        options = dict(self._options)
        extensions = dict(options.pop("extensions", None) or {})
        if trace is not None:
            extensions["trace"] = trace
        return client.build_request(
            request.method,
            request.url,
            headers=headers,
            content=request.body,
            timeout=self._timeout,
            extensions=extensions,
            **options,
        )

    def verdict(
        self, response: Any, request: Request, followed: int, *, via_proxy: bool = False
    ) -> tuple[Request | None, str]:
        """
        What to do with a response: the request that follows it (a redirect), or ``None``
        and its content coding. Raises as :func:`.check_response` does (``via_proxy``: the
        request went through a proxy of ours, whose ``407`` is a :class:`.ProxyError`).
        """
        headers = response.headers
        # The request as httpx sent it: with the headers of the caller's client, its auth
        # and its cookies, so that the credential rules of _http.redirect apply to them too.
        sent = response.request
        request = Request(
            request.method,
            request.url,
            {k.decode("latin-1"): v for k, v in sent.headers.raw if k.lower() not in _RECOMPUTED},
            request.body,
        )
        return verdict(
            request,
            response.status_code,
            headers,
            followed,
            self._params.max_redirects,
            via_proxy=via_proxy,
        )

    def next_request(self, client: Any, follow: Request, previous: Any) -> Any:
        """The httpx request that follows a redirect, with the cookies of the client's jar."""
        new = self._library.Request(
            follow.method,
            follow.url,
            headers=_encoded(follow.headers),
            content=follow.body,
            extensions=dict(previous.extensions),
        )
        cookies = getattr(client, "cookies", None)
        if cookies is not None:
            cookies.set_cookie_header(new)
        return new

    def reraise(self, error: Exception) -> NoReturn:
        """Raises the documented error that stands for ``error``, or ``error`` itself."""
        mapped = self.error(error)
        if mapped is None:
            raise error
        if mapped.__traceback__ is not None:
            raise mapped from None  # the OSError that caused httpx's, as it was raised
        raise mapped from error

    def error(self, error: Exception) -> Exception | None:
        """The documented error that stands for an httpx error, or ``None`` (raise it as is)."""
        if isinstance(error, self._library.read_timeout):
            return StreamTimeoutError(self.read or 0.0)
        if isinstance(error, self._library.remote_error):
            # A response head or framing that h11 rejects, a body cut short, a stream reset
            # by the server (RST_STREAM) or a connection it ended (GOAWAY).
            return HTTPProtocolError(f"{type(error).__name__}: {str(error)[:200]}")
        if isinstance(error, self._library.proxy_error):
            # httpcore's message for a refused CONNECT: "407 Proxy Authentication Required".
            status = str(error)[:3]
            if status.isdigit():
                return ProxyError(int(status))
            return None
        if isinstance(error, self._library.network_error):
            # As the other transports report it: the OSError under httpx's and httpcore's
            # wrappers (ConnectionResetError, ConnectionRefusedError, ...).
            cause: BaseException | None = error
            while cause is not None and not isinstance(cause, OSError):
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, OSError):
                return cause
            return ConnectionResetError(f"{type(error).__name__}: {str(error)[:200]}")
        return None


class _Routes:
    """
    The httpx transports of a client of our own that goes through proxies: one for each
    proxy that :class:`.ProxyChoice` names, and one for direct requests, made when first
    needed; each request goes to that of the proxy chosen for its URL.
    """

    __slots__ = ("_asynchronous", "_choice", "_http2", "_limits", "_lock", "_transports")

    def __init__(
        self, choice: ProxyChoice, *, http2: bool, limits: Any, asynchronous: bool
    ) -> None:
        self._choice = choice
        self._http2 = http2
        self._limits = limits
        self._asynchronous = asynchronous
        self._lock = threading.Lock()
        self._transports: dict[Proxy | None, Any] = {}

    def transport(self, url: Any) -> Any:
        """The httpx transport for a request to ``url``."""
        proxy = self._choice.for_url(str(url))
        with self._lock:
            transport = self._transports.get(proxy)
            if transport is None:
                options: dict[str, Any] = {"http2": self._http2, "limits": self._limits}
                if proxy is not None:
                    # The credentials apart from the URL: httpx sends them as a basic
                    # Proxy-Authorization header to the proxy only (in CONNECT, or in the
                    # request it forwards), and masks the password in its Proxy's repr.
                    auth = None
                    if proxy.username is not None:
                        auth = (proxy.username, proxy.password or "")
                    options["proxy"] = httpx.Proxy(proxy.url, auth=auth)
                kind = httpx.AsyncHTTPTransport if self._asynchronous else httpx.HTTPTransport
                transport = self._transports[proxy] = kind(trust_env=False, **options)
            return transport

    def made(self) -> list[Any]:
        """The transports made so far, which the client closes with it."""
        with self._lock:
            return list(self._transports.values())


class _SyncRouting(httpx.BaseTransport):
    """:class:`_Routes` as the transport of an ``httpx.Client``."""

    def __init__(self, routes: _Routes) -> None:
        self._routes = routes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self._routes.transport(request.url).handle_request(request)
        return response

    def close(self) -> None:
        for transport in self._routes.made():
            transport.close()


class _AsyncRouting(httpx.AsyncBaseTransport):
    """:class:`_Routes` as the transport of an ``httpx.AsyncClient``."""

    def __init__(self, routes: _Routes) -> None:
        self._routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._routes.transport(request.url)
        response: httpx.Response = await transport.handle_async_request(request)
        return response

    async def aclose(self) -> None:
        for transport in self._routes.made():
            await transport.aclose()


def _encoded(headers: Mapping[str, str | bytes]) -> dict[str, bytes]:
    """The values as bytes: httpx would write a ``str`` as ASCII only; these go as UTF-8."""
    return {
        name: value.encode("utf-8") if isinstance(value, str) else value
        for name, value in headers.items()
    }


def _headers(response: Any) -> CaseInsensitiveHeaders:
    return CaseInsensitiveHeaders(response.headers.multi_items())


def _shutdown(stream: Any) -> None:
    """Shuts down the socket of an httpcore network stream: a blocked read returns."""
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


# RST_STREAM's error code CANCEL (RFC 9113, 7): "the stream is no longer needed".
_CANCEL = 0x8


def _h2_stream(response: Any) -> tuple[Any, Any, int] | None:
    """
    The httpcore HTTP/2 connection, request and stream id of a response over HTTP/2, or
    ``None``. (h2 knows whether the stream is still open: :func:`_reset` asks it.)

    httpcore (1.0) sends no RST_STREAM when a response is closed before its end: the server
    goes on with the stream, and what it sends counts against the connection's flow-control
    window, which nothing acknowledges any more (at 16 MiB the connection stalls for every
    stream). httpx's public API has no way to reset a stream, so this reaches through its
    byte streams to httpcore's (``_stream``, ``_httpcore_stream``, ``_stream``,
    ``_connection``): found, or ``None``, checked by tests/test_http2.py.
    """
    if response.extensions.get("http_version") != b"HTTP/2":
        return None
    stream: Any = getattr(response.stream, "_stream", None)  # BoundStream
    stream = getattr(stream, "_httpcore_stream", None)  # httpx's ResponseStream
    stream = getattr(stream, "_stream", None)  # httpcore's PoolByteStream
    connection = getattr(stream, "_connection", None)  # HTTP2ConnectionByteStream
    stream_id = getattr(stream, "_stream_id", None)
    if getattr(connection, "_h2_state", None) is None or not isinstance(stream_id, int):
        return None
    return connection, getattr(stream, "_request", None), stream_id


def _reset(found: tuple[Any, Any, int]) -> bool:
    """Queues RST_STREAM (CANCEL) on the stream; whether there is something to write."""
    connection, _, stream_id = found
    try:
        connection._h2_state.reset_stream(stream_id, _CANCEL)
    except Exception:  # the stream ended meanwhile, or the connection did
        return False
    return True


def _cancel_sync(response: Any) -> None:
    """Resets an HTTP/2 stream that is closed before its end (:func:`_h2_stream`)."""
    found = _h2_stream(response)
    if found is not None and _reset(found):
        try:
            found[0]._write_outgoing_data(found[1])
        except Exception:
            pass  # the connection is gone: so is the stream


# How long close() keeps waking the readers of a shared HTTP/2 connection for the read of
# its stream to end, before it shuts the connection down instead; and how often.
_WAKE_FOR = 1.0
_WAKE_EVERY = 0.01


def _wake_sync(response: Any, reading: Callable[[], bool]) -> bool:
    """
    Ends a read of an HTTP/2 stream blocked in another thread, the connection and its other
    streams going on; ``False`` if it cannot (then the caller shuts the connection down).

    httpcore's sync reader loops on the connection until an event of its stream is queued,
    and only one thread reads the connection at a time, the others waiting for its lock:
    this resets the stream, queues a ``StreamReset`` for it, and sends PINGs, each ACK
    waking the thread that reads, until the read of this stream has failed with the reset
    (``reading()`` false; the reading thread closes the response itself: closing it here
    would drop the queued event).
    """
    found = _h2_stream(response)
    if found is None:
        return False
    connection, request, stream_id = found
    events = getattr(connection, "_events", None)
    if not isinstance(events, dict) or not isinstance(events.get(stream_id), list):
        return False
    try:
        import h2.events

        connection._h2_state.reset_stream(stream_id, _CANCEL)
        reset = h2.events.StreamReset(stream_id=stream_id, error_code=_CANCEL, remote_reset=False)
        events[stream_id].append(reset)
        deadline = time.monotonic() + _WAKE_FOR
        sent = 0
        while reading() and time.monotonic() < deadline:
            connection._h2_state.ping(sent.to_bytes(8, "big"))
            connection._write_outgoing_data(request)
            sent += 1
            time.sleep(_WAKE_EVERY)
    except Exception:
        return False
    return not reading()


async def _cancel_async(response: Any) -> None:
    """:func:`_cancel_sync` for an async response."""
    found = _h2_stream(response)
    if found is not None and _reset(found):
        try:
            await found[0]._write_outgoing_data(found[1])
        except Exception:
            pass


class _Attempt:
    """
    The trace extension of one sync connection attempt: the sockets it connected, so that
    ``close()`` from another thread can end an attempt still waiting for its response.
    """

    __slots__ = ("client", "streams")

    def __init__(self, client: _SyncClient):
        self.client = client
        self.streams: list[Any] = []

    def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name in _CONNECTED:
            stream = info.get("return_value")
            self.streams.append(stream)
            if self.client._closed:
                _shutdown(stream)  # closed while connecting: fails at the first I/O


class _SyncClient(ConnectionClient):
    __slots__ = ("_attempt", "_closed", "_http", "_lock", "_logger", "_proxies", "_transport")

    def __init__(self, transport: HttpxTransport, logger: Logger):
        self._transport = transport
        self._logger = logger
        self._proxies = transport.proxies()
        self._http: Any = transport._client
        self._closed = False
        self._attempt: _Attempt | None = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._closed:
                raise ConnectionAbortedError("the client was closed")
            if self._http is None:
                self._http = self._transport._new_client(self._proxies)
            return self._http

    def connect(self, last_event_id: str | None) -> ConnectionResult:
        transport = self._transport
        request = transport._params.request(last_event_id)
        client = self._client()
        attempt = self._attempt = _Attempt(self)
        prepared = transport.first_request(client, request, attempt)
        followed = 0
        try:
            while True:
                proxy = self._proxies.for_url(request.url) if self._proxies else None
                log_connecting(self._logger, request.url, proxy)
                response = self._send(client, prepared, first=followed == 0)
                try:
                    follow, coding = transport.verdict(
                        response, request, followed, via_proxy=proxy is not None
                    )
                except BaseException:
                    response.close()  # at once, whatever the body does
                    raise
                if follow is None:
                    break
                response.close()  # never drained: the body of a redirect may never end
                followed += 1
                request = follow
                prepared = transport.next_request(client, follow, prepared)
        finally:
            self._attempt = None
        if self._closed:
            response.close()
            raise ConnectionAbortedError("the client was closed")
        stream = _SyncStream(transport, response, coding)
        return ConnectionResult(
            stream, stream.close, _headers(response), status=response.status_code
        )

    def _send(self, client: Any, prepared: Any, *, first: bool) -> Any:
        if self._closed:  # between two requests of a redirect chain
            raise ConnectionAbortedError("the client was closed")
        try:
            if first:
                return client.send(prepared, stream=True, follow_redirects=False)
            # The auth of the client applies to the first request only, as in httpx: what it
            # set is in the headers carried over, within the rules of _http.redirect.
            return client.send(prepared, stream=True, follow_redirects=False, auth=None)
        except Exception as e:
            self._transport.reraise(e)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            http, own = self._http, self._http is not self._transport._client
        attempt = self._attempt
        if attempt is not None:
            for stream in attempt.streams:
                _shutdown(stream)
        if own and http is not None:
            http.close()


class _SyncStream:
    """
    The body of one response, as it arrives, and its closer.

    ``close()`` may come from another thread while a read is blocked. Over HTTP/2 the stream
    is reset and the read woken (:func:`_wake_sync`), the connection going on; otherwise (or
    if that cannot be done) the socket is shut down first, so that the read returns at once:
    on a connection of its own (HTTP/1.1, or a client the strategy made) only this stream
    goes. A close while no read is pending (the reading thread closing) only closes the
    stream, and resets it over HTTP/2.
    """

    __slots__ = ("_coding", "_ended", "_iter", "_reading", "_response", "_transport")

    def __init__(self, transport: HttpxTransport, response: Any, coding: str):
        self._transport = transport
        self._response = response
        self._coding = coding
        self._reading = False
        self._ended = False
        self._iter = self._chunks()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._iter)

    def _chunks(self) -> Iterator[bytes]:
        response = self._response
        decompressor = Decompressor(self._coding) if self._coding != "identity" else None
        # The byte stream under iter_raw() (public: Response.stream), read directly: one
        # generator less a chunk, the bytes as the transport hands them over.
        raw = iter(response.stream)
        try:
            while True:
                self._reading = True
                try:
                    data = next(raw, None)
                finally:
                    self._reading = False
                if data is None:
                    self._ended = True
                    return
                if decompressor is None:
                    yield data
                else:
                    yield from decompressor.feed(data)
        except Exception as e:
            self._transport.reraise(e)
        finally:
            if not self._ended and not self._reading:
                _cancel_sync(response)  # an error, or the iterator dropped: reset the stream
            close = getattr(raw, "close", None)
            if close is not None:
                close()
            response.close()

    def close(self) -> None:
        response = self._response
        if self._reading:
            if _wake_sync(response, lambda: self._reading):
                return  # the reading thread failed with the reset, and closes the response
            _shutdown(response.extensions.get("network_stream"))
        elif not self._ended:
            _cancel_sync(response)  # no read pending here: the stream alone goes
        response.close()


class _AsyncClient(InterruptibleClient):
    __slots__ = ("_http", "_logger", "_proxies", "_transport")

    def __init__(self, transport: HttpxTransport, logger: Logger):
        super().__init__()
        self._transport = transport
        self._logger = logger
        self._proxies = transport.proxies()
        self._http: Any = transport._client

    async def connect(self, last_event_id: str | None) -> AsyncConnectionResult:
        transport = self._transport
        request = transport._params.request(last_event_id)
        if self._closed:
            raise ConnectionAbortedError("the client was closed")
        if self._http is None:
            self._http = transport._new_client(self._proxies)
        client = self._http
        prepared = transport.first_request(client, request)
        followed = 0
        while True:
            proxy = self._proxies.for_url(request.url) if self._proxies else None
            log_connecting(self._logger, request.url, proxy)
            response = await self._send(client, prepared, first=followed == 0)
            try:
                follow, coding = transport.verdict(
                    response, request, followed, via_proxy=proxy is not None
                )
            except BaseException:
                await response.aclose()  # at once, whatever the body does
                raise
            if follow is None:
                break
            await response.aclose()  # never drained: the body of a redirect may never end
            followed += 1
            request = follow
            prepared = transport.next_request(client, follow, prepared)
        return _AsyncStream(transport, response, coding)

    async def _send(self, client: Any, prepared: Any, *, first: bool) -> Any:
        if self._closed:  # between two requests of a redirect chain
            raise ConnectionAbortedError("the client was closed")
        kwargs: dict[str, Any] = {"stream": True, "follow_redirects": False}
        if not first:
            kwargs["auth"] = None  # as in the sync client
        # close() ends the request by cancelling the task that awaits it (closing the client
        # would not, when it is the caller's): InterruptibleClient.
        try:
            await self._awaiting_request()
            return await client.send(prepared, **kwargs)
        except asyncio.CancelledError:
            if self._closed_while():
                raise ConnectionAbortedError("the client was closed") from None
            raise
        except Exception as e:
            self._transport.reraise(e)
        finally:
            self._request_done()

    async def close(self) -> None:
        self._interrupt_request()
        http = self._http
        if http is not None and http is not self._transport._client:
            self._http = None
            await http.aclose()


class _AsyncStream(AsyncConnectionResult):
    """
    One open response: the connection result and its stream of chunks at once.

    ``close()`` from another task ends a pending read. Over HTTP/1.1 closing the response
    does (its connection closes). Over HTTP/2 it would not: httpcore's reader waits on the
    connection, shared with other streams, for as long as nothing arrives. So each read of
    an HTTP/2 stream runs as a task of its own, which ``close()`` cancels (the connection and
    its other streams go on), and the stream is reset (``RST_STREAM``).
    """

    __slots__ = (
        "_decoder",
        "_ended",
        "_h2",
        "_pieces",
        "_raw",
        "_read",
        "_response",
        "_timeout",
        "_transport",
    )

    def __init__(self, transport: HttpxTransport, response: Any, coding: str):
        super().__init__(self, None, _headers(response), status=response.status_code)
        self._transport = transport
        self._response: Any = response
        # As in the sync stream: the byte stream under aiter_raw(), read directly.
        self._raw: AsyncIterator[bytes] = aiter(response.stream)
        self._decoder = Decompressor(coding) if coding != "identity" else None
        self._pieces: Iterator[bytes] | None = None
        self._ended = False
        self._h2 = response.extensions.get("http_version") == b"HTTP/2"
        self._read: asyncio.Future[bytes] | None = None
        self._timeout: float | None = None
        if self._h2 and transport.read is not None:
            # httpcore applies a read timeout to the connection that the streams share: it
            # fires when nothing comes for any stream, and then fails all of them. Each read
            # of this stream is timed here instead, and httpcore's reads for this request
            # wait without one (the request's "timeout" extension, which httpcore reads at
            # every read; the rest of it stays).
            extensions = response.request.extensions
            timeouts = extensions.get("timeout")
            if isinstance(timeouts, dict):
                extensions["timeout"] = {**timeouts, "read": None}
                self._timeout = transport.read

    @property
    def stream(self) -> AsyncIterator[bytes]:
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        pieces = self._pieces
        if pieces is not None:
            piece = next(pieces, None)
            if piece is not None:
                return piece
            self._pieces = None
        while True:
            if self._response is None:
                raise StopAsyncIteration
            try:
                if self._h2:
                    data = await self._read_h2()
                else:
                    data = await anext(self._raw)
            except StopAsyncIteration:
                self._ended = True
                await self.close()
                raise
            except Exception as e:
                closed = self._response is None
                await self.close()  # resets the stream, unless h2 knows it has ended
                if closed:
                    raise StopAsyncIteration from None  # close() ended the read
                self._transport.reraise(e)
            if self._decoder is None:
                return data
            pieces = self._decoder.feed(data)
            piece = next(pieces, None)
            if piece is not None:
                self._pieces = pieces
                return piece

    async def _read_h2(self) -> bytes:
        read = self._read = asyncio.ensure_future(anext(self._raw))
        try:
            if self._timeout is None:
                return await read
            await asyncio.wait((read,), timeout=self._timeout)
            if not read.done():
                read.cancel()
                raise StreamTimeoutError(self._timeout)
            return read.result()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            if self._response is None and read.cancelled() and not (cancelling and cancelling()):
                raise StopAsyncIteration from None  # close() ended the read
            read.cancel()
            raise
        finally:
            self._read = None

    async def close(self) -> None:
        response, self._response = self._response, None
        self._pieces = None
        read = self._read
        if read is not None and not read.done():
            read.cancel()
        if response is not None:
            if not self._ended:
                await _cancel_async(response)
            await response.aclose()
            aclose = getattr(self._raw, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except RuntimeError:
                    pass  # being read in another task: the read fails and ends it

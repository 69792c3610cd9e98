"""The urllib3 transport of :meth:`.ConnectStrategy.http`."""

from __future__ import annotations

import socket
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.client import HTTPException
from logging import Logger
from typing import Any, cast

import urllib3
from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util import Retry, Timeout

from ld_eventsource._chunked import ChunkedDecoder, ChunkedEncodingError
from ld_eventsource._connect import ConnectionClient, ConnectionResult
from ld_eventsource._decompress import Decompressor
from ld_eventsource._http import (
    DEFAULT_CONNECT_TIMEOUT,
    LAST_EVENT_ID,
    HttpParams,
    Proxy,
    Request,
    log_connecting,
    tunnel_status,
    verdict,
)
from ld_eventsource.errors import (
    CaseInsensitiveHeaders,
    HTTPProtocolError,
    ProxyError,
    StreamTimeoutError,
)

__all__ = ["Urllib3Transport"]

_READ_SIZE = 65536


class _Tracking:
    """
    What the pools a client makes for itself add to urllib3's: they keep track of their
    connections, so that ``close()`` from another thread can also end an attempt still
    waiting for its response (mixed into a ``PoolManager`` or a ``ProxyManager``).

    It overrides urllib3's ``_new_pool`` and wraps the pool's ``ConnectionCls``, both
    present from urllib3 1.26 to 2.x; a pool without ``ConnectionCls`` is used untracked,
    and then such an attempt ends with its timeouts instead.
    """

    connections: weakref.WeakSet[Any]
    interrupted: bool

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> Any:
        pool: Any = super()._new_pool(scheme, host, port, request_context)  # type: ignore[misc]
        make = getattr(pool, "ConnectionCls", None)
        if make is None:
            return pool
        connections = self.connections
        manager = self

        def tracked(*args: Any, **kwargs: Any) -> Any:
            connection = make(*args, **kwargs)
            connections.add(connection)
            connect = connection.connect

            def connect_unless_interrupted() -> None:
                # interrupt() finds no socket to shut down while a connection is still being
                # made: the attempt would then wait for its response for ever. So the flag
                # is checked once the socket exists (interrupt() sets it before it looks).
                if manager.interrupted:
                    raise ConnectionAbortedError("the client was closed")
                connect()
                if manager.interrupted:
                    _shutdown(connection)
                    raise ConnectionAbortedError("the client was closed")

            connection.connect = connect_unless_interrupted
            return connection

        pool.ConnectionCls = tracked
        return pool

    def interrupt(self) -> None:
        """
        Shuts down the socket of every connection, waking any thread blocked on one, and
        makes every connection still being made fail once connected.
        """
        self.interrupted = True
        for connection in list(self.connections):
            _shutdown(connection)


class _OwnPoolManager(_Tracking, urllib3.PoolManager):
    """The pool a client makes for itself, for the requests that go directly."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = weakref.WeakSet()
        self.interrupted = False


class _OwnProxyManager(_Tracking, urllib3.ProxyManager):
    """The pool a client makes for itself for the requests through one proxy."""

    def __init__(self, proxy: Proxy, connection_pool_kw: Mapping[str, Any]) -> None:
        authorization = proxy.authorization()
        super().__init__(
            proxy.url,
            proxy_headers={"Proxy-Authorization": authorization} if authorization else None,
            **connection_pool_kw,
        )
        self.connections = weakref.WeakSet()
        self.interrupted = False


def _shutdown(connection: Any) -> None:
    """Shuts down the socket of a urllib3 connection, if it has one."""
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Urllib3Transport:
    """The checked settings of :meth:`.ConnectStrategy.http`, for all its clients."""

    __slots__ = ("_params", "_pool")

    def __init__(self, params: HttpParams, pool: urllib3.PoolManager | None):
        if pool is not None and not isinstance(pool, urllib3.PoolManager):
            raise TypeError(f"pool must be a urllib3.PoolManager, not {type(pool).__name__}")
        if isinstance(pool, urllib3.ProxyManager) and params.proxy.mode == "fixed":
            raise ValueError(
                "proxy cannot be given with a pool that is a urllib3.ProxyManager:"
                " the pool's own proxy is used"
            )
        self._params = params
        self._pool = pool

    def create_client(self, logger: Logger) -> ConnectionClient:
        return _HttpConnectionClient(self._params, self._pool, logger)


class _HttpConnectionClient(ConnectionClient):
    def __init__(self, params: HttpParams, pool: urllib3.PoolManager | None, logger: Logger):
        self._params = params
        self._pool = pool if pool is not None else _OwnPoolManager()
        # A ProxyManager of the caller's is used as it is, for every request.
        self._proxies = None if isinstance(pool, urllib3.ProxyManager) else params.proxy.resolve()
        self._proxy_pools: dict[Proxy, _OwnProxyManager] = {}
        self._logger = logger
        options = dict(params.request_options)
        timeout = options.pop("timeout", None)
        if timeout is None:
            timeout = Timeout(connect=DEFAULT_CONNECT_TIMEOUT, read=None)
        elif not isinstance(timeout, Timeout):
            timeout = Timeout(connect=timeout, read=timeout)
        if params.read_timeout is not None:
            timeout = Timeout(connect=timeout.connect_timeout, read=params.read_timeout)
        read = timeout.read_timeout
        self._read_timeout = read if isinstance(read, (int, float)) else None
        options["timeout"] = timeout
        options.setdefault(
            "retries",
            Retry(
                total=None,
                connect=0,
                read=0,
                status=0,
                other=0,
                redirect=params.max_redirects,
                raise_on_redirect=False,
            ),
        )
        self._options = options

    def connect(self, last_event_id: str | None) -> ConnectionResult:
        options = dict(self._options)
        request = self._params.request(last_event_id, base=options.pop("headers", None))
        headers: dict[str, Any] = request.headers
        last_id = headers.get(LAST_EVENT_ID)
        if isinstance(last_id, str):
            # http.client writes a str header value as Latin-1; the id goes out as UTF-8.
            headers[LAST_EVENT_ID] = last_id.encode("utf-8")
        request = Request(request.method, request.url, headers, request.body)
        followed = 0
        while True:
            proxy = self._proxies.for_url(request.url) if self._proxies else None
            log_connecting(self._logger, request.url, proxy)
            response = self._send(self._pool_for(proxy), request, options)
            try:
                follow, coding = verdict(
                    request,
                    response.status,
                    response.headers,
                    followed,
                    self._params.max_redirects,
                    via_proxy=proxy is not None,
                )
            except Exception:
                _discard(response)  # at once, whatever the body does
                raise
            if follow is None:
                break
            _discard(response)  # never drained: the body of a redirect may never end
            followed += 1
            request = follow
        response_headers = CaseInsensitiveHeaders(response.headers)
        return ConnectionResult(
            _chunks(response, self._read_timeout, coding),
            _closer(response, self._logger),
            response_headers,
            status=response.status,
        )

    def _pool_for(self, proxy: Proxy | None) -> urllib3.PoolManager:
        """The pool for a request through ``proxy`` (``None``: directly)."""
        if proxy is None:
            return self._pool
        pool = self._proxy_pools.get(proxy)
        if pool is None:
            # With the connection settings (CA, client certificate...) of the caller's pool.
            settings = (
                {} if isinstance(self._pool, _OwnPoolManager) else self._pool.connection_pool_kw
            )
            pool = self._proxy_pools[proxy] = _OwnProxyManager(proxy, settings)
        return pool

    def _send(
        self, pool: urllib3.PoolManager, request: Request, options: dict[str, Any]
    ) -> urllib3.BaseHTTPResponse:
        try:
            return pool.request(
                request.method,
                request.url,
                body=request.body,
                headers=cast(dict[str, str], request.headers),  # bytes values are sent as they are
                preload_content=False,
                decode_content=False,  # undone here, in bounded pieces (_decompress)
                redirect=False,  # followed here, by the rules of _http.redirect
                **options,
            )
        except MaxRetryError as e:
            error = e.reason or e
        except (ProtocolError, ReadTimeoutError, InvalidHeader) as e:
            error = e  # raised as they are when the caller's retries allow no retry
        if isinstance(error, ReadTimeoutError):
            raise StreamTimeoutError(self._read_timeout or 0.0) from error
        if isinstance(error, InvalidHeader):  # urllib3 2: Content-Length values that differ
            raise HTTPProtocolError(str(error)) from error
        status = tunnel_status(error)
        if status is not None:  # the proxy refused CONNECT
            raise ProxyError(status) from error
        cause = _cause(error)
        if isinstance(cause, HTTPException) and not isinstance(cause, ConnectionError):
            # http.client's verdict on the head: a bad status line, a line too long, more
            # than 100 header lines (its bounds: 64 KiB a line, 100 lines).
            raise HTTPProtocolError(_describe(cause)) from error
        # The error itself, keeping what caused it (the OSError of a refused connection, say;
        # urllib3 1.26 leaves it in __context__ only): "from None" would erase it.
        raise error from (error.__cause__ or error.__context__)

    def close(self) -> None:
        own: list[_Tracking] = list(self._proxy_pools.values())
        if isinstance(self._pool, _OwnPoolManager):
            own.append(self._pool)
        for pool in own:
            pool.interrupt()
            # PoolManager.clear() closes the idle connections of every pool it holds.
            cast(urllib3.PoolManager, pool).clear()


def _chunks(
    response: urllib3.BaseHTTPResponse, read_timeout: float | None, coding: str
) -> Iterator[bytes]:
    """
    The body as it arrives: each read returns what the socket has (one ``recv``), never
    waiting for a buffer to fill, for chunked and close-delimited bodies alike; a content
    coding is undone in pieces of at most 64 KiB.
    """
    try:
        if coding == "identity":
            yield from _raw_body(response)
        else:
            decompressor = Decompressor(coding)
            for data in _raw_body(response):
                yield from decompressor.feed(data)
    except (TimeoutError, ReadTimeoutError) as e:
        raise StreamTimeoutError(read_timeout or 0.0) from e
    except HTTPException as e:
        # A Content-Length body cut short (IncompleteRead), from http.client.
        raise HTTPProtocolError(_describe(e)) from None
    except ProtocolError as e:
        # urllib3 wraps the reset or truncated body; the cause is more useful.
        cause = _cause(e)
        if isinstance(cause, HTTPException) and not isinstance(cause, ConnectionError):
            raise HTTPProtocolError(_describe(cause)) from None
        raise (cause if isinstance(cause, Exception) else e) from None
    finally:
        response.close()
        response.release_conn()


def _raw_body(response: urllib3.BaseHTTPResponse, *, fast: bool = True) -> Iterable[bytes]:
    """
    The body bytes, framing undone, content coding not.

    The fast paths read http.client's buffered socket reader (``response._fp.fp``) with
    ``read1`` and undo chunked framing themselves (:class:`.ChunkedDecoder`), so that a read
    returns what has arrived. They rely on urllib3's ``_fp`` and on http.client's ``fp``,
    ``chunked`` and ``length``, present in every urllib3 from 1.26 to 2.x; without them (or
    with ``fast=False``) the body is read through urllib3's public ``read``/``read1``, which
    is as correct, but may wait for a buffer to fill before handing out an event.
    """
    fp = getattr(response, "_fp", None)  # http.client.HTTPResponse
    buffered: Any = getattr(fp, "fp", None)  # http.client's BufferedReader on the socket
    if not fast or fp is None or not hasattr(buffered, "read1"):
        read1: Any = getattr(response, "read1", None)  # urllib3 2
        if read1 is None:
            return _reads(lambda size: response.read(size, decode_content=False))
        return _reads(lambda size: read1(size, decode_content=False))
    if getattr(fp, "chunked", False):
        return _dechunked(buffered.read1)
    if getattr(fp, "length", None) is None:
        # Close-delimited: the body is whatever comes until the connection closes.
        return _reads(buffered.read1)
    # Content-Length: http.client stops at the end of the body.
    return _reads(fp.read1)


def _dechunked(read1: Callable[[int], bytes]) -> Iterator[bytes]:
    """Chunked: large reads from the socket, framing undone in one pass per read."""
    decoder = ChunkedDecoder()
    while True:
        data = read1(_READ_SIZE)
        if not data:
            raise ChunkedEncodingError("connection closed before the last chunk")
        payload = decoder.feed(data)
        if payload:
            yield payload
        if decoder.error is not None:
            raise decoder.error  # after the payload before it, without waiting for more
        if decoder.done:
            return


def _reads(read1: Callable[[int], bytes]) -> Iterator[bytes]:
    while True:
        data = read1(_READ_SIZE)
        if not data:
            return
        yield data


def _cause(error: BaseException) -> BaseException | None:
    """What a urllib3 ``ProtocolError`` wraps: its second argument (or its context)."""
    if isinstance(error, ProtocolError):
        for arg in error.args:
            if isinstance(arg, BaseException):
                return arg
    return error.__context__


def _describe(error: HTTPException) -> str:
    name = type(error).__name__
    text = str(error)[:200]
    return f"{name}: {text}" if text else name


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Closes a response that will not be read, and its connection (no draining)."""
    response.close()
    response.release_conn()


def _socket_of(response: urllib3.BaseHTTPResponse) -> socket.socket | None:
    """The socket under a response, found through http.client's reader when urllib3 has
    already let go of it (it does for ``Connection: close`` responses)."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    raw = getattr(getattr(getattr(response, "_fp", None), "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _closer(response: urllib3.BaseHTTPResponse, logger: Logger) -> Callable[[], None]:
    def close() -> None:
        # Shut the socket down first: a read blocked in another thread returns at once,
        # and no file descriptor is closed under it.
        sock = _socket_of(response)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("Socket already closed", exc_info=True)
        response.close()
        response.release_conn()

    return close

"""The urllib3 transport of :meth:`.ConnectStrategy.http`."""

from __future__ import annotations

import socket
import weakref
from collections.abc import Callable, Iterator
from logging import Logger
from typing import Any

import urllib3
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util import Retry, Timeout

from ld_eventsource._chunked import ChunkedDecoder, ChunkedEncodingError
from ld_eventsource._http import DEFAULT_CONNECT_TIMEOUT, HttpParams, check_response
from ld_eventsource.config.connect_strategy import (
    ConnectionClient,
    ConnectionResult,
    ConnectStrategy,
)
from ld_eventsource.errors import CaseInsensitiveHeaders, StreamTimeoutError

__all__: list[str] = []

_READ_SIZE = 65536


class _OwnPoolManager(urllib3.PoolManager):
    """
    The pool a client makes for itself: it keeps track of its connections, so that
    ``close()`` from another thread can also end an attempt still waiting for its response.
    """

    def __init__(self) -> None:
        super().__init__()
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> Any:
        pool: Any = super()._new_pool(scheme, host, port, request_context)
        make = pool.ConnectionCls
        connections = self.connections

        def tracked(*args: Any, **kwargs: Any) -> Any:
            connection = make(*args, **kwargs)
            connections.add(connection)
            return connection

        pool.ConnectionCls = tracked
        return pool

    def interrupt(self) -> None:
        """Shuts down the socket of every connection, waking any thread blocked on one."""
        for connection in list(self.connections):
            sock = getattr(connection, "sock", None)
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _HttpConnectStrategy(ConnectStrategy):
    def __init__(self, params: HttpParams, pool: urllib3.PoolManager | None):
        if pool is not None and not isinstance(pool, urllib3.PoolManager):
            raise TypeError(f"pool must be a urllib3.PoolManager, not {type(pool).__name__}")
        self._params = params
        self._pool = pool

    def create_client(self, logger: Logger) -> ConnectionClient:
        return _HttpConnectionClient(self._params, self._pool, logger)


class _HttpConnectionClient(ConnectionClient):
    def __init__(self, params: HttpParams, pool: urllib3.PoolManager | None, logger: Logger):
        self._params = params
        self._pool = pool if pool is not None else _OwnPoolManager()
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
        request = self._params.request(last_event_id)
        self._logger.info("Connecting to stream at %s", request.url)
        options = dict(self._options)
        user_headers = options.pop("headers", None)
        headers: dict[str, Any] = dict(user_headers or {})
        headers.update(request.headers)
        try:
            response = self._pool.request(
                request.method,
                request.url,
                body=request.body,
                headers=headers,
                preload_content=False,
                redirect=True,
                **options,
            )
        except MaxRetryError as e:
            raise (e.reason or e) from None
        response_headers = CaseInsensitiveHeaders(response.headers)
        try:
            check_response(response.status, response_headers, response.headers.get("Content-Type"))
        except Exception:
            # Not drained: an error response may have a long or endless body (a 503 that
            # streams, say), and the error is reported at once. The connection is closed
            # rather than reused.
            response.close()
            response.release_conn()
            raise
        return ConnectionResult(
            _chunks(response, self._read_timeout),
            _closer(response, self._logger),
            response_headers,
        )

    def close(self) -> None:
        if isinstance(self._pool, _OwnPoolManager):
            self._pool.interrupt()
            # PoolManager.clear() closes the idle connections of every pool it holds.
            self._pool.clear()


def _chunks(response: urllib3.BaseHTTPResponse, read_timeout: float | None) -> Iterator[bytes]:
    """
    The body as it arrives: each read returns what the socket has (one ``recv``), never
    waiting for a buffer to fill, for chunked and close-delimited bodies alike.
    """
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    fp = getattr(response, "_fp", None)
    buffered: Any = getattr(fp, "fp", None)  # http.client's BufferedReader on the socket
    try:
        if encoding != "identity" or fp is None or not hasattr(fp, "read1"):
            # Compressed: urllib3 decodes.
            yield from _reads(response.read1)
        elif getattr(fp, "chunked", False) and hasattr(buffered, "read1"):
            # Chunked: large reads from the socket, framing undone in one pass per read.
            decoder = ChunkedDecoder()
            read1 = buffered.read1
            while True:
                data = read1(_READ_SIZE)
                if not data:
                    raise ChunkedEncodingError("connection closed before the last chunk")
                payload = decoder.feed(data)
                if payload:
                    yield payload
                if decoder.done:
                    return
        elif getattr(fp, "length", None) is None and hasattr(buffered, "read1"):
            # Close-delimited: the body is whatever comes until the connection closes.
            yield from _reads(buffered.read1)
        else:
            # Content-Length: http.client stops at the end of the body.
            yield from _reads(fp.read1)
    except (TimeoutError, ReadTimeoutError) as e:
        raise StreamTimeoutError(read_timeout or 0.0) from e
    except ProtocolError as e:
        # urllib3 wraps the reset or truncated body; the cause is more useful.
        raise (e.__context__ if isinstance(e.__context__, Exception) else e) from None
    finally:
        response.close()
        response.release_conn()


def _reads(read1: Callable[[int], bytes]) -> Iterator[bytes]:
    while True:
        data = read1(_READ_SIZE)
        if not data:
            return
        yield data


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

"""
The server: a scriptable HTTP/1.1 server on raw sockets, one thread per connection.

The server reads one request (request line, headers, body delimited by ``Content-Length`` or
chunked), records it, and hands a :class:`Conn` to a handler that scripts the response byte
by byte: status and headers, chunked or close-delimited framing, one flushed write per
:meth:`Conn.send`, an orderly end, a close mid-body, a reset, or a hang until the client
goes away. One request per connection: every response says ``Connection: close``.

It is deliberately not ``http.server``: a test needs exact control of framing and timing (a
chunk sent and flushed when the handler says so, a connection reset mid-stream, a body with
no terminating chunk), and a shutdown that never leaves a socket or a thread behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import itertools
import re
import select
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, TypeAlias, TypeVar
from urllib.parse import parse_qsl

from ld_eventsource.testing._wire import encode as _encode
from ld_eventsource.testing._wire import sse

__all__ = [
    "Conn",
    "DropMode",
    "Handler",
    "Headers",
    "HeadersArg",
    "Request",
    "SSEServer",
    "SSEServerError",
    "status_handler",
]

Handler: TypeAlias = Callable[["Conn"], None]
"""A response script: called in the connection's thread with the :class:`Conn`."""

HeadersArg: TypeAlias = Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]] | None
"""Response headers: a mapping or a list of pairs (repeat a name with pairs); ``str`` values
are sent UTF-8 encoded (ASCII is unchanged), ``bytes`` values as they are."""

DropMode: TypeAlias = Literal["end", "close", "abort"]
"""How a response stops: ``"end"`` in order (the terminating chunk of a chunked body, then
FIN), ``"close"`` mid-body (FIN with no terminating chunk: a chunked body is left
unterminated), ``"abort"`` with a TCP reset."""

_POLL: Final = 0.05
"""How often the accept loop and :meth:`Conn.wait_client_gone` look at ``stopping``."""
_ASYNC_POLL: Final = 0.01
"""How often :meth:`SSEServer.wait_request_async` looks at the requests."""
_IO_TIMEOUT: Final = 10.0
"""Bound on the TLS handshake and on reading one request."""
_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 64 * 1024 * 1024
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")

# errno values that mean "the peer or the server closed this connection": handlers that hit
# them are not failing, the client just went away (or the server is stopping).
_DISCONNECT_ERRNOS: Final = frozenset(
    {
        errno.EPIPE,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.EBADF,
    }
)


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` is what a socket raises when the connection is gone."""
    if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
        return True
    return isinstance(exc, OSError) and exc.errno in _DISCONNECT_ERRNOS


def _readable_now(sock: socket.socket) -> bool:
    if hasattr(select, "poll"):  # select() cannot watch descriptors past FD_SETSIZE
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


def _decode(raw: bytes) -> str:
    # Header bytes are UTF-8 in practice (Last-Event-ID is sent UTF-8 encoded); anything
    # else is shown byte for byte as Latin-1. The exact bytes are in Request.raw_headers.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def header_pairs(headers: HeadersArg) -> list[tuple[str, str | bytes]]:
    """``headers`` as a list of ``(name, value)`` pairs."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


class SSEServerError(RuntimeError):
    """Raised by :meth:`SSEServer.close` when a handler failed or did not stop in time."""


class _ClientGoneError(ConnectionError):
    """The client closed the connection while the server was reading the request."""


class _BadRequestError(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


class Headers(Mapping[str, str]):
    """
    The headers of a request, looked up case-insensitively.

    ``headers[name]`` is the value, or the values of a repeated header joined with ``", "``
    (so a header sent twice by mistake shows); :meth:`get_all` lists them. Values are
    decoded as UTF-8 (Latin-1 when not valid UTF-8); :attr:`raw` has the exact bytes.
    Iteration yields each name once, as first spelled by the client.
    """

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._raw = list(raw)
        self._index: dict[str, tuple[str, list[str]]] = {}
        for name, value in self._raw:
            text = _decode(name)
            self._index.setdefault(text.lower(), (text, []))[1].append(_decode(value))

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The header lines as received: ``(name, value)`` bytes, in order."""
        return list(self._raw)

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._index[name.lower()][1])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (spelled for spelled, _ in self._index.values())

    def __len__(self) -> int:
        return len(self._index)

    def get_all(self, name: str) -> list[str]:
        """Every value of the header ``name``, in order; empty if it was not sent."""
        entry = self._index.get(name.lower())
        return list(entry[1]) if entry else []

    def __repr__(self) -> str:
        return f"Headers({self._raw!r})"


@dataclass(frozen=True)
class Request:
    """What the server received as one request."""

    method: str
    """The method, as sent: ``"GET"``, ``"POST"``, ..."""
    path: str
    """The request target as sent: path and query string (as ``http.server`` has it);
    :attr:`path_only` is the path alone, :attr:`query` the parsed query."""
    version: str
    """``HTTP/1.1`` or ``HTTP/1.0``."""
    headers: Headers
    """The request headers, looked up case-insensitively."""
    body: bytes
    """The body, de-chunked when it was sent chunked."""
    received_at: float
    """``time.monotonic()`` when the request head was complete."""
    client_address: tuple[str, int] = ("", 0)
    """The client's address and port."""
    tls: bool = False
    """Whether the request came over TLS."""
    query: dict[str, str] = field(init=False)
    """The parsed query string (the last value of a repeated name, blank values kept)."""

    def __post_init__(self) -> None:
        _, _, query = self.path.partition("?")
        object.__setattr__(self, "query", dict(parse_qsl(query, keep_blank_values=True)))

    @property
    def path_only(self) -> str:
        """:attr:`path` without the query string: what routes are matched against."""
        return self.path.partition("?")[0]

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The header lines as received: ``(name, value)`` bytes, in order."""
        return self.headers.raw


class _Reader:
    """Reads the request from a socket through one buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        data = self._sock.recv(65536)
        self._buf += data
        return bool(data)

    def read_head(self) -> bytes | None:
        """The request head without its final blank line; None if the client sent nothing."""
        searched = 0
        while True:
            match = _HEAD_END.search(self._buf, max(0, searched - 3))
            if match:
                head = bytes(self._buf[: match.start()])
                del self._buf[: match.end()]
                return head
            if len(self._buf) > _MAX_HEAD:
                raise _BadRequestError("request head too large", 431)
            searched = len(self._buf)
            if not self._fill():
                if not self._buf:
                    return None
                raise _ClientGoneError("client closed the connection inside the request head")

    def read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                return line.removesuffix(b"\r")
            if len(self._buf) > _MAX_HEAD:
                raise _BadRequestError("line too long in the chunked body")
            if not self._fill():
                raise _ClientGoneError("client closed the connection inside the body")

    def read_exact(self, size: int) -> bytes:
        while len(self._buf) < size:
            if not self._fill():
                raise _ClientGoneError("client closed the connection inside the body")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self.read_line().split(b";", 1)[0].strip()
            if not size_text or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
                raise _BadRequestError(f"bad chunk size {size_text!r}")
            size = int(size_text, 16)
            if size == 0:
                while self.read_line():  # trailer fields, ignored
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise _BadRequestError("body too large", 413)
            parts.append(self.read_exact(size))
            if self.read_line():
                raise _BadRequestError("chunk data not followed by CRLF")


class _Link:
    """One accepted socket, closed exactly once, safely against the stopping server."""

    def __init__(self, sock: socket.socket, address: tuple[str, int], number: int) -> None:
        self.sock = sock
        self.address = address
        self.number = number
        self.closed = False
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        """Wake whatever blocks on the socket (the server is stopping); the owner closes."""
        with self._lock:
            if not self.closed:
                # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the TLS
                # state under the feet of the thread that is using it.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self, *, reset: bool = False) -> None:
        """Close: gracefully (TLS close_notify, FIN), or with a TCP reset."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            sock = self.sock
            try:
                if reset:
                    # SO_LINGER on, timeout 0: close() discards unsent data and sends RST.
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                else:
                    self._close_gracefully(sock)
            finally:
                sock.close()

    @staticmethod
    def _close_gracefully(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.setblocking(False)
        if isinstance(sock, ssl.SSLSocket):
            # Non-blocking unwrap sends close_notify and then stops (SSLWantReadError)
            # instead of waiting for the peer's: clients that read to EOF over TLS (a
            # close-delimited body) see a clean end, and closing never blocks.
            with contextlib.suppress(OSError, ValueError):
                sock.unwrap()
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_WR)
        # Unread bytes in the receive queue make close() send RST instead of FIN, which can
        # destroy the end of the response before the client has read it: drain them.
        with contextlib.suppress(OSError):
            for _ in range(64):
                if not socket.socket.recv(sock, 65536):
                    break


class Conn:
    """
    One connection, given to a handler to script the response.

    Writes go straight to the socket (``TCP_NODELAY``, one ``sendall`` per call), so the
    client sees each :meth:`send` as soon as the handler makes it. Note that
    :meth:`Conn.send` writes bytes, :meth:`send_event` an event (the queue's
    :meth:`SSEServer.send` is the event one). Socket errors raised because the client went
    away (``BrokenPipeError``, ``ConnectionResetError``, ...) may be left to propagate: the
    server swallows them when the handler returns. When the handler returns, the response
    is ended in order (:meth:`end`) unless it already was; if the handler raised before
    sending anything, the client gets a 500.
    """

    def __init__(self, server: SSEServer, link: _Link, request: Request) -> None:
        self.server = server
        """The server this connection belongs to."""
        self.request = request
        """The request being answered."""
        self.stopping: threading.Event = server.stopping
        """Set when the server is shutting down: long handlers wait on it, never sleep."""
        self._link = link
        self._sock = link.sock
        self._head_sent = False
        self._raw_sent = False
        self._chunked = False
        self._outcome: Literal["", "ended", "closed", "aborted"] = ""

    @property
    def finished(self) -> bool:
        """Whether the response was ended, closed or aborted (no more writes)."""
        return bool(self._outcome)

    @property
    def head_sent(self) -> bool:
        """Whether :meth:`send_head` ran (explicitly or through :meth:`send`)."""
        return self._head_sent

    def _check_open(self) -> None:
        if self._outcome:
            raise RuntimeError(f"the response was already {self._outcome}")

    def send_head(
        self,
        status: int = 200,
        headers: HeadersArg = None,
        *,
        content_type: str | None = "text/event-stream",
        chunked: bool = True,
        reason: str | None = None,
    ) -> None:
        """
        Send the status line and headers.

        :param headers: extra headers; one named like a default below replaces it.
        :param content_type: the ``Content-Type``, or None for none.
        :param chunked: True: ``Transfer-Encoding: chunked``, each :meth:`send` is a chunk
            and :meth:`end` sends the terminating chunk. False: no framing at all (no
            ``Content-Length`` unless given in ``headers``), the body ends when the
            connection closes.
        :param reason: the reason phrase; by default the standard one for ``status``.
        """
        self._check_open()
        if self._head_sent:
            raise RuntimeError("the response head was already sent")
        if reason is None:
            try:
                reason = http.HTTPStatus(status).phrase
            except ValueError:
                reason = "Unknown"
        given = header_pairs(headers)
        names = {name.lower() for name, _ in given}
        lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
        if content_type is not None and "content-type" not in names:
            lines.append(b"Content-Type: " + _encode(content_type))
        lines.extend(name.encode("latin-1") + b": " + _encode(value) for name, value in given)
        if chunked and "transfer-encoding" not in names:
            lines.append(b"Transfer-Encoding: chunked")
        if "connection" not in names:
            lines.append(b"Connection: close")
        self._head_sent = True
        self._chunked = chunked
        self._sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")

    def send(self, data: bytes | str) -> None:
        """
        Send ``data`` (``str`` is UTF-8 encoded) as one chunk, or as it is when the response
        is close-delimited; sends the default head first if none was sent. Empty data sends
        nothing (an empty chunk would end the body).
        """
        self._check_open()
        if not self._head_sent and not self._raw_sent:
            self.send_head()
        payload = _encode(data)
        if not payload:
            return
        if self._head_sent and self._chunked:
            payload = b"%x\r\n%b\r\n" % (len(payload), payload)
        self._sock.sendall(payload)

    def send_event(
        self,
        data: str | None = None,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        """:meth:`send` of :func:`sse` with these arguments: ``send_event("hi", id="1")``."""
        self.send(sse(data=data, event=event, id=id, retry=retry, comment=comment))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are, with no framing; before the head, it replaces the head."""
        self._check_open()
        self._raw_sent = True
        self._sock.sendall(data)

    def end(self) -> None:
        """
        End the response in order: the default head if nothing was sent, the terminating
        chunk if chunked, then close the connection (TLS close_notify, FIN).
        """
        if self._outcome:
            return
        try:
            if not self._head_sent and not self._raw_sent:
                self.send_head()
            if self._head_sent and self._chunked:
                self._sock.sendall(b"0\r\n\r\n")
        finally:
            self._outcome = "ended"
            self._link.close()

    def close(self) -> None:
        """Close the connection gracefully without ending the body (no terminating chunk)."""
        if self._outcome:
            return
        self._outcome = "closed"
        self._link.close()

    def abort(self) -> None:
        """Close the connection abruptly: the client sees a TCP reset (``SO_LINGER`` 0)."""
        if self._outcome:
            return
        self._outcome = "aborted"
        self._link.close(reset=True)

    def wait_client_gone(self, timeout: float) -> bool:
        """
        Block until the client closed its side of the connection (or reset it), at most
        ``timeout`` seconds. Bytes the client sends meanwhile are discarded.

        :return: True if the client is gone; False on timeout or when the server stops.
        """
        if self._outcome:
            return True
        deadline = time.monotonic() + timeout
        sock = self._sock
        try:
            while not self.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(min(remaining, _POLL))
                try:
                    if not sock.recv(65536):
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(None)
        # A socket shut down by the stopping server reads as EOF too: that is not the client.
        return not self.stopping.is_set()

    def server_requests(self) -> list[Request]:
        """The requests the server received so far, this one included (a snapshot)."""
        return self.server.requests

    def client_gone(self) -> bool:
        """
        Whether the client has closed its side of the connection (or reset it), looked at
        without waiting; bytes the client sent meanwhile are discarded.
        """
        if self._outcome:
            return True
        sock = self._sock
        try:
            # Decrypted bytes already buffered by TLS do not show in select().
            pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
            if not pending and not _readable_now(sock):
                return False
            sock.setblocking(False)
            try:
                # A client says nothing after its request: what it sends is discarded.
                return not sock.recv(65536)
            finally:
                sock.setblocking(True)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False  # readable, but only part of a TLS record so far
        except (OSError, ValueError):  # ValueError: the socket is closed already
            return True

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; return False at once (instead) if the server is stopping."""
        return not self.stopping.wait(seconds)

    def _finish(self, failed: bool) -> None:
        """After the handler: a 500 if it failed before the head, else end()."""
        with contextlib.suppress(OSError):
            if failed and not self._head_sent and not self._raw_sent and not self._outcome:
                body = b"handler failed\n"
                self.send_head(
                    500,
                    {"Content-Length": str(len(body))},
                    content_type="text/plain",
                    chunked=False,
                )
                self.send(body)
            self.end()
        self._link.close()


@dataclass(frozen=True)
class _Write:
    data: bytes


@dataclass(frozen=True)
class _Pause:
    seconds: float


@dataclass(frozen=True)
class _Drop:
    how: DropMode


@dataclass(frozen=True)
class _Respond:
    handler: Handler


_Step: TypeAlias = _Write | _Pause | _Drop | _Respond


def finish_as(conn: Conn, how: DropMode) -> None:
    """End, close or abort ``conn`` as :data:`DropMode` ``how`` says."""
    if how == "end":
        conn.end()
    elif how == "close":
        conn.close()
    elif how == "abort":
        conn.abort()
    else:
        raise ValueError(f"how must be 'end', 'close' or 'abort', got {how!r}")


_Server = TypeVar("_Server", bound="SSEServer")


class SSEServer:
    """
    A real HTTP/1.1 server on a loopback port, in threads of its own, for tests of SSE
    consumers; one request per connection.

    The listening socket is bound in the constructor, so :attr:`url` is known at once;
    ``with`` (or :meth:`start`) starts accepting, and leaving the block (or :meth:`close`)
    stops everything: it sets :attr:`stopping`, shuts the connections down, joins every
    thread, and raises :class:`SSEServerError` if a handler raised something other than a
    disconnection error or did not stop within ``join_timeout``. No event loop is involved:
    the same server serves a blocking client and an asyncio one.

    A request is served by the :meth:`route` of its path if there is one, else by
    ``handler``, else by the **queue**: :meth:`send`, :meth:`send_raw`, :meth:`pause`,
    :meth:`drop`, :meth:`respond` and :meth:`respond_with` append steps to one script that
    the connections read in order. A request that finds :meth:`respond` (or
    :meth:`respond_with`) at the head of the queue gets that response; any other request
    gets a stream (``200``, ``text/event-stream``, :attr:`stream_headers`, chunked unless
    :attr:`chunked` is False) at once, then the queued steps as they come: each written as
    soon as it is queued, until a :meth:`drop`. A stream that reaches a queued response ends
    there in order, leaving the response to the next request; a new stream takes the queue
    over from an older one, which ends. The queue feeds one client at a time; to serve
    clients side by side, give a handler.

    :param handler: the handler of every path without a :meth:`route`; None: the queue.
    :param host: the address to listen on: ``"127.0.0.1"``, or ``"::1"`` for IPv6.
    :param port: the port; 0 (the default) picks a free one.
    :param ssl_context: a server-side context: serve HTTPS (the test builds the context
        and its certificate; the client must trust it).
    :param chunked: the framing of queue streams: chunked, or close-delimited (False).
    :param stream_headers: extra headers of queue streams.
    :param join_timeout: how long :meth:`close` waits for the connection threads.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        chunked: bool = True,
        stream_headers: HeadersArg = None,
        join_timeout: float = 2.0,
    ) -> None:
        self.handler = handler
        """The handler of requests without a route; None: the queue. May be set any time."""
        self.host = host
        """The address the server listens on."""
        self.ssl_context = ssl_context
        """The server-side TLS context, or None for plain HTTP."""
        self.chunked = chunked
        """Whether queue streams are chunked (else close-delimited); read per stream."""
        self.stream_headers: HeadersArg = stream_headers
        """Extra headers of queue streams; read when a stream starts."""
        self.join_timeout = join_timeout
        """How long :meth:`close` waits for the connection threads, in seconds."""
        self.stopping = threading.Event()
        """Set by :meth:`close`; handlers see it as :attr:`Conn.stopping`."""
        self.total_connections = 0
        """How many connections were accepted so far."""
        self._requests: list[Request] = []
        self._errors: list[BaseException] = []
        self._cond = threading.Condition()
        self._routes: dict[str, Handler] = {}
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._accept_thread: threading.Thread | None = None
        self._closed = False
        self._numbers = itertools.count(1)
        self._steps: deque[_Step] = deque()
        self._stream: Conn | None = None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if port:
                # A fixed port is often the one a previous run just left in TIME_WAIT.
                self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(128)
            # A timeout, so the accept loop sees `stopping` without a wake-up trick.
            self._listener.settimeout(_POLL)
        except BaseException:
            self._listener.close()
            raise
        self.port: int = self._listener.getsockname()[1]
        """The port the server listens on."""
        scheme = "https" if ssl_context is not None else "http"
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{netloc}:{self.port}"
        """``http://127.0.0.1:PORT`` (``https`` with TLS), no trailing slash: add a path."""

    def __repr__(self) -> str:
        with self._cond:
            count = len(self._requests)
        return f"<SSEServer {self.url}, {count} request(s)>"

    # -- configuration and inspection ---------------------------------------------------

    def route(self, path: str, handler: Handler) -> None:
        """Serve requests whose path (without the query) is exactly ``path`` by ``handler``."""
        with self._cond:
            self._routes[path] = handler

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in order (a snapshot: a new list each time)."""
        with self._cond:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """What handlers raised, disconnections aside, and threads that did not stop."""
        with self._cond:
            return list(self._errors)

    @property
    def active_connections(self) -> int:
        """How many client connections are open now (accepted and not yet closed)."""
        with self._cond:
            return len(self._links)

    def wait_request(self, n: int = 1, timeout: float = 5.0) -> Request:
        """
        Block until the ``n``-th request (counting from 1) has arrived; return it.

        :raises TimeoutError: fewer than ``n`` requests within ``timeout`` seconds.
        """
        if n < 1:
            raise ValueError(f"n counts requests from 1, got {n}")
        return self.wait_requests(n, timeout)[n - 1]

    def wait_requests(self, n: int, timeout: float = 5.0) -> list[Request]:
        """
        Block until at least ``n`` requests have arrived; return all of them so far.

        :raises TimeoutError: fewer than ``n`` requests within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout):
                paths = [r.path for r in self._requests]
                raise TimeoutError(f"expected {n} requests within {timeout}s, got {paths}")
            return list(self._requests)

    async def wait_request_async(self, n: int = 1, timeout: float = 5.0) -> Request:
        """
        :meth:`wait_request` for asyncio code: waits without blocking the event loop (so the
        client that is to make the request can run meanwhile).
        """
        if n < 1:
            raise ValueError(f"n counts requests from 1, got {n}")
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if len(self._requests) >= n:
                    return self._requests[n - 1]
                paths = [r.path for r in self._requests]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"expected {n} requests within {timeout}s, got {paths}")
            await asyncio.sleep(_ASYNC_POLL)

    def wait_connections_closed(self, timeout: float = 5.0) -> bool:
        """Block until no connection is open; False if some still are after ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._links, timeout)

    def wait_active_connections(self, n: int, timeout: float = 5.0) -> None:
        """
        Block until exactly ``n`` connections are open (0: every client went away).

        :raises TimeoutError: not so within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._links) == n, timeout):
                raise TimeoutError(
                    f"expected {n} open connections within {timeout}s, have {len(self._links)}"
                )

    # -- the queue ---------------------------------------------------------------------------

    def send(
        self,
        data: str | None = None,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        """
        Queue one event block, written as :func:`sse` writes it: ``send("hi", id="1")``,
        ``send(comment="keep-alive")``, ``send(retry=500)``. It goes to the open stream at
        once, or to the next one.
        """
        self._queue(_Write(sse(data=data, event=event, id=id, retry=retry, comment=comment)))

    def send_raw(self, data: bytes | str) -> None:
        """
        Queue bytes to write as they are (``str`` UTF-8 encoded): part of an event, a BOM,
        odd line endings. Each call is one chunk (one write when close-delimited).
        """
        payload = _encode(data)
        if payload:  # an empty chunk would end a chunked body
            self._queue(_Write(payload))

    def pause(self, seconds: float) -> None:
        """Queue a pause: the stream writes nothing for ``seconds``."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._queue(_Pause(seconds))

    def drop(self, how: DropMode = "end") -> None:
        """
        Queue the end of the stream: ``"end"`` (in order: the client sees the stream end),
        ``"close"`` (the connection closes mid-body) or ``"abort"`` (a TCP reset). Steps
        queued after it go to the next stream.
        """
        if how not in ("end", "close", "abort"):
            raise ValueError(f"how must be 'end', 'close' or 'abort', got {how!r}")
        self._queue(_Drop(how))

    def respond(self, status: int, body: bytes | str = b"", headers: HeadersArg = None) -> None:
        """
        Queue a whole response for a request: ``status``, ``headers`` and ``body`` (with a
        ``Content-Length``; ``Content-Type: text/plain`` unless ``headers`` has one), as
        :func:`status_handler` sends it. ``respond(503, "busy", {"Retry-After": "1"})``;
        ``respond(307, headers={"Location": "/elsewhere"})``.
        """
        self._queue(_Respond(status_handler(status, headers, body)))

    def respond_with(self, handler: Handler) -> None:
        """Queue a handler: the request that reaches it in the queue is served by it."""
        self._queue(_Respond(handler))

    def _queue(self, step: _Step) -> None:
        with self._cond:
            if self.handler is not None:
                raise RuntimeError(
                    "this server has a handler: the queue serves only servers without one"
                )
            self._steps.append(step)
            self._cond.notify_all()

    def _serve_queue(self, conn: Conn) -> None:
        with self._cond:
            respond = self._steps[0] if self._steps else None
            if isinstance(respond, _Respond):
                self._steps.popleft()
            else:
                respond = None
                self._stream = conn  # the older stream, if any, sees this and ends
            self._cond.notify_all()
        if respond is not None:
            respond.handler(conn)
            return
        try:
            conn.send_head(200, self.stream_headers, chunked=self.chunked)
            while (step := self._next_step(conn)) is not None:
                if isinstance(step, _Write):
                    conn.send(step.data)
                elif isinstance(step, _Pause):
                    if not conn.sleep(step.seconds):
                        return
                elif isinstance(step, _Drop):
                    finish_as(conn, step.how)
                    return
        finally:
            with self._cond:
                if self._stream is conn:
                    self._stream = None
                self._cond.notify_all()

    def _next_step(self, conn: Conn) -> _Step | None:
        """The next step for the stream ``conn``; None when it is to end."""

        def ready() -> bool:
            return bool(self._steps) or self._stream is not conn or self.stopping.is_set()

        while True:
            with self._cond:
                self._cond.wait_for(ready, _POLL)
                if self._stream is not conn or self.stopping.is_set():
                    return None
                if self._steps:
                    if isinstance(self._steps[0], _Respond):
                        return None
                    step = self._steps.popleft()
                    self._cond.notify_all()
                    return step
            # Idle: look for a client that went away, so that its stream does not take the
            # steps meant for its reconnection.
            if conn.client_gone():
                return None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self: _Server) -> _Server:
        """Start accepting connections (idempotent); return the server."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the server is closed")
            if self._accept_thread is None:
                self._accept_thread = threading.Thread(
                    target=self._accept_loop, name=f"sse-server-{self.port}-accept", daemon=True
                )
                self._accept_thread.start()
        return self

    def close(self, *, raise_errors: bool = True) -> None:
        """
        Stop: close the listening socket and every connection, join every thread (at most
        :attr:`join_timeout` seconds in all). Idempotent.

        :param raise_errors: raise :class:`SSEServerError` if :attr:`errors` is not empty.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            accept_thread = self._accept_thread
        self.stopping.set()
        deadline = time.monotonic() + self.join_timeout
        if accept_thread is not None:
            accept_thread.join(max(0.0, deadline - time.monotonic()))
        self._listener.close()  # also when the accept thread never ran; closing twice is fine
        with self._cond:
            links = list(self._links)
            threads = list(self._threads)
        for link in links:
            link.shutdown()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if accept_thread is not None and accept_thread.is_alive():
            stuck.append(accept_thread.name)
        if stuck:
            # Do not leak the sockets of handlers that ignore `stopping`: close them under
            # their feet (their next socket call fails and is swallowed).
            with self._cond:
                links = list(self._links)
                self._links.clear()
                self._cond.notify_all()
            for link in links:
                link.close(reset=True)
            self._record_error(
                SSEServerError(
                    f"threads did not stop within {self.join_timeout}s: {', '.join(stuck)} "
                    "(handlers must wait on conn.stopping, not time.sleep)"
                )
            )
        with self._cond:
            errors = list(self._errors)
        if raise_errors and errors:
            summary = "; ".join(repr(e) for e in errors)
            raise SSEServerError(f"{len(errors)} handler error(s): {summary}") from errors[0]

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # When the body already failed, its exception is the one to see.
        self.close(raise_errors=exc_type is None)

    # -- the threads -------------------------------------------------------------------------

    def _record_error(self, exc: BaseException) -> None:
        with self._cond:
            self._errors.append(exc)
            self._cond.notify_all()

    def _accept_loop(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    sock, address = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self.stopping.is_set():
                        break
                    time.sleep(_POLL)  # e.g. EMFILE: do not spin
                    continue
                self._on_accept(sock, (str(address[0]), int(address[1])))
        except Exception as exc:
            self._record_error(exc)

    def _on_accept(self, sock: socket.socket, address: tuple[str, int]) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                # The handshake happens in the connection thread, not here.
                sock = self.ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
        except OSError:
            sock.close()
            return
        link = _Link(sock, address, next(self._numbers))
        with self._cond:
            if self.stopping.is_set():
                link.close(reset=True)
                return
            self._links.add(link)
            self.total_connections += 1
            self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(
                target=self._serve,
                args=(link,),
                name=f"sse-server-{self.port}-conn-{link.number}",
                daemon=True,
            )
            self._threads.append(thread)
            # Started under the lock, so close() never sees a thread it cannot join.
            thread.start()
            self._cond.notify_all()

    def _serve(self, link: _Link) -> None:
        try:
            self._serve_link(link)
        except Exception as exc:
            if not _is_disconnect(exc):
                self._record_error(exc)
        finally:
            link.close()
            with self._cond:
                self._links.discard(link)
                self._cond.notify_all()

    def _serve_link(self, link: _Link) -> None:
        sock = link.sock
        sock.settimeout(_IO_TIMEOUT)
        if isinstance(sock, ssl.SSLSocket):
            try:
                sock.do_handshake()
            except OSError:
                return  # e.g. the client does not trust the CA: nothing to serve
        reader = _Reader(sock)
        try:
            request = self._read_request(reader, link)
        except _BadRequestError as exc:
            body = f"{exc}\n".encode()
            with contextlib.suppress(OSError):
                sock.sendall(
                    f"HTTP/1.1 {exc.status} {http.HTTPStatus(exc.status).phrase}\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n".encode()
                    + body
                )
            return
        except OSError:
            return  # the client went away, or the server is stopping
        if request is None:
            return
        sock.settimeout(None)
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
            handler = self._routes.get(request.path_only) or self.handler or self._serve_queue
        conn = Conn(self, link, request)
        failed = False
        try:
            handler(conn)
        except Exception as exc:
            if not _is_disconnect(exc):
                failed = True
                self._record_error(exc)
        finally:
            conn._finish(failed)

    def _read_request(self, reader: _Reader, link: _Link) -> Request | None:
        head = reader.read_head()
        if head is None:
            return None
        received_at = time.monotonic()
        lines = [line.removesuffix(b"\r") for line in head.split(b"\n")]
        while lines and not lines[0]:  # RFC 9112 2.2: ignore empty lines before the request
            del lines[0]
        if not lines:
            raise _BadRequestError("empty request")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            raise _BadRequestError(f"bad request line {lines[0]!r}")
        method, target, version = (p.decode("latin-1") for p in parts)
        raw_headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise _BadRequestError(f"bad header line {line!r}")
            raw_headers.append((name, value.strip(b" \t")))
        headers = Headers(raw_headers)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length_text = headers.get("content-length")
        length = 0
        if not chunked and length_text is not None:
            if not length_text.isdigit():
                raise _BadRequestError(f"bad Content-Length {length_text!r}")
            length = int(length_text)
            if length > _MAX_BODY:
                raise _BadRequestError("body too large", 413)
        if (
            (chunked or length)
            and version == "HTTP/1.1"
            and headers.get("expect", "").lower() == "100-continue"
        ):
            link.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = reader.read_chunked() if chunked else reader.read_exact(length)
        return Request(
            method=method,
            path=target,
            version=version,
            headers=headers,
            body=body,
            received_at=received_at,
            client_address=link.address,
            tls=isinstance(link.sock, ssl.SSLSocket),
        )


_NO_BODY_STATUSES: Final = frozenset({204, 304})


def status_handler(status: int, headers: HeadersArg = None, body: bytes | str = b"") -> Handler:
    """
    A handler that sends a complete response: ``status``, ``headers``, and ``body`` with a
    ``Content-Length`` (none for 204 and 304). The ``Content-Type`` is
    ``text/plain; charset=utf-8`` unless ``headers`` has one.
    """
    payload = _encode(body)
    given = header_pairs(headers)
    names = {name.lower() for name, _ in given}
    bodiless = status in _NO_BODY_STATUSES
    if not bodiless and "content-length" not in names:
        given.append(("Content-Length", str(len(payload))))
    content_type = None if bodiless else "text/plain; charset=utf-8"

    def handler(conn: Conn) -> None:
        conn.send_head(status, given, content_type=content_type, chunked=False)
        if payload:
            conn.send(payload)
        conn.end()

    return handler

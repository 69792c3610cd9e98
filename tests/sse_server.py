"""
A small scriptable HTTP/1.1 server on raw sockets, for the tests of the SSE clients.

Every connection gets a thread; the server reads one request (request line, headers, body
delimited by ``Content-Length`` or chunked), records it in :attr:`SSEServer.requests`, and
hands a :class:`Conn` to a handler that scripts the response byte by byte: status and
headers, chunked or close-delimited framing, one flushed write per :meth:`Conn.send`, an
orderly end, an abrupt reset, or a hang until the client goes away. One request per
connection: every response says ``Connection: close``.

It is deliberately not ``http.server``: the tests need exact control of framing and timing
(a chunk sent and flushed when the handler says so, a connection reset mid-stream, a body
with no terminating chunk), and a shutdown that never leaves a socket or a thread behind
(the tests run with ``-W error``, so an unclosed socket fails them).

Usage::

    with SSEServer(events_handler([sse(data="a"), sse(data="b")])) as server:
        ...  # point a client at server.url
        request = server.wait_requests(1)[0]
        assert request.headers["accept"] == "text/event-stream"
"""

from __future__ import annotations

import contextlib
import errno
import http
import itertools
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, TypeAlias
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    import trustme

__all__ = [
    "Conn",
    "Handler",
    "Headers",
    "HeadersArg",
    "Request",
    "SSEServer",
    "SSEServerError",
    "events_handler",
    "redirect_handler",
    "sequence_handler",
    "sse",
    "status_handler",
]

Handler: TypeAlias = Callable[["Conn"], None]
"""A response script: called in the connection's thread with the :class:`Conn`."""

HeadersArg: TypeAlias = Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]] | None
"""Response headers: a mapping or a list of pairs (repeat a name with pairs); ``str`` values
are sent UTF-8 encoded (ASCII is unchanged), ``bytes`` values as they are."""

_POLL: Final = 0.05
"""How often the accept loop and :meth:`Conn.wait_client_gone` look at ``stopping``."""
_IO_TIMEOUT: Final = 10.0
"""Bound on the TLS handshake and on reading one request."""
_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 64 * 1024 * 1024
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
_NO_BODY_STATUSES: Final = frozenset({204, 304})

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


def _decode(raw: bytes) -> str:
    # Header bytes are UTF-8 in practice (Last-Event-ID is sent UTF-8 encoded); anything
    # else is shown byte for byte as Latin-1. The exact bytes are in Request.raw_headers.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _header_pairs(headers: HeadersArg) -> list[tuple[str, str | bytes]]:
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
    path: str
    """The request target as sent: path and query string."""
    version: str
    """``HTTP/1.1`` or ``HTTP/1.0``."""
    headers: Headers
    body: bytes
    """The body, de-chunked when it was sent chunked."""
    received_at: float
    """``time.monotonic()`` when the request head was complete."""
    client_address: tuple[str, int] = ("", 0)
    tls: bool = False
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
    client sees each :meth:`send` as soon as the handler makes it. Socket errors raised
    because the client went away (``BrokenPipeError``, ``ConnectionResetError``, ...)
    may be left to propagate: the server swallows them when the handler returns.
    """

    def __init__(self, server: SSEServer, link: _Link, request: Request) -> None:
        self.server = server
        self.request = request
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
        given = _header_pairs(headers)
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
        *,
        data: str | None = None,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        """:meth:`send` of :func:`sse` with these arguments."""
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
        with self.server._cond:
            return list(self.server.requests)

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


def _not_found(conn: Conn) -> None:
    status_handler(404, body=b"no handler for this path\n")(conn)


class SSEServer:
    """
    A threaded HTTP/1.1 test server on 127.0.0.1 (or ``host``), one request per connection.

    :param handler: the handler of every path without a :meth:`route`; None: 404.
    :param tls: a ``trustme.CA``: serve HTTPS with a certificate it issues for
        ``127.0.0.1``, ``localhost`` and ``::1``.
    :param host: the address to listen on; ``"::1"`` for IPv6.
    :param join_timeout: how long :meth:`close` waits for the connection threads.

    The listening socket is bound in the constructor (so :attr:`url` is known at once);
    :meth:`start` (or ``with``) starts accepting. :meth:`close` stops everything: it sets
    :attr:`stopping`, shuts the connections down (which wakes handlers blocked on their
    socket), joins every thread, and raises :class:`SSEServerError` if a handler raised
    something other than a disconnection error or did not stop within ``join_timeout``.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
        join_timeout: float = 2.0,
    ) -> None:
        self.handler = handler
        self.host = host
        self.ca = tls
        self.join_timeout = join_timeout
        self.stopping = threading.Event()
        """Set by :meth:`close`; handlers see it as :attr:`Conn.stopping`."""
        self.requests: list[Request] = []
        """Every request received, in order (appended by the connection threads)."""
        self.errors: list[BaseException] = []
        """Exceptions raised by handlers other than disconnections, and stuck threads."""
        self.total_connections = 0
        """How many connections were accepted so far."""
        self._cond = threading.Condition()
        self._routes: dict[str, Handler] = {}
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._accept_thread: threading.Thread | None = None
        self._closed = False
        self._numbers = itertools.count(1)
        self.ssl_context: ssl.SSLContext | None = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            identities = dict.fromkeys(["127.0.0.1", "localhost", "::1", host])
            tls.issue_cert(*identities).configure_cert(context)
            self.ssl_context = context
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.bind((host, 0))
            self._listener.listen(128)
            # A timeout, so the accept loop sees `stopping` without a wake-up trick.
            self._listener.settimeout(_POLL)
        except BaseException:
            self._listener.close()
            raise
        self.port: int = self._listener.getsockname()[1]
        scheme = "https" if tls is not None else "http"
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{netloc}:{self.port}"
        """``http://127.0.0.1:PORT`` (``https`` with TLS), no trailing slash."""

    # -- configuration and inspection ---------------------------------------------------

    def route(self, path: str, handler: Handler) -> None:
        """Serve requests whose path (without the query) is exactly ``path`` by ``handler``."""
        with self._cond:
            self._routes[path] = handler

    @property
    def active_connections(self) -> int:
        """How many client connections are open now (accepted and not yet closed)."""
        with self._cond:
            return len(self._links)

    def wait_requests(self, n: int, timeout: float = 5) -> list[Request]:
        """Block until at least ``n`` requests were received; return all of them so far."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                paths = [r.path for r in self.requests]
                raise TimeoutError(f"expected {n} requests within {timeout}s, got {paths}")
            return list(self.requests)

    def wait_connections_closed(self, timeout: float = 5) -> bool:
        """Block until no connection is open; False if some still are after ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._links, timeout)

    def wait_active_connections(self, n: int, timeout: float = 5) -> None:
        """Block until exactly ``n`` connections are open (0: every client went away)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._links) == n, timeout):
                raise TimeoutError(
                    f"expected {n} open connections within {timeout}s, have {len(self._links)}"
                )

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA (TLS servers only)."""
        if self.ca is None:
            raise RuntimeError("this server does not use TLS")
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SSEServer:
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
            errors = list(self.errors)
        if raise_errors and errors:
            summary = "; ".join(repr(e) for e in errors)
            raise SSEServerError(f"{len(errors)} handler error(s): {summary}") from errors[0]

    def __enter__(self) -> SSEServer:
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
            self.errors.append(exc)
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
            self.requests.append(request)
            self._cond.notify_all()
            handler = self._routes.get(request.path_only) or self.handler or _not_found
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


# -- helpers ----------------------------------------------------------------------------------

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


def sse(
    *,
    data: str | None = None,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
    eol: str = "\n",
) -> bytes:
    """
    One event block, UTF-8 encoded: comment lines, then ``event``, ``id``, ``retry``, and
    one ``data`` line per line of ``data`` (split at CRLF, LF or CR, as the client will),
    then a blank line. Fields that are None are left out; ``id=""`` sends an empty ``id``.

    :param eol: the line terminator to use: ``"\\n"``, ``"\\r\\n"`` or ``"\\r"``.
    """
    if eol not in ("\n", "\r\n", "\r"):
        raise ValueError(f"eol must be LF, CRLF or CR, got {eol!r}")
    lines: list[str] = []

    def add(name: str, value: str) -> None:
        lines.append(f"{name}: {value}" if value else f"{name}:")

    if comment is not None:
        lines.extend(f":{line}" for line in _LINE_BREAK.split(comment))
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            if _LINE_BREAK.search(value):
                raise ValueError(f"{name} cannot contain a line break: {value!r}")
            add(name, value)
    if retry is not None:
        add("retry", str(retry))
    if data is not None:
        for line in _LINE_BREAK.split(data):
            add("data", line)
    return "".join(line + eol for line in lines).encode("utf-8") + eol.encode("ascii")


def events_handler(
    blocks: Iterable[bytes | str],
    *,
    chunked: bool = True,
    then: Literal["end", "hang", "abort"] = "end",
    headers: HeadersArg = None,
    status: int = 200,
    content_type: str | None = "text/event-stream",
    delay: float = 0.0,
) -> Handler:
    """
    A handler that sends a head (``status``, ``content_type``, ``headers``), each block as
    its own chunk (or write, when not ``chunked``), ``delay`` seconds apart, and then:
    ``"end"`` ends the response in order, ``"abort"`` resets the connection, ``"hang"``
    keeps it open, silent, until the client goes away or the server stops.
    """
    if then not in ("end", "hang", "abort"):
        raise ValueError(f"then must be 'end', 'hang' or 'abort', got {then!r}")
    blocks = list(blocks)
    header_pairs = _header_pairs(headers)

    def handler(conn: Conn) -> None:
        conn.send_head(status, header_pairs, content_type=content_type, chunked=chunked)
        for block in blocks:
            if delay and not conn.sleep(delay):
                return
            conn.send(block)
        if then == "end":
            conn.end()
        elif then == "abort":
            conn.abort()
        else:
            while not conn.stopping.is_set():
                if conn.wait_client_gone(60):
                    return

    return handler


def status_handler(status: int, headers: HeadersArg = None, body: bytes | str = b"") -> Handler:
    """
    A handler that sends a complete response: ``status``, ``headers``, and ``body`` with a
    ``Content-Length`` (none for 204 and 304). The ``Content-Type`` is ``text/plain``
    unless ``headers`` has one.
    """
    payload = _encode(body)
    given = _header_pairs(headers)
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


def redirect_handler(location: str | None, status: int = 307) -> Handler:
    """A handler that redirects to ``location`` (None: a redirect with no ``Location``)."""
    headers: list[tuple[str, str | bytes]] = [("Content-Length", "0")]
    if location is not None:
        headers.append(("Location", location))

    def handler(conn: Conn) -> None:
        conn.send_head(status, headers, content_type=None, chunked=False)
        conn.end()

    return handler


def sequence_handler(*handlers: Handler) -> Handler:
    """A handler that serves the n-th request with the n-th handler, then repeats the last."""
    if not handlers:
        raise ValueError("sequence_handler needs at least one handler")
    lock = threading.Lock()
    served = itertools.count()

    def handler(conn: Conn) -> None:
        with lock:
            index = next(served)
        handlers[min(index, len(handlers) - 1)](conn)

    return handler

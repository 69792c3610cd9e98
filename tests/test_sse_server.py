"""Tests of the test server itself, with http.client and raw sockets."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import trustme

from ld_eventsource import testing
from ld_eventsource.testing import (
    Conn,
    Headers,
    Request,
    SSEServerError,
    events_handler,
    redirect_handler,
    sequence_handler,
    sse,
    status_handler,
)
from tests.sse_server import SSEServer

GET = b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n"


# -- client helpers ---------------------------------------------------------------------------


def connect(server: testing.SSEServer, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=timeout)


def read_to_eof(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def read_until(sock: socket.socket, marker: bytes, buffer: bytes = b"") -> bytes:
    while marker not in buffer:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"EOF before {marker!r}; got {buffer!r}")
        buffer += data
    return buffer


def raw_exchange(server: testing.SSEServer, request: bytes = GET) -> bytes:
    with connect(server) as sock:
        sock.sendall(request)
        return read_to_eof(sock)


def split_response(raw: bytes) -> tuple[bytes, set[bytes], bytes]:
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, raw
    status_line, *header_lines = head.split(b"\r\n")
    return status_line, set(header_lines), body


@contextlib.contextmanager
def http_connection(server: testing.SSEServer) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def get(
    server: testing.SSEServer, path: str = "/stream"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    with http_connection(server) as conn:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.headers, response.read()


def wait_for(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sse-server-")]


# -- sse() ----------------------------------------------------------------------------------


def test_sse_builds_one_block() -> None:
    assert sse(data="hello") == b"data: hello\n\n"
    assert sse(data="a\nb\r\nc\rd", event="greet", id="7", retry=1500) == (
        b"event: greet\nid: 7\nretry: 1500\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )
    assert sse(comment="keep-alive") == b":keep-alive\n\n"
    assert sse(data="") == b"data:\n\n"
    assert sse(id="") == b"id:\n\n"
    assert sse(data="a\n") == b"data: a\ndata:\n\n"
    assert sse(data=" x") == b"data:  x\n\n"
    assert sse(data="é", eol="\r\n") == "data: é\r\n\r\n".encode()
    assert sse(data="x", eol="\r") == b"data: x\r\r"
    with pytest.raises(ValueError):
        sse(event="a\nb")
    with pytest.raises(ValueError):
        sse(data="x", eol="\n\n")


# -- framing on the wire ----------------------------------------------------------------------


def test_chunked_framing_on_the_wire() -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(200, {"X-Test": "1"})
        conn.send(b"data: a\n\n")
        conn.send("data: é\n\n")
        conn.send(b"")  # nothing: an empty chunk would end the body
        conn.end()

    with SSEServer(handler) as server:
        raw = raw_exchange(server)
    status_line, headers, body = split_response(raw)
    assert status_line == b"HTTP/1.1 200 OK"
    assert headers == {
        b"Content-Type: text/event-stream",
        b"X-Test: 1",
        b"Transfer-Encoding: chunked",
        b"Connection: close",
    }
    assert body == b"9\r\ndata: a\n\n\r\na\r\ndata: \xc3\xa9\n\n\r\n0\r\n\r\n"


def test_close_delimited_framing_on_the_wire() -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(chunked=False)
        conn.send(b"data: a\n\n")
        conn.send("data: b\n\n")

    with SSEServer(handler) as server:
        raw = raw_exchange(server)
        status, headers, body = get(server)
    status_line, header_lines, raw_body = split_response(raw)
    assert status_line == b"HTTP/1.1 200 OK"
    assert header_lines == {b"Content-Type: text/event-stream", b"Connection: close"}
    assert raw_body == b"data: a\n\ndata: b\n\n"
    assert (status, body) == (200, b"data: a\n\ndata: b\n\n")
    assert headers["Transfer-Encoding"] is None and headers["Content-Length"] is None


def test_http_client_reads_a_chunked_stream() -> None:
    blocks = [sse(data="one"), sse(event="e", data="two", id="2")]
    with SSEServer(events_handler(blocks)) as server:
        status, headers, body = get(server)
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["Transfer-Encoding"] == "chunked"
    assert body == b"".join(blocks)


def test_each_send_is_flushed_at_once() -> None:
    go = threading.Event()

    def handler(conn: Conn) -> None:
        conn.send(sse(data="first"))
        assert go.wait(5), "the client never saw the first chunk"
        conn.send(sse(data="second"))

    with SSEServer(handler) as server, connect(server) as sock:
        sock.sendall(GET)
        received = read_until(sock, b"data: first\n\n\r\n")
        assert b"second" not in received
        go.set()
        received += read_to_eof(sock)
    assert received.endswith(b"data: second\n\n\r\n0\r\n\r\n")


def test_head_options_and_header_overrides() -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(
            299,
            [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Connection", "keep-alive")],
            content_type="text/event-stream; charset=utf-8",
            reason="Fine",
        )
        conn.send(b"x")

    with SSEServer(handler) as server:
        status_line, headers, body = split_response(raw_exchange(server))
    assert status_line == b"HTTP/1.1 299 Fine"
    assert headers == {
        b"Content-Type: text/event-stream; charset=utf-8",
        b"Set-Cookie: a=1",
        b"Set-Cookie: b=2",
        b"Connection: keep-alive",
        b"Transfer-Encoding: chunked",
    }
    assert body == b"1\r\nx\r\n0\r\n\r\n"


def test_no_content_type_and_unknown_status() -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(599, content_type=None, chunked=False)

    with SSEServer(handler) as server:
        status_line, headers, body = split_response(raw_exchange(server))
    assert status_line == b"HTTP/1.1 599 Unknown"
    assert headers == {b"Connection: close"}
    assert body == b""


def test_handler_that_sends_nothing_gets_an_empty_stream() -> None:
    with SSEServer(lambda conn: None) as server:
        status, headers, body = get(server)
    assert (status, headers["Content-Type"], body) == (200, "text/event-stream", b"")


def test_send_raw_controls_every_byte() -> None:
    garbage = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk"

    def handler(conn: Conn) -> None:
        conn.send_raw(garbage)

    with SSEServer(handler) as server:
        assert raw_exchange(server) == garbage


def test_close_leaves_a_chunked_body_unterminated() -> None:
    def handler(conn: Conn) -> None:
        conn.send(b"data: a\n\n")
        conn.close()
        with pytest.raises(RuntimeError):
            conn.send(b"more")

    with SSEServer(handler) as server:
        _, _, body = split_response(raw_exchange(server))
    assert body == b"9\r\ndata: a\n\n\r\n"


# -- requests -----------------------------------------------------------------------------------


def test_records_method_path_query_headers_and_body() -> None:
    with SSEServer(status_handler(200)) as server:
        before = time.monotonic()
        with http_connection(server) as conn:
            conn.request(
                "POST",
                "/stream?a=1&b=&a=2&c=x%20y",
                body=b'{"q": 1}',
                headers={
                    "Content-Type": "application/json",
                    "Last-Event-ID": "é".encode(),
                    "X-Twice": "1",
                },
            )
            assert conn.getresponse().read() == b""
        (request,) = server.wait_requests(1)
    assert request.method == "POST"
    assert request.path == "/stream?a=1&b=&a=2&c=x%20y"
    assert request.path_only == "/stream"
    assert request.query == {"a": "2", "b": "", "c": "x y"}
    assert request.version == "HTTP/1.1"
    assert request.body == b'{"q": 1}'
    assert request.headers["content-length"] == "8"
    assert request.headers["CONTENT-TYPE"] == "application/json"
    assert request.headers["last-event-id"] == "é"
    assert request.headers.get("x-missing") is None
    assert "x-twice" in request.headers
    assert (b"Last-Event-ID", b"\xc3\xa9") in request.raw_headers
    assert before <= request.received_at <= time.monotonic()
    assert request.client_address[0] == "127.0.0.1"
    assert not request.tls


def test_repeated_headers_are_joined_and_listed() -> None:
    headers = Headers([(b"X-A", b"1"), (b"x-a", b"2"), (b"Bad", b"\xff")])
    assert headers["x-a"] == "1, 2"
    assert headers.get_all("X-A") == ["1", "2"]
    assert headers.get_all("nope") == []
    assert list(headers) == ["X-A", "Bad"]
    assert len(headers) == 2
    assert headers["bad"] == "\xff"  # not UTF-8: shown as Latin-1
    not_a_name: object = 1
    assert not_a_name not in headers


def test_chunked_request_body() -> None:
    with SSEServer(status_handler(204)) as server:
        with http_connection(server) as conn:
            conn.request("POST", "/", body=iter([b"ab", b"cd", b"ef"]), encode_chunked=True)
            assert conn.getresponse().status == 204
        raw = (
            b"REPORT /r HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        status_line, headers, _ = split_response(raw_exchange(server, raw))
        first, second = server.wait_requests(2)
    assert first.body == b"abcdef"
    assert (second.method, second.body) == ("REPORT", b"abc0123456789")
    assert status_line == b"HTTP/1.1 204 No Content"
    assert not any(h.startswith(b"Content-Length") for h in headers)


def test_expect_100_continue() -> None:
    with SSEServer(status_handler(200, body="ok")) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"xyz")
        assert read_to_eof(sock).endswith(b"\r\n\r\nok")
        assert server.wait_requests(1)[0].body == b"xyz"


def test_bad_requests_get_400_and_are_not_recorded() -> None:
    with SSEServer(status_handler(200)) as server:
        for bad in (
            b"NONSENSE\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ):
            status_line, _, _ = split_response(raw_exchange(server, bad))
            assert status_line == b"HTTP/1.1 400 Bad Request", bad
        # A client that connects and leaves, or leaves mid-body, is no request either.
        connect(server).close()
        with connect(server) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        wait_for(lambda: server.total_connections == 6)
        server.wait_active_connections(0)
        assert server.requests == []
        assert server.total_connections == 6


def test_wait_requests_times_out() -> None:
    with SSEServer() as server:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            server.wait_requests(1, timeout=0.1)
        assert time.monotonic() - start >= 0.1  # a lower bound: load can only make it longer


# -- routing and canned handlers ----------------------------------------------------------------


def test_routing_by_exact_path_and_default() -> None:
    with SSEServer(status_handler(200, body="default")) as server:
        server.route("/a", status_handler(200, body="a"))
        server.route("/b", events_handler([sse(data="b")]))
        assert get(server, "/a?x=1")[2] == b"a"
        assert get(server, "/b")[2] == sse(data="b")
        assert get(server, "/a/")[2] == b"default"
        assert get(server, "/")[2] == b"default"
        assert [r.path for r in server.requests] == ["/a?x=1", "/b", "/a/", "/"]


def test_unrouted_path_without_default_is_404() -> None:
    with SSEServer() as server:
        server.route("/a", status_handler(200))
        status, headers, body = get(server, "/other")
        assert status == 404
        assert headers["Content-Type"].startswith("text/plain")
        assert int(headers["Content-Length"]) == len(body)


def test_status_handler() -> None:
    with SSEServer(status_handler(503, {"Retry-After": "1"}, "busy")) as server:
        status, headers, body = get(server)
    assert (status, headers["Retry-After"], body) == (503, "1", b"busy")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == "4"

    stream = sse(data="x")
    handler = status_handler(200, {"Content-Type": "text/event-stream"}, stream)
    with SSEServer(handler) as server:
        status, headers, body = get(server)
    assert (status, headers["Content-Type"], body) == (200, "text/event-stream", stream)
    assert headers.get_all("Content-Type") == ["text/event-stream"]


def test_redirect_handler() -> None:
    with SSEServer(redirect_handler("/next", 301)) as server:
        server.route("/none", redirect_handler(None))
        status, headers, body = get(server)
        assert (status, headers["Location"], body) == (301, "/next", b"")
        status, headers, _ = get(server, "/none")
        assert (status, headers["Location"], headers["Content-Type"]) == (307, None, None)


def test_sequence_handler() -> None:
    handler = sequence_handler(status_handler(500), status_handler(200, body="ok"))
    with SSEServer(handler) as server:
        assert [get(server)[0] for _ in range(3)] == [500, 200, 200]


def test_events_handler_options() -> None:
    handler = events_handler(
        ["data: a\n\n", b"data: b\n\n"], chunked=False, headers=[("X-A", "1")], status=201
    )
    with SSEServer(handler) as server:
        status_line, headers, body = split_response(raw_exchange(server))
    assert status_line == b"HTTP/1.1 201 Created"
    assert b"X-A: 1" in headers
    assert body == b"data: a\n\ndata: b\n\n"
    with pytest.raises(ValueError):
        events_handler([], then="explode")  # type: ignore[arg-type]


def test_events_handler_content_type() -> None:
    with SSEServer(events_handler([sse(data="x")], content_type="text/html")) as server:
        assert get(server)[1]["Content-Type"] == "text/html"
    with SSEServer(events_handler([sse(data="x")], content_type=None)) as server:
        assert get(server)[1]["Content-Type"] is None


def test_conn_sees_the_requests_so_far() -> None:
    seen: list[int] = []

    def handler(conn: Conn) -> None:
        requests = conn.server_requests()
        assert requests[-1] is conn.request
        seen.append(len(requests))

    with SSEServer(handler) as server:
        for _ in range(3):
            get(server)
        assert server.wait_connections_closed(2)
    assert seen == [1, 2, 3]


# -- abrupt endings and disconnections -----------------------------------------------------------


def test_abort_resets_the_connection() -> None:
    with SSEServer(events_handler([sse(data="a")], then="abort")) as server:
        with connect(server) as sock:
            sock.sendall(GET)
            with pytest.raises(ConnectionResetError):
                read_to_eof(sock)
        server.wait_active_connections(0)


def test_abort_from_a_handler_mid_stream() -> None:
    def handler(conn: Conn) -> None:
        conn.send(sse(data="a"))
        conn.abort()
        conn.abort()  # idempotent
        with pytest.raises(RuntimeError):
            conn.send(b"x")

    with SSEServer(handler) as server, connect(server) as sock:
        sock.sendall(GET)
        with pytest.raises(ConnectionResetError):
            read_to_eof(sock)


def test_hang_keeps_the_stream_open_until_the_client_leaves() -> None:
    with SSEServer(events_handler([sse(data="a")], then="hang")) as server:
        with connect(server) as sock:
            sock.sendall(GET)
            read_until(sock, b"data: a\n\n\r\n")
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)
            assert server.active_connections == 1
        assert server.wait_connections_closed(2)


def test_wait_connections_closed_times_out() -> None:
    with SSEServer(events_handler([], then="hang")) as server, connect(server) as sock:
        sock.sendall(GET)
        read_until(sock, b"\r\n\r\n")
        assert not server.wait_connections_closed(0.1)


def test_wait_client_gone() -> None:
    results: list[tuple[bool, float]] = []
    done = threading.Event()

    def handler(conn: Conn) -> None:
        conn.send(sse(data="a"))
        start = time.monotonic()
        results.append((conn.wait_client_gone(0.2), time.monotonic() - start))
        conn.send(sse(data="b"))
        results.append((conn.wait_client_gone(60), 0.0))
        done.set()

    with SSEServer(handler) as server:
        with connect(server) as sock:
            sock.sendall(GET)
            read_until(sock, b"data: b\n\n\r\n")
        # well within the 60 s: the wait ends when the client goes, not at its timeout
        assert done.wait(30)
    (stayed, waited), (gone, _) = results
    assert not stayed and waited >= 0.2
    assert gone


def test_client_leaving_mid_stream_is_not_an_error() -> None:
    def handler(conn: Conn) -> None:
        while conn.sleep(0.01):
            conn.send(sse(data="tick"))  # raises BrokenPipe/ConnectionReset eventually

    with SSEServer(handler) as server:
        for _ in range(3):
            with connect(server) as sock:
                sock.sendall(GET)
                read_until(sock, b"tick")
        server.wait_active_connections(0)
    assert server.errors == []


def test_handler_errors_are_reported_by_close() -> None:
    def handler(conn: Conn) -> None:
        raise KeyError("boom")

    server = SSEServer(handler).start()
    try:
        status, _, body = get(server)
        assert (status, body) == (500, b"handler failed\n")
    finally:
        with pytest.raises(SSEServerError, match="boom") as info:
            server.close()
    assert isinstance(info.value.__cause__, KeyError)
    server.close()  # idempotent, and does not raise again


def test_exit_with_an_exception_does_not_mask_it() -> None:
    def handler(conn: Conn) -> None:
        raise KeyError("boom")

    with pytest.raises(ZeroDivisionError), SSEServer(handler) as server:
        get(server)
        server.wait_requests(1)
        raise ZeroDivisionError


# -- shutdown -----------------------------------------------------------------------------------


def test_close_with_hanging_handlers_is_quick() -> None:
    def waiter(conn: Conn) -> None:
        conn.send(sse(data="a"))
        conn.stopping.wait(60)

    server = SSEServer(events_handler([sse(data="a")], then="hang")).start()
    server.route("/wait", waiter)
    clients = [connect(server) for _ in range(10)]
    try:
        for i, sock in enumerate(clients):
            sock.sendall(b"GET /wait HTTP/1.1\r\n\r\n" if i % 2 else GET)
        for sock in clients:
            read_until(sock, b"data: a\n\n\r\n")
        server.wait_active_connections(10)
        server.close()
        assert server.active_connections == 0
        assert server_threads() == []
        for sock in clients:
            sock.settimeout(2)
            with contextlib.suppress(ConnectionResetError):
                read_to_eof(sock)  # the server side is closed: EOF (or a reset)
    finally:
        for sock in clients:
            sock.close()


def test_close_unblocks_a_handler_stuck_in_send() -> None:
    sending = threading.Event()

    def flood(conn: Conn) -> None:
        conn.send_head()
        sending.set()
        while True:  # the client never reads: sendall blocks once the buffers are full
            conn.send(b"x" * 65536)

    server = SSEServer(flood).start()
    try:
        with connect(server) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(GET)
            assert sending.wait(5)
            time.sleep(0.2)
            server.close()  # returns, with the handler's thread ended (below)
    finally:
        server.close()
    assert server_threads() == []


def test_close_while_a_client_has_not_sent_its_request() -> None:
    server = SSEServer(status_handler(200)).start()
    try:
        with connect(server):
            server.wait_active_connections(1)
            server.close()
    finally:
        server.close()
    assert server.requests == []
    assert server_threads() == []


def test_handler_ignoring_stopping_is_reported() -> None:
    release = threading.Event()

    def stubborn(conn: Conn) -> None:
        conn.send(sse(data="a"))
        release.wait(10)  # ignores conn.stopping

    server = testing.SSEServer(stubborn, join_timeout=0.2).start()
    try:
        with connect(server) as sock:
            sock.sendall(GET)
            read_until(sock, b"data: a")
            with pytest.raises(SSEServerError, match="did not stop"):
                server.close()
            assert server.active_connections == 0  # its socket was closed anyway
    finally:
        release.set()
        for thread in server_threads():
            thread.join(5)


def test_lifecycle_without_context_manager() -> None:
    SSEServer().close()  # never started: the listening socket is closed all the same
    server = SSEServer(status_handler(200, body="x"))
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.start() is server.start()
    assert get(server)[2] == b"x"
    server.close()
    with pytest.raises(RuntimeError):
        server.start()
    with pytest.raises(ConnectionRefusedError):
        connect(server).close()


def test_many_concurrent_connections() -> None:
    with SSEServer(events_handler([sse(data="a")], delay=0.05)) as server:
        results: list[bytes] = []
        lock = threading.Lock()

        def client() -> None:
            body = get(server)[2]
            with lock:
                results.append(body)

        threads = [threading.Thread(target=client) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert results == [sse(data="a")] * 20
        assert server.total_connections == 20


# -- TLS and IPv6 ---------------------------------------------------------------------------------


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the certificates ``ca`` issues."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_tls_with_trustme(ca: trustme.CA) -> None:
    blocks = [sse(data="secure"), sse(data="again")]
    with SSEServer(events_handler(blocks), tls=ca) as server:
        assert server.url == f"https://127.0.0.1:{server.port}"
        context = ssl.create_default_context()
        ca.configure_trust(context)
        for host in ("127.0.0.1", "localhost"):
            conn = http.client.HTTPSConnection(host, server.port, context=context, timeout=5)
            try:
                conn.request("GET", "/stream")
                response = conn.getresponse()
                assert response.status == 200
                assert response.read() == b"".join(blocks)
            finally:
                conn.close()
        request = server.wait_requests(2)[0]
        assert request.tls


def test_tls_close_delimited_ends_cleanly(ca: trustme.CA) -> None:
    with SSEServer(events_handler([sse(data="x")], chunked=False), tls=ca) as server:
        context = trusting(ca)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False) as s,
        ):
            s.sendall(GET)
            # suppress_ragged_eofs=False: a missing close_notify would raise SSLEOFError.
            _, _, body = split_response(read_to_eof(s))
    assert body == b"data: x\n\n"


def test_tls_abort_and_wait_client_gone(ca: trustme.CA) -> None:
    gone: list[bool] = []

    def handler(conn: Conn) -> None:
        conn.send(sse(data="a"))
        gone.append(conn.wait_client_gone(5))

    with SSEServer(handler, tls=ca) as server:
        server.route("/abort", events_handler([sse(data="a")], then="abort"))
        context = trusting(ca)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s,
        ):
            s.sendall(b"GET /abort HTTP/1.1\r\n\r\n")
            # Over TLS the reset may surface as an EOF without close_notify (never a clean
            # end: a graceful close sends close_notify, see the test above).
            with pytest.raises((ConnectionResetError, ssl.SSLEOFError)):
                read_to_eof(s)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            s.sendall(GET)
            read_until(s, b"data: a")
        server.wait_active_connections(0)
    assert gone == [True]


def test_tls_untrusted_client_fails_and_server_survives(ca: trustme.CA) -> None:
    with SSEServer(status_handler(200, body="ok"), tls=ca) as server:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port, context=ssl.create_default_context(), timeout=5
        )
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                conn.request("GET", "/")
        finally:
            conn.close()
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port, context=trusting(ca), timeout=5
        )
        try:
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"ok"
        finally:
            conn.close()
        assert len(server.wait_requests(1)) == 1
        server.wait_active_connections(0)
        assert server.total_connections == 2


def ipv6_server() -> testing.SSEServer:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        return testing.SSEServer(status_handler(200, body="six"), host="::1")
    except OSError as exc:
        pytest.skip(f"cannot listen on ::1: {exc}")


def test_ipv6() -> None:
    with ipv6_server() as server:
        assert server.url == f"http://[::1]:{server.port}"
        status, _, body = get(server)
        assert (status, body) == (200, b"six")
        request: Request = server.wait_requests(1)[0]
        assert request.client_address[0] == "::1"

"""
Hostile servers, for both clients: real servers on 127.0.0.1 that send what no good server
sends. Each case ends with a documented error (or with the events intact) in bounded time
and memory; docs/reliability.md has the table.
"""

from __future__ import annotations

import ssl
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import urllib3

from ld_eventsource import AsyncSSEClient
from ld_eventsource.actions import Event, Fault, Start
from ld_eventsource.config import AsyncConnectStrategy, ErrorStrategy, RetryDelayStrategy
from ld_eventsource.errors import (
    EventTooLargeError,
    HTTPContentTypeError,
    HTTPProtocolError,
    HTTPStatusError,
    StreamTimeoutError,
)
from ld_eventsource.testing import Conn, events_handler, sse
from tests.drivers import AsyncDriver, Driver
from tests.hostile_server import compressed_pieces, endless, peak_rss, raw_handler
from tests.sse_server import SSEServer

pytestmark = pytest.mark.timeout(30)

FAST = {
    "initial_retry_delay": 0.01,
    "retry_delay_strategy": RetryDelayStrategy.default(jitter_multiplier=None),
}
MIB = 1024 * 1024

# What a reset of the connection looks like: a network error of the transport.
NETWORK_ERRORS = (OSError, aiohttp.ClientError, HTTPProtocolError)


def data_of(actions: list[Any]) -> list[str]:
    return [a.data for a in actions if isinstance(a, Event)]


def continuing(driver: Driver, url: str, **kwargs: Any) -> Any:
    strategy_args = {k: kwargs.pop(k) for k in ("read_timeout",) if k in kwargs}
    return driver.client(
        driver.strategy(url, **strategy_args),
        error_strategy=ErrorStrategy.always_continue(),
        **FAST,
        **kwargs,
    )


# -- rejected responses fail at once ----------------------------------------------------------


def _rejected_body(kind: str) -> Any:
    """A response body for a rejected head: endless, dripping, chunked, close-delimited."""

    def body(conn: Conn) -> None:
        if kind == "endless":
            endless(conn, b"<p>" + b"x" * 65536 + b"</p>\n")
        elif kind == "dripping":
            while conn.sleep(0.2):
                conn.send(b"x")
        elif kind in ("chunked", "close-delimited"):
            conn.send(b"<html>the start of a body that never ends")
            conn.wait_client_gone(20)
        elif kind == "absent":
            conn.wait_client_gone(20)

    return body


REJECTIONS = {
    "200-text/html": (200, "text/html"),
    "404": (404, "text/plain"),
    "503": (503, "text/event-stream"),
}


@pytest.mark.parametrize("body", ["endless", "dripping", "chunked", "close-delimited", "absent"])
@pytest.mark.parametrize("rejection", list(REJECTIONS))
def test_a_rejected_response_fails_at_once(driver: Driver, rejection: str, body: str) -> None:
    status, content_type = REJECTIONS[rejection]
    send_body = _rejected_body(body)

    def handler(conn: Conn) -> None:
        # "absent": a close-delimited head and then nothing, the connection left open.
        conn.send_head(
            status,
            content_type=content_type,
            chunked=body not in ("close-delimited", "absent", "dripping"),
        )
        send_body(conn)

    expected = HTTPStatusError if status != 200 else HTTPContentTypeError
    with SSEServer(handler) as server:
        client = driver.client(server.url)
        with pytest.raises(expected):
            driver.start(client)
        # The connection was closed, not drained: the server sees the client go.
        assert server.wait_connections_closed(5)
        again = continuing(driver, server.url)
        fault = driver.take(again, 1)[0]
        assert isinstance(fault, Fault) and isinstance(fault.error, expected)
        driver.close(again)
        assert server.wait_connections_closed(5)


def test_a_small_rejected_body_is_fine(driver: Driver) -> None:
    body = b"try again later\n"

    def handler(conn: Conn) -> None:
        conn.send_head(
            503, {"Content-Length": str(len(body))}, content_type="text/plain", chunked=False
        )
        conn.send(body)
        conn.end()

    with SSEServer(handler) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPStatusError) as info:
            driver.start(client)
    assert info.value.status == 503


# -- bounded memory ---------------------------------------------------------------------------


LINE = b"data: " + b"x" * 1024 + b"\n"


@pytest.mark.parametrize("shape", ["endless-line", "endless-event"])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "br", "zstd"])
def test_an_endless_event_is_bounded(driver: Driver, shape: str, encoding: str) -> None:
    block = b"x" * MIB if shape == "endless-line" else LINE * 1024
    head = b"data: " if shape == "endless-line" else b""

    def handler(conn: Conn) -> None:
        if encoding != "identity":
            # Sent whatever the request asked for: about 1 KiB on the wire per MiB (gzip;
            # br and zstd far less).
            conn.send_head(headers={"Content-Encoding": encoding})
            endless(conn, compressed_pieces(encoding, block, head))
        else:
            conn.send_head()
            if head:
                conn.send(head)
            endless(conn, block)

    with SSEServer(handler) as server, peak_rss() as rss:
        client = driver.client(server.url, max_event_size=MIB)
        with pytest.raises(EventTooLargeError) as info:
            driver.take(client, 2)
        driver.close(client)
    assert info.value.max_size == MIB
    # The server would send 256 MiB (decompressed); the client holds one event of at most
    # 1 MiB and a few reads. 48 MiB leaves room for the allocator and the server thread.
    assert rss.growth < 48 * MIB, f"peak RSS grew by {rss.growth / MIB:.1f} MiB"


def test_a_gzip_stream_works(driver: Driver) -> None:
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    payload = b"".join(sse(id=str(i), data=f"event {i}") for i in range(1, 4))
    wire = compressor.compress(payload) + compressor.flush()
    with SSEServer(events_handler([wire], headers={"Content-Encoding": "gzip"})) as server:
        client = driver.client(server.url)
        events = driver.take_until_end(client, events=True)
    assert data_of(events) == ["event 1", "event 2", "event 3"]


def test_a_gzip_stream_on_a_session_of_ones_own() -> None:
    # aiohttp before 3.10 decompresses on such a session whatever the request says; from
    # 3.10 on the client does. Either way the stream reads the same.
    import asyncio
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    wire = compressor.compress(sse(data="packed") * 3) + compressor.flush()

    async def read(url: str) -> list[str]:
        async with aiohttp.ClientSession() as session:
            strategy = AsyncConnectStrategy.http(url, session=session)
            async with AsyncSSEClient(strategy) as client:
                return [event.data async for event in client.events]

    with SSEServer(events_handler([wire], headers={"Content-Encoding": "gzip"})) as server:
        assert asyncio.run(read(server.url)) == ["packed"] * 3


def test_heartbeats_count_toward_no_event(driver: Driver) -> None:
    # 4 MiB of comment lines with no blank line among them, then an event, with a limit of
    # 64 KiB: the comments are not an event, and nothing of them is kept.
    heartbeat = b":" + b"-" * 100 + b"\n"
    flood = heartbeat * 640  # 64 KiB

    def handler(conn: Conn) -> None:
        conn.send_head()
        conn.send(b"data: before\n")
        for _ in range(64):
            conn.send(flood)
        conn.send(b"data: after\n\n")
        conn.end()

    with SSEServer(handler) as server:
        client = driver.client(server.url, max_event_size=64 * 1024)
        events = driver.take_until_end(client, events=True)
    assert events == [Event(data="before\nafter")]


# -- slow servers -----------------------------------------------------------------------------


def test_a_dripping_server_times_out_and_reconnects(driver: Driver) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head()
        for byte in sse(data="slow"):
            if not conn.sleep(0.3):
                return
            conn.send(bytes([byte]))

    with SSEServer(handler) as server:
        client = continuing(driver, server.url, read_timeout=0.1)
        actions = driver.take(client, 3)
    assert isinstance(actions[0], Start)
    assert isinstance(actions[1], Fault) and isinstance(actions[1].error, StreamTimeoutError)
    assert isinstance(actions[2], Start)


def test_a_dripping_server_without_read_timeout_delivers_intact(driver: Driver) -> None:
    block = sse(id="é", data="drip ü")

    def handler(conn: Conn) -> None:
        conn.send_head(chunked=False)
        for byte in block:
            if not conn.sleep(0.02):
                return
            conn.send(bytes([byte]))
        conn.end()

    with SSEServer(handler) as server:
        client = driver.client(server.url)
        assert driver.take_until_end(client, events=True) == [Event("message", "drip ü", "é", "é")]


def test_a_server_that_never_answers_times_out(driver: Driver) -> None:
    def silent(conn: Conn) -> None:
        conn.wait_client_gone(20)

    with SSEServer(silent) as server:
        client = driver.client(driver.strategy(server.url, read_timeout=0.2))
        with pytest.raises(StreamTimeoutError) as info:
            driver.start(client)
        assert info.value.timeout == pytest.approx(0.2)
        assert server.wait_connections_closed(5)


# -- broken heads -----------------------------------------------------------------------------


def _expect_protocol_error(
    driver: Driver, script: Any, *, read_timeout: float | None = None
) -> Any:
    with SSEServer(raw_handler(script)) as server, peak_rss() as rss:
        kwargs = {"read_timeout": read_timeout} if read_timeout else {}
        client = driver.client(driver.strategy(server.url, **kwargs))
        with pytest.raises(HTTPProtocolError) as info:
            driver.start(client)
            driver.take(client, 3)
        driver.close(client)
        assert server.wait_connections_closed(5)
    assert rss.growth < 48 * MIB, f"peak RSS grew by {rss.growth / MIB:.1f} MiB"
    return info.value


def test_an_endless_header_block(driver: Driver) -> None:
    def script(conn: Conn) -> None:
        conn.send_raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        counter = iter(range(10**9))
        endless(conn, lambda: b"X-Pad-%d: %s\r\n" % (next(counter), b"p" * 512), raw=True)

    _expect_protocol_error(driver, script)


def test_an_endless_header_line(driver: Driver) -> None:
    def script(conn: Conn) -> None:
        conn.send_raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Long: ")
        endless(conn, b"y" * 65536, raw=True)

    _expect_protocol_error(driver, script)


def test_an_endless_status_line(driver: Driver) -> None:
    def script(conn: Conn) -> None:
        conn.send_raw(b"HTTP/1.1 200 ")
        endless(conn, b"O" * 65536, raw=True)

    _expect_protocol_error(driver, script)


@pytest.mark.parametrize(
    "status_line",
    [b"HTTP/1.1 abc OK", b"garbage", b"HTTP/1.1 2000 OK", b"SSE/1.0 200 OK", b"HTTP/1.1"],
)
def test_an_invalid_status_line(driver: Driver, status_line: bytes) -> None:
    def script(conn: Conn) -> None:
        conn.send_raw(status_line + b"\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n")
        conn.wait_client_gone(20)

    _expect_protocol_error(driver, script)


def test_an_http_1_0_response_is_close_delimited(driver: Driver) -> None:
    def script(conn: Conn) -> None:
        conn.send_raw(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        conn.send_raw(sse(data="one") + sse(data="two"))

    with SSEServer(raw_handler(script)) as server:
        client = driver.client(server.url)
        actions = driver.take_until_end(client)
    assert data_of(actions) == ["one", "two"]
    assert actions[-1] == Fault(None)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 10\r\nContent-Length: 20\r\n",
        b"Content-Length: -1\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Content-Encoding: compress\r\n",
    ],
    ids=["cl-then-te", "te-then-cl", "two-lengths", "negative-length", "te-gzip", "ce-compress"],
)
def test_conflicting_or_unsupported_framing(driver: Driver, framing: bytes) -> None:
    def script(conn: Conn) -> None:
        conn.send_raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + framing + b"\r\n")
        conn.send_raw(b"5\r\ndata:\r\n")
        conn.wait_client_gone(20)

    _expect_protocol_error(driver, script)


# -- broken chunked framing -------------------------------------------------------------------


def _chunked_head(conn: Conn, go: threading.Event | None = None) -> None:
    """A chunked head and one event; then waits for ``go`` (the client has the event)."""
    conn.send_raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    block = sse(data="ok")
    conn.send_raw(b"%x\r\n%s\r\n" % (len(block), block))
    if go is not None:
        # aiohttp fails a body at a framing error before handing out the bytes it had
        # buffered: what comes next comes after the event, as from a server that broke
        # later on.
        go.wait(10)


def _take_ok_then(driver: Driver, client: Any, go: threading.Event) -> Any:
    first = driver.take(client, 2)
    assert first[1] == Event(data="ok")
    go.set()
    return driver.take(client, 1)[0]


@pytest.mark.parametrize(
    "size_line",
    [b"1" + b"0" * 20, b"ffffffffffffffffff", b"zz", b"-5", b"0x10", b" "],
    ids=["overflow-decimal", "overflow-hex", "not-hex", "negative", "0x", "blank"],
)
def test_a_bad_chunk_size(driver: Driver, size_line: bytes) -> None:
    go = threading.Event()

    def script(conn: Conn) -> None:
        _chunked_head(conn, go)
        conn.send_raw(size_line + b"\r\n" + b"data: y\n\n" * 4)
        conn.wait_client_gone(20)

    with SSEServer(raw_handler(script)) as server:
        client = continuing(driver, server.url)
        fault = _take_ok_then(driver, client, go)
        driver.close(client)
    assert isinstance(fault, Fault)
    assert isinstance(fault.error, HTTPProtocolError)


@pytest.mark.parametrize("what", ["size-line", "extension", "trailer"])
def test_a_chunk_line_that_never_ends(driver: Driver, what: str) -> None:
    # Bytes keep coming, so no read timeout would fire: the bound must come from the client.
    go = threading.Event()

    def script(conn: Conn) -> None:
        _chunked_head(conn, go)
        if what == "size-line":
            conn.send_raw(b"1")
            endless(conn, b"0" * 4096, raw=True)
        elif what == "extension":
            conn.send_raw(b"5;name=")
            endless(conn, b"v" * 4096, raw=True)
        else:
            conn.send_raw(b"0\r\nX-Trailer: ")
            endless(conn, b"t" * 4096, raw=True)

    with SSEServer(raw_handler(script)) as server, peak_rss() as rss:
        client = continuing(driver, server.url)
        fault = _take_ok_then(driver, client, go)
        driver.close(client)
    assert isinstance(fault, Fault)
    if what == "trailer" and driver.name == "sync":
        # The sync client stops reading at the last chunk: the body is complete, and the
        # trailer is never read.
        assert fault == Fault(None)
    else:
        assert isinstance(fault.error, HTTPProtocolError)
    assert rss.growth < 48 * MIB, f"peak RSS grew by {rss.growth / MIB:.1f} MiB"


# -- resets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    [
        b"data: half an event\n",
        b"data: caf\xc3",
        b"data: whole line\r",
        b"data: two\ndata: lines\r\n\r",
    ],
    ids=["mid-event", "mid-utf8", "between-cr-and-lf", "after-blank-cr"],
)
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_a_reset_never_delivers_a_partial_event(driver: Driver, cut: bytes, chunked: bool) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(chunked=chunked)
        if len(conn.server_requests()) == 1:
            conn.send(b"data: whole\r\n\r\n")
            conn.send(cut)
            conn.abort()
        else:
            conn.send(sse(data="again"))

    with SSEServer(handler) as server:
        client = continuing(driver, server.url)
        actions = driver.take(client, 6)
    faults = [a for a in actions if isinstance(a, Fault)]
    assert isinstance(faults[0].error, NETWORK_ERRORS)
    expected = ["whole"]
    if cut.endswith(b"\r\n\r"):
        # The CR alone is a line end: the event was complete before the reset.
        expected.append("two\nlines")
    assert data_of(actions)[: len(expected) + 1] == [*expected, "again"]


def test_a_reset_in_a_chunk_size_line(driver: Driver) -> None:
    def script(conn: Conn) -> None:
        _chunked_head(conn)
        conn.send_raw(b"1")
        conn.abort()

    with SSEServer(raw_handler(script)) as server:
        client = continuing(driver, server.url)
        actions = driver.take(client, 3)
        driver.close(client)
    assert actions[1] == Event(data="ok")
    assert isinstance(actions[2], Fault) and isinstance(actions[2].error, NETWORK_ERRORS)


def test_a_chunked_body_closed_before_its_last_chunk(driver: Driver) -> None:
    def script(conn: Conn) -> None:
        _chunked_head(conn)
        conn.send_raw(b"9\r\ndata: cut")

    with SSEServer(raw_handler(script)) as server:
        client = continuing(driver, server.url)
        actions = driver.take(client, 3)
        driver.close(client)
    assert actions[1] == Event(data="ok")
    assert isinstance(actions[2], Fault) and isinstance(actions[2].error, HTTPProtocolError)


# -- redirects --------------------------------------------------------------------------------


def test_a_redirect_loop_is_bounded(driver: Driver) -> None:
    def loop(conn: Conn) -> None:
        conn.send_head(307, {"Location": "/loop"}, content_type="text/html")
        endless(conn, b"<p>moved</p>" * 1000)

    with SSEServer() as server:
        server.route("/loop", loop)
        client = driver.client(driver.strategy(server.url + "/loop", max_redirects=3))
        with pytest.raises(HTTPStatusError) as info:
            driver.start(client)
        assert info.value.status == 307
        assert info.value.headers is not None and info.value.headers["location"] == "/loop"
        assert len(server.requests) == 4
        assert server.wait_connections_closed(5)


SECRETS = {"Authorization": "Bearer s3cret", "Cookie": "session=1", "X-Other": "kept"}


@pytest.mark.parametrize("target", ["localhost", "other-port", "same"])
def test_credentials_stay_with_their_origin(driver: Driver, target: str) -> None:
    with SSEServer(events_handler([sse(data="x")])) as other, SSEServer() as server:
        server.route("/final", events_handler([sse(data="x")]))
        location = {
            "localhost": f"http://localhost:{server.port}/final",
            "other-port": other.url + "/final",
            "same": f"http://127.0.0.1:{server.port}/final",
        }[target]
        server.route("/start", _redirect(location, 302))
        client = driver.client(driver.strategy(server.url + "/start", headers=SECRETS))
        assert data_of(driver.take_until_end(client, events=True)) == ["x"]
        final = (other if target == "other-port" else server).requests[-1]
    assert final.path == "/final"
    assert final.headers["x-other"] == "kept"
    if target == "same":
        assert final.headers["authorization"] == "Bearer s3cret"
        assert final.headers["cookie"] == "session=1"
    else:
        assert "authorization" not in final.headers
        assert "cookie" not in final.headers


def _redirect(location: str, status: int) -> Any:
    def handler(conn: Conn) -> None:
        conn.send_head(status, {"Location": location, "Content-Length": "0"}, chunked=False)
        conn.end()

    return handler


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_of_a_post_stream(driver: Driver, status: int) -> None:
    with SSEServer() as server:
        server.route("/post", _redirect("/final", status))
        server.route("/final", events_handler([sse(data="x")]))
        strategy = driver.strategy(
            server.url + "/post",
            method="POST",
            body='{"q": 1}',
            headers={"Content-Type": "application/json"},
        )
        client = driver.client(strategy)
        assert data_of(driver.take_until_end(client, events=True)) == ["x"]
        final = server.requests[-1]
    assert final.path == "/final"
    if status in (307, 308):
        assert final.method == "POST"
        assert final.body == b'{"q": 1}'
        assert final.headers["content-type"] == "application/json"
    else:
        # As browsers do: the POST becomes a GET without a body.
        assert final.method == "GET"
        assert final.body == b""
        assert "content-type" not in final.headers
        assert "content-length" not in final.headers or final.headers["content-length"] == "0"


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/x", "http://[::1", "file:///etc/passwd"])
def test_a_redirect_to_an_unusable_location(driver: Driver, location: str) -> None:
    with SSEServer(_redirect(location, 302)) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPStatusError) as info:
            driver.start(client)
    assert info.value.status == 302


def test_a_redirect_with_an_endless_body_is_not_drained(driver: Driver) -> None:
    def moved(conn: Conn) -> None:
        conn.send_head(302, {"Location": "/final"}, content_type="text/html")
        endless(conn, b"<p>moved</p>" * 1000)

    with SSEServer() as server:
        server.route("/start", moved)
        server.route("/final", events_handler([sse(data="x")]))
        client = driver.client(server.url + "/start")
        assert data_of(driver.take_until_end(client, events=True)) == ["x"]


# -- HTTPS ------------------------------------------------------------------------------------

TLS_ERRORS = (ssl.SSLError, urllib3.exceptions.SSLError, aiohttp.ClientSSLError)


def _tls_strategy(driver: Driver, url: str, ca: trustme.CA, tmp: Path) -> tuple[Any, Any]:
    """
    A strategy that trusts ``ca`` the documented way: a pool (sync; ``ca_certs``, which
    urllib3 1.26 checks against an IP address host too, where an ``ssl_context`` of one's
    own needs ``check_hostname`` off there), ``ssl`` in the request options (async).
    """
    if driver.name == "sync":
        ca_file = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        pool = urllib3.PoolManager(ca_certs=str(ca_file))
        return driver.strategy(url, pool=pool), pool
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return driver.strategy(url, aiohttp_request_options={"ssl": context}), None


def test_tls_is_verified_by_default(driver: Driver, ca: trustme.CA) -> None:
    with SSEServer(events_handler([sse(data="x")]), tls=ca) as server:
        client = driver.client(server.url)
        with pytest.raises(TLS_ERRORS) as info:
            driver.start(client)
    assert "certificate verify failed" in str(info.value)


def test_tls_with_a_wrong_host_name_fails(driver: Driver, ca: trustme.CA, tmp_path: Path) -> None:
    with SSEServer(events_handler([sse(data="x")]), tls=ca) as server:
        # A certificate from the trusted CA, for another name than the one connected to.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("stream.example.com").configure_cert(context)
        server.ssl_context = context
        strategy, pool = _tls_strategy(driver, server.url, ca, tmp_path)
        client = driver.client(strategy)
        with pytest.raises(TLS_ERRORS) as info:
            driver.start(client)
        if pool is not None:
            pool.clear()
    assert "mismatch" in str(info.value) or "match" in str(info.value)


def test_tls_with_another_ca_fails(driver: Driver, ca: trustme.CA, tmp_path: Path) -> None:
    with SSEServer(events_handler([sse(data="x")]), tls=ca) as server:
        strategy, pool = _tls_strategy(driver, server.url, trustme.CA(), tmp_path)
        client = driver.client(strategy)
        with pytest.raises(TLS_ERRORS) as info:
            driver.start(client)
        if pool is not None:
            pool.clear()
    assert "certificate verify failed" in str(info.value)


def test_tls_with_a_custom_ca(driver: Driver, ca: trustme.CA, tmp_path: Path) -> None:
    with SSEServer(events_handler([sse(id="1", data="secure")]), tls=ca) as server:
        strategy, pool = _tls_strategy(driver, server.url, ca, tmp_path)
        client = driver.client(strategy)
        assert driver.take_until_end(client, events=True) == [Event("message", "secure", "1", "1")]
        if pool is not None:
            pool.clear()


def test_tls_with_a_custom_ca_context_or_session(driver: Driver, ca: trustme.CA) -> None:
    # The other documented ways: a pool with an ssl_context of one's own (check_hostname off
    # for an IP address host on urllib3 1.26, which then checks the name itself); an aiohttp
    # session whose connector trusts the CA.
    server = SSEServer(events_handler([sse(data="secure")]), tls=ca)
    with server, ca.cert_pem.tempfile() as ca_file:
        if driver.name == "sync":
            context = ssl.create_default_context(cafile=ca_file)
            if version("urllib3").startswith("1."):
                context.check_hostname = False
            pool = urllib3.PoolManager(ssl_context=context)
            client = driver.client(driver.strategy(server.url, pool=pool))
            assert data_of(driver.take_until_end(client, events=True)) == ["secure"]
            pool.clear()
            return
        assert isinstance(driver, AsyncDriver)

        async def read() -> list[str]:
            connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file))
            async with aiohttp.ClientSession(connector=connector) as session:
                strategy = AsyncConnectStrategy.http(server.url, session=session)
                async with AsyncSSEClient(strategy) as client:
                    return [event.data async for event in client.events]

        assert driver.run(read()) == ["secure"]

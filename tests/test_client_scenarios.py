"""
The scenario table of both clients, against real HTTP servers on 127.0.0.1.

Every test takes the ``driver`` fixture and so runs four times: with ``SSEClient`` and with
``AsyncSSEClient``, each over its default transport (urllib3, aiohttp) and over httpx.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import urllib3

from ld_eventsource import testing
from ld_eventsource.actions import Comment, Event, Fault, Start
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from ld_eventsource.errors import (
    EventTooLargeError,
    HTTPContentTypeError,
    HTTPStatusError,
    StreamTimeoutError,
)
from ld_eventsource.testing import (
    Conn,
    Feed,
    FeedEvent,
    events_handler,
    feed_handler,
    redirect_handler,
    sse,
    status_handler,
)
from tests.drivers import DRIVERS, Driver
from tests.sse_server import SSEServer

NO_JITTER = RetryDelayStrategy.default(jitter_multiplier=None)
FAST = {"initial_retry_delay": 0.01, "retry_delay_strategy": NO_JITTER}


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """Each client over each of its transports (this table only: conftest has the default)."""
    d = DRIVERS[request.param]()
    try:
        yield d
    finally:
        d.finish()


def numbered(start: int, stop: int) -> list[bytes]:
    return [sse(id=str(i), data=f"event {i}") for i in range(start, stop)]


def data_of(actions: list[Any]) -> list[str]:
    return [a.data for a in actions if isinstance(a, Event)]


# -- the basics ---------------------------------------------------------------------------


def test_reads_all_actions_until_the_server_ends(driver: Driver) -> None:
    with SSEServer(events_handler(numbered(1, 4), headers={"X-Custom": "yes"})) as server:
        client = driver.client(server.url)
        actions = driver.take_until_end(client)
    assert isinstance(actions[0], Start)
    assert actions[0].headers is not None
    assert actions[0].headers["x-custom"] == "yes"
    assert actions[0].headers.get("CONTENT-TYPE") == "text/event-stream"
    assert actions[1:] == [
        Event("message", "event 1", "1", "1"),
        Event("message", "event 2", "2", "2"),
        Event("message", "event 3", "3", "3"),
        Fault(None),
    ]
    assert client.last_event_id == "3"


def test_events_skips_everything_but_events(driver: Driver) -> None:
    blocks = [sse(comment="hi"), sse(event="greeting", data="a\nb"), sse(retry=5)]
    with SSEServer(events_handler(blocks)) as server:
        client = driver.client(server.url)
        assert driver.take_until_end(client, events=True) == [Event("greeting", "a\nb")]


def test_comments_reach_all(driver: Driver) -> None:
    with SSEServer(events_handler([b":keep-alive\n", sse(data="x")])) as server:
        client = driver.client(server.url)
        actions = driver.take(client, 3)
    assert actions[1:] == [Comment("keep-alive"), Event("message", "x")]


def test_url_keyword_alias(driver: Driver) -> None:
    with SSEServer(events_handler([sse(data="x")])) as server:
        client = driver.client(url=server.url)
        assert driver.take_until_end(client, events=True) == [Event(data="x")]
        with pytest.raises(TypeError, match="not both"):
            driver.client(server.url, url=server.url)
    with pytest.raises(TypeError, match="missing the stream"):
        driver.client()
    with pytest.raises(TypeError, match="connect must be"):
        driver.client(42)


def test_strategy_object_and_max_event_size(driver: Driver) -> None:
    big = "x" * 2000
    with SSEServer(events_handler([sse(data="small"), sse(data=big)])) as server:
        client = driver.client(driver.strategy(server.url), max_event_size=1000)
        actions = driver.take(client, 2)
    assert actions[1] == Event(data="small")
    with pytest.raises(EventTooLargeError):
        driver.take(client, 1)


# -- the request ----------------------------------------------------------------------------


def test_request_headers_and_non_latin1_last_event_id(driver: Driver) -> None:
    calls: list[int] = []

    def headers() -> dict[str, str]:
        calls.append(1)
        return {"Authorization": f"Bearer {len(calls)}", "accept": "text/html"}

    with SSEServer(events_handler([sse(data="x")])) as server:
        client = driver.client(
            driver.strategy(server.url, headers=headers), last_event_id="ü€😀", **FAST
        )
        driver.take(client, 2)
        driver.interrupt(client)
        assert driver.take_until_end(client) == [Fault(None)]
        driver.take(client, 2)
        first, second = server.wait_requests(2)[:2]
    assert first.method == "GET"
    assert first.headers["accept"] == "text/event-stream"
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["authorization"] == "Bearer 1"
    assert second.headers["authorization"] == "Bearer 2"
    raw = dict((k.lower(), v) for k, v in first.raw_headers)
    assert raw[b"last-event-id"] == "ü€😀".encode()


def test_no_last_event_id_header_without_id(driver: Driver) -> None:
    with SSEServer(events_handler([sse(data="x")])) as server:
        client = driver.client(server.url)
        driver.take_until_end(client)
        assert "last-event-id" not in server.requests[0].headers


def test_dynamic_query_params(driver: Driver) -> None:
    counter = iter(range(100))
    with SSEServer(events_handler([sse(data="x")])) as server:
        strategy = driver.strategy(
            server.url + "/s?fixed=1&n=old", query_params=lambda: {"n": str(next(counter))}
        )
        client = driver.client(strategy, error_strategy=ErrorStrategy.always_continue(), **FAST)
        driver.take(client, 6)
        first, second = server.wait_requests(2)[:2]
    assert first.query == {"fixed": "1", "n": "0"}
    assert second.query == {"fixed": "1", "n": "1"}


def test_post_body_sent_again_on_every_reconnection(driver: Driver) -> None:
    with SSEServer(events_handler([sse(id="7", data="x")])) as server:
        strategy = driver.strategy(server.url, method="POST", body='{"q": "ü"}')
        client = driver.client(strategy, error_strategy=ErrorStrategy.always_continue(), **FAST)
        driver.take(client, 6)
        requests = server.wait_requests(2)
    for request in requests[:2]:
        assert request.method == "POST"
        assert request.body == '{"q": "ü"}'.encode()
        assert request.headers["content-type"] == "text/plain"
    assert requests[1].headers["last-event-id"] == "7"


def test_report_method_with_caller_content_type(driver: Driver) -> None:
    with SSEServer(events_handler([sse(data="x")])) as server:
        strategy = driver.strategy(
            server.url,
            method="REPORT",
            body=b"{}",
            headers={"Content-Type": "application/json"},
        )
        client = driver.client(strategy)
        driver.take_until_end(client)
    assert server.requests[0].method == "REPORT"
    assert server.requests[0].headers["content-type"] == "application/json"
    assert server.requests[0].body == b"{}"


# -- response checks -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [204, 400, 401, 404, 500, 503])
def test_error_status_raises_from_start(driver: Driver, status: int) -> None:
    with SSEServer(status_handler(status, headers={"Retry-After": "7"})) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPStatusError) as info:
            driver.start(client)
    assert info.value.status == status
    assert info.value.headers is not None
    assert info.value.headers["retry-after"] == "7"


def test_error_status_is_a_fault_when_continuing(driver: Driver) -> None:
    with SSEServer(status_handler(503, headers={"X-Why": "busy"})) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue(), **FAST)
        actions = driver.take(client, 3)
    assert all(isinstance(a, Fault) for a in actions)
    assert isinstance(cast(Fault, actions[0]).error, HTTPStatusError)
    fault = cast(Fault, actions[0])
    assert fault.headers is not None and fault.headers["x-why"] == "busy"


def test_wrong_content_type(driver: Driver) -> None:
    with SSEServer(events_handler([sse(data="x")], content_type="text/html")) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPContentTypeError) as info:
            driver.start(client)
    assert info.value.content_type == "text/html"


def test_content_type_compared_case_insensitively_with_parameters(driver: Driver) -> None:
    handler = events_handler([sse(data="x")], content_type="Text/Event-Stream; charset=UTF-8")
    with SSEServer(handler) as server:
        client = driver.client(server.url)
        assert driver.take_until_end(client, events=True) == [Event(data="x")]


def test_redirects_are_followed(driver: Driver) -> None:
    with SSEServer() as server:
        server.route("/old", redirect_handler("/middle", 301))
        server.route("/middle", redirect_handler(server.url + "/new", 307))
        server.route("/new", events_handler([sse(data="moved")]))
        client = driver.client(server.url + "/old")
        assert driver.take_until_end(client, events=True) == [Event(data="moved")]


@pytest.mark.parametrize("location", [None, ""])
def test_redirect_without_location_is_an_error(driver: Driver, location: str | None) -> None:
    with SSEServer(redirect_handler(location, 301)) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPStatusError) as info:
            driver.start(client)
    assert 300 <= info.value.status < 400


def test_redirect_loop_is_bounded(driver: Driver) -> None:
    with SSEServer() as server:
        server.route("/loop", redirect_handler("/loop", 307))
        client = driver.client(driver.strategy(server.url + "/loop", max_redirects=5))
        with pytest.raises(HTTPStatusError):
            driver.start(client)
        assert len(server.requests) == 6


def test_credentials_not_forwarded_to_another_origin(driver: Driver) -> None:
    secret = {"Authorization": "Bearer s3cret", "Cookie": "session=1", "X-Other": "kept"}
    with SSEServer(events_handler([sse(data="x")])) as other, SSEServer() as server:
        server.route("/same", redirect_handler("/final", 307))
        server.route("/final", events_handler([sse(data="x")]))
        server.route("/away", redirect_handler(other.url + "/final", 307))
        for path in ("/same", "/away"):
            client = driver.client(driver.strategy(server.url + path, headers=secret))
            driver.take_until_end(client)
        same = server.requests[-1]
        away = other.requests[-1]
    assert same.headers.get("authorization") == "Bearer s3cret"
    assert same.headers.get("cookie") == "session=1"
    assert "authorization" not in away.headers
    assert "cookie" not in away.headers
    assert away.headers["x-other"] == "kept"


# -- reconnection ---------------------------------------------------------------------------


def test_reconnects_with_last_event_id(driver: Driver) -> None:
    feed = Feed(FeedEvent(data=f"event {i}") for i in range(1, 13))
    with SSEServer(feed_handler(feed, drop_after=2, drop="end")) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue(), **FAST)
        events = driver.take(client, 12, events=True)
    assert data_of(events) == [f"event {i}" for i in range(1, 13)]
    assert [r.headers.get("last-event-id") for r in server.requests[:3]] == [None, "2", "4"]


def test_empty_id_resets_last_event_id(driver: Driver) -> None:
    blocks = [sse(id="5", data="a"), sse(id="", data="b")]
    with SSEServer(events_handler(blocks)) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue(), **FAST)
        driver.take(client, 6)
        second = server.wait_requests(2)[1]
    assert "last-event-id" not in second.headers


def test_id_only_block_sets_last_event_id(driver: Driver) -> None:
    blocks = [sse(data="a"), b"id: 42\n\n"]
    with SSEServer(events_handler(blocks)) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue(), **FAST)
        driver.take(client, 5)
        second = server.wait_requests(2)[1]
    assert client.last_event_id == "42"
    assert second.headers["last-event-id"] == "42"


def test_retry_field_sets_the_base_delay(driver: Driver) -> None:
    with SSEServer(events_handler([b"retry: 20\n\n", sse(data="x")])) as server:
        client = driver.client(
            server.url,
            initial_retry_delay=30,
            retry_delay_strategy=NO_JITTER,
            error_strategy=ErrorStrategy.always_continue(),
        )
        actions = driver.take(client, 3)
        assert actions[-1] == Fault(None)
        assert client.next_retry_delay == pytest.approx(0.02)
        actions = driver.take(client, 1)
        assert isinstance(actions[0], Start)


def test_backoff_grows_during_an_outage(driver: Driver) -> None:
    with SSEServer(status_handler(503)) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue(), **FAST)
        delays = []
        for _ in range(4):
            driver.take(client, 1)
            delays.append(client.next_retry_delay)
    assert delays == pytest.approx([0.01, 0.02, 0.04, 0.08])


def test_max_attempts_then_the_error_is_raised(driver: Driver) -> None:
    with SSEServer(status_handler(500)) as server:
        client = driver.client(
            server.url, error_strategy=ErrorStrategy.continue_with_max_attempts(2), **FAST
        )
        with pytest.raises(HTTPStatusError):
            driver.start(client)
        assert len(server.requests) == 3


def test_read_timeout_drops_a_silent_connection(driver: Driver) -> None:
    with SSEServer(events_handler([sse(data="x")], then="hang")) as server:
        client = driver.client(
            driver.strategy(server.url, read_timeout=0.2),
            error_strategy=ErrorStrategy.always_continue(),
            **FAST,
        )
        actions = driver.take(client, 4)
    assert isinstance(actions[2], Fault)
    assert isinstance(actions[2].error, StreamTimeoutError)
    assert isinstance(actions[3], Start)


def test_partial_event_cut_by_a_reset_is_discarded(driver: Driver) -> None:
    with testing.SSEServer() as server:
        server.send("whole", id="1")
        server.send_raw(b"id: 2\ndata: half")
        server.drop("abort")
        server.send("again", id="2")
        server.drop()
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue(), **FAST)
        actions = driver.take(client, 5)
    assert data_of(actions) == ["whole", "again"]
    assert isinstance(actions[2], Fault) and actions[2].error is not None
    assert server.requests[1].headers["last-event-id"] == "1"


def test_chaos_exactly_once_in_order(driver: Driver) -> None:
    total = 5000
    rng = random.Random(1234)
    drops = set(rng.sample(range(1, total), 100))
    lock = threading.Lock()

    def handler(conn: Conn) -> None:
        last = conn.request.headers.get("last-event-id")
        start = int(last) + 1 if last else 1
        conn.send_head(chunked=rng.random() < 0.5)
        for i in range(start, total + 1):
            block = sse(id=str(i), data=f"event {i}")
            with lock:
                drop = i in drops
                if drop:
                    drops.discard(i)
            if drop:
                conn.send_raw(block[: rng.randrange(len(block))])
                conn.abort()
                return
            conn.send(block)

    with SSEServer(handler) as server:
        client = driver.client(
            server.url,
            initial_retry_delay=0.001,
            retry_delay_strategy=NO_JITTER,
            retry_delay_reset_threshold=0,
            error_strategy=ErrorStrategy.always_continue(),
        )
        events = driver.take(client, total, events=True)
    assert [e.id for e in events] == [str(i) for i in range(1, total + 1)]
    assert len(server.requests) == 101


# -- interrupt and close ----------------------------------------------------------------------


def test_interrupt_then_reading_again_reconnects(driver: Driver) -> None:
    with SSEServer(events_handler(numbered(1, 4), then="hang")) as server:
        client = driver.client(server.url, **FAST)
        assert data_of(driver.take(client, 2)) == ["event 1"]
        driver.interrupt(client)
        rest = driver.take_until_end(client)
        assert rest == [Fault(None)]
        again = driver.take(client, 2)
        assert isinstance(again[0], Start)
        assert server.wait_requests(2)[1].headers["last-event-id"] == "1"


def test_breaking_out_and_resuming_loses_nothing(driver: Driver) -> None:
    blob = b"".join(numbered(1, 6))
    with SSEServer(events_handler([blob], then="hang")) as server:
        client = driver.client(server.url)
        assert data_of(driver.take(client, 3, events=True)) == ["event 1", "event 2", "event 3"]
        # a new iterator over the same client goes on where the first stopped
        assert data_of(driver.take(client, 2, events=False)) == ["event 4", "event 5"]


def test_close_from_elsewhere_ends_a_blocked_read(driver: Driver) -> None:
    with SSEServer(events_handler([sse(data="x")], then="hang")) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue())
        closed_at = driver.close_later(client, 0.3)
        actions = driver.take_until_end(client)
        ended = time.monotonic()
        # The server holds the stream open until the client goes: only the close ends the read.
        assert ended >= closed_at()
        assert actions[1:] == [Event(data="x")]
        assert driver.take_until_end(client) == []
        assert len(server.requests) == 1
        assert server.wait_connections_closed(2)


def test_close_during_a_retry_delay(driver: Driver) -> None:
    with SSEServer(status_handler(503)) as server:
        # A delay of an hour: the read can only end here because the close cuts it short.
        client = driver.client(
            server.url,
            initial_retry_delay=3600,
            retry_delay_strategy=RetryDelayStrategy.default(max_delay=None, jitter_multiplier=None),
            error_strategy=ErrorStrategy.always_continue(),
        )
        assert isinstance(driver.take(client, 1)[0], Fault)
        closed_at = driver.close_later(client, 0.2)
        assert driver.take_until_end(client) == []
        assert time.monotonic() >= closed_at()
        assert len(server.requests) == 1  # no reconnection after the close
        with pytest.raises(RuntimeError, match="closed"):
            driver.start(client)


# -- latency --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_events_arrive_as_soon_as_their_bytes(driver: Driver, chunked: bool) -> None:
    received = threading.Event()
    waited: list[bool] = []

    def handler(conn: Conn) -> None:
        conn.send_head(chunked=chunked)
        conn.send(sse(data="first"))
        # The server sends nothing more until the client has the first event: a client
        # that waits for a buffer to fill would sit here until the timeout.
        waited.append(received.wait(5))
        conn.send(sse(data="second"))

    with SSEServer(handler) as server:
        client = driver.client(server.url)
        assert data_of(driver.take(client, 2)) == ["first"]
        received.set()
        assert data_of(driver.take(client, 1)) == ["second"]
    assert waited == [True]


# -- hostile servers ------------------------------------------------------------------------


def test_a_line_that_never_ends_is_bounded(driver: Driver) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head()
        for _ in range(200):
            if conn.stopping.is_set():
                return
            conn.send(b"data: " + b"x" * 65536)

    with SSEServer(handler) as server:
        client = driver.client(server.url, max_event_size=1024 * 1024)
        with pytest.raises(EventTooLargeError):
            driver.take(client, 2)


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xfe\x00garbage\r\n\r\n", bytes(range(256)) * 4 + b"\n\n", b"\r\r\r\n\n\x00:\n"],
)
def test_garbage_bytes_never_raise(driver: Driver, garbage: bytes) -> None:
    with SSEServer(events_handler([garbage, sse(data="after")])) as server:
        client = driver.client(server.url)
        actions = driver.take_until_end(client)
    assert actions[-2] == Event(data="after")
    assert actions[-1] == Fault(None)


def test_bom_split_across_chunks(driver: Driver) -> None:
    with SSEServer(events_handler([b"\xef", b"\xbb", b"\xbfdata: x\n\n"])) as server:
        client = driver.client(server.url)
        assert driver.take_until_end(client, events=True) == [Event(data="x")]


def test_broken_chunked_framing_is_a_fault(driver: Driver) -> None:
    go = threading.Event()

    def handler(conn: Conn) -> None:
        conn.send_head()
        conn.send(sse(data="ok"))
        go.wait(5)
        conn.send_raw(b"zz\r\nnot a chunk\r\n")
        conn.abort()

    with SSEServer(handler) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue())
        assert driver.take(client, 2)[1] == Event(data="ok")
        go.set()
        fault = driver.take(client, 1)[0]
    assert isinstance(fault, Fault) and fault.error is not None


def test_connection_refused_is_an_error(driver: Driver) -> None:
    with SSEServer() as server:
        url = server.url
    client = driver.client(url)
    with pytest.raises(Exception) as info:
        driver.start(client)
    assert not isinstance(info.value, (HTTPStatusError, HTTPContentTypeError))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"initial_retry_delay": -1}, ValueError),
        ({"initial_retry_delay": "1"}, TypeError),
        ({"retry_delay_reset_threshold": -5}, ValueError),
        ({"error_strategy": "fail"}, TypeError),
        ({"retry_delay_strategy": 3}, TypeError),
        ({"last_event_id": 5}, TypeError),
        ({"max_event_size": 0}, ValueError),
        ({"max_event_size": 1.5}, TypeError),
    ],
)
def test_bad_arguments(driver: Driver, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        driver.client("http://127.0.0.1:9/", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": "ftp://x/"}, ValueError),
        ({"url": 5}, TypeError),
        ({"url": "http://x/", "headers": 5}, TypeError),
        ({"url": "http://x/", "method": "GE T"}, ValueError),
        ({"url": "http://x/", "body": 5}, TypeError),
        ({"url": "http://x/", "read_timeout": 0}, ValueError),
        ({"url": "http://x/", "query_params": {"a": "b"}}, TypeError),
        ({"url": "http://x/", "max_redirects": -1}, ValueError),
    ],
)
def test_bad_strategy_arguments(
    driver: Driver, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    args = dict(kwargs)
    url = args.pop("url")
    with pytest.raises(error):
        driver.strategy(url, **args)


def test_sync_pool_given_is_not_closed() -> None:
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy

    pool = urllib3.PoolManager()
    with SSEServer(events_handler([sse(data="x")])) as server:
        with SSEClient(ConnectStrategy.http(server.url, pool=pool)) as client:
            assert [e.data for e in client.events] == ["x"]
        # The pool still works after the client closed.
        response = pool.request("GET", server.url)
        assert response.status == 200
    pool.clear()


def test_one_byte_chunks(driver: Driver) -> None:
    block = sse(id="é1", event="drip", data="line one\nline two")
    with SSEServer(events_handler([block[i : i + 1] for i in range(len(block))])) as server:
        client = driver.client(server.url)
        events = driver.take_until_end(client, events=True)
    assert events == [Event("drip", "line one\nline two", "é1", "é1")]


def test_ten_mib_event_arrives_intact(driver: Driver) -> None:
    data = "".join(chr(0x41 + i % 26) for i in range(1024)) * (10 * 1024)
    block = sse(data=data)
    pieces = [block[i : i + 65536] for i in range(0, len(block), 65536)]
    with SSEServer(events_handler(pieces)) as server:
        client = driver.client(server.url)
        events = driver.take_until_end(client, events=True)
    assert len(events) == 1
    assert events[0].data == data


def test_close_ends_an_attempt_waiting_for_its_response(driver: Driver) -> None:
    gone: list[bool] = []

    def silent(conn: Conn) -> None:
        # Accepts the request and never answers it, until the client goes away.
        gone.append(conn.wait_client_gone(60))

    with SSEServer(silent) as server:
        client = driver.client(server.url)
        closed_at = driver.close_later(client, 0.3)
        driver.start(client)
        assert time.monotonic() >= closed_at()
        assert server.wait_connections_closed(10)
    assert gone == [True]  # the client hung up, not the server

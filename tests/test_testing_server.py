"""
The public test server, :mod:`ld_eventsource.testing`: its queue, handlers, request records,
feeds and pytest plugin, with the real clients and with raw sockets as the consumers.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import socket
import time
from pathlib import Path
from typing import Any, cast

import pytest

from ld_eventsource import AsyncSSEClient, SSEClient
from ld_eventsource.actions import Comment, Event, Fault, Start
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from ld_eventsource.errors import HTTPStatusError
from ld_eventsource.testing import (
    Conn,
    Feed,
    FeedError,
    FeedEvent,
    SSEServer,
    SSEServerError,
    events_handler,
    feed_handler,
    load_feed,
    parse_feed,
    sequence_handler,
    sse,
    status_handler,
)
from tests.test_public_api import _public_members, docstring_of, run_python

pytest_plugins = ["pytester"]

GET = b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n"
FAST: dict[str, Any] = {
    "initial_retry_delay": 0.01,
    "retry_delay_strategy": RetryDelayStrategy.default(jitter_multiplier=None),
    "error_strategy": ErrorStrategy.always_continue(),
}


# -- consumers ----------------------------------------------------------------------------------


def exchange(server: SSEServer, request: bytes = GET) -> bytes:
    """Send ``request`` on a new connection; everything the server sent until it closed."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def split(raw: bytes) -> tuple[bytes, list[bytes], bytes]:
    """Status line, header lines, body."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, raw
    status, *headers = head.split(b"\r\n")
    return status, headers, body


def dechunk(body: bytes) -> tuple[list[bytes], bool]:
    """The chunks of a chunked body, and whether it had its terminating chunk."""
    chunks: list[bytes] = []
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert body == b"\r\n", body
            return chunks, True
        chunks.append(body[:size])
        assert body[size : size + 2] == b"\r\n", body
        body = body[size + 2 :]
    return chunks, False


def take(client: SSEClient, n: int) -> list[Any]:
    return list(itertools.islice(client.all, n))


def data_of(actions: list[Any]) -> list[str]:
    return [a.data for a in actions if isinstance(a, Event)]


# -- the public surface -------------------------------------------------------------------------

TESTING_ALL = {
    "Conn",
    "DropMode",
    "Feed",
    "FeedError",
    "FeedEvent",
    "FeedFormat",
    "Handler",
    "Headers",
    "HeadersArg",
    "Request",
    "SSEServer",
    "SSEServerError",
    "events_handler",
    "feed_handler",
    "load_feed",
    "parse_feed",
    "redirect_handler",
    "sequence_handler",
    "sse",
    "status_handler",
}
PLUGIN_ALL = {"make_sse_server", "sse_server"}


@pytest.mark.parametrize(
    ("module_name", "names"),
    [
        ("ld_eventsource.testing", TESTING_ALL),
        ("ld_eventsource.testing.pytest_plugin", PLUGIN_ALL),
    ],
)
def test_public_names_are_pinned_and_documented(module_name: str, names: set[str]) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__ and module.__doc__.strip()
    assert sorted(module.__all__) == sorted(names)
    for name in names:
        doc = docstring_of(module_name, name)
        assert doc and doc.strip(), f"{module_name}.{name} has no docstring"
        value = getattr(module, name)
        if isinstance(value, type):
            undocumented = [a for a, m in _public_members(value) if not (m.__doc__ or "").strip()]
            assert undocumented == [], f"{name}: no docstring for {undocumented}"


def test_needs_neither_pytest_nor_aiohttp_and_the_package_does_not_import_it() -> None:
    run_python(
        """
        import sys
        sys.modules["pytest"] = None  # "import pytest" raises ImportError
        sys.modules["aiohttp"] = None
        import ld_eventsource
        assert "ld_eventsource.testing" not in sys.modules
        import urllib.request
        from ld_eventsource.testing import SSEServer
        with SSEServer() as server:
            server.send("hi", id="1")
            server.drop()
            with urllib.request.urlopen(server.url + "/x", timeout=5) as response:
                assert response.read() == b"id: 1\\ndata: hi\\n\\n"
        assert "ld_eventsource.testing.pytest_plugin" not in sys.modules
        """
    )


def test_the_plugin_is_not_an_entry_point() -> None:
    from importlib.metadata import distribution

    entry_points = distribution("launchdarkly-eventsource").entry_points
    assert [ep for ep in entry_points if ep.group == "pytest11"] == []


# -- the queue, with the real clients -------------------------------------------------------


def test_sync_client_reads_the_queue_and_reconnects_with_last_event_id() -> None:
    with SSEServer() as server:
        server.send("one", id="1")
        server.send(comment="keep-alive")
        server.send("two", id="2", event="greeting")
        server.drop()
        server.send("three", id="3")
        with SSEClient(server.url + "/stream", **FAST) as client:
            actions = take(client, 7)
        second = server.wait_request(2)
    assert actions[0] == Start(actions[0].headers)
    assert actions[1:6] == [
        Event("message", "one", "1", "1"),
        Comment("keep-alive"),
        Event("greeting", "two", "2", "2"),
        Fault(None),
        Start(actions[5].headers),
    ]
    assert actions[6] == Event("message", "three", "3", "3")
    assert second.headers["last-event-id"] == "2"
    assert server.requests[0].path == "/stream"


def test_async_client_reads_the_queue_and_the_server_waits_without_blocking_the_loop() -> None:
    async def main() -> tuple[list[Any], str]:
        with SSEServer() as server:
            server.send("a", id="1")
            server.drop("close")
            server.send("b", id="2")
            async with AsyncSSEClient(server.url, **FAST) as client:
                events = []
                async for event in client.events:
                    events.append(event.data)
                    if len(events) == 2:
                        break
                second = await server.wait_request_async(2)
            return events, second.headers["last-event-id"]

    events, last_event_id = asyncio.run(main())
    assert events == ["a", "b"]
    assert last_event_id == "1"


def test_steps_queued_while_a_client_waits_are_written_at_once() -> None:
    with SSEServer() as server, SSEClient(server.url) as client:
        iterator = iter(client.events)
        server.send("first")
        assert next(iterator).data == "first"
        server.send("second")
        assert next(iterator).data == "second"
        assert server.active_connections == 1


def test_respond_with_a_status_then_the_stream() -> None:
    with SSEServer() as server:
        server.respond(503, "busy", {"Retry-After": "1"})
        server.send("up")
        with SSEClient(server.url, **FAST) as client:
            actions = take(client, 3)
        assert server.wait_request(2).method == "GET"
    assert isinstance(actions[0], Fault)
    assert isinstance(actions[0].error, HTTPStatusError)
    assert actions[0].error.status == 503
    assert isinstance(actions[1], Start)
    assert actions[2] == Event(data="up")


def test_respond_on_the_wire() -> None:
    with SSEServer() as server:
        server.respond(503, "busy", {"Retry-After": "1"})
        server.respond(204)
        first = exchange(server)
        second = exchange(server)
    assert split(first) == (
        b"HTTP/1.1 503 Service Unavailable",
        [
            b"Content-Type: text/plain; charset=utf-8",
            b"Retry-After: 1",
            b"Content-Length: 4",
            b"Connection: close",
        ],
        b"busy",
    )
    assert split(second) == (b"HTTP/1.1 204 No Content", [b"Connection: close"], b"")


def test_redirect_then_stream() -> None:
    with SSEServer() as server:
        server.respond(307, headers={"Location": "/moved"})
        server.send("here")
        with SSEClient(server.url + "/old") as client:
            events = list(itertools.islice(client.events, 1))
        paths = [r.path for r in server.wait_requests(2)]
    assert data_of(events) == ["here"]
    assert paths == ["/old", "/moved"]


def test_respond_with_a_handler_and_pause() -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(200, {"X-Handler": "yes"})
        conn.send_event("from the handler")

    with SSEServer() as server:
        server.respond_with(handler)
        server.pause(0.2)
        server.send("after the pause")
        server.drop()
        first = exchange(server)
        started = time.monotonic()
        second = exchange(server)
        elapsed = time.monotonic() - started
    assert b"X-Handler: yes" in split(first)[1]
    assert dechunk(split(first)[2]) == ([b"data: from the handler\n\n"], True)
    assert dechunk(split(second)[2]) == ([b"data: after the pause\n\n"], True)
    assert elapsed >= 0.2  # a lower bound: load can only make it longer


@pytest.mark.parametrize("chunked", [True, False])
def test_queue_framing_and_stream_headers(chunked: bool) -> None:
    with SSEServer(chunked=chunked, stream_headers={"X-Stream": "1"}) as server:
        server.send("a")
        server.send(retry=250)
        server.send_raw(b"data: par")
        server.send_raw("t\n\n")
        server.drop()
        status, headers, body = split(exchange(server))
    assert status == b"HTTP/1.1 200 OK"
    assert b"Content-Type: text/event-stream" in headers
    assert b"X-Stream: 1" in headers
    if chunked:
        assert b"Transfer-Encoding: chunked" in headers
        assert dechunk(body) == (
            [b"data: a\n\n", b"retry: 250\n\n", b"data: par", b"t\n\n"],
            True,
        )
    else:
        assert not any(h.startswith(b"Transfer-Encoding") for h in headers)
        assert body == b"data: a\n\nretry: 250\n\ndata: part\n\n"


def test_drop_modes_on_the_wire() -> None:
    with SSEServer() as server:
        server.send("a")
        server.drop("end")
        server.send("b")
        server.drop("close")
        server.send("c")
        server.drop("abort")
        ended = dechunk(split(exchange(server))[2])
        closed = dechunk(split(exchange(server))[2])
        with pytest.raises(ConnectionResetError):
            exchange(server)
    assert ended == ([b"data: a\n\n"], True)
    assert closed == ([b"data: b\n\n"], False)


def test_a_stream_that_reaches_a_queued_response_ends_in_order() -> None:
    with SSEServer() as server, SSEClient(server.url, **FAST) as client:
        iterator = iter(client.all)
        assert isinstance(next(iterator), Start)
        server.send("before")
        server.respond(500)
        server.send("after")
        actions = list(itertools.islice(iterator, 4))
    assert actions[0] == Event(data="before")
    assert actions[1] == Fault(None)  # the stream ended in order
    assert isinstance(actions[2], Fault) and isinstance(actions[2].error, HTTPStatusError)
    assert actions[3] == Start(cast(Start, actions[3]).headers)


def test_a_new_stream_takes_the_queue_over() -> None:
    def read_all(sock: socket.socket) -> bytes:
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)

    address = ("127.0.0.1", 0)
    with SSEServer() as server:
        address = (server.host, server.port)
        # Generous: the test waits for the handover, which a loaded machine may delay.
        old = socket.create_connection(address, timeout=30)
        new = socket.create_connection(address, timeout=30)
        with old, new:
            old.sendall(GET)
            # The head of the older stream first: its handler has the queue, and the newer
            # one cannot come before it.
            head = b""
            while b"\r\n\r\n" not in head:
                data = old.recv(65536)
                assert data, "the older stream ended before its head"
                head += data
            new.sendall(GET)
            server.wait_request(2)
            # The older stream ends (in order) once the newer one has the queue.
            old_rest = head + read_all(old)
            server.send("for the new one")
            server.drop()
            new_rest = read_all(new)
    assert dechunk(split(old_rest)[2]) == ([], True)
    assert dechunk(split(new_rest)[2]) == ([b"data: for the new one\n\n"], True)


def test_a_client_that_left_does_not_take_the_next_steps() -> None:
    with SSEServer() as server:
        with socket.create_connection((server.host, server.port), timeout=5) as gone:
            gone.sendall(GET)
            server.wait_request(1)
        server.wait_connections_closed()
        server.send("for the next one")
        server.drop()
        body = split(exchange(server))[2]
    assert dechunk(body) == ([b"data: for the next one\n\n"], True)


def test_queue_methods_refuse_when_a_handler_serves() -> None:
    with SSEServer(status_handler(200)) as server, pytest.raises(RuntimeError, match="handler"):
        server.send("x")
    with SSEServer() as server:
        with pytest.raises(ValueError):
            server.drop("sideways")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            server.pause(-1)
        with pytest.raises(ValueError):
            server.send(event="a\nb", data="x")


def test_routes_and_the_queue_side_by_side() -> None:
    with SSEServer() as server:
        server.route("/health", status_handler(200, body="ok"))
        server.send("queued")
        server.drop()
        health = split(exchange(server, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"))
        stream = split(exchange(server))
    assert health[2] == b"ok"
    assert dechunk(stream[2]) == ([b"data: queued\n\n"], True)


# -- request records -------------------------------------------------------------------------


def test_requests_are_recorded_and_the_nth_can_be_awaited() -> None:
    with SSEServer(status_handler(204)) as server:
        before = time.monotonic()
        exchange(
            server,
            b"POST /s?a=1&b=&a=2 HTTP/1.1\r\nHost: t\r\nX-One: 1\r\nx-one: 2\r\n"
            b"Content-Length: 5\r\n\r\nhello",
        )
        exchange(server, b"GET /t HTTP/1.1\r\nHost: t\r\n\r\n")
        first = server.wait_request(1)
        second = server.wait_request(2, timeout=1)
        with pytest.raises(TimeoutError, match="expected 3 requests"):
            server.wait_request(3, timeout=0.05)
        with pytest.raises(ValueError):
            server.wait_request(0)
    assert (first.method, first.path, first.path_only) == ("POST", "/s?a=1&b=&a=2", "/s")
    assert first.query == {"a": "2", "b": ""}
    assert first.headers["X-ONE"] == "1, 2"
    assert first.headers.get_all("x-one") == ["1", "2"]
    assert first.body == b"hello"
    assert before <= first.received_at <= second.received_at
    assert (second.method, second.path, second.body) == ("GET", "/t", b"")
    assert first.client_address[0] == "127.0.0.1"
    assert server.requests == [first, second]
    assert "2 request(s)" in repr(server)


def test_wait_request_async_times_out() -> None:
    async def main() -> None:
        with SSEServer() as server:
            with pytest.raises(TimeoutError):
                await server.wait_request_async(1, timeout=0.05)
            with pytest.raises(ValueError):
                await server.wait_request_async(0)

    asyncio.run(main())


def test_handler_errors_fail_close() -> None:
    def broken(conn: Conn) -> None:
        raise LookupError("bug in the handler")

    server = SSEServer(broken).start()
    status = split(exchange(server))[0]
    with pytest.raises(SSEServerError, match="bug in the handler"):
        server.close()
    assert status == b"HTTP/1.1 500 Internal Server Error"
    assert isinstance(server.errors[0], LookupError)


# -- per-request scripts: splits and drops at byte offsets -----------------------------------

STREAM = sse(id="1", data="first") + sse(id="2", data="second")


@pytest.mark.parametrize("size", [1, 2, 7, len(STREAM)])
def test_chunk_size_splits_the_bytes(size: int) -> None:
    with SSEServer(events_handler([STREAM], chunk_size=size)) as server:
        chunks, terminated = dechunk(split(exchange(server))[2])
    assert terminated
    assert b"".join(chunks) == STREAM
    assert {len(c) for c in chunks[:-1]} <= {size}


@pytest.mark.parametrize("offset", range(len(STREAM) + 1))
def test_drop_at_every_byte_offset(offset: int) -> None:
    blocks = [sse(id="1", data="first"), sse(id="2", data="second")]
    with SSEServer(events_handler(blocks, drop_at=offset, then="close")) as server:
        chunks, terminated = dechunk(split(exchange(server))[2])
    assert not terminated
    assert b"".join(chunks) == STREAM[:offset]


FIRST_END = len(sse(id="1", data="first"))


@pytest.mark.parametrize("offset", [0, 5, FIRST_END - 1, FIRST_END, FIRST_END + 3, len(STREAM) - 1])
def test_clients_discard_an_event_cut_by_a_drop(offset: int) -> None:
    handler = sequence_handler(
        events_handler([STREAM], drop_at=offset, then="close"),
        events_handler([sse(data="next connection")], then="hang"),
    )
    complete = ["first"] if offset >= FIRST_END else []
    with SSEServer(handler) as server, SSEClient(server.url, **FAST) as client:
        events = list(itertools.islice(client.events, len(complete) + 1))
    assert data_of(events) == [*complete, "next connection"]


def test_async_client_against_a_split_close_delimited_stream() -> None:
    handler = events_handler(
        [sse(data="split"), sse(data="in threes")], chunked=False, chunk_size=3, then="hang"
    )

    async def main() -> list[str]:
        with SSEServer(handler) as server:
            async with AsyncSSEClient(server.url) as client:
                return [e.data async for e in _bounded(client.events, 2)]

    assert asyncio.run(main()) == ["split", "in threes"]


def test_events_handler_rejects_bad_options() -> None:
    with pytest.raises(ValueError):
        events_handler([], chunk_size=0)
    with pytest.raises(ValueError):
        events_handler([], drop_at=-1)
    with pytest.raises(ValueError):
        events_handler([], then="explode")  # type: ignore[arg-type]


# -- feeds: parsing ------------------------------------------------------------------------------


def test_parse_sse_feed() -> None:
    text = (
        "\ufeff: a comment\r\n"
        "id: 1\r\n"
        "data:  two spaces\r\n"
        "data\r\n"
        "\r\n"
        "event: greet\n"
        "data: x\n"
        "retry: 500\n"
        "\n\n"
        "id: 9\n"
        "\n"
        "data: last, with no blank line"
    )
    events = list(parse_feed(text.encode().splitlines(keepends=True)))
    assert events == [
        FeedEvent(comment=" a comment", id="1", data=" two spaces\n"),
        FeedEvent(event="greet", data="x", retry=500),
        FeedEvent(id="9"),
        FeedEvent(data="last, with no blank line"),
    ]
    assert [e.line for e in events] == [1, 6, 11, 13]
    assert events[0].encode() == b": a comment\nid: 1\ndata:  two spaces\ndata:\n\n"
    assert events[1].encode("\r\n") == b"event: greet\r\nretry: 500\r\ndata: x\r\n\r\n"
    # Lines may come without their ends too, and as str.
    assert list(parse_feed(["data: a", "", "data: b"])) == [
        FeedEvent(data="a"),
        FeedEvent(data="b"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (b"data: a\n\ndta: b\n", 3, "unknown field 'dta'"),
        (
            b"data: a\nid: 1\nid: 2\n",
            3,
            "a second 'id' field in one block (the first is on line 2)",
        ),
        (b"retry: soon\ndata: a\n", 1, "retry must be a number of milliseconds, got 'soon'"),
        (b'{"data": "a"}\n', 1, "looks like JSON"),
        (b"data: a\n\nevent: e\n\n", 3, "event 'e' has no data"),
        (b"data: ok\n\ndata: \xff\n", 3, "not valid UTF-8"),
        (b"id: a\x00b\ndata: x\n", 1, "U+0000"),
    ],
)
def test_malformed_sse_feeds_name_the_line(text: bytes, line: int, reason: str) -> None:
    with pytest.raises(FeedError) as info:
        list(parse_feed(text.splitlines(keepends=True), source="feed.sse"))
    assert info.value.line == line
    assert info.value.source == "feed.sse"
    assert reason in info.value.reason
    assert str(info.value).startswith(f"feed.sse:{line}: ")


def test_parse_jsonl_feed() -> None:
    lines = [
        '{"data": "plain", "id": "a"}',
        "",
        '{"data": {"n": 1, "text": "é"}, "id": 2, "event": "json"}',
        '{"data": [1, 2], "retry": 100, "comment": "c"}',
        '{"comment": "only a comment", "id": null}',
        '{"data": "two\\nlines"}',
    ]
    assert list(parse_feed(lines, "jsonl")) == [
        FeedEvent(data="plain", id="a"),
        FeedEvent(data='{"n":1,"text":"é"}', id="2", event="json"),
        FeedEvent(data="[1,2]", retry=100, comment="c"),
        FeedEvent(comment="only a comment"),
        FeedEvent(data="two\nlines"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"data": "a", "dta": 1}', "unknown key 'dta'"),
        ('{"data": "a", "retry": "soon"}', "retry must be a whole number"),
        ('{"data": "a", "retry": true}', "retry must be a whole number"),
        ('{"data": "a", "id": 1.5}', "id must be a string or a whole number"),
        ('{"data": "a", "event": 3}', "event must be a string"),
        ("{}", "an empty block"),
        ('{"data": "a", "retry": -1}', "retry must be a number of milliseconds >= 0"),
    ],
)
def test_malformed_jsonl_feeds_name_the_line(line: str, reason: str) -> None:
    with pytest.raises(FeedError) as info:
        list(parse_feed(['{"data": "fine"}', line], "jsonl", source="f.jsonl"))
    assert info.value.line == 2
    assert reason in info.value.reason


def test_load_feed_picks_the_format_by_extension(tmp_path: Path) -> None:
    (tmp_path / "a.sse").write_text("data: a\n\ndata: b\n")
    (tmp_path / "b.jsonl").write_text('{"data": "a"}\n{"data": "b"}\n')
    (tmp_path / "c.NDJSON").write_text('{"data": "a"}\n{"data": "b"}\n')
    (tmp_path / "d.txt").write_text('{"data": "a"}\n')
    expected = [FeedEvent(data="a"), FeedEvent(data="b")]
    assert load_feed(tmp_path / "a.sse") == expected
    assert load_feed(tmp_path / "b.jsonl") == expected
    assert load_feed(tmp_path / "c.NDJSON") == expected
    assert load_feed(tmp_path / "d.txt", "jsonl") == [FeedEvent(data="a")]
    with pytest.raises(FeedError, match=r"d\.txt:1: this looks like JSON"):
        load_feed(tmp_path / "d.txt")
    with pytest.raises(FileNotFoundError):
        load_feed(tmp_path / "missing.sse")


# -- feeds: ids and replay -----------------------------------------------------------------------


def test_feed_assigns_missing_ids_by_position_and_resumes_after_an_id() -> None:
    feed = Feed([FeedEvent(data="a"), FeedEvent(comment="c"), FeedEvent(data="b", id="x")])
    assert [e.id for e in feed.events] == ["1", None, "x"]
    assert feed._start_index(None) is None
    assert feed._start_index("1") == 1
    assert feed._start_index("x") == 3
    assert feed._start_index("nope") is None
    assert feed._get(3) is None


def test_feed_rejects_duplicate_ids_with_their_lines() -> None:
    events = list(parse_feed(["id: 2", "data: a", "", "data: b"]))
    with pytest.raises(
        ValueError, match=r"event 2 \(line 4\) has no id of its own, so its id is 2"
    ):
        Feed(events)
    with pytest.raises(ValueError, match="at line 1"):
        Feed(events)


def test_looped_feed_numbers_events_across_passes() -> None:
    feed = Feed(
        [FeedEvent(data="a", id="own"), FeedEvent(comment="c"), FeedEvent(data="b")], loop=True
    )
    items = [feed._get(i) for i in range(7)]
    assert [(i.data, i.id) for i in items if isinstance(i, FeedEvent)] == [
        ("a", "1"),
        (None, None),
        ("b", "2"),
        ("a", "3"),
        (None, None),
        ("b", "4"),
        ("a", "5"),
    ]
    assert feed._start_index("4") == 6  # the block after event 4 opens the third pass
    assert feed._start_index("own") is None
    with pytest.raises(ValueError, match="at least one event"):
        Feed([FeedEvent(comment="c")], loop=True)
    with pytest.raises(ValueError, match="id-only block"):
        Feed([FeedEvent(data="a"), FeedEvent(id="5")], loop=True)


def test_live_feed_and_counter() -> None:
    feed = Feed(live=True)
    feed.append(FeedEvent(data="a"))
    assert not feed.finished
    assert feed._get(1, timeout=0.01) is not None  # PENDING, not the end
    feed.finish()
    feed.finish()
    assert feed.finished and feed._get(1) is None
    with pytest.raises(RuntimeError):
        feed.append(FeedEvent(data="late"))
    counter = Feed.counter()
    assert counter._get(0) == FeedEvent(data="1", id="1")
    assert counter._start_index("41") == 41
    assert counter._get(41) == FeedEvent(data="42", id="42")
    with pytest.raises(TypeError):
        counter.events  # noqa: B018


def test_feed_event_rejects_impossible_blocks() -> None:
    for kwargs in ({}, {"event": "e"}, {"data": "x", "id": "a\nb"}, {"data": "x", "retry": -1}):
        with pytest.raises(ValueError):
            FeedEvent(**kwargs)


# -- feeds: served -----------------------------------------------------------------------------


def test_feed_handler_replays_after_last_event_id_with_both_clients() -> None:
    feed = Feed([FeedEvent(data=f"event {i}") for i in range(1, 8)])
    handler = feed_handler(feed, drop_after=2, retry=10)
    with SSEServer(handler) as server:
        with SSEClient(server.url, **FAST) as client:
            sync_events = list(itertools.islice(client.events, 7))

        async def read() -> list[Any]:
            async with AsyncSSEClient(server.url, **FAST) as client:
                return [e async for e in _bounded(client.events, 7)]

        async_events = asyncio.run(read())
        last_ids = [r.headers.get("last-event-id") for r in server.requests[:4]]
    expected = [f"event {i}" for i in range(1, 8)]
    assert [e.data for e in sync_events] == expected
    assert [e.data for e in async_events] == expected
    assert [e.id for e in sync_events] == [str(i) for i in range(1, 8)]
    assert last_ids == [None, "2", "4", "6"]


async def _bounded(iterator: Any, n: int) -> Any:
    count = 0
    async for item in iterator:
        yield item
        count += 1
        if count == n:
            return


def test_feed_handler_wire_options() -> None:
    feed = Feed([FeedEvent(data="a"), FeedEvent(data="b")])
    handler = feed_handler(feed, crlf=True, bom=True, retry=250, chunk_size=4)
    with SSEServer(handler) as server:
        chunks, terminated = dechunk(split(exchange(server))[2])
    assert terminated
    assert (
        b"".join(chunks)
        == b"\xef\xbb\xbfretry: 250\r\n\r\nid: 1\r\ndata: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n"
    )
    assert {len(c) for c in chunks[:-1]} == {4}


def test_feed_handler_heartbeat_and_keep_open() -> None:
    feed = Feed([FeedEvent(data="a")])
    with (
        SSEServer(feed_handler(feed, heartbeat=0.05, keep_open=True)) as server,
        SSEClient(server.url) as client,
    ):
        actions = take(client, 4)
    assert actions[1] == Event("message", "a", "1", "1")
    assert actions[2:] == [Comment("heartbeat"), Comment("heartbeat")]


def test_feed_handler_live_feed_streams_as_blocks_arrive() -> None:
    feed = Feed(live=True)
    with SSEServer(feed_handler(feed)) as server, SSEClient(server.url) as client:
        iterator = iter(client.all)
        assert isinstance(next(iterator), Start)
        feed.append(FeedEvent(data="now"))
        assert next(iterator) == Event("message", "now", "1", "1")
        feed.append(FeedEvent(data="later", id="L"))
        assert next(iterator) == Event("message", "later", "L", "L")
        feed.finish()
        assert next(iterator) == Fault(None)


def test_feed_handler_unknown_last_event_id_starts_over_and_logs() -> None:
    lines: list[str] = []
    feed = Feed([FeedEvent(data="a"), FeedEvent(data="b")])
    with SSEServer(feed_handler(feed, log=lines.append)) as server:
        body = split(exchange(server, b"GET / HTTP/1.1\r\nLast-Event-ID: zz\r\n\r\n"))[2]
        server.wait_connections_closed()
    assert dechunk(body)[0] == [b"id: 1\ndata: a\n\n", b"id: 2\ndata: b\n\n"]
    assert "from the start (Last-Event-ID 'zz' is not in the feed)" in lines[0]
    assert "closed after 2 event(s): ended: the feed ran out" in lines[1]


def test_feed_handler_drip_paces_the_bytes() -> None:
    feed = Feed([FeedEvent(data="x" * 40)])
    with SSEServer(feed_handler(feed, drip=400, chunked=False)) as server:
        started = time.monotonic()
        body = split(exchange(server))[2]
        elapsed = time.monotonic() - started
    assert body == sse(id="1", data="x" * 40)
    # 51 bytes at 400 B/s take at least 0.125 s: a lower bound, which load cannot break.
    assert elapsed >= (len(body) - 1) / 400


def test_feed_handler_rejects_bad_options() -> None:
    feed = Feed([FeedEvent(data="a")])
    for kwargs in ({"interval": -1}, {"heartbeat": 0}, {"drop_after": 0}, {"drop": "x"}):
        with pytest.raises(ValueError):
            feed_handler(feed, **kwargs)


# -- the pytest plugin -----------------------------------------------------------------------

USER_CONFTEST = 'pytest_plugins = ["ld_eventsource.testing.pytest_plugin"]\n'

USER_TESTS = """
import pytest

from ld_eventsource import SSEClient
from ld_eventsource.errors import HTTPStatusError
from ld_eventsource.testing import SSEServer, events_handler, sse


def test_queue(sse_server):
    assert isinstance(sse_server, SSEServer)
    sse_server.send("hello", id="1")
    with SSEClient(sse_server.url) as client:
        event = next(iter(client.events))
    assert (event.data, event.id) == ("hello", "1")
    assert sse_server.wait_request(1).headers["accept"] == "text/event-stream"


def test_handler_and_factory(sse_server, make_sse_server):
    sse_server.handler = events_handler([sse(data="from a handler")])
    other = make_sse_server(events_handler([sse(data="other")]), chunked=False)
    with SSEClient(sse_server.url) as client:
        assert next(iter(client.events)).data == "from a handler"
    with SSEClient(other.url) as client:
        assert next(iter(client.events)).data == "other"
    assert other.url != sse_server.url


def test_broken_handler(sse_server):
    def handler(conn):
        raise KeyError("oops in the handler")

    sse_server.handler = handler
    with pytest.raises(HTTPStatusError) as info:
        SSEClient(sse_server.url).start()
    assert info.value.status == 500
"""


def test_pytest_plugin_from_a_user_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_broken_handler*"])
    result.stdout.fnmatch_lines(["*SSEServerError*oops in the handler*"])


def test_the_fixture_is_absent_without_the_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_it(sse_server):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'sse_server' not found*"])

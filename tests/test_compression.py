"""
Compressed streams, for both clients, against real servers on 127.0.0.1: what the request
asks for, every coding the client undoes, each event delivered as soon as its compressed
bytes arrive, and broken or unknown codings.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from typing import Any

import brotli
import pytest
import zstandard

from ld_eventsource._decompress import ACCEPT_ENCODING, PIECE, Decompressor
from ld_eventsource.actions import Event, Fault, Start
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from ld_eventsource.errors import HTTPProtocolError
from ld_eventsource.testing import Conn, events_handler, sequence_handler, sse
from tests.drivers import Driver
from tests.hostile_server import flushing_compressor
from tests.sse_server import SSEServer

pytestmark = pytest.mark.timeout(30)

CODINGS = ["gzip", "deflate", "br", "zstd"]
FAST = {
    "initial_retry_delay": 0.01,
    "retry_delay_strategy": RetryDelayStrategy.default(jitter_multiplier=None),
}


def compress(coding: str, data: bytes) -> bytes:
    """``data`` in ``coding``, in one go."""
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        return brotli.compress(data)  # type: ignore[no-any-return]
    return zstandard.ZstdCompressor().compress(data)


def data_of(actions: list[Any]) -> list[str]:
    return [a.data for a in actions if isinstance(a, Event)]


def test_both_clients_ask_for_every_coding_they_undo(driver: Driver) -> None:
    assert ACCEPT_ENCODING == "gzip, deflate, br, zstd"  # brotli and zstandard are installed
    with SSEServer(events_handler([sse(data="x")])) as server:
        client = driver.client(server.url)
        driver.take_until_end(client, events=True)
        request = server.wait_request()
    assert request.headers["accept-encoding"] == ACCEPT_ENCODING


@pytest.mark.parametrize("where", ["headers", "request-options"])
def test_a_caller_may_ask_for_identity(driver: Driver, where: str) -> None:
    with SSEServer(events_handler([sse(data="plain")])) as server:
        wanted = {"accept-encoding": "identity"}
        if where == "headers":
            strategy = driver.strategy(server.url, headers=wanted)
        else:
            options = (
                "urllib3_request_options" if driver.name == "sync" else "aiohttp_request_options"
            )
            strategy = driver.strategy(server.url, **{options: {"headers": wanted}})
        client = driver.client(strategy)
        assert data_of(driver.take_until_end(client, events=True)) == ["plain"]
        request = server.wait_request()
    assert request.headers.get_all("accept-encoding") == ["identity"]


@pytest.mark.parametrize("coding", CODINGS)
def test_each_coding_reads(driver: Driver, coding: str) -> None:
    payload = b"".join(sse(id=str(i), data=f"event {i}") for i in range(1, 4))
    wire = compress(coding, payload)
    with SSEServer(events_handler([wire], headers={"Content-Encoding": coding})) as server:
        client = driver.client(server.url)
        assert data_of(driver.take_until_end(client, events=True)) == [
            "event 1",
            "event 2",
            "event 3",
        ]


def test_raw_deflate_reads(driver: Driver) -> None:
    # Some servers send deflate without the zlib header.
    z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    wire = z.compress(sse(data="raw")) + z.flush()
    with SSEServer(events_handler([wire], headers={"Content-Encoding": "deflate"})) as server:
        client = driver.client(server.url)
        assert data_of(driver.take_until_end(client, events=True)) == ["raw"]


@pytest.mark.parametrize("coding", CODINGS)
def test_each_event_arrives_before_the_next_is_sent(driver: Driver, coding: str) -> None:
    # The server flushes its compressor after each event and sends the next one only once
    # the test has read the one before: an event held back in a decompressor (or a buffer
    # waiting to fill) would never come, and the server would give up waiting.
    count = 5
    seen = [threading.Event() for _ in range(count)]
    failures: list[str] = []

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Encoding": coding})
        compress = flushing_compressor(coding)
        for i in range(count):
            conn.send(compress(sse(id=str(i), data=f"event {i}")))
            if not seen[i].wait(10):
                failures.append(f"event {i} was not delivered before the next was sent")
                return
        conn.wait_client_gone(10)

    with SSEServer(handler) as server:
        client = driver.client(server.url)
        for i in range(count):
            event = driver.take(client, 1, events=True)
            assert data_of(event) == [f"event {i}"], failures
            seen[i].set()
        driver.close(client)
    assert failures == []


@pytest.mark.parametrize("coding", CODINGS)
def test_a_corrupt_stream_is_a_fault_and_a_reconnect(driver: Driver, coding: str) -> None:
    good = compress(coding, sse(id="2", data="after"))
    corrupt = bytearray(compress(coding, sse(id="1", data="x" * 5000)))
    corrupt[len(corrupt) // 2 :] = b"\xff" * (len(corrupt) - len(corrupt) // 2)
    handler = sequence_handler(
        events_handler([bytes(corrupt)], headers={"Content-Encoding": coding}, then="hang"),
        events_handler([good], headers={"Content-Encoding": coding}),
    )
    with SSEServer(handler) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue(), **FAST)
        actions = []
        for _ in range(10):
            actions += driver.take(client, 1)
            if data_of(actions) == ["after"]:
                break
        driver.close(client)
    faults = [a for a in actions if isinstance(a, Fault)]
    assert isinstance(faults[0].error, HTTPProtocolError)
    assert f"invalid {coding} body" in str(faults[0].error)
    assert [type(a) for a in actions if isinstance(a, (Start, Event))][-2:] == [Start, Event]
    assert data_of(actions) == ["after"]


@pytest.mark.parametrize("coding", ["compress", "snappy", "gzip, br"])
def test_an_unknown_coding_is_named(driver: Driver, coding: str) -> None:
    with SSEServer(events_handler([b"whatever"], headers={"Content-Encoding": coding})) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPProtocolError) as info:
            driver.start(client)
    assert f"unsupported Content-Encoding {coding!r}" in str(info.value)


# -- the decoder alone ------------------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
def test_every_piece_is_bounded_and_lazy(coding: str) -> None:
    # 64 MiB of zeros, a few KiB compressed: asking for one piece decompresses little.
    wire = compress(coding, b"\0" * (64 * 1024 * 1024))
    assert len(wire) < 200_000
    pieces = Decompressor(coding).feed(wire)
    first = [next(pieces) for _ in range(3)]
    assert all(0 < len(p) <= PIECE for p in first)
    total = sum(map(len, first)) + sum(len(p) for p in pieces if len(p) <= PIECE)
    assert total == 64 * 1024 * 1024


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("step", [1, 7, 4096])
def test_any_split_of_the_wire_decodes_alike(coding: str, step: int) -> None:
    body = b"".join(sse(id=str(i), data=f"{i}" * (i % 50)) for i in range(300))
    wire = compress(coding, body)
    decoder = Decompressor(coding)
    out = b"".join(p for i in range(0, len(wire), step) for p in decoder.feed(wire[i : i + step]))
    assert out == body


@pytest.mark.parametrize("coding", ["br", "zstd"])
def test_garbage_is_a_protocol_error(coding: str) -> None:
    with pytest.raises(HTTPProtocolError, match=f"invalid {coding} body"):
        list(Decompressor(coding).feed(b"not compressed at all, not at all" * 4))


def test_zstd_frames_one_after_the_other() -> None:
    wire = compress("zstd", b"data: a\n\n") + compress("zstd", b"data: b\n\n")
    assert b"".join(Decompressor("zstd").feed(wire)) == b"data: a\n\ndata: b\n\n"

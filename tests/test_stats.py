"""
``client.stats``: the counters of both clients against a real server on 127.0.0.1, and the
same facts on the log records (``record.sse``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from ld_eventsource import ClientStats, testing
from ld_eventsource.actions import Comment, Event, Fault, Start
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from ld_eventsource.errors import StreamTimeoutError
from ld_eventsource.stats import FAILURE_KINDS, STATES
from ld_eventsource.testing import sse
from tests.drivers import Driver

NO_JITTER = RetryDelayStrategy.default(jitter_multiplier=None)
FAST: dict[str, Any] = {
    "initial_retry_delay": 0.01,
    "retry_delay_strategy": NO_JITTER,
    "error_strategy": ErrorStrategy.always_continue(),
}


def kinds(stats: ClientStats, **counts: int) -> dict[str, int]:
    """Every failure kind at 0 but those given."""
    return {kind: counts.get(kind, 0) for kind in FAILURE_KINDS}


def test_a_new_client_has_done_nothing(driver: Driver) -> None:
    client = driver.client("http://127.0.0.1:9/")
    stats = client.stats
    assert stats.state == "idle"
    assert (stats.connection_attempts, stats.connections, stats.reconnects) == (0, 0, 0)
    assert (stats.events, stats.comments, stats.bytes_received) == (0, 0, 0)
    assert stats.failures == kinds(stats)
    assert stats.last_event_at is stats.last_event_time is None
    assert stats.last_byte_at is stats.last_byte_time is None
    assert stats.retry_delay == 0
    assert stats.last_failure is None
    driver.close(client)
    assert client.stats.state == "closed"


def test_counts_events_comments_a_reconnect_and_an_http_500(driver: Driver) -> None:
    with testing.SSEServer() as server:
        server.send("a", id="1")
        server.send(comment="ping")
        server.send("b", id="2")
        server.drop("end")
        server.respond(500, "oops")
        server.send("c", id="3")
        client = driver.client(server.url, **FAST)
        actions = driver.take(client, 8)
        stats = client.stats
        driver.close(client)
    assert [type(a) for a in actions] == [
        Start, Event, Comment, Event, Fault, Fault, Start, Event
    ]  # fmt: skip
    assert stats.state == "open"
    assert stats.connection_attempts == 3
    assert stats.connections == 2
    assert stats.reconnects == 1
    assert stats.failures == kinds(stats, ended=1, http_status=1)
    assert stats.errors == 1
    assert stats.last_failure == "http_status"
    assert (stats.events, stats.comments) == (3, 1)
    wire = sse(data="a", id="1") + sse(comment="ping") + sse(data="b", id="2")
    wire += sse(data="c", id="3")
    assert stats.bytes_received == len(wire)
    assert stats.last_event_id == "3"
    assert stats.retry_delay > 0
    assert client.stats.state == "closed"


def test_a_read_timeout_is_counted_as_one(driver: Driver) -> None:
    with testing.SSEServer() as server:
        server.send("x")
        server.pause(5)  # silent: the read timeout drops the connection
        client = driver.client(driver.strategy(server.url, read_timeout=0.2), **FAST)
        actions = driver.take(client, 3)
        stats = client.stats
        driver.close(client)
    assert isinstance(actions[2], Fault)
    assert isinstance(actions[2].error, StreamTimeoutError)
    assert stats.failures == kinds(stats, timeout=1)
    assert stats.last_failure == "timeout"
    assert stats.state == "waiting"
    assert stats.events == 1


def test_a_refused_connection_is_a_network_failure(driver: Driver) -> None:
    with testing.SSEServer() as server:
        url = server.url
    client = driver.client(url, **FAST)
    actions = driver.take(client, 2)
    stats = client.stats
    driver.close(client)
    assert [type(a) for a in actions] == [Fault, Fault]
    assert stats.failures == kinds(stats, network=2)
    assert (stats.connection_attempts, stats.connections) == (2, 0)


def test_last_event_and_last_byte_times_move(driver: Driver) -> None:
    with testing.SSEServer() as server:
        server.send("a")
        server.pause(0.05)
        server.send(comment="keep-alive")
        server.pause(0.05)
        server.send("b")
        client = driver.client(server.url, **FAST)
        before = time.monotonic()
        wall_before = time.time()
        driver.take(client, 2)  # Start, a
        first = client.stats
        driver.take(client, 1)  # the comment
        second = client.stats
        driver.take(client, 1)  # b
        third = client.stats
        after = time.monotonic()
        driver.close(client)
    assert first.last_event_at is not None and first.last_byte_at is not None
    assert before <= first.last_event_at <= first.last_byte_at <= after
    assert first.last_event_time is not None
    assert first.last_event_time >= wall_before - 1  # the wall clock, not the monotonic one
    # The comment moves the last byte, not the last event.
    assert second.last_event_at == first.last_event_at
    assert second.last_byte_at is not None and second.last_byte_at > first.last_byte_at
    assert third.last_event_at is not None and third.last_event_at > first.last_event_at
    assert (third.events, third.comments) == (2, 1)


def test_state_transitions(driver: Driver) -> None:
    seen: list[str] = []
    clients: list[Any] = []

    def handler(conn: testing.Conn) -> None:
        seen.append(clients[0].stats.state)  # read while the client waits for the response
        conn.send(sse(data="a"))
        conn.end()

    with testing.SSEServer() as server:
        server.respond_with(handler)
        client = driver.client(
            server.url,
            initial_retry_delay=30,
            retry_delay_strategy=NO_JITTER,
            error_strategy=ErrorStrategy.always_continue(),
        )
        clients.append(client)
        assert client.stats.state == "idle"
        driver.take(client, 1)
        assert client.stats.state == "open"
        driver.take(client, 2)  # a, then the end of the stream
        assert client.stats.state == "waiting"
        assert client.stats.retry_delay == 30
        driver.close(client)
        assert client.stats.state == "closed"
    assert seen == ["connecting"]


def test_a_stop_decision_leaves_the_client_idle(driver: Driver) -> None:
    with testing.SSEServer() as server:
        server.send("a")
        server.drop("end")
        client = driver.client(server.url)  # fails (stops) on the end of the stream
        events = driver.take_until_end(client, events=True)
        stats = client.stats
        driver.close(client)
    assert [e.data for e in events] == ["a"]
    assert stats.state == "idle"
    assert stats.failures == kinds(stats, ended=1)


def test_a_snapshot_does_not_change(driver: Driver) -> None:
    with testing.SSEServer() as server:
        server.send("a")
        server.send("b")
        client = driver.client(server.url, **FAST)
        driver.take(client, 2)
        stats = client.stats
        driver.take(client, 1)
        driver.close(client)
    assert stats.events in (1, 2)  # b may have come in the same chunk
    assert stats.state == "open"
    with pytest.raises(AttributeError):
        stats.events = 5
    with pytest.raises(TypeError):
        stats.failures["ended"] = 1
    assert set(STATES) >= {stats.state}


def test_log_records_carry_the_stats(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test_stats.client")
    with testing.SSEServer() as server, caplog.at_level(logging.DEBUG, logger=logger.name):
        server.send("a", id="1")
        server.drop("abort")  # a TCP reset
        server.send("b", id="2")
        client = driver.client(server.url, logger=logger, **FAST)
        driver.take(client, 5)  # Start, a, Fault, Start, b
        driver.close(client)
    records = [r for r in caplog.records if r.name == logger.name]
    assert records
    for record in records:
        facts = record.sse  # type: ignore[attr-defined]
        assert set(facts) >= {"state", "connection_attempts", "failures", "retry_delay"}
    failure = next(r for r in records if r.levelno == logging.WARNING)
    assert failure.sse["last_failure"] == "network"  # type: ignore[attr-defined]
    assert failure.sse["failures"]["network"] == 1  # type: ignore[attr-defined]
    assert failure.sse["state"] == "waiting"  # type: ignore[attr-defined]
    assert failure.sse["last_event_id"] == "1"  # type: ignore[attr-defined]
    connecting = [r for r in records if r.getMessage().startswith("Connecting")]
    assert [r.sse["connection_attempts"] for r in connecting] == [1, 2]  # type: ignore[attr-defined]


def test_the_callers_logger_keeps_its_level_and_filters(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test_stats.filtered")
    dropped: list[str] = []

    def no_connecting(record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Connecting"):
            dropped.append(record.getMessage())
            return False
        return True

    logger.addFilter(no_connecting)
    try:
        with testing.SSEServer() as server, caplog.at_level(logging.INFO, logger=logger.name):
            server.send("a")
            client = driver.client(server.url, logger=logger, **FAST)
            driver.take(client, 2)
            logger.setLevel(logging.ERROR)  # later changes count too
            driver.interrupt(client)
            driver.take(client, 2)
            driver.close(client)
    finally:
        logger.removeFilter(no_connecting)
        logger.setLevel(logging.NOTSET)
    assert len(dropped) == 1
    assert not [r for r in caplog.records if r.name == logger.name]

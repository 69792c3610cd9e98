"""
The reconnection recipes of docs/guides/reconnection.md, against a real loopback server that
ends every stream at once and asks for ``retry: 700``: the browser-like configuration waits
the server's delay every time, the default one backs off (the behaviour that surprises
people who know browsers). Delays are checked as the client computed them
(``next_retry_delay``) and, as lower bounds only, as the server saw them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ld_eventsource.actions import Event, Fault, Start
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from ld_eventsource.testing import Conn, Handler
from tests.drivers import Driver
from tests.sse_server import SSEServer


class DroppingServer:
    """Sends ``retry: <ms>`` and one event, ends the stream, and notes when it did."""

    def __init__(self, retry_ms: int) -> None:
        self.retry_ms = retry_ms
        self.ended_at: list[float] = []
        self._lock = threading.Lock()

    def handler(self) -> Handler:
        def handle(conn: Conn) -> None:
            conn.send_head()
            conn.send(f"retry: {self.retry_ms}\ndata: tick\n\n")
            conn.end()
            with self._lock:
                self.ended_at.append(time.monotonic())

        return handle


def browser_like() -> dict[str, Any]:
    """The recipe: a constant delay equal to the base delay, which ``retry:`` sets."""
    return {
        "retry_delay_strategy": RetryDelayStrategy.from_lambda(lambda base: (base, None)),
        "retry_delay_reset_threshold": 0,
        "error_strategy": ErrorStrategy.always_continue(),
    }


def drops(driver: Driver, client: Any, n: int) -> list[float]:
    """Reads ``n`` connections (Start, Event, Fault each); the delay computed after each."""
    delays = []
    for _ in range(n):
        start, event, fault = driver.take(client, 3)
        assert isinstance(start, Start)
        assert isinstance(event, Event) and event.data == "tick"
        assert fault == Fault(None)
        delays.append(client.next_retry_delay)
    return delays


def server_gaps(server: SSEServer, dropping: DroppingServer, n: int) -> list[float]:
    """For each drop, the time from the end of a stream to the next request."""
    requests = server.wait_requests(n + 1)
    return [requests[i + 1].received_at - dropping.ended_at[i] for i in range(n)]


def test_browser_like_recipe_waits_the_servers_retry_every_time(driver: Driver) -> None:
    dropping = DroppingServer(700)
    with SSEServer(dropping.handler()) as server:
        client = driver.client(server.url, **browser_like())
        delays = drops(driver, client, 4)
        gaps = server_gaps(server, dropping, 3)
        driver.close(client)
    assert delays == [0.7, 0.7, 0.7, 0.7]
    # The client counts its delay from the moment it saw the end, which the server's end
    # precedes: each gap the server sees is at least the delay.
    assert all(gap >= 0.7 for gap in gaps), gaps


def test_browser_like_on_drops_with_backoff_during_outages(driver: Driver) -> None:
    dropping = DroppingServer(100)
    with SSEServer(dropping.handler()) as server:
        client = driver.client(
            server.url,
            retry_delay_strategy=RetryDelayStrategy.default(jitter_multiplier=None),
            retry_delay_reset_threshold=0,
            error_strategy=ErrorStrategy.always_continue(),
        )
        delays = drops(driver, client, 4)
        driver.close(client)
    # Every connection succeeded, so each one resets the backoff: the delay stays at retry:.
    assert delays == [0.1, 0.1, 0.1, 0.1]


def test_default_configuration_backs_off_across_short_connections(driver: Driver) -> None:
    dropping = DroppingServer(100)
    with SSEServer(dropping.handler()) as server:
        client = driver.client(server.url, error_strategy=ErrorStrategy.always_continue())
        delays = drops(driver, client, 4)
        driver.close(client)
    # Doubling from 0.1 s with up to 50 % jitter: 0.05-0.1, 0.1-0.2, 0.2-0.4, 0.4-0.8 s.
    for n, delay in enumerate(delays):
        assert 0.1 * 2**n * 0.5 <= delay <= 0.1 * 2**n, delays


@pytest.mark.parametrize("threshold", [60, 0])
def test_max_attempts_counts_short_connections_unless_threshold_is_zero(
    driver: Driver, threshold: float
) -> None:
    dropping = DroppingServer(1)
    with SSEServer(dropping.handler()) as server:
        client = driver.client(
            server.url,
            error_strategy=ErrorStrategy.continue_with_max_attempts(2),
            retry_delay_reset_threshold=threshold,
        )
        items = driver.take(client, 30)
        driver.close(client)
    connections = sum(isinstance(item, Start) for item in items)
    # With the default threshold, three streams that end at once are three consecutive
    # failures: two retries, then the end. With 0 every connection resets the count.
    assert connections == (3 if threshold else 10)

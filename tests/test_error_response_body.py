"""
An error response is reported as soon as its head arrives, whatever its body: the client
does not read a long or endless body first, and it releases the connection.
"""

from __future__ import annotations

import threading

import pytest

from ld_eventsource.errors import HTTPContentTypeError, HTTPStatusError
from ld_eventsource.testing import Conn, Handler
from tests.drivers import Driver
from tests.sse_server import SSEServer

# How long the server goes on sending an endless body if the client never leaves: a bound
# for a failing test, never reached by a passing one.
_BOUND = 20.0


def _endless(status: int, content_type: str, left: threading.Event) -> Handler:
    def handler(conn: Conn) -> None:
        conn.send_head(status, content_type=content_type)
        for _ in range(int(_BOUND / 0.02)):
            try:
                conn.send(b"still busy\n" * 100)
            except OSError:
                left.set()
                return
            if conn.wait_client_gone(0.02):
                left.set()
                return
        conn.end()

    return handler


@pytest.mark.parametrize(
    ("status", "content_type", "error"),
    [
        (503, "text/plain", HTTPStatusError),
        (500, "text/event-stream", HTTPStatusError),
        (200, "application/json", HTTPContentTypeError),
    ],
)
def test_error_response_with_endless_body_fails_at_once(
    driver: Driver, status: int, content_type: str, error: type[Exception]
) -> None:
    left = threading.Event()
    with SSEServer(_endless(status, content_type, left)) as server:
        client = driver.client(server.url)
        with pytest.raises(error):
            driver.start(client)
        # The client hung up on the body instead of reading it to its end.
        assert left.wait(_BOUND), "the client read the error body instead of failing at once"
        driver.close(client)
        assert server.wait_connections_closed()

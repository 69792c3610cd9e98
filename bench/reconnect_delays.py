"""
Reconnection delays as a server sees them: a loopback server that sends ``retry: 700`` and
ends every stream, read by SSEClient with the default configuration and with the
browser-like recipe of docs/guides/reconnection.md. Prints, for each, the time from the end
of one stream to the next request.

    .venv/bin/python bench/reconnect_delays.py [--drops N]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

from _worker import SRC_DIR

sys.path.insert(0, str(SRC_DIR))

from ld_eventsource import SSEClient
from ld_eventsource.actions import Start
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from ld_eventsource.testing import Conn, SSEServer

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {"error_strategy": ErrorStrategy.always_continue()},
    "browser-like": {
        "retry_delay_strategy": RetryDelayStrategy.from_lambda(lambda base: (base, None)),
        "retry_delay_reset_threshold": 0,
        "error_strategy": ErrorStrategy.always_continue(),
    },
}


def measure(config: dict[str, Any], drops: int) -> list[float]:
    """The gaps, in seconds, between the end of each stream and the next request."""
    ended: list[float] = []
    lock = threading.Lock()

    def handler(conn: Conn) -> None:
        conn.send("retry: 700\ndata: tick\n\n")
        conn.end()
        with lock:
            ended.append(time.monotonic())

    with SSEServer(handler) as server, SSEClient(server.url, **config) as client:
        starts = 0
        for action in client.all:
            if isinstance(action, Start):
                starts += 1
                if starts > drops:
                    break
        requests = server.wait_requests(drops + 1)
    return [requests[i + 1].received_at - ended[i] for i in range(drops)]


def main() -> None:
    """Prints one line of gaps per configuration."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drops", type=int, default=5)
    args = parser.parse_args()
    print(f"server sends retry: 700 and ends each stream; {args.drops} reconnections")
    for name, config in CONFIGS.items():
        gaps = measure(config, args.drops)
        print(f"{name:>13}: " + ", ".join(f"{gap:.2f}" for gap in gaps) + " s")


if __name__ == "__main__":
    main()

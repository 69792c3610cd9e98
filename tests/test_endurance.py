"""
Endurance of both clients against one server (tests/soak_server.py, in a process of its own):

* connect/drop cycles with no retry delay: open file descriptors, threads, RSS and live
  Python objects stay flat;
* ``close()`` from another thread (sync) or task (async) ends a blocked read, and an attempt
  waiting for its response headers, promptly, every time.

``make test`` runs short counts; ``make soak`` (``SOAK=1``) the long ones, printing the
figures (``-s``). Time bounds are asserted on the median and the 95th percentile, with a
generous bound on the slowest try, so that a loaded machine cannot make them fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from ld_eventsource import AsyncSSEClient, SSEClient
from ld_eventsource.actions import Event, Fault, Start
from tests.soak import SOAK, no_delay
from tests.soak_server import CYCLE_KINDS, SoakServer

CYCLES = 10_000 if SOAK else 300
CLOSE_TRIES = 1_000 if SOAK else 50
WARM_UP = 50
"""Cycles before the first measurement: imports, caches and thread pools fill up first."""
CLOSE_WARM_UP = 5
CLOSE_BOUND = 0.1


class Resources(NamedTuple):
    """What the process holds at one moment."""

    fds: int
    threads: int
    """Native threads of the process (from /proc), the interpreter's included."""
    rss_kib: int
    objects: int
    """Objects tracked by the garbage collector, after a collection."""

    @classmethod
    def now(cls) -> Resources:
        gc.collect()
        with open("/proc/self/status") as file:
            status = dict(line.split(":", 1) for line in file.read().splitlines())
        return cls(
            fds=len(os.listdir("/proc/self/fd")),
            threads=int(status["Threads"]),
            rss_kib=int(status["VmRSS"].split()[0]),
            objects=len(gc.get_objects()),
        )

    def show(self, label: str) -> str:
        return (
            f"{label:>8}: fds {self.fds:4d}  threads {self.threads:3d}  "
            f"rss {self.rss_kib / 1024:7.1f} MiB  objects {self.objects:8d}"
        )


@pytest.fixture(scope="module")
def server() -> Iterator[SoakServer]:
    with SoakServer() as s:
        yield s


def check_flat(label: str, samples: dict[str, Resources], cycles: int) -> None:
    print(f"\n{label}: resources over {cycles} cycles")
    for moment, sample in samples.items():
        print(sample.show(moment))
    start, middle, end = samples["start"], samples["middle"], samples["end"]
    # Generous bounds: a connection being torn down when a sample is taken, a thread pool
    # that grows once more, allocator noise. A leak of one socket, one thread, one object or
    # 2 KiB per cycle goes over them.
    for later in (middle, end):
        assert later.fds <= start.fds + 4, samples
        assert later.threads <= start.threads + 4, samples
    assert end.objects - start.objects < 500 + cycles // 10, samples
    assert end.rss_kib - start.rss_kib < 16 * 1024 + cycles * 2, samples


def cycle_sample_points(cycles: int) -> dict[int, str]:
    return {0: "before", WARM_UP: "start", WARM_UP + cycles // 2: "middle", WARM_UP + cycles: "end"}


def test_connect_drop_cycles_sync(server: SoakServer) -> None:
    points = cycle_sample_points(CYCLES)
    samples: dict[str, Resources] = {"before": Resources.now()}
    counts = {Start: 0, Event: 0, Fault: 0}
    client = SSEClient(f"{server.url}/cycle", **no_delay())
    try:
        for action in client.all:
            counts[type(action)] += 1
            if isinstance(action, Fault):
                label = points.get(counts[Fault])
                if label:
                    samples[label] = Resources.now()
                if counts[Fault] == WARM_UP + CYCLES:
                    break
    finally:
        client.close()
    check_flat("sync", samples, CYCLES)
    check_counts(counts, WARM_UP + CYCLES)


def test_connect_drop_cycles_async(server: SoakServer) -> None:
    points = cycle_sample_points(CYCLES)
    samples: dict[str, Resources] = {}
    counts = {Start: 0, Event: 0, Fault: 0}

    async def main() -> None:
        samples["before"] = Resources.now()
        async with AsyncSSEClient(f"{server.url}/cycle", **no_delay()) as client:
            async for action in client.all:
                counts[type(action)] += 1
                if isinstance(action, Fault):
                    label = points.get(counts[Fault])
                    if label:
                        samples[label] = Resources.now()
                    if counts[Fault] == WARM_UP + CYCLES:
                        break

    asyncio.run(main())
    check_flat("async", samples, CYCLES)
    check_counts(counts, WARM_UP + CYCLES)


def check_counts(counts: dict[type, int], cycles: int) -> None:
    # Each cycle is one connection ending in one Fault; all but the 503s start and deliver
    # their event.
    served = cycles - cycles // len(CYCLE_KINDS)
    assert counts[Fault] == cycles
    assert abs(counts[Start] - served) <= 1, counts
    assert abs(counts[Event] - served) <= 1, counts


# -- close() latency ----------------------------------------------------------------------


def report(label: str, latencies: list[float]) -> None:
    """Prints the distribution, then asserts the bound in a way a loaded machine cannot break."""
    ordered = sorted(latencies)
    n = len(ordered)

    def pct(p: float) -> float:
        return ordered[min(n - 1, int(p * n))] * 1000

    over = sum(1 for t in ordered if t >= CLOSE_BOUND)
    print(
        f"\n{label}: {n} tries, ms: min {ordered[0] * 1000:.2f}  median {pct(0.5):.2f}  "
        f"p95 {pct(0.95):.2f}  p99 {pct(0.99):.2f}  max {ordered[-1] * 1000:.2f}; "
        f"{over} at or over {CLOSE_BOUND * 1000:.0f} ms"
    )
    assert statistics.median(ordered) < CLOSE_BOUND
    assert pct(0.95) < CLOSE_BOUND * 1000
    assert ordered[-1] < 2.0


def wait_for_count(server: SoakServer, key: str, n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while server.stats()["counts"].get(key, 0) < n:
        assert time.monotonic() < deadline, f"{key}: fewer than {n} within {timeout}s"
        time.sleep(0.001)


def sync_close_tries(
    server: SoakServer, path: str, tries: int, samples: dict[str, Resources], clients: list[Any]
) -> list[float]:
    """
    ``tries`` times, after a few to warm up: a new client reads (``/hang``) or connects
    (``/hold``) in this thread while another closes it; the latency is from the close() call
    until both it and the blocked call have returned. Resources are sampled into ``samples``,
    and a weak reference to each client goes to ``clients``.
    """
    latencies = []
    options = no_delay()
    points = close_sample_points(tries)
    for n in range(1, CLOSE_WARM_UP + tries + 1):
        if n in points:
            samples[points[n]] = Resources.now()
        client = SSEClient(f"{server.url}{path}", **options)
        clients.append(weakref.ref(client))
        actions = iter(client.all)
        if path.startswith("/hang"):
            assert isinstance(next(actions), Start)
            assert next(actions) == Event(data="ready")
        times: dict[str, float] = {}

        def close(client: SSEClient = client, n: int = n, times: dict[str, float] = times) -> None:
            # The server has the request (for /hold) and the reader is blocked, or about to
            # be: a short pause makes that the usual case.
            wait_for_count(server, path, n)
            time.sleep(0.002)
            times["close"] = time.perf_counter()
            client.close()
            times["closed"] = time.perf_counter()

        closer = threading.Thread(target=close)
        closer.start()
        if path.startswith("/hang"):
            assert list(actions) == []  # the iterator ends: no Fault, no reconnection
        else:
            client.start()  # returns once closed, without raising
        returned = time.perf_counter()
        closer.join(10)
        assert not closer.is_alive()
        if n > CLOSE_WARM_UP:
            latencies.append(max(returned, times["closed"]) - times["close"])
    wait_for_count(server, f"{path} closed by client", CLOSE_WARM_UP + tries)
    samples["end"] = Resources.now()
    return latencies


def async_close_tries(
    server: SoakServer, path: str, tries: int, samples: dict[str, Resources], clients: list[Any]
) -> list[float]:
    """:func:`sync_close_tries` with the async client, closing from another task."""

    async def main() -> list[float]:
        latencies = []
        options = no_delay()
        points = close_sample_points(tries)
        for n in range(1, CLOSE_WARM_UP + tries + 1):
            if n in points:
                samples[points[n]] = Resources.now()
            client = AsyncSSEClient(f"{server.url}{path}", **options)
            clients.append(weakref.ref(client))
            actions = aiter(client.all)
            if path.startswith("/hang"):
                assert isinstance(await anext(actions), Start)
                assert await anext(actions) == Event(data="ready")
            times: dict[str, float] = {}

            async def close(
                client: AsyncSSEClient = client, n: int = n, times: dict[str, float] = times
            ) -> None:
                # The stats request blocks the loop a moment; the client's task waits.
                await asyncio.to_thread(wait_for_count, server, path, n)
                await asyncio.sleep(0.002)
                times["close"] = time.perf_counter()
                await client.close()
                times["closed"] = time.perf_counter()

            closer = asyncio.create_task(close())
            if path.startswith("/hang"):
                assert [a async for a in actions] == []
            else:
                await client.start()
            returned = time.perf_counter()
            await asyncio.wait_for(closer, 10)
            if n > CLOSE_WARM_UP:
                latencies.append(max(returned, times["closed"]) - times["close"])
        return latencies

    latencies = asyncio.run(main())
    wait_for_count(server, f"{path} closed by client", CLOSE_WARM_UP + tries)
    samples["end"] = Resources.now()
    return latencies


def close_sample_points(tries: int) -> dict[int, str]:
    return {CLOSE_WARM_UP + 1: "start", CLOSE_WARM_UP + tries // 2: "middle"}


@pytest.mark.parametrize("path", ["/hang", "/hold"], ids=["blocked-read", "waiting-headers"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_close_from_elsewhere_is_prompt(server: SoakServer, flavour: str, path: str) -> None:
    target = f"{path}?client={flavour}"  # the server counts requests per target
    samples: dict[str, Resources] = {}
    tries = sync_close_tries if flavour == "sync" else async_close_tries
    clients: list[weakref.ref[Any]] = []
    latencies = tries(server, target, CLOSE_TRIES, samples, clients)
    what = "during a blocked read" if path == "/hang" else "while waiting for headers"
    label = f"{flavour} close() {what}"
    report(label, latencies)
    check_flat(label, samples, CLOSE_TRIES)
    # Nothing of a closed client stays alive (the flat object count says so on average).
    gc.collect()
    alive = sum(1 for ref in clients if ref() is not None)
    assert alive == 0, f"{alive} of {len(clients)} closed clients still alive"


def test_async_close_while_waiting_for_headers_with_other_clients(server: SoakServer) -> None:
    """
    Clients that make their own sessions share one connector per event loop: closing one of
    them while it waits for its response headers ends that attempt, though the connector
    stays open for the others.
    """

    async def main() -> None:
        options = no_delay()
        async with AsyncSSEClient(f"{server.url}/hang?other", **options) as other:
            assert await anext(aiter(other.events)) == Event(data="ready")
            for n in range(1, 6):
                client = AsyncSSEClient(f"{server.url}/hold?shared", **options)
                attempt = asyncio.create_task(client.start())
                await asyncio.to_thread(wait_for_count, server, "/hold?shared", n)
                await client.close()
                done, _ = await asyncio.wait({attempt}, timeout=5)
                assert done, "start() still waiting 5 s after close()"
                assert attempt.result() is None

    asyncio.run(main())
    wait_for_count(server, "/hold?shared closed by client", 5)


def test_sync_close_during_the_connection_setup(server: SoakServer) -> None:
    """
    close() from another thread at any moment of an attempt (before, during or after the
    TCP connect, while the request goes out, while it waits for headers) ends it.
    """
    options = no_delay()
    for n in range(200 if SOAK else 60):
        client = SSEClient(f"{server.url}/hold?setup", **options)
        delay = (n % 20) / 10_000  # 0 to 1.9 ms
        returned = threading.Event()

        def attempt(client: SSEClient = client, returned: threading.Event = returned) -> None:
            with contextlib.suppress(RuntimeError):  # closed before start() began
                client.start()
            returned.set()

        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        time.sleep(delay)
        client.close()
        assert returned.wait(5), f"start() still blocked 5 s after close() at {delay * 1000} ms"
        worker.join()

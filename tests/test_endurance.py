"""
Endurance of both clients against one server (tests/soak_server.py, in a process of its own):

* connect/drop cycles with no retry delay: open file descriptors, threads, RSS and live
  Python objects stay flat;
* ``close()`` from another thread (sync) or task (async) ends a blocked read, and an attempt
  waiting for its response headers, every time.

``make test`` runs short counts; ``make soak`` (``SOAK=1``) the long ones, printing the
figures (``-s``). The close latencies are printed, not asserted (a loaded machine would make
any bound on them fail); what is asserted is that each close ends its try, and that the
closer itself returns within a bound that only a hang would reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, NamedTuple

import aiohttp
import pytest

from ld_eventsource import AsyncSSEClient, SSEClient
from ld_eventsource.actions import Event, Fault, Start
from ld_eventsource.config import AsyncConnectStrategy
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


def check_flat(label: str, samples: dict[str, Resources], cycles: int) -> None:
    print(f"\n{label}")
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


class Cycles:
    """Counts what a client hands out over the cycles, and samples resources on the way."""

    def __init__(self) -> None:
        self.counts: dict[type, int] = {Start: 0, Event: 0, Fault: 0}
        self.points = {WARM_UP: "start", WARM_UP + CYCLES // 2: "middle", WARM_UP + CYCLES: "end"}
        self.samples = {"before": Resources.now()}
        self.started = time.monotonic()

    def see(self, action: Any) -> bool:
        """Counts one action; True once the last cycle has ended."""
        self.counts[type(action)] += 1
        if not isinstance(action, Fault):
            return False
        faults = self.counts[Fault]
        if faults in self.points:
            self.samples[self.points[faults]] = Resources.now()
        return faults == WARM_UP + CYCLES

    def check(self, flavour: str) -> None:
        took = time.monotonic() - self.started
        label = f"{flavour}: {WARM_UP} + {CYCLES} connect/drop cycles in {took:.1f} s"
        check_flat(f"{label}, {self.counts[Event]} events", self.samples, CYCLES)
        # Each cycle is one connection ending in one Fault; all but the 503s start and
        # deliver their event.
        cycles = WARM_UP + CYCLES
        served = cycles - cycles // len(CYCLE_KINDS)
        assert self.counts[Fault] == cycles
        assert abs(self.counts[Start] - served) <= 1, self.counts
        assert abs(self.counts[Event] - served) <= 1, self.counts


def test_connect_drop_cycles_sync(server: SoakServer) -> None:
    cycles = Cycles()
    with SSEClient(f"{server.url}/cycle", **no_delay()) as client:
        for action in client.all:
            if cycles.see(action):
                break
    cycles.check("sync")


def test_connect_drop_cycles_async(server: SoakServer) -> None:
    async def main() -> Cycles:
        cycles = Cycles()
        async with AsyncSSEClient(f"{server.url}/cycle", **no_delay()) as client:
            async for action in client.all:
                if cycles.see(action):
                    break
        return cycles

    asyncio.run(main()).check("async")


# -- close() latency ----------------------------------------------------------------------


def report(label: str, latencies: list[float]) -> None:
    """Prints the distribution of close latencies (figures only: nothing here is asserted)."""
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


def wait_for_count(server: SoakServer, key: str, n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while server.stats()["counts"].get(key, 0) < n:
        assert time.monotonic() < deadline, f"{key}: fewer than {n} within {timeout}s"
        time.sleep(0.001)


class CloseTries:
    """
    The bookkeeping of ``tries`` close() tries, after a few to warm up, against ``path``:
    resources sampled at the start, the middle and the end, the clients made (weakly),
    and the latency of each try, from the close() call until both it and the blocked call
    have returned.
    """

    def __init__(self, server: SoakServer, path: str, tries: int) -> None:
        self.server = server
        self.path = path
        self.reads = path.startswith("/hang")
        """True: close during a blocked read; False: while waiting for headers (/hold)."""
        self.tries = tries
        self.samples: dict[str, Resources] = {}
        # A WeakSet, not a list of references: those would be one more live object a try.
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.latencies: list[float] = []
        self.made = 0
        self.options = no_delay()

    def numbers(self) -> Iterator[int]:
        points = {CLOSE_WARM_UP + 1: "start", CLOSE_WARM_UP + self.tries // 2: "middle"}
        for n in range(1, CLOSE_WARM_UP + self.tries + 1):
            if n in points:
                self.samples[points[n]] = Resources.now()
            yield n

    def client_made(self, client: Any) -> None:
        self.clients.add(client)
        self.made += 1

    def ready_to_close(self, n: int) -> None:
        """Returns once the server has the n-th request, and a little later: the other side
        is then blocked in its read or waiting for its headers, as a rule."""
        wait_for_count(self.server, self.path, n)
        time.sleep(0.002)

    def done(self, n: int, returned: float, times: dict[str, float]) -> None:
        if n > CLOSE_WARM_UP:
            self.latencies.append(max(returned, times["closed"]) - times["close"])

    def finish(self) -> None:
        # Every connection was closed by the client, from the server's side too.
        wait_for_count(self.server, f"{self.path} closed by client", CLOSE_WARM_UP + self.tries)
        self.samples["end"] = Resources.now()


def sync_close_tries(run: CloseTries) -> None:
    """A new SSEClient reads or connects in this thread while another thread closes it."""
    for n in run.numbers():
        client = SSEClient(f"{run.server.url}{run.path}", **run.options)
        run.client_made(client)
        actions = iter(client.all)
        if run.reads:
            assert isinstance(next(actions), Start)
            assert next(actions) == Event(data="ready")
        times: dict[str, float] = {}

        def close(client: SSEClient = client, n: int = n, times: dict[str, float] = times) -> None:
            run.ready_to_close(n)
            times["close"] = time.perf_counter()
            client.close()
            times["closed"] = time.perf_counter()

        closer = threading.Thread(target=close)
        closer.start()
        if run.reads:
            assert list(actions) == []  # the iterator ends: no Fault, no reconnection
        else:
            client.start()  # returns once closed, without raising
        returned = time.perf_counter()
        closer.join(10)
        assert not closer.is_alive()
        run.done(n, returned, times)
    run.finish()


def async_close_tries(run: CloseTries) -> None:
    """A new AsyncSSEClient reads or connects in one task while another task closes it."""

    async def main() -> None:
        for n in run.numbers():
            client = AsyncSSEClient(f"{run.server.url}{run.path}", **run.options)
            run.client_made(client)
            actions = aiter(client.all)
            if run.reads:
                assert isinstance(await anext(actions), Start)
                assert await anext(actions) == Event(data="ready")
            times: dict[str, float] = {}

            async def close(
                client: AsyncSSEClient = client, n: int = n, times: dict[str, float] = times
            ) -> None:
                await asyncio.to_thread(run.ready_to_close, n)
                times["close"] = time.perf_counter()
                await client.close()
                times["closed"] = time.perf_counter()

            closer = asyncio.create_task(close())
            if run.reads:
                assert [a async for a in actions] == []
            else:
                await client.start()
            returned = time.perf_counter()
            await asyncio.wait_for(closer, 10)
            run.done(n, returned, times)

    asyncio.run(main())
    run.finish()


@pytest.mark.parametrize("path", ["/hang", "/hold"], ids=["blocked-read", "waiting-headers"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_close_from_elsewhere_is_prompt(server: SoakServer, flavour: str, path: str) -> None:
    # The server counts requests per target: one of its own for each test.
    run = CloseTries(server, f"{path}?client={flavour}", CLOSE_TRIES)
    (sync_close_tries if flavour == "sync" else async_close_tries)(run)
    what = "during a blocked read" if run.reads else "while waiting for headers"
    label = f"{flavour} close() {what}"
    report(label, run.latencies)
    check_flat(f"{label}: {CLOSE_TRIES} tries", run.samples, CLOSE_TRIES)
    # Nothing of a closed client stays alive (the flat object count says so on average).
    gc.collect()
    alive = len(run.clients)
    assert alive == 0, f"{alive} of {run.made} closed clients still alive"


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
                done, _ = await asyncio.wait({attempt}, timeout=30)
                assert done, "start() still waiting 30 s after close()"
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


def test_async_close_while_waiting_for_headers_on_a_session_passed_in(server: SoakServer) -> None:
    """The same on a session of the caller's, which close() leaves open."""

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            strategy = AsyncConnectStrategy.http(f"{server.url}/hold?session", session=session)
            client = AsyncSSEClient(strategy, **no_delay())
            attempt = asyncio.create_task(client.start())
            await asyncio.to_thread(wait_for_count, server, "/hold?session", 1)
            await client.close()
            done, _ = await asyncio.wait({attempt}, timeout=30)
            assert done, "start() still waiting 30 s after close()"
            assert attempt.result() is None
            assert not session.closed

    asyncio.run(main())
    wait_for_count(server, "/hold?session closed by client", 1)

"""
Exactly-once delivery under chaos, for both clients: numbered events streamed by a server
that honours ``Last-Event-ID`` (tests/soak_server.py, ``/chaos``), with the connection cut
at random byte offsets of the stream (inside a line, between CR and LF, inside the chunked
framing, by FIN or by RST), and no retry delay. Every event must arrive exactly once, in
order, intact; every cut must show as one ``Fault``; each reconnection must resume right
after the last event the client had in full.

``make test`` streams 2,000 events through 100 cuts with a fixed seed per client;
``make soak`` (``SOAK=1``) 20,000 through 1,000 with a new seed each run, printed (set
``CHAOS_SEED`` to replay one).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import pytest

from ld_eventsource import AsyncSSEClient, SSEClient
from ld_eventsource.actions import Comment, Event, Fault, Start
from tests.soak import SOAK, no_delay
from tests.soak_server import ChaosEvent, SoakServer, chaos_stream

EVENTS, DROPS = (20_000, 1_000) if SOAK else (2_000, 100)
DEADLINE = 600 if SOAK else 60
"""Seconds a run may take before it is a failure (it takes a few)."""


def seed_for(flavour: str) -> int:
    given = os.environ.get("CHAOS_SEED")
    if given:
        return int(given)
    if SOAK:
        return random.SystemRandom().randrange(2**32)
    return {"sync": 20_240_601, "async": 20_240_602}[flavour]


class Checker:
    """Follows what a client hands out and fails at the first event out of place."""

    def __init__(self, expected: list[ChaosEvent], seed: int) -> None:
        self.expected = expected
        self.seed = seed
        self.next = 0
        self.counts: dict[type, int] = {Start: 0, Event: 0, Comment: 0, Fault: 0}
        self.started = time.monotonic()

    def see(self, action: Any) -> bool:
        """Checks one action; True once the last event has arrived."""
        self.counts[type(action)] += 1
        if isinstance(action, Event):
            want = self.expected[self.next]
            got = (action.id, action.event, action.data, action.last_event_id)
            assert got == (want.id, want.event, want.data, want.id), (
                f"seed {self.seed}: event {self.next + 1} expected, got id {action.id!r} "
                f"({action.event!r}, {action.data[:30]!r})"
            )
            self.next += 1
        assert time.monotonic() - self.started < DEADLINE, f"seed {self.seed}: too slow"
        return self.next == len(self.expected)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_every_event_exactly_once_in_order(server: SoakServer, flavour: str) -> None:
    seed = seed_for(flavour)
    print(f"\n{flavour}: {EVENTS} events, {DROPS} drops, CHAOS_SEED={seed}")
    query = f"events={EVENTS}&drops={DROPS}&seed={seed}&client={flavour}"
    url = f"{server.url}/chaos?{query}"
    checker = Checker(chaos_stream(EVENTS, seed), seed)
    if flavour == "sync":
        with SSEClient(url, **no_delay()) as client:
            for action in client.all:
                if checker.see(action):
                    break
    else:

        async def main() -> None:
            async with AsyncSSEClient(url, **no_delay()) as client:
                async for action in client.all:
                    if checker.see(action):
                        break

        asyncio.run(main())
    took = time.monotonic() - checker.started
    stats = server.stats()["chaos"][query]
    counts = {kind.__name__: n for kind, n in checker.counts.items()}
    print(f"{flavour}: {took:.1f} s; client saw {counts}; server: {stats}")
    assert stats["errors"] == [], f"seed {seed}"
    assert stats["cuts_left"] == 0
    assert stats["stats"]["drops"] == DROPS
    assert stats["stats"]["connections"] == DROPS + 1
    assert checker.next == EVENTS
    # Each cut is one Fault, each connection one Start.
    assert checker.counts[Fault] == DROPS, f"seed {seed}"
    assert checker.counts[Start] == DROPS + 1, f"seed {seed}"

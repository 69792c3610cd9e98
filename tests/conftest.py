"""Fixtures shared by the tests: a driver for each client flavour, a CA, the soak server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from tests.drivers import AsyncDriver, Driver, SyncDriver
from tests.soak_server import SoakServer


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """The same scenario runs once with SSEClient and once with AsyncSSEClient."""
    d: Driver = SyncDriver() if request.param == "sync" else AsyncDriver()
    try:
        yield d
    finally:
        d.finish()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority of the tests' own: HTTPS servers and clients that trust it."""
    return trustme.CA()


@pytest.fixture(scope="module")
def server() -> Iterator[SoakServer]:
    """The soak server (tests/soak_server.py) in a subprocess, shared by a module's tests."""
    with SoakServer() as s:
        yield s

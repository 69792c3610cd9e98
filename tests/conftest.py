"""Fixtures shared by the client tests: a driver for each client flavour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.drivers import AsyncDriver, Driver, SyncDriver


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """The same scenario runs once with SSEClient and once with AsyncSSEClient."""
    d: Driver = SyncDriver() if request.param == "sync" else AsyncDriver()
    try:
        yield d
    finally:
        d.finish()

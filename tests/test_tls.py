"""Both clients over HTTPS, with a test CA from trustme."""

from __future__ import annotations

import ssl
from importlib.metadata import version

import aiohttp
import pytest
import trustme
import urllib3

from ld_eventsource.actions import Event
from ld_eventsource.testing import events_handler, sse
from tests.drivers import Driver
from tests.sse_server import SSEServer


def test_https_stream(driver: Driver, ca: trustme.CA) -> None:
    with SSEServer(events_handler([sse(id="1", data="secure")]), tls=ca) as server:
        assert server.url.startswith("https://")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        if driver.name == "sync" and version("urllib3").startswith("1."):
            # urllib3 1.26 gives no server_hostname to a context of one's own for an IP
            # address host, and checks the name itself.
            context.check_hostname = False
        if driver.name == "sync":
            pool = urllib3.PoolManager(ssl_context=context)
            strategy = driver.strategy(server.url, pool=pool)
        else:
            strategy = driver.strategy(server.url, aiohttp_request_options={"ssl": context})
        client = driver.client(strategy)
        assert driver.take_until_end(client, events=True) == [Event("message", "secure", "1", "1")]
        if driver.name == "sync":
            pool.clear()


def test_untrusted_certificate_is_an_error(driver: Driver, ca: trustme.CA) -> None:
    with SSEServer(events_handler([sse(data="x")]), tls=ca) as server:
        client = driver.client(server.url)
        with pytest.raises((ssl.SSLError, urllib3.exceptions.SSLError, aiohttp.ClientSSLError)):
            driver.start(client)

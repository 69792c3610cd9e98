"""
Proxies, for both clients over each of their transports (urllib3, aiohttp, httpx), against
a real proxy (proxy.py, tests/proxy_server.py) and real servers on 127.0.0.1: plain and
``CONNECT`` requests, authentication, the environment and ``NO_PROXY``, redirects, a proxy
that refuses or dies, and credentials that never show.
"""

from __future__ import annotations

import base64
import logging
import socket
import ssl
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import trustme
import urllib3

from ld_eventsource._http import Proxies, Proxy, bypass
from ld_eventsource.actions import Event, Fault, Start
from ld_eventsource.config import (
    AsyncConnectStrategy,
    ConnectStrategy,
    ErrorStrategy,
    RetryDelayStrategy,
)
from ld_eventsource.errors import HTTPProtocolError, HTTPStatusError, ProxyError
from ld_eventsource.testing import Conn, events_handler, redirect_handler, sse
from tests.drivers import DRIVERS, Driver, HttpxAsyncDriver, HttpxSyncDriver
from tests.proxy_server import ProxyServer
from tests.sse_server import SSEServer

pytestmark = pytest.mark.timeout(60)

USER, PASSWORD = "stream-user", "s3cret-Pa55"
SECRETS = (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
FAST = {
    "initial_retry_delay": 0.01,
    "retry_delay_strategy": RetryDelayStrategy.default(jitter_multiplier=None),
}
PROXY_VARIABLES = [
    f"{name}{suffix}" for name in ("http", "https", "all", "no") for suffix in ("_proxy", "_PROXY")
]


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """Both clients, over each of their transports."""
    d = DRIVERS[request.param]()
    try:
        yield d
    finally:
        d.finish()


def over_httpx(driver: Driver) -> bool:
    return isinstance(driver, (HttpxSyncDriver, HttpxAsyncDriver))


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no proxy variable set, whatever the machine has."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    with ProxyServer(tmp_path_factory.mktemp("proxy")) as server:
        yield server


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    with ProxyServer(tmp_path_factory.mktemp("auth-proxy"), auth=f"{USER}:{PASSWORD}") as server:
        yield server


def with_credentials(url: str, user: str = USER, password: str = PASSWORD) -> str:
    return url.replace("http://", f"http://{user}:{password}@")


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def data_of(actions: list[Any]) -> list[str]:
    return [a.data for a in actions if isinstance(a, Event)]


def tls_strategy(driver: Driver, url: str, ca: trustme.CA, tmp: Path, **kwargs: Any) -> Any:
    """
    A strategy that trusts ``ca``: a pool with its CA file (sync), ``ssl`` (async), a client
    of the caller's with ``verify`` (httpx: a client of its own trusts the usual CAs only),
    which then takes the proxy itself.
    """
    if isinstance(driver, (HttpxSyncDriver, HttpxAsyncDriver)):
        context = ssl.create_default_context()
        ca.configure_trust(context)
        http = driver.httpx_client(verify=context, proxy=kwargs.pop("proxy", None))
        return driver.strategy(url, client=http, **kwargs)
    if driver.name == "sync":
        ca_file = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        return driver.strategy(url, pool=urllib3.PoolManager(ca_certs=str(ca_file)), **kwargs)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return driver.strategy(url, aiohttp_request_options={"ssl": context}, **kwargs)


def shows_no_secret(*texts: str) -> bool:
    return not any(secret in text for secret in SECRETS for text in texts)


def error_texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


# -- through the proxy ------------------------------------------------------------------------


def test_an_http_stream_through_the_proxy(driver: Driver, proxy: ProxyServer) -> None:
    with SSEServer(events_handler([sse(id="1", data="via proxy")])) as server:
        client = driver.client(driver.strategy(server.url, proxy=proxy.url))
        assert data_of(driver.take_until_end(client, events=True)) == ["via proxy"]
        driver.close(client)
        assert proxy.wait_log(f"GET 127.0.0.1:{server.port}")


def test_an_https_stream_through_connect(
    driver: Driver, proxy: ProxyServer, ca: trustme.CA, tmp_path: Path
) -> None:
    with SSEServer(events_handler([sse(data="tunnelled")]), tls=ca) as server:
        client = driver.client(tls_strategy(driver, server.url, ca, tmp_path, proxy=proxy.url))
        assert data_of(driver.take_until_end(client, events=True)) == ["tunnelled"]
        driver.close(client)
        assert proxy.wait_log(f"CONNECT 127.0.0.1:{server.port}")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_authentication(
    driver: Driver,
    auth_proxy: ProxyServer,
    ca: trustme.CA,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    logger = logging.getLogger("test.proxy")
    tls = ca if scheme == "https" else None
    with SSEServer(events_handler([sse(data="authenticated")]), tls=tls) as server:
        url = with_credentials(auth_proxy.url)
        if tls:
            strategy = tls_strategy(driver, server.url, ca, tmp_path, proxy=url)
        else:
            strategy = driver.strategy(server.url, proxy=url)
        assert shows_no_secret(repr(strategy), repr(strategy._transport._params))
        client = driver.client(strategy, logger=logger)
        assert data_of(driver.take_until_end(client, events=True)) == ["authenticated"]
        driver.close(client)
        # The server never sees the proxy's credentials.
        assert "proxy-authorization" not in server.wait_request().headers
    if not (tls and over_httpx(driver)):  # not a client of the caller's
        assert f"via {auth_proxy.url}" in caplog.text
    assert shows_no_secret(caplog.text)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("credentials", ["none", "wrong"])
def test_a_407_is_a_proxy_error_and_a_fault(
    driver: Driver,
    auth_proxy: ProxyServer,
    ca: trustme.CA,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
    credentials: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = auth_proxy.url
    if credentials == "wrong":  # the wrong password holds the right one: neither shows
        url = with_credentials(auth_proxy.url, USER, "wrong-" + PASSWORD)
    tls = ca if scheme == "https" else None
    with SSEServer(events_handler([sse(data="never")]), tls=tls) as server:
        if tls and not over_httpx(driver):  # refused before TLS: httpx's own client will do
            strategy = tls_strategy(driver, server.url, ca, tmp_path, proxy=url)
        else:
            strategy = driver.strategy(server.url, proxy=url)
        client = driver.client(strategy)
        with pytest.raises(ProxyError) as info:
            driver.start(client)
        again = driver.client(
            strategy,
            error_strategy=ErrorStrategy.always_continue(),
            logger=logging.getLogger("test.proxy"),
            **FAST,
        )
        faults = driver.take(again, 2)
        driver.close(again)
        assert server.requests == []
    assert info.value.status == 407
    assert isinstance(info.value, HTTPStatusError)
    assert all(isinstance(f, Fault) and isinstance(f.error, ProxyError) for f in faults)
    assert [
        f.error.status for f in faults if isinstance(f, Fault) and isinstance(f.error, ProxyError)
    ] == [407, 407]
    assert shows_no_secret(caplog.text, *error_texts(info.value))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_502_carries_its_status(driver: Driver, proxy: ProxyServer, scheme: str) -> None:
    # The proxy cannot reach the server: 502 to CONNECT is a ProxyError; to a plain request
    # it is the response, an HTTPStatusError (from the proxy or from a server behind it).
    url = f"{scheme}://127.0.0.1:{closed_port()}/"
    client = driver.client(
        driver.strategy(url, proxy=proxy.url),
        error_strategy=ErrorStrategy.always_continue(),
        **FAST,
    )
    faults = driver.take(client, 2)
    driver.close(client)
    expected = ProxyError if scheme == "https" else HTTPStatusError
    for fault in faults:
        assert isinstance(fault, Fault) and isinstance(fault.error, expected)
        assert isinstance(fault.error, HTTPStatusError) and fault.error.status == 502


@pytest.mark.parametrize("configured", ["option", "environment"])
def test_a_tunnel_to_an_untrusted_server_is_a_tls_error(
    driver: Driver,
    auth_proxy: ProxyServer,
    ca: trustme.CA,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    configured: str,
) -> None:
    # The client's own pool, session or client (which trusts the usual CAs only): the proxy
    # accepts the credentials and opens the tunnel, and TLS then fails on the test's CA.
    caplog.set_level(logging.DEBUG)
    url = with_credentials(auth_proxy.url)
    with SSEServer(events_handler([sse(data="never")]), tls=ca) as server:
        if configured == "option":
            strategy = driver.strategy(server.url, proxy=url)
        else:
            monkeypatch.setenv("HTTPS_PROXY", url.removeprefix("http://"))  # no scheme
            monkeypatch.setenv("NO_PROXY", "example.com")
            strategy = driver.strategy(server.url)
        client = driver.client(strategy, logger=logging.getLogger("test.proxy"))
        with pytest.raises(Exception) as info:
            driver.start(client)
        assert server.requests == []
    assert not isinstance(info.value, ProxyError)
    assert "CERTIFICATE_VERIFY_FAILED" in "".join(traceback.format_exception(info.value))
    assert auth_proxy.wait_log(f"CONNECT 127.0.0.1:{server.port}")
    assert f"via {auth_proxy.url}" in caplog.text
    assert shows_no_secret(caplog.text, *error_texts(info.value))


def test_each_redirect_chooses_its_proxy(
    driver: Driver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NO_PROXY sends localhost direct; the redirect to 127.0.0.1 goes through the proxy.
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost")
    with (
        SSEServer(events_handler([sse(data="after the redirect")])) as target,
        SSEServer(redirect_handler(target.url + "/redirected")) as first,
    ):
        client = driver.client(f"http://localhost:{first.port}/start")
        assert data_of(driver.take_until_end(client, events=True)) == ["after the redirect"]
        driver.close(client)
        assert first.requests[0].path == "/start"
    assert proxy.wait_log(f"GET 127.0.0.1:{target.port}/redirected")
    assert f"localhost:{first.port}" not in proxy.log()


# -- the environment --------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_the_environment_is_read(
    driver: Driver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    with SSEServer(events_handler([sse(data="from env")])) as server:
        path = f"/{variable}"
        client = driver.client(server.url + path)
        assert data_of(driver.take_until_end(client, events=True)) == ["from env"]
        driver.close(client)
        assert proxy.wait_log(f"GET 127.0.0.1:{server.port}{path}")


def test_https_proxy_without_a_scheme(
    driver: Driver,
    proxy: ProxyServer,
    ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # HTTPS_PROXY=host:port is an http:// proxy, as curl and requests read it.
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{proxy.port}")
    with SSEServer(events_handler([sse(data="env tunnel")]), tls=ca) as server:
        client = driver.client(tls_strategy(driver, server.url, ca, tmp_path))
        assert data_of(driver.take_until_end(client, events=True)) == ["env tunnel"]
        driver.close(client)
        assert proxy.wait_log(f"CONNECT 127.0.0.1:{server.port}")


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.0/8", "example.com, 127.0.0.1:{port}"]
)
def test_no_proxy_goes_direct(
    driver: Driver, monkeypatch: pytest.MonkeyPatch, no_proxy: str
) -> None:
    # The environment's proxy refuses every connection: a stream that reads went direct.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with SSEServer(events_handler([sse(data="direct")])) as server:
        monkeypatch.setenv("NO_PROXY", no_proxy.format(port=server.port))
        client = driver.client(server.url)
        assert data_of(driver.take_until_end(client, events=True)) == ["direct"]


def test_no_proxy_with_another_port_uses_the_proxy(
    driver: Driver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with SSEServer(events_handler([sse(data="proxied")])) as server:
        monkeypatch.setenv("NO_PROXY", f"127.0.0.1:{server.port + 1}")
        client = driver.client(server.url + "/other-port")
        assert data_of(driver.take_until_end(client, events=True)) == ["proxied"]
        driver.close(client)
        assert proxy.wait_log(f"GET 127.0.0.1:{server.port}/other-port")


@pytest.mark.parametrize("off", [False, ""])
def test_the_environment_can_be_turned_off(
    driver: Driver, monkeypatch: pytest.MonkeyPatch, off: Any
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{closed_port()}")
    with SSEServer(events_handler([sse(data="direct")])) as server:
        client = driver.client(driver.strategy(server.url, proxy=off))
        assert data_of(driver.take_until_end(client, events=True)) == ["direct"]


def test_an_explicit_proxy_wins_over_the_environment(
    driver: Driver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "*")
    with SSEServer(events_handler([sse(data="explicit")])) as server:
        client = driver.client(driver.strategy(server.url + "/explicit", proxy=proxy.url))
        assert data_of(driver.take_until_end(client, events=True)) == ["explicit"]
        driver.close(client)
        assert proxy.wait_log(f"GET 127.0.0.1:{server.port}/explicit")


# -- a proxy that refuses or dies -------------------------------------------------------------


# A connection reset or closed mid-body, a refused one: the transport's network errors, or a
# body cut short.
NETWORK_ERRORS = (OSError, urllib3.exceptions.HTTPError, aiohttp.ClientError, HTTPProtocolError)


def test_a_proxy_that_refuses_connections(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = with_credentials(f"http://127.0.0.1:{closed_port()}")
    client = driver.client(
        driver.strategy("http://127.0.0.1:9/stream", proxy=url),
        error_strategy=ErrorStrategy.always_continue(),
        logger=logging.getLogger("test.proxy"),
        **FAST,
    )
    faults = driver.take(client, 3)
    driver.close(client)
    assert all(isinstance(f, Fault) for f in faults)
    errors = [f.error for f in faults if isinstance(f, Fault)]
    expected: type[Exception] = {
        "sync": urllib3.exceptions.ProxyError,
        "async": aiohttp.ClientProxyConnectionError,
    }.get(driver.name, OSError)  # httpx: the OSError of the refused connection
    assert all(isinstance(e, expected) for e in errors), errors
    assert shows_no_secret(caplog.text, *(t for e in errors if e for t in error_texts(e)))


def test_a_proxy_that_dies_mid_stream(
    driver: Driver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SSEServer(events_handler([sse(id="1", data="first")], then="hang")) as server:
        with ProxyServer(tmp_path, auth=f"{USER}:{PASSWORD}") as dying:
            client = driver.client(
                driver.strategy(server.url, proxy=with_credentials(dying.url)),
                error_strategy=ErrorStrategy.always_continue(),
                logger=logging.getLogger("test.proxy"),
                **FAST,
            )
            before = driver.take(client, 2)
            dying.kill()
            after = driver.take(client, 3)
        driver.close(client)
    assert [type(a) for a in before] == [Start, Event]
    # The stream ends with a network error, then each reconnection finds no proxy.
    assert all(isinstance(a, Fault) for a in after), after
    errors = [a.error for a in after if isinstance(a, Fault)]
    assert all(e is None or isinstance(e, NETWORK_ERRORS) for e in errors), errors
    assert sum(isinstance(e, NETWORK_ERRORS) for e in errors) >= 2
    assert shows_no_secret(caplog.text, *(t for e in errors if e for t in error_texts(e)))


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("127.0.0.1:3128", "must be a URL with a scheme"),
        ("socks5://127.0.0.1:1080", "scheme 'socks5' is not supported"),
        ("ftp://proxy.example", "scheme 'ftp' is not supported"),
        ("http://", "has no host"),
        ("http://:3128", "has no host"),
        ("http://proxy.example:99999", "invalid port"),
        ("http://proxy.example:port", "invalid port"),
        (f"http://{USER}:{PASSWORD}@proxy.example:bad", "invalid port"),
        ("http://proxy.example/some/path", "no path"),
    ],
)
def test_a_malformed_proxy_url_fails_at_construction(
    driver: Driver, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        driver.strategy("http://127.0.0.1:9/", proxy=value)
    assert shows_no_secret(str(info.value))


@pytest.mark.parametrize("value", [True, 3128, b"http://proxy.example"])
def test_a_proxy_of_the_wrong_type(driver: Driver, value: Any) -> None:
    with pytest.raises(TypeError, match="proxy must be"):
        driver.strategy("http://127.0.0.1:9/", proxy=value)


def test_a_malformed_environment_proxy_names_its_variable(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    strategy = driver.strategy("https://127.0.0.1:9/")
    with pytest.raises(ValueError, match="HTTPS_PROXY"):
        driver.client(strategy)


def test_a_proxy_manager_pool_and_a_proxy_are_exclusive() -> None:
    pool = urllib3.ProxyManager("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="ProxyManager"):
        ConnectStrategy.http("http://127.0.0.1:9/", pool=pool, proxy="http://127.0.0.1:8")
    pool.clear()


def test_an_httpx_client_and_a_proxy_are_exclusive() -> None:
    with httpx.Client() as http:
        with pytest.raises(ValueError, match="client's own proxy"):
            ConnectStrategy.httpx("http://127.0.0.1:9/", client=http, proxy="http://u:p@h:8")
        for off in (None, False, ""):
            ConnectStrategy.httpx("http://127.0.0.1:9/", client=http, proxy=off)
    http_async = httpx.AsyncClient()
    with pytest.raises(ValueError, match="client's own proxy"):
        AsyncConnectStrategy.httpx("http://127.0.0.1:9/", client=http_async, proxy="http://h:8")


@pytest.mark.parametrize("driver", ["sync-httpx", "async-httpx"], indirect=True)
def test_an_httpx_client_of_the_callers_keeps_its_own_proxy_settings(
    driver: Driver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment is the client's business (its trust_env), not read by the library.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with SSEServer(events_handler([sse(data="the client's")])) as server:
        assert isinstance(driver, (HttpxSyncDriver, HttpxAsyncDriver))
        direct = driver.strategy(server.url, client=driver.httpx_client(trust_env=False))
        assert data_of(driver.take_until_end(driver.client(direct), events=True)) == [
            "the client's"
        ]
        proxied = driver.strategy(
            server.url + "/proxied", client=driver.httpx_client(proxy=proxy.url)
        )
        assert data_of(driver.take_until_end(driver.client(proxied), events=True)) == [
            "the client's"
        ]
        assert proxy.wait_log(f"GET 127.0.0.1:{server.port}/proxied")


# -- the rules alone --------------------------------------------------------------------------


def test_proxy_urls_are_parsed_and_redacted() -> None:
    proxy = Proxy.parse("http://us%40er:pa%3Ass@Proxy.Example:3128/")
    assert proxy.url == "http://proxy.example:3128"
    assert (proxy.username, proxy.password) == ("us@er", "pa:ss")
    assert proxy.authorization() == "Basic " + base64.b64encode(b"us@er:pa:ss").decode()
    assert "pa:ss" not in repr(proxy) and "pa%3Ass" not in repr(
        Proxies.create("http://u:pa%3Ass@h")
    )
    assert Proxy.parse("https://[::1]").url == "https://[::1]:443"
    assert Proxy.parse("http://h").url == "http://h:80"
    assert Proxy.parse("http://h").authorization() is None


@pytest.mark.parametrize(
    ("host", "port", "entries", "direct"),
    [
        ("anything.example", 443, ("*",), True),
        ("example.com", 443, ("example.com",), True),
        ("api.example.com", 443, ("example.com",), True),
        ("api.example.com", 443, (".example.com",), True),
        ("badexample.com", 443, ("example.com",), False),
        ("example.com", 8443, ("example.com:8443",), True),
        ("example.com", 443, ("example.com:8443",), False),
        ("10.1.2.3", 80, ("10.0.0.0/8",), True),
        ("11.1.2.3", 80, ("10.0.0.0/8",), False),
        ("127.0.0.1", 80, ("127.0.0.1",), True),
        ("::1", 8080, ("[::1]:8080",), True),
        ("::1", 80, ("::1",), True),
        ("::1", 80, ("[::1]:8080",), False),
        ("example.com.", 80, ("example.com",), True),
        ("127.0.0.1", 80, ("localhost",), False),
    ],
)
def test_no_proxy_rules(host: str, port: int, entries: tuple[str, ...], direct: bool) -> None:
    assert bypass(host, port, entries) is direct


# -- close() through a proxy ------------------------------------------------------------------


def _no_head(conn: Conn) -> None:
    conn.wait_client_gone(30)  # accepted, never answered


@pytest.mark.parametrize("when", ["reading", "waiting-for-the-head"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_close_ends_a_stream_through_the_proxy(
    driver: Driver, proxy: ProxyServer, ca: trustme.CA, tmp_path: Path, when: str, scheme: str
) -> None:
    # close() from another thread (or task) ends the read or the wait for the response
    # head of a connection through the proxy, as it does for a direct one.
    handler = events_handler([sse(data="x")], then="hang") if when == "reading" else _no_head
    with SSEServer(handler, tls=ca if scheme == "https" else None) as server:
        if scheme == "https":
            strategy = tls_strategy(driver, server.url, ca, tmp_path, proxy=proxy.url)
        else:
            strategy = driver.strategy(server.url, proxy=proxy.url)
        client = driver.client(strategy, error_strategy=ErrorStrategy.always_continue())
        driver.close_later(client, 0.3)
        actions = driver.take_until_end(client)
        assert data_of(actions) == (["x"] if when == "reading" else [])
        # Waiting for the head, the close may come before the proxy forwarded the request:
        # it ends the attempt wherever it is.
        assert len(server.requests) == 1 if when == "reading" else len(server.requests) <= 1
        assert server.wait_connections_closed(10)

"""
The httpx transport (:meth:`ConnectStrategy.httpx`, :meth:`AsyncConnectStrategy.httpx`).

The hostile-server tables of ``test_hostile``, ``test_connection_details`` and
``test_reconnect_recipes``, and that of ``test_compression``, run here over httpx too (sync
and async), so that it rejects what the other transports reject, with the same errors;
``test_proxy`` runs its table over every transport itself; what only httpx has (``client=``,
``http2=``, httpx2's clients) is tested below. HTTP/2 itself is in ``test_http2``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
import trustme

from ld_eventsource import AsyncSSEClient, SSEClient
from ld_eventsource.actions import Event
from ld_eventsource.config import AsyncConnectStrategy, ConnectStrategy
from ld_eventsource.errors import (
    HTTPContentTypeError,
    HTTPProtocolError,
    HTTPStatusError,
    StreamTimeoutError,
)
from ld_eventsource.testing import events_handler, redirect_handler, sse
from tests import test_hostile
from tests.drivers import Driver, HttpxAsyncDriver, HttpxSyncDriver
from tests.sse_server import SSEServer

# The tables of the other modules, over httpx: the same functions, with this module's driver.
from tests.test_compression import (  # noqa: F401
    test_a_corrupt_stream_is_a_fault_and_a_reconnect,
    test_an_unknown_coding_is_named,
    test_both_clients_ask_for_every_coding_they_undo,
    test_each_coding_reads,
    test_each_event_arrives_before_the_next_is_sent,
    test_raw_deflate_reads,
)
from tests.test_connection_details import (  # noqa: F401
    test_content_type_error_names_the_status,
    test_refused_connection_keeps_its_cause,
)
from tests.test_hostile import (  # noqa: F401
    test_a_chunk_line_that_never_ends,
    test_a_chunked_body_closed_before_its_last_chunk,
    test_a_dripping_server_times_out_and_reconnects,
    test_a_dripping_server_without_read_timeout_delivers_intact,
    test_a_gzip_stream_works,
    test_a_redirect_loop_is_bounded,
    test_a_redirect_with_an_endless_body_is_not_drained,
    test_a_rejected_response_fails_at_once,
    test_a_reset_in_a_chunk_size_line,
    test_a_reset_never_delivers_a_partial_event,
    test_a_server_that_never_answers_times_out,
    test_a_small_rejected_body_is_fine,
    test_an_endless_event_is_bounded,
    test_an_endless_header_block,
    test_an_endless_header_line,
    test_an_endless_status_line,
    test_an_http_1_0_response_is_close_delimited,
    test_an_invalid_status_line,
    test_conflicting_or_unsupported_framing,
    test_credentials_stay_with_their_origin,
    test_heartbeats_count_toward_no_event,
    test_redirect_of_a_post_stream,
    test_tls_is_verified_by_default,
)
from tests.test_reconnect_recipes import (  # noqa: F401
    test_browser_like_on_drops_with_backoff_during_outages,
    test_browser_like_recipe_waits_the_servers_retry_every_time,
    test_default_configuration_backs_off_across_short_connections,
    test_max_attempts_counts_short_connections_unless_threshold_is_zero,
)
from tests.test_tls import test_untrusted_certificate_is_an_error  # noqa: F401


@pytest.fixture(params=["sync-httpx", "async-httpx"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """Both clients, over httpx."""
    d: Driver = HttpxSyncDriver() if request.param == "sync-httpx" else HttpxAsyncDriver()
    try:
        yield d
    finally:
        d.finish()


# -- where h11 and httpx differ from the other transports -------------------------------------


@pytest.mark.parametrize(
    "size_line",
    [b"1" + b"0" * 20, b"zz", b"-5", b"0x10", b" "],
    ids=["overflow-decimal", "not-hex", "negative", "0x", "blank"],
)
def test_a_bad_chunk_size(driver: Driver, size_line: bytes) -> None:
    # h11 reads a chunk size of up to 20 hex digits, so "ffffffffffffffffff" (2**72 - 1) is
    # a chunk that does not end, as a close-delimited body would: the one size line of the
    # hostile table that is not an error over httpx (docs/guides/transports.md).
    test_hostile.test_a_bad_chunk_size(driver, size_line)


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/x", "file:///etc/passwd"])
def test_a_redirect_to_an_unusable_location(driver: Driver, location: str) -> None:
    test_hostile.test_a_redirect_to_an_unusable_location(driver, location)


def test_a_caller_may_ask_for_identity(driver: Driver) -> None:
    # test_compression's, with the headers option only: httpx_request_options set no header.
    with SSEServer(events_handler([sse(data="plain")])) as server:
        strategy = driver.strategy(server.url, headers={"accept-encoding": "identity"})
        assert [e.data for e in driver.take_until_end(driver.client(strategy), events=True)] == [
            "plain"
        ]
        request = server.wait_request()
    assert request.headers.get_all("accept-encoding") == ["identity"]


def test_a_redirect_to_a_location_httpx_cannot_parse(driver: Driver) -> None:
    # httpx parses Location even when it does not follow redirects, and fails the request
    # before its response is seen: an HTTPProtocolError, where the others give an
    # HTTPStatusError with the redirect's status.
    with SSEServer(redirect_handler("http://[::1", 302)) as server:
        client = driver.client(server.url)
        with pytest.raises(HTTPProtocolError, match="location"):
            driver.start(client)


# -- the options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"http2": "yes"}, TypeError),
        ({"client": object()}, TypeError),
        ({"httpx_request_options": {"headers": {}}}, ValueError),
        ({"httpx_request_options": {"content": b""}}, ValueError),
    ],
)
def test_bad_httpx_arguments(driver: Driver, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        driver.strategy("http://127.0.0.1:9/", **kwargs)


def test_http2_with_a_client_of_the_callers_is_an_error() -> None:
    with httpx.Client() as client, pytest.raises(ValueError, match="http2"):
        ConnectStrategy.httpx("http://127.0.0.1:9/", client=client, http2=True)
    with pytest.raises(TypeError, match=r"httpx\.AsyncClient"):
        AsyncConnectStrategy.httpx("http://127.0.0.1:9/", client=httpx.Client())  # type: ignore[arg-type]


def test_a_sync_client_given_is_used_and_not_closed() -> None:
    seen: list[str] = []
    with (
        SSEServer(events_handler([sse(data="x")])) as server,
        httpx.Client(
            headers={"X-From-Client": "1"},
            event_hooks={"request": [lambda r: seen.append(str(r.url))]},
        ) as http,
    ):
        with SSEClient(ConnectStrategy.httpx(server.url, client=http)) as client:
            assert [e.data for e in client.events] == ["x"]
        assert not http.is_closed
        assert http.get(server.url).status_code == 200  # still usable
        assert server.requests[0].headers["x-from-client"] == "1"
    assert seen[0].rstrip("/") == server.url


def test_an_async_client_given_is_used_and_not_closed() -> None:
    async def main() -> None:
        with SSEServer(events_handler([sse(data="x")])) as server:
            async with httpx.AsyncClient(headers={"X-From-Client": "1"}) as http:
                async with AsyncSSEClient(
                    AsyncConnectStrategy.httpx(server.url, client=http)
                ) as client:
                    assert [e.data async for e in client.events] == ["x"]
                assert not http.is_closed
                assert (await http.get(server.url)).status_code == 200
            assert server.requests[0].headers["x-from-client"] == "1"

    asyncio.run(main())


def test_credentials_of_the_client_stay_with_their_origin(driver: Driver) -> None:
    # Headers and auth set on the caller's client are sent on a redirect within the origin
    # only, as the strategy's own headers are.
    with SSEServer(events_handler([sse(data="x")])) as other, SSEServer() as server:
        server.route("/same", redirect_handler("/final", 307))
        server.route("/final", events_handler([sse(data="x")]))
        server.route("/away", redirect_handler(other.url + "/final", 307))
        for path in ("/same", "/away"):
            options: dict[str, Any] = {
                "headers": {"Cookie": "session=1", "X-Other": "kept"},
                "auth": ("user", "s3cret"),
            }
            if isinstance(driver, HttpxSyncDriver):
                http: Any = httpx.Client(**options)
                client = driver.client(driver.strategy(server.url + path, client=http))
                driver.take_until_end(client)
                http.close()
            else:
                assert isinstance(driver, HttpxAsyncDriver)

                async def make(**kwargs: Any) -> Any:
                    return httpx.AsyncClient(**kwargs)

                http = driver.run(make(**options))
                client = driver.client(driver.strategy(server.url + path, client=http))
                driver.take_until_end(client)
                driver.run(http.aclose())
        same = server.requests[-1]
        away = other.requests[-1]
    assert same.headers["authorization"].startswith("Basic ")
    assert same.headers["cookie"] == "session=1"
    assert "authorization" not in away.headers
    assert "cookie" not in away.headers
    assert away.headers["x-other"] == "kept"


def test_read_timeout_replaces_the_read_part_of_a_timeout_option(driver: Driver) -> None:
    with SSEServer(events_handler([sse(data="x")], then="hang")) as server:
        strategy = driver.strategy(
            server.url,
            read_timeout=0.2,
            httpx_request_options={"timeout": httpx.Timeout(30.0)},
        )
        client = driver.client(strategy)
        assert driver.take(client, 2)[1] == Event(data="x")
        with pytest.raises(StreamTimeoutError) as info:
            driver.take(client, 1)
    assert info.value.timeout == 0.2


def test_https_with_a_client_of_the_callers(ca: trustme.CA) -> None:
    with SSEServer(events_handler([sse(data="secure")]), tls=ca) as server:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with (
            httpx.Client(verify=context) as http,
            SSEClient(ConnectStrategy.httpx(server.url, client=http)) as client,
        ):
            assert [e.data for e in client.events] == ["secure"]
        with httpx.Client(verify=ssl.create_default_context()) as http:
            client = SSEClient(ConnectStrategy.httpx(server.url, client=http))
            with client, pytest.raises(ssl.SSLError):
                client.start()


def test_a_status_error_from_a_client_of_the_callers(driver: Driver) -> None:
    with SSEServer() as server:
        server.route("/gone", redirect_handler(None, 301))
        client = driver.client(server.url + "/gone")
        with pytest.raises(HTTPStatusError) as info:
            driver.start(client)
    assert info.value.status == 301


# -- httpx2: pydantic's fork, with httpx's client API under another name -------------------


def test_httpx2_clients_are_accepted() -> None:
    with SSEServer(events_handler([sse(id="1", data="a"), sse(id="2", data="b")])) as server:
        with httpx2.Client() as http:
            with SSEClient(ConnectStrategy.httpx(server.url, client=http)) as client:
                assert [e.data for e in client.events] == ["a", "b"]
            assert not http.is_closed

        async def main() -> None:
            async with httpx2.AsyncClient() as http:
                strategy = AsyncConnectStrategy.httpx(server.url, client=http, read_timeout=5)
                async with AsyncSSEClient(strategy) as client:
                    assert [e.data async for e in client.events] == ["a", "b"]
                assert not http.is_closed

        asyncio.run(main())


def test_httpx2_errors_are_mapped_as_httpx_errors_are() -> None:
    with (
        SSEServer(events_handler([sse(data="x")], then="hang")) as server,
        httpx2.Client() as http,
        SSEClient(ConnectStrategy.httpx(server.url, client=http, read_timeout=0.2)) as client,
    ):
        iterator = iter(client.events)
        assert next(iterator) == Event(data="x")
        with pytest.raises(StreamTimeoutError):
            next(iterator)
    with (
        SSEServer(events_handler([sse(data="x")], content_type="text/html")) as server,
        httpx2.Client() as http,
        SSEClient(ConnectStrategy.httpx(server.url, client=http)) as c,
        pytest.raises(HTTPContentTypeError),
    ):
        c.start()

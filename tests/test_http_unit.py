"""
Unit tests of each function of ``_http`` (the HTTP rules both transports share), one
section a function, with their edge cases. test_http_rules.py holds the framing table, the
redirect scenarios and the options' signature check; these are pure, so no server runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import multidict
import pytest
from urllib3._collections import HTTPHeaderDict

from ld_eventsource import _http
from ld_eventsource._decompress import ACCEPT_ENCODING
from ld_eventsource._http import (
    DEFAULT_CONNECT_TIMEOUT,
    LAST_EVENT_ID,
    REDIRECTS,
    HttpParams,
    Request,
    check_response,
    is_event_stream,
    redirect,
    redirect_after,
    request_headers,
    verdict,
    with_query,
)
from ld_eventsource.errors import (
    CaseInsensitiveHeaders,
    HTTPContentTypeError,
    HTTPProtocolError,
    HTTPStatusError,
    ProxyError,
)

ES = "text/event-stream"


def arguments(**overrides: Any) -> dict[str, Any]:
    """The arguments of an ``http()`` call with its defaults, by name."""
    base: dict[str, Any] = {
        "url": "http://127.0.0.1:8000/stream",
        "headers": None,
        "query_params": None,
        "method": "GET",
        "body": None,
        "read_timeout": 300,
        "max_redirects": 5,
        "proxy": None,
        "options": None,
    }
    base.update(overrides)
    return base


def params(**overrides: Any) -> HttpParams:
    return HttpParams.create(arguments(**overrides), "options")


# -- constants ----------------------------------------------------------------------------------


def test_constants() -> None:
    assert DEFAULT_CONNECT_TIMEOUT == 10.0
    assert LAST_EVENT_ID == "Last-Event-ID"
    assert {301, 302, 303, 307, 308} == REDIRECTS


# -- HttpParams.create ----------------------------------------------------------------------------


def test_create_keeps_and_normalises_the_options() -> None:
    query = dict[str, str]
    p = params(
        method="post",
        body="é",
        read_timeout=1,
        max_redirects=0,
        options={"retries": False},
        query_params=query,
    )
    assert p.url == "http://127.0.0.1:8000/stream"
    assert p.method == "POST"
    assert p.body == "é".encode()
    assert p.read_timeout == 1.0
    assert p.max_redirects == 0
    assert p.request_options == {"retries": False}
    assert p.query_params is query


def test_create_defaults() -> None:
    p = params(read_timeout=None)
    assert (p.headers, p.query_params, p.body, p.read_timeout) == (None, None, None, None)
    assert p.request_options == {}


@pytest.mark.parametrize("body", [b"x", bytearray(b"x"), memoryview(b"x")])
def test_create_takes_any_bytes_like_body_as_bytes(body: bytes | bytearray | memoryview) -> None:
    p = params(body=body)
    assert p.body == b"x" and type(p.body) is bytes


def test_create_copies_the_request_options() -> None:
    options = {"a": 1}
    p = params(options=options)
    options["a"] = 2
    assert p.request_options == {"a": 1}


@pytest.mark.parametrize("url", ["HTTPS://h/", "http://h"])
def test_create_accepts_http_and_https_urls_in_any_case(url: str) -> None:
    assert params(url=url).url == url


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"url": b"http://h/"}, TypeError, "url must be a str"),
        ({"url": "ftp://h/"}, ValueError, "http:// or https://"),
        ({"url": "127.0.0.1:8000"}, ValueError, "http:// or https://"),
        ({"headers": ["a"]}, TypeError, "headers must be a mapping or a callable"),
        ({"query_params": {"a": "b"}}, TypeError, "query_params must be a callable"),
        ({"method": ""}, ValueError, "method must be an HTTP method name"),
        ({"method": "GE T"}, ValueError, "method must be an HTTP method name"),
        ({"method": "GET\r\n"}, ValueError, "method must be an HTTP method name"),
        ({"method": "a:b"}, ValueError, "method must be an HTTP method name"),
        ({"method": "é"}, ValueError, "method must be an HTTP method name"),
        ({"method": 1}, ValueError, "method must be an HTTP method name"),
        ({"body": 1}, TypeError, "body must be str or bytes"),
        ({"options": [("a", 1)]}, TypeError, "options must be a dict"),
        ({"read_timeout": 0}, ValueError, "read_timeout"),
        ({"read_timeout": "1"}, TypeError, "read_timeout"),
        ({"max_redirects": -1}, ValueError, "max_redirects"),
        ({"max_redirects": 1.5}, TypeError, "max_redirects"),
    ],
)
def test_create_rejects(overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        params(**overrides)


def test_create_names_the_transport_options_argument() -> None:
    with pytest.raises(TypeError, match="aiohttp_request_options must be a dict"):
        HttpParams.create({**arguments(), "aiohttp_request_options": 1}, "aiohttp_request_options")


# -- HttpParams.request -------------------------------------------------------------------------


def test_request_with_static_options() -> None:
    p = params(method="REPORT", body=b"q", headers={"X-A": "1"})
    assert p.request("7") == Request(
        "REPORT",
        "http://127.0.0.1:8000/stream",
        {
            "Accept": ES,
            "Cache-Control": "no-cache",
            "Accept-Encoding": ACCEPT_ENCODING,
            "X-A": "1",
            "Last-Event-ID": "7",
            "Content-Type": "text/plain",
        },
        b"q",
    )


def test_request_calls_the_dynamic_options_on_every_attempt() -> None:
    calls: list[str] = []

    def headers() -> Mapping[str, str]:
        calls.append("headers")
        return {"X-N": str(len(calls))}

    def query() -> Mapping[str, str]:
        calls.append("query")
        return {"n": str(len(calls))}

    p = params(headers=headers, query_params=query)
    first, second = p.request(None), p.request(None)
    assert calls == ["query", "headers"] * 2
    assert (first.url, first.headers["X-N"]) == ("http://127.0.0.1:8000/stream?n=1", "2")
    assert (second.url, second.headers["X-N"]) == ("http://127.0.0.1:8000/stream?n=3", "4")
    assert first.body is None and "Content-Type" not in first.headers


# -- with_query ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "query", "expected"),
    [
        ("http://h/p", None, "http://h/p"),
        ("http://h/p?a=1", {}, "http://h/p?a=1"),
        ("http://h/p", {"a": "1"}, "http://h/p?a=1"),
        ("http://h/p?a=1&b=2", {"a": "3"}, "http://h/p?b=2&a=3"),
        ("http://h/p?a=1&a=2&c=", {"a": "3"}, "http://h/p?c=&a=3"),
        ("http://h/p?x=1#f", {"k": "a b&c"}, "http://h/p?x=1&k=a+b%26c#f"),
        ("http://h/p", {"é": "ü"}, "http://h/p?%C3%A9=%C3%BC"),
    ],
)
def test_with_query(url: str, query: Mapping[str, str] | None, expected: str) -> None:
    assert with_query(url, query) == expected


# -- request_headers ----------------------------------------------------------------------------


def test_request_headers_defaults() -> None:
    assert request_headers(None, None, has_body=False) == {
        "Accept": ES,
        "Cache-Control": "no-cache",
        "Accept-Encoding": ACCEPT_ENCODING,
    }


def test_accept_and_cache_control_cannot_be_overridden() -> None:
    user = {"accept": "text/html", "CACHE-CONTROL": "max-age=1", "X-A": "1"}
    assert request_headers(user, None, has_body=False) == {
        "Accept": ES,
        "Cache-Control": "no-cache",
        "Accept-Encoding": ACCEPT_ENCODING,
        "X-A": "1",
    }


def test_a_later_spelling_of_a_header_replaces_an_earlier_one() -> None:
    user = {"X-Token": "a", "x-token": "b"}
    assert request_headers(user, None, has_body=False) == {
        "Accept": ES,
        "Cache-Control": "no-cache",
        "Accept-Encoding": ACCEPT_ENCODING,
        "x-token": "b",
    }


def test_bytes_values_are_kept() -> None:
    user: dict[str, Any] = {"X-B": b"\xff"}  # beyond the annotation: bytes go out as they are
    assert request_headers(user, None, has_body=False)["X-B"] == b"\xff"


@pytest.mark.parametrize("user", [{"X-A": 1}, {1: "a"}, {"X-A": None}])
def test_header_names_and_values_must_be_strings(user: Any) -> None:
    with pytest.raises(TypeError, match="must map a str to a str"):
        request_headers(user, None, has_body=False)


@pytest.mark.parametrize("last_event_id", [None, ""])
def test_no_last_event_id_header_without_an_id(last_event_id: str | None) -> None:
    headers = request_headers({"Last-Event-ID": "user"}, last_event_id, has_body=False)
    assert headers["Last-Event-ID"] == "user"
    assert LAST_EVENT_ID not in request_headers(None, last_event_id, has_body=False)


def test_the_last_event_id_replaces_the_callers_in_any_spelling() -> None:
    headers = request_headers(
        {"last-event-id": "user", "LAST-EVENT-ID": "x"}, "é\u2603", has_body=False
    )
    assert [n for n in headers if n.lower() == "last-event-id"] == ["Last-Event-ID"]
    # The header value goes out as given; each transport sends it as UTF-8.
    assert headers["Last-Event-ID"] == "é\u2603"


def test_content_type_with_a_body_unless_the_caller_set_one() -> None:
    assert request_headers(None, None, has_body=True)["Content-Type"] == "text/plain"
    headers = request_headers({"content-type": "application/json"}, None, has_body=True)
    assert headers["content-type"] == "application/json"
    assert "Content-Type" not in headers
    assert "Content-Type" not in request_headers(None, None, has_body=False)


def test_the_callers_mapping_is_not_changed() -> None:
    user = {"Accept": "x", "Last-Event-ID": "u"}
    request_headers(user, "7", has_body=True)
    assert user == {"Accept": "x", "Last-Event-ID": "u"}


# -- is_event_stream ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (ES, True),
        ("Text/Event-Stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("  text/event-stream  ;x=1", True),
        (None, False),
        ("", False),
        ("text/plain", False),
        ("text/event-streams", False),
        ("text/event-stream,text/plain", False),
        ("application/text/event-stream", False),
    ],
)
def test_is_event_stream(content_type: str | None, expected: bool) -> None:
    assert is_event_stream(content_type) is expected


# -- check_response -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 203, 206, 299])
def test_check_response_accepts_2xx_event_streams(status: int) -> None:
    assert check_response(status, CaseInsensitiveHeaders(), ES) == "identity"


@pytest.mark.parametrize("status", [100, 199, 204, 300, 301, 304, 400, 404, 500, 503, 599])
def test_check_response_rejects_other_statuses(status: int) -> None:
    headers = CaseInsensitiveHeaders({"Retry-After": "3"})
    with pytest.raises(HTTPStatusError) as info:
        check_response(status, headers, ES)
    assert info.value.status == status
    assert info.value.headers == headers


def test_the_status_is_checked_before_the_media_type() -> None:
    with pytest.raises(HTTPStatusError):
        check_response(500, CaseInsensitiveHeaders(), "text/html")


@pytest.mark.parametrize("content_type", [None, "", "text/html"])
def test_check_response_rejects_other_media_types(content_type: str | None) -> None:
    headers = CaseInsensitiveHeaders({"X-A": "1"})
    with pytest.raises(HTTPContentTypeError) as info:
        check_response(200, headers, content_type)
    assert info.value.content_type == (content_type or "")
    assert info.value.headers == headers


def test_check_response_returns_the_content_coding() -> None:
    headers = CaseInsensitiveHeaders({"Content-Encoding": "x-gzip"})
    assert check_response(200, headers, ES) == "x-gzip"


# -- the header objects of each transport (_values) ---------------------------------------------

Factory = Callable[[list[tuple[str, str]]], Any]


def cimultidict(pairs: list[tuple[str, str]]) -> Any:
    return multidict.CIMultiDictProxy(multidict.CIMultiDict(pairs))


# urllib3.HTTPHeaderDict is exported from the package only since urllib3 2.0.
FACTORIES: list[Factory] = [dict, CaseInsensitiveHeaders, HTTPHeaderDict, cimultidict]


@pytest.mark.parametrize("make", FACTORIES, ids=["dict", "CaseInsensitive", "urllib3", "multidict"])
def test_values_splits_repeated_and_listed_values(make: Factory) -> None:
    headers = make([("Content-Encoding", " GZIP , "), ("content-encoding", "Identity")])
    expected = ["gzip", "identity"] if not isinstance(headers, dict) else ["identity"]
    assert _http._values(headers, "content-encoding") == expected
    assert _http._values(headers, "transfer-encoding") == []


@pytest.mark.parametrize("make", FACTORIES, ids=["dict", "CaseInsensitive", "urllib3", "multidict"])
def test_repeated_content_lengths_are_seen_by_every_transport(make: Factory) -> None:
    headers = make([("Content-Length", "1"), ("Content-Length", "2")])
    if isinstance(headers, dict):
        return  # a plain dict holds one value a name
    with pytest.raises(HTTPProtocolError, match="invalid Content-Length '1, 2'"):
        _http._content_coding(headers)


# -- _origin ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://H/p", ("http", "h", 80)),
        ("HTTPS://h:443/p", ("https", "h", 443)),
        ("https://h/p", ("https", "h", 443)),
        ("http://h:8000", ("http", "h", 8000)),
        ("http://[::1]:1/", ("http", "::1", 1)),
        ("ftp://h/", ("ftp", "h", None)),
    ],
)
def test_origin(url: str, origin: tuple[str, str, int | None]) -> None:
    assert _http._origin(url) == origin


# -- redirect -----------------------------------------------------------------------------------

GET = Request("GET", "http://a:1/p", {"Authorization": "t", "X-A": "1"}, None)


def test_redirect_drops_the_fragment_and_strips_the_location() -> None:
    follow = redirect(GET, 302, "  /q#frag \t")
    assert follow == Request("GET", "http://a:1/q", GET.headers, None)


def test_head_stays_head_on_303() -> None:
    head = Request("HEAD", "http://a:1/p", {}, None)
    assert redirect(head, 303, "/q") == Request("HEAD", "http://a:1/q", {}, None)


def test_get_with_a_body_becomes_get_without_one_on_303() -> None:
    request = Request("PUT", "http://a:1/p", {"Content-Length": "1", "content-language": "x"}, b"x")
    assert redirect(request, 303, "/q") == Request("GET", "http://a:1/q", {}, None)


def test_credentials_dropped_once_are_not_sent_again() -> None:
    away = redirect(GET, 307, "http://b:1/x")
    assert away is not None and away.headers == {"X-A": "1"}
    back = redirect(away, 307, "http://a:1/p")
    assert back is not None and back.headers == {"X-A": "1"}


def test_a_redirect_to_a_url_without_a_host() -> None:
    # Same scheme: urljoin keeps the request's host; another scheme: no host, not followed.
    follow = redirect(GET, 301, "http:///x")
    assert follow is not None and follow.url == "http://a:1/x"
    assert redirect(GET, 301, "https:///x") is None


def test_redirect_does_not_change_the_request() -> None:
    redirect(GET, 303, "http://b/x")
    assert Request("GET", "http://a:1/p", {"Authorization": "t", "X-A": "1"}, None) == GET


# -- redirect_after -----------------------------------------------------------------------------


def location(value: str | None) -> CaseInsensitiveHeaders:
    return CaseInsensitiveHeaders({} if value is None else {"Location": value})


def test_redirect_after_a_response_that_is_not_a_redirect() -> None:
    assert redirect_after(GET, 200, location("/q"), 0, 5) is None
    assert redirect_after(GET, 300, location("/q"), 9, 5) is None


def test_redirect_after_follows_up_to_the_limit() -> None:
    for followed in range(3):
        follow = redirect_after(GET, 308, location("/q"), followed, 3)
        assert follow is not None and follow.url == "http://a:1/q"
    headers = location("/q")
    with pytest.raises(HTTPStatusError) as info:
        redirect_after(GET, 308, headers, 3, 3)
    assert info.value.status == 308 and info.value.headers == headers


def test_no_redirect_at_all_with_max_redirects_zero() -> None:
    with pytest.raises(HTTPStatusError):
        redirect_after(GET, 301, location("/q"), 0, 0)


# -- verdict ------------------------------------------------------------------------------------


def test_verdict_of_a_redirect_is_the_request_that_follows() -> None:
    follow, coding = verdict(GET, 307, location("/q"), 0, 5)
    assert follow is not None and follow.url == "http://a:1/q" and coding == "identity"


def test_verdict_of_a_stream_is_its_coding() -> None:
    headers = CaseInsensitiveHeaders({"Content-Type": ES, "Content-Encoding": "gzip"})
    assert verdict(GET, 200, headers, 0, 5) == (None, "gzip")


def test_verdict_raises_as_check_response_does() -> None:
    with pytest.raises(HTTPStatusError) as info:
        verdict(GET, 302, location(None), 0, 5)  # a redirect that cannot be followed
    assert info.value.status == 302
    with pytest.raises(ProxyError):
        verdict(GET, 407, CaseInsensitiveHeaders({}), 0, 5, via_proxy=True)


@pytest.mark.parametrize("value", [None, "", "ftp://h/"])
def test_an_unusable_location_is_left_to_check_response(value: str | None) -> None:
    # Not followed, not an error here: check_response then raises for the 3xx status.
    assert redirect_after(GET, 302, location(value), 5, 5) is None


_PROXY_NAMES = (
    *("http_proxy", "HTTP_PROXY", "Http_Proxy", "HTTP_proxy", "https_proxy", "HTTPS_PROXY"),
    *("all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"),
)


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"HTTP_PROXY": "a:1"},
        {"HTTP_PROXY": "a:1", "http_proxy": "b:2"},
        {"http_proxy": "", "HTTP_PROXY": "a:1"},
        {"HTTP_PROXY": "", "http_proxy": "b:2"},
        {"Http_Proxy": "c:3", "HTTPS_PROXY": "d:4", "NO_PROXY": "example.com"},
        {"HTTP_proxy": "", "HTTP_PROXY": "a:1", "ALL_PROXY": "e:5"},
        {"HTTP_PROXY": "a:1", "http_proxy": "b:2", "REQUEST_METHOD": "GET"},
        {"HTTP_PROXY": "a:1", "REQUEST_METHOD": "GET", "all_proxy": "f:6", "no_proxy": "*"},
    ],
)
@pytest.mark.parametrize("bytes_environ", [True, False], ids=["encoded-names", "str-names"])
def test_proxy_environment_reads_as_urllib_does(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], bytes_environ: bool
) -> None:
    import os
    import urllib.request

    # Both ways of finding the names: in the encoded names that os.environ keeps (POSIX),
    # and by iterating os.environ (elsewhere).
    monkeypatch.setattr(os, "supports_bytes_environ", bytes_environ and os.supports_bytes_environ)
    for name in (*_PROXY_NAMES, "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    expected = urllib.request.getproxies_environment()
    wanted = {k: v for k, v in expected.items() if k in ("http", "https", "all", "no")}
    assert _http._proxy_environment() == wanted

"""
Tests of the actions (:class:`Event`, :class:`Comment`, :class:`Start`, :class:`Fault`), the
exceptions, and :class:`CaseInsensitiveHeaders`.
"""

from __future__ import annotations

import copy
import operator
import pickle
import urllib.error
from collections.abc import Mapping
from email.message import Message
from typing import Any

import pytest
import urllib3

from ld_eventsource.actions import Action, Comment, Event, Fault, Start
from ld_eventsource.errors import (
    CaseInsensitiveHeaders,
    EventTooLargeError,
    ExceptionWithHeaders,
    Headers,
    HTTPContentTypeError,
    HTTPStatusError,
    StreamTimeoutError,
)

# urllib3 2 exports it; urllib3 1.26 has it only in its _collections module (so has 2).
HTTPHeaderDict: Any = (
    getattr(urllib3, "HTTPHeaderDict", None) or urllib3._collections.HTTPHeaderDict
)

PROTOCOLS = range(2, pickle.HIGHEST_PROTOCOL + 1)


def roundtrip(value: Any, protocol: int = pickle.DEFAULT_PROTOCOL) -> Any:
    return pickle.loads(pickle.dumps(value, protocol=protocol))


# ---------------------------------------------------------------------------------------------
# Event
# ---------------------------------------------------------------------------------------------


def test_event_defaults() -> None:
    event = Event()
    assert event.event == "message"
    assert event.data == ""
    assert event.id is None
    assert event.last_event_id is None
    assert isinstance(event, Action)


def test_event_keyword_construction_as_documented() -> None:
    event = Event(event="update", data="line 1\nline 2", id="42", last_event_id="42")
    assert event.event == "update"
    assert event.data == "line 1\nline 2"
    assert event.id == "42"
    assert event.last_event_id == "42"


def test_event_positional_construction_follows_the_documented_order() -> None:
    event = Event("ping", "payload", "7", "6")
    assert (event.event, event.data, event.id, event.last_event_id) == ("ping", "payload", "7", "6")
    assert Event("ping") == Event(event="ping", data="", id=None, last_event_id=None)


def test_event_partial_keywords() -> None:
    event = Event(data="hello")
    assert (event.event, event.data, event.id, event.last_event_id) == (
        "message",
        "hello",
        None,
        None,
    )
    event = Event(last_event_id="3")
    assert event.id is None
    assert event.last_event_id == "3"


def test_event_empty_strings_are_kept() -> None:
    event = Event(event="", data="", id="", last_event_id="")
    assert event.event == ""
    assert event.id == ""
    assert event.last_event_id == ""
    assert event != Event()


@pytest.mark.parametrize("name", ["event", "data", "id", "last_event_id"])
def test_event_is_immutable(name: str) -> None:
    event = Event(event="a", data="b", id="c", last_event_id="d")
    with pytest.raises(AttributeError):
        setattr(event, name, "changed")
    with pytest.raises(AttributeError):
        delattr(event, name)
    assert getattr(event, name) in {"a", "b", "c", "d"}


def test_actions_reject_new_attributes() -> None:
    for action in (Event(), Comment("x"), Start(), Fault(None)):
        with pytest.raises(AttributeError):
            action.extra = 1  # type: ignore[union-attr]
        assert not hasattr(action, "__dict__")


def test_event_equality_by_value() -> None:
    assert Event() == Event()
    assert Event(event="a", data="b", id="c", last_event_id="d") == Event("a", "b", "c", "d")
    assert not operator.ne(Event(), Event())
    assert Event(data="x") != Event(data="y")
    assert Event(event="x") != Event(event="y")
    assert Event(id="1") != Event(id="2")
    assert Event(last_event_id="1") != Event(last_event_id="2")
    assert Event(id="1") != Event(last_event_id="1")
    assert Event(id=None) != Event(id="")


def test_actions_equal_only_to_the_same_class() -> None:
    event = Event()
    assert event != ("message", "", None, None)
    # Both operand orders: a plain tuple on the left must not match either.
    assert operator.ne(("message", "", None, None), event)
    assert not operator.eq(event, ("message", "", None, None))
    assert not operator.eq(("message", "", None, None), event)
    assert event != ["message", "", None, None]
    assert Comment("x") != ("x",)
    assert operator.ne(("x",), Comment("x"))
    assert Comment("x") != Event("x")
    assert Comment("x") != Event(data="x")
    assert Event(data="x") != Comment("x")
    assert Start(None) != Fault(None)
    assert Fault(None) != Start(None)
    assert Start() != Comment("x")
    assert Event() != "message"
    assert Event() is not None
    assert Comment("") != ""


def test_actions_are_hashable() -> None:
    assert hash(Event()) == hash(Event())
    assert hash(Event("a", "b", "c", "d")) == hash(
        Event(event="a", data="b", id="c", last_event_id="d")
    )
    assert hash(Comment("x")) == hash(Comment("x"))
    assert hash(Start()) == hash(Start(None))
    assert hash(Fault(None)) == hash(Fault(None))
    actions = {Event(), Event(), Comment("x"), Comment("x"), Start(), Fault(None)}
    assert len(actions) == 4
    assert {Event(data="d"): 1}[Event(data="d")] == 1
    error = ValueError("x")
    assert hash(Fault(error)) == hash(Fault(error))


def test_event_repr_is_readable() -> None:
    text = repr(Event(event="update", data="hello\nworld", id="7", last_event_id="7"))
    assert text.startswith("Event(")
    assert "\n" not in text
    for part in ("event=", "update", "data=", "hello", "world", "id=", "7", "last_event_id="):
        assert part in text
    default = repr(Event())
    assert default.startswith("Event(")
    assert "message" in default
    assert "None" in default


def test_comment() -> None:
    comment = Comment("keep-alive")
    assert comment.comment == "keep-alive"
    assert isinstance(comment, Action)
    assert Comment(comment="x") == Comment("x")
    assert Comment("").comment == ""
    assert Comment("a") != Comment("b")
    with pytest.raises(AttributeError):
        comment.comment = "other"
    text = repr(comment)
    assert text.startswith("Comment(")
    assert "keep-alive" in text
    assert "\n" not in repr(Comment("a\nb"))


# ---------------------------------------------------------------------------------------------
# Start
# ---------------------------------------------------------------------------------------------


def test_start_headers_are_case_insensitive() -> None:
    start = Start({"Content-Type": "text/event-stream", "X-RateLimit-Remaining": "10"})
    headers = start.headers
    assert headers is not None
    assert isinstance(headers, Mapping)
    assert headers.get("content-type") == "text/event-stream"
    assert headers.get("Content-Type") == "text/event-stream"
    assert headers.get("CONTENT-TYPE") == "text/event-stream"
    assert headers["x-ratelimit-remaining"] == "10"
    assert headers.get("server") is None
    assert "content-type" in headers


def test_start_headers_default_none() -> None:
    assert Start().headers is None
    assert Start(None).headers is None
    assert Start(headers=None) == Start()
    assert isinstance(Start(), Action)


def test_start_accepts_any_header_mapping() -> None:
    raw = HTTPHeaderDict()
    raw.add("Content-Type", "text/event-stream")
    raw.add("Set-Cookie", "a=1")
    raw.add("set-cookie", "b=2")
    headers = Start(raw).headers
    assert headers is not None
    assert headers.get("content-type") == "text/event-stream"
    assert headers["SET-COOKIE"] == "a=1, b=2"
    existing = CaseInsensitiveHeaders({"A": "1"})
    assert Start(existing).headers == existing


def test_start_headers_are_read_only() -> None:
    start = Start({"A": "1"})
    headers: Any = start.headers
    with pytest.raises(TypeError):
        headers["B"] = "2"
    with pytest.raises(AttributeError):
        start.headers = None  # type: ignore[misc]


def test_start_equality_ignores_header_name_case() -> None:
    assert Start({"Content-Type": "text/event-stream"}) == Start(
        {"content-type": "text/event-stream"}
    )
    assert hash(Start({"Content-Type": "a"})) == hash(Start({"CONTENT-TYPE": "a"}))
    assert Start({"A": "1"}) != Start({"A": "2"})
    assert Start({"A": "1"}) != Start()
    assert Start({}) != Start()


def test_start_repr_is_readable() -> None:
    text = repr(Start({"Content-Type": "text/event-stream"}))
    assert text.startswith("Start(")
    assert "Content-Type" in text
    assert "text/event-stream" in text
    assert repr(Start()).startswith("Start(")


# ---------------------------------------------------------------------------------------------
# Fault
# ---------------------------------------------------------------------------------------------


def test_fault_none_is_an_orderly_end() -> None:
    fault = Fault(None)
    assert fault.error is None
    assert fault.headers is None
    assert isinstance(fault, Action)


def test_fault_with_an_error_without_headers() -> None:
    error = ValueError("boom")
    fault = Fault(error)
    assert fault.error is error
    assert fault.headers is None
    assert Fault(EventTooLargeError(10)).headers is None
    assert Fault(StreamTimeoutError(5)).headers is None


def test_fault_headers_from_http_status_error() -> None:
    error = HTTPStatusError(503, {"Retry-After": "120"})
    fault = Fault(error)
    assert fault.error is error
    assert fault.headers is error.headers
    assert fault.headers is not None
    assert fault.headers.get("retry-after") == "120"
    assert Fault(HTTPStatusError(500)).headers is None


def test_fault_headers_from_http_content_type_error() -> None:
    error = HTTPContentTypeError("text/html", {"Content-Type": "text/html"})
    fault = Fault(error)
    assert fault.headers is not None
    assert fault.headers.get("content-type") == "text/html"


class CustomHeadersError(Exception):
    """An exception of another library that carries response headers."""

    def __init__(self, headers: Any) -> None:
        super().__init__("custom")
        self.headers = headers


def test_any_exception_with_headers_satisfies_the_protocol() -> None:
    assert isinstance(HTTPStatusError(500), ExceptionWithHeaders)
    assert isinstance(HTTPContentTypeError("text/html"), ExceptionWithHeaders)
    assert isinstance(CustomHeadersError({"A": "1"}), ExceptionWithHeaders)
    assert not isinstance(ValueError(), ExceptionWithHeaders)
    assert not isinstance(EventTooLargeError(1), ExceptionWithHeaders)


def test_fault_headers_from_any_exception_with_headers() -> None:
    headers = CaseInsensitiveHeaders({"X-Request-Id": "abc"})
    fault = Fault(CustomHeadersError(headers))
    assert fault.headers == headers
    assert fault.headers is not None
    assert fault.headers.get("x-request-id") == "abc"
    assert Fault(CustomHeadersError(None)).headers is None


def test_fault_headers_from_an_exception_with_plain_dict_headers_are_case_insensitive() -> None:
    # Headers, as handed out by the clients, look names up case-insensitively whatever the
    # exception stored.
    fault = Fault(CustomHeadersError({"X-Request-Id": "abc"}))
    headers = fault.headers
    assert headers is not None
    assert headers.get("X-Request-Id") == "abc"
    assert headers.get("x-request-id") == "abc"


def test_fault_headers_from_urllib_http_error() -> None:
    # A standard-library exception whose headers are an email.message.Message.
    message = Message()
    message["Content-Type"] = "text/html"
    error = urllib.error.HTTPError("http://example.com", 502, "Bad Gateway", message, None)
    try:
        fault = Fault(error)
        headers = fault.headers
        assert headers is not None
        assert headers.get("content-type") == "text/html"
    finally:
        error.close()


def test_fault_equality_and_repr() -> None:
    error = ValueError("boom")
    assert Fault(error) == Fault(error)
    assert Fault(error) != Fault(ValueError("boom"))  # exceptions compare by identity
    assert Fault(None) == Fault(None)
    assert Fault(error) != Fault(None)
    text = repr(Fault(error))
    assert text.startswith("Fault(")
    assert "ValueError" in text
    assert "boom" in text
    assert repr(Fault(None)).startswith("Fault(")
    with pytest.raises(AttributeError):
        Fault(error).error = None  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Pickling and copying
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "action",
    [
        Event(),
        Event(event="e", data="d\nd", id="i", last_event_id="l"),
        Event(data="ünïcødé ✓"),
        Comment("c"),
        Start(),
        Start({"Content-Type": "text/event-stream", "X-A": "1"}),
        Fault(None),
    ],
)
def test_actions_pickle_roundtrip(action: Action, protocol: int) -> None:
    copied = roundtrip(action, protocol)
    assert type(copied) is type(action)
    assert copied == action
    assert hash(copied) == hash(action)
    assert copy.copy(action) == action
    assert copy.deepcopy(action) == action


def test_start_headers_survive_pickling() -> None:
    copied = roundtrip(Start({"Content-Type": "text/event-stream"}))
    assert copied.headers.get("content-type") == "text/event-stream"
    assert isinstance(copied.headers, CaseInsensitiveHeaders)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fault_with_error_pickle_roundtrip(protocol: int) -> None:
    fault = Fault(HTTPStatusError(429, {"Retry-After": "5"}))
    copied = roundtrip(fault, protocol)
    assert isinstance(copied, Fault)
    assert isinstance(copied.error, HTTPStatusError)
    assert copied.error.status == 429
    assert copied.headers is not None
    assert copied.headers.get("retry-after") == "5"
    assert str(copied.error) == str(fault.error)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_pickle_roundtrip(protocol: int) -> None:
    status = roundtrip(HTTPStatusError(503, {"Retry-After": "1"}), protocol)
    assert isinstance(status, HTTPStatusError)
    assert status.status == 503
    assert status.headers == {"retry-after": "1"}
    assert str(status) == "HTTP error 503"

    no_headers = roundtrip(HTTPStatusError(404), protocol)
    assert no_headers.status == 404
    assert no_headers.headers is None

    content_type = roundtrip(
        HTTPContentTypeError("text/html", {"Content-Type": "text/html"}), protocol
    )
    assert isinstance(content_type, HTTPContentTypeError)
    assert content_type.content_type == "text/html"
    assert content_type.headers is not None
    assert content_type.headers.get("content-type") == "text/html"
    assert str(content_type) == 'invalid content type "text/html"'

    too_large = roundtrip(EventTooLargeError(1024), protocol)
    assert isinstance(too_large, EventTooLargeError)
    assert too_large.max_size == 1024
    assert str(too_large) == str(EventTooLargeError(1024))

    timeout = roundtrip(StreamTimeoutError(2.5), protocol)
    assert isinstance(timeout, StreamTimeoutError)
    assert timeout.timeout == 2.5
    assert str(timeout) == str(StreamTimeoutError(2.5))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_case_insensitive_headers_pickle_roundtrip(protocol: int) -> None:
    headers = CaseInsensitiveHeaders([("Set-Cookie", "a"), ("set-cookie", "b"), ("X", "1")])
    copied = roundtrip(headers, protocol)
    assert copied == headers
    assert list(copied) == ["Set-Cookie", "X"]
    assert copied["SET-COOKIE"] == "a, b"


# ---------------------------------------------------------------------------------------------
# Exceptions
# ---------------------------------------------------------------------------------------------


def test_http_status_error() -> None:
    error = HTTPStatusError(503, {"Retry-After": "120", "Content-Type": "text/plain"})
    assert isinstance(error, Exception)
    assert error.status == 503
    assert error.headers is not None
    assert error.headers.get("retry-after") == "120"
    assert error.headers.get("RETRY-AFTER") == "120"
    assert error.headers["content-type"] == "text/plain"
    assert str(error) == "HTTP error 503"
    assert "503" in repr(error)


def test_http_status_error_as_in_the_documented_example() -> None:
    try:
        raise HTTPStatusError(429, {"Retry-After": "30"})
    except HTTPStatusError as e:
        assert e.status == 429
        assert e.headers is not None
        assert e.headers.get("Retry-After") == "30"
        assert f"HTTP {e.status}: {e}" == "HTTP 429: HTTP error 429"


def test_http_status_error_keyword_arguments_and_defaults() -> None:
    error = HTTPStatusError(status=204, headers=None)
    assert error.status == 204
    assert error.headers is None
    assert HTTPStatusError(400).headers is None
    assert str(HTTPStatusError(400)) == "HTTP error 400"


def test_http_content_type_error() -> None:
    error = HTTPContentTypeError(
        "text/html; charset=utf-8", {"Content-Type": "text/html; charset=utf-8"}
    )
    assert isinstance(error, Exception)
    assert error.content_type == "text/html; charset=utf-8"
    assert error.headers is not None
    assert error.headers.get("content-type") == "text/html; charset=utf-8"
    assert str(error) == 'invalid content type "text/html; charset=utf-8"'
    empty = HTTPContentTypeError(content_type="", headers=None)
    assert empty.content_type == ""
    assert empty.headers is None


def test_event_too_large_error() -> None:
    error = EventTooLargeError(16 * 1024 * 1024)
    assert isinstance(error, Exception)
    assert error.max_size == 16 * 1024 * 1024
    assert str(16 * 1024 * 1024) in str(error)
    assert EventTooLargeError(max_size=5).max_size == 5


def test_stream_timeout_error_is_a_timeout_error() -> None:
    error = StreamTimeoutError(5)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, OSError)
    assert error.timeout == 5
    assert "5" in str(error)
    assert StreamTimeoutError(timeout=0.25).timeout == 0.25
    assert "0.25" in str(StreamTimeoutError(0.25))
    with pytest.raises(TimeoutError):
        raise StreamTimeoutError(1)


def test_errors_are_read_only() -> None:
    error = HTTPStatusError(500)
    with pytest.raises(AttributeError):
        error.status = 200  # type: ignore[misc]
    with pytest.raises(AttributeError):
        error.headers = {}  # type: ignore[misc]
    with pytest.raises(AttributeError):
        EventTooLargeError(1).max_size = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        StreamTimeoutError(1).timeout = 2  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# CaseInsensitiveHeaders
# ---------------------------------------------------------------------------------------------


def test_case_insensitive_headers_mapping_behaviour() -> None:
    headers = CaseInsensitiveHeaders({"Content-Type": "text/event-stream", "X-Id": "1"})
    assert isinstance(headers, Mapping)
    assert len(headers) == 2
    assert list(headers) == ["Content-Type", "X-Id"]  # as the server spelled them
    assert headers["content-type"] == "text/event-stream"
    assert headers["CONTENT-TYPE"] == "text/event-stream"
    assert headers.get("x-id") == "1"
    assert headers.get("missing") is None
    assert headers.get("missing", "default") == "default"
    assert "x-ID" in headers
    assert "missing" not in headers
    non_str_keys: list[object] = [1, None, b"x-id"]
    for key in non_str_keys:
        assert key not in headers
    with pytest.raises(KeyError):
        headers["missing"]
    assert list(headers.keys()) == ["Content-Type", "X-Id"]
    assert list(headers.values()) == ["text/event-stream", "1"]
    assert list(headers.items()) == [("Content-Type", "text/event-stream"), ("X-Id", "1")]
    assert dict(headers) == {"Content-Type": "text/event-stream", "X-Id": "1"}


def test_case_insensitive_headers_empty() -> None:
    for headers in (
        CaseInsensitiveHeaders(),
        CaseInsensitiveHeaders(None),
        CaseInsensitiveHeaders({}),
    ):
        assert len(headers) == 0
        assert list(headers) == []
        assert headers == {}
        assert headers.get("a") is None


def test_case_insensitive_headers_join_repeated_names() -> None:
    headers = CaseInsensitiveHeaders(
        [("Set-Cookie", "a=1"), ("X-One", "x"), ("set-cookie", "b=2"), ("SET-COOKIE", "c=3")]
    )
    assert len(headers) == 2
    assert headers["set-cookie"] == "a=1, b=2, c=3"
    assert list(headers) == ["Set-Cookie", "X-One"]  # first spelling kept
    merged = CaseInsensitiveHeaders({"Accept": "a", "accept": "b"})
    assert merged["ACCEPT"] == "a, b"


def test_case_insensitive_headers_from_urllib3_header_dict() -> None:
    raw = HTTPHeaderDict()
    raw.add("Link", "<a>")
    raw.add("link", "<b>")
    raw.add("Server", "x")
    headers = CaseInsensitiveHeaders(raw)
    assert headers["LINK"] == "<a>, <b>"
    assert headers["server"] == "x"
    assert len(headers) == 2


def test_case_insensitive_headers_copy_from_another() -> None:
    original = CaseInsensitiveHeaders([("A", "1"), ("a", "2")])
    copied = CaseInsensitiveHeaders(original)
    assert copied == original
    assert copied["a"] == "1, 2"
    assert list(copied) == ["A"]


def test_case_insensitive_headers_equality_ignores_case() -> None:
    headers = CaseInsensitiveHeaders({"Content-Type": "text/event-stream"})
    assert headers == CaseInsensitiveHeaders({"content-type": "text/event-stream"})
    assert headers == {"CONTENT-TYPE": "text/event-stream"}
    assert operator.eq({"CONTENT-TYPE": "text/event-stream"}, headers)
    assert headers != {"content-type": "text/plain"}
    assert headers != {"content-type": "text/event-stream", "x": "1"}
    assert headers != CaseInsensitiveHeaders()
    assert headers != [("Content-Type", "text/event-stream")]
    assert headers != "Content-Type"
    assert headers is not None
    # Values are compared exactly: only names ignore case.
    assert headers != {"content-type": "TEXT/EVENT-STREAM"}


def test_case_insensitive_headers_hash() -> None:
    a = CaseInsensitiveHeaders({"Content-Type": "text/event-stream", "X": "1"})
    b = CaseInsensitiveHeaders({"x": "1", "content-type": "text/event-stream"})
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert hash(CaseInsensitiveHeaders()) == hash(CaseInsensitiveHeaders({}))


def test_case_insensitive_headers_is_read_only() -> None:
    headers: Any = CaseInsensitiveHeaders({"A": "1"})
    with pytest.raises(TypeError):
        headers["B"] = "2"
    with pytest.raises(TypeError):
        del headers["A"]
    with pytest.raises(AttributeError):
        headers.other = 1
    assert not hasattr(headers, "update")
    assert not hasattr(headers, "pop")


def test_case_insensitive_headers_repr() -> None:
    text = repr(CaseInsensitiveHeaders({"Content-Type": "text/event-stream"}))
    assert text.startswith("CaseInsensitiveHeaders(")
    assert "Content-Type" in text
    assert "text/event-stream" in text


def test_headers_alias_accepts_case_insensitive_headers() -> None:
    headers: Headers = CaseInsensitiveHeaders({"A": "1"})
    assert isinstance(headers, Mapping)

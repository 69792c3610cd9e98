"""The shared HTTP rules of both transports (``_http``) and the decompressor, without I/O."""

from __future__ import annotations

import gzip
import zlib

import pytest

from ld_eventsource._decompress import PIECE, Decompressor
from ld_eventsource._http import HttpParams, Request, check_response, redirect
from ld_eventsource.errors import CaseInsensitiveHeaders, HTTPProtocolError

ES = "text/event-stream"


def check(headers: list[tuple[str, str]]) -> str:
    return check_response(200, CaseInsensitiveHeaders(headers), ES)


@pytest.mark.parametrize(
    ("headers", "coding"),
    [
        ([], "identity"),
        ([("Content-Encoding", "GZIP")], "gzip"),
        ([("Content-Encoding", "identity, deflate")], "deflate"),
        ([("Transfer-Encoding", "Chunked")], "identity"),
        ([("Content-Length", "10"), ("Content-Length", "10")], "identity"),
    ],
)
def test_acceptable_framing(headers: list[tuple[str, str]], coding: str) -> None:
    assert check(headers) == coding


@pytest.mark.parametrize(
    "headers",
    [
        [("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
        [("Transfer-Encoding", "gzip, chunked")],
        [("Transfer-Encoding", "identity")],
        [("Content-Length", "1"), ("Content-Length", "2")],
        [("Content-Length", "+1")],
        [("Content-Length", "\u0661")],  # a digit, but not an ASCII one
        [("Content-Encoding", "compress")],
        [("Content-Encoding", "gzip, gzip")],
    ],
)
def test_forbidden_or_unsupported_framing(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(HTTPProtocolError) as info:
        check(headers)
    assert info.value.headers == CaseInsensitiveHeaders(headers)


def post(url: str = "http://127.0.0.1:8000/a/b") -> Request:
    return Request(
        "POST",
        url,
        {
            "Authorization": "Bearer x",
            "Cookie": "c=1",
            "Proxy-Authorization": "p",
            "Content-Type": "application/json",
            "Last-Event-ID": b"7",
        },
        b"{}",
    )


def test_relative_redirect_keeps_everything_on_307() -> None:
    follow = redirect(post(), 307, "../c?x=1#frag")
    assert follow == Request("POST", "http://127.0.0.1:8000/c?x=1", post().headers, b"{}")


@pytest.mark.parametrize("status", [301, 302, 303])
def test_post_becomes_get_without_body(status: int) -> None:
    follow = redirect(post(), status, "/c")
    assert follow is not None
    assert (follow.method, follow.body) == ("GET", None)
    assert "Content-Type" not in follow.headers
    assert follow.headers["Last-Event-ID"] == b"7"


def test_other_methods_keep_their_body_on_301_but_not_on_303() -> None:
    report = Request("REPORT", "http://h/", {"Content-Type": "a/b"}, b"q")
    assert redirect(report, 301, "/x") == Request("REPORT", "http://h/x", report.headers, b"q")
    assert redirect(report, 303, "/x") == Request("GET", "http://h/x", {}, None)


@pytest.mark.parametrize(
    ("location", "same"),
    [
        ("http://127.0.0.1:8000/x", True),
        ("HTTP://127.0.0.1:8000/x", True),
        ("http://localhost:8000/x", False),
        ("http://127.0.0.1:8001/x", False),
        ("https://127.0.0.1:8000/x", False),
        ("//example.com/x", False),
    ],
)
def test_credentials_stay_with_their_origin(location: str, same: bool) -> None:
    follow = redirect(post(), 308, location)
    assert follow is not None
    kept = {"Authorization", "Cookie", "Proxy-Authorization"} <= set(follow.headers)
    assert kept is same
    assert follow.headers["Content-Type"] == "application/json"


def test_default_ports_are_the_same_origin() -> None:
    follow = redirect(post("https://h/a"), 307, "https://h:443/b")
    assert follow is not None and "Authorization" in follow.headers


@pytest.mark.parametrize(
    "location", [None, "", "  ", "ftp://h/x", "file:///etc/passwd", "http://[::1", "http://h:x/"]
)
def test_unusable_locations(location: str | None) -> None:
    assert redirect(post(), 302, location) is None


def test_not_a_redirect_status() -> None:
    assert redirect(post(), 300, "/x") is None
    assert redirect(post(), 304, "/x") is None


def test_decompressor_bounds_every_piece() -> None:
    raw = b"data: " + b"x" * (8 * 1024 * 1024)
    wire = gzip.compress(raw)
    assert len(wire) < 16 * 1024
    pieces = list(Decompressor("gzip").feed(wire))
    assert max(len(p) for p in pieces) <= PIECE
    assert b"".join(pieces) == raw


def test_decompressor_is_lazy() -> None:
    # Nothing is decompressed before it is asked for: one piece, not the whole bomb.
    pieces = Decompressor("gzip").feed(gzip.compress(b"\0" * (64 * 1024 * 1024)))
    assert len(next(pieces)) <= PIECE


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_with_and_without_zlib_header(wbits: int) -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    wire = compressor.compress(b"data: x\n\n") + compressor.flush()
    decompressor = Decompressor("deflate")
    out = b"".join(piece for i in range(len(wire)) for piece in decompressor.feed(wire[i : i + 1]))
    assert out == b"data: x\n\n"


def test_gzip_members_one_after_the_other() -> None:
    wire = gzip.compress(b"data: a\n\n") + gzip.compress(b"data: b\n\n")
    assert b"".join(Decompressor("x-gzip").feed(wire)) == b"data: a\n\ndata: b\n\n"


def test_a_broken_gzip_body_is_a_protocol_error() -> None:
    with pytest.raises(HTTPProtocolError, match="invalid gzip body"):
        list(Decompressor("gzip").feed(b"not gzip at all"))


# --- one definition of the options of both http() factories ---------------------------------


def test_both_factories_take_the_same_options() -> None:
    # HttpParams reads the factory's arguments by name: the shared ones must be spelled,
    # placed and defaulted alike, and each factory's own two are its pool (or session) and
    # its transport's keyword arguments.
    import inspect

    from ld_eventsource.config import AsyncConnectStrategy, ConnectStrategy

    sync = inspect.signature(ConnectStrategy.http).parameters
    async_ = inspect.signature(AsyncConnectStrategy.http).parameters
    own = {"pool", "urllib3_request_options", "session", "aiohttp_request_options"}
    shared = [(p.name, p.kind, p.default) for p in sync.values() if p.name not in own]
    assert shared == [(p.name, p.kind, p.default) for p in async_.values() if p.name not in own]
    fields = set(HttpParams.__dataclass_fields__) - {"request_options"}
    assert {name for name, _, _ in shared} == fields
    assert [p.name for p in sync.values()][:5] == [
        "url", "headers", "pool", "urllib3_request_options", "query_params"
    ]  # fmt: skip
    assert [p.name for p in async_.values()][:5] == [
        "url", "headers", "session", "aiohttp_request_options", "query_params"
    ]  # fmt: skip

"""
The pieces of the ``sse`` tool, each alone: argument parsing, the output formats, the
``--field`` lookup, the reconnection decision, the failure descriptions, the state file and
the stats line. tests/test_cli.py runs the whole tool as a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import re
import ssl
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from urllib3.exceptions import NewConnectionError

from ld_eventsource._cli.args import DEFAULT_MAX_ATTEMPTS, UsageError, parse_header, parse_options
from ld_eventsource._cli.formats import (
    NO_VALUE,
    FieldPath,
    make_formatter,
    render_value,
    rfc3339,
    use_color,
)
from ld_eventsource._cli.report import Stats, describe, status_text
from ld_eventsource._cli.run import EXIT_FAILED, EXIT_OK, decide, is_permanent
from ld_eventsource._cli.state import StateFile, StateFileError
from ld_eventsource._parser import SSEParser
from ld_eventsource.actions import Comment, Event
from ld_eventsource.errors import (
    EventTooLargeError,
    HTTPContentTypeError,
    HTTPStatusError,
    StreamTimeoutError,
)

URL = "http://127.0.0.1:8080/stream"

# ---------------------------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------------------------


def test_defaults() -> None:
    opts = parse_options([URL])
    assert opts.url == URL
    assert opts.method == "GET"
    assert opts.headers == {}
    assert opts.body is None
    assert opts.max_attempts == DEFAULT_MAX_ATTEMPTS == 5
    assert opts.reconnect and opts.reconnect_on_end
    assert opts.format == "pretty"
    assert opts.color == "auto"
    assert opts.retry_delay == 1.0
    assert opts.field is None
    assert opts.events == frozenset()
    assert opts.warnings == ()


def test_url_without_scheme_is_http() -> None:
    assert parse_options(["localhost:8080/events"]).url == "http://localhost:8080/events"


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://", "no host"), ("localhost:99999", "Port out of range"), ("http://h:x/", "bad URL")],
)
def test_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        parse_options([url])


def test_headers_are_parsed_and_repeated_names_joined() -> None:
    opts = parse_options(
        [URL, "-H", "Authorization: Bearer t", "-H", "X-Tag: a", "-H", "x-tag:b", "-H", "Empty:"]
    )
    assert opts.headers == {"Authorization": "Bearer t", "X-Tag": "a, b", "Empty": ""}


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("NoColon", "expected 'Name: value'"),
        (": value", "not a valid header name"),
        ("Bad Name: value", "not a valid header name"),
        ("X-A: one\ntwo", "line break"),
        ("X-A: \u263a", "Latin-1"),
    ],
)
def test_malformed_headers(header: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        parse_header(header)
    with pytest.raises(UsageError, match=reason):
        parse_options([URL, "-H", header])


def test_fixed_headers_are_ignored_with_a_warning() -> None:
    opts = parse_options([URL, "-H", "Accept: application/json", "-H", "X: y"])
    assert opts.headers == {"X": "y"}
    assert len(opts.warnings) == 1
    assert "Accept" in opts.warnings[0]


def test_data_makes_a_post(tmp_path: Path) -> None:
    opts = parse_options([URL, "-d", "hello"])
    assert (opts.method, opts.body) == ("POST", b"hello")
    assert not opts.reconnect_on_end
    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00\xff bytes")
    assert parse_options([URL, "-d", f"@{body}"]).body == b"\x00\xff bytes"
    assert parse_options([URL, "-d", "@-"], stdin=io.BytesIO(b"from stdin")).body == b"from stdin"
    assert parse_options([URL, "-X", "put", "-d", "x"]).method == "PUT"
    assert parse_options([URL, "-X", "REPORT"]).method == "REPORT"


def test_unreadable_data_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(UsageError, match=r"-d @.*missing\.json: cannot read: No such file"):
        parse_options([URL, "-d", f"@{missing}"])
    with pytest.raises(UsageError, match="cannot read"):
        parse_options([URL, "--json", f"@{tmp_path}"])  # a directory


def test_json_body() -> None:
    opts = parse_options([URL, "--json", '{"stream": true}'])
    assert opts.method == "POST"
    assert opts.body == b'{"stream": true}'
    assert opts.headers == {"Content-Type": "application/json"}
    opts = parse_options([URL, "--json", "[]", "-H", "content-type: application/x+json"])
    assert opts.headers == {"content-type": "application/x+json"}
    with pytest.raises(UsageError, match="--json: not valid JSON"):
        parse_options([URL, "--json", "{oops"])
    with pytest.raises(UsageError, match="--json: nested too deeply"):
        parse_options([URL, "--json", "[" * 100_000 + "]" * 100_000])


@pytest.mark.parametrize(
    "argv",
    [
        ["--timeout", "0"],
        ["--timeout", "-1"],
        ["--timeout", "nan"],
        ["--read-timeout", "inf"],
        ["--connect-timeout", "soon"],
        ["--retry-delay", "-0.5"],
        ["-n", "0"],
        ["-n", "1.5"],
        ["--max-attempts", "0"],
        ["--forever", "--max-attempts", "3"],
        ["--forever", "--no-reconnect"],
        ["-d", "x", "--json", "{}"],
        ["-v", "-q"],
        ["--format", "yaml"],
        ["--color", "sometimes"],
        ["--no-such-option"],
        ["--field", ""],
        ["--field", "a..b"],
        ["--field", ".a"],
        ["--field", "a", "--format", "raw"],
        ["--comments", "--format", "data"],
        ["--comments", "--format", "text"],
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_options([URL, *argv])


def test_missing_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="URL"):
        parse_options([])


def test_numbers_and_limits() -> None:
    opts = parse_options(
        [URL, "--timeout", "2.5", "--read-timeout", "3", "--retry-delay", "0", "-n", "7"]
    )
    assert (opts.timeout, opts.read_timeout, opts.retry_delay, opts.count) == (2.5, 3.0, 0.0, 7)
    assert parse_options([URL, "--max-attempts", "2"]).max_attempts == 2
    assert parse_options([URL, "--forever"]).max_attempts is None
    no_reconnect = parse_options([URL, "--no-reconnect"])
    assert no_reconnect.max_attempts == 1
    assert not no_reconnect.reconnect_on_end


def test_selection_options() -> None:
    opts = parse_options([URL, "-e", "a", "--event", "b", "--until", "[DONE]", "--comments"])
    assert opts.events == {"a", "b"}
    assert opts.until == "[DONE]"
    assert opts.comments


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_options(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(
        r"sse \(launchdarkly-eventsource\) \d+\.\d+\.\d+\S*\n", capsys.readouterr().out
    )


def test_help_mentions_serve_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_options(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "sse serve" in out
    assert "exit status" in out
    assert "--field" in out


# ---------------------------------------------------------------------------------------------
# --field
# ---------------------------------------------------------------------------------------------


def test_field_path_lookup() -> None:
    chunk = {"choices": [{"delta": {"content": "Hi"}}, {"delta": {}}], "n": 0, "z": None}
    assert FieldPath.parse("choices.0.delta.content").lookup(chunk) == "Hi"
    assert FieldPath.parse("choices.-1.delta").lookup(chunk) == {}
    assert FieldPath.parse("n").lookup(chunk) == 0
    for missing in ("choices.1.delta.content", "choices.2", "choices.-3", "n.x", "z", "nope"):
        assert FieldPath.parse(missing).lookup(chunk) is NO_VALUE, missing
    assert FieldPath.parse("choices.x").lookup(chunk) is NO_VALUE
    assert FieldPath.parse("0").lookup({"0": "key, not index"}) == "key, not index"
    assert FieldPath.parse("a").lookup("not an object") is NO_VALUE


def test_render_value() -> None:
    assert render_value("text\n") == "text\n"
    assert render_value({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert render_value(1.5) == "1.5"
    assert render_value(False) == "false"


# ---------------------------------------------------------------------------------------------
# Output formats
# ---------------------------------------------------------------------------------------------

T = 1767225600.25  # 2026-01-01T00:00:00.25Z


def test_rfc3339() -> None:
    assert rfc3339(T) == "2026-01-01T00:00:00.250000Z"
    for timestamp in (0.0, 951782400.123, 1767225599.9999996, T + 0.000_000_4, 4102444800.5):
        expected = datetime.fromtimestamp(timestamp, timezone.utc)
        assert rfc3339(timestamp) == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), timestamp


def test_pretty_plain() -> None:
    pretty = make_formatter("pretty")
    assert pretty.event(Event("update", "a\n\nb", "7", "7"), T) == "update id=7\n  a\n\n  b\n"
    assert pretty.event(Event(data="one"), T) == "message\n  one\n"
    assert pretty.event(Event(data=""), T) == "message\n"
    assert pretty.event(Event(data="x", id=""), T) == "message id=\n  x\n"
    assert pretty.event(Event(data="{}"), T, {"k": 1}) == 'message\n  {"k":1}\n'
    assert pretty.comment(" ping", T) == ": ping\n"
    assert pretty.finish() == ""


def test_pretty_escapes_control_characters() -> None:
    pretty = make_formatter("pretty")
    assert pretty.event(Event("t\x1b", "\x1b[2Jx\tq", "\x07"), T) == (
        "t\\x1b id=\\x07\n  \\x1b[2Jx\tq\n"
    )


def test_pretty_color() -> None:
    pretty = make_formatter("pretty", color=True)
    text = pretty.event(Event("tick", "a", "1", "1"), T)
    assert text == "\x1b[1;36mtick\x1b[0m \x1b[33mid=1\x1b[0m\n  a\n"
    assert pretty.comment("c", T) == "\x1b[2m:c\x1b[0m\n"


def test_json_fields() -> None:
    fmt = make_formatter("json")
    line = fmt.event(Event("tick", "a\nb", None, "4"), T)
    assert line.endswith("\n") and line.count("\n") == 1
    assert list(json.loads(line).items()) == [
        ("type", "tick"),
        ("data", "a\nb"),
        ("id", None),
        ("last_event_id", "4"),
        ("time", "2026-01-01T00:00:00.250000Z"),
    ]
    with_value = json.loads(fmt.event(Event(data='{"a":[2]}'), T, [2]))
    assert with_value["value"] == [2]
    assert with_value["data"] == '{"a":[2]}'
    assert json.loads(fmt.comment("hi", T)) == {"comment": "hi", "time": rfc3339(T)}
    assert "é" in fmt.event(Event(data="é"), T)  # UTF-8, not \\u escapes


@given(
    st.text(),
    st.text(),
    st.none() | st.text(),
    st.none() | st.text(),
    st.none() | st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists),
)
def test_json_lines_are_json(
    kind: str, data: str, id: str | None, last: str | None, value: object
) -> None:
    fmt = make_formatter("json")
    line = fmt.event(Event(kind, data, id, last), T, NO_VALUE if value is None else value)
    assert line.endswith("}\n")
    assert "\n" not in line[:-1]
    expected: dict[str, object] = {
        "type": kind,
        "data": data,
        "id": id,
        "last_event_id": last,
        "time": rfc3339(T),
    }
    if value is not None:
        expected["value"] = value
    assert json.loads(line) == expected
    assert json.loads(fmt.comment(data, T)) == {"comment": data, "time": rfc3339(T)}


def test_data_format() -> None:
    fmt = make_formatter("data")
    assert fmt.event(Event(data="a\nb"), T) == "a\nb\n"
    assert fmt.event(Event(data="{}"), T, "piece") == "piece\n"
    assert fmt.event(Event(data="{}"), T, {"x": 1}) == '{"x":1}\n'


def test_text_format_assembles_pieces() -> None:
    piped = make_formatter("text")
    pieces = [piped.event(Event(data="{}"), T, v) for v in ("Hel", "lo", ", ", "world")]
    assert "".join(pieces) == "Hello, world"
    assert piped.finish() == ""
    terminal = make_formatter("text", terminal=True)
    assert terminal.finish() == ""  # nothing written: nothing to end
    terminal.event(Event(data="end"), T)
    assert terminal.finish() == "\n"
    terminal.event(Event(data="line\n"), T)
    assert terminal.finish() == ""


def test_raw_format_reads_back_as_the_same_events() -> None:
    events = [
        Event("message", "plain", None, None),
        Event("update", "two\nlines", "1", "1"),
        Event("message", " leading space", "", ""),
        Event("message", "", "x", "x"),
        Event("message", "\n", None, "x"),
        Event("msg", "é ü", "ид", "ид"),
    ]
    raw = make_formatter("raw")
    wire = "".join(raw.event(e, T) for e in events) + raw.comment(" note", T)
    assert wire.startswith("data: plain\n\nevent: update\nid: 1\ndata: two\ndata: lines\n\n")
    parsed = [
        item for item in SSEParser().feed(wire.encode("utf-8")) if type(item) in (Event, Comment)
    ]
    assert parsed == [*events, Comment(" note")]


def test_use_color() -> None:
    assert use_color("auto", terminal=True, no_color=False)
    assert not use_color("auto", terminal=True, no_color=True)
    assert not use_color("auto", terminal=False, no_color=False)
    assert use_color("always", terminal=False, no_color=True)
    assert not use_color("never", terminal=True, no_color=False)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="yaml"):
        make_formatter("yaml")


# ---------------------------------------------------------------------------------------------
# Reconnection decisions
# ---------------------------------------------------------------------------------------------


def _decide(error: Exception | None, **kwargs: object) -> tuple[bool, int, int]:
    options: dict[str, object] = {
        "received": False,
        "failures": 0,
        "max_attempts": 3,
        "reconnect_on_end": True,
    }
    options.update(kwargs)
    d = decide(error, **options)  # type: ignore[arg-type]
    return d.reconnect, d.failures, d.status


def test_orderly_end() -> None:
    assert _decide(None, failures=2) == (True, 0, EXIT_OK)
    assert _decide(None, reconnect_on_end=False) == (False, 0, EXIT_OK)


def test_http_204_means_done() -> None:
    assert _decide(HTTPStatusError(204)) == (False, 0, EXIT_OK)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 301])
def test_permanent_statuses(status: int) -> None:
    assert is_permanent(HTTPStatusError(status))
    assert _decide(HTTPStatusError(status), max_attempts=None) == (False, 1, EXIT_FAILED)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_statuses(status: int) -> None:
    assert not is_permanent(HTTPStatusError(status))
    assert _decide(HTTPStatusError(status)) == (True, 1, EXIT_OK)


def test_wrong_content_type_is_permanent() -> None:
    assert is_permanent(HTTPContentTypeError("text/html", None, 200))


def test_untrusted_certificate_is_permanent() -> None:
    error = NewConnectionError(None, "TLS")  # type: ignore[arg-type]
    error.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert is_permanent(error)
    assert not is_permanent(ConnectionResetError(104, "Connection reset by peer"))


def test_failures_in_a_row() -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    assert _decide(reset, failures=0) == (True, 1, EXIT_OK)
    assert _decide(reset, failures=1) == (True, 2, EXIT_OK)
    assert _decide(reset, failures=2) == (False, 3, EXIT_FAILED)
    # Something arrived on the connection: this failure starts a new series.
    assert _decide(reset, failures=2, received=True) == (True, 1, EXIT_OK)
    assert _decide(reset, failures=1000, max_attempts=None) == (True, 1001, EXIT_OK)
    final = decide(reset, received=False, failures=2, max_attempts=3, reconnect_on_end=True)
    assert final.message == "connection reset by the server (giving up after 3 failures in a row)"
    single = decide(reset, received=False, failures=0, max_attempts=1, reconnect_on_end=True)
    assert single.message == "connection reset by the server"


# ---------------------------------------------------------------------------------------------
# Describing failures
# ---------------------------------------------------------------------------------------------


def test_describe() -> None:
    assert status_text(404) == "HTTP 404 Not Found"
    assert status_text(599) == "HTTP 599"
    assert describe(HTTPStatusError(503)) == "HTTP 503 Service Unavailable"
    assert describe(HTTPStatusError(302)).startswith("HTTP 302 Found: a redirect")
    assert describe(HTTPContentTypeError("text/html; charset=utf-8", None, 200)) == (
        "not an event stream: HTTP 200 OK with Content-Type text/html; charset=utf-8"
    )
    assert describe(HTTPContentTypeError("", None, 200)) == (
        "not an event stream: HTTP 200 OK with no Content-Type"
    )
    assert describe(StreamTimeoutError(2.5)) == "no data received for 2.5 seconds"
    assert describe(EventTooLargeError(10)) == "event exceeds the maximum event size of 10 bytes"
    assert describe(ConnectionResetError(104, "Connection reset by peer")) == (
        "connection reset by the server"
    )
    assert describe(RuntimeError("odd")) == "RuntimeError: odd"


def test_describe_follows_the_cause() -> None:
    refused = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert describe(refused) == "connection refused"
    unreachable = NewConnectionError(None, "x")  # type: ignore[arg-type]
    unreachable.__cause__ = OSError(113, "No route to host")
    assert describe(unreachable) == "no route to host"


# ---------------------------------------------------------------------------------------------
# The state file
# ---------------------------------------------------------------------------------------------


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "stream.state"
    state = StateFile(str(path), URL)
    assert state.load() is None
    state.save(None)
    assert not path.exists()  # nothing to record yet
    state.save("41")
    state.save("42")
    assert json.loads(path.read_text()) == {"last_event_id": "42", "url": URL}
    assert StateFile(str(path), "http://elsewhere/").load() == "42"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stream.state"]  # no temporary left


def test_state_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text('{"last_event_id": "1"}')
    path.chmod(0o640)
    state = StateFile(str(path), URL)
    assert state.load() == "1"
    state.save("2")
    assert path.stat().st_mode & 0o777 == 0o640


def test_empty_state_file_means_no_id(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("\n")
    assert StateFile(str(path), URL).load() is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{oops", "not JSON"),
        ("[1, 2]", 'no "last_event_id"'),
        ('{"id": "1"}', 'no "last_event_id"'),
        ('{"last_event_id": 7}', "not a string"),
    ],
)
def test_corrupt_state_file_is_not_touched(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "s"
    path.write_text(content)
    with pytest.raises(StateFileError, match=reason) as info:
        StateFile(str(path), URL).load()
    assert "fix or delete it" in str(info.value)
    assert path.read_text() == content


def test_unusable_state_paths(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="is a directory"):
        StateFile(str(tmp_path), URL).load()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(StateFileError, match="cannot"):
        StateFile(str(not_a_dir / "state"), URL).load()
    state = StateFile(str(tmp_path / "gone" / "state"), URL)
    with pytest.raises(StateFileError, match="cannot write"):
        state.save("1")


def test_state_file_must_be_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # Opened for reading, a FIFO would block until a writer comes: a writer is opened first.
    fd = os.open(fifo, os.O_RDWR)
    try:
        with pytest.raises(StateFileError, match="not a regular file"):
            StateFile(str(fifo), URL).load()
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# --stats
# ---------------------------------------------------------------------------------------------


def test_stats_line() -> None:
    stats = Stats(
        events=10, comments=2, bytes=300, attempts=3, connections=2, faults=1, started=5.0
    )
    assert stats.line(now=7.0) == (
        "events=10 comments=2 bytes=300 attempts=3 connections=2 reconnects=1 faults=1 "
        "elapsed=2.000s events/s=5.0"
    )
    assert re.fullmatch(r"events=0 .* events/s=0\.0", Stats().line(now=Stats().started))

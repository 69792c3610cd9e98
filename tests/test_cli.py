"""
The ``sse`` tool as users run it: the installed package started as a subprocess
(``python -m ld_eventsource``, and the ``sse`` script), against loopback servers.
The pieces (parsing, formats, decisions) are tested alone in tests/test_cli_parts.py.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from ld_eventsource.testing import (
    Conn,
    Handler,
    events_handler,
    sequence_handler,
    sse,
    status_handler,
)
from tests.sse_server import SSEServer

RUN_TIMEOUT = 30  # seconds: the bound of every run; none should come near it
FAST = ["--retry-delay", "0.01"]


@dataclass
class Result:
    status: int
    out: str
    err: str


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    # -W error: a warning (an unclosed socket, say) is an error the run shows on stderr.
    return [sys.executable, "-W", "error", "-m", "ld_eventsource", *args]


class Run:
    """One run of the tool, started at once; :meth:`result` waits for it."""

    def __init__(self, *args: str, stdin: bytes = b"", **env: str):
        self._stdin = stdin
        self._proc = subprocess.Popen(
            command(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(**env),
        )

    def result(self) -> Result:
        try:
            out, err = self._proc.communicate(self._stdin, timeout=RUN_TIMEOUT)
        finally:
            self._proc.kill()
            self._proc.wait()
        return Result(self._proc.returncode, out.decode("utf-8"), err.decode("utf-8"))


def run(*args: str, stdin: bytes = b"", **env: str) -> Result:
    return Run(*args, stdin=stdin, **env).result()


def run_all(*commands: list[str]) -> list[Result]:
    """Several runs side by side (each start costs an interpreter's start-up)."""
    runs = [Run(*args) for args in commands]
    return [r.result() for r in runs]


def numbered(
    total: int, *, per_connection: int | None = None, then: str = "end", delay: float = 0.0
) -> Handler:
    """Events ``1..total`` with ids, from the one after the request's Last-Event-ID."""

    def handler(conn: Conn) -> None:
        last = conn.request.headers.get("last-event-id")
        first = int(last) + 1 if last else 1
        stop = total if per_connection is None else min(total, first + per_connection - 1)
        conn.send_head()
        for i in range(first, stop + 1):
            if delay and not conn.sleep(delay):
                return
            conn.send_event(id=str(i), data=f"event {i}")
        if then == "abort":
            conn.abort()
        elif then == "hang":
            while not conn.stopping.is_set() and not conn.wait_client_gone(60):
                pass
        else:
            conn.end()

    return handler


def hang_after(*blocks: bytes) -> Handler:
    return events_handler(blocks, then="hang")


@contextlib.contextmanager
def serve(handler: Handler) -> Iterator[SSEServer]:
    with SSEServer(handler) as server:
        yield server


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL on which connections are refused (a bound port that does not listen)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/stream"


# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------


def test_sse_script_is_installed(refused_url: str) -> None:
    script = str(Path(sys.executable).parent / "sse")
    runs = [
        subprocess.Popen([script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for args in (["--help"], ["--max-attempts", "1", refused_url], ["-n", "0", refused_url])
    ]
    (help_out, _), (_, refused_err), (_, usage_err) = (
        proc.communicate(timeout=RUN_TIMEOUT) for proc in runs
    )
    # The script's exit status is main()'s return value.
    assert [proc.returncode for proc in runs] == [0, 1, 2]
    assert help_out.startswith(b"usage: sse [options] URL\n       sse serve")
    assert refused_err == f"sse: error: {refused_url}: connection refused\n".encode()
    assert usage_err.startswith(b"sse: error: argument -n/--count: must be at least 1")


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------

MIXED = [
    sse(event="tick", id="1", data="one"),
    sse(comment=" keep-alive"),
    sse(data="two\nlines", id="2"),
    sse(event="tock", data="three"),
]


def test_every_format() -> None:
    with serve(events_handler(MIXED)) as server:
        pretty, as_json, data, text, raw = run_all(
            [server.url, "--no-reconnect"],
            [server.url, "--no-reconnect", "--format", "json", "--comments"],
            [server.url, "--no-reconnect", "--format", "data"],
            [server.url, "--no-reconnect", "--format", "text"],
            [server.url, "--no-reconnect", "--format", "raw", "--comments"],
        )
        # The server ended each stream, and none was read again.
        assert len(server.requests) == 5
    for result in (pretty, as_json, data, text, raw):
        assert (result.status, result.err) == (0, "")
    # pretty, piped: no colors, no notices.
    assert pretty.out == "tick id=1\n  one\nmessage id=2\n  two\n  lines\ntock\n  three\n"
    records = [json.loads(line) for line in as_json.out.splitlines()]
    for record in records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record.pop("time"))
    assert records == [
        {"type": "tick", "data": "one", "id": "1", "last_event_id": "1"},
        {"comment": " keep-alive"},
        {"type": "message", "data": "two\nlines", "id": "2", "last_event_id": "2"},
        {"type": "tock", "data": "three", "id": None, "last_event_id": "2"},
    ]
    assert data.out == "one\ntwo\nlines\nthree\n"
    assert text.out == "onetwo\nlinesthree"  # nothing added
    assert raw.out == (
        "event: tick\nid: 1\ndata: one\n\n: keep-alive\nid: 2\ndata: two\ndata: lines\n\n"
        "event: tock\ndata: three\n\n"
    )


def test_output_is_utf8() -> None:
    with serve(events_handler([sse(data="héllo ☃ \U0001f600")])) as server:
        result = run(server.url, "--no-reconnect", "--format", "data", PYTHONIOENCODING="ascii")
    assert result.out == "héllo ☃ \U0001f600\n"


# ---------------------------------------------------------------------------------------------
# Selection and limits
# ---------------------------------------------------------------------------------------------


def test_event_type_filter() -> None:
    with serve(events_handler(MIXED)) as server:
        one, two = run_all(
            [server.url, "--no-reconnect", "--format", "data", "-e", "tock"],
            [server.url, "--no-reconnect", "--format", "data", "-e", "tick", "-e", "message"],
        )
    assert one.out == "three\n"
    assert two.out == "one\ntwo\nlines\n"


def test_count() -> None:
    with serve(numbered(100, then="hang")) as server:
        result = run(server.url, "-n", "3", "--format", "data")
    assert result.status == 0
    assert result.out == "event 1\nevent 2\nevent 3\n"


def test_count_counts_shown_events() -> None:
    with serve(events_handler(MIXED, then="hang")) as server:
        result = run(server.url, "-n", "1", "-e", "tock", "--format", "data")
    assert (result.status, result.out) == (0, "three\n")


def test_until() -> None:
    blocks = [sse(data="a"), sse(data="[DONE]"), sse(data="never")]
    with serve(events_handler(blocks, then="hang")) as server:
        result = run(server.url, "--until", "[DONE]", "--format", "data")
    assert (result.status, result.out, result.err) == (0, "a\n", "")


def test_until_sees_events_that_the_filter_hides() -> None:
    blocks = [sse(event="token", data="x"), sse(data="[DONE]")]
    with serve(events_handler(blocks, then="hang")) as server:
        result = run(server.url, "-e", "token", "--until", "[DONE]", "--format", "data")
    assert (result.status, result.out) == (0, "x\n")


def test_timeout_ends_a_blocked_read() -> None:
    with serve(hang_after(sse(data="only"))) as server:
        started = time.monotonic()
        result = run(server.url, "--timeout", "0.5", "--format", "data")
        elapsed = time.monotonic() - started
        server.wait_connections_closed()
    assert (result.status, result.out, result.err) == (0, "only\n", "")
    assert elapsed < RUN_TIMEOUT


def test_timeout_ends_a_wait_for_the_response() -> None:
    # A server that accepts and never answers; -k makes sse use a pool of its own, which
    # close() cannot reach while the response is awaited: the process ends all the same.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        own_pool, given_pool = run_all([url, "--timeout", "0.3"], [url, "--timeout", "0.3", "-k"])
    for result in (own_pool, given_pool):
        assert result.status == 1
        assert result.err == f"sse: error: {url}: no connection within 0.3s\n"


def test_timeout_before_any_connection_is_a_failure(refused_url: str) -> None:
    result = run(refused_url, "--timeout", "0.5", "--forever", *FAST, "-q")
    assert result.status == 1
    assert (
        result.err == f"sse: error: {refused_url}: no connection within 0.5s (connection refused)\n"
    )


# ---------------------------------------------------------------------------------------------
# --field
# ---------------------------------------------------------------------------------------------


def chat_chunk(**delta: str) -> bytes:
    choice: dict[str, object] = {"index": 0, "delta": delta, "finish_reason": None}
    return sse(data=json.dumps({"id": "c1", "object": "chunk", "choices": [choice]}))


LLM_STREAM = [
    chat_chunk(role="assistant"),
    *(chat_chunk(content=piece) for piece in ["Hel", "lo", ", wor", "ld", "!\n"]),
    chat_chunk(),
    sse(data="[DONE]"),
]


def test_llm_post_stream_assembled_with_field() -> None:
    request_body = '{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    with serve(events_handler(LLM_STREAM)) as server:
        result = run(
            server.url + "/v1/chat/completions",
            "--json",
            request_body,
            "-H",
            "Authorization: Bearer secret",
            "--field",
            "choices.0.delta.content",
            "--format",
            "text",
            "--until",
            "[DONE]",
        )
        (request,) = server.requests
    assert (result.status, result.out, result.err) == (0, "Hello, world!\n", "")
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.body == request_body.encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer secret"
    assert request.headers["accept"] == "text/event-stream"


def test_field_in_data_and_json_formats() -> None:
    with serve(events_handler(LLM_STREAM)) as server:
        data, values = run_all(
            [server.url, "-d", "{}", "--field", "choices.0.delta", "--format", "data"],
            [server.url, "-d", "{}", "--field", "choices.0.index", "--format", "json"],
        )
    assert data.status == 0
    assert data.out.splitlines()[:2] == ['{"role":"assistant"}', '{"content":"Hel"}']
    assert data.out.splitlines()[-1] == "{}"
    assert "[DONE]" in data.err  # not JSON, and no --until here: a warning
    records = [json.loads(line) for line in values.out.splitlines()]
    assert [r["value"] for r in records] == [0] * 7
    assert all(json.loads(r["data"])["choices"][0]["index"] == 0 for r in records)


def test_field_warns_once_per_event_that_is_not_json() -> None:
    deep = "[" * 100_000 + "]" * 100_000  # too deep for the parser: not JSON it can read
    blocks = [
        sse(data='{"v": 1}'),
        sse(data="plain text", id="9"),
        sse(data=deep),
        sse(data='{"v": 2}'),
    ]
    with serve(events_handler(blocks)) as server:
        result = run(server.url, "--no-reconnect", "--field", "v", "--format", "data")
    assert (result.status, result.out) == (0, "1\n2\n")
    assert result.err == (
        "sse: warning: event 2 (id 9): the data is not JSON, skipped: 'plain text'\n"
        f"sse: warning: event 3: the data is not JSON, skipped: '{'[' * 60}...'\n"
    )


def test_field_that_matches_nothing_is_reported_at_exit() -> None:
    with serve(events_handler([sse(data='{"a": 1}')])) as server:
        result = run(server.url, "--no-reconnect", "--field", "b.c")
    assert (result.status, result.out) == (0, "")
    assert result.err == "sse: warning: --field b.c: no event had a value there\n"


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def test_body_and_headers_reach_the_server(tmp_path: Path) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(b'{"from": "file"}')
    with serve(events_handler([sse(data="ok")])) as server:
        runs = [
            Run(server.url, "-d", "plain body", "-H", "X-One: 1", "-H", "X-One: 2"),
            Run(server.url, "-d", f"@{body_file}", "-H", "Content-Type: application/json"),
            Run(server.url, "-X", "REPORT", "-d", "@-", stdin=b"piped \x00 bytes"),
            Run(server.url, "--last-event-id", "resume-here", "--no-reconnect"),
        ]
        assert [r.result().status for r in runs] == [0, 0, 0, 0]
        requests = {r.body: r for r in server.requests}
    assert len(requests) == 4
    plain, from_file, from_stdin, get = (
        requests[b"plain body"],
        requests[b'{"from": "file"}'],
        requests[b"piped \x00 bytes"],
        requests[b""],
    )
    assert [r.method for r in (plain, from_file, from_stdin, get)] == [
        "POST",
        "POST",
        "REPORT",
        "GET",
    ]
    assert plain.headers["x-one"] == "1, 2"
    assert plain.headers["content-type"] == "text/plain"
    assert from_file.headers["content-type"] == "application/json"
    assert get.headers["last-event-id"] == "resume-here"


def test_get_stream_is_read_again_after_its_end_with_last_event_id() -> None:
    with serve(numbered(6, per_connection=2)) as server:
        result = run(server.url, "-n", "6", "--format", "data", *FAST)
        ids = [r.headers.get("last-event-id") for r in server.requests]
    assert result.out == "".join(f"event {i}\n" for i in range(1, 7))
    assert ids == [None, "2", "4"]


def test_reconnects_after_a_broken_stream_losing_and_repeating_nothing() -> None:
    with serve(numbered(9, per_connection=3, then="abort")) as server:
        result = run(server.url, "-n", "9", "--format", "data", *FAST)
        ids = [r.headers.get("last-event-id") for r in server.requests]
    assert result.status == 0
    assert result.out == "".join(f"event {i}\n" for i in range(1, 10))
    assert ids == [None, "3", "6"]
    assert result.err.count("sse: warning: stream broken") == 2


def test_read_timeout_reconnects() -> None:
    handler = sequence_handler(hang_after(sse(id="1", data="a")), events_handler([sse(data="b")]))
    with serve(handler) as server:
        result = run(server.url, "--read-timeout", "0.3", "-n", "2", "--format", "data", *FAST)
        assert server.requests[1].headers["last-event-id"] == "1"
    assert (result.status, result.out) == (0, "a\nb\n")
    assert "no data received for 0.3 seconds" in result.err


# ---------------------------------------------------------------------------------------------
# --state-file
# ---------------------------------------------------------------------------------------------


def test_state_file_resumes_across_runs(tmp_path: Path) -> None:
    state = tmp_path / "stream.state"
    with serve(numbered(10, then="hang")) as server:
        first = run(server.url, "--state-file", str(state), "-n", "4", "--format", "data")
        saved = json.loads(state.read_text())
        second = run(server.url, "--state-file", str(state), "-n", "6", "--format", "data")
        ids = [r.headers.get("last-event-id") for r in server.requests]
    assert first.out == "".join(f"event {i}\n" for i in range(1, 5))
    assert saved == {"last_event_id": "4", "url": server.url}
    assert second.out == "".join(f"event {i}\n" for i in range(5, 11))
    assert ids == [None, "4"]
    assert json.loads(state.read_text())["last_event_id"] == "10"
    assert first.err == second.err == ""


def test_state_file_after_an_interrupted_run(tmp_path: Path) -> None:
    state = tmp_path / "s"
    with serve(numbered(5, then="hang")) as server:
        proc = subprocess.Popen(
            command(server.url, "--state-file", str(state), "--format", "data"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(5)]
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            proc.kill()
            proc.wait()
        again = run(server.url, "--state-file", str(state), "--timeout", "0.5", "--format", "data")
        assert server.requests[-1].headers["last-event-id"] == "5"
    assert lines == [f"event {i}\n".encode() for i in range(1, 6)]
    assert (proc.returncode, err) == (130, b"")
    assert (again.status, again.out) == (0, "")


def test_corrupt_state_file_is_an_error_and_left_alone(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.write_text("last id was 5")
    with serve(numbered(3)) as server:
        result = run(server.url, "--state-file", str(state))
        assert server.requests == []
    assert result.status == 2
    assert result.err.startswith(f"sse: error: state file {state} is not an sse state file")
    assert result.err.count("\n") == 1
    assert state.read_text() == "last id was 5"


def test_unwritable_state_file_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with serve(numbered(3)) as server:
        result = run(server.url, "--state-file", str(blocker / "state"))
        assert server.requests == []
    assert result.status == 2
    assert (
        result.err == f"sse: error: state file {blocker / 'state'}: cannot read: Not a directory\n"
    )


def test_state_file_that_cannot_be_saved_during_the_run(tmp_path: Path) -> None:
    state = tmp_path / "s"
    replaced = threading.Event()

    def handler(conn: Conn) -> None:
        conn.send_event(id="1", data="one")
        if replaced.wait(RUN_TIMEOUT):
            conn.send_event(id="2", data="two")
        conn.wait_client_gone(RUN_TIMEOUT)

    with serve(handler) as server:
        proc = Run(server.url, "--state-file", str(state), "--format", "data")
        deadline = time.monotonic() + RUN_TIMEOUT
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        state.unlink()
        state.mkdir()  # where the next save must go: it cannot
        replaced.set()
        result = proc.result()
    assert (result.status, result.out) == (1, "one\ntwo\n")
    assert result.err == f"sse: error: state file {state}: cannot write: Is a directory\n"
    assert list(tmp_path.iterdir()) == [state]  # no temporary file left behind


# ---------------------------------------------------------------------------------------------
# -v and --stats
# ---------------------------------------------------------------------------------------------


def test_verbose_log() -> None:
    handler = sequence_handler(
        status_handler(503, headers={"Retry-After": "1"}),
        events_handler([sse(id="7", data="x")], then="abort"),
        events_handler([sse(data="y")], headers={"X-Served-By": "second"}),
    )
    with serve(handler) as server:
        result = run(server.url, "-v", "-n", "2", "-H", "X-Token: t", *FAST, "--format", "data")
    assert (result.status, result.out) == (0, "x\ny\n")
    log = result.err.splitlines()
    assert log[:3] == [
        f"* attempt 1: GET {server.url}",
        "> X-Token: t",
        "* connection failed: HTTP 503 Service Unavailable",
    ]
    assert re.fullmatch(r"\* reconnecting in 0\.\d\ds \(failure 1 of 5\)", log[3])
    assert log[4:7] == [f"* attempt 2: GET {server.url}", "> X-Token: t", "< HTTP 200 OK"]
    assert "< Content-Type: text/event-stream" in log
    assert "* stream broken: connection reset by the server" in log
    assert "> Last-Event-ID: 7" in log
    assert "< X-Served-By: second" in log
    assert not any(line.startswith("sse: ") for line in log)


def test_stats() -> None:
    with serve(events_handler([sse(data="12345"), sse(comment="c")])) as server:
        result = run(server.url, "--stats", "--no-reconnect", "--format", "data")
    assert result.out == "12345\n"
    match = re.fullmatch(
        r"sse: stats: events=1 comments=1 bytes=(\d+) attempts=1 connections=1 reconnects=0 "
        r"faults=0 elapsed=\d+\.\d{3}s events/s=\d+\.\d\n",
        result.err,
    )
    assert match is not None
    assert int(match.group(1)) == len(sse(data="12345") + sse(comment="c"))


def test_stats_count_reconnections_and_faults() -> None:
    with serve(numbered(4, per_connection=2, then="abort")) as server:
        result = run(server.url, "--stats", "-n", "4", "-q", *FAST)
    assert "connections=2 reconnects=1 faults=1" in result.err


# ---------------------------------------------------------------------------------------------
# Exit statuses and failures
# ---------------------------------------------------------------------------------------------


def test_unreachable_host(refused_url: str) -> None:
    once, three, no_reconnect = run_all(
        [refused_url, "--max-attempts", "1"],
        [refused_url, "--max-attempts", "3", *FAST],
        [refused_url, "--no-reconnect"],
    )
    assert once.status == 1
    assert once.err == f"sse: error: {refused_url}: connection refused\n"
    assert (no_reconnect.status, no_reconnect.err) == (1, once.err)
    assert three.status == 1
    lines = three.err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("sse: warning: connection failed: connection refused; reconnecting")
    assert lines[2] == (
        f"sse: error: {refused_url}: connection refused (giving up after 3 failures in a row)"
    )


def test_http_error_status_ends_at_once() -> None:
    with serve(status_handler(404, body="no such stream")) as server:
        result = run(server.url + "/nope", *FAST)
        assert len(server.requests) == 1
    assert result.status == 1
    assert result.err == f"sse: error: {server.url}/nope: HTTP 404 Not Found\n"


def test_server_errors_are_retried() -> None:
    handler = sequence_handler(
        status_handler(503), status_handler(500), events_handler([sse(data="up")])
    )
    with serve(handler) as server:
        result = run(server.url, "-n", "1", "--format", "data", *FAST)
    assert (result.status, result.out) == (0, "up\n")
    assert result.err.count("sse: warning: connection failed: HTTP 50") == 2


def test_not_an_event_stream() -> None:
    handler = status_handler(200, headers={"Content-Type": "text/html; charset=utf-8"}, body="<p>")
    with serve(handler) as server:
        result = run(server.url, *FAST)
        assert len(server.requests) == 1
    assert result.status == 1
    assert result.err == (
        f"sse: error: {server.url}: not an event stream: HTTP 200 OK with Content-Type "
        "text/html; charset=utf-8\n"
    )


def test_204_means_no_more_events() -> None:
    with serve(sequence_handler(events_handler([sse(data="last")]), status_handler(204))) as server:
        result = run(server.url, "--format", "data", *FAST)
    assert (result.status, result.out, result.err) == (0, "last\n", "")


def test_broken_stream_with_no_reconnect() -> None:
    with serve(events_handler([sse(data="a")], then="abort")) as server:
        result = run(server.url, "--no-reconnect", "--format", "data")
    assert (result.status, result.out) == (1, "a\n")
    assert result.err == f"sse: error: {server.url}: connection reset by the server\n"


def test_sigint_exits_130_without_a_traceback() -> None:
    with serve(hang_after(sse(data="first"))) as server:
        proc = subprocess.Popen(
            command(server.url, "--format", "data", "--stats"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"first\n"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert out == b""
    assert err.startswith(b"sse: stats: events=1 ")
    assert b"Traceback" not in err


def test_sigint_while_waiting_to_reconnect(refused_url: str) -> None:
    proc = subprocess.Popen(
        command(refused_url, "--retry-delay", "60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith(b"sse: warning: connection failed")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, err) == (130, b"")


def test_closed_stdout_pipe_is_quiet() -> None:
    with serve(numbered(10_000, delay=0.005)) as server:
        done = subprocess.run(
            [
                "bash",
                "-c",
                'set -o pipefail; "$@" | head -n 3',
                "sh",
                *command(server.url, "--format", "data"),
            ],
            capture_output=True,
            timeout=RUN_TIMEOUT,
            env=_env(),
            check=False,
        )
    assert done.returncode == 0
    assert done.stdout == b"event 1\nevent 2\nevent 3\n"
    assert done.stderr == b""


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


BAD_INPUT = [
    (
        ["ftp://example.com/"],
        "url must be an http:// or https:// URL, got 'ftp://example.com/'",
    ),
    (["http://"], "bad URL 'http://': no host"),
    (
        ["http://127.0.0.1:70000/"],
        "bad URL 'http://127.0.0.1:70000/': Port out of range 0-65535",
    ),
    (["http://127.0.0.1/", "-H", "X-Bad"], "-H 'X-Bad': expected 'Name: value'"),
    (
        ["http://127.0.0.1/", "-H", "Bad Name: v"],
        "-H 'Bad Name: v': 'Bad Name' is not a valid header name",
    ),
    (
        ["http://127.0.0.1/", "-d", "@/nonexistent/body"],
        "-d @/nonexistent/body: cannot read: No such file or directory",
    ),
    (
        ["http://127.0.0.1/", "--field", "choices..content"],
        "--field: empty segment in 'choices..content' "
        "(expected something like choices.0.delta.content)",
    ),
    (
        ["http://127.0.0.1/", "-X", "GET X"],
        "method must be an HTTP method name such as 'POST', got 'GET X'",
    ),
    (
        ["http://127.0.0.1/", "--cacert", "/nonexistent/ca.pem"],
        "--cacert /nonexistent/ca.pem: cannot read: No such file or directory",
    ),
    (
        ["http://127.0.0.1/", "--timeout", "soon"],
        "argument --timeout: not a number of seconds: 'soon' (see sse --help)",
    ),
    ([], "the following arguments are required: URL (see sse --help)"),
]


def test_bad_input_is_one_line_and_status_2() -> None:
    results = run_all(*(args for args, _ in BAD_INPUT))
    for (args, message), result in zip(BAD_INPUT, results, strict=True):
        assert (result.status, result.out, result.err) == (2, "", f"sse: error: {message}\n"), args


def test_cacert_that_is_not_pem(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    result = run("https://127.0.0.1/", "--cacert", str(bad))
    assert result.status == 2
    assert result.err.startswith(f"sse: error: --cacert {bad}: not a PEM file of CA certificates")
    assert result.err.count("\n") == 1


def test_ignored_header_is_a_warning() -> None:
    with serve(events_handler([sse(data="a")])) as server:
        result = run(server.url, "--no-reconnect", "-H", "Accept: application/json")
        assert server.requests[0].headers["accept"] == "text/event-stream"
    assert result.status == 0
    assert (
        result.err == "sse: warning: -H Accept: ignored, sse always sends its own Accept header\n"
    )


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------


def test_tls(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with SSEServer(events_handler([sse(data="secret")]), tls=ca) as server:
        trusted, insecure, untrusted = run_all(
            [server.url, "--cacert", str(ca_file), "--no-reconnect", "--format", "data"],
            [server.url, "-k", "--no-reconnect", "--format", "data"],
            [server.url, *FAST],
        )
    assert (trusted.status, trusted.out, trusted.err) == (0, "secret\n", "")
    assert (insecure.status, insecure.out, insecure.err) == (0, "secret\n", "")
    assert untrusted.status == 1
    assert untrusted.err.startswith(f"sse: error: {server.url}: TLS certificate not trusted: ")
    assert untrusted.err.count("\n") == 1


def test_proxy(ca: trustme.CA, tmp_path: Path, refused_url: str) -> None:
    from tests.proxy_server import ProxyServer

    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    refused_proxy = refused_url.rsplit("/", 1)[0]
    with (
        ProxyServer(tmp_path, auth="user:pr0xy-pw") as proxy,
        SSEServer(events_handler([sse(data="tunnelled")]), tls=ca) as tls_server,
        SSEServer(events_handler([sse(data="plain")])) as server,
    ):
        auth = proxy.url.replace("http://", "http://user:pr0xy-pw@")
        tunnelled, plain, denied, off = run_all(
            [tls_server.url, "--proxy", auth, "--cacert", str(ca_file), "--no-reconnect", "-v"],
            [server.url, "--proxy", auth, "--no-reconnect", "--format", "data"],
            [server.url, "--proxy", proxy.url, "--no-reconnect"],
            # The environment's proxy refuses: --proxy '' goes direct.
            ["--proxy", "", server.url, "--no-reconnect", "--format", "data"],
        )
        from_env = run(server.url, "--no-reconnect", "--format", "data", HTTP_PROXY=refused_proxy)
        assert proxy.wait_log(f"CONNECT 127.0.0.1:{tls_server.port}")
    assert (tunnelled.status, "tunnelled" in tunnelled.out) == (0, True), tunnelled.err
    assert f"* via proxy {proxy.url}\n" in tunnelled.err
    assert "pr0xy-pw" not in tunnelled.err + tunnelled.out
    assert (plain.status, plain.out) == (0, "plain\n")
    assert denied.status == 1
    assert "407" in denied.err
    assert from_env.status == 1
    assert (off.status, off.out) == (0, "plain\n")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("proxy.example:3128", "--proxy must be a URL with a scheme"),
        ("socks5://proxy.example", "scheme 'socks5' is not supported"),
        ("http://u:hidden@proxy.example:x", "--proxy has an invalid port: 'http://u:***@"),
    ],
)
def test_a_malformed_proxy(value: str, message: str) -> None:
    result = run("http://127.0.0.1:9/", "--proxy", value)
    assert result.status == 2
    assert message in result.err
    assert "hidden" not in result.err


# ---------------------------------------------------------------------------------------------
# On a terminal
# ---------------------------------------------------------------------------------------------


def run_on_terminal(*args: str, **env: str) -> tuple[int, str]:
    """Runs with stdout and stderr on a pseudo-terminal; returns the status and the screen."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        command(*args), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=_env(**env)
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as e:  # EIO: the terminal's last writer has gone
                if e.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = proc.wait(timeout=RUN_TIMEOUT)
    finally:
        os.close(master)
        proc.kill()
        proc.wait()
    return status, b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def test_terminal_output_is_colored_with_notices() -> None:
    with serve(events_handler([sse(event="tick", id="1", data="a\nb")])) as server:
        status, screen = run_on_terminal(server.url, "--no-reconnect")
    assert status == 0
    assert f"sse: connected to {server.url}\n" in screen
    assert "\x1b[1;36mtick\x1b[0m \x1b[33mid=1\x1b[0m\n  a\n  b\n" in screen
    assert "sse: the server ended the stream\n" in screen


def test_no_color() -> None:
    with serve(events_handler([sse(event="tick", data="a")])) as server:
        _, no_color = run_on_terminal(server.url, "--no-reconnect", NO_COLOR="1")
        forced = run(server.url, "--no-reconnect", "--color", "always", NO_COLOR="1")
    assert "tick\n  a\n" in no_color
    assert "\x1b[" not in no_color
    assert forced.out == "\x1b[1;36mtick\x1b[0m\n  a\n"


def test_text_on_a_terminal_ends_with_a_newline() -> None:
    with serve(events_handler([sse(data="no newline")])) as server:
        _, screen = run_on_terminal(server.url, "--no-reconnect", "--format", "text", "-q")
    assert screen == "no newline\n"

"""``sse serve`` as a subprocess, with raw sockets and the sync client as the consumers."""

from __future__ import annotations

import contextlib
import itertools
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest

from ld_eventsource import SSEClient
from ld_eventsource.actions import Comment, Event, Start
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from tests.test_testing_server import dechunk, split

FAST: dict[str, Any] = {
    "initial_retry_delay": 0.01,
    "retry_delay_strategy": RetryDelayStrategy.default(jitter_multiplier=None),
    "error_strategy": ErrorStrategy.always_continue(),
}
STARTUP_TIMEOUT = 30.0
FEED_SSE = """\
: a feed for the tests
data: first

event: greet
id: g
data: second
data: two lines

data: third
"""
FEED_JSONL = """\
{"data": "first", "comment": " a feed for the tests"}
{"event": "greet", "id": "g", "data": "second\\ntwo lines"}

{"data": "third"}
"""
EXPECTED = [
    Event("message", "first", "1", "1"),
    Event("greet", "second\ntwo lines", "g", "g"),
    Event("message", "third", "3", "3"),
]


def serve_command(*args: str) -> list[str]:
    """How ``sse serve`` is run: through the ``sse`` tool's own dispatch."""
    return [sys.executable, "-m", "ld_eventsource", "serve", *args]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``sse serve`` to its exit (for the errors that end it at once)."""
    return subprocess.run(
        serve_command(*args), input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None
        return parts.hostname, parts.port

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.stdin = None  # communicate() would flush it again

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Send ``sig``; the exit status and everything written to stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err.decode()


def read_line(stream: IO[bytes], timeout: float) -> bytes:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"nothing on stdout within {timeout}s")
    return stream.readline()


@contextlib.contextmanager
def sigint_not_ignored() -> Iterator[None]:
    """
    A test run started in the background of a shell script ignores SIGINT, and so would the
    servers it starts (an ignored signal stays ignored across exec): let them have it.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def start(*args: str, stdin: bool) -> subprocess.Popen[bytes]:
    with sigint_not_ignored():
        return subprocess.Popen(
            serve_command(*args),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )


@contextlib.contextmanager
def serving(*args: str, stdin: bool = False) -> Iterator[Served]:
    """A running ``sse serve``, stopped (SIGTERM) at the end of the block."""
    with start(*args, stdin=stdin) as proc:
        try:
            assert proc.stdout is not None
            line = read_line(proc.stdout, STARTUP_TIMEOUT).decode()
            assert line, f"no URL; stderr: {proc.communicate(timeout=30)[1].decode()}"
            yield Served(proc, line.rstrip("\n"))
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def request(
    served: Served,
    *,
    method: str = "GET",
    path: str = "/",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    until: bytes | None = None,
    timeout: float = 10.0,
) -> bytes:
    """A raw request; the response as received until EOF (or until ``until`` is in it)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with socket.create_connection(served.address, timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        received = b""
        while until is None or until not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    return received


def stream_of(raw: bytes) -> bytes:
    """The SSE bytes of a chunked response."""
    return b"".join(dechunk(split(raw)[2])[0])


def take(url: str, n: int, **kwargs: Any) -> list[Any]:
    with SSEClient(url, **kwargs) as client:
        return list(itertools.islice(client.all, n))


def events(actions: list[Any]) -> list[Event]:
    return [a for a in actions if isinstance(a, Event)]


@pytest.fixture
def feed_file(tmp_path: Path) -> Path:
    path = tmp_path / "feed.sse"
    path.write_text(FEED_SSE)
    return path


# -- serving ------------------------------------------------------------------------------------


def test_url_on_the_first_line_and_the_sample_feed() -> None:
    with serving("--interval", "0") as served:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", served.url)
        raw = request(served, path="/any/path?x=1", until=b"id: 3\ndata: 3\n\n")
        status, err = served.stop()
    assert split(raw)[0] == b"HTTP/1.1 200 OK"
    assert stream_of(raw).startswith(b"id: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n")
    assert status == 143
    assert re.search(r"127\.0\.0\.1:\d+ GET /any/path\?x=1 -> 200 stream from the start", err)
    assert "Traceback" not in err


def test_the_sample_feed_sends_one_event_a_second() -> None:
    with serving() as served:
        started = time.monotonic()
        request(served, until=b"id: 2\n")
        elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # a lower bound: load can only make it longer


@pytest.mark.parametrize(("name", "text"), [("feed.sse", FEED_SSE), ("feed.jsonl", FEED_JSONL)])
def test_feed_files_in_both_formats_with_ids_assigned(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with serving(str(path)) as served:
        actions = take(served.url, 6)
    assert isinstance(actions[0], Start)
    assert actions[1] == Comment(" a feed for the tests")
    assert actions[2:5] == EXPECTED


def test_feed_format_option_overrides_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    path.write_text(FEED_JSONL)
    with serving("--feed-format", "jsonl", str(path)) as served:
        assert events(take(served.url, 6)) == EXPECTED


def test_stdin_is_served_as_it_comes() -> None:
    with serving("-", stdin=True) as served, SSEClient(served.url) as client:
        iterator = iter(client.all)
        assert isinstance(next(iterator), Start)
        served.write("data: typed\n\n")
        assert next(iterator) == Event("message", "typed", "1", "1")
        served.write('id: x\ndata: {"more": true}\n\n')
        assert next(iterator) == Event("message", '{"more": true}', "x", "x")
        served.close_stdin()  # the end of the feed ends the stream in order
        assert next(iterator).error is None  # type: ignore[attr-defined]


def test_stdin_as_json_lines() -> None:
    with serving("-", "--feed-format", "jsonl", stdin=True) as served:
        served.write('{"data": [1, 2]}\n')
        served.close_stdin()
        raw = request(served)
    assert stream_of(raw) == b"id: 1\ndata: [1,2]\n\n"


def test_last_event_id_replays_from_the_event_after_it(feed_file: Path) -> None:
    with serving(str(feed_file)) as served:
        after_g = request(served, headers={"Last-Event-ID": "g"})
        after_1 = request(served, headers={"Last-Event-ID": "1"})
        unknown = request(served, headers={"Last-Event-ID": "nope"})
        _, err = served.stop()
    assert stream_of(after_g) == b"id: 3\ndata: third\n\n"
    assert stream_of(after_1).startswith(b"event: greet\nid: g\n")
    assert stream_of(unknown).startswith(b": a feed for the tests\nid: 1\ndata: first\n\n")
    assert "after Last-Event-ID 'g'" in err
    assert "Last-Event-ID 'nope' is not in the feed" in err


def test_drop_after_and_the_client_resumes(feed_file: Path) -> None:
    with serving(str(feed_file), "--drop-after", "1") as served:
        got = events(take(served.url, 9, **FAST))
        _, err = served.stop()
    assert got == EXPECTED
    assert err.count("dropped (close)") >= 2  # the third may be logged after the client read
    assert "after Last-Event-ID 'g'" in err


@pytest.mark.parametrize(("mode", "terminated"), [("close", False), ("end", True)])
def test_drop_modes(feed_file: Path, mode: str, terminated: bool) -> None:
    with serving(str(feed_file), "--drop-after", "1", "--drop-mode", mode) as served:
        chunks, ended = dechunk(split(request(served))[2])
    assert b"".join(chunks).endswith(b"data: first\n\n")
    assert ended is terminated


def test_drop_mode_abort_resets(feed_file: Path) -> None:
    abort = ("--drop-after", "1", "--drop-mode", "abort")
    with serving(str(feed_file), *abort) as served, pytest.raises(ConnectionResetError):
        request(served)


def test_status_answers_the_first_k_requests(feed_file: Path) -> None:
    with serving(str(feed_file), "--status", "503:2") as served:
        first, second, third = (request(served) for _ in range(3))
        _, err = served.stop()
    for raw in (first, second):
        status, headers, body = split(raw)
        assert status == b"HTTP/1.1 503 Service Unavailable"
        assert b"Content-Type: text/plain; charset=utf-8" in headers
        assert body == b"sse serve: status 503 (--status)\n"
    assert split(third)[0] == b"HTTP/1.1 200 OK"
    assert "-> 503 (--status, 1/2)" in err and "-> 503 (--status, 2/2)" in err


def test_status_default_count_is_one_and_the_client_recovers(feed_file: Path) -> None:
    with serving(str(feed_file), "--status", "500") as served:
        actions = take(served.url, 5, **FAST)
    assert actions[0].error.status == 500
    assert isinstance(actions[1], Start)
    assert events(actions) == EXPECTED[:2]


def test_retry_at_the_start_of_every_connection(feed_file: Path) -> None:
    with serving(str(feed_file), "--retry", "1500") as served:
        first = stream_of(request(served))
        again = stream_of(request(served, headers={"Last-Event-ID": "g"}))
    assert first.startswith(b"retry: 1500\n\n: a feed")
    assert again == b"retry: 1500\n\nid: 3\ndata: third\n\n"


def test_heartbeat_comments_while_the_stream_is_kept_open(feed_file: Path) -> None:
    with serving(str(feed_file), "--heartbeat", "0.05", "--keep-open") as served:
        actions = take(served.url, 7)
    assert actions[2:5] == EXPECTED
    assert actions[5:] == [Comment("heartbeat"), Comment("heartbeat")]


def test_loop_keeps_ids_unique_and_increasing(tmp_path: Path) -> None:
    path = tmp_path / "two.sse"
    path.write_text("id: a\ndata: one\n\ndata: two\n")
    with serving(str(path), "--loop") as served:
        got = events(take(served.url, 6))
        resumed = request(served, headers={"Last-Event-ID": "3"}, until=b"id: 5\n")
    assert [(e.data, e.id) for e in got] == [
        ("one", "1"),
        ("two", "2"),
        ("one", "3"),
        ("two", "4"),
        ("one", "5"),
    ]
    assert stream_of(resumed).startswith(b"id: 4\ndata: two\n\nid: 5\ndata: one\n")


def test_crlf_and_bom(feed_file: Path) -> None:
    with serving(str(feed_file), "--crlf", "--bom") as served:
        body = stream_of(request(served))
        actions = take(served.url, 5)
    assert body.startswith(b"\xef\xbb\xbf: a feed for the tests\r\nid: 1\r\ndata: first\r\n\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert actions[2:5] == EXPECTED


def test_chunk_size_cuts_the_bytes_whatever_the_events(feed_file: Path) -> None:
    with serving(str(feed_file), "--chunk-size", "5") as served:
        chunks, terminated = dechunk(split(request(served))[2])
        actions = take(served.url, 5)
    assert terminated
    assert [len(c) for c in chunks[:-1]] == [5] * (len(chunks) - 1)
    assert b"".join(chunks).startswith(b": a feed for the tests\nid: 1\n")
    assert actions[2:5] == EXPECTED


def test_drip_limits_the_rate(tmp_path: Path) -> None:
    path = tmp_path / "small.sse"
    path.write_text("data: drip\n")
    with serving(str(path), "--drip", "100", "--close-delimited") as served:
        started = time.monotonic()
        raw = request(served)
        elapsed = time.monotonic() - started
    _, headers, body = split(raw)
    assert body == b"id: 1\ndata: drip\n\n"
    assert not any(h.lower().startswith(b"transfer-encoding") for h in headers)
    assert elapsed >= (len(body) - 1) / 100  # a lower bound: load can only make it longer


def test_any_method_and_a_body_get_the_stream(feed_file: Path) -> None:
    with serving(str(feed_file), "--header", "Access-Control-Allow-Origin: *") as served:
        raw = request(served, method="POST", path="/llm", body=b'{"prompt": "hi"}')
        _, err = served.stop()
    status, headers, _ = split(raw)
    assert status == b"HTTP/1.1 200 OK"
    assert b"Access-Control-Allow-Origin: *" in headers
    assert stream_of(raw).endswith(b"id: 3\ndata: third\n\n")
    assert "POST /llm -> 200 stream" in err


# -- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_it_quietly(sig: int, code: int) -> None:
    with serving("--interval", "0.01") as served:
        request(served, until=b"id: 2\n")  # a connection was served and has gone
        status, err = served.stop(sig)
    assert status == code
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


def test_sigint_with_a_client_connected() -> None:
    with (
        serving("--interval", "0.01") as served,
        socket.create_connection(served.address, timeout=10) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(65536)
        status, err = served.stop(signal.SIGINT)
    assert status == 130
    assert "Traceback" not in err


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("data: a\n\ndta: b\n", 3, "unknown field 'dta'"),
        ("data: a\nid: 1\nid: 2\n", 3, "a second 'id' field"),
        ("retry: 1s\ndata: a\n", 1, "retry must be a number"),
        ("id: 2\ndata: a\n\ndata: b\n", 4, "its id is 2, which the block at line 1 has already"),
    ],
)
def test_malformed_feed_file_is_one_line_with_its_place(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = tmp_path / "bad.sse"
    path.write_text(text)
    result = run(str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"sse serve: {path}:{line}: ")
    assert reason in result.stderr
    assert result.stderr.count("\n") == 1


def test_malformed_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"data": "a"}\n{"data": "b", "ide": 1}\n')
    result = run(str(path))
    assert result.returncode == 2
    assert result.stderr == f"sse serve: {path}:2: unknown key 'ide': the keys are " + (
        "data, event, id, retry, comment\n"
    )


def test_missing_feed_file(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing.sse"))
    assert result.returncode == 2
    assert result.stderr == f"sse serve: cannot read {tmp_path / 'missing.sse'}: " + (
        "No such file or directory\n"
    )


def test_malformed_stdin_stops_the_server_with_its_line() -> None:
    result = run("-", stdin="data: fine\n\nnonsense here\n")
    assert result.returncode == 2
    assert result.stdout.startswith("http://127.0.0.1:")
    assert result.stderr == "sse serve: <stdin>:3: unknown field 'nonsense here': " + (
        "an SSE feed has data, event, id and retry fields and : comments\n"
    )


def test_loop_without_events(tmp_path: Path) -> None:
    path = tmp_path / "comments.sse"
    path.write_text(": only a comment\n")
    result = run(str(path), "--loop")
    assert result.returncode == 2
    assert result.stderr == f"sse serve: {path}: a looped feed needs at least one event\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "-1"],
        ["--port", "70000"],
        ["--interval", "soon"],
        ["--interval", "-1"],
        ["--heartbeat", "0"],
        ["--retry", "1.5"],
        ["--status", "99"],
        ["--status", "503:0"],
        ["--status", "teapot"],
        ["--drop-after", "0"],
        ["--drop-mode", "explode"],
        ["--chunk-size", "0"],
        ["--drip", "nan"],
        ["--feed-format", "xml"],
        ["--header", "no colon"],
        ["--feed-format", "jsonl"],
        ["--no-such-option"],
        ["a.sse", "b.sse"],
    ],
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: sse serve")
    assert "Traceback" not in result.stderr


def test_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: sse serve")
    for option in ("--drop-after", "--status CODE[:K]", "--chunk-size", "--drip", "--loop"):
        assert option in result.stdout


def test_an_address_in_use_is_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("--port", str(port))
    assert result.returncode == 1
    assert result.stderr.startswith(f"sse serve: cannot listen on 127.0.0.1 port {port}: ")


def test_main_is_callable_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    from ld_eventsource._cli.serve import main

    assert main(["--drop-after", "0"]) == 2
    assert "usage: sse serve" in capsys.readouterr().err

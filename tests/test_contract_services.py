"""
The two contract-test services (``contract-tests/sync_service.py`` and ``async_service.py``),
driven the way the external harness drives them.

Each test starts a service as a subprocess on a free port of 127.0.0.1, with a mock SSE
endpoint and a callback receiver of its own (both :class:`tests.sse_server.SSEServer`), and
runs once per service. Every wait is bounded.
"""

from __future__ import annotations

import json
import queue
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3

from ld_eventsource.testing import Conn, Request, sequence_handler, status_handler
from tests.sse_server import SSEServer

ROOT = Path(__file__).resolve().parent.parent
SYNC_SERVICE = str(ROOT / "contract-tests" / "sync_service.py")
ASYNC_SERVICE = str(ROOT / "contract-tests" / "async_service.py")
SERVICES = {
    "sync": [SYNC_SERVICE],
    "async": [ASYNC_SERVICE],
    "sync-httpx": [SYNC_SERVICE, "--transport", "httpx"],
    "async-httpx": [ASYNC_SERVICE, "--transport", "httpx"],
}
"""The command line of each service, over each transport it offers."""
CAPABILITIES = {
    "comments",
    "headers",
    "last-event-id",
    "read-timeout",
    "bom",
    "post",
    "report",
    "restart",
    "server-directed-shutdown-request",
}
TIMEOUT = 5.0
"""Bound of every wait for something that should happen."""
QUIET = 0.4
"""How long to watch for something that should not happen (a reconnection, a callback)."""
SERVER_ENDED = {"kind": "error", "comment": "the server ended the stream"}


def event(data: str, id: str | None = None, type: str = "message") -> dict[str, Any]:
    """The callback payload of an event (``id``: the last event id, left out if none)."""
    fields = {"type": type, "data": data}
    if id is not None:
        fields["id"] = id
    return {"kind": "event", "event": fields}


# -- the service process ------------------------------------------------------------------


@dataclass
class Service:
    """A running service process and an HTTP client for it."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    http: urllib3.PoolManager

    def request(self, method: str, url: str, body: Any = None) -> urllib3.BaseHTTPResponse:
        """A request to the service: ``body`` is sent as JSON unless it is ``bytes``."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        return self.http.request(
            method,
            url if url.startswith("http") else self.url + url,
            body=data,
            headers={"Content-Type": "application/json"} if data is not None else None,
            timeout=TIMEOUT,
            retries=False,
        )

    def create(self, params: dict[str, Any]) -> str:
        """``POST /``; returns the instance URL (from ``Location``)."""
        response = self.request("POST", "/", params)
        assert response.status == 201, response.data
        location = response.headers["Location"]
        assert location.startswith(self.url + "/")
        return location


def _read_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port from the service's ``Listening on http://localhost:PORT`` line."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(TIMEOUT):
            pytest.fail(f"the service did not start within {TIMEOUT}s: {log.read_text()}")
    line = process.stdout.readline().decode()
    if not line.startswith("Listening on http://localhost:"):
        pytest.fail(f"unexpected first line {line!r}: {log.read_text()}")
    return int(line.rsplit(":", 1)[1])


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """Each service in turn, on a free port; stopped (killed if need be) afterwards."""
    log = tmp_path / "service.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            # ResourceWarnings of the service (an unclosed socket...) show in its log.
            [sys.executable, "-W", "always::ResourceWarning", *SERVICES[request.param], "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
        )
    http = urllib3.PoolManager()
    try:
        with process:
            try:
                port = _read_port(process, log)
                yield Service(process, f"http://127.0.0.1:{port}", log, http)
            finally:
                if process.poll() is None:
                    process.terminate()
                try:
                    process.wait(TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(TIMEOUT)
    finally:
        http.clear()
    text = log.read_text(errors="replace")
    assert "ResourceWarning" not in text, text
    assert "Traceback" not in text, text


# -- the harness side: a scriptable stream and a callback receiver --------------------------


@dataclass
class StreamConnection:
    """One connection of the client to :class:`Stream`, scripted from the test."""

    request: Request
    commands: queue.Queue[bytes | float | None] = field(default_factory=queue.Queue)
    gone: queue.Queue[bool] = field(default_factory=queue.Queue)

    def send(self, data: str) -> None:
        """Sends ``data`` as one chunk."""
        self.commands.put(data.encode())

    def end(self) -> None:
        """Ends the response in order: the server ends the stream."""
        self.commands.put(None)

    def closed_by_client(self, timeout: float = TIMEOUT) -> bool:
        """Whether the client closes the connection within ``timeout`` seconds."""
        self.commands.put(float(timeout))
        return self.gone.get(timeout=timeout + TIMEOUT)


class Stream:
    """A mock SSE endpoint: each connection is handed to the test, which scripts it."""

    def __init__(self) -> None:
        self.connections: queue.Queue[StreamConnection] = queue.Queue()

    def handler(self, conn: Conn) -> None:
        """The :class:`SSEServer` handler: runs the commands of the test until the end."""
        conn.send_head()
        link = StreamConnection(conn.request)
        self.connections.put(link)
        while not conn.stopping.is_set():
            try:
                command = link.commands.get(timeout=0.05)
            except queue.Empty:
                continue
            if command is None:
                conn.end()
                return
            if isinstance(command, float):
                link.gone.put(conn.wait_client_gone(command))
                continue
            conn.send(command)

    def next_connection(self) -> StreamConnection:
        """The next connection of the client (failing the test after :data:`TIMEOUT`)."""
        try:
            return self.connections.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"the client did not connect within {TIMEOUT}s")


class Callbacks:
    """The callback receiver: checks numbering and order, hands out the payloads."""

    def __init__(self, server: SSEServer) -> None:
        self.server = server
        self._seen: dict[str, int] = {}

    def url(self, name: str) -> str:
        """The ``callbackUrl`` of the instance called ``name``."""
        return f"{self.server.url}/callbacks/{name}"

    def _received(self, name: str) -> list[Request]:
        prefix = f"/callbacks/{name}/"
        return [r for r in self.server.wait_requests(0) if r.path.startswith(prefix)]

    def expect(self, name: str, *payloads: dict[str, Any]) -> None:
        """The next callbacks of ``name`` are ``payloads``, POSTed to ``/1``, ``/2``..."""
        start = self._seen.get(name, 0)
        want = start + len(payloads)
        deadline = time.monotonic() + TIMEOUT
        received = self._received(name)
        while len(received) < want and time.monotonic() < deadline:
            time.sleep(0.02)
            received = self._received(name)
        got = [json.loads(r.body) for r in received[start:]]
        assert got[: len(payloads)] == list(payloads)
        paths = [r.path for r in received[:want]]
        assert paths == [f"/callbacks/{name}/{n}" for n in range(1, want + 1)]
        assert all(r.method == "POST" for r in received[:want])
        self._seen[name] = want

    def expect_error(self, name: str, fragment: str) -> None:
        """The next callback of ``name`` is an error whose message has ``fragment``."""
        start = self._seen.get(name, 0)
        deadline = time.monotonic() + TIMEOUT
        received = self._received(name)
        while len(received) <= start and time.monotonic() < deadline:
            time.sleep(0.02)
            received = self._received(name)
        assert len(received) > start, f"no callback {start + 1} within {TIMEOUT}s"
        payload = json.loads(received[start].body)
        assert payload["kind"] == "error", payload
        assert fragment in payload["comment"], payload
        assert received[start].path == f"/callbacks/{name}/{start + 1}"
        self._seen[name] = start + 1

    def expect_no_more(self, name: str) -> None:
        """No callback beyond those expected arrives for a little while."""
        time.sleep(QUIET)
        extra = [json.loads(r.body) for r in self._received(name)[self._seen.get(name, 0) :]]
        assert extra == []


@pytest.fixture
def stream() -> Iterator[tuple[SSEServer, Stream]]:
    """The mock SSE server (routes set by each test) and its scriptable ``/stream``."""
    endpoint = Stream()
    with SSEServer() as server:
        server.route("/stream", endpoint.handler)
        yield server, endpoint


@pytest.fixture
def callbacks() -> Iterator[Callbacks]:
    """The callback receiver: answers 202 to everything, as the harness does."""
    with SSEServer(status_handler(202)) as server:
        yield Callbacks(server)


# -- the tests --------------------------------------------------------------------------------


def test_status_and_invalid_requests(service: Service, callbacks: Callbacks) -> None:
    response = service.request("GET", "/")
    assert response.status == 200
    assert set(json.loads(response.data)["capabilities"]) == CAPABILITIES  # no .json() in 1.26

    stream_url = "http://127.0.0.1:1/stream"  # nothing listens: the client just retries
    for body in [
        b"{not json",
        [1, 2],
        {"callbackUrl": callbacks.url("a")},
        {"streamUrl": stream_url},
        {"streamUrl": 42, "callbackUrl": callbacks.url("a")},
        {"streamUrl": "ftp://127.0.0.1/x", "callbackUrl": callbacks.url("a")},
        {"streamUrl": stream_url, "callbackUrl": callbacks.url("a"), "initialDelayMs": "0"},
        {"streamUrl": stream_url, "callbackUrl": callbacks.url("a"), "headers": {"a": 1}},
    ]:
        assert service.request("POST", "/", body).status == 400, body

    assert service.request("POST", "/streams/999", {"command": "restart"}).status == 404
    assert service.request("DELETE", "/streams/999").status == 404

    instance = service.create(
        {"streamUrl": stream_url, "callbackUrl": callbacks.url("a"), "initialDelayMs": 10000}
    )
    assert service.request("POST", instance, {"command": "listen"}).status == 400
    assert service.request("POST", instance, b"{not json").status == 400
    assert service.request("DELETE", instance).status == 204
    assert service.request("DELETE", instance).status == 404
    assert service.request("POST", instance, {"command": "restart"}).status == 404


def test_events_comments_errors_restart_and_delete(
    service: Service, stream: tuple[SSEServer, Stream], callbacks: Callbacks
) -> None:
    server, endpoint = stream
    server.route("/flaky", sequence_handler(status_handler(503), endpoint.handler))
    instance = service.create(
        {
            "streamUrl": server.url + "/flaky",
            "callbackUrl": callbacks.url("a"),
            "tag": "events",
            "initialDelayMs": 0,
        }
    )

    # A failed attempt is an error; the client goes on.
    callbacks.expect_error("a", "503")
    first = endpoint.next_connection()
    for request in server.wait_requests(2)[:2]:
        assert request.method == "GET"
        assert request.headers["accept"] == "text/event-stream"
        assert request.headers["cache-control"] == "no-cache"
        assert "last-event-id" not in request.headers

    first.send(":hello\n\nevent: greet\nid: a1\ndata: one\n\n")
    first.send("data: two\ndata: lines\n\n")
    callbacks.expect(
        "a",
        {"kind": "comment", "comment": "hello"},
        event("one", "a1", type="greet"),
        event("two\nlines", "a1"),
    )

    # The server ends the stream: an error, then a reconnection with the last id.
    first.end()
    callbacks.expect("a", SERVER_ENDED)
    second = endpoint.next_connection()
    assert second.request.headers["last-event-id"] == "a1"
    second.send("id: b2\ndata: three\n\n")
    callbacks.expect("a", event("three", "b2"))

    # restart: a new connection at once, and no error in between (as the harness expects).
    assert service.request("POST", instance, {"command": "restart"}).status in (200, 202, 204)
    third = endpoint.next_connection()
    assert third.request.headers["last-event-id"] == "b2"
    assert second.closed_by_client()
    third.send("data: four\n\n")
    callbacks.expect("a", event("four", "b2"))

    # DELETE: the connection is closed, and nothing more happens.
    requests_before = len(server.wait_requests(0))
    assert service.request("DELETE", instance).status in (200, 202, 204)
    assert third.closed_by_client()
    callbacks.expect_no_more("a")
    assert len(server.wait_requests(0)) == requests_before


def test_post_and_report_bodies_headers_and_preset_last_event_id(
    service: Service, stream: tuple[SSEServer, Stream], callbacks: Callbacks
) -> None:
    server, endpoint = stream
    post = service.create(
        {
            "streamUrl": server.url + "/stream",
            "callbackUrl": callbacks.url("post"),
            "initialDelayMs": 0,
            "method": "POST",
            "body": '{"hello": "world"}',
            "headers": {"content-type": "application/json; charset=utf-8", "x-name": "value"},
            "lastEventId": "preset",
        }
    )
    first = endpoint.next_connection()
    first.end()
    callbacks.expect("post", SERVER_ENDED)
    second = endpoint.next_connection()
    for connection in (first, second):
        request = connection.request
        assert request.method == "POST"
        assert request.body == b'{"hello": "world"}'
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        assert request.headers["x-name"] == "value"
        assert request.headers["last-event-id"] == "preset"
    assert service.request("DELETE", post).status == 204

    report = service.create(
        {
            "streamUrl": server.url + "/stream",
            "callbackUrl": callbacks.url("report"),
            "initialDelayMs": 0,
            "method": "REPORT",
            "body": "query",
        }
    )
    first = endpoint.next_connection()
    first.end()
    callbacks.expect("report", SERVER_ENDED)
    second = endpoint.next_connection()
    for connection in (first, second):
        request = connection.request
        assert request.method == "REPORT"
        assert request.body == b"query"
        assert request.headers["content-type"].startswith("text/plain")
        assert "last-event-id" not in request.headers
    assert service.request("DELETE", report).status == 204


def test_read_timeout_and_204_shutdown(
    service: Service, stream: tuple[SSEServer, Stream], callbacks: Callbacks
) -> None:
    server, endpoint = stream
    silent = service.create(
        {
            "streamUrl": server.url + "/stream",
            "callbackUrl": callbacks.url("silent"),
            "initialDelayMs": 0,
            "readTimeoutMs": 300,
        }
    )
    first = endpoint.next_connection()
    first.send("data: hello\n\n")
    callbacks.expect("silent", event("hello"))
    callbacks.expect_error("silent", "no data received")
    endpoint.next_connection()
    assert service.request("DELETE", silent).status == 204

    server.route("/gone", status_handler(204))
    gone = service.create(
        {
            "streamUrl": server.url + "/gone",
            "callbackUrl": callbacks.url("gone"),
            "initialDelayMs": 0,
        }
    )
    callbacks.expect_error("gone", "204")
    callbacks.expect_no_more("gone")
    assert [r.path for r in server.wait_requests(0)].count("/gone") == 1
    # The instance still exists until the harness deletes it.
    assert service.request("DELETE", gone).status == 204


def test_delete_root_stops_the_process(
    service: Service, stream: tuple[SSEServer, Stream], callbacks: Callbacks
) -> None:
    server, endpoint = stream
    service.create({"streamUrl": server.url + "/stream", "callbackUrl": callbacks.url("a")})
    connection = endpoint.next_connection()
    assert service.request("DELETE", "/").status in (200, 202, 204)
    assert service.process.wait(TIMEOUT) == 0
    # The instance was stopped on the way out (the fixture checks the service's log for
    # tracebacks and ResourceWarnings); its connection is closed.
    assert connection.closed_by_client()

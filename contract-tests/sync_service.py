"""
The contract-test service of :class:`ld_eventsource.SSEClient`.

An HTTP server (the standard library's ``ThreadingHTTPServer``) that the external SSE
contract-test harness drives: ``POST /`` creates a client instance, read by a thread of its
own that POSTs what the client sees to the harness's callback URL (with urllib3). The
protocol is described in ``service_common.py``.

Usage: ``python contract-tests/sync_service.py [--transport urllib3|httpx] PORT`` (0 picks
a free port; ``--transport httpx`` reads the streams with ``ConnectStrategy.httpx``). The service
listens on the loopback addresses and prints ``Listening on http://localhost:PORT`` once
ready; ``DELETE /`` (or SIGINT/SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import signal
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, cast

import urllib3

from ld_eventsource import SSEClient
from ld_eventsource.config import ConnectStrategy
from service_common import (
    CALLBACK_TIMEOUT,
    STOP_TIMEOUT,
    Callback,
    InvalidRequestError,
    Reporter,
    Step,
    StreamParams,
    bind_listeners,
    capabilities_body,
    client_options,
    connect_options,
    instance_id,
    instance_path,
    parse_command,
    parse_stream_params,
    setup_logging,
)

_log = logging.getLogger("contract-service.sync")

STRATEGIES = {"urllib3": ConnectStrategy.http, "httpx": ConnectStrategy.httpx}
"""The factory of each transport the service can read streams with (``--transport``)."""
TRANSPORT = "urllib3"
"""The transport in use, set from the command line."""

_MAX_BODY = 1024 * 1024


class Instance:
    """
    One client instance: an :class:`SSEClient` and the thread that reads it and sends the
    callbacks its :class:`Reporter` makes of what it reads, one at a time and in order.
    """

    def __init__(self, name: str, params: StreamParams, pool: urllib3.PoolManager):
        self.name = name
        self.params = params
        self._pool = pool
        self._logger = logging.getLogger(f"contract-service.sync.{name}")
        # May raise TypeError/ValueError for parameters the library rejects (a bad URL...).
        self.client = SSEClient(
            STRATEGIES[TRANSPORT](params.stream_url, **connect_options(params)),
            **client_options(params, self._logger),
        )
        self._reporter = Reporter(params, self._logger)
        self._thread = threading.Thread(target=self._run, name=f"stream-{name}", daemon=True)

    def start(self) -> None:
        """Starts reading the stream, in the instance's thread."""
        self._logger.info("Starting %r on %s", self.params.tag, self.params.stream_url)
        self._thread.start()

    def restart(self) -> None:
        """
        Drops the connection; the client reconnects at once (after its retry delay), as if
        the server had ended the stream.
        """
        self._reporter.restart()
        self.client.interrupt()

    def stop(self) -> bool:
        """
        Closes the client (and so its connection) and waits for the thread to end.

        :return: whether the thread ended within :data:`STOP_TIMEOUT`
        """
        self._reporter.stop()
        self.client.close()
        if self._thread.ident is not None:
            self._thread.join(STOP_TIMEOUT)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            for action in self.client.all:
                self._do(self._reporter.on_action(action))
        except Exception as e:
            self._do(self._reporter.on_failure(e))
        finally:
            self.client.close()
            self._logger.info("Stopped")

    def _do(self, step: Step) -> None:
        if step.callback is not None:
            self._send(step.callback)
        if step.close:
            self.client.close()

    def _send(self, callback: Callback) -> None:
        try:
            response = self._pool.request(
                "POST",
                callback.url,
                body=json.dumps(callback.payload).encode(),
                headers={"Content-Type": "application/json"},
                timeout=urllib3.Timeout(connect=CALLBACK_TIMEOUT, read=CALLBACK_TIMEOUT),
                retries=False,
            )
        except urllib3.exceptions.HTTPError as e:
            self._logger.warning("Callback %s failed: %s", callback.url, e)
            return
        if response.status >= 300:
            self._logger.warning("Callback %s answered %d", callback.url, response.status)


class Service:
    """The client instances of the service, and the pool their callbacks share."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        """Set by ``DELETE /`` (or a signal): the process then stops."""
        self._instances: dict[str, Instance] = {}
        self._lock = threading.Lock()
        self._names = itertools.count(1)
        self._pool = urllib3.PoolManager(maxsize=16)

    def create(self, params: StreamParams) -> str:
        """
        Creates and starts an instance; returns its name.

        :raises TypeError: the library rejected a parameter
        :raises ValueError: the library rejected a parameter
        """
        with self._lock:
            name = str(next(self._names))
        instance = Instance(name, params, self._pool)
        with self._lock:
            self._instances[name] = instance
        instance.start()
        return name

    def get(self, name: str) -> Instance | None:
        """The instance called ``name``, if it exists."""
        with self._lock:
            return self._instances.get(name)

    def delete(self, name: str) -> bool:
        """Stops and forgets the instance called ``name``; ``False`` if there is none."""
        with self._lock:
            instance = self._instances.pop(name, None)
        if instance is None:
            return False
        if not instance.stop():
            _log.warning("Instance %s did not stop within %ss", name, STOP_TIMEOUT)
        return True

    def close(self) -> None:
        """Stops every instance and closes the callback pool."""
        with self._lock:
            names = list(self._instances)
        for name in names:
            self.delete(name)
        self._pool.clear()


class Server(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` on a socket bound beforehand, serving one :class:`Service`."""

    daemon_threads = True

    def __init__(self, sock: socket.socket, service: Service):
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        # The socket made by the base class was never bound: use the one given instead.
        self.socket.close()
        self.socket = sock
        self.address_family = socket.AddressFamily(sock.family)
        self.port: int = sock.getsockname()[1]
        self.service = service


class Handler(BaseHTTPRequestHandler):
    """The endpoints of the protocol."""

    protocol_version = "HTTP/1.1"
    server_version = "ld-eventsource-contract-service"

    @property
    def service(self) -> Service:
        """The service this request is for."""
        return cast(Server, self.server).service

    def do_GET(self) -> None:
        """``GET /``: the capabilities."""
        if self.path.partition("?")[0] == "/":
            self._reply(HTTPStatus.OK, capabilities_body(), content_type="application/json")
        else:
            self._reply(HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        """``POST /``: create an instance; ``POST <instance>``: a command."""
        body = self._read_body()
        if body is None:
            return
        path = self.path.partition("?")[0]
        if path == "/":
            self._create(body)
            return
        name = instance_id(path)
        instance = self.service.get(name) if name is not None else None
        if instance is None:
            self._reply(HTTPStatus.NOT_FOUND, b"no such stream\n")
            return
        try:
            command = parse_command(body)
        except InvalidRequestError as e:
            self._reply(HTTPStatus.BAD_REQUEST, f"{e}\n".encode())
            return
        if command != "restart":
            self._reply(HTTPStatus.BAD_REQUEST, f"unknown command {command!r}\n".encode())
            return
        instance.restart()
        self._reply(HTTPStatus.NO_CONTENT)

    def do_DELETE(self) -> None:
        """``DELETE /``: stop the service; ``DELETE <instance>``: stop the instance."""
        path = self.path.partition("?")[0]
        if path == "/":
            _log.info("Told to stop")
            self.close_connection = True
            self._reply(HTTPStatus.NO_CONTENT)
            self.wfile.flush()
            self.service.stopping.set()
            return
        name = instance_id(path)
        if name is not None and self.service.delete(name):
            self._reply(HTTPStatus.NO_CONTENT)
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"no such stream\n")

    def _create(self, body: bytes) -> None:
        try:
            params = parse_stream_params(body)
            name = self.service.create(params)
        except (InvalidRequestError, TypeError, ValueError) as e:
            self._reply(HTTPStatus.BAD_REQUEST, f"{e}\n".encode())
            return
        host = self.headers.get("Host") or f"localhost:{cast(Server, self.server).port}"
        self._reply(HTTPStatus.CREATED, headers={"Location": f"http://{host}{instance_path(name)}"})

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._reply(HTTPStatus.LENGTH_REQUIRED)
            return None
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > _MAX_BODY:
            self.close_connection = True
            self._reply(HTTPStatus.BAD_REQUEST, b"bad Content-Length\n")
            return None
        return self.rfile.read(int(length_text))

    def _reply(
        self,
        status: HTTPStatus,
        body: bytes = b"",
        *,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Request log lines go to the service's logger rather than straight to stderr."""
        _log.info("%s %s", self.address_string(), format % args)


def serve(port: int) -> None:
    """Runs the service on ``port`` (0: a free one) until ``DELETE /`` or a signal."""
    service = Service()
    servers = [Server(sock, service) for sock in bind_listeners(port)]
    threads = [
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
        )
        for server in servers
    ]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        service.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for thread in threads:
        thread.start()
    print(f"Listening on http://localhost:{servers[0].port}", flush=True)
    try:
        # With a timeout, so that the main thread stays responsive to signals.
        while not service.stopping.wait(1.0):
            pass
    finally:
        _log.info("Stopping")
        for server in servers:
            server.shutdown()
            server.server_close()
        service.close()


def main() -> None:
    """The command line: ``sync_service.py [--transport NAME] PORT``."""
    global TRANSPORT
    parser = argparse.ArgumentParser(description="Contract-test service of SSEClient")
    parser.add_argument("port", type=int, help="the port to listen on (0: any free port)")
    parser.add_argument(
        "--transport", choices=sorted(STRATEGIES), default=TRANSPORT, help="HTTP library"
    )
    args = parser.parse_args()
    TRANSPORT = args.transport
    setup_logging()
    serve(args.port)


if __name__ == "__main__":
    main()

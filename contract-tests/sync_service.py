"""
The contract-test service of :class:`ld_eventsource.SSEClient`, on the standard library's
``ThreadingHTTPServer``: each client instance is read by a thread of its own, which POSTs
what the client sees to the harness's callback URL with urllib3. ``service_common.py`` has
the protocol, the usage and everything but the I/O.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, cast

import urllib3

import service_common as common
from ld_eventsource import SSEClient
from ld_eventsource.config import ConnectStrategy

_log = logging.getLogger("contract-service.sync")

_MAX_BODY = 1024 * 1024


STRATEGIES: dict[str, Callable[..., ConnectStrategy]] = {
    "urllib3": ConnectStrategy.http,
    "httpx": ConnectStrategy.httpx,
}
"""The connect strategy of each transport that can read the streams (``--transport``)."""
TRANSPORT = "urllib3"
"""The transport in use: set from the command line."""


class Instance(common.Instance[SSEClient]):
    """An :class:`SSEClient` instance and the thread that reads it."""

    def __init__(self, name: str, params: common.StreamParams, pool: urllib3.PoolManager):
        super().__init__("sync", name, params, SSEClient, STRATEGIES[TRANSPORT])
        self._pool = pool
        self._thread = threading.Thread(target=self._run, name=f"stream-{name}", daemon=True)

    def start(self) -> None:
        """Starts reading the stream, in the instance's thread."""
        self._thread.start()

    def restart(self) -> None:
        """Drops the connection; the client reconnects (after its retry delay)."""
        self.reporter.restart()
        self.client.interrupt()

    def stop(self) -> None:
        """Closes the client and waits for its thread, :data:`STOP_TIMEOUT` at most."""
        self.reporter.stop()
        self.client.close()
        if self._thread.ident is not None:
            self._thread.join(common.STOP_TIMEOUT)
        if self._thread.is_alive():
            self.logger.warning("Did not stop within %ss", common.STOP_TIMEOUT)

    def _run(self) -> None:
        try:
            for action in self.client.all:
                self._do(self.reporter.on_action(action))
        except Exception as e:
            self._do(self.reporter.on_failure(e))
        finally:
            self.client.close()
            self.logger.info("Stopped")

    def _do(self, step: common.Step) -> None:
        if step.callback is not None:
            self._send(step.callback)
        if step.close:
            self.client.close()

    def _send(self, callback: common.Callback) -> None:
        timeout = urllib3.Timeout(connect=common.CALLBACK_TIMEOUT, read=common.CALLBACK_TIMEOUT)
        try:
            response = self._pool.request(
                "POST",
                callback.url,
                body=json.dumps(callback.payload).encode(),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as e:
            self.logger.warning("Callback %s failed: %s", callback.url, e)
            return
        if response.status >= 300:
            self.logger.warning("Callback %s answered %d", callback.url, response.status)


class Server(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` on a socket bound beforehand, serving the instances."""

    daemon_threads = True

    def __init__(
        self, sock: socket.socket, instances: common.Instances[Instance], stopping: threading.Event
    ):
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        # The socket made by the base class was never bound: use the one given instead.
        self.socket.close()
        self.socket = sock
        self.address_family = socket.AddressFamily(sock.family)
        self.port: int = sock.getsockname()[1]
        self.instances = instances
        self.stopping = stopping
        """Set by ``DELETE /`` (or a signal): the process then stops."""


class Handler(BaseHTTPRequestHandler):
    """The endpoints of the protocol, answered by :class:`common.Instances`."""

    protocol_version = "HTTP/1.1"
    server_version = "ld-eventsource-contract-service"

    @property
    def _server(self) -> Server:
        return cast(Server, self.server)

    def do_GET(self) -> None:
        """``GET /``: the capabilities."""
        self._reply(common.status(self.path))

    def do_POST(self) -> None:
        """``POST /``: create an instance; ``POST <instance>``: a command."""
        body = self._read_body()
        if body is None:
            return
        if self.path.partition("?")[0] == "/":
            host = self.headers.get("Host") or f"localhost:{self._server.port}"
            reply, instance = self._server.instances.create(body, host)
            if instance is not None:
                instance.start()
        else:
            reply, instance = self._server.instances.command(self.path, body)
            if instance is not None:
                instance.restart()
        self._reply(reply)

    def do_DELETE(self) -> None:
        """``DELETE /``: stop the service; ``DELETE <instance>``: stop the instance."""
        if self.path.partition("?")[0] == "/":
            _log.info("Told to stop")
            self.close_connection = True
            self._reply(common.Reply(204))
            self.wfile.flush()
            self._server.stopping.set()
            return
        reply, instance = self._server.instances.delete(self.path)
        if instance is not None:
            instance.stop()
        self._reply(reply)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._reply(common.Reply(411))
            return None
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > _MAX_BODY:
            self.close_connection = True
            self._reply(common.Reply(400, b"bad Content-Length\n"))
            return None
        return self.rfile.read(int(length_text))

    def _reply(self, reply: common.Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.body:
            charset = f"; charset={reply.charset}" if reply.charset else ""
            self.send_header("Content-Type", reply.content_type + charset)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Request log lines go to the service's logger rather than straight to stderr."""
        _log.info("%s %s", self.address_string(), format % args)


def serve(port: int) -> None:
    """Runs the service on ``port`` (0: a free one) until ``DELETE /`` or a signal."""
    pool = urllib3.PoolManager(maxsize=16)
    instances = common.Instances(lambda name, params: Instance(name, params, pool))
    stopping = threading.Event()
    servers = [Server(sock, instances, stopping) for sock in common.bind_listeners(port)]
    threads = [
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
        )
        for server in servers
    ]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for thread in threads:
        thread.start()
    print(f"Listening on http://localhost:{servers[0].port}", flush=True)
    try:
        # With a timeout, so that the main thread stays responsive to signals.
        while not stopping.wait(1.0):
            pass
    finally:
        _log.info("Stopping")
        for server in servers:
            server.shutdown()
            server.server_close()
        for instance in instances.delete_all():
            instance.stop()
        pool.clear()


if __name__ == "__main__":
    PORT, TRANSPORT = common.command_line("Contract-test service of SSEClient", tuple(STRATEGIES))
    serve(PORT)

"""
What the two contract-test services share: the capabilities, the reading of a create request
into client arguments, what an instance reports of its client's actions (:class:`Reporter`),
an instance apart from its I/O (:class:`Instance`), and the answers to every request
(:class:`Instances`, :func:`status`).

``sync_service.py`` (SSEClient, on the standard library's ``ThreadingHTTPServer``) and
``async_service.py`` (AsyncSSEClient, on ``aiohttp.web``) do only the I/O. The protocol is the
one of the external SSE contract-test harness: the harness creates client instances with
``POST /`` and the service reports what each client sees by POSTing JSON to
``<callbackUrl>/<n>``, with ``n`` counting 1, 2, 3... per instance.

Usage: ``python contract-tests/sync_service.py [--transport NAME] PORT`` (or
``async_service.py``; 0 picks a free port). ``--transport`` names the HTTP library that reads
the streams: ``urllib3`` (sync) or ``aiohttp`` (async) by default, or ``httpx`` (the
``httpx()`` connect strategies). The service listens on the loopback addresses and prints
``Listening on http://localhost:PORT`` once ready; ``DELETE /`` (or SIGINT/SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypedDict, TypeVar

from ld_eventsource.actions import Action, Comment, Event, Fault, Start
from ld_eventsource.config.error_strategy import ErrorStrategy
from ld_eventsource.errors import HTTPStatusError

__all__ = [
    "CALLBACK_TIMEOUT",
    "CAPABILITIES",
    "STOP_TIMEOUT",
    "Callback",
    "ClientOptions",
    "ConnectOptions",
    "Instance",
    "Instances",
    "InvalidRequestError",
    "Reply",
    "Reporter",
    "Step",
    "StreamParams",
    "bind_listeners",
    "callback_payload",
    "callback_url",
    "capabilities_body",
    "client_options",
    "connect_options",
    "error_message",
    "instance_id",
    "instance_path",
    "is_shutdown_request",
    "parse_command",
    "parse_stream_params",
    "command_line",
    "setup_logging",
    "status",
]

CAPABILITIES: Final = (
    "comments",
    "headers",
    "last-event-id",
    "read-timeout",
    "bom",
    "post",
    "report",
    "restart",
    "server-directed-shutdown-request",
)
"""The optional features of the protocol that both services implement."""

CALLBACK_TIMEOUT: Final = 10.0
"""Seconds allowed for one callback POST (connect and response) before it is given up."""

STOP_TIMEOUT: Final = 5.0
"""Seconds that stopping an instance waits for its thread or task to end."""

_INSTANCE_PREFIX: Final = "/streams/"

_log = logging.getLogger("contract-service")


class InvalidRequestError(ValueError):
    """A request body the service cannot act on: answered with 400 and this message."""


@dataclass(frozen=True)
class StreamParams:
    """The parameters of one client instance, as given in the create request."""

    stream_url: str
    callback_url: str
    tag: str = ""
    initial_delay: float | None = None
    """Seconds (``initialDelayMs`` / 1000), or ``None`` for the library default."""
    read_timeout: float | None = None
    """Seconds (``readTimeoutMs`` / 1000), or ``None`` for no read timeout."""
    last_event_id: str | None = None
    headers: dict[str, str] | None = None
    method: str = "GET"
    body: str | None = None


class ConnectOptions(TypedDict):
    """Keyword arguments of ``ConnectStrategy.http`` and ``AsyncConnectStrategy.http``."""

    headers: dict[str, str] | None
    method: str
    body: str | None
    read_timeout: float | None


class ClientOptions(TypedDict, total=False):
    """Keyword arguments of ``SSEClient`` and ``AsyncSSEClient``, besides the strategy."""

    initial_retry_delay: float
    error_strategy: ErrorStrategy
    last_event_id: str | None
    logger: logging.Logger


def _load_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequestError(f"the body is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return value


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequestError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string")
    if required and not value:
        raise InvalidRequestError(f"{name} must not be empty")
    return value


def _milliseconds(body: dict[str, Any], name: str, *, positive: bool) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    # bool is an int in Python, but true/false is not a duration.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequestError(f"{name} must be a number of milliseconds")
    if value < 0 or (positive and value == 0):
        raise InvalidRequestError(f"{name} must be {'positive' if positive else 'non-negative'}")
    return value / 1000.0


def parse_stream_params(raw: bytes) -> StreamParams:
    """
    Reads the body of ``POST /``: ``streamUrl`` and ``callbackUrl`` (required), ``tag``,
    ``initialDelayMs``, ``readTimeoutMs``, ``lastEventId``, ``headers``, ``method``, ``body``.
    A ``null`` field counts as absent.

    :raises InvalidRequestError: the body is not a JSON object, a required field is missing,
        or a field has the wrong type
    """
    body = _load_object(raw)
    headers = body.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(
            isinstance(value, str) for value in headers.values()
        ):
            raise InvalidRequestError("headers must be an object of strings")
        headers = {str(name): value for name, value in headers.items()}
    method = _string(body, "method") or "GET"
    return StreamParams(
        stream_url=_string(body, "streamUrl", required=True) or "",
        callback_url=_string(body, "callbackUrl", required=True) or "",
        tag=_string(body, "tag") or "",
        initial_delay=_milliseconds(body, "initialDelayMs", positive=False),
        read_timeout=_milliseconds(body, "readTimeoutMs", positive=True),
        last_event_id=_string(body, "lastEventId"),
        headers=headers,
        method=method,
        body=_string(body, "body"),
    )


def connect_options(params: StreamParams) -> ConnectOptions:
    """
    The arguments of the HTTP connect strategy, after the URL. The library sends the body on
    every connection attempt, and ``Content-Type: text/plain`` with it unless the headers
    name one.
    """
    return ConnectOptions(
        headers=params.headers,
        method=params.method,
        body=params.body,
        read_timeout=params.read_timeout,
    )


def client_options(params: StreamParams, logger: logging.Logger) -> ClientOptions:
    """
    The arguments of the client, after the connect strategy: it reconnects after every
    failure (the service stops it itself on a 204), starting from the requested delay.
    """
    options = ClientOptions(
        error_strategy=ErrorStrategy.always_continue(),
        last_event_id=params.last_event_id,
        logger=logger,
    )
    if params.initial_delay is not None:
        options["initial_retry_delay"] = params.initial_delay
    return options


def parse_command(raw: bytes) -> str:
    """
    Reads the body of ``POST <instance>``: ``{"command": "..."}``; returns the command name.

    :raises InvalidRequestError: the body is not a JSON object with a string ``command``
    """
    command = _string(_load_object(raw), "command", required=True)
    return command or ""


def error_message(error: Exception | None) -> str:
    """The text of an ``error`` callback: the exception's message, or what happened."""
    if error is None:
        return "the server ended the stream"
    return str(error) or repr(error)


def callback_payload(action: Action) -> dict[str, Any] | None:
    """
    The JSON body of the callback that reports ``action``, or ``None`` for an action that is
    not reported (:class:`.Start`).

    * :class:`.Event` → ``{"kind": "event", "event": {"type", "data", "id"}}``, where ``id``
      is the last event id of the stream (left out while there is none);
    * :class:`.Comment` → ``{"kind": "comment", "comment": text}``;
    * :class:`.Fault` → ``{"kind": "error", "comment": message}``, for every stream failure,
      the server's end of the stream included. (The services leave out the end caused by
      their own ``restart`` command: the client saw no failure there.)
    """
    if isinstance(action, Event):
        event: dict[str, str] = {"type": action.event, "data": action.data}
        if action.last_event_id is not None:
            event["id"] = action.last_event_id
        return {"kind": "event", "event": event}
    if isinstance(action, Comment):
        return {"kind": "comment", "comment": action.comment}
    if isinstance(action, Fault):
        return {"kind": "error", "comment": error_message(action.error)}
    return None


def is_shutdown_request(action: Action) -> bool:
    """
    Whether ``action`` is the server's request to stop for good: a 204 response. The service
    reports it, then stops the instance (capability ``server-directed-shutdown-request``).
    """
    if not isinstance(action, Fault):
        return False
    error = action.error
    return isinstance(error, HTTPStatusError) and error.status == 204


@dataclass(frozen=True)
class Callback:
    """One callback to send: POST ``payload`` as JSON to ``url``."""

    url: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Step:
    """What the service does next: send a callback (if any), then close the client (if told)."""

    callback: Callback | None = None
    close: bool = False


class Reporter:
    """
    What one instance reports of its client, without the I/O. The service hands each item of
    the client's ``all`` to :meth:`on_action` (an exception out of the iteration to
    :meth:`on_failure`) and does what the :class:`Step` says: it sends the callback (numbered
    1, 2, 3... in order) and closes the client when told to (on a 204, or once stopped).

    A ``restart`` command (:meth:`restart`) makes the client drop its connection; that end of
    the stream is the service's doing, not a failure the client saw, so it is not reported
    (the harness expects the next message after a restart to be the next event).
    """

    def __init__(self, params: StreamParams, logger: logging.Logger):
        self._base = params.callback_url
        self._logger = logger
        self._callbacks = 0
        # restart() and stop() come from request threads in the sync service, while
        # on_action() runs in the instance's thread.
        self._lock = threading.Lock()
        self._restart_pending = False
        self._stopped = False

    def restart(self) -> None:
        """Notes that the service is about to drop the client's connection on command."""
        with self._lock:
            self._restart_pending = True

    def stop(self) -> None:
        """Notes that the instance is being stopped: nothing more is reported."""
        with self._lock:
            self._stopped = True

    def _step(self, payload: dict[str, Any] | None, close: bool = False) -> Step:
        if payload is None:
            return Step(close=close)
        self._callbacks += 1
        return Step(Callback(callback_url(self._base, self._callbacks), payload), close)

    def on_action(self, action: Action) -> Step:
        """What to do for ``action``, the next item of the client's ``all``."""
        ended = isinstance(action, Fault) and action.error is None
        with self._lock:
            stopped, restarted = self._stopped, self._restart_pending and ended
            if ended or isinstance(action, Start):
                # The end a restart caused, or a new connection: a restart that found no
                # connection to drop is over too.
                self._restart_pending = False
        if stopped:
            return Step(close=True)
        if restarted:
            return Step()
        if is_shutdown_request(action):
            self._logger.info("The server answered 204: not reconnecting")
            # Closing the client ends the iteration: it never reconnects after close().
            return self._step(callback_payload(action), close=True)
        return self._step(callback_payload(action))

    def on_failure(self, error: Exception) -> Step:
        """What to do when the client's iteration raised ``error``: report it, unless stopped."""
        self._logger.error("The client failed", exc_info=error)
        with self._lock:
            if self._stopped:
                return Step()
        return self._step({"kind": "error", "comment": error_message(error)})


def callback_url(base: str, number: int) -> str:
    """The URL of the ``number``-th callback of an instance: ``<base>/<number>``."""
    return f"{base.rstrip('/')}/{number}"


def instance_path(instance: str) -> str:
    """The path of an instance's resource (the ``Location`` of ``POST /``)."""
    return f"{_INSTANCE_PREFIX}{instance}"


def instance_id(path: str) -> str | None:
    """The instance named by a request path, or ``None`` if the path names no instance."""
    path = path.partition("?")[0]
    if not path.startswith(_INSTANCE_PREFIX):
        return None
    instance = path[len(_INSTANCE_PREFIX) :].rstrip("/")
    return instance if instance and "/" not in instance else None


def capabilities_body() -> bytes:
    """The JSON body of ``GET /``."""
    return json.dumps({"capabilities": list(CAPABILITIES)}).encode()


def bind_listeners(port: int) -> list[socket.socket]:
    """
    Listening sockets on the loopback addresses, so that ``http://localhost:PORT`` reaches
    the service whichever address ``localhost`` resolves to first: 127.0.0.1, and ::1 on
    the same port when the host has IPv6 (skipped, with a warning, if it cannot be bound).

    :param port: the port; 0 picks a free one (read it from the first socket)
    :raises OSError: 127.0.0.1 cannot be bound
    """
    listeners = [_listen(socket.AF_INET, "127.0.0.1", port)]
    port = listeners[0].getsockname()[1]
    if socket.has_ipv6:
        try:
            listeners.append(_listen(socket.AF_INET6, "::1", port))
        except OSError as e:
            _log.warning("Not listening on [::1]:%d: %s", port, e)
    return listeners


def _listen(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def setup_logging() -> None:
    """Logs of the service and of the clients to stderr, one line a record."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def command_line(description: str, transports: Sequence[str]) -> tuple[int, str]:
    """
    The command line of a service, ``[--transport NAME] PORT``: the port, and the transport
    (one of ``transports``, the first by default); logging set up.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("port", type=int, help="the port to listen on (0: any free port)")
    parser.add_argument(
        "--transport",
        choices=transports,
        default=transports[0],
        help="the HTTP library that reads the streams (default: %(default)s)",
    )
    args = parser.parse_args()
    setup_logging()
    return int(args.port), str(args.transport)


# -- one instance, and the answers to every request, without the I/O ------------------------


@dataclass(frozen=True)
class Reply:
    """An answer of the service: its status, its body, and headers besides the body's."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/plain"
    charset: str | None = "utf-8"


def _refusal(status: int, reason: object) -> Reply:
    return Reply(status, f"{reason}\n".encode())


def status(path: str) -> Reply:
    """``GET <path>``: the capabilities at ``/``."""
    if path.partition("?")[0] != "/":
        return Reply(404)
    return Reply(200, capabilities_body(), content_type="application/json", charset=None)


ClientT = TypeVar("ClientT")


class Instance(Generic[ClientT]):
    """
    One client instance apart from its I/O: its name, its parameters, its logger, its client
    (of class ``ClientT``) and the :class:`Reporter` of what the client does. Each service adds the
    thread or task that reads the client and sends the callbacks, one at a time and in order.
    """

    def __init__(
        self,
        flavour: str,
        name: str,
        params: StreamParams,
        client: Callable[..., ClientT],
        strategy: Callable[..., Any],
    ):
        self.name = name
        self.params = params
        self.logger = logging.getLogger(f"contract-service.{flavour}.{name}")
        # May raise TypeError/ValueError for parameters the library rejects (a bad URL...).
        self.client = client(
            strategy(params.stream_url, **connect_options(params)),
            **client_options(params, self.logger),
        )
        self.reporter = Reporter(params, self.logger)
        self.logger.info("Starting %r on %s", params.tag, params.stream_url)


InstanceT = TypeVar("InstanceT", bound=Instance[Any])


class Instances(Generic[InstanceT]):
    """
    The instances of a service by name, and the answer to each request about them: each
    method returns the :class:`Reply` to send, and the instance the service then starts,
    restarts or stops (``None``: nothing to do). Safe to call from several threads.
    """

    def __init__(self, make: Callable[[str, StreamParams], InstanceT]):
        self._make = make
        self._instances: dict[str, InstanceT] = {}
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    def create(self, raw: bytes, host: str) -> tuple[Reply, InstanceT | None]:
        """``POST /`` with body ``raw``: 201 and the new instance (its URL in ``Location``)."""
        try:
            params = parse_stream_params(raw)
            with self._lock:
                name = str(next(self._names))
            instance = self._make(name, params)
        except (InvalidRequestError, TypeError, ValueError) as e:
            return _refusal(400, e), None
        with self._lock:
            self._instances[name] = instance
        return Reply(201, headers={"Location": f"http://{host}{instance_path(name)}"}), instance

    def command(self, path: str, raw: bytes) -> tuple[Reply, InstanceT | None]:
        """``POST <instance>`` with body ``raw``: ``{"command": "restart"}``, the instance."""
        name = instance_id(path)
        with self._lock:
            instance = self._instances.get(name) if name is not None else None
        if instance is None:
            return _refusal(404, "no such stream"), None
        try:
            command = parse_command(raw)
        except InvalidRequestError as e:
            return _refusal(400, e), None
        if command != "restart":
            return _refusal(400, f"unknown command {command!r}"), None
        return Reply(204), instance

    def delete(self, path: str) -> tuple[Reply, InstanceT | None]:
        """``DELETE <instance>``: forgets the instance, which the service then stops."""
        name = instance_id(path)
        with self._lock:
            instance = self._instances.pop(name, None) if name is not None else None
        return (Reply(204), instance) if instance else (_refusal(404, "no such stream"), None)

    def delete_all(self) -> list[InstanceT]:
        """Forgets every instance (the service is stopping); they are the service's to stop."""
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        return instances

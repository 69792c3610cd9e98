"""
The run loop of ``sse``: one :class:`.SSEClient` read through ``all``, each event written the
moment it arrives, and the decisions that end the run (:func:`decide` for failures; the
limits ``-n``, ``--timeout`` and ``--until``). Everything here uses the public API of the
library; the connection log and the byte counter come from a :class:`.ConnectStrategy` that
wraps :meth:`.ConnectStrategy.http`.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from logging import Logger
from time import monotonic, time
from typing import IO, TYPE_CHECKING, Any, Final, Literal, NoReturn, TextIO

from ld_eventsource._cli.args import Options, UsageError
from ld_eventsource._cli.formats import NO_VALUE, make_formatter, use_color
from ld_eventsource._cli.report import Reporter, Stats, causes, describe, status_text
from ld_eventsource._cli.state import StateFile, StateFileError
from ld_eventsource._http import Proxies, Proxy
from ld_eventsource.actions import Comment, Event, Fault, Start
from ld_eventsource.config import (
    ConnectionClient,
    ConnectionResult,
    ConnectStrategy,
    ErrorStrategy,
)
from ld_eventsource.errors import Headers, HTTPContentTypeError, HTTPStatusError

if TYPE_CHECKING:
    from urllib3 import PoolManager

    from ld_eventsource.sse_client import SSEClient

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Decision",
    "Streams",
    "decide",
    "is_permanent",
    "make_pool",
    "make_strategy",
    "run",
]

EXIT_OK: Final = 0
"""Done: a limit was reached, or the stream ended and no reconnection is wanted."""
EXIT_FAILED: Final = 1
"""The stream failed for good."""
EXIT_USAGE: Final = 2
"""A wrong argument or an unusable input file."""
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C (128 + SIGINT, as shells report it)."""

_STUCK_GRACE: Final = 1.0
"""After --timeout closed the client, how long the main thread may take to notice."""


@dataclass(frozen=True)
class Streams:
    """Where a run reads and writes, and what they are connected to."""

    stdout: IO[bytes]
    stderr: TextIO
    stdout_terminal: bool = False
    stderr_terminal: bool = False
    no_color: bool = False
    """``NO_COLOR`` is set (to anything but the empty string), or ``TERM`` is ``dumb``."""
    output_gone: Callable[[], None] = lambda: None
    """Called when the reader of stdout went away (so that the exit stays quiet)."""
    hard_exit: Callable[[int], NoReturn] = os._exit
    """Ends the process when ``--timeout`` cannot stop a main thread stuck in a system call."""


# -- failures ---------------------------------------------------------------------------------


def is_permanent(error: Exception) -> bool:
    """
    Whether trying again cannot help: HTTP 4xx but 408 (timeout) and 429 (too many
    requests), a redirect that cannot be followed, a response that is not an event
    stream, and a TLS certificate that is not trusted. 5xx, network errors and broken
    streams may pass.
    """
    if isinstance(error, HTTPContentTypeError):
        return True
    if isinstance(error, HTTPStatusError):
        return error.status < 500 and error.status not in (408, 429)
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes(error))


@dataclass(frozen=True)
class Decision:
    """What to do after a :class:`.Fault`."""

    reconnect: bool
    failures: int
    """Failures in a row, this one included."""
    status: int = EXIT_OK
    """The exit status, when not reconnecting."""
    message: str | None = None
    """Why the run ends, when it ends on an error."""


def decide(
    error: Exception | None,
    *,
    received: bool,
    failures: int,
    max_attempts: int | None,
    reconnect_on_end: bool,
) -> Decision:
    """
    Whether to reconnect after a failure (``error``) or an orderly end of stream (``None``).

    :param received: something (an event or a comment) arrived on the connection that just
        ended: the failures in a row start again from this one
    :param failures: failures in a row before this one
    :param max_attempts: failures in a row allowed; ``None``: no limit
    :param reconnect_on_end: whether an orderly end is followed by a reconnection
    """
    if error is None:
        return Decision(reconnect=reconnect_on_end, failures=0)
    if isinstance(error, HTTPStatusError) and error.status == 204:
        return Decision(reconnect=False, failures=0)  # the server's "no more events"
    count = 1 if received else failures + 1
    if is_permanent(error):
        return Decision(False, count, EXIT_FAILED, describe(error))
    if max_attempts is not None and count >= max_attempts:
        message = describe(error)
        if max_attempts > 1:
            message += f" (giving up after {count} failures in a row)"
        return Decision(False, count, EXIT_FAILED, message)
    return Decision(reconnect=True, failures=count)


# -- connection -------------------------------------------------------------------------------


def make_pool(opts: Options) -> PoolManager | None:
    """
    The urllib3 pool for ``--insecure`` or ``--cacert``; ``None`` (the client's own pool)
    otherwise. With ``--proxy`` (or a proxy from the environment), the client makes its
    proxy manager with this pool's TLS settings.

    :raises UsageError: the CA file cannot be used
    """
    if not opts.insecure and opts.cacert is None:
        return None
    import urllib3

    if opts.insecure:
        # Asked for: urllib3 would otherwise warn on every request.
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        # No certificate check means no host name check either, on urllib3 1.26 and 2.
        return urllib3.PoolManager(cert_reqs="CERT_NONE")
    try:
        ssl.create_default_context(cafile=opts.cacert)  # checked here, for a clear error
    except ssl.SSLError as e:  # before OSError, of which it is a subclass
        raise UsageError(
            f"--cacert {opts.cacert}: not a PEM file of CA certificates ({e.reason or e})"
        ) from None
    except OSError as e:
        raise UsageError(f"--cacert {opts.cacert}: cannot read: {e.strerror or e}") from None
    # The file rather than an SSLContext: urllib3 then checks the host name itself, also for
    # an IP address (urllib3 1.26 gives a context of one's own no server_hostname for one).
    return urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=opts.cacert)


def make_strategy(opts: Options, pool: PoolManager | None) -> ConnectStrategy:
    """
    :meth:`.ConnectStrategy.http` with the request options.

    :raises UsageError: the library refused them (a URL that is not http or https, a
        method name that is not one)
    """
    options: dict[str, Any] = {}
    if opts.connect_timeout is not None:
        from urllib3.util import Timeout

        options["timeout"] = Timeout(connect=opts.connect_timeout, read=None)
    try:
        return ConnectStrategy.http(
            opts.url,
            headers=opts.headers,
            pool=pool,
            urllib3_request_options=options,
            method=opts.method,
            body=opts.body,
            read_timeout=opts.read_timeout,
            proxy=False if opts.proxy == "" else opts.proxy,
        )
    except ValueError as e:
        raise UsageError(str(e).replace("proxy ", "--proxy ", 1)) from None


class _Watched(ConnectStrategy):
    """Wraps a strategy: logs each attempt and response (the ``-v`` log)."""

    def __init__(self, inner: ConnectStrategy, watch: _Watch):
        self._inner = inner
        self._watch = watch

    def create_client(self, logger: Logger) -> ConnectionClient:
        return _WatchedClient(self._inner.create_client(logger), self._watch)


class _WatchedClient(ConnectionClient):
    def __init__(self, inner: ConnectionClient, watch: _Watch):
        self._inner = inner
        self._watch = watch

    def connect(self, last_event_id: str | None) -> ConnectionResult:
        self._watch.attempt(last_event_id)
        result = self._inner.connect(last_event_id)
        self._watch.connected(result.status, result.headers)
        return result

    def close(self) -> None:
        self._inner.close()


class _Watch:
    def __init__(self, opts: Options, reporter: Reporter):
        self.opts = opts
        self.reporter = reporter
        self._proxy: Proxy | Literal[False] | None = False  # False: not worked out yet
        self.client: SSEClient | None = None
        """The client, once made: it counts the attempts."""

    def attempt(self, last_event_id: str | None) -> None:
        report = self.reporter
        if report.verbose:
            number = self.client.stats.connection_attempts if self.client is not None else 0
            report.log(f"* attempt {number}: {self.opts.method} {self.opts.url}")
            proxy = self.proxy()
            if proxy is not None:  # its URL without the credentials
                report.log(f"* via proxy {proxy.url}")
            if last_event_id:
                report.log(f"> Last-Event-ID: {last_event_id}")
            report.log_headers(">", self.opts.headers)
            if self.opts.body is not None:
                report.log(f"> ({len(self.opts.body)} bytes of body)")

    def proxy(self) -> Proxy | None:
        """The proxy of the stream URL, by the rules the client follows (--proxy, or the
        environment, read when the client was created)."""
        if self._proxy is False:
            choice = Proxies.create(False if self.opts.proxy == "" else self.opts.proxy)
            self._proxy = choice.resolve().for_url(self.opts.url)
        return self._proxy

    def connected(self, status: int | None, headers: Headers | None) -> None:
        self.reporter.log(f"< {status_text(status)}" if status is not None else "< connected")
        self.reporter.log_headers("<", headers)


# -- the limits -------------------------------------------------------------------------------


class _Deadline:
    """
    ``--timeout``: closes the client from a timer thread, which ends a blocked read at once.
    A main thread stuck where ``close()`` cannot reach (resolving a host name, say) is given
    a moment, then the process ends all the same.
    """

    def __init__(self, seconds: float, client: SSEClient, on_stuck: Callable[[], None]):
        self.expired = False
        self._seconds = seconds
        self._client = client
        self._on_stuck = on_stuck
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sse-timeout", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._done.wait(self._seconds):
            return
        self.expired = True
        self._client.close()
        if not self._done.wait(_STUCK_GRACE):
            self._on_stuck()

    def done(self) -> None:
        """The main thread has left the loop."""
        self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


class _Interrupts:
    """
    Ctrl-C, held back while an event is written and its id saved: a run interrupted
    between the two would show the event again when it resumes. A second Ctrl-C in that
    moment (the output is blocked, say) interrupts at once.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._pending = False
        self._previous: Any = None

    def install(self) -> None:
        """Takes over SIGINT, if this is the main thread and SIGINT has Python's handler."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # ignored (a background job), or someone else's: left alone
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def uninstall(self) -> None:
        """Gives SIGINT back."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: object) -> None:
        if self._depth and not self._pending:
            self._pending = True
            return
        raise KeyboardInterrupt

    def __enter__(self) -> None:
        """Ctrl-C waits for the end of the ``with`` block."""
        self._depth += 1

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if not self._depth and self._pending:
            self._pending = False
            raise KeyboardInterrupt


# -- the run ----------------------------------------------------------------------------------


def _seconds(delay: float) -> str:
    return f"{delay:.1f}s" if delay >= 1 else f"{delay:.2f}s"


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _event_name(number: int, event: Event) -> str:
    return f"event {number}" + (f" (id {event.id})" if event.id is not None else "")


class _StopRunError(Exception):
    def __init__(self, status: int, message: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message


class _Run:
    def __init__(
        self,
        opts: Options,
        streams: Streams,
        client: SSEClient,
        state: StateFile | None,
        started: float,
        reporter: Reporter,
        interrupts: _Interrupts,
    ):
        self.opts = opts
        self.streams = streams
        self.client = client
        self.state = state
        self.started = started
        self.reporter = reporter
        color = use_color(opts.color, terminal=streams.stdout_terminal, no_color=streams.no_color)
        self.formatter = make_formatter(opts.format, color=color, terminal=streams.stdout_terminal)
        self.interrupts = interrupts
        self.shown = 0
        self.received = 0  # events handed out so far: the number of the next one, less one
        self.field_values = 0
        self.last_error: Exception | None = None

    def write(self, text: str) -> None:
        if text:
            out = self.streams.stdout
            out.write(text.encode("utf-8"))
            out.flush()

    def save_state(self, last_event_id: str | None) -> None:
        if self.state is not None:
            try:
                with self.interrupts:
                    self.state.save(last_event_id)
            except StateFileError as e:
                raise _StopRunError(EXIT_FAILED, str(e)) from None

    def execute(self) -> int:
        opts = self.opts
        deadline = None
        if opts.timeout is not None:
            # Counted from the start of the run, not from here.
            left = opts.timeout - (monotonic() - self.started)
            deadline = _Deadline(max(left, 0.0), self.client, self.stuck)
        message: str | None = None
        output = True
        try:
            status = self.loop()
        except _StopRunError as stop:
            status, message = stop.status, stop.message
        except BrokenPipeError:
            # The reader has had enough (``sse URL | head -3``): not an error.
            status, output = EXIT_OK, False
            self.streams.output_gone()
        except OSError as e:
            # Only writing the output raises here: the client turns its own errors into
            # faults, and save_state() into _StopRunError.
            status, output = EXIT_FAILED, False
            message = f"cannot write the output: {e.strerror or e}"
        except KeyboardInterrupt:
            status = EXIT_INTERRUPTED
        finally:
            if deadline is not None:
                deadline.done()
        self.client.close()
        if deadline is not None and deadline.expired and message is None and status == EXIT_OK:
            status, message = self.timeout_status()
        if output and status != EXIT_INTERRUPTED:
            try:
                self.write(self.formatter.finish())
            except BrokenPipeError:
                self.streams.output_gone()
            except OSError:
                pass
        return self.finish(status, message)

    def timeout_status(self) -> tuple[int, str | None]:
        """``--timeout`` passed: done, unless no connection was ever made."""
        if self.client.stats.connections:
            return EXIT_OK, None
        message = f"{self.opts.url}: no connection within {self.opts.timeout:g}s"
        if self.last_error is not None:
            message += f" ({describe(self.last_error)})"
        return EXIT_FAILED, message

    def stuck(self) -> None:
        """Called by the timer thread when the main thread cannot be woken."""
        status, message = self.timeout_status()
        self.streams.hard_exit(self.finish(status, message))

    def on_event(self, event: Event) -> None:
        opts = self.opts
        self.received += 1
        if opts.until is not None and event.data == opts.until:
            self.save_state(event.last_event_id)
            raise _StopRunError(EXIT_OK)
        if opts.events and event.event not in opts.events:
            self.save_state(event.last_event_id)
            return
        value: Any = NO_VALUE
        if opts.field is not None:
            try:
                value = opts.field.lookup(json.loads(event.data))
            except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
                self.reporter.warning(
                    f"{_event_name(self.received, event)}: the data is not JSON, "
                    f"skipped: {_short(event.data)}"
                )
                self.save_state(event.last_event_id)
                return
            if value is NO_VALUE:
                self.save_state(event.last_event_id)
                return
            self.field_values += 1
        if self.state is None:
            self.write(self.formatter.event(event, time(), value))
        else:
            with self.interrupts:
                self.write(self.formatter.event(event, time(), value))
                self.save_state(event.last_event_id)
        self.shown += 1
        if opts.count is not None and self.shown >= opts.count:
            raise _StopRunError(EXIT_OK)

    def loop(self) -> int:
        opts = self.opts
        failures = 0
        connected = received = False
        for action in self.client.all:
            if isinstance(action, Event):
                received = True
                self.on_event(action)
            elif isinstance(action, Comment):
                received = True
                if opts.comments:
                    self.write(self.formatter.comment(action.comment, time()))
            elif isinstance(action, Start):
                connected, received = True, False
                self.reporter.notice(f"connected to {opts.url}")
            elif isinstance(action, Fault):
                decision = decide(
                    action.error,
                    received=connected and received,
                    failures=failures,
                    max_attempts=opts.max_attempts,
                    reconnect_on_end=opts.reconnect_on_end,
                )
                self.on_fault(action.error, connected, decision)
                failures = decision.failures
                connected = received = False
                if not decision.reconnect:
                    return decision.status
        return EXIT_OK  # the client was closed by --timeout

    def on_fault(self, error: Exception | None, connected: bool, decision: Decision) -> None:
        report = self.reporter
        if error is None:
            what = "the server ended the stream"
        else:
            self.last_error = error
            if isinstance(error, HTTPStatusError) and error.status == 204:
                what = f"{status_text(204)}: the server has no more events"
            else:
                what = ("stream broken: " if connected else "connection failed: ") + describe(error)
        report.log(f"* {what}")
        if not decision.reconnect:
            if decision.message is not None:
                raise _StopRunError(decision.status, f"{self.opts.url}: {decision.message}")
            report.notice(what)
            return
        delay = self.client.next_retry_delay
        tries = f"failure {decision.failures}"
        if self.opts.max_attempts is not None:
            tries += f" of {self.opts.max_attempts}"
        if report.verbose:
            report.log(f"* reconnecting in {_seconds(delay)}" + (f" ({tries})" if error else ""))
        elif error is None:
            report.notice(f"{what}; reconnecting in {_seconds(delay)}")
        else:
            report.warning(f"{what}; reconnecting in {_seconds(delay)} ({tries})")

    def finish(self, status: int, message: str | None) -> int:
        """The last words of a run, ``--stats`` included; returns the exit status."""
        report = self.reporter
        field = self.opts.field
        if status == EXIT_OK and field is not None and self.received and not self.field_values:
            report.warning(f"--field {field.text}: no event had a value there")
        if message is not None:
            report.error(message)
        if self.opts.stats:
            report.stats(Stats.of(self.client.stats, self.started))
        return status


def _load_state(opts: Options) -> tuple[StateFile | None, str | None]:
    if opts.state_file is None:
        return None, opts.last_event_id
    state = StateFile(opts.state_file, opts.url)
    try:
        saved = state.load()
    except StateFileError as e:
        raise UsageError(str(e)) from None
    # An explicit --last-event-id wins over the saved one.
    return state, saved if opts.last_event_id is None else opts.last_event_id


def run(opts: Options, streams: Streams) -> int:
    """
    Reads the stream as ``opts`` says, writing to ``streams``; returns the exit status.

    :raises UsageError: something found unusable before connecting (the state file, the
        CA file, an option the library refuses)
    """
    from ld_eventsource.sse_client import SSEClient

    state, last_event_id = _load_state(opts)
    started = monotonic()  # --timeout and --stats count from here
    reporter = Reporter(
        streams.stderr, verbose=opts.verbose, quiet=opts.quiet, terminal=streams.stderr_terminal
    )
    pool = make_pool(opts)
    try:
        watch = _Watch(opts, reporter)
        strategy = _Watched(make_strategy(opts, pool), watch)
        for warning in opts.warnings:
            reporter.warning(warning)
        client = SSEClient(
            strategy,
            initial_retry_delay=opts.retry_delay,
            error_strategy=ErrorStrategy.always_continue(),
            last_event_id=last_event_id,
        )
        interrupts = _Interrupts()
        interrupts.install()
        try:
            watch.client = client
            return _Run(opts, streams, client, state, started, reporter, interrupts).execute()
        finally:
            interrupts.uninstall()
            client.close()
    finally:
        if pool is not None:
            pool.clear()

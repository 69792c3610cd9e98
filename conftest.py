"""
Runs every Python example of the documentation with sybil: the code blocks of README.md and
of the pages under docs/, and the ``.. code-block:: python`` blocks of the docstrings under
src/. ``make test`` and ``make docs`` both run them.

This file is the one place that knows how: the examples are shown as a user would write
them, against remote URLs, and run here against a loopback test server.

* Every ``http(s)://`` URL on ``example.com`` (any subdomain) or ``my-server.com`` is pointed
  at an HTTP/1.1 server on 127.0.0.1 that one page's examples share (``ld_eventsource.testing``,
  the test server users get); the path is kept.
* What the server answers depends on the path (``FEEDS_BY_PATH``), or on the heading of the
  section the example is in (``FEEDS_BY_HEADING``), and is otherwise the default stream: a
  ``retry: 10`` (so that a client that reconnects does it within milliseconds), a comment,
  three events with ids (the last one's data is ``STOP``), then an orderly end. A loop over a
  stream therefore ends with the stream, or with the client's error strategy.
* Each example runs on its own, in a namespace holding only the helpers that some documented
  examples use without defining them (:class:`Helpers`), in a temporary working directory.
  What it leaves behind is collected at once, so that a socket it left unclosed fails that
  example (a ``ResourceWarning``, an error under ``-W error``), not a later one.
* ``ErrorStrategy.continue_with_time_limit`` gets a clock that runs 60 seconds ahead for each
  request the server answered, so that an example giving up after 300 s of retries does so
  after five quick reconnections.
* A block meant as a fragment (a signature, ``start.headers``) is marked
  ``<!-- skip: next -->`` (``.. skip: next`` in a docstring) and its page says so.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import tempfile
import time
import zlib
from collections.abc import Callable
from typing import Any

from sybil import Document, Example, Sybil
from sybil.document import PythonDocStringDocument
from sybil.evaluators.python import pad
from sybil.parsers.myst import CodeBlockParser as MystCodeBlockParser
from sybil.parsers.myst import SkipParser as MystSkipParser
from sybil.parsers.rest import CodeBlockParser as RestCodeBlockParser
from sybil.parsers.rest import SkipParser as RestSkipParser

from ld_eventsource.config import ErrorStrategy
from ld_eventsource.testing import Conn, Request, SSEServer, sse, status_handler

REMOTE_URL = re.compile(
    r"https?://(?:[\w-]+\.)*(?:example\.com|my-server\.com)(?P<path>[^\s\"'`)]*)"
)

# -- what the server answers ---------------------------------------------------------------


def default_feed(conn: Conn, history: list[Request]) -> None:
    """``retry: 10``, a comment, three events with ids (the last one ``STOP``), the end."""
    conn.send_head(headers={"X-RateLimit-Remaining": "99", "Server": "docs-test-server"})
    conn.send(sse(retry=10, comment=" welcome"))
    conn.send(sse(id="1", data="hello"))
    conn.send(sse(id="2", event="update", data='{"n": 2}'))
    conn.send(sse(id="3", data="STOP"))
    conn.end()


def chat_feed(conn: Conn, history: list[Request]) -> None:
    """
    An LLM-style endpoint: POST with a JSON body and a bearer token. The first connection
    drops after two tokens; a reconnection must bring a new token and ``Last-Event-ID``.
    """
    request = conn.request
    token = request.headers.get("authorization", "")
    if request.method != "POST" or not token.startswith("Bearer "):
        respond(401)(conn, history)
        return
    body = json.loads(request.body)
    tokens = ["Hel", "lo", ",", " world"]
    if token in [r.headers.get("authorization") for r in history[:-1]]:
        respond(401)(conn, history)
        return
    resume = int(request.headers.get("last-event-id", "0"))
    conn.send_head()
    conn.send(sse(retry=10))
    for n, text in enumerate(tokens, start=1):
        if n <= resume:
            continue
        conn.send(sse(id=str(n), event="token", data=json.dumps({"delta": text})))
        if n == 2 and resume == 0:
            conn.abort()  # the connection breaks mid-answer
            return
    conn.send(sse(event="done", data=json.dumps({"model": body.get("model")})))
    conn.send(sse(data="[DONE]"))
    conn.end()


def resume_feed(conn: Conn, history: list[Request]) -> None:
    """Events 1-2 then a broken connection; then from ``Last-Event-ID`` on to 4, the end."""
    last = int(conn.request.headers.get("last-event-id", "0"))
    conn.send_head()
    conn.send(sse(retry=10))
    for n in range(last + 1, 5):
        conn.send(sse(id=str(n), data=f"event {n}"))
        if n == 2 and last == 0:
            conn.abort()
            return
    conn.end()


def quiet_feed(conn: Conn, history: list[Request]) -> None:
    """First connection: one event, then silence. Later: heartbeat comments, events, end."""
    conn.send_head()
    conn.send(sse(retry=10, id="1", data="first"))
    if len(history) == 1:
        conn.wait_client_gone(10)
        return
    for n in range(2, 4):
        conn.send(sse(comment=""))  # a heartbeat: an empty comment line
        if not conn.sleep(0.05):
            return
        conn.send(sse(id=str(n), data=f"event {n}"))
    conn.send(sse(data="bye"))
    conn.end()


def ticks_feed(conn: Conn, history: list[Request]) -> None:
    """``retry: 20`` and one tick per connection; the fourth connection says ``bye``."""
    conn.send_head()
    n = len(history)
    conn.send(sse(retry=20, id=str(n), data="bye" if n >= 4 else f"tick {n}"))
    conn.end()


def compressed_feed(conn: Conn, history: list[Request]) -> None:
    """
    The default stream in gzip when the request asks for it (flushed after each event, as a
    server that compresses a live stream does); as it is otherwise.
    """
    asked = conn.request.headers.get("accept-encoding", "")
    gzip = "gzip" in [c.split(";")[0].strip() for c in asked.split(",")]
    conn.send_head(headers={"Content-Encoding": "gzip"} if gzip else None)
    z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for block in (sse(retry=10), *(sse(id=str(n), data=f"event {n}") for n in (1, 2)),
                  sse(id="3", data="STOP")):  # fmt: skip
        conn.send(z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH) if gzip else block)
    if gzip:
        conn.send(z.flush())
    conn.end()


def respond(status: int, headers: dict[str, str] | None = None) -> Feed:
    """A complete response with that status (and a short text body)."""
    body = "" if status in (204, 304) else f"status {status}\n"
    handler = status_handler(status, headers=headers, body=body)
    return lambda conn, history: handler(conn)


Feed = Callable[[Conn, list[Request]], None]
"""Answers one request; ``history``: this example's requests to the same path, in order."""

FEEDS_BY_PATH: dict[str, Feed] = {
    "/v1/chat/completions": chat_feed,
    "/resume": resume_feed,
    "/quiet": quiet_feed,
    "/ticks": ticks_feed,
    "/compressed": compressed_feed,
    "/gone": respond(204),
    "/busy": respond(503, {"Retry-After": "5"}),
}

FEEDS_BY_HEADING: dict[str, Feed] = {
    "Handle rate limiting": respond(429, {"Retry-After": "30"}),
    "Get the next retry delay": respond(503, {"Retry-After": "5"}),
}


# -- the helpers some documented examples use without defining them ------------------------


class Helpers:
    """Stand-ins for the application code around an example: they record what they get."""

    def __init__(self, server_url: str) -> None:
        self.processed: list[Any] = []
        self.saved_ids: list[str | None] = []
        self.server_url = server_url

    def namespace(self) -> dict[str, Any]:
        """The names an example finds already defined."""
        return {
            "__name__": "__docs_example__",
            "process": self.processed.append,
            "get_session_id": lambda: "session-42",
            "load_saved_id": lambda: "2",
            "load_last_event_id": lambda: "2",
            "save_id": self.saved_ids.append,
            "save_last_event_id": self.saved_ids.append,
            "save_id_to_db": self.saved_ids.append,
            "url1": f"{self.server_url}/stream/1",
            "url2": f"{self.server_url}/stream/2",
        }


# -- running the examples ------------------------------------------------------------------


class Page:
    """What one document's examples share: the server, the feed of the current example."""

    def __init__(self) -> None:
        self.feed: Feed | None = None
        self.first_request = 0  # the index of the current example's first request
        self.server = SSEServer(self.handle)
        self.helpers = Helpers(self.server.url)
        self.workdir = tempfile.TemporaryDirectory(prefix="docs-example-")

    def handle(self, conn: Conn) -> None:
        path = conn.request.path_only
        history = [r for r in conn.server_requests()[self.first_request :] if r.path_only == path]
        feed = self.feed or FEEDS_BY_PATH.get(path) or default_feed
        feed(conn, history)

    def clock(self) -> float:
        """The clock of continue_with_time_limit: 60 s ahead for each request answered."""
        return time.monotonic() + 60.0 * len(self.server.requests)


def heading_of(example: Example) -> str:
    """The heading of the section the example is in (Markdown ``#`` lines)."""
    text = example.document.text[: example.region.start]
    headings = re.findall(r"^#+ +(.+)$", text, re.MULTILINE)
    return headings[-1] if headings else ""


def evaluate(example: Example) -> None:
    """Runs one example on its own, against the page's loopback server."""
    page: Page = example.document.namespace["page"]
    heading = heading_of(example)
    page.feed = next((f for h, f in FEEDS_BY_HEADING.items() if h in heading), None)
    page.first_request = len(page.server.requests)
    source = REMOTE_URL.sub(lambda m: page.server.url + m["path"], str(example.parsed))
    code = compile(
        pad(source, example.line + example.parsed.line_offset),
        example.path,
        "exec",
        dont_inherit=True,
    )
    namespace = page.helpers.namespace()
    cwd = os.getcwd()
    os.chdir(page.workdir.name)
    try:
        exec(code, namespace)
    finally:
        os.chdir(cwd)
        namespace.clear()
        # Whatever the example left open is finalized now, within this example's test.
        gc.collect()
        # An example that ran an event loop must not leave one set for the next.
        asyncio.set_event_loop(None)


_clock_defaults: list[dict[str, Any]] = []


def setup(namespace: dict[str, Any]) -> None:
    """Starts the page's server, and gives continue_with_time_limit the fast clock."""
    page = Page()
    page.server.start()
    namespace["page"] = page
    defaults = ErrorStrategy.continue_with_time_limit.__kwdefaults__
    _clock_defaults.append(dict(defaults))
    defaults["clock"] = page.clock


def teardown(namespace: dict[str, Any]) -> None:
    """Stops the page's server (raising what its handlers raised) and restores the clock."""
    page: Page = namespace.pop("page")
    ErrorStrategy.continue_with_time_limit.__kwdefaults__.update(_clock_defaults.pop())
    try:
        page.server.close()
    finally:
        page.workdir.cleanup()


class DocstringDocument(PythonDocStringDocument):
    """The docstrings of a module, without importing the module into the namespace."""

    def __init__(self, text: str, path: str) -> None:
        Document.__init__(self, text, path)


markdown = Sybil(
    parsers=[MystCodeBlockParser(language="python", evaluator=evaluate), MystSkipParser()],
    patterns=["README.md", "docs/*.md", "docs/*/*.md"],
    excludes=["docs/_build/*"],
    setup=setup,
    teardown=teardown,
    name="docs",
)
docstrings = Sybil(
    parsers=[RestCodeBlockParser(language="python", evaluator=evaluate), RestSkipParser()],
    patterns=["src/ld_eventsource/*.py", "src/ld_eventsource/*/*.py"],
    document_types={".py": DocstringDocument},
    setup=setup,
    teardown=teardown,
    name="docstrings",
)

pytest_collect_file = (markdown + docstrings).pytest()

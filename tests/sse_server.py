"""
The test server of the project's own tests: :class:`ld_eventsource.testing.SSEServer` with
two differences. A request with no route and no handler gets a 404 (the public server serves
it from its queue), and ``tls=`` takes a ``trustme.CA`` and serves HTTPS with a certificate it
issues (the public server takes a ready ``ssl_context``). The handlers, ``sse()`` and the
rest come from :mod:`ld_eventsource.testing`.

Usage::

    with SSEServer(events_handler([sse(data="a"), sse(data="b")])) as server:
        ...  # point a client at server.url
        request = server.wait_requests(1)[0]
        assert request.headers["accept"] == "text/event-stream"
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from ld_eventsource import testing
from ld_eventsource.testing import Conn, Handler, status_handler

if TYPE_CHECKING:
    import trustme

__all__ = ["SSEServer"]


def _not_found(conn: Conn) -> None:
    status_handler(404, body=b"no handler for this path\n")(conn)


class SSEServer(testing.SSEServer):
    """
    The public server with a 404 for unrouted paths when no handler is given, and HTTPS
    from a ``trustme.CA`` (a certificate for ``127.0.0.1``, ``localhost`` and ``::1``).
    """

    def __init__(self, handler: Handler | None = None, *, tls: trustme.CA | None = None) -> None:
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
        super().__init__(handler if handler is not None else _not_found, ssl_context=context)

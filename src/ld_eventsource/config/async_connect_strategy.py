"""How :class:`.AsyncSSEClient` obtains a stream: :class:`AsyncConnectStrategy` and companions.

Importing this module does not import ``aiohttp``; :meth:`AsyncConnectStrategy.http` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from logging import Logger
from typing import TYPE_CHECKING, Any, Literal

from ld_eventsource._connect import AsyncConnectionClient, AsyncConnectionResult, TransportStrategy
from ld_eventsource._http import HttpParams
from ld_eventsource.config.connect_strategy import DynamicQueryParams, HeadersSource

# Re-exported, not used here: launchdarkly-eventsource 1.7.4 offered it from this module, and
# code imports it from here (docs/migration.md). ``X as X`` marks a re-export for mypy.
from ld_eventsource.errors import Headers as Headers  # noqa: PLC0414

if TYPE_CHECKING:
    import aiohttp
    from httpx import AsyncClient as HttpxAsyncClient

__all__ = ["AsyncConnectStrategy", "AsyncConnectionClient", "AsyncConnectionResult"]


class AsyncConnectStrategy:
    """
    How :class:`.AsyncSSEClient` obtains its input stream.

    The default, :meth:`http`, makes HTTP requests with ``aiohttp`` (the ``async`` extra). To
    read a stream from another source, subclass it and implement :meth:`create_client`.

    Instances should be immutable and hold no state of one active stream: the
    :class:`AsyncConnectionClient` they create is the stateful part, owned by one client.
    """

    __slots__ = ()

    def create_client(self, logger: Logger) -> AsyncConnectionClient:
        """
        Creates the :class:`AsyncConnectionClient` that one :class:`.AsyncSSEClient` uses for
        all its connection attempts. Called once, when the client is created.

        :param logger: the logger of the AsyncSSEClient
        """
        raise NotImplementedError("AsyncConnectStrategy base class cannot be used by itself")

    @staticmethod
    def http(
        url: str,
        headers: HeadersSource | None = None,
        session: aiohttp.ClientSession | None = None,
        aiohttp_request_options: Mapping[str, Any] | None = None,
        query_params: DynamicQueryParams | None = None,
        *,
        method: str = "GET",
        body: str | bytes | None = None,
        read_timeout: float | None = None,
        max_redirects: int = 10,
        proxy: str | Literal[False] | None = None,
    ) -> AsyncConnectStrategy:
        """
        The default HTTP implementation, on ``aiohttp``.

        ``url``, ``headers``, ``query_params``, ``method``, ``body``, ``read_timeout``,
        ``max_redirects`` and ``proxy`` are the options of :meth:`.ConnectStrategy.http`,
        documented there: the same names, with the same meaning, for both clients. The proxy
        applies with a ``session`` of one's own too (a ``proxy`` in
        ``aiohttp_request_options`` wins over it); ``proxy=False`` leaves a session made
        with ``trust_env=True`` to read the environment itself.

        :param session: an ``aiohttp.ClientSession`` to use; the client never closes a session
            it was given. A stream holds one of the session's connections for as long as it
            lives, and aiohttp's default connector allows 100 connections in all: with a
            default session the 101st client would wait, silently, for one of the first 100
            streams to end. To share one session among many clients, create it without a
            limit: ``aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0,
            limit_per_host=0))``. The session's timeout does not apply: each request sets its
            own (no total timeout, 10 seconds to connect, unless ``aiohttp_request_options``
            gives a ``timeout``; ``read_timeout`` if set). Without a session the client
            creates one of its own (its own cookies), on a ``TCPConnector`` without a limit
            that all such clients in the event loop share, and closes it in ``close()``; the
            connector closes with the last of them.
        :param aiohttp_request_options: extra keyword arguments for the ``aiohttp`` request,
            such as ``timeout``; the client passes ``read_bufsize=16384`` (faster on streams
            of small events than aiohttp's 64 KiB) unless these give another, and this
            applies over a ``read_bufsize`` set on the session
        """
        # Every argument by name (both factories name their options alike): one definition
        # checks them all.
        params = HttpParams.create(locals(), "aiohttp_request_options")
        from ld_eventsource._aiohttp import AiohttpTransport

        return _AsyncHttpConnectStrategy(AiohttpTransport(params, session))

    @staticmethod
    def httpx(
        url: str,
        headers: HeadersSource | None = None,
        client: HttpxAsyncClient | None = None,
        httpx_request_options: Mapping[str, Any] | None = None,
        query_params: DynamicQueryParams | None = None,
        *,
        method: str = "GET",
        body: str | bytes | None = None,
        read_timeout: float | None = None,
        max_redirects: int = 10,
        http2: bool = False,
        proxy: str | Literal[False] | None = None,
    ) -> AsyncConnectStrategy:
        """
        The HTTP implementation on ``httpx`` (the ``httpx`` extra; ``http2`` for HTTP/2).

        Every option is that of :meth:`.ConnectStrategy.httpx`, documented there, with an
        ``httpx.AsyncClient`` (or an ``httpx2.AsyncClient``) as ``client``, ``proxy``
        included (the proxy option of :meth:`.ConnectStrategy.http`; with ``client``, the
        client's own proxy settings apply). Many streams
        share one HTTP/2 connection when their strategies share one client created with
        ``http2=True`` (at most 100 streams a client: see there).
        """
        params = HttpParams.create(locals(), "httpx_request_options")
        from ld_eventsource._httpx import HttpxTransport

        return _AsyncHttpConnectStrategy(
            HttpxTransport(params, client, http2=http2, asynchronous=True)
        )


class _AsyncHttpConnectStrategy(TransportStrategy[AsyncConnectionClient], AsyncConnectStrategy):
    """What :meth:`AsyncConnectStrategy.http` returns."""

    __slots__ = ()

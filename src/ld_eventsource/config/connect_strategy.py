"""How :class:`.SSEClient` obtains a stream: :class:`ConnectStrategy` and its companions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from logging import Logger
from typing import TYPE_CHECKING, Any, Literal

from ld_eventsource._connect import ConnectionClient, ConnectionResult, TransportStrategy
from ld_eventsource._http import HttpParams

# Re-exported, not used here: launchdarkly-eventsource 1.7.4 offered it from this module, and
# code imports it from here (docs/migration.md). ``X as X`` marks a re-export for mypy.
from ld_eventsource.errors import Headers as Headers  # noqa: PLC0414

if TYPE_CHECKING:
    from httpx import Client as HttpxClient
    from urllib3 import PoolManager

__all__ = ["ConnectStrategy", "ConnectionClient", "ConnectionResult", "DynamicQueryParams"]

DynamicQueryParams = Callable[[], Mapping[str, str]]
"""
A callable returning query parameters to add to the stream URL, called again before every
connection attempt (so that a parameter such as a timestamp or a session id stays current).
"""

HeadersSource = Mapping[str, str] | Callable[[], Mapping[str, str]]
"""Request headers: a mapping, or a callable returning one before every connection attempt."""


class ConnectStrategy:
    """
    How :class:`.SSEClient` obtains its input stream.

    The default, :meth:`http`, makes HTTP requests with ``urllib3``. To read a stream from
    another source, subclass it and implement :meth:`create_client`.

    Instances should be immutable and hold no state of one active stream: the
    :class:`ConnectionClient` they create is the stateful part, owned by one client.
    """

    __slots__ = ()

    def create_client(self, logger: Logger) -> ConnectionClient:
        """
        Creates the :class:`ConnectionClient` that one :class:`.SSEClient` uses for all its
        connection attempts. Called once, when the client is created.

        :param logger: the logger of the SSEClient
        """
        raise NotImplementedError("ConnectStrategy base class cannot be used by itself")

    @staticmethod
    def http(
        url: str,
        headers: HeadersSource | None = None,
        pool: PoolManager | None = None,
        urllib3_request_options: Mapping[str, Any] | None = None,
        query_params: DynamicQueryParams | None = None,
        *,
        method: str = "GET",
        body: str | bytes | None = None,
        read_timeout: float | None = None,
        max_redirects: int = 10,
        proxy: str | Literal[False] | None = None,
    ) -> ConnectStrategy:
        """
        The default HTTP implementation, on ``urllib3``.

        :param url: the stream URL (``http`` or ``https``)
        :param headers: extra request headers; or a callable returning them, called before
            every connection attempt (to refresh a token, say)
        :param pool: a ``urllib3.PoolManager`` to use; the client never closes a pool it was
            given. Without one the client creates its own and closes it in ``close()``.
        :param urllib3_request_options: extra keyword arguments for ``urllib3``'s
            ``request()``, such as ``timeout``
        :param query_params: a callable returning query parameters to add to the URL, called
            before every connection attempt
        :param method: the request method, such as ``"POST"`` or ``"REPORT"``
        :param body: the request body, sent again on every reconnection; a ``str`` is encoded
            as UTF-8. ``Content-Type: text/plain`` is sent unless ``headers`` set one.
        :param read_timeout: seconds without any byte on an open stream after which the
            client drops the connection and reports a :class:`.StreamTimeoutError`
        :param max_redirects: how many redirects to follow before failing
        :param proxy: the HTTP proxy: ``None`` (the default) takes it from the environment
            when the client is created, as curl and requests do (``HTTPS_PROXY``,
            ``HTTP_PROXY``, ``ALL_PROXY``, lowercase names too, and ``NO_PROXY``); ``False``
            (or ``""``) never uses one, whatever the environment says; a URL such as
            ``"http://user:password@proxy.example:3128"`` sends every request through it
            (``NO_PROXY`` does not apply). ``https://`` streams go through a ``CONNECT``
            tunnel; user and password become a ``Proxy-Authorization: Basic`` header, and
            are never logged. A proxy that refuses raises :class:`.ProxyError` (with its
            status). With ``pool``: a ``urllib3.ProxyManager`` is used as it is, and then
            ``proxy`` must be ``None`` or ``False``; a plain ``PoolManager`` serves the
            direct requests, and the client makes a ``ProxyManager`` with the pool's
            connection settings (its CA, say) for those through a proxy.
            See :doc:`/guides/proxies`.

        The request asks for ``Accept-Encoding: gzip, deflate`` (and ``br``, ``zstd`` when
        their modules are installed), which the client undoes as the bytes arrive; a
        ``headers`` entry for ``Accept-Encoding`` replaces it (``identity`` for none). See
        :doc:`/guides/compression`.
        """
        # Every argument by name (both factories name their options alike): one definition
        # checks them all.
        params = HttpParams.create(locals(), "urllib3_request_options")
        from ld_eventsource._urllib3 import Urllib3Transport

        return _HttpConnectStrategy(Urllib3Transport(params, pool))

    @staticmethod
    def httpx(
        url: str,
        headers: HeadersSource | None = None,
        client: HttpxClient | None = None,
        httpx_request_options: Mapping[str, Any] | None = None,
        query_params: DynamicQueryParams | None = None,
        *,
        method: str = "GET",
        body: str | bytes | None = None,
        read_timeout: float | None = None,
        max_redirects: int = 10,
        http2: bool = False,
        proxy: str | Literal[False] | None = None,
    ) -> ConnectStrategy:
        """
        The HTTP implementation on ``httpx`` (the ``httpx`` extra; ``http2`` for HTTP/2).

        ``url``, ``headers``, ``query_params``, ``method``, ``body``, ``read_timeout``,
        ``max_redirects`` and ``proxy`` are the options of :meth:`http`, with the same
        meaning: ``proxy=None`` reads the environment by the rules of :meth:`http` (not by
        httpx's ``trust_env``, whose rules differ), ``False`` uses no proxy, a URL is used
        for every request; the proxy is chosen again for each request of a redirect. Redirects
        are followed by the client with the rules of :meth:`http` (httpx's own
        ``follow_redirects`` is not used), applied to the headers that httpx sent: those of
        the client and its ``auth`` are not sent to another origin either.

        :param client: an ``httpx.Client`` (or an ``httpx2.Client``) to use, with its
            headers, cookies, auth, TLS settings, proxies and transport; the client never
            closes a client it was given. Its ``timeout`` does not apply: each request sets
            its own (10 seconds to connect and to write, no bound on reads unless
            ``read_timeout`` is set, nor on the wait for a connection of its pool, so give
            it ``limits`` large enough for all its streams). Its ``follow_redirects`` does
            not apply either. Its own proxy settings apply, and ``proxy`` must then be
            ``None`` or ``False`` (``ValueError`` otherwise; give the client
            ``proxy=...``). Without one the client creates its own (no connection limit, no
            certificate from the environment; the proxy of ``proxy``) and closes it in
            ``close()``.
            To carry many streams over one HTTP/2 connection, give their strategies the
            same client, created with ``http2=True``, one client for every 100 streams
            (httpcore puts at most 100 on a connection and opens no other for more).
        :param httpx_request_options: extra keyword arguments for the client's
            ``build_request()``, such as ``cookies``, ``extensions`` or ``timeout`` (a number
            or an ``httpx.Timeout``, whose read part ``read_timeout`` replaces)
        :param http2: offer HTTP/2 (needs the ``http2`` extra, ``h2``), for the client that
            the strategy creates; a server that does not speak it is read over HTTP/1.1.
            With ``client``, the client's own setting decides (``ValueError`` here).
        """
        params = HttpParams.create(locals(), "httpx_request_options")
        from ld_eventsource._httpx import HttpxTransport

        return _HttpConnectStrategy(HttpxTransport(params, client, http2=http2, asynchronous=False))


class _HttpConnectStrategy(TransportStrategy[ConnectionClient], ConnectStrategy):
    """What :meth:`ConnectStrategy.http` returns."""

    __slots__ = ()

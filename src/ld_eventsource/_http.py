"""
The HTTP rules shared by both transports, as pure functions: what a request carries and
what makes a response acceptable. The urllib3 and aiohttp transports only do the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ld_eventsource import _validate
from ld_eventsource._decompress import CODINGS
from ld_eventsource.errors import (
    Headers,
    HTTPContentTypeError,
    HTTPProtocolError,
    HTTPStatusError,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "LAST_EVENT_ID",
    "REDIRECTS",
    "HttpParams",
    "Request",
    "check_response",
    "is_event_stream",
    "redirect",
    "redirect_after",
]

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds to wait for a TCP (and TLS) connection when the caller set no timeout."""

LAST_EVENT_ID: Final = "Last-Event-ID"
"""The request header that carries the last event id, spelled as the request sends it."""

_CONTENT_TYPE = "text/event-stream"
_FORCED = ("accept", "cache-control")

REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
"""The statuses that are followed as redirects (with a usable ``Location``)."""

# Fetch's "request-body-header names": dropped with the body when a redirect makes a GET.
_BODY_HEADERS: Final = frozenset(
    {"content-type", "content-length", "content-encoding", "content-language", "content-location"}
)
# Never sent to another origin than the one they were given for.
_CREDENTIALS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Request:
    """One connection attempt: what to send."""

    method: str
    url: str
    headers: dict[str, str | bytes]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class HttpParams:
    """
    The options of both ``http()`` factories (:meth:`.ConnectStrategy.http` and
    :meth:`.AsyncConnectStrategy.http`), checked: the one definition of what they mean.

    An option that both factories take is a field here, with its check in :meth:`create`,
    a parameter of the same name in each factory's signature, and its use in each transport.
    """

    url: str
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None
    query_params: Callable[[], Mapping[str, str]] | None
    method: str
    body: bytes | None
    read_timeout: float | None
    max_redirects: int
    request_options: Mapping[str, Any]
    """The transport's own keyword arguments (``urllib3_request_options``, ...)."""

    @staticmethod
    def create(arguments: Mapping[str, Any], request_options: str) -> HttpParams:
        """
        The options from the arguments of a factory call, by name (its ``locals()``),
        ``request_options`` naming the argument that holds the transport's own keyword
        arguments. Raises ``TypeError``/``ValueError`` with a clear message.
        """
        url = arguments["url"]
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"url must be an http:// or https:// URL, got {url!r}")
        headers = arguments["headers"]
        if headers is not None and not (isinstance(headers, Mapping) or callable(headers)):
            raise TypeError("headers must be a mapping or a callable returning one")
        query_params = arguments["query_params"]
        if query_params is not None:
            _validate.function("query_params", query_params, "a mapping")
        method = arguments["method"]
        if (
            not isinstance(method, str)
            or not method
            or not method.isascii()
            or any(c in method for c in " \r\n\t:/")
        ):
            raise ValueError(f"method must be an HTTP method name such as 'POST', got {method!r}")
        body = arguments["body"]
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be str or bytes, not {type(body).__name__}")
        options = arguments[request_options]
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"{request_options} must be a dict of keyword arguments")
        return HttpParams(
            url=url,
            headers=headers,
            query_params=query_params,
            method=method.upper(),
            body=bytes(body) if body is not None else None,
            read_timeout=_validate.optional_seconds(
                "read_timeout", arguments["read_timeout"], positive=True
            ),
            max_redirects=_validate.count("max_redirects", arguments["max_redirects"]),
            request_options=dict(options or {}),
        )

    def request(self, last_event_id: str | None) -> Request:
        """Builds the request of one connection attempt."""
        return Request(
            self.method,
            with_query(self.url, self.query_params() if self.query_params else None),
            request_headers(
                self.headers() if callable(self.headers) else self.headers,
                last_event_id,
                has_body=self.body is not None,
            ),
            self.body,
        )


def with_query(url: str, params: Mapping[str, str] | None) -> str:
    """``url`` with ``params`` added to its query; a parameter already there is replaced."""
    if not params:
        return url
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode([*kept, *((str(k), str(v)) for k, v in params.items())])
    return urlunsplit(parts._replace(query=query))


def request_headers(
    user: Mapping[str, str] | None, last_event_id: str | None, *, has_body: bool
) -> dict[str, str | bytes]:
    """
    The request headers: ``Accept: text/event-stream`` and ``Cache-Control: no-cache``
    always; the caller's headers; ``Last-Event-ID`` when the last event id is not empty
    (an empty ``id:`` resets it, so no header), which goes out as UTF-8 whatever characters
    it has; ``Content-Type: text/plain`` with a body unless the caller set one.
    """
    headers: dict[str, str | bytes] = {
        "Accept": _CONTENT_TYPE,
        "Cache-Control": "no-cache",
    }
    if user:
        lower = {name.lower(): name for name in headers}
        for name, value in user.items():
            if not isinstance(name, str) or not isinstance(value, (str, bytes)):
                raise TypeError(f"header {name!r} must map a str to a str, got {value!r}")
            key = name.lower()
            if key in _FORCED:
                continue
            if key in lower:
                del headers[lower[key]]
            headers[name] = value
            lower[key] = name
    if last_event_id:
        for name in [n for n in headers if n.lower() == "last-event-id"]:
            del headers[name]
        headers[LAST_EVENT_ID] = last_event_id
    if has_body and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "text/plain"
    return headers


def is_event_stream(content_type: str | None) -> bool:
    """Whether the media type is ``text/event-stream`` (any case, parameters allowed)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == _CONTENT_TYPE


def check_response(status: int, headers: Headers, content_type: str | None) -> str:
    """
    Raises unless the response starts an event stream; returns its content coding
    (``identity``, or one of :data:`._decompress.CODINGS`).

    2xx other than 204 with ``text/event-stream`` is accepted. 204 ("no content": the
    server's way of saying "stop reconnecting"), 4xx, 5xx, and a redirect that was not
    followed (no usable ``Location``, or too many) raise :class:`.HTTPStatusError`; a wrong
    media type raises :class:`.HTTPContentTypeError`. Framing that HTTP/1.1 forbids or that
    the client cannot undo raises :class:`.HTTPProtocolError` (see :func:`_content_coding`).

    The transport closes a rejected response at once, never reading its body: the body of
    an error page may never end.
    """
    if status < 200 or status >= 300 or status == 204:
        raise HTTPStatusError(status, headers)
    if not is_event_stream(content_type):
        raise HTTPContentTypeError(content_type or "", headers, status)
    return _content_coding(headers)


def _values(headers: Headers, name: str) -> list[str]:
    """Every value of a header, repeated or comma-separated, stripped and lowercased."""
    raw: list[Any]
    getall = getattr(headers, "getall", None)  # multidict (aiohttp)
    getlist = getattr(headers, "getlist", None)  # HTTPHeaderDict (urllib3)
    if getall is not None:
        raw = list(getall(name, []))
    elif getlist is not None:
        raw = list(getlist(name))
    else:
        value = headers.get(name)
        raw = [] if value is None else [value]
    return [p.strip().lower() for value in raw for p in str(value).split(",") if p.strip()]


def _content_coding(headers: Headers) -> str:
    """
    The framing rules of RFC 9112 (section 6) that matter to a client reading a stream, and
    the content coding.

    - ``Transfer-Encoding`` with ``Content-Length`` "ought to be handled as an error"
      (6.3: the mark of request smuggling or response splitting): it is one.
    - ``Transfer-Encoding`` other than ``chunked`` alone (``gzip, chunked``...), and
      ``Content-Length`` values that are not one decimal number, are errors too.
    - ``Content-Encoding``: ``gzip``, ``x-gzip`` and ``deflate`` are undone by the client;
      any other (``br``, ``compress``, several codings) is an error rather than a stream
      of undecodable bytes.
    """
    transfer = _values(headers, "transfer-encoding")
    lengths = _values(headers, "content-length")
    if transfer:
        if transfer != ["chunked"]:
            raise HTTPProtocolError(
                f"unsupported Transfer-Encoding {', '.join(transfer)!r}", headers
            )
        if lengths:
            raise HTTPProtocolError("both Content-Length and Transfer-Encoding", headers)
    if lengths and (len(set(lengths)) != 1 or not (lengths[0].isdigit() and lengths[0].isascii())):
        raise HTTPProtocolError(f"invalid Content-Length {', '.join(lengths)!r}", headers)
    codings = [c for c in _values(headers, "content-encoding") if c != "identity"]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in CODINGS:
        return codings[0]
    raise HTTPProtocolError(f"unsupported Content-Encoding {', '.join(codings)!r}", headers)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def redirect(request: Request, status: int, location: str | None) -> Request | None:
    """
    The request that follows a redirect response, or ``None`` if it cannot be followed (not
    a redirect status, no ``Location``, or one that is not an ``http(s)`` URL).

    As browsers do (Fetch, "HTTP-redirect fetch"): 303, and 301 or 302 after a ``POST``,
    become a ``GET`` without a body (and without the headers that describe a body); 307 and
    308 keep the method and the body. ``Authorization``, ``Cookie`` and
    ``Proxy-Authorization`` are dropped once the redirect leaves the origin (scheme, host and
    port: ``127.0.0.1``, ``localhost`` and another port are each another origin), and are
    not sent again even if a later redirect comes back.
    """
    if status not in REDIRECTS or not location or not location.strip():
        return None
    try:
        url = urljoin(request.url, location.strip())
        parts = urlsplit(url)
        origin = _origin(url)
    except ValueError:  # e.g. "http://[::1" or a port that is not a number
        return None
    if origin[0] not in _DEFAULT_PORTS or not origin[1]:
        return None
    url = urlunsplit(parts._replace(fragment=""))
    method, body, headers = request.method, request.body, dict(request.headers)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
    if origin != _origin(request.url):
        headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
    return Request(method, url, headers, body)


def redirect_after(
    request: Request, status: int, headers: Headers, followed: int, max_redirects: int
) -> Request | None:
    """
    The request that follows a response (``None``: the response is the one to check), when
    ``followed`` redirects were followed already; :class:`.HTTPStatusError` with the
    redirect's status and headers past ``max_redirects``. The transport closes the
    redirect's response without reading its body, which may never end.
    """
    if status not in REDIRECTS:
        return None
    follow = redirect(request, status, headers.get("Location"))
    if follow is not None and followed >= max_redirects:
        raise HTTPStatusError(status, headers)
    return follow

"""
The HTTP rules shared by both transports, as pure functions: what a request carries and
what makes a response acceptable. The urllib3 and aiohttp transports only do the I/O.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from logging import Logger
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

from ld_eventsource import _validate
from ld_eventsource._decompress import ACCEPT_ENCODING, CODINGS
from ld_eventsource.errors import (
    Headers,
    HTTPContentTypeError,
    HTTPProtocolError,
    HTTPStatusError,
    ProxyError,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "LAST_EVENT_ID",
    "REDIRECTS",
    "HttpParams",
    "Proxies",
    "Proxy",
    "ProxyChoice",
    "Request",
    "bypass",
    "check_response",
    "is_event_stream",
    "log_connecting",
    "redirect",
    "redirect_after",
    "tunnel_status",
    "verdict",
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
    proxy: Proxies
    """Which proxy each URL goes through (the ``proxy`` option, or the environment)."""
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
            proxy=Proxies.create(arguments["proxy"]),
            request_options=dict(options or {}),
        )

    def request(
        self,
        last_event_id: str | None,
        *,
        base: Mapping[str, Any] | None = None,
        accept_encoding: str = ACCEPT_ENCODING,
    ) -> Request:
        """
        Builds the request of one connection attempt, asking for the content codings of
        ``accept_encoding`` unless the caller's headers set ``Accept-Encoding``; ``base``
        are headers that the caller's ``headers`` replace (those of the transport's request
        options).
        """
        return Request(
            self.method,
            with_query(self.url, self.query_params() if self.query_params else None),
            request_headers(
                self.headers() if callable(self.headers) else self.headers,
                last_event_id,
                has_body=self.body is not None,
                accept_encoding=accept_encoding,
                base=base,
            ),
            self.body,
        )


_PROXY_SCHEMES: Final = ("http", "https")


@dataclass(frozen=True, slots=True)
class Proxy:
    """
    One HTTP proxy: its URL without credentials, and the credentials apart, so that
    nothing that prints a proxy (``repr``, a log line, an error) shows the password.
    """

    url: str
    """``scheme://host:port``, without user or password."""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @staticmethod
    def parse(value: object, name: str = "proxy", *, default_scheme: str | None = None) -> Proxy:
        """
        A proxy URL such as ``http://user:password@proxy.example:3128``, checked
        (``ValueError`` naming ``name``, without the password, if it is not a usable
        ``http://`` or ``https://`` proxy URL). ``default_scheme`` is the scheme of a
        URL without one (``proxy.example:3128`` in ``HTTPS_PROXY``, as curl reads it).
        """
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, False or None, not {type(value).__name__}")
        text = value.strip()
        if default_scheme and "://" not in text:
            text = f"{default_scheme}://{text}"
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ValueError(f"{name} has an invalid port: {_redact(text)!r}") from None
        scheme = parts.scheme.lower()
        if "://" not in text or not scheme:
            raise ValueError(
                f"{name} must be a URL with a scheme, such as 'http://proxy.example:3128',"
                f" got {_redact(text)!r}"
            )
        if scheme not in _PROXY_SCHEMES:
            raise ValueError(
                f"{name} must be an http:// or https:// proxy URL, got {_redact(text)!r}"
                f" (scheme {scheme!r} is not supported)"
            )
        host = parts.hostname
        if not host:
            raise ValueError(f"{name} has no host: {_redact(text)!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{name} must have no path or query: {_redact(text)!r}")
        if port is None:
            port = 443 if scheme == "https" else 80  # curl's default is 1080 for http; few
            # proxies listen there, and requests and aiohttp take 80 too
        shown = f"[{host}]" if ":" in host else host
        return Proxy(
            f"{scheme}://{shown}:{port}",
            unquote(parts.username) if parts.username is not None else None,
            unquote(parts.password) if parts.password is not None else None,
        )

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header (basic), or ``None`` without credentials."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def _redact(url: str) -> str:
    """``url`` with the password of its user information replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


@dataclass(frozen=True, slots=True)
class Proxies:
    """
    Which proxy a request goes through: the ``proxy`` option of ``http()``.

    - ``None`` (the default): from the environment, as curl and requests read it, when the
      client is created: ``HTTPS_PROXY`` for ``https://`` URLs, ``HTTP_PROXY`` for
      ``http://`` ones, ``ALL_PROXY`` for either when those are not set (lowercase names
      first, as curl; ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` says the process
      is a CGI script), and none for a host that ``NO_PROXY`` names (:func:`bypass`).
    - ``False`` or ``""``: never a proxy, whatever the environment says.
    - A URL: every request through that proxy (``NO_PROXY`` does not apply).
    """

    mode: str
    """``"environment"``, ``"none"`` or ``"fixed"``."""
    fixed: Proxy | None = None

    @staticmethod
    def create(value: object) -> Proxies:
        """The ``proxy`` option, checked (``ValueError`` for a malformed proxy URL)."""
        if value is None:
            return _FROM_ENVIRONMENT
        if value is False or value == "":
            return _NO_PROXY
        if value is True:
            raise TypeError("proxy must be a proxy URL, False or None, not True")
        return Proxies("fixed", Proxy.parse(value))

    def resolve(self) -> ProxyChoice:
        """What to use for the requests of one client: the environment is read here."""
        if self.mode == "fixed":
            return ProxyChoice({"http": self.fixed, "https": self.fixed}, ())
        if self.mode == "none":
            return _DIRECT
        env = _proxy_environment()
        if not env:
            return _DIRECT
        chosen: dict[str, Proxy | None] = {}
        for scheme in ("http", "https"):
            for key in (scheme, "all"):
                value = env.get(key)
                if value:
                    name = f"{key.upper()}_PROXY"
                    chosen[scheme] = Proxy.parse(value, name, default_scheme="http")
                    break
        return ProxyChoice(chosen, _no_proxy_entries(env.get("no", "")))


def _no_proxy_entries(value: str) -> tuple[str, ...]:
    return tuple(e.strip().lower() for e in value.replace(" ", ",").split(",") if e.strip())


_FROM_ENVIRONMENT: Final = Proxies("environment")
_NO_PROXY: Final = Proxies("none")

_PROXY_VARIABLES: Final = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
_PROXY_VARIABLE_BYTES: Final = frozenset(name.encode() for name in _PROXY_VARIABLES)


def _proxy_environment() -> dict[str, str]:
    """
    The ``http``, ``https``, ``all`` and ``no`` entries of
    :func:`urllib.request.getproxies_environment`, by the same rules (lowercase names win;
    ``HTTP_PROXY`` is ignored in a CGI script, where a request can set it: httpoxy), from
    the values of those variables only: every client reads it, and reading the value of
    every variable costs as much as the rest of a connection's setup.
    """
    environ = os.environ
    names = _proxy_variable_names(environ)
    if not names:
        return {}
    found = [(name, environ.get(name, "")) for name in names]
    proxies: dict[str, str] = {}
    for name, value in found:
        if value:
            proxies[name.lower()[:-6]] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in found:
        if name[-6:] == "_proxy":
            if value:
                proxies[name.lower()[:-6]] = value
            else:
                proxies.pop(name.lower()[:-6], None)
    return proxies


def _proxy_variable_names(environ: os._Environ[str]) -> list[str]:
    """
    The names of the variables of ``environ`` that are proxy variables in any case
    (``HTTPS_PROXY``, ``https_proxy``, ``Https_Proxy``, ...), in the environment's order.

    Scanned in the mapping that ``os.environ`` keeps of the encoded names (bytes on POSIX),
    where there is one: iterating ``os.environ`` decodes every name with a call of its own,
    which costs more than the rest of a client's setup.
    """
    data = getattr(environ, "_data", None) if os.supports_bytes_environ else None
    if isinstance(data, dict):
        return [os.fsdecode(key) for key in data if key.lower() in _PROXY_VARIABLE_BYTES]
    return [name for name in environ if name.lower() in _PROXY_VARIABLES]


@dataclass(frozen=True, slots=True)
class ProxyChoice:
    """The proxies of one client, by URL scheme, and the ``NO_PROXY`` entries."""

    proxies: Mapping[str, Proxy | None]
    no_proxy: tuple[str, ...]

    def for_url(self, url: str) -> Proxy | None:
        """The proxy for a request to ``url``, or ``None`` to connect directly."""
        if not self.proxies:
            return None
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme.lower())
        if proxy is None or not self.no_proxy:
            return proxy
        host = (parts.hostname or "").lower()
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
        return None if bypass(host, port, self.no_proxy) else proxy


_DIRECT: Final = ProxyChoice({}, ())
"""The choice of every client that uses no proxy (it holds nothing of its own)."""


def bypass(host: str, port: int | None, entries: tuple[str, ...]) -> bool:
    """
    Whether ``NO_PROXY`` (split into lowercase ``entries``) sends a request to ``host``
    directly, as curl and requests decide: ``*`` for every host; a domain for itself and
    its subdomains (``example.com`` and ``.example.com`` both match ``example.com`` and
    ``api.example.com``, not ``badexample.com``); an IP address for itself, a network in
    CIDR form (``10.0.0.0/8``, ``::1/128``) for the addresses in it; an entry with a port
    (``example.com:8443``, ``[::1]:8080``) for that port only.
    """
    host = host.strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in entries:
        if entry == "*":
            return True
        name, want_port = _entry_port(entry)
        if want_port is not None and want_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _entry_port(entry: str) -> tuple[str, int | None]:
    """A ``NO_PROXY`` entry without its port, and the port (``None`` if it has none)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def with_query(url: str, params: Mapping[str, str] | None) -> str:
    """``url`` with ``params`` added to its query; a parameter already there is replaced."""
    if not params:
        return url
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode([*kept, *((str(k), str(v)) for k, v in params.items())])
    return urlunsplit(parts._replace(query=query))


def request_headers(
    user: Mapping[str, str] | None,
    last_event_id: str | None,
    *,
    has_body: bool,
    accept_encoding: str = ACCEPT_ENCODING,
    base: Mapping[str, Any] | None = None,
) -> dict[str, str | bytes]:
    """
    The request headers: ``Accept: text/event-stream`` and ``Cache-Control: no-cache``
    always; the ``base`` headers (the transport's request options), replaced by the
    caller's; ``Accept-Encoding`` with the content codings the client undoes
    (:data:`._decompress.ACCEPT_ENCODING`) unless the caller's headers set it (``identity``
    to receive the stream uncompressed); the caller's headers; ``Last-Event-ID`` when the
    last event id is not empty (an empty ``id:`` resets it, so no header), which goes out as
    UTF-8 whatever characters it has; ``Content-Type: text/plain`` with a body unless the
    caller set one.
    """
    headers: dict[str, str | bytes] = {
        "Accept": _CONTENT_TYPE,
        "Cache-Control": "no-cache",
        "Accept-Encoding": accept_encoding,
    }
    lower = {name.lower(): name for name in headers}
    for given in (base, user):
        if not given:
            continue
        for name, value in given.items():
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


def check_response(
    status: int, headers: Headers, content_type: str | None, *, via_proxy: bool = False
) -> str:
    """
    Raises unless the response starts an event stream; returns its content coding
    (``identity``, or one of :data:`._decompress.CODINGS`).

    2xx other than 204 with ``text/event-stream`` is accepted. 204 ("no content": the
    server's way of saying "stop reconnecting"), 4xx, 5xx, and a redirect that was not
    followed (no usable ``Location``, or too many) raise :class:`.HTTPStatusError`; a wrong
    media type raises :class:`.HTTPContentTypeError`. Framing that HTTP/1.1 forbids or that
    the client cannot undo raises :class:`.HTTPProtocolError` (see :func:`_content_coding`).

    Through a proxy (``via_proxy``), a ``407`` is the proxy's answer: :class:`.ProxyError`.

    The transport closes a rejected response at once, never reading its body: the body of
    an error page may never end.
    """
    if status < 200 or status >= 300 or status == 204:
        if via_proxy and status == 407:
            raise ProxyError(status, headers)
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


_TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})")


def tunnel_status(error: BaseException) -> int | None:
    """
    The status with which a proxy refused ``CONNECT``, from the error that http.client
    raises for it (``OSError("Tunnel connection failed: 407 ...")``, which urllib3 wraps)
    anywhere in the chain of ``error``; ``None`` if it is not such an error.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for item in (current, *current.args):
            match = _TUNNEL_FAILED.search(str(item)) if isinstance(item, (str, OSError)) else None
            if match:
                return int(match.group(1))
        nested = [a for a in current.args if isinstance(a, BaseException)]
        current = nested[0] if nested else (current.__cause__ or current.__context__)
    return None


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


def verdict(
    request: Request,
    status: int,
    headers: Headers,
    followed: int,
    max_redirects: int,
    *,
    via_proxy: bool = False,
) -> tuple[Request | None, str]:
    """
    What a transport does with the response to ``request`` (``followed`` redirects
    followed already): the request that follows it (a redirect, with ``"identity"``), or
    ``None`` and the content coding of the event stream it starts. Raises as
    :func:`redirect_after` and :func:`check_response` do (``via_proxy``: the request went
    through a proxy of the library's, whose ``407`` is a :class:`.ProxyError`). Whatever it
    returns or raises, the transport closes a response it does not read, at once.
    """
    follow = redirect_after(request, status, headers, followed, max_redirects)
    if follow is not None:
        return follow, "identity"
    return None, check_response(status, headers, headers.get("Content-Type"), via_proxy=via_proxy)


def log_connecting(logger: Logger, url: str, proxy: Proxy | None) -> None:
    """The log line of a connection attempt (the proxy's URL never holds its credentials)."""
    if proxy is None:
        logger.info("Connecting to stream at %s", url)
    else:
        logger.info("Connecting to stream at %s via %s", url, proxy.url)

"""
The HTTP rules shared by both transports, as pure functions: what a request carries and
what makes a response acceptable. The urllib3 and aiohttp transports only do the I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ld_eventsource.errors import Headers, HTTPContentTypeError, HTTPStatusError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "HttpParams",
    "Request",
    "check_response",
    "is_event_stream",
]

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds to wait for a TCP (and TLS) connection when the caller set no timeout."""

_CONTENT_TYPE = "text/event-stream"
_FORCED = ("accept", "cache-control")


@dataclass(frozen=True, slots=True)
class Request:
    """One connection attempt: what to send."""

    method: str
    url: str
    headers: dict[str, str | bytes]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class HttpParams:
    """The validated parameters of an HTTP connect strategy."""

    url: str
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None
    query_params: Callable[[], Mapping[str, str]] | None
    method: str
    body: bytes | None
    read_timeout: float | None
    max_redirects: int
    request_options: Mapping[str, Any]

    @staticmethod
    def create(
        url: str,
        *,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None,
        query_params: Callable[[], Mapping[str, str]] | None,
        method: str,
        body: str | bytes | None,
        read_timeout: float | None,
        max_redirects: int,
        request_options: Mapping[str, Any] | None,
        request_options_name: str,
    ) -> HttpParams:
        """Checks every argument, raising ``TypeError``/``ValueError`` with a clear message."""
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"url must be an http:// or https:// URL, got {url!r}")
        if headers is not None and not (isinstance(headers, Mapping) or callable(headers)):
            raise TypeError("headers must be a mapping or a callable returning one")
        if query_params is not None and not callable(query_params):
            raise TypeError("query_params must be a callable returning a mapping")
        if (
            not isinstance(method, str)
            or not method
            or not method.isascii()
            or any(c in method for c in " \r\n\t:/")
        ):
            raise ValueError(f"method must be an HTTP method name such as 'POST', got {method!r}")
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be str or bytes, not {type(body).__name__}")
        if read_timeout is not None:
            if isinstance(read_timeout, bool) or not isinstance(read_timeout, (int, float)):
                raise TypeError("read_timeout must be a number of seconds or None")
            if math.isnan(read_timeout) or read_timeout <= 0:
                raise ValueError(f"read_timeout must be positive, got {read_timeout!r}")
        if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
            raise TypeError("max_redirects must be an int")
        if max_redirects < 0:
            raise ValueError(f"max_redirects must not be negative, got {max_redirects}")
        if request_options is not None and not isinstance(request_options, Mapping):
            raise TypeError(f"{request_options_name} must be a dict of keyword arguments")
        return HttpParams(
            url=url,
            headers=headers,
            query_params=query_params,
            method=method.upper(),
            body=bytes(body) if body is not None else None,
            read_timeout=float(read_timeout) if read_timeout is not None else None,
            max_redirects=max_redirects,
            request_options=dict(request_options or {}),
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
    (an empty ``id:`` resets it, so no header), as UTF-8 bytes so that any id can be sent;
    ``Content-Type: text/plain`` with a body unless the caller set one.
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
        headers["Last-Event-ID"] = last_event_id.encode("utf-8")
    if has_body and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "text/plain"
    return headers


def is_event_stream(content_type: str | None) -> bool:
    """Whether the media type is ``text/event-stream`` (any case, parameters allowed)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == _CONTENT_TYPE


def check_response(status: int, headers: Headers, content_type: str | None) -> None:
    """
    Raises unless the response starts an event stream.

    2xx other than 204 with ``text/event-stream`` is accepted. 204 ("no content": the
    server's way of saying "stop reconnecting"), 4xx, 5xx, and a redirect that was not
    followed (no usable ``Location``, or too many) raise :class:`.HTTPStatusError`; a wrong
    media type raises :class:`.HTTPContentTypeError`.
    """
    if status < 200 or status >= 300 or status == 204:
        raise HTTPStatusError(status, headers)
    if not is_event_stream(content_type):
        raise HTTPContentTypeError(content_type or "", headers, status)

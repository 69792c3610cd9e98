"""
Compatibility module: re-exports, under the import path of launchdarkly-eventsource 1.7.4,
the names that code imported from ``ld_eventsource.async_http`` there.

It holds no logic and, unlike 1.7.4's module, does not import aiohttp. The documented home of
these names is :mod:`ld_eventsource.errors`; new code should import from there. See
``docs/migration.md``.
"""

from ld_eventsource.errors import Headers, HTTPContentTypeError, HTTPStatusError

__all__ = ["HTTPContentTypeError", "HTTPStatusError", "Headers"]

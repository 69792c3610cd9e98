"""
Compatibility module: re-exports, under the import path of launchdarkly-eventsource 1.7.4,
the names that code imported from ``ld_eventsource.http`` there.

It holds no logic. The documented homes are :mod:`ld_eventsource.errors`
(:class:`.HTTPStatusError`, :class:`.HTTPContentTypeError`) and
:mod:`ld_eventsource.config.connect_strategy` (:data:`.DynamicQueryParams`); new code should
import from those. See ``docs/migration.md``.
"""

from ld_eventsource.config.connect_strategy import DynamicQueryParams
from ld_eventsource.errors import HTTPContentTypeError, HTTPStatusError

__all__ = ["DynamicQueryParams", "HTTPContentTypeError", "HTTPStatusError"]

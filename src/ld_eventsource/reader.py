"""
Compatibility module: re-exports, under the import path of launchdarkly-eventsource 1.7.4,
the names that code imported from ``ld_eventsource.reader`` there.

It holds no logic (the stream parser is the private ``ld_eventsource._parser``). The
documented home of these names is :mod:`ld_eventsource.actions`; new code should import from
there. See ``docs/migration.md``.
"""

from ld_eventsource.actions import Comment, Event

__all__ = ["Comment", "Event"]

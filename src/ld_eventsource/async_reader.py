"""
Compatibility module: the names that code imported from ``ld_eventsource.async_reader`` in
launchdarkly-eventsource 1.7.4, the same two as :mod:`ld_eventsource.reader` (which says
where they live now; see ``docs/migration.md``).
"""

from ld_eventsource.actions import Comment, Event

__all__ = ["Comment", "Event"]

"""
A Server-Sent Events client: :class:`SSEClient` (blocking, on urllib3) and
:class:`AsyncSSEClient` (asyncio, on aiohttp, installed with the ``async`` extra).

.. code-block:: python

    from ld_eventsource import SSEClient

    with SSEClient("https://example.com/stream") as client:
        for event in client.events:
            print(event.event, event.data)

.. code-block:: python

    import asyncio

    from ld_eventsource import AsyncSSEClient


    async def main() -> None:
        async with AsyncSSEClient("https://example.com/stream") as client:
            async for event in client.events:
                print(event.event, event.data)


    asyncio.run(main())

Both are imported on first use, so ``import ld_eventsource`` needs neither urllib3 nor aiohttp
until a client is asked for. The submodules that ``import ld_eventsource`` made available as
attributes in launchdarkly-eventsource 1.7.4 (``ld_eventsource.actions``, ``.config``,
``.errors``, ``.http``, ``.reader``, ``.sse_client``) are imported on first access too.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

from ld_eventsource.stats import ClientStats
from ld_eventsource.version import VERSION

if TYPE_CHECKING:
    from ld_eventsource.async_client import AsyncSSEClient
    from ld_eventsource.sse_client import SSEClient

__all__ = ["AsyncSSEClient", "ClientStats", "SSEClient", "__version__"]

__version__ = VERSION
"""The version of this package."""

# launchdarkly-eventsource 1.7.4 imported these eagerly (its __init__ star-imported
# sse_client, which imported the rest), so code written against it reads them as attributes
# of the package after a bare ``import ld_eventsource``. Importing them on first access keeps
# that working without loading urllib3 at import time. The async modules are left out, as in
# 1.7.4: touching them there raised AttributeError until they were imported.
_LAZY_SUBMODULES = frozenset({"actions", "config", "errors", "http", "reader", "sse_client"})


def __getattr__(name: str) -> Any:
    if name == "SSEClient":
        from ld_eventsource.sse_client import SSEClient

        return SSEClient
    if name == "AsyncSSEClient":
        from ld_eventsource.async_client import AsyncSSEClient

        return AsyncSSEClient
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'ld_eventsource' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "AsyncSSEClient", "SSEClient", *_LAZY_SUBMODULES})

"""
The documented fallbacks of the sync transport, for urllib3 responses without the private
structure its fast paths read: the same body through urllib3's public reads.
"""

from __future__ import annotations

import pytest
import urllib3

from ld_eventsource._urllib3 import _raw_body
from ld_eventsource.testing import events_handler, sse
from tests.sse_server import SSEServer

BLOCKS = [sse(id=str(i), data=f"event {i}") for i in range(50)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "public-reads"])
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_raw_body_fast_and_fallback_agree(fast: bool, chunked: bool) -> None:
    pool = urllib3.PoolManager()
    with SSEServer(events_handler(BLOCKS, chunked=chunked)) as server:
        response = pool.request("GET", server.url, preload_content=False, decode_content=False)
        try:
            body = b"".join(_raw_body(response, fast=fast))
        finally:
            response.close()
            response.release_conn()
    pool.clear()
    assert body == b"".join(BLOCKS)

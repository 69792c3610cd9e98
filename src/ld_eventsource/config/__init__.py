"""
Configuration of the clients: connect, error and retry-delay strategies.

The async names are exported here too; importing them does not import ``aiohttp``.
"""

from ld_eventsource.config.async_connect_strategy import (
    AsyncConnectionClient,
    AsyncConnectionResult,
    AsyncConnectStrategy,
)
from ld_eventsource.config.connect_strategy import (
    ConnectionClient,
    ConnectionResult,
    ConnectStrategy,
    DynamicQueryParams,
)
from ld_eventsource.config.error_strategy import ErrorStrategy
from ld_eventsource.config.retry_delay_strategy import RetryDelayStrategy

__all__ = [
    "AsyncConnectStrategy",
    "AsyncConnectionClient",
    "AsyncConnectionResult",
    "ConnectStrategy",
    "ConnectionClient",
    "ConnectionResult",
    "DynamicQueryParams",
    "ErrorStrategy",
    "RetryDelayStrategy",
]

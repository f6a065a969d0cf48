"""Room storage and fan-out. The in-memory adapter is the default; the Redis adapter
(``socketio_sync.RedisAdapter``) shares rooms and broadcasts between processes."""
from __future__ import annotations

from .base import Adapter, BroadcastOptions
from .memory import InMemoryAdapter

__all__ = ["Adapter", "BroadcastOptions", "InMemoryAdapter"]

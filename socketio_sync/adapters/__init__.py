"""Room storage and fan-out. The in-memory adapter is the default."""
from __future__ import annotations

from .memory import Adapter, InMemoryAdapter

__all__ = ["Adapter", "InMemoryAdapter"]

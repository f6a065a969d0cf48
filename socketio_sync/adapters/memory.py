"""The in-memory adapter (the default): rooms of one process."""
from __future__ import annotations

from .base import Adapter

__all__ = ["InMemoryAdapter"]


class InMemoryAdapter(Adapter):
    """The default adapter: rooms live in this process only."""

"""Socket.IO v5, sans-IO: packet encoder and incremental decoder (no gevent, no sockets)."""
from __future__ import annotations

from .packet import (
    DEFAULT_MAX_ATTACHMENTS, RESERVED_EVENTS, Decoder, Encoder, Packet, PacketType,
    deconstruct, has_binary, reconstruct,
)

__all__ = [
    "DEFAULT_MAX_ATTACHMENTS", "RESERVED_EVENTS", "Decoder", "Encoder", "Packet", "PacketType",
    "deconstruct", "has_binary", "reconstruct",
]

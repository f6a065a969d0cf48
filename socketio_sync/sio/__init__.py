"""Socket.IO v5 (and v4, in :mod:`.v4`), sans-IO: packet encoders and decoders, JSON
(default) and msgpack (no gevent, no sockets)."""
from __future__ import annotations

from .packet import (
    DEFAULT_MAX_ATTACHMENTS, RESERVED_EVENTS, Decoder, Encoder, Packet, PacketType,
    deconstruct, default_dumps, has_binary, reconstruct, strict_loads,
)
from . import v4
from .msgpack import MsgpackDecoder, MsgpackEncoder

__all__ = [
    "DEFAULT_MAX_ATTACHMENTS", "RESERVED_EVENTS", "Decoder", "Encoder", "MsgpackDecoder",
    "MsgpackEncoder", "Packet", "PacketType",
    "deconstruct", "default_dumps", "has_binary", "reconstruct", "strict_loads", "v4",
]

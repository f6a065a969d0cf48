"""Engine.IO v4 (and v3, in :mod:`.v3`), sans-IO: packet codecs and the session state
machine (no gevent, no sockets)."""
from __future__ import annotations

from .packet import (
    SEPARATOR, Packet, PacketType, decode_packet, decode_payload, encode_packet, encode_payload,
)
from .session import (
    CloseReason, Event, MessageReceived, Session, SessionClosed, SessionState, Upgraded,
)
from . import v3

__all__ = [
    "SEPARATOR", "Packet", "PacketType", "decode_packet", "decode_payload", "encode_packet",
    "encode_payload", "CloseReason", "Event", "MessageReceived", "Session", "SessionClosed",
    "SessionState", "Upgraded", "ERRORS", "v3",
]

#: Engine.IO handshake errors: code -> message, sent as JSON with HTTP 400/403.
ERRORS = {
    0: "Transport unknown",
    1: "Session ID unknown",
    2: "Bad handshake method",
    3: "Bad request",
    4: "Forbidden",
    5: "Unsupported protocol version",
}

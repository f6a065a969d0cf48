"""Engine.IO v4 packets and payloads: pure encoding and decoding, no I/O.

A packet is a type (0-6) and an optional payload that is ``str`` or ``bytes``.
Over WebSocket every packet is one frame; over HTTP long-polling several packets
are joined with the record separator ``\\x1e`` and binary ones are written as
``b`` + base64.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable

from ..exceptions import RemoteProtocolError

__all__ = [
    "PacketType",
    "Packet",
    "SEPARATOR",
    "encode_packet",
    "decode_packet",
    "encode_payload",
    "decode_payload",
]

SEPARATOR = "\x1e"


class PacketType(IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet. ``data`` is text, bytes (binary message) or ``None``."""

    type: PacketType
    data: str | bytes | None = None

    @property
    def binary(self) -> bool:
        return isinstance(self.data, bytes)


PING_PACKET = Packet(PacketType.PING)
PONG_PACKET = Packet(PacketType.PONG)
NOOP_PACKET = Packet(PacketType.NOOP)
CLOSE_PACKET = Packet(PacketType.CLOSE)
_TYPE_CHARS = {str(int(t)): t for t in PacketType}


def encode_packet(packet: Packet) -> str | bytes:
    """Encode for a WebSocket frame: text packets become ``"<type><data>"``,
    binary messages are the raw bytes."""
    data = packet.data
    if isinstance(data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise ValueError("only message packets can carry binary data")
        return data
    return f"{int(packet.type)}{data or ''}"


def decode_packet(frame: str | bytes) -> Packet:
    """Decode one WebSocket frame (text or binary)."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return Packet(PacketType.MESSAGE, bytes(frame))
    if not frame:
        raise RemoteProtocolError("empty packet")
    ptype = _TYPE_CHARS.get(frame[0])
    if ptype is None:
        raise RemoteProtocolError(f"unknown packet type {frame[0]!r}")
    return Packet(ptype, frame[1:] if len(frame) > 1 else (None if ptype is not PacketType.MESSAGE else ""))


def _encode_for_payload(packet: Packet) -> str:
    if isinstance(packet.data, bytes):
        return "b" + base64.b64encode(packet.data).decode("ascii")
    return f"{int(packet.type)}{packet.data or ''}"


def encode_payload(packets: Iterable[Packet]) -> str:
    """Encode packets for an HTTP long-polling response body."""
    return SEPARATOR.join(_encode_for_payload(p) for p in packets)


def decode_payload(body: str, max_packets: int | None = None) -> list[Packet]:
    """Decode an HTTP long-polling request body into packets.

    :raises RemoteProtocolError: on an empty body, an unknown packet type,
        bad base64, or more than ``max_packets`` packets.
    """
    if not body:
        raise RemoteProtocolError("empty payload")
    parts = body.split(SEPARATOR)
    if max_packets is not None and len(parts) > max_packets:
        raise RemoteProtocolError(f"payload has {len(parts)} packets, more than {max_packets}")
    packets = []
    for part in parts:
        if part[:1] == "b":
            try:
                raw = base64.b64decode(part[1:], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RemoteProtocolError("invalid base64 in binary packet") from exc
            packets.append(Packet(PacketType.MESSAGE, raw))
        else:
            packets.append(decode_packet(part))
    return packets

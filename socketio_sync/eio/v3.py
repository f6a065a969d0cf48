"""Engine.IO protocol v3 codecs (Socket.IO v2 clients), pure: no I/O.

Only what differs from v4 (:mod:`socketio_sync.eio.packet`) lives here; both versions
share :class:`~socketio_sync.eio.packet.Packet` and the packet types.

WebSocket frames
    Text packets are ``"<type><data>"`` as in v4. A binary packet is one binary frame
    whose first byte is the packet type (``0x04`` for a message) followed by the data;
    v4 dropped that byte.

HTTP long-polling, text payload
    Each packet is prefixed with its length and a colon: ``"6:4hello2:40"``. The length
    counts UTF-16 code units (JavaScript's ``String.length``), so ``"😀"`` counts 2. A
    binary packet is written ``"b4" + base64(data)`` and its length is that string's.
    The client asks for text payloads only with ``b64=1`` on the handshake; otherwise a
    response that holds binary packets may use the binary payload below.

HTTP long-polling, binary payload (XHR2, ``Content-Type: application/octet-stream``)
    For every packet: one byte, ``0`` for a text packet or ``1`` for a binary one; the
    decimal digits of the packet's length, one digit per byte (values 0-9, not ASCII);
    ``0xFF``; then the packet. A text packet is ``"<type><data>"`` in UTF-8 (its length
    in bytes); a binary packet is the type byte plus the data.

JSONP polling (``j=`` in the query) is not supported: the shell refuses it.

.. versionadded:: 0.2
"""
from __future__ import annotations

import base64
import binascii
import re

from ..exceptions import RemoteProtocolError
from .packet import Packet, PacketType

__all__ = [
    "PROTOCOL",
    "encode_packet",
    "decode_packet",
    "encode_payload",
    "decode_payload",
    "encode_payload_binary",
    "decode_payload_binary",
    "utf16_length",
]

#: The value of the ``EIO`` query parameter.
PROTOCOL = 3

_TYPE_CHARS = {str(int(t)): t for t in PacketType}
_TYPE_BYTES = {int(t): t for t in PacketType}
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
#: Length prefixes longer than this are refused (a body is at most a few megabytes).
_MAX_LENGTH_DIGITS = 10


def utf16_length(text: str) -> int:
    """``text``'s length in UTF-16 code units (JavaScript's ``String.length``): characters
    outside the Basic Multilingual Plane count 2."""
    if text.isascii():
        return len(text)
    return len(text) + len(_ASTRAL.findall(text))


# -- WebSocket frames -----------------------------------------------------------------------

def encode_packet(packet: Packet) -> str | bytes:
    """Encode for a WebSocket frame: ``"<type><data>"``, or the type byte plus the data
    for a binary packet."""
    data = packet.data
    if isinstance(data, bytes):
        return bytes((int(packet.type),)) + data
    return f"{int(packet.type)}{data or ''}"


def _decode_text(text: str) -> Packet:
    if not text:
        raise RemoteProtocolError("empty packet")
    if text[0] == "b":
        return _decode_base64(text[1:])
    ptype = _TYPE_CHARS.get(text[0])
    if ptype is None:
        raise RemoteProtocolError(f"unknown packet type {text[0]!r}")
    return Packet(ptype, text[1:] if len(text) > 1 else (None if ptype is not PacketType.MESSAGE else ""))


def _decode_base64(text: str) -> Packet:
    ptype = _TYPE_CHARS.get(text[:1])
    if ptype is not PacketType.MESSAGE:
        raise RemoteProtocolError("base64 packets must be messages ('b4...')")
    try:
        return Packet(ptype, base64.b64decode(text[1:], validate=True))
    except (binascii.Error, ValueError) as exc:
        raise RemoteProtocolError("invalid base64 in binary packet") from exc


def _decode_binary(data: bytes) -> Packet:
    if not data:
        raise RemoteProtocolError("empty binary packet")
    ptype = _TYPE_BYTES.get(data[0])
    if ptype is not PacketType.MESSAGE:
        raise RemoteProtocolError(f"binary packet of type {data[0]}, expected a message (4)")
    return Packet(ptype, bytes(data[1:]))


def decode_packet(frame: str | bytes) -> Packet:
    """Decode one WebSocket frame: text, or binary with a leading type byte."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return _decode_binary(bytes(frame))
    return _decode_text(frame)


# -- polling: text payloads -----------------------------------------------------------------

def _payload_item(packet: Packet) -> str:
    if isinstance(packet.data, bytes):
        return f"b{int(packet.type)}" + base64.b64encode(packet.data).decode("ascii")
    return f"{int(packet.type)}{packet.data or ''}"


def encode_payload(packets: list[Packet]) -> str:
    """Encode packets as a text payload (``<length>:<packet>`` each, binary in base64)."""
    parts = []
    for packet in packets:
        item = _payload_item(packet)
        parts.append(f"{utf16_length(item)}:{item}")
    return "".join(parts)


def decode_payload(body: str, max_packets: int | None = None) -> list[Packet]:
    """Decode a text payload (``<length>:<packet>`` records).

    :raises RemoteProtocolError: on an empty body, a bad length, a length that runs past
        the end or splits a character, a bad packet, or more than ``max_packets`` packets.
    """
    if not body:
        raise RemoteProtocolError("empty payload")
    if not body.isascii() and _ASTRAL.search(body) is not None:
        # Lengths count UTF-16 code units: work on the UTF-16 form (C speed, no loop per
        # character), where a unit is two bytes.
        return _decode_records(_Utf16(body), max_packets)
    return _decode_records(_Chars(body), max_packets)


class _Chars:
    """The body as characters: when it has no character outside the BMP, one character
    is one UTF-16 code unit."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __len__(self) -> int:
        return len(self.text)

    def find_colon(self, start: int, end: int) -> int:
        return self.text.find(":", start, end)

    def slice(self, start: int, end: int) -> str:
        return self.text[start:end]


class _Utf16(_Chars):
    """The body as UTF-16 code units (two bytes each): lengths and slices in units, found
    at C speed rather than by a loop over the characters."""

    __slots__ = ("data",)

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.data = text.encode("utf-16-le", "surrogatepass")

    def __len__(self) -> int:
        return len(self.data) // 2

    def _unit(self, i: int) -> int:
        return int.from_bytes(self.data[2 * i:2 * i + 2], "little")

    def find_colon(self, start: int, end: int) -> int:
        pos = self.data.find(b":\x00", 2 * start, 2 * end)
        return -1 if pos < 0 or pos % 2 else pos // 2

    def slice(self, start: int, end: int) -> str:
        if 0 < end < len(self) and 0xD800 <= self._unit(end - 1) < 0xDC00 and 0xDC00 <= self._unit(end) < 0xE000:
            raise RemoteProtocolError("payload length splits a character")
        return self.data[2 * start:2 * end].decode("utf-16-le", "surrogatepass")


def _decode_records(body: _Chars, max_packets: int | None) -> list[Packet]:
    packets: list[Packet] = []
    i = 0
    n = len(body)
    while i < n:
        colon = body.find_colon(i, i + _MAX_LENGTH_DIGITS + 1)
        digits = body.slice(i, colon) if colon > i else ""
        if not digits or not digits.isascii() or not digits.isdigit():
            raise RemoteProtocolError("invalid length prefix in payload")
        start = colon + 1
        end = start + int(digits)
        if end > n:
            raise RemoteProtocolError("payload length runs past the end of the body")
        if end > start:  # a zero-length record carries no packet
            if max_packets is not None and len(packets) >= max_packets:
                raise RemoteProtocolError(f"payload has more than {max_packets} packets")
            packets.append(_decode_text(body.slice(start, end)))
        i = end
    if not packets:
        raise RemoteProtocolError("payload without packets")
    return packets


# -- polling: binary (XHR2) payloads --------------------------------------------------------

def encode_payload_binary(packets: list[Packet]) -> bytes:
    """Encode packets as an XHR2 binary payload."""
    out = bytearray()
    for packet in packets:
        if isinstance(packet.data, bytes):
            body = bytes((int(packet.type),)) + packet.data
            out.append(1)
        else:
            body = f"{int(packet.type)}{packet.data or ''}".encode("utf-8", "surrogatepass")
            out.append(0)
        out.extend(int(d) for d in str(len(body)))
        out.append(0xFF)
        out.extend(body)
    return bytes(out)


def decode_payload_binary(body: bytes, max_packets: int | None = None) -> list[Packet]:
    """Decode an XHR2 binary payload.

    :raises RemoteProtocolError: on an empty body, a bad marker or length, a length that
        runs past the end, invalid UTF-8, a bad packet, or more than ``max_packets``.
    """
    if not body:
        raise RemoteProtocolError("empty payload")
    packets: list[Packet] = []
    i = 0
    n = len(body)
    while i < n:
        kind = body[i]
        if kind not in (0, 1):
            raise RemoteProtocolError(f"invalid packet marker {kind} in binary payload")
        end_digits = body.find(b"\xff", i + 1, i + 2 + _MAX_LENGTH_DIGITS)
        digits = body[i + 1:end_digits] if end_digits > i + 1 else b""
        if not digits or any(d > 9 for d in digits):
            raise RemoteProtocolError("invalid length in binary payload")
        length = int("".join(str(d) for d in digits))
        start = end_digits + 1
        end = start + length
        if end > n or length == 0:
            raise RemoteProtocolError("binary payload length does not match its packet")
        if max_packets is not None and len(packets) >= max_packets:
            raise RemoteProtocolError(f"payload has more than {max_packets} packets")
        chunk = body[start:end]
        if kind == 1:
            packets.append(_decode_binary(chunk))
        else:
            try:
                text = chunk.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError("invalid UTF-8 in binary payload") from exc
            packets.append(_decode_text(text))
        i = end
    return packets

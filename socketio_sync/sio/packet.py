"""Socket.IO v5 packets: encoder, incremental decoder and binary placeholders, no I/O.

Wire format of the text part::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]

A packet with binary data (``BINARY_EVENT``/``BINARY_ACK``) replaces every ``bytes``
value with ``{"_placeholder": true, "num": i}`` and is followed by its attachments,
each in its own Engine.IO message.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable

from ..exceptions import RemoteProtocolError

__all__ = [
    "PacketType",
    "Packet",
    "Encoder",
    "Decoder",
    "RESERVED_EVENTS",
    "deconstruct",
    "reconstruct",
    "DEFAULT_MAX_ATTACHMENTS",
    "strict_loads",
    "default_dumps",
]

DEFAULT_MAX_ATTACHMENTS = 10

#: Event names a client may not emit (they name the server's own life-cycle events).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


class PacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


@dataclass(slots=True)
class Packet:
    """One Socket.IO packet with its binary data in place (no placeholders)."""

    type: PacketType
    nsp: str = "/"
    data: Any = None
    id: int | None = None
    #: For decoded binary packets: how many attachments the text part announced.
    attachments: int = field(default=0, compare=False)


def deconstruct(data: Any, buffers: list[bytes]) -> Any:
    """Return ``data`` with every bytes-like value replaced by a placeholder,
    appending the bytes to ``buffers``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        buffers.append(bytes(data))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(data, (list, tuple)):
        return [deconstruct(item, buffers) for item in data]
    if isinstance(data, dict):
        return {key: deconstruct(value, buffers) for key, value in data.items()}
    return data


_PLAIN = frozenset({str, int, float, bool, type(None)})
_BINARY = (bytes, bytearray, memoryview)


def has_binary(data: Any) -> bool:
    """Whether ``data`` holds a bytes-like value anywhere (checked on every emit: plain
    loops, and scalars skipped without a call)."""
    kind = type(data)
    if kind in _PLAIN:
        return False
    if kind is list or kind is tuple or (kind is not dict and isinstance(data, (list, tuple))):
        for item in data:
            if type(item) not in _PLAIN and has_binary(item):
                return True
        return False
    if isinstance(data, dict):
        for value in data.values():
            if type(value) not in _PLAIN and has_binary(value):
                return True
        return False
    return isinstance(data, _BINARY)


def reconstruct(data: Any, buffers: list[bytes]) -> Any:
    """Put the attachments back in place of their placeholders.

    :raises RemoteProtocolError: on a placeholder whose ``num`` is not an int in range,
        or that has other keys.
    """
    if isinstance(data, list):
        return [reconstruct(item, buffers) for item in data]
    if isinstance(data, dict):
        if "_placeholder" in data:
            num = data.get("num")
            if (
                data.get("_placeholder") is not True
                or len(data) != 2
                or type(num) is not int
                or not 0 <= num < len(buffers)
            ):
                raise RemoteProtocolError(f"illegal attachment placeholder {data!r}")
            return buffers[num]
        return {key: reconstruct(value, buffers) for key, value in data.items()}
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def strict_loads(s: str) -> Any:
    """``json.loads`` without the ``NaN``/``Infinity`` extensions (not JSON; a browser's
    ``JSON.parse`` refuses them). Numbers too large for a float (``1e999``) still parse,
    to ``inf``, as in JavaScript; :func:`default_dumps` writes them back as ``null``."""
    return _STRICT_DECODER.decode(s)


def _finite(obj: Any) -> Any:
    if type(obj) is float:
        return obj if obj - obj == 0.0 else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def default_dumps(obj: Any) -> str:
    """Compact JSON; NaN and infinities become ``null``, as ``JSON.stringify`` does."""
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        return json.dumps(_finite(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False)



class Encoder:
    """Encodes packets into a list of Engine.IO message payloads (text first, then
    one bytes item per attachment).

    :param dumps: the JSON serializer (``str`` out); each server owns its own.
    """

    __slots__ = ("dumps",)

    def __init__(self, dumps: Callable[[Any], str] = default_dumps) -> None:
        self.dumps = dumps

    def encode(self, packet: Packet) -> list[str | bytes]:
        ptype = packet.type
        buffers: list[bytes] = []
        data = packet.data
        if ptype in (PacketType.EVENT, PacketType.ACK) and data is not None and has_binary(data):
            ptype = PacketType.BINARY_EVENT if ptype is PacketType.EVENT else PacketType.BINARY_ACK
        if ptype in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
            data = deconstruct(data, buffers)
        parts = [str(int(ptype))]
        if ptype in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
            parts.append(f"{len(buffers)}-")
        if packet.nsp != "/":
            parts.append(packet.nsp + ",")
        if packet.id is not None:
            parts.append(str(packet.id))
        if data is not None:
            parts.append(self.dumps(data))
        out: list[str | bytes] = ["".join(parts)]
        out.extend(buffers)
        return out


def _is_payload_valid(ptype: PacketType, data: Any) -> bool:
    if ptype is PacketType.CONNECT:
        return data is None or isinstance(data, dict)
    if ptype is PacketType.DISCONNECT:
        return data is None
    if ptype is PacketType.CONNECT_ERROR:
        return isinstance(data, (dict, str))
    if ptype in (PacketType.EVENT, PacketType.BINARY_EVENT):
        return (
            isinstance(data, list)
            and len(data) > 0
            and (
                (isinstance(data[0], str) and data[0] not in RESERVED_EVENTS)
                or type(data[0]) is int
            )
        )
    # ACK, BINARY_ACK
    return isinstance(data, list)


_DIGITS = frozenset("0123456789")
_MAX_ACK_ID_DIGITS = 16


class Decoder:
    """Incremental decoder: feed every Engine.IO message to :meth:`add`.

    Returns a complete :class:`Packet`, or ``None`` while a binary packet waits for
    its attachments.

    :param max_attachments: attachments allowed in one packet.
    :param loads: the JSON parser.
    :raises RemoteProtocolError: for any malformed input; the decoder is then unusable
        and the connection must be closed.
    """

    __slots__ = ("max_attachments", "loads", "_pending", "_buffers")

    def __init__(self, max_attachments: int = DEFAULT_MAX_ATTACHMENTS,
                 loads: Callable[[str], Any] = strict_loads) -> None:
        self.max_attachments = max_attachments
        self.loads = loads
        self._pending: Packet | None = None
        self._buffers: list[bytes] = []

    @property
    def reconstructing(self) -> bool:
        return self._pending is not None

    def add(self, data: str | bytes) -> Packet | None:
        if isinstance(data, str):
            if self._pending is not None:
                raise RemoteProtocolError("got plaintext data while reconstructing a packet")
            packet = self._decode_text(data)
            if packet.type in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
                if packet.attachments == 0:
                    packet.data = reconstruct(packet.data, [])
                    return packet
                self._pending = packet
                self._buffers = []
                return None
            return packet
        if self._pending is None:
            raise RemoteProtocolError("got binary data when not reconstructing a packet")
        self._buffers.append(bytes(data))
        if len(self._buffers) < self._pending.attachments:
            return None
        packet, buffers = self._pending, self._buffers
        self._pending, self._buffers = None, []
        packet.data = reconstruct(packet.data, buffers)
        return packet

    def _decode_text(self, s: str) -> Packet:
        if not s:
            raise RemoteProtocolError("empty packet")
        try:
            ptype = PacketType(int(s[0]))
        except ValueError:
            raise RemoteProtocolError(f"unknown packet type {s[0]!r}") from None
        i = 1
        n = len(s)
        attachments = 0
        if ptype in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
            dash = s.find("-", i)
            digits = s[i:dash] if dash > 0 else ""
            if not digits or not set(digits) <= _DIGITS or len(digits) > 6:
                raise RemoteProtocolError("illegal attachments count")
            attachments = int(digits)
            if attachments > self.max_attachments:
                raise RemoteProtocolError(
                    f"too many attachments: {attachments} > {self.max_attachments}")
            i = dash + 1
        nsp = "/"
        if i < n and s[i] == "/":
            comma = s.find(",", i)
            if comma < 0:
                nsp = s[i:]
                i = n
            else:
                nsp = s[i:comma]
                i = comma + 1
        start = i
        while i < n and s[i] in _DIGITS:
            i += 1
        ack_id = None
        if i > start:
            if i - start > _MAX_ACK_ID_DIGITS:
                raise RemoteProtocolError("ack id too long")
            ack_id = int(s[start:i])
        data = None
        if i < n:
            try:
                data = self.loads(s[i:])
            except (ValueError, RecursionError):
                raise RemoteProtocolError("invalid JSON payload") from None
        if not _is_payload_valid(ptype, data):
            raise RemoteProtocolError(f"invalid payload for {ptype.name}")
        if ack_id is not None and ptype not in (
            PacketType.EVENT, PacketType.BINARY_EVENT, PacketType.ACK, PacketType.BINARY_ACK
        ):
            raise RemoteProtocolError(f"{ptype.name} cannot carry an ack id")
        if ack_id is None and ptype in (PacketType.ACK, PacketType.BINARY_ACK):
            raise RemoteProtocolError("ACK without an id")
        return Packet(ptype, nsp, data, ack_id, attachments)

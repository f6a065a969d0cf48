"""The msgpack parser, compatible with the npm ``socket.io-msgpack-parser`` (3.x), no I/O.

Each Socket.IO packet is one msgpack map carried in one *binary* Engine.IO message::

    {"type": 2, "data": ["chat", "hi", b"\\x00\\x01"], "nsp": "/", "id": 7}

* ``type`` is 0-4 (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR): there are no
  BINARY_EVENT/BINARY_ACK types and no attachments, binary values stay inline as
  msgpack ``bin``.
* ``nsp`` is required; ``id`` is present only for packets that want (or are) an ack;
  other keys (the Node client adds ``options``) are ignored.
* The npm package encodes with ``notepack.io`` 2.x, whose extensions this module
  understands: ``fixext 1`` type 0 is JavaScript ``undefined`` (read as ``None``, and
  dropped from maps, as ``JSON.stringify`` would), ``fixext 8`` type 0 is a ``Date``
  (read as an aware UTC :class:`~datetime.datetime`, and written back the same way),
  ``ext 8/16/32`` type 0 is an ``ArrayBuffer`` (read as ``bytes``). Other extensions
  are refused.

The decoder checks what the default (JSON) decoder checks: packet types, payload shapes
per type, reserved event names, ack ids (integers in ``0 .. 10**16 - 1``, only on EVENT
and ACK, required on ACK), string map keys, nesting depth; malformed input of any kind
raises :class:`~socketio_sync.exceptions.RemoteProtocolError` and nothing else. The size
of a message is bounded by the Engine.IO layer (``max_http_buffer_size``).

The codec is written here (no dependency on the ``msgpack`` package) so that it can tell
the extension forms apart, which ``msgpack.ExtType`` cannot.
"""
from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from typing import Any

from ..exceptions import RemoteProtocolError
from .packet import RESERVED_EVENTS, Packet, PacketType

__all__ = ["MsgpackEncoder", "MsgpackDecoder", "packb", "unpackb", "MAX_DEPTH"]

#: Deepest nesting of arrays and maps accepted from a peer.
MAX_DEPTH = 256

_MAX_ACK_ID = 10**16  # the default decoder allows 16 digits

_UNDEFINED: Any = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # notepack's ``undefined`` while decoding

_B = struct.Struct(">B")
_H = struct.Struct(">H")
_I = struct.Struct(">I")
_Q = struct.Struct(">Q")
_b = struct.Struct(">b")
_h = struct.Struct(">h")
_i = struct.Struct(">i")
_q = struct.Struct(">q")
_f = struct.Struct(">f")
_d = struct.Struct(">d")
_hi_lo = struct.Struct(">iI")


# -- encoding ---------------------------------------------------------------------------------

def _pack(obj: Any, out: list[bytes], depth: int) -> None:
    kind = type(obj)
    if obj is None:
        out.append(b"\xc0")
    elif kind is bool:
        out.append(b"\xc3" if obj else b"\xc2")
    elif kind is int or (kind is not bool and isinstance(obj, int)):
        n = int(obj)
        if n > 0xFFFFFFFFFFFFFFFF or n < -0x8000000000000000:
            raise ValueError(f"integer {n} does not fit in 64 bits")
        if 0 <= n < 0x80:
            out.append(_B.pack(n))
        elif -32 <= n < 0:
            out.append(_b.pack(n))
        elif 0 <= n <= 0xFF:
            out.append(b"\xcc" + _B.pack(n))
        elif 0 <= n <= 0xFFFF:
            out.append(b"\xcd" + _H.pack(n))
        elif 0 <= n <= 0xFFFFFFFF:
            out.append(b"\xce" + _I.pack(n))
        elif 0 <= n <= 0xFFFFFFFFFFFFFFFF:
            out.append(b"\xcf" + _Q.pack(n))
        elif -0x80 <= n:
            out.append(b"\xd0" + _b.pack(n))
        elif -0x8000 <= n:
            out.append(b"\xd1" + _h.pack(n))
        elif -0x80000000 <= n:
            out.append(b"\xd2" + _i.pack(n))
        else:
            out.append(b"\xd3" + _q.pack(n))
    elif kind is float or isinstance(obj, float):
        out.append(b"\xcb" + _d.pack(obj))
    elif kind is str or isinstance(obj, str):
        raw = obj.encode("utf-8", "surrogatepass")
        n = len(raw)
        if n < 32:
            out.append(_B.pack(0xA0 | n))
        elif n <= 0xFF:
            out.append(b"\xd9" + _B.pack(n))
        elif n <= 0xFFFF:
            out.append(b"\xda" + _H.pack(n))
        else:
            out.append(b"\xdb" + _I.pack(n))
        out.append(raw)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        raw = bytes(obj)
        n = len(raw)
        if n <= 0xFF:
            out.append(b"\xc4" + _B.pack(n))
        elif n <= 0xFFFF:
            out.append(b"\xc5" + _H.pack(n))
        else:
            out.append(b"\xc6" + _I.pack(n))
        out.append(raw)
    elif isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise ValueError("data nested too deeply")
        n = len(obj)
        if n < 16:
            out.append(_B.pack(0x90 | n))
        elif n <= 0xFFFF:
            out.append(b"\xdc" + _H.pack(n))
        else:
            out.append(b"\xdd" + _I.pack(n))
        for item in obj:
            _pack(item, out, depth + 1)
    elif isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise ValueError("data nested too deeply")
        n = len(obj)
        if n < 16:
            out.append(_B.pack(0x80 | n))
        elif n <= 0xFFFF:
            out.append(b"\xde" + _H.pack(n))
        else:
            out.append(b"\xdf" + _I.pack(n))
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"map keys must be strings, not {type(key).__name__}")
            _pack(key, out, depth + 1)
            _pack(value, out, depth + 1)
    elif isinstance(obj, datetime):
        if obj.tzinfo is None:
            raise TypeError("naive datetime: give it a timezone to send it as a Date")
        ms = (obj - _EPOCH) // timedelta(milliseconds=1)
        out.append(b"\xd7\x00" + _hi_lo.pack(ms // 2**32, ms % 2**32))
    else:
        raise TypeError(f"{type(obj).__name__} cannot be encoded as msgpack")


def packb(obj: Any) -> bytes:
    """Encode ``obj`` (``None``, bool, int, float, str, bytes, list/tuple, dict with str
    keys, aware datetime) as msgpack.

    :raises TypeError: for a value of another type.
    :raises ValueError: for an integer outside 64 bits, or nesting past :data:`MAX_DEPTH`.
    """
    out: list[bytes] = []
    _pack(obj, out, 0)
    return b"".join(out)


# -- decoding ---------------------------------------------------------------------------------

class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise RemoteProtocolError("msgpack data ends early")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def unpack(self, st: struct.Struct) -> Any:
        end = self.pos + st.size
        if end > len(self.data):
            raise RemoteProtocolError("msgpack data ends early")
        value = st.unpack_from(self.data, self.pos)[0]
        self.pos = end
        return value

    def count(self, n: int) -> int:
        # every item takes at least one byte: refuse counts the data cannot hold
        if n > len(self.data) - self.pos:
            raise RemoteProtocolError("msgpack container longer than its message")
        return n

    def text(self, n: int) -> str:
        try:
            return self.take(n).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise RemoteProtocolError("invalid UTF-8 in a msgpack string") from None

    def value(self, depth: int) -> Any:
        b = self.unpack(_B)
        if b < 0x80:
            return b
        if b >= 0xE0:
            return b - 0x100
        if b < 0x90:
            return self.map(b & 0x0F, depth)
        if b < 0xA0:
            return self.array(b & 0x0F, depth)
        if b < 0xC0:
            return self.text(b & 0x1F)
        if b == 0xC0:
            return None
        if b == 0xC2:
            return False
        if b == 0xC3:
            return True
        if b == 0xC4:
            return self.take(self.unpack(_B))
        if b == 0xC5:
            return self.take(self.unpack(_H))
        if b == 0xC6:
            return self.take(self.unpack(_I))
        if b in (0xC7, 0xC8, 0xC9):
            n = self.unpack(_B if b == 0xC7 else _H if b == 0xC8 else _I)
            ext = self.unpack(_b)
            if ext != 0:
                raise RemoteProtocolError(f"unsupported msgpack extension type {ext}")
            return self.take(n)  # an ArrayBuffer
        if b == 0xCA:
            return self.unpack(_f)
        if b == 0xCB:
            return self.unpack(_d)
        if 0xCC <= b <= 0xD3:
            return self.unpack((_B, _H, _I, _Q, _b, _h, _i, _q)[b - 0xCC])
        if 0xD4 <= b <= 0xD8:
            ext = self.unpack(_b)
            size = 1 << (b - 0xD4)
            raw = self.take(size)
            if ext == 0 and size == 1:
                return _UNDEFINED
            if ext == 0 and size == 8:
                hi, lo = _hi_lo.unpack(raw)
                ms = hi * 2**32 + lo
                try:
                    return _EPOCH + timedelta(milliseconds=ms)
                except OverflowError:
                    raise RemoteProtocolError("Date out of range") from None
            raise RemoteProtocolError(f"unsupported msgpack extension type {ext}")
        if b == 0xD9:
            return self.text(self.unpack(_B))
        if b == 0xDA:
            return self.text(self.unpack(_H))
        if b == 0xDB:
            return self.text(self.unpack(_I))
        if b == 0xDC:
            return self.array(self.unpack(_H), depth)
        if b == 0xDD:
            return self.array(self.unpack(_I), depth)
        if b == 0xDE:
            return self.map(self.unpack(_H), depth)
        if b == 0xDF:
            return self.map(self.unpack(_I), depth)
        raise RemoteProtocolError(f"invalid msgpack byte 0x{b:02x}")

    def array(self, n: int, depth: int) -> list[Any]:
        if depth >= MAX_DEPTH:
            raise RemoteProtocolError("msgpack data nested too deeply")
        items = []
        for _ in range(self.count(n)):
            item = self.value(depth + 1)
            items.append(None if item is _UNDEFINED else item)
        return items

    def map(self, n: int, depth: int) -> dict[str, Any]:
        if depth >= MAX_DEPTH:
            raise RemoteProtocolError("msgpack data nested too deeply")
        result: dict[str, Any] = {}
        for _ in range(self.count(n)):
            key = self.value(depth + 1)
            if type(key) is not str:
                raise RemoteProtocolError("msgpack map keys must be strings")
            value = self.value(depth + 1)
            if value is _UNDEFINED:
                result.pop(key, None)  # JSON.stringify drops undefined members
            else:
                result[key] = value
        return result


def unpackb(data: bytes) -> Any:
    """Decode one msgpack value that fills ``data`` exactly.

    :raises RemoteProtocolError: for anything malformed, unsupported or trailing.
    """
    reader = _Reader(bytes(data))
    value = reader.value(0)
    if reader.pos != len(reader.data):
        raise RemoteProtocolError("trailing bytes after the msgpack value")
    return None if value is _UNDEFINED else value


# -- packets ----------------------------------------------------------------------------------

class MsgpackEncoder:
    """Encodes a :class:`Packet` into one ``bytes`` Engine.IO message (a list of one item,
    the shape :class:`~socketio_sync.sio.Encoder` returns)."""

    __slots__ = ()

    def encode(self, packet: Packet) -> list[str | bytes]:
        ptype = packet.type
        if ptype is PacketType.BINARY_EVENT:
            ptype = PacketType.EVENT
        elif ptype is PacketType.BINARY_ACK:
            ptype = PacketType.ACK
        obj: dict[str, Any] = {"type": int(ptype)}
        if packet.data is not None:
            obj["data"] = packet.data
        obj["nsp"] = packet.nsp
        if packet.id is not None:
            obj["id"] = packet.id
        return [packb(obj)]


def _undefined_to_none(value: Any) -> Any:
    return None if value is _UNDEFINED else value


def _payload_ok(ptype: PacketType, data: Any) -> bool:
    if ptype is PacketType.CONNECT:
        return data is None or isinstance(data, dict)
    if ptype is PacketType.DISCONNECT:
        return data is None
    if ptype is PacketType.CONNECT_ERROR:
        return isinstance(data, (dict, str))
    if ptype is PacketType.EVENT:
        return (isinstance(data, list) and len(data) > 0
                and ((type(data[0]) is str and data[0] not in RESERVED_EVENTS) or type(data[0]) is int))
    return isinstance(data, list)  # ACK


class MsgpackDecoder:
    """Decodes binary Engine.IO messages into packets (one message, one packet).

    Same interface as :class:`~socketio_sync.sio.Decoder`: :meth:`add` returns the
    :class:`Packet`, and raises :class:`RemoteProtocolError` for malformed input (after
    which the connection must be closed). A text message is an error.
    """

    __slots__ = ()

    #: Never waiting for attachments (there are none).
    reconstructing = False

    def add(self, data: str | bytes) -> Packet | None:
        if isinstance(data, str):
            raise RemoteProtocolError("the msgpack parser takes binary messages only")
        # the raw map: undefined members are kept until checked
        reader = _Reader(bytes(data))
        try:
            head = reader.unpack(_B)
        except RemoteProtocolError:
            raise RemoteProtocolError("empty packet") from None
        if 0x80 <= head < 0x90:
            n = head & 0x0F
        elif head == 0xDE:
            n = reader.unpack(_H)
        elif head == 0xDF:
            n = reader.unpack(_I)
        else:
            raise RemoteProtocolError("a msgpack packet must be a map")
        fields: dict[str, Any] = {}
        for _ in range(reader.count(n)):
            key = reader.value(1)
            if type(key) is not str:
                raise RemoteProtocolError("msgpack map keys must be strings")
            fields[key] = reader.value(1)
        if reader.pos != len(reader.data):
            raise RemoteProtocolError("trailing bytes after the msgpack packet")
        raw_type = fields.get("type")
        if type(raw_type) is not int or not 0 <= raw_type <= 4:
            raise RemoteProtocolError("invalid packet type")
        ptype = PacketType(raw_type)
        nsp = fields.get("nsp")
        if type(nsp) is not str or not nsp.startswith("/"):
            raise RemoteProtocolError("invalid namespace")
        data = _undefined_to_none(fields.get("data"))
        if not _payload_ok(ptype, data):
            raise RemoteProtocolError(f"invalid payload for {ptype.name}")
        ack_id = _undefined_to_none(fields.get("id", _UNDEFINED))
        if "id" in fields and fields["id"] is None:
            raise RemoteProtocolError("invalid packet id")  # null is not undefined
        if ack_id is not None:
            if type(ack_id) is not int or not 0 <= ack_id < _MAX_ACK_ID:
                raise RemoteProtocolError("invalid packet id")
            if ptype not in (PacketType.EVENT, PacketType.ACK):
                raise RemoteProtocolError(f"{ptype.name} cannot carry an ack id")
        elif ptype is PacketType.ACK:
            raise RemoteProtocolError("ACK without an id")
        return Packet(ptype, nsp, data, ack_id)

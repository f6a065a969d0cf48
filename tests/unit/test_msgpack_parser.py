"""The msgpack parser (``socketio_sync.sio.msgpack``): exact bytes, the notepack.io
extensions the npm ``socket.io-msgpack-parser`` uses, the same validation as the default
decoder, and property tests (anything decodes or raises ``RemoteProtocolError``; what is
encoded decodes to the same packet; the codec agrees with the ``msgpack`` package)."""
from __future__ import annotations

import datetime
from typing import Any

import msgpack as msgpack_lib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketio_sync import sio
from socketio_sync.exceptions import RemoteProtocolError
from socketio_sync.sio import msgpack as mp
from socketio_sync.sio import MsgpackDecoder, MsgpackEncoder, Packet, PacketType

UNDEFINED = b"\xd4\x00\x00"  # notepack's undefined


def enc(packet: Packet) -> bytes:
    items = MsgpackEncoder().encode(packet)
    assert len(items) == 1 and isinstance(items[0], bytes)
    return items[0]


def dec(data: bytes | str) -> Packet:
    packet = MsgpackDecoder().add(data)
    assert packet is not None
    return packet


def raw(obj: Any) -> bytes:
    """What any msgpack encoder writes for ``obj`` (the msgpack package here)."""
    return msgpack_lib.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ exact bytes

def test_event_bytes() -> None:
    # {"type": 2, "data": ["hi", 1], "nsp": "/"}: a fixmap of 3, keys in this order
    assert enc(Packet(PacketType.EVENT, "/", ["hi", 1])) == (
        b"\x83\xa4type\x02\xa4data\x92\xa2hi\x01\xa3nsp\xa1/")


def test_ack_and_binary_stay_inline() -> None:
    wire = enc(Packet(PacketType.BINARY_ACK, "/chat", [b"\x00\xff"], 5))
    assert wire == b"\x84\xa4type\x03\xa4data\x91\xc4\x02\x00\xff\xa3nsp\xa5/chat\xa2id\x05"
    assert msgpack_lib.unpackb(wire) == {"type": 3, "data": [b"\x00\xff"], "nsp": "/chat", "id": 5}


def test_disconnect_has_no_data_and_event_without_ack_has_no_id() -> None:
    assert msgpack_lib.unpackb(enc(Packet(PacketType.DISCONNECT, "/a"))) == {"type": 1, "nsp": "/a"}
    assert "id" not in msgpack_lib.unpackb(enc(Packet(PacketType.EVENT, "/", ["x"])))


def test_connect_reply() -> None:
    assert msgpack_lib.unpackb(enc(Packet(PacketType.CONNECT, "/", {"sid": "abc"}))) == {
        "type": 0, "data": {"sid": "abc"}, "nsp": "/"}


def test_numbers_and_strings() -> None:
    for value in (0, 127, 128, 255, 256, 65535, 65536, 2**32, 2**64 - 1, -1, -32, -33, -128, -129,
                  -2**15 - 1, -2**31 - 1, -2**63, 1.5, -0.0, float("inf"), "", "a" * 31, "b" * 32,
                  "c" * 256, "d" * 65536, "é\u2603\U0001f600", "\ud800", b"", b"x" * 256, b"y" * 65536,
                  [0] * 15, [1] * 16, [2] * 65536, {str(i): i for i in range(16)}):
        wire = mp.packb(value)
        assert mp.unpackb(wire) == value
        if value != "\ud800":
            assert msgpack_lib.unpackb(wire, strict_map_key=False) == value
            assert mp.unpackb(raw(value)) == value


def test_encoder_refuses_what_msgpack_cannot_carry() -> None:
    with pytest.raises(ValueError):
        mp.packb(2**64)
    with pytest.raises(TypeError):
        mp.packb({1: "x"})
    with pytest.raises(TypeError):
        mp.packb(object())
    with pytest.raises(TypeError):
        mp.packb(datetime.datetime(2024, 1, 1))  # naive


# ------------------------------------------------------------------ what the Node client sends

def test_client_event_with_options_and_ack() -> None:
    # socket.io-client adds "options": {"compress": true}; notepack writes keys in order
    wire = raw({"type": 2, "data": ["ev", 1], "options": {"compress": True}, "id": 0, "nsp": "/"})
    assert dec(wire) == Packet(PacketType.EVENT, "/", ["ev", 1], 0)


def test_client_connect_without_auth_is_undefined() -> None:
    wire = b"\x83\xa4type\x00\xa4data" + UNDEFINED + b"\xa3nsp\xa1/"
    assert dec(wire) == Packet(PacketType.CONNECT, "/", None)


def test_undefined_in_arrays_and_maps() -> None:
    # [undefined] -> [None] (JSON.stringify gives null); {a: undefined} -> {} (key dropped)
    wire = b"\x83\xa4type\x02\xa4data\x93\xa1e\x91" + UNDEFINED + b"\x81\xa1a" + UNDEFINED + b"\xa3nsp\xa1/"
    assert dec(wire).data == ["e", [None], {}]


def test_arraybuffer_and_date_extensions() -> None:
    # ArrayBuffer: ext 8, type 0 (even for 1 or 8 bytes); Date: fixext 8, type 0
    ab1 = b"\xc7\x01\x00\x41"
    ab8 = b"\xc7\x08\x00" + b"12345678"
    date = b"\xd7\x00" + (1714979289010).to_bytes(8, "big", signed=True)
    wire = b"\x83\xa4type\x02\xa4data\x94\xa1e" + ab1 + ab8 + date + b"\xa3nsp\xa1/"
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 10_000, tzinfo=datetime.timezone.utc)
    assert dec(wire).data == ["e", b"A", b"12345678", when]
    assert mp.packb(when) == date
    before_1970 = datetime.datetime(1960, 1, 1, 0, 0, 0, 1000, tzinfo=datetime.timezone.utc)
    assert mp.unpackb(mp.packb(before_1970)) == before_1970


# ------------------------------------------------------------------ validation

BAD = {
    "text message": "2[\"x\"]",
    "empty": b"",
    "not a map": raw([2, ["x"], "/"]),
    "binary event type": raw({"type": 5, "data": ["x"], "nsp": "/"}),
    "negative type": raw({"type": -1, "data": ["x"], "nsp": "/"}),
    "string type": raw({"type": "2", "data": ["x"], "nsp": "/"}),
    "bool type": raw({"type": True, "nsp": "/"}),
    "no type": raw({"data": ["x"], "nsp": "/"}),
    "no nsp": raw({"type": 2, "data": ["x"]}),
    "nsp not a string": raw({"type": 2, "data": ["x"], "nsp": 1}),
    "nsp without slash": raw({"type": 2, "data": ["x"], "nsp": "chat"}),
    "reserved event": raw({"type": 2, "data": ["disconnect"], "nsp": "/"}),
    "empty event": raw({"type": 2, "data": [], "nsp": "/"}),
    "event name not a string": raw({"type": 2, "data": [1.5], "nsp": "/"}),
    "event data a map": raw({"type": 2, "data": {"a": 1}, "nsp": "/"}),
    "connect data a list": raw({"type": 0, "data": [1], "nsp": "/"}),
    "disconnect with data": raw({"type": 1, "data": {}, "nsp": "/"}),
    "connect_error without data": raw({"type": 4, "nsp": "/"}),
    "ack without id": raw({"type": 3, "data": [], "nsp": "/"}),
    "ack data not a list": raw({"type": 3, "data": "x", "nsp": "/", "id": 1}),
    "id on connect": raw({"type": 0, "nsp": "/", "id": 1}),
    "id null": raw({"type": 2, "data": ["x"], "nsp": "/", "id": None}),
    "id negative": raw({"type": 2, "data": ["x"], "nsp": "/", "id": -1}),
    "id too big": raw({"type": 2, "data": ["x"], "nsp": "/", "id": 10**16}),
    "id float": raw({"type": 2, "data": ["x"], "nsp": "/", "id": 1.0}),
    "int map key": b"\x83\xa4type\x02\xa4data\x92\xa1e\x81\x01\x02\xa3nsp\xa1/",
    "int packet key": b"\x84\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xa1/\x01\x02",
    "trailing bytes": raw({"type": 2, "data": ["x"], "nsp": "/"}) + b"\x00",
    "truncated": raw({"type": 2, "data": ["x"], "nsp": "/"})[:-1],
    "reserved byte": b"\x83\xa4type\x02\xa4data\x92\xa1e\xc1\xa3nsp\xa1/",
    "unknown extension": b"\x83\xa4type\x02\xa4data\x92\xa1e\xd4\x05\x00\xa3nsp\xa1/",
    "undefined as 2 bytes": b"\x83\xa4type\x02\xa4data\x92\xa1e\xd5\x00\x00\x00\xa3nsp\xa1/",
    "bad utf-8": b"\x83\xa4type\x02\xa4data\x91\xa2\xff\xfe\xa3nsp\xa1/",
    "huge array count": b"\x83\xa4type\x02\xa4data\xdd\xff\xff\xff\xff\xa3nsp\xa1/",
    "huge string": b"\x83\xa4type\x02\xa4data\x91\xdb\xff\xff\xff\xff",
    "too deep": b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e" + b"\x91" * 300 + b"\x00",
}


@pytest.mark.parametrize("data", list(BAD.values()), ids=list(BAD))
def test_invalid_packets(data: bytes | str) -> None:
    with pytest.raises(RemoteProtocolError):
        MsgpackDecoder().add(data)


def test_valid_edge_cases() -> None:
    assert dec(raw({"type": 2, "data": [7], "nsp": "/"})).data == [7]  # numeric event name
    assert dec(raw({"type": 2, "data": ["x"], "nsp": "/", "id": 10**16 - 1})).id == 10**16 - 1
    assert dec(raw({"type": 4, "data": "nope", "nsp": "/"})).data == "nope"
    assert dec(raw({"type": 1, "nsp": "/a"})) == Packet(PacketType.DISCONNECT, "/a")
    deep = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e" + b"\x91" * 200 + b"\x00"
    assert dec(deep).type is PacketType.EVENT


def test_server_uses_it() -> None:
    from socketio_sync import Server

    io = Server(parser="msgpack")
    assert isinstance(io.make_decoder(), MsgpackDecoder)
    assert isinstance(Server().make_decoder(), sio.Decoder)
    with pytest.raises(ValueError):
        Server(parser="bson")


# ------------------------------------------------------------------ properties

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
event_names = st.text(min_size=1, max_size=12).filter(lambda s: s not in sio.RESERVED_EVENTS)
namespaces = st.one_of(st.just("/"), st.from_regex(r"/[a-z0-9_-]{1,10}", fullmatch=True))


@settings(max_examples=120, deadline=None)
@given(namespaces, event_names, st.lists(values, max_size=4), st.one_of(st.none(), st.integers(0, 10**16 - 1)))
def test_event_round_trip(nsp: str, event: str, args: list[Any], ack: int | None) -> None:
    packet = Packet(PacketType.EVENT, nsp, [event, *args], ack)
    assert dec(enc(packet)) == packet


@settings(max_examples=100, deadline=None)
@given(values)
def test_agrees_with_the_msgpack_package(value: Any) -> None:
    assert msgpack_lib.unpackb(mp.packb(value), strict_map_key=False) == value
    assert mp.unpackb(raw(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_never_raises_anything_else(data: bytes) -> None:
    try:
        MsgpackDecoder().add(data)
    except RemoteProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "data", "nsp", "id", "options"]),
                       st.one_of(values, st.integers(-2, 8)), max_size=5))
def test_decoder_on_structured_garbage(fields: dict[str, Any]) -> None:
    try:
        packet = MsgpackDecoder().add(raw(fields))
    except RemoteProtocolError:
        return
    assert packet is not None and packet.nsp.startswith("/")
    assert 0 <= packet.type <= 4

"""Socket.IO encoder/decoder, with the protocol document's examples as the reference."""
from __future__ import annotations

from typing import Any

import pytest

from socketio_sync import sio
from socketio_sync.exceptions import RemoteProtocolError
from socketio_sync.sio import Packet, PacketType

T = PacketType

# (packet, exact wire strings/bytes) from socket.io-protocol's "Packet encoding" / examples
CASES: list[tuple[Packet, list[Any]]] = [
    (Packet(T.CONNECT, "/", None), ["0"]),
    (Packet(T.CONNECT, "/admin", {"token": "123"}), ['0/admin,{"token":"123"}']),
    (Packet(T.CONNECT, "/", {"sid": "oSO0OpakMV_3jnilAAAA"}), ['0{"sid":"oSO0OpakMV_3jnilAAAA"}']),
    (Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}), ['4{"message":"Not authorized"}']),
    (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
    (Packet(T.EVENT, "/", ["foo"]), ['2["foo"]']),
    (Packet(T.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (Packet(T.EVENT, "/", ["foo"], 12), ['212["foo"]']),
    (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (Packet(T.EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
     ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"]),
    (Packet(T.ACK, "/admin", [b"\x03"], 15), ['61-/admin,15[{"_placeholder":true,"num":0}]', b"\x03"]),
    (Packet(T.EVENT, "/", ["message", 1, "2", {"3": [True]}]), ['2["message",1,"2",{"3":[true]}]']),
    (Packet(T.EVENT, "/", ["é", "日本"]), ['2["é","日本"]']),
]


@pytest.mark.parametrize("packet,wire", CASES)
def test_encode_exact(packet: Packet, wire: list[Any]) -> None:
    assert sio.Encoder().encode(packet) == wire


@pytest.mark.parametrize("packet,wire", CASES)
def test_decode_round_trip(packet: Packet, wire: list[Any]) -> None:
    dec = sio.Decoder()
    results = [dec.add(item) for item in wire]
    assert results[:-1] == [None] * (len(wire) - 1)
    got = results[-1]
    assert got is not None
    expected_type = packet.type
    if len(wire) > 1:
        expected_type = T.BINARY_EVENT if packet.type is T.EVENT else T.BINARY_ACK
    assert (got.type, got.nsp, got.data, got.id) == (expected_type, packet.nsp, packet.data, packet.id)
    assert not dec.reconstructing


def test_nested_binary_deconstruct_and_order() -> None:
    data = ["ev", {"a": [b"1", {"b": b"2"}], "c": b"3"}]
    wire = sio.Encoder().encode(Packet(T.EVENT, "/", data))
    assert wire[1:] == [b"1", b"2", b"3"]
    dec = sio.Decoder()
    for item in wire[:-1]:
        assert dec.add(item) is None
    assert dec.add(wire[-1]).data == data  # type: ignore[union-attr]


def test_namespace_without_trailing_comma() -> None:
    assert sio.Decoder().add("0/custom").nsp == "/custom"  # type: ignore[union-attr]
    assert sio.Decoder().add("1/custom").nsp == "/custom"  # type: ignore[union-attr]


BAD = [
    "", "9", "x", "2{}", '2"str"', "2[]", "2[1.5]", "2[null]", "0[1]", '1"x"', "3[]", '3/a,"x"',
    '2abc["a"]', "2[", '2["a"', "5-[\"a\"]", '5a-["a"]', "4", "4[1]",
    '2["connect"]', '2["disconnect"]', '2["disconnecting"]', '2["connect_error"]',
    '2["newListener"]', '2["removeListener"]', '0{"a":1}x', '012{"a":1}',
    '211111111111111111111["a"]',
]


@pytest.mark.parametrize("wire", BAD)
def test_malformed_packets_raise(wire: str) -> None:
    with pytest.raises(RemoteProtocolError):
        sio.Decoder().add(wire)


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError):
        sio.Decoder().add("2" + "[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("placeholder", [
    '{"_placeholder":true,"num":1}', '{"_placeholder":true,"num":-1}', '{"_placeholder":true,"num":"0"}',
    '{"_placeholder":true,"num":0.0}', '{"_placeholder":true}', '{"_placeholder":false,"num":0}',
    '{"_placeholder":true,"num":0,"x":1}', '{"_placeholder":true,"num":true}',
])
def test_bad_placeholders(placeholder: str) -> None:
    dec = sio.Decoder()
    assert dec.add(f'51-["ev",{placeholder}]') is None
    with pytest.raises(RemoteProtocolError):
        dec.add(b"\x00")


def test_attachment_cap() -> None:
    assert sio.Decoder(max_attachments=10).add('510-["a"]') is None
    with pytest.raises(RemoteProtocolError):
        sio.Decoder(max_attachments=10).add('511-["a"]')


def test_binary_out_of_turn() -> None:
    with pytest.raises(RemoteProtocolError, match="not reconstructing"):
        sio.Decoder().add(b"\x01")
    dec = sio.Decoder()
    dec.add('51-["a",{"_placeholder":true,"num":0}]')
    with pytest.raises(RemoteProtocolError, match="reconstructing"):
        dec.add('2["a"]')


def test_binary_packet_with_zero_attachments() -> None:
    got = sio.Decoder().add('50-["a",1]')
    assert got is not None and got.data == ["a", 1]


# --- JSON that JavaScript and Python disagree on (found by the live fuzzer, issue #5) --------

@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_decoder_refuses_the_non_json_constants(token):
    # Python's json accepts them, JSON.parse does not; an ack echoing one used to fail to encode.
    with pytest.raises(RemoteProtocolError):
        sio.Decoder().add(f'21["echo",{token}]')
    with pytest.raises(ValueError):
        sio.strict_loads(f'[{token}]')


def test_a_number_too_large_for_a_float_is_sent_back_as_null():
    # JSON.parse("1e999") is Infinity and JSON.stringify(Infinity) is "null": the same here.
    packet = sio.Decoder().add('21["echo",1e999,{"x":[-1e999, 1.5]}]')
    assert packet is not None
    reply = Packet(T.ACK, "/", packet.data[1:], 1)
    assert sio.Encoder().encode(reply) == ['31[null,{"x":[null,1.5]}]']


def test_encoder_writes_nan_from_application_code_as_null_and_keeps_other_errors():
    assert sio.default_dumps([float("nan"), (float("inf"),), "ok"]) == '[null,[null],"ok"]'
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        sio.default_dumps(loop)

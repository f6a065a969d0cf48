"""Engine.IO packet and payload codec, driven by the spec's own examples."""
from __future__ import annotations

import pytest

from socketio_sync import eio
from socketio_sync.eio import Packet, PacketType
from socketio_sync.exceptions import RemoteProtocolError


def test_spec_payload_example_text() -> None:
    packets = eio.decode_payload("4hello\x1e2\x1e4world")
    assert packets == [
        Packet(PacketType.MESSAGE, "hello"),
        Packet(PacketType.PING),
        Packet(PacketType.MESSAGE, "world"),
    ]
    assert eio.encode_payload(packets) == "4hello\x1e2\x1e4world"


def test_spec_payload_example_binary() -> None:
    packets = eio.decode_payload("4hello\x1ebAQIDBA==")
    assert packets == [Packet(PacketType.MESSAGE, "hello"), Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04")]
    assert eio.encode_payload(packets) == "4hello\x1ebAQIDBA=="


def test_websocket_frames() -> None:
    assert eio.encode_packet(Packet(PacketType.MESSAGE, "hello")) == "4hello"
    assert eio.encode_packet(Packet(PacketType.MESSAGE, b"\x01\x02")) == b"\x01\x02"
    assert eio.encode_packet(Packet(PacketType.PONG, "probe")) == "3probe"
    assert eio.decode_packet("2probe") == Packet(PacketType.PING, "probe")
    assert eio.decode_packet(b"\x00") == Packet(PacketType.MESSAGE, b"\x00")
    assert eio.decode_packet("5") == Packet(PacketType.UPGRADE)
    assert eio.decode_packet("4") == Packet(PacketType.MESSAGE, "")


def test_utf8_text_round_trip() -> None:
    text = "€ 日本 \u2028"
    assert eio.decode_payload(eio.encode_payload([Packet(PacketType.MESSAGE, text)])) == [
        Packet(PacketType.MESSAGE, text)]


@pytest.mark.parametrize("body", ["", "abc", "7", "4a\x1e", "bnot base64!", "b%%%", "4x\x1e9"])
def test_invalid_payloads_raise_protocol_error(body: str) -> None:
    with pytest.raises(RemoteProtocolError):
        eio.decode_payload(body)


def test_payload_packet_limit() -> None:
    body = "\x1e".join(["3"] * 11)
    assert len(eio.decode_payload(body, max_packets=11)) == 11
    with pytest.raises(RemoteProtocolError):
        eio.decode_payload(body, max_packets=10)


def test_binary_only_in_message_packets() -> None:
    with pytest.raises(ValueError):
        eio.encode_packet(Packet(PacketType.PING, b"x"))

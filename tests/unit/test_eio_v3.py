"""Engine.IO v3 codecs (``eio.v3``), the v3 session heartbeat and the Socket.IO v4 helpers
(``sio.v4``). The expected bytes and strings were produced by engine.io-parser 2.2.1, the
parser inside socket.io-client 2.5.0."""
from __future__ import annotations

import json

import pytest

from socketio_sync import eio, sio
from socketio_sync.eio import Packet, PacketType as T, v3
from socketio_sync.exceptions import RemoteProtocolError


# -- text payloads --------------------------------------------------------------------------

def test_text_payload_matches_engine_io_parser_2() -> None:
    packets = [Packet(T.OPEN, '{"sid":"abc"}'), Packet(T.MESSAGE, "€"), Packet(T.NOOP)]
    assert v3.encode_payload(packets) == '14:0{"sid":"abc"}2:4€1:6'
    assert v3.decode_payload('14:0{"sid":"abc"}2:4€1:6') == packets


def test_text_payload_counts_utf16_code_units() -> None:
    body = "5:4hé😀6:b4AQI=1:3"  # 😀 is two UTF-16 code units
    packets = [Packet(T.MESSAGE, "hé😀"), Packet(T.MESSAGE, b"\x01\x02"), Packet(T.PONG)]
    assert v3.encode_payload(packets) == body
    assert v3.decode_payload(body) == packets
    assert v3.utf16_length("a😀b") == 4 and v3.utf16_length("\ud800") == 1


def test_text_payload_base64_binary() -> None:
    assert v3.encode_payload([Packet(T.MESSAGE, b"\x00\xff")]) == "6:b4AP8="
    assert v3.decode_payload("6:b4AP8=") == [Packet(T.MESSAGE, b"\x00\xff")]


def test_text_payload_skips_empty_records_and_keeps_empty_messages() -> None:
    assert v3.decode_payload("0:1:4") == [Packet(T.MESSAGE, "")]


@pytest.mark.parametrize("body", [
    "", "4", ":4", "a:4", "2:4", "10:4hello", "1:9", "0:", "2:4😀",  # 😀 split in the middle
    "4:b4!!", "5:b0AQI", "99999999999:4", "1:41:",
])
def test_text_payload_errors(body: str) -> None:
    with pytest.raises(RemoteProtocolError):
        v3.decode_payload(body)


def test_text_payload_packet_limit() -> None:
    assert len(v3.decode_payload("1:6" * 3, max_packets=3)) == 3
    with pytest.raises(RemoteProtocolError):
        v3.decode_payload("1:6" * 4, max_packets=3)


# -- binary (XHR2) payloads -----------------------------------------------------------------

def test_binary_payload_matches_engine_io_parser_2() -> None:
    packets = [Packet(T.MESSAGE, "€😀"), Packet(T.PING, "probe"), Packet(T.MESSAGE, b"\x07" * 12)]
    expected = bytes([0, 8, 255, 52, 226, 130, 172, 240, 159, 152, 128, 0, 6, 255, 50, 112, 114, 111, 98,
                      101, 1, 1, 3, 255, 4] + [7] * 12)
    assert v3.encode_payload_binary(packets) == expected
    assert v3.decode_payload_binary(expected) == packets


def test_binary_payload_decodes_what_the_client_sends() -> None:
    body = bytes([0, 2, 255, 52, 97, 1, 3, 255, 4, 9, 8])
    assert v3.decode_payload_binary(body) == [Packet(T.MESSAGE, "a"), Packet(T.MESSAGE, b"\x09\x08")]


@pytest.mark.parametrize("body", [
    b"", b"\x02\x01\xff4", b"\x00\xff4", b"\x00\x01", b"\x00\x05\xff4a", b"\x00\x0a\xff4",
    b"\x00\x01\xff9", b"\x00\x02\xff4\xff", b"\x01\x01\xff\x02", b"\x00\x00\xff",
    b"\x00" + b"\x01" * 11 + b"\xff4",
])
def test_binary_payload_errors(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        v3.decode_payload_binary(body)


def test_binary_payload_packet_limit() -> None:
    one = v3.encode_payload_binary([Packet(T.NOOP)])
    with pytest.raises(RemoteProtocolError):
        v3.decode_payload_binary(one * 3, max_packets=2)


# -- WebSocket frames -----------------------------------------------------------------------

def test_websocket_binary_frames_carry_the_type_byte() -> None:
    assert v3.encode_packet(Packet(T.MESSAGE, b"\x01\x02")) == b"\x04\x01\x02"
    assert v3.decode_packet(b"\x04\x01\x02") == Packet(T.MESSAGE, b"\x01\x02")
    assert v3.encode_packet(Packet(T.MESSAGE, "hi")) == "4hi"
    assert v3.decode_packet("2probe") == Packet(T.PING, "probe")
    assert v3.decode_packet("b4AQI=") == Packet(T.MESSAGE, b"\x01\x02")
    for bad in (b"", b"\x02x", b"\x09", "", "x", "b2AQI=", "b4***"):
        with pytest.raises(RemoteProtocolError):
            v3.decode_packet(bad)


# -- the v3 session -------------------------------------------------------------------------

def _session(now: float = 0.0) -> eio.Session:
    return eio.Session("sid1", transport="polling", ping_interval=25.0, ping_timeout=20.0,
                       max_payload=1000, upgrades=["websocket"], now=now, protocol=3)


def test_v3_open_packet_has_no_max_payload() -> None:
    (open_packet,) = _session().take_outgoing()
    assert json.loads(open_packet.data) == {"sid": "sid1", "upgrades": ["websocket"],
                                            "pingInterval": 25000, "pingTimeout": 20000}


def test_v3_client_pings_and_server_pongs() -> None:
    s = _session()
    s.take_outgoing()
    assert s.receive(Packet(T.PING), now=10.0) == []
    assert s.take_outgoing() == [Packet(T.PONG)]
    # The server never pings: its only timer is the deadline for the client's next packet.
    assert s.handle_timer(40.0) == [] and not s.has_outgoing()
    assert s.get_timer() == 10.0 + 45.0


def test_v3_silent_client_times_out_and_any_packet_counts() -> None:
    s = _session()
    s.take_outgoing()
    assert s.get_timer() == 45.0
    s.receive(Packet(T.MESSAGE, "2[\"x\"]"), now=30.0)
    assert s.handle_timer(45.0) == [] and s.get_timer() == 75.0
    assert s.handle_timer(75.0) == [eio.SessionClosed(eio.CloseReason.PING_TIMEOUT)]
    assert s.closed


def test_v3_session_refuses_what_clients_must_not_send() -> None:
    s = _session()
    with pytest.raises(RemoteProtocolError):
        s.receive(Packet(T.OPEN), now=1.0)
    with pytest.raises(ValueError):
        eio.Session("x", transport="polling", ping_interval=1, ping_timeout=1, max_payload=1,
                    upgrades=[], now=0, protocol=2)


def test_v4_session_unchanged() -> None:
    s = eio.Session("sid1", transport="polling", ping_interval=25.0, ping_timeout=20.0,
                    max_payload=1000, upgrades=[], now=0.0)
    assert s.protocol == 4 and "maxPayload" in json.loads(s.take_outgoing()[0].data)
    with pytest.raises(RemoteProtocolError):
        s.receive(Packet(T.PING), now=1.0)


# -- Socket.IO protocol v4 ------------------------------------------------------------------

def test_v4_namespace_query() -> None:
    assert sio.v4.split_namespace("/chat") == ("/chat", {})
    assert sio.v4.split_namespace("/chat?token=a%20b&x=") == ("/chat", {"token": "a b", "x": ""})
    with pytest.raises(RemoteProtocolError):
        sio.v4.split_namespace("chat?x=1")


def test_v4_connect_packets() -> None:
    enc = sio.Encoder()
    assert enc.encode(sio.v4.connect_reply("/")) == ["0"]
    assert enc.encode(sio.v4.connect_reply("/admin")) == ["0/admin,"]
    assert enc.encode(sio.v4.connect_error("/", "not authorized")) == ['4"not authorized"']
    assert enc.encode(sio.v4.connect_error("/a", "no", {"code": 401})) == ['4/a,{"code":401}']


def test_v4_auth_from_query() -> None:
    query = {"EIO": "3", "transport": "polling", "t": "N1", "b64": "1", "sid": "s", "token": "x"}
    assert sio.v4.auth_from_query(query) == {"token": "x"}


def test_decoder_reads_a_v2_connect_with_query() -> None:
    packet = sio.Decoder().add("0/admin?token=secret,")
    assert packet is not None and packet.nsp == "/admin?token=secret" and packet.data is None

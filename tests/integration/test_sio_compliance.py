"""The socket.io-protocol compliance suite (socketio/socket.io-protocol, test-suite/),
one Python test per ``it(...)``, against ``tests.apps.compliance:build_sio``
(pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, connectTimeout 1000 ms,
CORS ``*``; "auth" emitted on connection, "message" -> "message-back",
"message-with-ack" -> ack, namespace /custom).

Test names are ``test_<describe path>_<it text>``; ``test_extra_*`` are checks the
project adds. Where the suite waits for ``close`` we answer pings meanwhile, so that
only the behaviour under test can close the connection.
"""
from __future__ import annotations

import json
import time

import pytest

from tests.rawclient import (
    EIOHttp,
    RawWebSocket,
    decode_payload,
    in_thread,
    ws_connect,
    ws_open,
    ws_rejected_or_closed,
)

pytestmark = pytest.mark.integration

PATH = "/socket.io/"
PING_INTERVAL = 300
PING_TIMEOUT = 200
CONNECT_TIMEOUT = 1000
FACTORY = "tests.apps.compliance:build_sio"


@pytest.fixture
def srv(live_server):
    return live_server(FACTORY)


@pytest.fixture
def h(srv) -> EIOHttp:
    return EIOHttp(srv.url, PATH)


def check_open_packet(value: dict, upgrades: list[str]) -> None:
    assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}, value
    assert isinstance(value["sid"], str) and value["sid"]
    assert value["upgrades"] == upgrades
    assert value["pingInterval"] == PING_INTERVAL
    assert value["pingTimeout"] == PING_TIMEOUT
    assert value["maxPayload"] == 1000000


def init_socketio_connection(srv) -> RawWebSocket:
    """initSocketIOConnection(): Engine.IO handshake, "40", CONNECT reply, "auth" packet."""
    ws, _ = ws_open(srv.url, PATH)
    ws.send("40")
    reply = ws.recv_skip_pings(3)
    assert isinstance(reply, str) and reply.startswith("40"), reply
    auth = ws.recv_skip_pings(3)
    assert auth == '42["auth",{}]', auth
    return ws


def upgraded_ws(srv, sid: str) -> RawWebSocket:
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    ws.send("2probe")
    ws.send("5")
    assert ws.recv_skip_pings(3) == "3probe"
    return ws


# =========================================================================== Engine.IO / handshake / polling

def test_eio_handshake_polling_should_successfully_open_a_session(h):
    r = h.get("EIO=4&transport=polling")
    assert r.status == 200, r
    assert r.text.startswith("0"), r
    check_open_packet(json.loads(r.text[1:]), ["websocket"])


def test_eio_handshake_polling_should_fail_with_an_invalid_EIO_query_parameter(h):
    r = h.get("transport=polling")
    assert r.status == 400, r
    r2 = h.get("EIO=abc&transport=polling")
    assert r2.status == 400, r2


def test_eio_handshake_polling_should_fail_with_an_invalid_transport_query_parameter(h):
    r = h.get("EIO=4")
    assert r.status == 400, r
    r2 = h.get("EIO=4&transport=abc")
    assert r2.status == 400, r2


def test_eio_handshake_polling_should_fail_with_an_invalid_request_method(h):
    r = h.method("POST", "EIO=4&transport=polling")
    assert r.status == 400, r
    r2 = h.method("PUT", "EIO=4&transport=polling")
    assert r2.status == 400, r2


# =========================================================================== Engine.IO / handshake / WebSocket

def test_eio_handshake_websocket_should_successfully_open_a_session(srv):
    ws = ws_connect(srv.url, PATH)
    try:
        data = ws.recv(3)
        assert isinstance(data, str) and data.startswith("0"), data
        check_open_packet(json.loads(data[1:]), [])
    finally:
        ws.close()


def test_eio_handshake_websocket_should_fail_with_an_invalid_EIO_query_parameter(srv):
    ws_rejected_or_closed(srv.url, PATH, "transport=websocket")
    ws_rejected_or_closed(srv.url, PATH, "EIO=abc&transport=websocket")


def test_eio_handshake_websocket_should_fail_with_an_invalid_transport_query_parameter(srv):
    ws_rejected_or_closed(srv.url, PATH, "EIO=4")
    ws_rejected_or_closed(srv.url, PATH, "EIO=4&transport=abc")


# =========================================================================== Engine.IO / heartbeat

def test_eio_heartbeat_polling_should_send_ping_pong_packets(h):
    sid = h.open()
    for i in range(3):
        poll = h.poll(sid, timeout=3)
        assert poll.status == 200, (i, poll)
        assert poll.text == "2", (i, poll)
        push = h.send(sid, "3")
        assert push.status == 200, (i, push)


def test_eio_heartbeat_polling_should_close_the_session_upon_ping_timeout(h):
    sid = h.open()
    time.sleep((PING_INTERVAL + PING_TIMEOUT) / 1000 + 0.15)  # the protocol is about time here
    poll = h.poll(sid, timeout=3)
    assert poll.status == 400, poll


def test_eio_heartbeat_websocket_should_send_ping_pong_packets(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        for i in range(3):
            data = ws.recv(3)
            assert data == "2", (i, data)
            ws.send("3")
    finally:
        ws.close()


def test_eio_heartbeat_websocket_should_close_the_session_upon_ping_timeout(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        got = ws.wait_closed(3, pong=False)
        # closed because the ping went unanswered (a close packet may follow)
        assert got[:1] == ["2"] and set(got[1:]) <= {"1"}, got
    finally:
        ws.close()


# =========================================================================== Engine.IO / close

def test_eio_close_polling_should_forcefully_close_the_session(h):
    sid = h.open()
    pending = in_thread(h.poll, sid, 3)
    time.sleep(0.05)  # sequencing only: the GET is pending when the close arrives
    h.send(sid, "1")
    poll = pending.result(timeout=5)
    assert poll.status == 200, poll
    assert poll.text == "6", poll
    poll2 = h.poll(sid, timeout=3)
    assert poll2.status == 400, poll2


def test_eio_close_websocket_should_forcefully_close_the_session(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send("1")
        got = ws.wait_closed(3, pong=True)
        assert all(m in ("1", "2") for m in got), got
    finally:
        ws.close()


# =========================================================================== Engine.IO / upgrade

def test_eio_upgrade_should_successfully_upgrade_from_HTTP_long_polling_to_WebSocket(srv, h):
    sid = h.open()
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    try:
        ws.send("2probe")
        assert ws.recv(3) == "3probe"
        ws.send("5")
        # the upgraded session keeps working: a Socket.IO CONNECT over the WebSocket
        ws.send("40")
        reply = ws.recv_skip_pings(3)
        assert isinstance(reply, str) and reply.startswith('40{"sid":'), reply
    finally:
        ws.close()


def test_eio_upgrade_should_ignore_HTTP_requests_with_same_sid_after_upgrade(srv, h):
    sid = h.open()
    ws = upgraded_ws(srv, sid)
    try:
        ws.send("40")  # processed in order after "5": the reply proves the upgrade is done
        assert ws.recv_skip_pings(3).startswith("40")
        poll = h.poll(sid, timeout=3)
        assert poll.status == 400, poll
    finally:
        ws.close()


def test_eio_upgrade_should_ignore_WebSocket_connection_with_same_sid_after_upgrade(srv, h):
    sid = h.open()
    ws = upgraded_ws(srv, sid)
    try:
        ws.send("40")
        assert ws.recv_skip_pings(3).startswith("40")
        assert ws.recv_skip_pings(3) == '42["auth",{}]'
        ws_rejected_or_closed(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
        ws.send('42["message","still here"]')
        assert ws.recv_skip_pings(3) == '42["message-back","still here"]'
    finally:
        ws.close()


# =========================================================================== Socket.IO / connect

def _connect_and_check(srv, send: str, prefix: str, auth_packet: str) -> RawWebSocket:
    ws, _ = ws_open(srv.url, PATH)
    ws.send(send)
    data = ws.recv_skip_pings(3)
    assert isinstance(data, str) and data.startswith(prefix), data
    handshake = json.loads(data[len(prefix):])
    assert set(handshake) == {"sid"}, handshake
    assert isinstance(handshake["sid"], str) and handshake["sid"]
    auth = ws.recv_skip_pings(3)
    assert auth == auth_packet, auth
    return ws


def test_sio_connect_should_allow_connection_to_the_main_namespace(srv):
    _connect_and_check(srv, "40", "40", '42["auth",{}]').close()


def test_sio_connect_should_allow_connection_to_the_main_namespace_with_a_payload(srv):
    _connect_and_check(srv, '40{"token":"123"}', "40", '42["auth",{"token":"123"}]').close()


def test_sio_connect_should_allow_connection_to_a_custom_namespace(srv):
    _connect_and_check(srv, "40/custom,", "40/custom,", '42/custom,["auth",{}]').close()


def test_sio_connect_should_allow_connection_to_a_custom_namespace_with_a_payload(srv):
    _connect_and_check(srv, '40/custom,{"token":"abc"}', "40/custom,",
                       '42/custom,["auth",{"token":"abc"}]').close()


def test_sio_connect_should_disallow_connection_to_an_unknown_namespace(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send("40/random")
        data = ws.recv_skip_pings(3)
        assert data == '44/random,{"message":"Invalid namespace"}', data
    finally:
        ws.close()


def test_sio_connect_should_disallow_connection_with_an_invalid_handshake(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send("4abc")
        got = ws.wait_closed(3, pong=True)
        assert all(m in ("1", "2") for m in got), got
    finally:
        ws.close()


def test_sio_connect_should_close_the_connection_if_no_handshake_is_received(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        got = ws.wait_closed(3, pong=False)
        assert all(m in ("1", "2") for m in got), got
    finally:
        ws.close()


# =========================================================================== Socket.IO / disconnect

def test_sio_disconnect_should_disconnect_from_the_main_namespace(srv):
    ws = init_socketio_connection(srv)
    try:
        ws.send("41")
        data = ws.recv(3)
        assert data == "2", data  # nothing but the next ping: the Engine.IO session stays open
    finally:
        ws.close()


def test_sio_disconnect_should_connect_then_disconnect_from_a_custom_namespace(srv):
    ws = init_socketio_connection(srv)
    try:
        assert ws.recv(3) == "2"  # ping
        ws.send("3")
        ws.send("40/custom")
        reply = ws.recv_skip_pings(3)  # Socket.IO handshake
        assert isinstance(reply, str) and reply.startswith("40/custom,"), reply
        assert ws.recv_skip_pings(3) == '42/custom,["auth",{}]'  # auth packet
        ws.send("41/custom")
        ws.send('42["message","message to main namespace"]')
        data = ws.recv_skip_pings(3)
        assert data == '42["message-back","message to main namespace"]', data
    finally:
        ws.close()


# =========================================================================== Socket.IO / message

def test_sio_message_should_send_a_plain_text_packet(srv):
    ws = init_socketio_connection(srv)
    try:
        ws.send('42["message",1,"2",{"3":[true]}]')
        data = ws.recv_skip_pings(3)
        assert data == '42["message-back",1,"2",{"3":[true]}]', data
    finally:
        ws.close()


def test_sio_message_should_send_a_packet_with_binary_attachments(srv):
    ws = init_socketio_connection(srv)
    try:
        ws.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        ws.send(bytes([1, 2, 3]))
        ws.send(bytes([4, 5, 6]))
        packets = ws.recv_n(3, timeout=3)
        assert packets[0] == '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', packets
        assert packets[1] == bytes([1, 2, 3]), packets
        assert packets[2] == bytes([4, 5, 6]), packets
    finally:
        ws.close()


def test_sio_message_should_send_a_plain_text_packet_with_an_ack(srv):
    ws = init_socketio_connection(srv)
    try:
        ws.send('42456["message-with-ack",1,"2",{"3":[false]}]')
        data = ws.recv_skip_pings(3)
        assert data == '43456[1,"2",{"3":[false]}]', data
    finally:
        ws.close()


def test_sio_message_should_send_a_packet_with_binary_attachments_and_an_ack(srv):
    ws = init_socketio_connection(srv)
    try:
        ws.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        ws.send(bytes([1, 2, 3]))
        ws.send(bytes([4, 5, 6]))
        packets = ws.recv_n(3, timeout=3)
        assert packets[0] == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', packets
        assert packets[1] == bytes([1, 2, 3]), packets
        assert packets[2] == bytes([4, 5, 6]), packets
    finally:
        ws.close()


@pytest.mark.parametrize("packet,what", [
    ("4abc", "unknown_packet_type"),
    ("42{}", "invalid_payload_format"),
    ('42abc["message-with-ack",1,"2",{"3":[false]}]', "invalid_ack_id"),
], ids=["unknown packet type", "invalid payload format", "invalid ack id"])
def test_sio_message_should_close_the_connection_upon_invalid_format(srv, packet, what):
    ws = init_socketio_connection(srv)
    try:
        ws.send(packet)
        got = ws.wait_closed(3, pong=True)
        assert all(m in ("1", "2") for m in got), got
    finally:
        ws.close()


# =========================================================================== extra checks (project brief)

def test_extra_connect_reply_arrives_before_handler_emits_over_polling(h):
    sid = h.open()
    assert h.send(sid, "40").text == "ok"
    packets: list = []
    deadline = time.monotonic() + 3
    while len([p for p in packets if p != "2"]) < 2 and time.monotonic() < deadline:
        packets += h.poll_packets(sid, timeout=3)
    data = [p for p in packets if p != "2"]
    assert len(data) >= 2, packets
    assert isinstance(data[0], str) and data[0].startswith('40{"sid":'), packets
    assert data[1] == '42["auth",{}]', packets


def test_extra_connect_reply_arrives_before_handler_emits_custom_namespace(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send('40/custom,{"x":1}')
        first, second = ws.recv_n(2, timeout=3)
        assert isinstance(first, str) and first.startswith('40/custom,{"sid":'), (first, second)
        assert second == '42/custom,["auth",{"x":1}]', (first, second)
    finally:
        ws.close()


def test_extra_connect_timeout_closes_even_when_pings_are_answered(srv):
    ws, _ = ws_open(srv.url, PATH)
    start = time.monotonic()
    try:
        got = ws.wait_closed(4, pong=True)
        elapsed = time.monotonic() - start
        assert all(m in ("1", "2") for m in got), got
        # the protocol is about time here: connectTimeout is 1000 ms
        assert 0.8 <= elapsed <= 3.0, elapsed
    finally:
        ws.close()


def test_extra_no_connect_timeout_once_connected(srv):
    ws = init_socketio_connection(srv)
    try:
        rest = ws.collect(1.5, pong=True)  # > connectTimeout, pings answered
        assert rest == [] and not ws.closed, (rest, ws.log)
        ws.send('42["message","alive"]')
        assert ws.recv_skip_pings(3) == '42["message-back","alive"]'
    finally:
        ws.close()


def test_extra_socketio_session_survives_the_upgrade(srv, h):
    sid = h.open()
    assert h.send(sid, "40").text == "ok"
    packets = h.poll_packets(sid, timeout=3)
    while len([p for p in packets if p != "2"]) < 2:
        packets += h.poll_packets(sid, timeout=3)
    data = [p for p in packets if p != "2"]
    assert data[0].startswith('40{"sid":') and data[1] == '42["auth",{}]', packets
    pending = in_thread(h.poll, sid, 3)
    time.sleep(0.05)  # sequencing only: the GET is pending when the probe arrives
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    try:
        ws.send("2probe")
        assert ws.recv(3) == "3probe"
        r = pending.result(timeout=3)
        assert r.status == 200 and "6" in decode_payload(r.text), r
        ws.send("5")
        ws.send('42["message","over ws"]')
        assert ws.recv_skip_pings(3) == '42["message-back","over ws"]'
        ws.send('421["message-with-ack","a"]')
        assert ws.recv_skip_pings(3) == '431["a"]'
    finally:
        ws.close()


def test_extra_message_without_ack_request_gets_no_ack(srv):
    ws = init_socketio_connection(srv)
    try:
        ws.send('42["message","x"]')
        assert ws.recv_skip_pings(3) == '42["message-back","x"]'
        assert ws.collect(0.4) == []
    finally:
        ws.close()

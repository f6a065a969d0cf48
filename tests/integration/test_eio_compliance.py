"""The engine.io-protocol compliance suite (socketio/engine.io-protocol, test-suite/),
one Python test per ``it(...)``, against ``tests.apps.compliance:build_eio``
(pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, CORS ``*``, echo server).

Test names are ``test_<describe path>_<it text>``. The ``test_extra_*`` tests at the
end are checks the project adds on top of the suite.

Where the suite waits for a WebSocket ``close`` event, we answer the server's pings
while waiting, so a heartbeat timeout can not pass for the close under test.
"""
from __future__ import annotations

import json
import time

import pytest

from tests.rawclient import (
    BAD_HANDSHAKE_METHOD,
    BAD_REQUEST,
    ERROR_MESSAGES,
    FORBIDDEN,
    UNKNOWN_SID,
    UNKNOWN_TRANSPORT,
    UNSUPPORTED_PROTOCOL_VERSION,
    EIOHttp,
    RawWebSocket,
    in_thread,
    raw_http,
    ws_connect,
    ws_open,
    ws_rejected_or_closed,
)

pytestmark = pytest.mark.integration

PATH = "/engine.io/"
PING_INTERVAL = 300
PING_TIMEOUT = 200
FACTORY = "tests.apps.compliance:build_eio"


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
    # JSON numbers must be integers, like the Node server sends them (300, not 300.0)
    assert type(value["pingInterval"]) is int and type(value["pingTimeout"]) is int
    assert type(value["maxPayload"]) is int


def upgraded_ws(srv, h: EIOHttp, sid: str) -> RawWebSocket:
    """Upgrade ``sid`` to WebSocket the way the suite does (2probe and 5 back to back),
    then wait for an echo so that the upgrade has surely been processed."""
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    ws.send("2probe")
    ws.send("5")
    ws.send("4sync")
    assert ws.recv_skip_pings(3) == "3probe"
    assert ws.recv_skip_pings(3) == "4sync"
    return ws


# =========================================================================== handshake / HTTP long-polling

def test_handshake_polling_successfully_opens_a_session(h):
    r = h.get("EIO=4&transport=polling")
    assert r.status == 200, r
    assert r.text.startswith("0"), r
    check_open_packet(json.loads(r.text[1:]), ["websocket"])


def test_handshake_polling_fails_with_an_invalid_EIO_query_parameter(h):
    r = h.get("transport=polling")
    assert r.status == 400, r
    r2 = h.get("EIO=abc&transport=polling")
    assert r2.status == 400, r2


def test_handshake_polling_fails_with_an_invalid_transport_query_parameter(h):
    r = h.get("EIO=4")
    assert r.status == 400, r
    r2 = h.get("EIO=4&transport=abc")
    assert r2.status == 400, r2


def test_handshake_polling_fails_with_an_invalid_request_method(h):
    r = h.method("POST", "EIO=4&transport=polling")
    assert r.status == 400, r
    r2 = h.method("PUT", "EIO=4&transport=polling")
    assert r2.status == 400, r2


# =========================================================================== handshake / WebSocket

def test_handshake_websocket_successfully_opens_a_session(srv):
    ws = ws_connect(srv.url, PATH)
    try:
        data = ws.recv(3)
        assert isinstance(data, str) and data.startswith("0"), data
        check_open_packet(json.loads(data[1:]), [])
    finally:
        ws.close()


def test_handshake_websocket_fails_with_an_invalid_EIO_query_parameter(srv):
    ws_rejected_or_closed(srv.url, PATH, "transport=websocket")
    ws_rejected_or_closed(srv.url, PATH, "EIO=abc&transport=websocket")


def test_handshake_websocket_fails_with_an_invalid_transport_query_parameter(srv):
    ws_rejected_or_closed(srv.url, PATH, "EIO=4")
    ws_rejected_or_closed(srv.url, PATH, "EIO=4&transport=abc")


# =========================================================================== message / HTTP long-polling

def test_message_polling_sends_and_receives_a_payload_containing_one_plain_text_packet(h):
    sid = h.open()
    push = h.send(sid, "4hello")
    assert push.status == 200, push
    assert push.text == "ok", push
    poll = h.poll(sid, timeout=3)
    assert poll.status == 200, poll
    assert poll.text == "4hello", poll


def test_message_polling_sends_and_receives_a_payload_containing_several_plain_text_packets(h):
    sid = h.open()
    push = h.send(sid, "4test1\x1e4test2\x1e4test3")
    assert push.status == 200, push
    assert push.text == "ok", push
    poll = h.poll(sid, timeout=3)
    assert poll.status == 200, poll
    assert poll.text == "4test1\x1e4test2\x1e4test3", poll


def test_message_polling_sends_and_receives_a_payload_containing_plain_text_and_binary_packets(h):
    sid = h.open()
    push = h.send(sid, "4hello\x1ebAQIDBA==")
    assert push.status == 200, push
    assert push.text == "ok", push
    poll = h.poll(sid, timeout=3)
    assert poll.status == 200, poll
    assert poll.text == "4hello\x1ebAQIDBA==", poll


def test_message_polling_closes_the_session_upon_invalid_packet_format(h):
    sid = h.open()
    try:
        push = h.send(sid, "abc")
        assert push.status == 400, push
    except OSError:
        pass  # like node-fetch: an abnormally closed request is accepted too
    poll = h.poll(sid, timeout=3)
    assert poll.status == 400, poll


def test_message_polling_closes_the_session_upon_duplicate_poll_requests(h):
    sid = h.open()
    first = in_thread(h.poll, sid, 3)
    time.sleep(0.05)  # sequencing only: let the first GET become the pending poll
    second = h.poll(sid, timeout=3, extra="&t=burst")
    r1 = first.result(timeout=5)
    assert r1.status == 200, r1
    assert r1.text == "1", r1
    # the Node.js implementation uses 500; the project promises 400 (and never 405/500)
    assert second.status == 400, second
    r3 = h.poll(sid, timeout=3)
    assert r3.status == 400, r3


# =========================================================================== message / WebSocket

def test_message_websocket_sends_and_receives_a_plain_text_packet(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send("4hello")
        assert ws.recv_skip_pings(3) == "4hello"
    finally:
        ws.close()


def test_message_websocket_sends_and_receives_a_binary_packet(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send(bytes([1, 2, 3, 4]))
        assert ws.recv_skip_pings(3) == bytes([1, 2, 3, 4])
    finally:
        ws.close()


def test_message_websocket_closes_the_session_upon_invalid_packet_format(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send("abc")
        got = ws.wait_closed(3, pong=True)
        assert all(m in ("1", "2") for m in got), got
    finally:
        ws.close()


# =========================================================================== heartbeat

def test_heartbeat_polling_sends_ping_pong_packets(h):
    sid = h.open()
    for i in range(3):
        poll = h.poll(sid, timeout=3)
        assert poll.status == 200, (i, poll)
        assert poll.text == "2", (i, poll)
        push = h.send(sid, "3")
        assert push.status == 200, (i, push)


def test_heartbeat_polling_closes_the_session_upon_ping_timeout(h):
    sid = h.open()
    # the protocol is about time here: pingInterval + pingTimeout, plus a small margin
    time.sleep((PING_INTERVAL + PING_TIMEOUT) / 1000 + 0.15)
    poll = h.poll(sid, timeout=3)
    assert poll.status == 400, poll


def test_heartbeat_websocket_sends_ping_pong_packets(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        for i in range(3):
            data = ws.recv(3)
            assert data == "2", (i, data)
            ws.send("3")
    finally:
        ws.close()


def test_heartbeat_websocket_closes_the_session_upon_ping_timeout(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        got = ws.wait_closed(3, pong=False)
        # closed by the heartbeat: the ping went unanswered (a close packet may follow)
        assert got[:1] == ["2"] and set(got[1:]) <= {"1"}, got
    finally:
        ws.close()


# =========================================================================== close

def test_close_polling_forcefully_closes_the_session(h):
    sid = h.open()
    pending = in_thread(h.poll, sid, 3)
    time.sleep(0.05)  # sequencing only: the GET must be pending when the close arrives
    h.send(sid, "1")
    poll = pending.result(timeout=5)
    assert poll.status == 200, poll
    assert poll.text == "6", poll
    poll2 = h.poll(sid, timeout=3)
    assert poll2.status == 400, poll2


def test_close_websocket_forcefully_closes_the_session(srv):
    ws, _ = ws_open(srv.url, PATH)
    try:
        ws.send("1")
        got = ws.wait_closed(3, pong=True)
        assert all(m in ("1", "2") for m in got), got
    finally:
        ws.close()


# =========================================================================== upgrade

def test_upgrade_successfully_upgrades_from_http_long_polling_to_websocket(srv, h):
    sid = h.open()
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    try:
        ws.send("2probe")
        assert ws.recv(3) == "3probe"
        poll = h.poll(sid, timeout=3)
        assert poll.status == 200, poll
        assert poll.text == "6", poll  # noop to cleanly end the HTTP long-polling request
        ws.send("5")
        ws.send("4hello")
        assert ws.recv_skip_pings(3) == "4hello"
    finally:
        ws.close()


def test_upgrade_ignores_HTTP_requests_with_same_sid_after_upgrade(srv, h):
    sid = h.open()
    ws = upgraded_ws(srv, h, sid)
    try:
        poll = h.poll(sid, timeout=3)
        assert poll.status == 400, poll
        ws.send("4hello")
        assert ws.recv_skip_pings(3) == "4hello"
    finally:
        ws.close()


def test_upgrade_ignores_WebSocket_connection_with_same_sid_after_upgrade(srv, h):
    sid = h.open()
    ws = upgraded_ws(srv, h, sid)
    try:
        ws_rejected_or_closed(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
        ws.send("4hello")
        assert ws.recv_skip_pings(3) == "4hello"
    finally:
        ws.close()


# =========================================================================== extra checks (project brief)

def _raw_request(srv, method: str, target: str, body: bytes = b"", extra: str = "") -> bytes:
    head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"Connection: close\r\n{extra}")
    if body or method == "POST":
        head += f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


@pytest.mark.parametrize("case", ["handshake", "post", "poll", "error"])
def test_extra_connection_close_request_gets_connection_close_back(srv, h, case):
    if case == "handshake":
        req, want_status, want_body = _raw_request(srv, "GET", f"{PATH}?EIO=4&transport=polling"), 200, None
    elif case == "post":
        sid = h.open()
        req = _raw_request(srv, "POST", f"{PATH}?EIO=4&transport=polling&sid={sid}", b"4hello")
        want_status, want_body = 200, b"ok"
    elif case == "poll":
        sid = h.open()
        assert h.send(sid, "4hello").status == 200
        req = _raw_request(srv, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
        want_status, want_body = 200, b"4hello"
    else:
        req, want_status, want_body = _raw_request(srv, "GET", f"{PATH}?EIO=4&transport=abc"), 400, None
    res = raw_http(srv.url, [req], timeout=3)
    assert res.status == want_status, res.raw
    assert res.headers.get("connection", "").lower() == "close", res.raw
    if want_body is not None:
        assert res.body == want_body, res.raw
    assert res.server_closed, f"the server kept the connection open after Connection: close: {res.raw!r}"


ERROR_CASES = [
    ("missing transport", "GET", "EIO=4", UNKNOWN_TRANSPORT),
    ("unknown transport", "GET", "EIO=4&transport=abc", UNKNOWN_TRANSPORT),
    ("missing EIO", "GET", "transport=polling", UNSUPPORTED_PROTOCOL_VERSION),
    ("EIO=abc", "GET", "EIO=abc&transport=polling", UNSUPPORTED_PROTOCOL_VERSION),
    ("EIO=3", "GET", "EIO=3&transport=polling", UNSUPPORTED_PROTOCOL_VERSION),
    ("unknown sid GET", "GET", "EIO=4&transport=polling&sid=doesnotexist", UNKNOWN_SID),
    ("unknown sid POST", "POST", "EIO=4&transport=polling&sid=doesnotexist", UNKNOWN_SID),
    ("POST handshake", "POST", "EIO=4&transport=polling", BAD_HANDSHAKE_METHOD),
    ("PUT handshake", "PUT", "EIO=4&transport=polling", BAD_HANDSHAKE_METHOD),
    ("DELETE handshake", "DELETE", "EIO=4&transport=polling", BAD_HANDSHAKE_METHOD),
    ("PATCH handshake", "PATCH", "EIO=4&transport=polling", BAD_HANDSHAKE_METHOD),
    ("websocket transport without Upgrade", "GET", "EIO=4&transport=websocket", BAD_REQUEST),
]


def check_error(r, code: int) -> None:
    assert r.status == 400, r
    assert (r.header("content-type") or "").startswith("application/json"), r
    body = r.json()
    assert body == {"code": code, "message": ERROR_MESSAGES[code]}, r


@pytest.mark.parametrize("name,method,query,code", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_extra_400_responses_carry_engineio_error_json(h, name, method, query, code):
    body = "4hello" if method in ("POST", "PUT", "PATCH") else None
    r = h.method(method, query, body)
    check_error(r, code)


def test_extra_polling_request_for_a_websocket_session_is_bad_request(srv, h):
    ws, handshake = ws_open(srv.url, PATH)
    try:
        r = h.poll(handshake["sid"], timeout=3)
        check_error(r, BAD_REQUEST)
        ws.send("4still-there")
        assert ws.recv_skip_pings(3) == "4still-there"
    finally:
        ws.close()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_extra_wrong_method_on_a_session_is_400_never_405(h, method):
    sid = h.open()
    r = h.method(method, f"EIO=4&transport=polling&sid={sid}", "4hello" if method != "DELETE" else None)
    assert r.status == 400, r
    body = r.json()
    assert body.get("code") in (BAD_HANDSHAKE_METHOD, BAD_REQUEST), r
    assert body.get("message") == ERROR_MESSAGES[body["code"]], r


def test_extra_forbidden_origin_gets_code_4(live_server):
    srv = live_server(FACTORY, cors_allowed_origins=["http://allowed.example"])
    h = EIOHttp(srv.url, PATH)
    bad = h.get("EIO=4&transport=polling", headers={"Origin": "http://evil.example"})
    assert bad.status in (400, 403), bad
    assert bad.json() == {"code": FORBIDDEN, "message": ERROR_MESSAGES[FORBIDDEN]}, bad
    good = h.get("EIO=4&transport=polling", headers={"Origin": "http://allowed.example"})
    assert good.status == 200, good
    assert good.header("access-control-allow-origin") == "http://allowed.example", good


def test_extra_cors_star_allows_any_origin(h):
    r = h.get("EIO=4&transport=polling", headers={"Origin": "http://anything.example"})
    assert r.status == 200, r
    assert r.header("access-control-allow-origin") in ("*", "http://anything.example"), r
    pre = h.method("OPTIONS", "EIO=4&transport=polling", headers={
        "Origin": "http://anything.example", "Access-Control-Request-Method": "POST"})
    assert pre.status in (200, 204), pre
    assert pre.header("access-control-allow-origin") in ("*", "http://anything.example"), pre


def test_extra_pending_poll_answered_with_noop_when_the_probe_arrives(srv, h):
    sid = h.open()
    pending = in_thread(h.poll, sid, 3)
    time.sleep(0.05)  # sequencing only: the GET is pending before the WebSocket opens
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    try:
        ws.send("2probe")
        assert ws.recv(3) == "3probe"
        poll = pending.result(timeout=3)
        assert poll.status == 200, poll
        assert poll.text == "6", poll
        ws.send("5")
        ws.send("4hello")
        assert ws.recv_skip_pings(3) == "4hello"
    finally:
        ws.close()


def test_extra_no_stray_noop_over_the_websocket_after_upgrade(srv, h):
    sid = h.open()
    pending = in_thread(h.poll, sid, 3)
    time.sleep(0.05)  # sequencing only
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    try:
        ws.send("2probe")
        assert ws.recv(3) == "3probe"
        assert pending.result(timeout=3).text == "6"
        ws.send("5")
        ws.send("4hello")
        first = ws.recv_skip_pings(3)
        assert first == "4hello", f"expected the echo, got {first!r} (all frames: {ws.log!r})"
        # over a couple of heartbeats nothing but pings may arrive
        rest = ws.collect(0.8, pong=True)
        assert rest == [], f"unexpected packets after the upgrade: {rest!r} (all frames: {ws.log!r})"
        assert "6" not in ws.log, ws.log
        assert not ws.closed, f"the upgraded session was closed: {ws.log!r}"
    finally:
        ws.close()


def test_extra_messages_sent_while_upgrading_are_not_lost(srv, h):
    sid = h.open()
    ws = ws_connect(srv.url, PATH, f"EIO=4&transport=websocket&sid={sid}")
    try:
        ws.send("2probe")
        assert ws.recv(3) == "3probe"
        # still on polling: this message is echoed, over whichever transport is current
        assert h.send(sid, "4during").status == 200
        poll = h.poll(sid, timeout=3)
        assert poll.status == 200, poll
        ws.send("5")
        got = [p for p in poll.text.split("\x1e") if p not in ("6", "2")]
        if got != ["4during"]:
            assert got == [], poll
            assert ws.recv_skip_pings(3) == "4during"
        ws.send("4after")
        assert ws.recv_skip_pings(3) == "4after"
    finally:
        ws.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_extra_pings_keep_ping_interval_when_ping_timeout_is_longer(live_server, transport):
    # pingInterval 0.3 s, pingTimeout 2 s: a client that answers at once must get a ping
    # every ~0.3 s, not one per pingTimeout (the pong deadline was the only timer set).
    srv = live_server(FACTORY, ping_interval=0.3, ping_timeout=2.0)
    pings = []
    start = time.monotonic()
    if transport == "websocket":
        ws, _ = ws_open(srv.url, PATH)
        try:
            while time.monotonic() - start < 2.0:
                assert ws.recv(3) == "2"
                pings.append(time.monotonic())
                ws.send("3")
        finally:
            ws.close()
    else:
        http = EIOHttp(srv.url, PATH)
        sid = http.open()
        while time.monotonic() - start < 2.0:
            poll = http.poll(sid, timeout=3)
            assert poll.status == 200 and poll.text == "2", poll
            pings.append(time.monotonic())
            assert http.send(sid, "3").status == 200
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    # 2 s at one ping per 0.3 s: 6 pings; with the bug, one.
    assert len(pings) >= 4, f"pings at {[round(p - start, 2) for p in pings]}"
    assert max(gaps) < 1.0, gaps

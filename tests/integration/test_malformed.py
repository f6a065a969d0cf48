"""Malformed and hostile input against ``tests.apps.malformed:build``.

Every test keeps two honest clients connected to "/" (one WebSocket, one HTTP
long-polling) while a "victim" connection misbehaves. Afterwards:

* the misbehaving connection / session is closed (where the protocol says so),
* the app's handlers never saw the bad input (checked through ``GET /stats``),
* the server process is alive, both honest clients still get their echo, and a
  brand-new client can still connect.

Heartbeat in the app is slow (10 s / 10 s) and we answer pings while waiting, so a
close can only come from the input under test. ``max_http_buffer_size`` is 10 000.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest

from tests.rawclient import (
    BAD_HANDSHAKE_METHOD,
    BAD_REQUEST,
    ERROR_MESSAGES,
    UNKNOWN_SID,
    EIOHttp,
    RawWebSocket,
    WSClosed,
    WSTimeout,
    decode_payload,
    in_thread,
    raw_http,
    request,
    sio_connect,
    ws_open,
    ws_rejected_or_closed,
)

pytestmark = pytest.mark.integration

PATH = "/socket.io/"
FACTORY = "tests.apps.malformed:build"
MAX = 10_000
RESERVED = ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
NODE_DISCONNECT_REASONS = {
    "client namespace disconnect", "server namespace disconnect", "transport close", "transport error",
    "ping timeout", "parse error", "forced close", "server shutting down",
}


def ph(num: Any) -> str:
    return json.dumps({"_placeholder": True, "num": num}, separators=(",", ":"))


class Env:
    """A running malformed-app server plus the two honest clients."""

    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self.h = EIOHttp(srv.url, PATH)
        self.counter = 0
        self.honest_ws, self.honest_ws_sid = sio_connect(srv.url)
        self.honest_poll_sid = self.h.open()
        assert self.h.send(self.honest_poll_sid, "40").text == "ok"
        packets = self._poll_until(self.honest_poll_sid, lambda p: isinstance(p, str) and p.startswith("40{"))
        self.honest_poll_socket_id = json.loads(packets[-1][2:])["sid"]
        self.wait_stats(lambda s: s["active"]["/"] == 2, "the two honest clients are connected")

    # -- stats
    def stats(self) -> dict:
        r = request(self.srv.url, "GET", "/stats", timeout=3)
        assert r.status == 200, r
        return r.json()

    def wait_stats(self, pred: Callable[[dict], bool], what: str, timeout: float = 3.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {what}; /stats = {json.dumps(s)}")
            time.sleep(0.05)

    # -- polling helpers
    def _poll_until(self, sid: str, pred: Callable[[Any], bool], timeout: float = 4.0) -> list:
        got: list = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.h.poll(sid, timeout=max(0.5, deadline - time.monotonic()))
            assert r.status == 200, (r, got)
            for p in decode_payload(r.text):
                got.append(p)
                if p == "2":
                    self.h.send(sid, "3")
                if pred(p):
                    return got
        raise AssertionError(f"polling: expected packet not received; got {got!r}")

    def victim_ws(self, nsp: str = "/") -> tuple[RawWebSocket, str]:
        return sio_connect(self.srv.url, nsp)

    def victim_eio_ws(self) -> RawWebSocket:
        ws, _ = ws_open(self.srv.url, PATH)
        return ws

    def victim_polling(self) -> str:
        sid = self.h.open()
        assert self.h.send(sid, "40").text == "ok"
        self._poll_until(sid, lambda p: isinstance(p, str) and p.startswith("40{"))
        return sid

    # -- verdicts
    def assert_polling_session_closed(self, sid: str) -> None:
        """The session is gone: GET answers 400 (a GET that was already racing the close
        may first get only close/noop packets)."""
        r = self.h.poll(sid, timeout=3)
        if r.status == 200:
            assert set(decode_payload(r.text)) <= {"1", "6"}, f"session still delivers packets: {r}"
            r = self.h.poll(sid, timeout=3)
        assert r.status == 400, f"session {sid} still open: {r}"
        body = r.json()
        assert body == {"code": UNKNOWN_SID, "message": ERROR_MESSAGES[UNKNOWN_SID]}, r

    def assert_victim_gone(self, expected_active: int = 2) -> dict:
        return self.wait_stats(lambda s: s["active"]["/"] == expected_active,
                               f"only the {expected_active} honest sockets remain in '/'")

    def assert_healthy(self) -> None:
        assert self.srv.alive(), "the server process died"
        self.counter += 1
        tag = f"still-alive-{self.counter}"
        # honest WebSocket client
        self.honest_ws.send(f'42["echo","{tag}"]')
        got = self.honest_ws.recv_skip_pings(3)
        assert got == f'42["echo-back","{tag}"]', f"honest WebSocket client: {got!r}"
        # honest polling client
        assert self.h.send(self.honest_poll_sid, f'42["echo","{tag}"]').text == "ok"
        self._poll_until(self.honest_poll_sid, lambda p: p == f'42["echo-back","{tag}"]')
        # a new client can still connect and echo, with an ack
        ws, _ = sio_connect(self.srv.url)
        try:
            ws.send(f'427["echo-ack","{tag}",{{"n":1}}]')
            assert ws.recv_skip_pings(3) == f'437["{tag}",{{"n":1}}]'
        finally:
            ws.close()
        assert self.srv.alive(), "the server process died"

    def close(self) -> None:
        self.honest_ws.close()


@pytest.fixture
def env(live_server):
    e = Env(live_server(FACTORY))
    yield e
    e.close()


def expect_ws_closed(ws: RawWebSocket, timeout: float = 3.0) -> list:
    """The server must close the WebSocket (pings answered meanwhile) without having
    sent anything but pings (or an Engine.IO close packet "1")."""
    try:
        got = ws.wait_closed(timeout, pong=True)
    finally:
        ws.close()
    assert all(m in ("1", "2") for m in got), f"unexpected packets before the close: {got!r}"
    return got


def no_victim_events(stats: dict, marker: str) -> None:
    blob = json.dumps([stats["events"], stats["any_events"], stats["reserved_calls"]])
    assert marker not in blob, f"a handler saw the malformed input ({marker}): {json.dumps(stats)}"


# =========================================================================== Engine.IO packets

@pytest.mark.parametrize("frame", ["abc", "9", "", "x42[\"echo\",\"evil\"]", "7"],
                         ids=["letters", "type 9", "empty frame", "junk prefix", "type 7"])
def test_invalid_engineio_packet_over_websocket_closes(env, frame):
    ws, _ = env.victim_ws()
    ws.send(frame)
    expect_ws_closed(ws)
    env.assert_victim_gone()
    env.assert_healthy()


@pytest.mark.parametrize("body", [
    "abc", "9", "", '42["echo","evil-poll"]\x1eabc', "b!!!not-base64", "42[\"echo\",\"evil-poll\"]\x1e",
], ids=["letters", "type 9", "empty body", "valid then invalid", "bad base64", "trailing separator"])
def test_invalid_engineio_payload_over_polling_gets_400_and_closes(env, body):
    sid = env.victim_polling()
    try:
        r = env.h.send(sid, body)
        assert r.status == 400, r
        assert r.json().get("code") == BAD_REQUEST, r
    except OSError:
        pass  # an abnormally closed request is accepted, as in the compliance suite
    env.assert_polling_session_closed(sid)
    env.assert_victim_gone()
    env.assert_healthy()


# =========================================================================== Socket.IO packets

INVALID_SIO = [
    ("4abc", "unknown type letter"),
    ("49", "unknown type 9"),
    ("42", "event without payload"),
    ("42{}", "event payload object"),
    ("42[]", "event payload empty array"),
    ('42"echo"', "event payload string"),
    ('42["echo",', "truncated JSON"),
    ('42["echo","evil"]]', "trailing garbage"),
    ('42abc["echo","evil"]', "invalid ack id"),
    ('42-1["echo","evil"]', "negative ack id"),
    ("431{}", "ack payload object"),
    ('43"x"', "ack payload string"),
    ('41"evil"', "disconnect with payload"),
    ('44{"message":"evil"}', "client-sent CONNECT_ERROR"),
    ('40/other,"evil"', "connect payload string"),
    ("40/other,[1,2]", "connect payload array"),
    ('45["echo","evil"]', "binary event without attachment count"),
    ('45x-["echo","evil"]', "binary event with non-numeric attachment count"),
    ('451["echo","evil"]', "binary event without dash"),
    ('42other,["echo","evil"]', "namespace without leading slash"),
]


@pytest.mark.parametrize("packet", [p for p, _ in INVALID_SIO], ids=[i for _, i in INVALID_SIO])
def test_invalid_socketio_packet_closes_the_connection(env, packet):
    ws, _ = env.victim_ws()
    ws.send(packet)
    expect_ws_closed(ws)
    stats = env.assert_victim_gone()
    no_victim_events(stats, "evil")
    assert stats["connects"]["/other"] == 0, stats
    env.assert_healthy()


def test_invalid_socketio_packet_over_polling_closes_the_session(env):
    sid = env.victim_polling()
    r = env.h.send(sid, '42{"evil":1}')
    assert r.status in (200, 400), r
    env.assert_polling_session_closed(sid)
    env.assert_victim_gone()
    env.assert_healthy()


# =========================================================================== binary placeholders

BAD_PLACEHOLDERS = [
    (f'451-["echo",{ph(1)}]', [b"\x01"], "num out of range"),
    (f'451-["echo",{ph(-1)}]', [b"\x01"], "num negative"),
    (f'451-["echo",{ph("0")}]', [b"\x01"], "num is a string"),
    (f'451-["echo",{ph(0.5)}]', [b"\x01"], "num is a float"),
    (f'451-["echo",{ph(None)}]', [b"\x01"], "num is null"),
    (f'452-["echo",{ph(True)},{ph(0)}]', [b"\x01", b"\x02"], "num is true (bool is not int)"),
    ('451-["echo",{"_placeholder":true}]', [b"\x01"], "num missing"),
    ('451-["echo",{"_placeholder":true,"num":0,"evil":1}]', [b"\x01"], "extra key"),
    ('451-["echo",{"_placeholder":"true","num":0}]', [b"\x01"], "_placeholder is a string"),
    ('451-["echo",{"_placeholder":1,"num":0}]', [b"\x01"], "_placeholder is 1"),
    (f'451-["echo",{ph(0)}]', ['42["echo","evil"]'], "text frame instead of the attachment"),
]


@pytest.mark.parametrize("header,frames", [(h, f) for h, f, _ in BAD_PLACEHOLDERS],
                         ids=[i for _, _, i in BAD_PLACEHOLDERS])
def test_bad_binary_placeholder_closes_the_connection(env, header, frames):
    ws, _ = env.victim_ws()
    ws.send(header)
    for frame in frames:
        if not ws.try_send(frame):
            break
    expect_ws_closed(ws)
    stats = env.assert_victim_gone()
    assert stats["events"] == [], f"the echo handler ran: {json.dumps(stats)}"
    no_victim_events(stats, "evil")
    env.assert_healthy()


def test_binary_frame_without_a_binary_packet_closes_the_connection(env):
    ws, _ = env.victim_ws()
    ws.send(b"\x01\x02\x03")
    expect_ws_closed(ws)
    env.assert_victim_gone()
    env.assert_healthy()


def test_placeholder_shaped_object_in_a_plain_event_is_harmless(env):
    """A placeholder-shaped dict in a non-binary EVENT has no attachment to stand for.
    Node treats it as plain data; closing is acceptable too. Nothing else is."""
    ws, _ = env.victim_ws()
    ws.send(f'42["echo",{ph(0)}]')
    try:
        got = ws.recv_skip_pings(3)
    except WSClosed:
        got = None
    if got is not None:
        assert got == f'42["echo-back",{ph(0)}]', got
        ws.close()
    else:
        env.assert_victim_gone()
    env.assert_healthy()


def test_more_than_10_attachments_closes_the_connection(env):
    ws, _ = env.victim_ws()
    placeholders = ",".join(ph(i) for i in range(11))
    ws.send(f'4511-["echo",{placeholders}]')
    for i in range(11):
        if not ws.try_send(bytes([i])):
            break
    expect_ws_closed(ws)
    stats = env.assert_victim_gone()
    assert not any(len(e[2]) > 2 for e in stats["events"]), stats
    env.assert_healthy()


def test_huge_declared_attachment_count_closes_without_waiting_for_frames(env):
    ws, _ = env.victim_ws()
    ws.send(f'451000000-["echo",{ph(0)}]')
    expect_ws_closed(ws)
    env.assert_victim_gone()
    env.assert_healthy()


def test_exactly_10_attachments_are_accepted(env):
    ws, _ = env.victim_ws()
    try:
        placeholders = ",".join(ph(i) for i in range(10))
        ws.send(f'4510-["echo",{placeholders}]')
        for i in range(10):
            ws.send(bytes([i, i]))
        packets = ws.recv_n(11, timeout=3)
        assert packets[0] == f'4510-["echo-back",{placeholders}]', packets
        assert packets[1:] == [bytes([i, i]) for i in range(10)], packets
    finally:
        ws.close()
    env.assert_healthy()


# =========================================================================== oversized input

def test_oversized_post_with_content_length_gets_413_or_400_and_closes(env):
    sid = env.victim_polling()
    body = ('42["echo","evil' + "x" * (2 * MAX) + '"]').encode()
    head = (f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    pieces = [head] + [body[i:i + 1000] for i in range(0, len(body), 1000)]
    res = raw_http(env.srv.url, pieces, timeout=3, read_until_eof=False, chunk_delay=0.01)
    assert res.status in (413, 400), f"{res.status} {res.error} {res.raw[:300]!r}"
    env.assert_polling_session_closed(sid)
    stats = env.assert_victim_gone()
    no_victim_events(stats, "evil")
    env.assert_healthy()


def test_oversized_declared_content_length_is_refused_without_reading_the_body(env):
    sid = env.victim_polling()
    head = (f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {100 * MAX}\r\n\r\n").encode()
    # only the headers and a few bytes: a server that waits for the whole body times out here
    res = raw_http(env.srv.url, [head, b'42["echo","evil'], timeout=3, read_until_eof=False)
    assert res.status in (413, 400), f"{res.status} {res.error} {res.raw[:300]!r}"
    env.assert_polling_session_closed(sid)
    env.assert_victim_gone()
    env.assert_healthy()


def test_oversized_chunked_post_gets_413_or_400_and_closes(env):
    sid = env.victim_polling()
    head = (f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    body = ('42["echo","evil' + "x" * (3 * MAX) + '"]').encode()
    pieces = [head]
    for i in range(0, len(body), 1000):
        part = body[i:i + 1000]
        pieces.append(f"{len(part):x}\r\n".encode() + part + b"\r\n")
    pieces.append(b"0\r\n\r\n")
    res = raw_http(env.srv.url, pieces, timeout=3, read_until_eof=False, chunk_delay=0.01)
    assert res.status in (413, 400), f"{res.status} {res.error} {res.raw[:300]!r}"
    env.assert_polling_session_closed(sid)
    stats = env.assert_victim_gone()
    no_victim_events(stats, "evil")
    env.assert_healthy()


def test_chunked_post_under_the_limit_is_accepted(env):
    sid = env.victim_polling()
    head = (f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n"
            f"Connection: close\r\n\r\n").encode()
    body = b'42["echo","chunked-ok"]'
    pieces = [head, f"{len(body[:10]):x}\r\n".encode() + body[:10] + b"\r\n",
              f"{len(body[10:]):x}\r\n".encode() + body[10:] + b"\r\n", b"0\r\n\r\n"]
    res = raw_http(env.srv.url, pieces, timeout=3)
    assert res.status == 200 and res.body == b"ok", res.raw
    env._poll_until(sid, lambda p: p == '42["echo-back","chunked-ok"]')
    env.assert_healthy()


def test_oversized_websocket_text_message_closes(env):
    ws, _ = env.victim_ws()
    ws.try_send('42["echo","evil' + "x" * (2 * MAX) + '"]')
    expect_ws_closed(ws)
    stats = env.assert_victim_gone()
    no_victim_events(stats, "evil")
    env.assert_healthy()


def test_oversized_websocket_binary_attachment_closes(env):
    ws, _ = env.victim_ws()
    ws.send(f'451-["echo","evil",{ph(0)}]')
    ws.try_send(b"\x00" * (2 * MAX))
    expect_ws_closed(ws)
    stats = env.assert_victim_gone()
    no_victim_events(stats, "evil")
    env.assert_healthy()


def test_websocket_message_under_the_limit_is_accepted(env):
    ws, _ = env.victim_ws()
    try:
        text = "y" * (MAX - 100)
        ws.send(f'42["echo","{text}"]')
        assert ws.recv_skip_pings(3) == f'42["echo-back","{text}"]'
    finally:
        ws.close()
    env.assert_healthy()


# =========================================================================== bad sessions / methods

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_sid_gets_400_code_1(env, method):
    r = env.h.method(method, "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA",
                     '42["echo","evil"]' if method == "POST" else None)
    assert r.status == 400, r
    assert r.json() == {"code": UNKNOWN_SID, "message": ERROR_MESSAGES[UNKNOWN_SID]}, r
    env.assert_healthy()


def test_unknown_sid_over_websocket_is_refused(env):
    ws_rejected_or_closed(env.srv.url, PATH, "EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA")
    env.assert_healthy()


def test_polling_request_for_a_websocket_only_session_gets_400_code_3(env):
    ws, handshake = ws_open(env.srv.url, PATH)
    try:
        r = env.h.poll(handshake["sid"], timeout=3)
        assert r.status == 400, r
        assert r.json().get("code") == BAD_REQUEST, r
    finally:
        ws.close()
    env.assert_healthy()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_on_handshake_gets_400_code_2(env, method):
    r = env.h.method(method, "EIO=4&transport=polling", "x" if method != "DELETE" else None)
    assert r.status == 400, r
    assert r.json() == {"code": BAD_HANDSHAKE_METHOD, "message": ERROR_MESSAGES[BAD_HANDSHAKE_METHOD]}, r
    env.assert_healthy()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_on_a_session_gets_400_not_405(env, method):
    sid = env.victim_polling()
    r = env.h.method(method, f"EIO=4&transport=polling&sid={sid}", "x" if method != "DELETE" else None)
    assert r.status == 400, r
    assert r.json().get("code") in (BAD_HANDSHAKE_METHOD, BAD_REQUEST), r
    env.assert_healthy()


def test_concurrent_post_gets_400_and_closes_the_session(env):
    sid = env.victim_polling()
    # a first POST that announces 100 bytes and sends 10: it stays in progress
    head = (f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 100\r\n\r\n").encode()
    slow = in_thread(raw_http, env.srv.url, [head, b'42["echo",'], timeout=2, read_until_eof=False)
    time.sleep(0.2)  # sequencing only: the first POST is being read when the second arrives
    second = env.h.send(sid, '42["echo","evil-second"]')
    assert second.status == 400, second
    slow.result(timeout=5)
    env.assert_polling_session_closed(sid)
    stats = env.assert_victim_gone()
    no_victim_events(stats, "evil")
    env.assert_healthy()


# =========================================================================== reserved event names

FORMS = {
    "plain": lambda name, marker: [f'42["{name}","{marker}"]'],
    "with ack": lambda name, marker: [f'4212["{name}","{marker}"]'],
    "binary": lambda name, marker: [f'451-["{name}","{marker}",{ph(0)}]', b"\x01\x02"],
    "namespace /other": lambda name, marker: [f'42/other,["{name}","{marker}"]'],
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("name", RESERVED)
def test_client_sent_reserved_event_closes_and_never_reaches_handlers(env, name, form):
    nsp = "/other" if form == "namespace /other" else "/"
    ws, _ = env.victim_ws(nsp)
    marker = f"evil-{name}"
    for frame in FORMS[form](name, marker):
        if not ws.try_send(frame):
            break
    expect_ws_closed(ws)
    stats = env.wait_stats(lambda s: s["active"]["/"] == 2 and s["active"]["/other"] == 0,
                           "the victim socket is gone")
    no_victim_events(stats, marker)
    for call in stats["reserved_calls"]:
        # the only legitimate reserved-handler calls are the server's own
        # "disconnecting(reason)" / "disconnect(reason)" when the victim is closed
        assert call[1] in ("disconnect", "disconnecting") and len(call[2]) == 1 \
            and call[2][0] in NODE_DISCONNECT_REASONS, stats
    assert not any(e[1] == name for e in stats["any_events"]), stats
    env.assert_healthy()


# =========================================================================== connection state

def test_event_before_connect_over_websocket_closes(env):
    ws = env.victim_eio_ws()
    ws.send('42["echo","evil-early"]')
    expect_ws_closed(ws)
    stats = env.stats()
    assert stats["connects"]["/"] == 2, stats  # only the honest clients ever connected
    no_victim_events(stats, "evil")
    env.assert_healthy()


def test_event_before_connect_over_polling_closes(env):
    sid = env.h.open()
    r = env.h.send(sid, '42["echo","evil-early"]')
    assert r.status in (200, 400), r
    env.assert_polling_session_closed(sid)
    stats = env.stats()
    assert stats["connects"]["/"] == 2, stats
    no_victim_events(stats, "evil")
    env.assert_healthy()


def test_ack_before_connect_closes(env):
    ws = env.victim_eio_ws()
    ws.send('431["evil"]')
    expect_ws_closed(ws)
    assert env.stats()["connects"]["/"] == 2
    env.assert_healthy()


def test_event_for_a_namespace_not_joined_closes(env):
    ws, _ = env.victim_ws("/")
    ws.send('42/other,["echo","evil-unjoined"]')
    expect_ws_closed(ws)
    stats = env.assert_victim_gone()
    assert stats["connects"]["/other"] == 0, stats
    no_victim_events(stats, "evil")
    env.assert_healthy()


@pytest.mark.parametrize("nsp", ["/", "/other"])
def test_second_connect_to_a_joined_namespace_does_not_create_a_second_socket(env, nsp):
    ws, sio_sid = env.victim_ws(nsp)
    prefix = "40" if nsp == "/" else f"40{nsp},"
    event_prefix = "42" if nsp == "/" else f"42{nsp},"
    ws.send(prefix)
    ws.send(f'{event_prefix}["echo","after-second-connect"]')
    # either the server closes the connection, or it keeps the one socket and answers the echo
    seen: list = []
    closed = False
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            msg = ws.recv_skip_pings(max(0.1, deadline - time.monotonic()))
        except WSClosed:
            closed = True
            break
        except WSTimeout:
            break
        seen.append(msg)
        if msg == f'{event_prefix}["echo-back","after-second-connect"]':
            break
    for msg in seen:
        if isinstance(msg, str) and msg.startswith(prefix + "{"):
            assert json.loads(msg[len(prefix):]) == {"sid": sio_sid}, \
                f"a second CONNECT reply with another socket id: {seen!r}"
    if not closed:
        assert seen and seen[-1] == f'{event_prefix}["echo-back","after-second-connect"]', seen
        echoes = [e for e in env.stats()["events"] if "after-second-connect" in json.dumps(e)]
        assert len(echoes) == 1, f"the event reached {len(echoes)} sockets: {echoes}"
    stats = env.stats()
    expected_connects = 3 if nsp == "/" else 1  # honest x2 + victim once
    assert stats["connects"][nsp] == expected_connects, f"a second socket was created: {json.dumps(stats)}"
    if closed:
        env.wait_stats(lambda s: s["active"][nsp] == expected_connects - 1, "the victim socket is gone")
    else:
        assert stats["active"][nsp] == expected_connects, stats
        ws.close()
    env.assert_healthy()


def test_connect_to_unknown_namespace_does_not_disturb_others(env):
    ws = env.victim_eio_ws()
    try:
        ws.send("40/nope,")
        assert ws.recv_skip_pings(3) == '44/nope,{"message":"Invalid namespace"}'
    finally:
        ws.close()
    env.assert_healthy()


def test_many_bad_clients_in_a_row_do_not_break_the_server(env):
    bad_inputs = [["abc"], ["42{}"], ['42["connect","evil"]'], [f'451-["echo",{ph(5)}]', b"\x01"],
                  [b"\xff\xfe"]]
    for frames in bad_inputs * 3:
        ws, _ = env.victim_ws()
        for frame in frames:
            ws.try_send(frame)
        try:
            expect_ws_closed(ws)
        except AssertionError as exc:
            raise AssertionError(f"after sending {frames!r}: {exc}") from None
    env.assert_victim_gone()
    env.assert_healthy()

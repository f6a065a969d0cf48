"""Resource limits seen from real clients: a WebSocket peer that stops reading is
disconnected once ``max_pending_bytes`` wait for it, and nobody else notices."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import socketio
import websocket

pytestmark = pytest.mark.integration


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/stats", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_client_that_stops_reading_is_disconnected(live_server: Any) -> None:
    srv = live_server("tests.apps.limits:build", max_pending_bytes=1_000_000)
    honest = socketio.Client(reconnection=False)
    honest.connect(srv.url, transports=["websocket"])
    slow = websocket.create_connection(
        srv.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", timeout=5)
    assert slow.recv().startswith("0{")
    slow.send("40")
    connect_reply = slow.recv()
    assert connect_reply.startswith("40{")
    slow_sid = json.loads(connect_reply[2:])["sid"]
    slow.send('42["flood",400,100000]')  # 40 MB, and this client never reads them
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        seen = stats(srv.url)
        if slow_sid in seen["disconnects"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the non-reading client was not disconnected: {stats(srv.url)}")
    assert seen["disconnects"][slow_sid] == "transport close"
    # the honest client did not notice, and the server is fine
    assert honest.call("echo", "still here", timeout=5) == "still here"
    assert honest.sid is not None and honest.connected
    honest.disconnect()
    slow.close()


def _handshake_status(url: str, transport: str = "polling") -> int:
    if transport == "polling":
        try:
            with urllib.request.urlopen(url + "/socket.io/?EIO=4&transport=polling", timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
    try:
        ws = websocket.create_connection(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                         timeout=5)
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code)
    ws.close()
    return 101


def test_max_sessions_refuses_handshakes_over_the_limit_before_101(live_server: Any) -> None:
    srv = live_server("tests.apps.limits:build", max_sessions=2)
    first, second = socketio.Client(reconnection=False), socketio.Client(reconnection=False)
    first.connect(srv.url, transports=["websocket"])
    second.connect(srv.url, transports=["polling"])
    try:
        assert _handshake_status(srv.url, "polling") == 503
        assert _handshake_status(srv.url, "websocket") == 503  # an HTTP answer, no 101
        assert first.call("echo", "still served", timeout=5) == "still served"
        first.disconnect()
        third = socketio.Client(reconnection=False)
        for _ in range(50):  # the closed session is forgotten a moment later
            try:
                third.connect(srv.url, transports=["websocket"])
                break
            except socketio.exceptions.ConnectionError:
                time.sleep(0.1)
        assert third.connected
        assert third.call("echo", 3, timeout=5) == 3
        third.disconnect()
    finally:
        second.disconnect()


def test_handshake_rate_refuses_a_burst_and_keeps_serving(live_server: Any) -> None:
    srv = live_server("tests.apps.limits:build", handshake_rate=[3, 60])
    client = socketio.Client(reconnection=False)
    client.connect(srv.url, transports=["websocket"])  # 1 of 3
    try:
        assert _handshake_status(srv.url, "polling") == 200  # 2
        assert _handshake_status(srv.url, "polling") == 200  # 3
        assert _handshake_status(srv.url, "polling") == 429
        assert _handshake_status(srv.url, "websocket") == 429
        assert client.call("echo", "open sessions are not affected", timeout=5) == \
            "open sessions are not affected"
    finally:
        client.disconnect()

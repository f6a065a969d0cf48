"""Resource limits seen from real clients: a WebSocket peer that stops reading is
disconnected once ``max_pending_bytes`` wait for it, and nobody else notices."""
from __future__ import annotations

import json
import time
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

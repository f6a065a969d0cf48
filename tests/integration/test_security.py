"""Named tests for attack classes from peers' advisories that other files do not name:
cross-site WebSocket hijacking and predictable ids. SECURITY.md maps every class to its
test."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import socketio
import websocket

pytestmark = pytest.mark.integration


def _ws_status(url: str, query: str, origin: str | None) -> int:
    try:
        ws = websocket.create_connection(url.replace("http", "ws") + "/socket.io/?" + query, timeout=5,
                                         origin=origin, suppress_origin=origin is None)
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code)
    ws.close()
    return 101


def test_cross_site_websocket_hijacking_is_refused_before_101(live_server: Any) -> None:
    """A page on another origin opening a WebSocket with the victim's cookies gets HTTP 403
    before any 101, by default (same origin only), for a new session and for an upgrade."""
    srv = live_server("tests.apps.basic:build", cors_allowed_origins=None)  # the default
    host = srv.url.split("://", 1)[1]
    assert _ws_status(srv.url, "EIO=4&transport=websocket", "http://evil.example") == 403
    assert _ws_status(srv.url, "EIO=4&transport=websocket", f"http://{host}") == 101  # same origin
    assert _ws_status(srv.url, "EIO=4&transport=websocket", None) == 101  # non-browser clients
    # The upgrade of an existing polling session is checked the same way.
    client = socketio.Client(reconnection=False)
    client.connect(srv.url, transports=["polling"])
    try:
        sid = client.eio.sid
        assert _ws_status(srv.url, f"EIO=4&transport=websocket&sid={sid}", "http://evil.example") == 403
    finally:
        client.disconnect()


def test_session_and_socket_ids_are_unpredictable(live_server: Any) -> None:
    """Ids come from ``secrets`` with 128 bits: all distinct, full length, and a socket id
    is not derived from its session id."""
    import urllib.request

    srv = live_server("tests.apps.basic:build")
    sids = []
    for _ in range(200):
        with urllib.request.urlopen(srv.url + "/socket.io/?EIO=4&transport=polling", timeout=5) as resp:
            sids.append(json.loads(resp.read()[1:])["sid"])
    assert len(set(sids)) == len(sids)
    for sid in sids:
        raw = base64.urlsafe_b64decode(sid + "=" * (-len(sid) % 4))
        assert len(raw) >= 16, sid  # 128 bits
    # No shared prefix or counter between consecutive ids.
    assert len({sid[:6] for sid in sids}) > 190
    client = socketio.Client(reconnection=False)
    client.connect(srv.url, transports=["polling"])
    try:
        assert client.get_sid() not in (None, client.eio.sid)
        raw = base64.urlsafe_b64decode(client.get_sid() + "=" * (-len(client.get_sid()) % 4))
        assert len(raw) >= 16
    finally:
        client.disconnect()


def _live_greenlets() -> int:
    import gc

    import greenlet

    return sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and not obj.dead)


def test_no_greenlet_per_session_for_heartbeats() -> None:
    """Peers ran a thread per PONG or a sleeping task per session's heartbeat. Here one
    timer greenlet serves every session's heartbeat: 300 open sessions with pending
    pings add no greenlets; when they all time out, nothing stays behind."""
    import time

    from werkzeug.test import Client

    import socketio_sync

    io = socketio_sync.Server(ping_interval=0.2, ping_timeout=0.2)
    http = Client(socketio_sync.WSGIApp(io))
    assert http.get("/socket.io/?EIO=4&transport=polling").status_code == 200  # starts the runtime
    time.sleep(0.6)  # that session times out: the timer greenlet exists, nothing else
    before = _live_greenlets()
    for _ in range(300):
        assert http.get("/socket.io/?EIO=4&transport=polling").status_code == 200
    assert io.engine.clients_count == 300
    assert len(io.engine.timers) >= 300  # one heap entry per session...
    assert _live_greenlets() - before <= 2  # ...and no greenlet per session
    deadline = time.monotonic() + 5
    while io.engine.clients_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert io.engine.clients_count == 0  # nobody answered the pings: all timed out
    time.sleep(0.2)
    assert _live_greenlets() - before <= 2


@pytest.mark.parametrize("victim_transport", ["polling", "websocket"])
def test_a_lone_surrogate_broadcast_does_not_break_other_clients(live_server: Any, victim_transport: str) -> None:
    """Found by the live fuzzer: ``"\\ud800"`` in a client's JSON decodes to a string UTF-8
    cannot encode; broadcast back, it made the server answer 500 to every polling client
    of the room and fail every WebSocket send. It now goes out as the same JSON escape."""
    import queue

    srv = live_server("tests.apps.basic:build")
    got: queue.Queue[Any] = queue.Queue()
    victim = socketio.Client(reconnection=False)
    victim.on("chat message", got.put)
    victim.connect(srv.url, transports=[victim_transport])
    attacker = websocket.create_connection(srv.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                           timeout=5)
    try:
        assert attacker.recv().startswith("0{")
        attacker.send("40")
        assert attacker.recv().startswith("40")
        attacker.send('42["chat message","a\\ud800b"]')
        assert got.get(timeout=5) == "a\ud800b"
        assert victim.call("echo", "still here", timeout=5) == "still here"
        assert victim.connected
    finally:
        attacker.close()
        victim.disconnect()

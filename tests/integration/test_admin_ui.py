"""The Socket.IO Admin UI against socketio_sync: the npm package's own page
(``@socket.io/admin-ui/ui/dist``, served by ``socketio_sync.admin.ui_app``) in headless
Chromium, and its wire protocol spoken by the official ``socket.io-client`` from Node.

Server: ``tests/apps/observe_app.py`` (``admin.instrument`` + ``ui_app`` + metrics).
A screenshot of the rooms page is kept in ``tests/artifacts/admin-ui-rooms.png``.
"""
from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.conftest import ROOT, missing_dependency, require_tool
from tests.devservers import dev_server  # noqa: F401  (fixture)
from tests.integration.test_browser import _assert_png
from tests.jsclient import NodeClients

pytestmark = [pytest.mark.integration, pytest.mark.js]

APP = "tests.apps.observe_app:build"
SCRIPT = ROOT / "tests" / "js" / "admin_ui.mjs"
UI_DIR = ROOT / "tests" / "js" / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"
ARTIFACTS = ROOT / "tests" / "artifacts"

ALL_FEATURES = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
                "AGGREGATED_EVENTS", "ALL_EVENTS"]


def _bcrypt_hash(password: str) -> str:
    try:
        import bcrypt
    except ImportError:
        missing_dependency("bcrypt is not installed: pip install -e '.[test]'")
        raise
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


@pytest.fixture
def ui_dir() -> None:
    if not (UI_DIR / "index.html").is_file():
        missing_dependency("missing @socket.io/admin-ui in tests/js: run npm ci in tests/js (make test does)")


def _two_clients_in_lobby(nc: NodeClients, url: str) -> list[str]:
    sids = []
    for name, transports in (("alice", ["websocket"]), ("bob", ["polling"])):
        sids.append(nc.connect(name, url, transports=transports, reconnection=False)["sid"])
        assert nc.call(name, "enter", "lobby") == ["lobby"]
    return sids


# -- the page in Chromium ---------------------------------------------------------------------

@pytest.mark.browser
def test_admin_ui_page_shows_the_live_sockets_and_rooms(live_server: Any, node_clients: NodeClients,
                                                         ui_dir: None) -> None:
    node = require_tool("node", "nodejs")
    chromium = require_tool("chromium", "chromium-browser")
    auth = {"type": "basic", "username": "admin", "password": _bcrypt_hash("s3cret")}
    srv = live_server(APP, auth=auth)
    sids = _two_clients_in_lobby(node_clients, srv.url)
    screenshot = ARTIFACTS / "admin-ui-rooms.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)

    cmd = [node, str(SCRIPT), srv.url + "/admin-ui/", srv.url, "--username", "admin", "--password", "s3cret",
           "--expect-room", "lobby", "--screenshot", str(screenshot), "--chromium", chromium]
    for sid in sids:
        cmd += ["--expect-socket", sid]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"admin_ui.mjs exited {proc.returncode}:\n{proc.stderr}"
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])

    failed = [s for s in result["steps"] if not s["ok"]]
    assert not failed, json.dumps(result, indent=1)
    steps = {s["step"]: s.get("detail") for s in result["steps"]}
    assert steps["the page loads"] == "Socket.IO Admin UI"
    assert steps["log in through the connection form"] == "CONNECTED"
    icons = steps["the icon font is loaded from the server"]
    assert icons["loaded"] >= 1 and icons["icons"] > 0, icons
    # The sockets table: both clients, with their address and transport.
    sockets_rows = [line for line in result["socketsText"].splitlines() if line.split("\t")[0] in sids]
    assert len(sockets_rows) == 2, result["socketsText"]
    assert all("\t127.0.0.1\t" in row for row in sockets_rows)
    assert "1-2 of 2" in result["socketsText"]          # exactly these two in "/"
    # The rooms table: "lobby", public, 2 sockets (private rooms, the sockets' own, hidden).
    assert "lobby\t\nPUBLIC\n\t2\t" in result["roomsText"], result["roomsText"]
    assert "1-1 of 1" in result["roomsText"]
    # The servers page: our server id and 3 Engine.IO clients (alice, bob, the page).
    server_row = [line for line in result["serversText"].splitlines() if line.startswith("observe-test\t")]
    assert server_row and server_row[0].split("\t")[4] == "3", result["serversText"]
    # Served locally: nothing was fetched from anywhere else (the CDN links are stripped).
    assert result["requests"] == []
    assert result["pageErrors"] == []
    assert result["consoleErrors"] == []
    _assert_png(screenshot, (1280, 800))


# -- the wire protocol, with the official Node client as the UI ---------------------------------

def test_admin_namespace_speaks_the_ui_protocol(live_server: Any, node_clients: NodeClients) -> None:
    nc = node_clients
    srv = live_server(APP)
    reply = nc.connect("ui", srv.url + "/admin", transports=["websocket"], reconnection=False)
    admin_sid = reply["sid"]
    assert nc.wait_for_event("ui", "config") == [{"supportedFeatures": ALL_FEATURES}]
    (everyone,) = nc.wait_for_event("ui", "all_sockets")
    assert [s["id"] for s in everyone] == [admin_sid]
    assert everyone[0]["nsp"] == "/admin" and everyone[0]["transport"] == "websocket"
    (stats,) = nc.wait_for_event("ui", "server_stats")
    assert stats["serverId"] == "observe-test" and stats["clientsCount"] == 1
    assert {"name": "/chat", "socketsCount": 0} in stats["namespaces"]

    # A client arrives (polling, then the upgrade), joins a room, sends an event, is asked one.
    reply = nc.connect("alice", srv.url + "/chat", reconnection=False)
    alice = reply["sid"]
    joined = nc.wait_for_event("ui", "room_joined", predicate=lambda a: a[2] == alice)
    assert joined[:3] == ["/chat", alice, alice] and joined[3].endswith("Z")   # her own room first
    (desc, when) = nc.wait_for_event("ui", "socket_connected", predicate=lambda a: a[0]["id"] == alice)
    assert desc["nsp"] == "/chat" and desc["rooms"] == [alice] and desc["transport"] == "polling"
    assert desc["handshake"]["address"] == "127.0.0.1" and desc["handshake"]["url"].startswith("/socket.io/")
    assert desc["clientId"] and when.endswith("Z")
    upgraded = nc.wait_for_event("ui", "socket_updated", predicate=lambda a: a[0]["id"] == alice)
    assert upgraded == [{"id": alice, "nsp": "/chat", "transport": "websocket"}]
    assert nc.call("alice", "enter", "lobby") == ["lobby"]
    assert nc.wait_for_event("ui", "event_received", predicate=lambda a: a[1] == alice)[:3] == \
        ["/chat", alice, ["enter", "lobby"]]
    assert nc.wait_for_event("ui", "room_joined", predicate=lambda a: a[1] == "lobby")[:3] == \
        ["/chat", "lobby", alice]
    nc.ack_with("alice", "question", "answer")
    assert nc.call("alice", "ask", "question") == ["answer"]
    assert nc.wait_for_event("ui", "event_sent", predicate=lambda a: a[1] == alice)[:3] == \
        ["/chat", alice, ["question"]]

    # Commands: emit to a room, join/leave by socket id, disconnect.
    assert nc.call("ui", "emit", "/chat", "lobby", "news", {"n": 1}) == []
    assert nc.wait_for_event("alice", "news") == [{"n": 1}]
    assert nc.call("ui", "join", "/chat", "vip", alice) == []
    assert nc.wait_for_event("ui", "room_joined", predicate=lambda a: a[1] == "vip")[:3] == ["/chat", "vip", alice]
    assert nc.call("ui", "leave", "/chat", "vip", alice) == []
    assert nc.wait_for_event("ui", "room_left", predicate=lambda a: a[1] == "vip")[:3] == ["/chat", "vip", alice]
    assert nc.call("ui", "emit", "/nowhere", None, "news") == [{"error": "unknown namespace"}]
    assert nc.call("ui", "emit", "/chat", None, "connect") == [{"error": "'connect' is a reserved event name"}]
    assert nc.call("ui", "join", "/chat", ["not", "a", "room"], alice) == [{"error": "invalid room"}]
    nc.sync()
    assert nc.messages("alice", "news") == [[{"n": 1}]]
    assert nc.call("ui", "_disconnect", "/chat", False, alice) == []
    nc.wait_for("alice", "disconnect", lambda ev: ev.get("reason") == "io server disconnect")
    gone = nc.wait_for_event("ui", "socket_disconnected", predicate=lambda a: a[1] == alice)
    assert gone[:3] == ["/chat", alice, "server namespace disconnect"]

    # server_stats every 2 s, with the aggregated per-second counts.
    (stats,) = nc.wait_for_event("ui", "server_stats", timeout=5)
    kinds = {e["type"] for e in stats["aggregatedEvents"]}
    assert {"rawConnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"} <= kinds
    assert all(isinstance(e["timestamp"], int) and e["timestamp"] % 1000 == 0 for e in stats["aggregatedEvents"])


def test_read_only_mode_refuses_commands(live_server: Any, node_clients: NodeClients) -> None:
    nc = node_clients
    srv = live_server(APP, read_only=True)
    nc.connect("ui", srv.url + "/admin", transports=["websocket"], reconnection=False)
    assert nc.wait_for_event("ui", "config") == [{"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}]
    alice = nc.connect("alice", srv.url, transports=["websocket"], reconnection=False)["sid"]
    assert nc.call("alice", "enter", "lobby") == ["lobby"]

    assert nc.call("ui", "_disconnect", "/", True, alice) == [{"error": "read-only"}]
    assert nc.call("ui", "_disconnect", "/", False, None) == [{"error": "read-only"}]
    assert nc.call("ui", "join", "/", "vip", alice) == [{"error": "read-only"}]
    assert nc.call("ui", "emit", "/", None, "news", 1) == [{"error": "read-only"}]

    # alice is still there, still only in her rooms, and got nothing.
    assert nc.call("alice", "echo", "still here") == ["still here"]
    assert nc.state("alice")["connected"] is True
    assert nc.events("alice", "disconnect") == []
    assert nc.messages("alice", "news") == []
    nc.connect("ui2", srv.url + "/admin", transports=["websocket"], reconnection=False)
    (everyone,) = nc.wait_for_event("ui2", "all_sockets")
    (mine,) = [s for s in everyone if s["id"] == alice]
    assert mine["rooms"] == sorted([alice, "lobby"])


def test_basic_auth_and_session_ids(live_server: Any, node_clients: NodeClients) -> None:
    nc = node_clients
    srv = live_server(APP, auth={"type": "basic", "username": "admin", "password": _bcrypt_hash("pw")})
    bad = nc.connect("intruder", srv.url + "/admin", auth={"username": "admin", "password": "nope"},
                     reconnection=False, expect_error=True)
    assert bad["error"]["message"] == "invalid credentials"
    nc.connect("nobody", srv.url + "/admin", reconnection=False, expect_error=True)
    too_long = nc.connect("long", srv.url + "/admin", auth={"username": "admin", "password": "pw" * 50},
                          reconnection=False, expect_error=True)     # bcrypt 5 raises past 72 bytes
    assert too_long["error"]["message"] == "invalid credentials"
    # Other namespaces are not affected.
    nc.connect("user", srv.url, transports=["websocket"], reconnection=False)

    nc.connect("ui", srv.url + "/admin", auth={"username": "admin", "password": "pw"}, reconnection=False)
    (session_id,) = nc.wait_for_event("ui", "session")
    assert isinstance(session_id, str) and len(session_id) == 16
    assert nc.wait_for_event("ui", "config") == [{"supportedFeatures": ALL_FEATURES}]
    # The UI reconnects (a reload) with the session id alone.
    nc.connect("ui-again", srv.url + "/admin", auth={"sessionId": session_id}, reconnection=False)
    nc.wait_for_event("ui-again", "config")
    nc.connect("forged", srv.url + "/admin", auth={"sessionId": "0" * 16}, reconnection=False,
               expect_error=True)


def test_production_mode_sends_only_statistics(live_server: Any, node_clients: NodeClients) -> None:
    nc = node_clients
    srv = live_server(APP, mode="production")
    nc.connect("ui", srv.url + "/admin", transports=["websocket"], reconnection=False)
    features = nc.wait_for_event("ui", "config")[0]["supportedFeatures"]
    assert "ALL_EVENTS" not in features and "AGGREGATED_EVENTS" in features
    nc.connect("alice", srv.url, transports=["websocket"], reconnection=False)
    assert nc.call("alice", "enter", "lobby") == ["lobby"]
    (stats,) = nc.wait_for_event("ui", "server_stats")
    (stats,) = nc.wait_for_event("ui", "server_stats", timeout=5)        # the periodic one
    assert stats["clientsCount"] == 2
    assert {"name": "/", "socketsCount": 1} in stats["namespaces"]
    names = {e.get("name") for e in nc.events("ui", "message")}
    assert names == {"config", "server_stats"}


# -- thread mode: flask run ---------------------------------------------------------------------

def test_admin_metrics_and_json_logs_under_flask_run(dev_server: Any, node_clients: NodeClients) -> None:
    """Under ``flask run`` handlers run in threads and the engine in a background hub: the
    bcrypt check, the stats timer, the commands and the metrics scrape must all work."""
    import requests

    from tests.devservers import flask_run

    nc = node_clients
    password = _bcrypt_hash("pw")
    srv = flask_run(dev_server, f"tests.apps.observe_app:build_flask(auth={{'type': 'basic', 'username': 'a', "
                                f"'password': {password!r}}}, json_logs=True)")
    url = f"http://127.0.0.1:{srv.port}"
    assert requests.get(url + "/hello", timeout=5).text == "hello from flask"
    alice = nc.connect("alice", url, transports=["polling"], reconnection=False)["sid"]
    nc.connect("ui", url + "/admin", auth={"username": "a", "password": "pw"}, transports=["polling"],
               reconnection=False)
    nc.wait_for_event("ui", "session")
    assert nc.wait_for_event("ui", "config") == [{"supportedFeatures": ALL_FEATURES}]
    (everyone,) = nc.wait_for_event("ui", "all_sockets")
    assert alice in {s["id"] for s in everyone}
    nc.wait_for_event("ui", "server_stats")
    nc.wait_for_event("ui", "server_stats", timeout=5)     # from the timer, in the engine's hub
    assert nc.call("ui", "join", "/", "vip", alice) == []
    assert nc.wait_for_event("ui", "room_joined", predicate=lambda a: a[1] == "vip")[:3] == ["/", "vip", alice]
    metrics = requests.get(url + "/metrics", timeout=5)
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'socketio_connected_sockets{namespace="/"} 1\n' in metrics.text
    assert 'socketio_connected_sockets{namespace="/admin"} 1\n' in metrics.text
    page = requests.get(url + "/admin-ui/", timeout=5)
    assert page.status_code == 200 and "<title>Socket.IO Admin UI</title>" in page.text
    nc.disconnect("alice")
    nc.wait_for_event("ui", "socket_disconnected", predicate=lambda a: a[1] == alice)

    # The server's stderr: JSON lines with the structured fields.
    def json_lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(srv.output) if line.startswith('{"time"')]

    srv.wait_for_log(lambda _: any(x.get("sid") == alice and x.get("reason") for x in json_lines()),
                     what="the JSON line of alice leaving")
    lines = json_lines()
    left = [x for x in lines if x.get("sid") == alice and x.get("reason")]
    assert left[0]["reason"] == "client namespace disconnect" and left[0]["namespace"] == "/"
    assert left[0]["eio_sid"] and left[0]["remote_addr"] == "127.0.0.1"
    assert any(x.get("transport") == "polling" and x.get("eio_sid") for x in lines)
    srv.stop()
    srv.assert_clean_log()

"""Socket.IO v2 clients (npm ``socket.io-client@2.5.0``: Engine.IO v3, Socket.IO protocol
v4) next to current ones, through ``Server(allow_eio3=True)``.

The v2 clients are driven by ``tests/js/driver_v2.cjs`` (the package is installed in
tests/js under the alias ``socket.io-client-v2``), the v4 ones by ``driver.mjs``; the
server is ``tests/apps/eio3_app.py``. The client in Node has no XHR2 (it always asks for
``b64=1``), so the v2 bundle also runs in headless Chromium (``tests/js/browser_v2.mjs``),
where it polls with binary payloads; raw HTTP checks the wire details, the refusals and
the server-side ping timeout.
"""
from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest

from socketio_sync import eio
from tests.jsclient import JS_DIR, NodeClients, require_node_clients
from tests.conftest import require_path
from tests.rawclient import EIOHttp, ws_connect

pytestmark = [pytest.mark.integration, pytest.mark.js]

APP = "tests.apps.eio3_app:build"

#: How each client is asked to connect: polling only, or polling then upgrade.
TRANSPORTS = {"polling": ["polling"], "upgrade": ["polling", "websocket"]}


@pytest.fixture
def v2_clients() -> Iterator[NodeClients]:
    node = require_node_clients()
    require_path(JS_DIR / "node_modules" / "socket.io-client-v2",
                 "socket.io-client-v2 is missing from tests/js/node_modules: run npm ci in tests/js")
    clients = NodeClients(node, driver=JS_DIR / "driver_v2.cjs").start()
    try:
        yield clients
    finally:
        clients.stop()
    assert not clients.driver_errors, f"v2 driver reported errors: {clients.driver_errors}"


@pytest.fixture
def server(live_server: Any) -> Any:
    return live_server(APP, ping_interval=0.4, ping_timeout=0.4)


def _transport_of(nc: NodeClients, name: str, expected: str) -> None:
    deadline = time.monotonic() + 5
    while nc.state(name)["transport"] != expected:
        assert time.monotonic() < deadline, nc.state(name)
        time.sleep(0.05)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_v2_and_v4_clients_chat_through_one_server(server: Any, v2_clients: NodeClients,
                                                   node_clients: NodeClients, transport: str) -> None:
    transports = TRANSPORTS[transport]
    old = v2_clients.connect("old", server.url + "/", transports=transports, trace=True)
    assert old["connected"]
    node_clients.connect("new", server.url + "/", transports=transports, reconnection=False)
    expected = "websocket" if transport == "upgrade" else "polling"
    _transport_of(v2_clients, "old", expected)
    _transport_of(node_clients, "new", expected)

    # Acks from client to server, both clients, with binary.
    assert v2_clients.call("old", "join", {"room": "lobby", "name": "old"}) == ["joined"]
    assert node_clients.call("new", "join", {"room": "lobby", "name": "new"}) == ["joined"]
    assert v2_clients.call("old", "echo", 1, "é😀", b"\x00\xff") == [1, "é😀", b"\x00\xff"]

    # v4 -> room -> v2 (and back to v4), text outside the BMP and binary included.
    node_clients.emit("new", "chat", {"room": "lobby", "text": "hé 😀 €", "blob": b"\x01\x02\xfe"})
    expected_msg = {"from": "new", "text": "hé 😀 €", "blob": b"\x01\x02\xfe"}
    assert v2_clients.wait_for_event("old", "chat") == [expected_msg]
    assert node_clients.wait_for_event("new", "chat") == [expected_msg]
    # v2 -> room -> v4.
    v2_clients.emit("old", "chat", {"room": "lobby", "text": "bonjour", "blob": b"\x00" * 3})
    expected_msg = {"from": "old", "text": "bonjour", "blob": b"\x00" * 3}
    assert node_clients.wait_for_event("new", "chat") == [expected_msg]
    assert v2_clients.wait_for_event("old", "chat") == [expected_msg]

    # Acks from server to client: the server calls the v2 client for the v4 one and back.
    v2_clients.ack_with("old", "question", "v2 says yes", b"\x07")
    node_clients.ack_with("new", "question", "v4 says yes")
    assert node_clients.call("new", "ask", {"room": "lobby", "question": "ok?"}) == [[["v2 says yes", b"\x07"]]]
    assert v2_clients.call("old", "ask", {"room": "lobby", "question": "ok?"}) == [["v4 says yes"]]

    # Engine.IO v3 heartbeat: the v2 client pings, the server answers (ping_interval 0.4 s).
    v2_clients.wait_for("old", "packet", lambda ev: ev["dir"] == "out" and ev["type"] == "ping")
    v2_clients.wait_for("old", "packet", lambda ev: ev["dir"] == "in" and ev["type"] == "pong")
    time.sleep(1.2)  # three intervals: nobody timed out
    assert v2_clients.state("old")["connected"] and node_clients.state("new")["connected"]
    assert not v2_clients.events("old", "disconnect")


def test_v2_handshake_and_implicit_default_namespace(server: Any, v2_clients: NodeClients) -> None:
    v2_clients.connect("a", server.url + "/", transports=["polling"], query={"token": "t1"}, trace=True)
    opened = v2_clients.wait_for("a", "manager_open")
    assert opened["pingInterval"] == 400 and opened["pingTimeout"] == 400
    # The server connected "/" on its own: the client sent no CONNECT, got "0" without a sid.
    v2_clients.wait_for("a", "packet", lambda ev: ev["dir"] == "in" and ev["type"] == "message" and ev["data"] == "0")
    outgoing = [ev for ev in v2_clients.events("a", "packet") if ev["dir"] == "out" and ev["type"] == "message"]
    assert not any(ev["data"].startswith("0") for ev in outgoing), outgoing
    who = v2_clients.call("a", "whoami")[0]
    assert who["nsp"] == "/" and who["auth"] == {"token": "t1"} and who["query"]["token"] == "t1"
    assert who["query"]["EIO"] == "3"


def test_v2_namespace_query_auth_and_refusals(server: Any, v2_clients: NodeClients,
                                              node_clients: NodeClients) -> None:
    # Refused by the namespace's middleware: the v2 client's "error" gets the data.
    refused = v2_clients.connect("bad", server.url + "/admin", query={"token": "nope"}, expect_error=True)
    assert refused["error"]["data"] == {"code": 401}
    # A refusal without data: the message, as a plain string.
    plain = v2_clients.connect("plain", server.url + "/plain", expect_error=True)
    assert plain["error"]["data"] == "go away"
    unknown = v2_clients.connect("unknown", server.url + "/nowhere", expect_error=True)
    assert unknown["error"]["data"] == "Invalid namespace"

    # The CONNECT's query ("/admin?token=secret") is the auth payload; the middleware passes.
    v2_clients.connect("admin", server.url + "/admin", query={"token": "secret"}, transports=["websocket"])
    who = v2_clients.call("admin", "whoami")[0]
    assert who["nsp"] == "/admin" and who["auth"] == {"token": "secret"}
    node_clients.connect("admin4", server.url + "/admin", auth={"token": "secret"}, reconnection=False)
    node_clients.emit("admin4", "shout", "hello admins")
    assert v2_clients.wait_for_event("admin", "shout") == ["hello admins"]
    v2_clients.emit("admin", "shout", "hello from v2")
    assert node_clients.wait_for_event("admin4", "shout") == ["hello admins"]
    assert node_clients.wait_for_event("admin4", "shout") == ["hello from v2"]


def test_eio3_refused_when_not_allowed(live_server: Any, v2_clients: NodeClients) -> None:
    srv = live_server(APP, allow_eio3=False)
    http = EIOHttp(srv.url, "/socket.io/")
    r = http.get("EIO=3&transport=polling")
    assert r.status == 400 and r.json() == {"code": 5, "message": "Unsupported protocol version"}
    reply = v2_clients.connect("a", srv.url + "/", transports=["polling"], reconnection=False, expect_error=True)
    assert "xhr poll error" in reply["error"]["message"]
    # EIO=4 is served as always.
    assert http.get("EIO=4&transport=polling").status == 200


def _v3_open(http: EIOHttp, query: str = "") -> str:
    r = http.get("EIO=3&transport=polling" + query)
    assert r.status == 200 and r.header("content-type", "").startswith("text/plain"), r
    packets = eio.v3.decode_payload(r.text)
    assert packets[0].type is eio.PacketType.OPEN
    handshake = json.loads(packets[0].data)
    assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout"}
    assert handshake["upgrades"] == ["websocket"] and handshake["pingInterval"] == 400
    return handshake["sid"]


def test_eio3_raw_polling_binary_payloads_and_jsonp(server: Any) -> None:
    http = EIOHttp(server.url, "/socket.io/")
    sid = _v3_open(http)
    q = f"EIO=3&transport=polling&sid={sid}"
    assert http.get(q).text == "2:40"  # "/" connected without a CONNECT from the client
    # An XHR2 binary payload: a binary event asking for an ack, then its attachment.
    body = eio.v3.encode_payload_binary([
        eio.Packet(eio.PacketType.MESSAGE, '51-7["echo",{"_placeholder":true,"num":0}]'),
        eio.Packet(eio.PacketType.MESSAGE, b"\x00\x01\xff"),
    ])
    r = http.post(q, body, headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200 and r.body == b"ok", r
    r = http.get(q)
    assert r.status == 200 and r.header("content-type") == "application/octet-stream", r
    assert eio.v3.decode_payload_binary(r.body) == [
        eio.Packet(eio.PacketType.MESSAGE, '61-7[{"_placeholder":true,"num":0}]'),
        eio.Packet(eio.PacketType.MESSAGE, b"\x00\x01\xff"),
    ]
    # A ping in a text payload gets a pong.
    assert http.post(q, "1:2").status == 200
    assert http.get(q).text == "1:3"
    # A v4 request for a v3 session is refused.
    assert http.get(f"EIO=4&transport=polling&sid={sid}").status == 400
    # JSONP polling is refused with a reason.
    r = http.get("EIO=3&transport=polling&j=0")
    assert r.status == 400 and r.json()["code"] == 3 and "JSONP" in r.json()["message"]
    # Garbage in a v3 payload closes the session cleanly.
    assert http.post(q, "9:4").status == 400
    assert http.get(q).status == 400


def test_eio3_base64_payloads_and_server_ping_timeout(server: Any) -> None:
    http = EIOHttp(server.url, "/socket.io/")
    sid = _v3_open(http, "&b64=1")
    q = f"EIO=3&transport=polling&sid={sid}"
    assert http.get(q).text == "2:40"
    assert http.post(q, eio.v3.encode_payload([
        eio.Packet(eio.PacketType.MESSAGE, '51-3["echo",{"_placeholder":true,"num":0}]'),
        eio.Packet(eio.PacketType.MESSAGE, b"\x05\x06"),
    ])).status == 200
    r = http.get(q)
    assert r.header("content-type", "").startswith("text/plain")
    assert r.text == '36:461-3[{"_placeholder":true,"num":0}]6:b4BQY='
    # The server sends no pings to a v3 client; silent for ping_interval + ping_timeout
    # (0.8 s), the session is closed.
    time.sleep(1.3)
    r = http.get(q)
    assert r.status == 400 and r.json()["code"] == 1, r


def test_eio3_raw_websocket_binary_frames(server: Any) -> None:
    ws = ws_connect(server.url, "/socket.io/", "EIO=3&transport=websocket")
    try:
        opened = ws.recv()
        assert isinstance(opened, str) and opened.startswith("0{")
        assert ws.recv() == "40"
        ws.send('451-1["echo",{"_placeholder":true,"num":0}]')
        ws.send(b"\x04\xaa\xbb")  # v3: binary frames start with the packet type
        assert ws.recv() == '461-1[{"_placeholder":true,"num":0}]'
        assert ws.recv() == b"\x04\xaa\xbb"
        ws.send("2")
        assert ws.recv() == "3"
    finally:
        ws.close()


@pytest.mark.browser
@pytest.mark.parametrize("transports", ["polling", "polling,websocket"])
def test_v2_client_in_a_browser_uses_xhr2_binary_payloads(server: Any, transports: str) -> None:
    """In a browser, socket.io-client 2 polls with XHR2: binary POST bodies and binary
    responses (``application/octet-stream``), then upgrades if allowed."""
    import subprocess

    from tests.conftest import require_tool

    node = require_node_clients()
    chromium = require_tool("chromium", "chromium-browser")
    require_path(JS_DIR / "node_modules" / "playwright-core", "playwright-core is missing: run npm ci in tests/js")
    require_path(JS_DIR / "node_modules" / "socket.io-client-v2", "socket.io-client-v2 is missing: run npm ci in tests/js")
    proc = subprocess.run([node, str(JS_DIR / "browser_v2.mjs"), f"{server.url}/?transports={transports}",
                           "--chromium", chromium], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["pageErrors"], report
    outcome = report["outcome"]
    assert outcome["args"] == ["héllo 😀", {"bin": [0, 1, 255]}], report
    assert outcome["transport"] == transports.split(",")[-1], report
    posts = [r for r in report["requests"] if r["method"] == "POST"]
    gets = [r for r in report["requests"] if r["method"] == "GET"]
    if transports == "polling":
        # The event with its attachment went up as a binary payload, the ack came back as one.
        assert any(r["requestType"] == "application/octet-stream" and r["status"] == 200 for r in posts), report
        assert any(r["responseType"] == "application/octet-stream" for r in gets), report
    assert all(r["status"] == 200 for r in report["requests"]), report

"""``flask run``: werkzeug's threaded development server, without gevent.

socketio_sync runs in a background gevent hub thread, WebSockets take over the
connection's socket, handlers run in real threads and views emit from werkzeug's request
threads. The clients are the official Node socket.io-client (WebSocket, polling, and
polling upgraded to WebSocket) and python-socketio; the server is started exactly as a
developer does (``python -m flask --app ... run``) and its output must stay clean.
"""
from __future__ import annotations

import queue
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
import socketio

from tests.devservers import DevServer, dev_server, disconnect_python_client, flask_run  # noqa: F401  (fixture)
from tests.jsclient import NodeClients

pytestmark = [pytest.mark.integration]

APP = "tests.apps.flask_threads_app:build()"

TRANSPORTS: dict[str, list[str]] = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}

DevServerFactory = Callable[..., DevServer]


@pytest.fixture
def flask_server(dev_server: DevServerFactory) -> DevServer:
    return flask_run(dev_server, APP)


def login(url: str, user: str) -> str:
    """A cookie header carrying the Flask session of ``user``."""
    http = requests.Session()
    assert http.get(url + "/login", params={"user": user}, timeout=5).text == "ok"
    return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


def connect_node(nc: NodeClients, name: str, srv: DevServer, transport: str, cookie: str | None = None,
                 **opts: Any) -> dict[str, Any]:
    """Connect a Node client and check (waiting for the upgrade where there is one) that it
    ends up on the transport asked for."""
    if cookie is not None:
        opts["extraHeaders"] = {"Cookie": cookie}
    opts.setdefault("reconnection", False)
    reply = nc.connect(name, srv.url, transports=TRANSPORTS[transport], **opts)
    opened = nc.wait_for(name, "manager_open")
    assert opened["transport"] == TRANSPORTS[transport][0]
    if transport == "upgrade":
        assert opened["upgrades"] == ["websocket"]
        assert nc.wait_for(name, "upgrade")["transport"] == "websocket"
        assert nc.state(name)["transport"] == "websocket"
    else:
        assert nc.state(name)["transport"] == transport
    return reply


def websocket_requests(srv: DevServer) -> int:
    """WebSocket requests werkzeug logged: it logs "101" once the WebSocket is over."""
    return srv.count(r'"GET /socket\.io/\?[^"]*transport=websocket[^"]* HTTP/1\.1" 101')


def finish(srv: DevServer, nc: NodeClients | None, names: list[str], websockets: int) -> None:
    """Disconnect the clients, wait until the server saw every WebSocket end, stop it
    (Ctrl+C) and check its whole output: no traceback, no request error."""
    if nc is not None:
        for name in names:
            nc.disconnect(name)
    srv.wait_for_log(lambda lines: websocket_requests(srv) >= websockets, what=f"{websockets} WebSocket(s) ending")
    assert requests.get(srv.url + "/hello", timeout=5).text == "hello from flask"
    srv.stop()
    srv.assert_clean_log()


# ------------------------------------------------------------------ Node socket.io-client

@pytest.mark.js
@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_node_client_events_and_acks(flask_server: DevServer, node_clients: NodeClients, transport: str) -> None:
    nc = node_clients
    cookie = login(flask_server.url, "ann")
    connect_node(nc, "c1", flask_server, transport, cookie)
    who = nc.call("c1", "whoami")[0]
    # The handshake's cookie session, in a handler running in a real thread (no gevent).
    assert (who["user"], who["path"], who["main"], who["patched"]) == ("ann", "/socket.io/", False, False)
    args = [1, "two", {"three": [3, 3.5]}, None, True, "héllo ✓ 😀", [], {}]
    assert nc.call("c1", "echo", *args) == [args]
    assert nc.call("c1", "echo", b"\x00\x01binary\xff") == [[b"\x00\x01binary\xff"]]
    # A server event (io.emit from a handler thread) reaches the client.
    assert nc.call("c1", "broadcast", "news", {"n": 1}) == [True]
    assert nc.wait_for_event("c1", "news") == [{"n": 1}]
    # And the server asks the client from the handler thread (socket.call).
    nc.ack_with("c1", "question", "node says hi")
    answer = nc.call("c1", "ask_client", "hello?")[0]
    assert answer["answer"] == "node says hi"
    assert nc.wait_for_message("c1", "question")["args"] == ["hello?"]
    assert nc.state("c1")["transport"] == TRANSPORTS[transport][-1]
    assert nc.events("c1", "disconnect") == [] and nc.events("c1", "connect_error") == []
    finish(flask_server, nc, ["c1"], websockets=0 if transport == "polling" else 1)


@pytest.mark.js
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_view_in_a_werkzeug_thread_emits_to_a_room(flask_server: DevServer, node_clients: NodeClients,
                                                     transport: str) -> None:
    nc = node_clients
    connect_node(nc, "member", flask_server, transport, login(flask_server.url, "bea"))
    connect_node(nc, "outsider", flask_server, "websocket")
    assert nc.call("member", "join", "news") == ["news"]
    resp = requests.get(flask_server.url + "/notify/news", headers={"Cookie": login(flask_server.url, "cid")},
                        timeout=5)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["sent"] is True and view["main"] is False and view["patched"] is False
    notice = nc.wait_for_event("member", "notice")[0]
    assert (notice["room"], notice["by"], notice["thread"]) == ("news", "cid", view["thread"])
    # Only the room got it: a round trip on the outsider, then nothing recorded.
    assert nc.call("outsider", "echo", "sync") == [["sync"]]
    nc.sync()
    assert nc.messages("outsider", "notice") == []
    finish(flask_server, nc, ["member", "outsider"], websockets=1 if transport == "polling" else 2)


@pytest.mark.js
def test_handlers_run_concurrently_in_threads(flask_server: DevServer, node_clients: NodeClients) -> None:
    """A's handler blocks until B's handler releases it, and B's handler blocks until A's
    is waiting: both succeed only if they run at the same time in two threads."""
    nc = node_clients
    connect_node(nc, "a", flask_server, "websocket")
    connect_node(nc, "b", flask_server, "polling")
    waiting = nc.emit_async("a", "wait_for_release", "gate-1")
    released = nc.call("b", "release", "gate-1", timeout=10)[0]
    waited = nc.result(waiting, timeout=10)[0]
    assert released["was_waiting"] is True, released
    assert waited["released"] is True, waited
    assert waited["thread"] != released["thread"]
    assert not waited["main"] and not released["main"]
    # The same two clients in the other roles, on the same connections.
    waiting = nc.emit_async("b", "wait_for_release", "gate-2")
    assert nc.call("a", "release", "gate-2", timeout=10)[0]["was_waiting"] is True
    assert nc.result(waiting, timeout=10)[0]["released"] is True
    finish(flask_server, nc, ["a", "b"], websockets=1)


def test_handlers_run_concurrently_for_python_clients(flask_server: DevServer) -> None:
    """Same with python-socketio: one connection's handler blocks, another's releases it."""
    a = socketio.Client(reconnection=False)
    b = socketio.Client(reconnection=False)
    a.connect(flask_server.url, transports=["websocket"])
    b.connect(flask_server.url, transports=["polling"])
    try:
        got: queue.Queue[Any] = queue.Queue()
        a.emit("wait_for_release", "gate-py", callback=lambda answer: got.put(answer))
        assert b.call("release", "gate-py", timeout=10)["was_waiting"] is True
        assert got.get(timeout=10)["released"] is True
    finally:
        disconnect_python_client(a)
        disconnect_python_client(b)
    finish(flask_server, None, [], websockets=1)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_socket_call_from_a_handler_thread_to_a_python_client(flask_server: DevServer, transport: str) -> None:
    client = socketio.Client(reconnection=False)
    asked: list[str] = []

    @client.on("question")
    def question(text: str) -> str:
        asked.append(text)
        return text.upper()

    client.connect(flask_server.url, headers={"Cookie": login(flask_server.url, "dan")}, transports=[transport])
    try:
        assert client.transport() == transport
        answer = client.call("ask_client", "are you there?", timeout=10)
        assert answer["answer"] == "ARE YOU THERE?" and answer["main"] is False
        assert asked == ["are you there?"]
        assert client.call("whoami", timeout=5)["user"] == "dan"
    finally:
        disconnect_python_client(client)
    finish(flask_server, None, [], websockets=1 if transport == "websocket" else 0)


# ------------------------------------------------------------------ flask run --debug

@pytest.mark.js
def test_debug_mode_without_reloader(dev_server: DevServerFactory, node_clients: NodeClients) -> None:
    """``flask run --debug --no-reload``: werkzeug's debugger wraps the app."""
    srv = flask_run(dev_server, APP, "--debug", "--no-reload")
    nc = node_clients
    connect_node(nc, "ws", srv, "websocket", login(srv.url, "eve"))
    connect_node(nc, "up", srv, "upgrade")
    assert nc.call("ws", "whoami")[0]["user"] == "eve"
    assert nc.call("ws", "join", "r") == ["r"]
    assert requests.get(srv.url + "/notify/r", timeout=5).json()["sent"] is True
    assert nc.wait_for_event("ws", "notice")[0]["room"] == "r"
    nc.ack_with("up", "question", 42)
    assert nc.call("up", "ask_client", "n?")[0]["answer"] == 42
    assert "Debug mode: on" in srv.log
    finish(srv, nc, ["ws", "up"], websockets=2)


@pytest.mark.js
def test_debug_mode_with_reloader(dev_server: DevServerFactory, node_clients: NodeClients, tmp_path: Path) -> None:
    """``flask run --debug``: the app runs in the reloader's child process; a changed
    source file restarts it (the background hub and handler threads do not hold the old
    process up) and a Node client reconnects to the new one."""
    (tmp_path / "reload_app.py").write_text(
        "from tests.apps.flask_threads_app import build\nVERSION = 1\n")
    port_env = {"PYTHONPATH": f"{Path(__file__).resolve().parents[2]}:{tmp_path}"}
    srv = flask_run(dev_server, "reload_app:build()", "--debug", env=port_env)
    nc = node_clients
    connect_node(nc, "c", srv, "websocket", reconnection=True, reconnectionDelay=100, reconnectionDelayMax=300)
    first_sid = nc.state("c")["sid"]
    assert nc.call("c", "echo", "v1") == [["v1"]]
    (tmp_path / "reload_app.py").write_text(
        "from tests.apps.flask_threads_app import build\nVERSION = 2\n")
    srv.wait_for_log(lambda lines: any("Detected change" in line for line in lines), timeout=10,
                     what="the reloader noticing the change")
    nc.wait_for("c", "disconnect", timeout=10)
    nc.wait_for("c", "connect", lambda ev: ev["sid"] != first_sid, timeout=10)
    assert nc.state("c")["transport"] == "websocket"
    assert nc.call("c", "echo", "v2") == [["v2"]]
    assert srv.count(r"Restarting with") >= 2  # the first start, and the reload
    nc.disconnect("c")
    srv.wait_for_log(lambda lines: websocket_requests(srv) >= 1, what="the WebSocket ending")
    srv.stop()
    srv.assert_clean_log()

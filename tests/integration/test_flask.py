"""The Flask integration through the real path: a gevent server, a login view, and
python-socketio and Node socket.io-client clients carrying the session cookie."""
from __future__ import annotations

import queue
from typing import Any

import pytest
import requests
import socketio

from tests.jsclient import NodeClients

pytestmark = pytest.mark.integration


@pytest.fixture
def flask_server(live_server: Any) -> Any:
    return live_server("tests.apps.flask_app:build")


def login(url: str, user: str) -> str:
    http = requests.Session()
    assert http.get(url + "/login", params={"user": user}, timeout=5).text == "ok"
    return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_handlers_see_the_cookie_session_and_flask_contexts(flask_server: Any, transport: str) -> None:
    cookie = login(flask_server.url, "alice")
    client = socketio.Client(reconnection=False)
    client.connect(flask_server.url, headers={"Cookie": cookie}, transports=[transport])
    try:
        answer = client.call("whoami", timeout=5)
        assert answer == {"user": "alice", "path": "/socket.io/", "app": "flask_test_app",
                          "url": "/hello", "g_calls": 1}
        assert client.call("whoami", timeout=5)["g_calls"] == 1  # a fresh g for every call
    finally:
        client.disconnect()
    # the wrapped app still serves its own routes
    assert requests.get(flask_server.url + "/hello", timeout=5).text == "hello from flask"


def test_middleware_refuses_without_a_session(flask_server: Any) -> None:
    errors: queue.Queue[Any] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("connect_error", errors.put)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(flask_server.url, transports=["websocket"], wait_timeout=5)
    assert errors.get(timeout=5) == {"message": "login first"}
    client.disconnect()


def test_a_view_emits_to_a_room_reaching_a_python_client(flask_server: Any) -> None:
    cookie = login(flask_server.url, "bob")
    got: queue.Queue[Any] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("notice", got.put)
    client.connect(flask_server.url, headers={"Cookie": cookie}, transports=["websocket"])
    try:
        assert client.call("join", "r1", timeout=5) == "r1"
        http_cookie = login(flask_server.url, "carol")
        resp = requests.get(flask_server.url + "/notify/r1", headers={"Cookie": http_cookie}, timeout=5)
        assert resp.text == "sent"
        assert got.get(timeout=5) == {"room": "r1", "by": "carol"}
    finally:
        client.disconnect()


@pytest.mark.js
def test_a_view_emits_to_a_room_reaching_a_node_client(flask_server: Any, node_clients: NodeClients) -> None:
    cookie = login(flask_server.url, "dave")
    node_clients.connect("n1", flask_server.url, transports=["websocket"], extraHeaders={"Cookie": cookie})
    assert node_clients.call("n1", "whoami")[0]["user"] == "dave"
    assert node_clients.call("n1", "join", "news") == ["news"]
    assert requests.get(flask_server.url + "/notify/news", timeout=5).text == "sent"
    assert node_clients.wait_for_event("n1", "notice") == [{"room": "news", "by": None}]

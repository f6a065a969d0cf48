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


def test_session_changes_in_a_handler_are_not_saved(flask_server: Any) -> None:
    """Documented: handlers read the handshake's cookie session; what they change lives
    only for that call (there is no HTTP response to carry a new cookie)."""
    cookie = login(flask_server.url, "erin")
    client = socketio.Client(reconnection=False)
    client.connect(flask_server.url, headers={"Cookie": cookie}, transports=["websocket"])
    try:
        assert client.call("set_session", ("theme", "dark"), timeout=5) == "dark"
        assert client.call("get_session", "theme", timeout=5) is None
        assert client.call("set_session", ("user", "mallory"), timeout=5) == "mallory"
        assert client.call("whoami", timeout=5)["user"] == "erin"
    finally:
        client.disconnect()


def test_session_set_by_a_view_is_seen_by_the_next_connection(flask_server: Any) -> None:
    http = requests.Session()
    assert http.get(flask_server.url + "/login", params={"user": "frank"}, timeout=5).text == "ok"
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    first = socketio.Client(reconnection=False)
    first.connect(flask_server.url, headers={"Cookie": cookie}, transports=["polling"])
    assert first.call("whoami", timeout=5)["user"] == "frank"
    first.disconnect()
    # Log in again as someone else in a normal view: a new connection sees the new cookie.
    assert http.get(flask_server.url + "/login", params={"user": "grace"}, timeout=5).text == "ok"
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    second = socketio.Client(reconnection=False)
    second.connect(flask_server.url, headers={"Cookie": cookie}, transports=["polling"])
    try:
        assert second.call("whoami", timeout=5)["user"] == "grace"
    finally:
        second.disconnect()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_flask_login_current_user_in_handlers(flask_server: Any, transport: str) -> None:
    http = requests.Session()
    assert http.get(flask_server.url + "/flask-login", params={"user": "heidi"}, timeout=5).text == "ok"
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    client = socketio.Client(reconnection=False)
    client.connect(flask_server.url, headers={"Cookie": cookie}, transports=[transport])
    try:
        assert client.call("current_user", timeout=5) == {"authenticated": True, "id": "heidi"}
    finally:
        client.disconnect()

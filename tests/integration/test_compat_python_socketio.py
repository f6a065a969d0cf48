"""python-socketio's sid-based Server API (socketio_sync.compat.python_socketio) under a
live server, driven by the official Node client and python-socketio's client.

The server is ``tests/apps/compat_python_socketio.py``, written as a python-socketio
app would be (only its import line names the compat module).
"""
from __future__ import annotations

import time
from typing import Any

import pytest
import socketio

from socketio_sync.compat import python_socketio

pytestmark = pytest.mark.integration

WAIT = 5.0
APP = "tests.apps.compat_python_socketio:build"


def test_sid_based_calls_with_node_and_python_clients(live_server: Any, node_clients: Any) -> None:
    srv = live_server(APP)
    sid_a = node_clients.connect("a", srv.url, auth={"user": "ann"})["sid"]
    sid_b = node_clients.connect("b", srv.url, auth={"user": "ben"}, transports=["polling"])["sid"]

    # Sessions: save_session in connect, session() context manager, get_session.
    assert node_clients.call("a", "whoami") == [{"user": "ann", "path": "/socket.io/", "asked": 1}]
    assert node_clients.call("a", "whoami")[0]["asked"] == 2
    assert node_clients.call("b", "whoami")[0]["user"] == "ben"

    # enter_room / rooms / emit(to=room, skip_sid=sid) / leave_room / close_room.
    rooms = node_clients.call("a", "join", "r1")[0]
    assert sorted(rooms) == sorted([sid_a, "r1"])
    node_clients.call("b", "join", "r1")
    node_clients.emit("a", "to room", "r1", "hi")
    assert node_clients.wait_for_event("b", "room message") == ["r1", "hi"]  # a tuple: two arguments
    node_clients.emit("b", "to room", "r1", "hello")
    assert node_clients.wait_for_event("a", "room message") == ["r1", "hello"]
    assert node_clients.call("b", "leave", "r1")[0] == [sid_b]
    node_clients.call("b", "join", "r1")
    assert node_clients.call("a", "close room", "r1") == []  # a and b are out of r1
    node_clients.call("a", "join", "r2")
    node_clients.call("b", "join", "r2")
    node_clients.emit("b", "to room", "r1", "anyone?")
    node_clients.emit("b", "to room", "r2", "after")
    assert node_clients.wait_for_event("a", "room message") == ["r2", "after"]  # not "anyone?" first

    # call(): the server waits for the client's ack; emit(callback=...) gets it too.
    node_clients.ack_with("a", "question", 42)
    assert node_clients.call("a", "ask me", "the answer?") == [42]
    node_clients.ack_with("a", "pinged", "pong", 2)
    node_clients.emit("a", "ping me back")
    assert node_clients.wait_for_event("a", "callback got") == [["pong", 2]]

    # A broadcast with a callback: it runs once per client that answers.
    node_clients.call("a", "join", "poll")
    node_clients.call("b", "join", "poll")
    node_clients.ack_with("a", "poll", "yes")
    node_clients.ack_with("b", "poll", "no")
    node_clients.emit("a", "poll room", "poll")
    deadline = time.monotonic() + WAIT
    while (got := node_clients.call("a", "poll answers")[0]) != [["no"], ["yes"]] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == [["no"], ["yes"]]

    # The "*" catch-all handler gets the event name first; its return value is the ack.
    assert node_clients.call("a", "anything", 1) == [["caught", "anything", 1]]

    # Class-based namespace: on_connect enters a room, on_say emits to it.
    sid_c1 = node_clients.connect("c1", srv.url + "/chat")["sid"]
    node_clients.connect("c2", srv.url + "/chat")
    assert node_clients.call("c1", "say", "hey") == ["delivered"]
    assert node_clients.call("c1", "where") == ["/chat"]  # a handler of the "*" namespace
    said = node_clients.wait_for_event("c2", "said")
    assert said == [{"from": sid_c1, "text": "hey"}]

    # Refusals: ConnectionRefusedError with data, and a False return.
    reply = node_clients.connect("bad", srv.url, auth={"token": "bad"}, expect_error=True, reconnection=False)
    assert reply["error"] == {"message": "bad token", "data": {"hint": "use another"}}
    reply = node_clients.connect("no", srv.url, auth={"token": "false"}, expect_error=True, reconnection=False)
    assert reply["error"]["message"] == "Connection rejected by server"

    # disconnect(sid)
    node_clients.emit("b", "kick me")
    assert node_clients.wait_for("b", "disconnect")["reason"] == "io server disconnect"


def test_python_socketio_client(live_server: Any) -> None:
    srv = live_server(APP)
    client = socketio.Client(reconnection=False)
    questions: list[str] = []

    @client.on("question")
    def question(text: str) -> str:
        questions.append(text)
        return "forty-two"

    client.connect(srv.url, auth={"user": "py"}, transports=["websocket"], wait_timeout=WAIT)
    try:
        assert client.call("whoami", timeout=WAIT)["user"] == "py"
        assert client.call("ask me", "why?", timeout=WAIT) == "forty-two"
        assert questions == ["why?"]
        assert sorted(client.call("join", "py-room", timeout=WAIT)) == sorted([client.get_sid(), "py-room"])
    finally:
        client.disconnect()


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="ping_intervall"):
        python_socketio.Server(ping_intervall=5)
    with pytest.raises(ValueError, match="async_mode"):
        python_socketio.Server(async_mode="eventlet")
    with pytest.raises(NotImplementedError, match="adapter="):
        python_socketio.Server(client_manager=object())
    sio = python_socketio.Server(async_mode="gevent", logger=True, ping_interval=5)
    assert sio.io.engine is not None
    with pytest.raises(NotImplementedError):
        python_socketio.WSGIApp(sio, static_files={"/": "index.html"})

"""``io.test_client``: the in-process client users write their own tests with. It goes
through the real WSGI middleware and engine (no network), so these tests also prove the
threaded runtime: the pytest process is not monkey-patched, so the server runs in its
background gevent thread and handlers in handler threads."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import socketio_sync
from socketio_sync.testing import ConnectionRefusedByServer, TestClient, TestClientError


def make_server() -> socketio_sync.Server:
    io = socketio_sync.Server()
    seen: dict[str, Any] = {"disconnects": []}
    io.seen = seen  # type: ignore[attr-defined]

    @io.use
    def check_token(socket: socketio_sync.Socket, next: Any) -> None:
        if socket.handshake.auth.get("token") == "bad":
            next(socketio_sync.ConnectionRefused("bad token", {"hint": "use a good one"}))
        else:
            next()

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.emit("welcome", {"auth": socket.handshake.auth, "cookie": socket.handshake.headers.get("cookie")})

        @socket.on("add")
        def add(a: int, b: int) -> int:
            return a + b

        @socket.on("pair")
        def pair() -> tuple[str, int]:
            return "two", 2

        @socket.on("say")
        def say(msg: str) -> None:
            io.emit("said", msg)

        @socket.on("ask_client")
        def ask_client(question: str) -> Any:
            return socket.call("question", question, timeout=5)  # from a handler thread

        @socket.on("bytes")
        def echo_bytes(data: bytes) -> bytes:
            return data[::-1]

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            seen["disconnects"].append(reason)

    @io.of("/admin").on("connection")
    def on_admin(socket: socketio_sync.Socket) -> None:
        socket.emit("hello admin")

    return io


def test_emit_receive_and_acks() -> None:
    io = make_server()
    with io.test_client(auth={"token": "ok"}, headers={"Cookie": "a=1"}) as client:
        assert client.wait_for("welcome") == [{"auth": {"token": "ok"}, "cookie": "a=1"}]
        assert client.call("add", 2, 3) == 5
        assert client.call("pair") == ("two", 2)
        assert client.call("bytes", b"\x00\x01\xff") == b"\xff\x01\x00"
        got: list[Any] = []
        done = threading.Event()
        client.emit("add", 1, 1, callback=lambda value: (got.append(value), done.set()))
        assert done.wait(5) and got == [2]


def test_broadcast_reaches_every_test_client() -> None:
    io = make_server()
    a, b = io.test_client(), io.test_client()
    try:
        a.emit("say", "hi all")
        assert a.wait_for("said") == ["hi all"]
        assert b.wait_for("said") == ["hi all"]
        names = [e["name"] for e in b.get_received()]
        assert names == ["welcome"]  # what is left, in order; get_received empties it
        assert b.get_received() == []
    finally:
        a.disconnect()
        b.disconnect()


def test_the_server_calls_the_client_from_a_handler() -> None:
    io = make_server()
    with io.test_client() as client:
        client.on("question", lambda q: f"answer to {q}")
        assert client.call("ask_client", "life") == "answer to life"


def test_namespaces_and_disconnect_reach_the_server() -> None:
    io = make_server()
    client = io.test_client()
    sid = client.sid_for("/")
    assert sid in io.of("/").sockets
    client.connect("/admin")
    assert client.wait_for("hello admin", namespace="/admin") == []
    client.disconnect("/admin")
    assert client.is_connected("/") and not client.is_connected("/admin")
    client.disconnect()
    assert not client.connected
    deadline = threading.Event()
    for _ in range(50):
        if io.seen["disconnects"]:  # type: ignore[attr-defined]
            break
        deadline.wait(0.05)
    assert io.seen["disconnects"] == ["client namespace disconnect"] or \
        io.seen["disconnects"] == ["transport close"]  # type: ignore[attr-defined]
    assert sid not in io.of("/").sockets


def test_a_refused_connection_raises_with_the_servers_data() -> None:
    io = make_server()
    with pytest.raises(ConnectionRefusedByServer) as info:
        io.test_client(auth={"token": "bad"})
    assert info.value.data == {"message": "bad token", "data": {"hint": "use a good one"}}
    assert io.engine.clients_count == 0  # the client closed its connection


def test_unknown_namespace_is_refused() -> None:
    io = make_server()
    with pytest.raises(ConnectionRefusedByServer, match="Invalid namespace"):
        io.test_client(namespace="/nope")


def test_protocol_errors_are_loud() -> None:
    io = socketio_sync.Server(transports=("websocket",))
    with pytest.raises(TestClientError, match="HTTP 400"):
        io.test_client()

    def broken_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"not engine.io"]

    with pytest.raises(TestClientError, match="OPEN|malformed"):
        TestClient(socketio_sync.Server(), broken_app)


def test_emit_from_another_thread_reaches_the_client() -> None:
    """What a Flask view does under a threaded server: io.emit from a foreign thread."""
    io = make_server()
    with io.test_client() as client:
        worker = threading.Thread(target=io.emit, args=("said", "from a thread"))
        worker.start()
        worker.join(5)
        assert client.wait_for("said") == ["from a thread"]


# -- the examples, through the test client -------------------------------------------------


def test_chat_example_with_the_test_client() -> None:
    from examples.chat.app import build

    app = build()
    io = app.target
    alice = io.test_client(app, namespace="/chat")
    bob = io.test_client(app, namespace="/chat")
    try:
        assert alice.call("nickname", "alice", namespace="/chat") == {"ok": True, "nickname": "alice"}
        assert bob.call("nickname", "ALICE", namespace="/chat")["ok"] is False
        assert bob.call("nickname", "bob", namespace="/chat")["ok"] is True
        assert alice.call("join", "general", namespace="/chat") == {"ok": True, "room": "general"}
        assert bob.call("join", "general", namespace="/chat") == {"ok": True, "room": "general"}
        assert alice.wait_for("notice", namespace="/chat") == [{"text": "bob joined #general"}]
        assert bob.call("message", "hi", namespace="/chat") == {"ok": True}
        message = alice.wait_for("message", namespace="/chat")[0]
        assert (message["nickname"], message["text"], message["room"]) == ("bob", "hi", "general")
    finally:
        alice.disconnect()
        bob.disconnect()


def test_flask_notify_example_shares_the_flask_test_clients_session() -> None:
    from examples.flask_notify.app import build

    app = build(secret_key="test")
    io = app.extensions["socketio_sync"].io
    http = app.test_client()
    with pytest.raises(ConnectionRefusedByServer):
        io.test_client(app, http_client=http)  # not logged in yet
    assert http.post("/login", data={"user": "alice"}).status_code == 302
    with io.test_client(app, http_client=http) as alice:
        resp = http.post("/api/notify/alice", json={"text": "build passed"})
        assert resp.get_json() == {"user": "alice", "sockets": 1}
        assert alice.wait_for("notification") == [{"text": "build passed"}]
        resp = http.post("/api/notify/bob", json={"text": "not for alice"})
        assert resp.get_json() == {"user": "bob", "sockets": 0}
        assert alice.get_received() == []


def test_the_readme_example_test_passes() -> None:
    """The README's "Testing your application" block is a real, passing test."""
    import re

    from examples.flask_notify.app import build
    from tests.conftest import ROOT

    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:(?: {4}.*)?\n)+)", text, flags=re.M)
    block = next(b for b in blocks if "def test_notification_reaches_the_user" in b)
    source = "\n".join(line[4:] for line in block.splitlines())
    namespace: dict[str, Any] = {"build": lambda: build(secret_key="readme")}
    exec(compile(source, "README.rst (Testing your application)", "exec"), namespace)
    namespace["test_notification_reaches_the_user"]()


def test_a_handler_joining_after_its_client_left_leaves_no_room_entry() -> None:
    """Found by the soak test: a ``join`` handler still running when its client went away
    re-added the dead socket to the adapter's room maps, which then never emptied."""
    io = socketio_sync.Server()
    release = threading.Event()
    entered = threading.Event()

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        @socket.on("slow_join")
        def slow_join(room: str) -> None:
            entered.set()
            release.wait(5)
            socket.join(room)

    client = io.test_client()
    client.emit("slow_join", "late")
    assert entered.wait(5)
    client.disconnect()
    deadline = time.monotonic() + 5
    while io.of("/").sockets and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()
    time.sleep(0.2)
    adapter = io.of("/").adapter
    assert not io.of("/").sockets
    assert adapter.rooms == {} and adapter.sids == {}, (adapter.rooms, adapter.sids)


def test_rooms_joined_in_a_refusing_middleware_are_forgotten() -> None:
    io = socketio_sync.Server()

    @io.use
    def join_then_refuse(socket: socketio_sync.Socket, next: Any) -> None:
        socket.join("vip")
        next(socketio_sync.ConnectionRefused("no"))

    with pytest.raises(ConnectionRefusedByServer):
        io.test_client()
    adapter = io.of("/").adapter
    assert adapter.rooms == {} and adapter.sids == {}, (adapter.rooms, adapter.sids)

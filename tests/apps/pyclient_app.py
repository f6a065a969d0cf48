"""Test application for the python-socketio client integration tests
(``tests/integration/test_python_client.py``).

``build(**opts)`` returns a ``socketio_sync.WSGIApp`` with two namespaces:

``/``      guarded by a middleware that refuses ``auth.token == "bad"``; the connection
           handler refuses ``auth.refuse == "handler"``.  Every event the tests need is a
           small command (see ``on_connection``).
``/chat``  a second namespace multiplexed on the same connection.

Clients that emit ``observe`` join the room ``observers`` and get a ``peer_disconnect``
event ``{"id", "name", "nsp", "reason"}`` whenever a socket disconnects.  Server-side
outcomes that happen outside an ack (callbacks, ``socket.call``) are reported to the client
with ``result`` events ``{"tag": ..., ...}``.
"""
from __future__ import annotations

from typing import Any

import socketio_sync


def describe(value: Any) -> Any:
    """JSON-friendly description of a received value: bytes become ``{"bytes": "<hex>"}``
    so a test can tell real binary from text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {k: describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    return value


def build(ping_interval: float = 25.0, ping_timeout: float = 20.0, **kw: Any) -> socketio_sync.WSGIApp:
    kw.setdefault("cors_allowed_origins", "*")
    io = socketio_sync.Server(ping_interval=ping_interval, ping_timeout=ping_timeout, **kw)

    def report_disconnect(socket: Any, reason: str) -> None:
        report = {"id": socket.id, "name": socket.data.get("name"), "nsp": socket.nsp.name, "reason": reason}
        # Observers may watch from "/" or from "/chat" (the latter survive io.disconnect_sockets()).
        io.to("observers").emit("peer_disconnect", report)
        io.of("/chat").to("observers").emit("peer_disconnect", report)

    def check_token(socket: Any, next: Any) -> None:
        if socket.handshake.auth.get("token") == "bad":
            next(socketio_sync.ConnectionRefused("not authorized", data={"code": 401}))
        else:
            next()

    io.use(check_token)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        auth = socket.handshake.auth
        if auth.get("refuse") == "handler":
            raise socketio_sync.ConnectionRefused("refused by handler", data=["a", 1])
        socket.data["name"] = auth.get("name")
        socket.data["seq"] = []
        socket.emit("welcome", {"id": socket.id, "nsp": socket.nsp.name, "auth": auth})

        def result(tag: str, **fields: Any) -> None:
            if socket.connected:
                socket.emit("result", {"tag": tag, **fields})

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            report_disconnect(socket, reason)

        # -- introspection
        @socket.on("whoami")
        def whoami() -> Any:
            hs = socket.handshake
            return {
                "id": socket.id,
                "nsp": socket.nsp.name,
                "auth": hs.auth,
                "query": hs.query,
                "header": hs.headers.get("x-test-header"),
                "address": hs.address,
                "rooms": sorted(socket.rooms),
                "engine": socket.client.conn.sid,
            }

        @socket.on("observe")
        def observe() -> Any:
            socket.join("observers")
            return True

        # -- acks from return values
        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args                     # a tuple: one ack argument per event argument

        @socket.on("one")
        def one(value: Any) -> Any:
            return value                    # a single ack argument

        @socket.on("nothing")
        def nothing(*args: Any) -> Any:
            return None                     # an ack with no arguments

        @socket.on("noack")
        def noack(*args: Any) -> Any:
            return socketio_sync.NO_ACK     # no ack at all

        @socket.on("describe")
        def describe_args(*args: Any) -> Any:
            return describe(list(args))

        # -- the server emits to the client
        @socket.on("send_binary")
        def send_binary() -> Any:
            socket.emit("binary", b"\x00\x01\xff", {"nested": [b"abc", {"deep": b"\x02"}], "text": "t"})
            return True

        @socket.on("emit_back")
        def emit_back(event: str, *args: Any) -> Any:
            socket.emit(event, *args)
            return True

        @socket.on("burst")
        def burst(tag: str, count: int) -> Any:
            for i in range(count):
                socket.emit("burst", tag, i)
            return True

        @socket.on("server_callback")
        def server_callback(event: str, *args: Any) -> Any:
            def done(*answer: Any) -> None:
                result("callback", args=describe(list(answer)))
            socket.emit(event, *args, callback=done)
            return True

        @socket.on("server_call")
        def server_call(event: str, timeout: float, *args: Any) -> Any:
            try:
                answer = socket.call(event, *args, timeout=timeout)
            except socketio_sync.AckTimeout:
                socket.data["seq"].append(f"call {event} timed out")
                result("call", timeout=True)
                return socketio_sync.NO_ACK
            socket.data["seq"].append(f"call {event} answered")
            result("call", answer=describe(answer), type=type(answer).__name__)
            return socketio_sync.NO_ACK

        @socket.on("poke")
        def poke(sid: str, value: Any) -> Any:
            """Emit "poked" to another socket of "/" with an ack callback; report its answer."""
            target = io.of("/").sockets.get(sid)
            if target is None:
                return False

            def answered(*answer: Any) -> None:
                result("poke", answer=describe(list(answer)))
            target.emit("poked", value, callback=answered)
            return True

        # -- ordering
        @socket.on("seq")
        def seq(n: int) -> Any:
            socket.data["seq"].append(n)
            return socketio_sync.NO_ACK

        @socket.on("get_seq")
        def get_seq() -> Any:
            return socket.data["seq"]

        # -- rooms and broadcasting
        @socket.on("join")
        def join(room: Any) -> Any:
            socket.join(room)
            return sorted(socket.rooms)

        @socket.on("leave")
        def leave(room: Any) -> Any:
            socket.leave(room)
            return sorted(socket.rooms)

        @socket.on("rooms")
        def rooms() -> Any:
            return sorted(socket.rooms)

        @socket.on("io_emit")
        def io_emit(event: str, *args: Any) -> Any:
            io.emit(event, *args)
            return True

        @socket.on("io_to")
        def io_to(rooms: Any, except_rooms: Any, event: str, *args: Any) -> Any:
            op = io.to(rooms)
            if except_rooms:
                op = op.except_(except_rooms)
            op.emit(event, *args)
            return True

        @socket.on("socket_to")
        def socket_to(room: Any, event: str, *args: Any) -> Any:
            socket.to(room).emit(event, *args)
            return True

        @socket.on("broadcast")
        def broadcast(event: str, *args: Any) -> Any:
            socket.broadcast.emit(event, *args)
            return True

        @socket.on("in_join")
        def in_join(room: str, new_room: str) -> Any:
            io.in_(room).sockets_join(new_room)
            return True

        @socket.on("in_leave")
        def in_leave(room: str, old_room: str) -> Any:
            io.in_(room).sockets_leave(old_room)
            return True

        @socket.on("in_disconnect")
        def in_disconnect(room: str) -> Any:
            io.in_(room).disconnect_sockets()
            return True

        @socket.on("disconnect_all")
        def disconnect_all() -> Any:
            io.disconnect_sockets()
            return socketio_sync.NO_ACK

        @socket.on("disconnect_me")
        def disconnect_me(close: bool = False) -> Any:
            socket.disconnect(close)
            return socketio_sync.NO_ACK

        @socket.on("disconnect_chat")
        def disconnect_chat() -> Any:
            """Disconnect this client's socket in "/chat" (same engine connection)."""
            for other in list(io.of("/chat").sockets.values()):
                if other.client is socket.client:
                    other.disconnect()
                    return True
            return False

    # ------------------------------------------------------------------ "/chat"
    chat = io.of("/chat")

    @chat.on("connection")
    def on_chat(socket: Any) -> None:
        socket.data["name"] = socket.handshake.auth.get("name")
        socket.emit("welcome", {"id": socket.id, "nsp": socket.nsp.name, "auth": socket.handshake.auth})

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            report_disconnect(socket, reason)

        @socket.on("whoami")
        def whoami() -> Any:
            return {"id": socket.id, "nsp": socket.nsp.name, "auth": socket.handshake.auth,
                    "engine": socket.client.conn.sid}

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return ("chat", *args)

        @socket.on("observe")
        def observe() -> Any:
            socket.join("observers")
            return True

        @socket.on("chat_emit")
        def chat_emit(event: str, *args: Any) -> Any:
            chat.emit(event, *args)
            return True

    return socketio_sync.WSGIApp(io)

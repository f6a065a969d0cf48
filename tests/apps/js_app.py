"""Test application for the socket.io-client (Node) integration tests.

``build(**opts)`` returns a ``socketio_sync.WSGIApp`` with three namespaces:

``/``        the main namespace, guarded by a middleware that refuses ``auth.token == "bad"``
             (and a connection handler that refuses ``auth.refuse == "handler"``).
``/chat``    a second namespace, to be multiplexed on the same connection.
``/admin``   refuses anybody whose ``auth.role`` is not ``"admin"``.

Clients that emit ``observe`` join the room ``observers`` and receive a ``peer_disconnect``
event ``{"id", "name", "nsp", "reason"}`` whenever another socket disconnects.
"""
from __future__ import annotations

from typing import Any

import socketio_sync


def describe(value: Any) -> Any:
    """JSON-friendly description of what the server received: bytes become
    ``{"bytes": "<hex>"}`` so a test can tell real binary from base64 text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {k: describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    return value


def build(ping_interval: float = 25.0, ping_timeout: float = 20.0, **kw: Any) -> socketio_sync.WSGIApp:
    io = socketio_sync.Server(ping_interval=ping_interval, ping_timeout=ping_timeout, **kw)

    def report_disconnect(socket: Any, reason: str) -> None:
        io.to("observers").emit(
            "peer_disconnect",
            {"id": socket.id, "name": socket.data.get("name"), "nsp": socket.nsp.name, "reason": reason},
        )

    # ------------------------------------------------------------------ "/"
    def check_token(socket: Any, next: Any) -> None:
        if socket.handshake.auth.get("token") == "bad":
            next(socketio_sync.ConnectionRefused("not authorized", data={"code": 401, "hint": "bad token"}))
        else:
            next()

    io.use(check_token)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        auth = socket.handshake.auth
        if auth.get("refuse") == "handler":
            raise socketio_sync.ConnectionRefused("refused by handler", data=["a", 1])
        socket.data["name"] = auth.get("name")
        # The first thing the connection handler sends: the client must see it after its
        # CONNECT reply.
        socket.emit("welcome", {"id": socket.id, "nsp": socket.nsp.name, "auth": auth})

        @socket.on("observe")
        def observe() -> Any:
            socket.join("observers")
            return True

        @socket.on("handshake")
        def handshake() -> Any:
            hs = socket.handshake
            return {
                "id": socket.id,
                "nsp": socket.nsp.name,
                "auth": hs.auth,
                "query": hs.query,
                "user_agent": {k.lower(): v for k, v in hs.headers.items()}.get("user-agent"),
                "address": hs.address,
                "url": hs.url,
            }

        # -- acks from the handler's return value
        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("return_one")
        def return_one() -> Any:
            return {"single": True}

        @socket.on("return_none")
        def return_none() -> Any:
            return None

        @socket.on("no_ack")
        def no_ack(*args: Any) -> Any:
            socket.emit("no_ack_seen", *args)
            return socketio_sync.NO_ACK

        # -- binary
        @socket.on("inspect")
        def inspect(*args: Any) -> Any:
            return describe(list(args))

        @socket.on("echo_event")
        def echo_event(name: str, *args: Any) -> None:
            socket.emit(name, *args)

        @socket.on("send_binary")
        def send_binary(size: int = 0) -> None:
            socket.emit(
                "binary",
                b"\x00\x01\x02\xff",
                {"nested": {"deep": [b"", b"abc", {"x": bytes(range(256))}]}, "text": "plain"},
                [b"\xfe" * size],
            )

        # -- server -> client acks
        @socket.on("ask")
        def ask(event: str, args: list, timeout: float) -> Any:
            try:
                answer = socket.call(event, *args, timeout=timeout)
            except socketio_sync.AckTimeout as exc:
                result = {"error": type(exc).__name__}
            else:
                result = {"type": type(answer).__name__, "value": describe(answer)}
            socket.emit("ask_result", event, result)
            return result

        @socket.on("ask_cb")
        def ask_cb(event: str, args: list) -> None:
            def got(*answer: Any) -> None:
                socket.emit("cb_result", event, describe(list(answer)))

            socket.emit(event, *args, callback=got)

        # -- ordering
        @socket.on("seq")
        def seq(n: int) -> None:
            socket.data.setdefault("seq", []).append(n)
            socket.emit("seq_echo", n)

        @socket.on("get_seq")
        def get_seq() -> Any:
            return socket.data.get("seq", [])

        # -- rooms and broadcasting
        @socket.on("join")
        def join(room: str) -> Any:
            socket.join(room)
            return sorted(r for r in socket.rooms if r != socket.id)

        @socket.on("leave")
        def leave(room: str) -> Any:
            socket.leave(room)
            return sorted(r for r in socket.rooms if r != socket.id)

        @socket.on("to_room")
        def to_room(room: str, event: str, payload: Any) -> Any:
            socket.to(room).emit(event, payload)
            return True

        @socket.on("io_to")
        def io_to(rooms: list, except_rooms: list, event: str, payload: Any) -> Any:
            op: Any = io
            for r in rooms:
                op = op.to(r)
            for r in except_rooms:
                op = op.except_(r)
            op.emit(event, payload)
            return True

        @socket.on("broadcast")
        def broadcast(event: str, payload: Any) -> Any:
            socket.broadcast.emit(event, payload)
            return True

        @socket.on("room_members")
        def room_members(room: str) -> Any:
            return sorted(s.id for s in io.to(room).fetch_sockets())

        @socket.on("io_emit")
        def io_emit(event: str, payload: Any) -> Any:
            io.emit(event, payload)
            return True

        # -- disconnection
        @socket.on("server_disconnect")
        def server_disconnect(close: bool = False) -> Any:
            socket.disconnect(close=close)
            return socketio_sync.NO_ACK

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            report_disconnect(socket, reason)

    # ------------------------------------------------------------------ "/chat"
    chat = io.of("/chat")

    @chat.on("connection")
    def on_chat(socket: Any) -> None:
        socket.data["name"] = socket.handshake.auth.get("name")
        socket.emit("chat_welcome", {"id": socket.id, "nsp": socket.nsp.name, "auth": socket.handshake.auth})

        @socket.on("echo")
        def chat_echo(*args: Any) -> Any:
            return ("/chat", *args)

        @socket.on("say")
        def say(text: str) -> None:
            chat.emit("said", {"from": socket.data.get("name"), "text": text})

        @socket.on("server_disconnect")
        def chat_server_disconnect() -> Any:
            socket.disconnect()
            return socketio_sync.NO_ACK

        @socket.on("disconnect")
        def chat_disconnect(reason: str) -> None:
            report_disconnect(socket, reason)

    # ------------------------------------------------------------------ "/admin"
    admin = io.of("/admin")

    def admins_only(socket: Any, next: Any) -> None:
        if socket.handshake.auth.get("role") != "admin":
            next(socketio_sync.ConnectionRefused("admins only", data={"role": socket.handshake.auth.get("role")}))
        else:
            next()

    admin.use(admins_only)

    @admin.on("connection")
    def on_admin(socket: Any) -> None:
        @socket.on("echo")
        def admin_echo(*args: Any) -> Any:
            return ("/admin", *args)

    return socketio_sync.WSGIApp(io)

"""Test application for Socket.IO v2 clients (``allow_eio3``), see tests/integration/test_eio3.py.

``build(**opts)``: a server with ``allow_eio3=True`` (unless ``opts`` says otherwise) and

``/``       ``join`` {room, name}: joins ``room`` and answers ``"joined"``; ``chat`` {room, text}:
            sent to the room as ``chat`` {from, text}; ``echo``: acks with its arguments;
            ``ask`` {room, question}: ``call``s every other socket of the room one by one
            and acks with their answers; ``whoami``: acks with what the handshake holds.
``/admin``  a middleware refuses a ``token`` other than ``"secret"`` (in v2's query or v4's
            auth), with data ``{"code": 401}``; ``/plain`` refuses everybody, without data.
"""
from __future__ import annotations

from typing import Any

import socketio_sync


def build(**opts: Any) -> socketio_sync.WSGIApp:
    opts.setdefault("allow_eio3", True)
    io = socketio_sync.Server(**opts)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("join")
        def join(info: dict[str, Any]) -> str:
            socket.data["name"] = info["name"]
            socket.join(info["room"])
            return "joined"

        @socket.on("chat")
        def chat(msg: dict[str, Any]) -> None:
            io.to(msg["room"]).emit("chat", {"from": socket.data.get("name"), "text": msg["text"],
                                             "blob": msg.get("blob")})

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("ask")
        def ask(msg: dict[str, Any]) -> list[Any]:
            answers = []
            for other in io.in_(msg["room"]).fetch_sockets():
                if other.id != socket.id:
                    answers.append(other.call("question", msg["question"], timeout=5))
            return answers

        @socket.on("whoami")
        def whoami() -> dict[str, Any]:
            hs = socket.handshake
            return {"id": socket.id, "query": hs.query, "auth": hs.auth, "nsp": socket.nsp.name,
                    "rooms": sorted(socket.rooms)}

    admin = io.of("/admin")

    def check_token(socket: Any, next: Any) -> None:
        if socket.handshake.auth.get("token") != "secret":
            next(socketio_sync.ConnectionRefused("not authorized", data={"code": 401}))
        else:
            next()

    admin.use(check_token)

    @admin.on("connection")
    def on_admin(socket: Any) -> None:
        socket.join("admins")

        @socket.on("whoami")
        def whoami() -> dict[str, Any]:
            hs = socket.handshake
            return {"id": socket.id, "query": hs.query, "auth": hs.auth, "nsp": socket.nsp.name}

        @socket.on("shout")
        def shout(text: str) -> None:
            admin.to("admins").emit("shout", text)

    def refuse(socket: Any, next: Any) -> None:
        next(socketio_sync.ConnectionRefused("go away"))

    io.of("/plain").use(refuse)
    return socketio_sync.WSGIApp(io)

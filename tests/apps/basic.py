"""A small echo/chat app used by several integration tests."""
from __future__ import annotations

from typing import Any

import socketio_sync


def build(**options: Any) -> socketio_sync.WSGIApp:
    options.setdefault("cors_allowed_origins", "*")
    io = socketio_sync.Server(**options)

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.emit("welcome", {"id": socket.id, "auth": socket.handshake.auth})

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("chat message")
        def chat(msg: Any) -> None:
            io.emit("chat message", msg)

    return socketio_sync.WSGIApp(io)

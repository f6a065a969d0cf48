"""An app for resource-limit tests: a client can ask for a flood of data; /stats shows
connected sockets and disconnect reasons."""
from __future__ import annotations

import json
from typing import Any

import socketio_sync


def build(max_pending_bytes: int = 1_000_000, **kw: Any) -> Any:
    io = socketio_sync.Server(max_pending_bytes=max_pending_bytes, cors_allowed_origins="*", **kw)
    state: dict[str, Any] = {"connected": [], "disconnects": {}}

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        state["connected"].append(socket.id)

        @socket.on("flood")
        def flood(count: int, size: int) -> None:
            chunk = "x" * size
            for _ in range(count):
                if not socket.connected:
                    break
                socket.emit("data", chunk)

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("disconnect")
        def bye(reason: str) -> None:
            state["connected"].remove(socket.id)
            state["disconnects"][socket.id] = reason

    def stats(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.dumps(state).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return socketio_sync.WSGIApp(io, stats)

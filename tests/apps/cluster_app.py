"""A server process of a Redis cluster, for the cluster tests."""
from __future__ import annotations

import os
from typing import Any

import socketio_sync


def build(redis_url: str, name: str = "", **options: Any) -> socketio_sync.WSGIApp:
    options.setdefault("cors_allowed_origins", "*")
    io = socketio_sync.Server(adapter=socketio_sync.RedisAdapter(redis_url, requests_timeout=2.0), **options)
    server_name = name or f"pid{os.getpid()}"

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.data["server"] = server_name
        socket.data["user"] = socket.handshake.auth.get("user")

        @socket.on("join")
        def join(room: str) -> Any:
            socket.join(room)
            return sorted(socket.rooms - {socket.id})

        @socket.on("leave")
        def leave(room: str) -> None:
            socket.leave(room)

        @socket.on("rooms")
        def rooms() -> Any:
            return sorted(socket.rooms - {socket.id})

        @socket.on("op")
        def op(spec: dict[str, Any]) -> Any:
            """Run a server operation described by the client; return its result."""
            kind = spec["kind"]
            target: Any = io
            if spec.get("nsp"):
                target = io.of(spec["nsp"])
            sel: Any = target
            for room in spec.get("to", []):
                sel = sel.to(room)
            for room in spec.get("except", []):
                sel = sel.except_(room)
            if spec.get("local"):
                sel = sel.local
            if kind == "emit":
                sel.emit(spec["event"], *spec.get("args", []))
            elif kind == "broadcast":
                socket.broadcast.emit(spec["event"], *spec.get("args", []))
            elif kind == "join":
                sel.sockets_join(spec["room"])
            elif kind == "leave":
                sel.sockets_leave(spec["room"])
            elif kind == "disconnect":
                sel.disconnect_sockets(spec.get("close", False))
            elif kind == "fetch":
                return sorted(
                    ({"id": s.id, "rooms": sorted(s.rooms), "data": s.data, "auth": s.handshake.auth,
                      "remote": isinstance(s, socketio_sync.RemoteSocket)} for s in sel.fetch_sockets()),
                    key=lambda d: d["id"])
            elif kind == "remote_emit":
                for s in sel.fetch_sockets():
                    s.emit(spec["event"], *spec.get("args", []))
            elif kind == "call":
                try:
                    return {"ok": sel.timeout(spec.get("timeout", 2)).call(spec["event"], *spec.get("args", []))}
                except socketio_sync.AckTimeout as exc:
                    return {"timeout": getattr(exc, "responses", [])}
            elif kind == "server_side_emit":
                io.server_side_emit(spec["event"], *spec.get("args", []))
            elif kind == "server_side_call":
                try:
                    return {"ok": io.server_side_call(spec["event"], *spec.get("args", []), timeout=2)}
                except socketio_sync.RequestTimeout as exc:
                    return {"timeout": exc.responses}
            elif kind == "server_count":
                return io.sockets.adapter.server_count()
            return "done"

    @io.on("ping-servers")
    def ping_servers(*args: Any) -> Any:
        io.emit("server-side", server_name, *args)
        return server_name

    chat = io.of("/chat")

    @chat.on("connection")
    def on_chat(socket: socketio_sync.Socket) -> None:
        @socket.on("join")
        def join(room: str) -> None:
            socket.join(room)

    return socketio_sync.WSGIApp(io)

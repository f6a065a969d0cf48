"""A server process of a Redis cluster, for the cluster tests.

Every socket of "/" gets ``data = {"server": name, "user": auth.user}`` and handles:

* ``join(room)`` -> its rooms (without its own id), ``leave(room)``, ``rooms()``;
* ``op(spec)``: runs one cluster operation and acks its result. ``spec`` has ``kind``
  and optionally ``nsp``, ``to`` / ``except`` (lists of rooms), ``local`` (bool),
  ``event``, ``args``, ``room``, ``close``, ``timeout``; ``kind`` ``"seq"`` runs
  ``spec["ops"]`` one after the other in the same greenlet and returns their results.

Server-side handlers (``io.on(name)``, for ``server_side_emit`` of the other servers):
``ping-servers`` (emits ``server-side`` to everyone, acks the server name), ``record``
(remembers its arguments, acks the server name; ``op`` kind ``received`` lists them) and
``slow`` (acks the server name after ``slow_delay`` seconds).

``tests/js/node_cluster_server.mjs`` is the same app on the Node server.
"""
from __future__ import annotations

import os
import time
from typing import Any

import gevent

import socketio_sync


def build(redis_url: str, name: str = "", slow_delay: float = 3.0, requests_timeout: float = 2.0,
          adapter_options: dict[str, Any] | None = None, **options: Any) -> socketio_sync.WSGIApp:
    options.setdefault("cors_allowed_origins", "*")
    adapter = socketio_sync.RedisAdapter(redis_url, requests_timeout=requests_timeout, **(adapter_options or {}))
    io = socketio_sync.Server(adapter=adapter, **options)
    server_name = name or f"pid{os.getpid()}"
    received: list[list[Any]] = []

    def selection(spec: dict[str, Any]) -> Any:
        sel: Any = io.of(spec["nsp"]) if spec.get("nsp") else io
        for room in spec.get("to", []):
            sel = sel.to(room)
        for room in spec.get("except", []):
            sel = sel.except_(room)
        if spec.get("local"):
            sel = sel.local
        return sel

    def describe(s: Any) -> dict[str, Any]:
        return {"id": s.id, "rooms": sorted(s.rooms), "data": s.data, "auth": s.handshake.auth,
                "remote": isinstance(s, socketio_sync.RemoteSocket)}

    def run_op(socket: socketio_sync.Socket, spec: dict[str, Any]) -> Any:
        kind = spec["kind"]
        sel = selection(spec)
        args = spec.get("args", [])
        if kind == "seq":
            return [run_op(socket, sub) for sub in spec["ops"]]
        if kind == "emit":
            sel.emit(spec["event"], *args)
        elif kind == "broadcast":
            socket.broadcast.emit(spec["event"], *args)
        elif kind == "join":
            sel.sockets_join(spec["room"])
        elif kind == "leave":
            sel.sockets_leave(spec["room"])
        elif kind == "disconnect":
            sel.disconnect_sockets(spec.get("close", False))
        elif kind == "fetch":
            try:
                found = sel.fetch_sockets()
            except socketio_sync.RequestTimeout as exc:
                return {"timeout": str(exc)}
            return sorted((describe(s) for s in found), key=lambda d: d["id"])
        elif kind in ("remote_emit", "remote_join", "remote_leave", "remote_disconnect"):
            # Only the RemoteSocket objects (the other servers' sockets) are acted on.
            done = []
            for s in sel.fetch_sockets():
                if not isinstance(s, socketio_sync.RemoteSocket):
                    continue
                if kind == "remote_emit":
                    s.emit(spec["event"], *args)
                elif kind == "remote_join":
                    s.join(spec["room"])
                elif kind == "remote_leave":
                    s.leave(spec["room"])
                else:
                    s.disconnect(spec.get("close", False))
                done.append(s.id)
            return sorted(done)
        elif kind == "call":
            try:
                return {"ok": sel.timeout(spec.get("timeout", 2)).call(spec["event"], *args)}
            except socketio_sync.AckTimeout as exc:
                return {"timeout": getattr(exc, "responses", [])}
        elif kind == "server_side_emit":
            io.server_side_emit(spec["event"], *args)
        elif kind == "server_side_call":
            try:
                return {"ok": io.server_side_call(spec["event"], *args, timeout=spec.get("timeout", 2))}
            except socketio_sync.RequestTimeout as exc:
                return {"timeout": exc.responses}
        elif kind == "server_count":
            return io.sockets.adapter.server_count()
        elif kind == "received":
            return received
        elif kind == "stats":
            return dict(adapter.stats)
        elif kind == "burst":
            # For benchmarks/cluster_broadcast.py: ``count`` broadcasts of
            # ``{"seq", "t" (time.time() when emitted), "pad"}``, ``interval`` s apart
            # (0: back to back, yielding to other greenlets every 20 emits).
            interval = float(spec.get("interval", 0))
            pad = "x" * int(spec.get("pad", 0))
            for i in range(int(spec["count"])):
                sel.emit(spec["event"], {"seq": i, "t": time.time(), "pad": pad})
                if interval:
                    gevent.sleep(interval)
                elif i % 20 == 19:
                    gevent.sleep(0)
        elif kind == "set_data":
            socket.data[spec["key"]] = spec["value"]
        elif kind == "name":
            return server_name
        else:
            raise ValueError(f"unknown op {kind!r}")
        return "done"

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
            try:
                return run_op(socket, spec)
            except socketio_sync.PublishError as exc:
                return {"publish_error": str(exc)}

    @io.on("ping-servers")
    def ping_servers(*args: Any) -> Any:
        io.emit("server-side", server_name, *args)
        return server_name

    @io.on("record")
    def record(*args: Any) -> Any:
        received.append(list(args))
        return server_name

    @io.on("slow")
    def slow(*args: Any) -> Any:
        gevent.sleep(slow_delay)
        return server_name

    chat = io.of("/chat")

    @chat.on("connection")
    def on_chat(socket: socketio_sync.Socket) -> None:
        socket.data["server"] = server_name
        socket.data["user"] = socket.handshake.auth.get("user")

        @socket.on("join")
        def join(room: str) -> None:
            socket.join(room)

    return socketio_sync.WSGIApp(io)

"""Test application for connection state recovery (``tests/integration/test_recovery.py``).

``build(name, redis_url=None, **server_options)``: a server (with the Redis adapter when
``redis_url`` is given) whose sockets of "/" handle:

* ``join(room)`` -> the socket's rooms; also sets ``socket.data["room"]``;
* ``info()`` -> ``{"id", "recovered", "rooms", "data", "server"}``;
* ``burst(room, n, event)`` -> broadcasts ``event`` with ``i`` for ``i`` in ``range(n)``
  to ``room``, then acks ``n``;
* ``burst_binary(room)``: broadcasts ``binary`` with ``b"\x00\xff"`` and
  ``{"nested": b"\x01"}`` to ``room``;
* ``kick()``: ``socket.disconnect()`` (a deliberate server-side disconnect);
* ``is_connected(sid)`` -> whether ``sid`` is a connected socket of "/" on this server.

A middleware counts the connections it let through in ``socket.data["middleware"]``
(``skip_middlewares`` leaves it out for recovered sockets).
"""
from __future__ import annotations

from typing import Any

import socketio_sync


def build(name: str = "A", redis_url: str | None = None, **options: Any) -> socketio_sync.WSGIApp:
    options.setdefault("cors_allowed_origins", "*")
    if redis_url is not None:
        options["adapter"] = socketio_sync.RedisAdapter(redis_url, requests_timeout=2.0)
    io = socketio_sync.Server(**options)
    middleware_runs = [0]

    @io.use
    def count(socket: socketio_sync.Socket, next: Any) -> None:
        middleware_runs[0] += 1
        next()

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        if not socket.recovered:
            socket.data["server"] = name
        socket.data["middleware_runs"] = middleware_runs[0]

        @socket.on("join")
        def join(room: str) -> list[str]:
            socket.join(room)
            socket.data["room"] = room
            return sorted(socket.rooms)

        @socket.on("info")
        def info() -> dict[str, Any]:
            return {"id": socket.id, "recovered": socket.recovered, "rooms": sorted(socket.rooms),
                    "data": socket.data, "server": name}

        @socket.on("burst")
        def burst(room: str, n: int, event: str) -> int:
            for i in range(n):
                io.to(room).emit(event, i)
            return n

        @socket.on("burst_binary")
        def burst_binary(room: str) -> None:
            io.to(room).emit("binary", b"\x00\xff", {"nested": b"\x01"})

        @socket.on("kick")
        def kick() -> None:
            socket.disconnect()

        @socket.on("is_connected")
        def is_connected(sid: str) -> bool:
            return sid in io.sockets.sockets

    return socketio_sync.WSGIApp(io)

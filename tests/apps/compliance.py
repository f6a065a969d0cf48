"""Servers configured like the ones the official compliance suites expect.

* ``build_eio``: the engine.io-protocol test-suite server -- a raw Engine.IO echo
  server at ``/engine.io/`` (pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6,
  CORS origin ``*``; every message is sent back as-is, text or binary).
* ``build_sio``: the socket.io-protocol test-suite server at ``/socket.io/``
  (same heartbeat, connectTimeout 1000 ms). On connection to ``/`` it emits
  ``"auth"`` with the handshake auth; ``"message"`` is echoed as ``"message-back"``;
  ``"message-with-ack"`` is acknowledged with the same arguments. Namespace
  ``/custom`` emits ``"auth"`` on connection.

Our API takes seconds where the JavaScript servers take milliseconds.
"""
from __future__ import annotations

from typing import Any

import socketio_sync


def build_eio(ping_interval: float = 0.3, ping_timeout: float = 0.2,
              max_http_buffer_size: int = 1_000_000, cors_allowed_origins: Any = "*",
              **kw: Any) -> Any:
    engine = socketio_sync.EngineServer(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_http_buffer_size=max_http_buffer_size,
        cors_allowed_origins=cors_allowed_origins,
        **kw,
    )

    @engine.on("connection")
    def on_connection(conn: Any) -> None:
        conn.on("message", lambda data: conn.send(data))

    return socketio_sync.WSGIApp(engine, path="engine.io")


def build_sio(ping_interval: float = 0.3, ping_timeout: float = 0.2, connect_timeout: float = 1.0,
              max_http_buffer_size: int = 1_000_000, cors_allowed_origins: Any = "*",
              **kw: Any) -> Any:
    io = socketio_sync.Server(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        connect_timeout=connect_timeout,
        max_http_buffer_size=max_http_buffer_size,
        cors_allowed_origins=cors_allowed_origins,
        **kw,
    )

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.emit("auth", socket.handshake.auth)

        @socket.on("message")
        def message(*args: Any) -> Any:
            socket.emit("message-back", *args)
            return socketio_sync.NO_ACK  # like the Node handler: never acknowledges

        @socket.on("message-with-ack")
        def message_with_ack(*args: Any) -> Any:
            return tuple(args)  # ack(...args)

    @io.of("/custom").on("connection")
    def on_custom_connection(socket: Any) -> None:
        socket.emit("auth", socket.handshake.auth)

    return socketio_sync.WSGIApp(io, path="socket.io")

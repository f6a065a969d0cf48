"""The app behind the round-robin tests (issue #7): many gunicorn workers, no sticky sessions.

``gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker -w 4
'tests.apps.rr_app:build(redis_url="redis://127.0.0.1:PORT/0")'``

Events: ``join(room)`` (ack: the room), ``echo(*args)`` (ack: the args), ``shout(room, seq)``
(broadcast ``shouted(sender, seq)`` to the room, then ack), ``whoami`` (ack: this worker's
pid, to see where a session lives).
"""
from __future__ import annotations

import os
from typing import Any

import socketio_sync


def build(redis_url: str, **options: Any) -> socketio_sync.WSGIApp:
    if os.environ.get("RR_LOG_LEVEL"):
        import logging

        logging.basicConfig(level=os.environ["RR_LOG_LEVEL"], format="%(process)d %(name)s %(message)s")
    options.setdefault("cors_allowed_origins", "*")
    io = socketio_sync.Server(adapter=socketio_sync.RedisAdapter(redis_url), **options)

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        @socket.on("join")
        def join(room: str) -> str:
            socket.join(room)
            return room

        @socket.on("echo")
        def echo(*args: Any) -> tuple[Any, ...]:
            return args

        @socket.on("shout")
        def shout(room: str, seq: int) -> int:
            io.to(room).emit("shouted", socket.id, seq)
            return seq

        @socket.on("whoami")
        def whoami() -> int:
            return os.getpid()

    return socketio_sync.WSGIApp(io)

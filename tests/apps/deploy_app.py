"""The app of tests/integration/test_deploy.py: gunicorn, nginx and shutdown.

``build(name="a")`` (gunicorn: ``tests.apps.deploy_app:build(name='a')``) tells every
client which instance it reached, so a test knows which one to stop and where a client
went after reconnecting. Run as a script, it serves through ``socketio_sync.run()``:
``python -m tests.apps.deploy_app NAME PORT`` (logs at INFO on stderr).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import socketio_sync

FORWARDED = ("host", "x-forwarded-for", "x-forwarded-proto", "x-real-ip", "connection", "upgrade")


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = b"hello from the WSGI app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def build(name: str = "", **options: Any) -> socketio_sync.WSGIApp:
    options.setdefault("cors_allowed_origins", "*")
    io = socketio_sync.Server(**options)
    disconnects: list[tuple[str, str]] = []

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.emit("welcome", {"server": name, "pid": os.getpid(), "id": socket.id})

        @socket.on("whoami")
        def whoami() -> Any:
            return {"server": name, "pid": os.getpid()}

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("chat message")
        def chat(msg: Any) -> None:
            io.emit("chat message", {"server": name, "msg": msg})

        @socket.on("handshake")
        def handshake() -> Any:
            headers = socket.handshake.headers
            return {"headers": {k: headers.get(k) for k in FORWARDED},
                    "address": socket.handshake.address}

        @socket.on("disconnects")
        def reasons() -> Any:
            return [list(d) for d in disconnects]

        @socket.on("disconnect")
        def bye(reason: str) -> None:
            disconnects.append((socket.id, reason))

    return socketio_sync.WSGIApp(io, hello)


if __name__ == "__main__":
    import logging
    import sys

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    socketio_sync.run(build(sys.argv[1]), "127.0.0.1", int(sys.argv[2]))

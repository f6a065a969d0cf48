"""A Flask app with socketio_sync: a login view sets the cookie session, Socket.IO
handlers read it, and a view emits to a room."""
from __future__ import annotations

from typing import Any

import flask

import socketio_sync
from socketio_sync.integrations.flask import SocketIO


def build(**options: Any) -> Any:
    app = flask.Flask("flask_test_app")
    app.secret_key = "test secret"
    socketio = SocketIO(app, cors_allowed_origins="*", **options)
    io = socketio.io

    @app.get("/login")
    def login() -> str:
        flask.session["user"] = flask.request.args["user"]
        return "ok"

    @app.get("/notify/<room>")
    def notify(room: str) -> str:
        io.to(room).emit("notice", {"room": room, "by": flask.session.get("user")})
        return "sent"

    @app.get("/hello")
    def hello() -> str:
        return "hello from flask"

    @io.use
    def only_logged_in(socket: socketio_sync.Socket, next: Any) -> None:
        if "user" not in flask.session:
            next(socketio_sync.ConnectionRefused("login first"))
        else:
            next()

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.data["user"] = flask.session["user"]

        @socket.on("whoami")
        def whoami() -> Any:
            flask.g.calls = getattr(flask.g, "calls", 0) + 1
            return {
                "user": flask.session.get("user"),
                "path": flask.request.path,
                "app": flask.current_app.name,
                "url": flask.url_for("hello"),
                "g_calls": flask.g.calls,
            }

        @socket.on("join")
        def join(room: str) -> str:
            socket.join(room)
            return room

    return app

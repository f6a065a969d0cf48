"""A Flask app with socketio_sync: a login view sets the cookie session, Socket.IO
handlers read it, and a view emits to a room."""
from __future__ import annotations

from typing import Any

import flask
import flask_login

import socketio_sync
from socketio_sync.integrations.flask import SocketIO


class User(flask_login.UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def build(**options: Any) -> Any:
    app = flask.Flask("flask_test_app")
    app.secret_key = "test secret"
    socketio = SocketIO(app, cors_allowed_origins="*", **options)
    io = socketio.io
    login_manager = flask_login.LoginManager(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id != "banned" else None

    @app.get("/flask-login")
    def flask_login_view() -> str:
        flask_login.login_user(User(flask.request.args["user"]))
        return "ok"

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
        if "user" not in flask.session and not flask_login.current_user.is_authenticated:
            next(socketio_sync.ConnectionRefused("login first"))
        else:
            next()

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.data["user"] = flask.session.get("user")

        @socket.on("current_user")
        def current_user() -> Any:
            user = flask_login.current_user
            return {"authenticated": user.is_authenticated, "id": getattr(user, "id", None)}

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

        @socket.on("set_session")
        def set_session(key: str, value: Any) -> Any:
            flask.session[key] = value      # allowed, but not saved: no response carries it
            return flask.session.get(key)

        @socket.on("get_session")
        def get_session(key: str) -> Any:
            return flask.session.get(key)

        @socket.on("join")
        def join(room: str) -> str:
            socket.join(room)
            return room

    return app

"""A Flask app for ``flask run`` (werkzeug's threaded development server, no gevent).

Handlers that show where they run and that block: ``wait_for_release`` waits on a
``threading.Event`` that another client's ``release`` sets (both block, so they can only
both succeed when handlers run concurrently in real threads), ``ask_client`` calls the
client (``socket.call``) from the handler thread, and a view emits to a room from a
werkzeug request thread.

Run: ``flask --app 'tests.apps.flask_threads_app:build()' run --port N``.
"""
from __future__ import annotations

import threading
from typing import Any

import flask
from gevent import monkey

import socketio_sync
from socketio_sync.integrations.flask import SocketIO

#: How long a blocking handler waits for its partner (an upper bound, not a timing).
WAIT = 5.0


def _where() -> dict[str, Any]:
    return {
        "thread": threading.current_thread().name,
        "main": threading.current_thread() is threading.main_thread(),
        "patched": monkey.is_module_patched("threading") or monkey.is_module_patched("socket"),
    }


def build(**options: Any) -> Any:
    app = flask.Flask("flask_threads_app")
    app.secret_key = "test secret"
    socketio = SocketIO(app, cors_allowed_origins="*", **options)
    io = socketio.io
    # key -> (handler A is waiting, handler B released it)
    gates: dict[str, tuple[threading.Event, threading.Event]] = {}
    gates_lock = threading.Lock()

    def gate(key: str) -> tuple[threading.Event, threading.Event]:
        with gates_lock:
            return gates.setdefault(key, (threading.Event(), threading.Event()))

    @app.get("/login")
    def login() -> str:
        flask.session["user"] = flask.request.args["user"]
        return "ok"

    @app.get("/notify/<room>")
    def notify(room: str) -> Any:
        # A werkzeug request thread: the emit is marshalled into the server's hub.
        io.to(room).emit("notice", {"room": room, "by": flask.session.get("user"), **_where()})
        return {"sent": True, **_where()}

    @app.get("/hello")
    def hello() -> str:
        return "hello from flask"

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        @socket.on("whoami")
        def whoami() -> Any:
            return {"user": flask.session.get("user"), "path": flask.request.path, **_where()}

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return list(args)

        @socket.on("join")
        def join(room: str) -> str:
            socket.join(room)
            return room

        @socket.on("wait_for_release")
        def wait_for_release(key: str) -> Any:
            waiting, released = gate(key)
            waiting.set()
            return {"released": released.wait(WAIT), **_where()}

        @socket.on("release")
        def release(key: str) -> Any:
            waiting, released = gate(key)
            # Only succeeds while wait_for_release is blocked in another thread.
            was_waiting = waiting.wait(WAIT)
            released.set()
            return {"was_waiting": was_waiting, **_where()}

        @socket.on("ask_client")
        def ask_client(question: str) -> Any:
            answer = socket.call("question", question, timeout=WAIT)
            return {"answer": answer, **_where()}

        @socket.on("broadcast")
        def broadcast(event: str, payload: Any) -> bool:
            io.emit(event, payload)
            return True

    return app

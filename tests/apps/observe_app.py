"""The observability test app: the Admin UI bridge, the Admin UI's static page at
``/admin-ui/`` and the Prometheus endpoint at ``/metrics`` on one server.

Options (``--opt`` JSON): ``auth`` (``False`` or the Admin UI's basic auth dict),
``read_only``, ``mode``, ``json_logs`` (log every ``socketio_sync`` record at DEBUG as
JSON lines on stderr).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import socketio_sync
from socketio_sync import admin
from socketio_sync.logs import JsonFormatter
from socketio_sync.metrics import Metrics

NODE_MODULES = Path(__file__).resolve().parents[1] / "js" / "node_modules"
UI_DIR = NODE_MODULES / "@socket.io" / "admin-ui" / "ui" / "dist"
ICONS_DIR = NODE_MODULES / "@mdi" / "font"


def build_flask(**options: Any) -> Any:
    """The same behind a Flask app, for ``flask run`` (thread mode)."""
    import flask

    app = flask.Flask(__name__)

    @app.route("/hello")
    def hello() -> str:
        return "hello from flask"

    app.wsgi_app = build(inner=app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


def build(auth: Any = False, read_only: bool = False, mode: str = "development",
          json_logs: bool = False, inner: Any = None, **options: Any) -> socketio_sync.WSGIApp:
    """``inner``: the WSGI app behind the UI (``/admin-ui/``) and the metrics (``/metrics``)."""
    if json_logs:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger("socketio_sync")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    options.setdefault("cors_allowed_origins", "*")
    io = socketio_sync.Server(**options)
    metrics = Metrics(io)
    admin.instrument(io, auth=auth, mode=mode, read_only=read_only, server_id="observe-test")

    def on_connection(socket: socketio_sync.Socket) -> None:
        @socket.on("enter")
        def enter(room: str) -> str:
            socket.join(room)
            return room

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("ask")
        def ask(event: str) -> Any:
            # a server-initiated ack: the client answers the server's question
            return socket.call(event, timeout=5.0)

        @socket.on("boom")
        def boom() -> None:
            raise RuntimeError("boom, on purpose")

    io.on("connection", on_connection)
    io.of("/chat").on("connection", on_connection)
    return socketio_sync.WSGIApp(io, admin.ui_app(UI_DIR, icons=ICONS_DIR, app=metrics.wsgi_app(inner)))

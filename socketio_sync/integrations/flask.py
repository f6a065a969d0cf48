"""Flask integration: the extension pattern, and handlers that run in Flask's contexts.

::

    from gevent import monkey; monkey.patch_all()
    import flask
    from socketio_sync.integrations.flask import SocketIO

    app = flask.Flask(__name__)
    app.secret_key = "..."
    socketio = SocketIO(app)              # or SocketIO() then socketio.init_app(app)
    io = socketio.io                      # the socketio_sync.Server

    @io.on("connection")
    def on_connection(socket):
        @socket.on("whoami")
        def whoami():
            return flask.session.get("user")   # the cookie session of the handshake

    @app.post("/rooms/<room>/notify")
    def notify(room):
        io.to(room).emit("notice", flask.request.get_json())   # from any view
        return "sent"

Every handler (middlewares, connection, events, disconnect, ack callbacks) runs inside an
app context and a request context built from the Socket.IO handshake request, so
``flask.request`` (its path, headers, cookies), ``flask.session``, ``flask.g``,
``current_app`` and ``url_for`` work. The session is the one the browser sent when it
connected: handlers can read it, but changes are not saved (there is no HTTP response to
carry a new cookie); change it in an ordinary view. ``flask.g`` is new for each call.

Serve with ``socketio_sync.run(app, host, port)`` or gunicorn's gevent WebSocket worker;
``flask run`` works for development, WebSocket included: see
:mod:`socketio_sync.wsgi.runtime`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..server import Server
from ..wsgi.middleware import WSGIApp

if TYPE_CHECKING:
    import flask

__all__ = ["SocketIO"]


class SocketIO:
    """Adds Socket.IO to a Flask app: ``app.wsgi_app`` is wrapped and the extension is
    kept in ``app.extensions["socketio_sync"]``.

    :param app: the Flask app (or call :meth:`init_app` later).
    :param io: an existing :class:`socketio_sync.Server`; by default one is made with
        ``server_options``.
    :param path: the mount path, ``"socket.io"``.
    """

    def __init__(self, app: flask.Flask | None = None, *, io: Server | None = None, path: str = "socket.io",
                 **server_options: Any) -> None:
        if io is not None and server_options:
            raise TypeError("pass either io= or Server options, not both")
        self.io = io if io is not None else Server(**server_options)
        self.path = path
        self.app: flask.Flask | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        if "socketio_sync" in app.extensions:
            raise RuntimeError("socketio_sync is already set up on this app")
        if self.app is not None and self.app is not app:
            raise RuntimeError("one SocketIO serves one Flask app: its handlers run in that app's context")
        self.app = app
        app.wsgi_app = WSGIApp(self.io, app.wsgi_app, path=self.path)  # type: ignore[method-assign]
        app.extensions["socketio_sync"] = self

        def handler_context(socket: Any) -> Any:
            return app.request_context(socket.client.conn.environ)

        self.io.handler_context = handler_context

"""The WSGI middleware: Socket.IO (or raw Engine.IO) at ``/<path>/``, the rest to the app."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .client_bundle import CLIENT_FILE
from .engine import UPGRADE_KEY, EngineServer
from .handler import is_websocket_request
from .runtime import (
    WEBSOCKET_TAKEN_KEY, _get_ident, bridge_request, raw_socket, runtime_for_request, upgrade_raw_socket,
)

__all__ = ["WSGIApp"]


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = b"Not Found"
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class WSGIApp:
    """Serve ``target`` (a :class:`socketio_sync.Server` or an :class:`EngineServer`) at
    ``/<path>/`` and pass every other request to ``wsgi_app``.

    Example::

        io = socketio_sync.Server()
        app = socketio_sync.WSGIApp(io, flask_app.wsgi_app)

    :param target: the Socket.IO server or a raw Engine.IO server.
    :param wsgi_app: the application for every other path (404 when ``None``).
    :param path: the mount path, ``"socket.io"`` by default.
    """

    def __init__(self, target: Any, wsgi_app: Callable[..., Any] | None = None, path: str = "socket.io") -> None:
        engine = getattr(target, "engine", target)
        if not isinstance(engine, EngineServer):
            raise TypeError("WSGIApp needs a socketio_sync.Server or a socketio_sync.EngineServer")
        self.target = target
        self.engine = engine
        self.wsgi_app = wsgi_app or _not_found
        self.path = "/" + path.strip("/")
        self._prefix = self.path + "/"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self.path or path.startswith(self._prefix):
            engine = self.engine
            bundle = engine.client_bundle
            if bundle is not None and CLIENT_FILE.fullmatch(path[len(self._prefix):]):
                return bundle(path[len(self._prefix):], environ, start_response)  # serve_client
            environ["socketio_sync.server"] = self.target
            rt = engine.runtime or runtime_for_request(engine)
            if _get_ident() != rt.ident:
                # A threaded server (flask run, Django's runserver): run it in the server's hub.
                return bridge_request(engine, rt, environ, start_response)
            if (UPGRADE_KEY not in environ and "wsgi.websocket" not in environ
                    and is_websocket_request(environ)):
                sock = raw_socket(environ)
                if sock is not None:
                    return _raw_websocket(engine, environ, start_response, sock)
            return engine.handle_request(environ, start_response)
        return self.wsgi_app(environ, start_response)


def _raw_websocket(engine: EngineServer, environ: dict[str, Any], start_response: Callable[..., Any],
                   sock: Any) -> Iterable[bytes]:
    """A WebSocket over the socket a server exposes (werkzeug's, monkey-patched by gevent)."""
    used: list[bool] = []

    def upgrade(*, max_message_size: int, max_pending: int = 16_000_000, **kwargs: Any) -> Any:
        used.append(True)
        return upgrade_raw_socket(environ, sock, max_message_size=max_message_size, max_pending=max_pending,
                                  **kwargs)

    environ[UPGRADE_KEY] = upgrade
    result = engine.handle_request(environ, start_response)
    if not used:
        return result
    environ[WEBSOCKET_TAKEN_KEY] = True
    try:
        sock.shutdown(2)  # SHUT_RDWR: the server's own response goes nowhere
    except OSError:
        pass
    start_response("101 Switching Protocols", [])
    return []

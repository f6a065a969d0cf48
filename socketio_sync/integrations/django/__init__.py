"""Django integration: wrap the WSGI application, configure in one settings dict, and use
the ORM and ``request.user`` (from the handshake's session cookie) in handlers.

``settings.py``::

    INSTALLED_APPS = [
        "socketio_sync.integrations.django",   # first: its runserver speaks WebSocket
        ...,
    ]
    SOCKETIO_SYNC = {
        "HANDLERS": ["chat.sockets"],          # modules that register handlers on io
        "PATH": "socket.io",                   # the mount path (default)
        "OPTIONS": {"ping_interval": 25},      # socketio_sync.Server options
        "REDIS_URL": None,                     # "redis://...": rooms across processes
    }

``wsgi.py``::

    from django.core.wsgi import get_wsgi_application
    from socketio_sync.integrations.django import wrap

    application = wrap(get_wsgi_application())

``chat/sockets.py``::

    from socketio_sync.integrations.django import io

    @io.on("connection")
    def on_connection(socket):
        user = socket.request.user              # django.contrib.auth's user, or AnonymousUser

        @socket.on("post")
        def post(text):
            Message.objects.create(author=user, text=text)   # the ORM, as in a view
            io.to("lobby").emit("message", {"author": user.username, "text": text})

and in any view: ``io.to(room).emit(...)``.

``socket.request`` is an ``HttpRequest`` built from the Socket.IO handshake: its
``COOKIES``, ``META``, ``session`` (read-only in practice: there is no response to carry
a new cookie) and a lazy ``user``, evaluated once per connection (a logout is seen on the
next connection). Database connections are handled like Django does around a request:
``close_old_connections()`` runs before and after every handler.

Development: ``manage.py runserver`` serves Socket.IO with WebSocket when this app is in
``INSTALLED_APPS`` before ``django.contrib.staticfiles``; without it, clients fall back to
HTTP long-polling. Production: ``gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker
mysite.wsgi:application`` (with ``REDIS_URL`` for several workers).
"""
from __future__ import annotations

import importlib
import io as _io
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ...server import Server
from ...wsgi.middleware import WSGIApp

__all__ = ["wrap", "get_server", "build_request", "settings_dict", "io"]


_KEYS = {"HANDLERS", "PATH", "OPTIONS", "REDIS_URL"}
_lock = threading.Lock()
_server: Server | None = None
_handlers_loaded = False


def settings_dict() -> dict[str, Any]:
    """``settings.SOCKETIO_SYNC``, checked."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    cfg = getattr(settings, "SOCKETIO_SYNC", {}) or {}
    if not isinstance(cfg, dict):
        raise ImproperlyConfigured("SOCKETIO_SYNC must be a dict")
    unknown = set(cfg) - _KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"unknown SOCKETIO_SYNC key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    handlers = cfg.get("HANDLERS", [])
    if isinstance(handlers, str):
        handlers = [handlers]
    if not isinstance(cfg.get("OPTIONS", {}), dict):
        raise ImproperlyConfigured("SOCKETIO_SYNC['OPTIONS'] must be a dict of socketio_sync.Server options")
    return {"HANDLERS": list(handlers), "PATH": cfg.get("PATH", "socket.io"),
            "OPTIONS": dict(cfg.get("OPTIONS", {})), "REDIS_URL": cfg.get("REDIS_URL")}


def get_server() -> Server:
    """The project's :class:`socketio_sync.Server`, made from the settings on first use."""
    global _server
    if _server is not None:
        return _server
    with _lock:
        if _server is None:
            cfg = settings_dict()
            options = cfg["OPTIONS"]
            if cfg["REDIS_URL"]:
                from ...adapters.redis import RedisAdapter

                options.setdefault("adapter", RedisAdapter(cfg["REDIS_URL"]))
            try:
                server = Server(**options)
            except TypeError as exc:
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured(f"SOCKETIO_SYNC['OPTIONS']: {exc}") from exc
            server.handler_context = _handler_context
            _server = server
    return _server


def load_handlers() -> None:
    """Import the ``HANDLERS`` modules (once)."""
    global _handlers_loaded
    if _handlers_loaded:
        return
    _handlers_loaded = True
    for name in settings_dict()["HANDLERS"]:
        importlib.import_module(name)


def wrap(django_app: Any, *, server: Server | None = None, path: str | None = None) -> WSGIApp:
    """Serve Socket.IO at ``/socket.io/`` and everything else with ``django_app``."""
    server = server or get_server()
    if server.handler_context is None:
        server.handler_context = _handler_context
    load_handlers()
    return WSGIApp(server, django_app, path=path or settings_dict()["PATH"])


def build_request(environ: dict[str, Any]) -> Any:
    """A Django ``HttpRequest`` for a Socket.IO handshake environ, with ``session`` and a
    lazy ``user`` when those apps are installed."""
    from django.apps import apps
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIRequest
    from django.utils.functional import SimpleLazyObject

    env = {key: value for key, value in environ.items()
           if not key.startswith(("socketio_sync.", "werkzeug.", "wsgi.websocket"))}
    env["wsgi.input"] = _io.BytesIO(b"")
    env["CONTENT_LENGTH"] = "0"
    request = WSGIRequest(env)
    if apps.is_installed("django.contrib.sessions"):
        engine = importlib.import_module(settings.SESSION_ENGINE)
        request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
        if apps.is_installed("django.contrib.auth"):
            from django.contrib.auth import get_user

            request.user = SimpleLazyObject(lambda: get_user(request))
    return request


@contextmanager
def _handler_context(socket: Any) -> Iterator[None]:
    from django.db import close_old_connections

    if getattr(socket, "request", None) is None:
        socket.request = build_request(socket.client.conn.environ)
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


def __getattr__(name: str) -> Any:
    # ``from socketio_sync.integrations.django import io``: the server, made on first use.
    if name == "io":
        return get_server()
    raise AttributeError(name)

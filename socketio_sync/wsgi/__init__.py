"""The gevent/WSGI shell: the only package of socketio_sync that does I/O."""
from __future__ import annotations

from .engine import EngineConnection, EngineServer
from .handler import WebSocketHandler
from .middleware import WSGIApp
from .serving import make_server, run

__all__ = ["EngineConnection", "EngineServer", "WebSocketHandler", "WSGIApp", "make_server", "run"]

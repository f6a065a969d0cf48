"""socketio_sync: a Socket.IO server (Engine.IO v4 + Socket.IO v5) for WSGI apps on gevent."""
from __future__ import annotations

from . import _debug
from .adapters import Adapter, BroadcastOptions, InMemoryAdapter
from .adapters.redis import Emitter, RedisAdapter
from .broadcast import BroadcastOperator, RemoteSocket
from .exceptions import (
    AckTimeout, ClusterError, ConnectionRefused, LocalProtocolError, NotConnectedError,
    PayloadTooLargeError, ProtocolError, PublishError, RemoteProtocolError, RequestTimeout,
    SocketIOSyncError,
)
from .namespace import ClassNamespace, Namespace, ParentNamespace
from .server import Server
from .socket import NO_ACK, Handshake, Socket, SocketEmitter
from .wsgi.engine import EngineConnection, EngineServer
from .wsgi.middleware import WSGIApp
from .wsgi.serving import make_server, run

__version__ = "0.1.0"

__all__ = [
    "Adapter", "BroadcastOptions", "InMemoryAdapter", "Emitter", "RedisAdapter", "RemoteSocket",
    "ClusterError", "PublishError", "RequestTimeout", "BroadcastOperator", "AckTimeout", "ConnectionRefused",
    "LocalProtocolError", "NotConnectedError", "PayloadTooLargeError", "ProtocolError",
    "RemoteProtocolError", "SocketIOSyncError", "Namespace", "ParentNamespace",
    "ClassNamespace", "Server", "NO_ACK", "Handshake",
    "Socket", "SocketEmitter", "EngineConnection", "EngineServer", "WSGIApp", "make_server", "run", "__version__",
]

_debug.configure_from_environment()

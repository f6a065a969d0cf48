"""The one exception tree of socketio_sync.

``SocketIOSyncError`` is the root. Protocol errors say who is at fault:
``RemoteProtocolError`` (the peer sent something the protocol forbids) or
``LocalProtocolError`` (this program misused the API).
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "SocketIOSyncError",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "PayloadTooLargeError",
    "ConnectionRefused",
    "AckTimeout",
    "NotConnectedError",
    "ClusterError",
    "RequestTimeout",
    "PublishError",
]


class SocketIOSyncError(Exception):
    """Root of every exception raised by socketio_sync."""


class ProtocolError(SocketIOSyncError):
    """A packet or request breaks the Engine.IO / Socket.IO protocol."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow.

    The session that received it is closed; other sessions are not affected.
    """


class PayloadTooLargeError(RemoteProtocolError):
    """A body, frame or packet is larger than ``max_http_buffer_size``."""


class LocalProtocolError(ProtocolError):
    """This program used the API in a way the protocol does not allow
    (for example emitting a reserved event name)."""


class ConnectionRefused(SocketIOSyncError):
    """Raise (or pass to ``next``) in a middleware or connection handler to refuse a client.

    The client receives a CONNECT_ERROR packet ``{"message": message, "data": data}``
    and sees it as a ``connect_error`` event.
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"message": self.message}
        if self.data is not None:
            payload["data"] = self.data
        return payload


class AckTimeout(SocketIOSyncError):
    """The client did not acknowledge an event within the timeout."""


class NotConnectedError(SocketIOSyncError):
    """The socket is disconnected; nothing can be sent to it."""


class ClusterError(SocketIOSyncError):
    """An operation that needs the other servers of a cluster failed."""


class RequestTimeout(ClusterError):
    """Some servers of the cluster did not answer a request (``fetch_sockets``,
    ``server_side_emit`` with acks) in time. ``responses`` holds what did arrive."""

    def __init__(self, message: str, responses: list[object] | None = None) -> None:
        super().__init__(message)
        self.responses = responses or []


class PublishError(ClusterError):
    """A message could not be published to the cluster's bus (Redis is unreachable)."""

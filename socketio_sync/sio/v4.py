"""Socket.IO protocol v4 (the Socket.IO v2 clients, over Engine.IO v3), pure: no I/O.

The packet encoding is the one of v5 (:mod:`socketio_sync.sio.packet`); what differs is
how namespaces are joined:

* The server connects the client to ``/`` as soon as the Engine.IO session opens, without
  a CONNECT from the client; the client sends CONNECT only for other namespaces.
* A CONNECT carries no auth payload. The client appends its ``query`` option to the
  namespace instead: ``0/chat?token=abc,``; that query serves as the auth payload, and the
  Engine.IO request's query (its application part) for the implicit ``/``.
* The server's CONNECT answer has no payload (v5 sends ``{"sid": ...}``).
* A CONNECT_ERROR (v4 calls it ERROR) carries a plain value: the refusal's ``data`` when it
  has some, else its message string (``4"Invalid namespace"``).

.. versionadded:: 0.2
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from ..exceptions import RemoteProtocolError
from .packet import Packet, PacketType

__all__ = [
    "PROTOCOL",
    "ENGINE_QUERY_KEYS",
    "auth_from_query",
    "split_namespace",
    "connect_reply",
    "connect_error",
]

#: The Socket.IO protocol version spoken by Socket.IO v2 clients.
PROTOCOL = 4


#: Query parameters of the Engine.IO requests themselves (not the application's).
ENGINE_QUERY_KEYS = frozenset({"EIO", "transport", "t", "sid", "b64", "j"})


def auth_from_query(query: dict[str, str]) -> dict[str, str]:
    """The auth payload of the implicit connection to ``/``: the client's ``query``
    option, which a v2 client sends on the Engine.IO requests (this server's choice: Node
    gives an empty one; v5 clients send ``auth`` in their CONNECT instead)."""
    return {key: value for key, value in query.items() if key not in ENGINE_QUERY_KEYS}


def split_namespace(nsp: str) -> tuple[str, dict[str, str]]:
    """Split the namespace of a v4 CONNECT into its name and query:
    ``"/chat?token=abc"`` -> ``("/chat", {"token": "abc"})``.

    :raises RemoteProtocolError: when the name is not a namespace (``"/..."``).
    """
    name, sep, query = nsp.partition("?")
    if not name.startswith("/"):
        raise RemoteProtocolError(f"invalid namespace {name[:100]!r}")
    if not sep:
        return name, {}
    return name, dict(parse_qsl(query, keep_blank_values=True))


def connect_reply(nsp: str) -> Packet:
    """The server's answer to a successful connection to ``nsp`` (no payload)."""
    return Packet(PacketType.CONNECT, nsp)


def connect_error(nsp: str, message: str, data: Any = None) -> Packet:
    """The refusal of a connection to ``nsp``: ``data`` when given, else ``message``
    (what a v2 client's ``socket.on("error")`` receives)."""
    return Packet(PacketType.CONNECT_ERROR, nsp, data if data is not None else message)

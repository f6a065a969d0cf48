"""Named hook points for observers: what the Admin UI bridge, the metrics and your own
instrumentation see of a server.

Register an object with :meth:`Hooks.add` (``io.hooks.add(observer)``); each method it
has whose name is a hook point below is called at that point. Write only the methods you
need. Hooks run in the server's hub, inline with the protocol work (a WebSocket reader,
an adapter operation): they must be quick and must not block. An exception from a hook is
logged (``socketio_sync.server``) and ignored.

Engine.IO (the ``conn`` is an :class:`~socketio_sync.EngineConnection`):

``engine_open(conn)``
    a session opened (``conn.transport`` is ``"polling"`` or ``"websocket"``).
``engine_upgrade(conn, transport)``
    a polling session moved to ``transport``.
``engine_close(conn, reason)``
    a session closed (``"transport close"``, ``"ping timeout"``, ...).
``message_in(conn, data)``
    a message (``str`` or ``bytes``) arrived.
``message_out(conn, out)``
    messages are sent (an ``Outgoing``: ``out.items``; ``out.byte_length()``).
``error(kind, detail, conn)``
    something went wrong: ``kind`` is ``"parse_error"`` (an invalid Engine.IO or
    Socket.IO packet), ``"request_refused"`` (an HTTP error answer, ``detail`` is the
    Engine.IO error message; ``conn`` is ``None``), ``"connection_refused"`` (a namespace
    CONNECT refused: unknown namespace, middleware or connection handler), or
    ``"handler_exception"`` (application code raised).

Socket.IO:

``socket_connect(socket)`` / ``socket_disconnect(socket, reason)``
    a socket joined or left its namespace.
``room_join(nsp, room, sid)`` / ``room_leave(nsp, room, sid)``
    a socket of namespace ``nsp`` (a :class:`~socketio_sync.Namespace`) entered or left
    ``room`` (only when its membership changed).
``event_in(socket, event, args)``
    an event from a client, before its handlers run.
``event_out(socket, event, args)``
    ``socket.emit`` sent an event to one client.
``broadcast(nsp, packet, recipients)``
    a broadcast went to ``recipients`` local sockets.
``ack(socket, seconds)``
    a client answered a ``socket.emit(..., callback=)`` / ``socket.call``: the round trip.

.. versionadded:: 0.2
"""
from __future__ import annotations

import logging
from typing import Any, Callable

__all__ = ["Hooks", "HOOK_NAMES"]

log = logging.getLogger("socketio_sync.server")

HOOK_NAMES = (
    "engine_open", "engine_upgrade", "engine_close", "message_in", "message_out", "error",
    "socket_connect", "socket_disconnect", "room_join", "room_leave", "event_in", "event_out",
    "broadcast", "ack",
)


class Hooks:
    """Observers of one server, kept as one tuple of callables per hook point, so that a
    hook point without observers costs one attribute read and an empty-tuple test."""

    engine_open: tuple[Callable[..., Any], ...] = ()
    engine_upgrade: tuple[Callable[..., Any], ...] = ()
    engine_close: tuple[Callable[..., Any], ...] = ()
    message_in: tuple[Callable[..., Any], ...] = ()
    message_out: tuple[Callable[..., Any], ...] = ()
    error: tuple[Callable[..., Any], ...] = ()
    socket_connect: tuple[Callable[..., Any], ...] = ()
    socket_disconnect: tuple[Callable[..., Any], ...] = ()
    room_join: tuple[Callable[..., Any], ...] = ()
    room_leave: tuple[Callable[..., Any], ...] = ()
    event_in: tuple[Callable[..., Any], ...] = ()
    event_out: tuple[Callable[..., Any], ...] = ()
    broadcast: tuple[Callable[..., Any], ...] = ()
    ack: tuple[Callable[..., Any], ...] = ()

    def __init__(self) -> None:
        self._observers: list[Any] = []

    def add(self, observer: Any) -> Any:
        """Call ``observer``'s hook methods from now on; returns it.

        :raises ValueError: when it has none of the hook methods (a typo, most likely).
        """
        found = [name for name in HOOK_NAMES if callable(getattr(observer, name, None))]
        if not found:
            raise ValueError(f"{observer!r} has none of the hook methods {', '.join(HOOK_NAMES)}")
        self._observers.append(observer)
        for name in found:
            setattr(self, name, getattr(self, name) + (getattr(observer, name),))
        return observer

    def remove(self, observer: Any) -> None:
        """Stop calling ``observer``."""
        self._observers.remove(observer)
        for name in HOOK_NAMES:
            fns = tuple(getattr(o, name) for o in self._observers if callable(getattr(o, name, None)))
            setattr(self, name, fns)

    @property
    def observers(self) -> list[Any]:
        return list(self._observers)

    @staticmethod
    def call(fns: tuple[Callable[..., Any], ...], *args: Any) -> None:
        """Call each of ``fns``; a failing one is logged, the others still run."""
        for fn in fns:
            try:
                fn(*args)
            except Exception:
                log.exception("error in hook %r", fn)

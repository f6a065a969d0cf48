"""Shutting a process down without stranding its clients.

Every :class:`~socketio_sync.wsgi.engine.EngineServer` registers itself here when it is
created (:func:`register`), so whatever stops the process (our gunicorn worker on
SIGTERM, :func:`socketio_sync.run` on SIGTERM/SIGINT) can end every session it serves
with :func:`shutdown_all`, instead of waiting for long-lived WebSockets and long-polls
until a graceful timeout kills them.

The sessions end the way a server that goes away ends them, so that clients reconnect
(to the next server behind the load balancer, or to this one once restarted):

* no Engine.IO CLOSE packet: python-engineio's client treats one as a deliberate
  disconnection (``Client._receive_packet`` calls ``disconnect(abort=True)``) and
  python-socketio then does not reconnect. Nor a Socket.IO DISCONNECT packet, after
  which socket.io-client does not reconnect either (``"io server disconnect"``);
* a WebSocket gets a close frame, 1001 "going away": socket.io-client and python-engineio
  see the transport close and reconnect;
* a pending long-poll GET is released (with what was still queued, or a NOOP); the
  client's next request finds no session (HTTP 400, or a refused connection once the
  listener is closed) and both clients reconnect after that transport error.

The application's ``disconnect`` handlers get the reason ``"server shutting down"``.
"""
from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from ..eio import CloseReason

if TYPE_CHECKING:
    from .engine import EngineConnection, EngineServer

__all__ = ["register", "engines", "draining", "shutdown_all", "drop_session"]

log = logging.getLogger("socketio_sync.server")

_engines: "weakref.WeakSet[EngineServer]" = weakref.WeakSet()
_draining = False

#: The WebSocket close code for a server going down (RFC 6455, 7.4.1).
GOING_AWAY = 1001


def register(engine: EngineServer) -> None:
    """Make ``engine``'s sessions reachable by :func:`shutdown_all` (called by
    ``EngineServer.__init__``; the registry holds weak references)."""
    _engines.add(engine)


def engines() -> list[EngineServer]:
    """The live Engine.IO servers of this process."""
    return list(_engines)


def draining() -> bool:
    """True once :func:`shutdown_all` has run: the process is on its way out."""
    return _draining


def shutdown_all(reason: str = CloseReason.SERVER_SHUTTING_DOWN, *, logger: Any = None) -> int:
    """End every open session of every Engine.IO server in this process so that its
    client reconnects (see the module documentation); return how many were closed.

    Call it from a greenlet of the hub that serves the sessions, not from a raw signal
    handler. It blocks at most 2 s, and only with session forwarding (the answers to
    polls other processes forwarded here). Sessions opened later (a request that was already in
    flight) are not affected: call it again.

    :param logger: where to log ``closing N sessions for shutdown`` at INFO (anything
        with an ``info(msg, *args)`` method, gunicorn's logger for instance); the
        ``socketio_sync.server`` logger by default.
    """
    global _draining
    _draining = True
    count = sum(len([c for c in engine.sessions.values() if not c.closed]) for engine in engines())
    if count:
        (logger or log).info("closing %d sessions for shutdown", count)
    for engine in engines():
        forwarder = engine.forwarder
        if forwarder is not None:
            # Polls forwarded through here for other processes' sessions: answered now,
            # so their clients simply poll again (through another worker).
            released = forwarder.release_all()
            if released:
                (logger or log).info("released %d polls forwarded for other workers", released)
    dropped = sum(engine.drop_all(reason) for engine in engines())
    for engine in engines():
        if engine.forwarder is not None:
            # Polls that other workers forwarded here for the sessions just dropped:
            # their answers go out before this process may exit.
            engine.forwarder.finish()
    return dropped


def drop_session(conn: EngineConnection, reason: str = CloseReason.SERVER_SHUTTING_DOWN) -> None:
    """End one session at the transport level, without a CLOSE packet (see above)."""
    conn.drop(reason, GOING_AWAY)

"""A gunicorn worker: gevent, WebSocket upgrades validated before ``101``, gunicorn's
own handler features (access log, ``gunicorn.sock``, ``RAW_URI``) kept, and a graceful
shutdown that hands the clients over instead of holding them.

Use::

    gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker -w 1 app:app

On SIGTERM (gunicorn's graceful stop, what ``systemctl stop``, ``docker stop`` and
Kubernetes send) the worker stops accepting connections, then ends every Engine.IO
session it serves the way a server going away does (WebSocket close frame 1001; a
pending long-poll released, the session forgotten; no CLOSE packet), so socket.io-client
and python-socketio clients reconnect at once, to another instance behind the load
balancer. The worker then exits as soon as its last request is done, well before
``graceful_timeout``. On SIGINT/SIGQUIT (quick shutdown) the sessions are closed the same
way just before the worker exits.

gevent-websocket's ``geventwebsocket.gunicorn.workers.GeventWebSocketWorker`` also
works (socketio_sync accepts its ``environ["wsgi.websocket"]``), but it answers 101
before the application runs, so a bad session id can only be refused by closing the
WebSocket; it drops gunicorn's access log; and on SIGTERM its open WebSockets and
long-polls keep the worker alive until ``graceful_timeout`` kills it.
"""
from __future__ import annotations

import socket as _socket
import weakref
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer

from .wsgi import lifecycle
from .wsgi.handler import WebSocketHandlerMixin

__all__ = ["GeventWebSocketWorker", "GunicornWebSocketHandler"]

#: The listening servers of this worker process, closed first on shutdown.
_servers: "weakref.WeakSet[PyWSGIServer]" = weakref.WeakSet()
#: Keep-alive connections waiting for their next request (closed on shutdown).
_idle: "weakref.WeakSet[GunicornWebSocketHandler]" = weakref.WeakSet()

#: How often sessions opened by requests that were in flight at shutdown are closed.
_STRAGGLER_INTERVAL = 0.25


class GunicornWebSocketHandler(WebSocketHandlerMixin, PyWSGIHandler):
    """gunicorn's ``PyWSGIHandler`` plus socketio_sync's WebSocket upgrade.

    While the process shuts down it answers with ``Connection: close`` and drops idle
    keep-alive connections, so that clients open their next connection elsewhere.
    """

    _answered = False

    def read_requestline(self) -> str:
        if self._answered and lifecycle.draining():
            return ""  # no further request on this connection
        _idle.add(self)
        try:
            return super().read_requestline()  # type: ignore[no-any-return]
        finally:
            _idle.discard(self)

    def start_response(self, status: Any, headers: Any, exc_info: Any = None) -> Any:
        self._answered = True
        if lifecycle.draining() and not str(status).startswith("101"):
            headers = [(k, v) for k, v in headers if k.lower() != "connection"]
            headers.append(("Connection", "close"))
        return super().start_response(status, headers, exc_info)


class _Server(PyWSGIServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _servers.add(self)

    def close(self) -> None:
        if not self.closed:  # closed on shutdown by the worker, then by gunicorn's run loop
            super().close()


class GeventWebSocketWorker(GeventPyWSGIWorker):
    """gunicorn's gevent pywsgi worker with :class:`GunicornWebSocketHandler`, and
    sessions closed for reconnection on shutdown."""

    wsgi_handler = GunicornWebSocketHandler
    server_class = _Server

    _shutting_down = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: gunicorn's graceful stop (``alive = False``), and the sessions closed
        from a greenlet (not inside the signal handler)."""
        super().handle_exit(sig, frame)
        gevent.spawn(self._graceful_shutdown)

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGINT/SIGQUIT: close the sessions, then gunicorn's quick exit."""
        gevent.spawn(self._close_sessions)
        super().handle_quit(sig, frame)

    def _graceful_shutdown(self) -> None:
        if self._shutting_down:
            return
        self._close_sessions()
        # Requests that were already being handled may still open sessions.
        while True:
            gevent.sleep(_STRAGGLER_INTERVAL)
            lifecycle.shutdown_all(logger=self.log)

    def _close_sessions(self) -> None:
        if self._shutting_down:
            return
        self._shutting_down = True
        try:
            # Stop accepting first, so that reconnecting clients go elsewhere
            # (gunicorn's run loop does it too, up to a second later).
            for server in list(_servers):
                if not server.closed:
                    server.close()
            count = lifecycle.shutdown_all(logger=self.log)
            for handler in list(_idle):
                sock = getattr(handler, "socket", None)
                if sock is not None:
                    try:
                        sock.shutdown(_socket.SHUT_RD)
                    except OSError:
                        pass
            if not count:
                self.log.info("no Socket.IO session to close for shutdown")
        except Exception:
            self.log.exception("error while closing sessions for shutdown")

"""Standalone serving on ``gevent.pywsgi`` with WebSocket support."""
from __future__ import annotations

import logging
from typing import Any

from gevent import pywsgi

from . import lifecycle
from .handler import WebSocketHandler

__all__ = ["make_server", "run"]

log = logging.getLogger("socketio_sync.server")


def make_server(app: Any, host: str = "127.0.0.1", port: int = 5000, *,
                access_log: Any = None, backlog: int = 1024, **ssl_args: Any) -> pywsgi.WSGIServer:
    """A ``gevent.pywsgi.WSGIServer`` for ``app`` whose handler supports WebSocket.

    :param access_log: a ``logging.Logger`` or file for the access log; by default the
        ``socketio_sync.access`` logger (gevent writes it at INFO).
    :param backlog: the listen queue length (gevent's default is 128).
    :param ssl_args: ``keyfile``, ``certfile`` ... passed to ``WSGIServer``.
    """
    if access_log is None:
        access_log = logging.getLogger("socketio_sync.access")
    # gevent's default backlog of 128 overflows when a thousand clients reconnect at once
    # (a restart); the kernel caps it at net.core.somaxconn anyway.
    return pywsgi.WSGIServer(
        (host, port), app, handler_class=WebSocketHandler, backlog=backlog,
        log=access_log, error_log=logging.getLogger("socketio_sync.server"), **ssl_args,
    )


def run(app: Any, host: str = "127.0.0.1", port: int = 5000, *, stop_timeout: float = 1.0,
        **kwargs: Any) -> None:
    """Serve ``app`` until SIGINT (Ctrl+C) or SIGTERM, then stop cleanly.

    Stopping closes the listening socket, then ends every Engine.IO session of the
    process so that its clients reconnect (to another instance, or to this one once
    restarted; see :mod:`socketio_sync.wsgi.lifecycle`), and gives the requests still
    running ``stop_timeout`` seconds.

    :param stop_timeout: seconds given to open requests when stopping.
    """
    import signal

    import gevent
    from gevent.event import Event

    server = make_server(app, host, port, **kwargs)
    server.start()
    log.info("serving on http://%s:%d", host, server.server_port)

    stopping = Event()

    def stop() -> None:
        stopping.set()

    handlers = [gevent.signal_handler(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)]
    try:
        try:
            gevent.wait([stopping, server._stop_event], count=1)
        except KeyboardInterrupt:
            pass
        log.info("stopping the server")
        server.close()  # no new connections: reconnecting clients go elsewhere
        lifecycle.shutdown_all()
        server.stop(stop_timeout)
    finally:
        for handler in handlers:
            handler.cancel()

"""Standalone serving on ``gevent.pywsgi`` with WebSocket support."""
from __future__ import annotations

import logging
from typing import Any

from gevent import pywsgi

from .handler import WebSocketHandler

__all__ = ["make_server", "run"]

log = logging.getLogger("socketio_sync.server")


def make_server(app: Any, host: str = "127.0.0.1", port: int = 5000, *,
                access_log: Any = None, **ssl_args: Any) -> pywsgi.WSGIServer:
    """A ``gevent.pywsgi.WSGIServer`` for ``app`` whose handler supports WebSocket.

    :param access_log: a ``logging.Logger`` or file for the access log; by default the
        ``socketio_sync.access`` logger (gevent writes it at INFO).
    :param ssl_args: ``keyfile``, ``certfile`` ... passed to ``WSGIServer``.
    """
    if access_log is None:
        access_log = logging.getLogger("socketio_sync.access")
    return pywsgi.WSGIServer(
        (host, port), app, handler_class=WebSocketHandler,
        log=access_log, error_log=logging.getLogger("socketio_sync.server"), **ssl_args,
    )


def run(app: Any, host: str = "127.0.0.1", port: int = 5000, *, stop_timeout: float = 1.0,
        **kwargs: Any) -> None:
    """Serve ``app`` until SIGINT (Ctrl+C) or SIGTERM, then stop cleanly.

    :param stop_timeout: seconds given to open requests when stopping.
    """
    import signal

    import gevent

    server = make_server(app, host, port, **kwargs)
    server.start()
    log.info("serving on http://%s:%d", host, server.server_port)

    def stop() -> None:
        log.info("stopping the server")
        gevent.spawn(server.stop, stop_timeout)

    handlers = [gevent.signal_handler(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)]
    try:
        server._stop_event.wait()
    except KeyboardInterrupt:
        server.stop(stop_timeout)
    finally:
        for handler in handlers:
            handler.cancel()

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
        ``socketio_sync.access`` logger (at DEBUG).
    :param ssl_args: ``keyfile``, ``certfile`` ... passed to ``WSGIServer``.
    """
    if access_log is None:
        access_log = logging.getLogger("socketio_sync.access")
    return pywsgi.WSGIServer(
        (host, port), app, handler_class=WebSocketHandler,
        log=access_log, error_log=logging.getLogger("socketio_sync.server"), **ssl_args,
    )


def run(app: Any, host: str = "127.0.0.1", port: int = 5000, **kwargs: Any) -> None:
    """Serve ``app`` until interrupted."""
    server = make_server(app, host, port, **kwargs)
    log.info("serving on http://%s:%d", host, server.server_port if port == 0 else port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(timeout=1)

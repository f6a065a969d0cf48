"""A gunicorn worker: gevent, WebSocket upgrades validated before ``101``, and gunicorn's
own handler features (access log, ``gunicorn.sock``, ``RAW_URI``) kept.

Use::

    gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker -w 1 app:app

gevent-websocket's ``geventwebsocket.gunicorn.workers.GeventWebSocketWorker`` also
works (socketio_sync accepts its ``environ["wsgi.websocket"]``), but it answers 101
before the application runs, so a bad session id can only be refused by closing the
WebSocket, and it drops gunicorn's access log.
"""
from __future__ import annotations

from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

from .wsgi.handler import WebSocketHandlerMixin

__all__ = ["GeventWebSocketWorker", "GunicornWebSocketHandler"]


class GunicornWebSocketHandler(WebSocketHandlerMixin, PyWSGIHandler):
    """gunicorn's ``PyWSGIHandler`` plus socketio_sync's WebSocket upgrade."""


class GeventWebSocketWorker(GeventPyWSGIWorker):
    """gunicorn's gevent pywsgi worker with :class:`GunicornWebSocketHandler`."""

    wsgi_handler = GunicornWebSocketHandler

"""``manage.py runserver`` with WebSocket for Socket.IO.

Django's development server (threads, no gevent) does not expose its sockets to the
application; this command is Django's own (or ``django.contrib.staticfiles``' when that
app is installed, so static files are still served) with a request handler that does,
so socketio_sync can take a WebSocket over (see :mod:`socketio_sync.wsgi.runtime`).
Everything else (autoreload, threading, options) is unchanged.
"""
from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.servers.basehttp import ServerHandler, WSGIRequestHandler, WSGIServer

from .....wsgi.runtime import WEBSOCKET_TAKEN_KEY

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import Command as BaseCommand
else:
    from django.core.management.commands.runserver import Command as BaseCommand

__all__ = ["Command", "SocketIORequestHandler", "SocketIOWSGIServer"]


class _ServerHandler(ServerHandler):
    def finish_response(self) -> None:
        if self.environ.get(WEBSOCKET_TAKEN_KEY):
            # The WebSocket is over and the socket shut down: write nothing, read no
            # further request; close() logs the request as "101".
            self.request_handler.close_connection = True
            self.close()
            return
        super().finish_response()


class SocketIORequestHandler(WSGIRequestHandler):
    """Django's request handler, plus the connection's socket in the environ."""

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ["socketio_sync.raw_socket"] = self.connection
        return environ

    def handle_one_request(self) -> None:
        # As Django's, with a handler that knows about sockets taken over for WebSocket.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ())
        handler.request_handler = self
        handler.run(self.server.get_app())


class SocketIOWSGIServer(WSGIServer):
    """Django's development WSGI server, using :class:`SocketIORequestHandler`."""

    def __init__(self, server_address: Any, handler_class: Any, *args: Any, **kwargs: Any) -> None:
        if handler_class is WSGIRequestHandler:
            handler_class = SocketIORequestHandler
        super().__init__(server_address, handler_class, *args, **kwargs)


class Command(BaseCommand):
    help = BaseCommand.help + " Socket.IO clients may use WebSocket (socketio_sync)."
    server_cls = SocketIOWSGIServer

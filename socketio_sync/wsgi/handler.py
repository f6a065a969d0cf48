"""A gevent ``pywsgi`` handler that lets the application validate a WebSocket request
*before* ``101 Switching Protocols`` goes out.

gevent-websocket's handler answers 101 before the WSGI app runs, so a bad Engine.IO
``sid``, transport or origin cannot be refused over HTTP, and a malformed
``Sec-WebSocket-Key`` becomes a 500. This handler only announces the possibility:
it puts a callable under ``environ["socketio_sync.websocket_upgrade"]``; the
application checks the request, then calls it to validate the key, send 101 and get a
WebSocket; or answers with an ordinary HTTP error.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import io
import logging
import socket as _socket
from types import MappingProxyType
from typing import Any

from gevent import pywsgi

from .engine import UPGRADE_KEY, HandshakeError
from .websocket import ServerWebSocket

__all__ = ["WebSocketHandler", "set_nodelay"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: ``wsgi.input`` of a request whose connection became a WebSocket (the body is empty).
_NO_INPUT = io.BytesIO(b"")
_NO_HEADERS = MappingProxyType({})
_client_log = logging.getLogger("socketio_sync.server")
_BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 11\r\n\r\nBad Request")


def set_nodelay(sock: Any) -> None:
    """Turn off Nagle's algorithm so small packets (acks, pings) leave at once."""
    try:
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # not TCP (a Unix socket)


def is_websocket_request(environ: dict[str, Any]) -> bool:
    return (
        environ.get("REQUEST_METHOD") == "GET"
        and "websocket" in environ.get("HTTP_UPGRADE", "").lower()
        and "upgrade" in environ.get("HTTP_CONNECTION", "").lower()
    )


def websocket_accept(environ: dict[str, Any]) -> str:
    """Validate the handshake headers and return ``Sec-WebSocket-Accept``.

    :raises HandshakeError: on a missing/invalid key or an unsupported version.
    """
    if environ.get("HTTP_TRANSFER_ENCODING") or (environ.get("CONTENT_LENGTH") or "0").strip() != "0":
        # RFC 6455 4.1: the opening handshake is a GET with no body. One with a body would
        # leave bytes of unknown extent between the handshake and the first frame.
        raise HandshakeError("a WebSocket handshake must not carry a body")
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip() != "13":
        raise HandshakeError("unsupported Sec-WebSocket-Version (13 is required)")
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise HandshakeError("Sec-WebSocket-Key is not base64") from None
    if len(raw) != 16:
        raise HandshakeError("Sec-WebSocket-Key must encode 16 bytes")
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


class WebSocketHandlerMixin:
    """The WebSocket part, to combine with any ``pywsgi.WSGIHandler`` subclass
    (gunicorn's ``PyWSGIHandler`` for instance)."""

    environ: dict[str, Any]
    socket: Any
    rfile: Any
    close_connection: bool

    def handle(self) -> None:
        set_nodelay(self.socket)
        try:
            super().handle()  # type: ignore[misc]
        except OSError as exc:
            # The client left while pywsgi wrote its error response (400, 414): nothing
            # to answer any more; pywsgi would print a traceback for each such client.
            _client_log.debug("client %s gone: %r", getattr(self, "client_address", "?"), exc)

    def _handle_client_error(self, ex: BaseException) -> tuple[str, bytes]:
        # pywsgi calls this for any exception raised while it parses the request line and
        # headers: the client's input. INFO, not the ERROR and the printed traceback
        # that pywsgi writes (a scanner would fill the error log). Besides its own
        # ValueErrors: http.client's HTTPException for over 100 header lines, and
        # pywsgi's IndexError for a version such as "HTTP/1".
        reason = getattr(ex, "formatted_message", None) or str(ex) or type(ex).__name__
        if not isinstance(ex, (ValueError, OSError, http.client.HTTPException)):
            reason = f"{type(ex).__name__}: {reason}"
            _client_log.debug("parsing a request from %s raised", getattr(self, "client_address", "?"),
                              exc_info=ex)
        _client_log.info("bad HTTP request from %s: %s", getattr(self, "client_address", "?"), reason)
        return "400", _BAD_REQUEST

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()  # type: ignore[misc]
        if is_websocket_request(environ):
            environ[UPGRADE_KEY] = self._upgrade_websocket
        return environ

    def _upgrade_websocket(self, *, max_message_size: int, max_pending: int = 16_000_000,
                           headers: list[tuple[str, str]] | None = None, deflate: Any = None) -> ServerWebSocket:
        """Validate the key, send ``101`` (with ``headers`` added: hooks, cookie,
        ``Sec-WebSocket-Extensions``) and return the WebSocket (with the permessage-deflate
        parameters ``deflate`` agreed, if any)."""
        accept = websocket_accept(self.environ)
        self.start_response(  # type: ignore[attr-defined]
            "101 Switching Protocols",
            [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]
            + list(headers or ()),
        )
        self.write(b"")  # type: ignore[attr-defined]  # sends the 101 now
        self.close_connection = True
        ws = ServerWebSocket(self.socket, None, max_message_size=max_message_size, max_pending=max_pending,
                             deflate=deflate)
        # Frames the client sent right behind its handshake may sit in the request reader's
        # buffer: hand them over, then drop every reference to that reader, whose 8 KiB
        # buffer would otherwise stay with the connection for its whole life.
        ws.feed_buffered(self.rfile)
        self.rfile = None
        wsgi_input = getattr(self, "wsgi_input", None)
        if wsgi_input is not None:
            wsgi_input.rfile = None
        self.environ["wsgi.input"] = _NO_INPUT  # pywsgi puts the reader itself there for a GET
        # The parsed request headers (an email.message.Message, ~1 KiB) are in the environ
        # already; the handler object lives as long as the WebSocket.
        self.headers = _NO_HEADERS
        return ws


class WebSocketHandler(WebSocketHandlerMixin, pywsgi.WSGIHandler):
    """``pywsgi.WSGIHandler`` with WebSocket upgrades decided by the application."""

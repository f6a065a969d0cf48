"""WebSocket transports the engine can drive.

Two implementations share one small interface (``receive``, ``send``, ``close``):

* :class:`WsprotoWebSocket` frames messages with wsproto over the raw socket that
  :class:`socketio_sync.wsgi.handler.WebSocketHandler` hands over after *it* validated
  the request and sent ``101``. It enforces ``max_message_size`` while reading, before
  a message is buffered.
* :class:`GeventWebSocketAdapter` wraps ``environ["wsgi.websocket"]`` from
  gevent-websocket's stock handler (for example ``GeventWebSocketWorker`` under gunicorn).
"""
from __future__ import annotations

import logging
import socket as _socket
from typing import Any, Protocol

from gevent.lock import Semaphore
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

__all__ = ["WebSocketTransport", "WsprotoWebSocket", "GeventWebSocketAdapter", "MessageTooBig"]

log = logging.getLogger("socketio_sync.websocket")

_SOCKET_ERRORS = (OSError, _socket.error)


def _message(data: str | bytes) -> Message[Any]:
    return TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)


class MessageTooBig(Exception):
    """A WebSocket message went over the size limit; the socket was closed with 1009."""


class WebSocketTransport(Protocol):
    closed: bool

    def receive(self) -> str | bytes | None: ...

    def send(self, data: str | bytes) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class WsprotoWebSocket:
    """A server-side WebSocket on a connected socket, after the ``101`` went out.

    :param sock: the connected gevent socket.
    :param rfile: a buffered reader on ``sock`` that may hold bytes already read.
    :param max_message_size: bytes allowed in one message (all its frames together).
    """

    READ_SIZE = 65536

    def __init__(self, sock: Any, rfile: Any, *, max_message_size: int) -> None:
        self.sock = sock
        self.rfile = rfile
        self.max_message_size = max_message_size
        self.conn = Connection(ConnectionType.SERVER)
        self.closed = False
        self.close_code: int | None = None
        self._events: Any = iter(())
        self._parts: list[Any] = []
        self._size = 0
        self._lock = Semaphore()

    def _write(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            self.sock.sendall(data)

    def send(self, data: str | bytes) -> None:
        if self.closed:
            raise ConnectionError("WebSocket is closed")
        try:
            out = self.conn.send(_message(data))
        except WsLocalProtocolError as exc:
            raise ConnectionError(str(exc)) from exc
        self._write(out)

    def send_many(self, items: list[str | bytes]) -> None:
        """Frame several messages and write them with one system call."""
        if self.closed:
            raise ConnectionError("WebSocket is closed")
        try:
            out = b"".join(self.conn.send(_message(d)) for d in items)
        except WsLocalProtocolError as exc:
            raise ConnectionError(str(exc)) from exc
        self._write(out)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        try:
            if self.conn.state is ConnectionState.OPEN:
                self._write(self.conn.send(CloseConnection(code=code, reason=reason or None)))
        except (WsLocalProtocolError, *_SOCKET_ERRORS):
            pass
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except _SOCKET_ERRORS:
            pass

    def receive(self) -> str | bytes | None:
        """The next whole message, or ``None`` once the connection is closed.

        :raises MessageTooBig: after closing the socket with 1009.
        """
        while True:
            for event in self._events:
                if isinstance(event, (TextMessage, BytesMessage)):
                    self._size += len(event.data)
                    if self._size > self.max_message_size:
                        self._parts = []
                        self.close(CloseReason.MESSAGE_TOO_BIG, "message too big")
                        raise MessageTooBig(f"WebSocket message over {self.max_message_size} bytes")
                    self._parts.append(event.data)
                    if event.message_finished:
                        parts, self._parts, self._size = self._parts, [], 0
                        if isinstance(event, TextMessage):
                            return parts[0] if len(parts) == 1 else "".join(parts)
                        return parts[0] if len(parts) == 1 else b"".join(parts)
                elif isinstance(event, Ping):
                    try:
                        self._write(self.conn.send(event.response()))
                    except _SOCKET_ERRORS:
                        pass
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    try:
                        if self.conn.state is not ConnectionState.CLOSED:
                            self._write(self.conn.send(event.response()))
                    except (WsLocalProtocolError, *_SOCKET_ERRORS):
                        pass
                    self.closed = True
                    return None
            if self.closed:
                return None
            try:
                data = self.rfile.read1(self.READ_SIZE) if self.rfile is not None else self.sock.recv(self.READ_SIZE)
            except _SOCKET_ERRORS:
                data = b""
            if not data:
                self.closed = True
                return None
            try:
                self.conn.receive_data(data)
                self._events = self.conn.events()
            except WsRemoteProtocolError as exc:
                log.info("WebSocket protocol error from peer: %s", exc)
                self.close(CloseReason.PROTOCOL_ERROR, "protocol error")
                return None


class GeventWebSocketAdapter:
    """Drives ``environ["wsgi.websocket"]`` from gevent-websocket's own handler.

    That handler already sent ``101`` and buffers whole messages before we see them,
    so the size limit can only be checked after the fact.
    """

    def __init__(self, ws: Any, *, max_message_size: int) -> None:
        self.ws = ws
        self.max_message_size = max_message_size
        self._lock = Semaphore()

    @property
    def closed(self) -> bool:
        return bool(self.ws.closed)

    def receive(self) -> str | bytes | None:
        try:
            msg = self.ws.receive()
        except Exception:  # gevent-websocket raises its own WebSocketError on a dead socket
            return None
        if msg is None:
            return None
        if isinstance(msg, bytearray):
            msg = bytes(msg)
        if len(msg) > self.max_message_size:
            self.close(1009, "message too big")
            raise MessageTooBig(f"WebSocket message over {self.max_message_size} bytes")
        return msg

    def send(self, data: str | bytes) -> None:
        with self._lock:
            try:
                self.ws.send(data, binary=isinstance(data, bytes))
            except Exception as exc:
                raise ConnectionError(str(exc)) from exc

    def send_many(self, items: list[str | bytes]) -> None:
        for item in items:
            self.send(item)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.ws.closed:
            return
        try:
            self.ws.close(code, reason.encode())
        except Exception:
            pass

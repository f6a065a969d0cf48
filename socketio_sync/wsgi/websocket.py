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
import struct
from typing import Any, Protocol

import gevent
from gevent.lock import Semaphore
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

__all__ = [
    "WebSocketTransport", "WsprotoWebSocket", "GeventWebSocketAdapter", "MessageTooBig", "frame",
    "frame_message",
]

log = logging.getLogger("socketio_sync.websocket")

_SOCKET_ERRORS = (OSError, _socket.error)


class MessageTooBig(Exception):
    """A WebSocket message went over the size limit; the socket was closed with 1009."""


class WebSocketTransport(Protocol):
    closed: bool

    def receive(self) -> str | bytes | None: ...

    def send(self, data: str | bytes) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


def frame(payload: bytes, opcode: int) -> bytes:
    """A final, unmasked frame as a server sends it (RFC 6455 section 5.2).

    Server frames carry no mask, so the bytes are the same for every recipient of a
    broadcast: they are built once. Reading (masks, fragments, control frames, UTF-8
    checks) is left to wsproto.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def frame_message(data: str | bytes) -> bytes:
    """A whole WebSocket message: text for ``str``, binary for ``bytes``."""
    if isinstance(data, str):
        return frame(data.encode("utf-8"), 0x1)
    return frame(data, 0x2)


class WsprotoWebSocket:
    """A server-side WebSocket on a connected socket, after the ``101`` went out.

    Writing never blocks the caller: :meth:`write` sends what the socket takes at once and
    leaves the rest to a drain greenlet, which exists only while there is a backlog. A
    client that lets more than ``max_pending`` bytes pile up is disconnected.

    :param sock: the connected gevent socket.
    :param rfile: a buffered reader on ``sock`` that may hold bytes already read.
    :param max_message_size: bytes allowed in one message (all its frames together).
    :param max_pending: bytes allowed to wait for a slow reader.
    """

    READ_SIZE = 65536
    #: This transport takes pre-built frames (:meth:`write`).
    raw = True

    def __init__(self, sock: Any, rfile: Any, *, max_message_size: int, max_pending: int = 16_000_000) -> None:
        self.sock = sock
        self._nowait_sock = getattr(sock, "_sock", None)  # gevent's non-blocking socket underneath
        self.rfile = rfile
        self.max_message_size = max_message_size
        self.max_pending = max_pending
        self.conn = Connection(ConnectionType.SERVER)
        self.closed = False
        self.close_code: int | None = None
        self._events: Any = iter(())
        self._parts: list[Any] = []
        self._size = 0
        self._backlog: list[bytes] = []
        self._backlog_size = 0
        self._drainer: gevent.Greenlet | None = None
        self._close_after_drain: tuple[int, str] | None = None

    # -- writing ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send frames without blocking; what the socket does not take waits in order."""
        if self.closed or not data:
            return
        if self._drainer is None:
            sent = 0
            if self._nowait_sock is not None:
                try:
                    sent = self._nowait_sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    log.debug("WebSocket write failed: %s", exc)
                    self._abort()
                    return
            if sent == len(data):
                return
            data = data[sent:]
            self._drainer = gevent.spawn(self._drain)
        self._backlog.append(data)
        self._backlog_size += len(data)
        if self._backlog_size > self.max_pending:
            log.info("WebSocket peer is not reading (%d bytes pending); closing", self._backlog_size)
            self._abort()

    def _drain(self) -> None:
        try:
            while self._backlog and not self.closed:
                data = b"".join(self._backlog)
                self._backlog.clear()
                self._backlog_size = 0
                self.sock.sendall(data)
        except OSError as exc:
            log.debug("WebSocket write failed: %s", exc)
            self._abort()
        finally:
            self._drainer = None
        if self._close_after_drain is not None and not self.closed:
            self.close(*self._close_after_drain)

    def send(self, data: str | bytes) -> None:
        if self.closed:
            raise ConnectionError("WebSocket is closed")
        self.write(frame_message(data))

    def send_many(self, items: list[str | bytes]) -> None:
        if self.closed:
            raise ConnectionError("WebSocket is closed")
        self.write(b"".join(frame_message(d) for d in items))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame after anything still pending, then shut the socket down."""
        if self.closed:
            return
        if self._drainer is not None:
            self._close_after_drain = (code, reason)
            return
        self.close_code = code
        try:
            if self.conn.state is ConnectionState.OPEN:
                self.write(self.conn.send(CloseConnection(code=code, reason=reason or None)))
        except WsLocalProtocolError:
            pass
        if self._drainer is not None:
            self._close_after_drain = (code, reason)
            return
        self.closed = True
        self._shutdown()

    def _abort(self) -> None:
        self.closed = True
        self._backlog.clear()
        self._backlog_size = 0
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except _SOCKET_ERRORS:
            pass

    # -- reading ----------------------------------------------------------------------------

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
                    self.write(self.conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    try:
                        if self.conn.state is not ConnectionState.CLOSED:
                            self.write(self.conn.send(event.response()))
                    except WsLocalProtocolError:
                        pass
                    if self._drainer is not None:
                        self._close_after_drain = (event.code, "")
                    else:
                        self.closed = True
                        self._shutdown()
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

    #: Writes go through gevent-websocket's ``send``, one message at a time.
    raw = False

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

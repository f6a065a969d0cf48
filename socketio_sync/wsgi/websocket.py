"""WebSocket transports the engine can drive.

Two implementations share one small interface (``receive``, ``send``, ``close``):

* :class:`ServerWebSocket` speaks WebSocket (with the ``websockets`` library's
  sans-I/O protocol for reading) over the raw socket that
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

from websockets.exceptions import PayloadTooBig
try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension is missing on this platform
    from websockets.utils import apply_mask
from websockets.frames import Opcode
from websockets.protocol import SERVER, State
from websockets.protocol import Protocol as WsProtocol

from .deflate import DeflateParams, PerMessageDeflate

__all__ = [
    "WebSocketTransport", "ServerWebSocket", "GeventWebSocketAdapter", "MessageTooBig", "frame",
    "frame_message", "frame_message_for", "close_stock_websocket",
]

log = logging.getLogger("socketio_sync.websocket")

_SOCKET_ERRORS = (OSError, _socket.error)

#: How text is encoded on the way out. A client can smuggle a lone surrogate into a
#: string through a JSON escape ("\\ud800"); UTF-8 cannot carry it, and failing here would
#: break the send for every recipient of a broadcast. It only ever sits inside a JSON
#: string, where "\\ud800" (what backslashreplace writes) is the same value, as JavaScript's
#: JSON.stringify writes it.
_SURROGATES = "backslashreplace"


class MessageTooBig(Exception):
    """A WebSocket message went over the size limit; the socket was closed with 1009."""


class WebSocketTransport(Protocol):
    closed: bool

    def receive(self) -> str | bytes | None: ...

    def send(self, data: str | bytes) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


def frame(payload: bytes, opcode: int, rsv1: bool = False) -> bytes:
    """A final, unmasked frame as a server sends it (RFC 6455 section 5.2); ``rsv1``
    marks a compressed message (RFC 7692).

    Server frames carry no mask, so the bytes are the same for every recipient of a
    broadcast: they are built once. Reading (masks, fragments, control frames, UTF-8
    checks) is left to the ``websockets`` library.
    """
    n = len(payload)
    b0 = 0xC0 | opcode if rsv1 else 0x80 | opcode
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


def frame_message(data: str | bytes) -> bytes:
    """A whole WebSocket message: text for ``str``, binary for ``bytes``."""
    if isinstance(data, str):
        return frame(data.encode("utf-8", _SURROGATES), 0x1)
    return frame(data, 0x2)


def frame_message_for(data: str | bytes, deflate: PerMessageDeflate | None) -> bytes:
    """A whole message for a connection with permessage-deflate (``deflate``):
    compressed when it reaches the threshold."""
    if isinstance(data, str):
        payload, opcode = data.encode("utf-8", _SURROGATES), 0x1
    else:
        payload, opcode = data, 0x2
    if deflate is not None and deflate.wants(len(payload)):
        return frame(deflate.compress(payload), opcode, rsv1=True)
    return frame(payload, opcode)


class ServerWebSocket:
    """A server-side WebSocket on a connected socket, after the ``101`` went out.

    Reading uses the sans-I/O protocol of the ``websockets`` library (C-accelerated
    unmasking; frame validation, fragmentation rules, automatic pongs, the closing
    handshake, and ``max_message_size`` enforced before a frame is buffered).

    Writing never blocks the caller: :meth:`write` sends what the socket takes at once and
    leaves the rest to a drain greenlet, which exists only while there is a backlog. A
    client that lets more than ``max_pending`` bytes pile up is disconnected.

    :param sock: the connected gevent socket.
    :param rfile: a buffered reader on ``sock`` that may hold bytes already read.
    :param max_message_size: bytes allowed in one message (all its frames together).
    :param max_pending: bytes allowed to wait for a slow reader.
    :param deflate: permessage-deflate parameters agreed in the handshake
        (:func:`socketio_sync.wsgi.deflate.negotiate`), or ``None``.
    """

    READ_SIZE = 65536
    #: This transport takes pre-built frames (:meth:`write`).
    raw = True

    def __init__(self, sock: Any, rfile: Any, *, max_message_size: int, max_pending: int = 16_000_000,
                 deflate: DeflateParams | None = None) -> None:
        self.sock = sock
        self._nowait_sock = getattr(sock, "_sock", None)  # gevent's non-blocking socket underneath
        self.rfile = rfile
        self.max_message_size = max_message_size
        self.max_pending = max_pending
        self.proto = WsProtocol(SERVER, state=State.OPEN, max_size=max_message_size)
        #: The permessage-deflate codec (``None``: not negotiated). Compressed frames take
        #: the protocol path of the reader, which inflates them with the size limit.
        self.deflate: PerMessageDeflate | None = None
        if deflate is not None:
            self.deflate = PerMessageDeflate(deflate)
            self.proto.extensions = [self.deflate]
        self.closed = False
        self.close_code: int | None = None
        #: Frames parsed but not consumed yet (usually none or one: a list is smaller
        #: than a deque, whose first block costs ~600 bytes per connection).
        self._frames: list[Any] = []
        self._msg_opcode: Opcode | None = None
        self._parts: list[Any] = []  # bytes-like frame payloads
        self._backlog: list[bytes] = []
        self._backlog_size = 0
        self._pending: list[bytes] = []
        self._loop = gevent.get_hub().loop
        self._drainer: gevent.Greenlet | None = None
        self._close_after_drain: tuple[int, str] | None = None
        self._early = b""
        #: Messages taken by the fast path, not returned yet.
        self._ready: list[str | bytes] = []
        #: Bytes the protocol still needs to finish the frame it is in (0: it is between
        #: frames, so the next bytes may take the fast path; -1: unknown, never again).
        self._carry = 0

    # -- writing ----------------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        """Open and with no backlog waiting for the peer to read (``volatile`` packets
        are dropped otherwise)."""
        return not self.closed and not self._backlog

    def write(self, data: bytes) -> None:
        """Queue frames; they leave together once the current greenlet yields to the hub
        (so a burst of broadcasts to one client costs one system call), without blocking:
        what the socket does not take waits in order for a drain greenlet."""
        if self.closed or not data:
            return
        if self._drainer is None:
            pending = self._pending
            pending.append(data)
            if len(pending) == 1:
                self._loop.run_callback(self._flush_pending)
            return
        self._write_now(data)

    def _flush_pending(self) -> None:
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        if self.closed or not data:
            return
        if self._pending:  # keep the order: anything queued earlier goes first
            data = b"".join(self._pending) + data
            self._pending.clear()
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

    def _flush_protocol(self) -> None:
        """Write what the protocol produced (pongs, close frames); b"" means end of stream."""
        for chunk in self.proto.data_to_send():
            if chunk:
                self.write(chunk)
            else:
                self._flush_pending()
                if self._drainer is None:
                    self._half_close()

    def send(self, data: str | bytes) -> None:
        if self.closed:
            raise ConnectionError("WebSocket is closed")
        self.write(frame_message_for(data, self.deflate))

    def send_many(self, items: list[str | bytes]) -> None:
        if self.closed:
            raise ConnectionError("WebSocket is closed")
        self.write(b"".join(frame_message_for(d, self.deflate) for d in items))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame after anything still pending, then shut the socket down."""
        if self.closed:
            return
        self._flush_pending()
        if self._drainer is not None:
            self._close_after_drain = (code, reason)
            return
        if self.close_code is None:
            self.close_code = code
        if self.proto.state is State.OPEN:
            self.proto.send_close(code, reason)
            for chunk in self.proto.data_to_send():
                if chunk:
                    self._write_now(chunk)
        if self._drainer is not None:
            self._close_after_drain = (code, reason)
            return
        self.closed = True
        self._shutdown()

    def _half_close(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except _SOCKET_ERRORS:
            pass

    def _abort(self) -> None:
        self.closed = True
        self._pending.clear()
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

        :raises MessageTooBig: after closing the connection with 1009.
        """
        frames = self._frames
        while True:
            if self._ready:
                return self._ready.pop(0)
            while frames:
                frame = frames.pop(0)
                opcode = frame.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                    if frame.fin:
                        return self._message(opcode, [frame.data])
                    self._msg_opcode = opcode
                    self._parts = [frame.data]
                elif opcode is Opcode.CONT:
                    self._parts.append(frame.data)
                    if frame.fin and self._msg_opcode is not None:
                        parts, self._parts = self._parts, []
                        opcode, self._msg_opcode = self._msg_opcode, None
                        return self._message(opcode, parts)
                elif opcode is Opcode.CLOSE:
                    self.close_code = self.proto.close_rcvd.code if self.proto.close_rcvd else 1005
                    self._finish()
                    return None
                # PING is answered by the protocol (flushed below); PONG needs nothing
            if self.closed:
                return None
            try:
                data = self._early
                if data:
                    self._early = b""
                else:
                    data = self._buffered() if self.rfile is not None else b""
                if not data:
                    # recv() waits for readability before it allocates its buffer: an idle
                    # connection holds no read buffer (read1 on the file would hold 64 KiB).
                    data = self.sock.recv(self.READ_SIZE)
            except _SOCKET_ERRORS:
                data = b""
            if not data:
                self.proto.receive_eof()
                self._finish()
                return None
            if (self._carry == 0 and not frames and self._msg_opcode is None
                    and self.proto.state is State.OPEN):
                ready = _simple_messages(data, self.max_message_size)
                if ready is not None:
                    self._ready = ready
                    continue
            if self._carry >= 0:
                self._carry = _carry_after(self._carry, data)
            self.proto.receive_data(data)
            frames.extend(self.proto.events_received())
            exc = self.proto.parser_exc
            if exc is not None:
                if isinstance(exc, PayloadTooBig):
                    self.close_code = 1009
                    self._finish()
                    raise MessageTooBig(f"WebSocket message over {self.max_message_size} bytes")
                log.info("WebSocket protocol error from peer: %s", exc)
                self._finish()
                return None
            self._flush_protocol()

    def feed_buffered(self, rfile: Any) -> None:
        """Take the bytes a request reader already read past the handshake (a client that
        sent frames right behind it), without waiting; the reader is not kept."""
        self.rfile = rfile
        data = self._buffered()
        if data:
            self._early = data

    def _buffered(self) -> bytes:
        """Bytes the HTTP request reader had already taken from the socket (a client that
        sent frames right behind its handshake), once; without waiting for more."""
        rfile, self.rfile = self.rfile, None
        if rfile is None:
            return b""
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0.0)
        try:
            return rfile.read1(self.READ_SIZE) or b""
        except (BlockingIOError, _socket.timeout, OSError, ValueError):
            return b""
        finally:
            self.sock.settimeout(timeout)

    def _message(self, opcode: Opcode, parts: list[Any]) -> str | bytes | None:
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if opcode is Opcode.BINARY:
            return bytes(data)
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            log.info("WebSocket text message is not UTF-8; closing")
            self.close(1007, "invalid UTF-8")
            return None

    def _finish(self) -> None:
        """The peer closed, broke the protocol or went away: send what the protocol has
        to say (a close frame) and shut the socket down after it."""
        self._flush_pending()
        for chunk in self.proto.data_to_send():
            if chunk:
                self._write_now(chunk)
        if self._drainer is not None:
            self._close_after_drain = (self.close_code or 1000, "")
            return
        self.closed = True
        self._shutdown()


def _frame_extent(data: bytes, pos: int) -> tuple[int, int] | None:
    """``(header length, payload length)`` of the frame starting at ``pos``, or ``None``
    when its header is not complete yet (RFC 6455 section 5.2)."""
    n = len(data)
    if pos + 2 > n:
        return None
    b1 = data[pos + 1]
    length = b1 & 0x7F
    head = 2
    if length == 126:
        if pos + 4 > n:
            return None
        length = (data[pos + 2] << 8) | data[pos + 3]
        head = 4
    elif length == 127:
        if pos + 10 > n:
            return None
        length = int.from_bytes(data[pos + 2:pos + 10], "big")
        head = 10
    if b1 & 0x80:
        head += 4
    return head, length


def _simple_messages(data: bytes, max_size: int) -> list[Any] | None:
    """The fast path of the reader: when ``data`` is exactly a run of complete, final,
    masked text or binary frames within ``max_size`` (what clients send nearly always),
    their messages (``str`` for text, ``bytes`` for binary); otherwise ``None`` and the
    ``websockets`` protocol reads ``data`` (control frames, fragments, partial frames,
    text that is not UTF-8, anything invalid)."""
    out: list[str | bytes] = []
    pos = 0
    n = len(data)
    while pos < n:
        b0 = data[pos]
        if b0 != 0x81 and b0 != 0x82:  # FIN, no RSV bits, text or binary
            return None
        extent = _frame_extent(data, pos)
        if extent is None or not data[pos + 1] & 0x80:  # incomplete, or not masked
            return None
        head, length = extent
        end = pos + head + length
        if end > n or length > max_size:
            return None
        payload = apply_mask(data[pos + head:end], data[pos + head - 4:pos + head])
        if b0 == 0x81:
            try:
                out.append(payload.decode("utf-8"))
            except UnicodeDecodeError:
                return None
        else:
            out.append(payload)
        pos = end
    return out


def _carry_after(carry: int, data: bytes) -> int:
    """Bytes still missing from the current frame after ``data`` arrives, given that
    ``carry`` were missing before; -1 when a frame header is cut (then unknown)."""
    n = len(data)
    if carry >= n:
        return carry - n
    pos = carry
    while pos < n:
        extent = _frame_extent(data, pos)
        if extent is None:
            return -1
        end = pos + extent[0] + extent[1]
        if end > n:
            return end - n
        pos = end
    return 0


class GeventWebSocketAdapter:
    """Drives ``environ["wsgi.websocket"]`` from gevent-websocket's own handler.

    That handler already sent ``101`` and buffers whole messages before we see them,
    so the size limit can only be checked after the fact.
    """

    #: Writes go through gevent-websocket's ``send``, one message at a time.
    raw = False
    #: gevent-websocket has no permessage-deflate.
    deflate = None

    def __init__(self, ws: Any, *, max_message_size: int) -> None:
        self.ws = ws
        self.max_message_size = max_message_size
        self._lock = Semaphore()

    @property
    def closed(self) -> bool:
        return bool(self.ws.closed)

    @property
    def writable(self) -> bool:
        return not self.ws.closed

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
        binary = isinstance(data, bytes)
        if not binary and not data.isascii():  # type: ignore[union-attr]
            # gevent-websocket encodes text itself: give it text UTF-8 can carry.
            data = data.encode("utf-8", _SURROGATES).decode("utf-8")  # type: ignore[union-attr]
        with self._lock:
            try:
                self.ws.send(data, binary=binary)
            except Exception as exc:
                raise ConnectionError(str(exc)) from exc

    def send_many(self, items: list[str | bytes]) -> None:
        for item in items:
            self.send(item)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.ws.closed:
            return
        close_stock_websocket(self.ws, code, reason)


def close_stock_websocket(ws: Any, code: int, reason: str = "") -> None:
    """Close a gevent-websocket WebSocket with ``code`` and ``reason``.

    Its own ``close(code, message)`` ignores ``code`` and sends ``str(message)`` as the
    whole close payload (clients then read "invalid status code"): the frame is sent
    here, then ``close()`` finishes without sending another.
    """
    try:
        if not ws.closed:
            ws.send_frame(code.to_bytes(2, "big") + reason.encode("utf-8", "replace")[:120], ws.OPCODE_CLOSE)
    except Exception:
        pass
    ws.closed = True
    try:
        ws.close()  # clears its references; its frame is not sent on a closed socket
    except Exception:
        pass

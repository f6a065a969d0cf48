"""The Engine.IO server shell: HTTP long-polling and WebSocket on gevent.

Protocol decisions live in :mod:`socketio_sync.eio`; this module reads requests,
waits, writes responses and runs the timers that the sans-IO session asks for.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

import gevent
from gevent.event import Event as GEvent

from .. import eio
from ..exceptions import RemoteProtocolError
from ..hooks import Hooks
from ..eio import CloseReason, MessageReceived, Packet, PacketType, SessionClosed, Upgraded
from . import lifecycle
from .client_bundle import ClientBundle
from .deflate import deflate_options, negotiate
from .http_options import (
    choose_encoding, compress_body, cookie_options, http_compression_options, run_allow_request, run_header_hook,
    serialize_cookie,
)
from .timers import TimerService
from .websocket import GeventWebSocketAdapter, MessageTooBig, close_stock_websocket, frame_message, frame_message_for

__all__ = ["EngineServer", "EngineConnection", "HandshakeError", "Outgoing"]

log = logging.getLogger("socketio_sync.eio")

StartResponse = Callable[..., Any]
Handler = Callable[..., Any]

UPGRADE_KEY = "socketio_sync.websocket_upgrade"
#: ``False`` in the environ of a request served where WebSocket is impossible (a
#: threaded server that does not expose its sockets): the handshake offers no upgrade.
WEBSOCKET_CAPABLE_KEY = "socketio_sync.websocket_capable"
#: The Engine.IO protocol version of a request (4, or 3 with ``allow_eio3``), set by
#: :meth:`EngineServer._check_eio_version`.
EIO_PROTOCOL_KEY = "socketio_sync.eio_protocol"
#: True when an Engine.IO v3 client asked for base64 instead of binary payloads (``b64=1``).
EIO_B64_KEY = "socketio_sync.eio_b64"


class HandshakeError(Exception):
    """A WebSocket handshake request is not valid (bad key or version)."""


def error_body(code: int, message: str | None = None) -> str:
    """The JSON body of an Engine.IO HTTP error."""
    return json.dumps({"code": code, "message": message or eio.ERRORS[code]}, separators=(",", ":"))


def _now() -> float:
    return time.monotonic()


def _call(fn: Handler, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("error in handler %r", fn)


def _frame_packet(packet: Packet, deflate: Any = None) -> bytes:
    data = packet.data
    if not isinstance(data, bytes):
        data = f"{int(packet.type)}{data or ''}"
    if deflate is not None:
        return frame_message_for(data, deflate)
    return frame_message(data)


def _frame_packet_v3(packet: Packet) -> bytes:
    return frame_message(eio.v3.encode_packet(packet))


class Outgoing:
    """Messages for one or many clients (a broadcast), with their WebSocket frames built
    at most once and shared by every recipient.

    Packet options, as on the Node server (``writeToEngine(packets, opts)``):

    ``volatile``
        the Socket.IO layer drops the messages for a client whose transport is not
        writable right now (:attr:`EngineConnection.writable`) instead of queueing them.
    ``compress``
        ``False`` when the application asked for ``compress(False)`` (Node's
        ``socket.compress(false)``): these messages are never deflated on a WebSocket
        with permessage-deflate, and a polling response made only of such messages is not
        gzip/deflate-encoded (a response is compressed when any message in it may be, as
        on Node).
    """

    __slots__ = ("items", "_frames", "_frames_v3", "_size", "volatile", "compress", "_deflated")

    def __init__(self, items: list[str | bytes], *, volatile: bool = False, compress: bool = True) -> None:
        self.items = items
        self._frames: bytes | None = None
        self.volatile = volatile
        self.compress = compress
        #: Compressed frames shared by connections whose deflate output is the same for
        #: the same input (no server context takeover), keyed by those parameters.
        self._deflated: dict[Any, bytes] | None = None
        self._frames_v3: bytes | None = None
        self._size = -1

    def byte_length(self) -> int:
        """The messages' size in bytes (text as UTF-8), computed once."""
        size = self._size
        if size < 0:
            size = 0
            for item in self.items:
                size += len(item) if isinstance(item, bytes) or item.isascii() else len(item.encode("utf-8", "surrogatepass"))
            self._size = size
        return size

    def frames_for(self, ws: Any) -> bytes:
        """The frames for ``ws``: compressed for a WebSocket with permessage-deflate."""
        deflate = getattr(ws, "deflate", None)
        if deflate is None or not self.compress:
            return self.frames()
        key = deflate.shareable
        if key is not None and self._deflated is not None:
            cached = self._deflated.get(key)
            if cached is not None:
                return cached
        frames = b"".join(frame_message_for("4" + item if isinstance(item, str) else item, deflate)
                          for item in self.items)
        if key is not None:
            if self._deflated is None:
                self._deflated = {}
            self._deflated[key] = frames
        return frames

    def frames(self) -> bytes:
        frames = self._frames
        if frames is None:
            frames = self._frames = b"".join(
                frame_message("4" + item) if isinstance(item, str) else frame_message(item)
                for item in self.items)
        return frames

    def frames_v3(self) -> bytes:
        """The same messages framed for an Engine.IO v3 client (binary frames start with
        the packet type byte)."""
        frames = self._frames_v3
        if frames is None:
            frames = self._frames_v3 = b"".join(
                frame_message("4" + item) if isinstance(item, str) else frame_message(b"\x04" + item)
                for item in self.items)
        return frames


class EngineConnection:
    """One Engine.IO session served over gevent (Node's ``engine.Socket``).

    ``conn.on("message", fn)`` receives ``str`` or ``bytes``; ``conn.on("close", fn)``
    receives the reason; ``conn.send(data)`` queues a message.
    """

    def __init__(self, server: EngineServer, session: eio.Session, environ: dict[str, Any]) -> None:
        self.server = server
        self.session = session
        self.sid = session.sid
        self.environ = environ
        self.remote_addr = environ.get("REMOTE_ADDR")
        self._handlers: dict[str, list[Handler]] = {}
        self._wake = GEvent()
        self._get_pending = False
        self._post_pending = False
        self._probing = False
        #: Answer the pending GET now (a NOOP if nothing is queued): see :meth:`release_poll`.
        self._release = False
        #: When the pending timer callback is due (``None``: none pending). Timers cannot be
        #: cancelled: a callback that finds an earlier one has replaced it does nothing.
        self._timer_at: float | None = None
        self._ws: Any = None
        #: A compressible message was queued for polling since the queue was last emptied
        #: (see :class:`Outgoing`'s ``compress``).
        self._poll_compress = False
        #: For the layer above (Socket.IO keeps its Client here).
        self.user_data: Any = None
        #: The Engine.IO protocol version: 4, or 3 (Socket.IO v2 clients).
        self.protocol: int = session.protocol
        #: v3 only: binary polling payloads allowed (the client did not ask for ``b64``).
        self.binary_polling = session.protocol == 3 and not environ.get(EIO_B64_KEY, False)

    # -- API --------------------------------------------------------------------------------

    @property
    def transport(self) -> str:
        return self.session.transport

    @property
    def closed(self) -> bool:
        return self.session.closed

    def on(self, event: str, handler: Handler) -> None:
        if event not in ("message", "close", "upgrade"):
            raise ValueError(f"unknown engine connection event {event!r}")
        self._handlers.setdefault(event, []).append(handler)

    @property
    def writable(self) -> bool:
        """Whether a message sent now leaves at once (Node's ``transport.writable``): over
        WebSocket, nothing is queued or backlogged before it; over polling, a GET is
        waiting with nothing queued for it yet (Node's polling transport stops being
        writable as soon as it starts answering), and no upgrade is in progress. ``volatile`` packets are dropped when
        this is false."""
        session = self.session
        if session.closed:
            return False
        if session.has_outgoing():
            return False  # something is already on its way out before it
        ws = self._ws
        if ws is not None:
            return bool(ws.writable)
        return self._get_pending and session.state is eio.SessionState.OPEN

    def send(self, data: str | bytes) -> None:
        """Send one message (queued for polling). Dropped once the session is closed."""
        self.send_prepared(Outgoing([data]))

    def send_many(self, items: list[str | bytes]) -> None:
        self.send_prepared(Outgoing(items))

    def send_prepared(self, out: Outgoing) -> None:
        """Send ``out``'s messages in order; over a WebSocket, its shared frames go
        straight to the socket when nothing is waiting before them."""
        session = self.session
        if session.closed:
            return
        hooks = self.server.hooks.message_out
        if hooks:
            Hooks.call(hooks, self, out)
        ws = self._ws
        if ws is not None and ws.raw and not session.has_outgoing():
            if self.protocol == 4:
                ws.write(out.frames() if ws.deflate is None else out.frames_for(ws))
            else:
                ws.write(out.frames_v3())
            return
        if out.compress:
            self._poll_compress = True
        for data in out.items:
            session.send_message(data)
        self._kick()

    def close(self, reason: str = CloseReason.FORCED_CLOSE) -> None:
        """Close the session (the client gets a CLOSE packet: it will not reconnect)."""
        self._dispatch(self.session.close(reason))

    def drop(self, reason: str = CloseReason.SERVER_SHUTTING_DOWN, code: int = 1001) -> None:
        """End the session the way a server that goes away does, so that the client
        reconnects: a WebSocket gets close frame ``code`` (1001 "going away"), a pending
        long-poll is released and the session forgotten; no CLOSE packet (after one,
        python-socketio's client does not reconnect). Handlers get ``reason``."""
        if self.session.closed:
            return
        ws = self._ws
        if ws is not None:
            # Before the session closes, whose close would send the frame with code 1000.
            ws.close(code, reason)
        # Closed "by the peer": the one way the session queues no CLOSE packet.
        self._dispatch(self.session.close(reason, by_peer=True))

    def release_poll(self) -> None:
        """Answer the pending long-poll now, with a NOOP when nothing is queued (the
        worker it was forwarded through is stopping; the client polls again elsewhere)."""
        self._release = True
        self._wake.set()

    # -- internals --------------------------------------------------------------------------

    def _kick(self) -> None:
        """The session has new outgoing packets: hand them to the transport."""
        ws = self._ws
        if ws is not None and ws.raw:
            session = self.session
            if session.has_outgoing():
                if self.protocol == 4:
                    deflate = ws.deflate
                    ws.write(b"".join(_frame_packet(p, deflate) for p in session.take_outgoing()))
                else:
                    ws.write(b"".join(_frame_packet_v3(p) for p in session.take_outgoing()))
            if session.closed:
                ws.close()
        else:
            self._wake.set()  # a pending GET, or the writer of a gevent-websocket socket

    def _schedule_timer(self) -> None:
        """Make sure a timer callback runs by the session's next deadline."""
        deadline = self.session.get_timer()
        if deadline is None:
            return
        pending = self._timer_at
        if pending is not None and pending <= deadline:
            return  # the pending callback comes first and schedules the next one
        self._timer_at = deadline
        self.server.timers.schedule(deadline, self._on_timer)

    def _on_timer(self) -> None:
        at = self._timer_at
        if at is None or _now() < at:
            return  # superseded: a pong moved the deadline earlier and that timer ran
        self._timer_at = None
        session = self.session
        if session.closed:
            return
        deadline = session.get_timer()
        if deadline is not None and deadline > _now():
            self._schedule_timer()  # moved later (a pong came)
            return
        events = session.handle_timer(_now())
        if events:
            # A close runs the application's disconnect handlers: not in the timer greenlet.
            gevent.spawn(self._dispatch, events)
        elif session.has_outgoing():
            self._kick()
        self._schedule_timer()

    def _dispatch(self, events: list[eio.Event]) -> None:
        for event in events:
            if isinstance(event, MessageReceived):
                hooks = self.server.hooks.message_in
                if hooks:
                    Hooks.call(hooks, self, event.data)
                for fn in self._handlers.get("message", ()):
                    _call(fn, event.data)
            elif isinstance(event, SessionClosed):
                self._on_closed(event)
            elif isinstance(event, Upgraded):
                Hooks.call(self.server.hooks.engine_upgrade, self, event.transport)
                for fn in self._handlers.get("upgrade", ()):
                    _call(fn, event.transport)

    def _on_closed(self, event: SessionClosed) -> None:
        log.debug("session %s closed: %s", self.sid, event.reason,
                  extra={"eio_sid": self.sid, "reason": event.reason, "remote_addr": self.remote_addr})
        Hooks.call(self.server.hooks.engine_close, self, event.reason)
        if (event.reason not in _ABRUPT_REASONS and self.session.transport == "polling"
                and self.session.has_outgoing() and not self._get_pending):
            # Keep the session reachable so the client's next GET gets what was queued,
            # then the CLOSE packet; forget it after that GET or after a grace period.
            gevent.spawn_later(self.server.ping_timeout, self.server._forget, self)
        else:
            self.server._forget(self)
        self._kick()
        for fn in self._handlers.get("close", ()):
            _call(fn, event.reason)
        self._handlers.clear()

    def _receive_packets(self, packets: list[Packet]) -> None:
        now = _now()
        for packet in packets:
            try:
                events = self.session.receive(packet, now)
            except RemoteProtocolError as exc:
                log.info("session %s: %s; closing", self.sid, exc,
                         extra={"eio_sid": self.sid, "reason": "parse error", "remote_addr": self.remote_addr})
                Hooks.call(self.server.hooks.error, "parse_error", str(exc), self)
                self._dispatch(self.session.close(CloseReason.PARSE_ERROR))
                return
            self._dispatch(events)
            if self.session.closed:
                return
            if packet.type is PacketType.PING and self.protocol == 3:
                self._kick()  # the PONG the session queued
            elif packet.type is PacketType.PONG:
                # The next ping is due ping_interval after this pong, which may come before
                # the pending timer (the pong deadline) when ping_timeout > ping_interval.
                self._schedule_timer()

    def _protocol_error(self, exc: Exception) -> None:
        log.info("session %s: protocol error: %s; closing", self.sid, exc,
                 extra={"eio_sid": self.sid, "reason": "parse error", "remote_addr": self.remote_addr})
        Hooks.call(self.server.hooks.error, "parse_error", str(exc), self)
        self._dispatch(self.session.close(CloseReason.PARSE_ERROR))

    # -- codecs (Engine.IO v4, or v3 for Socket.IO v2 clients) ------------------------------

    def _encode_poll(self, packets: list[Packet]) -> str | bytes:
        """A polling response body: text, or bytes for a v3 binary (XHR2) payload."""
        if self.protocol == 4:
            return eio.encode_payload(packets)
        if self.binary_polling and any(p.binary for p in packets):
            return eio.v3.encode_payload_binary(packets)
        return eio.v3.encode_payload(packets)

    def _decode_poll(self, body: bytes, environ: dict[str, Any]) -> list[Packet]:
        limit = self.server.max_payload_packets
        if self.protocol == 4:
            return eio.decode_payload(body.decode("utf-8"), limit)
        if environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() == "application/octet-stream":
            return eio.v3.decode_payload_binary(body, limit)
        return eio.v3.decode_payload(body.decode("utf-8", "surrogatepass"), limit)

    def _encode_frame(self, packet: Packet) -> str | bytes:
        return eio.encode_packet(packet) if self.protocol == 4 else eio.v3.encode_packet(packet)

    def _decode_frame(self, msg: str | bytes) -> Packet:
        return eio.decode_packet(msg) if self.protocol == 4 else eio.v3.decode_packet(msg)

    # -- polling ----------------------------------------------------------------------------

    def _handle_get(self) -> tuple[int, str | bytes]:
        session = self.session
        if self._get_pending:
            log.info("session %s: duplicate GET poll; closing", self.sid)
            self._dispatch(session.close(CloseReason.TRANSPORT_ERROR))
            raise _Refuse(3)
        if session.transport != "polling":
            raise _Refuse(3)
        self._get_pending = True
        try:
            while True:
                if session.state is eio.SessionState.UPGRADING:
                    return 200, self._encode_poll([session.noop_for_poll()])
                if session.has_outgoing():
                    packets = session.take_outgoing(self.server.max_poll_packets)
                    if len(packets) > 1 and packets[-1].type is PacketType.CLOSE:
                        # The client hands Socket.IO packets to its sockets a tick after the
                        # engine handles CLOSE: send CLOSE alone, in the next response.
                        session.push_front(packets.pop())
                    if session.closed and not session.has_outgoing():
                        self.server._forget(self)
                    return 200, self._encode_poll(packets)
                if session.closed or self._release:
                    # Closed by the client (a CLOSE packet), or released: answer with a NOOP.
                    self._release = False
                    return 200, self._encode_poll([session.noop_for_poll()])
                self._wake.clear()
                self._wake.wait()
        finally:
            self._get_pending = False

    def _handle_post(self, environ: dict[str, Any]) -> tuple[int, str]:
        if self._post_pending:
            log.info("session %s: concurrent POST; closing", self.sid)
            self._dispatch(self.session.close(CloseReason.TRANSPORT_ERROR))
            raise _Refuse(3)
        if self.session.transport != "polling":
            raise _Refuse(3)
        self._post_pending = True
        try:
            try:
                body = _read_body(environ, self.server.max_http_buffer_size)
            except _TooLarge:
                log.info("session %s: POST body over %d bytes; closing",
                         self.sid, self.server.max_http_buffer_size)
                self._dispatch(self.session.close(CloseReason.TRANSPORT_ERROR))
                raise _Refuse(3, status=413) from None
            except _Truncated as exc:
                log.info("session %s: incomplete POST body (%s); closing", self.sid, exc)
                self._dispatch(self.session.close(CloseReason.TRANSPORT_ERROR))
                environ["HTTP_CONNECTION"] = "close"  # the stream is out of step: end the connection
                raise _Refuse(3) from None
            try:
                packets = self._decode_poll(body, environ)
            except (UnicodeDecodeError, RemoteProtocolError) as exc:
                self._protocol_error(exc)
                raise _Refuse(3) from None
            self._receive_packets(packets)
            if self.session.closed and self.session.close_reason == CloseReason.PARSE_ERROR:
                raise _Refuse(3)
            return 200, "ok"
        finally:
            self._post_pending = False

    # -- websocket --------------------------------------------------------------------------

    def _run_websocket(self, ws: Any) -> None:
        """Serve the session over ``ws`` until it ends (this greenlet reads)."""
        writer = None
        self._ws = ws
        if ws.raw:
            self._kick()  # what was queued before (OPEN, packets sent while upgrading)
        else:
            writer = gevent.spawn(self._ws_writer, ws)
        try:
            self._ws_reader(ws)
        finally:
            if not self.session.closed:
                self._dispatch(self.session.close(CloseReason.TRANSPORT_CLOSE, by_peer=True))
            self._wake.set()
            if writer is not None:
                writer.join(timeout=5)
            ws.close()

    def _ws_reader(self, ws: Any) -> None:
        session = self.session
        while not session.closed:
            try:
                msg = ws.receive()
            except MessageTooBig as exc:
                log.info("session %s: %s; closing", self.sid, exc)
                self._dispatch(session.close(CloseReason.TRANSPORT_ERROR))
                return
            if msg is None:
                if not session.closed:
                    self._dispatch(session.close(CloseReason.TRANSPORT_CLOSE, by_peer=True))
                return
            try:
                packet = self._decode_frame(msg)
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            self._receive_packets([packet])

    def _ws_writer(self, ws: Any) -> None:
        session = self.session
        try:
            while True:
                if session.has_outgoing():
                    ws.send_many([self._encode_frame(p) for p in session.take_outgoing()])
                    continue
                if session.closed:
                    break
                self._wake.clear()
                self._wake.wait()
        except (ConnectionError, OSError) as exc:
            log.debug("session %s: write failed: %s", self.sid, exc)
            if not session.closed:
                self._dispatch(session.close(CloseReason.TRANSPORT_ERROR))
        finally:
            ws.close()

    def _run_upgrade(self, ws: Any) -> None:
        """Probe and upgrade a polling session to ``ws``."""
        session = self.session
        self._probing = True
        upgraded = False
        try:
            with gevent.Timeout(self.server.upgrade_timeout, False):
                while not session.closed:
                    try:
                        msg = ws.receive()
                    except MessageTooBig:
                        return
                    if msg is None:
                        return
                    try:
                        packet = self._decode_frame(msg)
                        if session.state is eio.SessionState.OPEN:
                            reply = session.receive_probe(packet)
                            ws.send_many([self._encode_frame(p) for p in reply])
                            self._wake.set()  # releases a pending GET with a NOOP
                        else:
                            events = session.receive_upgrade(packet)
                            if events:
                                upgraded = True
                                self._dispatch(events)
                                break
                    except (RemoteProtocolError, ConnectionError, OSError) as exc:
                        log.info("session %s: upgrade failed: %s", self.sid, exc)
                        return
            if not upgraded:
                return
        finally:
            self._probing = False
            if not upgraded:
                session.abort_upgrade()
                self._wake.set()
        self._run_websocket(ws)


#: Closes after which the session is dropped at once (the client has broken the protocol
#: or is gone); after any other close a polling client's next GET still gets the CLOSE packet.
_ABRUPT_REASONS = frozenset({CloseReason.PARSE_ERROR, CloseReason.TRANSPORT_ERROR, CloseReason.PING_TIMEOUT})


class _Refuse(Exception):
    def __init__(self, code: int, status: int | None = None) -> None:
        self.code = code
        self.status = status


class _TooLarge(Exception):
    pass


class _Truncated(Exception):
    """The request body ended early (client gone, or a broken chunked encoding)."""


_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_NOT_HEADER_LIST = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z, ]")


def _header_list(value: str | None) -> str:
    """A request's comma-separated token list made safe to echo in a response header:
    folding whitespace collapsed to one space and anything but tokens dropped."""
    if not value:
        return ""
    return _NOT_HEADER_LIST.sub("", " ".join(value.split()))[:1024]


def _read_body(environ: dict[str, Any], limit: int) -> bytes:
    stream = environ["wsgi.input"]
    length_s = environ.get("CONTENT_LENGTH") or ""
    try:
        if length_s:
            try:
                length = int(length_s)
            except ValueError:
                raise _Refuse(3) from None
            if length < 0:
                raise _Refuse(3)
            if length > limit:
                raise _TooLarge()
            if not length:
                return b""
            body = stream.read(length)
            if len(body) != length:
                raise _Truncated(f"{len(body)} of {length} bytes")
            return body
        # No Content-Length (chunked): read with a cap, never more than limit + 1 bytes.
        chunks = []
        total = 0
        while True:
            chunk = stream.read(min(65536, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _TooLarge()
        return b"".join(chunks)
    except (OSError, ValueError) as exc:  # gevent: "unexpected end of file while parsing chunked data"
        raise _Truncated(str(exc) or type(exc).__name__) from None


class EngineServer:
    """A raw Engine.IO v4 server. Use it alone (``WSGIApp(engine, path="engine.io")``)
    or through :class:`socketio_sync.Server`, which owns one.

    :param ping_interval: seconds between server pings.
    :param ping_timeout: seconds the client has to answer a ping.
    :param max_http_buffer_size: the largest polling body or WebSocket message, in bytes
        (announced as ``maxPayload``).
    :param cors_allowed_origins: ``None`` (same origin only), ``"*"`` (any origin), a list
        of origins, or a callable ``origin -> bool``.
    :param cors_credentials: send ``Access-Control-Allow-Credentials: true``.
    :param transports: the transports clients may use.
    :param allow_upgrades: offer the polling -> WebSocket upgrade.
    :param upgrade_timeout: seconds a probing WebSocket has to finish the upgrade.
    :param max_payload_packets: packets allowed in one polling body.
    :param max_pending_bytes: bytes allowed to wait for a WebSocket client that does not
        read; past that it is disconnected ("transport close").
    :param max_sessions: open sessions allowed at once (``None``: no limit); a handshake
        past it gets ``503`` and the client retries later.
    :param handshake_rate: ``(count, seconds)``: at most ``count`` new sessions per
        ``seconds`` for this server (``None``: no limit); past it, ``429``.
    :param allow_eio3: also serve Engine.IO v3 clients (``EIO=3``: Socket.IO v2 clients)
        next to v4 ones; when false they get error 5, "Unsupported protocol version".
    :param allow_request: ``fn(environ) -> True | False | str``, asked before every
        handshake (Node's ``allowRequest``; a WebSocket handshake is asked before the
        ``101``). ``False`` refuses with ``403`` and ``{"code":4,"message":"Forbidden"}``,
        a string refuses with that message; an exception is logged and refuses. Requests
        of an accepted session (polls, the upgrade) are not asked again, as on Node.
    :param cookie: ``True`` or a dict (``name`` "io", ``path`` "/", ``http_only``,
        ``same_site`` "lax", ``secure``, ``max_age`` seconds, ``domain``): the handshake
        response (polling, or the ``101`` of a WebSocket handshake) sets a cookie holding
        the session id (Node's ``cookie`` option).
    :param initial_headers: ``fn(headers, environ)`` that may append ``(name, value)``
        pairs to the handshake response (Node's ``initial_headers`` event).
    :param headers: ``fn(headers, environ)`` likewise for every Engine.IO HTTP response
        of a session: the handshake, polls, POSTs and each ``101`` (Node's ``headers``
        event). Error responses go without. Not on gevent-websocket's stock handler,
        which sends its ``101`` before the application runs.
    :param http_compression: ``True`` (default, as on Node), ``False``, or
        ``{"threshold": 1024, "level": 6}``: polling responses of at least ``threshold``
        bytes are gzip- or deflate-encoded when the request's ``Accept-Encoding`` allows.
    :param per_message_deflate: ``False`` (default, as on Node), ``True`` or a dict of
        :class:`socketio_sync.wsgi.deflate.DeflateOptions` fields (``threshold`` 1024,
        ``server_no_context_takeover``, ``client_no_context_takeover``,
        ``server_max_window_bits``, ``client_max_window_bits``, ``level``,
        ``mem_level``): WebSocket compression (RFC 7692) with clients that offer it.
        Only with socketio_sync's own WebSocket (``run()``, ``listen()``, our gunicorn
        worker, the dev servers), not gevent-websocket's stock worker.
        ``max_http_buffer_size`` limits the *inflated* size of a message.
    :param serve_client: serve the ``socket.io-client`` bundle at ``/<path>/socket.io.js``
        (see :class:`socketio_sync.wsgi.client_bundle.ClientBundle`).
    :param client_path: where the npm ``socket.io-client`` package is (default:
        ``node_modules`` from the working directory upwards).
    """

    #: Packets sent in one polling response at most; the rest wait for the next GET.
    #: python-engineio's client refuses payloads of more than 16 packets.
    max_poll_packets = 16

    def __init__(
        self,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_http_buffer_size: int = 1_000_000,
        cors_allowed_origins: None | str | list[str] | tuple[str, ...] | Callable[[str], bool] = None,
        cors_credentials: bool = False,
        transports: Iterable[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        upgrade_timeout: float = 10.0,
        max_payload_packets: int = 1000,
        max_pending_bytes: int = 16_000_000,
        max_sessions: int | None = None,
        handshake_rate: tuple[int, float] | None = None,
        allow_eio3: bool = False,
        allow_request: Callable[[dict[str, Any]], Any] | None = None,
        cookie: Any = None,
        initial_headers: Callable[[list[tuple[str, str]], dict[str, Any]], Any] | None = None,
        headers: Callable[[list[tuple[str, str]], dict[str, Any]], Any] | None = None,
        http_compression: Any = True,
        per_message_deflate: Any = False,
        serve_client: bool = False,
        client_path: str | None = None,
    ) -> None:
        for name, hook in (("allow_request", allow_request), ("initial_headers", initial_headers),
                           ("headers", headers)):
            if hook is not None and not callable(hook):
                raise TypeError(f"{name} must be a callable or None")
        self.allow_request = allow_request
        self.cookie = cookie_options(cookie)
        self.initial_headers_hook = initial_headers
        self.headers_hook = headers
        self.http_compression = http_compression_options(http_compression)
        self.per_message_deflate = deflate_options(per_message_deflate)
        #: Serves the client bundle (``None``: ``serve_client`` is off).
        self.client_bundle: ClientBundle | None = ClientBundle(client_path) if serve_client else None
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ValueError("ping_interval and ping_timeout must be positive (seconds)")
        if max_http_buffer_size < 1:
            raise ValueError("max_http_buffer_size must be positive")
        transports = tuple(transports)
        unknown = set(transports) - {"polling", "websocket"}
        if unknown or not transports:
            raise ValueError(f"transports must be a non-empty subset of ('polling', 'websocket'), got {transports!r}")
        if not (cors_allowed_origins is None or cors_allowed_origins == "*" or callable(cors_allowed_origins)
                or isinstance(cors_allowed_origins, (list, tuple, set, frozenset))):
            raise TypeError("cors_allowed_origins must be None, '*', a list of origins or a callable")
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(ping_timeout)
        self.max_http_buffer_size = int(max_http_buffer_size)
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        self.transports = transports
        self.allow_upgrades = allow_upgrades
        self.upgrade_timeout = upgrade_timeout
        self.max_payload_packets = max_payload_packets
        self.max_pending_bytes = int(max_pending_bytes)
        self.allow_eio3 = bool(allow_eio3)
        if max_sessions is not None and max_sessions < 1:
            raise ValueError("max_sessions must be >= 1 or None")
        self.max_sessions = max_sessions
        #: Handshakes refused by ``max_sessions`` or ``handshake_rate`` so far.
        self.refused_handshakes = 0
        self._last_refusal_log = float("-inf")
        self._last_no_ws_log = float("-inf")
        self._rate: _TokenBucket | None = None
        if handshake_rate is not None:
            count, seconds = handshake_rate
            if count < 1 or seconds <= 0:
                raise ValueError("handshake_rate is (count >= 1, seconds > 0)")
            self._rate = _TokenBucket(int(count), float(seconds))
        self.sessions: dict[str, EngineConnection] = {}
        self._handlers: dict[str, list[Handler]] = {}
        #: Observers (:mod:`socketio_sync.hooks`): ``engine.hooks.add(observer)``.
        self.hooks = Hooks()
        #: Runs every heartbeat and timeout of this server in one greenlet.
        self.timers = TimerService()
        lifecycle.register(self)  # shutdown_all() reaches its sessions
        #: Set by a bus that forwards requests between processes (:mod:`.cluster`).
        self.forwarder: Any = None
        #: The thread and hub this server runs in, set by its first request
        #: (see :mod:`socketio_sync.wsgi.runtime`).
        self.runtime: Any = None

    # -- API --------------------------------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler: ``"connection"`` gets an :class:`EngineConnection`."""
        if event != "connection":
            raise ValueError(f"unknown engine event {event!r}; use 'connection'")

        def register(fn: Handler) -> Handler:
            self._handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    @property
    def clients_count(self) -> int:
        return len(self.sessions)

    def close_all(self, reason: str = CloseReason.SERVER_SHUTTING_DOWN) -> None:
        """Close every session with a CLOSE packet (clients do not reconnect)."""
        for conn in list(self.sessions.values()):
            conn.close(reason)

    def drop_all(self, reason: str = CloseReason.SERVER_SHUTTING_DOWN) -> int:
        """End every session so that its client reconnects (:meth:`EngineConnection.drop`);
        returns how many there were."""
        conns = [conn for conn in list(self.sessions.values()) if not conn.closed]
        for conn in conns:
            try:
                conn.drop(reason)
            except Exception:
                log.exception("error dropping session %s", conn.sid)
        return len(conns)

    def _forget(self, conn: EngineConnection) -> None:
        if self.sessions.get(conn.sid) is conn:
            del self.sessions[conn.sid]

    # -- WSGI -------------------------------------------------------------------------------

    def handle_request(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not _VISIBLE_ASCII.fullmatch(origin):
            # An origin is ASCII with no spaces (RFC 6454); a folded or binary one is refused
            # rather than reflected into Access-Control-Allow-Origin.
            log.info("refused malformed Origin header %r", origin[:200],
                     extra={"remote_addr": environ.get("REMOTE_ADDR"), "reason": "malformed origin"})
            return self._error(environ, start_response, 4, [], status=403)
        cors = self._cors_headers(environ, origin)
        if cors is None:
            log.info("refused origin %r", origin,
                     extra={"remote_addr": environ.get("REMOTE_ADDR"), "reason": "origin not allowed"})
            return self._error(environ, start_response, 4, [], status=403)
        if method == "OPTIONS":
            headers = cors + [
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers",
                 _header_list(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")) or "content-type"),
                ("Content-Length", "0"),
            ]
            start_response("204 No Content", headers)
            return []
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        refusal = self._check_eio_version(query, environ)
        if refusal is not None:
            return self._error(environ, start_response, refusal[0], cors, message=refusal[1])
        transport = query.get("transport")
        if transport not in self.transports:
            return self._error(environ, start_response, 0, cors)
        sid = query.get("sid")
        try:
            if sid is None:
                refused = self._admission()
                if refused is not None:
                    return self._error(environ, start_response, 3, cors, status=refused)
                if self.allow_request is not None:
                    message = run_allow_request(self.allow_request, environ)
                    if message is not None:
                        log.info("handshake from %s refused by allow_request: %s",
                                 environ.get("REMOTE_ADDR"), message[:200])
                        return self._error(environ, start_response, 4, cors, status=403, message=message)
                if transport == "websocket":
                    return self._websocket_handshake(environ, start_response, cors)
                if method != "GET":
                    raise _Refuse(2)
                return self._polling_handshake(environ, start_response, cors)
            conn = self.sessions.get(sid)
            if conn is None and self.forwarder is not None:
                node = self.forwarder.owner_of(sid)
                if node is not None:
                    return self._forward(node, sid, transport, method, environ, start_response, cors)
            if conn is None or (conn.closed and method != "GET"):
                raise _Refuse(1)
            if conn.protocol != environ.get(EIO_PROTOCOL_KEY, 4):
                raise _Refuse(3)
            if transport == "websocket":
                return self._websocket_upgrade(conn, environ, start_response, cors)
            if method == "GET":
                status, body = conn._handle_get()
                compress = conn._poll_compress
                if not conn.session.has_outgoing():
                    conn._poll_compress = False
            elif method == "POST":
                status, body = conn._handle_post(environ)
                compress = False
            else:
                raise _Refuse(2)
            return self._respond(start_response, environ, status, body, cors, hooks=True, compress=compress)
        except _Refuse as refuse:
            return self._error(environ, start_response, refuse.code, cors, status=refuse.status or 400)

    def _forward(self, node: str, sid: str, transport: str, method: str, environ: dict[str, Any],
                 start_response: StartResponse, cors: list[tuple[str, str]]) -> Iterable[bytes]:
        """A request for a session another process owns (see :mod:`.cluster`)."""
        fwd = self.forwarder
        if transport == "websocket":
            from .handler import is_websocket_request

            if not is_websocket_request(environ) or (
                    UPGRADE_KEY not in environ and "wsgi.websocket" not in environ):
                return self._no_websocket(environ, start_response, cors)
            try:
                done = fwd.forward_websocket(node, sid, lambda: self._accept_websocket(environ, start_response))
            except HandshakeError as exc:
                log.info("bad WebSocket handshake: %s", exc)
                return self._error(environ, start_response, 3, cors)
            if not done:
                return self._error(environ, start_response, 1, cors)
            return []
        if method == "GET":
            status, body = fwd.forward_http(node, sid, "GET", None, protocol=environ.get(EIO_PROTOCOL_KEY, 4))
        elif method == "POST":
            try:
                data = _read_body(environ, self.max_http_buffer_size)
            except _TooLarge:
                log.info("session %s: POST body over %d bytes", sid, self.max_http_buffer_size)
                environ["HTTP_CONNECTION"] = "close"
                raise _Refuse(3, status=413) from None
            except _Truncated as exc:
                log.info("session %s: incomplete POST body (%s)", sid, exc)
                environ["HTTP_CONNECTION"] = "close"
                raise _Refuse(3) from None
            status, body = fwd.forward_http(node, sid, "POST", data, environ.get("CONTENT_TYPE", ""),
                                            protocol=environ.get(EIO_PROTOCOL_KEY, 4))
        else:
            raise _Refuse(2)
        if status == 200:
            return self._respond(start_response, environ, status, body, cors, hooks=True, compress=True)
        data_out = body.encode("utf-8") if isinstance(body, str) else body
        reason = {400: "Bad Request", 413: "Payload Too Large"}.get(status, "Error")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data_out)))]
        if environ.get("HTTP_CONNECTION", "").lower() == "close":
            headers.append(("Connection", "close"))
        start_response(f"{status} {reason}", headers + cors)
        return [data_out]

    def _respond(self, start_response: StartResponse, environ: dict[str, Any], status: int, body: str | bytes,
                 cors: list[tuple[str, str]], *, hooks: bool = False, handshake_sid: str | None = None,
                 compress: bool = False) -> list[bytes]:
        """A polling response. ``hooks``: add the ``headers`` hook's headers (and, for
        the handshake of ``handshake_sid``, the cookie and ``initial_headers``);
        ``compress``: gzip/deflate it per ``http_compression`` and ``Accept-Encoding``."""
        if isinstance(body, bytes):  # an Engine.IO v3 binary payload
            data, ctype = body, "application/octet-stream"
        else:
            data = body.encode("utf-8", "backslashreplace")  # lone surrogates: see websocket._SURROGATES
            ctype = "text/plain; charset=UTF-8"
        headers = [("Content-Type", ctype)]
        options = self.http_compression
        if compress and options is not None and len(data) >= options.threshold:
            encoding = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING"))
            if encoding is not None:
                data = compress_body(data, encoding, options.level)
                headers += [("Content-Encoding", encoding), ("Vary", "Accept-Encoding")]
        headers.append(("Content-Length", str(len(data))))
        if environ.get("HTTP_CONNECTION", "").lower() == "close":
            headers.append(("Connection", "close"))
        if hooks or handshake_sid is not None:
            headers += self._extra_headers(environ, handshake_sid)
        start_response(f"{status} OK", headers + cors)
        return [data]

    def _extra_headers(self, environ: dict[str, Any], handshake_sid: str | None) -> list[tuple[str, str]]:
        """The cookie and the hooks' headers for a response of a session (of its handshake
        when ``handshake_sid`` is given)."""
        extra: list[tuple[str, str]] = []
        if handshake_sid is not None:
            if self.cookie is not None:
                extra.append(("Set-Cookie", serialize_cookie(handshake_sid, self.cookie)))
            if self.initial_headers_hook is not None:
                run_header_hook("initial_headers", self.initial_headers_hook, extra, environ)
        if self.headers_hook is not None:
            run_header_hook("headers", self.headers_hook, extra, environ)
        return extra

    def _admission(self) -> int | None:
        """``None`` when a new session may open, else the HTTP status refusing it."""
        if self.max_sessions is not None and len(self.sessions) >= self.max_sessions:
            self._log_refusal("%d sessions open (max_sessions)", len(self.sessions))
            return 503
        if self._rate is not None and not self._rate.take(_now()):
            self._log_refusal("over handshake_rate (%d per %g s)", self._rate.capacity, self._rate.per)
            return 429
        return None

    def _log_refusal(self, msg: str, *args: Any) -> None:
        """A warning at most every 10 s (a flood must not flood the log), counted."""
        self.refused_handshakes += 1
        now = _now()
        if now - self._last_refusal_log >= 10.0:
            self._last_refusal_log = now
            log.warning("refusing handshakes: " + msg + "; %d refused so far", *args, self.refused_handshakes)

    def _error(self, environ: dict[str, Any], start_response: StartResponse, code: int,
               cors: list[tuple[str, str]], status: int = 400, message: str | None = None) -> list[bytes]:
        message = message or eio.ERRORS[code]
        hooks = self.hooks.error
        if hooks:
            Hooks.call(hooks, "request_refused", message, None)
        stock_ws = environ.get("wsgi.websocket")
        if stock_ws is not None:
            # gevent-websocket's stock handler already answered 101: all we can do is close.
            close_stock_websocket(stock_ws, 1008, message)
            return []
        body = error_body(code, message).encode()
        reason = {400: "Bad Request", 403: "Forbidden", 413: "Payload Too Large", 429: "Too Many Requests",
                  503: "Service Unavailable"}.get(status, "Error")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if environ.get("HTTP_CONNECTION", "").lower() == "close":
            headers.append(("Connection", "close"))
        start_response(f"{status} {reason}", headers + cors)
        return [body]

    def _check_eio_version(self, query: dict[str, str], environ: dict[str, Any]) -> tuple[int, str | None] | None:
        """Check the ``EIO`` query parameter: ``None`` when served (the version is then in
        ``environ[EIO_PROTOCOL_KEY]``), else the error code and message to answer with."""
        version = query.get("EIO")
        if version == "4":
            environ[EIO_PROTOCOL_KEY] = 4
            return None
        if version == "3" and self.allow_eio3:
            if "j" in query:
                return 3, "JSONP polling is not supported; use XHR polling or WebSocket"
            environ[EIO_PROTOCOL_KEY] = 3
            environ[EIO_B64_KEY] = bool(query.get("b64"))
            return None
        if version == "3":
            log.debug("refused an Engine.IO v3 client (Server(allow_eio3=True) serves them)")
        return 5, None

    def _cors_headers(self, environ: dict[str, Any], origin: str | None) -> list[tuple[str, str]] | None:
        """CORS response headers, or ``None`` when the origin is refused."""
        if not origin:
            return []
        allowed = self.cors_allowed_origins
        if allowed == "*":
            ok = True
        elif allowed is None:
            ok = _same_origin(environ, origin)
        elif callable(allowed):
            ok = bool(allowed(origin))
        else:
            ok = origin in allowed or _same_origin(environ, origin)
        if not ok:
            return None
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if self.cors_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def _make_sid(self) -> str:
        """A new session id: 128 random bits, after the owner's node id with forwarding."""
        sid = secrets.token_urlsafe(16)
        if self.forwarder is not None:
            sid = self.forwarder.node_id + sid  # the owner, for the other workers
        return sid

    def _new_session(self, transport: str, environ: dict[str, Any], sid: str | None = None) -> EngineConnection:
        if sid is None:
            sid = self._make_sid()
        upgrades = ["websocket"] if (transport == "polling" and self.allow_upgrades
                                     and "websocket" in self.transports
                                     and environ.get(WEBSOCKET_CAPABLE_KEY, True)) else []
        session = eio.Session(
            sid, transport=transport, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            max_payload=self.max_http_buffer_size, upgrades=upgrades, now=_now(),
            protocol=environ.get(EIO_PROTOCOL_KEY, 4),
        )
        conn = EngineConnection(self, session, environ)
        self.sessions[sid] = conn
        log.debug("session %s opened over %s from %s", sid, transport, conn.remote_addr,
                  extra={"eio_sid": sid, "transport": transport, "remote_addr": conn.remote_addr})
        return conn

    def _fire_connection(self, conn: EngineConnection) -> None:
        Hooks.call(self.hooks.engine_open, conn)
        for fn in self._handlers.get("connection", ()):
            _call(fn, conn)

    def _polling_handshake(self, environ: dict[str, Any], start_response: StartResponse,
                           cors: list[tuple[str, str]]) -> list[bytes]:
        conn = self._new_session("polling", environ)
        open_packet = conn.session.take_outgoing()
        conn._schedule_timer()
        self._fire_connection(conn)
        return self._respond(start_response, environ, 200, conn._encode_poll(open_packet), cors,
                             handshake_sid=conn.sid)

    def _accept_websocket(self, environ: dict[str, Any], start_response: StartResponse,
                          handshake_sid: str | None = None) -> Any:
        """Send 101 (through our handler) or take gevent-websocket's socket. The 101
        carries the hooks' headers (and the cookie of a handshake) and the agreed
        permessage-deflate parameters."""
        upgrade = environ.get(UPGRADE_KEY)
        if upgrade is not None:
            kwargs: dict[str, Any] = {}
            extra = self._extra_headers(environ, handshake_sid)
            deflate = negotiate(environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS"), self.per_message_deflate)
            if deflate is not None:
                extra.append(("Sec-WebSocket-Extensions", deflate.header))
                kwargs["deflate"] = deflate
            if extra:
                kwargs["headers"] = extra
            return upgrade(max_message_size=self.max_http_buffer_size, max_pending=self.max_pending_bytes,
                           **kwargs)
        ws = environ.get("wsgi.websocket")
        if ws is not None:
            return GeventWebSocketAdapter(ws, max_message_size=self.max_http_buffer_size)
        return None

    def _websocket_handshake(self, environ: dict[str, Any], start_response: StartResponse,
                             cors: list[tuple[str, str]]) -> list[bytes]:
        sid = self._make_sid()
        try:
            ws = self._accept_websocket(environ, start_response, handshake_sid=sid)
        except HandshakeError as exc:
            log.info("bad WebSocket handshake: %s", exc)
            return self._error(environ, start_response, 3, cors)
        if ws is None:
            return self._no_websocket(environ, start_response, cors)
        conn = self._new_session("websocket", environ, sid=sid)
        conn._schedule_timer()
        self._fire_connection(conn)
        conn._run_websocket(ws)
        return []

    def _websocket_upgrade(self, conn: EngineConnection, environ: dict[str, Any],
                           start_response: StartResponse, cors: list[tuple[str, str]]) -> list[bytes]:
        if conn.transport != "polling" or conn._probing or not self.allow_upgrades:
            # Already upgraded, or already probing: the spec says close this WebSocket.
            log.info("session %s: refused a second WebSocket", conn.sid)
            try:
                ws = self._accept_websocket(environ, start_response)
            except HandshakeError:
                return self._error(environ, start_response, 3, cors)
            if ws is None:
                return self._error(environ, start_response, 3, cors)
            ws.close(1008, "session already has a WebSocket")
            return []
        try:
            ws = self._accept_websocket(environ, start_response)
        except HandshakeError as exc:
            log.info("bad WebSocket handshake: %s", exc)
            return self._error(environ, start_response, 3, cors)
        if ws is None:
            return self._no_websocket(environ, start_response, cors)
        conn._run_upgrade(ws)
        return []

    def _no_websocket(self, environ: dict[str, Any], start_response: StartResponse,
                      cors: list[tuple[str, str]]) -> list[bytes]:
        from .handler import is_websocket_request

        if not is_websocket_request(environ):
            # transport=websocket without a GET + Upgrade: a client error, not the deployment's.
            log.info("transport=websocket request that is not a WebSocket handshake (%s, Upgrade: %r)",
                     environ.get("REQUEST_METHOD"), environ.get("HTTP_UPGRADE", "")[:100])
            return self._error(environ, start_response, 3, cors)
        now = _now()
        if now - self._last_no_ws_log >= 60.0:  # once a minute at most: every client retries
            self._last_no_ws_log = now
            log.warning(
                "a WebSocket request reached socketio_sync through a server without WebSocket support "
                "(clients fall back to polling); serve with socketio_sync.run()/io.listen(), gunicorn "
                "with the worker socketio_sync.gunicorn.GeventWebSocketWorker, `flask run`, or Django's "
                "runserver with 'socketio_sync.integrations.django' in INSTALLED_APPS")
        return self._error(environ, start_response, 3, cors)


class _TokenBucket:
    """``capacity`` events per ``per`` seconds, refilled continuously."""

    __slots__ = ("capacity", "per", "tokens", "stamp")

    def __init__(self, capacity: int, per: float) -> None:
        self.capacity = capacity
        self.per = per
        self.tokens = float(capacity)
        self.stamp = _now()

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.capacity / self.per)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _same_origin(environ: dict[str, Any], origin: str) -> bool:
    host = environ.get("HTTP_HOST")
    if not host:
        return False
    scheme = environ.get("wsgi.url_scheme", "http")
    if origin == f"{scheme}://{host}":
        return True
    # Behind a TLS-terminating proxy the scheme may differ; compare host[:port] only.
    return origin.split("://", 1)[-1] == host

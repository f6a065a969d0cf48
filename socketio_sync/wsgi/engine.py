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
from ..eio import CloseReason, MessageReceived, Packet, PacketType, SessionClosed, Upgraded
from . import lifecycle
from .timers import TimerService
from .websocket import GeventWebSocketAdapter, MessageTooBig, frame_message

__all__ = ["EngineServer", "EngineConnection", "HandshakeError", "Outgoing"]

log = logging.getLogger("socketio_sync.eio")

StartResponse = Callable[..., Any]
Handler = Callable[..., Any]

UPGRADE_KEY = "socketio_sync.websocket_upgrade"
#: ``False`` in the environ of a request served where WebSocket is impossible (a
#: threaded server that does not expose its sockets): the handshake offers no upgrade.
WEBSOCKET_CAPABLE_KEY = "socketio_sync.websocket_capable"


class HandshakeError(Exception):
    """A WebSocket handshake request is not valid (bad key or version)."""


def _now() -> float:
    return time.monotonic()


def _call(fn: Handler, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("error in handler %r", fn)


def _frame_packet(packet: Packet) -> bytes:
    data = packet.data
    if isinstance(data, bytes):
        return frame_message(data)
    return frame_message(f"{int(packet.type)}{data or ''}")


class Outgoing:
    """Messages for one or many clients (a broadcast), with their WebSocket frames built
    at most once and shared by every recipient.

    Packet options, as on the Node server (``writeToEngine(packets, opts)``):

    ``volatile``
        the Socket.IO layer drops the messages for a client whose transport is not
        writable right now (:attr:`EngineConnection.writable`) instead of queueing them.
    ``compress``
        ``False`` when the application asked for ``compress(False)``: the engine must
        not compress these messages (HTTP compression of a polling response made only of
        such messages, WebSocket per-message deflate). Recorded here for the engine's
        compression features; ``True`` by default.
    """

    __slots__ = ("items", "_frames", "volatile", "compress")

    def __init__(self, items: list[str | bytes], *, volatile: bool = False, compress: bool = True) -> None:
        self.items = items
        self._frames: bytes | None = None
        self.volatile = volatile
        self.compress = compress

    def frames(self) -> bytes:
        frames = self._frames
        if frames is None:
            frames = self._frames = b"".join(
                frame_message("4" + item) if isinstance(item, str) else frame_message(item)
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
        #: When the pending timer callback is due (``None``: none pending). Timers cannot be
        #: cancelled: a callback that finds an earlier one has replaced it does nothing.
        self._timer_at: float | None = None
        self._ws: Any = None
        #: For the layer above (Socket.IO keeps its Client here).
        self.user_data: Any = None

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
        ws = self._ws
        if ws is not None and ws.raw and not session.has_outgoing():
            ws.write(out.frames())
            return
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

    # -- internals --------------------------------------------------------------------------

    def _kick(self) -> None:
        """The session has new outgoing packets: hand them to the transport."""
        ws = self._ws
        if ws is not None and ws.raw:
            session = self.session
            if session.has_outgoing():
                ws.write(b"".join(_frame_packet(p) for p in session.take_outgoing()))
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
                for fn in self._handlers.get("message", ()):
                    _call(fn, event.data)
            elif isinstance(event, SessionClosed):
                self._on_closed(event)
            elif isinstance(event, Upgraded):
                for fn in self._handlers.get("upgrade", ()):
                    _call(fn, event.transport)

    def _on_closed(self, event: SessionClosed) -> None:
        log.debug("session %s closed: %s", self.sid, event.reason)
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
                log.info("session %s: %s; closing", self.sid, exc)
                self._dispatch(self.session.close(CloseReason.PARSE_ERROR))
                return
            self._dispatch(events)
            if self.session.closed:
                return
            if packet.type is PacketType.PONG:
                # The next ping is due ping_interval after this pong, which may come before
                # the pending timer (the pong deadline) when ping_timeout > ping_interval.
                self._schedule_timer()

    def _protocol_error(self, exc: Exception) -> None:
        log.info("session %s: protocol error: %s; closing", self.sid, exc)
        self._dispatch(self.session.close(CloseReason.PARSE_ERROR))

    # -- polling ----------------------------------------------------------------------------

    def _handle_get(self) -> tuple[int, str]:
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
                    return 200, eio.encode_payload([session.noop_for_poll()])
                if session.has_outgoing():
                    packets = session.take_outgoing(self.server.max_poll_packets)
                    if len(packets) > 1 and packets[-1].type is PacketType.CLOSE:
                        # The client hands Socket.IO packets to its sockets a tick after the
                        # engine handles CLOSE: send CLOSE alone, in the next response.
                        session.push_front(packets.pop())
                    if session.closed and not session.has_outgoing():
                        self.server._forget(self)
                    return 200, eio.encode_payload(packets)
                if session.closed:
                    # Closed by the client (a CLOSE packet): release the poll with a NOOP.
                    return 200, eio.encode_payload([session.noop_for_poll()])
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
                packets = eio.decode_payload(body.decode("utf-8"), self.server.max_payload_packets)
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
                packet = eio.decode_packet(msg)
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            self._receive_packets([packet])

    def _ws_writer(self, ws: Any) -> None:
        session = self.session
        try:
            while True:
                if session.has_outgoing():
                    ws.send_many([eio.encode_packet(p) for p in session.take_outgoing()])
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
                        packet = eio.decode_packet(msg)
                        if session.state is eio.SessionState.OPEN:
                            reply = session.receive_probe(packet)
                            ws.send_many([eio.encode_packet(p) for p in reply])  # type: ignore[misc]
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
    ) -> None:
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
        #: Runs every heartbeat and timeout of this server in one greenlet.
        self.timers = TimerService()
        lifecycle.register(self)  # shutdown_all() reaches its sessions
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
            log.info("refused malformed Origin header %r", origin[:200])
            return self._error(environ, start_response, 4, [], status=403)
        cors = self._cors_headers(environ, origin)
        if cors is None:
            log.info("refused origin %r", origin)
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
        if query.get("EIO") != "4":
            return self._error(environ, start_response, 5, cors)
        transport = query.get("transport")
        if transport not in self.transports:
            return self._error(environ, start_response, 0, cors)
        sid = query.get("sid")
        try:
            if sid is None:
                refused = self._admission()
                if refused is not None:
                    return self._error(environ, start_response, 3, cors, status=refused)
                if transport == "websocket":
                    return self._websocket_handshake(environ, start_response, cors)
                if method != "GET":
                    raise _Refuse(2)
                return self._polling_handshake(environ, start_response, cors)
            conn = self.sessions.get(sid)
            if conn is None or (conn.closed and method != "GET"):
                raise _Refuse(1)
            if transport == "websocket":
                return self._websocket_upgrade(conn, environ, start_response, cors)
            if method == "GET":
                status, body = conn._handle_get()
            elif method == "POST":
                status, body = conn._handle_post(environ)
            else:
                raise _Refuse(2)
            return self._respond(start_response, environ, status, body, cors)
        except _Refuse as refuse:
            return self._error(environ, start_response, refuse.code, cors, status=refuse.status or 400)

    def _respond(self, start_response: StartResponse, environ: dict[str, Any], status: int, body: str,
                 cors: list[tuple[str, str]]) -> list[bytes]:
        data = body.encode("utf-8", "backslashreplace")  # lone surrogates: see websocket._SURROGATES
        headers = [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(data)))]
        if environ.get("HTTP_CONNECTION", "").lower() == "close":
            headers.append(("Connection", "close"))
        start_response(f"{status} OK", headers + cors)
        return [data]

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
               cors: list[tuple[str, str]], status: int = 400) -> list[bytes]:
        stock_ws = environ.get("wsgi.websocket")
        if stock_ws is not None:
            # gevent-websocket's stock handler already answered 101: all we can do is close.
            try:
                stock_ws.close(1008, eio.ERRORS[code].encode())
            except Exception:
                pass
            return []
        body = json.dumps({"code": code, "message": eio.ERRORS[code]}, separators=(",", ":")).encode()
        reason = {400: "Bad Request", 403: "Forbidden", 413: "Payload Too Large", 429: "Too Many Requests",
                  503: "Service Unavailable"}.get(status, "Error")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if environ.get("HTTP_CONNECTION", "").lower() == "close":
            headers.append(("Connection", "close"))
        start_response(f"{status} {reason}", headers + cors)
        return [body]

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

    def _new_session(self, transport: str, environ: dict[str, Any]) -> EngineConnection:
        sid = secrets.token_urlsafe(16)
        upgrades = ["websocket"] if (transport == "polling" and self.allow_upgrades
                                     and "websocket" in self.transports
                                     and environ.get(WEBSOCKET_CAPABLE_KEY, True)) else []
        session = eio.Session(
            sid, transport=transport, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            max_payload=self.max_http_buffer_size, upgrades=upgrades, now=_now(),
        )
        conn = EngineConnection(self, session, environ)
        self.sessions[sid] = conn
        log.debug("session %s opened over %s from %s", sid, transport, conn.remote_addr)
        return conn

    def _fire_connection(self, conn: EngineConnection) -> None:
        for fn in self._handlers.get("connection", ()):
            _call(fn, conn)

    def _polling_handshake(self, environ: dict[str, Any], start_response: StartResponse,
                           cors: list[tuple[str, str]]) -> list[bytes]:
        conn = self._new_session("polling", environ)
        open_packet = conn.session.take_outgoing()
        conn._schedule_timer()
        self._fire_connection(conn)
        return self._respond(start_response, environ, 200, eio.encode_payload(open_packet), cors)

    def _accept_websocket(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        """Send 101 (through our handler) or take gevent-websocket's socket."""
        upgrade = environ.get(UPGRADE_KEY)
        if upgrade is not None:
            return upgrade(max_message_size=self.max_http_buffer_size, max_pending=self.max_pending_bytes)
        ws = environ.get("wsgi.websocket")
        if ws is not None:
            return GeventWebSocketAdapter(ws, max_message_size=self.max_http_buffer_size)
        return None

    def _websocket_handshake(self, environ: dict[str, Any], start_response: StartResponse,
                             cors: list[tuple[str, str]]) -> list[bytes]:
        try:
            ws = self._accept_websocket(environ, start_response)
        except HandshakeError as exc:
            log.info("bad WebSocket handshake: %s", exc)
            return self._error(environ, start_response, 3, cors)
        if ws is None:
            return self._no_websocket(environ, start_response, cors)
        conn = self._new_session("websocket", environ)
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

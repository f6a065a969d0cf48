"""One Engine.IO connection seen from Socket.IO: it multiplexes sockets of several
namespaces (Node's ``Client``)."""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable


from . import sio
from .exceptions import ConnectionRefused, RemoteProtocolError
from .socket import Handshake, Socket, now_strings

if TYPE_CHECKING:
    from .namespace import Namespace
    from .server import Server
    from .wsgi.engine import EngineConnection

__all__ = ["Client"]


log = logging.getLogger("socketio_sync.server")

_HEADER_SKIP = ("HTTP_COOKIE_",)


class Client:
    """Decodes Socket.IO packets from one engine connection and routes them.

    Event handlers run in one worker greenlet per client, in order; acks and
    disconnects are handled as they arrive, so a handler blocked in
    :meth:`Socket.call` gets its answer.
    """

    def __init__(self, server: Server, conn: EngineConnection) -> None:
        self.server = server
        self.conn = conn
        self.decoder = server.make_decoder()
        self.sockets: dict[str, Socket] = {}
        self._connecting: set[str] = set()
        #: One queue and at most one worker greenlet per namespace: the events of a socket
        #: run one after another, sockets of other namespaces are not held up.
        self._queues: dict[str, deque[tuple[Callable[..., Any], tuple[Any, ...]]]] = {}
        self._connect_pending = True
        conn.server.timers.schedule(time.monotonic() + server.connect_timeout, self._connect_timeout)
        conn.on("message", self._on_message)
        conn.on("close", self._on_engine_close)

    # -- handshake snapshot -----------------------------------------------------------------

    def make_handshake(self, auth: dict[str, Any], timestamp: float | None = None) -> Handshake:
        environ = self.conn.environ
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        from urllib.parse import parse_qsl

        qs = environ.get("QUERY_STRING", "")
        query = dict(parse_qsl(qs, keep_blank_values=True))
        time_s, issued_ms = now_strings(timestamp)
        origin = headers.get("origin")
        host = headers.get("host")
        return Handshake(
            headers=headers,
            query=query,
            address=environ.get("REMOTE_ADDR"),
            time=time_s,
            issued=issued_ms,
            url=environ.get("PATH_INFO", "") + ("?" + qs if qs else ""),
            secure=environ.get("wsgi.url_scheme") == "https",
            xdomain=origin is not None and origin.split("://", 1)[-1] != host,
            auth=auth,
        )

    # -- incoming ---------------------------------------------------------------------------

    def _on_message(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.add(data)
        except RemoteProtocolError as exc:
            log.info("connection %s: invalid Socket.IO packet (%s); closing", self.conn.sid, exc)
            self.close("parse error")
            return
        if packet is None:
            return
        ptype = packet.type
        nsp = packet.nsp
        if ptype is sio.PacketType.CONNECT:
            if nsp in self.sockets or nsp in self._connecting:
                log.info("connection %s: second CONNECT to %s; closing", self.conn.sid, nsp)
                self.close("parse error")
                return
            namespace = self.server._namespaces.get(nsp)
            if namespace is None:
                if self.server._parents:
                    # dynamic namespaces: the matchers are application code, not for the reader
                    self._connecting.add(nsp)
                    self._enqueue(nsp, self._connect_dynamic, nsp, packet.data)
                    return
                self._invalid_namespace(nsp)
                return
            self._connecting.add(nsp)
            self._enqueue(nsp, self._connect, namespace, packet.data)
            return
        socket = self.sockets.get(nsp)
        if socket is None and nsp not in self._connecting:
            log.info("connection %s: %s for %s before CONNECT; closing", self.conn.sid, ptype.name, nsp)
            self.close("parse error")
            return
        if ptype in (sio.PacketType.EVENT, sio.PacketType.BINARY_EVENT):
            self._enqueue(nsp, self._deliver_event, nsp, packet.data, packet.id)
        elif ptype in (sio.PacketType.ACK, sio.PacketType.BINARY_ACK):
            if socket is not None:
                socket._handle_ack(packet.id, packet.data)  # type: ignore[arg-type]
        elif ptype is sio.PacketType.DISCONNECT:
            if socket is not None:
                socket._on_close("client namespace disconnect")
            else:
                self._enqueue(nsp, self._deliver_disconnect, nsp)
        else:  # CONNECT_ERROR is for clients only
            log.info("connection %s: unexpected %s; closing", self.conn.sid, ptype.name)
            self.close("parse error")

    def _deliver_event(self, nsp: str, data: list[Any], ack_id: int | None) -> None:
        socket = self.sockets.get(nsp)
        if socket is not None and socket.connected:
            socket._handle_event(data, ack_id)

    def _deliver_disconnect(self, nsp: str) -> None:
        socket = self.sockets.get(nsp)
        if socket is not None:
            socket._on_close("client namespace disconnect")

    def _enqueue(self, nsp: str, fn: Callable[..., Any], *args: Any) -> None:
        queue = self._queues.get(nsp)
        if queue is None:
            queue = self._queues[nsp] = deque()
            queue.append((fn, args))
            self.server.workers.submit(self._run_queue, nsp, queue)
        else:
            queue.append((fn, args))

    def _run_queue(self, nsp: str, queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
        try:
            while queue:
                fn, args = queue.popleft()
                try:
                    fn(*args)
                except Exception:
                    log.exception("error while handling a packet of connection %s", self.conn.sid)
        finally:
            if self._queues.get(nsp) is queue:
                del self._queues[nsp]

    # -- namespace connection ---------------------------------------------------------------

    def _connect(self, namespace: Namespace, auth: Any) -> None:
        try:
            if self.conn.closed:
                return
            socket = Socket(namespace, self, auth if isinstance(auth, dict) else {})
            try:
                namespace._run_middlewares(socket)
            except ConnectionRefused as refused:
                namespace.adapter.delete_all(socket.id)  # rooms a middleware joined
                socket._closed = True
                self._refuse(namespace.name, refused)
                return
            if self.conn.closed:
                socket._closed = True
                return
            self._connect_pending = False
            socket.connected = True
            self.sockets[namespace.name] = socket
            namespace.sockets[socket.id] = socket
            namespace.adapter.add_all(socket.id, (socket.id,))
        finally:
            self._connecting.discard(namespace.name)
        try:
            namespace._fire_connection(socket)
        except ConnectionRefused as refused:
            if socket._held is not None:
                # Nothing was sent yet: a clean refusal.
                socket.connected = False
                socket._closed = True
                namespace.adapter.delete_all(socket.id)
                namespace.sockets.pop(socket.id, None)
                self._remove(socket)
                socket._held = None
                self._refuse(namespace.name, refused)
                return
            socket.disconnect()
            return
        socket._flush_held()

    def _invalid_namespace(self, nsp: str) -> None:
        self._send_packet(sio.Packet(sio.PacketType.CONNECT_ERROR, nsp, {"message": "Invalid namespace"}))

    def _connect_dynamic(self, name: str, auth: Any) -> None:
        if self.conn.closed:
            self._connecting.discard(name)
            return
        namespace = self.server._resolve_namespace(name, auth if isinstance(auth, dict) else {})
        if namespace is None:
            self._connecting.discard(name)
            self._invalid_namespace(name)
            return
        self._connect(namespace, auth)

    def _refuse(self, nsp: str, refused: ConnectionRefused) -> None:
        log.debug("connection %s refused from %s: %s", self.conn.sid, nsp, refused.message)
        self._send_packet(sio.Packet(sio.PacketType.CONNECT_ERROR, nsp, refused.to_payload()))

    def _connect_timeout(self) -> None:
        if self._connect_pending and not self.sockets and not self.conn.closed:
            log.info("connection %s: no CONNECT within %s s; closing", self.conn.sid, self.server.connect_timeout)
            self.close("forced close")

    # -- outgoing / closing -----------------------------------------------------------------

    def _send_packet(self, packet: sio.Packet) -> None:
        self.conn.send_many(self.server.encoder.encode(packet))

    def _remove(self, socket: Socket) -> None:
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    def disconnect(self) -> None:
        """Disconnect every namespace (each client socket gets DISCONNECT), then close the
        connection: what ``socket.disconnect(close=True)`` does."""
        for socket in list(self.sockets.values()):
            socket.disconnect()
        self.close("forced server close")

    def close(self, reason: str = "forced close") -> None:
        """Close the engine connection; every socket gets ``reason``."""
        self.conn.close(reason)

    def _on_engine_close(self, reason: str) -> None:
        self._connect_pending = False
        for socket in list(self.sockets.values()):
            socket._on_close(reason)
        for queue in self._queues.values():
            queue.clear()

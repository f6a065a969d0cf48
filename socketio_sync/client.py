"""One Engine.IO connection seen from Socket.IO: it multiplexes sockets of several
namespaces (Node's ``Client``)."""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl


from . import sio
from .exceptions import ConnectionRefused, RemoteProtocolError
from .hooks import Hooks
from .recovery import SessionState
from .socket import Handshake, Socket, now_strings

if TYPE_CHECKING:
    from .namespace import Namespace
    from .recovery import RestoredSession
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
        #: The Socket.IO protocol version: 5, or 4 for Socket.IO v2 clients (Engine.IO v3).
        self.protocol = 4 if conn.protocol == 3 else 5
        if self.protocol == 4:
            # Protocol v4: the client is in "/" as soon as the engine session opens.
            query = dict(parse_qsl(conn.environ.get("QUERY_STRING", ""), keep_blank_values=True))
            self._connecting.add("/")
            self._enqueue("/", self._connect, server.sockets, sio.v4.auth_from_query(query))

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
        if self.protocol == 4:
            # A v2 client's per-namespace query (``io("/chat", {query})``) arrives with its
            # CONNECT and is also the auth payload; it overrides the request's, as on Node 2.
            query.update(auth)
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
            log.info("connection %s: invalid Socket.IO packet (%s); closing", self.conn.sid, exc,
                     extra={"eio_sid": self.conn.sid, "reason": "parse error", "remote_addr": self.conn.remote_addr})
            Hooks.call(self.conn.server.hooks.error, "parse_error", str(exc), self.conn)
            self.close("parse error")
            return
        if packet is None:
            return
        ptype = packet.type
        nsp = packet.nsp
        if ptype is sio.PacketType.CONNECT:
            auth = packet.data
            if self.protocol == 4:
                try:
                    nsp, auth = sio.v4.split_namespace(nsp)
                except RemoteProtocolError as exc:
                    log.info("connection %s: %s; closing", self.conn.sid, exc)
                    self.close("parse error")
                    return
                if nsp == "/" and (nsp in self.sockets or nsp in self._connecting):
                    return  # already connected to "/" when the session opened
            if nsp in self.sockets or nsp in self._connecting:
                log.info("connection %s: second CONNECT to %s; closing", self.conn.sid, nsp)
                self.close("parse error")
                return
            namespace = self.server._namespaces.get(nsp)
            if namespace is None:
                if self.server._parents:
                    # dynamic namespaces: the matchers are application code, not for the reader
                    self._connecting.add(nsp)
                    self._enqueue(nsp, self._connect_dynamic, nsp, auth)
                    return
                self._invalid_namespace(nsp)
                return
            self._connecting.add(nsp)
            self._enqueue(nsp, self._connect, namespace, auth)
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
            auth = auth if isinstance(auth, dict) else {}
            session = None
            recovery = self.server.recovery
            if recovery is not None:
                session, auth = self._restore(namespace, auth)
                if self.conn.closed:
                    self._keep(namespace, session)
                    return
            socket = Socket(namespace, self, auth, session)
            if session is not None:
                # As on Node, a restored socket is back in its rooms at once: what is
                # broadcast while its middlewares run waits in socket._held, after the
                # missed packets, and nothing falls in between.
                namespace.sockets[socket.id] = socket
                namespace.adapter.add_all(socket.id, (socket.id, *session.rooms))
            try:
                if session is None or not recovery.skip_middlewares:  # type: ignore[union-attr]
                    namespace._run_middlewares(socket)
            except ConnectionRefused as refused:
                namespace.adapter.delete_all(socket.id)  # rooms a middleware joined
                if namespace.sockets.get(socket.id) is socket:
                    del namespace.sockets[socket.id]
                socket._closed = True
                self._refuse(namespace.name, refused)
                return
            if self.conn.closed:
                socket._closed = True
                if session is not None:
                    namespace.adapter.delete_all(socket.id)
                    if namespace.sockets.get(socket.id) is socket:
                        del namespace.sockets[socket.id]
                    self._keep(namespace, session)
                return
            self._connect_pending = False
            socket.connected = True
            self.sockets[namespace.name] = socket
            namespace.sockets[socket.id] = socket
            namespace.adapter.add_all(socket.id, (socket.id,))
            if session is not None:
                log.debug("connection %s: recovered socket %s in %s (%d missed packets)",
                          self.conn.sid, socket.id, namespace.name, len(session.missed))
            log.debug("socket %s joined %s", socket.id, namespace.name,
                      extra={"eio_sid": self.conn.sid, "sid": socket.id, "namespace": namespace.name,
                             "remote_addr": self.conn.remote_addr})
            Hooks.call(self.conn.server.hooks.socket_connect, socket)
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

    def _restore(self, namespace: Namespace, auth: dict[str, Any]) -> tuple[RestoredSession | None, dict[str, Any]]:
        """Connection state recovery: the session named by ``pid`` and ``offset`` in the
        CONNECT payload, if it can be restored, and the auth without those two keys."""
        pid, offset = auth.get("pid"), auth.get("offset")
        if "pid" in auth or "offset" in auth:
            auth = {k: v for k, v in auth.items() if k not in ("pid", "offset")}
        if not isinstance(pid, str) or not isinstance(offset, str):
            return None, auth
        if len(pid) > 200 or len(offset) > 200:
            log.info("connection %s: oversized pid/offset in CONNECT; not recovering", self.conn.sid)
            return None, auth
        try:
            session = namespace.adapter.restore_session(pid, offset)
        except Exception:
            log.exception("connection %s: could not restore a session of %s", self.conn.sid, namespace.name)
            return None, auth
        if session is not None and session.sid in namespace.sockets:
            log.info("connection %s: session %s of %s is connected elsewhere; not recovering",
                     self.conn.sid, session.sid, namespace.name)
            return None, auth
        return session, auth

    def _keep(self, namespace: Namespace, session: RestoredSession | None) -> None:
        """The connection went away while a session was being restored: keep the session
        again, so that the client's next attempt (with the same offset) recovers."""
        if session is None:
            return
        try:
            namespace.adapter.persist_session(
                SessionState(session.sid, session.pid, list(session.rooms), session.data))
        except Exception:
            log.exception("connection %s: could not keep session %s again", self.conn.sid, session.sid)

    def _invalid_namespace(self, nsp: str) -> None:
        Hooks.call(self.conn.server.hooks.error, "connection_refused", "Invalid namespace", self.conn)
        if self.protocol == 4:
            self._send_packet(sio.v4.connect_error(nsp, "Invalid namespace"))
        else:
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
        log.debug("connection %s refused from %s: %s", self.conn.sid, nsp, refused.message,
                  extra={"eio_sid": self.conn.sid, "namespace": nsp, "reason": refused.message,
                         "remote_addr": self.conn.remote_addr})
        Hooks.call(self.conn.server.hooks.error, "connection_refused", refused.message, self.conn)
        if self.protocol == 4:
            self._send_packet(sio.v4.connect_error(nsp, refused.message, refused.data))
        else:
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

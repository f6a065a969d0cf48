"""Session forwarding: any worker serves any request of any Engine.IO session.

Without sticky sessions, the requests of one long-polling client land on every worker
of a ``gunicorn -w N`` (or every host behind a round-robin proxy), but its session (the
Engine.IO state, its Socket.IO sockets and the handlers the application registered on
them) lives in the one process that answered the handshake: its *owner*. Handlers are
Python closures and cannot move between processes, so requests move instead:

* a session id starts with its owner's node id (8 characters; 128 random bits follow);
* a worker that gets a request for a session it does not hold forwards it to the owner
  over Redis pub/sub (the Redis adapter's connection, channel ``<key>#eio#<node>``) and
  writes out the owner's answer:

  - ``GET`` (long-poll): the owner runs the poll as if it were local and publishes the
    packets when there are some; the forwarding worker waits for them;
  - ``POST``: the body is read (with the usual ``max_http_buffer_size`` limit) and
    handed to the owner, which parses and handles it and answers ``ok`` or the error;
  - a WebSocket upgrade: the forwarding worker accepts the WebSocket and relays its
    messages both ways; the session stays with its owner (which runs the probe, the
    upgrade and the heartbeat as for a local WebSocket).

* failures: when no process listens on the owner's channel (the owner died or was
  stopped), the request gets the spec's ``400 {"code":1,"message":"Session ID unknown"}``
  at once and the client reconnects to a live worker. An owner that does not answer a
  POST within ``request_timeout`` (or a GET within ``ping_interval + ping_timeout +
  request_timeout``) gets the same answer. A stopping worker releases the polls it is
  forwarding (the owner answers them with a NOOP), so their clients see nothing.

The owner checks the session id itself; the forwarding worker checks the origin (CORS),
the transport and the protocol version with its own, identical configuration.

Message format on the bus: MessagePack maps, ``{"op", "rid", "sid", "from", ...}``;
nothing that executes code on decode.
"""
from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable

import gevent
from gevent.event import AsyncResult
from gevent.queue import Queue

from .websocket import MessageTooBig

if TYPE_CHECKING:
    from .engine import EngineConnection, EngineServer

__all__ = ["SessionForwarder", "NODE_ID_LENGTH"]

log = logging.getLogger("socketio_sync.cluster")

#: Characters of the owner's node id at the start of every session id.
NODE_ID_LENGTH = 8
_SID_LENGTH = NODE_ID_LENGTH + 22  # + secrets.token_urlsafe(16)
#: Seconds between checks that the owner of a waiting forwarded request still listens.
_LIVENESS_INTERVAL = 3.0

#: The answer for a session no live worker holds (Engine.IO error code 1).
UNKNOWN_SID = (400, '{"code":1,"message":"Session ID unknown"}')


class _OwnerGone(Exception):
    pass


class SessionForwarder:
    """Forwards requests for sessions owned by other processes; created by
    :class:`~socketio_sync.RedisAdapter` for the server it serves (see the module doc).

    :param bus: an object with ``publish_raw(channel, bytes) -> receivers``,
        ``listen(channel, callback)``, ``pack``/``unpack`` and a ``key``.
    :param request_timeout: seconds an owner has to answer a forwarded POST or WebSocket
        open (a GET gets ``ping_interval + ping_timeout`` more).
    :param local_links: talk to the processes of the same host over Unix sockets (one per
        process, in a private directory under the system's temp dir) instead of Redis:
        the same messages, a fraction of the cost. Other hosts are reached over Redis.
    """

    def __init__(self, engine: EngineServer, bus: Any, *, request_timeout: float = 10.0,
                 local_links: bool = True) -> None:
        self.engine = engine
        self.bus = bus
        self.request_timeout = float(request_timeout)
        self._pid = -1
        self._node = ""
        self._rids = itertools.count(1)
        #: Forwarded requests waiting for the owner's answer: rid -> AsyncResult.
        self._waiting: dict[int, AsyncResult] = {}
        #: Forwarded GETs in flight here: rid -> (owner node, sid), to release on shutdown.
        self._polls: dict[int, tuple[str, str]] = {}
        #: WebSockets relayed here for a remote owner: rid -> _RelayedSocket.
        self._relays: dict[int, _RelayedSocket] = {}
        #: WebSockets of local sessions whose client is connected to another worker.
        self._remote_ws: dict[tuple[str, int], RemoteWebSocket] = {}
        #: (from, rid) of forwarded GETs running here, to release on request.
        self._local_polls: dict[tuple[str, int], EngineConnection] = {}
        self.stats = {"forwarded_get": 0, "forwarded_post": 0, "forwarded_ws": 0, "served_for_others": 0,
                      "owner_gone": 0, "timeouts": 0}
        self.stopping = False
        #: Greenlets answering forwarded requests here (waited for when stopping).
        self._serving: set[gevent.Greenlet] = set()
        #: node -> (monotonic time of the check, alive): owners checked while a poll waits.
        self._liveness: dict[str, tuple[float, bool]] = {}
        publish_many = getattr(bus, "publish_many", None)
        self._batcher = _Batcher(publish_many if publish_many is not None else
                                 (lambda items: [int(bus.publish_raw(c, d)) for c, d in items]))
        #: Direct links to the other processes of this host (Unix sockets), when possible.
        self._links: _LocalLinks | None = _LocalLinks.create(bus.key, self._on_message) if local_links else None
        engine.forwarder = self

    # -- identity ---------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        """This process's node id; made again after a fork (``gunicorn --preload``)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._node = secrets.token_urlsafe(6)  # 8 characters
            self.bus.listen(self.channel(self._node), self._on_message)
            if self._links is not None:
                self._links.start(self._node)
        return self._node

    def channel(self, node: str) -> str:
        return f"{self.bus.key}#eio#{node}"

    def owner_of(self, sid: str) -> str | None:
        """The node that owns ``sid``, when it is another process; else ``None``."""
        if len(sid) != _SID_LENGTH:
            return None
        node = sid[:NODE_ID_LENGTH]
        return None if node == self.node_id else node

    # -- the forwarding side ------------------------------------------------------------------

    def _publish(self, node: str, message: dict[str, Any]) -> int:
        """Send to ``node`` (over its Unix socket when it is on this host, else Redis);
        the number of processes that got it (0: ``node`` is gone)."""
        data = self.bus.pack(message)
        if self._links is not None:
            sent = self._links.send(node, data)
            if sent is not None:
                return sent
        return self._batcher.publish(self.channel(node), data)

    def _owner_alive(self, node: str) -> bool:
        if self._links is not None and self._links.knows(node):
            return self._links.alive(node)
        return self._owner_alive_on_bus(node)

    def _request(self, node: str, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        rid = message["rid"]
        result = AsyncResult()
        self._waiting[rid] = result
        try:
            if self._publish(node, message) == 0:
                self.stats["owner_gone"] += 1
                raise _OwnerGone()
            if self.stopping and message["op"] == "get":
                # This worker is stopping: the owner answers at once (NOOP if it has nothing).
                self._publish(node, {"op": "release", "rid": rid, "from": self.node_id})
            reply = self._wait(node, result, timeout)
        except gevent.Timeout:
            self.stats["timeouts"] += 1
            log.warning("no answer from node %s for %s of session %s in %.0f s; answering 'Session ID unknown'",
                        node, message["op"], message["sid"], timeout)
            raise _OwnerGone() from None
        finally:
            self._waiting.pop(rid, None)
        return reply  # type: ignore[no-any-return]

    def _wait(self, node: str, result: AsyncResult, timeout: float) -> dict[str, Any]:
        """The owner's answer; checks every few seconds that the owner still listens
        (a worker killed while our poll waited would otherwise hold it to the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise gevent.Timeout()
            try:
                return result.get(timeout=min(left, _LIVENESS_INTERVAL))  # type: ignore[no-any-return]
            except gevent.Timeout:
                if not self._owner_alive(node):
                    self.stats["owner_gone"] += 1
                    raise _OwnerGone() from None

    def _owner_alive_on_bus(self, node: str) -> bool:
        now = time.monotonic()
        checked = self._liveness.get(node)
        if checked is not None and now - checked[0] < _LIVENESS_INTERVAL:
            return checked[1]
        alive = self.bus.numsub(self.channel(node)) > 0
        if len(self._liveness) > 1000:
            self._liveness.clear()
        self._liveness[node] = (now, alive)
        return alive

    def forward_http(self, node: str, sid: str, method: str, body: bytes | None,
                     content_type: str = "", protocol: int = 4) -> tuple[int, str | bytes]:
        """Forward a polling GET or POST of ``sid`` to ``node``; returns (status, body).
        ``protocol``: the request's Engine.IO version (the owner refuses a mismatch)."""
        rid = next(self._rids)
        if method == "GET":
            self.stats["forwarded_get"] += 1
            timeout = self.engine.ping_interval + self.engine.ping_timeout + self.request_timeout
            self._polls[rid] = (node, sid)
        else:
            self.stats["forwarded_post"] += 1
            timeout = self.request_timeout
        message = {"op": method.lower(), "rid": rid, "sid": sid, "from": self.node_id, "eio": protocol}
        if body is not None:
            message["body"] = body
            message["ctype"] = content_type
        try:
            reply = self._request(node, message, timeout)
        except _OwnerGone:
            log.info("session %s: its owner %s is gone; the client will reconnect", sid, node)
            return UNKNOWN_SID
        finally:
            self._polls.pop(rid, None)
        body_out = reply.get("body", "")
        if not isinstance(body_out, (str, bytes)):
            body_out = str(body_out)
        return int(reply.get("status", 500)), body_out

    def forward_websocket(self, node: str, sid: str, accept: Callable[[], Any]) -> bool:
        """Ask ``node`` to upgrade ``sid`` over a WebSocket relayed from here. ``accept()``
        sends the 101 and returns our WebSocket. Returns ``False`` when the owner refused
        (or is gone) before the 101: the caller answers with an HTTP error."""
        rid = next(self._rids)
        relay = _RelayedSocket(self, node, rid)
        self._relays[rid] = relay
        try:
            try:
                reply = self._request(node, {"op": "ws_open", "rid": rid, "sid": sid, "from": self.node_id},
                                      self.request_timeout)
            except _OwnerGone:
                return False
            if not reply.get("ok"):
                return False
            self.stats["forwarded_ws"] += 1
            try:
                ws = accept()
            except Exception:
                self._publish(node, {"op": "ws_close", "rid": rid, "from": self.node_id})
                raise
            relay.run(ws)
            return True
        finally:
            self._relays.pop(rid, None)

    # -- the owner's side -------------------------------------------------------------------

    def _on_message(self, data: bytes) -> None:
        """Bus listener (one greenlet, in order): never blocks."""
        try:
            message = self.bus.unpack(data)
            op = message["op"]
            rid = int(message["rid"])
        except Exception as exc:  # not ours, or malformed: nothing else may break
            log.info("dropped a malformed session-forwarding message: %s", exc)
            return
        if op == "reply":
            waiting = self._waiting.get(rid)
            if waiting is not None:
                waiting.set(message)
            return
        sender = message.get("from")
        if not isinstance(sender, str):
            return
        if op == "ws_out":
            relay = self._relays.get(rid)
            if relay is not None:
                relay.outgoing(message.get("items") or [])
            return
        if op == "ws_in":
            remote = self._remote_ws.get((sender, rid))
            if remote is not None:
                remote.incoming(message.get("data"))
            return
        if op == "ws_close":
            remote = self._remote_ws.pop((sender, rid), None)
            if remote is not None:
                remote.incoming(None)
            relay = self._relays.get(rid)
            if relay is not None and sender != self.node_id:
                relay.outgoing(None)
            return
        if op == "release":
            conn = self._local_polls.get((sender, rid))
            if conn is not None:
                conn.release_poll()
            return
        sid = message.get("sid")
        conn = self.engine.sessions.get(sid) if isinstance(sid, str) else None
        self.stats["served_for_others"] += 1
        if op == "ws_open":
            self._open_remote_ws(conn, sender, rid)
        elif op in ("get", "post"):
            if conn is not None and message.get("eio", conn.protocol) != conn.protocol:
                # as for a local request: a v4 request for a v3 session, or the reverse
                from .engine import error_body

                self._reply(sender, rid, status=400, body=error_body(3))
                return
            if op == "get" and conn is not None:
                # Now, in order: a "release" right behind this request must find it.
                self._local_polls[(sender, rid)] = conn
            greenlet = gevent.spawn(self._serve_http, conn, op, sender, rid, message.get("body"),
                                    str(message.get("ctype") or ""))
            self._serving.add(greenlet)
            greenlet.link(self._serving.discard)

    def _reply(self, node: str, rid: int, **fields: Any) -> None:
        self._publish(node, {"op": "reply", "rid": rid, **fields})

    def _serve_http(self, conn: EngineConnection | None, op: str, sender: str, rid: int, body: Any,
                    content_type: str = "") -> None:
        from .engine import _Refuse, error_body

        if conn is None or (conn.closed and op != "get"):
            self._local_polls.pop((sender, rid), None)
            self._reply(sender, rid, status=UNKNOWN_SID[0], body=UNKNOWN_SID[1])
            return
        try:
            if op == "get":
                try:
                    status, text = conn._handle_get()
                finally:
                    self._local_polls.pop((sender, rid), None)
            else:
                if not isinstance(body, bytes):
                    raise _Refuse(3)
                environ = {"wsgi.input": _BytesReader(body), "CONTENT_LENGTH": str(len(body)),
                           "CONTENT_TYPE": content_type}
                status, text = conn._handle_post(environ)
        except _Refuse as refuse:
            status, text = refuse.status or 400, error_body(refuse.code)
        except Exception:
            log.exception("session %s: forwarded %s failed", conn.sid, op.upper())
            status, text = 500, error_body(3)
        self._reply(sender, rid, status=status, body=text)

    def _open_remote_ws(self, conn: EngineConnection | None, sender: str, rid: int) -> None:
        if (conn is None or conn.closed or conn.transport != "polling" or conn._probing
                or not self.engine.allow_upgrades):
            self._reply(sender, rid, ok=False)
            return
        remote = RemoteWebSocket(self, sender, rid, self.engine.max_http_buffer_size)
        self._remote_ws[(sender, rid)] = remote
        conn._probing = True  # until the upgrade greenlet takes over: no second probe

        def run() -> None:
            try:
                conn._run_upgrade(remote)
            finally:
                self._remote_ws.pop((sender, rid), None)
                remote.close()

        gevent.spawn(run)
        self._reply(sender, rid, ok=True)

    # -- stopping ---------------------------------------------------------------------------

    def release_all(self) -> int:
        """A stopping worker: ask the owners to answer the polls forwarded through here
        now (with a NOOP when they have nothing), refuse new forwarding, close the
        relayed WebSockets (their clients reconnect). Returns the polls released."""
        self.stopping = True
        polls = list(self._polls.items())
        for rid, (node, _sid) in polls:
            try:
                self._publish(node, {"op": "release", "rid": rid, "from": self.node_id})
            except Exception as exc:
                log.info("could not release a forwarded poll: %s", exc)
        for relay in list(self._relays.values()):
            relay.outgoing(None, code=1001)
        return len(polls)

    def finish(self, timeout: float = 2.0) -> None:
        """Wait (at most ``timeout`` s) for the answers to forwarded requests that are
        being written: after this process's sessions were dropped, their pending polls
        (forwarded from other workers) must get their answers before the process exits."""
        if self._serving:
            gevent.joinall(list(self._serving), timeout=timeout)


class _LocalLinks:
    """Links between the processes of one host: each listens on a Unix socket named by
    its node id in a directory only this user can enter; a message is a 4-byte length
    and the packed message. One connection per peer, written under a lock, so messages
    to one peer keep their order (as on a Redis channel)."""

    #: Frames larger than this are refused (a forwarded body is at most max_http_buffer_size).
    MAX_FRAME = 256 * 1024 * 1024

    def __init__(self, directory: str, key: str, on_message: Callable[[bytes], None]) -> None:
        self.directory = directory
        self.prefix = "".join(c if c.isalnum() else "_" for c in key)[:40]
        self.on_message = on_message
        self._server: Any = None
        self._path: str | None = None
        self._out: dict[str, Any] = {}
        self._locks: dict[str, Any] = {}

    @classmethod
    def create(cls, key: str, on_message: Callable[[bytes], None]) -> _LocalLinks | None:
        import tempfile

        directory = os.path.join(tempfile.gettempdir(), f"socketio_sync-{os.getuid()}")
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            st = os.stat(directory)
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                log.warning("%s is not private to this user: forwarding between workers goes over Redis",
                            directory)
                return None
        except OSError as exc:
            log.warning("no directory for local links (%s): forwarding between workers goes over Redis", exc)
            return None
        return cls(directory, key, on_message)

    def path(self, node: str) -> str:
        return os.path.join(self.directory, f"{self.prefix}-{node}.sock")

    def start(self, node: str) -> None:
        from gevent import socket as _socket

        from gevent.server import StreamServer

        if self._server is not None:  # a fork (--preload): the parent's socket is not ours
            self._server = None
            self._out.clear()
            self._locks.clear()
        path = self.path(node)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(128)
        self._server = StreamServer(listener, self._serve)
        self._server.start()
        self._path = path
        import atexit

        atexit.register(self._unlink, path)

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    def knows(self, node: str) -> bool:
        return os.path.exists(self.path(node))

    def alive(self, node: str) -> bool:
        return self._connection(node) is not None

    def _connection(self, node: str) -> Any:
        from gevent import socket as _socket

        conn = self._out.get(node)
        if conn is not None:
            return conn
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            conn.connect(self.path(node))
        except OSError:
            conn.close()
            return None
        self._out[node] = conn
        return conn

    def send(self, node: str, data: bytes) -> int | None:
        """1 when sent, 0 when ``node`` was on this host and is gone, ``None`` when it is
        not on this host (use Redis)."""
        from gevent.lock import Semaphore

        if node not in self._out and not self.knows(node):
            return None
        lock = self._locks.get(node)
        if lock is None:
            lock = self._locks[node] = Semaphore()
        with lock:
            conn = self._connection(node)
            if conn is None:
                self._unlink(self.path(node))  # a stale socket of a process that died
                return 0
            try:
                conn.sendall(len(data).to_bytes(4, "big") + data)
            except OSError:
                self._out.pop(node, None)
                conn.close()
                return 0
        return 1

    def _serve(self, sock: Any, _address: Any) -> None:
        buf = b""
        try:
            while True:
                while len(buf) < 4:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                size = int.from_bytes(buf[:4], "big")
                if size > self.MAX_FRAME:
                    log.warning("local link: a %d-byte frame; closing the link", size)
                    return
                while len(buf) < 4 + size:
                    chunk = sock.recv(max(65536, 4 + size - len(buf)))
                    if not chunk:
                        return
                    buf += chunk
                data, buf = buf[4:4 + size], buf[4 + size:]
                try:
                    self.on_message(data)
                except Exception:
                    log.exception("error handling a message from a local link")
        except OSError:
            return
        finally:
            sock.close()


class _Batcher:
    """Publishes what the greenlets of this process want to publish in batches: one Redis
    round trip (a pipeline) for every message queued while the previous batch was on
    its way. Under load this divides the system calls per forwarded request; alone, a
    message goes out at the next turn of the hub. Order is kept (one flusher)."""

    def __init__(self, publish_many: Callable[[list[tuple[str, bytes]]], list[int]]) -> None:
        self._publish_many = publish_many
        self._pending: list[tuple[str, bytes, AsyncResult]] = []
        self._flusher: gevent.Greenlet | None = None

    def publish(self, channel: str, data: bytes) -> int:
        result = AsyncResult()
        self._pending.append((channel, data, result))
        if self._flusher is None:
            self._flusher = gevent.spawn(self._flush)
        return int(result.get())

    def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    counts = self._publish_many([(channel, data) for channel, data, _ in batch])
                except Exception as exc:
                    for _, _, result in batch:
                        result.set_exception(exc)
                else:
                    for (_, _, result), count in zip(batch, counts):
                        result.set(count)
        finally:
            self._flusher = None


class _BytesReader:
    """``wsgi.input`` for a forwarded POST body."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int = -1) -> bytes:
        data, self._data = (self._data, b"") if n < 0 else (self._data[:n], self._data[n:])
        return data


class RemoteWebSocket:
    """What the owner's session sees of a WebSocket connected to another worker: the
    interface of :class:`~socketio_sync.wsgi.websocket.GeventWebSocketAdapter`."""

    raw = False

    def __init__(self, forwarder: SessionForwarder, node: str, rid: int, max_message_size: int) -> None:
        self._fwd = forwarder
        self._node = node
        self._rid = rid
        self.max_message_size = max_message_size
        self._queue: Queue = Queue()
        self.closed = False

    #: No permessage-deflate here (the relaying worker's WebSocket may have its own).
    deflate = None

    @property
    def writable(self) -> bool:
        """For ``volatile`` packets: a relayed WebSocket takes messages while it is open."""
        return not self.closed

    def incoming(self, data: Any) -> None:
        self._queue.put(data if isinstance(data, (str, bytes)) else None)

    def receive(self) -> str | bytes | None:
        if self.closed and self._queue.empty():
            return None
        msg = self._queue.get()
        if msg is None:
            self.closed = True
            return None
        if len(msg) > self.max_message_size:
            self.close(1009, "message too big")
            raise MessageTooBig(f"WebSocket message over {self.max_message_size} bytes")
        return msg  # type: ignore[no-any-return]

    def send(self, data: str | bytes) -> None:
        self.send_many([data])

    def send_many(self, items: list[str | bytes]) -> None:
        if self.closed:
            raise ConnectionError("the relayed WebSocket is closed")
        if self._fwd._publish(self._node, {"op": "ws_out", "rid": self._rid, "from": self._fwd.node_id,
                                           "items": list(items)}) == 0:
            self.closed = True
            raise ConnectionError("the worker relaying this WebSocket is gone")

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            self._queue.put(None)
            return
        self.closed = True
        self._queue.put(None)
        try:
            self._fwd._publish(self._node, {"op": "ws_close", "rid": self._rid, "from": self._fwd.node_id,
                                            "code": code, "reason": reason})
        except Exception:
            pass


class _RelayedSocket:
    """The forwarding worker's end: the client's WebSocket, relayed to the owner."""

    def __init__(self, forwarder: SessionForwarder, node: str, rid: int) -> None:
        self._fwd = forwarder
        self._node = node
        self._rid = rid
        self._out: Queue = Queue()
        self._ws: Any = None

    def outgoing(self, items: list[Any] | None, code: int = 1000) -> None:
        self._out.put(items if items is not None else code)

    def run(self, ws: Any) -> None:
        self._ws = ws
        writer = gevent.spawn(self._writer, ws)
        fwd = self._fwd
        try:
            while True:
                try:
                    msg = ws.receive()
                except MessageTooBig:
                    break
                if msg is None:
                    break
                if fwd._publish(self._node, {"op": "ws_in", "rid": self._rid, "from": fwd.node_id,
                                             "data": msg}) == 0:
                    log.info("relayed WebSocket: the owner %s is gone; closing", self._node)
                    ws.close(1011, "session owner gone")
                    break
        finally:
            try:
                fwd._publish(self._node, {"op": "ws_close", "rid": self._rid, "from": fwd.node_id})
            except Exception:
                pass
            self._out.put(1000)
            writer.join(timeout=5)
            ws.close()

    def _writer(self, ws: Any) -> None:
        while True:
            item = self._out.get()
            if isinstance(item, int):
                ws.close(item, "")
                return
            try:
                ws.send_many([x for x in item if isinstance(x, (str, bytes))])
            except (ConnectionError, OSError):
                return

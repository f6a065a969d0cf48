"""The Socket.IO Admin UI (``@socket.io/admin-ui`` from npm) for a socketio_sync server.

:func:`instrument` is the equivalent of the npm package's ``instrument(io, options)``: it
opens the admin namespace (``/admin``) and speaks the UI's protocol there, so the UI
(hosted, or served by :func:`ui_app`) connects to this server as it would to Node's::

    from socketio_sync import admin

    io = socketio_sync.Server()
    admin.instrument(io, auth={"type": "basic", "username": "admin",
                               "password": "$2b$12$..."})       # a bcrypt hash
    ui = admin.ui_app("node_modules/@socket.io/admin-ui/ui/dist", icons="node_modules/@mdi/font",
                      app=flask_app.wsgi_app)
    app = socketio_sync.WSGIApp(io, ui)   # the UI at /admin-ui/, Socket.IO at /socket.io/

Open ``http://HOST:PORT/admin-ui/``, enter ``http://HOST:PORT`` as the server URL and the
credentials. ``pip install 'socketio_sync[admin]'`` brings ``bcrypt`` for basic auth.

What the UI gets (the npm package's wire protocol, version 0.5):

- ``config`` (``supportedFeatures``), then in development mode ``all_sockets`` (every
  socket of every namespace, with its handshake and rooms; through the adapter, so a
  Redis cluster's sockets too);
- ``server_stats`` every 2 seconds: server id, hostname, pid, uptime (seconds since
  this module was imported), Engine.IO client counts, per-namespace socket counts, and
  the connections, disconnections, packets and bytes of each second since the last one;
- in development mode, live: ``socket_connected``, ``socket_updated`` (transport
  upgrades), ``socket_disconnected``, ``room_joined``, ``room_left``,
  ``event_received`` and ``event_sent`` (``socket.emit`` to one client; broadcasts are
  not listed, as on Node).

Commands from the UI, refused in read-only mode: ``emit`` (namespace, room or ``None``,
event, args...), ``join`` / ``leave`` (namespace, room, filter room or ``None``) and
``_disconnect`` (namespace, close, filter room or ``None``); the filter is usually a
socket id (every socket is in the room named by its id). A command is answered (when
the client asks for an ack) with nothing once done, or with ``{"error": "read-only"}``,
``{"error": "unknown namespace"}``... when refused; refusals are logged (Node leaves
refused commands unanswered and creates unknown namespaces).

Differences from Node: changes to ``socket.data`` after the connection are not pushed
live (they show on the next ``all_sockets``, i.e. when the UI reconnects); sessions of
the basic auth are kept in memory (24 h), per process.

.. versionadded:: 0.2
"""
from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import os
import re
import secrets
import socket as _socket
import time
import weakref
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

import gevent

from .adapters import InMemoryAdapter
from .exceptions import ConnectionRefused, LocalProtocolError
from .wsgi.runtime import from_any_thread

if TYPE_CHECKING:
    from .namespace import Namespace
    from .server import Server
    from .socket import Socket

__all__ = ["instrument", "AdminUI", "ui_app"]

log = logging.getLogger("socketio_sync.admin")

_in_hub = from_any_thread(lambda admin: admin.io.engine)

_STARTED = time.monotonic()
_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$")
#: How often server_stats go out, in seconds (the UI marks a server unhealthy after 10 s).
STATS_INTERVAL = 2.0
SESSION_LIFETIME = 86400.0
MAX_SESSIONS = 1000

FEATURES = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")


def _now_iso() -> str:
    """A JavaScript ``Date`` as JSON sends it."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def instrument(io: Server, *, auth: Any, mode: str = "development", read_only: bool = False,
               namespace_name: str = "/admin", server_id: str | None = None) -> AdminUI:
    """Open the Admin UI's namespace on ``io``.

    :param auth: ``False`` (no authentication: anyone who reaches the server administers
        it) or ``{"type": "basic", "username": "...", "password": "<bcrypt hash>"}``.
        Required, as on Node, so that no one forgets it.
    :param mode: ``"development"`` (every socket, room and event is pushed to the UI) or
        ``"production"`` (only the server statistics: cheaper).
    :param read_only: refuse the commands (emit, join, leave, disconnect).
    :param namespace_name: the admin namespace.
    :param server_id: this server's name in the UI (default: the host name).
    :returns: the :class:`AdminUI`, whose ``close()`` stops it.
    :raises ValueError: for an invalid ``auth`` or ``mode``.
    """
    return AdminUI(io, auth=auth, mode=mode, read_only=read_only, namespace_name=namespace_name,
                   server_id=server_id)


class AdminUI:
    """The admin namespace of one server (made by :func:`instrument`)."""

    def __init__(self, io: Server, *, auth: Any, mode: str, read_only: bool, namespace_name: str,
                 server_id: str | None) -> None:
        if mode not in ("development", "production"):
            raise ValueError("mode must be 'development' or 'production'")
        #: The bcrypt hash of the basic auth's password (``None``: no authentication).
        self._hash: bytes | None = None
        self.username: str | None = None
        if auth is False or auth is None:
            if auth is None:
                raise ValueError("the auth option must be given: False, or "
                                 "{'type': 'basic', 'username': ..., 'password': <bcrypt hash>}")
            log.warning("Admin UI authentication is disabled: anyone who reaches %s administers the server",
                        namespace_name)
        elif isinstance(auth, dict) and auth.get("type") == "basic":
            username, password = auth.get("username"), auth.get("password")
            if not isinstance(username, str) or not isinstance(password, str):
                raise ValueError("basic auth needs 'username' and 'password' strings")
            if not _BCRYPT_HASH.match(password):
                raise ValueError("the 'password' field must be a valid bcrypt hash")
            self.username = username
            self._hash = password.encode()
        else:
            raise ValueError("invalid auth option: False or {'type': 'basic', 'username': ..., 'password': ...}")
        self.io = io
        self.mode = mode
        self.read_only = read_only
        self.development = mode == "development"
        self.server_id = server_id or _socket.gethostname()
        features = [] if read_only else list(FEATURES)
        features.append("AGGREGATED_EVENTS")
        if self.development:
            features.append("ALL_EVENTS")
        #: What ``config`` tells the UI it may do.
        self.supported_features = features
        self.nsp: Namespace = io.of(namespace_name)
        self._sessions: dict[str, float] = {}
        #: Session ids made at login, sent once the socket is connected.
        self._new_session: weakref.WeakKeyDictionary[Socket, str] = weakref.WeakKeyDictionary()
        self._buffer: dict[tuple[int, str, str | None], int] = {}
        self._stats_running = False
        self._closed = False
        if self._hash is not None:
            self.nsp.use(self._authenticate)
        self.nsp.on("connection", self._on_admin_connection)
        self._observers: list[Any] = [_Aggregator(self)]
        if self.development:
            self._observers.append(_Verbose(self))
        for observer in self._observers:
            io.hooks.add(observer)

    def close(self) -> None:
        """Stop observing (the admin namespace stays; its sockets are disconnected)."""
        self._closed = True
        for observer in self._observers:
            self.io.hooks.remove(observer)
        self._observers = []
        self.nsp.disconnect_sockets()

    # -- authentication ---------------------------------------------------------------------

    def _password_matches(self, password: str) -> bool:
        try:
            import bcrypt
        except ImportError:  # pragma: no cover - depends on the installation
            log.error("the Admin UI's basic auth needs bcrypt: pip install 'socketio_sync[admin]'")
            return False
        assert self._hash is not None
        rt = self.io.engine.runtime
        args = (password.encode("utf-8", "surrogatepass"), self._hash)
        try:
            if rt is not None and rt.is_current():
                # bcrypt takes a while on purpose: not in the hub, where it would stop everyone.
                return bool(gevent.get_hub().threadpool.apply(bcrypt.checkpw, args))
            return bool(bcrypt.checkpw(*args))
        except ValueError:  # bcrypt >= 5 refuses passwords over 72 bytes
            return False

    def _authenticate(self, socket: Socket, next_: Callable[..., None]) -> None:
        auth = socket.handshake.auth
        session_id = auth.get("sessionId")
        now = time.monotonic()
        if isinstance(session_id, str) and self._sessions.get(session_id, 0.0) > now:
            return next_()
        username, password = auth.get("username"), auth.get("password")
        if (isinstance(username, str) and isinstance(password, str) and self.username is not None
                and hmac.compare_digest(username.encode("utf-8", "surrogatepass"), self.username.encode())
                and self._password_matches(password)):
            session_id = secrets.token_hex(8)
            self._save_session(session_id, now)
            self._new_session[socket] = session_id
            return next_()
        log.info("Admin UI: invalid credentials from %s", socket.handshake.address,
                 extra={"sid": socket.id, "namespace": self.nsp.name, "remote_addr": socket.handshake.address,
                        "reason": "invalid credentials"})
        next_(ConnectionRefused("invalid credentials"))

    def _save_session(self, session_id: str, now: float) -> None:
        sessions = self._sessions
        for key in [k for k, expiry in sessions.items() if expiry <= now]:
            del sessions[key]
        while len(sessions) >= MAX_SESSIONS:
            del sessions[next(iter(sessions))]
        sessions[session_id] = now + SESSION_LIFETIME

    # -- the admin socket -------------------------------------------------------------------

    def _on_admin_connection(self, socket: Socket) -> None:
        session_id = self._new_session.pop(socket, None)
        if session_id is not None:
            socket.emit("session", session_id)
        for name, handler in (("emit", self._cmd_emit), ("join", self._cmd_join),
                              ("leave", self._cmd_leave), ("_disconnect", self._cmd_disconnect)):
            socket.on(name, self._refuse(name, socket) if self.read_only else handler)
        socket.emit("config", {"supportedFeatures": list(self.supported_features)})
        if self.development:
            socket.emit("all_sockets", self.all_sockets())
        socket.emit("server_stats", self.server_stats(clear=False))
        self._start_stats()

    def _refuse(self, command: str, socket: Socket) -> Callable[..., Any]:
        def refused(*args: Any) -> Any:
            log.info("Admin UI is read-only: refused %s from %s", command, socket.id,
                     extra={"sid": socket.id, "namespace": self.nsp.name, "event": command,
                            "reason": "read-only"})
            return {"error": "read-only"}
        return refused

    def _target(self, command: str, nsp_name: Any, filter_room: Any) -> Any:
        """The namespace or broadcast operator a command acts on, or an ``{"error"}`` answer."""
        nsp = self.io.namespaces.get(nsp_name) if isinstance(nsp_name, str) else None
        if nsp is None:
            log.info("Admin UI %s: unknown namespace %r", command, nsp_name)
            return {"error": "unknown namespace"}
        if filter_room is None or filter_room == "":
            return nsp
        if not isinstance(filter_room, str):
            log.info("Admin UI %s: the filter must be a room name, got %r", command, filter_room)
            return {"error": "invalid filter"}
        return nsp.in_(filter_room)

    def _cmd_emit(self, nsp_name: Any = None, filter_room: Any = None, event: Any = None, *args: Any) -> Any:
        target = self._target("emit", nsp_name, filter_room)
        if isinstance(target, dict):
            return target
        if not isinstance(event, str):
            return {"error": "invalid event name"}
        try:
            target.emit(event, *args)
        except LocalProtocolError as exc:  # a reserved event name
            log.info("Admin UI emit refused: %s", exc)
            return {"error": str(exc)}
        return None

    def _cmd_join(self, nsp_name: Any = None, room: Any = None, filter_room: Any = None) -> Any:
        target = self._target("join", nsp_name, filter_room)
        if isinstance(target, dict):
            return target
        if not isinstance(room, str):
            return {"error": "invalid room"}
        target.sockets_join(room)
        return None

    def _cmd_leave(self, nsp_name: Any = None, room: Any = None, filter_room: Any = None) -> Any:
        target = self._target("leave", nsp_name, filter_room)
        if isinstance(target, dict):
            return target
        if not isinstance(room, str):
            return {"error": "invalid room"}
        target.sockets_leave(room)
        return None

    def _cmd_disconnect(self, nsp_name: Any = None, close: Any = False, filter_room: Any = None) -> Any:
        target = self._target("_disconnect", nsp_name, filter_room)
        if isinstance(target, dict):
            return target
        target.disconnect_sockets(bool(close))
        return None

    # -- what the UI is told ----------------------------------------------------------------

    @_in_hub
    def all_sockets(self) -> list[dict[str, Any]]:
        """Every socket of every namespace (of every server, with a cluster adapter), as
        the UI's ``all_sockets`` lists them."""
        found = []
        for nsp in list(self.io.namespaces.values()):
            for sock in nsp.fetch_sockets():
                try:
                    found.append(serialize_socket(sock, nsp.name))
                except Exception:
                    log.exception("Admin UI: could not describe socket %s", getattr(sock, "id", "?"))
        return found

    @_in_hub
    def server_stats(self, *, clear: bool = True) -> dict[str, Any]:
        """The ``server_stats`` payload; ``clear`` empties the per-second event buffer."""
        engine = self.io.engine
        events = [
            ({"timestamp": ts, "type": kind, "subType": sub, "count": n} if sub is not None
             else {"timestamp": ts, "type": kind, "count": n})
            for (ts, kind, sub), n in self._buffer.items()
        ]
        if clear:
            self._buffer = {}
        return {
            "serverId": self.server_id,
            "hostname": _socket.gethostname(),
            "pid": os.getpid(),
            "uptime": time.monotonic() - _STARTED,
            "clientsCount": engine.clients_count,
            "pollingClientsCount": sum(1 for c in list(engine.sessions.values())
                                       if c.transport == "polling" and not c.closed),
            "aggregatedEvents": events,
            "namespaces": [{"name": n.name, "socketsCount": len(n.sockets)}
                           for n in list(self.io.namespaces.values())],
        }

    @_in_hub
    def _start_stats(self) -> None:
        if not self._stats_running and not self._closed:
            self._stats_running = True
            self.io.engine.timers.schedule(time.monotonic() + STATS_INTERVAL, self._stats_tick)

    def _stats_tick(self) -> None:
        # A timer callback must not block: the emit (maybe to Redis) runs in a greenlet.
        if self._closed or (not self.nsp.sockets and self._local_only()):
            self._stats_running = False
            return
        gevent.spawn(self._emit_stats)
        self.io.engine.timers.schedule(time.monotonic() + STATS_INTERVAL, self._stats_tick)

    def _emit_stats(self) -> None:
        try:
            self.nsp.emit("server_stats", self.server_stats())
        except Exception:
            log.exception("Admin UI: could not send server_stats")

    def _local_only(self) -> bool:
        return type(self.nsp.adapter) is InMemoryAdapter

    def _push(self, kind: str, sub: str | None = None, count: int = 1) -> None:
        key = (int(time.time()) * 1000, kind, sub)
        buffer = self._buffer
        buffer[key] = buffer.get(key, 0) + count

    def _listening(self) -> bool:
        """Whether an admin socket may get what is sent: one here, or maybe one on
        another server of a cluster."""
        return bool(self.nsp.sockets) or not self._local_only()

    def _tell(self, event: str, *args: Any) -> None:
        """Send ``event`` to the admin sockets."""
        self.nsp.emit(event, *args)


class _Aggregator:
    """The per-second counts of ``server_stats`` (both modes)."""

    def __init__(self, admin: AdminUI) -> None:
        self.admin = admin

    def engine_open(self, conn: Any) -> None:
        self.admin._push("rawConnection")

    def engine_close(self, conn: Any, reason: str) -> None:
        self.admin._push("rawDisconnection", reason)

    def message_in(self, conn: Any, data: str | bytes) -> None:
        push = self.admin._push
        push("packetsIn")
        push("bytesIn", None, len(data) if isinstance(data, bytes) or data.isascii()
             else len(data.encode("utf-8", "surrogatepass")))

    def message_out(self, conn: Any, out: Any) -> None:
        push = self.admin._push
        push("packetsOut", None, len(out.items))
        push("bytesOut", None, out.byte_length())


class _Verbose:
    """Development mode: every socket, room and event, live (built only when an admin
    socket may be listening)."""

    def __init__(self, admin: AdminUI) -> None:
        self.admin = admin
        self.tell = admin._tell
        self.listening = admin._listening

    def socket_connect(self, socket: Socket) -> None:
        if self.listening():
            self.tell("socket_connected", serialize_socket(socket, socket.nsp.name), _now_iso())

    def engine_upgrade(self, conn: Any, transport: str) -> None:
        if self.listening():
            for sock in list(getattr(conn.user_data, "sockets", {}).values()):
                self.tell("socket_updated", {"id": sock.id, "nsp": sock.nsp.name, "transport": transport})

    def socket_disconnect(self, socket: Socket, reason: str) -> None:
        if self.listening():
            self.tell("socket_disconnected", socket.nsp.name, socket.id, reason, _now_iso())

    def room_join(self, nsp: Namespace, room: str, sid: str) -> None:
        if self.listening():
            self.tell("room_joined", nsp.name, room, sid, _now_iso())

    def room_leave(self, nsp: Namespace, room: str, sid: str) -> None:
        if self.listening():
            self.tell("room_left", nsp.name, room, sid, _now_iso())

    def event_in(self, socket: Socket, event: str, args: Any) -> None:
        if socket.nsp is not self.admin.nsp and self.listening():
            self.tell("event_received", socket.nsp.name, socket.id, [event, *args], _now_iso())

    def event_out(self, socket: Socket, event: str, args: Any) -> None:
        if socket.nsp is not self.admin.nsp and self.listening():
            self.tell("event_sent", socket.nsp.name, socket.id, [event, *args], _now_iso())


def _bytes_only(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray)):
        return None
    raise TypeError(type(obj).__name__)


def serialize_socket(sock: Any, nsp_name: str) -> dict[str, Any]:
    """A socket (local :class:`~socketio_sync.Socket` or :class:`~socketio_sync.RemoteSocket`)
    as the Admin UI describes it."""
    data = dict(sock.data) if isinstance(sock.data, dict) else {}
    admin_info = data.pop("_admin", None) or {}
    conn = getattr(getattr(sock, "client", None), "conn", None)
    if conn is not None:
        client_id, transport = conn.sid[:12], conn.transport
    else:
        client_id, transport = admin_info.get("clientId"), admin_info.get("transport")
    try:
        json.dumps(data, default=_bytes_only)
    except (TypeError, ValueError):
        data = {"error": "socket.data cannot be sent as JSON"}
    hs = sock.handshake
    headers = hs.headers
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or hs.address
    return {
        "id": sock.id,
        "clientId": client_id,
        "transport": transport,
        "nsp": nsp_name,
        "data": data,
        "handshake": {
            "address": address, "headers": headers, "query": hs.query, "issued": hs.issued,
            "secure": hs.secure, "time": hs.time, "url": hs.url, "xdomain": hs.xdomain,
        },
        "rooms": sorted(sock.rooms),
    }


# -- serving the UI ---------------------------------------------------------------------------

_REMOTE_LINK = re.compile(rb"<link\b[^>]*\bhref=\"(?:https?:)?//[^\"]*\"[^>]*>")


def ui_app(directory: str | os.PathLike[str], *, app: Callable[..., Any] | None = None,
           prefix: str = "/admin-ui", icons: str | os.PathLike[str] | None = None) -> Callable[..., Any]:
    """A WSGI application serving the Admin UI's static files from ``directory`` (the
    ``ui/dist`` folder of the npm package ``@socket.io/admin-ui``) under ``prefix``, and
    passing every other request to ``app`` (404 when ``None``).

    Nothing is loaded from a CDN: ``index.html`` is served without its links to Google
    Fonts (the page uses the system font) and to the Material Design Icons stylesheet.
    Pass ``icons``, the folder of the npm package ``@mdi/font``, to serve the icons from
    here too (``<prefix>/mdi/``); without it the UI's icon buttons show blank.

    :raises FileNotFoundError: when ``directory`` has no ``index.html``, or ``icons`` no
        ``css/materialdesignicons.min.css``.
    """
    root = os.path.realpath(os.fspath(directory))
    index_path = os.path.join(root, "index.html")
    if not os.path.isfile(index_path):
        raise FileNotFoundError(
            f"no index.html in {root}: pass the ui/dist folder of the npm package @socket.io/admin-ui "
            "(npm install @socket.io/admin-ui, then node_modules/@socket.io/admin-ui/ui/dist)")
    with open(index_path, "rb") as f:
        index = _REMOTE_LINK.sub(b"", f.read())
    icons_root = None
    if icons is not None:
        icons_root = os.path.realpath(os.fspath(icons))
        if not os.path.isfile(os.path.join(icons_root, *_MDI_CSS.split("/"))):
            raise FileNotFoundError(f"no {_MDI_CSS} in {icons_root}: pass the folder of the npm package @mdi/font")
        index = index.replace(b"</head>", b'<link rel="stylesheet" href="mdi/' + _MDI_CSS.encode() + b'"></head>', 1)
    prefix = "/" + prefix.strip("/")
    if prefix == "/":
        prefix = ""

    def admin_ui(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            if app is not None:
                passed: Iterable[bytes] = app(environ, start_response)
                return passed
            return _answer(start_response, "404 Not Found", b"Not Found")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"Method Not Allowed", [("Allow", "GET, HEAD")])
        head = method == "HEAD"
        rel = path[len(prefix):]
        if rel == "":
            location = environ.get("SCRIPT_NAME", "") + prefix + "/"
            return _answer(start_response, "301 Moved Permanently", b"", [("Location", location)])
        if rel == "/" or rel == "/index.html":
            return _answer(start_response, "200 OK", index, [("Cache-Control", "no-cache")],
                           "text/html; charset=utf-8", head=head)
        base = root
        if icons_root is not None and rel.startswith("/mdi/"):
            base, rel = icons_root, rel[4:]
        return _static(start_response, base, rel, head)

    return admin_ui


_MDI_CSS = "css/materialdesignicons.min.css"


def _static(start_response: Callable[..., Any], base: str, rel: str, head: bool) -> list[bytes]:
    full = os.path.realpath(os.path.join(base, rel.lstrip("/")))
    if not full.startswith(base + os.sep) or not os.path.isfile(full):
        return _answer(start_response, "404 Not Found", b"Not Found")
    ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
        ctype += "; charset=utf-8"
    with open(full, "rb") as f:
        body = f.read()
    return _answer(start_response, "200 OK", body, [("Cache-Control", "public, max-age=3600")], ctype, head=head)


def _answer(start_response: Callable[..., Any], status: str, body: bytes,
            headers: list[tuple[str, str]] | None = None, ctype: str = "text/plain",
            head: bool = False) -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))] + (headers or []))
    return [] if head else [body]

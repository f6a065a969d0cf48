"""The Socket.IO server: options, namespaces, and the hook into the Engine.IO shell."""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable

from . import sio
from .recovery import RecoveryOptions
from .adapters import Adapter, InMemoryAdapter
from .broadcast import BroadcastOperator, RoomArg
from .client import Client
from .namespace import ClassNamespace, Namespace, NamespaceMatcher, ParentNamespace
from .wsgi.engine import EngineConnection, EngineServer
from .wsgi.runtime import from_any_thread
from .wsgi.workers import WorkerPool

if TYPE_CHECKING:
    from .socket import Socket

__all__ = ["Server"]

log = logging.getLogger("socketio_sync.server")


class Server:
    """A Socket.IO v5 server.

    Example::

        io = socketio_sync.Server(cors_allowed_origins="*")

        @io.on("connection")
        def on_connection(socket):
            @socket.on("chat message")
            def chat(msg):
                io.emit("chat message", msg)

        app = socketio_sync.WSGIApp(io, flask_app.wsgi_app)

    Every option is keyword-only; an unknown one raises ``TypeError``.

    :param ping_interval: seconds between heartbeats (``pingInterval``).
    :param ping_timeout: seconds a client has to answer a ping (``pingTimeout``).
    :param connect_timeout: seconds a connection may stay without joining a namespace.
    :param max_http_buffer_size: the largest polling body or WebSocket message (``maxPayload``).
    :param cors_allowed_origins: ``None`` (same origin only), ``"*"``, a list, or a callable.
    :param cors_credentials: allow credentialed cross-origin requests.
    :param transports: ``("polling", "websocket")`` or a subset.
    :param allow_upgrades: offer the polling -> WebSocket upgrade.
    :param upgrade_timeout: seconds to finish an upgrade once probed.
    :param max_pending_bytes: bytes allowed to wait for a WebSocket client that does not
        read (a stalled or malicious peer); past that it is disconnected.
    :param max_sessions: open Engine.IO sessions allowed at once (``None``: no limit);
        handshakes past it get HTTP 503 (clients retry with their reconnection delay).
    :param handshake_rate: ``(count, seconds)``: new sessions allowed per time window for
        this server (``None``: no limit); past it, HTTP 429.
    :param max_attachments: binary attachments allowed in one packet.
    :param adapter: an :class:`Adapter` subclass (or factory ``nsp -> Adapter``) for rooms.
    :param json: a module-like object with ``dumps``/``loads`` (default: the stdlib's).
    :param allow_eio3: also serve Socket.IO v2 clients (``socket.io-client@2``: Engine.IO
        v3, Socket.IO protocol v4) next to current ones, in the same namespaces and rooms.
        Off by default, as on Node: such clients then get HTTP 400, "Unsupported protocol
        version". See "Socket.IO v2 clients" in the README.

    .. versionchanged:: 0.2
       ``allow_eio3``.

    Engine.IO options of the Node server (details in :class:`socketio_sync.EngineServer`
    and README "Engine.IO options"):

    :param allow_request: ``fn(environ) -> True | False | str`` before each handshake;
        a refusal is ``403 {"code":4,"message":"Forbidden"}`` (or the string returned).
    :param cookie: ``True`` or a dict (``name``, ``path``, ``http_only``, ``same_site``,
        ``secure``, ``max_age``, ``domain``): a cookie with the session id on the handshake.
    :param initial_headers: ``fn(headers, environ)`` appending ``(name, value)`` pairs to
        the handshake response.
    :param headers: ``fn(headers, environ)`` likewise for every Engine.IO response.
    :param http_compression: gzip/deflate polling responses (``True``, ``False`` or
        ``{"threshold": 1024}``); on by default as on Node.
    :param per_message_deflate: WebSocket compression, RFC 7692 (``False`` by default
        as on Node, ``True`` or a dict such as ``{"threshold": 1024}``).
    :param serve_client: serve ``/socket.io/socket.io.js`` and the other client bundle
        files from the npm ``socket.io-client`` package when it is on disk (default
        ``True``, as on Node; 404 with an explanation when it is not installed).
    :param client_path: where that package is (default: ``node_modules`` from the working
        directory upwards).
    :param connection_state_recovery: off by default; ``True`` (or a dict:
        ``max_disconnection_duration`` seconds, 120; ``skip_middlewares``, true;
        ``max_packets``, 10,000) restores a client that comes back after an abnormal
        disconnection with the same id, rooms and ``data``, and replays the broadcasts it
        missed (README "Connection state recovery"). Node's ``connectionStateRecovery``.
    :param parser: ``"default"`` (the JSON parser every client speaks by default) or
        ``"msgpack"``, compatible with the npm ``socket.io-msgpack-parser`` (clients must
        use it too: ``io(url, {parser})``); see :mod:`socketio_sync.sio.msgpack`.
    :param cleanup_empty_child_namespaces: remove a namespace created from a
        :class:`ParentNamespace` (``io.of(pattern)``) when its last socket leaves
        (Node's ``cleanupEmptyChildNamespaces``).
    """

    def __init__(
        self,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        connect_timeout: float = 45.0,
        max_http_buffer_size: int = 1_000_000,
        cors_allowed_origins: Any = None,
        cors_credentials: bool = False,
        transports: Iterable[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        upgrade_timeout: float = 10.0,
        max_pending_bytes: int = 16_000_000,
        max_sessions: int | None = None,
        handshake_rate: tuple[int, float] | None = None,
        max_attachments: int = sio.DEFAULT_MAX_ATTACHMENTS,
        adapter: type[Adapter] | Callable[[Namespace], Adapter] = InMemoryAdapter,
        json: Any = None,
        allow_eio3: bool = False,
        allow_request: Callable[[dict[str, Any]], Any] | None = None,
        cookie: Any = None,
        initial_headers: Callable[[list[tuple[str, str]], dict[str, Any]], Any] | None = None,
        headers: Callable[[list[tuple[str, str]], dict[str, Any]], Any] | None = None,
        http_compression: Any = True,
        per_message_deflate: Any = False,
        serve_client: bool = True,
        client_path: str | None = None,
        connection_state_recovery: bool | dict[str, Any] | RecoveryOptions | None = None,
        parser: str = "default",
        cleanup_empty_child_namespaces: bool = False,
    ) -> None:
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive (seconds)")
        if max_attachments < 0:
            raise ValueError("max_attachments must be >= 0")
        self.connect_timeout = float(connect_timeout)
        self.max_attachments = int(max_attachments)
        #: Connection state recovery options, ``None`` when off.
        self.recovery = RecoveryOptions.from_option(connection_state_recovery)
        self._adapter_factory = adapter
        if parser not in ("default", "msgpack"):
            raise ValueError(f"unknown parser {parser!r}: 'default' or 'msgpack'")
        if parser == "msgpack" and json is not None:
            raise ValueError("json= applies to the default parser, not to parser='msgpack'")
        #: ``"default"`` or ``"msgpack"``.
        self.parser = parser
        self.cleanup_empty_child_namespaces = bool(cleanup_empty_child_namespaces)
        self.encoder: Any
        if parser == "msgpack":
            self.encoder = sio.MsgpackEncoder()
            self.loads = sio.strict_loads
        elif json is None:
            self.encoder = sio.Encoder()
            self.loads = sio.strict_loads
        else:
            dumps = json.dumps
            self.encoder = sio.Encoder(lambda obj: dumps(obj, separators=(",", ":")))
            self.loads = json.loads
        self.engine = EngineServer(
            ping_interval=ping_interval, ping_timeout=ping_timeout,
            max_http_buffer_size=max_http_buffer_size, cors_allowed_origins=cors_allowed_origins,
            cors_credentials=cors_credentials, transports=transports, allow_upgrades=allow_upgrades,
            upgrade_timeout=upgrade_timeout, max_pending_bytes=max_pending_bytes,
            max_sessions=max_sessions, handshake_rate=handshake_rate, allow_eio3=allow_eio3,
            allow_request=allow_request, cookie=cookie, initial_headers=initial_headers, headers=headers,
            http_compression=http_compression, per_message_deflate=per_message_deflate,
            serve_client=serve_client, client_path=client_path,
        )
        self.engine.on("connection", self._on_engine_connection)
        attach = getattr(adapter, "attach_engine", None)
        if attach is not None:  # the Redis adapter: session forwarding between processes
            attach(self.engine)
        #: Reusable greenlets that run event handlers.
        self.workers = WorkerPool()
        #: ``fn(socket) -> context manager`` entered around every call of application code
        #: for a socket (middlewares, connection, event, disconnect and ack handlers); the
        #: Flask integration puts an app and request context built from the handshake here.
        self.handler_context: Callable[[Any], Any] | None = None
        self._namespaces: dict[str, Namespace] = {}
        self._parents: list[ParentNamespace] = []
        self._new_namespace_handlers: list[Callable[[Namespace], Any]] = []
        self.sockets = self.of("/")

    @property
    def hooks(self) -> Any:
        """The observers of this server (:class:`socketio_sync.hooks.Hooks`, shared with
        its engine): ``io.hooks.add(observer)``."""
        return self.engine.hooks

    def make_decoder(self) -> Any:
        """A new Socket.IO decoder for one connection, for this server's parser."""
        if self.parser == "msgpack":
            return sio.MsgpackDecoder()
        return sio.Decoder(self.max_attachments)

    def _make_adapter(self, nsp: Namespace) -> Adapter:
        return self._adapter_factory(nsp)

    def _on_engine_connection(self, conn: EngineConnection) -> None:
        conn.user_data = Client(self, conn)

    # -- namespaces -------------------------------------------------------------------------

    def of(self, name: str | re.Pattern[str] | NamespaceMatcher,
           handler: Callable[[Socket], Any] | None = None) -> Namespace:
        """The namespace ``name``, created on first use; ``handler``, if given, becomes a
        connection handler (``io.of("/chat", on_connection)``).

        With a compiled pattern or a function ``fn(name, auth) -> bool`` instead of a
        name, a new :class:`ParentNamespace` is returned (dynamic namespaces)::

            rooms = io.of(re.compile(r"^/room-\\d+$"))

            @rooms.on("connection")
            def joined(socket):
                socket.nsp          # the child, e.g. "/room-42"

            rooms.emit("tick")       # to the sockets of every child

        A client connecting to a namespace that does not exist gets a child of the first
        parent (in creation order) that accepts the name, or ``connect_error``
        "Invalid namespace". The function runs as application code, so it may block;
        raising counts as "no".
        """
        if isinstance(name, re.Pattern) or (callable(name) and not isinstance(name, str)):
            if isinstance(name, re.Pattern):
                pattern = name
                matcher: NamespaceMatcher = lambda nsp_name, auth: pattern.search(nsp_name) is not None  # noqa: E731
            else:
                matcher = name
            parent = ParentNamespace(self, f"/_{len(self._parents)}", matcher)
            self._parents.append(parent)
            if handler is not None:
                parent.on("connection", handler)
            return parent
        if not isinstance(name, str):
            raise TypeError("namespace names are strings such as '/chat' (or a pattern, or a function)")
        if not name.startswith("/"):
            name = "/" + name
        nsp = self._namespaces.get(name)
        if nsp is None:
            nsp = self._namespaces[name] = Namespace(self, name)
            self._announce(nsp)
        if handler is not None:
            nsp.on("connection", handler)
        return nsp

    def register_namespace(self, namespace: ClassNamespace) -> Namespace:
        """Attach a class-based namespace (:class:`ClassNamespace`); returns the
        :class:`Namespace` (or :class:`ParentNamespace`) it handles."""
        if not isinstance(namespace, ClassNamespace):
            raise TypeError("register_namespace() takes a ClassNamespace instance")
        return namespace._bind(self)

    def _announce(self, nsp: Namespace) -> None:
        for fn in list(self._new_namespace_handlers):
            try:
                self._run_user(None, fn, nsp)
            except Exception:
                log.exception("error in new_namespace handler")

    def _resolve_namespace(self, name: str, auth: dict[str, Any]) -> Namespace | None:
        """The namespace a CONNECT to ``name`` joins: an existing one, or a new child of
        the first parent that accepts it (runs application code: not in the reader)."""
        nsp = self._namespaces.get(name)
        if nsp is not None:
            return nsp
        for parent in list(self._parents):
            if parent._matches(name, auth):
                nsp = self._namespaces.get(name)  # created meanwhile (matchers may block)
                if nsp is None:
                    nsp = self._namespaces[name] = parent._create_child(name)
                    self._announce(nsp)
                return nsp
        return None

    def _forget_namespace(self, nsp: Namespace) -> None:
        if self._namespaces.get(nsp.name) is nsp:
            del self._namespaces[nsp.name]

    @property
    def namespaces(self) -> dict[str, Namespace]:
        return dict(self._namespaces)

    # -- the main namespace, as on the Node server ------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """``@io.on("connection")``: a handler for sockets connecting to ``"/"``.

        ``"new_namespace"`` handlers get every namespace created after registration
        (by :meth:`of` or as the child of a dynamic namespace). Other names handle
        :meth:`server_side_emit` messages (see :meth:`Namespace.on`)."""
        if event == "new_namespace":
            def register(fn: Callable[..., Any]) -> Callable[..., Any]:
                self._new_namespace_handlers.append(fn)
                return fn
            return register(handler) if handler is not None else register
        return self.sockets.on(event, handler)

    def once(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """:meth:`on`, removed after the first call (main namespace)."""
        return self.sockets.once(event, handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove a handler (or all of ``event``'s)."""
        if event == "new_namespace":
            if handler is None:
                self._new_namespace_handlers.clear()
            elif handler in self._new_namespace_handlers:
                self._new_namespace_handlers.remove(handler)
            return
        self.sockets.off(event, handler)

    def listeners(self, event: str) -> list[Callable[..., Any]]:
        if event == "new_namespace":
            return list(self._new_namespace_handlers)
        return self.sockets.listeners(event)

    def use(self, middleware: Callable[..., Any]) -> Callable[..., Any]:
        return self.sockets.use(middleware)

    def on_any(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        return self.sockets.on_any(handler)

    def emit(self, event: str, *args: Any) -> None:
        """Send an event to every socket in ``"/"``."""
        self.sockets.emit(event, *args)

    def send(self, *args: Any) -> None:
        self.sockets.send(*args)

    def to(self, room: RoomArg) -> BroadcastOperator:
        return self.sockets.to(room)

    in_ = to

    def except_(self, room: RoomArg) -> BroadcastOperator:
        return self.sockets.except_(room)

    @property
    def local(self) -> BroadcastOperator:
        """Only the sockets of this process: ``io.local.emit(...)``."""
        return self.sockets.local

    def timeout(self, seconds: float) -> BroadcastOperator:
        """``io.timeout(5).emit("q", callback=fn)`` / ``io.timeout(5).call("q")``."""
        return self.sockets.timeout(seconds)

    @property
    def volatile(self) -> BroadcastOperator:
        """``io.volatile.emit(...)``: dropped for clients whose transport is not ready."""
        return self.sockets.volatile

    def compress(self, compress: bool) -> BroadcastOperator:
        """``io.compress(False).emit(...)``: tell the engine not to compress these packets."""
        return self.sockets.compress(compress)

    def server_side_emit(self, event: str, *args: Any,
                         callback: Callable[[Exception | None, list[Any]], Any] | None = None,
                         timeout: float | None = None) -> None:
        """Send an event to the other servers of the cluster (see :meth:`Namespace.server_side_emit`)."""
        self.sockets.server_side_emit(event, *args, callback=callback, timeout=timeout)

    def server_side_call(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        return self.sockets.server_side_call(event, *args, timeout=timeout)

    def fetch_sockets(self) -> list[Any]:
        return self.sockets.fetch_sockets()

    def sockets_join(self, room: RoomArg) -> None:
        self.sockets.sockets_join(room)

    def sockets_leave(self, room: RoomArg) -> None:
        self.sockets.sockets_leave(room)

    def disconnect_sockets(self, close: bool = False) -> None:
        self.sockets.disconnect_sockets(close)

    # -- serving ----------------------------------------------------------------------------

    def listen(self, port: int = 3000, host: str = "127.0.0.1", *, wsgi_app: Any = None,
               path: str = "socket.io") -> None:
        """Serve this server (and optionally ``wsgi_app``) on gevent until interrupted.

        Call ``gevent.monkey.patch_all()`` first if your handlers use blocking libraries.
        """
        from .wsgi.middleware import WSGIApp
        from .wsgi.serving import run

        run(WSGIApp(self, wsgi_app, path=path), host, port)

    def test_client(self, app: Any = None, **kwargs: Any) -> Any:
        """An in-process client for your tests (see :class:`socketio_sync.testing.TestClient`):
        ``client = io.test_client(flask_app, auth={...}, http_client=flask_client)``."""
        from .testing import TestClient

        return TestClient(self, app, **kwargs)

    def _run_user(self, target: Any, fn: Callable[..., Any], *args: Any) -> Any:
        """Call application code ``fn(*args)`` for ``target`` (a socket, or ``None``):
        inside :attr:`handler_context`, and in a handler thread when the server runs
        under a threaded WSGI server (see :mod:`socketio_sync.wsgi.runtime`)."""
        rt = self.engine.runtime
        pool = rt.handler_pool if rt is not None else None
        context = self.handler_context if target is not None else None
        if pool is None:
            if context is None:
                return fn(*args)
            with context(target):
                return fn(*args)
        return pool.apply(_call_in_context, (context, target, fn, args))

    @from_any_thread(lambda self: self.engine)
    def close(self) -> None:
        """Disconnect every client ("server shutting down") and close the adapters.

        As with Node's ``io.close()``, clients see the transport close and reconnect
        (to another server, or to this one if it comes back)."""
        self.engine.drop_all()
        for nsp in self._namespaces.values():
            nsp.adapter.close()


def _call_in_context(context: Callable[[Any], Any] | None, target: Any, fn: Callable[..., Any],
                     args: tuple[Any, ...]) -> Any:
    if context is None:
        return fn(*args)
    with context(target):
        return fn(*args)


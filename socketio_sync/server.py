"""The Socket.IO server: options, namespaces, and the hook into the Engine.IO shell."""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from . import sio
from .recovery import RecoveryOptions
from .adapters import Adapter, InMemoryAdapter
from .broadcast import BroadcastOperator, RoomArg
from .client import Client
from .namespace import Namespace
from .wsgi.engine import EngineConnection, EngineServer
from .wsgi.runtime import from_any_thread
from .wsgi.workers import WorkerPool

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
        if json is None:
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
        self.sockets = self.of("/")

    @property
    def hooks(self) -> Any:
        """The observers of this server (:class:`socketio_sync.hooks.Hooks`, shared with
        its engine): ``io.hooks.add(observer)``."""
        return self.engine.hooks

    def _make_adapter(self, nsp: Namespace) -> Adapter:
        return self._adapter_factory(nsp)

    def _on_engine_connection(self, conn: EngineConnection) -> None:
        conn.user_data = Client(self, conn)

    # -- namespaces -------------------------------------------------------------------------

    def of(self, name: str) -> Namespace:
        """The namespace ``name``, created on first use."""
        if not isinstance(name, str):
            raise TypeError("namespace names are strings such as '/chat'")
        if not name.startswith("/"):
            name = "/" + name
        nsp = self._namespaces.get(name)
        if nsp is None:
            nsp = self._namespaces[name] = Namespace(self, name)
        return nsp

    @property
    def namespaces(self) -> dict[str, Namespace]:
        return dict(self._namespaces)

    # -- the main namespace, as on the Node server ------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """``@io.on("connection")``: a handler for sockets connecting to ``"/"``."""
        return self.sockets.on(event, handler)

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


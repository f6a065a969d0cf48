"""A namespace: its handlers, middlewares, sockets and adapter (Node's ``Namespace``)."""
from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, Any, Callable, Iterable

from gevent.event import AsyncResult

from . import sio
from .adapters.base import Adapter, BroadcastOptions
from .broadcast import BroadcastOperator, RoomArg, _rooms
from .exceptions import ConnectionRefused, LocalProtocolError
from ._listeners import register_once, remove_handler
from .wsgi.runtime import from_any_thread

_in_hub = from_any_thread(lambda nsp: nsp.server.engine)

if TYPE_CHECKING:
    from .server import Server
    from .socket import Socket

__all__ = ["Namespace", "ParentNamespace", "ClassNamespace", "NamespaceMatcher"]

log = logging.getLogger("socketio_sync.server")

_CONNECTION_EVENTS = ("connection", "connect")


class Namespace:
    """Sockets connected to one namespace name, such as ``"/"`` or ``"/chat"``."""

    #: The :class:`ParentNamespace` this namespace was created from (``None`` for a
    #: namespace created by name).
    parent: ParentNamespace | None = None

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self._connection_handlers: list[Callable[[Socket], Any]] = []
        self._middlewares: list[Callable[..., Any]] = []
        self._any: list[Callable[..., Any]] = []
        self._server_side_handlers: dict[str, list[Callable[..., Any]]] = {}
        self._ids = 0
        self.adapter = self._create_adapter()

    def _create_adapter(self) -> Adapter:
        return self.server._make_adapter(self)

    def __repr__(self) -> str:
        return f"<Namespace {self.name} sockets={len(self.sockets)}>"

    # -- registration -----------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a handler; usable as a decorator.

        ``"connection"`` (alias ``"connect"``) handlers get each new :class:`Socket`.
        Any other name, as on the Node server, handles :meth:`server_side_emit` messages
        from the *other servers* of a cluster, not client events: those are registered
        with ``socket.on()`` inside the connection handler.
        """
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if event in _CONNECTION_EVENTS:
                self._connection_handlers.append(fn)
            else:
                self._server_side_handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def once(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Like :meth:`on`, but the handler is removed before its first call."""
        return register_once(self.on, self.off, event, handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove ``handler`` (also one registered with :meth:`once`), or every handler
        of ``event`` when ``handler`` is ``None`` (Node's ``removeListener`` /
        ``removeAllListeners``)."""
        handlers = self._connection_handlers if event in _CONNECTION_EVENTS else \
            self._server_side_handlers.get(event, [])
        if handler is None:
            handlers.clear()
            return
        remove_handler(handlers, handler)

    def listeners(self, event: str) -> list[Callable[..., Any]]:
        """The handlers registered for ``event`` (Node's ``listeners``)."""
        if event in _CONNECTION_EVENTS:
            return list(self._connection_handlers)
        return list(self._server_side_handlers.get(event, ()))

    def use(self, middleware: Callable[..., Any]) -> Callable[..., Any]:
        """Add a middleware ``fn(socket, next)`` run before a socket connects.

        Call ``next()`` to go on, or ``next(ConnectionRefused("reason", data))`` /
        raise :class:`ConnectionRefused` to refuse; the client gets ``connect_error``.
        Any other exception refuses too, with its text as the message.
        """
        self._middlewares.append(middleware)
        return middleware

    def on_any(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """``handler(socket, event, *args)`` for every event of every socket here."""
        self._any.append(handler)
        return handler

    # -- broadcasting -----------------------------------------------------------------------

    def to(self, room: RoomArg) -> BroadcastOperator:
        return BroadcastOperator(self, _rooms(room))

    in_ = to

    def except_(self, room: RoomArg) -> BroadcastOperator:
        return BroadcastOperator(self, except_rooms=_rooms(room))

    def emit(self, event: str, *args: Any) -> None:
        """Send an event to every socket of this namespace."""
        BroadcastOperator(self).emit(event, *args)

    @property
    def volatile(self) -> BroadcastOperator:
        """``nsp.volatile.emit(...)``: skip clients whose transport is not ready to send."""
        return BroadcastOperator(self).volatile

    def compress(self, compress: bool) -> BroadcastOperator:
        """``nsp.compress(False).emit(...)``: ask the engine not to compress these packets."""
        return BroadcastOperator(self).compress(compress)

    def send(self, *args: Any) -> None:
        self.emit("message", *args)

    @property
    def local(self) -> BroadcastOperator:
        """Only the sockets of this process (with a cluster adapter)."""
        return BroadcastOperator(self).local

    def timeout(self, seconds: float) -> BroadcastOperator:
        """``io.timeout(5).emit("q", callback=fn)``: a broadcast that collects acks."""
        return BroadcastOperator(self).timeout(seconds)

    @_in_hub
    def server_side_emit(self, event: str, *args: Any,
                         callback: Callable[[Exception | None, list[Any]], Any] | None = None,
                         timeout: float | None = None) -> None:
        """Send an event to this namespace on every *other* server of the cluster, where
        ``io.on(event)`` handlers get it.

        With ``callback``, each server's handler return value is collected and
        ``callback(err, responses)`` runs once all answered or after ``timeout`` seconds.
        """
        if event in _CONNECTION_EVENTS or event in ("disconnect", "disconnecting", "new_namespace"):
            raise ValueError(f"{event!r} is a reserved event name")
        self.adapter.server_side_emit([event, *args], callback, timeout)

    @_in_hub
    def server_side_call(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        """Blocking :meth:`server_side_emit` with acks: the other servers' answers.

        :raises RequestTimeout: if some server did not answer within ``timeout``; its
            ``responses`` holds the answers that came.
        """
        result: AsyncResult = AsyncResult()
        self.server_side_emit(event, *args, callback=lambda err, res: result.set((err, res)), timeout=timeout)
        err, responses = result.get()
        if err is not None:
            raise err
        return responses

    def _on_server_side_emit(self, args: list[Any], ack: Callable[[Any], None] | None = None) -> None:
        """Run ``io.on(event)`` handlers for a message from another server."""
        if not args or not isinstance(args[0], str):
            log.info("ignored a server-side emit without an event name")
            return
        event, *params = args
        handlers = self._server_side_handlers.get(event, [])
        for i, fn in enumerate(list(handlers)):
            try:
                value = self.server._run_user(None, fn, *params)
            except Exception:
                log.exception("error in server-side handler for %r", event)
                value = None
            if i == 0 and ack is not None:
                ack(value)

    def _new_ack_id(self) -> int:
        self._ids += 1
        return self._ids - 1

    def fetch_sockets(self) -> list[Any]:
        return BroadcastOperator(self).fetch_sockets()

    def sockets_join(self, room: RoomArg) -> None:
        BroadcastOperator(self).sockets_join(room)

    def sockets_leave(self, room: RoomArg) -> None:
        BroadcastOperator(self).sockets_leave(room)

    def disconnect_sockets(self, close: bool = False) -> None:
        BroadcastOperator(self).disconnect_sockets(close)

    # -- internals --------------------------------------------------------------------------

    def _all_middlewares(self) -> list[Callable[..., Any]]:
        parent = self.parent
        return self._middlewares if parent is None else parent._middlewares + self._middlewares

    def _all_connection_handlers(self) -> list[Callable[..., Any]]:
        parent = self.parent
        return list(self._connection_handlers) if parent is None else \
            parent._connection_handlers + self._connection_handlers

    def _all_any(self) -> list[Callable[..., Any]]:
        parent = self.parent
        return self._any if parent is None else parent._any + self._any

    def _socket_left(self) -> None:
        """A socket left: a child of a :class:`ParentNamespace` with no socket left is
        removed when the server has ``cleanup_empty_child_namespaces``."""
        parent = self.parent
        if parent is not None and not self.sockets and self.server.cleanup_empty_child_namespaces:
            parent._remove_child(self)

    def _run_middlewares(self, socket: Socket) -> None:
        for middleware in self._all_middlewares():
            done: AsyncResult = AsyncResult()

            def next_(err: BaseException | None = None, _done: AsyncResult = done) -> None:
                if not _done.ready():
                    _done.set(err)

            try:
                self.server._run_user(socket, middleware, socket, next_)
            except ConnectionRefused:
                raise
            except Exception as exc:
                log.exception("middleware %r failed", middleware)
                raise ConnectionRefused(str(exc) or type(exc).__name__) from exc
            err = done.get(timeout=self.server.connect_timeout) if not done.ready() else done.get()
            if err is not None:
                if isinstance(err, ConnectionRefused):
                    raise err
                raise ConnectionRefused(str(err))

    def _fire_connection(self, socket: Socket) -> None:
        for fn in self._all_connection_handlers():
            try:
                self.server._run_user(socket, fn, socket)
            except ConnectionRefused:
                raise
            except Exception:
                socket._handler_failed(f"connection handler of {self.name}", None)



#: ``fn(name, auth) -> bool``: whether a connection to namespace ``name`` is allowed.
NamespaceMatcher = Callable[[str, dict[str, Any]], bool]


class ParentNamespace(Namespace):
    """What ``io.of(re.compile(...))`` or ``io.of(fn)`` returns: the parent of every
    namespace created on demand from it (Node's dynamic namespaces).

    A CONNECT to a namespace that does not exist yet creates a child when the pattern
    matches its name (``pattern.search``, like JavaScript's ``RegExp.test``) or when
    ``fn(name, auth)`` returns true. Middlewares (:meth:`use`), connection handlers and
    ``on_any`` handlers registered on the parent apply to every child, including those
    created before the registration; ``parent.emit(...)``, ``parent.to(room).emit(...)``
    and the other broadcast operations reach the sockets of every child. The children are
    ordinary :class:`Namespace` objects (``socket.nsp``), listed in :attr:`children`.
    """

    def __init__(self, server: Server, name: str, matcher: NamespaceMatcher) -> None:
        self.matcher = matcher
        #: The namespaces created from this parent, by name.
        self.children: dict[str, Namespace] = {}
        super().__init__(server, name)

    def _create_adapter(self) -> Adapter:
        return _ParentAdapter(self)

    def __repr__(self) -> str:
        return f"<ParentNamespace {self.name} children={sorted(self.children)}>"

    def _matches(self, name: str, auth: dict[str, Any]) -> bool:
        try:
            return bool(self.server._run_user(None, self.matcher, name, auth))
        except Exception:
            log.exception("namespace matcher %r failed for %r; treated as no match", self.matcher, name)
            return False

    def _create_child(self, name: str) -> Namespace:
        child = Namespace(self.server, name)
        child.parent = self
        self.children[name] = child
        return child

    def _remove_child(self, child: Namespace) -> None:
        if self.children.get(child.name) is child:
            del self.children[child.name]
            self.server._forget_namespace(child)
            child.adapter.close()

    def server_side_emit(self, event: str, *args: Any, callback: Any = None, timeout: float | None = None) -> None:
        raise LocalProtocolError("server_side_emit is not supported on a parent namespace")


class _ParentAdapter(Adapter):
    """Fans every operation out to the children's adapters (one encoding per child,
    since the namespace is part of the packet)."""

    nsp: ParentNamespace

    def _children(self) -> list[Namespace]:
        return list(self.nsp.children.values())

    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> None:
        for child in self._children():
            child.adapter.broadcast(dataclasses.replace(packet, nsp=child.name), opts)

    def broadcast_with_ack(self, packet: sio.Packet, opts: BroadcastOptions,
                           client_count_cb: Callable[[int], None], ack_cb: Callable[[Any], None]) -> None:
        total = 0

        def count(n: int) -> None:
            nonlocal total
            total += n

        for child in self._children():
            child.adapter.broadcast_with_ack(dataclasses.replace(packet, nsp=child.name), opts, count, ack_cb)
        client_count_cb(total)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for child in self._children():
            child.adapter.add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for child in self._children():
            child.adapter.del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for child in self._children():
            child.adapter.disconnect_sockets(opts, close)

    def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        found: list[Any] = []
        for child in self._children():
            found.extend(child.adapter.fetch_sockets(opts))
        return found

    def server_count(self) -> int:
        return 1


class ClassNamespace:
    """A namespace written as a class, as python-socketio and Flask-SocketIO users know it
    (named ``ClassNamespace`` here because :class:`Namespace` is the Node-style object)::

        class Chat(socketio_sync.ClassNamespace):
            def on_connect(self, socket):
                socket.join("lobby")

            def on_message(self, socket, text):      # the client's emit("message", text)
                self.to("lobby").emit("message", text)
                return "ok"                            # the ack, if the client asked for one

            def on_disconnect(self, socket, reason):
                ...

        io.register_namespace(Chat("/chat"))

    ``on_connect(socket)`` runs as a connection handler: raise
    :class:`~socketio_sync.ConnectionRefused` there to refuse. Every other ``on_<event>``
    method handles the client event ``<event>`` with ``(socket, *args)``, and its return
    value is the ack (as with ``socket.on``). ``on_disconnect(socket, reason)`` and
    ``on_disconnecting(socket, reason)`` get the reason. The name may also be a pattern
    or a function, as for :meth:`Server.of` (dynamic namespaces). After registration,
    :attr:`server` and :attr:`nsp` are set; :meth:`emit`, :meth:`to` and friends
    broadcast in the namespace.
    """

    def __init__(self, namespace: Any = "/") -> None:
        self.namespace = namespace
        self.server: Server | None = None
        self.nsp: Namespace | None = None

    def _bind(self, server: Server) -> Namespace:
        nsp = server.of(self.namespace)
        self.server, self.nsp = server, nsp
        events: dict[str, Callable[..., Any]] = {}
        for attr in dir(type(self)):
            if attr.startswith("on_") and attr not in ("on_connect", "on_connection") and \
                    callable(getattr(type(self), attr)):
                events[attr[3:]] = getattr(self, attr)
        on_connect = getattr(self, "on_connect", None)

        def connection(socket: Socket) -> None:
            for event, method in events.items():
                socket.on(event, functools.partial(method, socket))
            if on_connect is not None:
                on_connect(socket)

        nsp.on("connection", connection)
        return nsp

    def _require_nsp(self) -> Namespace:
        if self.nsp is None:
            raise LocalProtocolError("register the namespace first: io.register_namespace(obj)")
        return self.nsp

    def emit(self, event: str, *args: Any) -> None:
        """Broadcast to every socket of this namespace."""
        self._require_nsp().emit(event, *args)

    def send(self, *args: Any) -> None:
        self._require_nsp().send(*args)

    def to(self, room: RoomArg) -> BroadcastOperator:
        return self._require_nsp().to(room)

    in_ = to

    def except_(self, room: RoomArg) -> BroadcastOperator:
        return self._require_nsp().except_(room)

"""A namespace: its handlers, middlewares, sockets and adapter (Node's ``Namespace``)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from gevent.event import AsyncResult

from .broadcast import BroadcastOperator, RoomArg, _rooms
from .exceptions import ConnectionRefused
from .wsgi.runtime import from_any_thread

_in_hub = from_any_thread(lambda nsp: nsp.server.engine)

if TYPE_CHECKING:
    from .server import Server
    from .socket import Socket

__all__ = ["Namespace"]

log = logging.getLogger("socketio_sync.server")

_CONNECTION_EVENTS = ("connection", "connect")


class Namespace:
    """Sockets connected to one namespace name, such as ``"/"`` or ``"/chat"``."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self._connection_handlers: list[Callable[[Socket], Any]] = []
        self._middlewares: list[Callable[..., Any]] = []
        self._any: list[Callable[..., Any]] = []
        self._server_side_handlers: dict[str, list[Callable[..., Any]]] = {}
        self._ids = 0
        self.adapter = server._make_adapter(self)

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

    def _run_middlewares(self, socket: Socket) -> None:
        for middleware in self._middlewares:
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
        for fn in list(self._connection_handlers):
            try:
                self.server._run_user(socket, fn, socket)
            except ConnectionRefused:
                raise
            except Exception:
                socket._handler_failed(f"connection handler of {self.name}", None)

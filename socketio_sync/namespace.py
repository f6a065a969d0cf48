"""A namespace: its handlers, middlewares, sockets and adapter (Node's ``Namespace``)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from gevent.event import AsyncResult

from .broadcast import BroadcastOperator, RoomArg, _rooms
from .exceptions import ConnectionRefused

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
        self.adapter = server._make_adapter(self)

    def __repr__(self) -> str:
        return f"<Namespace {self.name} sockets={len(self.sockets)}>"

    # -- registration -----------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a ``"connection"`` handler (``"connect"`` is an alias), which gets the
        :class:`Socket`. Usable as a decorator."""
        if event not in _CONNECTION_EVENTS:
            raise ValueError(
                f"a namespace has only the 'connection' event; register {event!r} on the socket "
                "inside the connection handler")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._connection_handlers.append(fn)
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

    def fetch_sockets(self) -> list[Socket]:
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
                middleware(socket, next_)
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
                fn(socket)
            except ConnectionRefused:
                raise
            except Exception:
                log.exception("error in connection handler of %s", self.name)

"""python-socketio's sid-based ``Server`` API on socketio_sync.

::

    # import socketio
    from socketio_sync.compat import python_socketio as socketio

    sio = socketio.Server(cors_allowed_origins="*")
    app = socketio.WSGIApp(sio, flask_app.wsgi_app)

    @sio.event
    def connect(sid, environ, auth):
        sio.save_session(sid, {"user": auth.get("user")})

    @sio.on("chat")
    def chat(sid, data):
        sio.enter_room(sid, data["room"])
        sio.emit("chat", data, to=data["room"], skip_sid=sid)
        return "ok"                                  # the ack

What carries over: handlers that get the ``sid`` first (``connect(sid, environ[, auth])``,
``disconnect(sid[, reason])``, ``event(sid, *args)``; ``"*"`` catch-all gets the event
name first), a ``False`` return or :class:`ConnectionRefusedError` refusing a connection,
the return value as the ack; ``emit``/``send``/``call`` with ``to``/``room``,
``skip_sid``, ``namespace`` and ``callback``; ``enter_room``, ``leave_room``,
``close_room``, ``rooms``, ``disconnect``; ``get_session``, ``save_session`` and
``session``; ``get_environ``; class-based :class:`Namespace` with
``register_namespace``; ``start_background_task`` and ``sleep``; :class:`WSGIApp`.

What differs: the server runs on gevent (``socketio_sync.run(app)`` or gunicorn with
our worker), so ``async_mode`` is not an option; ``client_manager`` is replaced by
``adapter=socketio_sync.RedisAdapter("redis://...")``; callbacks and ``call``
reach clients of this process only. The underlying :class:`socketio_sync.Server` is
``sio.io`` for everything the Node-style API adds.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable, Iterator

from ..exceptions import ConnectionRefused
from ..namespace import Namespace as _CoreNamespace
from ..server import Server as _CoreServer
from ..socket import NO_ACK, Socket
from ..wsgi.middleware import WSGIApp as _CoreWSGIApp
from . import _dispatch
from ._dispatch import Dispatcher, accepts, disconnect_reason, event_args

__all__ = ["Server", "Namespace", "WSGIApp", "ConnectionRefusedError"]

log = logging.getLogger("socketio_sync.compat")

_SERVER_OPTIONS = {
    "cors_allowed_origins", "cors_credentials", "ping_interval", "ping_timeout",
    "max_http_buffer_size", "allow_upgrades", "transports", "json", "connect_timeout",
    "upgrade_timeout", "max_pending_bytes", "max_sessions", "handshake_rate",
    "max_attachments", "adapter",
}
_IGNORED_OPTIONS = {
    "logger", "engineio_logger", "always_connect", "http_compression", "compression_threshold",
    "cookie", "monitor_clients", "namespaces", "serializer",
}


class ConnectionRefusedError(ConnectionRefused):  # noqa: A001 - python-socketio's name
    """Raise in a connect handler to refuse the client: ``ConnectionRefusedError("why")``
    or ``ConnectionRefusedError("why", data)``."""

    def __init__(self, *args: Any) -> None:
        if not args:
            super().__init__("Connection rejected by server")
        elif len(args) == 1:
            super().__init__(str(args[0]))
        else:
            super().__init__(str(args[0]), args[1] if len(args) == 2 else list(args[1:]))



class Server:
    """python-socketio's ``socketio.Server``, sid-based, on a :class:`socketio_sync.Server`.

    :param options: python-socketio's options with a socketio_sync equivalent
        (``cors_allowed_origins``, ``cors_credentials``, ``ping_interval``,
        ``ping_timeout``, ``max_http_buffer_size``, ``allow_upgrades``, ``transports``,
        ``json``) and any :class:`socketio_sync.Server` option (``adapter``...).
        ``logger``, ``engineio_logger``, ``always_connect``, ``cookie`` and
        ``namespaces`` are accepted and ignored; ``async_mode`` must be ``None``,
        ``"gevent"`` or ``"threading"``; ``client_manager`` raises (use ``adapter=``).
    """

    def __init__(self, **options: Any) -> None:
        server_options: dict[str, Any] = {}
        for key, value in options.items():
            if key in _SERVER_OPTIONS:
                server_options[key] = value
            elif key == "async_mode":
                if value not in (None, "gevent", "gevent_uwsgi", "threading"):
                    raise ValueError(f"async_mode={value!r}: socketio_sync runs on gevent; use None or 'gevent'")
            elif key == "client_manager":
                if value is not None:
                    raise NotImplementedError("client_manager is not supported: pass "
                                              "adapter=socketio_sync.RedisAdapter('redis://...')")
            elif key not in _IGNORED_OPTIONS:
                raise TypeError(f"unknown Server option {key!r}")
        #: The socketio_sync server underneath (the Node-style API).
        self.io = _CoreServer(**server_options)
        self.handlers: dict[str, dict[str, Callable[..., Any]]] = {}
        self.namespace_handlers: dict[str, Namespace] = {}
        self._wired: set[str] = set()
        self._wire("/")

    # -- registration ----------------------------------------------------------------------

    def _wire(self, namespace: str) -> None:
        if namespace == "*" or namespace in self._wired:
            return
        self._wired.add(namespace)
        self.io.of(namespace).on("connection", functools.partial(self._on_connection, namespace))

    def on(self, event: str, handler: Callable[..., Any] | None = None, namespace: str | None = None) -> Any:
        """``@sio.on("event", namespace="/chat")`` or ``sio.on("event", handler)``."""
        ns = namespace or "/"

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.handlers.setdefault(ns, {})[event] = fn
            self._wire(ns)
            return fn

        return register(handler) if handler is not None else register

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """``@sio.event`` / ``@sio.event(namespace=...)``: the function's name is the event's."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            register: Callable[..., Any] = self.on(fn.__name__, *args, **kwargs)
            return register(fn)  # type: ignore[no-any-return]

        return decorator

    def register_namespace(self, namespace_handler: Namespace) -> None:
        """Register a class-based :class:`Namespace`."""
        if not isinstance(namespace_handler, Namespace):
            raise ValueError("not a Namespace instance")
        namespace_handler.server = self
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler
        self._wire(namespace_handler.namespace)

    # -- dispatch --------------------------------------------------------------------------

    def _find(self, namespace: str, event: str) -> tuple[Callable[..., Any] | None, list[Any]]:
        """The handler and the arguments that go before ``sid``."""
        reserved = event in ("connect", "disconnect")
        own = self.handlers.get(namespace, {})
        if event in own:
            return own[event], []
        if not reserved and "*" in own:
            return own["*"], [event]
        wild = self.handlers.get("*", {})
        if event in wild:
            return wild[event], [namespace]
        if not reserved and "*" in wild:
            return wild["*"], [event, namespace]
        ns_handler = self.namespace_handlers.get(namespace)
        if ns_handler is not None:
            method = getattr(ns_handler, "on_" + event, None)
            if callable(method):
                return method, []
        return None, []

    def _on_connection(self, namespace: str, socket: Socket) -> None:
        socket._handlers = Dispatcher(functools.partial(self._on_event, socket, namespace))
        handler, before = self._find(namespace, "connect")
        if handler is None:
            return
        args = [*before, socket.id, socket.client.conn.environ]
        if accepts(handler, len(args) + 1):
            args.append(socket.handshake.auth)
        if handler(*args) is False:
            raise ConnectionRefused("Connection rejected by server")

    def _on_event(self, socket: Socket, namespace: str, event: str, *args: Any) -> Any:
        if event == "disconnecting":
            return NO_ACK
        handler, before = self._find(namespace, event)
        if event == "disconnect":
            if handler is not None:
                call = [*before, socket.id]
                if accepts(handler, len(call) + 1):
                    call.append(disconnect_reason(args))
                handler(*call)
            return NO_ACK
        if handler is None:
            log.debug("no handler for event %r on %s", event, namespace)
            return NO_ACK
        return handler(*before, socket.id, *args)

    # -- lookup ----------------------------------------------------------------------------

    def _nsp(self, namespace: str | None) -> _CoreNamespace:
        return self.io.of(namespace or "/")

    def _socket(self, sid: str, namespace: str | None) -> Socket | None:
        return self._nsp(namespace).sockets.get(sid)

    # -- sending ---------------------------------------------------------------------------

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable[..., Any] | None = None,
             ignore_queue: bool = False) -> None:
        """Send ``event`` to everyone in ``namespace``, or to the room or client ``to``
        (``room`` is its old name), leaving out ``skip_sid`` (a sid or a list). A tuple
        ``data`` is several arguments. ``callback`` gets the ack arguments of each
        client (of this process) that answers."""
        nsp = self._nsp(namespace)
        target = to if to is not None else room
        args = event_args((data,))
        skip = [] if skip_sid is None else [skip_sid] if isinstance(skip_sid, str) else list(skip_sid)
        op = nsp.to(target if isinstance(target, str) else list(target)) if target is not None else None
        if skip:
            op = op.except_(skip) if op is not None else nsp.except_(skip)
        if callback is not None:
            # As python-socketio does: the callback runs once per client that answers.
            for socket in (op if op is not None else nsp.to(())).local.fetch_sockets():
                socket.emit(event, *args, callback=callback)
            return
        if op is None:
            nsp.emit(event, *args)
        else:
            op.emit(event, *args)

    def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable[..., Any] | None = None,
             ignore_queue: bool = False) -> None:
        """Emit a ``"message"`` event."""
        self.emit("message", data, to=to, room=room, skip_sid=skip_sid, namespace=namespace, callback=callback)

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float = 60, ignore_queue: bool = False) -> Any:
        """Emit to one client and wait for its ack: the value, a tuple for several,
        ``None`` for none.

        :raises socketio_sync.AckTimeout: no answer within ``timeout`` seconds.
        """
        target = to or sid
        socket = self._socket(target, namespace) if target else None
        if socket is None:
            raise ValueError("call() needs to=<the sid of one client connected to this process>")
        return socket.call(event, *event_args((data,)), timeout=timeout)

    # -- rooms -----------------------------------------------------------------------------

    def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        """Put client ``sid`` in ``room``."""
        socket = self._socket(sid, namespace)
        if socket is not None:
            socket.join(room)
        else:
            self._nsp(namespace).in_(sid).sockets_join(room)

    def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        """Take client ``sid`` out of ``room``."""
        socket = self._socket(sid, namespace)
        if socket is not None:
            socket.leave(room)
        else:
            self._nsp(namespace).in_(sid).sockets_leave(room)

    def close_room(self, room: str, namespace: str | None = None) -> None:
        """Remove every client from ``room``."""
        self._nsp(namespace).in_(room).sockets_leave(room)

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        """The rooms of client ``sid`` (its own sid room included)."""
        socket = self._socket(sid, namespace)
        return sorted(socket.rooms) if socket is not None else []

    def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        """Disconnect client ``sid`` from the namespace."""
        socket = self._socket(sid, namespace)
        if socket is not None:
            socket.disconnect()
        else:
            self._nsp(namespace).in_(sid).disconnect_sockets()

    # -- sessions --------------------------------------------------------------------------

    def get_session(self, sid: str, namespace: str | None = None) -> dict[str, Any]:
        """The user session of client ``sid`` (a dict kept while it is connected)."""
        socket = self._socket(sid, namespace)
        if socket is None:
            raise KeyError(f"no client {sid} in {namespace or '/'}")
        return socket.data.setdefault("session", {})  # type: ignore[no-any-return]

    def save_session(self, sid: str, session: dict[str, Any], namespace: str | None = None) -> None:
        """Replace the user session of client ``sid``."""
        socket = self._socket(sid, namespace)
        if socket is None:
            raise KeyError(f"no client {sid} in {namespace or '/'}")
        socket.data["session"] = session

    @contextlib.contextmanager
    def session(self, sid: str, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """``with sio.session(sid) as session: session["user"] = ...``"""
        session = self.get_session(sid, namespace)
        yield session
        self.save_session(sid, session, namespace)

    def get_environ(self, sid: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The WSGI environ of the request that opened client ``sid``'s connection."""
        socket = self._socket(sid, namespace)
        return socket.client.conn.environ if socket is not None else None

    # -- tasks -----------------------------------------------------------------------------

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``target`` in a greenlet (a thread outside gevent); has ``join()``."""
        return _dispatch.start_background_task(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep without blocking other clients."""
        _dispatch.sleep(seconds)

    def shutdown(self) -> None:
        """Disconnect every client."""
        self.io.close()


class Namespace:
    """A class-based namespace: ``on_<event>(self, sid, *args)`` methods, with
    ``on_connect(self, sid, environ[, auth])`` and ``on_disconnect(self, sid[, reason])``.
    Register it with ``sio.register_namespace(MyNamespace("/chat"))``."""

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or "/"
        self.server: Server | None = None

    def _srv(self) -> Server:
        if self.server is None:
            raise RuntimeError("register the namespace with sio.register_namespace() first")
        return self.server

    def trigger_event(self, event: str, *args: Any) -> Any:
        handler = getattr(self, "on_" + event, None)
        return handler(*args) if handler is not None else None

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable[..., Any] | None = None) -> None:
        self._srv().emit(event, data, to=to, room=room, skip_sid=skip_sid,
                         namespace=namespace or self.namespace, callback=callback)

    def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable[..., Any] | None = None) -> None:
        self.emit("message", data, to=to, room=room, skip_sid=skip_sid, namespace=namespace, callback=callback)

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float = 60) -> Any:
        return self._srv().call(event, data, to=to, sid=sid, namespace=namespace or self.namespace, timeout=timeout)

    def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self._srv().enter_room(sid, room, namespace or self.namespace)

    def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self._srv().leave_room(sid, room, namespace or self.namespace)

    def close_room(self, room: str, namespace: str | None = None) -> None:
        self._srv().close_room(room, namespace or self.namespace)

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        return self._srv().rooms(sid, namespace or self.namespace)

    def get_session(self, sid: str, namespace: str | None = None) -> dict[str, Any]:
        return self._srv().get_session(sid, namespace or self.namespace)

    def save_session(self, sid: str, session: dict[str, Any], namespace: str | None = None) -> None:
        self._srv().save_session(sid, session, namespace or self.namespace)

    def session(self, sid: str, namespace: str | None = None) -> Any:
        return self._srv().session(sid, namespace or self.namespace)

    def disconnect(self, sid: str, namespace: str | None = None) -> None:
        self._srv().disconnect(sid, namespace or self.namespace)


class WSGIApp(_CoreWSGIApp):
    """python-socketio's ``socketio.WSGIApp(sio, wsgi_app=None, socketio_path="socket.io")``.

    ``static_files`` is not supported (serve static files with your framework).
    """

    def __init__(self, socketio_app: Server | Any, wsgi_app: Callable[..., Any] | None = None,
                 static_files: Any = None, socketio_path: str = "socket.io") -> None:
        if static_files:
            raise NotImplementedError("static_files is not supported: serve static files with your WSGI app")
        target = socketio_app.io if isinstance(socketio_app, Server) else socketio_app
        super().__init__(target, wsgi_app, path=socketio_path)

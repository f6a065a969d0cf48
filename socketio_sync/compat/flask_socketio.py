"""Flask-SocketIO's API on socketio_sync: move an app by changing its imports.

::

    # from flask_socketio import SocketIO, emit, join_room
    from socketio_sync.compat.flask_socketio import SocketIO, emit, join_room

    socketio = SocketIO(app)

    @socketio.on("join")
    def on_join(data):
        join_room(data["room"])
        emit("joined", request.sid, to=data["room"])

    if __name__ == "__main__":
        socketio.run(app)

What carries over: ``SocketIO(app=None, **options)`` and ``init_app``; ``on``, ``event``,
``on_event``, ``on_error``, ``on_error_default``, ``on_namespace`` and class-based
:class:`Namespace`; ``emit``/``send`` with ``to``/``room``, ``broadcast``, ``include_self``,
``skip_sid``, ``namespace`` and ``callback``; ``join_room``, ``leave_room``,
``close_room``, ``rooms``, ``disconnect``; ``request.sid``, ``request.namespace`` and
``request.event`` in handlers; connect handlers that take ``auth``, return ``False`` or
raise :class:`ConnectionRefusedError`; the handler's return value as the ack; catch-all
``"*"`` events and the ``"*"`` namespace; ``start_background_task``, ``sleep``, ``run``
and ``test_client`` (Flask-SocketIO's :class:`SocketIOTestClient` API).

What differs (see the migration guide in the docs):

* Handlers run inside a Flask request context built from the Socket.IO handshake, as in
  Flask-SocketIO. With ``manage_session=True`` (the default) ``flask.session`` is a copy
  of the cookie session kept per connection, so changes made in a handler are seen by the
  next handlers of that connection but never reach the cookie, as with Flask-SocketIO;
  with ``manage_session=False`` it is the cookie session as the browser sent it.
* ``message_queue=`` is not supported: pass
  ``adapter=socketio_sync.RedisAdapter("redis://...")`` for several processes.
* ``socketio.server`` is a :class:`socketio_sync.Server`, not a python-socketio one.
* Runs on gevent (``socketio.run``, gunicorn with our worker) or under ``flask run``;
  ``async_mode`` other than ``"gevent"``/``"threading"`` is refused.
* In the test client, an exception raised by a server handler is logged by the server,
  not raised in the test (the handler runs in the server, not in the test's thread).
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Callable

import flask
from flask.ctx import RequestContext
from flask.sessions import SessionMixin

from .. import sio
from ..exceptions import ConnectionRefused
from ..integrations.flask import SocketIO as _FlaskIntegration
from ..server import Server
from ..socket import NO_ACK, Socket
from . import _dispatch
from ._dispatch import Dispatcher, accepts, disconnect_reason, event_args

__all__ = [
    "SocketIO", "Namespace", "SocketIOTestClient", "ConnectionRefusedError",
    "emit", "send", "join_room", "leave_room", "close_room", "rooms", "disconnect",
]

log = logging.getLogger("socketio_sync.compat")

#: An event the compat test client sends to wait until the server has handled what came
#: before it (Flask-SocketIO's test client is synchronous; ours talks to a real server).
FLUSH_EVENT = "\x00socketio_sync.flush"

#: Server options of Flask-SocketIO that have a socketio_sync equivalent, by their name.
_SERVER_OPTIONS = {
    "cors_allowed_origins", "cors_credentials", "ping_interval", "ping_timeout",
    "max_http_buffer_size", "allow_upgrades", "transports", "json", "connect_timeout",
    "upgrade_timeout", "max_pending_bytes", "max_sessions", "handshake_rate",
    "max_attachments", "adapter",
}
#: Options accepted for source compatibility that change nothing here.
_IGNORED_OPTIONS = {
    "manage_session", "logger", "engineio_logger", "always_connect", "http_compression",
    "compression_threshold", "cookie", "channel", "write_only", "monitor_clients",
}


class ConnectionRefusedError(ConnectionRefused):  # noqa: A001 - the name Flask-SocketIO users import
    """Raise in a connect handler to refuse the client.

    As in Flask-SocketIO: ``ConnectionRefusedError("message")`` or
    ``ConnectionRefusedError("message", data)``; the client's ``connect_error`` gets
    ``{"message": ..., "data": ...}``.
    """

    def __init__(self, *args: Any) -> None:
        if not args:
            super().__init__("Connection rejected by server")
        elif len(args) == 1:
            super().__init__(str(args[0]))
        else:
            super().__init__(str(args[0]), args[1] if len(args) == 2 else list(args[1:]))


def _skip_list(skip_sid: Any) -> list[str]:
    if skip_sid is None:
        return []
    if isinstance(skip_sid, str):
        return [skip_sid]
    return list(skip_sid)


def _set_request(socket: Socket, namespace: str, event: dict[str, Any] | None = None) -> None:
    req = flask.request._get_current_object()  # type: ignore[attr-defined]
    req.sid = socket.id
    req.namespace = namespace
    req.socketio_sync_socket = socket
    if event is not None:
        req.event = event


#: Set in the environ of requests made by :class:`SocketIOTestClient`.
_TEST_CLIENT_KEY = "socketio_sync.compat.test_client"
#: The test client's list of exceptions raised by handlers of its connection; it raises
#: them in the test, as Flask-SocketIO's synchronous test client does.
_ERRORS_KEY = "socketio_sync.compat.errors"
_ENGINE_PARAMS = ("EIO", "transport", "t", "sid")


#: Where the connection's managed session is kept (in the handshake environ, as
#: Flask-SocketIO does).
_SESSION_KEY = "socketio_sync.compat.session"


class _ManagedSession(dict, SessionMixin):  # type: ignore[type-arg]
    """The session of one Socket.IO connection when ``manage_session`` is on: a copy of
    the cookie session taken by its first handler, kept in the server."""


def _handler_context(app: flask.Flask, socketio: SocketIO, socket: Socket) -> Any:
    """The request context handlers run in: the handshake request, as with the Flask
    integration; for the test client without the Engine.IO query parameters, as
    Flask-SocketIO's test client shows only the query string the test gave. With
    ``manage_session``, ``flask.session`` is the connection's managed session."""
    conn_environ = socket.client.conn.environ
    environ = conn_environ
    if environ.get(_TEST_CLIENT_KEY):
        from urllib.parse import parse_qsl, urlencode

        pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        environ = dict(environ, QUERY_STRING=urlencode([p for p in pairs if p[0] not in _ENGINE_PARAMS]))
    if not socketio.manage_session:
        return app.request_context(environ)
    managed = conn_environ.get(_SESSION_KEY)
    if managed is None:
        with app.request_context(environ):
            copy = _ManagedSession(flask.session)
        managed = conn_environ.setdefault(_SESSION_KEY, copy)
    return RequestContext(app, environ, session=managed)



class SocketIO:
    """Flask-SocketIO's ``SocketIO`` on a :class:`socketio_sync.Server`.

    :param app: the Flask app, or ``None`` and :meth:`init_app` later.
    :param options: Flask-SocketIO's server options. Mapped: ``cors_allowed_origins``,
        ``cors_credentials``, ``ping_interval``, ``ping_timeout``,
        ``max_http_buffer_size``, ``allow_upgrades``, ``transports``, ``json``, ``path``
        (or ``resource``), plus any :class:`socketio_sync.Server` option such as
        ``adapter``, and ``manage_session`` (as above). Accepted and ignored: ``logger``,
        ``engineio_logger``, ``always_connect``, ``cookie``, ``http_compression``.
        ``async_mode`` must be ``None``, ``"gevent"`` or ``"threading"``;
        ``message_queue`` raises (use ``adapter=``). Anything else is a ``TypeError``.
    """

    class reason:  # noqa: N801 - Flask-SocketIO's name
        """The reasons a ``disconnect`` handler gets (python-socketio's strings)."""

        CLIENT_DISCONNECT = "client disconnect"
        SERVER_DISCONNECT = "server disconnect"
        PING_TIMEOUT = "ping timeout"
        TRANSPORT_CLOSE = "transport close"
        TRANSPORT_ERROR = "transport error"

    def __init__(self, app: flask.Flask | None = None, **options: Any) -> None:
        self.server: Server | None = None
        self.server_options: dict[str, Any] = {}
        self._integration: _FlaskIntegration | None = None
        self.handlers: dict[str, dict[str, Callable[..., Any]]] = {}
        self.namespace_handlers: dict[str, Namespace] = {}
        self.exception_handlers: dict[str, Callable[[BaseException], Any]] = {}
        self.default_exception_handler: Callable[[BaseException], Any] | None = None
        self.manage_session = True
        self._wired: set[str] = set()
        self._options(options)
        if app is not None:
            self.init_app(app)

    def _options(self, options: dict[str, Any]) -> None:
        for key, value in options.items():
            if key in ("path", "resource"):
                self.server_options["path"] = value
            elif key in _SERVER_OPTIONS:
                self.server_options[key] = value
            elif key == "async_mode":
                if value not in (None, "gevent", "gevent_uwsgi", "threading"):
                    raise ValueError(f"async_mode={value!r}: socketio_sync runs on gevent (or threads under "
                                     "flask run); use None, 'gevent' or 'threading'")
            elif key == "message_queue":
                if value is not None:
                    raise NotImplementedError(
                        "message_queue is not supported: pass "
                        "adapter=socketio_sync.RedisAdapter('redis://...') to share rooms between processes")
            elif key in _IGNORED_OPTIONS:
                if key == "manage_session":
                    self.manage_session = bool(value)
                else:
                    log.debug("Flask-SocketIO option %s=%r has no effect on socketio_sync", key, value)
            else:
                raise TypeError(f"unknown SocketIO option {key!r}")

    def init_app(self, app: flask.Flask, **options: Any) -> None:
        """Attach to ``app`` (Flask's extension pattern); ``options`` add to the
        constructor's."""
        self._options(options)
        opts = dict(self.server_options)
        path = opts.pop("path", "socket.io")
        self.server = Server(**opts)
        self._integration = _FlaskIntegration(app, io=self.server, path=path)
        self.server.handler_context = functools.partial(_handler_context, app, self)
        app.extensions["socketio"] = self
        self._wired = set()
        for ns in set(self.handlers) | set(self.namespace_handlers) | {"/"}:
            self._wire(ns)

    # -- registration ----------------------------------------------------------------------

    def _wire(self, namespace: str) -> None:
        if self.server is None or namespace == "*" or namespace in self._wired:
            return
        self._wired.add(namespace)
        self.server.of(namespace).on("connection", functools.partial(self._on_connection, namespace))

    def on(self, message: str, namespace: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``@socketio.on("event", namespace="/chat")``: register a handler.

        ``"connect"`` handlers may take ``auth``; ``"disconnect"`` handlers may take the
        reason; ``"*"`` catches every event without a handler (it gets the event name
        first); ``namespace="*"`` applies to every namespace.
        """
        namespace = namespace or "/"

        def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(handler):
                raise TypeError("a handler must be callable")
            self.handlers.setdefault(namespace, {})[message] = handler
            self._wire(namespace)
            return handler

        return decorator

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """``@socketio.event`` or ``@socketio.event(namespace=...)``: the function's name
        is the event's."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
            return self.on(handler.__name__, *args, **kwargs)(handler)

        return decorator

    def on_event(self, message: str, handler: Callable[..., Any], namespace: str | None = None) -> None:
        """Register ``handler`` without a decorator."""
        self.on(message, namespace)(handler)

    def on_error(self, namespace: Any = None) -> Any:
        """``@socketio.on_error()`` / ``@socketio.on_error("/chat")``: called with the
        exception a handler of that namespace raised; its return value is the ack."""
        if callable(namespace):
            self.exception_handlers["/"] = namespace
            return namespace
        ns = namespace or "/"

        def decorator(handler: Callable[[BaseException], Any]) -> Callable[[BaseException], Any]:
            if not callable(handler):
                raise ValueError("exception_handler must be callable")
            self.exception_handlers[ns] = handler
            return handler

        return decorator

    def on_error_default(self, handler: Callable[[BaseException], Any]) -> Callable[[BaseException], Any]:
        """``@socketio.on_error_default``: the error handler of namespaces without one."""
        if not callable(handler):
            raise ValueError("exception_handler must be callable")
        self.default_exception_handler = handler
        return handler

    def on_namespace(self, namespace_handler: Namespace) -> None:
        """Register a class-based :class:`Namespace`."""
        if not isinstance(namespace_handler, Namespace):
            raise ValueError("not a Namespace instance")
        namespace_handler._set_socketio(self)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler
        self._wire(namespace_handler.namespace)

    # -- dispatch (runs in the server, inside the handshake's request context) -------------

    def _find(self, namespace: str, event: str) -> tuple[Callable[..., Any] | None, bool]:
        """The handler for ``event`` and whether it takes the event name first."""
        own = self.handlers.get(namespace, {})
        if event in own:
            return own[event], False
        reserved = event in ("connect", "disconnect")
        if not reserved and "*" in own:
            return own["*"], True
        wild = self.handlers.get("*", {})
        if event in wild:
            return wild[event], False
        if not reserved and "*" in wild:
            return wild["*"], True
        ns_handler = self.namespace_handlers.get(namespace)
        if ns_handler is not None:
            method = getattr(ns_handler, "on_" + event, None)
            if callable(method):
                return method, False
        return None, False

    def _error_handler(self, namespace: str, handler: Callable[..., Any]) -> Callable[[BaseException], Any] | None:
        owner = getattr(handler, "__self__", None)
        if isinstance(owner, Namespace) and callable(getattr(owner, "error", None)):
            return owner.error  # type: ignore[attr-defined,no-any-return]
        return self.exception_handlers.get(namespace, self.default_exception_handler)

    def _call(self, namespace: str, handler: Callable[..., Any], args: list[Any]) -> Any:
        try:
            return handler(*args)
        except ConnectionRefused:
            raise
        except Exception as exc:
            err_handler = self._error_handler(namespace, handler)
            if err_handler is None:
                raise
            return err_handler(exc)

    def _on_connection(self, namespace: str, socket: Socket) -> None:
        _set_request(socket, namespace)
        socket._handlers = Dispatcher(functools.partial(self._on_event, socket, namespace))
        handler, _ = self._find(namespace, "connect")
        if handler is None:
            return
        auth = socket.handshake.auth
        args = [auth] if accepts(handler, 1) else []
        if self._call(namespace, handler, args) is False:
            raise ConnectionRefused("Connection rejected by server")

    def _on_event(self, socket: Socket, namespace: str, event: str, *args: Any) -> Any:
        if event == FLUSH_EVENT:
            return None
        if event == "disconnecting":
            return NO_ACK
        if event == "disconnect":
            _set_request(socket, namespace)
            handler, _ = self._find(namespace, "disconnect")
            if handler is not None:
                reason = disconnect_reason(args)
                self._call(namespace, handler, [reason] if accepts(handler, 1) else [])
            return NO_ACK
        _set_request(socket, namespace, {"message": event, "args": args})
        handler, with_name = self._find(namespace, event)
        if handler is None:
            log.debug("no handler for event %r on %s", event, namespace)
            return NO_ACK
        call_args = [event, *args] if with_name else list(args)
        errors = socket.client.conn.environ.get(_ERRORS_KEY)
        if errors is None:
            return self._call(namespace, handler, call_args)
        try:
            value = self._call(namespace, handler, call_args)
            if value is not NO_ACK and value is not None:
                socket.server.encoder.encode(sio.Packet(sio.PacketType.ACK, namespace, event_args((value,)), 0))
        except Exception as exc:
            errors.append(exc)
            raise
        return value

    # -- sending ---------------------------------------------------------------------------

    @property
    def async_mode(self) -> str:
        """``"gevent"`` when the process is monkey-patched, else ``"threading"`` (the
        development servers run handlers in threads)."""
        from gevent import monkey

        return "gevent" if monkey.is_module_patched("threading") else "threading"

    def _server(self) -> Server:
        if self.server is None:
            raise RuntimeError("SocketIO is not attached to an app yet: call init_app(app)")
        return self.server

    def emit(self, event: str, *args: Any, namespace: str | None = None, to: Any = None,
             room: Any = None, include_self: bool = True, skip_sid: Any = None,
             callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        """Send an event to every client of ``namespace`` (``"/"``), or to the room or
        client ``to`` (``room`` is its old name). ``emit(event, (a, b))`` sends two
        arguments. ``callback`` gets the client's ack arguments when ``to`` is one
        client's sid (connected to this process); broadcasts ignore it, as in
        Flask-SocketIO.

        From a handler this broadcasts (the module-level :func:`emit` answers the
        sender). ``include_self=False`` leaves out the client of the current handler.
        """
        kwargs.pop("ignore_queue", None)
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        server = self._server()
        nsp = server.of(namespace or "/")
        target = to if to is not None else room
        skip = _skip_list(skip_sid)
        if not include_self and flask.has_request_context() and hasattr(flask.request, "sid"):
            skip.append(flask.request.sid)
        data = event_args(args)
        if callback is not None:
            socket = nsp.sockets.get(target) if isinstance(target, str) else None
            if socket is not None:
                socket.emit(event, *data, callback=_with_request(socket, nsp.name, callback))
                return
            # As documented by Flask-SocketIO: callbacks are not invoked for broadcasts.
            log.debug("emit %r: a callback is only used for one client; broadcasting without it", event)
        if target is not None:
            op = nsp.to(target if isinstance(target, str) else list(target))
            if skip:
                op = op.except_(skip)
            op.emit(event, *data)
        elif skip:
            nsp.except_(skip).emit(event, *data)
        else:
            nsp.emit(event, *data)

    def send(self, data: Any, json: bool = False, namespace: str | None = None, to: Any = None,
             callback: Callable[..., Any] | None = None, include_self: bool = True,
             skip_sid: Any = None, **kwargs: Any) -> None:
        """Send a ``"message"`` event (``json`` is accepted and changes nothing)."""
        self.emit("message", data, namespace=namespace, to=to, include_self=include_self,
                  skip_sid=skip_sid, callback=callback, **kwargs)

    def close_room(self, room: str, namespace: str | None = None) -> None:
        """Remove every client from ``room``."""
        self._server().of(namespace or "/").in_(room).sockets_leave(room)

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``target(*args, **kwargs)`` in the background: a greenlet under gevent,
        a thread otherwise. Returns an object with ``join()``."""
        return _dispatch.start_background_task(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep without blocking other clients (``gevent.sleep`` in a greenlet)."""
        _dispatch.sleep(seconds)

    def run(self, app: flask.Flask, host: str | None = None, port: int | None = None, *,
            debug: bool | None = None, use_reloader: bool | None = None,
            reloader_options: dict[str, Any] | None = None, log_output: bool | None = None,
            allow_unsafe_werkzeug: bool = False, **kwargs: Any) -> None:
        """Serve ``app`` with WebSocket on gevent (:func:`socketio_sync.run`).

        ``host``/``port`` default to ``SERVER_NAME`` or ``127.0.0.1:5000``. ``debug``
        sets ``app.debug``; ``use_reloader`` (default: ``debug``) restarts the process
        when a source file changes (werkzeug's reloader). ``log_output`` and
        ``allow_unsafe_werkzeug`` are accepted for compatibility; other keyword
        arguments go to :func:`socketio_sync.make_server` (``certfile``, ``keyfile``...).
        """
        from ..wsgi.serving import run as serve

        server_name = app.config.get("SERVER_NAME")
        if host is None or port is None:
            name_host, _, name_port = (server_name or "").partition(":")
            host = host or name_host or "127.0.0.1"
            port = port or (int(name_port) if name_port else 5000)
        if debug is not None:
            app.debug = debug
        if use_reloader is None:
            use_reloader = bool(app.debug)
        if use_reloader:
            # werkzeug's reloader (what flask run --debug uses); it is not public API.
            from werkzeug._reloader import run_with_reloader

            run_with_reloader(lambda: serve(app, host, port, **kwargs), **(reloader_options or {}))
        else:
            serve(app, host, port, **kwargs)

    def stop(self) -> None:
        """Disconnect every client (the server process keeps running)."""
        self._server().close()

    def test_client(self, app: flask.Flask, namespace: str | None = None, query_string: str | None = None,
                    headers: dict[str, str] | None = None, auth: Any = None,
                    flask_test_client: Any = None) -> SocketIOTestClient:
        """Flask-SocketIO's test client (:class:`SocketIOTestClient`)."""
        return SocketIOTestClient(app, self, namespace=namespace, query_string=query_string,
                                  headers=headers, auth=auth, flask_test_client=flask_test_client)


def _with_request(socket: Socket, namespace: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        if flask.has_request_context():
            _set_request(socket, namespace)
        return callback(*args)
    return run


# -- module functions: called from a handler, about its client ---------------------------------

def _current() -> tuple[SocketIO, str, str]:
    if not flask.has_request_context() or not hasattr(flask.request, "sid"):
        raise RuntimeError("this function works inside a Socket.IO handler only")
    socketio = flask.current_app.extensions["socketio"]
    req: Any = flask.request
    return socketio, req.sid, req.namespace


def emit(event: str, *args: Any, **kwargs: Any) -> None:
    """From a handler: send an event to its client, or with ``to``/``room`` to a room,
    with ``broadcast=True`` to everyone in the namespace. Also takes ``namespace``,
    ``include_self``, ``skip_sid`` and ``callback``."""
    socketio, sid, namespace = _current()
    namespace = kwargs.pop("namespace", None) or namespace
    broadcast = kwargs.pop("broadcast", False)
    to = kwargs.pop("to", None)
    room = kwargs.pop("room", None)
    target = to if to is not None else room
    if target is None and not broadcast:
        target = sid
    include_self = kwargs.pop("include_self", True)
    skip_sid = kwargs.pop("skip_sid", None)
    callback = kwargs.pop("callback", None)
    kwargs.pop("ignore_queue", None)
    if kwargs:
        raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
    socketio.emit(event, *args, namespace=namespace, to=target, include_self=include_self,
                  skip_sid=skip_sid, callback=callback)


def send(message: Any, **kwargs: Any) -> None:
    """From a handler: send a ``"message"`` event (same options as :func:`emit`;
    ``json`` is accepted and changes nothing)."""
    kwargs.pop("json", None)
    emit("message", message, **kwargs)


def _socket(sid: str | None, namespace: str | None) -> tuple[SocketIO, Any, str]:
    socketio, current_sid, current_ns = _current()
    nsp = socketio._server().of(namespace or current_ns)
    return socketio, nsp, sid or current_sid


def join_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Put the client (``sid``, by default the current one) in ``room``."""
    _, nsp, sid = _socket(sid, namespace)
    socket = nsp.sockets.get(sid)
    if socket is not None:
        socket.join(room)
    else:
        nsp.in_(sid).sockets_join(room)


def leave_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Take the client (``sid``, by default the current one) out of ``room``."""
    _, nsp, sid = _socket(sid, namespace)
    socket = nsp.sockets.get(sid)
    if socket is not None:
        socket.leave(room)
    else:
        nsp.in_(sid).sockets_leave(room)


def close_room(room: str, namespace: str | None = None) -> None:
    """Remove every client from ``room``."""
    socketio, _, current_ns = _current()
    socketio.close_room(room, namespace or current_ns)


def rooms(sid: str | None = None, namespace: str | None = None) -> list[str]:
    """The rooms of the client (its own sid room included)."""
    _, nsp, sid = _socket(sid, namespace)
    socket = nsp.sockets.get(sid)
    return sorted(socket.rooms) if socket is not None else []


def disconnect(sid: str | None = None, namespace: str | None = None, silent: bool = False) -> None:
    """Disconnect the client (``sid``, by default the current one) from the namespace."""
    _, nsp, sid = _socket(sid, namespace)
    socket = nsp.sockets.get(sid)
    if socket is not None:
        socket.disconnect()
    else:
        nsp.in_(sid).disconnect_sockets()


# -- class-based namespaces --------------------------------------------------------------------

class Namespace:
    """A class-based namespace: ``on_<event>`` methods are the handlers
    (``on_connect``, ``on_disconnect``, ``on_my_event``...), ``error(exc)`` is its error
    handler. Register it with ``socketio.on_namespace(MyNamespace("/chat"))``."""

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or "/"
        self.socketio: SocketIO | None = None

    def _set_socketio(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Call ``on_<event>`` if there is one."""
        handler = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None
        return handler(*args)

    def emit(self, event: str, data: Any = None, room: Any = None, include_self: bool = True,
             namespace: str | None = None, callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        """:meth:`SocketIO.emit` in this namespace."""
        assert self.socketio is not None, "register the namespace with socketio.on_namespace()"
        args = () if data is None else (data,)
        self.socketio.emit(event, *args, namespace=namespace or self.namespace, to=kwargs.pop("to", room),
                           include_self=include_self, callback=callback, **kwargs)

    def send(self, data: Any, room: Any = None, include_self: bool = True, namespace: str | None = None,
             callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        """:meth:`SocketIO.send` in this namespace."""
        self.emit("message", data, room=room, include_self=include_self, namespace=namespace,
                  callback=callback, **kwargs)

    def close_room(self, room: str, namespace: str | None = None) -> None:
        assert self.socketio is not None, "register the namespace with socketio.on_namespace()"
        self.socketio.close_room(room, namespace or self.namespace)


# -- the test client ---------------------------------------------------------------------------

class SocketIOTestClient:
    """Flask-SocketIO's test client, over :class:`socketio_sync.testing.TestClient` (a
    real in-process connection through the WSGI middleware).

    ``emit``/``send`` return once the server has handled the event (and with
    ``callback=True`` return the ack); ``get_received(namespace)`` returns what the
    server sent so far as ``{"name", "args", "namespace"}`` dicts, where ``args`` is the
    message itself for ``"message"``/``"json"`` events and the argument list otherwise.
    A refused connection leaves :meth:`is_connected` false.
    """

    __test__ = False

    def __init__(self, app: flask.Flask, socketio: SocketIO, namespace: str | None = None,
                 query_string: str | None = None, headers: dict[str, str] | None = None,
                 auth: Any = None, flask_test_client: Any = None) -> None:
        self.app = app
        self.socketio = socketio
        self.flask_test_client = flask_test_client
        self._core: Any = None
        self._errors: list[BaseException] = []
        self.connected: dict[str, bool] = {}
        self.connect(namespace, query_string=query_string, headers=headers, auth=auth)

    @property
    def eio_sid(self) -> str | None:
        """The Engine.IO session id."""
        return self._core.sid if self._core is not None else None

    def _open(self, query_string: str | None, headers: dict[str, str] | None) -> Any:
        from ..testing import TestClient

        server = self.socketio._server()
        path = self.socketio._integration.path if self.socketio._integration else "socket.io"
        query = (query_string or "").lstrip("?")
        app = self.app

        errors = self._errors

        def marked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            environ[_TEST_CLIENT_KEY] = True
            environ[_ERRORS_KEY] = errors
            return app(environ, start_response)

        return TestClient(server, marked, namespace=None, headers=headers, query=query,
                          http_client=self.flask_test_client, path=path)

    def is_connected(self, namespace: str | None = None) -> bool:
        ns = namespace or "/"
        return self._core is not None and self._core.is_connected(ns) and self.connected.get(ns, False)

    def connect(self, namespace: str | None = None, query_string: str | None = None,
                headers: dict[str, str] | None = None, auth: Any = None) -> None:
        """Connect to ``namespace`` (``"/"``); a refusal leaves it disconnected."""
        from ..testing import ConnectionRefusedByServer

        ns = namespace or "/"
        if self._core is None or not self._core.connected:
            self._core = self._open(query_string, headers)
        try:
            self._core.connect(ns, auth=auth)
        except ConnectionRefusedByServer:
            self.connected[ns] = False
            return
        self.connected[ns] = True

    def disconnect(self, namespace: str | None = None) -> None:
        """Leave ``namespace`` (``"/"``); the connection closes with the last one."""
        ns = namespace or "/"
        if not self.is_connected(ns):
            raise RuntimeError("not connected")
        self._core.disconnect(ns)
        self.connected[ns] = False
        if not any(self.is_connected(n) for n in list(self.connected)):
            self._core.disconnect()

    def _raise_errors(self) -> None:
        if self._errors:
            exc = self._errors.pop(0)
            self._errors.clear()
            raise exc

    def _flush(self, namespace: str) -> None:
        """Wait until the server handled everything sent on ``namespace`` so far and
        everything it sent before that reached us."""
        if not self.is_connected(namespace):
            return
        done = threading.Event()
        try:
            self._core.emit(FLUSH_EVENT, namespace=namespace, callback=lambda *a: done.set())
        except AssertionError:
            return
        deadline = time.monotonic() + self._core.timeout
        while not done.wait(0.01):
            if not self._core.is_connected(namespace) or time.monotonic() > deadline:
                return
        self._raise_errors()

    def emit(self, event: str, *args: Any, callback: bool = False, namespace: str | None = None,
             **kwargs: Any) -> Any:
        """Send an event; with ``callback=True`` return the server's ack (the value, or
        the list of values when there are several). An exception a server handler
        raised for it is raised here. Other keyword arguments (``broadcast``...) are
        ignored, as by Flask-SocketIO's test client."""
        ns = namespace or "/"
        if not self.is_connected(ns):
            raise RuntimeError("not connected")
        if not callback:
            self._core.emit(event, *args, namespace=ns)
            self._flush(ns)
            return None
        box: list[list[Any]] = []
        done = threading.Event()

        def got(*ack: Any) -> None:
            box.append(list(ack))
            done.set()

        self._core.emit(event, *args, namespace=ns, callback=got)
        deadline = time.monotonic() + self._core.timeout
        while not done.wait(0.01):
            self._raise_errors()
            if not self._core.is_connected(ns) or time.monotonic() > deadline:
                return None
        self._raise_errors()
        ack = box[0]
        return ack[0] if len(ack) == 1 else ack

    def send(self, data: Any, json: bool = False, callback: bool = False, namespace: str | None = None) -> Any:
        """Send a ``"message"`` event (a ``"json"`` event with ``json=True``)."""
        return self.emit("json" if json else "message", data, callback=callback, namespace=namespace)

    def get_received(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Events the server sent to ``namespace`` (``"/"``) since the last call."""
        ns = namespace or "/"
        self._flush(ns)
        if self._core is None:
            return []
        out = []
        for item in self._core.get_received(ns):
            name = item["name"]
            if name == "disconnect":
                continue
            args = item["args"]
            if name in ("message", "json"):
                args = args[0] if args else None
            out.append({"name": name, "args": args, "namespace": item["namespace"]})
        return out

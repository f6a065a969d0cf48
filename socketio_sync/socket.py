"""A client connected to one namespace (Node's ``Socket``)."""
from __future__ import annotations

import inspect
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import gevent
from gevent.event import AsyncResult

from . import recovery, sio
from .broadcast import BroadcastOperator, RoomArg, _rooms, check_event_name
from .exceptions import AckTimeout, NotConnectedError
from .hooks import Hooks
from .wsgi.engine import Outgoing
from ._listeners import register_once, remove_handler
from .wsgi.runtime import from_any_thread

_in_hub = from_any_thread(lambda socket: socket.server.engine)

if TYPE_CHECKING:
    from .client import Client
    from .namespace import Namespace

__all__ = ["Socket", "SocketEmitter", "Handshake", "NO_ACK"]

log = logging.getLogger("socketio_sync.server")


class _NoAck:
    __slots__ = ()

    def __repr__(self) -> str:
        return "socketio_sync.NO_ACK"


#: Return this from an event handler to send no acknowledgement at all, so that the
#: client's ``ackTimeout``/``retries`` apply.
NO_ACK: Any = _NoAck()


@dataclass(frozen=True)
class Handshake:
    """What the client sent when it connected (Node's ``socket.handshake``)."""

    headers: dict[str, str]
    query: dict[str, str]
    address: str | None
    time: str
    issued: int
    url: str
    secure: bool
    xdomain: bool
    auth: dict[str, Any] = field(default_factory=dict)


class _CallWaiter:
    """Ack callback used by :meth:`Socket.call`: runs inline, never blocks."""

    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: AsyncResult = AsyncResult()

    def __call__(self, *args: Any) -> None:
        self.result.set(args)


class Socket:
    """One client in one namespace.

    Attributes: ``id``, ``nsp`` (the :class:`Namespace`), ``handshake``, ``data`` (a dict
    for your own use), ``connected``, ``rooms``, ``recovered``.
    """

    def __init__(self, nsp: Namespace, client: Client, auth: dict[str, Any] | None,
                 session: recovery.RestoredSession | None = None) -> None:
        self.nsp = nsp
        self.server = nsp.server
        self.client = client
        self._auth = auth or {}
        self._issued = time.time()
        self._handshake: Handshake | None = None
        self.data: dict[str, Any] = {}
        #: True when this socket is a session restored by connection state recovery
        #: (same ``id``, rooms and ``data``; the missed broadcasts were replayed).
        self.recovered = False
        #: The private session id (connection state recovery only; never share it).
        self.pid: str | None = None
        if session is not None:
            self.id = session.sid
            self.pid = session.pid
            self.data = session.data
            self.recovered = True
        else:
            self.id = secrets.token_urlsafe(16)
            if self.server.recovery is not None:
                self.pid = recovery.new_pid()
        self.connected = False
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._any: list[Callable[..., Any]] = []
        self._any_out: list[Callable[..., Any]] = []
        #: ``(fn, wants_next)`` per-packet middlewares (:meth:`use`).
        self._packet_middlewares: list[tuple[Callable[..., Any], bool]] = []
        self._acks: dict[int, Callable[..., Any]] = {}
        #: Outgoing items held back until the CONNECT reply is sent.
        self._held: list[str | bytes] | None = []
        if session is not None:
            # The missed broadcasts go first, right after the CONNECT reply, as on Node.
            encode = self.server.encoder.encode
            name = nsp.name
            for data in session.missed:
                self._held.extend(encode(sio.Packet(sio.PacketType.EVENT, name, data)))

    def __repr__(self) -> str:
        return f"<Socket {self.id} nsp={self.nsp.name} connected={self.connected}>"

    @property
    def handshake(self) -> Handshake:
        """What the client sent when it connected; built on first use from the request
        the connection started with (most applications never look: it is not kept)."""
        hs = self._handshake
        if hs is None:
            hs = self._handshake = self.client.make_handshake(self._auth, self._issued)
        return hs

    # -- handlers ---------------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register an event handler; usable as ``@socket.on("name")``.

        The handler gets the event's arguments. When the client asked for an ack, the
        return value is sent back: a tuple for several arguments, ``None`` for none,
        :data:`NO_ACK` for no ack at all. ``"disconnect"`` and ``"disconnecting"``
        handlers get the reason.
        """
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def once(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Like :meth:`on`, but the handler is removed before its first call."""
        return register_once(self.on, self.off, event, handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove ``handler`` (also when registered with :meth:`once`), or every handler
        of ``event`` when ``handler`` is ``None``."""
        if handler is None:
            self._handlers.pop(event, None)
        else:
            remove_handler(self._handlers.get(event, []), handler)

    def listeners(self, event: str) -> list[Callable[..., Any]]:
        """The handlers of ``event``."""
        return list(self._handlers.get(event, ()))

    def on_any(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """``handler(event, *args)`` runs for every incoming event, before its handlers."""
        self._any.append(handler)
        return handler

    def off_any(self, handler: Callable[..., Any] | None = None) -> None:
        """Remove an :meth:`on_any` handler, or all of them."""
        if handler is None:
            self._any.clear()
        else:
            remove_handler(self._any, handler)

    def prepend_any(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """:meth:`on_any`, but run before the handlers already registered."""
        self._any.insert(0, handler)
        return handler

    def listeners_any(self) -> list[Callable[..., Any]]:
        return list(self._any)

    def on_any_outgoing(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """``handler(event, *args)`` runs for every event sent to this client, by
        :meth:`emit` or by a broadcast that reaches it (Node's ``onAnyOutgoing``).
        It runs inline in the sending code: keep it short."""
        self._any_out.append(handler)
        return handler

    def off_any_outgoing(self, handler: Callable[..., Any] | None = None) -> None:
        """Remove an :meth:`on_any_outgoing` handler, or all of them."""
        if handler is None:
            self._any_out.clear()
        else:
            remove_handler(self._any_out, handler)

    def prepend_any_outgoing(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """:meth:`on_any_outgoing`, but run before the handlers already registered."""
        self._any_out.insert(0, handler)
        return handler

    def listeners_any_outgoing(self) -> list[Callable[..., Any]]:
        return list(self._any_out)

    def use(self, middleware: Callable[..., Any]) -> Callable[..., Any]:
        """Add a per-packet middleware, run for every incoming event after the
        :meth:`on_any` handlers and before the event's handlers (Node's ``socket.use``).

        It gets the packet as a list ``[event, *args]``, which it may change in place.
        Two forms, told apart by the signature when registered:

        * ``fn(packet)``: return to let the event through, raise to reject it;
        * ``fn(packet, next)``: call ``next()`` to go on, ``next(exc)`` to reject.

        A rejected event reaches no handler and gets no ack; the socket's ``"error"``
        handlers (``socket.on("error", fn(exc))``) get the exception, as on Node.
        """
        self._packet_middlewares.append((middleware, _takes_two(middleware)))
        return middleware

    # -- flags for the next emit (immutable, unlike Node's) -----------------------------

    @property
    def volatile(self) -> SocketEmitter:
        """``socket.volatile.emit(...)``: dropped if the transport cannot send right now."""
        return SocketEmitter(self, {"volatile": True})

    def timeout(self, seconds: float) -> SocketEmitter:
        """``socket.timeout(5).emit("q", callback=fn)``: ``fn(err, *args)`` gets
        ``err=None`` and the client's ack arguments, or an :class:`AckTimeout` after
        ``seconds``; ``socket.timeout(5).call("q")`` blocks instead."""
        return SocketEmitter(self, {}).timeout(seconds)

    def compress(self, compress: bool) -> SocketEmitter:
        """``socket.compress(False).emit(...)``: the engine must not compress the packet."""
        return SocketEmitter(self, {"compress": bool(compress)})

    # -- rooms ------------------------------------------------------------------------------

    @property
    def rooms(self) -> set[str]:
        return self._rooms()

    @_in_hub
    def _rooms(self) -> set[str]:
        return set(self.nsp.adapter.socket_rooms(self.id))

    @_in_hub
    def join(self, room: RoomArg) -> None:
        """Join ``room`` (a name or several). A no-op once disconnected: a handler still
        running when its client went away must not leave room entries behind."""
        if self._closed:
            return
        self.nsp.adapter.add_all(self.id, _rooms(room))

    @_in_hub
    def leave(self, room: RoomArg) -> None:
        for name in _rooms(room):
            self.nsp.adapter.delete(self.id, name)

    # -- broadcasting from this socket ------------------------------------------------------

    @property
    def broadcast(self) -> BroadcastOperator:
        """Everyone in the namespace except this socket (``socket.broadcast.volatile``,
        ``.timeout(s)``, ``.local`` and ``.compress(b)`` chain as on any operator)."""
        return BroadcastOperator(self.nsp, except_rooms=frozenset((self.id,)))

    def to(self, room: RoomArg) -> BroadcastOperator:
        """Sockets in ``room`` except this one."""
        return BroadcastOperator(self.nsp, _rooms(room), frozenset((self.id,)))

    in_ = to

    def except_(self, room: RoomArg) -> BroadcastOperator:
        return BroadcastOperator(self.nsp, except_rooms=_rooms(room) | {self.id})

    # -- sending ----------------------------------------------------------------------------

    @_in_hub
    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Send an event to this client. ``bytes`` anywhere in ``args`` go as binary.

        :param callback: called with the client's ack arguments (in a new greenlet).
        :raises NotConnectedError: when the socket is disconnected.
        """
        check_event_name(event)
        if not self.connected:
            raise NotConnectedError(f"socket {self.id} is disconnected")
        ack_id = None
        hooks = self.server.engine.hooks
        if callback is not None:
            ack_id = self.nsp._new_ack_id()
            self._acks[ack_id] = callback
            if hooks.ack:
                if self._ack_times is None:
                    self._ack_times = {}
                self._ack_times[ack_id] = time.monotonic()
        packet = sio.Packet(sio.PacketType.EVENT, self.nsp.name, [event, *args], ack_id)
        if self._any_out:
            self._notify_outgoing(packet)
        self._send_encoded(self.server.encoder.encode(packet))
        if hooks.event_out:
            Hooks.call(hooks.event_out, self, event, args)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Emit a ``"message"`` event (Node's ``socket.send``)."""
        self.emit("message", *args, callback=callback)

    @_in_hub
    def call(self, event: str, *args: Any, timeout: float = 60.0) -> Any:
        """Emit and block this greenlet until the client acknowledges.

        :returns: ``None`` for an ack with no arguments, the value for one, a tuple for several.
        :raises AckTimeout: if no ack came within ``timeout`` seconds.
        :raises NotConnectedError: if the socket disconnects first.
        """
        waiter = _CallWaiter()
        self._flush_held()  # the client must see CONNECT before it can answer
        self.emit(event, *args, callback=waiter)
        try:
            args_back = waiter.result.get(timeout=timeout)
        except gevent.Timeout:
            for key, value in list(self._acks.items()):
                if value is waiter:
                    del self._acks[key]
            raise AckTimeout(f"no ack for {event!r} from {self.id} within {timeout} s") from None
        if len(args_back) == 0:
            return None
        if len(args_back) == 1:
            return args_back[0]
        return args_back

    @_in_hub
    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket from its namespace (the client gets "io server disconnect").

        :param close: close the whole underlying connection (every namespace).
        """
        if close:
            self.client.disconnect()
            return
        if not self.connected:
            return
        self._send_encoded(self.server.encoder.encode(sio.Packet(sio.PacketType.DISCONNECT, self.nsp.name)))
        self._on_close("server namespace disconnect")

    # -- internals --------------------------------------------------------------------------

    def _send_encoded(self, items: list[str | bytes]) -> None:
        if self._held is not None:
            self._held.extend(items)
        elif self.connected:
            self.client.conn.send_prepared(Outgoing(items))

    def _send_prepared(self, out: Outgoing, packet: sio.Packet | None = None) -> None:
        """Send a broadcast's shared messages (frames built once for all recipients);
        ``packet`` is what they encode, for :meth:`on_any_outgoing` handlers."""
        if packet is not None and self._any_out:
            self._notify_outgoing(packet)
        if self._held is not None:
            self._held.extend(out.items)
        elif self.connected:
            conn = self.client.conn
            if out.volatile and not conn.writable:
                log.debug("socket %s: volatile packet dropped (transport not writable)", self.id)
                return
            conn.send_prepared(out)

    def _notify_outgoing(self, packet: sio.Packet) -> None:
        data = packet.data
        if not isinstance(data, list) or not data:
            return
        for fn in list(self._any_out):
            try:
                self.server._run_user(self, fn, *data)
            except Exception:
                log.exception("error in on_any_outgoing handler of socket %s", self.id)

    def _on_error(self, err: BaseException) -> None:
        """A per-packet middleware rejected an event: the ``"error"`` handlers get it."""
        if self._handlers.get("error"):
            self._fire("error", err)
        else:
            log.warning("socket %s: event rejected by a middleware (%s) and no 'error' handler "
                        "on the socket", self.id, err)

    def _run_packet_middlewares(self, packet: list[Any]) -> BaseException | None:
        run = self.server._run_user
        for fn, wants_next in list(self._packet_middlewares):
            if not wants_next:
                try:
                    run(self, fn, packet)
                except Exception as exc:
                    return exc
                continue
            done: AsyncResult = AsyncResult()

            def next_(err: BaseException | None = None, _done: AsyncResult = done) -> None:
                if not _done.ready():
                    _done.set(err)

            try:
                run(self, fn, packet, next_)
            except Exception as exc:
                return exc
            try:
                err = done.get(timeout=self.server.connect_timeout)
            except gevent.Timeout:
                log.warning("socket %s: middleware %r did not call next() within %s s; event dropped",
                            self.id, fn, self.server.connect_timeout)
                return TimeoutError("middleware did not call next()")
            if err is not None:
                return err if isinstance(err, BaseException) else Exception(str(err))
        return None

    def _flush_held(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if self.client.protocol == 4:  # a Socket.IO v2 client: no payload
            reply = sio.v4.connect_reply(self.nsp.name)
        else:
            answer: dict[str, Any] = {"sid": self.id}
            if self.pid is not None:
                answer["pid"] = self.pid
            reply = sio.Packet(sio.PacketType.CONNECT, self.nsp.name, answer)
        self.client.conn.send_many(self.server.encoder.encode(reply) + held)

    def _handler_failed(self, what: str, event: str | None) -> None:
        log.exception("error in %s of socket %s", what, self.id,
                      extra={"eio_sid": self.client.conn.sid, "sid": self.id, "namespace": self.nsp.name,
                             "event": event})
        Hooks.call(self.server.engine.hooks.error, "handler_exception", what, self.client.conn)

    def _handle_event(self, data: list[Any], ack_id: int | None) -> None:
        event, *args = data
        run = self.server._run_user
        hooks = self.server.engine.hooks.event_in
        if hooks:
            Hooks.call(hooks, self, event, args)
        for any_fn in self.nsp._all_any():
            try:
                run(self, any_fn, self, event, *args)
            except Exception:
                self._handler_failed(f"on_any handler for {event!r}", event)
        for any_fn in self._any:
            try:
                run(self, any_fn, event, *args)
            except Exception:
                self._handler_failed(f"on_any handler for {event!r}", event)
        if self._packet_middlewares:
            incoming = [event, *args]
            err = self._run_packet_middlewares(incoming)
            if err is not None:
                self._on_error(err)
                return
            if not incoming or not self.connected:
                return
            event, *args = incoming
        handlers = self._handlers.get(event)
        result: Any = NO_ACK
        if handlers:
            for i, fn in enumerate(list(handlers)):
                try:
                    value = run(self, fn, *args)
                except Exception:
                    self._handler_failed(f"handler for event {event!r}", event)
                    value = NO_ACK
                if i == 0:
                    result = value
        else:
            if event in self.nsp._server_side_handlers:
                log.warning(
                    "event %r from client %s has no handler on the socket; %s.on(%r) handles "
                    "server_side_emit from other servers, not client events: register client "
                    "events with socket.on() in the connection handler", event, self.id,
                    "io" if self.nsp.name == "/" else f"io.of({self.nsp.name!r})", event)
            else:
                log.debug("socket %s: no handler for event %r", self.id, event)
        if ack_id is not None and result is not NO_ACK and self.connected:
            if result is None:
                ack_args: list[Any] = []
            elif isinstance(result, tuple):
                ack_args = list(result)
            else:
                ack_args = [result]
            packet = sio.Packet(sio.PacketType.ACK, self.nsp.name, ack_args, ack_id)
            try:
                encoded = self.server.encoder.encode(packet)
            except (TypeError, ValueError):
                log.exception("the handler for event %r of socket %s returned an ack that "
                              "cannot be encoded; no ack sent", event, self.id)
                return
            self._send_encoded(encoded)

    def _handle_ack(self, ack_id: int, args: list[Any]) -> None:
        callback = self._acks.pop(ack_id, None)
        times = self._ack_times
        if times is not None:
            sent = times.pop(ack_id, None)
            if sent is not None and callback is not None:
                Hooks.call(self.server.engine.hooks.ack, self, time.monotonic() - sent)
        if callback is None:
            log.debug("socket %s: ack %d for nothing (late or unknown); ignored", self.id, ack_id)
            return
        if isinstance(callback, _CallWaiter):
            callback(*args)
        else:
            self.server.workers.submit(_run_callback, callback, args, self)

    def _fire(self, event: str, *args: Any) -> None:
        for fn in list(self._handlers.get(event, ())):
            try:
                self.server._run_user(self, fn, *args)
            except Exception:
                self._handler_failed(f"{event!r} handler", event)

    #: Set once the socket disconnected (``connected`` is also false before it connects).
    _closed = False
    #: Ack id -> when it was asked for, kept only while an ``ack`` hook is registered.
    _ack_times: dict[int, float] | None = None

    def _on_close(self, reason: str) -> None:
        if not self.connected:
            return
        self._closed = True
        log.debug("socket %s left %s: %s", self.id, self.nsp.name, reason,
                  extra={"eio_sid": self.client.conn.sid, "sid": self.id, "namespace": self.nsp.name,
                         "reason": reason, "remote_addr": self.client.conn.remote_addr})
        self._fire("disconnecting", reason)
        self.connected = False
        if self.pid is not None and reason in recovery.RECOVERABLE_REASONS:
            self._persist_session()
        Hooks.call(self.server.engine.hooks.socket_disconnect, self, reason)
        self.nsp.adapter.delete_all(self.id)
        self.nsp.sockets.pop(self.id, None)
        self.nsp._socket_left()
        self.client._remove(self)
        for callback in list(self._acks.values()):
            if isinstance(callback, _CallWaiter):
                callback.result.set_exception(NotConnectedError(f"socket {self.id} disconnected: {reason}"))
        self._acks.clear()
        self._ack_times = None
        self._fire("disconnect", reason)

    def _persist_session(self) -> None:
        try:
            self.nsp.adapter.persist_session(recovery.SessionState(
                self.id, self.pid or "", sorted(self.nsp.adapter.socket_rooms(self.id)), self.data))
        except (TypeError, ValueError) as exc:  # socket.data that the adapter cannot store
            log.warning("socket %s: its session cannot be kept for recovery: %s", self.id, exc)
        except Exception:
            log.exception("socket %s: could not keep its session for recovery", self.id)


def _run_callback(callback: Callable[..., Any], args: list[Any], socket: Socket) -> None:
    try:
        socket.server._run_user(socket, callback, *args)
    except Exception:
        log.exception("error in ack callback %r", callback)


def now_strings(timestamp: float | None = None) -> tuple[str, int]:
    """Node's ``handshake.time`` and ``handshake.issued`` for ``timestamp`` (default: now)."""
    now = datetime.now(timezone.utc) if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)
    return now.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)"), int(now.timestamp() * 1000)



def _takes_two(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` accepts a second positional argument (``next``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    count = 0
    for param in sig.parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count >= 2


class _TimedAck:
    """An ack callback with a deadline: ``callback(None, *args)`` or ``callback(AckTimeout)``."""

    __slots__ = ("socket", "ack_id", "callback", "timer", "done")

    def __init__(self, socket: Socket, ack_id: int, callback: Callable[..., Any], timeout: float) -> None:
        self.socket = socket
        self.ack_id = ack_id
        self.callback = callback
        self.done = False
        self.timer = gevent.spawn_later(timeout, self._expire, timeout)

    def __call__(self, *args: Any) -> Any:  # in the ack callback worker, inside _run_user
        if self.done:
            return None
        self.done = True
        self.timer.kill(block=False)
        return self.callback(None, *args)

    def _expire(self, timeout: float) -> None:
        if self.done:
            return
        self.done = True
        sock, ack_id = self.socket, self.ack_id
        pending: Any = sock._acks.get(ack_id)
        if pending is self:
            del sock._acks[ack_id]
        err = AckTimeout(f"no ack from {sock.id} within {timeout} s")
        try:
            sock.server._run_user(sock, self.callback, err)
        except Exception:
            log.exception("error in ack callback %r", self.callback)


class SocketEmitter:
    """What ``socket.volatile``, ``socket.timeout(s)`` and ``socket.compress(b)``
    return: :meth:`emit` (and :meth:`send`, :meth:`call`) with those flags; the flags
    chain (``socket.volatile.compress(False).emit(...)``) and never stick to the socket."""

    __slots__ = ("socket", "flags")

    def __init__(self, socket: Socket, flags: dict[str, Any]) -> None:
        self.socket = socket
        self.flags = flags

    @property
    def volatile(self) -> SocketEmitter:
        return SocketEmitter(self.socket, {**self.flags, "volatile": True})

    def timeout(self, seconds: float) -> SocketEmitter:
        if seconds <= 0:
            raise ValueError("timeout must be positive (seconds)")
        return SocketEmitter(self.socket, {**self.flags, "timeout": float(seconds)})

    def compress(self, compress: bool) -> SocketEmitter:
        return SocketEmitter(self.socket, {**self.flags, "compress": bool(compress)})

    @from_any_thread(lambda em: em.socket.server.engine)
    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """:meth:`Socket.emit` with the flags. With a :meth:`timeout`, ``callback`` gets
        ``(err, *args)``: ``err`` is ``None`` or an :class:`AckTimeout`."""
        sock = self.socket
        check_event_name(event)
        if not sock.connected:
            raise NotConnectedError(f"socket {sock.id} is disconnected")
        flags = self.flags
        ack_id = None
        if callback is not None:
            ack_id = sock.nsp._new_ack_id()
            timeout = flags.get("timeout")
            sock._acks[ack_id] = callback if timeout is None else _TimedAck(sock, ack_id, callback, timeout)
        packet = sio.Packet(sio.PacketType.EVENT, sock.nsp.name, [event, *args], ack_id)
        out = Outgoing(sock.server.encoder.encode(packet), volatile=bool(flags.get("volatile")),
                       compress=flags.get("compress", True) is not False)
        sock._send_prepared(out, packet)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        self.emit("message", *args, callback=callback)

    def call(self, event: str, *args: Any) -> Any:
        """Blocking emit: the client's answer, or :class:`AckTimeout` after the
        :meth:`timeout` (default 60 s)."""
        return self.socket.call(event, *args, timeout=self.flags.get("timeout", 60.0))

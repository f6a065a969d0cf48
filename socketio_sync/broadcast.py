"""Immutable broadcast selections: ``io.to("a").except_("b").emit(...)``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from gevent.event import AsyncResult

from . import sio
from .adapters.base import BroadcastOptions
from .exceptions import AckTimeout, LocalProtocolError
from .wsgi.runtime import from_any_thread

_in_hub = from_any_thread(lambda op: op.nsp.server.engine)

if TYPE_CHECKING:
    from .namespace import Namespace
    from .socket import Handshake

__all__ = ["BroadcastOperator", "RemoteSocket", "RoomArg", "check_event_name"]

RoomArg = str | Iterable[str]


def _rooms(room: RoomArg) -> frozenset[str]:
    if isinstance(room, str):
        return frozenset((room,))
    return frozenset(room)


def check_event_name(event: str) -> None:
    if not isinstance(event, str):
        raise TypeError("event names are strings")
    if event in sio.RESERVED_EVENTS:
        raise LocalProtocolError(f"{event!r} is a reserved event name")


class BroadcastOperator:
    """A selection of sockets in one namespace, on every server of the cluster.

    Every method that narrows the selection returns a new operator; the original is never
    changed.
    """

    __slots__ = ("nsp", "opts")

    def __init__(self, nsp: Namespace, rooms: frozenset[str] = frozenset(),
                 except_rooms: frozenset[str] = frozenset(), flags: Mapping[str, Any] | None = None) -> None:
        self.nsp = nsp
        self.opts = BroadcastOptions(rooms, except_rooms, dict(flags or {}))

    @property
    def rooms(self) -> frozenset[str]:
        return self.opts.rooms

    @property
    def except_rooms(self) -> frozenset[str]:
        return self.opts.except_rooms

    @property
    def flags(self) -> Mapping[str, Any]:
        return self.opts.flags

    def _with(self, rooms: frozenset[str] | None = None, except_rooms: frozenset[str] | None = None,
              **flags: Any) -> BroadcastOperator:
        return BroadcastOperator(
            self.nsp,
            self.opts.rooms if rooms is None else rooms,
            self.opts.except_rooms if except_rooms is None else except_rooms,
            {**self.opts.flags, **flags},
        )

    def to(self, room: RoomArg) -> BroadcastOperator:
        """Narrow to the sockets in ``room`` (a name or several); chained calls add rooms."""
        return self._with(rooms=self.opts.rooms | _rooms(room))

    in_ = to

    def except_(self, room: RoomArg) -> BroadcastOperator:
        """Leave out the sockets in ``room``."""
        return self._with(except_rooms=self.opts.except_rooms | _rooms(room))

    @property
    def local(self) -> BroadcastOperator:
        """Only the sockets connected to this process."""
        return self._with(local=True)

    @property
    def volatile(self) -> BroadcastOperator:
        """Skip the clients whose transport cannot send right now (a long-polling client
        with no GET waiting, a WebSocket with a backlog): the packet is dropped for them
        instead of queued, as Node's ``volatile`` (for data that is fine to lose, such as
        positions sent many times a second)."""
        return self._with(volatile=True)

    def compress(self, compress: bool) -> BroadcastOperator:
        """``compress(False)``: the engine must not compress these packets (the flag goes
        down to the engine as :attr:`Outgoing.compress <socketio_sync.wsgi.engine.Outgoing>`)."""
        return self._with(compress=bool(compress))

    def timeout(self, seconds: float) -> BroadcastOperator:
        """How long :meth:`emit` with a callback (or :meth:`call`) waits for acks."""
        if seconds <= 0:
            raise ValueError("timeout must be positive (seconds)")
        return self._with(timeout=float(seconds))

    @_in_hub
    def emit(self, event: str, *args: Any, callback: Callable[[Exception | None, list[Any]], Any] | None = None) -> None:
        """Send an event to every selected socket (encoded once per process).

        With ``callback`` (needs :meth:`timeout`), every client is asked for an ack and
        ``callback(err, responses)`` is called once: ``err`` is ``None`` when every
        client answered, an :class:`AckTimeout` otherwise; ``responses`` holds the first
        argument of each answer.
        """
        check_event_name(event)
        packet = sio.Packet(sio.PacketType.EVENT, self.nsp.name, [event, *args])
        if callback is None:
            self.nsp.adapter.broadcast(packet, self.opts)
            return
        timeout = self.opts.flags.get("timeout")
        if timeout is None:
            raise TypeError("a broadcast with acks needs a timeout: io.timeout(5).emit(..., callback=fn)")
        _AckCollector(self.nsp, packet, self.opts, float(timeout), callback).start()

    @_in_hub
    def call(self, event: str, *args: Any) -> list[Any]:
        """Broadcast asking for acks and block until every client answered.

        :returns: the first argument of each client's answer.
        :raises AckTimeout: when some did not answer within the :meth:`timeout`
            (default 5 s); its ``responses`` attribute has the answers that came.
        """
        op = self if "timeout" in self.opts.flags else self.timeout(5.0)
        result: AsyncResult = AsyncResult()
        op.emit(event, *args, callback=lambda err, responses: result.set((err, responses)))
        err, responses = result.get()
        if err is not None:
            raise err
        return responses

    def send(self, *args: Any) -> None:
        """Emit a ``"message"`` event (Node's ``send``)."""
        self.emit("message", *args)

    @_in_hub
    def fetch_sockets(self) -> list[Any]:
        """The matching sockets: local :class:`Socket` objects and, with a cluster
        adapter, :class:`RemoteSocket` objects for the other servers' clients."""
        return self.nsp.adapter.fetch_sockets(self.opts)

    @_in_hub
    def sockets_join(self, room: RoomArg) -> None:
        """Make the matching sockets join ``room``."""
        self.nsp.adapter.add_sockets(self.opts, sorted(_rooms(room)))

    @_in_hub
    def sockets_leave(self, room: RoomArg) -> None:
        self.nsp.adapter.del_sockets(self.opts, sorted(_rooms(room)))

    @_in_hub
    def disconnect_sockets(self, close: bool = False) -> None:
        self.nsp.adapter.disconnect_sockets(self.opts, close)


class _AckCollector:
    """Counts the clients a broadcast reached on each server and collects their acks."""

    def __init__(self, nsp: Namespace, packet: sio.Packet, opts: BroadcastOptions, timeout: float,
                 callback: Callable[[Exception | None, list[Any]], Any]) -> None:
        self.nsp = nsp
        self.packet = packet
        self.opts = opts
        self.timeout = timeout
        self.callback = callback
        self.responses: list[Any] = []
        self.expected_servers = -1
        self.servers = 0
        self.expected_clients = 0
        self.done = False
        self.timer: Any = None

    def start(self) -> None:
        import gevent

        self.timer = gevent.spawn_later(self.timeout, self._on_timeout)
        adapter = self.nsp.adapter
        adapter.broadcast_with_ack(self.packet, self.opts, self._on_count, self._on_ack)
        self.expected_servers = 1 if self.opts.local else adapter.server_count()
        self._check()

    def _on_count(self, count: int) -> None:
        self.expected_clients += count
        self.servers += 1
        self._check()

    def _on_ack(self, value: Any) -> None:
        if not self.done:
            self.responses.append(value)
            self._check()

    def _check(self) -> None:
        if (not self.done and self.expected_servers >= 0 and self.servers >= self.expected_servers
                and len(self.responses) >= self.expected_clients):
            self.done = True
            if self.timer is not None:
                self.timer.kill(block=False)
            self._finish(None)

    def _on_timeout(self) -> None:
        if self.done:
            return
        self.done = True
        err = AckTimeout(
            f"broadcast acks timed out after {self.timeout} s: {len(self.responses)} of "
            f"{self.expected_clients} clients answered")
        err.responses = list(self.responses)  # type: ignore[attr-defined]
        self._finish(err)

    def _finish(self, err: Exception | None) -> None:
        try:
            self.nsp.server._run_user(None, self.callback, err, list(self.responses))
        except Exception:
            import logging

            logging.getLogger("socketio_sync.server").exception("error in broadcast ack callback")


class RemoteSocket:
    """A socket connected to another server of the cluster, as :meth:`fetch_sockets`
    returns it: ``id``, ``handshake``, ``rooms``, ``data``, and operations that travel
    through the adapter."""

    def __init__(self, nsp: Namespace, sid: str, handshake: Handshake, rooms: set[str], data: Any) -> None:
        self.nsp = nsp
        self.id = sid
        self.handshake = handshake
        self.rooms = rooms
        self.data = data

    def __repr__(self) -> str:
        return f"<RemoteSocket {self.id} nsp={self.nsp.name}>"

    def _self(self) -> BroadcastOperator:
        return BroadcastOperator(self.nsp, frozenset((self.id,)))

    def emit(self, event: str, *args: Any) -> None:
        self._self().emit(event, *args)

    def join(self, room: RoomArg) -> None:
        self._self().sockets_join(room)

    def leave(self, room: RoomArg) -> None:
        self._self().sockets_leave(room)

    def disconnect(self, close: bool = False) -> None:
        self._self().disconnect_sockets(close)

"""The adapter interface: room storage for one namespace, and the operations that a
cluster adapter extends to the other servers.

Rooms are kept as two flat maps, ``rooms: room -> sids`` and ``sids: sid -> rooms``;
every socket is in the room named after its own id. The operations take a
:class:`BroadcastOptions` (which rooms, which rooms to leave out, flags such as
``local`` and ``timeout``) and act on the matching sockets of *this* process; a cluster
adapter overrides them to publish the operation to the other servers too.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import gevent

from ..hooks import Hooks
from .. import recovery, sio
from ..wsgi.engine import Outgoing

if TYPE_CHECKING:
    from ..namespace import Namespace
    from ..sio import Packet
    from ..socket import Socket

__all__ = ["Adapter", "BroadcastOptions"]

log = logging.getLogger("socketio_sync.adapter")

_EVENT_TYPES = (sio.PacketType.EVENT, sio.PacketType.BINARY_EVENT)


@dataclass(frozen=True)
class BroadcastOptions:
    """Which sockets an operation targets: in any of ``rooms`` (all sockets when empty),
    and in none of ``except_rooms``. ``flags``: ``local`` (this process only),
    ``timeout`` (seconds, for acks), ``volatile`` (skip clients whose transport is not
    writable), ``compress`` (``False``: the engine must not compress)."""

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    flags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return bool(self.flags.get("local"))


class Adapter:
    """Rooms of one namespace in this process, and the operations on them.

    Subclass and override the operations (``broadcast``, ``broadcast_with_ack``,
    ``add_sockets``, ``del_sockets``, ``disconnect_sockets``, ``fetch_sockets``,
    ``server_side_emit``, ``server_count``) to reach other processes; call
    ``super()`` for the local part.
    """

    def __init__(self, nsp: Namespace) -> None:
        self.nsp = nsp
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}
        #: The server's observers (``room_join``, ``room_leave``, ``broadcast``).
        self.hooks: Hooks = nsp.server.engine.hooks
        #: The server's connection state recovery options (``None``: off).
        self.recovery: recovery.RecoveryOptions | None = getattr(nsp.server, "recovery", None)
        self._packet_log: recovery.PacketLog | None = None
        self._session_store: recovery.SessionStore | None = None
        self._prune_scheduled = False
        if self.recovery is not None:
            duration = self.recovery.max_disconnection_duration
            self._packet_log = recovery.PacketLog(duration, self.recovery.max_packets)
            self._session_store = recovery.SessionStore(duration)

    # -- membership -------------------------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        mine = self.sids.setdefault(sid, set())
        hooks = self.hooks.room_join
        if hooks:
            rooms = [room for room in rooms if room not in mine]
        for room in rooms:
            mine.add(room)
            self.rooms.setdefault(room, set()).add(sid)
        if hooks:
            for room in rooms:
                Hooks.call(hooks, self.nsp, room, sid)

    def delete(self, sid: str, room: str) -> None:
        mine = self.sids.get(sid)
        if mine is None or room not in mine:
            return
        mine.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]
        hooks = self.hooks.room_leave
        if hooks:
            Hooks.call(hooks, self.nsp, room, sid)

    def delete_all(self, sid: str) -> None:
        hooks = self.hooks.room_leave
        for room in self.sids.pop(sid, ()):
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]
            if hooks:
                Hooks.call(hooks, self.nsp, room, sid)

    def socket_rooms(self, sid: str) -> set[str]:
        return set(self.sids.get(sid, ()))

    # -- selection --------------------------------------------------------------------------

    def target_sids(self, opts: BroadcastOptions) -> Iterator[str]:
        excluded: set[str] = set()
        for room in opts.except_rooms:
            excluded.update(self.rooms.get(room, ()))
        if opts.rooms:
            seen: set[str] = set()
            for room in opts.rooms:
                for sid in self.rooms.get(room, ()):
                    if sid not in seen and sid not in excluded:
                        seen.add(sid)
                        yield sid
        else:
            for sid in self.sids:
                if sid not in excluded:
                    yield sid

    def local_sockets(self, opts: BroadcastOptions) -> list[Socket]:
        sockets = self.nsp.sockets
        found = []
        for sid in list(self.target_sids(opts)):
            sock = sockets.get(sid)
            if sock is not None:
                found.append(sock)
        return found

    # -- operations -------------------------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        """Encode ``packet`` once and queue it for every matching local socket (with
        connection state recovery on, keep it and append its offset first)."""
        if self.recovery is not None and self.is_recoverable(packet, opts):
            self.persist_packet(packet, opts)
        self._broadcast_local(packet, opts)

    def _broadcast_local(self, packet: Packet, opts: BroadcastOptions) -> None:
        """Encode ``packet`` once and queue it for every matching local socket."""
        flags = opts.flags
        out = Outgoing(self.nsp.server.encoder.encode(packet), volatile=bool(flags.get("volatile")),
                       compress=flags.get("compress", True) is not False)
        sockets = self.nsp.sockets
        sent = 0
        if len(opts.rooms) == 1 and not opts.except_rooms:
            # the common case, a single room: no set building
            for sid in tuple(self.rooms.get(next(iter(opts.rooms)), ())):
                sock = sockets.get(sid)
                if sock is not None:
                    sock._send_prepared(out, packet)
                    sent += 1
        else:
            for sock in self.local_sockets(opts):
                sock._send_prepared(out, packet)
                sent += 1
        hooks = self.hooks.broadcast
        if hooks:
            Hooks.call(hooks, self.nsp, packet, sent)

    def broadcast_with_ack(self, packet: Packet, opts: BroadcastOptions,
                           client_count_cb: Callable[[int], None], ack_cb: Callable[[Any], None]) -> None:
        """Broadcast asking every client for an ack. ``client_count_cb(n)`` is called once
        with the number of clients reached here; ``ack_cb(first_arg)`` once per answer."""
        packet.id = self.nsp._new_ack_id()
        out = Outgoing(self.nsp.server.encoder.encode(packet),
                       compress=opts.flags.get("compress", True) is not False)
        reached = []

        def on_ack(*args: Any) -> None:
            ack_cb(args[0] if args else None)

        for sock in self.local_sockets(opts):
            if sock.connected:
                sock._acks[packet.id] = on_ack
                sock._send_prepared(out, packet)
                reached.append(sock)
        client_count_cb(len(reached))
        timeout = opts.flags.get("timeout")
        if reached and timeout is not None:
            gevent.spawn_later(float(timeout) + 1.0, _forget_acks, reached, packet.id, on_ack)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for sock in self.local_sockets(opts):
            sock.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for sock in self.local_sockets(opts):
            sock.leave(rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for sock in self.local_sockets(opts):
            sock.disconnect(close)

    def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        return list(self.local_sockets(opts))

    def server_side_emit(self, args: list[Any], callback: Callable[..., Any] | None = None,
                         timeout: float | None = None) -> None:
        """Send ``args`` (event name first) to the namespace on every *other* server."""
        if callback is not None:
            callback(None, [])

    def server_count(self) -> int:
        """How many servers share this namespace (1 without a cluster)."""
        return 1

    def close(self) -> None:
        """Release resources (connections, listeners)."""

    # -- connection state recovery ----------------------------------------------------------

    @staticmethod
    def is_recoverable(packet: Packet, opts: BroadcastOptions) -> bool:
        """Whether a broadcast is kept for recovery: EVENTs without an ack (an ack callback
        cannot be restored) and not ``volatile``, as on Node."""
        return packet.id is None and not opts.flags.get("volatile") and packet.type in _EVENT_TYPES

    def persist_packet(self, packet: Packet, opts: BroadcastOptions) -> None:
        """Keep a broadcast for the sockets that may miss it; append its offset to
        ``packet.data`` (the last argument the clients get)."""
        log_ = self._packet_log
        if log_ is None:
            return
        log_.append(packet.data, opts.rooms, opts.except_rooms, time.monotonic())  # type: ignore[arg-type]
        self._schedule_prune()

    def persist_session(self, session: recovery.SessionState) -> None:
        """Keep the session of a socket that disconnected abnormally, for
        ``max_disconnection_duration`` seconds."""
        store = self._session_store
        if store is None:
            return
        store.persist(session, time.monotonic())
        self._schedule_prune()

    def restore_session(self, pid: str, offset: str) -> recovery.RestoredSession | None:
        """The session ``pid`` with the broadcasts it missed after ``offset``, or ``None``
        (unknown or expired session, unknown offset): the client then gets a new one."""
        store, log_ = self._session_store, self._packet_log
        if store is None or log_ is None:
            return None
        now = time.monotonic()
        session = store.take(pid, now)
        if session is None:
            return None
        missed = log_.after(offset, session.rooms, now)
        if missed is None:
            return None
        return recovery.RestoredSession(session.sid, session.pid, list(session.rooms), session.data, missed)

    def _schedule_prune(self) -> None:
        """Drop expired sessions and packets even when nothing else happens: one timer
        entry at a time, re-armed while something is kept."""
        if self._prune_scheduled or self.recovery is None:
            return
        self._prune_scheduled = True
        interval = min(60.0, self.recovery.max_disconnection_duration)
        self.nsp.server.engine.timers.schedule(time.monotonic() + interval, self._prune_tick)

    def _prune_tick(self) -> None:
        self._prune_scheduled = False
        now = time.monotonic()
        if self._packet_log is not None:
            self._packet_log.prune(now)
        if self._session_store is not None:
            self._session_store.prune(now)
        if len(self._packet_log or ()) or len(self._session_store or ()):
            self._schedule_prune()


def _forget_acks(sockets: list[Socket], ack_id: int, fn: Callable[..., Any]) -> None:
    for sock in sockets:
        if sock._acks.get(ack_id) is fn:
            del sock._acks[ack_id]

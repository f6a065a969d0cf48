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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import gevent

from ..wsgi.engine import Outgoing

if TYPE_CHECKING:
    from ..namespace import Namespace
    from ..sio import Packet
    from ..socket import Socket

__all__ = ["Adapter", "BroadcastOptions"]

log = logging.getLogger("socketio_sync.adapter")


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

    # -- membership -------------------------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        mine = self.sids.setdefault(sid, set())
        for room in rooms:
            mine.add(room)
            self.rooms.setdefault(room, set()).add(sid)

    def delete(self, sid: str, room: str) -> None:
        mine = self.sids.get(sid)
        if mine is not None:
            mine.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def delete_all(self, sid: str) -> None:
        for room in self.sids.pop(sid, ()):
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]

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
        """Encode ``packet`` once and queue it for every matching local socket."""
        flags = opts.flags
        out = Outgoing(self.nsp.server.encoder.encode(packet), volatile=bool(flags.get("volatile")),
                       compress=flags.get("compress", True) is not False)
        sockets = self.nsp.sockets
        if len(opts.rooms) == 1 and not opts.except_rooms:
            # the common case, a single room: no set building
            for sid in tuple(self.rooms.get(next(iter(opts.rooms)), ())):
                sock = sockets.get(sid)
                if sock is not None:
                    sock._send_prepared(out, packet)
            return
        for sock in self.local_sockets(opts):
            sock._send_prepared(out, packet)

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


def _forget_acks(sockets: list[Socket], ack_id: int, fn: Callable[..., Any]) -> None:
    for sock in sockets:
        if sock._acks.get(ack_id) is fn:
            del sock._acks[ack_id]

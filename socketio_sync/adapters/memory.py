"""The in-memory adapter: rooms of one process."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:
    from ..namespace import Namespace
    from ..sio import Packet
    from ..socket import Socket

__all__ = ["Adapter", "InMemoryAdapter"]


class Adapter:
    """What a namespace needs from room storage. Subclass to share rooms across processes.

    Rooms are kept as two flat maps, ``rooms: room -> sids`` and ``sids: sid -> rooms``.
    Every socket is in the room named after its own id.
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

    def target_sids(self, rooms: frozenset[str], except_rooms: frozenset[str]) -> Iterator[str]:
        excluded: set[str] = set()
        for room in except_rooms:
            excluded.update(self.rooms.get(room, ()))
        if rooms:
            seen: set[str] = set()
            for room in rooms:
                for sid in self.rooms.get(room, ()):
                    if sid not in seen and sid not in excluded:
                        seen.add(sid)
                        yield sid
        else:
            for sid in self.sids:
                if sid not in excluded:
                    yield sid

    def sockets(self, rooms: frozenset[str], except_rooms: frozenset[str] = frozenset()) -> list[Socket]:
        found = []
        for sid in list(self.target_sids(rooms, except_rooms)):
            sock = self.nsp.sockets.get(sid)
            if sock is not None:
                found.append(sock)
        return found

    # -- fan-out ----------------------------------------------------------------------------

    def broadcast(self, packet: Packet, rooms: frozenset[str], except_rooms: frozenset[str],
                  flags: dict[str, Any]) -> None:
        """Encode ``packet`` once and queue it for every target socket."""
        items = self.nsp.server.encoder.encode(packet)
        sockets = self.nsp.sockets
        for sid in list(self.target_sids(rooms, except_rooms)):
            sock = sockets.get(sid)
            if sock is not None:
                sock._send_encoded(items)

    def close(self) -> None:
        """Release resources (connections, listeners). Nothing to do in memory."""


class InMemoryAdapter(Adapter):
    """The default adapter: rooms live in this process only."""

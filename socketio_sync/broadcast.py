"""Immutable broadcast selections: ``io.to("a").except_("b").emit(...)``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from . import sio
from .exceptions import LocalProtocolError

if TYPE_CHECKING:
    from .namespace import Namespace
    from .socket import Socket

__all__ = ["BroadcastOperator", "RoomArg", "check_event_name"]

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
    """A selection of sockets in one namespace. Every method that narrows the selection
    returns a new operator; the original is never changed."""

    __slots__ = ("nsp", "rooms", "except_rooms", "flags")

    def __init__(self, nsp: Namespace, rooms: frozenset[str] = frozenset(),
                 except_rooms: frozenset[str] = frozenset(), flags: dict[str, Any] | None = None) -> None:
        self.nsp = nsp
        self.rooms = rooms
        self.except_rooms = except_rooms
        self.flags = flags or {}

    def to(self, room: RoomArg) -> BroadcastOperator:
        """Narrow to the sockets in ``room`` (a name or several); chained calls add rooms."""
        return BroadcastOperator(self.nsp, self.rooms | _rooms(room), self.except_rooms, self.flags)

    in_ = to

    def except_(self, room: RoomArg) -> BroadcastOperator:
        """Leave out the sockets in ``room``."""
        return BroadcastOperator(self.nsp, self.rooms, self.except_rooms | _rooms(room), self.flags)

    def emit(self, event: str, *args: Any) -> None:
        """Send an event to every selected socket (encoded once)."""
        check_event_name(event)
        packet = sio.Packet(sio.PacketType.EVENT, self.nsp.name, [event, *args])
        self.nsp.adapter.broadcast(packet, self.rooms, self.except_rooms, self.flags)

    send = None  # type: ignore[assignment]

    def fetch_sockets(self) -> list[Socket]:
        return self.nsp.adapter.sockets(self.rooms, self.except_rooms)

    def sockets_join(self, room: RoomArg) -> None:
        for sock in self.fetch_sockets():
            sock.join(room)

    def sockets_leave(self, room: RoomArg) -> None:
        for sock in self.fetch_sockets():
            sock.leave(room)

    def disconnect_sockets(self, close: bool = False) -> None:
        for sock in self.fetch_sockets():
            sock.disconnect(close)


def _send(self: BroadcastOperator, *args: Any) -> None:
    """Emit a ``"message"`` event (Node's ``send``)."""
    self.emit("message", *args)


BroadcastOperator.send = _send  # type: ignore[assignment]

"""Connection state recovery: the pure bookkeeping (Node's ``connectionStateRecovery``).

With recovery on, every socket gets a private id (``pid``, sent in the CONNECT answer
``{"sid", "pid"}``) and every broadcast EVENT gets an *offset* as an extra last argument.
socket.io-client 4.6+ remembers the last offset it saw; after an abnormal disconnection
(transport close, ping timeout...) it reconnects with ``{"pid", "offset"}`` in its CONNECT
auth payload. The server then restores the socket (same ``id``, rooms and ``data``),
replays the broadcasts that it missed, in order, and the client's ``socket.recovered``
is true.

This module keeps what that needs, with no I/O and no clock of its own: every method
takes ``now`` (monotonic seconds). The adapters (``adapters/base.py`` in memory,
``adapters/redis.py`` in Redis streams) use it.
"""
from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = [
    "RecoveryOptions", "SessionState", "RestoredSession", "PacketLog", "SessionStore",
    "RECOVERABLE_REASONS", "should_include", "new_pid",
]

#: Disconnect reasons after which a session is kept for recovery: the client went away
#: without meaning to (or the server went down). A client's own disconnect, a server-side
#: ``socket.disconnect()`` and protocol errors are final.
RECOVERABLE_REASONS = frozenset({"transport close", "transport error", "ping timeout", "server shutting down"})


@dataclass(frozen=True)
class RecoveryOptions:
    """``Server(connection_state_recovery=...)``: ``True`` for these defaults, or a dict
    of them.

    :param max_disconnection_duration: seconds a disconnected session (and the packets it
        may miss) are kept (Node's ``maxDisconnectionDuration``, 2 minutes).
    :param skip_middlewares: a recovered socket skips the ``use()`` middlewares (Node's
        ``skipMiddlewares``).
    :param max_packets: broadcasts kept per namespace in memory, and per server group in
        the Redis stream (``MAXLEN ~``); older ones are dropped even within the duration,
        and a client whose offset was dropped gets a fresh session.
    """

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True
    max_packets: int = 10_000

    def __post_init__(self) -> None:
        if not self.max_disconnection_duration > 0:
            raise ValueError("max_disconnection_duration must be positive (seconds)")
        if int(self.max_packets) < 1:
            raise ValueError("max_packets must be >= 1")

    @classmethod
    def from_option(cls, value: Any) -> RecoveryOptions | None:
        """``None``/``False`` (off), ``True`` (defaults), a mapping, or an instance."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"max_disconnection_duration", "skip_middlewares", "max_packets"}
            if unknown:
                raise TypeError(f"unknown connection_state_recovery option(s): {', '.join(sorted(unknown))}")
            return cls(**value)
        raise TypeError("connection_state_recovery is True, False, None or a dict of options")


@dataclass
class SessionState:
    """What is kept of a socket that disconnected abnormally."""

    sid: str
    pid: str
    rooms: list[str]
    data: Any


@dataclass
class RestoredSession(SessionState):
    """A session found again, with the broadcasts it missed (argument lists, each
    ending with its offset)."""

    missed: list[list[Any]] = field(default_factory=list)


def new_pid() -> str:
    """A private session id: unguessable, since it lets its holder take over a session."""
    return secrets.token_urlsafe(16)


def should_include(session_rooms: Iterable[str], rooms: Iterable[str], except_rooms: Iterable[str]) -> bool:
    """Whether a broadcast to ``rooms`` (all sockets when empty) except ``except_rooms``
    reached a socket that was in ``session_rooms``."""
    mine = set(session_rooms)
    rooms = frozenset(rooms)
    if rooms and mine.isdisjoint(rooms):
        return False
    return mine.isdisjoint(except_rooms)


class PacketLog:
    """Broadcasts kept for recovery, oldest first, each with an offset.

    An offset is ``"<epoch>.<n>"`` where ``epoch`` is random per log (a restarted process
    never takes an old offset for one of its own) and ``n`` counts up, so finding an
    offset is an index computation, not a search.
    """

    def __init__(self, max_age: float, max_packets: int, epoch: str | None = None) -> None:
        self.max_age = float(max_age)
        self.max_packets = int(max_packets)
        self.epoch = epoch if epoch is not None else secrets.token_hex(4)
        #: (n, emitted_at, data, rooms, except_rooms); ``data`` ends with the offset.
        self._entries: deque[tuple[int, float, list[Any], frozenset[str], frozenset[str]]] = deque()
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def offset(self, n: int) -> str:
        return f"{self.epoch}.{n:x}"

    def append(self, data: list[Any], rooms: frozenset[str], except_rooms: frozenset[str], now: float) -> str:
        """Keep a broadcast; its offset is appended to ``data`` (the event's arguments)
        and returned."""
        n = self._next
        self._next += 1
        offset = self.offset(n)
        data.append(offset)
        self._entries.append((n, now, data, rooms, except_rooms))
        if len(self._entries) > self.max_packets:
            self._entries.popleft()
        self.prune(now)
        return offset

    def prune(self, now: float) -> None:
        """Drop the packets older than ``max_age``."""
        entries = self._entries
        threshold = now - self.max_age
        while entries and entries[0][1] < threshold:
            entries.popleft()

    def _index(self, offset: str) -> int | None:
        epoch, sep, number = offset.rpartition(".")
        if not sep or epoch != self.epoch or not number or len(number) > 16:
            return None
        try:
            n = int(number, 16)
        except ValueError:
            return None
        if not self._entries:
            return None
        index = n - self._entries[0][0]
        if 0 <= index < len(self._entries):
            return index
        return None

    def after(self, offset: str, session_rooms: Iterable[str], now: float) -> list[list[Any]] | None:
        """The broadcasts after ``offset`` that reached a socket in ``session_rooms``, or
        ``None`` when ``offset`` is unknown (another process, too old, or made up)."""
        self.prune(now)
        index = self._index(offset)
        if index is None:
            return None
        rooms = list(session_rooms)
        missed = []
        for i in range(index + 1, len(self._entries)):
            _, _, data, to, except_rooms = self._entries[i]
            if should_include(rooms, to, except_rooms):
                missed.append(list(data))
        return missed


class SessionStore:
    """Sessions of disconnected sockets by private id, each kept ``max_age`` seconds."""

    def __init__(self, max_age: float) -> None:
        self.max_age = float(max_age)
        #: pid -> (disconnected_at, session), in the order they were stored.
        self._sessions: dict[str, tuple[float, SessionState]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def persist(self, session: SessionState, now: float) -> None:
        self.prune(now)
        self._sessions.pop(session.pid, None)  # re-inserted last, keeping the time order
        self._sessions[session.pid] = (now, session)

    def take(self, pid: str, now: float) -> SessionState | None:
        """Remove and return the session ``pid`` unless it expired: a session is restored
        at most once."""
        self.prune(now)
        found = self._sessions.pop(pid, None)
        return None if found is None else found[1]

    def prune(self, now: float) -> None:
        """Drop the sessions older than ``max_age`` (they are in time order)."""
        threshold = now - self.max_age
        sessions = self._sessions
        while sessions:
            pid, (when, _) = next(iter(sessions.items()))
            if when >= threshold:
                break
            del sessions[pid]

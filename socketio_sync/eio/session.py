"""The Engine.IO v4 session state machine, without I/O.

A :class:`Session` is fed packets (``receive``) and the time (``handle_timer``) and
answers with events and packets to send. It never reads a clock, sleeps or touches a
socket: the shell calls ``get_timer()`` to know when to call ``handle_timer(now)`` next,
and ``take_outgoing()`` to collect what must be written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from ..exceptions import LocalProtocolError, RemoteProtocolError
from .packet import CLOSE_PACKET, NOOP_PACKET, PING_PACKET, PONG_PACKET, Packet, PacketType

__all__ = [
    "SessionState",
    "Session",
    "Event",
    "MessageReceived",
    "Upgraded",
    "SessionClosed",
    "CloseReason",
]


class SessionState(Enum):
    #: The handshake was sent; packets can flow.
    OPEN = 1
    #: A WebSocket probe was answered; the polling transport is being drained.
    UPGRADING = 2
    #: The session is over. No packet is accepted or sent any more.
    CLOSED = 3


class CloseReason:
    """Why a session ended, in the Node server's words."""

    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    PING_TIMEOUT = "ping timeout"
    PARSE_ERROR = "parse error"
    FORCED_CLOSE = "forced close"
    SERVER_SHUTTING_DOWN = "server shutting down"


@dataclass(frozen=True, slots=True)
class Event:
    pass


@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    data: str | bytes


@dataclass(frozen=True, slots=True)
class Upgraded(Event):
    transport: str


@dataclass(frozen=True, slots=True)
class SessionClosed(Event):
    reason: str
    #: True when the close was asked for by the peer (a close packet).
    by_peer: bool = False


class Session:
    """One Engine.IO session.

    :param sid: the session id (made by the caller, from ``secrets``).
    :param transport: ``"polling"`` or ``"websocket"``, the transport of the handshake.
    :param ping_interval: seconds between two pings sent by the server.
    :param ping_timeout: seconds the client has to answer a ping with a pong.
    :param max_payload: the ``maxPayload`` announced to the client, in bytes.
    :param upgrades: transports the client may upgrade to (``["websocket"]`` for polling).
    :param now: the current monotonic time.
    :param protocol: the Engine.IO protocol version, 4 or 3 (Socket.IO v2 clients). In v3
        the client pings and the server answers with a pong; the session closes with
        "ping timeout" when nothing came from the client for ``ping_interval +
        ping_timeout`` seconds. The OPEN packet has no ``maxPayload``.

    .. versionchanged:: 0.2
       The ``protocol`` parameter (Engine.IO v3).
    """

    __slots__ = (
        "sid", "transport", "state", "ping_interval", "ping_timeout", "max_payload",
        "upgrades", "_outgoing", "_next_ping", "_pong_deadline", "close_reason", "protocol",
    )

    def __init__(
        self,
        sid: str,
        *,
        transport: str,
        ping_interval: float,
        ping_timeout: float,
        max_payload: int,
        upgrades: list[str],
        now: float,
        protocol: int = 4,
    ) -> None:
        if protocol not in (3, 4):
            raise ValueError(f"unsupported Engine.IO protocol {protocol!r}")
        #: The Engine.IO protocol version (the ``EIO`` query parameter): 4, or 3.
        self.protocol = protocol
        self.sid = sid
        self.transport = transport
        self.state = SessionState.OPEN
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self.upgrades = upgrades
        self._outgoing: list[Packet] = [self._open_packet()]
        self._next_ping: float | None = now + ping_interval
        #: v4: when the pong to our ping is due. v3: when the client's next packet is due.
        self._pong_deadline: float | None = None
        self.close_reason: str | None = None
        if protocol == 3:
            self._next_ping = None
            self._pong_deadline = now + ping_interval + ping_timeout

    def _open_packet(self) -> Packet:
        handshake = {
            "sid": self.sid,
            "upgrades": self.upgrades,
            "pingInterval": round(self.ping_interval * 1000),
            "pingTimeout": round(self.ping_timeout * 1000),
            "maxPayload": self.max_payload,
        }
        if self.protocol == 3:
            del handshake["maxPayload"]  # not in the v3 handshake
        return Packet(PacketType.OPEN, json.dumps(handshake, separators=(",", ":")))

    # -- outgoing ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is SessionState.CLOSED

    def send(self, packet: Packet) -> None:
        """Queue a packet for the client."""
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError(f"session {self.sid} is closed")
        self._outgoing.append(packet)

    def send_message(self, data: str | bytes) -> None:
        self.send(Packet(PacketType.MESSAGE, data))

    def has_outgoing(self) -> bool:
        return bool(self._outgoing)

    def take_outgoing(self, limit: int | None = None) -> list[Packet]:
        """What was queued since the last call, in order; at most ``limit`` packets."""
        out = self._outgoing
        if limit is not None and len(out) > limit:
            self._outgoing = out[limit:]
            return out[:limit]
        self._outgoing = []
        return out

    def push_front(self, packet: Packet) -> None:
        """Put a packet taken by :meth:`take_outgoing` back at the head of the queue."""
        self._outgoing.insert(0, packet)

    # -- incoming ---------------------------------------------------------------------------

    def receive(self, packet: Packet, now: float) -> list[Event]:
        """Handle a packet that came over the session's current transport.

        :raises RemoteProtocolError: for a packet a client must not send; the caller
            closes the session with ``close(CloseReason.PARSE_ERROR)``.
        """
        if self.state is SessionState.CLOSED:
            return []
        if self.protocol == 3:
            return self._receive_v3(packet, now)
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            assert packet.data is not None
            return [MessageReceived(packet.data)]
        if ptype is PacketType.PONG:
            self._pong_deadline = None
            self._next_ping = now + self.ping_interval
            return []
        if ptype is PacketType.CLOSE:
            return self.close(CloseReason.TRANSPORT_CLOSE, by_peer=True)
        if ptype is PacketType.NOOP:
            return []
        raise RemoteProtocolError(f"unexpected packet {ptype.name} from client")

    def _receive_v3(self, packet: Packet, now: float) -> list[Event]:
        # Anything from the client shows it is alive (the Node server does the same).
        self._pong_deadline = now + self.ping_interval + self.ping_timeout
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            assert packet.data is not None
            return [MessageReceived(packet.data)]
        if ptype is PacketType.PING:
            self._outgoing.append(PONG_PACKET)
            return []
        if ptype is PacketType.CLOSE:
            return self.close(CloseReason.TRANSPORT_CLOSE, by_peer=True)
        if ptype in (PacketType.NOOP, PacketType.PONG):
            return []
        raise RemoteProtocolError(f"unexpected packet {ptype.name} from client")

    def receive_probe(self, packet: Packet) -> list[Packet]:
        """Handle a packet on a WebSocket that is probing for an upgrade.

        Returns the packets to write on that WebSocket (the ``3probe`` answer). When the
        answer is sent, the session is ``UPGRADING`` and a pending poll must be released
        with a NOOP (see :meth:`noop_for_poll`).
        """
        if self.state is not SessionState.OPEN or self.transport != "polling":
            raise RemoteProtocolError("upgrade probe in a session that cannot upgrade")
        if packet.type is PacketType.PING and packet.data == "probe":
            self.state = SessionState.UPGRADING
            return [Packet(PacketType.PONG, "probe")]
        raise RemoteProtocolError(f"expected 2probe, got {packet.type.name}")

    def receive_upgrade(self, packet: Packet) -> list[Event]:
        """Handle the packet after ``3probe`` on the probing WebSocket."""
        if self.state is not SessionState.UPGRADING:
            raise RemoteProtocolError("upgrade packet without a probe")
        if packet.type is PacketType.UPGRADE:
            self.state = SessionState.OPEN
            self.transport = "websocket"
            return [Upgraded("websocket")]
        if packet.type is PacketType.PING and packet.data == "probe":
            return []
        raise RemoteProtocolError(f"expected upgrade packet, got {packet.type.name}")

    def abort_upgrade(self) -> None:
        """The probing WebSocket went away before the upgrade packet."""
        if self.state is SessionState.UPGRADING:
            self.state = SessionState.OPEN

    @staticmethod
    def noop_for_poll() -> Packet:
        return NOOP_PACKET

    # -- timers -----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The next time :meth:`handle_timer` must be called, or ``None``."""
        if self.state is SessionState.CLOSED:
            return None
        if self._pong_deadline is not None:
            return self._pong_deadline
        return self._next_ping

    def handle_timer(self, now: float) -> list[Event]:
        if self.state is SessionState.CLOSED:
            return []
        if self._pong_deadline is not None:
            if now >= self._pong_deadline:
                return self.close(CloseReason.PING_TIMEOUT)
            return []
        if self._next_ping is not None and now >= self._next_ping:
            self._outgoing.append(PING_PACKET)
            self._next_ping = None
            self._pong_deadline = now + self.ping_timeout
        return []

    # -- closing ----------------------------------------------------------------------------

    def close(self, reason: str, *, by_peer: bool = False) -> list[Event]:
        """End the session. Idempotent: a second call returns no event.

        A close the server decides on queues a CLOSE packet after anything still
        queued, so the client learns of it on whatever transport is writable.
        """
        if self.state is SessionState.CLOSED:
            return []
        if not by_peer:
            self._outgoing.append(CLOSE_PACKET)
        self.state = SessionState.CLOSED
        self.close_reason = reason
        self._next_ping = self._pong_deadline = None
        return [SessionClosed(reason, by_peer)]

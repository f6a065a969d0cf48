"""The Engine.IO session state machine, with the clock passed in: no sleeps."""
from __future__ import annotations

import json

import pytest

from socketio_sync import eio
from socketio_sync.eio import (
    CloseReason, MessageReceived, Packet, PacketType, SessionClosed, SessionState, Upgraded,
)
from socketio_sync.exceptions import LocalProtocolError, RemoteProtocolError


def make(transport: str = "polling", now: float = 100.0, interval: float = 0.3, timeout: float = 0.2) -> eio.Session:
    return eio.Session(
        "sid1", transport=transport, ping_interval=interval, ping_timeout=timeout,
        max_payload=1_000_000, upgrades=["websocket"] if transport == "polling" else [], now=now,
    )


def test_open_packet_has_exact_millisecond_timings() -> None:
    s = make()
    [open_packet] = s.take_outgoing()
    assert open_packet.type is PacketType.OPEN
    assert json.loads(open_packet.data) == {  # type: ignore[arg-type]
        "sid": "sid1", "upgrades": ["websocket"], "pingInterval": 300, "pingTimeout": 200,
        "maxPayload": 1_000_000,
    }
    assert make("websocket").take_outgoing()[0].data.count('"upgrades":[]') == 1  # type: ignore[union-attr]


def test_heartbeat_ping_then_pong_reschedules() -> None:
    s = make()
    s.take_outgoing()
    assert s.get_timer() == pytest.approx(100.3)
    assert s.handle_timer(100.29) == []
    assert not s.has_outgoing()
    assert s.handle_timer(100.3) == []
    assert s.take_outgoing() == [Packet(PacketType.PING)]
    assert s.get_timer() == pytest.approx(100.5)  # pong deadline
    assert s.receive(Packet(PacketType.PONG), 100.4) == []
    assert s.get_timer() == pytest.approx(100.7)
    assert s.state is SessionState.OPEN


def test_ping_timeout_closes_at_interval_plus_timeout() -> None:
    s = make()
    s.take_outgoing()
    s.handle_timer(100.3)
    assert s.handle_timer(100.49) == []
    events = s.handle_timer(100.5)
    assert events == [SessionClosed(CloseReason.PING_TIMEOUT)]
    assert s.closed
    assert s.get_timer() is None
    assert s.handle_timer(200) == []


def test_messages_and_close_from_peer() -> None:
    s = make()
    assert s.receive(Packet(PacketType.MESSAGE, "hi"), 100) == [MessageReceived("hi")]
    assert s.receive(Packet(PacketType.MESSAGE, b"\x01"), 100) == [MessageReceived(b"\x01")]
    assert s.receive(Packet(PacketType.NOOP), 100) == []
    s.take_outgoing()
    assert s.receive(Packet(PacketType.CLOSE), 100) == [SessionClosed(CloseReason.TRANSPORT_CLOSE, True)]
    # a close asked for by the peer is not answered with a close packet
    assert s.take_outgoing() == []
    assert s.receive(Packet(PacketType.MESSAGE, "late"), 101) == []


def test_server_close_queues_close_packet_after_pending_packets() -> None:
    s = make()
    s.take_outgoing()
    s.send_message("last words")
    assert s.close(CloseReason.FORCED_CLOSE) == [SessionClosed(CloseReason.FORCED_CLOSE)]
    assert s.take_outgoing() == [Packet(PacketType.MESSAGE, "last words"), Packet(PacketType.CLOSE)]
    assert s.close(CloseReason.FORCED_CLOSE) == []
    with pytest.raises(LocalProtocolError):
        s.send_message("after close")


@pytest.mark.parametrize("ptype", [PacketType.OPEN, PacketType.PING, PacketType.UPGRADE])
def test_packets_a_client_must_not_send(ptype: PacketType) -> None:
    with pytest.raises(RemoteProtocolError):
        make().receive(Packet(ptype), 100)


def test_upgrade_probe_then_upgrade() -> None:
    s = make()
    assert s.receive_probe(Packet(PacketType.PING, "probe")) == [Packet(PacketType.PONG, "probe")]
    assert s.state is SessionState.UPGRADING
    assert s.receive_upgrade(Packet(PacketType.UPGRADE)) == [Upgraded("websocket")]
    assert s.transport == "websocket"
    assert s.state is SessionState.OPEN


def test_upgrade_refused_without_probe_and_on_websocket_sessions() -> None:
    with pytest.raises(RemoteProtocolError):
        make().receive_upgrade(Packet(PacketType.UPGRADE))
    with pytest.raises(RemoteProtocolError):
        make("websocket").receive_probe(Packet(PacketType.PING, "probe"))
    with pytest.raises(RemoteProtocolError):
        make().receive_probe(Packet(PacketType.PING, "nope"))


def test_aborted_upgrade_returns_to_polling() -> None:
    s = make()
    s.receive_probe(Packet(PacketType.PING, "probe"))
    s.abort_upgrade()
    assert s.state is SessionState.OPEN and s.transport == "polling"

"""Connection state recovery bookkeeping (``socketio_sync/recovery.py``) and the in-memory
adapter's use of it: plain values and explicit ``now``, no server, no sleeps."""
from __future__ import annotations

import ast
import types
from pathlib import Path
from typing import Any

import pytest

from socketio_sync import sio
from socketio_sync.adapters.base import Adapter, BroadcastOptions
from socketio_sync.hooks import Hooks
from socketio_sync.recovery import (
    RECOVERABLE_REASONS, PacketLog, RecoveryOptions, SessionState, SessionStore, new_pid, should_include,
)


# -- options --------------------------------------------------------------------------------

def test_options_off_true_dict_and_errors() -> None:
    assert RecoveryOptions.from_option(None) is None
    assert RecoveryOptions.from_option(False) is None
    assert RecoveryOptions.from_option(True) == RecoveryOptions(120.0, True, 10_000)
    opts = RecoveryOptions.from_option({"max_disconnection_duration": 5, "skip_middlewares": False})
    assert opts == RecoveryOptions(5, False, 10_000)
    assert RecoveryOptions.from_option(opts) is opts
    with pytest.raises(TypeError, match="max_disconection"):
        RecoveryOptions.from_option({"max_disconection_duration": 5})
    with pytest.raises(TypeError):
        RecoveryOptions.from_option("yes")
    with pytest.raises(ValueError):
        RecoveryOptions.from_option({"max_disconnection_duration": 0})
    with pytest.raises(ValueError):
        RecoveryOptions.from_option({"max_packets": 0})


def test_server_option_is_validated() -> None:
    import socketio_sync

    assert socketio_sync.Server().recovery is None
    assert socketio_sync.Server(connection_state_recovery=True).recovery == RecoveryOptions()
    with pytest.raises(TypeError):
        socketio_sync.Server(connection_state_recovery={"bogus": 1})


def test_recoverable_reasons_are_the_abnormal_ones() -> None:
    assert {"transport close", "transport error", "ping timeout", "server shutting down"} == RECOVERABLE_REASONS
    for final in ("client namespace disconnect", "server namespace disconnect", "forced server close",
                  "parse error", "forced close"):
        assert final not in RECOVERABLE_REASONS


def test_pids_are_unique_and_long() -> None:
    pids = {new_pid() for _ in range(100)}
    assert len(pids) == 100 and all(len(p) >= 20 for p in pids)


# -- which broadcasts a session missed ------------------------------------------------------

@pytest.mark.parametrize("rooms, except_rooms, expected", [
    ((), (), True),                   # everyone
    (("r1",), (), True),
    (("r2",), (), False),
    (("r2", "sid1"), (), True),       # to the socket's own room
    ((), ("r1",), False),             # except a room it is in
    (("r1",), ("other",), True),
    (("r1",), ("sid1",), False),      # socket.to(...) from this very socket
])
def test_should_include(rooms: tuple[str, ...], except_rooms: tuple[str, ...], expected: bool) -> None:
    assert should_include(["sid1", "r1"], rooms, except_rooms) is expected


# -- the packet log -------------------------------------------------------------------------

def test_packet_log_appends_offsets_and_replays_in_order() -> None:
    log = PacketLog(max_age=10, max_packets=100, epoch="e")
    first = ["tick", 0]
    o0 = log.append(first, frozenset(), frozenset(), now=0)
    assert first == ["tick", 0, o0] and o0 == "e.0"
    offsets = [log.append(["tick", i], frozenset({"r1"}), frozenset(), now=1) for i in range(1, 5)]
    log.append(["other"], frozenset({"r2"}), frozenset(), now=1)
    assert log.after(o0, ["sid", "r1"], now=2) == [["tick", i, offsets[i - 1]] for i in range(1, 5)]
    assert log.after(offsets[1], ["sid", "r1"], now=2) == [["tick", 3, offsets[2]], ["tick", 4, offsets[3]]]
    assert log.after(offsets[-1], ["sid", "r1"], now=2) == []  # nothing missed
    # replayed lists are copies: the client-facing data cannot change the log
    log.after(o0, ["sid", "r1"], now=2)[0].append("x")
    assert log.after(o0, ["sid", "r1"], now=2)[0] == ["tick", 1, offsets[0]]


@pytest.mark.parametrize("offset", ["", "e", "e.", "e.zz", "x.0", "e.ffffffffffffffffff", "e.99", "0"])
def test_packet_log_unknown_offsets(offset: str) -> None:
    log = PacketLog(max_age=10, max_packets=100, epoch="e")
    log.append(["a"], frozenset(), frozenset(), now=0)
    assert log.after(offset, ["sid"], now=0) is None


def test_packet_log_forgets_by_age_and_count() -> None:
    log = PacketLog(max_age=10, max_packets=3, epoch="e")
    offsets = [log.append([i], frozenset(), frozenset(), now=i) for i in range(5)]
    assert len(log) == 3  # max_packets
    assert log.after(offsets[1], [], now=5) is None  # dropped: a fresh session
    assert log.after(offsets[2], [], now=5) == [[3, offsets[3]], [4, offsets[4]]]
    assert log.after(offsets[3], [], now=13.5) is None  # older than max_age
    assert len(log) == 1
    log.prune(now=100)
    assert len(log) == 0
    assert log.after(offsets[4], [], now=100) is None


def test_packet_logs_do_not_share_offsets() -> None:
    a, b = PacketLog(10, 10), PacketLog(10, 10)
    offset = a.append(["x"], frozenset(), frozenset(), now=0)
    b.append(["x"], frozenset(), frozenset(), now=0)
    assert b.after(offset, [], now=0) is None


# -- the session store ----------------------------------------------------------------------

def session(pid: str) -> SessionState:
    return SessionState(sid="sid-" + pid, pid=pid, rooms=["sid-" + pid, "r1"], data={"n": 1})


def test_session_store_restores_once_and_expires() -> None:
    store = SessionStore(max_age=10)
    store.persist(session("p1"), now=0)
    store.persist(session("p2"), now=5)
    taken = store.take("p1", now=9)
    assert taken is not None and taken.sid == "sid-p1" and taken.data == {"n": 1}
    assert store.take("p1", now=9) is None  # at most once
    assert store.take("unknown", now=9) is None
    assert store.take("p2", now=15.5) is None  # expired
    assert len(store) == 0


def test_session_store_prunes_in_time_order() -> None:
    store = SessionStore(max_age=10)
    for i in range(5):
        store.persist(session(f"p{i}"), now=i)
    store.persist(session("p0"), now=7)  # persisted again: now the newest
    store.prune(now=13.5)
    assert len(store) == 2  # p4 (at 4) and p0 (at 7)
    store.prune(now=14.5)
    assert len(store) == 1 and store.take("p0", now=14.5) is not None


# -- the base adapter (in memory) -----------------------------------------------------------

class FakeTimers:
    def __init__(self) -> None:
        self.entries: list[tuple[float, Any]] = []

    def schedule(self, when: float, fn: Any) -> None:
        self.entries.append((when, fn))


def make_adapter(**options: Any) -> tuple[Adapter, FakeTimers]:
    timers = FakeTimers()
    server = types.SimpleNamespace(recovery=RecoveryOptions(**options), encoder=sio.Encoder(),
                                   engine=types.SimpleNamespace(timers=timers, hooks=Hooks()))
    nsp = types.SimpleNamespace(name="/", server=server, sockets={})
    return Adapter(nsp), timers  # type: ignore[arg-type]


def event(*data: Any, ack_id: int | None = None) -> sio.Packet:
    return sio.Packet(sio.PacketType.EVENT, "/", list(data), ack_id)


def test_adapter_keeps_only_recoverable_broadcasts() -> None:
    adapter, _ = make_adapter()
    everyone = BroadcastOptions()
    assert adapter.is_recoverable(event("a"), everyone)
    assert not adapter.is_recoverable(event("a", ack_id=3), everyone)  # acks cannot be restored
    assert not adapter.is_recoverable(event("a"), BroadcastOptions(flags={"volatile": True}))
    assert not adapter.is_recoverable(sio.Packet(sio.PacketType.DISCONNECT, "/"), everyone)


def test_adapter_persists_and_restores() -> None:
    adapter, timers = make_adapter()
    first = event("tick", 0)
    adapter.broadcast(first, BroadcastOptions(frozenset({"r1"})))
    offset = first.data[-1]  # type: ignore[index]
    assert isinstance(offset, str)
    adapter.persist_session(SessionState("s1", "p1", ["s1", "r1"], {"k": "v"}))
    for i in range(1, 4):
        adapter.broadcast(event("tick", i), BroadcastOptions(frozenset({"r1"})))
    adapter.broadcast(event("elsewhere"), BroadcastOptions(frozenset({"r2"})))
    restored = adapter.restore_session("p1", offset)
    assert restored is not None
    assert (restored.sid, restored.pid, restored.rooms, restored.data) == ("s1", "p1", ["s1", "r1"], {"k": "v"})
    assert [m[:2] for m in restored.missed] == [["tick", 1], ["tick", 2], ["tick", 3]]
    assert adapter.restore_session("p1", offset) is None  # used up
    # one prune timer at a time, re-armed while something is kept
    assert len(timers.entries) == 1
    when, tick = timers.entries[0]
    tick()
    assert len(timers.entries) == 2


def test_adapter_unknown_offset_gives_no_session() -> None:
    adapter, _ = make_adapter()
    adapter.persist_session(SessionState("s1", "p1", ["s1"], {}))
    assert adapter.restore_session("p1", "made-up") is None


def test_recovery_module_does_no_io() -> None:
    source = (Path(__file__).resolve().parents[2] / "socketio_sync" / "recovery.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "secrets", "collections", "dataclasses", "typing"}, imported


# -- the Redis adapter's replay watermark (no Redis needed) ---------------------------------

class FakeSocket:
    def __init__(self, sid: str) -> None:
        self.id = sid
        self.got: list[list[Any]] = []

    def _send_prepared(self, out: Any, packet: Any = None) -> None:
        self.got.append(out.items)


def test_stream_positions() -> None:
    from socketio_sync.adapters.redis import _stream_pos

    assert _stream_pos("1700000000000-3") == (1700000000000, 3)
    assert _stream_pos("1-0") < _stream_pos("1-1") < _stream_pos("2-0")  # type: ignore[operator]
    for bad in ("", "17", "17-", "-3", "a-1", "1-2-3", 17, None, "1" * 21 + "-0"):
        assert _stream_pos(bad) is None


def test_redis_adapter_does_not_send_a_replayed_packet_twice() -> None:
    from socketio_sync.adapters.redis import RedisNamespaceAdapter

    server = types.SimpleNamespace(recovery=RecoveryOptions(), encoder=sio.Encoder(),
                                   engine=types.SimpleNamespace(timers=FakeTimers(), hooks=Hooks()))
    sockets = {"s1": FakeSocket("s1"), "s2": FakeSocket("s2")}
    nsp = types.SimpleNamespace(name="/", server=server, sockets=sockets)
    adapter = RedisNamespaceAdapter(nsp, types.SimpleNamespace(uid="u", key="socket.io"))  # type: ignore[arg-type]
    for sid in sockets:
        adapter.add_all(sid, (sid, "r"))
    adapter._watermarks["s1"] = (100, 5)  # s1 was restored with everything up to 100-5
    to_r = BroadcastOptions(frozenset({"r"}))
    adapter._broadcast_local(event("old", "100-5"), to_r)
    adapter._broadcast_local(event("new", "100-6"), to_r)
    adapter._broadcast_local(event("plain", 1), to_r)
    assert [items[0] for items in sockets["s1"].got] == ['2["new","100-6"]', '2["plain",1]']
    assert len(sockets["s2"].got) == 3
    adapter._forget_watermark("s1", (100, 5))
    adapter._broadcast_local(event("old", "100-5"), to_r)
    assert len(sockets["s1"].got) == 3

"""What connection state recovery keeps, and what it costs in memory (README "Connection
state recovery" quotes its output).

``python benchmarks/recovery_memory.py [--redis redis://127.0.0.1:6379/15]``

In memory: N broadcasts of ``("chat message", {"user": "alice", "text": "hello world"})``
to one room go through the in-memory adapter's log (``max_packets`` = N); tracemalloc
measures what the log holds, and the same for N kept sessions. With ``--redis`` (a
scratch database: its recovery keys are deleted): the same broadcasts as stream entries
(``MEMORY USAGE`` of the stream) and sessions as keys.
"""
from __future__ import annotations

import argparse
import gc
import tracemalloc
import types

from socketio_sync import sio
from socketio_sync.adapters.base import Adapter, BroadcastOptions
from socketio_sync.recovery import RecoveryOptions, SessionState, new_pid

N = 10_000
ARGS = ["chat message", {"user": "alice", "text": "hello world"}]


def _adapter(max_packets: int) -> Adapter:
    timers = types.SimpleNamespace(schedule=lambda when, fn: None)
    server = types.SimpleNamespace(recovery=RecoveryOptions(max_packets=max_packets), encoder=sio.Encoder(),
                                   engine=types.SimpleNamespace(timers=timers))
    return Adapter(types.SimpleNamespace(name="/", server=server, sockets={}))  # type: ignore[arg-type]


def in_memory() -> None:
    adapter = _adapter(N)
    opts = BroadcastOptions(frozenset({"room1"}))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(N):
        data = [ARGS[0], {"user": "alice", "text": "hello world", "n": i}]
        adapter.persist_packet(sio.Packet(sio.PacketType.EVENT, "/", data), opts)
    packets = tracemalloc.get_traced_memory()[0] - before
    before = tracemalloc.get_traced_memory()[0]
    for i in range(N):
        sid = new_pid()
        adapter.persist_session(SessionState(sid, new_pid(), [sid, "room1"], {"user": "alice"}))
    sessions = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"in memory: {N} packets kept: {packets / 1024:.0f} KiB ({packets / N:.0f} bytes each, "
          f"event payload included)")
    print(f"in memory: {N} sessions kept: {sessions / 1024:.0f} KiB ({sessions / N:.0f} bytes each)")


def in_redis(url: str) -> None:
    import redis

    from socketio_sync.adapters.redis import _packb

    r = redis.Redis.from_url(url)
    stream = "bench-recovery:recovery"
    r.delete(stream)
    pipe = r.pipeline(transaction=False)
    for i in range(N):
        data = [ARGS[0], {"user": "alice", "text": "hello world", "n": i}]
        pipe.xadd(stream, {"p": _packb(["/", data, ["room1"], []])}, maxlen=N, approximate=True)
    pipe.execute()
    used = r.memory_usage(stream, samples=0) or 0
    print(f"redis: {r.xlen(stream)} stream entries: {used / 1024:.0f} KiB ({used / N:.0f} bytes each)")
    keys = [f"bench-recovery:session:{new_pid()}" for _ in range(100)]
    for key in keys:
        sid = new_pid()
        r.set(key, _packb({"nsp": "/", "sid": sid, "pid": key, "rooms": [sid, "room1"], "data": {"user": "alice"}}),
              px=120_000)
    per_key = sum(r.memory_usage(k, samples=0) or 0 for k in keys) / len(keys)
    print(f"redis: one session key: {per_key:.0f} bytes")
    r.delete(stream, *keys)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=None)
    options = parser.parse_args()
    in_memory()
    if options.redis:
        in_redis(options.redis)

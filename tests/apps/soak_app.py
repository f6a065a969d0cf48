"""The server of the soak test (``tests/soak.py``): chat handlers, rooms, and ``/stats``.

``build(**opts)`` returns a ``socketio_sync.WSGIApp``. Namespace ``/``:

``echo(*args)``        acks its arguments back.
``join(room)``         joins ``room``; acks the socket's rooms (its own id left out), sorted.
``leave(room)``        leaves ``room``; acks the same.
``say(room, msg)``     ``io.to(room).emit("said", {"room", "from", "msg"})`` (the sender gets
                       it too, before the ack); acks ``True``.
``rooms()``            acks the socket's rooms (its own id left out), sorted.
``slow_join(room, s)`` emits ``slow_join_started``, sleeps ``s`` seconds, then joins: the
                       soak's clients drop their connection during the sleep.

Namespace ``/chat`` (multiplexed on the same connection by some clients): ``echo``.

Every other path is ``stats``: a JSON snapshot of what a leak would make grow, for the
runner to compare before and after the churn. ``GET /stats?gc=1`` runs ``gc.collect()``
first; ``objects=0`` skips the scan of the heap (greenlets and live library objects).
"""
from __future__ import annotations

import gc
import json
import os
import sys
import time
import types
from typing import Any
from urllib.parse import parse_qs

import gevent
import greenlet

import socketio_sync
from socketio_sync.client import Client
from socketio_sync.eio.session import Session
from socketio_sync.socket import Socket
from socketio_sync.wsgi.engine import EngineConnection

#: Library objects that must all be gone once every client is: counted by type name.
TRACKED_TYPES: tuple[type, ...] = (EngineConnection, Session, Client, Socket)


def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _describe(obj: Any) -> str:
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_name} ({obj.f_code.co_filename.rsplit('/', 2)[-1]}:{obj.f_lineno})"
    if isinstance(obj, types.MethodType):
        return f"bound method {obj.__func__.__qualname__}"
    if isinstance(obj, (dict, list, tuple, set)):
        return f"{type(obj).__name__} of {len(obj)}"
    return type(obj).__qualname__


def _referrers(limit: int = 3, depth: int = 4) -> list[Any]:
    """For a few live tracked objects: what refers to them, a few levels up (a leak's
    evidence). Our own frames and the gc list are left out."""
    me = sys._getframe()
    objs = [o for o in gc.get_objects() if isinstance(o, TRACKED_TYPES)][:limit]
    out = []
    for obj in objs:
        chain: list[Any] = []
        level = [obj]
        for _ in range(depth):
            nxt = []
            for target in level:
                for ref in gc.get_referrers(target):
                    if ref is objs or ref is level or ref is nxt or ref is me or (
                            isinstance(ref, types.FrameType) and ref.f_code in (me.f_code, _referrers.__code__)):
                        continue
                    nxt.append(ref)
            chain.append(sorted({_describe(r) for r in nxt})[:12])
            level = nxt[:6]
            if not level:
                break
        out.append({"object": type(obj).__name__, "referrers": chain})
    return out


def build(ping_interval: float = 1.0, ping_timeout: float = 1.0, connect_timeout: float = 5.0,
          **kw: Any) -> socketio_sync.WSGIApp:
    io = socketio_sync.Server(ping_interval=ping_interval, ping_timeout=ping_timeout,
                              connect_timeout=connect_timeout, cors_allowed_origins="*", **kw)
    counters: dict[str, Any] = {"connections": 0, "events": 0, "disconnects": {}}

    def count_disconnect(reason: str) -> None:
        d = counters["disconnects"]
        d[reason] = d.get(reason, 0) + 1

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        counters["connections"] += 1

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            counters["events"] += 1
            return args

        @socket.on("join")
        def join(room: str) -> Any:
            counters["events"] += 1
            socket.join(room)
            return sorted(r for r in socket.rooms if r != socket.id)

        @socket.on("leave")
        def leave(room: str) -> Any:
            counters["events"] += 1
            socket.leave(room)
            return sorted(r for r in socket.rooms if r != socket.id)

        @socket.on("slow_join")
        def slow_join(room: str, delay: float) -> Any:
            # A handler that blocks (a database, socket.call ...) and then joins: its client
            # may be gone by then, and must not leave a room entry behind.
            counters["events"] += 1
            socket.emit("slow_join_started", room)
            gevent.sleep(min(float(delay), 2.0))
            socket.join(room)
            return sorted(r for r in socket.rooms if r != socket.id)

        @socket.on("rooms")
        def rooms() -> Any:
            return sorted(r for r in socket.rooms if r != socket.id)

        @socket.on("say")
        def say(room: str, msg: Any) -> Any:
            counters["events"] += 1
            io.to(room).emit("said", {"room": room, "from": socket.id, "msg": msg})
            return True

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            count_disconnect(reason)

    chat = io.of("/chat")

    # The hub's lateness: how much later than asked a 50 ms sleep wakes up. A server too
    # busy to answer pings in time shows here (max since the previous /stats, and overall).
    lag = {"since_last": 0.0, "max": 0.0}

    def watch_lag() -> None:
        while True:
            t = time.perf_counter()
            gevent.sleep(0.05)
            late = time.perf_counter() - t - 0.05
            lag["since_last"] = max(lag["since_last"], late)
            lag["max"] = max(lag["max"], late)

    gevent.spawn(watch_lag)

    @chat.on("connection")
    def on_chat(socket: socketio_sync.Socket) -> None:
        counters["connections"] += 1

        @socket.on("echo")
        def chat_echo(*args: Any) -> Any:
            counters["events"] += 1
            return ("/chat", *args)

        @socket.on("disconnect")
        def on_chat_disconnect(reason: str) -> None:
            count_disconnect("/chat " + reason)

    def snapshot(collect: bool, objects: bool, referrers: bool = False) -> dict[str, Any]:
        t0 = time.perf_counter()
        if collect:
            gc.collect()
        engine = io.engine
        namespaces = {}
        for name, nsp in io.namespaces.items():
            namespaces[name] = {
                "sockets": len(nsp.sockets),
                "rooms": len(nsp.adapter.rooms),
                "sids": len(nsp.adapter.sids),
                "room_members": sum(len(m) for m in nsp.adapter.rooms.values()),
            }
        stats: dict[str, Any] = {
            "sessions": len(engine.sessions),
            "namespaces": namespaces,
            "sockets": sum(n["sockets"] for n in namespaces.values()),
            "rooms": sum(n["rooms"] for n in namespaces.values()),
            "sids": sum(n["sids"] for n in namespaces.values()),
            "timers": len(engine.timers),
            "idle_workers": len(io.workers._idle),
            "fds": _open_fds(),
            "counters": json.loads(json.dumps(counters)),
            "refused_handshakes": engine.refused_handshakes,
            "loop_lag_ms": {"since_last": round(lag["since_last"] * 1000, 1), "max": round(lag["max"] * 1000, 1)},
        }
        lag["since_last"] = 0.0
        # Python-level counts: unlike RSS, allocator fragmentation does not move them.
        stats["allocated_blocks"] = sys.getallocatedblocks()
        stats["gc_objects"] = len(gc.get_objects())
        status = _proc_status()
        stats["rss"] = status.get("VmRSS")
        stats["rss_peak"] = status.get("VmHWM")
        if objects:
            live = {cls.__name__: 0 for cls in TRACKED_TYPES}
            greenlets = 0
            for obj in gc.get_objects():
                if isinstance(obj, greenlet.greenlet):
                    if not obj.dead:
                        greenlets += 1
                elif isinstance(obj, TRACKED_TYPES):
                    live[type(obj).__name__] += 1
            stats["greenlets"] = greenlets
            stats["live_objects"] = live
        if referrers:
            stats["referrers"] = _referrers()
        stats["stats_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return stats

    def stats_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/stats":
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return []
        query = parse_qs(environ.get("QUERY_STRING", ""))
        collect = query.get("gc", ["0"])[0] == "1"
        objects = query.get("objects", ["1"])[0] != "0"
        referrers = query.get("referrers", ["0"])[0] == "1"
        body = json.dumps(snapshot(collect, objects, referrers)).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                  ("Connection", "close")])
        return [body]

    return socketio_sync.WSGIApp(io, stats_app)

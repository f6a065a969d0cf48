"""The target of the live fuzzer (``tests/fuzz/live.py``, issue #5).

Socket.IO at ``/socket.io/`` with the namespaces ``/`` and ``/other``, the same handlers
in both; every other path goes to a small WSGI app with ``GET /stats``.

Events (each handler checks its arguments: whatever a fuzzer sends, the application
itself never raises, so any traceback in the server log comes from the library):

``echo(*args)``            acknowledges with the same arguments.
``join(room)``             joins ``room`` (a short string); acks ``True``/``False``.
``leave(room)``            leaves it; acks ``True``/``False``.
``broadcast(room, msg)``   ``socket.to(room).emit("chat", msg)``; acks ``True``/``False``.
``ask(value)``             ``socket.call("question", value)`` back to the client, then
                           acknowledges with the client's answer (``"timeout"`` when
                           the client does not answer within 3 s, ``"gone"`` when it
                           disconnects first). Exercises server-to-client acks.

``GET /stats`` (JSON): ``sessions`` (open Engine.IO sessions), ``session_ids``,
``transports`` (transport -> count), ``sockets`` (namespace -> connected sockets),
``rooms`` (namespace -> number of rooms, a socket's own-id room included),
``room_members`` (namespace -> memberships), ``pending_acks`` (server-to-client acks
waiting), ``connects`` / ``disconnects`` (totals since start), ``handler_errors``
(exceptions the handlers caught, the last ones in ``last_handler_errors``), ``rss_kb``
(this process's VmRSS) and, with ``?full=1``, ``greenlets`` (live greenlet objects, from
a scan of the gc heap).

Defaults: a quick heartbeat (2 s / 3 s) and a short ``connect_timeout`` (5 s), so that
sessions abandoned by the fuzzer end within seconds; ``max_http_buffer_size`` 100 000.

``stderr_path``: reopen this process's standard error (file descriptor 2: the log, and
the tracebacks gevent prints) onto that file, so that the fuzzer can read the server log
while the server runs under the ``live_server`` fixture.
"""
from __future__ import annotations

import gc
import json
import os
import sys
import threading
from typing import Any
from urllib.parse import parse_qs

import socketio_sync

NAMESPACES = ("/", "/other")
MAX_ROOM_NAME = 64


def _rss_kb() -> int:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _good_room(room: Any) -> bool:
    return isinstance(room, str) and 0 < len(room) <= MAX_ROOM_NAME


def build(ping_interval: float = 2.0, ping_timeout: float = 3.0, connect_timeout: float = 5.0,
          max_http_buffer_size: int = 100_000, cors_allowed_origins: Any = "*",
          stderr_path: str | None = None, **kw: Any) -> Any:
    if stderr_path:
        sys.stderr.flush()
        fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    io = socketio_sync.Server(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        connect_timeout=connect_timeout,
        max_http_buffer_size=max_http_buffer_size,
        cors_allowed_origins=cors_allowed_origins,
        **kw,
    )
    lock = threading.Lock()
    counters = {"connects": 0, "disconnects": 0, "handler_errors": 0}
    last_errors: list[str] = []

    def count(key: str) -> None:
        with lock:
            counters[key] += 1

    def setup(socket: socketio_sync.Socket) -> None:
        count("connects")

        def guarded(fn: Any) -> Any:
            def handler(*args: Any) -> Any:
                try:
                    return fn(*args)
                except Exception as exc:  # noqa: BLE001 - counted: /stats shows it, the log does not
                    count("handler_errors")
                    with lock:
                        last_errors[:] = (last_errors + [f"{fn.__name__}: {exc!r}"[:300]])[-5:]
                    return False
            return handler

        @guarded
        def echo(*args: Any) -> Any:
            return tuple(args)

        @guarded
        def join(room: Any = None, *_: Any) -> bool:
            if not _good_room(room) or not socket.connected:
                return False
            socket.join(room)
            return True

        @guarded
        def leave(room: Any = None, *_: Any) -> bool:
            if not _good_room(room) or not socket.connected:
                return False
            socket.leave(room)
            return True

        @guarded
        def broadcast(room: Any = None, msg: Any = None, *_: Any) -> bool:
            if not _good_room(room) or not socket.connected:
                return False
            socket.to(room).emit("chat", msg)
            return True

        def ask(value: Any = None, *_: Any) -> Any:
            try:
                return socket.call("question", value, timeout=3.0)
            except socketio_sync.AckTimeout:
                return "timeout"
            except socketio_sync.NotConnectedError:
                return "gone"
            except Exception as exc:  # noqa: BLE001
                count("handler_errors")
                with lock:
                    last_errors[:] = (last_errors + [f"ask: {exc!r}"[:300]])[-5:]
                return False

        socket.on("echo", echo)
        socket.on("join", join)
        socket.on("leave", leave)
        socket.on("broadcast", broadcast)
        socket.on("ask", ask)
        socket.on("disconnect", lambda *_: count("disconnects"))

    for name in NAMESPACES:
        io.of(name).on("connection", setup)

    def stats(full: bool) -> dict[str, Any]:
        engine = io.engine
        transports: dict[str, int] = {}
        for conn in list(engine.sessions.values()):
            transports[conn.transport] = transports.get(conn.transport, 0) + 1
        out: dict[str, Any] = {
            "sessions": len(engine.sessions),
            "session_ids": sorted(engine.sessions),
            "transports": transports,
            "sockets": {}, "rooms": {}, "room_members": {}, "pending_acks": 0,
        }
        for name, nsp in io.namespaces.items():
            out["sockets"][name] = len(nsp.sockets)
            out["rooms"][name] = len(nsp.adapter.rooms)
            out["room_members"][name] = sum(len(m) for m in nsp.adapter.rooms.values())
            out["pending_acks"] += sum(len(getattr(s, "_acks", ())) for s in list(nsp.sockets.values()))
        with lock:
            out.update(counters)
            out["last_handler_errors"] = list(last_errors)
        out["rss_kb"] = _rss_kb()
        if full:
            from greenlet import greenlet

            out["greenlets"] = sum(1 for o in gc.get_objects() if isinstance(o, greenlet))
        return out

    def stats_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/stats" and environ.get("REQUEST_METHOD") == "GET":
            full = parse_qs(environ.get("QUERY_STRING", "")).get("full") == ["1"]
            body = json.dumps(stats(full)).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"not found"]

    return socketio_sync.WSGIApp(io, wsgi_app=stats_app, path="socket.io")

"""The apps of scenario G (``run.py --scenarios G``): the benchmark app under ``gunicorn -w N``.

Both share rooms and broadcasts between the workers through one redis-server, and answer
the events of ``servers.py`` the same way (``echo`` acks its arguments, ``join`` joins a
room and acks ``true``, ``bcast`` sends ``tick`` to room ``"b"``)::

    gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker -w 4 \\
        'cluster_apps:socketio_sync_app(redis_url="redis://127.0.0.1:6379/0")'
    gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 4 \\
        'cluster_apps:python_socketio_app(redis_url="redis://127.0.0.1:6379/0")'

(run from ``benchmarks/`` with the repository root on ``PYTHONPATH``). Both workers
monkey-patch the process with gevent before the app is imported.

``socketio_sync_app`` uses :class:`socketio_sync.RedisAdapter`, which forwards the
requests of a session that another worker owns (no sticky sessions needed).
``python_socketio_app`` uses ``socketio.RedisManager``, python-socketio's Redis
message queue; it shares broadcasts but not sessions, so with more than one worker its
polling clients need sticky sessions, which ``gunicorn`` does not provide.
"""
from __future__ import annotations

from typing import Any

import json
import os

ROOM = "b"
#: The path of :func:`with_stats`'s answer.
STATS_PATH = "/bench-stats"

__all__ = ["socketio_sync_app", "python_socketio_app", "with_stats", "STATS_PATH"]


def with_stats(app: Any, forwarding: Any = None) -> Any:
    """Wrap ``app`` to count its HTTP requests by method (a WebSocket counts once, as its
    ``GET``), and answer ``GET /bench-stats`` with this worker's pid, the counts and
    ``forwarding()`` (socketio_sync's session-forwarding counters), as JSON. The runner
    asks every worker over fresh connections after each load."""
    counts: dict[str, int] = {}

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == STATS_PATH:
            body = json.dumps({"pid": os.getpid(), "requests": counts,
                               "forwarding": forwarding() if forwarding else None}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                      ("Connection", "close")])
            return [body]
        method = environ.get("REQUEST_METHOD", "")
        counts[method] = counts.get(method, 0) + 1
        return app(environ, start_response)

    return wrapped


def socketio_sync_app(redis_url: str) -> Any:
    """socketio_sync with the Redis adapter (session forwarding on, its default)."""
    import socketio_sync

    io = socketio_sync.Server(adapter=socketio_sync.RedisAdapter(redis_url))

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("join")
        def join(room: str) -> bool:
            socket.join(room)
            return True

        @socket.on("bcast")
        def bcast(msg: Any) -> None:
            io.to(ROOM).emit("tick", msg)

    def forwarding() -> Any:
        fwd = io.engine.forwarder
        return dict(fwd.stats) if fwd is not None else None

    return with_stats(socketio_sync.WSGIApp(io), forwarding)


def python_socketio_app(redis_url: str) -> Any:
    """python-socketio (gevent mode) with ``RedisManager``."""
    import socketio

    sio = socketio.Server(async_mode="gevent", client_manager=socketio.RedisManager(redis_url))

    @sio.on("echo")
    def echo(sid: str, *args: Any) -> Any:
        return args

    @sio.on("join")
    def join(sid: str, room: str) -> bool:
        sio.enter_room(sid, room)
        return True

    @sio.on("bcast")
    def bcast(sid: str, msg: Any) -> None:
        sio.emit("tick", msg, room=ROOM)

    return with_stats(socketio.WSGIApp(sio))

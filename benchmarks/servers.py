"""The Python servers under test, each with the same tiny application.

Usage: ``python benchmarks/servers.py SYSTEM [--port 0] [--cprofile FILE]``

Prints ``LISTENING <port>`` once bound, then serves until SIGTERM/SIGINT.

Every system answers the same events in the same way (the Node server in
``node_server.mjs`` does too):

* ``echo`` (any arguments): acknowledged with the same arguments;
* ``join`` (room): the socket joins the room; acknowledged with ``true``;
* ``bcast`` (message): ``tick`` (message) is sent to every socket in room ``"b"``;
  acknowledged with no arguments when the client asked for an ack.

Nothing is emitted on connection. Every server runs with its defaults (ping interval 25 s,
ping timeout 20 s, 1 MB payloads); the process is monkey-patched by gevent first, as the
python-socketio and Flask-SocketIO documentation recommend for gevent.

Systems:

``socketio_sync``
    ``socketio_sync.Server`` + ``WSGIApp`` served by ``socketio_sync.make_server``.
``socketio_sync_flask``
    the same, wrapping a Flask app: ``WSGIApp(io, flask_app.wsgi_app)``.
``python_socketio``
    ``socketio.Server(async_mode="gevent")`` + ``socketio.WSGIApp`` on ``gevent.pywsgi.WSGIServer``
    with ``geventwebsocket.handler.WebSocketHandler`` (access log off).
``flask_socketio``
    ``flask_socketio.SocketIO(app, async_mode="gevent")`` served the way ``socketio.run`` serves it
    under gevent with gevent-websocket installed (``WSGIServer`` + ``WebSocketHandler``, no access log).
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import Any, Callable  # noqa: E402

import gevent  # noqa: E402

ROOM = "b"


def _flask_app() -> Any:
    import flask

    app = flask.Flask("bench")

    @app.route("/")
    def index() -> str:
        return "ok"

    return app


def build_socketio_sync(flask: bool = False) -> tuple[Any, Callable[[Any, int], Any]]:
    import socketio_sync

    io = socketio_sync.Server()

    @io.on("connection")
    def on_connection(socket: Any) -> None:
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

    app = socketio_sync.WSGIApp(io, _flask_app().wsgi_app if flask else None)

    def serve(app: Any, port: int) -> Any:
        return socketio_sync.make_server(app, "127.0.0.1", port)

    return app, serve


def _gevent_websocket_server(app: Any, port: int) -> Any:
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    return pywsgi.WSGIServer(("127.0.0.1", port), app, handler_class=WebSocketHandler, log=None)


def build_python_socketio() -> tuple[Any, Callable[[Any, int], Any]]:
    import socketio

    sio = socketio.Server(async_mode="gevent")

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

    return socketio.WSGIApp(sio), _gevent_websocket_server


def build_flask_socketio() -> tuple[Any, Callable[[Any, int], Any]]:
    from flask_socketio import SocketIO, join_room

    app = _flask_app()
    sio = SocketIO(app, async_mode="gevent")

    @sio.on("echo")
    def echo(*args: Any) -> Any:
        return args

    @sio.on("join")
    def join(room: str) -> bool:
        join_room(room)
        return True

    @sio.on("bcast")
    def bcast(msg: Any) -> None:
        sio.emit("tick", msg, to=ROOM)

    return app, _gevent_websocket_server


SYSTEMS: dict[str, Callable[[], tuple[Any, Callable[[Any, int], Any]]]] = {
    "socketio_sync": build_socketio_sync,
    "socketio_sync_flask": lambda: build_socketio_sync(flask=True),
    "python_socketio": build_python_socketio,
    "flask_socketio": build_flask_socketio,
}


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cprofile", help="write cProfile stats here on exit")
    args = parser.parse_args()
    raise_fd_limit()
    app, serve = SYSTEMS[args.system]()
    server = serve(app, args.port)
    server.start()

    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()

    def stop(*_: object) -> None:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        sys.stdout.flush()
        os._exit(0)  # nothing to flush or clean: the runner only needs the process gone

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    print("LISTENING", server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

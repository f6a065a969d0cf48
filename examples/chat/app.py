"""The Socket.IO chat example, served by socketio_sync.

Every "chat message" goes to everyone (``io.emit``); a new user is announced to the
others (``socket.broadcast.emit``), as in the socket.io tutorial.

Run it (after ``npm ci`` in this folder, which fetches the official client bundle)::

    python examples/chat/app.py [HOST] [PORT]     # or HOST=... PORT=... ; 127.0.0.1:5000 by default

then open the printed URL in two browser tabs. ``make run`` at the top of the repository
does all of that.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterable  # noqa: E402

import socketio_sync  # noqa: E402

HERE = Path(__file__).resolve().parent
INDEX_HTML = HERE / "index.html"
CLIENT_JS = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

#: URL path -> (file, content type) of what the page needs besides Socket.IO itself.
STATIC = {
    "/": (INDEX_HTML, "text/html; charset=utf-8"),
    "/index.html": (INDEX_HTML, "text/html; charset=utf-8"),
    "/socket.io.min.js": (CLIENT_JS, "application/javascript; charset=utf-8"),
}


def static_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A tiny WSGI app for the page and the client bundle (use your framework instead)."""
    entry = STATIC.get(environ.get("PATH_INFO", ""))
    if entry is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _text(start_response, "404 Not Found", "Not Found\n")
    path, content_type = entry
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        return _text(start_response, "500 Internal Server Error",
                     f"{path.name} is missing: run `npm ci` in {HERE} (or `make run`)\n")
    start_response("200 OK", [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-cache"),
    ])
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def _text(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def build(**options: Any) -> socketio_sync.WSGIApp:
    """The chat application; ``options`` go to :class:`socketio_sync.Server`."""
    io = socketio_sync.Server(**options)

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.broadcast.emit("user connected")

        @socket.on("chat message")
        def chat_message(msg: Any) -> None:
            io.emit("chat message", msg)

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            io.emit("user disconnected")

    return socketio_sync.WSGIApp(io, static_app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="socketio_sync chat example")
    parser.add_argument("host", nargs="?", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("port", nargs="?", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args(argv)
    if not CLIENT_JS.is_file():
        print(f"warning: {CLIENT_JS} is missing; run `npm ci` in {HERE}", file=sys.stderr)
    print(f"chat example on http://{args.host}:{args.port}/ (open it in two tabs; Ctrl+C stops)", flush=True)
    socketio_sync.run(build(), args.host, args.port)


if __name__ == "__main__":
    main()

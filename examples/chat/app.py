"""The Socket.IO chat example, served by socketio_sync.

Two namespaces share one connection from the page:

``/``      presence: everyone gets ``online`` (how many people are here) when someone
           arrives or leaves (``io.emit``).
``/chat``  the chat itself: pick a ``nickname`` (the ack says whether it was accepted),
           ``join`` a room, send ``message``s to that room only
           (``io.of("/chat").to(room).emit``), and ``typing`` tells the others in the room
           (``socket.to(room).emit``).

Events the page sends to ``/chat``, and what their acks answer:

``nickname(name)``   ``{"ok": True, "nickname": name}`` or ``{"ok": False, "error": ...}``
                     (non-empty, at most 32 characters, not taken by someone else)
``join(room)``       ``{"ok": True, "room": room}``; leaves the previous room
``message(text)``    ``{"ok": True}``; everyone in the room (the sender too) gets
                     ``message`` ``{"nickname", "text", "room"}``
``typing(bool)``     no ack; the others in the room get ``typing`` ``{"nickname", "typing"}``

and the others in the room get ``notice`` ``{"text": "alice joined #general"}`` as people
come and go.

Run it (after ``npm ci`` in this folder, which fetches the official client bundle)::

    python examples/chat/app.py [HOST] [PORT]     # or HOST=... PORT=... ; 127.0.0.1:5000 by default

then open the printed URL in two browser tabs (``?transports=polling`` or
``?transports=websocket`` picks the transports; both, with the upgrade, by default).
``make run`` at the top of the repository does all of that. With gunicorn, from the
top of the repository::

    gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker -w 1 'examples.chat.app:build()'
"""
# Run as a script: before anything else, so that blocking libraries yield to other
# greenlets. Imported (by gunicorn's gevent worker, which patches itself, or by tests
# using io.test_client) it leaves the process as it is.
if __name__ == "__main__":
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
#: The npm package the server's ``serve_client`` answers ``/socket.io/socket.io.min.js`` from.
CLIENT_PKG = HERE / "node_modules" / "socket.io-client"
CLIENT_JS = CLIENT_PKG / "dist" / "socket.io.min.js"

ROOMS = ("general", "random")
MAX_NICKNAME = 32
MAX_MESSAGE = 1000

#: URL path -> (file, content type) of the page. The client bundle comes from the
#: Socket.IO server itself (``serve_client``, as on Node: ``/socket.io/socket.io.min.js``).
STATIC = {
    "/": (INDEX_HTML, "text/html; charset=utf-8"),
    "/index.html": (INDEX_HTML, "text/html; charset=utf-8"),
}


def build(**options: Any) -> socketio_sync.WSGIApp:
    """The chat application; ``options`` go to :class:`socketio_sync.Server`."""
    options.setdefault("client_path", str(CLIENT_PKG))
    io = socketio_sync.Server(**options)
    chat = io.of("/chat")
    # lower-cased nickname -> socket id. Handlers run in greenlets of one process, and
    # nothing below yields between checking and taking a name, so no lock is needed.
    taken: dict[str, str] = {}

    # -- "/": presence ------------------------------------------------------------------

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        io.emit("online", len(io.of("/").sockets))   # everyone, this socket included

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            io.emit("online", len(io.of("/").sockets))

    # -- "/chat": nicknames, rooms, messages, typing -----------------------------------

    @chat.on("connection")
    def on_chat_connection(socket: socketio_sync.Socket) -> None:
        me = socket.data   # "nickname" and "room", once chosen

        def tell_room(event: str, data: dict[str, Any]) -> None:   # the others in my room
            socket.to(me["room"]).emit(event, data)

        def leave_room() -> None:
            if "room" in me:
                tell_room("typing", {"nickname": me["nickname"], "typing": False})
                tell_room("notice", {"text": f"{me['nickname']} left #{me['room']}"})
                socket.leave(me.pop("room"))

        @socket.on("nickname")
        def set_nickname(name: Any) -> dict[str, Any]:
            name = name.strip() if isinstance(name, str) else ""
            if not name:
                return {"ok": False, "error": "Pick a nickname."}
            if len(name) > MAX_NICKNAME:
                return {"ok": False, "error": f"A nickname has at most {MAX_NICKNAME} characters."}
            if taken.get(name.lower(), socket.id) != socket.id:
                return {"ok": False, "error": f'The nickname "{name}" is taken.'}
            old = me.get("nickname")
            if old is not None:
                del taken[old.lower()]
            taken[name.lower()] = socket.id
            me["nickname"] = name
            if old is not None and old != name and "room" in me:
                tell_room("notice", {"text": f"{old} is now {name}"})
            return {"ok": True, "nickname": name}

        @socket.on("join")
        def join(room: Any) -> dict[str, Any]:
            if "nickname" not in me:
                return {"ok": False, "error": "Pick a nickname first."}
            if room not in ROOMS:
                return {"ok": False, "error": f"There is no room {room}."}
            if me.get("room") != room:
                leave_room()
                socket.join(room)
                me["room"] = room
                tell_room("notice", {"text": f"{me['nickname']} joined #{room}"})
            return {"ok": True, "room": room}

        @socket.on("message")
        def message(text: Any) -> dict[str, Any]:
            if "room" not in me:
                return {"ok": False, "error": "Join a room first."}
            if not isinstance(text, str) or not text.strip():
                return {"ok": False, "error": "Say something."}
            chat.to(me["room"]).emit("message", {   # the whole room, the sender too
                "nickname": me["nickname"], "text": text[:MAX_MESSAGE], "room": me["room"],
            })
            return {"ok": True}

        @socket.on("typing")
        def typing(active: Any) -> None:
            if "room" in me:
                tell_room("typing", {"nickname": me["nickname"], "typing": bool(active)})

        @socket.on("disconnect")
        def on_disconnect(reason: str) -> None:
            leave_room()
            if "nickname" in me:
                del taken[me["nickname"].lower()]

    return socketio_sync.WSGIApp(io, static_app)


def static_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A tiny WSGI app for the page (use your framework instead)."""
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

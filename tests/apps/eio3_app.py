"""Test application for Socket.IO v2 clients (``allow_eio3``), see tests/integration/test_eio3.py.

``build(**opts)``: a server with ``allow_eio3=True`` (unless ``opts`` says otherwise) and

``/``       ``join`` {room, name}: joins ``room`` and answers ``"joined"``; ``chat`` {room, text}:
            sent to the room as ``chat`` {from, text}; ``echo``: acks with its arguments;
            ``ask`` {room, question}: ``call``s every other socket of the room one by one
            and acks with their answers; ``whoami``: acks with what the handshake holds.
``/admin``  a middleware refuses a ``token`` other than ``"secret"`` (in v2's query or v4's
            auth), with data ``{"code": 401}``; ``/plain`` refuses everybody, without data.

Other paths: ``/`` is a page that loads the v2 client bundle (``/socket.io-v2.js``, from
tests/js/node_modules/socket.io-client-v2) for the browser test; see ``PAGE``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import socketio_sync

BUNDLE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "socket.io-client-v2" / "dist" / "socket.io.js"

#: In a browser, socket.io-client 2 polls with XHR2: binary payloads both ways. The page
#: emits an event with binary data and an ack, and puts the outcome in ``window.outcome``.
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>v2 client</title></head><body>
<script src="/socket.io-v2.js"></script>
<script>
function show(value) {
  if (value instanceof ArrayBuffer) return {bin: Array.from(new Uint8Array(value))};
  if (ArrayBuffer.isView(value)) return {bin: Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))};
  if (Array.isArray(value)) return value.map(show);
  if (value && typeof value === "object") {
    const out = {};
    for (const k of Object.keys(value)) out[k] = show(value[k]);
    return out;
  }
  return value;
}
const transports = new URLSearchParams(location.search).get("transports") || "polling";
window.outcome = new Promise((resolve) => {
  const socket = io({transports: transports.split(","), reconnection: false});
  socket.on("error", (e) => resolve({error: show(e)}));
  socket.on("connect_error", (e) => resolve({error: String(e)}));
  const go = () => {
    socket.emit("echo", "h\u00e9llo \ud83d\ude00", new Uint8Array([0, 1, 255]).buffer, (...args) => {
      resolve({args: show(args), transport: socket.io.engine.transport.name});
    });
  };
  socket.on("connect", () => {
    const engine = socket.io.engine;
    if (transports.includes("websocket") && engine.transport.name !== "websocket") engine.once("upgrade", go);
    else go();
  });
});
</script></body></html>
"""


def _page_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/":
        body, ctype = PAGE, "text/html; charset=utf-8"
    elif path == "/socket.io-v2.js":
        body, ctype = BUNDLE.read_bytes(), "application/javascript"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def build(**opts: Any) -> socketio_sync.WSGIApp:
    opts.setdefault("allow_eio3", True)
    io = socketio_sync.Server(**opts)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("join")
        def join(info: dict[str, Any]) -> str:
            socket.data["name"] = info["name"]
            socket.join(info["room"])
            return "joined"

        @socket.on("chat")
        def chat(msg: dict[str, Any]) -> None:
            io.to(msg["room"]).emit("chat", {"from": socket.data.get("name"), "text": msg["text"],
                                             "blob": msg.get("blob")})

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("ask")
        def ask(msg: dict[str, Any]) -> list[Any]:
            answers = []
            for other in io.in_(msg["room"]).fetch_sockets():
                if other.id != socket.id:
                    answers.append(other.call("question", msg["question"], timeout=5))
            return answers

        @socket.on("whoami")
        def whoami() -> dict[str, Any]:
            hs = socket.handshake
            return {"id": socket.id, "query": hs.query, "auth": hs.auth, "nsp": socket.nsp.name,
                    "rooms": sorted(socket.rooms)}

    admin = io.of("/admin")

    def check_token(socket: Any, next: Any) -> None:
        if socket.handshake.auth.get("token") != "secret":
            next(socketio_sync.ConnectionRefused("not authorized", data={"code": 401}))
        else:
            next()

    admin.use(check_token)

    @admin.on("connection")
    def on_admin(socket: Any) -> None:
        socket.join("admins")

        @socket.on("whoami")
        def whoami() -> dict[str, Any]:
            hs = socket.handshake
            return {"id": socket.id, "query": hs.query, "auth": hs.auth, "nsp": socket.nsp.name}

        @socket.on("shout")
        def shout(text: str) -> None:
            admin.to("admins").emit("shout", text)

    def refuse(socket: Any, next: Any) -> None:
        next(socketio_sync.ConnectionRefused("go away"))

    io.of("/plain").use(refuse)
    return socketio_sync.WSGIApp(io, _page_app)

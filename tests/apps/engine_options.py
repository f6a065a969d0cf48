"""An app for the Engine.IO options of the Node server (allow_request, cookie, header
hooks, HTTP compression, permessage-deflate, serve_client).

``allow_request`` (when ``gate=True``) admits a handshake with ``x-token: letmein``,
refuses ``x-token: custom`` with the message "go away", raises for ``?boom=1`` and
refuses anything else. The hooks add ``X-Initial: hello`` to handshakes and
``X-Every: yes`` to every response, and record the ``Cookie`` header of each request;
``/stats`` shows what was recorded.
"""
from __future__ import annotations

import json
from typing import Any

import socketio_sync
from socketio_sync.wsgi.engine import Outgoing


def build(gate: bool = False, **kw: Any) -> Any:
    seen: dict[str, Any] = {"cookies": [], "hooked": 0}

    def allow_request(environ: dict[str, Any]) -> Any:
        if "boom=1" in environ.get("QUERY_STRING", ""):
            raise RuntimeError("allow_request exploded (a test)")
        token = environ.get("HTTP_X_TOKEN")
        if token == "letmein":
            return True
        if token == "custom":
            return "go away"
        return False

    def initial_headers(headers: list[tuple[str, str]], environ: dict[str, Any]) -> None:
        headers.append(("X-Initial", "hello"))

    def every(headers: list[tuple[str, str]], environ: dict[str, Any]) -> None:
        headers.append(("X-Every", "yes"))
        seen["hooked"] += 1
        if environ.get("HTTP_COOKIE"):
            seen["cookies"].append(environ["HTTP_COOKIE"])

    io = socketio_sync.Server(
        cors_allowed_origins="*", allow_request=allow_request if gate else None,
        initial_headers=initial_headers, headers=every, **kw)

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return list(args)

        @socket.on("big")
        def big(n: int) -> str:
            return "x" * n

        @socket.on("uncompressed")
        def uncompressed(n: int) -> None:
            # A Socket.IO EVENT packet for "/" sent with the engine's "do not compress" flag.
            socket.client.conn.send_prepared(Outgoing(['2["plain","' + "y" * n + '"]'], compress=False))

        @socket.on("transport")
        def transport() -> dict[str, Any]:
            conn = socket.client.conn
            ws = conn._ws
            deflate = getattr(ws, "deflate", None)
            return {"transport": conn.transport, "eio_sid": conn.sid,
                    "deflate": deflate.params.header if deflate is not None else None}

    def stats(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.dumps(seen).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return socketio_sync.WSGIApp(io, stats)

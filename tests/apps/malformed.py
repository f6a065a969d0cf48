"""Test app for the malformed-input tests.

Socket.IO at ``/socket.io/`` (namespaces ``/`` and ``/other``) and a plain WSGI route
``GET /stats`` returning what the app has seen, as JSON:

``connects``       number of "connection" handler calls per namespace (ever)
``active``         namespace -> number of sockets connected right now
``sockets``        namespace -> list of the socket ids connected right now
``reserved_calls`` calls of the handlers registered for reserved event names
                   (``[namespace, name, args]``; "disconnect" calls are listed too,
                   with their reason argument)
``any_events``     every event seen by ``on_any`` (``[namespace, event, args]``)
``events``         every "echo" / "echo-ack" call (``[namespace, event, args]``)
``registration_errors``  reserved names the API refused to register a handler for

Events: ``"echo"`` emits ``"echo-back"`` with the same arguments (no ack);
``"echo-ack"`` acknowledges with the same arguments.

Defaults: a slow heartbeat (10 s / 10 s) so only the behaviour under test closes
connections, ``max_http_buffer_size`` 10 000 bytes so oversized inputs stay small.
"""
from __future__ import annotations

import json
import threading
from typing import Any

import socketio_sync

RESERVED = ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
NAMESPACES = ("/", "/other")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def build(ping_interval: float = 10.0, ping_timeout: float = 10.0, connect_timeout: float = 10.0,
          max_http_buffer_size: int = 10_000, cors_allowed_origins: Any = "*", **kw: Any) -> Any:
    io = socketio_sync.Server(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        connect_timeout=connect_timeout,
        max_http_buffer_size=max_http_buffer_size,
        cors_allowed_origins=cors_allowed_origins,
        **kw,
    )
    lock = threading.Lock()
    state: dict[str, Any] = {
        "connects": {n: 0 for n in NAMESPACES},
        "sockets": {n: [] for n in NAMESPACES},
        "reserved_calls": [],
        "any_events": [],
        "events": [],
        "registration_errors": [],
    }

    def record(key: str, *item: Any) -> None:
        with lock:
            state[key].append(_jsonable(list(item)))

    def setup(nsp_name: str, socket: Any) -> None:
        with lock:
            state["connects"][nsp_name] += 1
            state["sockets"][nsp_name].append(socket.id)

        def echo(*args: Any) -> Any:
            record("events", nsp_name, "echo", args)
            socket.emit("echo-back", *args)
            return socketio_sync.NO_ACK

        def echo_ack(*args: Any) -> Any:
            record("events", nsp_name, "echo-ack", args)
            return tuple(args)

        socket.on("echo", echo)
        socket.on("echo-ack", echo_ack)
        socket.on_any(lambda event, *args: record("any_events", nsp_name, event, args))

        for name in RESERVED:
            def handler(*args: Any, _name: str = name) -> Any:
                record("reserved_calls", nsp_name, _name, args)
                if _name == "disconnect":
                    with lock:
                        if socket.id in state["sockets"][nsp_name]:
                            state["sockets"][nsp_name].remove(socket.id)
                return None
            try:
                socket.on(name, handler)
            except Exception as exc:  # noqa: BLE001 - the API may refuse reserved names
                record("registration_errors", nsp_name, name, repr(exc))

    io.on("connection", lambda socket: setup("/", socket))
    io.of("/other").on("connection", lambda socket: setup("/other", socket))

    def stats_app(environ: dict, start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/stats":
            with lock:
                snapshot = json.loads(json.dumps(state))
            snapshot["active"] = {n: len(s) for n, s in snapshot["sockets"].items()}
            body = json.dumps(snapshot).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"not found"]

    return socketio_sync.WSGIApp(io, wsgi_app=stats_app, path="socket.io")

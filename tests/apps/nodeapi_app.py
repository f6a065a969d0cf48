"""Test application for the Node-server API features (``tests/integration/test_node_api.py``).

``build(parser="default", cleanup=False)`` serves:

``/``            ``report`` (server state as the tests need it), per-packet middlewares
                 (``socket.use``), ``on_any_outgoing``, volatile/timeout/compress emits.
``/room-<n>``    children of ``io.of(re.compile(r"^/room-\\d+$"))`` (a parent middleware
                 refuses ``auth.ban``; a parent connection handler says ``hello``).
``/user-<name>`` children of ``io.of(fn)``: allowed when ``auth.token == "ok"``.
``/cls``         a :class:`socketio_sync.ClassNamespace`.
``/once``        a ``once("connection")`` handler.
"""
from __future__ import annotations

import re
import time
from typing import Any

import gevent

import socketio_sync


class Chat(socketio_sync.ClassNamespace):
    def on_connect(self, socket: Any) -> None:
        if socket.handshake.auth.get("refuse"):
            raise socketio_sync.ConnectionRefused("no entry", {"why": "refuse"})
        socket.join("lobby")
        socket.emit("hello", {"nsp": socket.nsp.name, "cls": type(self).__name__})

    def on_echo(self, socket: Any, *args: Any) -> Any:
        return tuple(args)

    def on_shout(self, socket: Any, text: str) -> None:
        self.to("lobby").emit("shout", text, socket.id)

    def on_disconnect(self, socket: Any, reason: str) -> None:
        socket.server.to("observers").emit("cls_left", socket.id, reason)


def build(parser: str = "default", cleanup: bool = False) -> socketio_sync.WSGIApp:
    io = socketio_sync.Server(parser=parser, cleanup_empty_child_namespaces=cleanup)
    created: list[str] = []
    io.on("new_namespace", lambda nsp: created.append(nsp.name))

    # ------------------------------------------------------------------ "/"
    @io.on("connection")
    def on_connection(socket: Any) -> None:
        outgoing: list[Any] = []
        rejected: list[str] = []

        @socket.on("observe")
        def observe() -> bool:
            socket.join("observers")
            return True

        @socket.on("report")
        def report() -> dict[str, Any]:
            return {"namespaces": sorted(io.namespaces), "created": created,
                    "outgoing": outgoing, "rejected": rejected,
                    "children": {p.name: sorted(p.children) for p in io._parents}}

        # per-packet middlewares: the Pythonic form and the Node form
        def no_forbidden(packet: list[Any]) -> None:
            if packet[0] == "forbidden":
                raise ValueError("forbidden event")
            if packet[0] == "upper":
                packet[1:] = [str(a).upper() for a in packet[1:]]

        def slow_gate(packet: list[Any], next: Any) -> None:
            if packet[0] == "gated":
                gevent.spawn_later(0.05, next, PermissionError("gate closed"))
            else:
                next()

        socket.use(no_forbidden)
        socket.use(slow_gate)

        @socket.on("error")
        def on_error(err: Exception) -> None:
            rejected.append(f"{type(err).__name__}: {err}")
            socket.emit("rejected", str(err))

        @socket.on("upper")
        def upper(*args: Any) -> Any:
            return list(args)

        @socket.on("forbidden")
        def forbidden() -> str:  # never runs
            return "reached"

        @socket.on("gated")
        def gated() -> str:  # never runs
            return "reached"

        def record(event: str, *args: Any) -> None:
            outgoing.append([event, *args])

        def mark(event: str, *args: Any) -> None:
            outgoing.append(["*" + event])

        @socket.on("track_outgoing")
        def track_outgoing(on: bool) -> int:
            if on:
                socket.on_any_outgoing(record)
                socket.prepend_any_outgoing(mark)  # runs first
            else:
                socket.off_any_outgoing(record)
                socket.off_any_outgoing()
            return len(socket.listeners_any_outgoing())

        @socket.on("say")
        def say(*args: Any) -> None:
            socket.emit("said", *args)
            io.to(socket.id).emit("said_room", *args)

        # volatile: a burst, then (after the transport had time to get ready) one more
        @socket.on("volatile_burst")
        def volatile_burst(n: int, broadcast: bool) -> None:
            for i in range(n):
                if broadcast:
                    io.to(socket.id).volatile.emit("v", i)
                else:
                    socket.volatile.emit("v", i)
            socket.emit("burst_done", n)

        @socket.on("volatile_later")
        def volatile_later() -> None:
            deadline = time.monotonic() + 3
            while not socket.client.conn.writable and time.monotonic() < deadline:
                time.sleep(0.02)  # the polling client's next GET
            socket.volatile.emit("v_late", 1)
            socket.emit("late_done")

        @socket.on("compressed")
        def compressed() -> None:
            socket.compress(False).emit("nc", "socket")
            io.to(socket.id).compress(False).emit("nc", "room")
            socket.broadcast.compress(False).emit("nc_peer", "broadcast")

        # acks with a timeout
        @socket.on("ask_me")
        def ask_me(seconds: float) -> None:
            def done(err: Exception | None, *args: Any) -> None:
                socket.emit("ask_result", None if err is None else type(err).__name__, list(args))
            socket.timeout(seconds).emit("question", "ping?", callback=done)

        @socket.on("ask_me_blocking")
        def ask_me_blocking(seconds: float) -> Any:
            try:
                return ["ok", socket.timeout(seconds).call("question", "block?")]
            except socketio_sync.AckTimeout:
                return ["timeout", None]

        @socket.on("ask_all")
        def ask_all(room: str | None, seconds: float, via: str) -> None:
            def done(err: Exception | None, responses: list[Any]) -> None:
                socket.emit("all_result", None if err is None else type(err).__name__, sorted(map(str, responses)))
            if via == "io":
                op = io.to(room) if room else io
            elif via == "broadcast":
                op = socket.broadcast
            else:
                op = io.of("/")
            op.timeout(seconds).emit("poll", "vote?", callback=done)

        @socket.on("ask_all_blocking")
        def ask_all_blocking(room: str, seconds: float) -> Any:
            try:
                return ["ok", sorted(map(str, io.to(room).timeout(seconds).call("poll", "vote?")))]
            except socketio_sync.AckTimeout as exc:
                return ["timeout", sorted(map(str, exc.responses))]  # type: ignore[attr-defined]

        @socket.on("join")
        def join(room: str) -> bool:
            socket.join(room)
            return True

        @socket.on("rooms_emit")
        def rooms_emit(room: str | None, event: str, *args: Any) -> None:
            (rooms.to(room) if room else rooms).emit(event, *args)

    # ------------------------------------------------------------------ dynamic
    rooms = io.of(re.compile(r"^/room-\d+$"))

    def no_ban(socket: Any, next: Any) -> None:
        if socket.handshake.auth.get("ban"):
            next(socketio_sync.ConnectionRefused("banned"))
        else:
            next()

    rooms.use(no_ban)

    @rooms.on("connection")
    def on_room(socket: Any) -> None:
        socket.emit("hello", socket.nsp.name)

        @socket.on("join")
        def join(room: str) -> bool:
            socket.join(room)
            return True

    def users(name: str, auth: dict[str, Any]) -> bool:
        return name.startswith("/user-") and auth.get("token") == "ok"

    user_parent = io.of(users)
    user_parent.on("connection", lambda socket: socket.emit("hello", socket.nsp.name))

    # ------------------------------------------------------------------ classes, once
    io.register_namespace(Chat("/cls"))

    once = io.of("/once")

    def first(socket: Any) -> None:
        socket.emit("first")

    once.once("connection", first)
    once.on("connection", lambda socket: socket.emit("every"))
    return socketio_sync.WSGIApp(io)

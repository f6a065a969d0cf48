"""A python-socketio style server (sid-based calls) on socketio_sync.compat."""
from __future__ import annotations

from typing import Any

from socketio_sync.compat import python_socketio as socketio


class Chat(socketio.Namespace):
    def on_connect(self, sid: str, environ: dict[str, Any]) -> None:
        self.enter_room(sid, "chatters")

    def on_say(self, sid: str, text: str) -> str:
        self.emit("said", {"from": sid, "text": text}, room="chatters", skip_sid=sid)
        return "delivered"


def build(**options: Any) -> Any:
    sio = socketio.Server(cors_allowed_origins="*", **options)

    @sio.event
    def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any]) -> Any:
        if auth.get("token") == "bad":
            raise socketio.ConnectionRefusedError("bad token", {"hint": "use another"})
        if auth.get("token") == "false":
            return False
        sio.save_session(sid, {"user": auth.get("user"), "path": environ["PATH_INFO"]})
        return None

    @sio.event
    def whoami(sid: str) -> Any:
        with sio.session(sid) as session:
            session["asked"] = session.get("asked", 0) + 1
        return sio.get_session(sid)

    @sio.on("join")
    def join(sid: str, room: str) -> list[str]:
        sio.enter_room(sid, room)
        return sio.rooms(sid)

    @sio.on("leave")
    def leave(sid: str, room: str) -> list[str]:
        sio.leave_room(sid, room)
        return sio.rooms(sid)

    @sio.on("to room")
    def to_room(sid: str, room: str, text: str) -> None:
        sio.emit("room message", (room, text), to=room, skip_sid=sid)

    @sio.on("close room")
    def close_room(sid: str, room: str) -> None:
        sio.close_room(room)

    @sio.on("ask me")
    def ask_me(sid: str, question: str) -> Any:
        return sio.call("question", question, to=sid, timeout=5)

    @sio.on("ping me back")
    def ping_me_back(sid: str) -> None:
        def got(*args: Any) -> None:
            sio.emit("callback got", list(args), to=sid)
        sio.emit("pinged", "hello", to=sid, callback=got)

    @sio.on("kick me")
    def kick_me(sid: str) -> None:
        sio.disconnect(sid)

    answers: list[Any] = []

    @sio.on("poll room")
    def poll_room(sid: str, room: str) -> None:
        answers.clear()
        sio.emit("poll", "yes or no?", to=room, callback=lambda *args: answers.append(list(args)))

    @sio.on("poll answers")
    def poll_answers(sid: str) -> list[Any]:
        return sorted(answers)

    @sio.on("where", namespace="*")
    def where(namespace: str, sid: str) -> str:
        return namespace

    @sio.on("*")
    def catch_all(event: str, sid: str, *args: Any) -> Any:
        return ["caught", event, *args]

    sio.register_namespace(Chat("/chat"))
    return socketio.WSGIApp(sio)

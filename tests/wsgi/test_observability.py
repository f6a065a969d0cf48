"""Hooks, metrics rendering, the JSON log formatter and the Admin UI's static app, in
process (werkzeug's test client and socketio_sync's own test client: no network)."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

import socketio_sync
from socketio_sync import admin
from socketio_sync.hooks import HOOK_NAMES, Hooks
from socketio_sync.logs import JsonFormatter
from socketio_sync.metrics import Metrics


# -- hooks ---------------------------------------------------------------------------------------

def test_hooks_add_and_remove_observers() -> None:
    hooks = Hooks()
    assert all(getattr(hooks, name) == () for name in HOOK_NAMES)

    class Partial:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def room_join(self, nsp: Any, room: str, sid: str) -> None:
            self.seen.append((room, sid))

    a, b = Partial(), Partial()
    assert hooks.add(a) is a
    hooks.add(b)
    assert len(hooks.room_join) == 2 and hooks.room_leave == ()
    Hooks.call(hooks.room_join, None, "r", "s")
    assert a.seen == b.seen == [("r", "s")]
    hooks.remove(a)
    assert hooks.observers == [b] and len(hooks.room_join) == 1
    with pytest.raises(ValueError, match="none of the hook methods"):
        hooks.add(object())


def test_a_failing_hook_is_logged_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    seen = []

    def bad(*args: Any) -> None:
        raise RuntimeError("observer bug")

    Hooks.call((bad, lambda *a: seen.append(a)), 1, 2)
    assert seen == [(1, 2)]
    assert "observer bug" in caplog.text


def test_hooks_see_a_whole_conversation_in_order() -> None:
    io = socketio_sync.Server()
    calls: list[tuple[Any, ...]] = []

    class Recorder:
        def engine_open(self, conn: Any) -> None:
            calls.append(("engine_open", conn.transport))

        def socket_connect(self, socket: Any) -> None:
            calls.append(("socket_connect", socket.nsp.name))

        def room_join(self, nsp: Any, room: str, sid: str) -> None:
            calls.append(("room_join", room if room == "lobby" else "<own>"))

        def room_leave(self, nsp: Any, room: str, sid: str) -> None:
            calls.append(("room_leave", room if room == "lobby" else "<own>"))

        def event_in(self, socket: Any, event: str, args: Any) -> None:
            calls.append(("event_in", event, list(args)))

        def event_out(self, socket: Any, event: str, args: Any) -> None:
            calls.append(("event_out", event, list(args)))

        def broadcast(self, nsp: Any, packet: Any, recipients: int) -> None:
            calls.append(("broadcast", packet.data[0], recipients))

        def ack(self, socket: Any, seconds: float) -> None:
            calls.append(("ack", seconds >= 0))

        def socket_disconnect(self, socket: Any, reason: str) -> None:
            calls.append(("socket_disconnect", reason))

        def engine_close(self, conn: Any, reason: str) -> None:
            calls.append(("engine_close", reason))

    io.hooks.add(Recorder())

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        @socket.on("enter")
        def enter(room: str) -> Any:
            socket.join(room)
            io.to(room).emit("hello", room)
            return socket.call("question", timeout=5)

    with io.test_client(socketio_sync.WSGIApp(io)) as client:
        client.on("question", lambda: "answer")
        assert client.call("enter", "lobby") == "answer"
        assert client.wait_for("hello") == ["lobby"]
    assert calls == [
        ("engine_open", "polling"),
        ("room_join", "<own>"),
        ("socket_connect", "/"),
        ("event_in", "enter", ["lobby"]),
        ("room_join", "lobby"),
        ("broadcast", "hello", 1),
        ("event_out", "question", []),
        ("ack", True),
        # the test client closes its connection: the engine first, then its sockets
        ("engine_close", "transport close"),
        ("socket_disconnect", "transport close"),
    ] + sorted([("room_leave", "<own>"), ("room_leave", "lobby")], key=lambda c: calls.index(c))


# -- metrics -------------------------------------------------------------------------------------

def test_metrics_render_the_text_format() -> None:
    io = socketio_sync.Server()
    metrics = Metrics(io, buckets=(0.01, 0.1))
    metrics.ack(None, 0.005)
    metrics.ack(None, 0.01)     # on a bound: counted in that bucket (le)
    metrics.ack(None, 0.5)
    metrics.error("parse_error", "x", None)
    metrics.engine_close(None, 'odd "reason"\n\\')
    text = metrics.render()
    lines = text.splitlines()
    assert 'socketio_ack_latency_seconds_bucket{le="0.01"} 2' in lines
    assert 'socketio_ack_latency_seconds_bucket{le="0.1"} 2' in lines
    assert 'socketio_ack_latency_seconds_bucket{le="+Inf"} 3' in lines
    assert "socketio_ack_latency_seconds_count 3" in lines
    assert "socketio_ack_latency_seconds_sum 0.515" in lines
    assert 'socketio_errors_total{kind="parse_error"} 1' in lines
    assert 'socketio_engine_disconnects_total{reason="odd \\"reason\\"\\n\\\\"} 1' in lines
    assert 'socketio_connected_sockets{namespace="/"} 0' in lines
    assert "# TYPE socketio_ack_latency_seconds histogram" in lines
    assert text.endswith("\n")
    other = Metrics(socketio_sync.Server(), prefix="chat_")
    assert "chat_messages_sent_total 0" in other.render().splitlines()
    with pytest.raises(ValueError):
        Metrics(io, buckets=())


def test_metrics_count_a_test_client_conversation() -> None:
    io = socketio_sync.Server()
    metrics = Metrics(io)

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.on("echo", lambda *args: args)

    http = Client(socketio_sync.WSGIApp(io, metrics.wsgi_app()))
    with io.test_client(socketio_sync.WSGIApp(io)) as client:
        assert client.call("echo", "héllo") == "héllo"
        text = http.get("/metrics").get_data(as_text=True)
    assert 'socketio_connected_sockets{namespace="/"} 1' in text
    assert 'socketio_events_received_total{namespace="/"} 1' in text
    # CONNECT "0" (1 byte) and the event '20["echo","héllo"]' (19 bytes in UTF-8)
    assert "socketio_messages_received_total 2" in text
    assert "socketio_bytes_received_total 20" in text
    assert http.get("/elsewhere").status_code == 404


# -- JSON logs -----------------------------------------------------------------------------------

def test_json_formatter_fields_and_exceptions() -> None:
    fmt = JsonFormatter(fields=("user",), static={"service": "chat"})
    record = logging.LogRecord("socketio_sync.server", logging.INFO, __file__, 1, "socket %s left: %s",
                               ("abc", "ping timeout"), None)
    record.created = 1_795_339_200.5
    for key, value in {"eio_sid": "E1", "sid": "abc", "namespace": "/chat", "event": None,
                       "reason": "ping timeout", "remote_addr": "127.0.0.1", "user": "ann"}.items():
        setattr(record, key, value)
    line = fmt.format(record)
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-11-22T09:20:00.500Z", "level": "INFO", "logger": "socketio_sync.server",
        "message": "socket abc left: ping timeout", "service": "chat", "eio_sid": "E1", "sid": "abc",
        "namespace": "/chat", "remote_addr": "127.0.0.1", "reason": "ping timeout", "user": "ann",
    }
    try:
        raise ValueError("naïve \u2028 failure")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %r", ({"k": b"\x00"},),
                                   sys.exc_info())
    out = json.loads(fmt.format(record))
    assert out["message"] == "failed: {'k': b'\\x00'}"
    assert out["exc_info"].startswith("Traceback") and "naïve" in out["exc_info"]
    assert "\n" not in fmt.format(record)


def test_json_logs_from_a_real_conversation() -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("socketio_sync")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        io = socketio_sync.Server()

        @io.on("connection")
        def on_connection(socket: socketio_sync.Socket) -> None:
            @socket.on("boom")
            def boom() -> None:
                raise RuntimeError("kaboom")

            socket.on("echo", lambda x: x)

        with io.test_client(socketio_sync.WSGIApp(io)) as client:
            client.emit("boom")
            assert client.call("echo", 1) == 1   # same queue: boom has run
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(r) for r in records]
    opened = [x for x in lines if x["message"].startswith("session ") and "opened" in x["message"]]
    assert opened and opened[0]["transport"] == "polling" and opened[0]["eio_sid"]
    joined = [x for x in lines if "joined /" in x["message"]]
    assert joined and joined[0]["namespace"] == "/" and joined[0]["sid"] and joined[0]["eio_sid"]
    failed = [x for x in lines if x["level"] == "ERROR"]
    assert failed and failed[0]["event"] == "boom" and "kaboom" in failed[0]["exc_info"]
    left = [x for x in lines if x.get("reason") and x.get("sid") and "left" in x["message"]]
    assert left and left[0]["reason"] == "transport close" and left[0]["namespace"] == "/"


# -- the Admin UI's static app and instrument() --------------------------------------------------

@pytest.fixture
def ui_dir(tmp_path: Path) -> Path:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("console.log(1)")
    (tmp_path / "index.html").write_text(
        '<html><head><link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
        '<link rel="stylesheet" href="//cdn.jsdelivr.net/npm/@mdi/font@latest/x.css">'
        '<link href="css/app.css" rel="stylesheet"></head><body><script src="js/app.js"></script></body></html>')
    (tmp_path.parent / "secret.txt").write_text("no")
    return tmp_path


def test_ui_app_serves_the_page_locally(ui_dir: Path) -> None:
    def other(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"other"]

    client = Client(admin.ui_app(ui_dir, app=other))
    resp = client.get("/admin-ui")
    assert resp.status_code == 301 and resp.headers["Location"].endswith("/admin-ui/")
    page = client.get("/admin-ui/")
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.get_data(as_text=True)
    assert "googleapis" not in html and "jsdelivr" not in html      # no CDN
    assert '<link href="css/app.css" rel="stylesheet">' in html and "js/app.js" in html
    js = client.get("/admin-ui/js/app.js")
    assert js.status_code == 200 and js.get_data() == b"console.log(1)"
    assert "javascript" in js.headers["Content-Type"]
    assert client.get("/admin-ui/../secret.txt").status_code == 404
    assert client.get("/admin-ui/%2e%2e/secret.txt").status_code == 404
    assert client.get("/admin-ui/missing.js").status_code == 404
    assert client.post("/admin-ui/").status_code == 405
    assert client.get("/elsewhere").get_data() == b"other"
    assert Client(admin.ui_app(ui_dir)).get("/elsewhere").status_code == 404
    with pytest.raises(FileNotFoundError, match="@socket.io/admin-ui"):
        admin.ui_app(ui_dir / "js")


def test_ui_app_serves_the_icon_font_when_given(ui_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    mdi = tmp_path_factory.mktemp("mdi")
    (mdi / "css").mkdir()
    (mdi / "fonts").mkdir()
    (mdi / "css" / "materialdesignicons.min.css").write_text("@font-face{src:url(../fonts/x.woff2)}")
    (mdi / "fonts" / "x.woff2").write_bytes(b"wOF2")
    client = Client(admin.ui_app(ui_dir, icons=mdi))
    html = client.get("/admin-ui/").get_data(as_text=True)
    assert '<link rel="stylesheet" href="mdi/css/materialdesignicons.min.css"></head>' in html
    assert "jsdelivr" not in html
    css = client.get("/admin-ui/mdi/css/materialdesignicons.min.css")
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert client.get("/admin-ui/mdi/fonts/x.woff2").get_data() == b"wOF2"
    assert client.get("/admin-ui/mdi/%2e%2e/%2e%2e/secret.txt").status_code == 404
    with pytest.raises(FileNotFoundError, match="@mdi/font"):
        admin.ui_app(ui_dir, icons=ui_dir)


def test_instrument_checks_its_options() -> None:
    io = socketio_sync.Server()
    with pytest.raises(ValueError, match="auth option must be given"):
        admin.instrument(io, auth=None)
    with pytest.raises(ValueError, match="bcrypt hash"):
        admin.instrument(io, auth={"type": "basic", "username": "a", "password": "plain"})
    with pytest.raises(ValueError, match="invalid auth"):
        admin.instrument(io, auth={"type": "digest"})
    with pytest.raises(ValueError, match="mode"):
        admin.instrument(io, auth=False, mode="debug")
    ui = admin.instrument(io, auth=False, mode="production", read_only=True, namespace_name="/ops",
                          server_id="s1")
    assert ui.supported_features == ["AGGREGATED_EVENTS"]
    assert "/ops" in io.namespaces
    stats = ui.server_stats()
    assert stats["serverId"] == "s1" and stats["clientsCount"] == 0
    ui.close()
    assert io.hooks.observers == []

"""WSGIApp driven in process with werkzeug's test client: no server, no sockets."""
from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

import socketio_sync


def inner_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"inner:" + environ["PATH_INFO"].encode()]


def make(**opts: Any) -> tuple[socketio_sync.Server, Client]:
    io = socketio_sync.Server(**opts)
    return io, Client(socketio_sync.WSGIApp(io, inner_app))


def handshake(client: Client, **headers: str) -> tuple[Any, dict[str, Any]]:
    resp = client.get("/socket.io/?EIO=4&transport=polling", headers=headers)
    body = resp.get_data(as_text=True)
    assert body.startswith("0"), body
    return resp, json.loads(body[1:])


def test_other_paths_fall_through_to_the_wrapped_app() -> None:
    _, client = make()
    assert client.get("/").get_data() == b"inner:/"
    assert client.get("/socket.iox/").get_data() == b"inner:/socket.iox/"
    assert client.get("/static/app.js").get_data() == b"inner:/static/app.js"


def test_without_wrapped_app_other_paths_are_404() -> None:
    io = socketio_sync.Server()
    resp = Client(socketio_sync.WSGIApp(io)).get("/")
    assert resp.status_code == 404


def test_polling_handshake_values() -> None:
    io, client = make(ping_interval=0.3, ping_timeout=0.2, max_http_buffer_size=12345)
    resp, value = handshake(client)
    assert resp.status_code == 200
    # werkzeug's test client exposes no socket to take over: no WebSocket upgrade offered.
    assert value == {"sid": value["sid"], "upgrades": [], "pingInterval": 300,
                     "pingTimeout": 200, "maxPayload": 12345}
    assert len(value["sid"]) >= 22  # 128 bits from secrets
    assert value["sid"] in io.engine.sessions
    io.engine.close_all()


def test_websocket_only_server_offers_no_upgrade_and_refuses_polling() -> None:
    io, client = make(transports=("websocket",))
    resp = client.get("/socket.io/?EIO=4&transport=polling")
    assert resp.status_code == 400
    assert resp.get_json() == {"code": 0, "message": "Transport unknown"}


@pytest.mark.parametrize("query,code", [
    ("transport=polling", 5), ("EIO=3&transport=polling", 5), ("EIO=abc&transport=polling", 5),
    ("EIO=4", 0), ("EIO=4&transport=abc", 0), ("EIO=4&transport=polling&sid=unknown", 1),
])
def test_handshake_errors_are_400_with_json(query: str, code: int) -> None:
    _, client = make()
    resp = client.get(f"/socket.io/?{query}")
    assert resp.status_code == 400
    assert resp.get_json()["code"] == code


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_bad_handshake_method_is_400_not_405(method: str) -> None:
    _, client = make()
    resp = client.open("/socket.io/?EIO=4&transport=polling", method=method)
    assert resp.status_code == 400
    assert resp.get_json() == {"code": 2, "message": "Bad handshake method"}


def test_websocket_request_without_websocket_capable_server_is_400() -> None:
    _, client = make()
    resp = client.get("/socket.io/?EIO=4&transport=websocket")
    assert resp.status_code == 400
    assert resp.get_json()["code"] == 3


def test_post_then_poll_over_wsgi() -> None:
    engine = socketio_sync.EngineServer()
    client = Client(socketio_sync.WSGIApp(engine, path="socket.io"))
    got: list[Any] = []
    engine.on("connection", lambda conn: conn.on("message", got.append))
    _, value = handshake(client)
    sid = value["sid"]
    resp = client.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="4hello\x1ebAQIDBA==")
    assert resp.get_data() == b"ok"
    assert got == ["hello", b"\x01\x02\x03\x04"]
    engine.sessions[sid].send("back")
    resp = client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}")
    assert resp.get_data(as_text=True) == "4back"
    engine.close_all()


def test_invalid_socketio_packet_over_polling_closes_the_session() -> None:
    io, client = make()
    _, value = handshake(client)
    sid = value["sid"]
    resp = client.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="4hello")
    assert resp.status_code == 400
    assert sid not in io.engine.sessions
    assert client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}").status_code == 400


def test_oversized_post_with_content_length_is_413_and_closes_session() -> None:
    io, client = make(max_http_buffer_size=100)
    _, value = handshake(client)
    sid = value["sid"]
    resp = client.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="4" + "x" * 200)
    assert resp.status_code == 413
    assert sid not in io.engine.sessions


def test_invalid_post_body_closes_session() -> None:
    io, client = make()
    _, value = handshake(client)
    sid = value["sid"]
    resp = client.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="abc")
    assert resp.status_code == 400
    assert client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}").status_code == 400


def test_server_close_reaches_a_polling_client_on_its_next_get() -> None:
    io, client = make()
    _, value = handshake(client)
    sid = value["sid"]
    conn = io.engine.sessions[sid]
    conn.send("bye")
    conn.close()
    # queued packets first, then CLOSE alone in the next response
    assert client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}").get_data() == b"4bye"
    assert client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}").get_data() == b"1"
    assert client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}").status_code == 400


def test_polling_response_carries_at_most_16_packets() -> None:
    engine = socketio_sync.EngineServer()
    client = Client(socketio_sync.WSGIApp(engine))
    _, value = handshake(client)
    sid = value["sid"]
    for i in range(20):
        engine.sessions[sid].send(str(i))
    first = client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}").get_data(as_text=True).split("\x1e")
    second = client.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}").get_data(as_text=True).split("\x1e")
    assert first == [f"4{i}" for i in range(16)]
    assert second == [f"4{i}" for i in range(16, 20)]
    engine.close_all()


def test_cors_same_origin_by_default() -> None:
    _, client = make()
    resp = client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "http://evil.example"})
    assert resp.status_code == 403
    assert resp.get_json() == {"code": 4, "message": "Forbidden"}
    resp, _ = handshake(client, Origin="http://localhost")  # werkzeug's default Host is localhost
    assert resp.status_code == 200


def test_cors_allow_list_and_preflight() -> None:
    _, client = make(cors_allowed_origins=["http://a.example"], cors_credentials=True)
    resp, _ = handshake(client, Origin="http://a.example")
    assert resp.headers["Access-Control-Allow-Origin"] == "http://a.example"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    pre = client.options("/socket.io/?EIO=4&transport=polling", headers={
        "Origin": "http://a.example", "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 204
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert client.get("/socket.io/?EIO=4&transport=polling",
                      headers={"Origin": "http://b.example"}).status_code == 403


def test_cors_any_origin_and_callable() -> None:
    _, client = make(cors_allowed_origins="*")
    resp, _ = handshake(client, Origin="http://whatever.example")
    assert resp.headers["Access-Control-Allow-Origin"] == "http://whatever.example"
    _, client = make(cors_allowed_origins=lambda origin: origin.endswith(".good"))
    handshake(client, Origin="http://x.good")
    assert client.get("/socket.io/?EIO=4&transport=polling",
                      headers={"Origin": "http://x.bad"}).status_code == 403


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        socketio_sync.Server(ping_intervall=5)  # type: ignore[call-arg]


@pytest.mark.parametrize("opts", [
    {"ping_interval": 0}, {"ping_timeout": -1}, {"transports": ("carrier-pigeon",)}, {"transports": ()},
    {"connect_timeout": 0}, {"max_http_buffer_size": 0},
])
def test_invalid_option_values(opts: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        socketio_sync.Server(**opts)


def test_raw_engine_at_engine_io_path() -> None:
    engine = socketio_sync.EngineServer()
    client = Client(socketio_sync.WSGIApp(engine, path="engine.io"))
    resp = client.get("/engine.io/?EIO=4&transport=polling")
    assert resp.get_data(as_text=True).startswith("0{")
    assert client.get("/socket.io/?EIO=4&transport=polling").status_code == 404
    engine.close_all()

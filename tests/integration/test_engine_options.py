"""The Node server's Engine.IO options against real clients: ``allow_request``, ``cookie``,
the ``initial_headers``/``headers`` hooks, HTTP compression of polling responses,
permessage-deflate and ``serve_client``. Headers and bytes are checked on the wire
(``tests.rawclient``); the official clients (Node socket.io-client, python-socketio,
the ``websockets`` library for RFC 7692) show the features work with them.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest
import socketio
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.conftest import ROOT
from tests.devservers import dev_server  # noqa: F401  (fixture)
from tests.jsclient import JS_DIR, NodeClients, require_node_clients
from tests.rawclient import EIOHttp, RawWebSocket, WSRejected, request

pytestmark = pytest.mark.integration

APP = "tests.apps.engine_options:build"
CLIENT_PKG = JS_DIR / "node_modules" / "socket.io-client"


def _stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/stats", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _sio(url: str) -> EIOHttp:
    return EIOHttp(url, path="/socket.io/")


def _open_polling(http: EIOHttp, headers: dict[str, str] | None = None) -> tuple[str, Any]:
    resp = http.get(headers=headers or {})
    assert resp.status == 200, resp
    sid = json.loads(resp.text[1:])["sid"]
    assert http.send(sid, "40").status == 200
    packets = http.poll_packets(sid)
    assert packets and str(packets[0]).startswith("40{"), packets
    return sid, resp


# -- allow_request ----------------------------------------------------------------------

def test_allow_request_refusals_on_the_wire(live_server: Any) -> None:
    srv = live_server(APP, gate=True)
    http = _sio(srv.url)
    refused = http.get()
    assert refused.status == 403
    assert refused.body == b'{"code":4,"message":"Forbidden"}'
    custom = http.get(headers={"X-Token": "custom"})
    assert (custom.status, custom.body) == (403, b'{"code":4,"message":"go away"}')
    boom = http.get("EIO=4&transport=polling&boom=1", headers={"X-Token": "letmein"})
    assert (boom.status, boom.body) == (403, b'{"code":4,"message":"Forbidden"}')  # the hook raised
    assert http.get(headers={"X-Token": "letmein"}).status == 200
    ws_url = srv.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(WSRejected) as info:
        RawWebSocket(ws_url)
    assert info.value.status == 403  # refused before any 101
    ok = RawWebSocket(ws_url, headers=["X-Token: letmein"])
    assert str(ok.recv()).startswith("0{")
    ok.ws.close()


@pytest.mark.js
@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
def test_allow_request_with_node_client(live_server: Any, node_clients: NodeClients, transports: list[str]) -> None:
    srv = live_server(APP, gate=True)
    node_clients.connect("ok", srv.url, transports=transports, extraHeaders={"x-token": "letmein"})
    assert node_clients.call("ok", "echo", "hi") == [["hi"]]
    reply = node_clients.connect("no", srv.url, transports=transports, reconnection=False, expect_error=True,
                                 extraHeaders={"x-token": "nope"})
    assert not reply["connected"] and reply["error"]["message"], reply
    node_clients.disconnect("ok")


# -- cookie and header hooks ------------------------------------------------------------

def test_cookie_and_headers_on_polling_responses(live_server: Any) -> None:
    srv = live_server(APP, cookie=True)
    http = _sio(srv.url)
    sid, handshake = _open_polling(http)
    assert handshake.header("set-cookie") == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
    assert handshake.header("x-initial") == "hello"
    assert handshake.header("x-every") == "yes"
    post = http.send(sid, '421["echo",1]')
    assert post.header("x-every") == "yes" and post.header("x-initial") is None
    assert post.header("set-cookie") is None
    poll = http.poll(sid)
    assert poll.header("x-every") == "yes" and poll.header("x-initial") is None
    assert poll.header("set-cookie") is None
    error = http.get("EIO=4&transport=polling&sid=unknown")
    assert error.status == 400 and error.header("x-every") is None  # error responses go without


def test_cookie_options_and_headers_in_the_101(live_server: Any) -> None:
    cookie = {"name": "sess", "path": "/app", "http_only": False, "same_site": "strict", "secure": True,
              "max_age": 60}
    srv = live_server(APP, cookie=cookie)
    ws = RawWebSocket(srv.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
    sid = json.loads(str(ws.recv())[1:])["sid"]
    headers = {k.lower(): v for k, v in ws.ws.getheaders().items()}
    assert headers["set-cookie"] == f"sess={sid}; Max-Age=60; Path=/app; Secure; SameSite=Strict"
    assert headers["x-initial"] == "hello" and headers["x-every"] == "yes"
    ws.ws.close()
    # The upgrade of a polling session: only the "headers" hook, no cookie.
    http = _sio(srv.url)
    sid, _ = _open_polling(http)
    up = RawWebSocket(srv.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}")
    headers = {k.lower(): v for k, v in up.ws.getheaders().items()}
    assert headers.get("x-every") == "yes"
    assert "x-initial" not in headers and "set-cookie" not in headers
    up.ws.close()


@pytest.mark.js
def test_node_client_sends_the_cookie_back(live_server: Any, node_clients: NodeClients) -> None:
    srv = live_server(APP, cookie=True)
    node_clients.connect("c", srv.url, transports=["polling"], withCredentials=True)
    info = node_clients.call("c", "transport")[0]
    assert info["transport"] == "polling"
    node_clients.call("c", "echo", "x")  # more requests, with the cookie from the handshake
    cookies = _stats(srv.url)["cookies"]
    assert f"io={info['eio_sid']}" in cookies, cookies
    # and the client upgrades through the hooks (each 101 gets its headers too)
    node_clients.connect("u", srv.url, transports=["polling", "websocket"])
    node_clients.wait_for("u", "upgrade", timeout=5)
    assert node_clients.call("u", "transport")[0]["transport"] == "websocket"
    assert _stats(srv.url)["hooked"] >= 6


# -- HTTP compression -------------------------------------------------------------------

def test_polling_responses_are_compressed_on_the_wire(live_server: Any) -> None:
    srv = live_server(APP)
    http = _sio(srv.url)
    sid, _ = _open_polling(http)
    for ack, (encoding, decode) in enumerate((("gzip", gzip.decompress), ("deflate", zlib.decompress))):
        http.send(sid, f'42{ack}["big",5000]')
        resp = http.get(http.sq(sid), headers={"Accept-Encoding": f"br;q=0.5, {encoding}"})
        assert resp.header("content-encoding") == encoding, resp
        assert resp.header("vary") == "Accept-Encoding"
        assert int(resp.header("content-length") or 0) == len(resp.body) < 1000
        assert decode(resp.body).decode() == f"43{ack}" + json.dumps(["x" * 5000], separators=(",", ":"))
    http.send(sid, '422["big",5000]')
    plain = http.poll(sid)  # no Accept-Encoding: identity
    assert plain.header("content-encoding") is None and plain.text.startswith('432["xxx')
    http.send(sid, '423["big",10]')
    small = http.get(http.sq(sid), headers={"Accept-Encoding": "gzip"})  # under the 1024-byte threshold
    assert small.header("content-encoding") is None and small.text == '433["xxxxxxxxxx"]'
    http.send(sid, '42["uncompressed",5000]')
    flagged = http.get(http.sq(sid), headers={"Accept-Encoding": "gzip"})  # compress=False on the packet
    assert flagged.header("content-encoding") is None
    assert flagged.text == '42["plain","' + "y" * 5000 + '"]'


def test_http_compression_off(live_server: Any) -> None:
    srv = live_server(APP, http_compression=False)
    http = _sio(srv.url)
    sid, _ = _open_polling(http)
    http.send(sid, '420["big",5000]')
    resp = http.get(http.sq(sid), headers={"Accept-Encoding": "gzip"})
    assert resp.header("content-encoding") is None and len(resp.body) > 5000


@pytest.mark.js
def test_official_clients_over_compressed_polling(live_server: Any, node_clients: NodeClients) -> None:
    srv = live_server(APP, http_compression={"threshold": 100})
    client = socketio.Client(reconnection=False)  # requests: Accept-Encoding: gzip, deflate
    client.connect(srv.url, transports=["polling"])
    try:
        assert client.call("big", 200_000, timeout=5) == "x" * 200_000
    finally:
        client.disconnect()
    node_clients.connect("n", srv.url, transports=["polling"])
    assert node_clients.call("n", "big", 200_000) == ["x" * 200_000]


# -- permessage-deflate -----------------------------------------------------------------

@pytest.mark.js
def test_permessage_deflate_with_node_client(live_server: Any, node_clients: NodeClients) -> None:
    srv = live_server(APP, per_message_deflate=True)
    node_clients.connect("n", srv.url, transports=["websocket"])
    info = node_clients.call("n", "transport")[0]
    # Node's client (the ws package) offers "permessage-deflate; client_max_window_bits".
    assert info["deflate"] == "permessage-deflate"
    text = "compress me " * 20_000
    assert node_clients.call("n", "echo", text) == [[text]]  # inflated by us, deflated back
    assert node_clients.call("n", "big", 100_000) == ["x" * 100_000]
    assert node_clients.call("n", "echo", "short") == [["short"]]  # under the threshold: plain frames
    # the same client over an upgrade from polling
    node_clients.connect("u", srv.url, transports=["polling", "websocket"])
    node_clients.wait_for("u", "upgrade", timeout=5)
    assert node_clients.call("u", "transport")[0]["deflate"] == "permessage-deflate"
    assert node_clients.call("u", "echo", text) == [[text]]


def _ws_url(srv: Any) -> str:
    return srv.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"


def test_permessage_deflate_negotiation_on_the_wire(live_server: Any) -> None:
    srv = live_server(APP, per_message_deflate={"threshold": 0, "server_max_window_bits": 12,
                                                "client_max_window_bits": 10})
    # websockets offers "permessage-deflate; server_max_window_bits=12; client_max_window_bits"
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    factory = ClientPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=True)
    with ws_connect(_ws_url(srv), extensions=[factory], compression=None) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10")
        assert ws.recv(timeout=5).startswith("0{")
        ws.send("40")
        assert ws.recv(timeout=5).startswith("40{")
        ws.send('421["echo","' + "abc" * 1000 + '"]')
        assert ws.recv(timeout=5) == '431[["' + "abc" * 1000 + '"]]'
    # Without the option the offer is ignored (Node's default).
    plain = live_server(APP)
    with ws_connect(_ws_url(plain), compression="deflate") as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.recv(timeout=5).startswith("0{")


def test_deflate_bomb_closes_with_1009(live_server: Any) -> None:
    srv = live_server(APP, per_message_deflate=True, max_http_buffer_size=100_000)
    with ws_connect(_ws_url(srv), compression="deflate", max_size=None) as ws:
        assert ws.recv(timeout=5).startswith("0{")
        ws.send("40")
        assert ws.recv(timeout=5).startswith("40{")
        ws.send('42["echo","' + "x" * 90_000 + '"]')  # inflates to 90 KB: fine
        ws.send("4" + "0" * 50_000_000)  # about 50 KB on the wire, 50 MB inflated
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    other = socketio.Client(reconnection=False)  # the server is fine
    other.connect(srv.url, transports=["websocket"])
    assert other.call("echo", "alive", timeout=5) == ["alive"]
    other.disconnect()


# -- serve_client -----------------------------------------------------------------------

def _require_client_pkg() -> Path:
    require_node_clients()
    return CLIENT_PKG


def test_serve_client_files(live_server: Any) -> None:
    pkg = _require_client_pkg()
    version = json.loads((pkg / "package.json").read_text())["version"]
    srv = live_server(APP, client_path=str(pkg))
    for name, kind in (("socket.io.js", "javascript"), ("socket.io.min.js", "javascript"),
                       ("socket.io.esm.min.js", "javascript"), ("socket.io.min.js.map", "json")):
        resp = request(srv.url, "GET", "/socket.io/" + name)
        assert resp.status == 200, resp
        assert resp.body == (pkg / "dist" / name).read_bytes()
        assert resp.header("content-type") == f"application/{kind}; charset=utf-8"
        assert resp.header("etag") == f'"{version}"'
        assert resp.header("cache-control") == "public, max-age=0"
    cached = request(srv.url, "GET", "/socket.io/socket.io.min.js", headers={"If-None-Match": f'W/"{version}"'})
    assert cached.status == 304 and cached.body == b""
    zipped = request(srv.url, "GET", "/socket.io/socket.io.min.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.header("content-encoding") == "gzip"
    assert gzip.decompress(zipped.body) == (pkg / "dist" / "socket.io.min.js").read_bytes()
    # other paths under /socket.io/ are still Engine.IO's
    assert request(srv.url, "GET", "/socket.io/socket.io.css").status == 400


def test_serve_client_without_the_package(live_server: Any, tmp_path: Path) -> None:
    srv = live_server(APP, client_path=str(tmp_path))
    resp = request(srv.url, "GET", "/socket.io/socket.io.js")
    assert resp.status == 404
    assert "npm install socket.io-client" in resp.text and str(tmp_path) in resp.text
    off = live_server(APP, serve_client=False, client_path=str(tmp_path))
    assert request(off.url, "GET", "/socket.io/socket.io.js").status == 400  # Engine.IO's error


@pytest.mark.js
def test_served_bundle_connects(live_server: Any) -> None:
    """The bundle as served, evaluated in Node (the ws package stands in for the browser's
    WebSocket), connects and talks to the server."""
    node = require_node_clients()
    srv = live_server(APP, client_path=str(_require_client_pkg()), per_message_deflate=True)
    script = """
        import vm from "node:vm";
        import { WebSocket } from "ws";
        globalThis.WebSocket = WebSocket;
        const url = process.argv[1];
        const res = await fetch(url + "/socket.io/socket.io.min.js");
        vm.runInThisContext(await res.text());
        const socket = globalThis.io(url, { transports: ["websocket"] });
        socket.on("connect", async () => {
          const reply = await socket.emitWithAck("echo", "from the served bundle");
          const info = await socket.emitWithAck("transport");
          console.log(JSON.stringify({ reply, info, etag: res.headers.get("etag") }));
          socket.close();
        });
        socket.on("connect_error", (e) => { console.error(e.message); process.exit(1); });
    """
    out = subprocess.run([node, "--input-type=module", "-e", script, srv.url], cwd=JS_DIR,
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["reply"] == ["from the served bundle"]
    assert result["info"]["transport"] == "websocket"
    assert result["etag"].startswith('"4.')
    assert ROOT  # the test runs from the worktree (tests/js holds the ws package)


class _RawDeflateWs:
    """Just enough of a WebSocket client to see the frame bits (RSV1) on the wire."""

    def __init__(self, srv: Any, offer: str) -> None:
        import base64
        import os
        import socket

        self.sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Extensions: {offer}\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode("latin-1")

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._read(2), "big")
        elif n == 127:
            n = int.from_bytes(self._read(8), "big")
        return b0, self._read(n)

    def send(self, payload: bytes, b0: int = 0x81) -> None:
        import os
        import struct

        mask = os.urandom(4)
        n = len(payload)
        head = bytes((b0, 0x80 | n)) if n < 126 else struct.pack("!BBH", b0, 0xFE, n)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))


def test_permessage_deflate_frames_on_the_wire(live_server: Any) -> None:
    srv = live_server(APP, per_message_deflate=True)
    ws = _RawDeflateWs(srv, "permessage-deflate; server_no_context_takeover; client_max_window_bits")
    try:
        assert "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n" in ws.head
        b0, payload = ws.recv_frame()
        assert b0 == 0x81 and payload.startswith(b"0{")  # small: not compressed
        ws.send(b"40")
        assert ws.recv_frame()[1].startswith(b"40{")
        ws.send(b'421["big",5000]')
        b0, payload = ws.recv_frame()
        assert b0 == 0xC1 and len(payload) < 200  # FIN + RSV1 + text
        inflated = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        assert inflated == b'431["' + b"x" * 5000 + b'"]'
        ws.send(b'42["uncompressed",3000]')  # the engine's "do not compress" flag
        assert ws.recv_frame() == (0x81, b'42["plain","' + b"y" * 3000 + b'"]')
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        message = b'422["echo","' + b"hello " * 500 + b'"]'
        ws.send((c.compress(message) + c.flush(zlib.Z_SYNC_FLUSH))[:-4], b0=0xC1)  # our own compressed message
        b0, payload = ws.recv_frame()
        assert b0 == 0xC1
        assert zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff") == (
            b'432[["' + b"hello " * 500 + b'"]]')
    finally:
        ws.sock.close()


@pytest.mark.parametrize("worker", ["ours", "stock"])
def test_gunicorn_workers(gunicorn_server: Any, worker: str) -> None:
    """Under our gunicorn worker everything is there; gevent-websocket's stock worker sends
    its 101 before the application runs: no permessage-deflate and no hook headers in it,
    but the connection works, and polling keeps its cookie and compression."""
    from tests.conftest import GunicornServer

    srv = gunicorn_server(f"{APP}(per_message_deflate=True, cookie=True, gate=True)",
                          worker=GunicornServer.OUR_WORKER if worker == "ours" else GunicornServer.STOCK_WORKER)
    with ws_connect(_ws_url(srv), compression="deflate", additional_headers={"X-Token": "letmein"}) as ws:
        headers = ws.response.headers
        if worker == "ours":
            assert headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
            assert headers["X-Initial"] == "hello" and headers["Set-Cookie"].startswith("io=")
        else:
            assert "Sec-WebSocket-Extensions" not in headers and "X-Initial" not in headers
        assert ws.recv(timeout=5).startswith("0{")
        ws.send("40")
        assert ws.recv(timeout=5).startswith("40{")
        ws.send('421["echo","' + "abc" * 1000 + '"]')
        assert ws.recv(timeout=5) == '431[["' + "abc" * 1000 + '"]]'
    http = _sio(srv.url)
    sid, handshake = _open_polling(http, headers={"X-Token": "letmein"})
    assert handshake.header("set-cookie") == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
    http.send(sid, '420["big",5000]')
    assert http.get(http.sq(sid), headers={"Accept-Encoding": "gzip"}).header("content-encoding") == "gzip"
    if worker == "stock":  # allow_request still refuses, by closing the WebSocket after the 101
        with ws_connect(_ws_url(srv)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
            assert info.value.rcvd.reason == "Forbidden"


def test_flask_run_carries_the_options(dev_server: Any) -> None:
    """``flask run`` (a threaded server: the 101 is written by hand on the taken socket)
    negotiates permessage-deflate and sets the cookie in it too."""
    from tests.devservers import flask_run

    srv = flask_run(dev_server, "tests.apps.flask_threads_app:build(per_message_deflate=True, cookie=True)")
    with ws_connect(_ws_url(srv), compression="deflate") as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
        assert ws.response.headers["Set-Cookie"].startswith("io=")
        assert ws.recv(timeout=5).startswith("0{")
        ws.send("40")
        assert ws.recv(timeout=5).startswith("40{")
        ws.send('421["echo","' + "abc" * 1000 + '"]')
        assert ws.recv(timeout=5).startswith('431[')

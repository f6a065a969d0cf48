"""Pure parts of the Engine.IO options: permessage-deflate negotiation and codec, cookie
serialisation, Accept-Encoding, the hooks' header checks, the client bundle lookup."""
from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Frame, Opcode

from socketio_sync.wsgi.client_bundle import CLIENT_FILE, ClientBundle, find_client_dist
from socketio_sync.wsgi.deflate import (
    DeflateOptions, PerMessageDeflate, deflate_options, negotiate, parse_extensions,
)
from socketio_sync.wsgi.engine import Outgoing
from socketio_sync.wsgi.http_options import (
    CookieOptions, choose_encoding, clean_headers, compress_body, cookie_options, http_compression_options,
    run_allow_request, run_header_hook, serialize_cookie,
)
from socketio_sync.wsgi.websocket import frame_message, frame_message_for

ON = DeflateOptions()


# -- negotiation ------------------------------------------------------------------------

def test_parse_extensions() -> None:
    assert parse_extensions('permessage-deflate; client_max_window_bits, foo; bar="1", x-webkit') == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("foo", [("bar", "1")]),
        ("x-webkit", []),
    ]
    with pytest.raises(ValueError):
        parse_extensions('permessage-deflate; a="1')
    with pytest.raises(ValueError):
        parse_extensions("permessage-deflate; a=b c")


@pytest.mark.parametrize("offer, options, header", [
    # what browsers and Node's ws send
    ("permessage-deflate; client_max_window_bits", ON, "permessage-deflate"),
    ("permessage-deflate", ON, "permessage-deflate"),
    # the client asks us not to keep context / to use a smaller window: we must comply
    ("permessage-deflate; server_no_context_takeover", ON, "permessage-deflate; server_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=10", ON, "permessage-deflate; server_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=\"11\"", ON, "permessage-deflate; server_max_window_bits=11"),
    # our own settings
    ("permessage-deflate", DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True),
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("permessage-deflate", DeflateOptions(server_max_window_bits=9), "permessage-deflate; server_max_window_bits=9"),
    ("permessage-deflate; server_max_window_bits=12", DeflateOptions(server_max_window_bits=10),
     "permessage-deflate; server_max_window_bits=10"),
    ("permessage-deflate; client_max_window_bits", DeflateOptions(client_max_window_bits=9),
     "permessage-deflate; client_max_window_bits=9"),
    ("permessage-deflate; client_max_window_bits=11", DeflateOptions(client_max_window_bits=13),
     "permessage-deflate; client_max_window_bits=11"),
    # client_max_window_bits never goes back unoffered (RFC 7692 7.1.2.2)
    ("permessage-deflate", DeflateOptions(client_max_window_bits=9), "permessage-deflate"),
    # the first acceptable offer wins
    ("permessage-deflate; bogus, permessage-deflate; server_no_context_takeover",
     ON, "permessage-deflate; server_no_context_takeover"),
    ("x-other, permessage-deflate", ON, "permessage-deflate"),
])
def test_negotiate_accepts(offer: str, options: DeflateOptions, header: str) -> None:
    agreed = negotiate(offer, options)
    assert agreed is not None and agreed.header == header


@pytest.mark.parametrize("offer", [
    "permessage-deflate; unknown_param",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  # repeated
    "permessage-deflate; server_no_context_takeover=1",  # takes no value
    "permessage-deflate; server_max_window_bits",  # needs a value
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=010",
    "permessage-deflate; server_max_window_bits=8",  # zlib cannot write with 8: declined
    "x-webkit-deflate-frame",
    'permessage-deflate; a="',
    "",
])
def test_negotiate_declines(offer: str) -> None:
    assert negotiate(offer, ON) is None


def test_negotiate_off_by_default() -> None:
    assert negotiate("permessage-deflate", deflate_options(False)) is None
    assert negotiate("permessage-deflate", deflate_options(None)) is None
    assert deflate_options(True) == ON
    assert deflate_options({"threshold": 0}) == DeflateOptions(threshold=0)
    with pytest.raises(TypeError):
        deflate_options({"treshold": 0})
    with pytest.raises(ValueError):
        deflate_options({"server_max_window_bits": 8})
    with pytest.raises(TypeError):
        deflate_options("yes")


# -- the codec --------------------------------------------------------------------------

def _client_deflate(data: bytes, compressor: Any = None) -> bytes:
    c = compressor or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def _codec(**opts: Any) -> PerMessageDeflate:
    agreed = negotiate("permessage-deflate", DeflateOptions(**opts))
    assert agreed is not None
    return PerMessageDeflate(agreed)


def test_inflate_whole_and_fragmented_messages() -> None:
    codec = _codec()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = Frame(Opcode.TEXT, _client_deflate(b"hello hello hello", compressor), rsv1=True)
    out = codec.decode(first, max_size=1000)
    assert (out.data, out.rsv1) == (b"hello hello hello", False)
    # context takeover: the next message refers back to the first
    second = _client_deflate(b"hello hello hello again", compressor)
    head = codec.decode(Frame(Opcode.TEXT, second[:5], fin=False, rsv1=True), max_size=1000)
    tail = codec.decode(Frame(Opcode.CONT, second[5:]), max_size=1000)
    assert head.data + tail.data == b"hello hello hello again"
    # uncompressed messages pass through untouched
    plain = Frame(Opcode.BINARY, b"\x00raw")
    assert codec.decode(plain, max_size=1000) is plain
    ping = Frame(Opcode.PING, b"p")
    assert codec.decode(ping, max_size=1000) is ping


def test_inflate_limit_and_errors() -> None:
    bomb = _client_deflate(b"0" * 10_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooBig):
        _codec().decode(Frame(Opcode.TEXT, bomb, rsv1=True), max_size=1_000_000)
    exact = _client_deflate(b"a" * 1000)
    assert len(_codec().decode(Frame(Opcode.TEXT, exact, rsv1=True), max_size=1000).data) == 1000
    with pytest.raises(PayloadTooBig):
        _codec().decode(Frame(Opcode.TEXT, exact, rsv1=True), max_size=999)
    with pytest.raises(ProtocolError):
        _codec().decode(Frame(Opcode.TEXT, b"\xff\xff\xff not deflate", rsv1=True), max_size=1000)
    codec = _codec()
    codec.decode(Frame(Opcode.TEXT, _client_deflate(b"abc")[:2], fin=False, rsv1=True), max_size=1000)
    with pytest.raises(ProtocolError):
        codec.decode(Frame(Opcode.CONT, b"x", rsv1=True), max_size=1000)


def _payload(frame: bytes) -> bytes:
    """The payload of one unmasked server frame (checked to be the whole of ``frame``)."""
    n = frame[1] & 0x7F
    head = 2 if n < 126 else 4 if n == 126 else 10
    if n >= 126:
        n = int.from_bytes(frame[2:head], "big")
    assert len(frame) == head + n
    return frame[head:]


def _inflate(payload: bytes, d: Any = None) -> bytes:
    d = d or zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")  # type: ignore[no-any-return]


def test_deflate_outgoing_with_and_without_context_takeover() -> None:
    text = "a fairly compressible message " * 100
    codec = _codec()
    d = zlib.decompressobj(-15)
    first = frame_message_for(text, codec)
    assert first[0] == 0xC1  # FIN + RSV1 + text
    assert len(first) < len(text) // 5 and _inflate(_payload(first), d) == text.encode()
    second = frame_message_for(text, codec)
    assert len(second) < len(first)  # the window remembers the first message
    assert _inflate(_payload(second), d) == text.encode()
    assert codec.shareable is None
    stateless = _codec(server_no_context_takeover=True)
    assert frame_message_for(text, stateless) == frame_message_for(text, stateless)
    assert stateless.shareable is not None
    # under the threshold: an ordinary frame
    assert frame_message_for("short", codec) == frame_message("short")
    assert frame_message_for(b"\x01" * 2000, _codec(threshold=0))[0] == 0xC2


def test_outgoing_frames_shared_or_per_connection() -> None:
    class FakeWs:
        def __init__(self, deflate: Any) -> None:
            self.deflate = deflate

    out = Outgoing(['2["ev","' + "z" * 3000 + '"]'])
    assert out.frames_for(FakeWs(None)) == out.frames()
    a, b = FakeWs(_codec(server_no_context_takeover=True)), FakeWs(_codec(server_no_context_takeover=True))
    assert out.frames_for(a) is out.frames_for(b)  # built once for both
    assert _inflate(_payload(out.frames_for(a))) == b"4" + out.items[0].encode()  # type: ignore[union-attr]
    flagged = Outgoing(out.items, compress=False)
    assert flagged.frames_for(a) == out.frames()


# -- HTTP options -----------------------------------------------------------------------

def test_cookie_serialization() -> None:
    assert serialize_cookie("abc", cookie_options(True)) == "io=abc; Path=/; HttpOnly; SameSite=Lax"  # type: ignore[arg-type]
    opts = cookie_options({"name": "s", "path": False, "same_site": True, "secure": True, "max_age": 3600.7,
                           "domain": "example.com"})
    assert opts == CookieOptions(name="s", path=None, http_only=False, same_site=True, secure=True,
                                 max_age=3600.7, domain="example.com")
    assert serialize_cookie("x-1_", opts) == "s=x-1_; Max-Age=3600; Domain=example.com; Secure; SameSite=Strict"
    assert serialize_cookie("v", cookie_options({"same_site": None, "http_only": False})) == "io=v; Path=/"  # type: ignore[arg-type]
    assert cookie_options(False) is None and cookie_options(None) is None
    for bad in ({"name": "a b"}, {"path": "/;x"}, {"same_site": "sometimes"}, {"max_age": "1"}):
        with pytest.raises(ValueError):
            cookie_options(bad)
    with pytest.raises(TypeError):
        cookie_options({"httponly": True})
    with pytest.raises(ValueError):
        serialize_cookie("a;b", CookieOptions())


@pytest.mark.parametrize("header, chosen", [
    (None, None), ("", None), ("identity", None), ("br", None),
    ("gzip", "gzip"), ("deflate", "deflate"), ("gzip, deflate", "gzip"), ("deflate, gzip", "gzip"),
    ("gzip;q=0.5, deflate", "deflate"), ("gzip;q=0, deflate;q=0", None), ("*", "gzip"),
    ("*;q=0.1, gzip;q=0", "deflate"), ("GZIP ; Q=1", "gzip"), ("gzip;q=bad, deflate", "deflate"),
])
def test_choose_encoding(header: str | None, chosen: str | None) -> None:
    assert choose_encoding(header) == chosen


def test_compression_options_and_bodies() -> None:
    assert http_compression_options(True).threshold == 1024  # type: ignore[union-attr]
    assert http_compression_options({"threshold": 10}).threshold == 10  # type: ignore[union-attr]
    assert http_compression_options(False) is None
    with pytest.raises(TypeError):
        http_compression_options({"thresold": 1})
    data = b"0" + b"x" * 5000
    assert gzip.decompress(compress_body(data, "gzip")) == data
    assert zlib.decompress(compress_body(data, "deflate")) == data
    assert compress_body(data, "gzip") == compress_body(data, "gzip")  # no timestamp


def test_allow_request_verdicts(caplog: pytest.LogCaptureFixture) -> None:
    assert run_allow_request(lambda env: True, {}) is None
    assert run_allow_request(lambda env: False, {}) == "Forbidden"
    assert run_allow_request(lambda env: None, {}) == "Forbidden"
    assert run_allow_request(lambda env: "not today", {}) == "not today"
    assert run_allow_request(lambda env: 1, {}) == "Forbidden"  # not a bool: refused, logged

    def boom(env: dict[str, Any]) -> bool:
        raise RuntimeError("bug")

    assert run_allow_request(boom, {}) == "Forbidden"
    assert "allow_request raised" in caplog.text


def test_header_hooks_are_checked(caplog: pytest.LogCaptureFixture) -> None:
    headers: list[tuple[str, str]] = [("Set-Cookie", "io=1")]
    run_header_hook("headers", lambda h, env: h.extend([("X-A", "1"), ("X-Num", 2)]), headers, {})  # type: ignore[arg-type]
    assert headers == [("Set-Cookie", "io=1"), ("X-A", "1"), ("X-Num", "2")]
    run_header_hook("headers", lambda h, env: h.append(("X-Evil", "a\r\nSet-Cookie: x")), headers, {})
    assert ("X-Evil", "a\r\nSet-Cookie: x") not in headers and "invalid header" in caplog.text

    def broken(h: list[Any], env: Any) -> None:
        h.append(("X-Half", "1"))
        raise KeyError("oops")

    before = list(headers)
    run_header_hook("initial_headers", broken, headers, {})
    assert headers == before  # a failing hook adds nothing
    assert clean_headers([("bad name", "v"), "junk", ("Ok", "v")], "t") == [("Ok", "v")]


# -- client bundle ----------------------------------------------------------------------

def test_client_file_names() -> None:
    for name in ("socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.msgpack.min.js",
                 "socket.io.js.map", "socket.io.min.js.map"):
        assert CLIENT_FILE.fullmatch(name), name
    for name in ("socket.io.css", "../socket.io.js", "socket.io.jsx", "engine.io.js"):
        assert not CLIENT_FILE.fullmatch(name), name


def _fake_package(root: Path, version: str = "9.9.9") -> Path:
    dist = root / "node_modules" / "socket.io-client" / "dist"
    dist.mkdir(parents=True)
    (dist / "socket.io.js").write_text("// bundle " * 200)
    (dist.parent / "package.json").write_text(json.dumps({"version": version}))
    return dist


def test_find_client_dist(tmp_path: Path) -> None:
    dist = _fake_package(tmp_path)
    nested = tmp_path / "app" / "sub"
    nested.mkdir(parents=True)
    assert find_client_dist(start=nested) == dist
    assert find_client_dist(dist.parent) == dist
    assert find_client_dist(dist) == dist
    assert find_client_dist(tmp_path / "node_modules") == dist
    assert find_client_dist(tmp_path / "app") is None


def test_client_bundle_responses(tmp_path: Path) -> None:
    dist = _fake_package(tmp_path)
    bundle = ClientBundle(dist.parent)
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen[:] = [status, dict(headers)]

    body = b"".join(bundle("socket.io.js", {"REQUEST_METHOD": "GET"}, start_response))
    assert seen[0] == "200 OK" and body == (dist / "socket.io.js").read_bytes()
    assert seen[1]["ETag"] == '"9.9.9"'
    assert list(bundle("socket.io.js", {"REQUEST_METHOD": "GET", "HTTP_IF_NONE_MATCH": '"1", W/"9.9.9"'},
                       start_response)) == []
    assert seen[0] == "304 Not Modified"
    body = b"".join(bundle("socket.io.js", {"REQUEST_METHOD": "GET", "HTTP_ACCEPT_ENCODING": "deflate"},
                           start_response))
    assert seen[1]["Content-Encoding"] == "deflate" and zlib.decompress(body) == (dist / "socket.io.js").read_bytes()
    b"".join(bundle("socket.io.min.js", {"REQUEST_METHOD": "GET"}, start_response))
    assert seen[0] == "404 Not Found"
    b"".join(bundle("socket.io.js", {"REQUEST_METHOD": "POST"}, start_response))
    assert seen[0].startswith("405")
    missing = b"".join(ClientBundle(tmp_path / "nothing")("socket.io.js", {}, start_response))
    assert seen[0] == "404 Not Found" and b"npm install socket.io-client" in missing


def test_raw_socket_101_carries_headers_and_deflate() -> None:
    """The 101 written by hand for servers that only expose their socket (flask run,
    runserver): the hooks' headers and the extension go in it."""
    import socket

    from socketio_sync.wsgi.runtime import upgrade_raw_socket

    a, b = socket.socketpair()
    try:
        environ = {"HTTP_SEC_WEBSOCKET_VERSION": "13", "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ=="}
        agreed = negotiate("permessage-deflate", ON)
        ws = upgrade_raw_socket(environ, a, max_message_size=1000,
                                headers=[("X-A", "1"), ("Sec-WebSocket-Extensions", "permessage-deflate")],
                                deflate=agreed)
        head = b.recv(4096)
        assert head == (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-A: 1\r\n"
                        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
        assert ws.deflate is not None and ws.deflate.params == agreed
    finally:
        a.close()
        b.close()

"""The WebSocket reader's fast path (whole, final, masked data frames parsed without the
``websockets`` protocol) must give exactly what the protocol gives, for any mix of frames
and any split of the byte stream. Client frames come from ``websockets``' own client-side
protocol, an independent implementation."""
from __future__ import annotations

from typing import Any

import gevent
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Opcode
from websockets.protocol import CLIENT, State
from websockets.protocol import Protocol as WsProtocol

from socketio_sync.wsgi import websocket as wsmod
from socketio_sync.wsgi.websocket import ServerWebSocket, _carry_after, _simple_messages


class FakeSocket:
    """recv() hands out pre-cut chunks, then EOF; what the server writes is kept."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent = bytearray()

    def recv(self, n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def shutdown(self, how: int) -> None:
        pass

    def gettimeout(self) -> Any:
        return None

    def settimeout(self, t: Any) -> None:
        pass


def client_bytes(items: list[tuple[str, Any]]) -> bytes:
    proto = WsProtocol(CLIENT, state=State.OPEN)
    for kind, value in items:
        if kind == "text":
            proto.send_text(value.encode("utf-8"))
        elif kind == "binary":
            proto.send_binary(value)
        elif kind == "ping":
            proto.send_ping(value)
        elif kind == "fragmented":
            first, rest = value
            proto.send_text(first.encode("utf-8"), fin=False)
            proto.send_continuation(rest.encode("utf-8"), fin=True)
    return b"".join(proto.data_to_send())


def expected(items: list[tuple[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for kind, value in items:
        if kind in ("text", "binary"):
            out.append(value)
        elif kind == "fragmented":
            out.append(value[0] + value[1])
    return out


def read_all(data: bytes, cuts: list[int], max_size: int = 1 << 20) -> list[Any]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in zip(points, points[1:]) if b > a]
    ws = ServerWebSocket(FakeSocket(chunks), None, max_message_size=max_size)
    got = []
    while True:
        msg = ws.receive()
        if msg is None:
            return got
        got.append(msg)


texts = st.text(max_size=300)
sizes = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000])
binaries = st.one_of(st.binary(max_size=300), sizes.map(lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256)))
items = st.lists(st.one_of(
    st.tuples(st.just("text"), texts),
    st.tuples(st.just("binary"), binaries),
    st.tuples(st.just("ping"), st.binary(max_size=20)),
    st.tuples(st.just("fragmented"), st.tuples(texts, texts)),
), max_size=12)


@settings(max_examples=300, deadline=None)
@given(items=items, cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=8))
def test_any_frames_any_split_same_messages(items: list[tuple[str, Any]], cuts: list[int]) -> None:
    data = client_bytes(items)
    assert read_all(data, cuts) == expected(items)


def test_the_fast_path_takes_plain_frames_and_leaves_the_rest() -> None:
    one = client_bytes([("text", "héllo"), ("binary", b"\x00\xff")])
    assert _simple_messages(one, 1000) == ["héllo", b"\x00\xff"]
    assert _simple_messages(one[:-1], 1000) is None  # a partial frame
    assert _simple_messages(client_bytes([("ping", b"x")]), 1000) is None
    assert _simple_messages(client_bytes([("text", "x" * 200)]), 100) is None  # over the limit
    unmasked = bytes([0x81, 0x02]) + b"hi"
    assert _simple_messages(unmasked, 1000) is None  # the protocol refuses it
    bad_utf8 = bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28])
    assert _simple_messages(bad_utf8, 1000) is None  # the protocol path closes with 1007


def test_carry_tracks_frames_cut_across_reads() -> None:
    data = client_bytes([("binary", b"a" * 300), ("text", "b")])
    assert _carry_after(0, data) == 0
    assert _carry_after(0, data[:100]) == len(data) - 100 - len(client_bytes([("text", "b")]))
    assert _carry_after(0, data[:1]) == -1  # a cut header: the length is unknown


def test_limits_and_protocol_errors_still_apply_on_the_fast_path() -> None:
    big = client_bytes([("text", "x" * 2000)])
    ws = ServerWebSocket(FakeSocket([big]), None, max_message_size=1000)
    try:
        ws.receive()
    except wsmod.MessageTooBig:
        pass
    else:
        raise AssertionError("a message over the limit was accepted")
    assert ws.close_code == 1009
    unmasked = bytes([0x81, 0x02]) + b"hi"
    ws = ServerWebSocket(FakeSocket([unmasked]), None, max_message_size=1000)
    assert ws.receive() is None  # a protocol error ends the connection
    bad_utf8 = bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28])
    ws = ServerWebSocket(FakeSocket([bad_utf8]), None, max_message_size=1000)
    assert ws.receive() is None
    assert ws.close_code == 1007


def test_a_close_frame_ends_reading_after_the_messages_before_it() -> None:
    proto = WsProtocol(CLIENT, state=State.OPEN)
    proto.send_text(b"last words")
    proto.send_close(1000, "bye")
    data = b"".join(proto.data_to_send())
    ws = ServerWebSocket(FakeSocket([data]), None, max_message_size=1000)
    assert ws.receive() == "last words"
    assert ws.receive() is None
    assert ws.close_code == 1000
    gevent.sleep(0.01)  # the fake socket is written by the drain greenlet
    assert ws.sock.sent[:1] == bytes([0x80 | Opcode.CLOSE])  # the server answered the close

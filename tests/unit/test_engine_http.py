"""The engine's HTTP helpers that see raw client input: body reading, echoed headers
and the WebSocket handshake check (findings of the live fuzzer, issue #5)."""
from __future__ import annotations

import io

import pytest

from socketio_sync.wsgi import engine
from socketio_sync.wsgi.engine import HandshakeError
from socketio_sync.wsgi.handler import websocket_accept

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


class _Dies(io.BytesIO):
    """A reader whose client goes away part-way (gevent raises OSError then)."""

    def read(self, n: int = -1) -> bytes:
        raise OSError("unexpected end of file while parsing chunked data")


def test_body_shorter_than_its_content_length_is_truncated_not_a_crash():
    env = {"wsgi.input": io.BytesIO(b"42["), "CONTENT_LENGTH": "100"}
    with pytest.raises(engine._Truncated):
        engine._read_body(env, 1000)


def test_body_whose_reader_fails_is_truncated():
    with pytest.raises(engine._Truncated):
        engine._read_body({"wsgi.input": _Dies()}, 1000)
    with pytest.raises(engine._Truncated):
        engine._read_body({"wsgi.input": _Dies(), "CONTENT_LENGTH": "5"}, 1000)


def test_body_limits_and_lengths():
    assert engine._read_body({"wsgi.input": io.BytesIO(b"hello"), "CONTENT_LENGTH": "5"}, 10) == b"hello"
    assert engine._read_body({"wsgi.input": io.BytesIO(b"hello")}, 10) == b"hello"
    with pytest.raises(engine._TooLarge):
        engine._read_body({"wsgi.input": io.BytesIO(b"x" * 11)}, 10)
    with pytest.raises(engine._TooLarge):
        engine._read_body({"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "11"}, 10)
    for bad in ("-1", "abc"):
        with pytest.raises(engine._Refuse):
            engine._read_body({"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": bad}, 10)


def test_echoed_request_header_list_is_unfolded_and_stripped_of_non_tokens():
    assert engine._header_list("content-type\r\n x-folded") == "content-type x-folded"
    assert engine._header_list("a,\tb") == "a, b"
    assert engine._header_list("x\x00y\"z") == "xyz"
    assert engine._header_list(None) == ""
    assert len(engine._header_list("a" * 5000)) == 1024


def _ws_env(**extra: str) -> dict[str, str]:
    env = {"HTTP_SEC_WEBSOCKET_VERSION": "13", "HTTP_SEC_WEBSOCKET_KEY": KEY}
    env.update(extra)
    return env


def test_websocket_handshake_accept_value():
    # RFC 6455 section 1.3's example
    assert websocket_accept(_ws_env()) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert websocket_accept(_ws_env(CONTENT_LENGTH="0")) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("extra", [{"CONTENT_LENGTH": "5"}, {"HTTP_TRANSFER_ENCODING": "chunked"}])
def test_websocket_handshake_with_a_body_is_refused(extra):
    with pytest.raises(HandshakeError, match="body"):
        websocket_accept(_ws_env(**extra))

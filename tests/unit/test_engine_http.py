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


def test_malformed_header_blocks_get_400_and_an_info_line_not_an_error(caplog, capfd):
    """pywsgi parses headers with http.client, which raises HTTPException (not a
    ValueError) past 100 header lines; pywsgi then printed a traceback and an ERROR line
    per request (found by the live fuzzer). Ours: 400 and one INFO line, as for the
    other malformed requests."""
    import logging

    import gevent
    from gevent import socket  # the server runs in this thread's hub

    from socketio_sync.wsgi.serving import make_server

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = make_server(app, "127.0.0.1", 0)
    server.start()
    try:
        requests = {
            "101 headers": b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n",
            "a bad request line": b"GET\r\n\r\n",
            "a negative length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            "a one-number version": b"GET / HTTP/1\r\nHost: x\r\n\r\n",  # IndexError in pywsgi
        }
        with caplog.at_level(logging.INFO, logger="socketio_sync"):
            for what, raw in requests.items():
                with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
                    sock.sendall(raw)
                    reply = b""
                    while chunk := sock.recv(4096):
                        reply += chunk
                assert reply.startswith(b"HTTP/1.1 400 "), (what, reply[:100])
            gevent.sleep(0.05)
    finally:
        server.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]
    assert sum("bad HTTP request" in r.getMessage() for r in caplog.records) == len(requests)
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_gone_before_its_400_is_not_a_traceback(caplog, capfd):
    """pywsgi writes the 400 for a malformed request itself; when the client has already
    closed, that write raised BrokenPipeError out of the handler, and gevent printed it."""
    import logging

    from gevent import socket

    from socketio_sync.wsgi.serving import make_server

    server = make_server(lambda environ, start_response: [], "127.0.0.1", 0)
    ours, theirs = socket.socketpair()
    theirs.sendall(b"GET\r\n\r\n")  # malformed: pywsgi answers 400 itself
    theirs.close()  # gone: writing the 400 raises EPIPE
    handler = server.handler_class(ours, ("127.0.0.1", 1), server)
    with caplog.at_level(logging.DEBUG, logger="socketio_sync"):
        handler.handle()
    ours.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("bad HTTP request" in m for m in messages), messages
    assert any("gone" in m and "BrokenPipeError" in m for m in messages), messages
    assert "Traceback" not in capfd.readouterr().err


"""Small raw Engine.IO / Socket.IO clients for protocol tests.

Nothing here knows about socketio_sync: the tests talk to the server over the wire
exactly like the official JavaScript compliance suites do.

* HTTP long-polling on :mod:`http.client` (one fresh connection per request, so
  concurrent requests are really concurrent and nothing is pooled behind our back).
* WebSocket on the ``websocket-client`` package, text and binary frames, every read
  with a timeout.
* Payloads are split on the record separator ``"\\x1e"``; ``b``-prefixed parts are
  base64 binary packets.

Every blocking call has a timeout (a few seconds by default), so a server that
never answers makes the test fail instead of hanging.
"""
from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import websocket  # websocket-client

SEP = "\x1e"
DEFAULT_TIMEOUT = 5.0

# Engine.IO error codes (the JSON body of a 400 response)
UNKNOWN_TRANSPORT = 0
UNKNOWN_SID = 1
BAD_HANDSHAKE_METHOD = 2
BAD_REQUEST = 3
FORBIDDEN = 4
UNSUPPORTED_PROTOCOL_VERSION = 5
ERROR_MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


# --------------------------------------------------------------------------- payloads

def decode_payload(body: str) -> list[str | bytes]:
    """Split a long-polling body into packets; ``b<base64>`` parts become bytes."""
    out: list[str | bytes] = []
    for part in body.split(SEP):
        if part.startswith("b"):
            out.append(base64.b64decode(part[1:]))
        else:
            out.append(part)
    return out


def encode_payload(packets: Iterable[str | bytes]) -> str:
    parts = []
    for p in packets:
        if isinstance(p, bytes):
            parts.append("b" + base64.b64encode(p).decode("ascii"))
        else:
            parts.append(p)
    return SEP.join(parts)


# --------------------------------------------------------------------------- HTTP

@dataclass
class Response:
    status: int
    headers: dict[str, str]          # lower-cased names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def __repr__(self) -> str:  # short, useful in assertion messages
        return f"<Response {self.status} headers={self.headers!r} body={self.body[:300]!r}>"


def _host_port(base_url: str) -> tuple[str, int]:
    u = urlsplit(base_url)
    return u.hostname or "127.0.0.1", u.port or 80


def request(base_url: str, method: str, target: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Response:
    """One HTTP request on a fresh connection. ``target`` is the path + query string."""
    host, port = _host_port(base_url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = dict(headers or {})
        if body is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "text/plain;charset=UTF-8"
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


class EIOHttp:
    """Polling helper bound to one server URL and one path (``/engine.io/`` or ``/socket.io/``)."""

    def __init__(self, base_url: str, path: str = "/engine.io/", timeout: float = DEFAULT_TIMEOUT):
        self.base_url = base_url
        self.path = path
        self.timeout = timeout

    def target(self, query: str) -> str:
        return f"{self.path}?{query}"

    def get(self, query: str = "EIO=4&transport=polling", **kw: Any) -> Response:
        kw.setdefault("timeout", self.timeout)
        return request(self.base_url, "GET", self.target(query), **kw)

    def post(self, query: str, body: bytes | str | None, **kw: Any) -> Response:
        kw.setdefault("timeout", self.timeout)
        return request(self.base_url, "POST", self.target(query), body=body, **kw)

    def method(self, method: str, query: str, body: bytes | str | None = None, **kw: Any) -> Response:
        kw.setdefault("timeout", self.timeout)
        return request(self.base_url, method, self.target(query), body=body, **kw)

    # -- session helpers
    def handshake(self) -> dict[str, Any]:
        r = self.get("EIO=4&transport=polling")
        assert r.status == 200, r
        assert r.text.startswith("0"), r
        return json.loads(r.text[1:])

    def open(self) -> str:
        """initLongPollingSession(): returns the sid."""
        return self.handshake()["sid"]

    def sq(self, sid: str, extra: str = "") -> str:
        return f"EIO=4&transport=polling&sid={sid}{extra}"

    def poll(self, sid: str, timeout: float | None = None, extra: str = "") -> Response:
        return self.get(self.sq(sid, extra), timeout=timeout or self.timeout)

    def send(self, sid: str, body: bytes | str) -> Response:
        return self.post(self.sq(sid), body)

    def poll_packets(self, sid: str, timeout: float | None = None) -> list[str | bytes]:
        r = self.poll(sid, timeout)
        assert r.status == 200, r
        return decode_payload(r.text)


def in_thread(fn: Callable[..., Any], *args: Any, **kw: Any) -> Future:
    """Run ``fn`` in a daemon thread; ``.result(timeout)`` to collect (re-raises errors)."""
    fut: Future = Future()

    def run() -> None:
        try:
            fut.set_result(fn(*args, **kw))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            fut.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return fut


@dataclass
class RawHttpResult:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    server_closed: bool = False      # we saw EOF from the server
    error: str | None = None         # connection reset etc.
    raw: bytes = b""


def _parse_raw_response(raw: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, {}, b""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2:]
        return status, headers, body
    if "content-length" in headers:
        return status, headers, rest[: int(headers["content-length"])]
    return status, headers, rest


def raw_http(base_url: str, chunks: Iterable[bytes], timeout: float = DEFAULT_TIMEOUT,
             read_until_eof: bool = True, chunk_delay: float = 0.0) -> RawHttpResult:
    """Write raw bytes on a TCP connection and read the answer.

    With ``read_until_eof`` the result tells whether the server closed the connection
    within ``timeout`` (``server_closed``); otherwise reading stops once one complete
    response (by Content-Length / chunked terminator) has arrived.
    """
    host, port = _host_port(base_url)
    sock = socket.create_connection((host, port), timeout=timeout)
    res = RawHttpResult(status=None)
    raw = b""
    try:
        try:
            for chunk in chunks:
                # stop writing as soon as the server has answered (or closed): an early
                # 413 must not be lost to a reset caused by bytes it never read
                readable, _, _ = select.select([sock], [], [], chunk_delay)
                if readable:
                    break
                sock.sendall(chunk)
        except OSError as exc:  # the server may answer early and close
            res.error = f"send: {exc!r}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            except OSError as exc:
                res.error = (res.error or "") + f" recv: {exc!r}"
                res.server_closed = True
                break
            if not data:
                res.server_closed = True
                break
            raw += data
            if not read_until_eof and _complete(raw):
                break
    finally:
        sock.close()
    res.raw = raw
    res.status, res.headers, res.body = _parse_raw_response(raw)
    return res


def _complete(raw: bytes) -> bool:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    _, headers, _ = _parse_raw_response(raw)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return rest.endswith(b"0\r\n\r\n")
    if "content-length" in headers:
        return len(rest) >= int(headers["content-length"])
    return False


# --------------------------------------------------------------------------- WebSocket

class WSClosed(AssertionError):
    """The WebSocket was closed while the test expected a message."""


class WSTimeout(AssertionError):
    """Nothing arrived on the WebSocket within the timeout."""


class WSRejected(Exception):
    """The WebSocket handshake was refused (HTTP status instead of 101)."""

    def __init__(self, status: int | None, detail: str):
        super().__init__(f"WebSocket handshake rejected: status={status} {detail}")
        self.status = status


class RawWebSocket:
    """A WebSocket client that sees every Engine.IO packet as-is.

    ``recv`` returns ``str`` for text frames and ``bytes`` for binary frames. Reads
    always time out; a closed connection raises :class:`WSClosed`.
    """

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, headers: list[str] | None = None):
        self.url = url
        self.closed = False
        self.close_code: int | None = None
        self.log: list[str | bytes] = []          # every data frame received, for error messages
        try:
            self.ws = websocket.create_connection(url, timeout=timeout, header=headers or [],
                                                  enable_multithread=True)
        except websocket.WebSocketBadStatusException as exc:
            raise WSRejected(exc.status_code, str(exc)) from exc
        except (websocket.WebSocketException, OSError) as exc:
            raise WSRejected(None, repr(exc)) from exc

    # -- sending
    def send(self, data: str | bytes) -> None:
        """Send a text or binary frame. Raises :class:`WSClosed` if the connection is gone."""
        try:
            if isinstance(data, (bytes, bytearray)):
                self.ws.send_binary(bytes(data))
            else:
                self.ws.send(data)
        except (websocket.WebSocketConnectionClosedException, OSError) as exc:
            self.closed = True
            raise WSClosed(f"send failed, connection closed: {exc!r}") from exc

    def try_send(self, data: str | bytes) -> bool:
        """Send, returning False instead of raising when the connection is already closed."""
        try:
            self.send(data)
            return True
        except WSClosed:
            return False

    # -- receiving
    def recv(self, timeout: float = 3.0) -> str | bytes:
        if self.closed:
            raise WSClosed(f"connection already closed (code {self.close_code}); got {self.log!r}")
        self.ws.settimeout(timeout)
        try:
            opcode, data = self.ws.recv_data()
        except websocket.WebSocketTimeoutException as exc:
            raise WSTimeout(f"no message within {timeout}s; received so far: {self.log!r}") from exc
        except socket.timeout as exc:
            raise WSTimeout(f"no message within {timeout}s; received so far: {self.log!r}") from exc
        except (websocket.WebSocketConnectionClosedException, OSError,
                websocket.WebSocketProtocolException, websocket.WebSocketPayloadException) as exc:
            self.closed = True
            raise WSClosed(f"connection closed ({exc!r}); received so far: {self.log!r}") from exc
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self.closed = True
            if isinstance(data, (bytes, bytearray)) and len(data) >= 2:
                self.close_code = int.from_bytes(data[:2], "big")
            raise WSClosed(f"close frame (code {self.close_code}); received so far: {self.log!r}")
        if opcode == websocket.ABNF.OPCODE_TEXT:
            msg: str | bytes = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        else:
            msg = bytes(data)
        self.log.append(msg)
        return msg

    def recv_skip_pings(self, timeout: float = 3.0, pong: bool = True) -> str | bytes:
        """Next packet that is not an Engine.IO ping ``"2"`` (answered with ``"3"`` if ``pong``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WSTimeout(f"no non-ping message within {timeout}s; received so far: {self.log!r}")
            msg = self.recv(left)
            if msg == "2":
                if pong:
                    self.try_send("3")
                continue
            return msg

    def recv_n(self, count: int, timeout: float = 3.0, pong: bool = True) -> list[str | bytes]:
        """``waitForPackets``: the next ``count`` packets, pings ignored."""
        return [self.recv_skip_pings(timeout, pong) for _ in range(count)]

    def collect(self, duration: float, pong: bool = True) -> list[str | bytes]:
        """Everything (pings excluded) that arrives during ``duration`` seconds.
        Stops early, without raising, if the connection closes."""
        out: list[str | bytes] = []
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.recv_skip_pings(left, pong))
            except WSTimeout:
                return out
            except WSClosed:
                return out

    def wait_closed(self, timeout: float = 3.0, pong: bool = True) -> list[str | bytes]:
        """Wait for the server to close the connection; returns what arrived before.

        Pings are answered (when ``pong``) so that a heartbeat timeout can not be
        mistaken for the close the test is waiting for.
        """
        got: list[str | bytes] = []
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"the server did not close the WebSocket within {timeout}s; received: {got!r}")
            try:
                msg = self.recv(left)
            except WSClosed:
                break
            except WSTimeout:
                continue
            if msg == "2" and pong:
                self.try_send("3")
            got.append(msg)
        return got

    def close(self) -> None:
        self.closed = True
        try:
            self.ws.close(timeout=0.5)
        except Exception:  # noqa: BLE001 - best effort
            try:
                self.ws.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "RawWebSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ws_url(base_url: str, path: str, query: str = "EIO=4&transport=websocket") -> str:
    return base_url.replace("http://", "ws://", 1) + f"{path}?{query}"


def ws_connect(base_url: str, path: str = "/engine.io/", query: str = "EIO=4&transport=websocket",
               timeout: float = DEFAULT_TIMEOUT, headers: list[str] | None = None) -> RawWebSocket:
    return RawWebSocket(ws_url(base_url, path, query), timeout=timeout, headers=headers)


def ws_open(base_url: str, path: str = "/engine.io/", timeout: float = 3.0) -> tuple[RawWebSocket, dict[str, Any]]:
    """WebSocket-only Engine.IO session: returns the socket and the OPEN packet's JSON."""
    ws = ws_connect(base_url, path)
    first = ws.recv(timeout)
    assert isinstance(first, str) and first.startswith("0"), f"expected an open packet, got {first!r}"
    return ws, json.loads(first[1:])


def ws_rejected_or_closed(base_url: str, path: str, query: str, timeout: float = 3.0) -> str:
    """For invalid WebSocket requests: the handshake must be refused or the socket closed
    before any Engine.IO open packet. Returns a description of what happened."""
    try:
        ws = ws_connect(base_url, path, query, timeout=timeout)
    except WSRejected as exc:
        assert exc.status is None or 400 <= exc.status < 500, f"unexpected handshake status: {exc}"
        return f"rejected {exc.status}"
    try:
        got = ws.wait_closed(timeout, pong=False)
    finally:
        ws.close()
    assert not any(isinstance(m, str) and m.startswith("0") for m in got), \
        f"the server opened a session for an invalid request ({query}): {got!r}"
    return f"closed after {got!r}"


def sio_connect(base_url: str, nsp: str = "/", auth: dict | None = None,
                path: str = "/socket.io/", timeout: float = 3.0) -> tuple[RawWebSocket, str]:
    """WebSocket Engine.IO session + Socket.IO CONNECT; returns (socket, socket.io sid).
    Only the CONNECT reply is consumed."""
    ws, _ = ws_open(base_url, path, timeout)
    prefix = "40" if nsp == "/" else f"40{nsp},"
    ws.send(prefix + (json.dumps(auth, separators=(",", ":")) if auth is not None else ""))
    reply = ws.recv_skip_pings(timeout)
    assert isinstance(reply, str) and reply.startswith(prefix), f"expected CONNECT reply {prefix}..., got {reply!r}"
    data = json.loads(reply[len(prefix):])
    return ws, data["sid"]

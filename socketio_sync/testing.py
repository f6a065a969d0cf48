"""A Socket.IO client for your own tests: it connects in process, through the real WSGI
middleware (no network, no server), over HTTP long-polling.

::

    def test_chat(app):                       # your Flask/Django/WSGI app, wrapped
        client = io.test_client(app, auth={"token": "t"})
        client.emit("chat message", "hi")
        assert client.wait_for("chat message") == ["hi"]
        assert client.call("add", 1, 2) == 3  # the handler's return value (the ack)
        client.disconnect()

Cookies: pass ``http_client=`` a Flask (werkzeug) or Django test client to send its
cookies (a logged-in session), or ``headers={"Cookie": ...}``.

Everything the server sends is checked: a malformed packet, an unexpected HTTP status
or a refused connection raises :class:`TestClientError` (``ConnectionRefusedByServer``
for ``connect_error``) in the test, never silently.
"""
from __future__ import annotations

import io as _io
import json
import queue
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, urlencode

from . import eio, sio
from .exceptions import SocketIOSyncError

__all__ = ["TestClient", "TestClientError", "ConnectionRefusedByServer"]


class TestClientError(SocketIOSyncError, AssertionError):
    """The server broke the protocol, answered with an HTTP error, or did not answer."""

    __test__ = False  # not a pytest test class


class ConnectionRefusedByServer(TestClientError):
    """The server answered ``connect_error``; :attr:`data` is its payload."""

    def __init__(self, namespace: str, data: Any) -> None:
        message = data.get("message") if isinstance(data, dict) else data
        super().__init__(f"connection to {namespace} refused: {message}")
        self.namespace = namespace
        self.data = data


class TestClient:
    """An in-process Socket.IO client. See the module docstring.

    :param server: the :class:`socketio_sync.Server` (``io.test_client(...)`` passes it).
    :param app: the WSGI application that serves it (the Flask app, Django's wrapped
        ``application``, a :class:`WSGIApp`); by default ``WSGIApp(server)``.
    :param namespace: the namespace to connect first (``None``: none yet).
    :param auth: the ``auth`` payload of that CONNECT.
    :param headers: request headers (``{"Cookie": "..."}``, ``{"Origin": ...}``).
    :param query: extra query parameters of the handshake: a dict, or a query string
        (``"a=1&a=2"``) when a name repeats.
    :param http_client: a Flask/werkzeug or Django test client whose cookies are sent.
    :param path: where the server is mounted.
    :param timeout: seconds to wait for the server in every blocking call.
    """

    __test__ = False

    def __init__(self, server: Any, app: Any = None, *, namespace: str | None = "/",
                 auth: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                 query: dict[str, str] | str | None = None, http_client: Any = None,
                 path: str = "socket.io", timeout: float = 5.0) -> None:
        if app is None:
            from .wsgi.middleware import WSGIApp

            app = WSGIApp(server, path=path)
        self.server = server
        self.app = app
        self.path = "/" + path.strip("/") + "/"
        self.timeout = timeout
        self.headers = dict(headers or {})
        cookie = _cookie_header(http_client) if http_client is not None else None
        if cookie:
            self.headers["Cookie"] = "; ".join(filter(None, [self.headers.get("Cookie"), cookie]))
        self.query: list[tuple[str, str]] = (
            parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list((query or {}).items()))
        self.sid: str | None = None
        self.connected = False
        #: namespace -> the socket id the server gave (``None`` until connected).
        self.namespaces: dict[str, str | None] = {}
        msgpack = getattr(server, "parser", "default") == "msgpack"
        self._decoder: Any = sio.MsgpackDecoder() if msgpack else sio.Decoder()
        self._encoder: Any = sio.MsgpackEncoder() if msgpack else sio.Encoder()
        self._received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._errors: list[BaseException] = []
        self._connect_results: dict[str, queue.Queue[Any]] = {}
        self._acks: dict[int, Callable[..., Any]] = {}
        self._ack_ids = 0
        self._handlers: dict[tuple[str, str], Callable[..., Any]] = {}
        self._poller: threading.Thread | None = None
        self._post_lock = threading.Lock()
        self.close_reason: str | None = None
        self._closing = False
        self._open()
        if namespace is not None:
            try:
                self.connect(namespace, auth=auth)
            except BaseException:
                self.disconnect_quietly()
                raise

    def disconnect_quietly(self) -> None:
        """Close the connection, ignoring errors (for cleanup code)."""
        try:
            self.disconnect()
        except Exception:
            pass

    # -- HTTP ---------------------------------------------------------------------------------

    def _request(self, method: str, params: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        query = urlencode([("EIO", "4"), ("transport", "polling"), *self.query, *params.items()])
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": self.path, "QUERY_STRING": query,
            "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "testserver",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": _io.BytesIO(body),
            "wsgi.errors": _io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)) if body else "",
        }
        if body:
            environ["CONTENT_TYPE"] = "text/plain;charset=UTF-8"
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        status: list[str] = []

        def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            status.append(s)
            return lambda data: None

        result = self.app(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not status:
            raise TestClientError(f"{method} {self.path}: the application never called start_response")
        return int(status[0].split()[0]), data

    def _open(self) -> None:
        code, body = self._request("GET", {})
        if code != 200:
            raise TestClientError(f"handshake refused with HTTP {code}: {body[:200]!r}")
        packets = self._decode_payload(body)
        if not packets or packets[0].type is not eio.PacketType.OPEN:
            raise TestClientError(f"the handshake did not start with OPEN: {body[:200]!r}")
        try:
            info = json.loads(packets[0].data or "")
            self.sid = info["sid"]
        except (ValueError, KeyError, TypeError):
            raise TestClientError(f"invalid OPEN packet: {packets[0].data!r}") from None
        self.connected = True
        self._handle_packets(packets[1:])
        self._poller = threading.Thread(target=self._poll, name=f"socketio_sync test client {self.sid}",
                                        daemon=True)
        self._poller.start()

    def _decode_payload(self, body: bytes) -> list[eio.Packet]:
        try:
            return eio.decode_payload(body.decode("utf-8"))
        except (UnicodeDecodeError, SocketIOSyncError) as exc:
            raise TestClientError(f"malformed polling payload from the server: {exc}: {body[:200]!r}") from None

    def _poll(self) -> None:
        try:
            while self.connected and not self._closing:
                code, body = self._request("GET", {"sid": self.sid or ""})
                if not self.connected or self._closing:
                    return
                if code != 200:
                    raise TestClientError(f"poll refused with HTTP {code}: {body[:200]!r}")
                self._handle_packets(self._decode_payload(body))
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            if self.connected and not self._closing:
                self._fail(exc)

    def _post(self, packets: Iterable[eio.Packet]) -> None:
        self._raise_errors()
        if not self.connected:
            raise TestClientError("the test client is disconnected" +
                                  (f" ({self.close_reason})" if self.close_reason else ""))
        body = eio.encode_payload(packets).encode("utf-8")
        with self._post_lock:
            code, answer = self._request("POST", {"sid": self.sid or ""}, body)
        if code != 200 or answer != b"ok":
            raise TestClientError(f"POST refused with HTTP {code}: {answer[:200]!r}")

    # -- incoming -----------------------------------------------------------------------------

    def _handle_packets(self, packets: list[eio.Packet]) -> None:
        for packet in packets:
            if packet.type is eio.PacketType.PING:
                self._post([eio.Packet(eio.PacketType.PONG)])
            elif packet.type is eio.PacketType.MESSAGE:
                try:
                    decoded = self._decoder.add(packet.data)  # type: ignore[arg-type]
                except SocketIOSyncError as exc:
                    raise TestClientError(f"malformed Socket.IO packet from the server: {exc}") from None
                if decoded is not None:
                    self._on_packet(decoded)
            elif packet.type is eio.PacketType.CLOSE:
                self._closed("server closed the connection")
            elif packet.type is eio.PacketType.NOOP:
                pass
            else:
                raise TestClientError(f"unexpected Engine.IO packet {packet.type.name} while polling")

    def _on_packet(self, packet: sio.Packet) -> None:
        ptype = packet.type
        nsp = packet.nsp
        if ptype is sio.PacketType.CONNECT:
            self.namespaces[nsp] = (packet.data or {}).get("sid")  # type: ignore[union-attr]
            self._connect_result(nsp).put(None)
        elif ptype is sio.PacketType.CONNECT_ERROR:
            self.namespaces.pop(nsp, None)
            self._connect_result(nsp).put(ConnectionRefusedByServer(nsp, packet.data))
        elif ptype is sio.PacketType.DISCONNECT:
            self.namespaces.pop(nsp, None)
            self._record(nsp, "disconnect", ["io server disconnect"])
        elif ptype in (sio.PacketType.EVENT, sio.PacketType.BINARY_EVENT):
            name, *args = packet.data  # type: ignore[misc]
            handler = self._handlers.get((nsp, name))
            if handler is not None and packet.id is not None:
                value = handler(*args)
                ack_args = [] if value is None else list(value) if isinstance(value, tuple) else [value]
                self._send(sio.Packet(sio.PacketType.ACK, nsp, ack_args, packet.id))
            elif handler is not None:
                handler(*args)
            self._record(nsp, name, args, packet.id)
        elif ptype in (sio.PacketType.ACK, sio.PacketType.BINARY_ACK):
            callback = self._acks.pop(packet.id, None)  # type: ignore[arg-type]
            if callback is None:
                raise TestClientError(f"the server sent an ack ({packet.id}) nobody asked for")
            callback(*packet.data)  # type: ignore[misc]

    def _record(self, nsp: str, name: str, args: list[Any], ack_id: int | None = None) -> None:
        with self._cond:
            self._received.append({"name": name, "args": args, "namespace": nsp})
            self._cond.notify_all()

    def _connect_result(self, nsp: str) -> queue.Queue[Any]:
        return self._connect_results.setdefault(nsp, queue.Queue())

    def _closed(self, reason: str) -> None:
        self.connected = False
        self.close_reason = reason
        self.namespaces.clear()
        with self._cond:
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._closed(f"error: {exc}")
        for q in self._connect_results.values():
            q.put(exc)

    def _raise_errors(self) -> None:
        if self._errors:
            raise self._errors[0]

    # -- API ----------------------------------------------------------------------------------

    def connect(self, namespace: str = "/", auth: dict[str, Any] | None = None) -> str:
        """Join ``namespace``; returns the socket id.

        :raises ConnectionRefusedByServer: when the server refuses (``connect_error``).
        """
        results = self._connect_results[namespace] = queue.Queue()
        self._send(sio.Packet(sio.PacketType.CONNECT, namespace, auth))
        try:
            outcome = results.get(timeout=self.timeout)
        except queue.Empty:
            raise TestClientError(f"no answer to CONNECT {namespace} within {self.timeout} s") from None
        if outcome is not None:
            raise outcome
        return self.namespaces[namespace] or ""

    def is_connected(self, namespace: str = "/") -> bool:
        return self.connected and namespace in self.namespaces

    def sid_for(self, namespace: str = "/") -> str | None:
        """The socket id of ``namespace`` (what ``socket.id`` is on the server)."""
        return self.namespaces.get(namespace)

    def on(self, event: str, handler: Callable[..., Any], namespace: str = "/") -> None:
        """Answer ``event`` from the server: ``handler(*args)``'s return value is the ack."""
        self._handlers[(namespace, event)] = handler

    def emit(self, event: str, *args: Any, namespace: str = "/",
             callback: Callable[..., Any] | None = None) -> None:
        """Send an event; ``callback(*ack_args)`` runs when the server acknowledges."""
        if namespace not in self.namespaces:
            raise TestClientError(f"not connected to {namespace}")
        ack_id = None
        if callback is not None:
            ack_id = self._ack_ids
            self._ack_ids += 1
            self._acks[ack_id] = callback
        self._send(sio.Packet(sio.PacketType.EVENT, namespace, [event, *args], ack_id))

    def call(self, event: str, *args: Any, namespace: str = "/", timeout: float | None = None) -> Any:
        """Emit and wait for the ack: ``None``, the value, or a tuple for several values."""
        box: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.emit(event, *args, namespace=namespace, callback=lambda *a: box.put(a))
        try:
            answer = box.get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            self._raise_errors()
            raise TestClientError(f"no ack for {event!r} within {self.timeout if timeout is None else timeout} s") from None
        return None if not answer else answer[0] if len(answer) == 1 else answer

    def get_received(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Events received so far (and forget them): ``{"name", "args", "namespace"}``
        dicts, like Flask-SocketIO's test client; only ``namespace``'s when given."""
        self._raise_errors()
        with self._cond:
            if namespace is None:
                out, self._received = self._received, []
            else:
                out = [e for e in self._received if e["namespace"] == namespace]
                self._received = [e for e in self._received if e["namespace"] != namespace]
        return out

    def wait_for(self, event: str, namespace: str = "/", timeout: float | None = None) -> list[Any]:
        """Wait for the next ``event`` (received earlier or later) and return its args."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while True:
                for i, item in enumerate(self._received):
                    if item["name"] == event and item["namespace"] == namespace:
                        del self._received[i]
                        return item["args"]
                self._raise_errors()
                left = deadline - time.monotonic()
                if left <= 0 or not self.connected:
                    got = [e["name"] for e in self._received]
                    state = "" if self.connected else f"; disconnected ({self.close_reason})"
                    raise TestClientError(f"no {event!r} on {namespace} (received: {got}){state}")
                self._cond.wait(min(left, 0.1))

    def disconnect(self, namespace: str | None = None) -> None:
        """Leave ``namespace``, or close the whole connection (``None``)."""
        if namespace is not None:
            if namespace in self.namespaces:
                self._send(sio.Packet(sio.PacketType.DISCONNECT, namespace))
                self.namespaces.pop(namespace, None)
            return
        if self.connected:
            self._closing = True
            try:
                self._post([eio.Packet(eio.PacketType.CLOSE)])
            finally:
                self._closed("client disconnect")
        if self._poller is not None:
            self._poller.join(self.timeout)
        self._raise_errors()

    def _send(self, packet: sio.Packet) -> None:
        items = self._encoder.encode(packet)
        self._post([eio.Packet(eio.PacketType.MESSAGE, item) for item in items])

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.connected:
            self.disconnect()


def _cookie_header(client: Any) -> str:
    """The ``Cookie`` header a Flask/werkzeug or Django test client would send."""
    jar = getattr(client, "cookies", None)  # Django: a SimpleCookie
    if jar is not None and hasattr(jar, "values") and not callable(getattr(client, "get_cookie", None)):
        return "; ".join(f"{m.key}={m.value}" for m in jar.values())
    cookies = getattr(client, "_cookies", None)  # werkzeug >= 2.3
    if isinstance(cookies, dict):
        return "; ".join(f"{c.key}={c.value}" for c in cookies.values())
    jar = getattr(client, "cookie_jar", None)  # older werkzeug
    if jar is not None:
        return "; ".join(f"{c.name}={c.value}" for c in jar)
    raise TypeError(f"cannot read cookies from {type(client).__name__}; pass headers={{'Cookie': ...}}")

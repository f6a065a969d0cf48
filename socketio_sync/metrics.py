"""Prometheus metrics for a :class:`socketio_sync.Server`, in the text exposition format
0.0.4, written by hand (no dependency).

Example::

    from socketio_sync.metrics import Metrics

    io = socketio_sync.Server()
    metrics = Metrics(io)                           # starts counting
    app = socketio_sync.WSGIApp(io, metrics.wsgi_app(flask_app.wsgi_app))   # /metrics

Counting is a few integer additions per message, done by observers on the server's
hooks (:mod:`socketio_sync.hooks`); gauges are read from the server when scraped.

Metrics (all prefixed ``socketio_``, ``prefix=`` changes it):

======================================  =========  ===================================================
name                                    type       labels, meaning
======================================  =========  ===================================================
``connected_sockets``                   gauge      ``namespace``: sockets connected now
``engine_sessions``                     gauge      ``transport``: open Engine.IO sessions
``engine_connections_total``            counter    ``transport``: sessions opened (their first transport)
``engine_upgrades_total``               counter    polling sessions upgraded to WebSocket
``engine_disconnects_total``            counter    ``reason``: sessions closed
``connections_total``                   counter    ``namespace``: sockets connected
``disconnects_total``                   counter    ``namespace``, ``reason``: sockets disconnected
``events_received_total``               counter    ``namespace``: events from clients
``events_sent_total``                   counter    ``namespace``: events to clients (a broadcast
                                                   counts once per recipient)
``messages_received_total``             counter    Engine.IO messages received
``messages_sent_total``                 counter    Engine.IO messages sent (per recipient)
``bytes_received_total``                counter    bytes of the messages received (text as UTF-8,
                                                   without Engine.IO framing)
``bytes_sent_total``                    counter    bytes of the messages sent, likewise
``ack_latency_seconds``                 histogram  time from ``socket.emit(..., callback=)`` or
                                                   ``socket.call`` to the client's ack
``errors_total``                        counter    ``kind``: ``parse_error``, ``request_refused``
                                                   (HTTP errors: handshakes refused...),
                                                   ``connection_refused`` (namespace CONNECTs),
                                                   ``handler_exception``
======================================  =========  ===================================================

.. versionadded:: 0.2
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .wsgi.runtime import _get_ident

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Metrics", "DEFAULT_BUCKETS", "CONTENT_TYPE"]

#: Upper bounds (seconds) of the ack latency histogram's buckets.
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The text exposition format's content type.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _size(data: str | bytes) -> int:
    if isinstance(data, bytes) or data.isascii():
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items()) + "}"


def _num(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


class Metrics:
    """Counts what happens on ``io`` and renders it for Prometheus.

    :param io: the :class:`socketio_sync.Server` to observe.
    :param prefix: the prefix of every metric name.
    :param buckets: the ack latency histogram's upper bounds, in seconds.
    """

    def __init__(self, io: Server, *, prefix: str = "socketio_",
                 buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        self.io = io
        self.prefix = prefix
        self.buckets = tuple(sorted(float(b) for b in buckets))
        if not self.buckets:
            raise ValueError("buckets must not be empty")
        self.engine_connections: dict[str, int] = {}
        self.engine_upgrades = 0
        self.engine_disconnects: dict[str, int] = {}
        self.connections: dict[str, int] = {}
        self.disconnects: dict[tuple[str, str], int] = {}
        self.events_received: dict[str, int] = {}
        self.events_sent: dict[str, int] = {}
        self.messages_received = 0
        self.messages_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.errors: dict[str, int] = {}
        self._ack_counts = [0] * (len(self.buckets) + 1)
        self._ack_sum = 0.0
        io.hooks.add(self)

    # -- hooks (see socketio_sync.hooks) ----------------------------------------------------

    def engine_open(self, conn: Any) -> None:
        t = conn.transport
        self.engine_connections[t] = self.engine_connections.get(t, 0) + 1

    def engine_upgrade(self, conn: Any, transport: str) -> None:
        self.engine_upgrades += 1

    def engine_close(self, conn: Any, reason: str) -> None:
        self.engine_disconnects[reason] = self.engine_disconnects.get(reason, 0) + 1

    def message_in(self, conn: Any, data: str | bytes) -> None:
        self.messages_received += 1
        self.bytes_received += _size(data)

    def message_out(self, conn: Any, out: Any) -> None:
        self.messages_sent += len(out.items)
        self.bytes_sent += out.byte_length()

    def error(self, kind: str, detail: str, conn: Any) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def socket_connect(self, socket: Any) -> None:
        name = socket.nsp.name
        self.connections[name] = self.connections.get(name, 0) + 1

    def socket_disconnect(self, socket: Any, reason: str) -> None:
        key = (socket.nsp.name, reason)
        self.disconnects[key] = self.disconnects.get(key, 0) + 1

    def event_in(self, socket: Any, event: str, args: Any) -> None:
        name = socket.nsp.name
        self.events_received[name] = self.events_received.get(name, 0) + 1

    def event_out(self, socket: Any, event: str, args: Any) -> None:
        name = socket.nsp.name
        self.events_sent[name] = self.events_sent.get(name, 0) + 1

    def broadcast(self, nsp: Any, packet: Any, recipients: int) -> None:
        if recipients:
            self.events_sent[nsp.name] = self.events_sent.get(nsp.name, 0) + recipients

    def ack(self, socket: Any, seconds: float) -> None:
        self._ack_counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self._ack_sum += seconds

    # -- exposition -------------------------------------------------------------------------

    def render(self) -> str:
        """Every metric in the text exposition format 0.0.4."""
        p = self.prefix
        out: list[str] = []

        def family(name: str, kind: str, help_: str, samples: Iterable[tuple[str, str, float]]) -> None:
            out.append(f"# HELP {p}{name} {help_}")
            out.append(f"# TYPE {p}{name} {kind}")
            for suffix, labels, value in samples:
                out.append(f"{p}{name}{suffix}{labels} {_num(value)}")

        namespaces = list(self.io.namespaces.values())
        family("connected_sockets", "gauge", "Sockets connected now, per namespace.",
               [("", _labels(namespace=n.name), len(n.sockets)) for n in namespaces])
        by_transport = {"polling": 0, "websocket": 0}
        for conn in list(self.io.engine.sessions.values()):
            if not conn.closed:
                by_transport[conn.transport] = by_transport.get(conn.transport, 0) + 1
        family("engine_sessions", "gauge", "Open Engine.IO sessions, per transport.",
               [("", _labels(transport=t), n) for t, n in sorted(by_transport.items())])
        family("engine_connections_total", "counter", "Engine.IO sessions opened, per first transport.",
               [("", _labels(transport=t), n) for t, n in sorted(self.engine_connections.items())])
        family("engine_upgrades_total", "counter", "Engine.IO sessions upgraded from polling to WebSocket.",
               [("", "", self.engine_upgrades)])
        family("engine_disconnects_total", "counter", "Engine.IO sessions closed, per reason.",
               [("", _labels(reason=r), n) for r, n in sorted(self.engine_disconnects.items())])
        family("connections_total", "counter", "Sockets connected, per namespace.",
               [("", _labels(namespace=k), n) for k, n in sorted(self.connections.items())])
        family("disconnects_total", "counter", "Sockets disconnected, per namespace and reason.",
               [("", _labels(namespace=k, reason=r), n) for (k, r), n in sorted(self.disconnects.items())])
        family("events_received_total", "counter", "Events received from clients, per namespace.",
               [("", _labels(namespace=k), n) for k, n in sorted(self.events_received.items())])
        family("events_sent_total", "counter", "Events sent to clients (per recipient), per namespace.",
               [("", _labels(namespace=k), n) for k, n in sorted(self.events_sent.items())])
        family("messages_received_total", "counter", "Engine.IO messages received.",
               [("", "", self.messages_received)])
        family("messages_sent_total", "counter", "Engine.IO messages sent (per recipient).",
               [("", "", self.messages_sent)])
        family("bytes_received_total", "counter", "Bytes of the Engine.IO messages received.",
               [("", "", self.bytes_received)])
        family("bytes_sent_total", "counter", "Bytes of the Engine.IO messages sent.",
               [("", "", self.bytes_sent)])
        cumulative = 0
        samples: list[tuple[str, str, float]] = []
        for bound, count in zip(self.buckets + (float("inf"),), self._ack_counts):
            cumulative += count
            samples.append(("_bucket", _labels(le=_num(bound)), cumulative))
        samples.append(("_sum", "", self._ack_sum))
        samples.append(("_count", "", cumulative))
        family("ack_latency_seconds", "histogram",
               "Seconds from an emit with a callback (or socket.call) to the client's ack.", samples)
        family("errors_total", "counter", "Errors, per kind.",
               [("", _labels(kind=k), n) for k, n in sorted(self.errors.items())])
        return "\n".join(out) + "\n"

    def wsgi_app(self, app: Callable[..., Any] | None = None, path: str = "/metrics") -> Callable[..., Any]:
        """A WSGI application that answers ``GET path`` with :meth:`render` and passes
        every other request to ``app`` (404 when ``None``).

        Anyone who can reach it sees your traffic figures: mount it on an internal port or
        behind your own authentication (wrap the returned app) in production.
        """
        def metrics_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO", "") != path:
                if app is not None:
                    passed: Iterable[bytes] = app(environ, start_response)
                    return passed
                return _plain(start_response, "404 Not Found", b"Not Found")
            if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
                return _plain(start_response, "405 Method Not Allowed", b"Method Not Allowed",
                              [("Allow", "GET, HEAD")])
            body = self._render_in_hub().encode("utf-8")
            start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body))),
                                      ("Cache-Control", "no-store")])
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

        return metrics_app

    def _render_in_hub(self) -> str:
        """Render in the server's hub when scraped from another thread (``flask run``)."""
        rt = self.io.engine.runtime
        if rt is not None and rt.ident != _get_ident():
            return str(rt.call(self.render))
        return self.render()


def _plain(start_response: Callable[..., Any], status: str, body: bytes,
           extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + (extra or []))
    return [body]


"""Connection state recovery with the official socket.io-client (4.6+ ``socket.recovered``).

The client reaches the server through :class:`CuttableProxy`, a TCP proxy in the test
process: ``cut()`` closes every proxied connection at once (both sides see the TCP
connection end without a WebSocket close frame or a Socket.IO DISCONNECT) and refuses
new ones until ``restore()``, so the client's own reconnection loop fails meanwhile; the
proxy can also be pointed at another server, which is how the client moves from server A
to server B in the Redis test. Another client, connected directly, makes the server
broadcast while the first one is cut off.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from tests.jsclient import NodeClients

pytestmark = [pytest.mark.integration, pytest.mark.js]

APP = "tests.apps.recovery_app:build"
N_EVENTS = 100
# Fast client reconnection, so that the client comes back as soon as the proxy does.
CLIENT_OPTS = {"transports": ["websocket"], "reconnectionDelay": 50, "reconnectionDelayMax": 100,
               "randomizationFactor": 0}


class CuttableProxy:
    """A loopback TCP proxy whose connections a test can cut, and whose target it can change."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            _close(s)

    def cut(self) -> None:
        """Close every proxied connection and refuse new ones."""
        self.refusing = True
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _close(s)

    def restore(self, target_port: int | None = None) -> None:
        if target_port is not None:
            self.target_port = target_port
        self.refusing = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


@pytest.fixture
def proxy_factory() -> Any:
    proxies: list[CuttableProxy] = []

    def make(port: int) -> CuttableProxy:
        proxies.append(CuttableProxy(port))
        return proxies[-1]

    yield make
    for p in proxies:
        p.close()


def wait_until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def setup_victim(nc: NodeClients, url: str, sender_url: str) -> dict[str, Any]:
    """Connect "victim" (through ``url``) in room "r1" with one event received (so that it
    has an offset), and "sender" directly; return the victim's info."""
    nc.connect("victim", url, reconnection=True, **CLIENT_OPTS)
    nc.wait_for("victim", "connect")  # consumed: the tests wait for the next one
    nc.connect("sender", sender_url, transports=["websocket"], reconnection=False)
    assert nc.call("victim", "join", "r1") == [sorted(["r1", nc.state("victim")["sid"]])]
    assert nc.call("sender", "burst", "r1", 1, "warmup") == [1]
    args = nc.wait_for_event("victim", "warmup")
    assert args[0] == 0 and isinstance(args[1], str), args  # the offset, an extra last argument
    info = nc.call("victim", "info")[0]
    assert info["recovered"] is False
    return info


def cut_and_burst(nc: NodeClients, proxy: CuttableProxy, sid: str, sender: str = "sender") -> None:
    proxy.cut()
    nc.wait_for("victim", "disconnect", lambda ev: ev["reason"] == "transport close")
    wait_until(lambda: nc.call(sender, "is_connected", sid) == [False], what="the server to see the cut")
    assert nc.call(sender, "burst", "r1", N_EVENTS, "tick") == [N_EVENTS]
    nc.call(sender, "burst_binary", "r1")


def assert_binary_replayed(nc: NodeClients) -> None:
    """The ``binary`` event sent after the ticks came back last, with real binary."""
    args = nc.wait_for_event("victim", "binary")
    assert args[:2] == [b"\x00\xff", {"nested": b"\x01"}] and isinstance(args[2], str), args
    kinds = [e.get("name") for e in nc.events("victim", "message")]
    assert kinds.index("binary") > max(i for i, k in enumerate(kinds) if k == "tick")


def ticks(nc: NodeClients) -> list[int]:
    return [args[0] for args in nc.messages("victim", "tick")]


@pytest.mark.parametrize("skip_middlewares", [True, False])
def test_recovers_id_rooms_data_and_missed_events(live_server: Any, node_clients: NodeClients,
                                                  proxy_factory: Any, skip_middlewares: bool) -> None:
    srv = live_server(APP, name="A", connection_state_recovery={"skip_middlewares": skip_middlewares})
    proxy = proxy_factory(srv.port)
    info = setup_victim(node_clients, proxy.url, srv.url)
    cut_and_burst(node_clients, proxy, info["id"])
    assert ticks(node_clients) == []
    proxy.restore()
    connect = node_clients.wait_for("victim", "connect", timeout=10)
    assert connect["recovered"] is True and connect["sid"] == info["id"]
    wait_until(lambda: len(ticks(node_clients)) >= N_EVENTS, what="the missed events")
    assert ticks(node_clients) == list(range(N_EVENTS))
    assert_binary_replayed(node_clients)
    offsets = [args[1] for args in node_clients.messages("victim", "tick")]
    assert len(set(offsets)) == N_EVENTS
    after = node_clients.call("victim", "info")[0]
    assert after["recovered"] is True and after["id"] == info["id"]
    assert after["rooms"] == info["rooms"]
    assert after["data"]["room"] == "r1" and after["data"]["server"] == "A"
    # the middleware ran for victim and sender, and for the recovery unless skipped
    assert after["data"]["middleware_runs"] == (2 if skip_middlewares else 3)
    # live events keep flowing, after the replayed ones
    assert node_clients.call("sender", "burst", "r1", 1, "tick") == [1]
    wait_until(lambda: len(ticks(node_clients)) == N_EVENTS + 1, what="a live event")
    assert ticks(node_clients)[-1] == 0


def test_fresh_session_after_max_disconnection_duration(live_server: Any, node_clients: NodeClients,
                                                        proxy_factory: Any) -> None:
    srv = live_server(APP, name="A", connection_state_recovery={"max_disconnection_duration": 0.5})
    proxy = proxy_factory(srv.port)
    info = setup_victim(node_clients, proxy.url, srv.url)
    cut_and_burst(node_clients, proxy, info["id"])
    time.sleep(0.8)  # past max_disconnection_duration: the session is gone
    proxy.restore()
    connect = node_clients.wait_for("victim", "connect", timeout=10)
    assert connect["recovered"] is False and connect["sid"] != info["id"]
    after = node_clients.call("victim", "info")[0]
    assert after["recovered"] is False and after["rooms"] == [after["id"]]
    assert "room" not in after["data"]
    node_clients.sync()
    assert ticks(node_clients) == []


def test_deliberate_disconnects_are_not_recovered(live_server: Any, node_clients: NodeClients) -> None:
    srv = live_server(APP, name="A", connection_state_recovery=True)
    nc = node_clients
    nc.connect("victim", srv.url, reconnection=False, transports=["websocket"])
    nc.connect("sender", srv.url, transports=["websocket"], reconnection=False)
    nc.call("victim", "join", "r1")
    nc.call("sender", "burst", "r1", 1, "warmup")
    nc.wait_for_event("victim", "warmup")
    first = nc.wait_for("victim", "connect")["sid"]
    # the client's own socket.disconnect(): "client namespace disconnect"
    nc.disconnect("victim")
    nc.wait_for("victim", "disconnect", lambda ev: ev["reason"] == "io client disconnect")
    wait_until(lambda: nc.call("sender", "is_connected", first) == [False], what="the disconnect")
    nc.open("victim")
    connect = nc.wait_for("victim", "connect")
    assert connect["recovered"] is False and connect["sid"] != first
    # a server-side socket.disconnect(): "server namespace disconnect"
    second = connect["sid"]
    nc.call("victim", "join", "r1")
    nc.call("sender", "burst", "r1", 1, "warmup")
    nc.wait_for_event("victim", "warmup")
    nc.emit("victim", "kick")
    nc.wait_for("victim", "disconnect", lambda ev: ev["reason"] == "io server disconnect")
    wait_until(lambda: nc.call("sender", "is_connected", second) == [False], what="the kick")
    nc.open("victim")
    connect = nc.wait_for("victim", "connect")
    assert connect["recovered"] is False and connect["sid"] not in (first, second)


def test_recovers_after_a_ping_timeout_on_polling(live_server: Any, node_clients: NodeClients) -> None:
    srv = live_server(APP, name="A", connection_state_recovery=True, ping_interval=0.3, ping_timeout=0.4)
    nc = node_clients
    nc.connect("victim", srv.url, transports=["polling"], reconnection=False)
    first = nc.wait_for("victim", "connect")["sid"]
    nc.connect("sender", srv.url, transports=["websocket"], reconnection=False)
    nc.call("victim", "join", "r1")
    nc.call("sender", "burst", "r1", 1, "warmup")
    nc.wait_for_event("victim", "warmup")
    nc.drop_pongs("victim")
    wait_until(lambda: nc.call("sender", "is_connected", first) == [False], what="the ping timeout")
    assert nc.call("sender", "burst", "r1", N_EVENTS, "tick") == [N_EVENTS]
    nc.wait_for("victim", "disconnect")
    nc.drop_pongs("victim", on=False)
    nc.open("victim")
    connect = nc.wait_for("victim", "connect")
    assert connect["recovered"] is True and connect["sid"] == first
    wait_until(lambda: len(ticks(nc)) >= N_EVENTS, what="the missed events")
    assert ticks(nc) == list(range(N_EVENTS))


def test_off_by_default_no_pid_no_offset(live_server: Any, node_clients: NodeClients) -> None:
    srv = live_server(APP, name="A")
    nc = node_clients
    nc.connect("victim", srv.url, transports=["websocket"], reconnection=False, trace=True)
    nc.connect("sender", srv.url, transports=["websocket"], reconnection=False)
    nc.call("victim", "join", "r1")
    nc.call("sender", "burst", "r1", 1, "warmup")
    assert nc.wait_for_event("victim", "warmup") == [0]
    connect_packets = [e["data"] for e in nc.events("victim", "packet")
                       if e["dir"] == "in" and e["type"] == "message" and str(e["data"]).startswith("0")]
    assert connect_packets and all('"pid"' not in p for p in connect_packets), connect_packets


@pytest.mark.redis
def test_recovers_on_another_server_through_redis(live_server: Any, node_clients: NodeClients,
                                                  proxy_factory: Any, redis_server: Any) -> None:
    a = live_server(APP, name="A", redis_url=redis_server.url, connection_state_recovery=True)
    b = live_server(APP, name="B", redis_url=redis_server.url, connection_state_recovery=True)
    nc = node_clients
    proxy = proxy_factory(a.port)
    nc.connect("sender-b", b.url, transports=["websocket"], reconnection=False)
    info = setup_victim(nc, proxy.url, a.url)
    assert info["data"]["server"] == "A"
    # The server that saw the cut (A) keeps the session; B broadcasts the missed events.
    proxy.cut()
    nc.wait_for("victim", "disconnect", lambda ev: ev["reason"] == "transport close")
    wait_until(lambda: nc.call("sender", "is_connected", info["id"]) == [False], what="A to see the cut")
    assert nc.call("sender-b", "burst", "r1", N_EVENTS, "tick") == [N_EVENTS]
    nc.call("sender-b", "burst_binary", "r1")
    proxy.restore(b.port)
    connect = nc.wait_for("victim", "connect", timeout=10)
    assert connect["recovered"] is True and connect["sid"] == info["id"]
    wait_until(lambda: len(ticks(nc)) >= N_EVENTS, what="the missed events")
    assert ticks(nc) == list(range(N_EVENTS))
    assert_binary_replayed(nc)
    after = nc.call("victim", "info")[0]
    assert after["server"] == "B" and after["recovered"] is True and after["id"] == info["id"]
    assert after["rooms"] == info["rooms"] and after["data"]["room"] == "r1" and after["data"]["server"] == "A"
    # A second cut, back to A: recovered again (the session moved with the socket).
    cut_and_burst(nc, proxy, info["id"], sender="sender-b")
    proxy.restore(a.port)
    connect = nc.wait_for("victim", "connect", timeout=10)
    assert connect["recovered"] is True and connect["sid"] == info["id"]
    wait_until(lambda: len(ticks(nc)) >= 2 * N_EVENTS, what="the second batch")
    assert ticks(nc) == list(range(N_EVENTS)) * 2

"""Deployment as the README describes it: gunicorn (socketio_sync's worker and
gevent-websocket's), nginx in front with ``examples/deploy/nginx.conf``, and a graceful
shutdown on SIGTERM that hands the clients over to another instance.

The clients are the official Node socket.io-client (``tests/js/driver.mjs``) and
python-socketio's client, over polling only, WebSocket only, and polling then upgrade.
The app is ``tests/apps/deploy_app.py``: every instance tells its name.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import socketio

from tests.conftest import ROOT, GunicornServer, _free_port, require_tool
from tests.jsclient import NodeClients

pytestmark = [pytest.mark.integration, pytest.mark.js]

EXAMPLE_NGINX = ROOT / "examples" / "deploy" / "nginx.conf"
EXAMPLE_GUNICORN = ROOT / "examples" / "deploy" / "gunicorn.conf.py"
APP = "tests.apps.deploy_app:build(name={name!r})"
WORKERS = {"ours": GunicornServer.OUR_WORKER, "stock": GunicornServer.STOCK_WORKER}
TRANSPORTS: dict[str, list[str]] = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}
WAIT = 10.0  # upper bound for anything expected to happen (never a performance claim)
#: Long enough that a worker waiting for it would be noticed: shutdown must not wait it out.
GRACEFUL_TIMEOUT = 30
#: socket.io-client options: reconnect soon and deterministically.
NODE_RECONNECT = {"reconnection": True, "reconnectionDelay": 100, "reconnectionDelayMax": 300,
                  "randomizationFactor": 0}


@pytest.fixture(params=list(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ===================================================================== nginx

def render_example(upstream_ports: list[int], listen_port: int, sticky: bool = True) -> str:
    """``examples/deploy/nginx.conf`` with its upstream servers and listen port replaced;
    everything else (the location blocks, headers, timeouts) as shipped."""
    text = EXAMPLE_NGINX.read_text()
    block = re.search(r"upstream socketio_nodes \{.*?\n\}", text, re.S)
    assert block, "examples/deploy/nginx.conf: no 'upstream socketio_nodes { ... }' block"
    servers = re.compile(r"^(\s*)server\s+[^;\s]+;\n", re.M)
    found = servers.findall(block.group(0))
    assert found, "no server lines in the upstream block"
    indent = found[0]
    new_block = servers.sub("", block.group(0)).replace(
        "ip_hash;\n", "ip_hash;\n" + "".join(f"{indent}server 127.0.0.1:{p};\n" for p in upstream_ports), 1)
    if not sticky:  # round-robin: needs the Redis adapter's session forwarding
        new_block = re.sub(r"^\s*ip_hash;\n", "", new_block, flags=re.M)
    text = text.replace(block.group(0), new_block)
    text, n = re.subn(r"^(\s*)listen\s+\d+;", rf"\g<1>listen 127.0.0.1:{listen_port};", text, flags=re.M)
    assert n == 1, "expected exactly one 'listen PORT;' in examples/deploy/nginx.conf"
    return text


class NginxServer:
    """A real nginx (``daemon off``) serving the rendered example config from a temp dir.

    The access log records which upstream answered each request (``$upstream_addr``).
    """

    def __init__(self, binary: str, tmp: Path, upstream_ports: list[int], sticky: bool = True) -> None:
        self.port = _free_port()
        self.dir = tmp / f"nginx-{self.port}"
        self.dir.mkdir(parents=True)
        (self.dir / "socketio.conf").write_text(render_example(upstream_ports, self.port, sticky))
        temp_paths = "\n".join(
            f"    {kind}_temp_path {self.dir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp dir
        (self.dir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    log_format upstream '$request_method $uri $status $upstream_addr';\n"
            f"    access_log {self.dir / 'access.log'} upstream;\n"
            f"{temp_paths}\n"
            f"    include {self.dir / 'socketio.conf'};\n"
            "}\n")
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", "stderr",
             "-g", f"daemon off; pid {self.dir / 'nginx.pid'}; error_log stderr;"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.1)
                raise RuntimeError("nginx exited:\n" + "\n".join(self.output))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen:\n" + "\n".join(self.output))

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[list[str]]:
        path = self.dir / "access.log"
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests, then exit
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[list[int]], NginxServer]]:
    """Factory fixture: ``proxy = nginx([srv_a.port, srv_b.port])``."""
    binary = require_tool("nginx", "/usr/sbin/nginx")
    servers: list[NginxServer] = []

    def start(upstream_ports: list[int], sticky: bool = True) -> NginxServer:
        srv = NginxServer(binary, tmp_path, upstream_ports, sticky)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


# ===================================================================== python client

class PyClient:
    """A python-socketio client that records what happens to it, reconnecting quickly."""

    def __init__(self, url: str, transport: str, *, reconnection: bool = True) -> None:
        self.log: list[tuple[str, Any]] = []
        self._taken: set[int] = set()
        self._cond = threading.Condition()
        self.sio = socketio.Client(reconnection=reconnection, reconnection_delay=0.1, reconnection_delay_max=0.3,
                                   randomization_factor=0.0, handle_sigint=False)
        self.sio.on("connect", lambda: self._record("connect", None))
        self.sio.on("disconnect", lambda reason=None: self._record("disconnect", reason))
        self.sio.on("*", lambda event, *args: self._record(event, args))
        transports = None if transport == "upgrade" else TRANSPORTS[transport]
        self.sio.connect(url, transports=transports, wait_timeout=WAIT)
        self.wait_for("connect")  # the first one; wait_for("connect") then means a reconnection

    def _record(self, kind: str, data: Any) -> None:
        with self._cond:
            self.log.append((kind, data))
            self._cond.notify_all()

    def wait_for(self, kind: str, timeout: float = WAIT) -> Any:
        """The next unconsumed record of ``kind``; its data."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, (k, data) in enumerate(self.log):
                    if k == kind and i not in self._taken:
                        self._taken.add(i)
                        return data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"python client: no {kind!r} within {timeout} s; got {self.log}")
                self._cond.wait(remaining)

    def kinds(self) -> list[str]:
        with self._cond:
            return [k for k, _ in self.log]

    def call(self, event: str, *args: Any) -> Any:
        return self.sio.call(event, args if len(args) != 1 else args[0], timeout=WAIT)

    def close(self) -> None:
        try:
            self.sio.shutdown()
        except Exception:
            pass


@pytest.fixture
def py_clients() -> Iterator[Callable[..., PyClient]]:
    clients: list[PyClient] = []

    def make(url: str, transport: str, **kwargs: Any) -> PyClient:
        client = PyClient(url, transport, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# ===================================================================== helpers

def gunicorn_app(name: str) -> str:
    return APP.format(name=name)


def node_connect(nc: NodeClients, name: str, url: str, transport: str, **opts: Any) -> dict[str, Any]:
    reply = nc.connect(name, url, transports=TRANSPORTS[transport], **{"reconnection": False, **opts})
    if transport == "upgrade":
        assert nc.wait_for(name, "upgrade", timeout=WAIT)["transport"] == "websocket"
    return reply


def exchange(nc: NodeClients, name: str, server: str) -> None:
    """Events and acks both ways with the instance called ``server``."""
    assert nc.call(name, "whoami")[0]["server"] == server
    assert nc.call(name, "echo", "text", {"n": 1}, b"\x00\x01binary") == ["text", {"n": 1}, b"\x00\x01binary"]
    msg = f"hello from {name}"
    nc.emit(name, "chat message", msg)
    got = nc.wait_for_event(name, "chat message", timeout=WAIT, predicate=lambda args: args[0]["msg"] == msg)
    assert got == [{"server": server, "msg": msg}]


def http_exchange(sock: socket.socket, path: str) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 keep-alive GET on ``sock``: (status line, lower-cased headers, body)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return read_response(sock)


def read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    sock.settimeout(WAIT)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of a body"
        body += chunk
    return status, headers, body


def wait_exit(srv: GunicornServer, timeout: float) -> int:
    assert srv.proc is not None
    srv.expected_down = True
    try:
        rc = srv.proc.wait(timeout)
        srv.stop()  # joins the output pump: the last lines, where a shutdown traceback would be
        return rc
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"gunicorn still running {timeout} s after SIGTERM (graceful_timeout is {GRACEFUL_TIMEOUT} s):\n"
            + "\n".join(srv.output[-30:])) from None


def assert_clean_exit(srv: GunicornServer, rc: int, sessions: int) -> None:
    out = "\n".join(srv.output)
    assert rc == 0, out
    assert "Traceback" not in out and "[ERROR]" not in out, out
    assert "graceful timeout" not in out.lower(), out  # gunicorn's "Worker graceful timeout"
    assert f"closing {sessions} sessions for shutdown" in out, out


# ===================================================================== gunicorn workers

@pytest.mark.parametrize("worker", list(WORKERS))
def test_gunicorn_worker(gunicorn_server: Any, node_clients: NodeClients, worker: str, transport: str) -> None:
    """socket.io-client talks to the app under gunicorn, with either worker."""
    srv = gunicorn_server(gunicorn_app("g"), worker=WORKERS[worker], workers=1)
    nc = node_clients
    reply = node_connect(nc, "c1", srv.url, transport)
    welcome = nc.wait_for_event("c1", "welcome", timeout=WAIT)[0]
    assert (welcome["server"], welcome["id"]) == ("g", reply["sid"])
    exchange(nc, "c1", "g")
    assert nc.state("c1")["transport"] == TRANSPORTS[transport][-1]
    # The WSGI app beside it answers too.
    with urllib.request.urlopen(srv.url + "/", timeout=WAIT) as resp:
        assert resp.read() == b"hello from the WSGI app\n"
    if worker == "ours":  # gunicorn's access log is kept
        deadline = time.monotonic() + WAIT
        while not any('"GET / HTTP/1.1" 200' in line for line in srv.output):
            assert time.monotonic() < deadline, srv.output
            time.sleep(0.05)


# ===================================================================== nginx in front

def test_example_nginx_config_essentials() -> None:
    """What Socket.IO needs from the proxy, in the example shipped to users."""
    text = EXAMPLE_NGINX.read_text()
    location = re.search(r"location /socket\.io/ \{(.*?)\n    \}", text, re.S)
    assert location, "no 'location /socket.io/' block"
    body = location.group(1)
    for directive in ("proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
                      "proxy_set_header Connection $connection_upgrade;",
                      "proxy_set_header Host $http_host;",
                      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                      "proxy_set_header X-Forwarded-Proto $scheme;"):
        assert directive in body, directive
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", body)
    assert read_timeout and int(read_timeout.group(1)) > 25, "proxy_read_timeout must exceed ping_interval (25 s)"
    assert re.search(r"upstream socketio_nodes \{[^}]*ip_hash;", text), "long-polling needs sticky sessions"
    rendered = render_example([1111, 2222], 3333)
    assert "server 127.0.0.1:1111;" in rendered and "server 127.0.0.1:2222;" in rendered
    assert "8001" not in rendered and "listen 127.0.0.1:3333;" in rendered


def test_behind_nginx(gunicorn_server: Any, nginx: Any, node_clients: NodeClients, py_clients: Any,
                      transport: str) -> None:
    """Both transports and the upgrade through nginx over two instances: ip_hash keeps a
    polling client's requests on one instance, the forwarding headers arrive."""
    a = gunicorn_server(gunicorn_app("a"))
    b = gunicorn_server(gunicorn_app("b"))
    proxy = nginx([a.port, b.port])
    nc = node_clients
    node_connect(nc, "c1", proxy.url, transport)
    server = nc.wait_for_event("c1", "welcome", timeout=WAIT)[0]["server"]
    assert server in ("a", "b")
    for _ in range(3):
        exchange(nc, "c1", server)
    assert nc.state("c1")["transport"] == TRANSPORTS[transport][-1]
    seen = nc.call("c1", "handshake")[0]
    headers = seen["headers"]
    assert headers["host"] == f"127.0.0.1:{proxy.port}"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-real-ip"] == "127.0.0.1"

    py = py_clients(proxy.url, transport, reconnection=False)
    assert py.wait_for("welcome")[0]["server"] == server  # same address, same instance
    assert py.call("echo", "from python") == "from python"
    # A broadcast from the Node client reaches the python client through nginx.
    nc.emit("c1", "chat message", "to everyone")
    assert py.wait_for("chat message") == ({"server": server, "msg": "to everyone"},)
    assert nc.wait_for_event("c1", "chat message", timeout=WAIT) == [{"server": server, "msg": "to everyone"}]

    # Every request went to the same instance. nginx logs a WebSocket when it ends: both
    # clients leave first, then the log must list their connections.
    nc.disconnect("c1")
    py.close()
    deadline = time.monotonic() + WAIT
    while True:
        log = [entry for entry in proxy.access_log() if entry[1].startswith("/socket.io/")]
        if transport == "polling" or sum(entry[2] == "101" for entry in log) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    upstreams = {entry[3] for entry in log}
    port = a.port if server == "a" else b.port
    assert upstreams == {f"127.0.0.1:{port}"}, log
    if transport != "polling":
        assert sum(entry[2] == "101" for entry in log) >= 2, log


def test_nginx_same_origin(gunicorn_server: Any, nginx: Any) -> None:
    """With the default CORS policy (same origin only), a page served through nginx on a
    non-default port may connect: nginx passes the Host header with its port."""
    a = gunicorn_server("tests.apps.deploy_app:build(name='a', cors_allowed_origins=None)")
    proxy = nginx([a.port])

    def handshake(origin: str) -> int:
        req = urllib.request.Request(proxy.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": origin})
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as resp:
                assert resp.read().startswith(b"0{")
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert handshake(proxy.url) == 200
    assert handshake("http://evil.example") == 403


# ===================================================================== graceful shutdown

def test_sigterm_hands_clients_to_the_other_instance(
        gunicorn_server: Any, nginx: Any, node_clients: NodeClients, py_clients: Any, transport: str) -> None:
    """SIGTERM to the gunicorn the clients are on: they get a transport-level close at once
    (not a DISCONNECT, not a wait for graceful_timeout), reconnect through nginx to the
    other instance and talk there; the stopped gunicorn exits with 0, without errors."""
    # The example gunicorn.conf.py, as deployed (the command line sets port and timeout).
    args = ("-c", str(EXAMPLE_GUNICORN), "--graceful-timeout", str(GRACEFUL_TIMEOUT))
    instances = {name: gunicorn_server(gunicorn_app(name), args=args) for name in ("a", "b")}
    proxy = nginx([srv.port for srv in instances.values()])
    nc = node_clients
    node_connect(nc, "c1", proxy.url, transport, **NODE_RECONNECT)
    first = nc.wait_for_event("c1", "welcome", timeout=WAIT)[0]["server"]
    nc.wait_for("c1", "connect")
    py = py_clients(proxy.url, transport)
    assert py.wait_for("welcome")[0]["server"] == first
    doomed = instances[first]
    other = "b" if first == "a" else "a"

    doomed.signal(signal.SIGTERM)
    # A transport-level close, on which both clients reconnect.
    gone = nc.wait_for("c1", "disconnect", timeout=WAIT)
    assert gone["reason"] in ("transport close", "transport error"), gone
    assert py.wait_for("disconnect") == "transport error"  # not "server disconnect"
    rc = wait_exit(doomed, timeout=GRACEFUL_TIMEOUT / 2)
    assert_clean_exit(doomed, rc, sessions=2)

    nc.wait_for("c1", "reconnect", timeout=WAIT)
    assert nc.wait_for_event("c1", "welcome", timeout=WAIT)[0]["server"] == other
    assert py.wait_for("connect") is None
    assert py.wait_for("welcome")[0]["server"] == other
    if transport == "upgrade":
        assert nc.wait_for("c1", "upgrade", timeout=WAIT)["transport"] == "websocket"
    exchange(nc, "c1", other)
    assert py.call("whoami")["server"] == other
    # The python client gets the Node client's broadcast on the new instance.
    assert py.wait_for("chat message") == ({"server": other, "msg": "hello from c1"},)
    assert nc.events("c1", "disconnect") == [gone]  # once, then connected for good
    assert py.kinds().count("disconnect") == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_without_proxy_then_restart(gunicorn_server: Any, node_clients: NodeClients, py_clients: Any,
                                             sig: int) -> None:
    """Clients connected straight to gunicorn (keep-alive HTTP connections included) do not
    hold a stopping worker: it exits at once, and they come back when it is restarted.
    SIGTERM is gunicorn's graceful stop, SIGINT its quick one: the same for the clients."""
    srv = gunicorn_server(gunicorn_app("a"), args=("--graceful-timeout", str(GRACEFUL_TIMEOUT)))
    nc = node_clients
    node_connect(nc, "poll", srv.url, "polling", **NODE_RECONNECT)
    node_connect(nc, "ws", srv.url, "websocket", **NODE_RECONNECT)
    py_poll = py_clients(srv.url, "polling")
    py_ws = py_clients(srv.url, "websocket")
    for name in ("poll", "ws"):
        exchange(nc, name, "a")
    for py in (py_poll, py_ws):
        assert py.call("whoami")["server"] == "a"
    # An idle keep-alive connection (one request answered, then nothing)...
    idle = socket.create_connection(("127.0.0.1", srv.port))
    assert http_exchange(idle, "/")[0] == "HTTP/1.1 200 OK"
    # ... and a raw long-poll waiting on another keep-alive connection.
    raw = socket.create_connection(("127.0.0.1", srv.port))
    status, _, body = http_exchange(raw, "/socket.io/?EIO=4&transport=polling")
    assert status == "HTTP/1.1 200 OK" and body.startswith(b"0{"), body
    sid = re.search(rb'"sid":"([^"]+)"', body).group(1).decode()  # type: ignore[union-attr]
    raw.sendall(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    time.sleep(0.5)  # let the GET reach the server and wait there (it would wait 25 s)

    srv.signal(sig)
    # The poll is released (no CLOSE packet) with "Connection: close": the next request
    # goes to a new connection, elsewhere. The idle connection is closed.
    status, headers, body = read_response(raw)
    assert (status, headers.get("connection"), body) == ("HTTP/1.1 200 OK", "close", b"6"), (status, headers, body)
    assert raw.recv(100) == b""
    assert idle.recv(100) == b""
    raw.close()
    idle.close()
    for name in ("poll", "ws"):
        gone = nc.wait_for(name, "disconnect", timeout=WAIT)
        assert gone["reason"] in ("transport close", "transport error"), gone
    for py in (py_poll, py_ws):
        assert py.wait_for("disconnect") == "transport error"
    rc = wait_exit(srv, timeout=GRACEFUL_TIMEOUT / 2)
    assert_clean_exit(srv, rc, sessions=5)

    srv.start()  # same port
    for name in ("poll", "ws"):
        nc.wait_for(name, "reconnect", timeout=WAIT)
        exchange(nc, name, "a")
    for py in (py_poll, py_ws):
        py.wait_for("connect")
        assert py.call("whoami")["server"] == "a"


def test_run_sigterm_closes_sessions_then_restart(node_clients: NodeClients, py_clients: Any,
                                                  transport: str) -> None:
    """``socketio_sync.run()`` (what ``io.listen`` uses) on SIGTERM: the same clean close,
    a clean exit, and the clients reconnect to the restarted server."""
    port = _free_port()

    pumps: list[threading.Thread] = []

    def start() -> tuple[subprocess.Popen[str], list[str]]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.apps.deploy_app", "solo", str(port)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        lines: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if "serving on" in line:
                    ready.set()
            ready.set()

        pumps.append(threading.Thread(target=pump, daemon=True))
        pumps[-1].start()
        assert ready.wait(WAIT) and proc.poll() is None, "\n".join(lines)
        return proc, lines

    proc, lines = start()
    try:
        url = f"http://127.0.0.1:{port}"
        nc = node_clients
        node_connect(nc, "c1", url, transport, **NODE_RECONNECT)
        py = py_clients(url, transport)
        exchange(nc, "c1", "solo")
        assert py.call("whoami")["server"] == "solo"

        proc.send_signal(signal.SIGTERM)
        gone = nc.wait_for("c1", "disconnect", timeout=WAIT)
        assert gone["reason"] in ("transport close", "transport error"), gone
        assert py.wait_for("disconnect") == "transport error"
        try:
            rc = proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError("run() did not stop on SIGTERM:\n" + "\n".join(lines)) from None
        pumps[-1].join(5)  # every line it wrote before exiting
        out = "\n".join(lines)
        assert rc == 0, out
        assert "Traceback" not in out and "ERROR" not in out, out
        assert "closing 2 sessions for shutdown" in out, out

        proc, lines = start()
        nc.wait_for("c1", "reconnect", timeout=WAIT)
        if transport == "upgrade":
            assert nc.wait_for("c1", "upgrade", timeout=WAIT)["transport"] == "websocket"
        exchange(nc, "c1", "solo")
        py.wait_for("connect")
        assert py.call("whoami")["server"] == "solo"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()

"""Many gunicorn workers and no sticky sessions (issue #7): session forwarding.

``gunicorn -w 4`` with our worker and the Redis adapter (a real redis-server), behind
``tests/rrproxy.py``, a proxy that sends every HTTP request over a new connection to the
next upstream in turn, so that one client's requests land on every worker. The load is
``tests/js/rr_load.mjs``: official socket.io-client instances that join rooms, echo with
acks and shout to their room for ``RR_SECONDS`` (default 60), then check that no
broadcast was lost. Several hosts behind a round-robin proxy: nginx without ``ip_hash``
over two gunicorns (``test_nginx_round_robin_without_ip_hash``).

The access log records the worker pid of every request, to prove the spreading.
"""
from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT, require_path, require_tool
from tests.integration.test_deploy import nginx  # noqa: F401  (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.js]

JS_DIR = ROOT / "tests" / "js"
ACCESS_FORMAT = "%(p)s %(m)s %(U)s %(q)s %(s)s"  # gunicorn writes %(p)s as <pid>
SECONDS = float(os.environ.get("RR_SECONDS", "60"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proxy:
    def __init__(self, upstream_ports: list[int]) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.rrproxy", str(self.port), *map(str, upstream_ports)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "listening", line

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


@pytest.fixture
def proxy() -> Iterator[Any]:
    proxies: list[Proxy] = []

    def start(ports: list[int]) -> Proxy:
        p = Proxy(ports)
        proxies.append(p)
        return p

    yield start
    for p in proxies:
        if p.proc.poll() is None:
            p.stop()


def run_load(url: str, **cfg: Any) -> dict[str, Any]:
    node = require_tool("node", "nodejs")
    require_path(JS_DIR / "node_modules" / "socket.io-client", "tests/js/node_modules is missing: run npm ci in tests/js")
    proc = subprocess.run([node, str(JS_DIR / "rr_load.mjs"), json.dumps({"url": url, **cfg})],
                          cwd=JS_DIR, capture_output=True, text=True, timeout=cfg.get("seconds", 30) + 120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"result"')]
    assert lines, f"rr_load.mjs failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])["result"]  # type: ignore[no-any-return]


def start_workers(gunicorn_server: Any, redis_url: str, workers: int) -> Any:
    return gunicorn_server(f'tests.apps.rr_app:build(redis_url="{redis_url}")', workers=workers,
                           args=("--access-logformat", ACCESS_FORMAT))


def spread(outputs: list[str]) -> tuple[dict[str, set[str]], collections.Counter[str]]:
    """sid -> the worker pids that served its requests; and the HTTP statuses."""
    per_sid: dict[str, set[str]] = collections.defaultdict(set)
    statuses: collections.Counter[str] = collections.Counter()
    for line in outputs:
        m = re.match(r"<(\d+)> (\w+) /socket\.io/ (\S*) (\d{3})$", line)
        if not m:
            continue
        statuses[m.group(4)] += 1
        sid = re.search(r"(?:^|&)sid=([\w-]+)", m.group(3))
        if sid:
            per_sid[sid.group(1)].add(m.group(1))
    return per_sid, statuses


def no_tracebacks(*servers: Any) -> None:
    """Stops the servers (so that their output is complete), then checks it."""
    for srv in servers:
        srv.stop()
    for srv in servers:
        # gunicorn's own report of the worker a test killed is expected
        text = "\n".join(line for line in srv.output if "was sent SIGKILL" not in line)
        assert "Traceback" not in text and "ERROR" not in text, text[-5000:]


def assert_clean(result: dict[str, Any], clients: int) -> None:
    assert result["errors"] == [], result["errors"]
    assert result["connect_errors"] == 0, result
    assert result["disconnects"] == 0, result
    assert result["ack_errors"] == 0, result
    assert result["lost"] == 0, result
    assert result["still_connected"] == clients, result
    assert result["acks"] > clients, result
    assert result["deliveries"] > 0, result


def test_gunicorn_4_workers_round_robin_polling_only(gunicorn_server: Any, redis_server: Any, proxy: Any) -> None:
    """200 polling-only clients, every request to any worker: no "Session ID unknown",
    no lost ack, no lost broadcast."""
    gun = start_workers(gunicorn_server, redis_server.url, 4)
    rr = proxy([gun.port])
    result = run_load(rr.url, clients=200, seconds=SECONDS, transports=["polling"])
    counts = rr.stop()
    gun.stop()  # every access-log line is in gun.output once it has exited
    assert_clean(result, 200)
    per_sid, statuses = spread(gun.output)
    assert set(statuses) <= {"200"}, statuses  # no 400 "Session ID unknown", no 5xx
    assert sum(statuses.values()) > 1000 and len(per_sid) >= 200, (statuses, len(per_sid))
    served_by = collections.Counter(len(pids) for pids in per_sid.values())
    # Sessions live in every worker, and their requests were spread over several.
    assert len(result["owners"]) == 4, result["owners"]
    assert sum(n for k, n in served_by.items() if k >= 2) >= 0.9 * len(per_sid), served_by
    assert counts.get("requests", 0) > 1000, counts
    no_tracebacks(gun)


def test_gunicorn_4_workers_round_robin_with_websocket_upgrade(gunicorn_server: Any, redis_server: Any,
                                                              proxy: Any) -> None:
    """The same with the default transports (polling, then the upgrade): the WebSocket
    usually lands on a worker that does not own the session, which relays it to the
    owner."""
    gun = start_workers(gunicorn_server, redis_server.url, 4)
    rr = proxy([gun.port])
    result = run_load(rr.url, clients=200, seconds=SECONDS, transports=["polling", "websocket"])
    counts = rr.stop()
    gun.stop()
    assert_clean(result, 200)
    assert result["on_websocket"] == 200, result
    assert counts.get("websockets", 0) >= 200, counts
    _, statuses = spread(gun.output)
    assert statuses["101"] >= 200 and statuses["200"] >= 2 * 200, statuses  # a handshake and a poll at least
    assert set(statuses) <= {"200", "101"}, statuses
    no_tracebacks(gun)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_one_worker_only_its_clients_reconnect(gunicorn_server: Any, redis_server: Any, proxy: Any,
                                                         tmp_path: Path, sig: int) -> None:
    """One of 4 workers stops. SIGTERM: the clients whose sessions it owned reconnect;
    the polls it was forwarding for the others are released, so the others see nothing.
    SIGKILL: the requests that were passing through it break too, so some other clients
    reconnect as well; everyone ends up connected, and nobody waits for a timeout."""
    gun = start_workers(gunicorn_server, redis_server.url, 4)
    rr = proxy([gun.port])
    pids = [int(m.group(1)) for line in gun.output if (m := re.search(r"Booting worker with pid: (\d+)", line))]
    assert len(pids) == 4, gun.output
    flag = tmp_path / "killed"
    import threading

    def kill_later() -> None:
        time.sleep(8)
        flag.write_text("x")
        time.sleep(1.0)  # the driver notices the flag within a few ms (100 clients check it)
        os.kill(pids[0], sig)

    threading.Thread(target=kill_later, daemon=True).start()
    result = run_load(rr.url, clients=100, seconds=16, transports=["polling"], kill_signal_file=str(flag))
    rr.stop()
    assert result["errors"] == [], result["errors"]
    assert result["connect_errors"] == 0, result
    assert result["still_connected"] == 100, result
    assert result["reconnects"] == result["disconnects"], result
    # Handlers run in the session's owner: "whoami" told each client its owner's pid.
    owned = [c for c in result["per_client"] if c["p"] == pids[0]]
    others = [c for c in result["per_client"] if c["p"] != pids[0]]
    assert owned and all(c["p"] in pids for c in result["per_client"]), result["per_client"]
    assert all(c["d"] >= 1 for c in owned), owned  # every client of the stopped worker reconnected
    if sig == signal.SIGTERM:
        assert not [c for c in others if c["d"] or c["a"]], others  # and nobody else noticed
        assert any(f"[{pids[0]}] [INFO] closing" in line for line in gun.output), gun.output[-30:]
    no_tracebacks(gun)


def test_session_whose_owner_is_gone_gets_unknown_sid_at_once(gunicorn_server: Any, redis_server: Any) -> None:
    """A session id that names a node nobody listens for: the spec's error 1, without
    waiting for any timeout, so the client reconnects at once."""
    from tests.rawclient import request

    gun = start_workers(gunicorn_server, redis_server.url, 2)
    sid = "ZZZZZZZZ" + "A" * 22
    t0 = time.monotonic()
    for method, body in (("GET", None), ("POST", "40")):
        resp = request(gun.url, method, f"/socket.io/?EIO=4&transport=polling&sid={sid}", body)
        assert resp.status == 400, resp
        assert json.loads(resp.body) == {"code": 1, "message": "Session ID unknown"}, resp
    assert time.monotonic() - t0 < 5
    no_tracebacks(gun)


def test_nginx_round_robin_without_ip_hash(gunicorn_server: Any, redis_server: Any, nginx: Any) -> None:  # noqa: F811
    """examples/deploy/nginx.conf without ``ip_hash`` (nginx's default round-robin) over
    two gunicorns of two workers: every transport works, no request is refused."""
    guns = [start_workers(gunicorn_server, redis_server.url, 2) for _ in range(2)]
    proxy_ = nginx([g.port for g in guns], sticky=False)
    for transports in (["polling"], ["polling", "websocket"]):
        result = run_load(proxy_.url, clients=50, seconds=8, transports=transports)
        assert_clean(result, 50)
    log = [entry for entry in proxy_.access_log() if entry[1] == "/socket.io/"]
    # 499: nginx's "client closed the request": the pending long-polls when the clients leave
    assert {entry[2] for entry in log} <= {"200", "101", "499"}, log[-20:]
    assert {entry[3] for entry in log} == {f"127.0.0.1:{g.port}" for g in guns}, log[-20:]
    no_tracebacks(*guns)


def test_v2_clients_through_forwarding(gunicorn_server: Any, redis_server: Any, proxy: Any) -> None:
    """Engine.IO v3 sessions (``allow_eio3``) are forwarded like v4 ones: XHR2 binary
    payloads and ``b64`` text payloads reach the owner and come back in the session's own
    framing, whichever worker a request lands on; and socket.io-client@2 clients (polling,
    and the upgrade relayed to the owner) share a room with a v4 client across workers."""
    from socketio_sync import eio
    from tests.jsclient import JS_DIR as JS, NodeClients, require_node_clients
    from tests.rawclient import EIOHttp

    gun = gunicorn_server(f'tests.apps.rr_app:build(redis_url="{redis_server.url}", allow_eio3=True)',
                          workers=3, args=("--access-logformat", ACCESS_FORMAT))
    rr = proxy([gun.port])
    http = EIOHttp(rr.url, "/socket.io/")

    def _v3_open(http: EIOHttp, query: str = "") -> str:
        r = http.get("EIO=3&transport=polling" + query)
        assert r.status == 200, r
        packets = eio.v3.decode_payload(r.text)
        assert packets[0].type is eio.PacketType.OPEN, packets
        return str(json.loads(packets[0].data)["sid"])

    # XHR2 binary payloads: every request is a new connection, so most are forwarded.
    sid = _v3_open(http)
    q = f"EIO=3&transport=polling&sid={sid}"
    assert http.get(q).text == "2:40"
    for n in range(6):
        blob = bytes([n, 0, 255])
        body = eio.v3.encode_payload_binary([
            eio.Packet(eio.PacketType.MESSAGE, f'51-{n}["echo",{{"_placeholder":true,"num":0}}]'),
            eio.Packet(eio.PacketType.MESSAGE, blob),
        ])
        r = http.post(q, body, headers={"Content-Type": "application/octet-stream"})
        assert r.status == 200 and r.body == b"ok", r
        r = http.get(q)
        assert r.status == 200 and r.header("content-type") == "application/octet-stream", r
        assert eio.v3.decode_payload_binary(r.body) == [
            eio.Packet(eio.PacketType.MESSAGE, f'61-{n}[{{"_placeholder":true,"num":0}}]'),
            eio.Packet(eio.PacketType.MESSAGE, blob),
        ]
    sids = [sid]

    # b64=1: the owner answers in base64 text payloads even when another worker asks.
    sid = _v3_open(http, "&b64=1")
    q = f"EIO=3&transport=polling&sid={sid}"
    assert http.get(q).text == "2:40"
    for n in range(6):
        assert http.post(q, eio.v3.encode_payload([
            eio.Packet(eio.PacketType.MESSAGE, f'51-{n}["echo",{{"_placeholder":true,"num":0}}]'),
            eio.Packet(eio.PacketType.MESSAGE, b"\x05\x06"),
        ])).status == 200
        r = http.get(q)
        assert r.status == 200 and r.header("content-type", "").startswith("text/plain"), r
        ack = f'461-{n}[{{"_placeholder":true,"num":0}}]'
        assert r.text == f"{len(ack)}:{ack}6:b4BQY=", r.text
    sids.append(sid)
    # A v4 request for a forwarded v3 session is refused like a local one.
    assert http.get(f"EIO=4&transport=polling&sid={sid}").status == 400

    # socket.io-client@2 (polling, then with the upgrade) and a v4 client in one room.
    node = require_node_clients()
    require_path(JS / "node_modules" / "socket.io-client-v2", "socket.io-client-v2 is missing: run npm ci in tests/js")
    old = NodeClients(node, driver=JS / "driver_v2.cjs").start()
    new = NodeClients(node).start()
    try:
        new.connect("new", rr.url + "/", transports=["polling"], reconnection=False)
        assert new.call("new", "join", "lobby") == ["lobby"]
        for name, transports in (("poll", ["polling"]), ("upg", ["polling", "websocket"])):
            assert old.connect(name, rr.url + "/", transports=transports, reconnection=False)["connected"]
            assert old.call(name, "join", "lobby") == ["lobby"]
        deadline = time.monotonic() + 10
        while old.state("upg")["transport"] != "websocket":
            assert time.monotonic() < deadline, old.state("upg")
            time.sleep(0.05)
        for seq in range(5):
            for name in ("poll", "upg"):
                assert old.call(name, "echo", seq, "é😀", b"\x00\xff") == [seq, "é😀", b"\x00\xff"]
            assert new.call("new", "shout", "lobby", seq) == [seq]
            for name in ("poll", "upg"):
                assert old.wait_for_event(name, "shouted")[1] == seq
        assert old.call("poll", "shout", "lobby", 99) == [99]
        assert new.wait_for_event("new", "shouted", predicate=lambda args: args[1] == 99)[1] == 99
        assert old.wait_for_event("upg", "shouted", predicate=lambda args: args[1] == 99)[1] == 99
    finally:
        old.stop()
        new.stop()
    assert not old.driver_errors and not new.driver_errors, (old.driver_errors, new.driver_errors)
    rr.stop()
    gun.stop()  # its output is complete once it has exited
    per_sid, statuses = spread(gun.output)
    for sid in sids:  # the two raw sessions' requests were spread over the workers
        assert len(per_sid[sid]) >= 2, (sid, per_sid[sid])
    assert set(statuses) <= {"200", "101", "400"}, statuses  # the one 400: the v4 request above
    assert statuses["400"] == 1, statuses
    no_tracebacks(gun)

"""Cross-process broadcast through the Redis adapter: throughput and latency.

Starts a redis-server and two socketio_sync server processes (``tests/apps/cluster_app.py``,
the app of the cluster tests), connects N official socket.io-client sockets (one Node
process, half on each server, WebSocket only), then server A broadcasts and the clients
measure:

* latency: ``latency_rounds`` broadcasts, ``latency_interval`` s apart; for each delivery,
  receive time minus the time server A emitted it (both wall clocks of this machine);
  reported separately for the clients of A (local delivery) and of B (through Redis);
* throughput: ``burst`` broadcasts back to back; deliveries per second counted from the
  first emit to the last delivery, for the clients of B (through Redis) and of A.

Not a test: nothing is asserted. Every wait is bounded; a run takes well under 60 s.

    python benchmarks/cluster_broadcast.py [--clients 200] [--burst 400] [--pad 100]

Prints a table and writes ``benchmarks/results/cluster_broadcast-<time>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import LiveServer, RedisServer  # noqa: E402

JS_DIR = ROOT / "tests" / "js"
RESULTS = ROOT / "benchmarks" / "results"
APP = "tests.apps.cluster_app:build"

# The Node side: N sockets, commands as JSON lines on stdin, answers on stdout.
NODE_CLIENTS = r"""
const { io } = require("socket.io-client");
const readline = require("node:readline");
const now = () => performance.timeOrigin + performance.now();  // ms, wall clock
const sockets = [];  // {socket, group}
const stats = new Map();  // event -> {group -> {count, lat: [], last}}
function write(o) { process.stdout.write(JSON.stringify(o) + "\n"); }
function record(event, group, payload) {
  const t = now();
  let s = stats.get(event);
  if (!s) { s = {}; stats.set(event, s); }
  let g = s[group];
  if (!g) { g = s[group] = { count: 0, lat: [], last: 0 }; }
  g.count++;
  g.last = t;
  if (payload && typeof payload.t === "number") g.lat.push(t - payload.t * 1000);
}
async function connect(urls, perServer) {
  const pending = [];
  urls.forEach((url, gi) => {
    for (let i = 0; i < perServer; i++) {
      const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true,
                               auth: { user: `g${gi}c${i}` } });
      const group = String.fromCharCode(65 + gi);
      socket.onAny((event, payload) => record(event, group, payload));
      sockets.push({ socket, group });
      pending.push(new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      }));
    }
  });
  await Promise.all(pending);
}
function summary(event) {
  const s = stats.get(event) || {};
  const out = {};
  for (const [group, g] of Object.entries(s)) {
    const lat = g.lat.slice().sort((a, b) => a - b);
    const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
    out[group] = { count: g.count, last: g.last, p50: q(0.5), p90: q(0.9), p99: q(0.99),
                   max: lat.length ? lat[lat.length - 1] : null };
  }
  return out;
}
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const cmd = JSON.parse(line);
  try {
    if (cmd.cmd === "connect") {
      const t0 = now();
      await connect(cmd.urls, cmd.perServer);
      write({ ok: true, ms: now() - t0 });
    } else if (cmd.cmd === "op") {
      // Run an "op" on the server of the first socket of cmd.group; reply with its ack.
      const { socket } = sockets.find((s) => s.group === cmd.group);
      const t0 = now();
      const res = await socket.timeout(cmd.timeoutMs || 60000).emitWithAck("op", cmd.spec);
      write({ ok: true, result: res, start: t0, end: now() });
    } else if (cmd.cmd === "wait") {
      // Wait until `expected[group]` deliveries of `event` arrived (or the deadline).
      const deadline = now() + cmd.timeoutMs;
      const done = () => Object.entries(cmd.expected).every(
        ([g, n]) => ((stats.get(cmd.event) || {})[g] || { count: 0 }).count >= n);
      while (!done() && now() < deadline) await new Promise((r) => setTimeout(r, 5));
      write({ ok: true, complete: done(), summary: summary(cmd.event) });
    } else if (cmd.cmd === "exit") {
      for (const { socket } of sockets) socket.disconnect();
      setTimeout(() => process.exit(0), 100);
    }
  } catch (err) {
    write({ ok: false, error: String(err && err.stack || err) });
  }
});
write({ ready: true });
"""


class NodeBenchClients:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", "-e", NODE_CLIENTS], cwd=JS_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert json.loads(self._line(15)).get("ready")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer from the Node clients within {timeout}s") from None

    def request(self, timeout: float, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self._line(timeout))
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error"))
        return reply

    def close(self) -> None:
        try:
            self.request(5, cmd="exit")
        except Exception:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run(clients: int, burst: int, latency_rounds: int, latency_interval: float, pad: int) -> dict[str, Any]:
    per_server = clients // 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        servers: list[LiveServer] = []
        node = None
        try:
            servers = [LiveServer(APP, redis_url=redis.url, name=n) for n in ("A", "B")]
            node = NodeBenchClients()
            conn = node.request(60, cmd="connect", urls=[s.url for s in servers], perServer=per_server)
            deadline = time.monotonic() + 10
            while node.request(10, cmd="op", group="A", spec={"kind": "server_count"})["result"] != 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("the servers did not both subscribe")
                time.sleep(0.05)
            expected = {"A": per_server, "B": per_server}

            # Warm-up (connections, code paths).
            node.request(30, cmd="op", group="A", spec={"kind": "burst", "event": "warm", "count": 20})
            node.request(15, cmd="wait", event="warm", expected={g: n * 20 for g, n in expected.items()},
                         timeoutMs=10000)

            # Latency: spaced broadcasts.
            node.request(60, cmd="op", group="A", timeoutMs=60000, spec={
                "kind": "burst", "event": "lat", "count": latency_rounds, "interval": latency_interval, "pad": pad})
            lat = node.request(20, cmd="wait", event="lat",
                               expected={g: n * latency_rounds for g, n in expected.items()}, timeoutMs=15000)

            # Throughput: back-to-back broadcasts.
            op_reply = node.request(60, cmd="op", group="A", timeoutMs=60000, spec={
                "kind": "burst", "event": "tput", "count": burst, "pad": pad})
            tput = node.request(40, cmd="wait", event="tput",
                                expected={g: n * burst for g, n in expected.items()}, timeoutMs=30000)
            first_emit = op_reply["start"]
            result: dict[str, Any] = {
                "clients": per_server * 2,
                "servers": 2,
                "payload_pad_bytes": pad,
                "connect_ms": round(conn["ms"], 1),
                "latency": {"rounds": latency_rounds, "interval_s": latency_interval,
                            "complete": lat["complete"], "by_server": lat["summary"]},
                "throughput": {"broadcasts": burst, "complete": tput["complete"], "by_server": {},
                               "emit_seconds": round((op_reply["end"] - op_reply["start"]) / 1000, 3)},
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                            "platform": platform.platform()},
            }
            for group, s in tput["summary"].items():
                seconds = (s["last"] - first_emit) / 1000
                result["throughput"]["by_server"][group] = {
                    "deliveries": s["count"], "seconds": round(seconds, 3),
                    "deliveries_per_s": round(s["count"] / seconds) if seconds > 0 else None,
                    "p50_ms": s["p50"], "p99_ms": s["p99"]}
            result["wall_seconds"] = round(time.monotonic() - started, 1)
            return result
        finally:
            if node is not None:
                node.close()
            for srv in servers:
                srv.stop()
            redis.stop()


def print_table(result: dict[str, Any]) -> None:
    def ms(v: Any) -> str:
        return "-" if v is None else f"{v:8.2f}"

    print(f"\ncross-process broadcast: {result['clients']} clients on 2 socketio_sync processes + redis-server"
          f" ({result['machine']['cpus']} CPUs), payload pad {result['payload_pad_bytes']} B")
    lat = result["latency"]
    print(f"\nlatency, {lat['rounds']} broadcasts {lat['interval_s'] * 1000:.0f} ms apart (emit on A -> client)"
          f"{'' if lat['complete'] else '  [INCOMPLETE]'}")
    print(f"  {'clients of':<26}{'deliveries':>11}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for group, label in (("A", "A (local)"), ("B", "B (through Redis)")):
        s = lat["by_server"].get(group, {})
        print(f"  {label:<26}{s.get('count', 0):>11}{ms(s.get('p50')):>9}{ms(s.get('p90')):>9}"
              f"{ms(s.get('p99')):>9}{ms(s.get('max')):>9}")
    tp = result["throughput"]
    print(f"\nthroughput, {tp['broadcasts']} broadcasts back to back (A emitted them in {tp['emit_seconds']} s)"
          f"{'' if tp['complete'] else '  [INCOMPLETE]'}")
    print(f"  {'clients of':<26}{'deliveries':>11}{'seconds':>9}{'deliv/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for group, label in (("A", "A (local)"), ("B", "B (through Redis)")):
        s = tp["by_server"].get(group, {})
        print(f"  {label:<26}{s.get('deliveries', 0):>11}{s.get('seconds', 0):>9}"
              f"{s.get('deliveries_per_s') or 0:>10}{ms(s.get('p50_ms')):>9}{ms(s.get('p99_ms')):>9}")
    print(f"\nwall time {result['wall_seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200, help="total clients, half on each server")
    parser.add_argument("--burst", type=int, default=1000, help="broadcasts in the throughput phase")
    parser.add_argument("--latency-rounds", type=int, default=200)
    parser.add_argument("--latency-interval", type=float, default=0.01, help="seconds between latency broadcasts")
    parser.add_argument("--pad", type=int, default=100, help="bytes of padding in each payload")
    args = parser.parse_args()
    result = run(args.clients, args.burst, args.latency_rounds, args.latency_interval, args.pad)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"cluster_broadcast-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

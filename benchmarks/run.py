#!/usr/bin/env python3
"""Benchmarks: socketio_sync side by side with python-socketio, Flask-SocketIO and Node socket.io.

    python benchmarks/run.py                     # every scenario, 3 alternating repetitions (~7 min)
    python benchmarks/run.py --quick             # a smoke run: short windows, 1 repetition (~1 min)
    python benchmarks/run.py --full              # scenario C with 5000 clients instead of 2000
    python benchmarks/run.py --scenarios A,B --reps 5 --systems socketio_sync,python_socketio
    python benchmarks/run.py --scenarios G       # gunicorn -w 1 vs -w 4 with Redis (asked for by name only)
    python benchmarks/run.py --scenarios S       # memory after tests/soak.py (asked for by name only)

Each measurement starts the server under test in a fresh process on a loopback port, pinned
to core 0, and drives it with ``loadgen.mjs`` (the official ``socket.io-client``) pinned to
core 1. Server CPU time (utime + stime) and RSS come from ``/proc/<pid>``, read at the
start and the end of the measurement window. Repetitions alternate the systems (the order
rotates every round). A run in which the load generator counted any error (a failed
connect, an ack timeout, a wrong echo, a dropped client, a lost broadcast) or in which the
server died is marked invalid and left out of the medians.

Scenarios G and S are not one server and one load generator: G starts a redis-server and
gunicorn with 1 or 4 workers (``cluster_apps.py``) and runs four loads against it, unpinned;
S runs ``tests/soak.py`` against ``tests/apps/soak_app.py``. See ``README.rst``.

Results go to ``benchmarks/results/``: ``bench-<time>.json`` (every run), ``.md`` (the
tables), ``.png`` (a plot), and copies named ``latest.*``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVER_CORE = 0
LOAD_CORE = 1

#: label shown in tables for each system
LABELS = {
    "socketio_sync": "socketio_sync",
    "python_socketio": "python-socketio",
    "node": "Node socket.io",
    "socketio_sync_flask": "socketio_sync + Flask",
    "flask_socketio": "Flask-SocketIO",
    "socketio_sync_w1": "socketio_sync -w 1",
    "socketio_sync_w4": "socketio_sync -w 4",
    "python_socketio_w1": "python-socketio -w 1",
    "python_socketio_w4": "python-socketio -w 4",
}


# -- scenarios -------------------------------------------------------------------------------

@dataclass
class Metric:
    key: str
    label: str
    fmt: str = ",.0f"
    better: str = "higher"  # or "lower"; "" for neither
    ratio: bool = False


@dataclass
class Scenario:
    name: str
    title: str
    loadgen: str
    systems: list[str]
    baseline: str
    metrics: list[Metric]
    compute: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, float]]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile -> params
    plot: list[tuple[str, list[str]]] = field(default_factory=list)  # (panel title, metric keys)
    note: str = ""
    #: the metric of the "at least as good as the baseline" check (default: the first with a ratio)
    headline: str = ""
    #: replaces :func:`measure` (one run of one system) for scenarios that are not one
    #: server process and one load generator (G, S)
    runner: Callable[..., dict[str, Any]] | None = None
    #: more Markdown after the scenario's table: ``extra(scenario, summary, runs)``
    extra: Callable[..., str] | None = None


def _window(snaps: dict[str, Any], a: str = "start", b: str = "end") -> tuple[float, float]:
    return snaps[b]["cpu_s"] - snaps[a]["cpu_s"], snaps[b]["t"] - snaps[a]["t"]


def other_load_pct(snaps: dict[str, Any], a: str = "start", b: str = "end") -> float:
    """Share of the server's core used by other processes during the window (noise)."""
    cpu, wall = _window(snaps, a, b)
    busy = snaps[b]["core_busy_s"] - snaps[a]["core_busy_s"]
    return max(0.0, 100 * (busy - cpu) / wall)


def compute_ack(r: dict[str, Any], snaps: dict[str, Any], p: dict[str, Any]) -> dict[str, float]:
    cpu, wall = _window(snaps)
    acks, elapsed = r["acks"], r["elapsed_s"]
    return {
        "other_load_pct": other_load_pct(snaps),
        "acks_per_s": acks / elapsed,
        "acks_per_cpu_s": acks / cpu,
        "cpu_us_per_ack": cpu / acks * 1e6,
        "p50_ms": r["p50_ms"],
        "p99_ms": r["p99_ms"],
        "server_cpu_pct": 100 * cpu / wall,
        "loadgen_cpu_pct": 100 * r["loadgen_cpu_s"] / elapsed,
    }


def compute_broadcast(r: dict[str, Any], snaps: dict[str, Any], p: dict[str, Any]) -> dict[str, float]:
    cpu, wall = _window(snaps)
    n, elapsed = r["deliveries"], r["elapsed_s"]
    return {
        "other_load_pct": other_load_pct(snaps),
        "deliveries_per_s": n / elapsed,
        "deliveries_per_cpu_s": n / cpu,
        "cpu_us_per_delivery": cpu / n * 1e6,
        "broadcasts_per_s": r["broadcasts"] / elapsed,
        "server_cpu_pct": 100 * cpu / wall,
        "loadgen_cpu_pct": 100 * r["loadgen_cpu_s"] / elapsed,
    }


def compute_idle(r: dict[str, Any], snaps: dict[str, Any], p: dict[str, Any]) -> dict[str, float]:
    n = r["clients"]
    cpu, _ = _window(snaps, "base", "loaded")
    return {
        "other_load_pct": other_load_pct(snaps, "base", "loaded"),
        "kib_per_client": (snaps["loaded"]["rss_kib"] - snaps["base"]["rss_kib"]) / n,
        "rss_base_mib": snaps["base"]["rss_kib"] / 1024,
        "rss_loaded_mib": snaps["loaded"]["rss_kib"] / 1024,
        "connect_cpu_ms_per_client": cpu / n * 1000,
        "clients": n,
    }


def compute_polling(r: dict[str, Any], snaps: dict[str, Any], p: dict[str, Any]) -> dict[str, float]:
    cpu, wall = _window(snaps)
    n = r["upgraded"]
    return {
        "other_load_pct": other_load_pct(snaps),
        "cpu_ms_per_client": cpu / n * 1000,
        "clients_per_s": n / r["elapsed_s"],
        "server_cpu_pct": 100 * cpu / wall,
        "loadgen_cpu_pct": 100 * r["loadgen_cpu_s"] / r["elapsed_s"],
    }


def compute_mixed(r: dict[str, Any], snaps: dict[str, Any], p: dict[str, Any]) -> dict[str, float]:
    cpu, wall = _window(snaps)
    elapsed = r["elapsed_s"]
    return {
        "other_load_pct": other_load_pct(snaps),
        "p50_ms": r["p50_ms"],
        "p99_ms": r["p99_ms"],
        "max_ms": r["max_ms"],
        "acks_per_s": r["acks"] / elapsed,
        "deliveries_per_s": r["deliveries"] / elapsed,
        "server_cpu_pct": 100 * cpu / wall,
        "loadgen_cpu_pct": 100 * r["loadgen_cpu_s"] / elapsed,
    }


SOCKETIO_SYSTEMS = ["socketio_sync", "python_socketio", "node"]
ACK_METRICS = [
    Metric("acks_per_cpu_s", "acks per server CPU-s", ratio=True),
    Metric("acks_per_s", "acks/s", ratio=True),
    Metric("cpu_us_per_ack", "server µs CPU per ack", better="lower"),
    Metric("p50_ms", "p50 ms", ".2f", "lower"),
    Metric("p99_ms", "p99 ms", ".2f", "lower"),
    Metric("server_cpu_pct", "server CPU %", ".0f", ""),
    Metric("loadgen_cpu_pct", "loadgen CPU %", ".0f", ""),
]
ACK_PARAMS = {
    "default": {"clients": 50, "warmup_s": 2, "duration_s": 5},
    "quick": {"clients": 50, "warmup_s": 0.5, "duration_s": 2},
}

SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario(
        "A", "ack echo round trips, {clients} clients in closed loop over WebSocket", "ack",
        SOCKETIO_SYSTEMS, "python_socketio", ACK_METRICS, compute_ack, ACK_PARAMS,
        plot=[("A: acks per server CPU-second and per second", ["acks_per_cpu_s", "acks_per_s"]),
              ("A: ack latency (ms)", ["p50_ms", "p99_ms"])],
    ),
    Scenario(
        "B", "broadcast to {clients} clients (closed loop, {window} broadcasts in flight)", "broadcast",
        SOCKETIO_SYSTEMS, "python_socketio",
        [
            Metric("deliveries_per_cpu_s", "deliveries per server CPU-s", ratio=True),
            Metric("deliveries_per_s", "deliveries/s", ratio=True),
            Metric("cpu_us_per_delivery", "server µs CPU per delivery", ".2f", "lower"),
            Metric("broadcasts_per_s", "broadcasts/s", ",.0f"),
            Metric("server_cpu_pct", "server CPU %", ".0f", ""),
            Metric("loadgen_cpu_pct", "loadgen CPU %", ".0f", ""),
        ],
        compute_broadcast,
        {"default": {"clients": 500, "window": 32, "warmup_s": 2, "duration_s": 5},
         "quick": {"clients": 200, "window": 32, "warmup_s": 0.5, "duration_s": 2}},
        plot=[("B: deliveries per server CPU-second and per second",
               ["deliveries_per_cpu_s", "deliveries_per_s"])],
    ),
    Scenario(
        "C", "memory per idle WebSocket client ({clients} clients)", "idle",
        SOCKETIO_SYSTEMS, "python_socketio",
        [
            Metric("kib_per_client", "KiB RSS per client", ".1f", "lower", ratio=True),
            Metric("rss_base_mib", "RSS before (MiB)", ".1f", ""),
            Metric("rss_loaded_mib", "RSS with clients (MiB)", ".1f", ""),
            Metric("connect_cpu_ms_per_client", "server CPU ms per connect", ".2f", "lower"),
            Metric("clients", "clients", ",.0f", ""),
        ],
        compute_idle,
        {"default": {"clients": 2000, "concurrency": 100, "settle_s": 2},
         "full": {"clients": 5000, "concurrency": 100, "settle_s": 3},
         "quick": {"clients": 300, "concurrency": 100, "settle_s": 1}},
        plot=[("C: KiB RSS per idle client", ["kib_per_client"])],
    ),
    Scenario(
        "D", "polling handshake + upgrade to WebSocket, then disconnect ({clients} clients, {concurrency} at a time)", "polling",
        SOCKETIO_SYSTEMS, "python_socketio",
        [
            Metric("cpu_ms_per_client", "server CPU ms per client", ".2f", "lower", ratio=True),
            Metric("clients_per_s", "clients/s", ",.0f"),
            Metric("server_cpu_pct", "server CPU %", ".0f", ""),
            Metric("loadgen_cpu_pct", "loadgen CPU %", ".0f", ""),
        ],
        compute_polling,
        {"default": {"clients": 500, "warmup_clients": 40, "concurrency": 20},
         "quick": {"clients": 100, "warmup_clients": 10, "concurrency": 20}},
        plot=[("D: server CPU ms per polling client", ["cpu_ms_per_client"])],
    ),
    Scenario(
        "E", "Flask-wrapped: ack echo round trips, {clients} clients in closed loop", "ack",
        ["socketio_sync_flask", "flask_socketio", "socketio_sync"], "flask_socketio",
        ACK_METRICS, compute_ack, ACK_PARAMS,
        plot=[("E: Flask-wrapped, acks per server CPU-second and per second", ["acks_per_cpu_s", "acks_per_s"])],
        note="Ratios are to Flask-SocketIO; the bare socketio_sync row shows the cost of the Flask wrapping.",
    ),
    Scenario(
        "F", "ack latency ({ack_clients} clients x {ack_rate_per_client} acks/s, Poisson arrivals) while {bcast_rate} broadcasts/s go to {clients} clients",
        "mixed", SOCKETIO_SYSTEMS, "python_socketio",
        [
            Metric("p50_ms", "p50 ms", ".2f", "lower", ratio=True),
            Metric("p99_ms", "p99 ms", ".2f", "lower", ratio=True),
            Metric("max_ms", "max ms", ".1f", "lower"),
            Metric("acks_per_s", "acks/s", ",.0f"),
            Metric("deliveries_per_s", "deliveries/s", ",.0f"),
            Metric("server_cpu_pct", "server CPU %", ".0f", "lower"),
            Metric("loadgen_cpu_pct", "loadgen CPU %", ".0f", ""),
        ],
        compute_mixed,
        {"default": {"clients": 500, "ack_clients": 10, "ack_rate_per_client": 50, "bcast_rate": 40,
                     "warmup_s": 2, "duration_s": 5},
         "quick": {"clients": 200, "ack_clients": 10, "ack_rate_per_client": 50, "bcast_rate": 40,
                   "warmup_s": 0.5, "duration_s": 2}},
        plot=[("F: ack latency under broadcast load (ms)", ["p50_ms", "p99_ms"])],
        headline="p99_ms",
    ),
]}

for _sc in SCENARIOS.values():
    # Other processes on the server's core: high values mean a noisy measurement.
    _sc.metrics = _sc.metrics + [Metric("other_load_pct", "other load on server core %", ".0f", "")]


# -- processes ------------------------------------------------------------------------------

def pinned(core: int | None) -> Callable[[], None] | None:
    if core is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {core})

    return pin


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_snapshot(pid: int) -> dict[str, Any]:
    """CPU seconds (all threads), RSS and the clock, for ``pid``."""
    t = time.monotonic()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
    return {"t": t, "cpu_s": cpu, "rss_kib": rss, "core_busy_s": core_busy(SERVER_CORE)}


def core_busy(core: int) -> float:
    """Seconds the given core spent busy (anything but idle and iowait) since boot."""
    prefix = f"cpu{core} "
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(prefix):
                v = [int(x) for x in line.split()[1:]]
                return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK  # user nice system irq softirq steal
    return 0.0


class LineReader:
    """Lines of a pipe through a thread, so reads can time out."""

    def __init__(self, stream: Any) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream: Any) -> None:
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout: float) -> str | None:
        return self.q.get(timeout=max(timeout, 0.001))


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


class ServerProcess:
    def __init__(self, system: str, log_path: Path, core: int | None, cprofile: Path | None = None) -> None:
        if system == "node":
            cmd = ["node", str(HERE / "node_server.mjs"), "0"]
        else:
            cmd = [sys.executable, str(HERE / "servers.py"), system, "--port", "0"]
            if cprofile is not None:
                cmd += ["--cprofile", str(cprofile)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("DEBUG", None)  # socketio_sync's and Node's debug logging
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            text=True, preexec_fn=pinned(core),
        )
        self.pid = self.proc.pid
        reader = LineReader(self.proc.stdout)
        deadline = time.monotonic() + 30
        self.port = 0
        while time.monotonic() < deadline:
            try:
                line = reader.get(deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("LISTENING"):
                self.port = int(line.split()[1])
                return
        self.stop()
        raise RuntimeError(f"{system} did not start: {self.log_tail()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 1500) -> str:
        if not self.log.closed:
            self.log.flush()
        try:
            return Path(self.log.name).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)
        if not self.log.closed:
            self.log.close()
            path = Path(self.log.name)
            if path.exists() and path.stat().st_size == 0:
                path.unlink()  # keep only logs that say something


def measure(scenario: Scenario, system: str, params: dict[str, Any], args: argparse.Namespace,
            run_id: str) -> dict[str, Any]:
    """One run: a fresh server, one load generator; returns the run record."""
    core_s, core_l = (SERVER_CORE, LOAD_CORE) if args.pin else (None, None)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "scenario": scenario.name, "system": system, "params": params, "valid": False, "reasons": [],
        "loadavg_before": os.getloadavg(),
    }
    profiling = args.profile and system in args.profile_systems and system != "node"
    cprofile = (RESULTS / f"profile-{scenario.name}-{system}-{run_id}.prof"
                if profiling and args.profile == "cprofile" else None)
    try:
        server = ServerProcess(system, logs / f"{scenario.name}-{system}-{run_id}.log", core_s, cprofile)
    except RuntimeError as exc:
        record["reasons"].append(str(exc))
        return record
    spy = None
    if profiling and args.profile.startswith("pyspy"):
        out = RESULTS / f"profile-{scenario.name}-{system}-{run_id}.txt"
        # Non-blocking by default: the server is not paused for each sample (no timing
        # distortion, but some samples are lost); "pyspy-blocking" pauses it and tends to
        # over-weight system calls.
        extra = [] if args.profile == "pyspy-blocking" else ["--nonblocking"]
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(server.pid), "--format", "raw", "--rate", str(args.profile_rate),
             "--threads", *extra, "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(core_l),
        )
        record["profile"] = str(out)
        time.sleep(0.5)
    if cprofile is not None:
        record["profile"] = str(cprofile)
    cfg = {"scenario": scenario.loadgen, "url": f"http://127.0.0.1:{server.port}", **params}
    snaps: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    other: list[str] = []
    lg = subprocess.Popen(
        ["node", str(HERE / "loadgen.mjs"), json.dumps(cfg)], cwd=HERE, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=pinned(core_l),
    )
    assert lg.stdin is not None
    reader = LineReader(lg.stdout)
    deadline = time.monotonic() + args.run_timeout
    try:
        while True:
            try:
                line = reader.get(deadline - time.monotonic())
            except queue.Empty:
                record["reasons"].append(f"timed out after {args.run_timeout:.0f} s")
                break
            if line is None:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                other.append(line.rstrip())
                continue
            if "sync" in msg:
                if not server.alive():
                    break  # reported below
                snaps[msg["sync"]] = {**proc_snapshot(server.pid), "loadgen": msg}
                lg.stdin.write("\n")
                lg.stdin.flush()
            elif "result" in msg:
                result = msg["result"]
    except (BrokenPipeError, ProcessLookupError, FileNotFoundError) as exc:
        record["reasons"].append(f"lost a process: {exc!r}")
    finally:
        server_alive = server.alive()
        stop_process(lg, 2)
        server.stop()
        if spy is not None:
            try:
                spy.wait(15)
            except subprocess.TimeoutExpired:
                stop_process(spy)
    record["loadavg_after"] = os.getloadavg()
    record["snapshots"] = snaps
    record["result"] = result
    if other:
        record["loadgen_output"] = other[-20:]
    if not server_alive:
        record["reasons"].append(f"server died (exit code {server.proc.returncode}): " + server.log_tail(500))
    if result is None and server_alive:
        record["reasons"].append("no result from the load generator: " + " | ".join(other[-5:]))
    elif result.get("errors"):
        record["reasons"].append(f"{result['errors']} load generator errors: " + "; ".join(result["error_samples"][:3]))
    if not record["reasons"]:
        try:
            record["metrics"] = scenario.compute(result, snaps, params)  # type: ignore[arg-type]
            record["valid"] = True
        except (KeyError, ZeroDivisionError, TypeError) as exc:
            record["reasons"].append(f"incomplete measurement: {exc!r}")
    return record


# -- many workers (G) -------------------------------------------------------------------------
#
# Scenario G runs the benchmark app under `gunicorn -w N` with a Redis adapter on a
# redis-server of its own, for socketio_sync and python-socketio, with 1 worker and with 4,
# and drives four loads one after the other against the same server: acks and broadcasts over
# WebSocket (each client's connection stays on the worker that accepted it) and the same over
# HTTP long-polling only (every request is a new TCP connection, so the kernel hands the
# requests of one client to any worker: socketio_sync forwards them to the owner of the
# session over Redis). Nothing is pinned: 4 workers need both cores.

WORKER_CLASSES = {
    "socketio_sync": "socketio_sync.gunicorn.GeventWebSocketWorker",
    "python_socketio": "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
}
GUNICORN_APPS = {
    "socketio_sync": "cluster_apps:socketio_sync_app",
    "python_socketio": "cluster_apps:python_socketio_app",
}
#: what one operation of each load is, in table headers
LOAD_OPS = {"ws_ack": "ack", "ws_bcast": "delivery", "poll_ack": "ack", "poll_bcast": "delivery"}
#: (key, loadgen scenario, transports, what is counted)
WORKER_LOADS = [
    ("ws_ack", "ack", ["websocket"], "acks"),
    ("ws_bcast", "broadcast", ["websocket"], "deliveries"),
    ("poll_ack", "ack", ["polling"], "acks"),
    ("poll_bcast", "broadcast", ["polling"], "deliveries"),
]
LOAD_LABELS = {"ws_ack": "WebSocket acks", "ws_bcast": "WebSocket broadcast deliveries",
               "poll_ack": "polling acks", "poll_bcast": "polling broadcast deliveries"}


def worker_variant(system: str) -> tuple[str, int]:
    """``"socketio_sync_w4"`` -> ``("socketio_sync", 4)``."""
    stack, _, n = system.rpartition("_w")
    return stack, int(n)


def needs_sticky_sessions(stack: str, workers: int, transports: list[str]) -> bool:
    """python-socketio keeps a session in one process: polling with several workers and no
    sticky sessions fails by design (G reports how often instead of a throughput)."""
    return stack == "python_socketio" and workers > 1 and "polling" in transports


def proc_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_busy_s() -> float:
    """Seconds all cores together spent busy since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return sorted(out)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """A throw-away ``redis-server`` (no persistence) on a free loopback port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop_process(self.proc)


class GunicornProcess:
    """``gunicorn -k WORKER -w N 'cluster_apps:APP(redis_url=...)'`` on a free loopback port."""

    def __init__(self, stack: str, workers: int, redis_url: str, log_path: Path) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "gunicorn", "-k", WORKER_CLASSES[stack], "-w", str(workers),
               "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "3", "--backlog", "2048"]
        if _gunicorn_has_control_socket():
            cmd.append("--no-control-socket")
        cmd.append(f'{GUNICORN_APPS[stack]}(redis_url="{redis_url}")')
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(HERE), env.get("PYTHONPATH")]))
        env.pop("DEBUG", None)
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.workers: list[int] = []
        import socket

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            self.workers = child_pids(self.pid)
            if len(self.workers) == workers:
                try:
                    # Every worker imports the app before it accepts: a few echoes through
                    # fresh connections (which any worker may take) show they do.
                    for _ in range(3 * workers):
                        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                            s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n")
                            if not s.recv(64).startswith(b"HTTP/1.1 200"):
                                raise OSError("not ready")
                    return
                except OSError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn ({stack}, {workers} workers) did not start: " + self.log_tail())

    def log_tail(self, n: int = 1500) -> str:
        self.log.flush()
        try:
            return Path(self.log.name).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None and all(proc_cpu_s(p) is not None for p in self.workers)

    def stop(self) -> None:
        stop_process(self.proc, 10)
        if not self.log.closed:
            self.log.close()


def _gunicorn_has_control_socket() -> bool:
    """gunicorn 25+ opens a control socket at one fixed path (off for parallel servers)."""
    try:
        import gunicorn

        return int(gunicorn.__version__.split(".")[0]) >= 25
    except Exception:
        return False


def worker_stats(port: int, workers: int, tries: int = 80) -> dict[int, Any]:
    """``/bench-stats`` of every worker (see ``cluster_apps.with_stats``), asked over fresh
    connections until each worker has answered (the kernel picks the worker)."""
    import socket

    out: dict[int, Any] = {}
    for _ in range(tries):
        if len(out) >= workers:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /bench-stats HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            st = json.loads(data.partition(b"\r\n\r\n")[2])
            out[st["pid"]] = st
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    return out


def stats_delta(before: dict[int, Any], after: dict[int, Any]) -> dict[str, Any]:
    """Requests and forwarding counters summed over the workers, from ``before`` to ``after``."""
    total: dict[str, int] = {}
    for pid, st in after.items():
        old = before.get(pid, {})
        for group in ("requests", "forwarding"):
            for k, v in (st.get(group) or {}).items():
                key = f"{group}.{k}"
                total[key] = total.get(key, 0) + v - ((old.get(group) or {}).get(k, 0))
    return {"totals": total, "workers_answered": len(after)}


def cluster_snapshot(pids: dict[str, int]) -> dict[str, Any]:
    return {"t": time.monotonic(), "machine_busy_s": machine_busy_s(),
            "cpu_s": {name: proc_cpu_s(pid) for name, pid in pids.items()},
            "rss_kib": {name: proc_rss_kib(pid) for name, pid in pids.items()}}


def run_loadgen(cfg: dict[str, Any], pids: dict[str, int], timeout: float
                ) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
    """One loadgen.mjs run (unpinned); snapshots of every process in ``pids`` (and of the
    load generator, as ``loadgen``) at each of its sync points."""
    lg = subprocess.Popen(["node", str(HERE / "loadgen.mjs"), json.dumps(cfg)], cwd=HERE, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert lg.stdin is not None
    reader = LineReader(lg.stdout)
    snaps: dict[str, Any] = {}
    other: list[str] = []
    result = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                line = reader.get(deadline - time.monotonic())
            except queue.Empty:
                other.append(f"timed out after {timeout:.0f} s")
                break
            if line is None:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                other.append(line.rstrip())
                continue
            if "sync" in msg:
                snaps[msg["sync"]] = cluster_snapshot({**pids, "loadgen": lg.pid})
                lg.stdin.write("\n")
                lg.stdin.flush()
            elif "result" in msg:
                result = msg["result"]
    except (BrokenPipeError, ProcessLookupError) as exc:
        other.append(f"lost the load generator: {exc!r}")
    finally:
        stop_process(lg, 2)
    return result, snaps, other


def cpu_breakdown(snaps: dict[str, Any]) -> dict[str, Any]:
    """CPU % of one core, from the start to the end of the window, by process group."""
    a, b = snaps["start"], snaps["end"]
    wall = b["t"] - a["t"]

    def pct(name: str) -> float:
        x, y = a["cpu_s"].get(name), b["cpu_s"].get(name)
        return 100 * (y - x) / wall if x is not None and y is not None else 0.0

    workers = sorted((pct(n) for n in a["cpu_s"] if n.startswith("worker")), reverse=True)
    out = {"workers_pct": workers, "master_pct": pct("master"), "redis_pct": pct("redis"),
           "loadgen_pct": pct("loadgen"), "wall_s": wall}
    out["server_pct"] = sum(workers) + out["master_pct"]
    ours = out["server_pct"] + out["redis_pct"] + out["loadgen_pct"]
    out["other_pct"] = max(0.0, 100 * (b["machine_busy_s"] - a["machine_busy_s"]) / wall - ours)
    return out


def measure_workers(scenario: Scenario, system: str, params: dict[str, Any], args: argparse.Namespace,
                    run_id: str) -> dict[str, Any]:
    """One G run: a redis-server, gunicorn with N workers, then the four loads in turn."""
    stack, workers = worker_variant(system)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"scenario": scenario.name, "system": system, "params": params, "valid": False,
                              "reasons": [], "loadavg_before": os.getloadavg(), "loads": {}}
    redis = gun = None
    metrics: dict[str, float] = {}
    # Not pinned: the children inherit the runner's (main thread's) affinity, all cores here.
    saved_affinity = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if saved_affinity is not None:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        redis = RedisProcess()
        gun = GunicornProcess(stack, workers, redis.url, logs / f"{scenario.name}-{system}-{run_id}.log")
        pids = {"master": gun.pid, "redis": redis.pid, **{f"worker{i}": p for i, p in enumerate(gun.workers)}}
        for key, loadgen, transports, counted in WORKER_LOADS:
            if key not in params["loads"]:
                continue
            probe = needs_sticky_sessions(stack, workers, transports)
            if probe and loadgen != "ack":
                record["loads"][key] = {"skipped": "needs sticky sessions (see the failure probe of polling acks)"}
                continue
            clients = params["ack_clients"] if loadgen == "ack" else params["bcast_clients"]
            cfg = {"scenario": loadgen, "url": f"http://127.0.0.1:{gun.port}", "transports": transports,
                   "clients": clients, "window": params["window"], "warmup_s": params["warmup_s"],
                   "duration_s": params["duration_s"]}
            before = worker_stats(gun.port, workers)
            result, snaps, other = run_loadgen(cfg, pids, args.run_timeout)
            load: dict[str, Any] = {"result": result, "snapshots": snaps, "probe": probe,
                                    "requests": stats_delta(before, worker_stats(gun.port, workers))}
            if other:
                load["loadgen_output"] = other[-20:]
            record["loads"][key] = load
            if not gun.alive():
                record["reasons"].append(f"{key}: gunicorn or a worker died: " + gun.log_tail(500))
                break
            if result is None:
                load["invalid"] = "no result from the load generator: " + " | ".join(other[-5:])
                continue
            if probe:
                load["failures"] = result.get("failures", {})
                continue
            # A load with errors is left out (its metrics are missing from this run); the
            # others still count. The extra tables list why.
            if result.get("errors"):
                load["invalid"] = (f"{result['errors']} load generator errors: "
                                   + "; ".join(result["error_samples"][:3]))
                print(f"    {system} {key}: INVALID: {load['invalid'][:300]}", flush=True)
                continue
            if "start" not in snaps or "end" not in snaps:
                load["invalid"] = "incomplete measurement"
                continue
            cpu = cpu_breakdown(snaps)
            load["cpu"] = cpu
            ops = result[counted]
            metrics[f"{key}_per_s"] = ops / result["elapsed_s"]
            metrics[f"{key}_cpu_us"] = (cpu["server_pct"] + cpu["redis_pct"]) / 100 * cpu["wall_s"] / ops * 1e6
            metrics[f"{key}_other_pct"] = cpu["other_pct"]
            print(f"    {system} {key}: {ops / result['elapsed_s']:,.0f} {counted}/s; CPU % server "
                  f"{cpu['server_pct']:.0f} (workers {', '.join(f'{w:.0f}' for w in cpu['workers_pct'])}), "
                  f"redis {cpu['redis_pct']:.0f}, loadgen {cpu['loadgen_pct']:.0f}, other {cpu['other_pct']:.0f}; "
                  f"owners {len(result.get('owners') or {})}; {forwarded_text(load['requests'])}", flush=True)
    except RuntimeError as exc:
        record["reasons"].append(str(exc))
    finally:
        if gun is not None:
            gun.stop()
        if redis is not None:
            redis.stop()
        if saved_affinity is not None:
            os.sched_setaffinity(0, saved_affinity)
    record["loadavg_after"] = os.getloadavg()
    record["metrics"] = metrics
    record["valid"] = not record["reasons"]
    return record


def forwarded_text(requests: dict[str, Any]) -> str:
    """"N HTTP requests, M forwarded (x %)" from :func:`stats_delta`."""
    t = requests.get("totals", {})
    n = t.get("requests.GET", 0) + t.get("requests.POST", 0)
    fwd = t.get("forwarding.forwarded_get", 0) + t.get("forwarding.forwarded_post", 0) + t.get("forwarding.forwarded_ws", 0)
    if not any(k.startswith("forwarding.") for k in t):
        return f"{n:,} HTTP requests"
    return f"{n:,} HTTP requests, {fwd:,} forwarded ({100 * fwd / n if n else 0:.0f} %)"


def workers_tables(scenario: Scenario, summary: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """G's extra tables: the scaling ratios, where the CPU went, and the sticky-session failures."""
    med = lambda system, key: summary.get(system, {}).get("stats", {}).get(key, {}).get("median")  # noqa: E731
    lines = ["#### G: scaling, median of `-w 4` / median of `-w 1` (>= 1: scales; < 1: slower with more workers)",
             "", "| stack | " + " | ".join(LOAD_LABELS[k] + "/s" for k, *_ in WORKER_LOADS)
             + " | " + " | ".join(f"server+redis CPU µs per {LOAD_OPS[k]} ({k})" for k, *_ in WORKER_LOADS)
             + " |", "|---" * (1 + 2 * len(WORKER_LOADS)) + "|"]
    for stack in ("socketio_sync", "python_socketio"):
        one, many = f"{stack}_w1", f"{stack}_w4"
        if one not in summary or many not in summary:
            continue
        cells = []
        for suffix in ("_per_s", "_cpu_us"):
            for k, *_ in WORKER_LOADS:
                x, y = med(many, k + suffix), med(one, k + suffix)
                cells.append(f"{x / y:.2f}" if x is not None and y else "—")
        lines.append(f"| {LABELS.get(stack, stack)} | " + " | ".join(cells) + " |")
    lines += ["", "#### G: where the CPU went (% of one core; the machine has "
              f"{os.cpu_count()} cores, so 100 % x {os.cpu_count()} in all; first valid run of each)", "",
              "| system | load | rate/s | server (workers + master) | per worker | redis-server | load generator | "
              "other processes | server + redis µs per op | owners (sessions per worker) | "
              "requests (whole run, warm-up included) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for system in summary:
        for r in runs:
            if r["system"] != system or not r.get("loads"):
                continue
            for key, load in r["loads"].items():
                cpu = load.get("cpu")
                if not cpu:
                    continue
                own = sorted((load["result"].get("owners") or {}).values(), reverse=True)
                own_s = ", ".join(map(str, own)) if system.startswith("socketio_sync") else "—"
                lines.append(
                    f"| {LABELS.get(system, system)} | {LOAD_LABELS[key]} | {r['metrics'].get(key + '_per_s', 0):,.0f} | "
                    f"{cpu['server_pct']:.0f} | {' / '.join(f'{w:.0f}' for w in cpu['workers_pct'])} | "
                    f"{cpu['redis_pct']:.0f} | {cpu['loadgen_pct']:.0f} | {cpu['other_pct']:.0f} | "
                    f"{r['metrics'].get(key + '_cpu_us', 0):,.0f} | {own_s} | {forwarded_text(load.get('requests', {}))} |")
            break
    invalid = [(r, key, load) for r in runs for key, load in (r.get("loads") or {}).items() if load.get("invalid")]
    if invalid:
        lines += ["", "Loads left out (invalid): " + "; ".join(
            f"{LABELS.get(r['system'], r['system'])} rep {r.get('rep', 0) + 1} {LOAD_LABELS[key]}: {load['invalid'][:200]}"
            for r, key, load in invalid)]
    probes = [(r, load) for r in runs for load in (r.get("loads") or {}).values() if load.get("probe")]
    if probes:
        lines += ["", "#### G: polling without sticky sessions where the server needs them (no throughput: "
                  "failure rates)", "",
                  "| system | clients tried | failed connects | HTTP 400 seen by clients | unknown session "
                  "(\"Session ID unknown\", python-engineio: \"Invalid session\") | error responses (status and body: count) | acks answered | acks failed | "
                  "dropped after connect |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r, load in probes:
            f = load.get("failures") or {}
            tried = f.get("connect_attempts", 0)
            failed = f.get("connect_failures", 0)
            statuses = ", ".join(f"`{k}`: {v}" for k, v in sorted((f.get("bodies") or {}).items()))
            lines.append(
                f"| {LABELS.get(r['system'], r['system'])} | {tried} | {failed} ({100 * failed / tried if tried else 0:.0f} %) | "
                f"{f.get('http_400', 0)} | {f.get('session_id_unknown', 0)} | {statuses or '—'} | {f.get('acks_ok', 0)} | "
                f"{f.get('ack_failures', 0)} | {f.get('unexpected_disconnects', 0)} |")
    return "\n".join(lines)


# -- memory after the soak (S) ----------------------------------------------------------------

def measure_soak(scenario: Scenario, system: str, params: dict[str, Any], args: argparse.Namespace,
                 run_id: str) -> dict[str, Any]:
    """One S run: ``tests/soak.py``'s two rounds against ``tests/apps/soak_app.py`` in a fresh
    process; RSS from the app's ``/stats`` (VmRSS) and ``/proc``, the leak counters of the report."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import soak

    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"scenario": scenario.name, "system": system, "params": params, "valid": False,
                              "reasons": [], "loadavg_before": os.getloadavg()}
    opts = soak.server_opts()
    cmd = [sys.executable, "-m", "tests.apps.serve", soak.APP, "--port", "0"]
    for key, value in opts.items():
        cmd += ["--opt", f"{key}={json.dumps(value)}"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DEBUG", None)
    log_path = logs / f"{scenario.name}-{system}-{run_id}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                                stdin=subprocess.DEVNULL,
                                preexec_fn=pinned(SERVER_CORE if args.pin else None))
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("LISTENING"):
                record["reasons"].append(f"the soak app did not start: {line!r}")
                return record
            url = f"http://127.0.0.1:{int(line.split()[1])}"

            def progress(msg: str) -> None:
                log.write(msg + "\n")
                if not msg.startswith("  node:"):
                    print("    " + msg[:200], flush=True)

            start = proc_snapshot(proc.pid)
            report = soak.run(url, clients=params["clients"], seconds=params["seconds"],
                              warmup_seconds=params["warmup_seconds"], ws_share=params["ws_share"],
                              ping_interval=opts["ping_interval"], ping_timeout=opts["ping_timeout"],
                              connect_timeout=opts["connect_timeout"], log=progress)
            end = proc_snapshot(proc.pid)
            alive = proc.poll() is None
        except Exception as exc:  # the soak raises RuntimeError and URLError on a dead server
            record["reasons"].append(f"the soak failed: {exc!r}")
            return record
        finally:
            stop_process(proc)
    if not alive:
        record["reasons"].append(f"the soak server died (exit code {proc.returncode})")
    found = soak.problems(report)
    report["problems"] = found
    record["soak"] = {k: v for k, v in report.items() if k not in ("warmup", "main")}
    for name in ("warmup", "main"):
        record["soak"][name] = {k: v for k, v in report[name].items() if k != "series"}
    mib = 1 / 2**20
    base, warm, main = report["baseline"], report["warmup"]["settled"], report["main"]["settled"]
    peak = max(report[n]["peak"].get("rss", 0) for n in ("warmup", "main"))
    left = soak.leftovers(main, base, 0)
    record["problems"] = found
    record["metrics"] = {
        "rss_start_mib": base["rss"] * mib,
        "rss_warmup_mib": warm["rss"] * mib,
        "rss_main_mib": main["rss"] * mib,
        "rss_delta_mib": (main["rss"] - warm["rss"]) * mib,
        "rss_delta_start_mib": (main["rss"] - base["rss"]) * mib,
        "rss_peak_mib": max(peak, main.get("rss_peak") or 0) * mib,
        "sessions_left": main["sessions"], "sockets_left": main["sockets"],
        "room_entries_left": main["rooms"] + main["sids"], "timers_left": main["timers"],
        "live_objects_left": sum((main.get("live_objects") or {}).values()),
        "greenlets_over_start": main["greenlets"] - base["greenlets"],
        "fds_over_start": (main["fds"] or 0) - (base["fds"] or 0),
        "gc_objects_growth": report["gc_objects_growth"],
        "allocated_blocks_growth": report["allocated_blocks_growth"],
        "connections": main["counters"]["connections"],
        "client_errors": report["warmup"]["node"]["errors"] + report["main"]["node"]["errors"],
        "server_cpu_s": end["cpu_s"] - start["cpu_s"],
        "problems": len(found),
    }
    record["leftovers"] = left
    record["loadavg_after"] = os.getloadavg()
    record["valid"] = not record["reasons"]
    return record


def soak_tables(scenario: Scenario, summary: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.soak import RSS_MARGIN_MB as soak_margin_mb

    lines = []
    for r in runs:
        if not r.get("soak"):
            continue
        rep = r["soak"]
        lines.append(f"Soak checks of `tests/soak.py` (margins: RSS {soak_margin_mb} MB, greenlets "
                     "+66): " + ("all passed" if not r["problems"] else "FAILED: " + "; ".join(r["problems"])[:600]))
        lines.append(f"Greenlets above the count before any client are expected up to the idle worker pool "
                     f"(64) plus 2. Peaks during the main churn: {rep['main']['peak']}.")
    return "\n".join(lines)


WORKER_PARAMS = {
    "default": {"ack_clients": 50, "bcast_clients": 200, "window": 32, "warmup_s": 2, "duration_s": 5,
                "loads": [k for k, *_ in WORKER_LOADS]},
    "quick": {"ack_clients": 50, "bcast_clients": 100, "window": 32, "warmup_s": 0.5, "duration_s": 2,
              "loads": [k for k, *_ in WORKER_LOADS]},
}

SCENARIOS["G"] = Scenario(
    "G", "gunicorn -w 1 vs -w 4 with the Redis adapter: {ack_clients} clients acking in closed loop, "
    "broadcasts to {bcast_clients} clients ({window} in flight), over WebSocket and over polling only",
    "", ["socketio_sync_w1", "socketio_sync_w4", "python_socketio_w1", "python_socketio_w4"], "python_socketio_w4",
    [Metric(f"{k}_per_s", LOAD_LABELS[k] + "/s") for k, *_ in WORKER_LOADS]
    + [Metric(f"{k}_cpu_us", f"server+redis µs CPU per {LOAD_OPS[k]} ({k})", ",.0f", "lower")
       for k, *_ in WORKER_LOADS]
    + [Metric(f"{k}_other_pct", f"other processes, % of a core ({k})", ".0f", "") for k, *_ in WORKER_LOADS],
    lambda r, s, p: {}, WORKER_PARAMS,
    plot=[("G: acks/s, WebSocket and polling", ["ws_ack_per_s", "poll_ack_per_s"]),
          ("G: broadcast deliveries/s", ["ws_bcast_per_s", "poll_bcast_per_s"])],
    note=("gunicorn with socketio_sync's worker or gevent-websocket's, one redis-server per run; nothing pinned "
          "(4 workers need both cores), so the load generator, Redis and the workers share the machine's "
          f"{os.cpu_count()} cores. WebSocket clients stay on the worker that accepted them; every polling "
          "request is a new TCP connection that any worker may accept. python-socketio -w 4 cannot serve "
          "polling clients without sticky sessions: its polling rows are a failure probe (table below)."),
    headline="ws_ack_per_s", runner=measure_workers, extra=workers_tables,
)

SCENARIOS["S"] = Scenario(
    "S", "memory after the soak: {clients} clients, {warmup_seconds} s warm-up + {seconds} s churn "
    "({ws_share} on WebSocket, the rest polling)",
    "", ["socketio_sync"], "",
    [
        Metric("rss_start_mib", "RSS before any client (MiB)", ".1f", ""),
        Metric("rss_warmup_mib", "RSS after warm-up (MiB)", ".1f", ""),
        Metric("rss_main_mib", "RSS after the churn (MiB)", ".1f", ""),
        Metric("rss_delta_mib", "Δ RSS churn − warm-up (MiB)", "+.1f", "lower"),
        Metric("rss_delta_start_mib", "Δ RSS churn − start (MiB)", "+.1f", "lower"),
        Metric("rss_peak_mib", "peak RSS (MiB)", ".1f", "lower"),
        Metric("sessions_left", "sessions left", ",.0f", "lower"),
        Metric("sockets_left", "sockets left", ",.0f", "lower"),
        Metric("room_entries_left", "room entries left", ",.0f", "lower"),
        Metric("timers_left", "timers left", ",.0f", "lower"),
        Metric("live_objects_left", "live session/socket objects", ",.0f", "lower"),
        Metric("greenlets_over_start", "greenlets over start", ",.0f", "lower"),
        Metric("fds_over_start", "fds over start", ",.0f", "lower"),
        Metric("gc_objects_growth", "gc objects churn − warm-up", "+,.0f", ""),
        Metric("allocated_blocks_growth", "allocated blocks churn − warm-up", "+,.0f", ""),
        Metric("connections", "connections made", ",.0f", ""),
        Metric("client_errors", "client errors", ",.0f", "lower"),
        Metric("problems", "failed soak checks", ",.0f", "lower"),
    ],
    lambda r, s, p: {},
    {"default": {"clients": 500, "seconds": 20, "warmup_seconds": 8, "ws_share": 0.8},
     "quick": {"clients": 200, "seconds": 8, "warmup_seconds": 4, "ws_share": 0.8}},
    plot=[("S: RSS before, after warm-up, after the churn (MiB)", ["rss_start_mib", "rss_warmup_mib", "rss_main_mib"])],
    note=("tests/soak.py against tests/apps/soak_app.py (socketio_sync only: python-socketio has no such "
          "introspection); RSS is VmRSS read by the app after a gc.collect() once every client has gone and "
          "the server has settled; the leak counters are the soak's own (after the churn)."),
    runner=measure_soak, extra=soak_tables,
)


# -- summary -------------------------------------------------------------------------------

def summarize(scenario: Scenario, runs: list[dict[str, Any]], systems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for system in systems:
        mine = [r for r in runs if r["system"] == system]
        valid = [r for r in mine if r["valid"]]
        stats: dict[str, Any] = {}
        for m in scenario.metrics:
            values = [r["metrics"][m.key] for r in valid if r["metrics"].get(m.key) is not None]
            if values:
                stats[m.key] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                                "values": values}
        out[system] = {"runs": len(mine), "valid": len(valid), "stats": stats,
                       "invalid_reasons": [r["reasons"] for r in mine if not r["valid"]]}
    base = out.get(scenario.baseline)
    for system, s in out.items():
        ratios = {}
        for m in scenario.metrics:
            if m.key in s["stats"] and base and m.key in base["stats"] and base["stats"][m.key]["median"]:
                ratios[m.key] = s["stats"][m.key]["median"] / base["stats"][m.key]["median"]
        s["ratios"] = ratios
    return out


def fmt(value: float, spec: str) -> str:
    return format(value, spec)


def table(scenario: Scenario, summary: dict[str, Any], reps: int, title: str) -> str:
    base_label = LABELS.get(scenario.baseline, scenario.baseline)
    header = ["system", "valid runs"]
    for m in scenario.metrics:
        arrow = {"higher": " ↑", "lower": " ↓"}.get(m.better, "")
        header.append(m.label + arrow)
        if m.ratio:
            header.append(f"× {base_label}")
    rows = [header]
    for system, s in summary.items():
        row = [LABELS.get(system, system), f"{s['valid']}/{s['runs']}"]
        for m in scenario.metrics:
            st = s["stats"].get(m.key)
            if st is None:
                row.append("invalid" if s["runs"] and not s["valid"] else "—")
            elif len(st["values"]) > 1:
                row.append(f"{fmt(st['median'], m.fmt)} ({fmt(st['min'], m.fmt)}–{fmt(st['max'], m.fmt)})")
            else:
                row.append(fmt(st["median"], m.fmt))
            if m.ratio:
                r = s["ratios"].get(m.key)
                row.append(f"{r:.2f}" if r is not None else "—")
        rows.append(row)
    lines = [f"### {scenario.name}. {title}", ""]
    ratio_note = f"; × = median / median of {base_label}" if scenario.baseline else ""
    lines.append("| " + " | ".join(rows[0]) + " |")
    lines.append("|" + "|".join("---" for _ in rows[0]) + "|")
    for row in rows[1:]:
        lines.append("| " + " | ".join(row) + " |")
    notes = [f"Medians of {reps} run(s) per system, (min–max) when more than one; ↑ higher is better, "
             f"↓ lower is better{ratio_note}."]
    if scenario.note:
        notes.append(scenario.note)
    for system, s in summary.items():
        for reasons in s["invalid_reasons"]:
            notes.append(f"INVALID run of {LABELS.get(system, system)}: " + "; ".join(reasons)[:300])
    lines += [""] + notes
    return "\n".join(lines)


LEGEND = {"acks_per_cpu_s": "per server CPU-second", "acks_per_s": "per second (wall)",
          "deliveries_per_cpu_s": "per server CPU-second", "deliveries_per_s": "per second (wall)",
          "p50_ms": "p50", "p99_ms": "p99"}


def plot(path: Path, scenarios: list[Scenario], summaries: dict[str, Any], caption: str = "") -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    panels = [(sc, title, keys) for sc in scenarios for title, keys in sc.plot if sc.name in summaries]
    if not panels:
        return False
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows), squeeze=False)
    colors = {"socketio_sync": "#2a7ab9", "socketio_sync_flask": "#6aaed6", "python_socketio": "#e07b39",
              "flask_socketio": "#f2b279", "node": "#5a9e4b", "socketio_sync_w1": "#6aaed6",
              "socketio_sync_w4": "#2a7ab9", "python_socketio_w1": "#f2b279", "python_socketio_w4": "#e07b39"}
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    if caption and len(panels) < rows * cols:
        axes.flat[len(panels)].text(0, 1, caption, va="top", ha="left", fontsize=7.5, wrap=True,
                                    transform=axes.flat[len(panels)].transAxes)
    for ax, (sc, title, keys) in zip(axes.flat, panels):
        summary = summaries[sc.name]
        systems = [s for s in summary if any(k in summary[s]["stats"] for k in keys)]
        width = 0.8 / len(keys)
        for j, key in enumerate(keys):
            xs, meds, lo, hi, cols_ = [], [], [], [], []
            for i, system in enumerate(systems):
                st = summary[system]["stats"].get(key)
                if st is None:
                    continue
                xs.append(i + (j - (len(keys) - 1) / 2) * width)
                meds.append(st["median"])
                lo.append(st["median"] - st["min"])
                hi.append(st["max"] - st["median"])
                cols_.append(colors.get(system, "grey"))
            bars = ax.bar(xs, meds, width * 0.9, yerr=[lo, hi], capsize=3, color=cols_,
                          alpha=1.0 if j == 0 else 0.55, edgecolor="black", linewidth=0.5,
                          label=LEGEND.get(key, key) if len(keys) > 1 else None)
            for b, v, up in zip(bars, meds, hi):
                ax.annotate(f"{v:,.0f}" if v >= 100 else f"{v:.3g}", (b.get_x() + b.get_width() / 2, v + up),
                            ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(systems)))
        ax.set_xticklabels([LABELS.get(s, s).replace(" + ", "\n+ ") for s in systems], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    fig.suptitle("socketio_sync benchmarks (medians, bars = min–max; server on 1 core)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- targets -------------------------------------------------------------------------------

def _median(summaries: dict[str, Any], sc: str, system: str, key: str) -> float | None:
    st = summaries.get(sc, {}).get(system, {}).get("stats", {}).get(key)
    return st["median"] if st else None


def targets(summaries: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """The performance goals for socketio_sync, checked against this run's medians."""
    rows: list[tuple[str, str, bool | None]] = []

    def ratio(sc: str, key: str, a: str, b: str) -> float | None:
        x, y = _median(summaries, sc, a, key), _median(summaries, sc, b, key)
        return x / y if x is not None and y else None

    def add(label: str, value: float | None, ok: Callable[[float], bool], unit: str = "x") -> None:
        if value is None:
            rows.append((label, "not measured", None))
        else:
            rows.append((label, f"{value:.2f}{unit}" if unit == "x" else f"{value:.2f} {unit}", ok(value)))

    add("A: acks per server CPU-s >= 2.5x python-socketio",
        ratio("A", "acks_per_cpu_s", "socketio_sync", "python_socketio"), lambda v: v >= 2.5)
    add("B: deliveries per server CPU-s >= 1.5x python-socketio",
        ratio("B", "deliveries_per_cpu_s", "socketio_sync", "python_socketio"), lambda v: v >= 1.5)
    add("C: <= 25 KiB per idle client", _median(summaries, "C", "socketio_sync", "kib_per_client"),
        lambda v: v <= 25, "KiB")
    add("D: <= 2.0 ms server CPU per polling client",
        _median(summaries, "D", "socketio_sync", "cpu_ms_per_client"), lambda v: v <= 2.0, "ms")
    add("E: Flask-wrapped within 20% of bare (acks per CPU-s)",
        ratio("E", "acks_per_cpu_s", "socketio_sync_flask", "socketio_sync"), lambda v: v >= 0.8)
    for stack in ("socketio_sync", "python_socketio"):
        for key in ("ws_ack_per_s", "poll_ack_per_s"):
            if stack == "python_socketio" and key.startswith("poll"):
                continue  # needs sticky sessions with -w 4
            add(f"G: {LABELS[stack]} -w 4 not slower than -w 1 ({key})",
                ratio("G", key, f"{stack}_w4", f"{stack}_w1"), lambda v: v >= 1.0)
    if "S" in summaries:
        add("S: RSS after the churn within 30 MB of the warm-up",
            _median(summaries, "S", "socketio_sync", "rss_delta_mib"), lambda v: v <= 30, "MiB")
    for name in summaries:
        sc = SCENARIOS[name]
        if not sc.baseline:
            continue  # S compares with nothing
        head = next((m for m in sc.metrics if m.key == sc.headline),
                    next((m for m in sc.metrics if m.ratio), sc.metrics[0]))
        ours = {"E": "socketio_sync_flask", "G": "socketio_sync_w4"}.get(name, "socketio_sync")
        r = ratio(name, head.key, ours, sc.baseline)
        if r is not None and head.better == "lower":
            r = 1 / r
        add(f"{name}: at least as good as {LABELS[sc.baseline]} on {head.label} (>= 1x is better)", r,
            lambda v: v >= 1.0)
    return rows


def targets_table(rows: list[tuple[str, str, bool | None]]) -> str:
    lines = ["### Targets", "", "| target | this run | met |", "|---|---|---|"]
    for label, value, ok in rows:
        lines.append(f"| {label} | {value} | {'yes' if ok else ('—' if ok is None else 'NO')} |")
    return "\n".join(lines)


# -- environment ---------------------------------------------------------------------------

def ensure_node_modules() -> None:
    if (HERE / "node_modules" / "socket.io-client").is_dir() and (HERE / "node_modules" / "socket.io").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to install the load generator's packages (benchmarks/package.json)")
    cmd = [npm, "ci" if (HERE / "package-lock.json").exists() else "install", "--no-audit", "--no-fund",
           "--loglevel=error"]
    print("installing the load generator:", " ".join(cmd[1:]), file=sys.stderr)
    subprocess.run(cmd, cwd=HERE, check=True)


def versions() -> dict[str, Any]:
    from importlib import metadata

    v: dict[str, Any] = {"python": platform.python_version()}
    for dist in ["socketio_sync", "python-socketio", "python-engineio", "gevent", "gevent-websocket",
                 "Flask", "Flask-SocketIO", "wsproto"]:
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            v[dist] = None
    try:
        v["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        for pkg in ["socket.io", "socket.io-client"]:
            v[pkg] = json.loads((HERE / "node_modules" / pkg / "package.json").read_text())["version"]
    except (OSError, ValueError):
        pass
    try:
        v["git"] = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return v


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def available_systems(wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    skipped = {}
    ok = []
    for system in wanted:
        stack = system.rpartition("_w")[0] if system.rpartition("_w")[2].isdigit() else system
        module = {"python_socketio": "socketio", "flask_socketio": "flask_socketio",
                  "socketio_sync_flask": "flask"}.get(stack)
        if module:
            probe = subprocess.run([sys.executable, "-c", f"import {module}, geventwebsocket"],
                                   capture_output=True)
            if probe.returncode:
                skipped[system] = f"python module {module} (or geventwebsocket) is not installed"
                continue
        ok.append(system)
    return ok, skipped


# -- main ----------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short windows and 1 repetition (smoke run, < 2 min)")
    parser.add_argument("--full", action="store_true", help="scenario C with 5000 clients")
    parser.add_argument("--scenarios", default="A,B,C,D,E,F", help="comma-separated, e.g. A,B")
    parser.add_argument("--systems", default="", help="only these systems (comma-separated)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per system (default 3; 1 with --quick)")
    parser.add_argument("--duration", type=float, default=None, help="override the measurement window (s)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                        help="override a load parameter of the chosen scenarios, e.g. --param window=8")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin server and load to cores")
    parser.add_argument("--run-timeout", type=float, default=120.0, help="seconds one run may take at most")
    parser.add_argument("--profile", choices=["pyspy", "pyspy-blocking", "cprofile"], default=None,
                        help="profile the Python servers (see --profile-systems) into results/")
    parser.add_argument("--profile-systems", default="socketio_sync",
                        help="systems to profile with --profile (comma-separated)")
    parser.add_argument("--profile-rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--out", default=None, help="basename for the result files (default bench-<time>)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any run is invalid (for CI smoke runs)")
    args = parser.parse_args()
    args.profile_systems = args.profile_systems.split(",")
    profile = "quick" if args.quick else ("full" if args.full else "default")
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)

    if shutil.which("node") is None:
        sys.exit("node is needed for the load generator (benchmarks/loadgen.mjs)")
    ensure_node_modules()
    raise_fd_limit()
    if args.pin and (not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2
                     or not {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0)):
        print("fewer than 2 usable cores: not pinning", file=sys.stderr)
        args.pin = False
    if args.pin:
        # The runner itself stays off the server's core.
        os.sched_setaffinity(0, {LOAD_CORE})

    names = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    only = [s.strip() for s in args.systems.split(",") if s.strip()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = args.out or f"bench-{stamp}"

    meta = {
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "profile": profile, "reps": reps, "pinned": args.pin,
        "cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
        "loadavg_start": os.getloadavg(), "versions": versions(), "command": " ".join(sys.argv),
    }
    print(f"# socketio_sync benchmarks ({profile}, {reps} rep(s), "
          f"{'server on core 0, load on core 1' if args.pin else 'not pinned'}); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    summaries: dict[str, Any] = {}
    all_runs: dict[str, list[dict[str, Any]]] = {}
    skipped_all: dict[str, str] = {}
    titles: dict[str, str] = {}
    params_used: dict[str, Any] = {}
    tables = []
    t_start = time.monotonic()
    any_invalid = False
    for name in names:
        sc = SCENARIOS[name]
        params = dict(sc.params.get(profile) or sc.params["default"])
        if args.duration is not None and "duration_s" in params:
            params["duration_s"] = args.duration
        if args.duration is not None and "seconds" in params:
            params["seconds"] = args.duration
        for item in args.param:
            key, _, value = item.partition("=")
            params[key] = json.loads(value)
        wanted = [s for s in sc.systems if not only or s in only or s.rpartition("_w")[0] in only]
        if "node" in wanted and shutil.which("node") is None:
            wanted.remove("node")
        systems, skipped = available_systems(wanted)
        skipped_all.update(skipped)
        runs: list[dict[str, Any]] = []
        for rep in range(reps):
            order = systems[rep % len(systems):] + systems[:rep % len(systems)] if systems else []
            for system in order:
                t0 = time.monotonic()
                rec = (sc.runner or measure)(sc, system, params, args, f"{stamp}-{rep}")
                rec["rep"] = rep
                runs.append(rec)
                status = "ok" if rec["valid"] else "INVALID: " + "; ".join(rec["reasons"])[:300]
                head = sc.metrics[0]
                value = rec.get("metrics", {}).get(head.key)
                shown = f"{head.label} {fmt(value, head.fmt)}" if value is not None else ""
                print(f"  {name} rep {rep + 1}/{reps} {LABELS.get(system, system):<24} "
                      f"{time.monotonic() - t0:5.1f} s  {shown}  {status}", flush=True)
                any_invalid |= not rec["valid"]
        all_runs[name] = runs
        summaries[name] = summarize(sc, runs, systems)
        titles[name] = sc.title.format(**params)
        params_used[name] = params
        text = table(sc, summaries[name], reps, titles[name])
        if sc.extra is not None:
            text += "\n\n" + sc.extra(sc, summaries[name], runs)
        if skipped:
            text += "\n" + "\n".join(f"Skipped {LABELS.get(k, k)}: {v}" for k, v in skipped.items())
        tables.append(text)
        print("\n" + text + "\n", flush=True)

    target_rows = targets(summaries)
    text = targets_table(target_rows)
    tables.append(text)
    print(text + "\n", flush=True)
    meta["elapsed_s"] = time.monotonic() - t_start
    meta["loadavg_end"] = os.getloadavg()
    intro = (f"socketio_sync benchmarks, {meta['started']}: {meta['cpu']}, {meta['cores']} cores, "
             f"{'server pinned to core 0 and load generator to core 1' if args.pin else 'not pinned'}; "
             f"{reps} repetition(s) per system, alternating; profile {profile}; load average "
             f"{meta['loadavg_start'][0]:.2f} at the start, {meta['loadavg_end'][0]:.2f} at the end; "
             f"{meta['elapsed_s']:.0f} s.\n\nVersions: "
             + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v) + "\n")
    md = "# Benchmark results\n\n" + intro + "\n" + "\n\n".join(tables) + "\n"
    data = {"meta": meta, "skipped": skipped_all,
            "targets": [{"target": t, "value": v, "met": ok} for t, v, ok in target_rows],
            "scenarios": {n: {"title": titles[n], "params": params_used[n], "baseline": SCENARIOS[n].baseline,
                              "summary": summaries[n], "runs": all_runs[n]} for n in names}}
    paths = [RESULTS / f"{base}.json", RESULTS / f"{base}.md"]
    paths[0].write_text(json.dumps(data, indent=1))
    paths[1].write_text(md)
    png = RESULTS / f"{base}.png"
    caption = "\n".join([
        meta["started"].replace("T", " "), f"{meta['cpu']}, {meta['cores']} cores",
        "server pinned to core 0, load generator to core 1" if args.pin else "not pinned",
        f"{reps} alternating run(s) per system ({profile})",
        f"load average {meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f}",
        "load: socket.io-client " + str(meta["versions"].get("socket.io-client")),
        "python-socketio " + str(meta["versions"].get("python-socketio"))
        + ", socket.io " + str(meta["versions"].get("socket.io")),
        "socketio_sync " + str(meta["versions"].get("git")),
    ])
    if plot(png, [SCENARIOS[n] for n in names], summaries, caption):
        paths.append(png)
    for p in paths:
        shutil.copyfile(p, RESULTS / ("latest" + p.suffix))
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)} (and latest.*) in {meta['elapsed_s']:.0f} s")
    if args.profile:
        print("profiles: " + ", ".join(r["profile"] for runs in all_runs.values() for r in runs if r.get("profile")))
    return 1 if (args.strict and any_invalid) else 0


if __name__ == "__main__":
    sys.exit(main())

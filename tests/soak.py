"""Soak test: many clients churn for a while; afterwards nothing may be left behind.

A Node process (``tests/js/soak.mjs``, the official socket.io-client) runs ``clients``
clients against ``tests/apps/soak_app.py``: they connect over WebSocket, polling, or
polling upgraded to WebSocket, chat with acks, join and leave rooms, receive room
broadcasts, drop their connections abruptly (TCP destroyed, or left open and silent) or
close them cleanly, and reconnect. Two rounds:

1. warm-up: ``warmup_seconds`` of churn, every client gone, settle; then the server's RSS
   is the reference (allocator arenas, caches and the worker pool have grown by then);
2. main: ``seconds`` of churn, every client gone, settle; measure again.

After each round, once the settle time (more than ``ping_interval + ping_timeout``, so that
the silent connections are found by the server's ping timeout) has passed, the server must
hold zero Engine.IO sessions, zero sockets in every namespace, empty adapter maps, no
pending timers and no live session/socket/client objects; its greenlets must be back to
the count before any client (plus the idle worker pool and the timer greenlet at most);
its RSS within ``rss_margin_mb`` of the warm-up value. Every honest operation of the
clients must have succeeded, and the clients must have seen a ping about every
``ping_interval`` (median gap at most ``ping_interval + 0.5`` s).

Reported, not asserted: the peaks during the churn, Python's allocated blocks and gc
object counts (exact where RSS is not), the machine's listen-queue overflows, and the
clients' "anomalies" (a broadcast for a room the client does not know its socket is in;
rare, not explained yet, see ``soak.mjs``).

From the test (``tests/integration/test_soak.py``) or by hand, against a server it starts::

    python -m tests.soak --seconds 1800 --clients 1000          # half an hour
    python -m tests.soak --seconds 60 --report soak.json        # the JSON report too

Exit status 1 when a check fails. ``SOAK_SECONDS`` sets the default of ``--seconds``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
SCRIPT = JS_DIR / "soak.mjs"
APP = "tests.apps.soak_app:build"

#: Main churn seconds in CI (the test); ``SOAK_SECONDS`` overrides it.
CI_SECONDS = 32
WARMUP_SECONDS = 8
CLIENTS = 1000
#: Idle pooled workers (``WorkerPool.max_idle``), the timer greenlet, the pool's reaper.
GREENLET_MARGIN = 64 + 2
RSS_MARGIN_MB = 30.0
#: Open file descriptors allowed above the count before any client.
FD_MARGIN = 5

Log = Callable[[str], None]


#: Heartbeat of the soak server. Short, so that silent clients are found within 4 s; the
#: pong deadline is not 1 s because an honest polling client answers a ping through up
#: to three HTTP exchanges (the GET that brings it, a POST already under way, the POST of
#: the pong), and with the server and 1,000 clients sharing a small machine each can take
#: a few hundred ms: with 1 s, some honest polling clients were dropped ("ping timeout").
PING_INTERVAL = 1.0
PING_TIMEOUT = 3.0


def server_opts(ping_interval: float = PING_INTERVAL, ping_timeout: float = PING_TIMEOUT,
                connect_timeout: float = 5.0) -> dict[str, Any]:
    """Options of ``soak_app.build``: short heartbeats so that lost clients are found fast;
    a short connect timeout so that its timer entries are gone by the end of the settle."""
    return {"ping_interval": ping_interval, "ping_timeout": ping_timeout, "connect_timeout": connect_timeout}


def fetch_stats(url: str, *, collect: bool = False, objects: bool = True, timeout: float = 30.0) -> dict[str, Any]:
    q = f"gc={int(collect)}&objects={int(objects)}"
    with urllib.request.urlopen(f"{url}/stats?{q}", timeout=timeout) as resp:
        return json.loads(resp.read())


def leftovers(st: dict[str, Any], baseline: dict[str, Any], greenlet_margin: int) -> list[str]:
    """What is still there that should not be, after every client has gone."""
    out = []
    for key in ("sessions", "sockets", "rooms", "sids", "timers"):
        if st[key]:
            out.append(f"{key}={st[key]}")
    for name, nsp in st["namespaces"].items():
        if any(nsp.values()):
            out.append(f"namespace {name}: {nsp}")
    for name, n in st.get("live_objects", {}).items():
        if n:
            out.append(f"{n} live {name} objects")
    if st["greenlets"] > baseline["greenlets"] + greenlet_margin:
        out.append(f"greenlets {st['greenlets']} > {baseline['greenlets']} (before any client) + {greenlet_margin}")
    return out


def settle(url: str, baseline: dict[str, Any], *, min_wait: float, max_wait: float,
           log: Log) -> tuple[dict[str, Any], float]:
    """Wait ``min_wait`` s, then until the server is idle: no session, socket or pending
    timer, and the idle workers retired (nothing will change any more by itself), for
    ``max_wait`` s at most. Returns the last stats (after ``gc.collect()``)
    and the seconds waited."""
    t0 = time.monotonic()
    time.sleep(min_wait)
    while True:
        st = fetch_stats(url, collect=True)
        waited = time.monotonic() - t0
        # Room entries are not waited for: nothing would remove a leaked one.
        idle = not any(st[k] for k in ("sessions", "sockets", "timers", "idle_workers"))
        if idle or waited >= max_wait:
            return st, waited
        time.sleep(0.5)


class _Sampler(threading.Thread):
    """Polls /stats during a round (no gc.collect) and keeps the peaks."""

    def __init__(self, url: str, every: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.every = every
        self.stop = threading.Event()
        self.peak: dict[str, Any] = {}
        self.series: list[dict[str, Any]] = []
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                st = fetch_stats(self.url, objects=True)
            except Exception:
                continue
            for key in ("sessions", "sockets", "rooms", "sids", "timers", "greenlets", "rss", "fds",
                        "gc_objects", "allocated_blocks", "stats_ms"):
                if st.get(key) is not None:
                    self.peak[key] = max(self.peak.get(key, 0), st[key])
            lag = st["loop_lag_ms"]["since_last"]
            self.peak["loop_lag_ms"] = max(self.peak.get("loop_lag_ms", 0), lag)
            self.series.append({"t": round(time.monotonic() - self.t0, 1), "connections": st["counters"]["connections"],
                                "loop_lag_ms": lag,
                                **{k: st.get(k) for k in ("sessions", "greenlets", "rss", "gc_objects",
                                                          "allocated_blocks")}})


def listen_overflows() -> int | None:
    """This machine's count of connections dropped because a listen queue was full
    (``TcpExt: ListenOverflows``, Linux), or ``None``. Every process counts here: a
    diagnostic for SYNs dropped under a burst of connections (retried after 1, 3, 7 s)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            if "ListenOverflows" in table:
                return int(table["ListenOverflows"])
    return None


def run_node(node: str, cfg: dict[str, Any], log: Log, timeout: float) -> dict[str, Any]:
    """Run ``soak.mjs`` with ``cfg``; its progress goes to ``log``; returns its result."""
    proc = subprocess.Popen([node, str(SCRIPT), json.dumps(cfg)], cwd=JS_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stderr_tail: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            stderr_tail.append(line)
            del stderr_tail[:-50]
            log("  node: " + line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"soak.mjs did not finish in {timeout:.0f} s") from None
    reader.join(5)
    for line in out.splitlines():
        if line.startswith('{"result"'):
            return dict(json.loads(line)["result"])
    raise RuntimeError(f"soak.mjs exited with {proc.returncode} and no result:\n" + "\n".join(stderr_tail))


def run(url: str, *, node: str = "node", clients: int = CLIENTS, seconds: float = CI_SECONDS,
        warmup_seconds: float = WARMUP_SECONDS, ws_share: float = 0.8, seed: int = 1,
        ping_interval: float = PING_INTERVAL, ping_timeout: float = PING_TIMEOUT, connect_timeout: float = 5.0,
        node_opts: dict[str, Any] | None = None, log: Log = print) -> dict[str, Any]:
    """Both rounds against the soak app at ``url`` (started with the same ping and connect
    timeouts); returns the report (see :func:`problems` and :func:`summary`)."""
    t_start = time.monotonic()
    heartbeat = ping_interval + ping_timeout
    min_settle = heartbeat + 1.0
    max_settle = max(heartbeat, connect_timeout) + 15.0
    freeze_hold_ms = int((heartbeat + 1.5) * 1000)
    baseline = fetch_stats(url, collect=True)
    log(f"baseline: {_brief(baseline)}")
    report: dict[str, Any] = {
        "config": {"url": url, "clients": clients, "seconds": seconds, "warmup_seconds": warmup_seconds,
                   "ws_share": ws_share, "seed": seed, "ping_interval": ping_interval,
                   "ping_timeout": ping_timeout, "connect_timeout": connect_timeout},
        "baseline": baseline,
    }
    rounds = [("warmup", warmup_seconds, seed), ("main", seconds, seed + 1)]
    for name, secs, round_seed in rounds:
        cfg = {"url": url, "clients": clients, "seconds": secs, "ws_share": ws_share, "seed": round_seed,
               "freeze_hold_ms": freeze_hold_ms, **(node_opts or {})}
        log(f"{name}: {clients} clients, {secs} s of churn")
        sampler = _Sampler(url, every=max(5.0, min(30.0, secs / 6)))
        sampler.start()
        t0 = time.monotonic()
        overflows0 = listen_overflows()
        try:
            result = run_node(node, cfg, log, timeout=secs + 180)
        finally:
            sampler.stop.set()
            sampler.join(35)
        node_s = time.monotonic() - t0
        overflows1 = listen_overflows()
        overflows = None if overflows0 is None or overflows1 is None else overflows1 - overflows0
        log(f"{name}: node done in {node_s:.1f} s: {_brief_node(result)}")
        settled, waited = settle(url, baseline, min_wait=min_settle, max_wait=max_settle, log=log)
        log(f"{name}: settled after {waited:.1f} s: {_brief(settled)}")
        report[name] = {"node": result, "node_s": round(node_s, 1), "listen_overflows": overflows,
                        "peak": sampler.peak,
                        "series": sampler.series, "settled": settled, "settle_s": round(waited, 1)}
    warm, end = report["warmup"]["settled"], report["main"]["settled"]
    report["rss_growth_mb"] = round((end["rss"] - warm["rss"]) / 2**20, 1)
    report["gc_objects_growth"] = end["gc_objects"] - warm["gc_objects"]
    report["allocated_blocks_growth"] = end["allocated_blocks"] - warm["allocated_blocks"]
    report["elapsed_s"] = round(time.monotonic() - t_start, 1)
    return report


def problems(report: dict[str, Any], *, rss_margin_mb: float = RSS_MARGIN_MB,
             greenlet_margin: int = GREENLET_MARGIN, fd_margin: int = FD_MARGIN) -> list[str]:
    """Every failed check of a report, as sentences (empty: the soak passed)."""
    out = []
    baseline = report["baseline"]
    for name in ("warmup", "main"):
        rnd = report[name]
        res = rnd["node"]
        if res["errors"]:
            out.append(f"{name}: {res['errors']} client errors, e.g. {res['error_samples'][:5]}")
        if res["acks_answered"] != res["acks_sent"]:
            out.append(f"{name}: {res['acks_sent'] - res['acks_answered']} of {res['acks_sent']} acks unanswered")
        if res["connects"] < res["clients"]:
            out.append(f"{name}: only {res['connects']} connects for {res['clients']} clients")
        if not res["reconnects"]:
            out.append(f"{name}: no client reconnected (no churn?)")
        gap = res.get("ping_gap_ms") or {}
        interval = report["config"]["ping_interval"]
        if not gap.get("count"):
            out.append(f"{name}: the clients recorded no ping at all: {gap}")
        elif gap["p50"] > (interval + 0.5) * 1000:
            out.append(f"{name}: clients saw a ping every {gap['p50'] / 1000:.2f} s (median), not every "
                       f"ping_interval = {interval:g} s after their pong: {gap}")
        st = rnd["settled"]
        left = leftovers(st, baseline, greenlet_margin)
        if left:
            out.append(f"{name}: after {rnd['settle_s']} s of settling: " + "; ".join(left))
        if baseline.get("fds") is not None and st.get("fds") is not None and st["fds"] > baseline["fds"] + fd_margin:
            out.append(f"{name}: {st['fds']} open file descriptors, {baseline['fds']} before any client")
    if report["rss_growth_mb"] > rss_margin_mb:
        out.append(f"RSS grew by {report['rss_growth_mb']} MB from the warm-up to the end (margin {rss_margin_mb} MB)")
    return out


def _brief(st: dict[str, Any]) -> str:
    return (f"sessions={st['sessions']} sockets={st['sockets']} rooms={st['rooms']} sids={st['sids']} "
            f"timers={st['timers']} greenlets={st.get('greenlets')} live={st.get('live_objects')} "
            f"fds={st.get('fds')} rss={st['rss'] / 2**20:.1f}MB gc_objects={st.get('gc_objects')} "
            f"allocated_blocks={st.get('allocated_blocks')}")


def _brief_node(res: dict[str, Any]) -> str:
    gap = res.get("ping_gap_ms") or {}
    gaps = "" if gap.get("p50") is None else f"ping gap p50/p99/max={gap['p50']:.0f}/{gap['p99']:.0f}/{gap['max']:.0f}ms "
    return (f"connects={res['connects']} reconnects={res['reconnects']} acks={res['acks_answered']}/{res['acks_sent']} "
            f"{gaps}"
            f"broadcasts={res['broadcasts_received']} own_checked={res['own_broadcasts_checked']} "
            f"endings={res['endings']} errors={res['errors']}")


def summary(report: dict[str, Any]) -> str:
    """A few lines for people: the numbers before and after."""
    b = report["baseline"]
    lines = [f"soak: {report['config']['clients']} clients, {report['config']['warmup_seconds']} s warm-up + "
             f"{report['config']['seconds']} s main churn, {report['elapsed_s']} s in all",
             f"  before any client: {_brief(b)}"]
    for name in ("warmup", "main"):
        rnd = report[name]
        lines.append(f"  {name}: {_brief_node(rnd['node'])}; listen queue overflows: {rnd.get('listen_overflows')}")
        if rnd["node"]["errors"]:
            lines.append(f"  {name} errors: {rnd['node'].get('errors_by')}")
        if rnd["node"].get("anomalies"):
            lines.append(f"  {name} anomalies (not failures): {rnd['node']['anomalies']}, e.g. "
                         f"{rnd['node']['anomaly_examples'][:2]}")

        lines.append(f"  {name} peak: {rnd['peak']}")
        lines.append(f"  {name} settled in {rnd['settle_s']} s: {_brief(rnd['settled'])}")
    warm, end = report["warmup"]["settled"], report["main"]["settled"]
    lines.append(f"  after warm-up -> after main: RSS {warm['rss'] / 2**20:.1f} -> {end['rss'] / 2**20:.1f} MB "
                 f"({report['rss_growth_mb']:+.1f} MB); gc objects {warm['gc_objects']} -> {end['gc_objects']} "
                 f"({report['gc_objects_growth']:+d}); allocated blocks {warm['allocated_blocks']} -> "
                 f"{end['allocated_blocks']} ({report['allocated_blocks_growth']:+d}); connections made "
                 f"{warm['counters']['connections']} -> {end['counters']['connections']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", CI_SECONDS)),
                        help="main churn time (default: $SOAK_SECONDS or %(default)s)")
    parser.add_argument("--warmup-seconds", type=float, default=WARMUP_SECONDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--ws-share", type=float, default=0.8, help="share of WebSocket clients (rest: polling)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ping-interval", type=float, default=PING_INTERVAL)
    parser.add_argument("--ping-timeout", type=float, default=PING_TIMEOUT)
    parser.add_argument("--rss-margin-mb", type=float, default=RSS_MARGIN_MB)
    parser.add_argument("--url", help="a server already running tests.apps.soak_app (default: start one)")
    parser.add_argument("--node", default="node")
    parser.add_argument("--report", help="write the JSON report to this file")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    srv = None
    url = args.url
    opts = server_opts(args.ping_interval, args.ping_timeout)
    if url is None:
        sys.path.insert(0, str(ROOT))
        from tests.conftest import LiveServer

        srv = LiveServer(APP, **opts)
        url = srv.url
        log(f"server {APP} at {url}, pid {srv.proc.pid if srv.proc else '?'}")
    try:
        report = run(url, node=args.node, clients=args.clients, seconds=args.seconds,
                     warmup_seconds=args.warmup_seconds, ws_share=args.ws_share, seed=args.seed,
                     ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
                     connect_timeout=opts["connect_timeout"], log=log)
    finally:
        if srv is not None:
            alive = srv.alive()
            srv.stop()
            if not alive:
                log("the server died during the soak")
    found = problems(report, rss_margin_mb=args.rss_margin_mb)
    report["problems"] = found
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    print(summary(report))
    for p in found:
        print("FAIL:", p)
    print("soak: " + ("FAILED" if found else "passed"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

"""The live fuzzer (``tests/fuzz/live.py``, issue #5) against ``tests.apps.fuzz_app``,
for a bounded time, while python-socketio and Node clients keep chatting.

``FUZZ_SECONDS`` (default 20) is how long the fuzz cases run; the whole test takes about
15 s more (capture, settling, final checks). ``FUZZ_SEED`` replays a run (the seed is
random otherwise, and printed in the failure message). Longer runs, and single cases:
``python -m tests.fuzz.live --help``.

It fails when the fuzzer finds a bug: a traceback from socketio_sync code in the server
log, an HTTP 5xx, a valid message not answered (or answered wrongly), a message processed
after a protocol violation, an honest client disturbed (error, disconnect, lost ack or
broadcast), a session/socket/room/ack that outlives its connection, the server gone or
not answering a fresh client, or its RSS over 300 MB. Noise that gevent's pywsgi itself
logs for bad clients is reported, not failed on.
"""
from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

from tests.fuzz.live import CASES, Fuzzer

pytestmark = [pytest.mark.integration, pytest.mark.js]

FACTORY = "tests.apps.fuzz_app:build"
RSS_LIMIT_MB = 300.0


def fuzz_seconds() -> float:
    return float(os.environ.get("FUZZ_SECONDS", "20"))


def fuzz_seed() -> int:
    seed = os.environ.get("FUZZ_SEED")
    return int(seed) if seed else random.SystemRandom().randrange(10 ** 9)


def test_live_fuzz_with_honest_clients(live_server: Any, node_clients: Any, tmp_path: Any,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOG_LEVEL", "INFO")  # a line per bad client, and every traceback
    log = tmp_path / "server.log"
    srv = live_server(FACTORY, stderr_path=str(log))
    seed = fuzz_seed()
    seconds = fuzz_seconds()
    print(f"live fuzz: FUZZ_SEED={seed} FUZZ_SECONDS={seconds:g}, server log {log}")
    started = time.monotonic()
    fz = Fuzzer(srv.url, seed=seed, seconds=seconds, server_pid=srv.proc.pid, server_log=str(log),
                node_clients=node_clients, rss_limit_mb=RSS_LIMIT_MB, settle_timeout=15.0,
                confirm_seconds=5.0)
    report = fz.run()
    text = report.render()
    print(text)
    print(f"(the fuzz test took {time.monotonic() - started:.1f} s)")
    assert srv.alive(), f"the server process died (FUZZ_SEED={seed})\n{report.summary()}"
    assert report.max_rss_kb < RSS_LIMIT_MB * 1024, f"server RSS {report.max_rss_kb / 1024:.0f} MB"
    # The run really fuzzed: the fuzzer's own errors (a case that crashed in the fuzzer,
    # so sent nothing) are counted, not findings; every kind of case ran; the honest
    # clients kept working throughout.
    assert report.counters.get("fuzzer errors", 0) == 0, f"the fuzzer itself failed (FUZZ_SEED={seed}): {text}"
    assert set(report.cases) >= set(CASES) and sum(report.cases.values()) >= 50, report.cases
    assert all(ops > 0 for ops in report.honest_ops.values()) and report.honest_ops, report.honest_ops
    if not report.ok:
        pytest.fail(f"the live fuzzer found {len(report.bugs)} problem(s) (details, bytes sent and tracebacks "
                    f"in the captured stdout); replay the run with FUZZ_SEED={seed} FUZZ_SECONDS={seconds:g}\n"
                    f"{report.summary()}", pytrace=False)

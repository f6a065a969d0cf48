"""The pure helpers of ``benchmarks/run.py``'s scenarios G (many workers) and S (soak memory):
how a G variant is named, when python-socketio needs sticky sessions, and how CPU time and
the workers' request counters are turned into the reported shares. No process is started."""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def test_worker_variants(run: ModuleType) -> None:
    assert run.worker_variant("socketio_sync_w4") == ("socketio_sync", 4)
    assert run.worker_variant("python_socketio_w1") == ("python_socketio", 1)
    for system in run.SCENARIOS["G"].systems:
        stack, _ = run.worker_variant(system)
        assert stack in run.WORKER_CLASSES and stack in run.GUNICORN_APPS
        assert system in run.LABELS


def test_only_python_socketio_polling_on_several_workers_needs_sticky_sessions(run: ModuleType) -> None:
    assert run.needs_sticky_sessions("python_socketio", 4, ["polling"])
    assert not run.needs_sticky_sessions("python_socketio", 1, ["polling"])
    assert not run.needs_sticky_sessions("python_socketio", 4, ["websocket"])
    assert not run.needs_sticky_sessions("socketio_sync", 4, ["polling"])


def test_cpu_breakdown_splits_the_window_by_process(run: ModuleType) -> None:
    start = {"t": 10.0, "machine_busy_s": 100.0,
             "cpu_s": {"worker0": 1.0, "worker1": 2.0, "master": 0.5, "redis": 0.1, "loadgen": 3.0}}
    end = {"t": 12.0, "machine_busy_s": 103.0,
           "cpu_s": {"worker0": 1.6, "worker1": 2.2, "master": 0.5, "redis": 0.2, "loadgen": 4.0}}
    cpu = run.cpu_breakdown({"start": start, "end": end})
    assert cpu["workers_pct"] == pytest.approx([30.0, 10.0])  # busiest first
    assert cpu["server_pct"] == pytest.approx(40.0)
    assert cpu["redis_pct"] == pytest.approx(5.0)
    assert cpu["loadgen_pct"] == pytest.approx(50.0)
    # 3 s busy over 2 s = 150 % of one core, of which ours is 95 %.
    assert cpu["other_pct"] == pytest.approx(55.0)


def test_worker_counters_are_summed_and_the_forwarded_share_reported(run: ModuleType) -> None:
    before = {11: {"requests": {"GET": 10, "POST": 5}, "forwarding": {"forwarded_get": 2, "forwarded_post": 1}}}
    after = {11: {"requests": {"GET": 30, "POST": 15}, "forwarding": {"forwarded_get": 12, "forwarded_post": 6}},
             12: {"requests": {"GET": 20, "POST": 10}, "forwarding": {"forwarded_get": 9, "forwarded_post": 3}}}
    delta = run.stats_delta(before, after)
    assert delta["workers_answered"] == 2
    assert delta["totals"]["requests.GET"] == 40 and delta["totals"]["requests.POST"] == 20
    assert run.forwarded_text(delta) == "60 HTTP requests, 27 forwarded (45 %)"
    # python-socketio's workers have no forwarding counters.
    plain = run.stats_delta({}, {5: {"requests": {"GET": 3}, "forwarding": None}})
    assert run.forwarded_text(plain) == "3 HTTP requests"


def test_g_and_s_are_asked_for_by_name_only(run: ModuleType) -> None:
    """Neither runs by default (CI's smoke and the usual run stay as they were)."""
    assert run.SCENARIOS["G"].runner is run.measure_workers
    assert run.SCENARIOS["S"].runner is run.measure_soak
    source = (ROOT / "benchmarks" / "run.py").read_text()
    assert 'parser.add_argument("--scenarios", default="A,B,C,D,E,F"' in source

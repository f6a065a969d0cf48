"""Soak: 1,000 Node socket.io-client clients churn, then the server must be back where it
started (``tests/soak.py`` says what is checked and how; ``tests/js/soak.mjs`` is the load).

About 70 s: a warm-up round of 8 s of churn, then 35 s (``SOAK_SECONDS``) of main churn,
each followed by a settle of a few seconds. For a longer soak, by hand::

    python -m tests.soak --seconds 1800 --clients 1000

The JSON report of the last run is kept in ``tests/artifacts/soak-report.json``.
"""
from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests import soak
from tests.conftest import ROOT, require_path, require_tool

pytestmark = [pytest.mark.integration, pytest.mark.js]


def test_soak_1000_clients_leave_nothing_behind(live_server: Any) -> None:
    node = require_tool("node", "nodejs")
    require_path(soak.JS_DIR / "node_modules" / "socket.io-client",
                 "tests/js/node_modules is missing: run npm ci in tests/js")
    opts = soak.server_opts()
    srv = live_server(soak.APP, **opts)
    seconds = float(os.environ.get("SOAK_SECONDS", soak.CI_SECONDS))
    report = soak.run(srv.url, node=node, clients=soak.CLIENTS, seconds=seconds,
                      warmup_seconds=soak.WARMUP_SECONDS, log=lambda msg: None, **opts)
    found = soak.problems(report)
    report["problems"] = found
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "soak-report.json").write_text(json.dumps(report, indent=2))
    print(soak.summary(report))
    assert srv.alive(), "the server died during the soak"
    assert not found, "\n".join(found) + "\n\n" + soak.summary(report)

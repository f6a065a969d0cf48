"""Runs the atheris (libFuzzer) target over the decoders for a bounded time:
``FUZZ_ATHERIS_SECONDS`` (default 20). A crash, an exception other than our protocol
error, a failed round trip or a fast-path disagreement fails the test, with libFuzzer's
report and the crashing input (kept in the test's temporary folder)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, missing_dependency

TARGET = ROOT / "tests" / "fuzz" / "atheris_codecs.py"


def test_decoders_survive_coverage_guided_fuzzing(tmp_path: Path) -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        missing_dependency("atheris is not installed (pip install -e .[test])")
    seconds = int(os.environ.get("FUZZ_ATHERIS_SECONDS", "20"))
    proc = subprocess.run(
        [sys.executable, str(TARGET), f"-max_total_time={seconds}", "-rss_limit_mb=1024",
         f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    report = proc.stderr[-4000:]
    assert proc.returncode == 0, f"the fuzzer found a problem (inputs in {tmp_path}):\n{report}"
    runs = [line for line in proc.stderr.splitlines() if line.startswith("Done ")]
    assert runs, report
    assert int(runs[-1].split()[1]) > 1000, runs  # it really ran

"""DEBUG=socketio_sync* turns on debug output without code; otherwise no handler is added."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import logging, socketio_sync
log = logging.getLogger("socketio_sync")
print(len(log.handlers), log.level)
logging.getLogger("socketio_sync.eio").debug("hello-from-eio")
"""


def run(debug: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if debug is not None:
        env["DEBUG"] = debug
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=30)


def test_no_debug_variable_adds_no_handler() -> None:
    out = run(None)
    assert out.stdout.split() == ["0", "0"]
    assert "hello-from-eio" not in out.stderr


def test_debug_star_enables_all_loggers() -> None:
    out = run("socketio_sync*")
    assert out.stdout.split() == ["1", "10"]
    assert "socketio_sync.eio DEBUG hello-from-eio" in out.stderr


def test_debug_for_another_library_is_ignored() -> None:
    out = run("express:*")
    assert out.stdout.split() == ["0", "0"]


def test_debug_one_logger() -> None:
    out = run("socketio_sync.server")
    assert "hello-from-eio" not in out.stderr
    out = run("socketio_sync.eio,foo")
    assert "hello-from-eio" in out.stderr

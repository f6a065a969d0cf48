"""Development servers as developers start them: ``flask run``, ``manage.py runserver``.

``dev_server`` is a factory fixture: ``srv = dev_server(["-m", "flask", ...])`` runs
``python <args>`` in its own process group (``flask run --debug`` forks a reloader child),
waits until the port accepts connections and keeps stdout and stderr in :attr:`output`.
At the end of the test every server is stopped with SIGINT (Ctrl+C), then SIGKILL.

The Django helpers run the ``examples/django_notify`` project on a temporary SQLite
database (``migrate`` first) and log in through its login form with ``requests``.
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
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from tests.conftest import ROOT, _free_port, _server_factory

DJANGO_EXAMPLE = ROOT / "examples" / "django_notify"

#: Lines that must never appear in a server's output.
BAD_LINES = re.compile(r"Traceback|Error on request|Bad request|code 400|Exception in thread")
#: Terminal colours (werkzeug colours its request log in some environments).
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DevServer:
    """``python ARGS`` listening on ``port``; all of its output is kept."""

    def __init__(self, args: list[str], port: int, *, cwd: Path = ROOT, env: dict[str, str] | None = None,
                 timeout: float = 20.0) -> None:
        self.args = args
        self.port = port
        self.cwd = cwd
        self.output: list[str] = []
        self._cond = threading.Condition()
        self.expected_down = False
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        self._pumps = [threading.Thread(target=self._pump, args=(stream,), daemon=True)
                       for stream in (self.proc.stdout, self.proc.stderr)]
        for pump in self._pumps:
            pump.start()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._join()
                raise RuntimeError(f"{' '.join(args)} exited with {self.proc.returncode}:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{' '.join(args)} did not listen on {port} in {timeout} s:\n{self.log}")
                time.sleep(0.05)

    def _pump(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.output.append(ANSI.sub("", line.rstrip("\n")))
                self._cond.notify_all()

    def _join(self) -> None:
        for pump in self._pumps:
            pump.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.output)

    def wait_for_log(self, predicate: Callable[[list[str]], bool], timeout: float = 5.0, what: str = "") -> None:
        """Wait until ``predicate(lines)`` holds for the output so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.output):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"server log: no {what or predicate} within {timeout} s:\n"
                                         + "\n".join(self.output[-40:]))
                self._cond.wait(remaining)

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.output if rx.search(line))

    def assert_clean_log(self) -> None:
        """No traceback, request error or "Bad request" line in the output."""
        bad = [line for line in list(self.output) if BAD_LINES.search(line)]
        assert not bad, f"server output has errors: {bad}\n--- full log:\n{self.log}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        """Ctrl+C for the whole process group (a reloader and its child), then SIGKILL."""
        self.expected_down = True
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            # The group may outlive its leader (a reloader's child): end it too.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._join()
        return self.proc.returncode


@pytest.fixture
def dev_server() -> Iterator[Callable[..., DevServer]]:
    """Factory fixture: ``dev_server(args, port, cwd=..., env=...)``."""
    def make(args: list[str], port: int | None = None, **kwargs: Any) -> DevServer:
        return DevServer(args, port or _free_port(), **kwargs)

    yield from _server_factory(make, lambda srv: srv.log)


def disconnect_python_client(client: Any, wait: float = 5.0) -> None:
    """``client.disconnect()`` for a python-socketio client, waiting at most ``wait`` s.

    python-engineio's polling client can lose its CLOSE packet: its write loop checks
    ``state == "connected"`` only between POSTs, so when ``disconnect()`` runs while the
    loop is finishing the previous POST (likely when the ack of a call arrives, through
    the GET, before that POST's response: handlers running in threads do that) the loop
    exits without sending it, and ``disconnect()`` then waits for the pending GET until
    the server's next ping (25 s). Waiting for the send queue first makes that rare; a
    disconnect still stuck finishes in the background (the server is stopped soon).
    """
    eio = client.eio
    if eio.state == "connected" and eio.current_transport == "polling":
        # Every packet queued so far was POSTed and answered (queue.join(), bounded).
        queue, deadline = eio.queue, time.monotonic() + wait
        with queue.all_tasks_done:
            while queue.unfinished_tasks and deadline > time.monotonic():
                queue.all_tasks_done.wait(deadline - time.monotonic())
    done = threading.Thread(target=client.disconnect, daemon=True)
    done.start()
    done.join(wait)


# ------------------------------------------------------------------ flask run

def flask_run(dev_server: Callable[..., DevServer], app: str, *extra: str, env: dict[str, str] | None = None) -> DevServer:
    """``python -m flask --app APP run --port N [extra]`` from the repository root."""
    port = _free_port()
    return dev_server(["-m", "flask", "--app", app, "run", "--host", "127.0.0.1", "--port", str(port), *extra],
                      port, env=env)


# ------------------------------------------------------------------ Django

def django_env(db_path: Path, **extra: str) -> dict[str, str]:
    """Environment for the example project: its directory importable, its own database."""
    return {
        "PYTHONPATH": f"{ROOT}{os.pathsep}{DJANGO_EXAMPLE}",
        "DJANGO_SETTINGS_MODULE": "notify_site.settings",
        "DJANGO_DB_PATH": str(db_path),
        **extra,
    }


def migrate(db_path: Path) -> None:
    """``manage.py migrate`` into ``db_path``."""
    proc = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=DJANGO_EXAMPLE,
        env={**os.environ, **django_env(db_path)}, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"migrate failed:\n{proc.stdout}\n{proc.stderr}"


def runserver(dev_server: Callable[..., DevServer], db_path: Path, *, plain: bool = False) -> DevServer:
    """``manage.py runserver 127.0.0.1:N --noreload`` (ours, or Django's own with ``plain``)."""
    port = _free_port()
    env = django_env(db_path, **({"SOCKETIO_SYNC_PLAIN_RUNSERVER": "1"} if plain else {}))
    return dev_server(["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], port,
                      cwd=DJANGO_EXAMPLE, env=env)


def django_login(url: str, username: str) -> requests.Session:
    """Log in through the example's form (GET for the CSRF token, POST with Referer)."""
    http = requests.Session()
    form = http.get(url + "/login/", timeout=5)
    assert form.status_code == 200, form.text
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert match, f"no CSRF token in the login form:\n{form.text}"
    resp = http.post(url + "/login/", data={"username": username, "csrfmiddlewaretoken": match.group(1)},
                     headers={"Referer": url + "/login/"}, allow_redirects=False, timeout=5)
    assert resp.status_code == 302, (resp.status_code, resp.text)
    assert "sessionid" in http.cookies, http.cookies
    return http


def cookie_header(http: requests.Session) -> str:
    return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def notify(url: str, username: str, text: str) -> dict[str, Any]:
    """``POST /api/notify/<username>`` (no session: another service calling the API)."""
    resp = requests.post(f"{url}/api/notify/{username}", json={"text": text}, timeout=5)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()

"""Shared fixtures: live servers in subprocesses, and the tool checks CI depends on."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent


#: How to get what a test needs (shown when something is missing).
_HOW_TO_INSTALL = ("on Debian/Ubuntu, as root: apt-get install -y redis-server chromium nodejs npm nginx; "
                   "then `make test` runs npm ci itself (bash .ci/run does all of it)")


def missing_dependency(msg: str) -> None:
    """A tool or package the test needs is absent: the test fails, saying what is missing
    and how to install it (a skipped test would prove nothing, here or in CI)."""
    pytest.fail(f"{msg} ({_HOW_TO_INSTALL})", pytrace=False)


def require_path(path: Path, msg: str) -> Path:
    """``path`` must exist (an npm package, a bundle); else :func:`missing_dependency`."""
    if not path.exists():
        missing_dependency(msg)
    return path


def require_tool(name: str, *candidates: str) -> str:
    """Return the path of an external tool; fail (:func:`missing_dependency`) without it."""
    for cand in (name, *candidates):
        path = shutil.which(cand)
        if path:
            return path
    missing_dependency(f"{name} is not installed")
    raise AssertionError("unreachable")


class LiveServer:
    """A test app served by ``tests/apps/serve.py`` in its own process."""

    def __init__(self, factory: str, port: int = 0, **opts: Any) -> None:
        self.factory = factory
        self.opts = opts
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.expected_down = False
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.expected_down = False
        cmd = [sys.executable, "-m", "tests.apps.serve", self.factory, "--port", str(self.port)]
        for key, value in self.opts.items():
            cmd += ["--opt", f"{key}={json.dumps(value)}"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"test server {self.factory} exited with {self.proc.wait()}")
            if line.startswith("LISTENING "):
                self.port = int(line.split()[1])
                return
        raise RuntimeError("test server did not start in 20 s")

    def stop(self) -> None:
        self.expected_down = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.expected_down = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, delay: float = 0.0) -> None:
        """Stop, wait ``delay`` seconds, and start again on the same port."""
        self.stop()
        time.sleep(delay)
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _server_factory(make: Any, describe: Any) -> Iterator[Any]:
    """The body of a factory fixture: yields ``start(...)`` (which calls ``make``), then
    stops every server and fails the test if one died on its own (``describe`` says which)."""
    servers: list[Any] = []

    def start(*args: Any, **kwargs: Any) -> Any:
        srv = make(*args, **kwargs)
        servers.append(srv)
        return srv

    yield start
    crashed = [srv for srv in servers if not srv.expected_down and not srv.alive()]
    for srv in servers:
        srv.stop()
    assert not crashed, "test server(s) died during the test: " + "\n".join(describe(s) for s in crashed)


@pytest.fixture
def live_server() -> Iterator[Any]:
    """Factory fixture: ``srv = live_server("tests.apps.chat:build", ping_interval=0.3)``."""
    yield from _server_factory(LiveServer, lambda srv: srv.factory)


class GunicornServer:
    """``gunicorn -k WORKER -w N APP`` on a free loopback port, as users deploy it.

    ``app`` is gunicorn's ``module:variable`` or ``module:factory(key=literal, ...)``.
    Its output (access log, errors) is kept in :attr:`output`.
    """

    OUR_WORKER = "socketio_sync.gunicorn.GeventWebSocketWorker"
    STOCK_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"

    def __init__(self, app: str, worker: str = OUR_WORKER, workers: int = 1, port: int = 0,
                 args: tuple[str, ...] = (), env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.app = app
        self.worker = worker
        self.workers = workers
        self.port = port or _free_port()
        self.args = args
        self.env = env or {}
        self.cwd = cwd
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.expected_down = False
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        import threading

        self.expected_down = False
        cmd = [sys.executable, "-m", "gunicorn", "-k", self.worker, "-w", str(self.workers),
               "-b", f"127.0.0.1:{self.port}", "--access-logfile", "-", "--graceful-timeout", "5",
               *(("--no-control-socket",) if _gunicorn_has_control_socket() else ()),
               *self.args, self.app]
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **self.env},
        )
        booted = threading.Semaphore(0)

        def pump(stream: Any) -> None:
            for line in stream:
                self.output.append(line.rstrip("\n"))
                if "Booting worker" in line:
                    booted.release()

        self._pump = threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True)
        self._pump.start()
        deadline = time.monotonic() + timeout
        for _ in range(self.workers):
            if not booted.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self.stop()
                raise RuntimeError(f"gunicorn did not boot {self.app}:\n" + "\n".join(self.output))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n" + "\n".join(self.output))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    # A worker imports the app after "Booting worker": give it a moment.
                    time.sleep(0.3)
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gunicorn did not accept connections:\n" + "\n".join(self.output))

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (gunicorn's graceful shutdown); SIGKILL after ``timeout`` s."""
        self.expected_down = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.join(5)  # so that ``output`` has every line the process wrote
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _gunicorn_has_control_socket() -> bool:
    """gunicorn 25+ opens a control socket at one fixed path; parallel test servers
    would fight over it."""
    try:
        import gunicorn

        return tuple(int(p) for p in gunicorn.__version__.split(".")[:1]) >= (25,)
    except Exception:
        return False


@pytest.fixture
def gunicorn_server() -> Iterator[Any]:
    """Factory fixture: ``srv = gunicorn_server("examples.chat.app:build()", workers=1)``."""
    yield from _server_factory(GunicornServer, lambda srv: f"gunicorn {srv.app}:\n" + "\n".join(srv.output[-40:]))


class RedisServer:
    """A real ``redis-server`` on a free loopback port, with no persistence."""

    def __init__(self, tmp_dir: Path) -> None:
        self.binary = require_tool("redis-server")
        self.tmp_dir = tmp_dir
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, delay: float = 0.0) -> None:
        self.stop()
        time.sleep(delay)
        self.start()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test (fails under CI=true when not installed)."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()

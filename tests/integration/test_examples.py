"""The examples work as documented: ``examples/plain_wsgi.py`` (the README's opening
example) run as a script, and the chat example, each used by python-socketio clients;
and the README's code is the code that is tested."""
from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest
import requests
import socketio

from tests.conftest import ROOT, require_path

PLAIN_WSGI = ROOT / "examples" / "plain_wsgi.py"
CHAT_DIR = ROOT / "examples" / "chat"
README = ROOT / "README.rst"
TRANSPORTS = {"default": None, "polling": ["polling"], "websocket": ["websocket"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{PLAIN_WSGI.name} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{PLAIN_WSGI.name} did not answer on {url} within {timeout} s")


@pytest.fixture(scope="module")
def plain_wsgi_url() -> Iterator[str]:
    """``python examples/plain_wsgi.py`` exactly as a user runs it, with PORT set."""
    for _attempt in range(3):
        port = _free_port()
        env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, str(PLAIN_WSGI)], cwd=ROOT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url, proc)
        except RuntimeError:
            proc.kill()
            proc.wait()
            continue  # most likely the port was taken in between; try another
        try:
            yield url
        finally:
            alive = proc.poll() is None
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert alive, "examples/plain_wsgi.py died during the tests"
        return
    raise RuntimeError("could not start examples/plain_wsgi.py")


class Recorder:
    """A python-socketio client that queues every event it gets."""

    def __init__(self, url: str, transports: list[str] | None) -> None:
        self.events: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", lambda event, *args: self.events.put((event, args)))
        self.client.connect(url, transports=transports, wait_timeout=5)

    def expect(self, event: str, timeout: float = 5.0) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                name, args = self.events.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(f"no {event!r} event within {timeout} s") from None
            if name == event:
                return args

    def nothing_more(self, wait: float = 0.3) -> list[tuple[str, tuple[Any, ...]]]:
        time.sleep(wait)
        extra = []
        while not self.events.empty():
            extra.append(self.events.get_nowait())
        return extra

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def clients() -> Iterator[Any]:
    made: list[Recorder] = []

    def make(url: str, transports: list[str] | None = None) -> Recorder:
        rec = Recorder(url, transports)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


@pytest.mark.integration
def test_plain_wsgi_serves_the_wrapped_app(plain_wsgi_url: str) -> None:
    resp = requests.get(plain_wsgi_url + "/anything", timeout=5)
    assert resp.status_code == 200
    assert resp.text == "Hello, WSGI\n"


@pytest.mark.integration
@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_plain_wsgi_chat(plain_wsgi_url: str, clients: Any, transport: str) -> None:
    alice = clients(plain_wsgi_url, TRANSPORTS[transport])
    bob = clients(plain_wsgi_url, TRANSPORTS[transport])
    assert alice.expect("user connected") == ()      # bob's arrival, broadcast to the others
    assert bob.nothing_more() == []                  # ... but not to bob himself

    assert alice.client.call("chat message", "hi bob", timeout=5) == "ok"   # the ack
    assert alice.expect("chat message") == ("hi bob",)                      # io.emit: the sender too
    assert bob.expect("chat message") == ("hi bob",)

    bob.client.emit("chat message", {"text": "hi alice", "n": [1, 2]})      # no ack asked
    assert alice.expect("chat message") == ({"text": "hi alice", "n": [1, 2]},)
    assert bob.expect("chat message") == ({"text": "hi alice", "n": [1, 2]},)
    if transport == "default":
        assert alice.client.transport() == "websocket"  # upgraded from polling


@pytest.mark.integration
def test_chat_example_with_python_clients(live_server: Any, clients: Any) -> None:
    srv = live_server("examples.chat.app:build")
    alice = clients(srv.url)
    bob = clients(srv.url, ["websocket"])
    assert alice.expect("user connected") == ()
    bob.client.emit("chat message", "hello")
    assert alice.expect("chat message") == ("hello",)
    assert bob.expect("chat message") == ("hello",)
    bob.close()
    assert alice.expect("user disconnected") == ()


@pytest.mark.integration
def test_chat_example_serves_page_and_client_bundle(live_server: Any) -> None:
    """What a browser fetches besides Socket.IO: the page and the official bundle."""
    bundle_file = require_path(
        CHAT_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js",
        "examples/chat/node_modules is missing: run `make test` (or npm ci in examples/chat)")
    srv = live_server("examples.chat.app:build")

    page = requests.get(srv.url + "/", timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<script src="/socket.io.min.js"></script>' in page.text

    bundle = requests.get(srv.url + "/socket.io.min.js", timeout=5)
    assert bundle.status_code == 200
    assert bundle.headers["Content-Type"].startswith("application/javascript")
    assert bundle.content == bundle_file.read_bytes()

    assert requests.get(srv.url + "/nope", timeout=5).status_code == 404
    # The Socket.IO path still goes to the server, not to the static files.
    handshake = requests.get(srv.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    assert handshake.status_code == 200 and handshake.text.startswith('0{"sid":')



def _readme_python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:(?: {4}.*)?\n)+)", text, flags=re.M)
    return ["\n".join(line[4:] for line in block.splitlines()).strip() + "\n" for block in blocks]


def test_readme_opens_with_plain_wsgi_example() -> None:
    blocks = _readme_python_blocks()
    assert blocks, "README.rst has no python code block"
    assert blocks[0] == PLAIN_WSGI.read_text(encoding="utf-8")


def test_readme_api_overview_runs() -> None:
    """The "API at a glance" block sets up a real server without errors."""
    import socketio_sync

    block = next(b for b in _readme_python_blocks() if "@io.use" in b)
    namespace: dict[str, Any] = {"socketio_sync": socketio_sync}
    exec(compile(block, "README.rst (API at a glance)", "exec"), namespace)
    io = namespace["io"]
    assert isinstance(io, socketio_sync.Server)
    assert set(io.namespaces) == {"/", "/admin"}

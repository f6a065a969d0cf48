"""The examples work as documented: ``examples/plain_wsgi.py`` (the README's opening
example) run as a script, the chat example (``examples/chat``: presence on "/";
nicknames, rooms, messages and typing on "/chat") and the Flask notifications example
(``examples/flask_notify``), each used by python-socketio clients over real servers;
and the README's code is the code that is tested. The chat page in a browser is
``test_browser.py``."""
from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
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


@contextlib.contextmanager
def running_script(script: Path, port_in_env: bool = False) -> Iterator[str]:
    """``python SCRIPT 127.0.0.1 PORT`` (or ``PORT=... python SCRIPT``) exactly as a user
    runs it, on a free port; yields its URL and checks it did not die meanwhile."""
    name = str(script.relative_to(ROOT))
    for _attempt in range(3):
        port = _free_port()
        argv = [sys.executable, str(script)] + ([] if port_in_env else ["127.0.0.1", str(port)])
        env = {**os.environ, "PYTHONPATH": str(ROOT), **({"PORT": str(port)} if port_in_env else {})}
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                requests.head(url + "/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        else:
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
        assert alive, f"{name} died while in use"
        return
    raise RuntimeError(f"could not start {name}")


@pytest.fixture(scope="module")
def plain_wsgi_url() -> Iterator[str]:
    """``python examples/plain_wsgi.py`` exactly as a user runs it, with PORT set."""
    with running_script(PLAIN_WSGI, port_in_env=True) as url:
        yield url


class Recorder:
    """A python-socketio client that queues every event it gets, per namespace."""

    def __init__(self, url: str, transports: list[str] | None, namespaces: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.namespaces = namespaces or ["/"]
        self.queues: dict[str, queue.Queue[tuple[str, tuple[Any, ...]]]] = {}
        self.client = socketio.Client(reconnection=False)
        for nsp in self.namespaces:
            q = self.queues[nsp] = queue.Queue()
            self.client.on("*", lambda event, *args, q=q: q.put((event, args)), namespace=nsp)
        self.client.connect(url, transports=transports, namespaces=self.namespaces,
                            headers=headers or {}, wait_timeout=5)

    def expect(self, event: str, timeout: float = 5.0, namespace: str = "/") -> tuple[Any, ...]:
        """The arguments of the next ``event`` (other events before it are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                name, args = self.queues[namespace].get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(f"no {event!r} event in {namespace} within {timeout} s") from None
            if name == event:
                return args

    def next_event(self, timeout: float = 5.0, namespace: str = "/") -> tuple[str, tuple[Any, ...]]:
        try:
            return self.queues[namespace].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event in {namespace} within {timeout} s") from None

    def nothing_more(self, wait: float = 0.3, namespace: str = "/") -> list[tuple[str, tuple[Any, ...]]]:
        time.sleep(wait)
        extra = []
        while not self.queues[namespace].empty():
            extra.append(self.queues[namespace].get_nowait())
        return extra

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def clients() -> Iterator[Any]:
    made: list[Recorder] = []

    def make(url: str, transports: list[str] | None = None, **kwargs: Any) -> Recorder:
        rec = Recorder(url, transports, **kwargs)
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


class ChatUser:
    """A python-socketio client of the chat example, on "/" and "/chat"."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def call(self, event: str, arg: Any) -> Any:
        return self.rec.client.call(event, arg, namespace="/chat", timeout=5)

    def emit(self, event: str, arg: Any) -> None:
        self.rec.client.emit(event, arg, namespace="/chat")

    def expect(self, event: str) -> Any:
        """The next event on "/chat", which must be ``event``; its one argument."""
        name, args = self.rec.next_event(namespace="/chat")
        assert name == event, f"expected {event!r}, got {name!r} {args!r}"
        return args[0]

    def nothing_more(self) -> list[tuple[str, tuple[Any, ...]]]:
        return self.rec.nothing_more(namespace="/chat")

    def enter(self, nickname: str, room: str) -> None:
        assert self.call("nickname", nickname) == {"ok": True, "nickname": nickname}
        assert self.call("join", room) == {"ok": True, "room": room}


@pytest.fixture
def chat(live_server: Any, clients: Any) -> Any:
    """``chat(transports=None)``: a new client of one chat example server."""
    srv = live_server("examples.chat.app:build")

    def connect(transports: list[str] | None = None) -> ChatUser:
        return ChatUser(clients(srv.url, transports, namespaces=["/", "/chat"]))

    return connect


def _message(nickname: str, text: str, room: str) -> dict[str, str]:
    return {"nickname": nickname, "text": text, "room": room}


@pytest.mark.integration
def test_chat_presence_on_the_main_namespace(chat: Any) -> None:
    alice = chat()
    assert alice.rec.expect("online") == (1,)            # io.emit: the newcomer too
    bob = chat(["websocket"])
    assert alice.rec.expect("online") == (2,)
    assert bob.rec.expect("online") == (2,)
    bob.rec.close()
    assert alice.rec.expect("online") == (1,)
    assert alice.rec.nothing_more() == []


@pytest.mark.integration
def test_chat_nickname_acks(chat: Any) -> None:
    alice, bob = chat(), chat(["websocket"])
    refused = {"ok": False, "error": "Pick a nickname."}
    assert alice.call("nickname", "") == refused
    assert alice.call("nickname", "   ") == refused
    assert alice.call("nickname", 42) == refused
    assert alice.call("nickname", "x" * 33) == {"ok": False, "error": "A nickname has at most 32 characters."}
    assert alice.call("nickname", "x" * 32) == {"ok": True, "nickname": "x" * 32}
    assert alice.call("nickname", "  alice ") == {"ok": True, "nickname": "alice"}   # trimmed
    # Unique, whatever the case; "x"*32 was given back when alice changed her mind.
    assert bob.call("nickname", "ALICE") == {"ok": False, "error": 'The nickname "ALICE" is taken.'}
    assert bob.call("nickname", "x" * 32) == {"ok": True, "nickname": "x" * 32}
    assert alice.call("nickname", "Alice") == {"ok": True, "nickname": "Alice"}      # her own name
    # Nothing works before a nickname and a room.
    carol = chat()
    assert carol.call("join", "general") == {"ok": False, "error": "Pick a nickname first."}
    assert carol.call("message", "hi") == {"ok": False, "error": "Join a room first."}
    assert carol.call("nickname", "carol") == {"ok": True, "nickname": "carol"}
    assert carol.call("join", "nope") == {"ok": False, "error": "There is no room nope."}
    assert carol.call("join", "general") == {"ok": True, "room": "general"}
    assert carol.call("message", " ") == {"ok": False, "error": "Say something."}
    # A nickname is free again once its owner left.
    alice.rec.close()
    deadline = time.monotonic() + 5
    while (answer := bob.call("nickname", "alice")) != {"ok": True, "nickname": "alice"}:
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)


@pytest.mark.integration
@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_chat_messages_stay_in_their_room(chat: Any, transport: str) -> None:
    alice, bob, carol = (chat(TRANSPORTS[transport]) for _ in range(3))
    alice.enter("alice", "general")
    carol.enter("carol", "random")
    bob.enter("bob", "general")
    assert alice.expect("notice") == {"text": "bob joined #general"}   # the others only

    assert alice.call("message", "hi bob") == {"ok": True}
    assert alice.expect("message") == _message("alice", "hi bob", "general")   # the sender too
    assert bob.expect("message") == _message("alice", "hi bob", "general")
    assert carol.call("message", "anyone?") == {"ok": True}
    assert carol.expect("message") == _message("carol", "anyone?", "random")

    assert bob.call("join", "random") == {"ok": True, "room": "random"}
    assert alice.expect("typing") == {"nickname": "bob", "typing": False}
    assert alice.expect("notice") == {"text": "bob left #general"}
    assert carol.expect("notice") == {"text": "bob joined #random"}
    assert bob.call("message", "hi carol") == {"ok": True}
    assert bob.expect("message") == _message("bob", "hi carol", "random")
    assert carol.expect("message") == _message("bob", "hi carol", "random")

    for user in (alice, bob, carol):
        assert user.nothing_more() == []


@pytest.mark.integration
def test_chat_typing_is_relayed_to_the_others_in_the_room(chat: Any) -> None:
    alice, bob, carol = chat(), chat(["websocket"]), chat(["polling"])
    alice.enter("alice", "general")
    carol.enter("carol", "random")
    bob.enter("bob", "general")
    assert alice.expect("notice") == {"text": "bob joined #general"}

    bob.emit("typing", True)
    assert alice.expect("typing") == {"nickname": "bob", "typing": True}
    bob.emit("typing", False)
    assert alice.expect("typing") == {"nickname": "bob", "typing": False}
    bob.emit("typing", True)
    assert alice.expect("typing") == {"nickname": "bob", "typing": True}
    # Leaving while typing stops it for the others.
    bob.rec.close()
    assert alice.expect("typing") == {"nickname": "bob", "typing": False}
    assert alice.expect("notice") == {"text": "bob left #general"}
    assert alice.nothing_more() == []
    assert carol.nothing_more() == []


@pytest.mark.integration
def test_chat_example_under_gunicorn(gunicorn_server: Any, clients: Any) -> None:
    """``gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker 'examples.chat.app:build()'``
    imports the example (and its monkey-patching) cleanly and serves both namespaces."""
    srv = gunicorn_server("examples.chat.app:build()")
    alice = ChatUser(clients(srv.url, ["polling"], namespaces=["/", "/chat"]))
    bob = ChatUser(clients(srv.url, None, namespaces=["/", "/chat"]))
    assert bob.rec.expect("online") == (2,)
    alice.enter("alice", "general")
    bob.enter("bob", "general")
    assert bob.call("message", "over gunicorn") == {"ok": True}
    assert alice.expect("notice") == {"text": "bob joined #general"}
    assert alice.expect("message") == _message("bob", "over gunicorn", "general")
    assert requests.get(srv.url + "/", timeout=5).status_code == 200
    assert not [line for line in srv.output if "Warning" in line or "Traceback" in line], srv.output


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
    assert '<script src="/socket.io/socket.io.min.js"></script>' in page.text
    for element_id in ("status", "online", "nick-form", "nick-input", "nick-error", "room-general",
                       "room-random", "messages", "typing", "form", "input", "send"):
        assert f'id="{element_id}"' in page.text   # what tests/js/browser_chat.mjs relies on

    bundle = requests.get(srv.url + "/socket.io/socket.io.min.js", timeout=5)  # serve_client
    assert bundle.status_code == 200
    assert bundle.headers["Content-Type"].startswith("application/javascript")
    assert bundle.content == bundle_file.read_bytes()
    assert bundle.headers["Content-Encoding"] == "gzip"  # requests accepts it (and decodes)
    revalidated = requests.get(srv.url + "/socket.io/socket.io.min.js", timeout=5,
                               headers={"If-None-Match": bundle.headers["ETag"]})
    assert revalidated.status_code == 304

    assert requests.get(srv.url + "/nope", timeout=5).status_code == 404
    # The Socket.IO path still goes to the server, not to the static files.
    handshake = requests.get(srv.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    assert handshake.status_code == 200 and handshake.text.startswith('0{"sid":')



# -- examples/flask_notify ------------------------------------------------------------------

FLASK_NOTIFY = "examples.flask_notify.app:build"


@pytest.fixture(params=["script", "gunicorn"])
def notify_url(request: Any) -> Iterator[str]:
    """The Flask example as ``python examples/flask_notify/app.py HOST PORT`` runs it
    (``socketio_sync.run``), and under gunicorn."""
    if request.param == "script":
        with running_script(ROOT / "examples" / "flask_notify" / "app.py") as url:
            yield url
    else:
        yield str(request.getfixturevalue("gunicorn_server")(FLASK_NOTIFY + "()").url)


def _log_in(url: str, user: str) -> str:
    """Log in through the form view; the Cookie header that carries the session."""
    http = requests.Session()
    resp = http.post(url + "/login", data={"user": user}, allow_redirects=False, timeout=5)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    page = http.get(url + "/", timeout=5)
    assert page.status_code == 200 and f'<span id="user">{user}</span>' in page.text
    return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


@pytest.mark.integration
def test_flask_notify_pages(notify_url: str) -> None:
    resp = requests.get(notify_url + "/", allow_redirects=False, timeout=5)
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    form = requests.get(notify_url + "/login", timeout=5)
    assert form.status_code == 200 and 'name="user"' in form.text
    refused = requests.post(notify_url + "/login", data={"user": "  "}, allow_redirects=False, timeout=5)
    assert refused.status_code == 400 and 'id="error"' in refused.text
    assert requests.post(notify_url + "/api/notify/alice", data="not json", timeout=5).status_code == 400


@pytest.mark.integration
def test_flask_notify_reaches_only_that_user(notify_url: str, clients: Any) -> None:
    alice_cookie, bob_cookie = _log_in(notify_url, "alice"), _log_in(notify_url, "bob")
    alice_tab1 = clients(notify_url, ["websocket"], headers={"Cookie": alice_cookie})
    alice_tab2 = clients(notify_url, ["polling"], headers={"Cookie": alice_cookie})
    bob = clients(notify_url, None, headers={"Cookie": bob_cookie})

    resp = requests.post(notify_url + "/api/notify/alice", json={"text": "your build passed", "n": [1, 2]},
                         timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"user": "alice", "sockets": 2}
    for tab in (alice_tab1, alice_tab2):                     # every tab alice has open
        assert tab.expect("notification") == ({"text": "your build passed", "n": [1, 2]},)
    assert requests.post(notify_url + "/api/notify/bob", json="just for bob", timeout=5).json() == {
        "user": "bob", "sockets": 1}
    assert bob.expect("notification") == ("just for bob",)
    assert requests.post(notify_url + "/api/notify/carol", json={}, timeout=5).json() == {
        "user": "carol", "sockets": 0}                       # nobody there: nothing sent
    for rec in (alice_tab1, alice_tab2, bob):
        assert rec.nothing_more() == []


@pytest.mark.integration
def test_flask_notify_refuses_sockets_without_a_session(notify_url: str) -> None:
    errors: queue.Queue[Any] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("connect_error", errors.put)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(notify_url, transports=["websocket"], wait_timeout=5)
    assert errors.get(timeout=5) == {"message": "log in first"}
    client.disconnect()


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

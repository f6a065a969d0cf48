"""The chat example in a real browser: alice and bob, two contexts of the system Chromium
driven by playwright-core from Node (``tests/js/browser_chat.mjs``), chat through the
server with the official client bundle the page loads, over each transport mode.

The server is the example as deployed (gunicorn with socketio_sync's worker) and as
``make run`` starts it (``python examples/chat/app.py HOST PORT``). A screenshot of
alice's page is kept in ``tests/artifacts/`` for each run.
"""
from __future__ import annotations

import json
import re
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT, missing_dependency, require_tool
from tests.integration.test_examples import running_script

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.js]

SCRIPT = ROOT / "tests" / "js" / "browser_chat.mjs"
CHAT_DIR = ROOT / "examples" / "chat"
ARTIFACTS = ROOT / "tests" / "artifacts"
VIEWPORT = (820, 620)  # browser_chat.mjs's viewport: the screenshot's size in pixels

#: test id -> the page's ?transports= and the transport the connection must end on.
MODES = {
    "polling": ("polling", "polling"),
    "websocket": ("websocket", "websocket"),
    "upgrade": ("polling,websocket", "websocket"),
}


@pytest.fixture
def browser_tools() -> tuple[str, str]:
    node = require_tool("node", "nodejs")
    chromium = require_tool("chromium", "chromium-browser")
    missing = [str(p.relative_to(ROOT)) for p in (
        ROOT / "tests" / "js" / "node_modules" / "playwright-core",
        CHAT_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js",
    ) if not p.exists()]
    if missing:
        missing_dependency(
            f"missing {', '.join(missing)}: run `make test` (it runs npm ci in tests/js and examples/chat)")
    return node, chromium


def _run_browser(tools: tuple[str, str], url: str, transports: str | None, screenshot: Path) -> dict[str, Any]:
    node, chromium = tools
    cmd = [node, str(SCRIPT), url, "--screenshot", str(screenshot), "--chromium", chromium]
    if transports:
        cmd += ["--transports", transports]
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)  # so that an old one cannot pass for this run's
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"browser_chat.mjs exited {proc.returncode}:\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from browser_chat.mjs; stdout={proc.stdout!r} stderr={proc.stderr!r}"
    return json.loads(lines[-1])


def _assert_chat_went_as_expected(result: dict[str, Any], transport: str) -> None:
    failed = [s for s in result["steps"] if not s["ok"]]
    assert not failed, f"failed step(s): {failed}\nall: {json.dumps(result, indent=1, ensure_ascii=False)}"
    assert result["ok"] is True
    steps = {s["step"]: s.get("detail") for s in result["steps"]}
    assert steps["alice loads the page and connects"] == "socketio_sync chat"   # the <title>
    assert steps["bob is refused a taken nickname"] == 'The nickname "Alice" is taken.'
    assert steps["alice sees 'bob is typing…' while he types"] == "bob is typing…"

    alice, bob = result["alice"], result["bob"]
    # "/chat", room "general": alice saw bob come, go to #random and come back; his message
    # in #random ("only in random") never reached her.
    assert alice["items"] == [
        {"kind": "notice", "text": "You are in #general as alice"},
        {"kind": "notice", "text": "bob joined #general"},
        {"kind": "message", "nickname": "bob", "text": "hi alice", "mine": False},
        {"kind": "message", "nickname": "alice", "text": "héllo bob ✓", "mine": True},
        {"kind": "notice", "text": "bob left #general"},
        {"kind": "notice", "text": "bob joined #general"},
        {"kind": "message", "nickname": "bob", "text": "back in general", "mine": False},
    ]
    # Bob's page shows the room he is in now, since he came back to it.
    assert bob["items"] == [
        {"kind": "notice", "text": "You are in #general as bob"},
        {"kind": "message", "nickname": "bob", "text": "back in general", "mine": True},
    ]
    for page, nickname in ((alice, "alice"), (bob, "bob")):
        assert page["nickname"] == nickname
        assert page["nickError"] == ""          # bob's refusal was cleared once accepted
        assert page["activeRoom"] == ["general"]
        assert page["typing"] == ""             # every indicator was cleared
        assert page["online"] == "2 online"     # presence, from the "/" namespace
        # The transport really used, read from the client (socket.io.engine.transport.name)
        # and shown by the page; "/" and "/chat" share that one connection.
        assert page["transport"] == transport
        assert page["status"] == f"connected ({transport})"
        assert page["sharedConnection"] is True

    assert result["pageErrors"] == []
    assert result["consoleErrors"] == []


def _assert_png(path: Path, size: tuple[int, int]) -> None:
    """A complete PNG of ``size`` pixels that is not one flat colour."""
    assert path.is_file(), f"no screenshot at {path}"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert len(data) > 5_000, f"suspiciously small screenshot: {len(data)} bytes"
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    assert struct.unpack(">II", chunks[0][1][:8]) == size
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(set(pixels)) > 16, "the screenshot is (nearly) blank"


def _engine_requests(log_lines: list[str]) -> set[tuple[str, int]]:
    """(transport, HTTP status) of every Engine.IO request in gunicorn's access log."""
    found = set()
    for line in log_lines:
        m = re.search(r'"(?:GET|POST) /socket\.io/\?[^"]*\btransport=(\w+)[^"]*" (\d{3})', line)
        if m:
            found.add((m.group(1), int(m.group(2))))
    return found


@pytest.mark.parametrize("mode", list(MODES))
def test_chat_in_two_browsers_over_gunicorn(gunicorn_server: Any, browser_tools: tuple[str, str],
                                            mode: str) -> None:
    transports, transport = MODES[mode]
    srv = gunicorn_server("examples.chat.app:build()")
    screenshot = ARTIFACTS / f"chat-gunicorn-{mode}.png"

    result = _run_browser(browser_tools, srv.url + "/", transports, screenshot)

    _assert_chat_went_as_expected(result, transport)
    assert result["url"] == f"{srv.url}/?transports={transports.replace(',', '%2C')}"
    assert result["screenshot"] == str(screenshot)
    _assert_png(screenshot, VIEWPORT)

    # The server side of the story, from gunicorn's access log: which transports came.
    # A WebSocket is logged when it closes, which the pages have just done.
    deadline = time.monotonic() + 5
    while True:
        seen = _engine_requests(srv.output)
        if ("websocket", 101) in seen or transport == "polling" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    transports_seen = {t for t, _status in seen}
    expected = set(transports.split(","))
    assert transports_seen == expected, f"{seen}\n" + "\n".join(srv.output)
    if "websocket" in expected:
        assert ("websocket", 101) in seen


@pytest.fixture
def chat_script_url() -> Iterator[str]:
    """``python examples/chat/app.py 127.0.0.1 PORT``, as ``make run`` starts it
    (``socketio_sync.run``)."""
    with running_script(CHAT_DIR / "app.py") as url:
        yield url


def test_chat_in_two_browsers_as_make_run_serves_it(chat_script_url: str, browser_tools: tuple[str, str]) -> None:
    """The page's default transports (polling, then the upgrade) on ``socketio_sync.run``."""
    screenshot = ARTIFACTS / "chat-run-default.png"

    result = _run_browser(browser_tools, chat_script_url + "/", None, screenshot)

    _assert_chat_went_as_expected(result, "websocket")
    assert result["url"] == chat_script_url + "/"
    _assert_png(screenshot, VIEWPORT)

"""The chat example in a real browser: two tabs of the system Chromium, driven by
playwright-core from Node (``tests/js/browser_chat.mjs``), talk through the server
with the official client bundle the page loads."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, missing_dependency, require_tool

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.js]

SCRIPT = ROOT / "tests" / "js" / "browser_chat.mjs"
CHAT_DIR = ROOT / "examples" / "chat"


def _require_npm_packages() -> None:
    missing = [str(p.relative_to(ROOT)) for p in (
        ROOT / "tests" / "js" / "node_modules" / "playwright-core",
        CHAT_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js",
    ) if not p.exists()]
    if missing:
        missing_dependency(
            f"missing {', '.join(missing)}: run `make test` (it runs npm ci in tests/js and examples/chat)")


def _run_browser(node: str, chromium: str, url: str, screenshot: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [node, str(SCRIPT), url, "--screenshot", str(screenshot), "--chromium", chromium],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"browser_chat.mjs exited {proc.returncode}:\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from browser_chat.mjs; stdout={proc.stdout!r} stderr={proc.stderr!r}"
    return json.loads(lines[-1])


def test_chat_in_two_browser_tabs(live_server: Any, tmp_path: Path) -> None:
    node = require_tool("node", "nodejs")
    chromium = require_tool("chromium", "chromium-browser")
    _require_npm_packages()
    srv = live_server("examples.chat.app:build")

    result = _run_browser(node, chromium, srv.url + "/", tmp_path / "chat.png")

    failed = [s for s in result["steps"] if not s["ok"]]
    assert not failed, f"failed step(s): {failed}\nall: {json.dumps(result, indent=1)}"
    assert result["ok"] is True
    assert result["steps"][0]["detail"] == "socketio_sync chat"  # the page's <title>

    texts1 = [item["text"] for item in result["tab1"]["items"]]
    texts2 = [item["text"] for item in result["tab2"]["items"]]
    # io.emit reaches both tabs, the sender included, in the order sent.
    assert texts1 == ["a user connected", "hello from tab 1", "héllo ✓ from tab 2"]
    # socket.broadcast.emit("user connected") skips the tab that just arrived.
    assert texts2 == ["hello from tab 1", "héllo ✓ from tab 2"]
    assert result["tab1"]["items"][0]["system"] is True
    # The official client upgraded from polling to WebSocket in both tabs.
    assert result["tab1"]["status"] == "connected (websocket)"
    assert result["tab2"]["status"] == "connected (websocket)"

    assert result["pageErrors"] == []
    assert result["consoleErrors"] == []
    png = Path(result["screenshot"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


"""The Sphinx documentation builds without a single warning (``-W``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, missing_dependency


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    try:
        import sphinx  # noqa: F401
    except ImportError:
        missing_dependency("sphinx is not installed (pip install -e .[docs])")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    index = (tmp_path / "html" / "index.html").read_text()
    for page in ("guides/flask_socketio", "guides/python_socketio", "guides/django_channels",
                 "guides/node", "api", "architecture"):
        assert f"{page}.html" in index, page
    api = (tmp_path / "html" / "api.html").read_text()
    # autodoc really ran: classes and docstrings of the public modules are on the page
    for name in ("socketio_sync.server.Server", "socketio_sync.socket.Socket",
                 "socketio_sync.compat.flask_socketio.SocketIO",
                 "socketio_sync.compat.python_socketio.Server", "socketio_sync.testing.TestClient"):
        assert f'id="{name}"' in api, name


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))

"""Flask-SocketIO's own files, fetched at test time (never copied into this repository).

The pinned source distribution is downloaded once with ``pip download`` into a cache
directory (``$SOCKETIO_SYNC_TEST_CACHE``, default ``~/.cache/socketio_sync-tests``),
checked against its SHA-256, and unpacked. Only import lines are rewritten
(``from flask_socketio import`` -> ``from socketio_sync.compat.flask_socketio import``).

The sdist holds ``test_socketio.py`` (Flask-SocketIO's test suite, whose module-level
app has rooms, broadcasts, class-based namespaces and a background task) and
``docs/getting_started.rst`` (the documented examples). It does not hold the
repository's ``example/`` directory, so the documented chat-with-rooms app is assembled
from the literal blocks of ``getting_started.rst``.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.conftest import missing_dependency

FLASK_SOCKETIO_VERSION = "5.7.0"
FLASK_SOCKETIO_SDIST = f"flask_socketio-{FLASK_SOCKETIO_VERSION}.tar.gz"
FLASK_SOCKETIO_SHA256 = "aa01e50106962808dadc245407c3b6354295b1526e888bd154dc7ff4801a7c88"

IMPORT_FROM = "from flask_socketio import"
IMPORT_TO = "from socketio_sync.compat.flask_socketio import"


def cache_dir() -> Path:
    path = Path(os.environ.get("SOCKETIO_SYNC_TEST_CACHE", Path.home() / ".cache" / "socketio_sync-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def flask_socketio_source() -> Path:
    """The unpacked, checked sdist (downloaded on first use). A failed download fails
    the test (:func:`missing_dependency`)."""
    cache = cache_dir()
    root = cache / f"flask_socketio-{FLASK_SOCKETIO_VERSION}"
    if (root / "test_socketio.py").exists():
        return root
    archive = cache / FLASK_SOCKETIO_SDIST
    if not archive.exists():
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"flask-socketio=={FLASK_SOCKETIO_VERSION}", "-d", str(cache)],
            capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0 or not archive.exists():
            missing_dependency(f"could not download the Flask-SocketIO {FLASK_SOCKETIO_VERSION} sdist: "
                               f"{proc.stderr[-500:]}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != FLASK_SOCKETIO_SHA256:
        archive.unlink()
        raise AssertionError(f"{archive.name}: SHA-256 {digest} is not the pinned {FLASK_SOCKETIO_SHA256}")
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    return root


def rewrite_imports(source: str) -> str:
    """The one change allowed: import from the compat layer instead of flask_socketio."""
    out, count = re.subn(r"^(\s*)" + re.escape(IMPORT_FROM), lambda m: m.group(1) + IMPORT_TO, source, flags=re.M)
    if "flask_socketio" in out.replace("socketio_sync.compat.flask_socketio", ""):
        leftover = [line for line in out.splitlines()
                    if "flask_socketio" in line.replace("socketio_sync.compat.flask_socketio", "")]
        if any(line.lstrip().startswith(("import ", "from ")) for line in leftover):
            raise AssertionError(f"an import of flask_socketio was not rewritten: {leftover}")
    return out


def literal_blocks(rst: str) -> list[str]:
    """The ``::`` literal blocks of a reST document, dedented."""
    blocks: list[str] = []
    lines = rst.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].rstrip().endswith("::"):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            body: list[str] = []
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                body.append(lines[j])
                j += 1
            indent = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
            blocks.append("\n".join(b[indent:] for b in body).strip() + "\n")
            i = j
        else:
            i += 1
    return blocks


#: Literal blocks of docs/getting_started.rst that make the documented chat app, each
#: found by a line it contains, in the order they are put together.
DOCS_APP_BLOCKS = [
    "app = Flask(__name__)",                   # Initialization
    "from flask_socketio import send, emit",   # Sending messages: bounce back to the sender
    "emit('my response', data, broadcast=True)",  # Broadcasting
    "def some_function():",                    # emitting from server code (a background thread)
    "def on_join(data):",                      # Rooms: join/leave with a message to the room
    "def test_connect(auth):",                 # Connection events
]


def build_sources(dest: Path) -> Path:
    """Write ``upstream_app.py`` (Flask-SocketIO's test_socketio.py) and ``docs_app.py``
    (the getting-started blocks) into ``dest``, imports rewritten; return ``dest``."""
    root = flask_socketio_source()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "upstream_app.py").write_text(rewrite_imports((root / "test_socketio.py").read_text()))
    blocks = literal_blocks((root / "docs" / "getting_started.rst").read_text())
    chosen = []
    for marker in DOCS_APP_BLOCKS:
        found = [b for b in blocks if marker in b]
        if not found:
            raise AssertionError(f"no literal block with {marker!r} in getting_started.rst")
        chosen.append(found[0])
    (dest / "docs_app.py").write_text(rewrite_imports("\n\n".join(chosen)))
    return dest

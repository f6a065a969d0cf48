"""The sans-IO core (``socketio_sync.eio``, ``socketio_sync.sio``) does no I/O: it imports
neither gevent nor sockets, so it can be reused under any I/O model.

Two independent checks, each shown able to fail:

* a real import in a fresh interpreter where gevent, socket & co. are made unimportable
  (``sys.modules[name] = None``) and ``socketio_sync/__init__.py`` (which pulls in the
  gevent shell) is bypassed with a bare package stub;
* a static scan of every ``import`` statement in the core's source, function-level ones
  included, which a real import would not reach.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "socketio_sync"
CORE = ("eio", "sio")

#: Modules the core must not import: the gevent shell's libraries and the stdlib's network
#: and event-loop modules. (``threading`` is not listed: ``dataclasses`` imports ``_thread``.)
FORBIDDEN = (
    "gevent", "greenlet", "geventwebsocket", "wsproto", "werkzeug", "socket", "_socket", "select",
    "selectors", "ssl", "asyncio", "subprocess", "http", "urllib.request",
)

#: Runs in a fresh interpreter: argv[1] = package dir, argv[2:] = submodules to import.
PROBE = r"""
import json, sys, types

package_dir, targets, forbidden = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
for name in forbidden:
    sys.modules[name] = None          # any import of it now raises ImportError

# The package without its __init__ (which imports the gevent shell on purpose).
stub = types.ModuleType("socketio_sync")
stub.__path__ = [package_dir]
sys.modules["socketio_sync"] = stub

import importlib
result = {"imported": [], "error": None}
try:
    for target in targets:
        importlib.import_module("socketio_sync." + target)
        result["imported"].append(target)
except BaseException as exc:
    result["error"] = f"{type(exc).__name__}: {exc}"
loaded = [m for m, mod in sys.modules.items() if mod is not None]
result["forbidden_loaded"] = sorted(
    m for m in loaded for f in forbidden if m == f or m.startswith(f + "."))
result["socketio_sync_modules"] = sorted(m for m in loaded if m.startswith("socketio_sync"))
print(json.dumps(result))
"""


def probe_import(*targets: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(PACKAGE_DIR), ",".join(targets), ",".join(FORBIDDEN)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_imports_without_gevent_or_sockets() -> None:
    result = probe_import(*CORE)
    assert result["error"] is None, result["error"]
    assert result["imported"] == list(CORE)
    assert result["forbidden_loaded"] == []
    # Only the core and the exception tree it shares were loaded, not the shell.
    assert set(result["socketio_sync_modules"]) <= {
        "socketio_sync", "socketio_sync.exceptions",
        "socketio_sync.eio", "socketio_sync.eio.packet", "socketio_sync.eio.session",
        "socketio_sync.eio.v3", "socketio_sync.sio", "socketio_sync.sio.packet", "socketio_sync.sio.v4",
        "socketio_sync.sio.msgpack",
    }, result["socketio_sync_modules"]


def test_core_works_without_gevent() -> None:
    """Not only importable: the codecs and a session run in that gevent-less interpreter."""
    code = PROBE.replace("print(json.dumps(result))", r"""
from socketio_sync import eio, sio
wire = eio.encode_payload([eio.Packet(eio.PacketType.MESSAGE, "hi"), eio.Packet(eio.PacketType.MESSAGE, b"\x01")])
assert [p.data for p in eio.decode_payload(wire, 10)] == ["hi", b"\x01"]
items = sio.Encoder().encode(sio.Packet(sio.PacketType.EVENT, "/", ["ev", b"\x00"]))
dec = sio.Decoder(10)
out = [dec.add(item) for item in items]
assert out[-1].data == ["ev", b"\x00"], out
s = eio.Session("sid1", transport="polling", ping_interval=1.0, ping_timeout=1.0,
                max_payload=1000, upgrades=[], now=0.0)
assert s.take_outgoing()[0].type == eio.PacketType.OPEN
loaded = [m for m, mod in sys.modules.items() if mod is not None]
result["forbidden_loaded"] = sorted(m for m in loaded for f in forbidden if m == f or m.startswith(f + "."))
print(json.dumps(result))
""")
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(PACKAGE_DIR), ",".join(CORE), ",".join(FORBIDDEN)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] is None and result["forbidden_loaded"] == []


def test_probe_can_fail() -> None:
    """The same probe on the shell must fail, or the check above proves nothing."""
    result = probe_import("wsgi")
    assert result["error"] is not None, result
    assert "import of gevent halted" in result["error"] or "import of socket halted" in result["error"], result


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, nested ones included."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    package = ".".join(parts[:-1])  # the package a relative import starts from
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
        elif isinstance(node, ast.Call) and (
                getattr(node.func, "id", None) == "__import__" or getattr(node.func, "attr", None) == "import_module"):
            found.append((node.lineno, "<dynamic import>"))
    return found


def import_violations(path: Path, root: Path = PACKAGE_DIR) -> list[str]:
    """Imports in ``path`` (a file under ``root``, the socketio_sync folder) that the core may not use."""
    allowed_internal = ("socketio_sync.eio", "socketio_sync.sio", "socketio_sync.exceptions")
    bad = []
    for line, module in _imports(path, root):
        if module.startswith("socketio_sync"):
            ok = any(module == a or module.startswith(a + ".") for a in allowed_internal)
        elif module == "__future__":
            ok = True
        else:
            ok = module.split(".")[0] in sys.stdlib_module_names and not any(
                module == f or module.startswith(f + ".") for f in FORBIDDEN)
        if not ok:
            bad.append(f"{path.relative_to(root.parent)}:{line}: imports {module}")
    return bad


@pytest.mark.parametrize("sub", CORE)
def test_core_sources_import_only_stdlib(sub: str) -> None:
    files = sorted((PACKAGE_DIR / sub).rglob("*.py"))
    assert files
    bad = [v for f in files for v in import_violations(f)]
    assert bad == []


def test_exceptions_module_is_pure() -> None:
    """The core imports ``socketio_sync.exceptions``: it must stay free of I/O too."""
    assert import_violations(PACKAGE_DIR / "exceptions.py") == []


def test_scan_can_fail(tmp_path: Path) -> None:
    """The scan flags the shell, a nested import hidden in a function, a relative import
    reaching into the shell, and a dynamic import."""
    assert any("imports gevent" in v for v in import_violations(PACKAGE_DIR / "wsgi" / "engine.py"))
    root = tmp_path / "socketio_sync"
    (root / "eio").mkdir(parents=True)
    fake = root / "eio" / "packet.py"
    fake.write_text(
        "import json\n"
        "from ..exceptions import RemoteProtocolError\n"
        "from . import session\n"
        "def later():\n"
        "    from gevent import sleep\n"
        "    import socket\n"
        "    from ..wsgi import engine\n"
        "    return __import__('select')\n"
    )
    bad = [v.split(": ", 1)[1] for v in import_violations(fake, root)]
    assert bad == ["imports gevent", "imports socket", "imports socketio_sync.wsgi",
                   "imports <dynamic import>"]

"""Flask-SocketIO apps, unchanged apart from their import lines, served by socketio_sync.

``source_dir`` is where :func:`tests.compat_sources.build_sources` wrote them.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any


def build(source_dir: str, module: str = "docs_app") -> Any:
    sys.path.insert(0, source_dir)
    mod = importlib.import_module(module)
    app = mod.app
    if hasattr(mod, "some_function"):
        # The documented "emit from server code" function, run from a background thread
        # the way the docs describe, started by an HTTP request of the test.
        @app.get("/run-some-function")
        def run_some_function() -> str:
            mod.socketio.start_background_task(mod.some_function)
            return "started"
    return app

"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build/html``."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import socketio_sync  # noqa: E402

project = "socketio_sync"
author = "socketio_sync contributors"
copyright = "2026, socketio_sync contributors"
release = socketio_sync.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # signatures keep the names; the docstrings say the types
# Optional dependencies that are imported lazily: documented without installing them.
autodoc_mock_imports: list[str] = []

intersphinx_mapping: dict[str, tuple[str, None]] = {}

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
nitpicky = False

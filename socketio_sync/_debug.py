"""``DEBUG=socketio_sync*`` turns on debug logging without code, like Node's ``DEBUG=socket.io*``.

The library never adds log handlers otherwise: configure ``logging`` in your app and use
the loggers ``socketio_sync.eio``, ``socketio_sync.server``, ``socketio_sync.websocket``,
``socketio_sync.access``.
"""
from __future__ import annotations

import fnmatch
import logging
import os
import re

__all__ = ["configure_from_environment", "LOGGERS"]

LOGGERS = (
    "socketio_sync",
    "socketio_sync.eio",
    "socketio_sync.server",
    "socketio_sync.websocket",
    "socketio_sync.access",
)

_configured = False


def configure_from_environment(value: str | None = None) -> list[str]:
    """Read ``DEBUG`` (comma or space separated patterns such as ``socketio_sync*`` or
    ``socketio_sync.eio``) and send matching loggers' debug output to stderr.

    Returns the names of the loggers it turned on.
    """
    global _configured
    value = os.environ.get("DEBUG", "") if value is None else value
    patterns = [p for p in re.split(r"[\s,]+", value) if p]
    if not patterns or _configured:
        return []
    names = []
    for name in LOGGERS:
        if any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name.replace(".", ":"), p) for p in patterns):
            names.append(name)
    if not names:
        return []
    _configured = True
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    # "socketio_sync" covers its children; otherwise attach to each named logger.
    targets = ["socketio_sync"] if "socketio_sync" in names else names
    for name in targets:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    return names

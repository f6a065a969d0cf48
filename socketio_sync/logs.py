"""Structured logs: one JSON object per line from the ``socketio_sync.*`` loggers.

socketio_sync adds no handler of its own; attach the formatter to yours::

    import logging, sys
    from socketio_sync.logs import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("socketio_sync")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)       # DEBUG for every session and socket

A line looks like::

    {"time": "2026-11-22T09:30:00.123Z", "level": "INFO", "logger": "socketio_sync.eio",
     "message": "session abc: invalid packet; closing", "eio_sid": "abc", "reason": "parse error",
     "remote_addr": "127.0.0.1"}

The library's important log calls carry these fields (as ``extra=``), and the formatter
copies any of them that a record has:

``eio_sid``       the Engine.IO session id (Node's ``socket.conn.id``)
``sid``           the socket id in its namespace (Node's ``socket.id``)
``namespace``     the namespace name
``event``         the event name
``remote_addr``   the client's address (``REMOTE_ADDR``)
``reason``        why something closed or was refused
``transport``     ``polling`` or ``websocket``

Your own log calls can add them the same way (``log.info(..., extra={"sid": socket.id})``),
or any other field: pass ``fields=("user",)`` to copy more attributes.

.. versionadded:: 0.2
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Iterable

__all__ = ["JsonFormatter", "FIELDS"]

#: The structured fields that socketio_sync's log calls set.
FIELDS = ("eio_sid", "sid", "namespace", "event", "remote_addr", "reason", "transport")


class JsonFormatter(logging.Formatter):
    """Formats a record as a single line of JSON: ``time`` (UTC, ISO 8601 with
    milliseconds), ``level``, ``logger``, ``message``, the structured :data:`FIELDS`
    that the record has, and ``exc_info`` (the formatted traceback) when there is one.

    :param fields: extra record attributes to copy when present.
    :param static: fields added to every line, such as ``{"service": "chat"}``.
    """

    def __init__(self, fields: Iterable[str] = (), static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = tuple(FIELDS) + tuple(f for f in fields if f not in FIELDS)
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        millis = int((record.created - seconds) * 1000)
        obj: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        obj.update(self.static)
        for name in self.fields:
            value = getattr(record, name, None)
            if value is not None:
                obj[name] = value
        if record.exc_info:
            obj["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            obj["exc_info"] = record.exc_text
        if record.stack_info:
            obj["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(obj, ensure_ascii=False, default=repr, separators=(",", ":"))

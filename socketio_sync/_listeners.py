"""Listener-list helpers shared by :class:`~socketio_sync.Socket` and
:class:`~socketio_sync.Namespace` (Node's ``once``/``off`` semantics)."""
from __future__ import annotations

from typing import Any, Callable

Handler = Callable[..., Any]


def register_once(on: Callable[[str, Handler], Any], off: Callable[[str, Handler], Any],
                  event: str, handler: Handler | None) -> Any:
    """``once(event, handler)`` on top of ``on``/``off``: the handler is removed before
    its first call; ``off(event, handler)`` also finds it (``_once_of``). Usable as a
    decorator when ``handler`` is ``None``."""
    def register(fn: Handler) -> Handler:
        def wrapper(*args: Any) -> Any:
            off(event, wrapper)
            return fn(*args)
        wrapper._once_of = fn  # type: ignore[attr-defined]
        on(event, wrapper)
        return fn

    return register(handler) if handler is not None else register


def remove_handler(handlers: list[Handler], handler: Handler) -> None:
    """Remove the first entry that is ``handler`` or its :func:`register_once` wrapper."""
    for i, fn in enumerate(handlers):
        if fn is handler or fn == handler or getattr(fn, "_once_of", None) is handler:
            del handlers[i]
            return

"""Helpers shared by the migration layers."""
from __future__ import annotations

import functools
import inspect
import threading
import time
from typing import Any, Callable

__all__ = ["Dispatcher", "accepts", "disconnect_reason", "event_args"]

#: socketio_sync disconnect reasons -> python-socketio's (what Flask-SocketIO passes on).
_REASONS = {
    "client namespace disconnect": "client disconnect",
    "client disconnect": "client disconnect",
    "server namespace disconnect": "server disconnect",
    "forced server close": "server disconnect",
    "forced close": "server disconnect",
    "server shutting down": "server disconnect",
    "ping timeout": "ping timeout",
    "transport close": "transport close",
    "transport error": "transport error",
    "parse error": "transport error",
}


def disconnect_reason(args: tuple[Any, ...]) -> str:
    """python-socketio's name for the reason in a ``disconnect`` notification's ``args``."""
    return _REASONS.get(args[0] if args else "", "server disconnect")


class Dispatcher(dict):  # type: ignore[type-arg]
    """Stands in for a :class:`socketio_sync.Socket`'s handler table so that every
    event, whatever its name (``"*"`` catch-all handlers need this), and the
    ``"disconnect"`` notification go to one function: ``route(event, *args)``, whose
    return value is the ack (:data:`socketio_sync.NO_ACK` for none).

    This replaces ``socket._handlers`` (a private attribute of the core): handlers are
    registered on the compat server object, never with ``socket.on()``.
    """

    def __init__(self, route: Callable[..., Any]) -> None:
        super().__init__()
        self._route = route

    def get(self, event: str, default: Any = None) -> list[Callable[..., Any]]:
        return [functools.partial(self._route, event)]

    def setdefault(self, event: str, default: Any = None) -> list[Callable[..., Any]]:
        raise RuntimeError("with the socketio_sync.compat layers, register handlers on the server object")


@functools.lru_cache(maxsize=4096)
def accepts(fn: Callable[..., Any], count: int) -> bool:
    """Whether ``fn`` can be called with ``count`` positional arguments, from its
    signature (no second call on ``TypeError``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(*range(count))
    except TypeError:
        return False
    return True


def event_args(args: tuple[Any, ...]) -> list[Any]:
    """Flask-SocketIO's and python-socketio's payload convention: no data (or ``None``
    as the only value) sends no argument, a tuple sends several, anything else one."""
    if len(args) == 1:
        data = args[0]
        if data is None:
            return []
        if isinstance(data, tuple):
            return list(data)
        return [data]
    return list(args)


def in_gevent_greenlet() -> bool:
    """Whether blocking here should be cooperative (patched threads, or a greenlet)."""
    import gevent
    from gevent import monkey

    return monkey.is_module_patched("threading") or isinstance(gevent.getcurrent(), gevent.Greenlet)


def start_background_task(target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``target(*args, **kwargs)`` in the background: a greenlet under gevent, a
    thread otherwise. Returns an object with ``join()``."""
    if in_gevent_greenlet():
        import gevent

        return gevent.spawn(target, *args, **kwargs)
    thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def sleep(seconds: float = 0) -> None:
    """Sleep without blocking other clients (``gevent.sleep`` in a greenlet)."""
    if in_gevent_greenlet():
        import gevent

        gevent.sleep(seconds)
    else:
        time.sleep(seconds)

"""A pool of reusable greenlets for event handlers.

Starting a greenlet costs about 10 µs. Waking one that waits on an ``Event`` costs about
5; handing a task to a waiting greenlet with a direct switch scheduled on the hub costs
about 2, and this pool does that: handlers of a socket run in a worker taken from here,
which goes back to the pool when the socket's queue is empty.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import gevent
from greenlet import getcurrent

__all__ = ["WorkerPool"]

log = logging.getLogger("socketio_sync.server")

Task = tuple[Callable[..., Any], tuple[Any, ...]]


class WorkerPool:
    """Runs ``fn(*args)`` in a pooled greenlet.

    :param max_idle: idle workers kept at most (each holds a greenlet stack, ~8 KiB).
    :param idle_timeout: seconds an idle worker waits for work before it ends.
    """

    def __init__(self, max_idle: int = 64, idle_timeout: float = 5.0) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        #: Waiting workers (newest last) and when each went idle.
        self._idle: list[Any] = []
        self._since: list[float] = []
        self._loop: Any = None
        self._reaper: Any = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        idle = self._idle
        if idle:
            worker = idle.pop()
            self._since.pop()
            self._loop.run_callback(worker.switch, (fn, args))
        else:
            gevent.spawn(self._run, (fn, args))

    def _run(self, task: Task | None) -> None:
        me = getcurrent()
        hub = me.parent  # a gevent Greenlet's parent is its hub
        if self._loop is None:
            self._loop = hub.loop
        idle = self._idle
        while task is not None:
            fn, args = task
            try:
                fn(*args)
            except Exception:
                log.exception("error in %r", fn)
            if len(idle) >= self.max_idle:
                return
            idle.append(me)
            self._since.append(time.monotonic())
            if self._reaper is None:
                self._reaper = gevent.spawn_later(self.idle_timeout, self._reap)
            # Wait for submit() (a task) or the reaper (None): nothing else switches here.
            task = hub.switch()

    def _reap(self) -> None:
        """Retire the workers idle for ``idle_timeout`` (the oldest are first in the list)."""
        self._reaper = None
        deadline = time.monotonic() - self.idle_timeout
        idle, since = self._idle, self._since
        n = 0
        while n < len(since) and since[n] <= deadline:
            n += 1
        retired = idle[:n]
        del idle[:n], since[:n]
        for worker in retired:
            self._loop.run_callback(worker.switch, None)
        if idle:
            self._reaper = gevent.spawn_later(max(0.0, since[0] + self.idle_timeout - time.monotonic()),
                                              self._reap)

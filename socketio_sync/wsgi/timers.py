"""One greenlet runs every timer of an engine (heartbeats, connect timeouts), instead of
a sleeping greenlet per session: each of those costs about 8 KiB."""
from __future__ import annotations

import heapq
import logging
import time
from typing import Callable

import gevent
from gevent.event import Event

__all__ = ["TimerService"]

log = logging.getLogger("socketio_sync.eio")


class TimerService:
    """Calls ``fn()`` at monotonic time ``when``; entries cannot be cancelled, so a
    callback checks whether it is still wanted (cheap, and no bookkeeping per change)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._wake = Event()
        self._greenlet: gevent.Greenlet | None = None
        self._next = float("inf")

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, fn))
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)
        elif when < self._next:
            self._wake.set()

    def _run(self) -> None:
        heap = self._heap
        while True:
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, _, fn = heapq.heappop(heap)
                try:
                    fn()
                except Exception:
                    log.exception("timer callback %r failed", fn)
                # Drop the reference while waiting: it would keep the last session alive.
                fn = None  # type: ignore[assignment]
            self._next = heap[0][0] if heap else float("inf")
            self._wake.clear()
            self._wake.wait(None if not heap else max(0.0, self._next - time.monotonic()))

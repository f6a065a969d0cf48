"""The worker pool reuses greenlets and never loses or reorders work."""
from __future__ import annotations

import gevent

from socketio_sync.wsgi.workers import WorkerPool


def test_runs_every_task_and_reuses_idle_workers() -> None:
    pool = WorkerPool(max_idle=4, idle_timeout=1.0)
    seen: list[tuple[int, object]] = []
    for i in range(20):
        pool.submit(lambda i=i: seen.append((i, gevent.getcurrent())))
        gevent.sleep(0)
    gevent.sleep(0.01)
    assert [i for i, _ in seen] == list(range(20))
    assert len({id(g) for _, g in seen}) == 1  # one greenlet served them all, one by one
    assert len(pool._idle) == 1


def test_blocking_tasks_get_their_own_workers_and_idle_ones_retire() -> None:
    pool = WorkerPool(max_idle=2, idle_timeout=0.05)
    done: list[int] = []
    for i in range(5):
        pool.submit(lambda i=i: (gevent.sleep(0.01), done.append(i)))
    gevent.sleep(0.03)
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert len(pool._idle) == 2  # capped
    gevent.sleep(0.1)
    assert pool._idle == []  # retired after idle_timeout


def test_an_exception_does_not_kill_the_pool() -> None:
    pool = WorkerPool()
    out: list[str] = []
    pool.submit(lambda: 1 / 0)
    pool.submit(lambda: out.append("after"))
    gevent.sleep(0.01)
    assert out == ["after"]

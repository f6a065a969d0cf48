"""Where a server's greenlets run, and how other OS threads reach them.

Every session, timer and worker greenlet of an :class:`EngineServer` lives in one gevent
hub: its *runtime*. The first Socket.IO request decides which:

* **gevent** (``socketio_sync.run``, gunicorn's gevent workers, anything monkey-patched):
  the request's own hub. Requests and application code run there directly.
* **threads** (``flask run``, Django's ``runserver``, any threaded WSGI server without
  gevent): a background thread runs a hub for the server (:class:`LoopThread`). Request
  threads hand their request over and wait; a WebSocket request hands over a duplicate
  of the connection's socket. Event handlers run in a pool of real threads, so blocking
  code in them (the ORM, ``time.sleep``) does not stop the sessions.

Calls into the public API (``io.emit``, ``socket.emit``, ``socket.call``, ``join`` ...)
from any other OS thread are run in the server's hub by :func:`from_any_thread`, and the
calling thread waits for the result: a Flask view under ``flask run``, a background
thread or a CLI command can emit without knowing any of this.
"""
from __future__ import annotations

import functools
import io
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar
from wsgiref.util import is_hop_by_hop

import gevent
import gevent.socket
from gevent import monkey
from gevent.event import Event

if TYPE_CHECKING:
    from .engine import EngineServer

__all__ = ["Runtime", "LoopThread", "from_any_thread", "runtime_for_request", "bridge_request"]

log = logging.getLogger("socketio_sync.server")

_get_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")
_allocate_lock: Callable[[], Any] = monkey.get_original("_thread", "allocate_lock")
_start_new_thread: Callable[..., Any] = monkey.get_original("_thread", "start_new_thread")

#: Threads that run event handlers when the server runs in a :class:`LoopThread`.
HANDLER_THREADS = 64

#: environ keys: the connection's socket, from servers that expose it
#: (werkzeug's development server, the Django runserver of our integration).
RAW_SOCKET_KEYS = ("werkzeug.socket", "socketio_sync.raw_socket")
#: Set (to ``True``) in the server's environ once the connection was taken over for a
#: WebSocket: the server must not write a response or read another request.
WEBSOCKET_TAKEN_KEY = "socketio_sync.websocket_taken"

F = TypeVar("F", bound=Callable[..., Any])


class Runtime:
    """The OS thread (and its gevent hub) that runs an engine."""

    #: Runs application code off the hub (a gevent ``ThreadPool``), or ``None``: inline.
    handler_pool: Any = None

    def __init__(self, ident: int, hub: Any) -> None:
        self.ident = ident
        self.hub = hub

    def __repr__(self) -> str:
        return f"<{type(self).__name__} thread={self.ident}>"

    def is_current(self) -> bool:
        return _get_ident() == self.ident

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a new greenlet of this runtime's hub and block the calling OS
        thread until it returns (its exception is raised here)."""
        done = _allocate_lock()
        done.acquire()
        box: list[Any] = []

        def run() -> None:
            try:
                box.append((True, fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                box.append((False, exc))
            finally:
                done.release()

        self.hub.loop.run_callback_threadsafe(gevent.spawn, run)
        done.acquire()
        ok, value = box[0]
        if ok:
            return value
        raise value


class LoopThread(Runtime):
    """A daemon thread that runs a gevent hub for a server under a threaded WSGI server."""

    def __init__(self, name: str = "socketio_sync") -> None:
        ready = _allocate_lock()
        ready.acquire()
        started: list[Any] = []

        def main() -> None:
            hub = gevent.get_hub()
            # A referenced watcher that never fires keeps the loop running when it has
            # nothing else to do (otherwise waiting would be a LoopExit).
            keepalive = hub.loop.async_()
            keepalive.start(lambda: None)
            started.append((_get_ident(), hub))
            ready.release()
            Event().wait()

        _start_new_thread(main, ())
        ready.acquire()
        super().__init__(*started[0])
        from gevent.threadpool import ThreadPool

        self.handler_pool = self.call(ThreadPool, HANDLER_THREADS)
        log.info("socketio_sync runs in a background gevent thread (threaded WSGI server "
                 "without gevent); event handlers run in up to %d threads", HANDLER_THREADS)


_decide_lock = _allocate_lock()
_shared_loop: LoopThread | None = None


def shared_loop() -> LoopThread:
    """The process's one background hub thread (made on first use), shared by every
    server that runs under a threaded WSGI server."""
    global _shared_loop
    if _shared_loop is None:
        _shared_loop = LoopThread()
    return _shared_loop


def in_gevent_context() -> bool:
    """Whether the caller runs in a gevent greenlet (or a monkey-patched process), so the
    engine can live in the caller's hub."""
    return monkey.is_module_patched("threading") or isinstance(gevent.getcurrent(), gevent.Greenlet)


def runtime_for_request(engine: EngineServer) -> Runtime:
    """The engine's runtime, chosen by its first request (see the module docstring)."""
    rt = engine.runtime
    if rt is not None:
        return rt
    with _decide_lock:
        if engine.runtime is None:
            if in_gevent_context():
                engine.runtime = Runtime(_get_ident(), gevent.get_hub())
            else:
                engine.runtime = shared_loop()
        return engine.runtime


def from_any_thread(engine_of: Callable[[Any], EngineServer]) -> Callable[[F], F]:
    """Decorate a public method so that a call from an OS thread other than the engine's
    runs in the engine's hub (the caller blocks until it is done)."""
    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            rt = engine_of(self).runtime
            if rt is None or _get_ident() == rt.ident:
                return method(self, *args, **kwargs)
            return rt.call(method, self, *args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


# -- requests from other threads -----------------------------------------------------------


def raw_socket(environ: dict[str, Any]) -> Any:
    for key in RAW_SOCKET_KEYS:
        sock = environ.get(key)
        if sock is not None:
            return sock
    return None


class _Captured:
    """``start_response`` for a request run in another thread: remembers the status."""

    __slots__ = ("status", "headers")

    def __init__(self) -> None:
        self.status = "500 Internal Server Error"
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        self.status = status
        self.headers = list(headers)
        return _no_write


def _no_write(data: bytes) -> None:
    raise RuntimeError("socketio_sync does not use write()")


def _collect(engine: EngineServer, environ: dict[str, Any], start_response: _Captured) -> bytes:
    return b"".join(engine.handle_request(environ, start_response))


def _read_body(environ: dict[str, Any], limit: int) -> tuple[bytes, str | None]:
    """Read a request body in the request's own thread, never more than ``limit + 1``
    bytes; returns the bytes and the ``CONTENT_LENGTH`` for the engine to see."""
    stream = environ.get("wsgi.input")
    length_s = environ.get("CONTENT_LENGTH") or ""
    if stream is None or environ.get("REQUEST_METHOD") != "POST":
        return b"", length_s or None
    if not length_s and not environ.get("wsgi.input_terminated"):
        # Neither a length nor a chunked body the server ends for us: reading would
        # wait for the client to close. The engine refuses a POST without a body.
        return b"", None
    if length_s:
        try:
            length = int(length_s)
        except ValueError:
            return b"", length_s  # the engine refuses it
        if length > limit or length <= 0:
            return b"", length_s  # the engine answers 413 without reading
        try:
            return stream.read(length), length_s
        except Exception:  # the client went away: werkzeug's ClientDisconnected, OSError
            return b"", length_s  # short of its length: the engine closes the session
    chunks = []
    total = 0
    try:
        while total <= limit:
            chunk = stream.read(min(65536, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except Exception:  # a broken chunked body: announce one byte more than arrived
        return b"".join(chunks), str(total + 1)
    body = b"".join(chunks)
    return body, str(len(body))


def bridge_request(engine: EngineServer, rt: Runtime, environ: dict[str, Any],
                   start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Serve a request that arrived in another OS thread by running it in ``rt``."""
    from .engine import UPGRADE_KEY, WEBSOCKET_CAPABLE_KEY
    from .handler import is_websocket_request

    env = dict(environ)
    sock = raw_socket(environ)
    if sock is None:
        env[WEBSOCKET_CAPABLE_KEY] = False
    if is_websocket_request(environ):
        if sock is not None and UPGRADE_KEY not in environ:
            return _bridge_websocket(engine, rt, environ, env, start_response, sock)
    else:
        body, length = _read_body(environ, engine.max_http_buffer_size)
        env["wsgi.input"] = io.BytesIO(body)
        if length is not None:
            env["CONTENT_LENGTH"] = length
    captured = _Captured()
    data = rt.call(_collect, engine, env, captured)
    start_response(captured.status, _end_to_end(captured.headers))
    return [data]


def _end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Without hop-by-hop headers (``Connection: close``): threaded servers manage their
    connections themselves, and wsgiref (Django's runserver) refuses them from an app."""
    return [(k, v) for k, v in headers if not is_hop_by_hop(k)]


def _bridge_websocket(engine: EngineServer, rt: Runtime, environ: dict[str, Any], env: dict[str, Any],
                      start_response: Callable[..., Any], sock: Any) -> Iterable[bytes]:
    """A WebSocket request from a threaded server: the session runs in ``rt`` over a
    duplicate of the connection's socket while this thread waits; then the server is
    told "101" and writes nothing more (the socket is shut down)."""
    from .engine import UPGRADE_KEY

    fd = os.dup(sock.fileno())
    taken: list[Any] = []

    def upgrade(*, max_message_size: int, max_pending: int = 16_000_000, **kwargs: Any) -> Any:
        # In rt's thread: a gevent socket on the duplicate belongs to rt's hub.
        gsock = gevent.socket.socket(fileno=fd)
        taken.append(gsock)
        return upgrade_raw_socket(env, gsock, max_message_size=max_message_size, max_pending=max_pending,
                                  **kwargs)

    env[UPGRADE_KEY] = upgrade
    captured = _Captured()
    try:
        data = rt.call(_collect, engine, env, captured)
    finally:
        if taken:
            rt.call(taken[0].close)
        else:
            os.close(fd)
    if not taken:
        start_response(captured.status, _end_to_end(captured.headers))
        return [data]
    environ[WEBSOCKET_TAKEN_KEY] = True
    try:
        sock.shutdown(2)  # SHUT_RDWR: whatever the server writes next goes nowhere
    except OSError:
        pass
    start_response("101 Switching Protocols", [])
    return []


def upgrade_raw_socket(environ: dict[str, Any], sock: Any, *, max_message_size: int,
                       max_pending: int = 16_000_000, headers: list[tuple[str, str]] | None = None,
                       deflate: Any = None) -> Any:
    """Validate the handshake, send ``101`` on the raw (gevent) ``sock`` and return the
    server-side WebSocket; for servers that expose the socket but do not speak WebSocket.
    ``headers`` go into the 101 (already checked: no line breaks); ``deflate`` are the
    agreed permessage-deflate parameters."""
    from .handler import set_nodelay, websocket_accept
    from .websocket import ServerWebSocket

    accept = websocket_accept(environ)
    set_nodelay(sock)
    extra = b"".join(f"{k}: {v}\r\n".encode("latin-1", "replace") for k, v in headers or ())
    sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept.encode("ascii") + b"\r\n" + extra + b"\r\n")
    return ServerWebSocket(sock, None, max_message_size=max_message_size, max_pending=max_pending,
                           deflate=deflate)

"""Drive official socket.io-client sockets from Python through ``tests/js/driver.mjs``.

One Node process per test hosts any number of named clients.  Commands go to it as JSON
lines on stdin and are answered on stdout; everything a client observes (connect,
connect_error, disconnect, server events, reconnection, engine upgrades, optionally raw
engine packets) is recorded per client, so a test can wait for it.

Binary values are ``bytes`` on the Python side and ``{"$bin": "<base64>"}`` on the wire
to the driver, nested anywhere in event arguments.
"""
from __future__ import annotations

import base64
import collections
import datetime
import itertools
import json
import os
import subprocess
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import require_path, require_tool

JS_DIR = Path(__file__).resolve().parent / "js"
DRIVER = JS_DIR / "driver.mjs"

DEFAULT_TIMEOUT = 5.0


class DriverError(RuntimeError):
    """The driver rejected a command, or the driver process died."""


class ClientAckError(AssertionError):
    """An emit with ``timeout=`` got no acknowledgement in time (client-side timeout)."""


# ----------------------------------------------------------------- binary encoding

def to_wire(value: Any) -> Any:
    """Python value -> JSON-able value for the driver (bytes become {"$bin": ...}, aware
    datetimes {"$date": ms}, a JavaScript Date on the Node side)."""
    if isinstance(value, datetime.datetime):
        return {"$date": round(value.timestamp() * 1000)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def from_wire(value: Any) -> Any:
    """Driver value -> Python value ({"$bin": ...} becomes bytes)."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"} and isinstance(value["$bin"], str):
            return base64.b64decode(value["$bin"])
        if set(value) == {"$date"} and isinstance(value["$date"], (int, float)):
            return datetime.datetime.fromtimestamp(value["$date"] / 1000, datetime.timezone.utc)
        return {k: from_wire(v) for k, v in value.items()}
    return value


def as_arraybuffer(data: bytes) -> dict[str, str]:
    """Send ``data`` as an ArrayBuffer instead of a Node Buffer."""
    return {"$bin": base64.b64encode(data).decode("ascii"), "$as": "arraybuffer"}


# ----------------------------------------------------------------- the client pool

class NodeClients:
    """A ``node driver.mjs`` process and the socket.io-client sockets it hosts."""

    def __init__(self, node: str = "node", default_timeout: float = DEFAULT_TIMEOUT, driver: Path = DRIVER) -> None:
        self.node = node
        #: The driver script: driver.mjs (socket.io-client 4), or driver_v2.cjs (socket.io-client 2).
        self.driver = driver
        self.default_timeout = default_timeout
        self.proc: subprocess.Popen[str] | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._events: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self._consumed: dict[str, set[int]] = collections.defaultdict(set)
        self._driver_errors: list[str] = []
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._reader: threading.Thread | None = None
        self._err_reader: threading.Thread | None = None
        self._ready = threading.Event()
        self.exited = False

    # -- process ------------------------------------------------------------

    def start(self) -> "NodeClients":
        self.proc = subprocess.Popen(
            [self.node, str(self.driver)],
            cwd=JS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
            env={**os.environ},
        )
        self._reader = threading.Thread(target=self._read_stdout, name="node-driver-out", daemon=True)
        self._err_reader = threading.Thread(target=self._read_stderr, name="node-driver-err", daemon=True)
        self._reader.start()
        self._err_reader.start()
        if not self._ready.wait(15):
            self.stop()
            raise DriverError(f"node driver did not start:\n{self.stderr_tail()}")
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps({"id": 0, "cmd": "exit"}) + "\n")
                proc.stdin.flush()
                proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader:
            self._reader.join(2)
        if self._err_reader:
            self._err_reader.join(2)

    def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self._stderr.append(f"[stdout, not JSON] {line}")
                continue
            msg["_t"] = time.monotonic()
            if "id" in msg and "event" not in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None:
                    fut.set_result(msg)
                continue
            kind = msg.get("event")
            if kind == "ready":
                self._ready.set()
                continue
            if kind == "driver_error":
                self._driver_errors.append(msg.get("message", ""))
                continue
            client = msg.get("client", "")
            if "args" in msg:
                msg["args"] = from_wire(msg["args"])
            if kind == "connect_error" and "data" in msg:
                msg["data"] = from_wire(msg["data"])
            with self._cond:
                self._events[client].append(msg)
                self._cond.notify_all()
        self.exited = True
        with self._cond:
            self._cond.notify_all()
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(DriverError(f"node driver exited:\n{self.stderr_tail()}"))
        self._pending.clear()

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def stderr_tail(self) -> str:
        return "\n".join(list(self._stderr)[-40:])

    @property
    def driver_errors(self) -> list[str]:
        return list(self._driver_errors)

    # -- commands -----------------------------------------------------------

    def send(self, cmd: str, **fields: Any) -> Future[dict[str, Any]]:
        """Send a command; the future resolves with the driver's reply."""
        if self.proc is None or self.proc.poll() is not None or self.exited:
            raise DriverError(f"node driver is not running:\n{self.stderr_tail()}")
        msg_id = next(self._ids)
        fut: Future[dict[str, Any]] = Future()
        self._pending[msg_id] = fut
        line = json.dumps({"id": msg_id, "cmd": cmd, **fields})
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        return fut

    def request(self, cmd: str, *, reply_timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send a command and wait for a successful reply."""
        timeout = self.default_timeout if reply_timeout is None else reply_timeout
        fut = self.send(cmd, **fields)
        return self._result(fut, timeout, f"{cmd} {fields}")

    def _result(self, fut: Future[dict[str, Any]], timeout: float, what: str) -> dict[str, Any]:
        try:
            reply = fut.result(timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no reply from the node driver within {timeout}s to {what}\n"
                f"recent events: {self._recent_events()}\nstderr:\n{self.stderr_tail()}"
            ) from None
        if not reply.get("ok"):
            raise DriverError(f"{what} failed: {reply.get('error')}")
        return reply

    def _recent_events(self, client: str | None = None, n: int = 15) -> str:
        with self._cond:
            if client is not None:
                evs = self._events.get(client, [])[-n:]
            else:
                evs = sorted(
                    (e for lst in self._events.values() for e in lst), key=lambda e: e["_t"]
                )[-n:]
            return "\n  " + "\n  ".join(_short(e) for e in evs)

    def connect(
        self,
        client: str,
        url: str,
        *,
        transports: list[str] | tuple[str, ...] | None = None,
        auth: Any = None,
        manager: str | None = None,
        trace: bool = False,
        wait: bool = True,
        timeout: float | None = None,
        expect_error: bool = False,
        **opts: Any,
    ) -> dict[str, Any]:
        """Create client ``client`` for ``url`` (namespace in the path) and connect it.

        Extra keyword arguments are socket.io-client options (``reconnection``,
        ``reconnectionDelay``, ``query``, ``upgrade``...).  Returns the driver's reply:
        ``{"connected": bool, "sid": ..., "error": {"message", "data"}, "state": {...}}``.
        Raises unless the outcome matches ``expect_error``.
        """
        timeout = self.default_timeout if timeout is None else timeout
        if transports is not None:
            opts["transports"] = list(transports)
        if auth is not None:
            opts["auth"] = to_wire(auth)
        fields: dict[str, Any] = {
            "client": client, "url": url, "opts": opts, "trace": trace, "wait": wait,
            "waitTimeout": int(timeout * 1000),
        }
        if manager is not None:
            fields["manager"] = manager
        reply = self.request("connect", reply_timeout=timeout + 1, **fields)
        if wait:
            if "error" in reply and isinstance(reply["error"], dict) and "data" in reply["error"]:
                reply["error"]["data"] = from_wire(reply["error"]["data"])
            if expect_error and reply.get("connected"):
                raise AssertionError(f"{client}: expected a connect_error, but it connected: {reply}")
            if not expect_error and not reply.get("connected"):
                raise AssertionError(
                    f"{client}: could not connect to {url}: {reply.get('error')}\n"
                    f"events: {self._recent_events(client)}"
                )
        return reply

    def emit(self, client: str, name: str, *args: Any) -> None:
        """``socket.emit(name, ...args)`` without acknowledgement."""
        self.request("emit", client=client, name=name, args=to_wire(list(args)))

    def emit_many(self, client: str, name: str, args_list: list[list[Any]]) -> None:
        """Emit ``name`` once per argument list, all in the same Node tick."""
        self.request("emitMany", client=client, name=name, argsList=to_wire(args_list))

    def emit_async(
        self, client: str, name: str, *args: Any, timeout_ms: int | None = None
    ) -> Future[dict[str, Any]]:
        """Emit with an ack callback; the future resolves with the driver reply
        ``{"args": [...], "err"?: "..."}`` once the server acknowledges."""
        fields: dict[str, Any] = {"client": client, "name": name, "args": to_wire(list(args)), "ack": True}
        if timeout_ms is not None:
            fields["timeout"] = timeout_ms
        fut = self.send("emit", **fields)
        fut.what = f"ack of {name!r} emitted by {client}"  # type: ignore[attr-defined]
        return fut

    def result(self, fut: Future[dict[str, Any]], timeout: float | None = None) -> list[Any]:
        """Wait for an ``emit_async`` future; return the ack arguments."""
        timeout = self.default_timeout if timeout is None else timeout
        reply = self._result(fut, timeout, getattr(fut, "what", "ack of an earlier emit"))
        if reply.get("err"):
            raise ClientAckError(reply["err"])
        return from_wire(reply.get("args", []))

    def call(
        self, client: str, name: str, *args: Any, timeout: float | None = None,
        timeout_ms: int | None = None,
    ) -> list[Any]:
        """Emit with an acknowledgement and return the ack arguments (a list).

        ``timeout_ms`` uses ``socket.timeout(ms).emit`` (raises ClientAckError when it
        expires); ``timeout`` bounds the wait on the Python side.
        """
        return self.result(self.emit_async(client, name, *args, timeout_ms=timeout_ms), timeout)

    emit_with_ack = call

    def ack_with(self, client: str, name: str, *args: Any, echo: bool = False, delay_ms: int = 0) -> None:
        """Answer every future event ``name`` that asks for an ack with ``args``
        (or with the event's own arguments when ``echo``)."""
        self.request("ackWith", client=client, name=name, args=to_wire(list(args)), echo=echo, delay=delay_ms)

    def ack(self, client: str, ack_id: int, *args: Any) -> None:
        """Answer a recorded event (``event["ackId"]``) that asked for an ack."""
        self.request("ack", client=client, ackId=ack_id, args=to_wire(list(args)))

    def disconnect(self, client: str) -> None:
        self.request("disconnect", client=client)

    def open(self, client: str) -> None:
        self.request("open", client=client)

    def close(self, client: str) -> None:
        """Close the client's Manager (whole connection, no reconnection)."""
        self.request("close", client=client)

    def close_engine(self, client: str) -> None:
        self.request("closeEngine", client=client)

    def kill_transport(self, client: str) -> None:
        """Destroy the TCP connection under a WebSocket transport, without a close frame."""
        self.request("kill", client=client)

    def drop_pongs(self, client: str, on: bool = True) -> None:
        """Stop (or resume) answering the server's pings."""
        self.request("dropPongs", client=client, on=on)

    def state(self, client: str) -> dict[str, Any]:
        reply = self.request("state", client=client)
        return {k: v for k, v in reply.items() if k not in ("id", "ok", "_t")}

    def remove(self, client: str) -> None:
        self.request("remove", client=client)

    def sync(self) -> None:
        """Round trip to the driver: every event it saw before is recorded after this."""
        self.request("ping")

    # -- events -------------------------------------------------------------

    def events(self, client: str, kind: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """Snapshot of everything recorded for ``client`` (consumed or not)."""
        with self._cond:
            evs = list(self._events.get(client, []))
        return [e for e in evs if (kind is None or e["event"] == kind) and (name is None or e.get("name") == name)]

    def messages(self, client: str, name: str | None = None) -> list[list[Any]]:
        """Argument lists of all server events (``name`` or all) recorded for ``client``."""
        return [e["args"] for e in self.events(client, "message", name)]

    def wait_for(
        self,
        client: str,
        kind: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Wait for (and consume) the next unconsumed event of ``kind`` for ``client``."""
        timeout = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                evs = self._events.get(client, [])
                used = self._consumed[client]
                for i, ev in enumerate(evs):
                    if i in used or ev["event"] != kind:
                        continue
                    if name is not None and ev.get("name") != name:
                        continue
                    if predicate is not None and not predicate(ev):
                        continue
                    used.add(i)
                    return ev
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.exited:
                    what = f"{kind}" + (f" {name!r}" if name else "")
                    raise TimeoutError(
                        f"{client}: no {what} within {timeout}s"
                        f"{' (driver exited)' if self.exited else ''}; recorded for {client}:"
                        f"{self._recent_events(client)}\ndriver errors: {self._driver_errors}"
                        f"\nstderr:\n{self.stderr_tail()}"
                    )
                self._cond.wait(remaining)

    def wait_for_event(
        self, client: str, name: str, timeout: float | None = None,
        predicate: Callable[[list[Any]], bool] | None = None,
    ) -> list[Any]:
        """Wait for the next server event ``name`` on ``client``; return its arguments."""
        pred = None if predicate is None else (lambda ev: predicate(ev["args"]))
        return self.wait_for(client, "message", pred, timeout, name=name)["args"]

    def wait_for_message(self, client: str, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Like wait_for_event but returns the whole record (``args``, ``ackId``...)."""
        return self.wait_for(client, "message", None, timeout, name=name)


def _short(ev: dict[str, Any]) -> str:
    d = {k: v for k, v in ev.items() if k not in ("_t", "client")}
    text = json.dumps(d, default=repr)
    return text if len(text) < 300 else text[:300] + "..."


# ----------------------------------------------------------------- fixture

def require_node_clients() -> str:
    """Path of node, after checking that ``npm ci`` was run in tests/js."""
    node = require_tool("node", "nodejs")
    require_path(JS_DIR / "node_modules" / "socket.io-client", "tests/js/node_modules is missing: run npm ci in tests/js")
    return node


@pytest.fixture
def node_clients() -> Iterator[NodeClients]:
    """A running Node driver; ``node_clients.connect("c1", srv.url + "/chat")``..."""
    node = require_node_clients()
    clients = NodeClients(node).start()
    try:
        yield clients
    finally:
        clients.stop()
    assert not clients.driver_errors, f"node driver reported errors: {clients.driver_errors}"
